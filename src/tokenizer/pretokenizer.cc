// Pre-tokenizer splitting. The hand-written splitters reproduce the behaviour of llama.cpp's
// unicode_regex_split_custom_{gpt2,llama3,qwen2,qwen35} and the collapsed-category regex fallback
// (src/unicode.cpp, llama.cpp as vendored in llama-cpp-python 0.3.36); the code is our own.
#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <map>

#include "insitu/error.h"
#include "tokenizer/unicode.h"

namespace insitu::tok {
namespace {

using unicode::Flags;

// Patterns as they appear in tokenizer.json files and llama.cpp's per-type tables.
const char* const kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const char* const kGpt2RegexHf =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char* const kLlama3Regex =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kLlama3RegexHf =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen2Regex =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen2RegexHf =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen35Regex =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
    "[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kTekkenRegex =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?"
    "((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct PreTypeEntry {
  std::vector<const char*> names;
  std::vector<const char*> regexes;
  PreTypeTraits traits;
};

const std::vector<PreTypeEntry>& pre_type_table() {
  static const std::vector<PreTypeEntry> table = {
      {{"default"},
       {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2Regex, "\\p{N}+", "[0-9][0-9][0-9]"},
       {true, true, false, false, false}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
       {kLlama3Regex},
       {true, true, true, true, false}},
      {{"dbrx", "smaug-bpe"}, {kLlama3Regex}, {true, true, false, false, false}},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
        "mellum", "mpt", "olmo", "jais"},
       {kGpt2Regex},
       {true, true, false, false, false}},
      {{"starcoder", "refact", "codeshell", "exaone", "minerva", "mellum2"},
       {"\\p{N}", kGpt2Regex},
       {true, true, false, false, false}},
      {{"smollm", "command-r"}, {"\\p{N}", kGpt2Regex}, {true, false, false, false, false}},
      {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open"},
       {kQwen2Regex},
       {true, false, false, false, false}},
      {{"stablelm2"}, {kQwen2Regex}, {true, true, false, false, false}},
      {{"qwen35"}, {kQwen35Regex}, {true, false, false, false, false}},
      {{"tekken"}, {kTekkenRegex}, {true, false, true, true, false}},
      {{"falcon"},
       {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2Regex, "[0-9][0-9][0-9]"},
       {true, true, false, false, false}},
  };
  return table;
}

const PreTypeEntry* find_pre_type(const std::string& pre) {
  const std::string name = pre.empty() ? "default" : pre;
  for (const auto& e : pre_type_table()) {
    for (const char* n : e.names) {
      if (name == n) return &e;
    }
  }
  return nullptr;
}

// One piece of the text as a code point range [begin, end).
struct Span {
  size_t begin;
  size_t end;
};

using SpanList = std::vector<Span>;

// Accessors that read "nothing" outside the current span, like the upstream splitters: the
// span's neighbours are never visible.
struct Cursor {
  const std::vector<uint32_t>& cpts;
  size_t lo, hi;
  static constexpr uint32_t kOut = 0xFFFFFFFF;
  uint32_t cpt(size_t i) const { return i >= lo && i < hi ? cpts[i] : kOut; }
  Flags flags(size_t i) const { return i >= lo && i < hi ? unicode::flags_of(cpts[i]) : Flags{}; }
};

// Emits the piece [*prev, end) when non-empty.
struct Emitter {
  SpanList& out;
  size_t prev;
  size_t emit(size_t end) {
    const size_t len = end - prev;
    if (len > 0) out.push_back({prev, end});
    prev = end;
    return len;
  }
};

