#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace insitu::unicode {
namespace {

constexpr uint32_t kNumCodepoints = 0x110000;

// Dense per-code-point table (2.2 MB) built once from the range list: lookups sit in the inner
// loop of every pre-tokenizer.
const std::vector<uint16_t>& flag_table() {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(kNumCodepoints, kUndefined);
    for (size_t i = 0; i < detail::kNumCategoryRanges; ++i) {
      const uint32_t first = detail::kCategoryRanges[i].first;
      const uint32_t last = i + 1 < detail::kNumCategoryRanges
                                ? detail::kCategoryRanges[i + 1].first
                                : kNumCodepoints;
      std::fill(t.begin() + first, t.begin() + last, detail::kCategoryRanges[i].flags);
    }
    for (size_t i = 0; i < detail::kNumWhitespace; ++i) t[detail::kWhitespace[i]] |= kWhitespace;
    return t;
  }();
  return table;
}

struct ByteMaps {
  std::array<std::string, 256> to_utf8;
  std::array<int, 512> from_cpt;  // every mapped code point is below 0x144
};

// GPT-2 keeps printable Latin-1 bytes as themselves and moves the rest to U+0100.. in byte order.
const ByteMaps& byte_maps() {
  static const ByteMaps maps = [] {
    ByteMaps m;
    m.from_cpt.fill(-1);
    auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const uint32_t cpt = printable(b) ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      std::string s;
      append_utf8(s, cpt);
      m.to_utf8[b] = s;
      m.from_cpt[cpt] = b;
    }
    return m;
  }();
  return maps;
}

}  // namespace

Flags flags_of(uint32_t cpt) {
  if (cpt >= kNumCodepoints) return Flags{kUndefined};
  return Flags{flag_table()[cpt]};
}

uint32_t decode_one(std::string_view s, size_t& offset) {
  const auto at = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const auto cont = [&](size_t i) { return i < s.size() && (at(i) & 0xC0) == 0x80; };
  const uint8_t c = at(offset);
  if (!(c & 0x80)) {
    offset += 1;
    return c;
  }
  if ((c & 0xE0) == 0xC0 && cont(offset + 1)) {
    const uint32_t r = ((c & 0x1Fu) << 6) | (at(offset + 1) & 0x3Fu);
    offset += 2;
    return r;
  }
  if ((c & 0xF0) == 0xE0 && cont(offset + 1) && cont(offset + 2)) {
    const uint32_t r = ((c & 0x0Fu) << 12) | ((at(offset + 1) & 0x3Fu) << 6) | (at(offset + 2) & 0x3Fu);
    offset += 3;
    return r;
  }
  if ((c & 0xF8) == 0xF0 && cont(offset + 1) && cont(offset + 2) && cont(offset + 3)) {
    const uint32_t r = ((c & 0x07u) << 18) | ((at(offset + 1) & 0x3Fu) << 12) |
                       ((at(offset + 2) & 0x3Fu) << 6) | (at(offset + 3) & 0x3Fu);
    offset += 4;
    return r;
  }
  offset += 1;
  return kReplacement;
}

std::vector<uint32_t> decode(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t off = 0;
  while (off < s.size()) out.push_back(decode_one(s, off));
  return out;
}

void append_utf8(std::string& out, uint32_t cpt) {
  if (cpt > 0x10FFFF) cpt = kReplacement;
  if (cpt <= 0x7F) {
    out.push_back(static_cast<char>(cpt));
  } else if (cpt <= 0x7FF) {
    out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt <= 0xFFFF) {
    out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

std::string encode(const std::vector<uint32_t>& cpts, size_t begin, size_t end) {
  std::string out;
  out.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) append_utf8(out, cpts[i]);
  return out;
}

size_t complete_prefix_len(std::string_view s) {
  // Look back at most 3 bytes for the lead byte of a trailing sequence.
  const size_t n = s.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const uint8_t c = static_cast<uint8_t>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    if (c < 0xC0 || c >= 0xF8) return n;  // ASCII or a byte that never leads a sequence
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    return back < need ? n - back : n;
  }
  return n;
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t off = 0;
  while (off < s.size()) {
    const size_t start = off;
    const uint32_t cpt = decode_one(s, off);
    if (cpt == kReplacement && off - start == 1) {
      append_utf8(out, kReplacement);
    } else {
      out.append(s.substr(start, off - start));
    }
  }
  return out;
}

const std::string& byte_to_unicode(uint8_t b) { return byte_maps().to_utf8[b]; }

int unicode_to_byte(uint32_t cpt) {
  return cpt < byte_maps().from_cpt.size() ? byte_maps().from_cpt[cpt] : -1;
}

}  // namespace insitu::unicode
