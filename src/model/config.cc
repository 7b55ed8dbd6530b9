#include "model/config.h"

#include <cmath>
#include <fstream>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "insitu/error.h"
#include "io/gguf.h"
#include "io/mapped_file.h"
#include "io/gguf_writer.h"

namespace insitu {

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::kLlama: return "llama";
    case Arch::kGemma3: return "gemma3";
  }
  return "unknown";
}

float ModelConfig::attention_scale() const {
  const float d = query_pre_attn_scalar > 0 ? query_pre_attn_scalar : static_cast<float>(head_dim);
  return 1.0f / std::sqrt(d);
}

void ModelConfig::validate(const std::string& source) const {
  auto fail = [&](const std::string& what) {
    throw FormatError(fmt::format("{}: invalid model configuration: {}", source, what));
  };
  auto positive = [&](const char* key, long long v, long long max) {
    if (v <= 0 || v > max) fail(fmt::format("{} = {} (must be in 1..{})", key, v, max));
  };
  // Bounds keep every derived size (n_head * head_dim, n_ctx * kv width, ...) far from overflow.
  positive("n_vocab", n_vocab, 1 << 24);
  positive("n_embd", n_embd, 1 << 16);
  positive("n_layer", n_layer, 1024);
  positive("n_head", n_head, 1024);
  positive("n_head_kv", n_head_kv, 1024);
  positive("head_dim", head_dim, 1024);
  positive("n_ff", n_ff, 1 << 20);
  if (n_expert < 0 || n_expert > 1024)
    fail(fmt::format("n_expert = {} (must be in 0..1024)", n_expert));
  if (n_expert > 0 && (n_expert_used <= 0 || n_expert_used > n_expert))
    fail(fmt::format("n_expert_used = {} (must be in 1..n_expert = {})", n_expert_used, n_expert));
  if (n_expert > 0 && arch != Arch::kLlama)
    fail(fmt::format("experts ({}) are only supported for the llama architecture", n_expert));
  if (n_head % n_head_kv != 0)
    fail(fmt::format("n_head {} is not a multiple of n_head_kv {}", n_head, n_head_kv));
  if (head_dim % 2 != 0) fail(fmt::format("head_dim {} is odd; RoPE rotates pairs", head_dim));
  if (!(rms_eps > 0) || !std::isfinite(rms_eps)) fail(fmt::format("rms_eps = {}", rms_eps));
  if (!(rope_freq_base > 0) || !std::isfinite(rope_freq_base))
    fail(fmt::format("rope_freq_base = {}", rope_freq_base));
  if (!(rope_freq_base_local > 0) || !std::isfinite(rope_freq_base_local))
    fail(fmt::format("rope_freq_base_local = {}", rope_freq_base_local));
  if (sliding_window < 0) fail(fmt::format("sliding_window = {}", sliding_window));
  if (sliding_window_pattern < 0)
    fail(fmt::format("sliding_window_pattern = {}", sliding_window_pattern));
  if (query_pre_attn_scalar < 0 || !std::isfinite(query_pre_attn_scalar))
    fail(fmt::format("query_pre_attn_scalar = {}", query_pre_attn_scalar));
  if (!(rope_scaling.factor > 0) || !std::isfinite(rope_scaling.factor))
    fail(fmt::format("rope scaling factor = {}", rope_scaling.factor));
  if (rope_scaling.kind == RopeScaling::Kind::kLlama3 &&
      !(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor))
    fail("llama3 rope scaling needs high_freq_factor > low_freq_factor");
  if (final_logit_softcap < 0 || !std::isfinite(final_logit_softcap))
    fail(fmt::format("final_logit_softcapping = {}", final_logit_softcap));
}

namespace {

int checked_int(uint64_t v, const std::string& source, const std::string& key) {
  if (v > static_cast<uint64_t>(std::numeric_limits<int>::max()))
    throw FormatError(fmt::format("{}: key '{}': value {} out of range", source, key, v));
  return static_cast<int>(v);
}

Arch parse_arch(const std::string& name, const std::string& source) {
  if (name == "llama") return Arch::kLlama;
  if (name == "gemma3") return Arch::kGemma3;
  throw Unsupported(fmt::format("{}: architecture '{}' unsupported; supported: llama gemma3",
                                source, name));
}

}  // namespace

