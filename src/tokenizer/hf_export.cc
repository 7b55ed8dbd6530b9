#include "tokenizer/hf_export.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "insitu/error.h"
#include "io/gguf.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace insitu {
namespace {

using json = nlohmann::json;
const char* const kSpaceMarker = "\xE2\x96\x81";

void write_json(const std::string& path, const json& j) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw IoError("tokenizer: cannot create " + path);
  f << j.dump(1, ' ', false, json::error_handler_t::replace) << '\n';
  if (!f.flush()) throw IoError("tokenizer: cannot write " + path);
}

// Every split of each multi-character token into two tokens, ordered by the token's score
// (highest first; ties by id), so that rank order reproduces SentencePiece's merge priority.
json spm_merges(const tok::Vocab& v) {
  std::vector<int32_t> order;
  for (int32_t id = 0; id < v.n_tokens(); ++id) {
    if (!(v.attrs[id] & tok::attr::kByte)) order.push_back(id);
  }
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return v.score[a] > v.score[b]; });
  json merges = json::array();
  for (const int32_t id : order) {
    const std::string& t = v.text[id];
    size_t cut = unicode::utf8_len_from_lead(static_cast<uint8_t>(t[0]));
    while (cut < t.size()) {
      const std::string left = t.substr(0, cut), right = t.substr(cut);
      if (v.find(left) >= 0 && v.find(right) >= 0) merges.push_back(json::array({left, right}));
      cut += unicode::utf8_len_from_lead(static_cast<uint8_t>(t[cut]));
    }
  }
  return merges;
}

json added_token(const tok::Vocab& v, int32_t id) {
  const uint32_t a = v.attrs[id];
  return json{{"id", id},
                      {"content", v.text[id]},
                      {"single_word", false},
                      {"lstrip", (a & tok::attr::kLstrip) != 0},
                      {"rstrip", (a & tok::attr::kRstrip) != 0},
                      {"normalized", false},
                      {"special", (a & (tok::attr::kControl | tok::attr::kUnknown)) != 0}};
}

json token_or_null(const tok::Vocab& v, int32_t id) {
  return id >= 0 ? json(v.text[id]) : json(nullptr);
}

}  // namespace

void write_hf_tokenizer_files(const gguf::GgufFile& file, const std::string& dir) {
  const tok::Vocab v = tok::vocab_from_gguf(file);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError("tokenizer: cannot create directory " + dir + ": " + ec.message());

  const bool spm = v.type == tok::VocabType::kSpm;
  json vocab = json::object();
  json added = json::array();
  for (int32_t id = 0; id < v.n_tokens(); ++id) {
    vocab[v.text[id]] = id;
    if (v.attrs[id] & (tok::attr::kControl | tok::attr::kUserDefined | tok::attr::kUnknown)) {
      added.push_back(added_token(v, id));
    }
  }
  json model = {{"type", "BPE"},
                        {"dropout", nullptr},
                        {"unk_token", v.unk >= 0 && (v.attrs[v.unk] & tok::attr::kUnknown)
                                          ? json(v.text[v.unk]) : json(nullptr)},
                        {"continuing_subword_prefix", nullptr},
                        {"end_of_word_suffix", nullptr},
                        {"fuse_unk", spm},
                        {"byte_fallback", spm},
                        {"ignore_merges", v.ignore_merges},
                        {"vocab", std::move(vocab)}};
  json tj = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr},
                     {"added_tokens", std::move(added)}};
  if (spm) {
    json replace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpaceMarker}};
    if (v.add_space_prefix) {
      tj["normalizer"] = {{"type", "Sequence"},
                          {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", kSpaceMarker}}, replace})}};
    } else {
      tj["normalizer"] = replace;
    }
    tj["pre_tokenizer"] = nullptr;
    json decoders = json::array(
        {{{"type", "Replace"}, {"pattern", {{"String", kSpaceMarker}}}, {"content", " "}},
         {{"type", "ByteFallback"}},
         {{"type", "Fuse"}}});
    if (v.add_space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    tj["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
    model["merges"] = spm_merges(v);
  } else {
    const auto pre = tok::PreTokenizer::for_type(v.pre, v.source);
    json steps = json::array();
    for (const std::string& re : pre->regexes()) {
      steps.push_back({{"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}});
    }
    steps.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}});
    tj["normalizer"] = nullptr;
    tj["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", steps}};
    tj["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    json merges = json::array();
    for (const std::string& m : v.merges) {
      const size_t sp = m.find(' ', 1);
      merges.push_back(json::array({m.substr(0, sp), m.substr(sp + 1)}));
    }
    model["merges"] = std::move(merges);
  }
  // BOS/EOS insertion as a template, for Hugging Face loaders (we read add_bos_token).
  if (v.add_bos || v.add_eos) {
    json single = json::array(), pair = json::array(), specials = json::object();
    auto special = [&](int32_t id) {
      specials[v.text[id]] = {{"id", v.text[id]}, {"ids", json::array({id})}, {"tokens", json::array({v.text[id]})}};
      return json{{"SpecialToken", {{"id", v.text[id]}, {"type_id", 0}}}};
    };
    if (v.add_bos) single.push_back(special(v.bos));
    single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
    if (v.add_eos) single.push_back(special(v.eos));
    pair = single;
    if (v.add_bos) pair.push_back(special(v.bos));
    pair.push_back({{"Sequence", {{"id", "B"}, {"type_id", 1}}}});
    if (v.add_eos) pair.push_back(special(v.eos));
    tj["post_processor"] = {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
  } else {
    tj["post_processor"] = nullptr;
  }
  tj["model"] = std::move(model);
  write_json(dir + "/tokenizer.json", tj);

  std::string lower_name = v.general_name;
  std::transform(lower_name.begin(), lower_name.end(), lower_name.begin(), [](unsigned char c) { return std::tolower(c); });
  const char* cls = !spm ? "PreTrainedTokenizerFast"
                    : lower_name.find("gemma") != std::string::npos ? "GemmaTokenizerFast"
                                                                    : "LlamaTokenizerFast";
  json cfg = {{"tokenizer_class", cls},
              {"add_bos_token", v.add_bos},
              {"add_eos_token", v.add_eos},
              {"bos_token", token_or_null(v, v.bos)},
              {"eos_token", token_or_null(v, v.eos)},
              {"unk_token", token_or_null(v, v.unk)},
              {"pad_token", token_or_null(v, v.pad)},
              {"clean_up_tokenization_spaces", v.clean_spaces},
              {"add_prefix_space", v.add_space_prefix},
              {"model_max_length", 1000000000}};
  if (!v.chat_template.empty()) cfg["chat_template"] = v.chat_template;
  write_json(dir + "/tokenizer_config.json", cfg);
}

}  // namespace insitu
