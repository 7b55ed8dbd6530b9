#include "model/hf_loader.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "insitu/error.h"
#include "io/json_file.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "model/hf_names.h"
#include "quant/float_convert.h"

namespace insitu {

namespace {

namespace st = safetensors;

QuantType to_quant_type(st::Dtype d, const std::string& file, const std::string& tensor) {
  switch (d) {
    case st::Dtype::kF32: return QuantType::kF32;
    case st::Dtype::kF16: return QuantType::kF16;
    case st::Dtype::kBF16: return QuantType::kBF16;
    default:
      throw Unsupported(fmt::format("{}: tensor '{}': dtype {} unsupported; supported: F32 F16 BF16",
                                    file, tensor, st::dtype_name(d)));
  }
}

float element_to_f32(QuantType t, const uint8_t* p, int64_t i) {
  switch (t) {
    case QuantType::kF32: {
      float f;
      std::memcpy(&f, p + i * 4, 4);
      return f;
    }
    case QuantType::kF16: {
      uint16_t h;
      std::memcpy(&h, p + i * 2, 2);
      return fp16_to_fp32(h);
    }
    default: {
      uint16_t h;
      std::memcpy(&h, p + i * 2, 2);
      return bf16_to_fp32(h);
    }
  }
}

// chat_template from tokenizer_config.json (a string, or a list of named templates: "default"
// wins) or from chat_template.jinja (newer transformers).
std::string read_chat_template(const std::string& dir) {
  const std::filesystem::path jinja = std::filesystem::path(dir) / "chat_template.jinja";
  std::error_code ec;
  if (std::filesystem::exists(jinja, ec)) {
    return read_regular_file(jinja.string(), size_t{16} << 20, "chat template");
  }
  const std::filesystem::path cfg = std::filesystem::path(dir) / "tokenizer_config.json";
  if (!std::filesystem::exists(cfg, ec)) return {};
  const JsonFile f = JsonFile::load(cfg.string());
  const JsonObject root = f.root();
  if (!root.has("chat_template")) return {};
  const nlohmann::json& t = root.get("chat_template");
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array()) {
    std::string first;
    for (const nlohmann::json& e : t) {
      if (!e.is_object() || !e.contains("template") || !e["template"].is_string()) continue;
      const std::string name = e.value("name", "");
      if (name == "default") return e["template"].get<std::string>();
      if (first.empty()) first = e["template"].get<std::string>();
    }
    return first;
  }
  root.type_error("chat_template", "string or list of {name, template}", t);
}

}  // namespace

void permute_rows_to_gguf(Weight& w, int n_head) {
  const int64_t rows = w.ne.size() < 2 ? 1 : w.ne[1];
  const size_t row_bytes = w.nbytes / static_cast<size_t>(rows);
  auto buf = std::make_shared<std::vector<uint8_t>>(w.nbytes);
  permute_qk_rows(w.data, buf->data(), rows, row_bytes, n_head, /*to_gguf=*/true);
  if (w.release_pages) w.release_pages();
  w.data = buf->data();
  w.owner = std::shared_ptr<const void>(buf, buf->data());
  w.release_pages = nullptr;
}

void stack_experts(Weight& w, const std::vector<Weight>& experts) {
  auto buf = std::make_shared<std::vector<uint8_t>>(w.nbytes);
  size_t at = 0;
  for (const Weight& e : experts) {
    std::memcpy(buf->data() + at, e.data, e.nbytes);
    at += e.nbytes;
    if (e.release_pages) e.release_pages();
  }
  w.data = buf->data();
  w.owner = std::shared_ptr<const void>(buf, buf->data());
  w.release_pages = nullptr;
}

// The N of a "model.layers.N." tensor name, when it has one.
std::optional<int64_t> hf_layer_index(std::string_view name) {
  constexpr std::string_view kPrefix = "model.layers.";
  if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  int64_t n = 0;
  const char* end = name.data() + name.size();
  const auto [ptr, ec] = std::from_chars(name.data() + kPrefix.size(), end, n);
  if (ec != std::errc() || ptr == end || *ptr != '.' || n < 0) return std::nullopt;
  return n;
}

