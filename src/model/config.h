// Model hyper-parameters, read from GGUF metadata or a Hugging Face config.json.
//
// Both readers produce the same ModelConfig, with GGUF semantics: e.g. rope_freq_base is the
// global layers' base, query_pre_attn_scalar is what the attention scale is derived from, and
// RoPE style is implied by the architecture (llama: "normal" adjacent pairs on GGUF's permuted
// Q/K; gemma3: NeoX halves). Missing required keys, unsupported architectures and inconsistent
// shapes throw FormatError / Unsupported naming the source and the key.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace insitu {

namespace gguf {
class GgufFile;
class GgufWriter;
}

enum class Arch { kLlama, kGemma3 };

// "llama" / "gemma3".
const char* arch_name(Arch arch);

struct RopeScaling {
  enum class Kind { kNone, kLinear, kLlama3, kYarn } kind = Kind::kNone;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;   // llama3
  float high_freq_factor = 4.0f;  // llama3
  int original_context = 8192;    // llama3 / yarn
};

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string arch_name;  // "llama", "gemma3"
  std::string name;       // general.name or the directory name
  int n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;          // attention.key_length (== value_length)
  int n_ff = 0;              // MoE: each expert's hidden size
  int n_expert = 0;          // mixture of experts (Mixtral): experts per layer; 0: dense MLP
  int n_expert_used = 0;     // experts each token is routed to (top-k)
  int n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;        // global layers
  float rope_freq_base_local = 10000.0f;  // gemma3 sliding-window layers
  RopeScaling rope_scaling;
  int sliding_window = 0;           // 0: none
  int sliding_window_pattern = 0;   // gemma3: every Nth layer is global (6)
  float query_pre_attn_scalar = 0;  // gemma3: attention scale = 1/sqrt(this)
  bool tied_embeddings = false;
  float final_logit_softcap = 0.0f;  // 0: none (gemma3 files may set it)

  bool is_moe() const { return n_expert > 0; }

  bool layer_is_sliding(int il) const {
    return sliding_window > 0 && sliding_window_pattern > 0 &&
           (il + 1) % sliding_window_pattern != 0;
  }

  // Scale applied to q·k: 1/sqrt(query_pre_attn_scalar) when set, else 1/sqrt(head_dim).
  float attention_scale() const;

  // Throws FormatError (naming `source`) when the numbers are inconsistent: non-positive sizes,
  // n_head not a multiple of n_head_kv, odd head_dim, ...
  void validate(const std::string& source) const;
};

// From GGUF metadata ("<arch>.block_count", ...); a llama file with "<arch>.expert_count" > 0 is a
// Mixtral-style mixture of experts (n_expert, n_expert_used). tied_embeddings is set from the
// absence of output.weight. Throws Unsupported for an architecture other than llama/gemma3
// (naming the valid ones) and FormatError for a missing or malformed key.
ModelConfig config_from_gguf(const gguf::GgufFile& file);

// From a parsed Hugging Face config.json ("architectures", "hidden_size", ...). `source` names the
// file in errors. MixtralForCausalLM is the llama architecture with num_local_experts experts per
// layer, num_experts_per_tok of them used per token. Gemma3 defaults follow transformers'
// Gemma3TextConfig where a key is absent.
ModelConfig config_from_hf_json(const nlohmann::json& j, const std::string& source);
ModelConfig config_from_hf_file(const std::string& path);

// The inverse: a config.json that config_from_hf_json reads back to the same ModelConfig
// (used by `insitu convert`).
nlohmann::json config_to_hf_json(const ModelConfig& config);

// The inverse of config_from_gguf: general.architecture, general.name and the "<arch>." keys
// llama.cpp's converter writes for the architecture, such that config_from_gguf (and llama.cpp)
// read back the same configuration. llama3 RoPE factors are not metadata: they go in the
// rope_freqs.weight tensor (llama3_rope_freq_factors), which is the caller's to add. Throws
// Unsupported for what GGUF cannot say: yarn scaling, and a gemma3 query_pre_attn_scalar other
// than the one llama.cpp derives from the shape.
void config_to_gguf(const ModelConfig& config, gguf::GgufWriter& writer);

// RoPE frequency factors (one per rotated pair, head_dim/2 values) implied by llama3-style rope
// scaling, computed as llama.cpp's converter does (conversion/llama.py, llama.cpp as vendored in
// llama-cpp-python 0.3.36); empty when the config has no llama3 scaling.
std::vector<float> llama3_rope_freq_factors(const ModelConfig& config);

}  // namespace insitu
