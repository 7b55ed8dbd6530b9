// Tokenizer factories and StreamDecoder.
#include "insitu/tokenizer.h"

#include "io/gguf.h"
#include "tokenizer/llama_tokenizer.h"
#include "tokenizer/unicode.h"

namespace insitu {

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::GgufFile& file) {
  tok::Vocab v = tok::vocab_from_gguf(file);
  std::unique_ptr<tok::PreTokenizer> pre;
  if (v.type == tok::VocabType::kBpe) pre = tok::PreTokenizer::for_type(v.pre, v.source);
  return std::make_unique<tok::LlamaTokenizer>(std::move(v), std::move(pre));
}

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool render_special)
    : tok_(tok), render_special_(render_special) {}

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tok_.token_to_piece(id, render_special_);
  if (first_ && tok_.add_space_prefix() && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
  first_ = false;
  pending_ += piece;
  const size_t n = unicode::complete_prefix_len(pending_);
  std::string out = unicode::sanitize_utf8(std::string_view(pending_).substr(0, n));
  pending_.erase(0, n);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = unicode::sanitize_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace insitu
