// Vocabulary loading and the load-time derivations of llama.cpp's llama_vocab::impl::load
// (llama-vocab.cpp, llama.cpp as vendored in llama-cpp-python 0.3.36), re-implemented.
#include "tokenizer/vocab.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "insitu/error.h"
#include "io/gguf.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"

namespace insitu::tok {

uint32_t attr_from_gguf_type(int32_t type) {
  switch (type) {
    case 1: return attr::kNormal;
    case 2: return attr::kUnknown;
    case 3: return attr::kControl;
    case 4: return attr::kUserDefined;
    case 5: return attr::kUnused;
    case 6: return attr::kByte;
    default: return 0;  // undefined
  }
}

int32_t gguf_type_from_attr(uint32_t a) {
  if (a & attr::kByte) return 6;
  if (a & attr::kControl) return 3;
  if (a & attr::kUserDefined) return 4;
  if (a & attr::kUnknown) return 2;
  if (a & attr::kUnused) return 5;
  if (a & attr::kNormal) return 1;
  return 0;
}

int32_t Vocab::find(std::string_view s) const {
  const auto it = token_to_id.find(s);
  return it == token_to_id.end() ? -1 : it->second;
}

int32_t Vocab::rank(const std::string& left, const std::string& right) const {
  std::string key;
  key.reserve(left.size() + right.size() + 1);
  key += left;
  key += ' ';
  key += right;
  const auto it = merge_rank.find(key);
  return it == merge_rank.end() ? -1 : it->second;
}

int32_t Vocab::rank(int32_t left_id, int32_t right_id) const {
  const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(left_id)) << 32) | static_cast<uint32_t>(right_id);
  const auto it = merge_rank_ids.find(key);
  return it == merge_rank_ids.end() ? -1 : it->second;
}

int32_t Vocab::byte_token(uint8_t b) const {
  if (type == VocabType::kSpm) {
    static const char* hex = "0123456789ABCDEF";
    const char buf[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
    const int32_t id = find(buf);
    if (id >= 0) return id;
    return find(std::string(1, static_cast<char>(b)));
  }
  return find(unicode::byte_to_unicode(b));
}

uint8_t Vocab::token_byte(int32_t id) const {
  const std::string& t = text[id];
  if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
      std::isxdigit(static_cast<unsigned char>(t[3])) && std::isxdigit(static_cast<unsigned char>(t[4]))) {
    return static_cast<uint8_t>(std::stoi(t.substr(3, 2), nullptr, 16));
  }
  // A byte-typed token in another spelling: its first byte is the best we can do.
  return t.empty() ? 0 : static_cast<uint8_t>(t[0]);
}

void Vocab::set_model_defaults(const std::string& model_name, const std::string& pre_name) {
  model = model_name;
  pre = pre_name;
  if (model_name == "llama") {
    type = VocabType::kSpm;
    bos = 1;
    eos = 2;
    unk = 0;
    add_space_prefix = true;
    escape_whitespaces = true;
    clean_spaces = false;
    add_bos = true;
    add_eos = false;
  } else if (model_name == "gpt2") {
    type = VocabType::kBpe;
    bos = 11;
    eos = 11;
    unk = -1;
    add_space_prefix = false;
    escape_whitespaces = false;
    const PreTypeTraits t = pre_type_traits(pre_name);
    if (!t.known) {
      PreTokenizer::for_type(pre_name, source);  // throws Unsupported listing the known types
    }
    clean_spaces = t.clean_spaces;
    ignore_merges = t.ignore_merges;
    add_bos = t.add_bos;
    escape_whitespaces = t.escape_whitespaces;
  } else {
    throw Unsupported("tokenizer: " + source + ": tokenizer model '" + model_name +
                      "' unsupported; supported: llama gpt2");
  }
}

