#include "tokenizer/jinja/text.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "tokenizer/jinja/value.h"

namespace insitu::jinja {
namespace {

char32_t lower_cp(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
  if (c >= 0x100 && c <= 0x17F) {
    // Latin Extended-A pairs upper/lower as even/odd, except the 0x139..0x148 and 0x179..0x17E runs.
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c % 2 == 1) ? c + 1 : c;
    if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c == 0x130 ? 'i' : c;
    return (c % 2 == 0) ? c + 1 : c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

char32_t upper_cp(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
  if (c == 0xFF) return 0x178;
  if (c == 0xB5) return 0x39C;
  if (c >= 0x100 && c <= 0x17F) {
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c % 2 == 0) ? c - 1 : c;
    if (c == 0x131) return 'I';
    if (c == 0x17F) return 'S';
    if (c == 0x130 || c == 0x138 || c == 0x149) return c;
    return (c % 2 == 1) ? c - 1 : c;
  }
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}

void append_upper(std::string& out, char32_t c) {
  if (c == 0xDF) { out += "SS"; return; }
  append_utf8(out, upper_cp(c));
}

bool is_word_char(char32_t c) {
  if (c < 0x80) return std::isalnum(static_cast<int>(c)) || c == '_';
  if (c >= 0x110000) return false;
  if (is_py_space(c)) return false;
  if (c == 0xA7 || c == 0xAB || c == 0xB6 || c == 0xB7 || c == 0xBB || c == 0xBF || c == 0xD7 || c == 0xF7)
    return false;
  if (c < 0xAA) return false;
  if ((c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) || (c >= 0xFF00 && c <= 0xFF0F) ||
      (c >= 0x1F000 && c <= 0x1FAFF))
    return false;
  return true;
}

std::vector<char32_t> cps_of(std::string_view s) { return decode_utf8(s); }

}  // namespace

bool is_cased_letter(char32_t c) { return lower_cp(c) != c || upper_cp(c) != c || c == 0xDF; }

std::string py_lower(std::string_view s) {
  std::string out;
  for (char32_t c : cps_of(s)) append_utf8(out, lower_cp(c));
  return out;
}

std::string py_upper(std::string_view s) {
  std::string out;
  for (char32_t c : cps_of(s)) append_upper(out, c);
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (char32_t c : cps_of(s)) {
    if (first) append_upper(out, c);
    else append_utf8(out, lower_cp(c));
    first = false;
  }
  return out;
}

std::string py_title(std::string_view s) {
  std::string out;
  bool prev_cased = false;
  for (char32_t c : cps_of(s)) {
    if (prev_cased) append_utf8(out, lower_cp(c));
    else append_upper(out, c);
    prev_cased = is_cased_letter(c);
  }
  return out;
}

std::string jinja_title(std::string_view s) {
  std::string out;
  bool word_start = true;
  for (char32_t c : cps_of(s)) {
    const bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_py_space(c);
    if (sep) {
      append_utf8(out, c);
      word_start = true;
    } else if (word_start) {
      append_upper(out, c);
      word_start = false;
    } else {
      append_utf8(out, lower_cp(c));
    }
  }
  return out;
}

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  auto cps = cps_of(s);
  std::vector<char32_t> set;
  if (chars) set = cps_of(*chars);
  auto strip_it = [&](char32_t c) {
    if (!chars) return is_py_space(c);
    for (char32_t x : set) {
      if (x == c) return true;
    }
    return false;
  };
  size_t b = 0;
  size_t e = cps.size();
  if (left) while (b < e && strip_it(cps[b])) ++b;
  if (right) while (e > b && strip_it(cps[e - 1])) --e;
  return encode_utf8(cps, b, e);
}

namespace {

std::vector<std::string> split_impl(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit,
                                    bool from_right) {
  std::vector<std::string> out;
  if (sep) {
    if (sep->empty()) throw RenderError("empty separator");
    if (!from_right) {
      size_t start = 0;
      while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
        const size_t p = s.find(*sep, start);
        if (p == std::string_view::npos) break;
        out.emplace_back(s.substr(start, p - start));
        start = p + sep->size();
      }
      out.emplace_back(s.substr(start));
      return out;
    }
    size_t end = s.size();
    std::vector<std::string> rev;
    while (maxsplit < 0 || static_cast<int64_t>(rev.size()) < maxsplit) {
      if (end < sep->size()) break;
      const size_t p = s.rfind(*sep, end - sep->size());
      if (p == std::string_view::npos) break;
      rev.emplace_back(s.substr(p + sep->size(), end - p - sep->size()));
      end = p;
    }
    rev.emplace_back(s.substr(0, end));
    return {rev.rbegin(), rev.rend()};
  }
  auto cps = cps_of(s);
  if (!from_right) {
    size_t i = 0;
    while (true) {
      while (i < cps.size() && is_py_space(cps[i])) ++i;
      if (i >= cps.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
        out.push_back(encode_utf8(cps, i, cps.size()));  // the remainder keeps its trailing space
        break;
      }
      size_t j = i;
      while (j < cps.size() && !is_py_space(cps[j])) ++j;
      out.push_back(encode_utf8(cps, i, j));
      i = j;
    }
    return out;
  }
  size_t i = cps.size();
  std::vector<std::string> rev;
  while (true) {
    while (i > 0 && is_py_space(cps[i - 1])) --i;
    if (i == 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(rev.size()) >= maxsplit) {
      rev.push_back(encode_utf8(cps, 0, i));  // the remainder keeps its leading space
      break;
    }
    size_t j = i;
    while (j > 0 && !is_py_space(cps[j - 1])) --j;
    rev.push_back(encode_utf8(cps, j, i));
    i = j;
  }
  return {rev.rbegin(), rev.rend()};
}

}  // namespace

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit,
                                  bool from_right) {
  // Splitting a large string into many small pieces is how a split multiplies memory: split at
  // most kMaxItems times, and a result with more pieces than that breaks the budget.
  constexpr auto kMaxSplit = static_cast<int64_t>(kMaxItems);
  auto out = split_impl(s, sep, maxsplit < 0 || maxsplit > kMaxSplit ? kMaxSplit : maxsplit, from_right);
  check_item_count(out.size(), "split result");
  return out;
}