ModelConfig config_from_gguf(const gguf::GgufFile& f) {
  const std::string& src = f.path();
  ModelConfig c;
  c.arch_name = f.get_string("general.architecture");
  c.arch = parse_arch(c.arch_name, src);
  const std::string p = c.arch_name + ".";
  auto req_int = [&](const std::string& key) { return checked_int(f.get_u64(p + key), src, p + key); };
  auto opt_int = [&](const std::string& key, int def) {
    return checked_int(f.get_u64(p + key, static_cast<uint64_t>(def)), src, p + key);
  };

  c.name = f.get_string("general.name", "");
  c.n_embd = req_int("embedding_length");
  c.n_layer = req_int("block_count");
  c.n_ff = req_int("feed_forward_length");
  c.n_head = req_int("attention.head_count");
  c.n_head_kv = opt_int("attention.head_count_kv", c.n_head);
  c.n_ctx_train = opt_int("context_length", 0);
  c.n_expert = opt_int("expert_count", 0);
  c.n_expert_used = opt_int("expert_used_count", 0);
  if (c.n_head <= 0) throw FormatError(fmt::format("{}: key '{}attention.head_count' is 0", src, p));
  c.head_dim = opt_int("attention.key_length", c.n_embd / c.n_head);
  const int value_length = opt_int("attention.value_length", c.head_dim);
  if (value_length != c.head_dim)
    throw Unsupported(fmt::format("{}: key_length {} != value_length {} unsupported", src,
                                  c.head_dim, value_length));
  const int n_rot = opt_int("rope.dimension_count", c.head_dim);
  if (n_rot != c.head_dim)
    throw Unsupported(fmt::format("{}: partial RoPE (rope.dimension_count {} < head_dim {}) "
                                  "unsupported", src, n_rot, c.head_dim));
  c.rms_eps = static_cast<float>(f.get_f64(p + "attention.layer_norm_rms_epsilon"));
  c.rope_freq_base = static_cast<float>(f.get_f64(p + "rope.freq_base", 10000.0));
  c.rope_freq_base_local = static_cast<float>(f.get_f64(p + "rope.freq_base_swa", 10000.0));

  // Vocabulary size: the explicit key, else the token list (as llama.cpp does).
  if (f.has(p + "vocab_size")) {
    c.n_vocab = req_int("vocab_size");
  } else if (const gguf::Array* toks = f.get_array("tokenizer.ggml.tokens")) {
    c.n_vocab = checked_int(toks->items.size(), src, "tokenizer.ggml.tokens");
  } else if (const gguf::TensorInfo* emb = f.find_tensor("token_embd.weight");
             emb && emb->ne.size() == 2) {
    c.n_vocab = checked_int(static_cast<uint64_t>(emb->ne[1]), src, "token_embd.weight");
  } else {
    throw FormatError(fmt::format("{}: key '{}vocab_size' and tokenizer.ggml.tokens missing", src, p));
  }

  // RoPE scaling. llama3-style factors live in the rope_freqs.weight tensor, read by the loader.
  const std::string scaling = f.get_string(p + "rope.scaling.type", "linear");
  double factor = f.get_f64(p + "rope.scaling.factor", 0.0);
  if (factor == 0.0) factor = f.get_f64(p + "rope.scale_linear", 0.0);
  if (scaling == "none" || factor == 0.0 || factor == 1.0) {
    c.rope_scaling.kind = RopeScaling::Kind::kNone;
  } else if (scaling == "linear") {
    c.rope_scaling.kind = RopeScaling::Kind::kLinear;
    c.rope_scaling.factor = static_cast<float>(factor);
  } else {
    throw Unsupported(fmt::format("{}: rope scaling '{}' unsupported; supported: none linear "
                                  "(llama3 via rope_freqs.weight)", src, scaling));
  }
  c.rope_scaling.original_context = opt_int("rope.scaling.original_context_length", c.n_ctx_train);

  if (c.arch == Arch::kGemma3) {
    c.sliding_window = opt_int("attention.sliding_window", 0);
    if (c.sliding_window > 0) {
      c.sliding_window_pattern = 6;  // llama.cpp's default for gemma3
      if (const gguf::Value* v = f.find(p + "attention.sliding_window_pattern")) {
        if (v->type == gguf::ValueType::kArray) {
          // Per-layer flags: accept them when they follow "every Nth layer is global".
          const gguf::Array& a = v->as_array(p + "attention.sliding_window_pattern");
          int n = 0;
          for (size_t i = 0; i < a.items.size(); ++i) {
            if (!a.items[i].as_bool("sliding_window_pattern")) { n = static_cast<int>(i) + 1; break; }
          }
          ModelConfig probe = c;
          probe.sliding_window_pattern = n;
          bool ok = n > 0 && static_cast<int>(a.items.size()) == c.n_layer;
          for (int il = 0; ok && il < c.n_layer; ++il)
            ok = probe.layer_is_sliding(il) == a.items[il].as_bool("sliding_window_pattern");
          if (!ok)
            throw Unsupported(fmt::format("{}: key '{}attention.sliding_window_pattern': only a "
                                          "periodic pattern (every Nth layer global) is supported",
                                          src, p));
          c.sliding_window_pattern = n;
        } else {
          c.sliding_window_pattern = checked_int(v->as_u64("sliding_window_pattern"), src,
                                                 p + "attention.sliding_window_pattern");
        }
      }
    }
    c.final_logit_softcap = static_cast<float>(f.get_f64(p + "final_logit_softcapping", 0.0));
    // llama.cpp (gemma3.cpp) derives the scale from the head size, except for the 27B model
    // (62 layers), whose query_pre_attn_scalar is n_embd / n_head.
    c.query_pre_attn_scalar = c.n_layer == 62 ? static_cast<float>(c.n_embd / c.n_head)
                                              : static_cast<float>(c.head_dim);
  }
  c.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  c.validate(src);
  return c;
}