void Vocab::finalize() {
  const int32_t n = n_tokens();
  if (n == 0) throw FormatError("tokenizer: " + source + ": vocabulary is empty");
  if (score.size() != text.size() || attrs.size() != text.size()) {
    throw FormatError("tokenizer: " + source + ": " + std::to_string(text.size()) + " tokens but " +
                      std::to_string(score.size()) + " scores and " + std::to_string(attrs.size()) +
                      " token types");
  }
  token_to_id.clear();
  token_to_id.reserve(text.size());
  for (int32_t i = 0; i < n; ++i) {
    if (text[i].empty()) text[i] = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp does
    if (!token_to_id.emplace(text[i], i).second) {
      // llama.cpp refuses such vocabularies too (one id per text is what encoding relies on).
      throw FormatError("tokenizer: " + source + ": token text '" + text[i] + "' appears twice (ids " +
                        std::to_string(token_to_id[text[i]]) + " and " + std::to_string(i) + ")");
    }
  }
  merge_rank.clear();
  merge_rank.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string& m = merges[i];
    if (m.find(' ', 1) == std::string::npos) {
      throw FormatError("tokenizer: " + source + ": merge " + std::to_string(i) + " ('" + m +
                        "') has no separating space");
    }
    merge_rank.emplace(m, static_cast<int32_t>(i));  // the first of duplicates wins
  }
  merge_rank_ids.clear();
  merge_rank_ids.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const size_t sp = merges[i].find(' ', 1);
    const auto l = token_to_id.find(merges[i].substr(0, sp));
    const auto r = token_to_id.find(merges[i].substr(sp + 1));
    if (l == token_to_id.end() || r == token_to_id.end()) continue;
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l->second)) << 32) |
                         static_cast<uint32_t>(r->second);
    merge_rank_ids.emplace(key, static_cast<int32_t>(i));
  }
  if (type == VocabType::kBpe && merges.empty()) {
    throw FormatError("tokenizer: " + source + ": BPE vocabulary has no merges");
  }
  for (int32_t* id : {&bos, &eos, &eot, &eom, &unk, &sep, &pad, &mask, &fim_pre, &fim_suf, &fim_mid,
                      &fim_pad, &fim_rep, &fim_sep}) {
    if (*id >= n || *id < -1) *id = -1;
  }
  if (add_bos && bos < 0) {
    throw FormatError("tokenizer: " + source + ": add_bos_token is set but there is no BOS token");
  }
  if (add_eos && eos < 0) {
    throw FormatError("tokenizer: " + source + ": add_eos_token is set but there is no EOS token");
  }

  // Special tokens recognised by their text, in id order; the first match fills an unset id and
  // is marked as a control token.
  struct Detect {
    int32_t* id;
    std::vector<const char*> texts;
  };
  const std::vector<Detect> detects = {
      {&eot, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
              "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
              "<end_of_utterance>"}},
      {&eom, {"<|eom_id|>"}},
      {&fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
                  "<PRE>", "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"}},
      {&fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>",
                  "<SUF>", "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"}},
      {&fim_mid, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
                  "<MID>", "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"}},
      {&fim_pad, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}},
      {&fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}},
      {&fim_sep, {"<|file_sep|>"}},
  };
  for (const auto& d : detects) {
    if (*d.id != -1) continue;
    for (int32_t i = 0; i < n && *d.id == -1; ++i) {
      for (const char* t : d.texts) {
        if (text[i] == t) {
          *d.id = i;
          attrs[i] |= attr::kControl;
          break;
        }
      }
    }
  }
  // Control tokens named "unused..." are unused.
  for (int32_t i = 0; i < n; ++i) {
    if ((attrs[i] & attr::kControl) && text[i].find("unused") != std::string::npos) {
      attrs[i] |= attr::kUnused;
    }
  }
  // End-of-generation set.
  static const char* const kEogTexts[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
      "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
      "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
      "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "[e~["};
  eog.clear();
  for (int32_t id : {fim_pad, fim_rep, fim_sep}) {
    if (id >= 0) eog.insert(id);
  }
  for (int32_t i = 0; i < n; ++i) {
    for (const char* t : kEogTexts) {
      if (text[i] == t) {
        eog.insert(i);
        attrs[i] |= attr::kControl;
        break;
      }
    }
  }
  for (int32_t id : {eos, eot, eom}) {
    if (id >= 0) eog.insert(id);
  }
  // Harmony / solar-open vocabularies: "<|end|>" ends a message, not the generation.
  {
    bool has_return = false, has_call = false, has_flush = false;
    int32_t end_id = -1;
    for (int32_t id : eog) {
      const std::string& t = text[id];
      if (t == "<|return|>") has_return = true;
      else if (t == "<|call|>" || t == "<|calls|>") has_call = true;
      else if (t == "<|flush|>") has_flush = true;
      else if (t == "<|end|>") end_id = id;
    }
    if (end_id >= 0 && ((has_return && has_call) || (has_call && has_flush))) {
      eog.erase(end_id);
      attrs[end_id] = attr::kUserDefined;
    }
  }
  // Vocabularies with their own end marker keep "</s>" as a normal token.
  {
    bool has_marker = false;
    int32_t s_id = -1;
    for (int32_t id : eog) {
      if (text[id] == "<|tool_response>" || text[id] == "<|plamo:eos|>") has_marker = true;
      else if (text[id] == "</s>") s_id = id;
    }
    if (has_marker && s_id >= 0) {
      eog.erase(s_id);
      attrs[s_id] = attr::kNormal;
    }
  }

  // Special tokens split out of raw text, longest first. std::sort (not stable) on ascending ids
  // gives the same order of equal-length tokens as upstream's identical call.
  special_tokens.clear();
  for (int32_t i = 0; i < n; ++i) {
    if (attrs[i] & (attr::kControl | attr::kUserDefined | attr::kUnknown)) special_tokens.push_back(i);
  }
  std::sort(special_tokens.begin(), special_tokens.end(),
            [&](int32_t a, int32_t b) { return text[a].size() > text[b].size(); });

  // Phi-3: special tokens swallow the whitespace after them, except these three.
  std::string name = general_name;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (int32_t id : special_tokens) attrs[id] |= attr::kRstrip;
    if (int32_t id = find("</s>"); id >= 0) attrs[id] |= attr::kRstrip;
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"}) {
      if (int32_t id = find(t); id >= 0) attrs[id] &= ~attr::kRstrip;
    }
  }
}

