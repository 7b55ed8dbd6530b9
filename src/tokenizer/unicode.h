// UTF-8 and Unicode helpers for the tokenizers.
//
// Decoding follows llama.cpp's rules (src/unicode.cpp as vendored in llama-cpp-python 0.3.36) so
// that pre-tokenization splits text exactly where llama.cpp does: a malformed or truncated
// sequence yields U+FFFD and consumes one byte; overlong forms and surrogates are not rejected.
// Category flags come from the generated table in unicode_data.cc (Unicode 15.1, the same
// categories as llama.cpp's tables; code points assigned later read as "undefined"). All
// functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace insitu::unicode {

// Category flags of one code point (bit values shared with the generated table).
enum CategoryFlag : uint16_t {
  kUndefined = 0x0001,
  kNumber = 0x0002,       // \p{N}
  kLetter = 0x0004,       // \p{L}
  kSeparator = 0x0008,    // \p{Z}
  kMark = 0x0010,         // \p{M}
  kPunctuation = 0x0020,  // \p{P}
  kSymbol = 0x0040,       // \p{S}
  kControl = 0x0080,      // \p{C}
  kCategoryMask = 0x00FF,
  kWhitespace = 0x0100,   // \s (Unicode White_Space)
};

struct Flags {
  uint16_t bits = 0;  // 0 for positions outside the text (no category at all)
  bool is_number() const { return bits & kNumber; }
  bool is_letter() const { return bits & kLetter; }
  bool is_mark() const { return bits & kMark; }
  bool is_whitespace() const { return bits & kWhitespace; }
  bool any() const { return bits != 0; }
  uint16_t category() const { return bits & kCategoryMask; }
};

Flags flags_of(uint32_t cpt);

constexpr uint32_t kReplacement = 0xFFFD;

// Length of the sequence a lead byte announces (1 for continuation/invalid bytes), as llama.cpp
// and SentencePiece-style symbol splitting use it.
inline size_t utf8_len_from_lead(uint8_t c) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[c >> 4];
}

// Decodes one code point at `offset` and advances it; malformed input gives U+FFFD and one byte.
uint32_t decode_one(std::string_view s, size_t& offset);
std::vector<uint32_t> decode(std::string_view s);
void append_utf8(std::string& out, uint32_t cpt);  // cpt > 0x10FFFF is written as U+FFFD
std::string encode(const std::vector<uint32_t>& cpts, size_t begin, size_t end);

// Length of the longest prefix of `s` that ends on a complete UTF-8 character boundary, treating
// bytes that can never start or continue a valid sequence as complete (they will never complete).
size_t complete_prefix_len(std::string_view s);
// Replaces every malformed byte with U+FFFD (valid sequences are copied unchanged).
std::string sanitize_utf8(std::string_view s);

// GPT-2's reversible byte <-> printable code point mapping used by byte-level BPE vocabularies.
const std::string& byte_to_unicode(uint8_t b);  // UTF-8 of the code point standing for byte b
int unicode_to_byte(uint32_t cpt);             // -1 when cpt stands for no byte

namespace detail {
struct CategoryRange {
  uint32_t first;
  uint16_t flags;
};
extern const CategoryRange kCategoryRanges[];
extern const size_t kNumCategoryRanges;
extern const uint32_t kWhitespace[];
extern const size_t kNumWhitespace;
}  // namespace detail

}  // namespace insitu::unicode
