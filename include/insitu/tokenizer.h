// Text <-> token ids, identical to llama.cpp for the supported families.
//
// Built from GGUF metadata (tokenizer.ggml.model = "llama" SentencePiece-style or "gpt2" byte-level
// BPE, with the pre-tokenizer named by tokenizer.ggml.pre) or from a Hugging Face tokenizer.json
// (+ tokenizer_config.json). Immutable after construction; encode/decode are thread-safe.
// Malformed vocabularies throw FormatError naming the source and the problem.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace insitu::gguf {
class GgufFile;
}

namespace insitu {

enum class TokenAttr : uint8_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Supported: tokenizer.ggml.model "llama" (SentencePiece-style) and "gpt2" with the
  // pre-tokenizer types listed in pretokenizer.cc; others throw Unsupported naming the file.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::GgufFile& file);
  // dir holds tokenizer.json and (optionally) tokenizer_config.json: a BPE model with a
  // byte-level pre-tokenizer, or SentencePiece-style whitespace (see hf_tokenizer.cc).
  static std::unique_ptr<Tokenizer> from_hf_dir(const std::string& dir);

  // add_special: prepend BOS (and append EOS) as the model's metadata says.
  // parse_special: recognise control/user-defined token strings inside text (chat templates).
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special,
                                      bool parse_special) const = 0;

  // The bytes a token stands for (byte tokens -> the raw byte; control tokens -> their text only
  // when render_special). May be an incomplete UTF-8 sequence.
  virtual std::string token_to_piece(int32_t id, bool render_special) const = 0;

  // Concatenated pieces with the model's decoding rules (e.g. SentencePiece's leading space),
  // as llama.cpp's llama_detokenize(remove_special = false, unparse_special = render_special):
  // the first piece loses one leading space when add_space_prefix(), and vocabularies whose
  // pre-tokenizer asks for it (gpt2, llama3, ...) get Hugging Face's space clean-up (" ." -> ".").
  // May contain malformed UTF-8 where the ids spell partial characters.
  virtual std::string decode(std::span<const int32_t> ids, bool render_special) const = 0;

  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when none
  virtual int32_t eos_id() const = 0;  // -1 when none
  virtual bool add_bos() const = 0;
  // SentencePiece-style vocabularies that prefix text with a space; decoding drops the space
  // from the first token (StreamDecoder and decode() both do).
  virtual bool add_space_prefix() const { return false; }
  // End of generation: EOS, EOT and other end tokens the metadata names (e.g. <end_of_turn>).
  virtual bool is_eog(int32_t id) const = 0;
  virtual std::string token_text(int32_t id) const = 0;  // the vocabulary string
  virtual TokenAttr token_attr(int32_t id) const = 0;
};

// Turns a stream of token ids into text that never ends inside a UTF-8 sequence: bytes of an
// incomplete character are held back until the character completes (or flushed at the end).
// Every returned string is valid UTF-8 (bytes that can never form a character become U+FFFD).
// The concatenated output equals decode() of all ids for vocabularies without space clean-up;
// the clean-up is a whole-text rule a stream does not apply. Not thread-safe (one per stream).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool render_special = false);
  std::string push(int32_t id);  // complete characters available after this token
  std::string flush();           // whatever is held back (invalid bytes replaced by U+FFFD)

 private:
  const Tokenizer& tok_;
  bool render_special_;
  std::string pending_;
  bool first_ = true;
};

}  // namespace insitu