namespace {

const gguf::Array& require_array(const gguf::GgufFile& f, const char* key, gguf::ValueType elem) {
  const gguf::Array* a = f.get_array(key);
  if (!a) throw FormatError("tokenizer: " + f.path() + ": key '" + key + "' missing");
  if (a->elem_type != elem) {
    throw FormatError("tokenizer: " + f.path() + ": key '" + key + "' is an array of " +
                      gguf::value_type_name(a->elem_type) + ", expected " +
                      gguf::value_type_name(elem));
  }
  return *a;
}

}  // namespace

Vocab vocab_from_gguf(const gguf::GgufFile& f) {
  Vocab v;
  v.source = f.path().empty() ? std::string("<gguf>") : f.path();
  const std::string model = f.get_string("tokenizer.ggml.model");
  const std::string pre = f.get_string("tokenizer.ggml.pre", "");
  v.general_name = f.get_string("general.name", "");
  v.set_model_defaults(model, model == "gpt2" && pre.empty() ? "default" : pre);

  const gguf::Array& tokens = require_array(f, "tokenizer.ggml.tokens", gguf::ValueType::kString);
  const size_t n = tokens.items.size();
  if (n == 0 || n > (1u << 30)) {
    throw FormatError("tokenizer: " + v.source + ": tokenizer.ggml.tokens has " + std::to_string(n) +
                      " entries");
  }
  v.text.reserve(n);
  for (const auto& t : tokens.items) v.text.push_back(t.as_string("tokenizer.ggml.tokens"));

  v.score.assign(n, 0.0f);
  if (const gguf::Array* s = f.get_array("tokenizer.ggml.scores")) {
    if (s->elem_type != gguf::ValueType::kF32 && s->elem_type != gguf::ValueType::kI32) {
      throw FormatError("tokenizer: " + v.source + ": tokenizer.ggml.scores has element type " +
                        gguf::value_type_name(s->elem_type) + ", expected f32 or i32");
    }
    if (s->items.size() < n) {
      throw FormatError("tokenizer: " + v.source + ": tokenizer.ggml.scores has " +
                        std::to_string(s->items.size()) + " entries for " + std::to_string(n) + " tokens");
    }
    for (size_t i = 0; i < n; ++i) v.score[i] = static_cast<float>(s->items[i].as_f64("tokenizer.ggml.scores"));
  }
  v.attrs.assign(n, attr::kNormal);
  if (const gguf::Array* t = f.get_array("tokenizer.ggml.token_type")) {
    if (t->elem_type != gguf::ValueType::kI32) {
      throw FormatError("tokenizer: " + v.source + ": tokenizer.ggml.token_type has element type " +
                        gguf::value_type_name(t->elem_type) + ", expected i32");
    }
    if (t->items.size() < n) {
      throw FormatError("tokenizer: " + v.source + ": tokenizer.ggml.token_type has " +
                        std::to_string(t->items.size()) + " entries for " + std::to_string(n) + " tokens");
    }
    for (size_t i = 0; i < n; ++i) {
      v.attrs[i] = attr_from_gguf_type(static_cast<int32_t>(t->items[i].as_i64("tokenizer.ggml.token_type")));
    }
  }
  if (v.type == VocabType::kBpe) {
    const gguf::Array& m = require_array(f, "tokenizer.ggml.merges", gguf::ValueType::kString);
    v.merges.reserve(m.items.size());
    for (const auto& x : m.items) v.merges.push_back(x.as_string("tokenizer.ggml.merges"));
  }

  // Special ids: metadata overrides the type defaults when in range.
  const struct {
    const char* key;
    int32_t* id;
  } ids[] = {
      {"tokenizer.ggml.bos_token_id", &v.bos},       {"tokenizer.ggml.eos_token_id", &v.eos},
      {"tokenizer.ggml.eot_token_id", &v.eot},       {"tokenizer.ggml.eom_token_id", &v.eom},
      {"tokenizer.ggml.unknown_token_id", &v.unk},   {"tokenizer.ggml.seperator_token_id", &v.sep},
      {"tokenizer.ggml.padding_token_id", &v.pad},   {"tokenizer.ggml.mask_token_id", &v.mask},
      {"tokenizer.ggml.fim_pre_token_id", &v.fim_pre}, {"tokenizer.ggml.fim_suf_token_id", &v.fim_suf},
      {"tokenizer.ggml.fim_mid_token_id", &v.fim_mid}, {"tokenizer.ggml.fim_pad_token_id", &v.fim_pad},
      {"tokenizer.ggml.fim_rep_token_id", &v.fim_rep}, {"tokenizer.ggml.fim_sep_token_id", &v.fim_sep},
      {"tokenizer.ggml.prefix_token_id", &v.fim_pre}, {"tokenizer.ggml.suffix_token_id", &v.fim_suf},
      {"tokenizer.ggml.middle_token_id", &v.fim_mid},
  };
  for (const auto& [key, id] : ids) {
    if (*id >= static_cast<int64_t>(n)) *id = -1;
    if (!f.has(key)) continue;
    const uint64_t x = f.get_u64(key);
    if (x < n) *id = static_cast<int32_t>(x);
  }
  v.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", v.add_bos);
  v.add_eos = f.get_bool("tokenizer.ggml.add_eos_token", v.add_eos);
  v.add_sep = f.get_bool("tokenizer.ggml.add_sep_token", v.add_sep);
  v.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  v.chat_template = f.get_string("tokenizer.chat_template", "");
  v.finalize();
  return v;
}

}  // namespace insitu::tok
