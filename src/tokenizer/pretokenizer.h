// Pre-tokenization for byte-level BPE vocabularies: splits text into words that BPE merges never
// cross, the way llama.cpp does for each `tokenizer.ggml.pre` type (llama-vocab.cpp and
// unicode.cpp as vendored in llama-cpp-python 0.3.36).
//
// A pre-tokenizer is a sequence of steps; each step splits every piece the previous steps made.
// The common patterns (GPT-2, Llama 3, Qwen 2, isolated digits, newline runs) have hand-written
// splitters; any other pattern runs through PCRE2 on llama.cpp's "collapsed" text, where each code
// point is replaced by one byte standing for its Unicode category, so \p{L}, \p{N}, ... classify
// code points exactly as the hand-written splitters do. Immutable after construction.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace insitu::tok {

class PreTokenizer {
 public:
  // `pre` is the GGUF tokenizer.ggml.pre value ("" means "default"). Throws Unsupported naming
  // `source` for an unknown type. byte_encode: words come out GPT-2 byte-encoded.
  static std::unique_ptr<PreTokenizer> for_type(const std::string& pre, const std::string& source);
  // Built from explicit regexes (e.g. a tokenizer.json Split pattern), applied in order.
  static std::unique_ptr<PreTokenizer> from_regexes(const std::vector<std::string>& regexes,
                                                    bool byte_encode, const std::string& source);
  ~PreTokenizer();

  // Splits `text` into words; malformed UTF-8 becomes U+FFFD. With byte_encode each word is
  // mapped through the GPT-2 byte-to-unicode table.
  std::vector<std::string> split(std::string_view text) const;

  bool byte_encode() const { return byte_encode_; }
  const std::vector<std::string>& regexes() const { return regexes_; }

  struct Step;

 private:
  PreTokenizer() = default;
  void add_regex(const std::string& re, const std::string& source);

  std::vector<std::string> regexes_;
  std::vector<std::unique_ptr<Step>> steps_;
  bool byte_encode_ = true;
};

// Facts about a pre-tokenizer type that change the vocabulary's behaviour (llama-vocab.cpp).
struct PreTypeTraits {
  bool known = false;
  bool clean_spaces = true;
  bool ignore_merges = false;
  bool add_bos = false;      // forced BOS default (llama3, tekken)
  bool escape_whitespaces = false;
};
PreTypeTraits pre_type_traits(const std::string& pre);

// The first tokenizer.ggml.pre type whose steps are `regexes` (in llama.cpp's or Hugging Face's
// spelling of the common patterns) and whose clean-up and merge switches are the given ones; ""
// when none is. Names the pre-tokenizer of a vocabulary read from tokenizer.json.
std::string pre_type_for(const std::vector<std::string>& regexes, bool clean_spaces,
                         bool ignore_merges);

}  // namespace insitu::tok
