// Tensor names and value transforms between GGUF and Hugging Face checkpoints.
//
// GGUF files written by llama.cpp's converter differ from the Hugging Face tensors they came from
// in names and, for some tensors, values:
//   - llama: attn_q / attn_k rows are permuted so that RoPE can rotate adjacent pairs
//     (conversion/llama.py `permute`, llama.cpp as vendored in llama-cpp-python 0.3.36):
//       gguf_row[h*hd + 2*b + a] = hf_row[h*hd + a*hd/2 + b]   for a in {0,1}, b < hd/2
//     with n_head heads for Q and n_head_kv heads for K (their biases likewise);
//   - gemma3: every "*norm.weight" is stored as w + 1 (Gemma3RMSNorm multiplies by 1 + w;
//     conversion/gemma.py `norm_shift`).
// These functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/config.h"

namespace insitu {

// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight"; nullopt for a name the
// architecture has no HF counterpart for (e.g. rope_freqs.weight, derived from config.json).
std::optional<std::string> gguf_to_hf_name(std::string_view gguf_name, Arch arch);

// The inverse; nullopt for a name that is not a known tensor of the architecture.
std::optional<std::string> hf_to_gguf_name(std::string_view hf_name, Arch arch);

// Mixtral's experts: Hugging Face stores one tensor per expert and projection
// ("model.layers.3.block_sparse_moe.experts.5.w1.weight": w1 = gate, w3 = up, w2 = down), GGUF one
// stacked tensor per projection ("blk.3.ffn_gate_exps.weight", ggml ne [n_in, n_out, n_expert],
// expert e's rows at slab e). The router ("block_sparse_moe.gate" / "ffn_gate_inp") is an ordinary
// 2-D tensor mapped by the functions above.
struct HfExpertTensor {
  std::string gguf_name;  // the stacked tensor
  int expert = 0;
};
// nullopt for a name that is not an expert tensor of the architecture.
std::optional<HfExpertTensor> hf_expert_tensor(std::string_view hf_name, Arch arch);
// The inverse: expert `expert`'s Hugging Face tensor of a stacked GGUF tensor, or nullopt.
std::optional<std::string> hf_expert_name(std::string_view gguf_name, int expert, Arch arch);

// How a tensor's values differ between the two files, keyed by its GGUF name.
struct HfTransform {
  int permute_heads = 0;    // > 0: rows permuted with this many heads (llama Q: n_head, K: n_head_kv)
  float norm_shift = 0.0f;  // gguf = hf + norm_shift (gemma3 norms: 1)
};
HfTransform hf_transform(std::string_view gguf_name, const ModelConfig& config);

// Reorders the n_rows rows (each row_bytes bytes, any element type: rows are moved whole) of a
// Q or K projection between HF and GGUF order. to_gguf = true applies the converter's
// permutation, false undoes it. src and dst must not overlap. Throws InvalidArgument when n_rows
// is not a multiple of 2 * n_head.
void permute_qk_rows(const void* src, void* dst, int64_t n_rows, size_t row_bytes, int n_head,
                     bool to_gguf);

}  // namespace insitu
