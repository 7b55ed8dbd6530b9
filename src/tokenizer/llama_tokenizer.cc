// Encoding and decoding. The algorithms follow llama.cpp's llm_tokenizer_spm_session,
// llm_tokenizer_bpe_session, tokenizer_st_partition, token_to_piece and detokenize
// (src/llama-vocab.cpp, llama.cpp as vendored in llama-cpp-python 0.3.36); the code is our own.
#include "tokenizer/llama_tokenizer.h"

#include <queue>
#include <unordered_map>

#include "insitu/error.h"
#include "tokenizer/unicode.h"

namespace insitu::tok {
namespace {

const char* const kSpaceMarker = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

bool is_c_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// A text symbol in a doubly linked list over one word: [text, text + n).
struct Symbol {
  int prev;
  int next;
  const char* text;
  size_t n;
};

// Splits into UTF-8 characters by lead byte (malformed sequences are not re-validated; a truncated
// one at the end is clamped), the unit both merge algorithms start from.
std::vector<Symbol> split_symbols(const std::string& s) {
  std::vector<Symbol> syms;
  size_t off = 0;
  int index = 0;
  while (off < s.size()) {
    const size_t len = std::min(unicode::utf8_len_from_lead(static_cast<uint8_t>(s[off])), s.size() - off);
    syms.push_back({index - 1, off + len == s.size() ? -1 : index + 1, s.data() + off, len});
    off += len;
    ++index;
  }
  return syms;
}

// SentencePiece-style merging: repeatedly merge the adjacent pair whose concatenation is the
// highest-scoring token (ties: leftmost), then spell out what never became a token as bytes.
class SpmSession {
 public:
  SpmSession(const Vocab& v, const std::string& text) : v_(v), syms_(split_symbols(text)) {}

  void run(std::vector<int32_t>& out) {
    for (int i = 1; i < static_cast<int>(syms_.size()); ++i) try_pair(i - 1, i);
    while (!queue_.empty()) {
      const Pair p = queue_.top();
      queue_.pop();
      Symbol& l = syms_[p.left];
      Symbol& r = syms_[p.right];
      if (l.n == 0 || r.n == 0 || l.n + r.n != p.size) continue;  // stale
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) syms_[r.next].prev = p.left;
      try_pair(l.prev, p.left);
      try_pair(p.left, l.next);
    }
    if (syms_.empty()) return;
    for (int i = 0; i != -1; i = syms_[i].next) emit(syms_[i], out);
  }

 private:
  struct Pair {
    int left, right;
    float score;
    size_t size;
  };
  struct Lower {
    bool operator()(const Pair& a, const Pair& b) const {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
  };

  void try_pair(int left, int right) {
    if (left == -1 || right == -1) return;
    std::string s(syms_[left].text, syms_[left].n + syms_[right].n);
    const int32_t id = v_.find(s);
    if (id < 0) return;
    queue_.push({left, right, v_.score[id], s.size()});
    rev_merge_[std::move(s)] = {left, right};
  }

  void emit(const Symbol& sym, std::vector<int32_t>& out) {
    const std::string s(sym.text, sym.n);
    const int32_t id = v_.find(s);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
    const auto it = rev_merge_.find(s);
    if (it == rev_merge_.end()) {
      for (size_t j = 0; j < sym.n; ++j) {
        const int32_t b = v_.byte_token(static_cast<uint8_t>(sym.text[j]));
        if (b < 0) {
          throw FormatError("tokenizer: " + v_.source + ": no byte-fallback token for byte " +
                            std::to_string(static_cast<uint8_t>(sym.text[j])));
        }
        out.push_back(b);
      }
      return;
    }
    emit(syms_[it->second.first], out);
    emit(syms_[it->second.second], out);
  }

