// Vocabulary of a llama.cpp-compatible tokenizer: token strings, scores, attributes, BPE merge
// ranks, special ids and the switches that change encoding (add_bos, add_space_prefix, ...).
//
// Filled by a loader (GGUF metadata or tokenizer.json) and then finalize()d, which applies the
// same derivations llama.cpp makes at load time (llama-vocab.cpp, llama.cpp as vendored in
// llama-cpp-python 0.3.36): end-of-generation tokens found by their text, control attributes on
// tokens that look like control tokens, "unused" tokens, the special-token list used to split
// text, and per-model strip rules. Immutable afterwards; safe to share between threads.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace insitu::gguf {
class GgufFile;
}

namespace insitu::tok {

// Attribute bits (llama.cpp's llama_token_attr values).
namespace attr {
constexpr uint32_t kUnknown = 1u << 0;
constexpr uint32_t kUnused = 1u << 1;
constexpr uint32_t kNormal = 1u << 2;
constexpr uint32_t kControl = 1u << 3;
constexpr uint32_t kUserDefined = 1u << 4;
constexpr uint32_t kByte = 1u << 5;
constexpr uint32_t kLstrip = 1u << 7;
constexpr uint32_t kRstrip = 1u << 8;
}  // namespace attr

// GGUF tokenizer.ggml.token_type values -> attribute bits.
uint32_t attr_from_gguf_type(int32_t type);
int32_t gguf_type_from_attr(uint32_t a);

enum class VocabType { kSpm, kBpe };

// Lets the string-keyed maps be searched with a string_view (no allocation per lookup).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct Vocab {
  std::string source;          // file named in errors
  VocabType type = VocabType::kBpe;
  std::string model;           // tokenizer.ggml.model: "llama" or "gpt2"
  std::string pre;             // tokenizer.ggml.pre
  std::string general_name;    // general.name (Phi-3 strip rules key on it)

  std::vector<std::string> text;
  std::vector<float> score;
  std::vector<uint32_t> attrs;
  std::vector<std::string> merges;  // "left right" lines, rank = index

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1, mask = -1;
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
  bool add_bos = false, add_eos = false, add_sep = false;
  bool add_space_prefix = false;
  bool escape_whitespaces = false;  // SPM: ' ' -> U+2581 before tokenizing
  bool clean_spaces = false;        // detokenize: " ." -> "." etc.
  bool ignore_merges = false;       // a whole pre-token that is in the vocabulary wins
  std::string chat_template;

  // Derived by finalize().
  TokenMap token_to_id;
  TokenMap merge_rank;  // key: "left right"
  // The same ranks keyed by (left id << 32 | right id), for merges whose halves are tokens.
  std::unordered_map<uint64_t, int32_t> merge_rank_ids;
  std::set<int32_t> eog;
  std::vector<int32_t> special_tokens;  // control/user-defined/unknown ids, longest text first

  int32_t n_tokens() const { return static_cast<int32_t>(text.size()); }
  int32_t find(std::string_view s) const;  // -1 when absent
  int32_t rank(const std::string& left, const std::string& right) const;  // -1 when no merge
  int32_t rank(int32_t left_id, int32_t right_id) const;                  // -1 when no merge
  // Token for one raw byte: <0xXX> (SPM) or the GPT-2 mapped character (BPE); -1 when absent.
  int32_t byte_token(uint8_t b) const;
  uint8_t token_byte(int32_t id) const;  // for kByte tokens "<0xXX>"

  // Sets the type defaults for `model` (before metadata overrides). Throws Unsupported.
  void set_model_defaults(const std::string& model_name, const std::string& pre_name);
  // Validates the ids and derives the tables above. Throws FormatError naming `source`.
  void finalize();
};

// Fills a Vocab from GGUF tokenizer.* metadata (does not finalize).
Vocab vocab_from_gguf(const gguf::GgufFile& file);

}  // namespace insitu::tok
