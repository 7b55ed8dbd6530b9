// Model hyper-parameters as insitu computes with them (GGUF semantics: e.g. rope_freq_base is
// the global layers' base; RoPE style is implied by the architecture). Read from GGUF metadata or
// a Hugging Face config.json by the loader (Model::config()).
#pragma once

#include <string>

namespace insitu {

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

}  // namespace insitu
