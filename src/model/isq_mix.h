// llama.cpp's quantization mixes ("file types" such as Q4_K_M) as ISQ targets: a per-tensor recipe
// that picks each weight's type from its role, its layer and the model's shape.
//
// A port of llama_tensor_get_type_impl and tensor_requires_imatrix in src/llama-quant.cpp
// (llama.cpp as vendored in llama-cpp-python 0.3.36) for dense models: the output/tied-embedding
// rule, the attention-v and ffn-down schedules (use_more_bits, first-eighth/sixteenth layers), the
// GQA and expert-count conditions and the 70B rule. llama.cpp counts attention-v and ffn-down
// tensors in file order (layer by layer), which for a dense model is the layer index used here.
// Mixture-of-experts models (Mixtral) follow the same recipe: the stacked expert projections get the
// dense ffn rules at their layer, as llama.cpp's name-based categories give them, and the router
// (ffn_gate_inp) is never quantized. Rules for architectures insitu does not run (Falcon, GLM-5, BailingMoE3) are left out. The
// row-length fallback that llama.cpp applies afterwards is isq_row_fallback (model/isq.h), which
// plan_isq applies to a mix's decisions as it does to a single type's.
//
// Names: llama.cpp's ftype names in insitu's spelling ("q4k_m", "q3k_s", "iq3_xs", "iq2_m"); the
// ftypes whose llama.cpp name is also a tensor type's ("Q4_0", "Q2_K", "IQ2_XXS", ...) take a
// "_mix" suffix ("q4_0_mix", "q2k_mix", "iq2_xxs_mix"), since "q2k" alone is the plain type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "insitu/quant_type.h"
#include "model/config.h"

namespace insitu {

enum class WeightRole;  // model/isq.h

// Values are llama.cpp's llama_ftype numbers (what general.file_type records).
enum class IsqMix : uint32_t {
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 7,
  kQ5_0 = 8,
  kQ5_1 = 9,
  kQ2K = 10,
  kQ3K_S = 11,
  kQ3K_M = 12,
  kQ3K_L = 13,
  kQ4K_S = 14,
  kQ4K_M = 15,
  kQ5K_S = 16,
  kQ5K_M = 17,
  kQ6K = 18,
  kIQ2_XXS = 19,
  kIQ2_XS = 20,
  kQ2K_S = 21,
  kIQ3_XS = 22,
  kIQ3_XXS = 23,
  kIQ1_S = 24,
  kIQ4_NL = 25,
  kIQ3_S = 26,
  kIQ3_M = 27,
  kIQ2_S = 28,
  kIQ2_M = 29,
  kIQ4_XS = 30,
  kIQ1_M = 31,
  kTQ1_0 = 36,
  kTQ2_0 = 37,
};

// Every mix, in llama_ftype order.
const std::vector<IsqMix>& all_isq_mixes();

// insitu's name ("q4k_m") and llama.cpp's ("Q4_K_M").
const char* isq_mix_name(IsqMix mix);
const char* isq_mix_llama_name(IsqMix mix);

// A mix by insitu's name, case-insensitively; nullopt when `text` names none.
std::optional<IsqMix> parse_isq_mix(std::string_view text);

// Space-separated names of every mix, for error messages.
std::string isq_mix_name_list();

// The type most weights of the mix get (llama_ftype_get_default_type).
QuantType isq_mix_default_type(IsqMix mix);

// What the recipe needs to know about the model.
struct IsqModelShape {
  Arch arch = Arch::kLlama;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int n_expert = 0;              // 0 or 1: dense
  bool tied_embeddings = false;  // no separate output head: the embeddings follow its rule
};

// The type `mix` gives a weight of `role` in layer `layer` (ignored for embeddings and the output
// head) whose rows hold n_per_row elements, before the row-length fallback. has_imatrix: an
// importance matrix is given (llama.cpp chooses some types differently with one).
QuantType isq_mix_tensor_type(IsqMix mix, const IsqModelShape& model, WeightRole role, int layer,
                              int64_t n_per_row, bool has_imatrix);

// Whether llama.cpp refuses to produce `type` for a weight of `role` in `mix` without an importance
// matrix (iq1_*, iq2_*, iq3_xxs everywhere but embeddings and output; q2k in q2k_s).
bool isq_mix_requires_imatrix(IsqMix mix, WeightRole role, QuantType type);

}  // namespace insitu
