// The rules follow jinja2 3.1's lexer.py (regex-based); this is a hand-written scanner with the
// same observable behaviour for the settings Hugging Face uses.
#include "tokenizer/jinja/lexer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "insitu/error.h"
#include "tokenizer/jinja/value.h"

namespace insitu::jinja {
namespace {

[[noreturn]] void fail(int line, const std::string& what) {
  throw FormatError("jinja: template line " + std::to_string(line) + ": " + what);
}

// Python's str.rstrip() / lstrip() whitespace, over UTF-8.
size_t rstrip_pos(std::string_view s) {
  auto cps = decode_utf8(s);
  size_t end = cps.size();
  while (end > 0 && is_py_space(cps[end - 1])) --end;
  return encode_utf8(cps, 0, end).size();
}

size_t lstrip_pos(std::string_view s, size_t from) {
  size_t i = from;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (!is_py_space(c)) break;
      ++i;
      continue;
    }
    // Multi-byte: decode one code point.
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (i + len > s.size()) break;
    auto cps = decode_utf8(s.substr(i, len));
    if (cps.size() != 1 || !is_py_space(cps[0])) break;
    i += len;
  }
  return i;
}

std::string decode_string_literal(std::string_view body, int line) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out.push_back(c);
      continue;
    }
    char e = body[++i];
    auto hex = [&](int n) -> char32_t {
      char32_t v = 0;
      for (int k = 1; k <= n; ++k) {
        if (i + k >= body.size() || !std::isxdigit(static_cast<unsigned char>(body[i + k])))
          fail(line, "truncated \\x/\\u escape in string literal");
        const char h = body[i + k];
        v = v * 16 + (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      i += n;
      return v;
    };
    switch (e) {
      case '\n': break;
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back('\v'); break;
      case 'x': append_utf8(out, hex(2)); break;
      case 'u': append_utf8(out, hex(4)); break;
      case 'U': {
        char32_t v = hex(8);
        if (v > 0x10FFFF) fail(line, "\\U escape out of range");
        append_utf8(out, v);
        break;
      }
      case 'N': fail(line, "unsupported \\N{...} escape in string literal");
      default:
        if (e >= '0' && e <= '7') {
          char32_t v = e - '0';
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k)
            v = v * 8 + (body[++i] - '0');
          append_utf8(out, v);
        } else {
          out.push_back('\\');
          out.push_back(e);
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(std::move(src)) {}

  std::vector<Segment> run() {
    std::vector<Segment> segs;
    bool strip_next = false;     // the previous tag ended with '-'
    bool line_starting = true;   // the previous tag's match ended with a newline (or at start)
    while (pos_ < src_.size() || strip_next) {
      size_t text_begin = pos_;
      if (strip_next) text_begin = lstrip_pos(src_, pos_);
      strip_next = false;
      const size_t tag = find_tag(text_begin);
      std::string text = src_.substr(text_begin, tag - text_begin);
      const int text_line = line_;
      count_lines(pos_, tag);
      pos_ = tag;
      if (tag >= src_.size()) {
        if (!text.empty()) segs.push_back(Segment{Segment::Kind::kText, std::move(text), {}, text_line});
        break;
      }
      const char type = src_[tag + 1];
      char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
      if (sign != '-' && sign != '+') sign = '\0';
      // jinja2 accepts {{+ as a (no-op) whitespace marker too: '+' never strips.
      if (sign == '-') {
        text.resize(rstrip_pos(text));
      } else if (sign != '+' && type != '{') {
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos > 0 || line_starting) {
          const size_t ws_end = lstrip_pos(text, l_pos);
          if (ws_end == text.size() && l_pos < text.size()) text.resize(l_pos);
        }
      }
      if (!text.empty()) segs.push_back(Segment{Segment::Kind::kText, std::move(text), {}, text_line});
      const int tag_line = line_;
      pos_ = tag + 2 + (sign != '\0' ? 1 : 0);
      if (type == '#') {
        // jinja2 quirk: a lone "{#" ending the template is dropped, not an error.
        if (pos_ >= src_.size()) break;
        const size_t end = src_.find("#}", pos_);
        if (end == std::string::npos) fail(tag_line, "unterminated comment");
        const bool dash = end > pos_ && src_[end - 1] == '-';
        const bool plus = end > pos_ && src_[end - 1] == '+';
        count_lines(pos_, end + 2);
        pos_ = end + 2;
        finish_tag(dash, plus, true, strip_next, line_starting);
        continue;
      }
      Segment seg{type == '{' ? Segment::Kind::kVariable : Segment::Kind::kBlock, {}, {}, tag_line};
      bool dash = false;
      bool plus = false;
      tokenize_tag(type == '{' ? '}' : '%', seg.tokens, dash, plus, tag_line);
      if (seg.kind == Segment::Kind::kBlock && seg.tokens.size() == 2 &&
          seg.tokens[0].type == Token::Type::kName && seg.tokens[0].text == "raw") {
        // {% raw %} does not trim the following newline in jinja2 (only '-' strips).
        if (dash) pos_ = lstrip_pos(src_, pos_);
        lex_raw(segs, tag_line, strip_next, line_starting);
        continue;
      }
      segs.push_back(std::move(seg));
      finish_tag(dash, plus, type == '%', strip_next, line_starting);
    }
    return segs;
  }

 private:
  size_t find_tag(size_t from) const {
    size_t i = from;
    while (true) {
      i = src_.find('{', i);
      if (i == std::string::npos || i + 1 >= src_.size()) return src_.size();
      const char n = src_[i + 1];
      if (n == '{' || n == '%' || n == '#') return i;
      ++i;
    }
  }

  void count_lines(size_t from, size_t to) {
    for (size_t i = from; i < to && i < src_.size(); ++i) line_ += src_[i] == '\n';
  }

  // After a tag's closing delimiter: '-' strips following whitespace; otherwise block and comment
  // tags drop one newline (trim_blocks) unless closed with '+'.
  void finish_tag(bool dash, bool plus, bool trims, bool& strip_next, bool& line_starting) {
    line_starting = false;
    if (dash) {
      strip_next = true;
      const size_t end = lstrip_pos(src_, pos_);
      line_starting = end > pos_ && src_[end - 1] == '\n';
      return;
    }
    if (trims && !plus && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
      ++line_;
      line_starting = true;
    }
  }

  void lex_raw(std::vector<Segment>& segs, int raw_line, bool& strip_next, bool& line_starting) {
    size_t search = pos_;
    while (true) {
      const size_t open = src_.find("{%", search);
      if (open == std::string::npos) fail(raw_line, "missing {% endraw %} for {% raw %}");
      size_t p = open + 2;
      char sign = p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p] : '\0';
      if (sign) ++p;
      while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
      if (src_.compare(p, 6, "endraw") != 0) { search = open + 2; continue; }
      p += 6;
      while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
      bool dash = false;
      bool plus = false;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) {
        dash = src_[p] == '-';
        plus = src_[p] == '+';
        ++p;
      }
      if (src_.compare(p, 2, "%}") != 0) { search = open + 2; continue; }
      std::string text = src_.substr(pos_, open - pos_);
      if (sign == '-') {
        text.resize(rstrip_pos(text));
      } else if (sign != '+') {
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos > 0 && lstrip_pos(text, l_pos) == text.size()) text.resize(l_pos);
      }
      if (!text.empty()) segs.push_back(Segment{Segment::Kind::kText, std::move(text), {}, line_});
      count_lines(pos_, p + 2);
      pos_ = p + 2;
      finish_tag(dash, plus, true, strip_next, line_starting);
      return;
    }
  }

  void tokenize_tag(char close, std::vector<Token>& out, bool& dash, bool& plus, int tag_line) {
    int depth = 0;  // bracket nesting: a '}' inside braces is not the end of a {{ }} tag
    while (true) {
      while (pos_ < src_.size() && (src_[pos_] == ' ' || src_[pos_] == '\t' || src_[pos_] == '\n' ||
                                    src_[pos_] == '\r' || src_[pos_] == '\f' || src_[pos_] == '\v')) {
        line_ += src_[pos_] == '\n';
        ++pos_;
      }
      if (pos_ >= src_.size()) {
        fail(tag_line, close == '}' ? "unexpected end of template, expected '}}'"
                                    : "unexpected end of template, expected '%}'");
      }
      auto at = [&](size_t p, const char* s) { return src_.compare(p, std::strlen(s), s) == 0; };
      const std::string end2 = std::string(1, close) + "}";
      if (depth == 0 || close == '%') {
        if (at(pos_, end2.c_str())) { pos_ += 2; break; }
        if (src_[pos_] == '-' && at(pos_ + 1, end2.c_str())) { dash = true; pos_ += 3; break; }
        if (close == '%' && src_[pos_] == '+' && at(pos_ + 1, end2.c_str())) { plus = true; pos_ += 3; break; }
      }
      Token tok;
      tok.line = line_;
      const char c = src_[pos_];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = pos_;
        while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
        tok.type = Token::Type::kName;
        tok.text = src_.substr(pos_, e - pos_);
        pos_ = e;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        lex_number(tok);
      } else if (c == '\'' || c == '"') {
        size_t e = pos_ + 1;
        while (e < src_.size() && src_[e] != c) {
          if (src_[e] == '\\') ++e;
          ++e;
        }
        if (e >= src_.size()) fail(line_, "unterminated string literal");
        tok.type = Token::Type::kString;
        tok.text = decode_string_literal(std::string_view(src_).substr(pos_ + 1, e - pos_ - 1), line_);
        count_lines(pos_, e);
        pos_ = e + 1;
      } else {
        static const char* kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%",
                                     "~", "<", ">", "=", "|", ".", ",", ":", "(", ")", "[",
                                     "]", "{", "}"};
        const char* found = nullptr;
        for (const char* op : kOps) {
          if (at(pos_, op)) { found = op; break; }
        }
        if (found == nullptr) fail(line_, std::string("unexpected character '") + c + "' in tag");
        tok.type = Token::Type::kOp;
        tok.text = found;
        pos_ += std::strlen(found);
        if (tok.text == "(" || tok.text == "[" || tok.text == "{") ++depth;
        if ((tok.text == ")" || tok.text == "]" || tok.text == "}") && depth > 0) --depth;
      }
      out.push_back(std::move(tok));
    }
    Token end;
    end.line = line_;
    out.push_back(end);
  }

  void lex_number(Token& tok) {
    size_t e = pos_;
    auto digits = [&](size_t p, int base) {
      auto ok = [&](char ch) {
        if (base == 16) return std::isxdigit(static_cast<unsigned char>(ch)) != 0;
        if (base == 8) return ch >= '0' && ch <= '7';
        if (base == 2) return ch == '0' || ch == '1';
        return std::isdigit(static_cast<unsigned char>(ch)) != 0;
      };
      while (p < src_.size() && (ok(src_[p]) || (src_[p] == '_' && p + 1 < src_.size() && ok(src_[p + 1])))) ++p;
      return p;
    };
    auto strip_us = [](std::string s) {
      s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
      return s;
    };
    if (src_[e] == '0' && e + 1 < src_.size() && std::strchr("xXoObB", src_[e + 1]) && src_[e + 1] != '\0') {
      const char k = static_cast<char>(std::tolower(src_[e + 1]));
      const int base = k == 'x' ? 16 : k == 'o' ? 8 : 2;
      const size_t d = digits(e + 2, base);
      if (d > e + 2) {
        tok.type = Token::Type::kInt;
        const std::string text = strip_us(src_.substr(e + 2, d - e - 2));
        errno = 0;
        tok.int_value = std::strtoll(text.c_str(), nullptr, base);
        if (errno == ERANGE) fail(line_, "integer literal 0" + std::string(1, k) + text + " does not fit in 64 bits");
        pos_ = d;
        return;
      }
    }
    e = digits(e, 10);
    bool is_float = false;
    if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
      e = digits(e + 1, 10);
      is_float = true;
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t p = e + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && std::isdigit(static_cast<unsigned char>(src_[p]))) {
        e = digits(p, 10);
        is_float = true;
      }
    }
    const std::string text = strip_us(src_.substr(pos_, e - pos_));
    if (is_float) {
      tok.type = Token::Type::kFloat;
      tok.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      tok.type = Token::Type::kInt;
      errno = 0;
      tok.int_value = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) fail(line_, "integer literal " + text + " does not fit in 64 bits");
    }
    pos_ = e;
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
};

std::string normalize_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

std::vector<Segment> lex_template(std::string_view source) {
  return Lexer(normalize_source(source)).run();
}

}  // namespace insitu::jinja