namespace {

// Typed JSON lookups that name the file and key on failure.
struct JsonReader {
  const nlohmann::json& j;
  const std::string& src;

  const nlohmann::json* find(const char* key) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return nullptr;
    return &*it;
  }
  int get_int(const char* key) const {
    const nlohmann::json* v = find(key);
    if (!v) throw FormatError(fmt::format("{}: key '{}' missing", src, key));
    return as_int(*v, key);
  }
  int get_int(const char* key, int def) const {
    const nlohmann::json* v = find(key);
    return v ? as_int(*v, key) : def;
  }
  double get_num(const char* key, double def) const {
    const nlohmann::json* v = find(key);
    if (!v) return def;
    if (!v->is_number()) throw FormatError(fmt::format("{}: key '{}' is not a number", src, key));
    return v->get<double>();
  }
  bool get_bool(const char* key, bool def) const {
    const nlohmann::json* v = find(key);
    if (!v) return def;
    if (!v->is_boolean()) throw FormatError(fmt::format("{}: key '{}' is not a boolean", src, key));
    return v->get<bool>();
  }
  int as_int(const nlohmann::json& v, const char* key) const {
    if (!v.is_number_integer() && !v.is_number_unsigned())
      throw FormatError(fmt::format("{}: key '{}' is not an integer", src, key));
    const int64_t x = v.get<int64_t>();
    if (x < 0 || x > std::numeric_limits<int>::max())
      throw FormatError(fmt::format("{}: key '{}': value {} out of range", src, key, x));
    return static_cast<int>(x);
  }
};

void read_hf_rope_scaling(const nlohmann::json& rs, ModelConfig& c, const std::string& src) {
  if (!rs.is_object())
    throw FormatError(fmt::format("{}: key 'rope_scaling' is not an object", src));
  JsonReader r{rs, src};
  std::string type;
  if (auto it = rs.find("rope_type"); it != rs.end() && it->is_string()) type = it->get<std::string>();
  else if (auto it2 = rs.find("type"); it2 != rs.end() && it2->is_string()) type = it2->get<std::string>();
  if (type.empty() || type == "default") return;
  c.rope_scaling.factor = static_cast<float>(r.get_num("factor", 1.0));
  if (type == "linear") {
    c.rope_scaling.kind = RopeScaling::Kind::kLinear;
  } else if (type == "llama3") {
    c.rope_scaling.kind = RopeScaling::Kind::kLlama3;
    c.rope_scaling.factor = static_cast<float>(r.get_num("factor", 8.0));
    c.rope_scaling.low_freq_factor = static_cast<float>(r.get_num("low_freq_factor", 1.0));
    c.rope_scaling.high_freq_factor = static_cast<float>(r.get_num("high_freq_factor", 4.0));
    c.rope_scaling.original_context = r.get_int("original_max_position_embeddings", 8192);
  } else {
    throw Unsupported(fmt::format("{}: rope scaling '{}' unsupported; supported: linear llama3",
                                  src, type));
  }
}

}  // namespace