// 's 't 're 've 'm 'll 'd at pos; returns the match length or 0. case_fold: ASCII-insensitive.
size_t match_contraction(const Cursor& c, size_t pos, bool case_fold) {
  if (c.cpt(pos) != '\'' || pos + 1 >= c.hi) return 0;
  auto low = [&](uint32_t x) { return case_fold && x >= 'A' && x <= 'Z' ? x + 32 : x; };
  const uint32_t a = low(c.cpt(pos + 1));
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (pos + 2 >= c.hi) return 0;
  const uint32_t b = low(c.cpt(pos + 2));
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
void split_gpt2(const std::vector<uint32_t>& cpts, const Span& s, SpanList& out) {
  const Cursor c{cpts, s.begin, s.end};
  Emitter e{out, s.begin};
  for (size_t pos = s.begin; pos < s.end;) {
    const uint32_t cpt = c.cpt(pos);
    if (const size_t n = match_contraction(c, pos, false)) {
      pos += e.emit(pos + n);
      continue;
    }
    Flags f = cpt == ' ' ? c.flags(pos + 1) : c.flags(pos);
    const auto other = [](Flags x) { return !(x.is_whitespace() || x.is_letter() || x.is_number()) && x.any(); };
    if (f.is_letter() || f.is_number() || other(f)) {
      const bool letter = f.is_letter(), number = f.is_number();
      pos += (cpt == ' ');
      while (letter ? f.is_letter() : number ? f.is_number() : other(f)) f = c.flags(++pos);
      e.emit(pos);
      continue;
    }
    size_t nws = 0;
    while (c.flags(pos + nws).is_whitespace()) ++nws;
    if (nws > 1 && c.cpt(pos + nws) != Cursor::kOut) {  // \s+(?!\S): leave one for the next word
      pos += nws - 1;
      e.emit(pos);
      continue;
    }
    if (nws > 0) {
      pos += nws;
      e.emit(pos);
      continue;
    }
    e.emit(++pos);
  }
}

// Llama 3 / Qwen 2 / Qwen 3.5 family:
// (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
// \s+(?!\S)|\s+        (with_marks: letters runs also take \p{M}, and symbols exclude it)
void split_llama3_like(const std::vector<uint32_t>& cpts, const Span& s, SpanList& out,
                       size_t max_digits, bool with_marks) {
  const Cursor c{cpts, s.begin, s.end};
  Emitter e{out, s.begin};
  const auto wordish = [&](Flags f) { return f.is_letter() || (with_marks && f.is_mark()); };
  for (size_t pos = s.begin; pos < s.end;) {
    const uint32_t cpt = c.cpt(pos);
    const Flags f = c.flags(pos);
    if (const size_t n = match_contraction(c, pos, true)) {
      pos += e.emit(pos + n);
      continue;
    }
    if (!(cpt == '\r' || cpt == '\n' || f.is_number())) {
      if (wordish(f) || wordish(c.flags(pos + 1))) {
        ++pos;
        while (wordish(c.flags(pos))) ++pos;
        e.emit(pos);
        continue;
      }
    }
    if (f.is_number()) {
      size_t run = 0;
      while (c.flags(pos).is_number()) {
        ++pos;
        if (++run == max_digits) {
          e.emit(pos);
          run = 0;
        }
      }
      e.emit(pos);
      continue;
    }
    Flags f2 = cpt == ' ' ? c.flags(pos + 1) : f;
    const auto symbol = [&](Flags x) {
      return !(x.is_whitespace() || wordish(x) || x.is_number());
    };
    if (symbol(f2) && f.any()) {
      pos += (cpt == ' ');
      while (symbol(f2) && f2.any()) f2 = c.flags(++pos);
      uint32_t c2 = c.cpt(pos);
      while (c2 == '\r' || c2 == '\n') c2 = c.cpt(++pos);
      e.emit(pos);
      continue;
    }
    size_t nws = 0, last_newline_end = 0;
    while (c.flags(pos + nws).is_whitespace()) {
      const uint32_t c2 = c.cpt(pos + nws);
      if (c2 == '\r' || c2 == '\n') last_newline_end = pos + nws + 1;
      ++nws;
    }
    if (last_newline_end > 0) {  // \s*[\r\n]+
      pos = last_newline_end;
      e.emit(pos);
      continue;
    }
    if (nws > 1 && c.cpt(pos + nws) != Cursor::kOut) {
      pos += nws - 1;
      e.emit(pos);
      continue;
    }
    if (nws > 0) {
      pos += nws;
      e.emit(pos);
      continue;
    }
    e.emit(++pos);
  }
}

// \p{N}: every number code point becomes its own piece.
void split_digits(const std::vector<uint32_t>& cpts, const Span& s, SpanList& out) {
  size_t start = s.begin;
  for (size_t i = s.begin; i < s.end; ++i) {
    if (unicode::flags_of(cpts[i]).is_number()) {
      if (i > start) out.push_back({start, i});
      out.push_back({i, i + 1});
      start = i + 1;
    }
  }
  if (s.end > start) out.push_back({start, s.end});
}

// [^\n]+|[\n]+
void split_newlines(const std::vector<uint32_t>& cpts, const Span& s, SpanList& out) {
  size_t pos = s.begin;
  while (pos < s.end) {
    const bool nl = cpts[pos] == '\n';
    const size_t start = pos;
    while (pos < s.end && (cpts[pos] == '\n') == nl) ++pos;
    out.push_back({start, pos});
  }
}

// Category placeholders of the collapsed representation (values as in llama.cpp so that
// patterns behave identically).
struct Category {
  const char* name;
  uint16_t flag;
  char byte;
  const char* ascii;  // the ASCII members, as a character-class body
};
const Category kCategories[] = {
    {"\\p{N}", unicode::kNumber, '\xD1', "0-9"},
    {"\\p{L}", unicode::kLetter, '\xD2', "A-Za-z"},
    {"\\p{P}", unicode::kPunctuation, '\xD3', "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
    {"\\p{M}", unicode::kMark, '\xD4', ""},
    {"\\p{S}", unicode::kSymbol, '\xD5', "\\$\\+<->\\^`\\|~"},
    {"\\p{Lu}", unicode::kLetter, '\xD2', "A-Za-z"},
    {"\\p{Ll}", unicode::kLetter, '\xD2', "A-Za-z"},
    {"\\p{Lt}", unicode::kLetter, '\xD2', "A-Za-z"},
    {"\\p{Lm}", unicode::kLetter, '\xD2', "A-Za-z"},
    {"\\p{Lo}", unicode::kLetter, '\xD2', "A-Za-z"},
};

bool uses_categories(const std::string& re) {
  for (const auto& c : kCategories) {
    if (re.find(c.name) != std::string::npos) return true;
  }
  return false;
}

// Rewrites \p{X} into a class over the placeholder byte and X's ASCII members.
std::string collapse_regex(const std::string& re, const std::string& source) {
  std::string out;
  bool inside = false;
  for (size_t i = 0; i < re.size(); ++i) {
    if (static_cast<uint8_t>(re[i]) >= 0x80) {
      throw Unsupported("tokenizer: " + source + ": pre-tokenizer regex '" + re +
                        "' mixes Unicode categories and non-ASCII characters");
    }
    if (re[i] == '[' && (i == 0 || re[i - 1] != '\\')) {
      out += '[';
      inside = true;
      continue;
    }
    if (inside && re[i] == ']' && re[i - 1] != '\\') {
      out += ']';
      inside = false;
      continue;
    }
    if (re.compare(i, 3, "\\p{") == 0) {
      const size_t close = re.find('}', i + 3);
      bool done = false;
      if (close != std::string::npos) {
        const std::string name = re.substr(i, close - i + 1);
        for (const auto& c : kCategories) {
          if (name == c.name) {
            out += inside ? "" : "[";
            out += c.byte;
            out += c.ascii;
            out += inside ? "" : "]";
            i = close;
            done = true;
            break;
          }
        }
      }
      if (done) continue;
    }
    out += re[i];
  }
  return out;
}

}  // namespace

struct PreTokenizer::Step {
  enum class Kind { kGpt2, kLlama3, kQwen2, kQwen35, kDigits, kNewlines, kRegex } kind;
  // kRegex only.
  bool collapsed = false;
  pcre2_code* code = nullptr;

  ~Step() {
    if (code) pcre2_code_free(code);
  }

  void run(const std::vector<uint32_t>& cpts, const std::string& collapsed_text,
           const SpanList& in, SpanList& out) const {
    for (const Span& s : in) {
      switch (kind) {
        case Kind::kGpt2: split_gpt2(cpts, s, out); break;
        case Kind::kLlama3: split_llama3_like(cpts, s, out, 3, false); break;
        case Kind::kQwen2: split_llama3_like(cpts, s, out, 1, false); break;
        case Kind::kQwen35: split_llama3_like(cpts, s, out, 1, true); break;
        case Kind::kDigits: split_digits(cpts, s, out); break;
        case Kind::kNewlines: split_newlines(cpts, s, out); break;
        case Kind::kRegex: run_regex(cpts, collapsed_text, s, out); break;
      }
    }
  }

  // Matches within one span (the span's surroundings are invisible to anchors and lookarounds);
  // text between matches becomes pieces of its own.
  void run_regex(const std::vector<uint32_t>& cpts, const std::string& collapsed_text,
                 const Span& s, SpanList& out) const {
    // Subject: one byte per code point (collapsed), or UTF-8 with a byte->code point index map.
    std::string subject;
    std::vector<size_t> cpt_at_byte;
    if (collapsed) {
      subject = collapsed_text.substr(s.begin, s.end - s.begin);
    } else {
      for (size_t i = s.begin; i < s.end; ++i) {
        uint32_t cp = cpts[i];
        // Upstream matches with std::wregex, whose \s knows only ASCII: other whitespace reads
        // as a vertical tab.
        if (cp > 0x7F && unicode::flags_of(cp).is_whitespace()) cp = 0x0B;
        unicode::append_utf8(subject, cp);
        cpt_at_byte.resize(subject.size(), i - s.begin);
      }
      cpt_at_byte.push_back(s.end - s.begin);
    }
    auto to_cpt = [&](size_t byte) { return collapsed ? byte : cpt_at_byte[byte]; };
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    const auto* subj = reinterpret_cast<PCRE2_SPTR>(subject.data());
    size_t start = 0, last_end = 0;
    uint32_t opts = 0;
    while (start <= subject.size()) {
      const int rc = pcre2_match(code, subj, subject.size(), start, opts | PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) {
        if (opts != 0 && start < subject.size()) {  // empty match retry failed: advance one char
          opts = 0;
          start += collapsed ? 1 : unicode::utf8_len_from_lead(static_cast<uint8_t>(subject[start]));
          continue;
        }
        break;
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t mb = ov[0], me = ov[1];
      if (mb > last_end) out.push_back({s.begin + to_cpt(last_end), s.begin + to_cpt(mb)});
      if (me > mb) out.push_back({s.begin + to_cpt(mb), s.begin + to_cpt(me)});
      last_end = me;
      start = me;
      opts = me == mb ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
    }
    pcre2_match_data_free(md);
    if (subject.size() > last_end) out.push_back({s.begin + to_cpt(last_end), s.end});
  }
};

PreTokenizer::~PreTokenizer() = default;

PreTypeTraits pre_type_traits(const std::string& pre) {
  const PreTypeEntry* e = find_pre_type(pre);
  return e ? e->traits : PreTypeTraits{};
}

std::string pre_type_for(const std::vector<std::string>& regexes, bool clean_spaces,
                         bool ignore_merges) {
  auto canonical = [](const std::string& re) -> std::string {
    if (re == kGpt2RegexHf) return kGpt2Regex;
    if (re == kLlama3RegexHf) return kLlama3Regex;
    if (re == kQwen2RegexHf) return kQwen2Regex;
    return re;
  };
  for (const PreTypeEntry& e : pre_type_table()) {
    if (e.traits.clean_spaces != clean_spaces || e.traits.ignore_merges != ignore_merges) continue;
    if (e.regexes.size() != regexes.size()) continue;
    bool same = true;
    for (size_t i = 0; same && i < regexes.size(); ++i)
      same = canonical(regexes[i]) == e.regexes[i];
    if (same) return e.names.front();
  }
  return {};
}

std::unique_ptr<PreTokenizer> PreTokenizer::for_type(const std::string& pre,
                                                     const std::string& source) {
  const PreTypeEntry* e = find_pre_type(pre);
  if (!e) {
    std::string known;
    for (const auto& t : pre_type_table()) {
      for (const char* n : t.names) known += std::string(known.empty() ? "" : " ") + n;
    }
    throw Unsupported("tokenizer: " + source + ": pre-tokenizer type '" + pre +
                      "' unsupported; supported: " + known);
  }
  std::vector<std::string> regexes(e->regexes.begin(), e->regexes.end());
  return from_regexes(regexes, true, source);
}

std::unique_ptr<PreTokenizer> PreTokenizer::from_regexes(const std::vector<std::string>& regexes,
                                                         bool byte_encode,
                                                         const std::string& source) {
  std::unique_ptr<PreTokenizer> p(new PreTokenizer());
  p->byte_encode_ = byte_encode;
  for (const auto& re : regexes) p->add_regex(re, source);
  return p;
}

void PreTokenizer::add_regex(const std::string& re, const std::string& source) {
  auto step = std::make_unique<Step>();
  using K = Step::Kind;
  if (re == kGpt2Regex || re == kGpt2RegexHf) {
    step->kind = K::kGpt2;
  } else if (re == kLlama3Regex || re == kLlama3RegexHf) {
    step->kind = K::kLlama3;
  } else if (re == kQwen2Regex || re == kQwen2RegexHf) {
    step->kind = K::kQwen2;
  } else if (re == kQwen35Regex) {
    step->kind = K::kQwen35;
  } else if (re == "\\p{N}") {
    step->kind = K::kDigits;
  } else if (re == "[^\\n]+|[\\n]+") {
    step->kind = K::kNewlines;
  } else {
    step->kind = K::kRegex;
    step->collapsed = uses_categories(re);
    const std::string pattern = step->collapsed ? collapse_regex(re, source) : re;
    int err = 0;
    PCRE2_SIZE err_off = 0;
    const uint32_t opts = PCRE2_DOLLAR_ENDONLY | (step->collapsed ? 0 : PCRE2_UTF);
    step->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), opts,
                               &err, &err_off, nullptr);
    if (!step->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw FormatError("tokenizer: " + source + ": pre-tokenizer regex '" + re +
                        "' does not compile at offset " + std::to_string(err_off) + ": " +
                        reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(step->code, PCRE2_JIT_COMPLETE);  // best effort; the interpreter also works
  }
  regexes_.push_back(re);
  steps_.push_back(std::move(step));
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  const std::vector<uint32_t> cpts = unicode::decode(text);
  std::string collapsed;
  bool need_collapsed = false;
  for (const auto& s : steps_) need_collapsed |= s->collapsed;
  if (need_collapsed) {
    collapsed.resize(cpts.size());
    for (size_t i = 0; i < cpts.size(); ++i) {
      if (cpts[i] < 0x80) {
        collapsed[i] = static_cast<char>(cpts[i]);
        continue;
      }
      const Flags f = unicode::flags_of(cpts[i]);
      char b = '\xD0';
      if (f.is_whitespace()) {
        b = '\x0B';
      } else {
        for (const auto& c : kCategories) {
          if (f.category() == c.flag) {
            b = c.byte;
            break;
          }
        }
      }
      collapsed[i] = b;
    }
  }
  SpanList spans{{0, cpts.size()}};
  if (cpts.empty()) spans.clear();
  for (const auto& step : steps_) {
    SpanList next;
    next.reserve(spans.size() * 2);
    step->run(cpts, collapsed, spans, next);
    spans.swap(next);
  }
  std::vector<std::string> words;
  words.reserve(spans.size());
  for (const Span& s : spans) {
    std::string w = unicode::encode(cpts, s.begin, s.end);
    if (byte_encode_) {
      std::string enc;
      enc.reserve(w.size() * 2);
      for (unsigned char ch : w) enc += unicode::byte_to_unicode(ch);
      w.swap(enc);
    }
    words.push_back(std::move(w));
  }
  return words;
}

}  // namespace insitu::tok
