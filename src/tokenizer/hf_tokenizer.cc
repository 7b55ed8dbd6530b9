// Tokenizer::from_hf_dir: a Hugging Face tokenizer.json (+ tokenizer_config.json) mapped onto the
// same vocabulary model the GGUF path uses, so both give llama.cpp's ids for the same vocabulary.
//
// Supported: model.type "BPE" (vocab, merges as "a b" strings or [a, b] pairs, byte_fallback,
// ignore_merges, unk_token) with either
//   * a byte-level pre-tokenizer (ByteLevel, optionally after Split regexes and Digits), or
//   * SentencePiece-style whitespace handling (Replace " " -> U+2581 normalizer, Prepend, or a
//     Metaspace pre-tokenizer): encoded with SentencePiece merging, token priority = merge rank.
// Normalizers other than those (e.g. Qwen's NFC) are ignored, as llama.cpp ignores them.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "insitu/error.h"
#include "io/mapped_file.h"
#include "tokenizer/llama_tokenizer.h"
#include "tokenizer/pretokenizer.h"
#include "insitu/tokenizer.h"
#include "tokenizer/unicode.h"

namespace insitu {
namespace {

using json = nlohmann::json;
const char* const kSpaceMarker = "\xE2\x96\x81";
// Real tokenizers nest Sequence pre-tokenizers, normalizers and post-processors two or three
// deep; a hostile file nesting thousands deep must not cost a stack frame (and copies) each.
constexpr int kMaxNesting = 16;

[[noreturn]] void too_deep(const std::string& src, const char* what) {
  throw FormatError("tokenizer: " + src + ": " + what + " nested deeper than " +
                    std::to_string(kMaxNesting) + " levels");
}

// The array at j[key], or null when absent; no copy, unlike json::value().
const json* array_field(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_array() ? &*it : nullptr;
}

json read_json(const std::string& path) {
  const std::string text = read_regular_file(path, size_t{1} << 30, "tokenizer file");
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw FormatError("tokenizer: " + path + ": invalid JSON: " + e.what());
  }
}

std::string str_field(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A token named in tokenizer_config.json: a string or an AddedToken object {"content": ...}.
std::string config_token(const json& cfg, const char* key) {
  const auto it = cfg.find(key);
  if (it == cfg.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) return str_field(*it, "content");
  return {};
}

std::string regex_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

struct PreInfo {
  std::vector<std::string> regexes;
  bool byte_level = false;
  bool metaspace = false;
  bool metaspace_prefix = false;
};

void walk_pre(const json& p, PreInfo& info, const std::string& src, int depth = 0) {
  if (p.is_null()) return;
  if (depth > kMaxNesting) too_deep(src, "pre_tokenizer");
  const std::string type = str_field(p, "type");
  if (type == "Sequence") {
    if (const json* seq = array_field(p, "pretokenizers")) {
      for (const json& q : *seq) walk_pre(q, info, src, depth + 1);
    }
  } else if (type == "ByteLevel") {
    info.byte_level = true;
    if (p.value("use_regex", true)) {
      info.regexes.push_back(
          "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");
    }
  } else if (type == "Split") {
    const json& pat = p.value("pattern", json::object());
    if (pat.contains("Regex")) {
      info.regexes.push_back(pat["Regex"].get<std::string>());
    } else if (pat.contains("String")) {
      info.regexes.push_back(regex_escape(pat["String"].get<std::string>()));
    }
    const std::string behavior = str_field(p, "behavior");
    if (behavior != "Isolated" || p.value("invert", false)) {
      throw Unsupported("tokenizer: " + src + ": Split pre-tokenizer with behavior '" + behavior +
                        "'" + (p.value("invert", false) ? " (inverted)" : "") + " unsupported; supported: Isolated");
    }
  } else if (type == "Digits") {
    info.regexes.push_back(p.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+");
  } else if (type == "Metaspace") {
    info.metaspace = true;
    const std::string scheme = str_field(p, "prepend_scheme");
    info.metaspace_prefix = scheme.empty() ? p.value("add_prefix_space", true) : scheme != "never";
  } else {
    throw Unsupported("tokenizer: " + src + ": pre-tokenizer '" + type +
                      "' unsupported; supported: ByteLevel Split Digits Metaspace Sequence");
  }
}

// SentencePiece-style normalizer: Replace " " -> U+2581 (and Prepend U+2581).
void walk_normalizer(const json& n, bool& replaces_space, bool& prepends, const std::string& src,
                     int depth = 0) {
  if (n.is_null()) return;
  if (depth > kMaxNesting) too_deep(src, "normalizer");
  const std::string type = str_field(n, "type");
  if (type == "Sequence") {
    if (const json* seq = array_field(n, "normalizers")) {
      for (const json& m : *seq) walk_normalizer(m, replaces_space, prepends, src, depth + 1);
    }
  } else if (type == "Replace") {
    const json& pat = n.value("pattern", json::object());
    if (pat.value("String", "") == " " && str_field(n, "content") == kSpaceMarker) replaces_space = true;
  } else if (type == "Prepend") {
    if (str_field(n, "prepend") == kSpaceMarker) prepends = true;
  }
}

// The first special token of a TemplateProcessing "single" template, when it starts with one.
std::string template_bos(const json& pp, const std::string& src, int depth = 0) {
  if (pp.is_null()) return {};
  if (depth > kMaxNesting) too_deep(src, "post_processor");
  if (str_field(pp, "type") == "Sequence") {
    if (const json* seq = array_field(pp, "processors")) {
      for (const json& q : *seq) {
        const std::string b = template_bos(q, src, depth + 1);
        if (!b.empty()) return b;
      }
    }
    return {};
  }
  if (str_field(pp, "type") != "TemplateProcessing") return {};
  const json& single = pp.value("single", json::array());
  if (!single.empty() && single[0].contains("SpecialToken")) return str_field(single[0]["SpecialToken"], "id");
  return {};
}

std::unique_ptr<Tokenizer> load_hf_dir(const std::string& dir, const std::string& path) {
  const json tj = read_json(path);
  json cfg = json::object();
  const std::string cfg_path = dir + "/tokenizer_config.json";
  if (std::filesystem::exists(cfg_path)) cfg = read_json(cfg_path);
  if (!cfg.is_object()) throw FormatError("tokenizer: " + cfg_path + ": not a JSON object");

  if (!tj.contains("model") || !tj["model"].is_object()) {
    throw FormatError("tokenizer: " + path + ": no 'model' object");
  }
  const json& model = tj["model"];
  const std::string mtype = str_field(model, "type");
  if (mtype != "BPE") {
    throw Unsupported("tokenizer: " + path + ": model type '" + mtype + "' unsupported; supported: BPE");
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    throw FormatError("tokenizer: " + path + ": model.vocab missing or not an object");
  }

  // Tokens by id: the model vocabulary plus added tokens. Every id below the largest must be
  // given, so an id at or past the number of entries is an error, found before allocating.
  const json* added_ptr = array_field(tj, "added_tokens");
  const json added = added_ptr != nullptr ? *added_ptr : json::array();
  const size_t n_entries = model["vocab"].size() + added.size();
  std::vector<std::string> text;
  std::vector<bool> present;
  auto place = [&](const std::string& t, const json& idj) {
    if (!idj.is_number_integer() || idj.get<int64_t>() < 0 ||
        static_cast<uint64_t>(idj.get<int64_t>()) >= n_entries) {
      throw FormatError("tokenizer: " + path + ": token '" + t + "' has invalid id " +
                        idj.dump(-1, ' ', false, json::error_handler_t::replace) + "; valid: 0.." +
                        std::to_string(n_entries == 0 ? 0 : n_entries - 1) + " (" +
                        std::to_string(n_entries) + " tokens)");
    }
    const size_t id = idj.get<size_t>();
    if (id >= text.size()) {
      text.resize(id + 1);
      present.resize(id + 1, false);
    }
    if (present[id] && text[id] != t) {
      throw FormatError("tokenizer: " + path + ": id " + std::to_string(id) + " given to both '" +
                        text[id] + "' and '" + t + "'");
    }
    text[id] = t;
    present[id] = true;
  };
  for (const auto& [t, id] : model["vocab"].items()) place(t, id);
  for (const json& a : added) {
    if (!a.is_object()) throw FormatError("tokenizer: " + path + ": an added token is not an object");
    place(str_field(a, "content"), a.value("id", json()));
  }
  for (size_t i = 0; i < present.size(); ++i) {
    if (!present[i]) throw FormatError("tokenizer: " + path + ": no token has id " + std::to_string(i));
  }

  PreInfo pre;
  const auto pre_it = tj.find("pre_tokenizer");
  if (pre_it != tj.end()) walk_pre(*pre_it, pre, path);
  bool replaces_space = false, prepends = false;
  const auto norm_it = tj.find("normalizer");
  if (norm_it != tj.end()) walk_normalizer(*norm_it, replaces_space, prepends, path);
  const bool spm = pre.metaspace || replaces_space;
  if (!spm && !pre.byte_level) {
    throw Unsupported("tokenizer: " + path +
                      ": neither a ByteLevel pre-tokenizer nor SentencePiece-style whitespace; unsupported");
  }

  tok::Vocab v;
  v.source = path;
  v.text = std::move(text);
  const size_t n = v.text.size();
  v.score.assign(n, 0.0f);
  v.attrs.assign(n, tok::attr::kNormal);
  const bool byte_fallback = model.value("byte_fallback", false);
  const std::string unk_text = str_field(model, "unk_token");
  for (size_t id = 0; id < n; ++id) {
    const std::string& t = v.text[id];
    if (byte_fallback && t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') v.attrs[id] = tok::attr::kByte;
  }
  for (const json& a : added) {
    const size_t id = a["id"].get<size_t>();
    uint32_t at = a.value("special", false) ? tok::attr::kControl : tok::attr::kUserDefined;
    if (!unk_text.empty() && v.text[id] == unk_text) at = tok::attr::kUnknown;
    if (a.value("lstrip", false)) at |= tok::attr::kLstrip;
    if (a.value("rstrip", false)) at |= tok::attr::kRstrip;
    v.attrs[id] = at;
  }

  // Merges: "a b" strings or [a, b] pairs.
  std::vector<std::pair<std::string, std::string>> merges;
  for (const json& m : model.value("merges", json::array())) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) throw FormatError("tokenizer: " + path + ": merge '" + s + "' has no space");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      throw FormatError("tokenizer: " + path + ": malformed merge " + m.dump());
    }
  }

  std::unique_ptr<tok::PreTokenizer> pretok;
  if (spm) {
    v.type = tok::VocabType::kSpm;
    v.model = "llama";
    v.add_space_prefix = prepends || (pre.metaspace && pre.metaspace_prefix);
    v.escape_whitespaces = true;
    v.add_bos = true;
    // SentencePiece merges by token score; a token's priority is its first merge's rank.
    std::unordered_map<std::string, int32_t> ids;
    for (size_t id = 0; id < n; ++id) ids.emplace(v.text[id], static_cast<int32_t>(id));
    const float lowest = -static_cast<float>(merges.size()) - 1.0f;
    std::vector<bool> ranked(n, false);
    for (size_t r = 0; r < merges.size(); ++r) {
      const auto it = ids.find(merges[r].first + merges[r].second);
      if (it == ids.end() || ranked[it->second]) continue;
      ranked[it->second] = true;
      v.score[it->second] = -static_cast<float>(r);
    }
    for (size_t id = 0; id < n; ++id) {
      if (!ranked[id]) v.score[id] = lowest;
    }
  } else {
    v.type = tok::VocabType::kBpe;
    v.model = "gpt2";
    v.ignore_merges = model.value("ignore_merges", false);
    for (auto& [a, b] : merges) v.merges.push_back(a + " " + b);
    pretok = tok::PreTokenizer::from_regexes(pre.regexes, true, path);
  }
  if (const auto cs = cfg.find("clean_up_tokenization_spaces"); cs != cfg.end() && cs->is_boolean())
    v.clean_spaces = cs->get<bool>();

  auto id_of = [&](const std::string& t) -> int32_t {
    if (t.empty()) return -1;
    for (size_t id = 0; id < n; ++id) {
      if (v.text[id] == t) return static_cast<int32_t>(id);
    }
    return -1;
  };
  const std::string bos_text = config_token(cfg, "bos_token");
  v.bos = id_of(bos_text);
  v.eos = id_of(config_token(cfg, "eos_token"));
  v.unk = id_of(config_token(cfg, "unk_token"));
  v.pad = id_of(config_token(cfg, "pad_token"));
  if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) {
    v.add_bos = cfg["add_bos_token"].get<bool>();
  } else if (!spm) {
    const auto pp = tj.find("post_processor");
    const std::string tb = pp == tj.end() ? std::string() : template_bos(*pp, path);
    v.add_bos = !tb.empty();
    if (v.add_bos && v.bos < 0) v.bos = id_of(tb);
  }
  if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean()) v.add_eos = cfg["add_eos_token"].get<bool>();
  if (cfg.contains("chat_template") && cfg["chat_template"].is_string()) {
    v.chat_template = cfg["chat_template"].get<std::string>();
  }
  v.finalize();
  return std::make_unique<tok::LlamaTokenizer>(std::move(v), std::move(pretok));
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_hf_dir(const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  try {
    return load_hf_dir(dir, path);
  } catch (const json::exception& e) {
    // A field of the wrong type (a number where a string belongs, ...) is the file's fault.
    throw FormatError("tokenizer: " + path + ": unexpected JSON structure: " + e.what());
  }
}

}  // namespace insitu