  const Vocab& v_;
  std::vector<Symbol> syms_;
  std::priority_queue<Pair, std::vector<Pair>, Lower> queue_;
  std::unordered_map<std::string, std::pair<int, int>> rev_merge_;
};

// Byte-level BPE on one pre-tokenized word: merge the adjacent pair with the lowest merge rank
// (ties: leftmost) until none applies. Symbols carry their token id (-1 when the text is not a
// token) so ranks are looked up by id pair; text that is no token falls back to the string key.
// A queued pair is stale exactly when its symbols' lengths changed: symbols only grow by
// absorbing their right neighbour, so equal lengths mean equal text.
void bpe_word(const Vocab& v, const std::string& word, std::vector<Symbol>& final_syms,
              std::vector<int32_t>& final_ids) {
  std::vector<Symbol> syms;
  std::vector<int32_t> ids;
  if (v.ignore_merges && v.find(word) >= 0) {
    syms.push_back({-1, -1, word.data(), word.size()});
  } else {
    syms = split_symbols(word);
  }
  ids.reserve(syms.size());
  for (const Symbol& s : syms) ids.push_back(v.find(std::string_view(s.text, s.n)));
  struct Pair {
    int left, right;
    int rank;
    size_t size;
  };
  struct Worse {
    bool operator()(const Pair& a, const Pair& b) const {
      return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
  };
  std::priority_queue<Pair, std::vector<Pair>, Worse> queue;
  auto try_pair = [&](int left, int right) {
    if (left == -1 || right == -1) return;
    const int rank = ids[left] >= 0 && ids[right] >= 0
                         ? v.rank(ids[left], ids[right])
                         : v.rank(std::string(syms[left].text, syms[left].n),
                                  std::string(syms[right].text, syms[right].n));
    if (rank < 0) return;
    queue.push({left, right, rank, syms[left].n + syms[right].n});
  };
  for (int i = 1; i < static_cast<int>(syms.size()); ++i) try_pair(i - 1, i);
  while (!queue.empty()) {
    const Pair p = queue.top();
    queue.pop();
    Symbol& l = syms[p.left];
    Symbol& r = syms[p.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != p.size) continue;  // stale
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = p.left;
    ids[p.left] = v.find(std::string_view(l.text, l.n));
    try_pair(l.prev, p.left);
    try_pair(p.left, l.next);
  }
  for (size_t i = 0; i < syms.size(); ++i) {
    if (syms[i].n > 0) {
      final_syms.push_back(syms[i]);
      final_ids.push_back(ids[i]);
    }
  }
}

}  // namespace

LlamaTokenizer::LlamaTokenizer(Vocab vocab, std::unique_ptr<PreTokenizer> pre)
    : vocab_(std::move(vocab)), pre_(std::move(pre)) {
  if (vocab_.type == VocabType::kBpe && !pre_) {
    throw InvalidArgument("tokenizer: " + vocab_.source + ": BPE vocabulary without a pre-tokenizer");
  }
}

std::vector<LlamaTokenizer::Fragment> LlamaTokenizer::partition(std::string_view text,
                                                                bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  for (const int32_t id : vocab_.special_tokens) {
    const uint32_t a = vocab_.attrs[id];
    // Control and unknown tokens only when asked; user-defined ones always (as HF tokenizers do).
    if (!parse_special && (a & (attr::kControl | attr::kUnknown))) continue;
    const std::string& tok = vocab_.text[id];
    std::vector<Fragment> next;
    next.reserve(frags.size());
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t b = f.offset;
      const size_t e = f.offset + f.length;
      while (true) {
        const size_t hit = text.substr(0, e).find(tok, b);
        if (hit == std::string_view::npos) {
          if (e > b) next.push_back({-1, b, e - b});
          break;
        }
        size_t left_len = hit - b;
        if (a & attr::kLstrip) {
          while (left_len > 0 && is_c_space(text[b + left_len - 1])) --left_len;
        }
        if (left_len > 0) next.push_back({-1, b, left_len});
        next.push_back({id, 0, 0});
        b = hit + tok.size();
        if (a & attr::kRstrip) {
          while (b < e && is_c_space(text[b])) ++b;
        }
        if (b >= e) break;
      }
    }
    frags.swap(next);
  }
  return frags;
}

void LlamaTokenizer::encode_spm(const std::string& text, std::vector<int32_t>& out) const {
  SpmSession(vocab_, replace_all(text, " ", kSpaceMarker)).run(out);
}

void LlamaTokenizer::encode_bpe(const std::string& raw, std::vector<int32_t>& out) const {
  const std::string text = vocab_.escape_whitespaces ? replace_all(raw, " ", kSpaceMarker) : raw;
  const std::vector<std::string> words = pre_->split(text);
  std::vector<Symbol> syms;
  std::vector<int32_t> ids;
  for (const std::string& w : words) {
    syms.clear();
    ids.clear();
    bpe_word(vocab_, w, syms, ids);
    for (size_t k = 0; k < syms.size(); ++k) {
      if (ids[k] >= 0) {
        out.push_back(ids[k]);
        continue;
      }
      const std::string str(syms[k].text, syms[k].n);
      // Unknown symbol: llama.cpp looks its bytes up one by one and drops those it cannot find.
      for (const char ch : str) {
        int32_t b;
        if (pre_->byte_encode()) {
          b = vocab_.find(std::string(1, ch));
        } else {
          static const char* hex = "0123456789ABCDEF";
          const uint8_t u = static_cast<uint8_t>(ch);
          const char buf[7] = {'<', '0', 'x', hex[u >> 4], hex[u & 15], '>', 0};
          b = vocab_.find(buf);
        }
        if (b >= 0) out.push_back(b);
      }
    }
  }
}

std::vector<int32_t> LlamaTokenizer::encode(std::string_view text, bool add_special,
                                            bool parse_special) const {
  std::vector<int32_t> out;
  const std::vector<Fragment> frags = partition(text, parse_special);
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);
  if (vocab_.type == VocabType::kSpm) {
    bool prev_special = true;  // the text start counts as "after a special token"
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      std::string s;
      if (vocab_.add_space_prefix && prev_special) s = " ";
      s.append(text.substr(f.offset, f.length));
      encode_spm(s, out);
      prev_special = false;
    }
  } else {
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        out.push_back(f.token);
      } else {
        encode_bpe(std::string(text.substr(f.offset, f.length)), out);
      }
    }
  }
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  return out;
}

void LlamaTokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_.n_tokens()) {
    throw InvalidArgument("tokenizer: token id " + std::to_string(id) + " out of range [0, " +
                          std::to_string(vocab_.n_tokens()) + ")");
  }
}

std::string LlamaTokenizer::token_to_piece(int32_t id, bool render_special) const {
  check_id(id);
  const uint32_t a = vocab_.attrs[id];
  const std::string& t = vocab_.text[id];
  if (!render_special && (a & (attr::kUnknown | attr::kControl))) return {};
  if (a & (attr::kUnknown | attr::kControl | attr::kUserDefined)) return t;
  if (a & attr::kNormal) {
    if (vocab_.type == VocabType::kSpm || vocab_.escape_whitespaces) {
      return replace_all(t, kSpaceMarker, " ");
    }
    // Byte-level BPE: every character stands for one byte.
    std::string out;
    size_t off = 0;
    while (off < t.size()) {
      const size_t start = off;
      const uint32_t cpt = unicode::decode_one(t, off);
      const int b = unicode::unicode_to_byte(cpt);
      if (b >= 0) {
        out.push_back(static_cast<char>(b));
      } else {
        // Not a byte-level character: llama.cpp writes a visible marker instead.
        static const char* hex = "0123456789abcdef";
        out += "[UNK_BYTE_0x";
        for (size_t i = start; i < off; ++i) {
          const uint8_t u = static_cast<uint8_t>(t[i]);
          out += hex[u >> 4];
          out += hex[u & 15];
        }
        out += t + "]";
      }
    }
    return out;
  }
  if (a & attr::kByte) return std::string(1, static_cast<char>(vocab_.token_byte(id)));
  return {};
}

std::string LlamaTokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string text;
  bool strip_space = vocab_.add_space_prefix;
  for (const int32_t id : ids) {
    std::string piece = token_to_piece(id, render_special);
    if (strip_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    strip_space = false;
    text += piece;
  }
  if (!vocab_.clean_spaces || text.empty()) return text;
  // Hugging Face's clean_up_tokenization_spaces, in llama.cpp's three in-place passes.
  std::string& s = text;
  size_t total = s.size();
  // 1: " ?" " !" " ." " ," lose the space.
  {
    const size_t n = total;
    total = 1;
    for (size_t i = 1; i < n; ++i) {
      const char x = s[i];
      if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
      s[total++] = x;
    }
  }
  // 2: " ' " becomes "'".
  {
    const size_t n = total;
    total = 1;
    for (size_t i = 1; i < n; ++i) {
      const char x = s[i];
      if (x == '\'' && i + 1 < n && s[i - 1] == ' ' && s[i + 1] == ' ') {
        --total;
        s[++i] = '\0';
      }
      s[total++] = x;
    }
  }
  // 3: " 's" " 'm" " 're" " 've" lose the space.
  {
    const size_t n = total;
    total = 1;
    for (size_t i = 1; i < n; ++i) {
      const char x = s[i];
      if (s[i - 1] == ' ' && x == '\'' && i + 1 < n) {
        const char x1 = s[i + 1];
        if (x1 == 's' || x1 == 'm') {
          --total;
        } else if (i + 2 < n) {
          const char x2 = s[i + 2];
          if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
        }
      }
      s[total++] = x;
    }
  }
  s.resize(total);
  return text;
}

std::string LlamaTokenizer::token_text(int32_t id) const {
  check_id(id);
  return vocab_.text[id];
}

TokenAttr LlamaTokenizer::token_attr(int32_t id) const {
  check_id(id);
  const uint32_t a = vocab_.attrs[id];
  if (a & attr::kByte) return TokenAttr::kByte;
  if (a & attr::kUnused) return TokenAttr::kUnused;
  if (a & attr::kControl) return TokenAttr::kControl;
  if (a & attr::kUserDefined) return TokenAttr::kUserDefined;
  if (a & attr::kUnknown) return TokenAttr::kUnknown;
  return TokenAttr::kNormal;
}

}  // namespace insitu::tok