ModelConfig config_from_hf_json(const nlohmann::json& j, const std::string& src) {
  if (!j.is_object()) throw FormatError(fmt::format("{}: not a JSON object", src));
  JsonReader r{j, src};
  std::string hf_arch;
  if (auto it = j.find("architectures"); it != j.end() && it->is_array() && !it->empty() &&
                                         (*it)[0].is_string()) {
    hf_arch = (*it)[0].get<std::string>();
  }
  std::string model_type;
  if (auto it = j.find("model_type"); it != j.end() && it->is_string()) model_type = it->get<std::string>();

  ModelConfig c;
  const bool mixtral =
      hf_arch == "MixtralForCausalLM" || (hf_arch.empty() && model_type == "mixtral");
  if (hf_arch == "LlamaForCausalLM" || hf_arch == "MistralForCausalLM" || mixtral ||
      (hf_arch.empty() && (model_type == "llama" || model_type == "mistral"))) {
    c.arch = Arch::kLlama;
  } else if (hf_arch == "Gemma3ForCausalLM" ||
             (hf_arch.empty() && (model_type == "gemma3_text" || model_type == "gemma3"))) {
    c.arch = Arch::kGemma3;
  } else {
    throw Unsupported(fmt::format("{}: architecture '{}' (model_type '{}') unsupported; supported: "
                                  "LlamaForCausalLM MistralForCausalLM MixtralForCausalLM "
                                  "Gemma3ForCausalLM",
                                  src, hf_arch, model_type));
  }
  c.arch_name = arch_name(c.arch);
  const bool gemma = c.arch == Arch::kGemma3;

  c.n_vocab = r.get_int("vocab_size");
  c.n_embd = r.get_int("hidden_size");
  c.n_layer = r.get_int("num_hidden_layers");
  c.n_ff = r.get_int("intermediate_size");
  if (mixtral) {
    c.n_expert = r.get_int("num_local_experts");
    c.n_expert_used = r.get_int("num_experts_per_tok");
  }
  c.n_head = r.get_int("num_attention_heads");
  c.n_head_kv = r.get_int("num_key_value_heads", c.n_head);
  if (c.n_head == 0) throw FormatError(fmt::format("{}: key 'num_attention_heads' is 0", src));
  c.head_dim = r.get_int("head_dim", gemma ? 256 : c.n_embd / c.n_head);
  c.n_ctx_train = r.get_int("max_position_embeddings", gemma ? 131072 : 2048);
  c.rms_eps = static_cast<float>(r.get_num("rms_norm_eps", gemma ? 1e-6 : 1e-5));
  c.tied_embeddings = r.get_bool("tie_word_embeddings", gemma);
  if (auto it = j.find("_name_or_path"); it != j.end() && it->is_string()) c.name = it->get<std::string>();

  // Newer transformers nest RoPE settings in rope_parameters (per layer type for gemma3).
  const nlohmann::json* rope_params = r.find("rope_parameters");
  const nlohmann::json* rope_global = rope_params;
  const nlohmann::json* rope_local = nullptr;
  if (rope_params && rope_params->is_object() && rope_params->contains("full_attention")) {
    rope_global = &(*rope_params)["full_attention"];
    if (rope_params->contains("sliding_attention")) rope_local = &(*rope_params)["sliding_attention"];
  }
  double theta = r.get_num("rope_theta", gemma ? 1000000.0 : 10000.0);
  if (rope_global && rope_global->is_object()) theta = JsonReader{*rope_global, src}.get_num("rope_theta", theta);
  c.rope_freq_base = static_cast<float>(theta);
  double theta_local = r.get_num("rope_local_base_freq", 10000.0);
  if (rope_local && rope_local->is_object())
    theta_local = JsonReader{*rope_local, src}.get_num("rope_theta", theta_local);
  c.rope_freq_base_local = static_cast<float>(theta_local);
  if (const nlohmann::json* rs = r.find("rope_scaling")) read_hf_rope_scaling(*rs, c, src);
  else if (rope_global && rope_global->is_object()) read_hf_rope_scaling(*rope_global, c, src);
  c.rope_scaling.original_context =
      c.rope_scaling.kind == RopeScaling::Kind::kLlama3 ? c.rope_scaling.original_context : c.n_ctx_train;

  if (gemma) {
    c.query_pre_attn_scalar = static_cast<float>(r.get_num("query_pre_attn_scalar", 256.0));
    c.final_logit_softcap = static_cast<float>(r.get_num("final_logit_softcapping", 0.0));
    if (r.find("attn_logit_softcapping"))
      throw Unsupported(fmt::format("{}: attn_logit_softcapping unsupported for gemma3", src));
    c.sliding_window = r.get_int("sliding_window", 4096);
    c.sliding_window_pattern = r.get_int("sliding_window_pattern", 6);
    if (const nlohmann::json* lt = r.find("layer_types")) {
      if (!lt->is_array() || static_cast<int>(lt->size()) != c.n_layer)
        throw FormatError(fmt::format("{}: key 'layer_types' must list {} layers", src, c.n_layer));
      int n = 0;
      for (size_t i = 0; i < lt->size(); ++i) {
        if ((*lt)[i] == "full_attention") { n = static_cast<int>(i) + 1; break; }
      }
      ModelConfig probe = c;
      probe.sliding_window_pattern = n;
      bool ok = n > 0;
      for (int il = 0; ok && il < c.n_layer; ++il)
        ok = ((*lt)[il] == "sliding_attention") == probe.layer_is_sliding(il);
      if (!ok)
        throw Unsupported(fmt::format("{}: key 'layer_types': only a periodic pattern (every Nth "
                                      "layer full_attention) is supported", src));
      c.sliding_window_pattern = n;
    }
    if (c.sliding_window_pattern == 1) c.sliding_window = 0;  // every layer global
  }
  c.validate(src);
  return c;
}

