#include "model/synthetic_checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "test_paths.h"
#include "tokenizer/hf_export.h"

namespace insitu::test {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

uint64_t splitmix64(uint64_t z) {
  z += kGolden;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<uint16_t> exact_bf16(const std::string& name, int64_t n) {
  static const std::pair<const char*, int> kScales[] = {
      {"embed_tokens.weight", 7}, {"lm_head.weight", 8}, {"block_sparse_moe.gate.weight", 7},
      {".w2.weight", 10},         {".w1.weight", 9},     {".w3.weight", 9},
      {"_proj.weight", 9}};
  const bool norm = ends_with(name, "norm.weight");
  int shift = 0;
  for (const auto& [suffix, s] : kScales)
    if (!norm && shift == 0 && ends_with(name, suffix)) shift = s;
  EXPECT_TRUE(norm || shift > 0) << name;
  const uint64_t key = fnv1a64(name);
  std::vector<uint16_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int q =
        static_cast<int>(splitmix64(static_cast<uint64_t>(i) * kGolden + key) >> 56) - 128;
    const float v =
        norm ? 1.0f + static_cast<float>(q >> 2) / 128.0f : std::ldexp(float(q), -shift);
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    out[static_cast<size_t>(i)] = static_cast<uint16_t>(bits >> 16);  // exact in bf16
  }
  return out;
}

void write_synthetic_checkpoint(const fs::path& dir, const SyntheticShape& a) {
  fs::create_directories(dir);
  const auto smol = gguf::GgufFile::open(smollm2_path());
  write_hf_tokenizer_files(*smol, dir.string());
  const int vocab = static_cast<int>(smol->get_array("tokenizer.ggml.tokens")->items.size());
  const int hd = a.hidden / a.heads;
  const bool moe = a.experts > 0;
  nlohmann::json cfg = {{"architectures", {moe ? "MixtralForCausalLM" : "LlamaForCausalLM"}},
                        {"model_type", moe ? "mixtral" : "llama"},
                        {"vocab_size", vocab},
                        {"hidden_size", a.hidden},
                        {"intermediate_size", a.ff},
                        {"num_hidden_layers", a.layers},
                        {"num_attention_heads", a.heads},
                        {"num_key_value_heads", a.kv_heads},
                        {"head_dim", hd},
                        {"max_position_embeddings", 4096},
                        {"rms_norm_eps", 1e-5},
                        {"rope_theta", moe ? 1000000.0 : 10000.0},
                        {"tie_word_embeddings", false},
                        {"hidden_act", "silu"}};
  if (moe) {
    cfg["num_local_experts"] = a.experts;
    cfg["num_experts_per_tok"] = a.used;
  }
  std::ofstream(dir / "config.json") << cfg.dump(1);

  std::vector<std::pair<std::string, std::vector<int64_t>>> tensors;
  tensors.push_back({"model.embed_tokens.weight", {vocab, a.hidden}});
  for (int i = 0; i < a.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    tensors.push_back({p + "input_layernorm.weight", {a.hidden}});
    tensors.push_back({p + "self_attn.q_proj.weight", {a.heads * hd, a.hidden}});
    tensors.push_back({p + "self_attn.k_proj.weight", {a.kv_heads * hd, a.hidden}});
    tensors.push_back({p + "self_attn.v_proj.weight", {a.kv_heads * hd, a.hidden}});
    tensors.push_back({p + "self_attn.o_proj.weight", {a.hidden, a.heads * hd}});
    tensors.push_back({p + "post_attention_layernorm.weight", {a.hidden}});
    if (moe) {
      tensors.push_back({p + "block_sparse_moe.gate.weight", {a.experts, a.hidden}});
      for (int e = 0; e < a.experts; ++e) {
        const std::string q = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
        tensors.push_back({q + "w1.weight", {a.ff, a.hidden}});
        tensors.push_back({q + "w2.weight", {a.hidden, a.ff}});
        tensors.push_back({q + "w3.weight", {a.ff, a.hidden}});
      }
    } else {
      tensors.push_back({p + "mlp.gate_proj.weight", {a.ff, a.hidden}});
      tensors.push_back({p + "mlp.up_proj.weight", {a.ff, a.hidden}});
      tensors.push_back({p + "mlp.down_proj.weight", {a.hidden, a.ff}});
    }
  }
  tensors.push_back({"model.norm.weight", {a.hidden}});
  tensors.push_back({"lm_head.weight", {vocab, a.hidden}});

  safetensors::SafetensorsWriter writer;
  writer.set_metadata("format", "pt");
  std::vector<std::vector<uint16_t>> data;
  data.reserve(tensors.size());
  for (const auto& [name, shape] : tensors) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    data.push_back(exact_bf16(name, n));
    const auto* bytes = reinterpret_cast<const uint8_t*>(data.back().data());
    writer.add_tensor(name, safetensors::Dtype::kBF16, shape,
                      std::span<const uint8_t>(bytes, data.back().size() * 2));
  }
  writer.write((dir / "model.safetensors").string());
}

}  // namespace insitu::test