std::vector<std::string> py_splitlines(std::string_view s) {
  auto cps = cps_of(s);
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    const char32_t c = cps[i];
    const bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D ||
                     c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!brk) continue;
    out.push_back(encode_utf8(cps, start, i));
    check_item_count(out.size(), "splitlines result");
    if (c == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < cps.size()) out.push_back(encode_utf8(cps, start, cps.size()));
  return out;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count) {
  std::string out;
  if (old.empty()) {
    // Python inserts the replacement before every character and at the end.
    auto cps = cps_of(s);
    int64_t n = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || n < count) {
        out += repl;
        ++n;
        check_string_size(out.size(), "replace result");
      }
      if (i < cps.size()) append_utf8(out, cps[i]);
    }
    return out;
  }
  size_t start = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    const size_t p = s.find(old, start);
    if (p == std::string_view::npos) break;
    out.append(s.substr(start, p - start));
    out.append(repl);
    check_string_size(out.size(), "replace result");
    start = p + old.size();
    ++n;
  }
  out.append(s.substr(start));
  return out;
}

int64_t py_count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<int64_t>(utf8_length(s)) + 1;
  int64_t n = 0;
  for (size_t p = s.find(sub); p != std::string_view::npos; p = s.find(sub, p + sub.size())) ++n;
  return n;
}

int64_t py_find(std::string_view s, std::string_view sub, bool from_right) {
  const size_t p = from_right ? s.rfind(sub) : s.find(sub);
  if (p == std::string_view::npos) return -1;
  return static_cast<int64_t>(utf8_length(s.substr(0, p)));
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
    if (out.size() > kMaxStringBytes) check_string_size(out.size(), "escape result");
  }
  return out;
}

int64_t word_count(std::string_view s) {
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : cps_of(s)) {
    const bool w = is_word_char(c);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return n;
}

namespace {

// Strips surrounding whitespace and validates Python's numeric underscore rule (single
// underscores between digits only); returns the text without underscores.
std::optional<std::string> clean_number(std::string_view s) {
  std::string t = py_strip(s, std::nullopt, true, true);
  std::string out;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '_') {
      if (i == 0 || i + 1 >= t.size() || !std::isxdigit(static_cast<unsigned char>(t[i - 1])) ||
          !std::isxdigit(static_cast<unsigned char>(t[i + 1])))
        return std::nullopt;
      continue;
    }
    out.push_back(t[i]);
  }
  if (out.empty()) return std::nullopt;
  return out;
}

}  // namespace

std::optional<int64_t> parse_py_int(std::string_view s) {
  auto t = clean_number(s);
  if (!t) return std::nullopt;
  size_t i = 0;
  if ((*t)[0] == '+' || (*t)[0] == '-') i = 1;
  if (i >= t->size()) return std::nullopt;
  for (size_t k = i; k < t->size(); ++k) {
    if (!std::isdigit(static_cast<unsigned char>((*t)[k]))) return std::nullopt;
  }
  errno = 0;
  const long long v = std::strtoll(t->c_str(), nullptr, 10);
  if (errno == ERANGE) throw RenderError("integer '" + *t + "' does not fit in 64 bits");
  return v;
}

std::optional<double> parse_py_float(std::string_view s) {
  auto t = clean_number(s);
  if (!t) return std::nullopt;
  std::string body = *t;
  size_t i = (body[0] == '+' || body[0] == '-') ? 1 : 0;
  const std::string rest = py_lower(body.substr(i));
  if (rest == "inf" || rest == "infinity" || rest == "nan") {
    const double v = rest == "nan" ? std::nan("") : INFINITY;
    return body[0] == '-' ? -v : v;
  }
  bool digits = false;
  bool dot = false;
  bool exp = false;
  for (size_t k = i; k < body.size(); ++k) {
    const char c = body[k];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits = true;
    } else if (c == '.' && !dot && !exp) {
      dot = true;
    } else if ((c == 'e' || c == 'E') && digits && !exp) {
      exp = true;
      digits = false;
      if (k + 1 < body.size() && (body[k + 1] == '+' || body[k + 1] == '-')) ++k;
    } else {
      return std::nullopt;
    }
  }
  if (!digits) return std::nullopt;
  return std::strtod(body.c_str(), nullptr);
}

}  // namespace insitu::jinja