ModelConfig config_from_hf_file(const std::string& path) {
  const std::string text = read_regular_file(path, size_t{64} << 20, "config");
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) throw FormatError(fmt::format("{}: invalid JSON", path));
  return config_from_hf_json(j, path);
}

nlohmann::json config_to_hf_json(const ModelConfig& c) {
  nlohmann::json j;
  const bool gemma = c.arch == Arch::kGemma3;
  const bool moe = c.is_moe();
  j["architectures"] = nlohmann::json::array(
      {gemma ? "Gemma3ForCausalLM" : moe ? "MixtralForCausalLM" : "LlamaForCausalLM"});
  j["model_type"] = gemma ? "gemma3_text" : moe ? "mixtral" : "llama";
  if (moe) {
    j["num_local_experts"] = c.n_expert;
    j["num_experts_per_tok"] = c.n_expert_used;
  }
  j["vocab_size"] = c.n_vocab;
  j["hidden_size"] = c.n_embd;
  j["num_hidden_layers"] = c.n_layer;
  j["intermediate_size"] = c.n_ff;
  j["num_attention_heads"] = c.n_head;
  j["num_key_value_heads"] = c.n_head_kv;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.n_ctx_train;
  j["rms_norm_eps"] = c.rms_eps;
  j["rope_theta"] = c.rope_freq_base;
  j["tie_word_embeddings"] = c.tied_embeddings;
  j["torch_dtype"] = "float32";
  switch (c.rope_scaling.kind) {
    case RopeScaling::Kind::kNone: j["rope_scaling"] = nullptr; break;
    case RopeScaling::Kind::kLinear:
      j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}};
      break;
    case RopeScaling::Kind::kLlama3:
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", c.rope_scaling.factor},
                           {"low_freq_factor", c.rope_scaling.low_freq_factor},
                           {"high_freq_factor", c.rope_scaling.high_freq_factor},
                           {"original_max_position_embeddings", c.rope_scaling.original_context}};
      break;
    case RopeScaling::Kind::kYarn:
      j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", c.rope_scaling.factor}};
      break;
  }
  if (gemma) {
    j["rope_local_base_freq"] = c.rope_freq_base_local;
    j["query_pre_attn_scalar"] = c.query_pre_attn_scalar;
    j["sliding_window"] = c.sliding_window > 0 ? c.sliding_window : 4096;
    j["sliding_window_pattern"] = c.sliding_window > 0 ? c.sliding_window_pattern : 1;
    j["final_logit_softcapping"] =
        c.final_logit_softcap > 0 ? nlohmann::json(c.final_logit_softcap) : nlohmann::json(nullptr);
    j["attn_logit_softcapping"] = nullptr;
    j["hidden_activation"] = "gelu_pytorch_tanh";
  } else {
    j["hidden_act"] = "silu";
  }
  return j;
}