HfCheckpoint load_hf_checkpoint(const std::string& dir, bool defer, bool shapes_only) {
  HfCheckpoint ck;
  const std::string config_path = (std::filesystem::path(dir) / "config.json").string();
  ck.config = config_from_hf_file(config_path);
  if (ck.config.name.empty()) ck.config.name = std::filesystem::path(dir).filename().string();
  std::shared_ptr<const st::ShardedSafetensors> shards = st::ShardedSafetensors::open(dir);
  ck.keepalive = shards;
  const ModelConfig& c = ck.config;
  // Stacked expert weights by GGUF name: their per-expert sources, by expert index.
  std::map<std::string, std::vector<std::optional<Weight>>> stacks;

  for (const std::string& name : shards->tensor_names()) {
    const st::TensorView& t = shards->tensor(name);
    const std::string& file = shards->shard_of(name).path();
    if (name.find("rotary_emb.inv_freq") != std::string::npos) continue;  // recomputed
    // A checkpoint with more layers than config.json says is inconsistent; running the first
    // n_layer of them would silently be a different model.
    if (const std::optional<int64_t> layer = hf_layer_index(name); layer && *layer >= c.n_layer) {
      throw FormatError(fmt::format(
          "{}: tensor '{}' is in layer {}, but {} says num_hidden_layers = {}", file, name, *layer,
          config_path, c.n_layer));
    }
    if (const std::optional<HfExpertTensor> ex = hf_expert_tensor(name, c.arch); ex && c.is_moe()) {
      if (ex->expert >= c.n_expert)
        throw FormatError(fmt::format("{}: tensor '{}': expert {} but the model has {} experts",
                                      file, name, ex->expert, c.n_expert));
      if (t.shape.size() != 2)
        throw FormatError(fmt::format("{}: tensor '{}': {}-D; expert weights are 2-D", file,
                                      name, t.shape.size()));
      Weight w;
      w.name = name;
      w.type = to_quant_type(t.dtype, file, name);
      w.ne = {t.shape[1], t.shape[0]};
      w.data = t.data;
      w.nbytes = t.nbytes;
      w.owner = std::shared_ptr<const void>(shards, t.data);
      w.release_pages = [shards, &t, name] { shards->shard_of(name).release(t); };
      auto& slot = stacks[ex->gguf_name];
      slot.resize(c.n_expert);
      slot[ex->expert] = std::move(w);
      continue;
    }
    const std::optional<std::string> gguf_name = hf_to_gguf_name(name, c.arch);
    if (!gguf_name) {
      spdlog::warn("{}: tensor '{}' is not part of a {} model; ignored", file, name, c.arch_name);
      continue;
    }
    if (t.shape.empty() || t.shape.size() > 2)
      throw FormatError(fmt::format("{}: tensor '{}': {}-D tensors unsupported here", file, name,
                                    t.shape.size()));
    Weight w;
    w.name = *gguf_name;
    w.type = to_quant_type(t.dtype, file, name);
    w.ne.assign(t.shape.rbegin(), t.shape.rend());
    w.data = t.data;
    w.nbytes = t.nbytes;
    w.owner = std::shared_ptr<const void>(shards, t.data);
    w.release_pages = [shards, &t, name] { shards->shard_of(name).release(t); };

    const HfTransform tr = hf_transform(w.name, c);
    if (tr.permute_heads > 0) {
      const int64_t rows = t.shape[0];
      if (rows % (2 * static_cast<int64_t>(tr.permute_heads)) != 0)
        throw FormatError(fmt::format("{}: tensor '{}': {} rows do not split into {} heads",
                                      file, name, rows, tr.permute_heads));
      if (defer) {
        ck.deferred_permutations.push_back({ck.weights.size(), tr.permute_heads});
      } else {
        permute_rows_to_gguf(w, tr.permute_heads);
      }
    }
    if (tr.norm_shift != 0.0f && shapes_only) {
      w.type = QuantType::kF32;
      w.data = nullptr;
      w.nbytes = static_cast<size_t>(t.n_elements()) * sizeof(float);
      w.owner.reset();
      w.release_pages = nullptr;
    } else if (tr.norm_shift != 0.0f) {
      const int64_t n = t.n_elements();
      auto buf = std::make_shared<std::vector<float>>(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) (*buf)[i] = element_to_f32(w.type, w.data, i) + tr.norm_shift;
      w.type = QuantType::kF32;
      w.data = reinterpret_cast<const uint8_t*>(buf->data());
      w.nbytes = static_cast<size_t>(n) * sizeof(float);
      w.owner = std::shared_ptr<const void>(buf, buf->data());
      w.release_pages = nullptr;
    }
    ck.weights.push_back(std::move(w));
  }
  for (auto& [gguf_name, slots] : stacks) {
    std::vector<Weight> experts;
    for (size_t e = 0; e < slots.size(); ++e) {
      if (!slots[e])
        throw FormatError(fmt::format("{}: {}: expert {} missing", dir, gguf_name, e));
      if (!experts.empty() && (slots[e]->type != experts[0].type || slots[e]->ne != experts[0].ne))
        throw FormatError(fmt::format("{}: tensor '{}': dtype or shape differs from expert 0's",
                                      dir, slots[e]->name));
      experts.push_back(std::move(*slots[e]));
    }
    Weight w;
    w.name = gguf_name;
    w.type = experts[0].type;
    w.ne = {experts[0].ne[0], experts[0].ne[1], static_cast<int64_t>(experts.size())};
    w.nbytes = experts[0].nbytes * experts.size();
    if (defer) {
      ck.deferred_stacks.push_back({ck.weights.size(), std::move(experts)});
    } else {
      stack_experts(w, experts);
    }
    ck.weights.push_back(std::move(w));
  }
  // A checkpoint whose config says "tied" may still ship lm_head; one without lm_head is tied.
  const bool has_output = std::any_of(ck.weights.begin(), ck.weights.end(),
                                      [](const Weight& w) { return w.name == "output.weight"; });
  ck.config.tied_embeddings = !has_output;
  ck.chat_template = read_chat_template(dir);
  return ck;
}

}  // namespace insitu
