// The Tokenizer implementation for llama.cpp-compatible vocabularies (SentencePiece-style "llama"
// with scores and byte fallback, and byte-level BPE "gpt2" with a pre-tokenizer). Internal to the
// tokenizer layer; users go through insitu::Tokenizer.
#pragma once

#include <memory>

#include "tokenizer/pretokenizer.h"
#include "insitu/tokenizer.h"
#include "tokenizer/vocab.h"

namespace insitu::tok {

class LlamaTokenizer final : public Tokenizer {
 public:
  // `pre` may be null for SPM vocabularies. Takes a finalized vocabulary.
  LlamaTokenizer(Vocab vocab, std::unique_ptr<PreTokenizer> pre);

  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override;
  std::string token_to_piece(int32_t id, bool render_special) const override;
  std::string decode(std::span<const int32_t> ids, bool render_special) const override;
  int32_t n_vocab() const override { return vocab_.n_tokens(); }
  int32_t bos_id() const override { return vocab_.bos; }
  int32_t eos_id() const override { return vocab_.eos; }
  bool add_bos() const override { return vocab_.add_bos; }
  bool add_space_prefix() const override { return vocab_.add_space_prefix; }
  bool is_eog(int32_t id) const override { return vocab_.eog.count(id) > 0; }
  std::string token_text(int32_t id) const override;
  TokenAttr token_attr(int32_t id) const override;

  const Vocab& vocab() const { return vocab_; }
  const PreTokenizer* pre_tokenizer() const { return pre_.get(); }

 private:
  struct Fragment {
    int32_t token;  // -1: raw text [offset, offset + length)
    size_t offset;
    size_t length;
  };
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  void encode_spm(const std::string& text, std::vector<int32_t>& out) const;
  void encode_bpe(const std::string& text, std::vector<int32_t>& out) const;
  void check_id(int32_t id) const;

  Vocab vocab_;
  std::unique_ptr<PreTokenizer> pre_;
};

}  // namespace insitu::tok