void config_to_gguf(const ModelConfig& c, gguf::GgufWriter& w) {
  using gguf::Value;
  const std::string p = std::string(arch_name(c.arch)) + ".";
  auto u32 = [&](const std::string& key, int v) { w.set(p + key, Value::u32(static_cast<uint32_t>(v))); };
  w.set("general.architecture", Value::string(arch_name(c.arch)));
  if (!c.name.empty()) w.set("general.name", Value::string(c.name));
  if (c.n_ctx_train > 0) u32("context_length", c.n_ctx_train);
  u32("embedding_length", c.n_embd);
  u32("block_count", c.n_layer);
  u32("feed_forward_length", c.n_ff);
  u32("attention.head_count", c.n_head);
  u32("attention.head_count_kv", c.n_head_kv);
  u32("attention.key_length", c.head_dim);
  u32("attention.value_length", c.head_dim);
  u32("rope.dimension_count", c.head_dim);
  u32("vocab_size", c.n_vocab);
  if (c.is_moe()) {
    u32("expert_count", c.n_expert);
    u32("expert_used_count", c.n_expert_used);
  }
  w.set(p + "attention.layer_norm_rms_epsilon", Value::f32(c.rms_eps));
  w.set(p + "rope.freq_base", Value::f32(c.rope_freq_base));
  switch (c.rope_scaling.kind) {
    case RopeScaling::Kind::kNone:
    case RopeScaling::Kind::kLlama3:  // rope_freqs.weight
      break;
    case RopeScaling::Kind::kLinear:
      w.set(p + "rope.scaling.type", Value::string("linear"));
      w.set(p + "rope.scaling.factor", Value::f32(c.rope_scaling.factor));
      break;
    case RopeScaling::Kind::kYarn:
      throw Unsupported(fmt::format("gguf export: {}: yarn RoPE scaling has no GGUF form here",
                                    c.name));
  }
  if (c.arch == Arch::kGemma3) {
    const float derived = c.n_layer == 62 ? static_cast<float>(c.n_embd / c.n_head)
                                          : static_cast<float>(c.head_dim);
    if (c.query_pre_attn_scalar != derived) {
      throw Unsupported(fmt::format(
          "gguf export: {}: query_pre_attn_scalar {} differs from the {} llama.cpp derives for "
          "this shape, and GGUF has no key for it", c.name, c.query_pre_attn_scalar, derived));
    }
    if (c.sliding_window > 0) {
      u32("attention.sliding_window", c.sliding_window);
      if (c.sliding_window_pattern != 6) {  // llama.cpp's default for gemma3
        std::vector<Value> sliding;
        for (int il = 0; il < c.n_layer; ++il) sliding.push_back(Value::boolean(c.layer_is_sliding(il)));
        w.set(p + "attention.sliding_window_pattern",
              Value::array(gguf::ValueType::kBool, std::move(sliding)));
      }
    }
    if (c.rope_freq_base_local != 10000.0f)
      w.set(p + "rope.freq_base_swa", Value::f32(c.rope_freq_base_local));
    if (c.final_logit_softcap > 0)
      w.set(p + "final_logit_softcapping", Value::f32(c.final_logit_softcap));
  }
}

std::vector<float> llama3_rope_freq_factors(const ModelConfig& c) {
  std::vector<float> out;
  if (c.rope_scaling.kind != RopeScaling::Kind::kLlama3) return out;
  const RopeScaling& s = c.rope_scaling;
  const double old_ctx = s.original_context;
  const double low_wavelen = old_ctx / s.low_freq_factor;
  const double high_wavelen = old_ctx / s.high_freq_factor;
  const int dim = c.head_dim;
  for (int i = 0; i < dim; i += 2) {
    // The converter computes the frequencies in float32 (torch), then works in Python floats.
    const float freq = 1.0f / std::pow(c.rope_freq_base, static_cast<float>(i) / dim);
    const double wavelen = 2 * M_PI / freq;
    double f;
    if (wavelen < high_wavelen) {
      f = 1.0;
    } else if (wavelen > low_wavelen) {
      f = s.factor;
    } else {
      const double smooth = (old_ctx / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      f = 1.0 / ((1 - smooth) / s.factor + smooth);
    }
    out.push_back(static_cast<float>(f));
  }
  return out;
}

}  // namespace insitu
