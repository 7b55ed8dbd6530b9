#include "model/hf_names.h"

#include <charconv>
#include <cstring>
#include <span>

#include <fmt/format.h>

#include "insitu/error.h"

namespace insitu {

namespace {

struct NamePair {
  const char* gguf;  // per-layer suffix after "blk.N." (or a global name)
  const char* hf;    // per-layer suffix after "model.layers.N."
};

constexpr NamePair kGlobal[] = {
    {"token_embd", "model.embed_tokens"},
    {"output_norm", "model.norm"},
    {"output", "lm_head"},
};

constexpr NamePair kLlamaLayer[] = {
    {"attn_norm", "input_layernorm"},
    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},
    {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
    {"ffn_gate_inp", "block_sparse_moe.gate"},  // Mixtral's router
};

// Mixtral's per-expert projections: "block_sparse_moe.experts.E.<hf>" in "blk.N.<gguf>".
constexpr NamePair kMixtralExperts[] = {
    {"ffn_gate_exps", "w1"},
    {"ffn_down_exps", "w2"},
    {"ffn_up_exps", "w3"},
};
constexpr std::string_view kMixtralExpertPrefix = "block_sparse_moe.experts.";

constexpr NamePair kGemma3Layer[] = {
    {"attn_norm", "input_layernorm"},
    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},
    {"attn_q_norm", "self_attn.q_norm"},
    {"attn_k_norm", "self_attn.k_norm"},
    {"post_attention_norm", "post_attention_layernorm"},
    {"ffn_norm", "pre_feedforward_layernorm"},
    {"post_ffw_norm", "post_feedforward_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

std::span<const NamePair> layer_names(Arch arch) {
  if (arch == Arch::kGemma3) return kGemma3Layer;
  return kLlamaLayer;
}

// Splits "stem.weight" / "stem.bias" into stem and suffix.
bool split_suffix(std::string_view name, std::string_view& stem, std::string_view& suffix) {
  for (std::string_view s : {std::string_view(".weight"), std::string_view(".bias")}) {
    if (name.size() > s.size() && name.substr(name.size() - s.size()) == s) {
      stem = name.substr(0, name.size() - s.size());
      suffix = s;
      return true;
    }
  }
  return false;
}

// Parses "<prefix><digits>.<rest>"; returns false when the shape does not match.
bool split_layer(std::string_view stem, std::string_view prefix, int& layer, std::string_view& rest) {
  if (stem.substr(0, prefix.size()) != prefix) return false;
  std::string_view tail = stem.substr(prefix.size());
  const size_t dot = tail.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 6) return false;
  auto [ptr, ec] = std::from_chars(tail.data(), tail.data() + dot, layer);
  if (ec != std::errc() || ptr != tail.data() + dot || layer < 0) return false;
  rest = tail.substr(dot + 1);
  return true;
}

}  // namespace

std::optional<std::string> gguf_to_hf_name(std::string_view name, Arch arch) {
  std::string_view stem, suffix;
  if (!split_suffix(name, stem, suffix)) return std::nullopt;
  for (const NamePair& p : kGlobal)
    if (stem == p.gguf) return fmt::format("{}{}", p.hf, suffix);
  int layer = 0;
  std::string_view rest;
  if (!split_layer(stem, "blk.", layer, rest)) return std::nullopt;
  for (const NamePair& p : layer_names(arch))
    if (rest == p.gguf) return fmt::format("model.layers.{}.{}{}", layer, p.hf, suffix);
  return std::nullopt;
}

std::optional<std::string> hf_to_gguf_name(std::string_view name, Arch arch) {
  std::string_view stem, suffix;
  if (!split_suffix(name, stem, suffix)) return std::nullopt;
  for (const NamePair& p : kGlobal)
    if (stem == p.hf) return fmt::format("{}{}", p.gguf, suffix);
  int layer = 0;
  std::string_view rest;
  if (!split_layer(stem, "model.layers.", layer, rest)) return std::nullopt;
  for (const NamePair& p : layer_names(arch))
    if (rest == p.hf) return fmt::format("blk.{}.{}{}", layer, p.gguf, suffix);
  return std::nullopt;
}

std::optional<HfExpertTensor> hf_expert_tensor(std::string_view name, Arch arch) {
  std::string_view stem, suffix;
  if (arch != Arch::kLlama || !split_suffix(name, stem, suffix) || suffix != ".weight")
    return std::nullopt;
  int layer = 0, expert = 0;
  std::string_view rest, proj;
  if (!split_layer(stem, "model.layers.", layer, rest) ||
      !split_layer(rest, kMixtralExpertPrefix, expert, proj))
    return std::nullopt;
  for (const NamePair& p : kMixtralExperts)
    if (proj == p.hf) return HfExpertTensor{fmt::format("blk.{}.{}.weight", layer, p.gguf), expert};
  return std::nullopt;
}

std::optional<std::string> hf_expert_name(std::string_view name, int expert, Arch arch) {
  std::string_view stem, suffix;
  if (arch != Arch::kLlama || expert < 0 || !split_suffix(name, stem, suffix) ||
      suffix != ".weight")
    return std::nullopt;
  int layer = 0;
  std::string_view rest;
  if (!split_layer(stem, "blk.", layer, rest)) return std::nullopt;
  for (const NamePair& p : kMixtralExperts)
    if (rest == p.gguf)
      return fmt::format("model.layers.{}.{}{}.{}.weight", layer, kMixtralExpertPrefix, expert,
                         p.hf);
  return std::nullopt;
}

HfTransform hf_transform(std::string_view gguf_name, const ModelConfig& config) {
  HfTransform t;
  std::string_view stem, suffix;
  if (!split_suffix(gguf_name, stem, suffix)) return t;
  int layer = 0;
  std::string_view rest;
  const bool in_layer = split_layer(stem, "blk.", layer, rest);
  if (config.arch == Arch::kLlama && in_layer) {
    if (rest == "attn_q") t.permute_heads = config.n_head;
    if (rest == "attn_k") t.permute_heads = config.n_head_kv;
  }
  if (config.arch == Arch::kGemma3 && suffix == ".weight" && stem.size() >= 4 &&
      stem.substr(stem.size() - 4) == "norm") {
    t.norm_shift = 1.0f;
  }
  return t;
}

void permute_qk_rows(const void* src, void* dst, int64_t n_rows, size_t row_bytes, int n_head,
                     bool to_gguf) {
  if (n_head <= 0 || n_rows <= 0 || n_rows % (2 * static_cast<int64_t>(n_head)) != 0)
    throw InvalidArgument(fmt::format("permute_qk_rows: {} rows cannot be split into {} heads of "
                                      "rotary pairs", n_rows, n_head));
  const int64_t hd = n_rows / n_head;
  const int64_t half = hd / 2;
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t a = 0; a < 2; ++a) {
      for (int64_t b = 0; b < half; ++b) {
        const int64_t hf_row = h * hd + a * half + b;
        const int64_t gguf_row = h * hd + 2 * b + a;
        const int64_t from = to_gguf ? hf_row : gguf_row;
        const int64_t to = to_gguf ? gguf_row : hf_row;
        std::memcpy(d + to * row_bytes, s + from * row_bytes, row_bytes);
      }
    }
  }
}

}  // namespace insitu
