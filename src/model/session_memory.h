// The memory a Session holds, from the model's configuration alone: its KV cache and its scratch.
//
// `insitu tune` and `--quant auto` compute the context a model has room for with these functions,
// and tests check them against a Session's actual allocations (Session::kv_cache_bytes,
// Session::scratch_bytes), so the estimate and the allocation cannot drift apart.
//
// What a Session allocates, per model/session.cc:
//   * KV cache: per layer, K and V of [positions, n_head_kv * head_dim] elements in the cache type
//     (f16: 2 bytes, f32: 4), allocated when the layer first stores into it. A global layer holds
//     all n_ctx positions; a sliding-window layer (Gemma 3) is a ring of
//     min(n_ctx, window + kSessionMaxBatch) positions: the window's keys plus one micro-batch's, so
//     a batch never overwrites a key one of its own queries still sees (llama.cpp sizes its SWA
//     cache as n_swa + n_ubatch the same way).
//   * scratch for a micro-batch of n tokens (at most kMaxBatch = 512): residual, normed input and
//     a temporary [n, n_embd] each; q and attention output [n, n_head * head_dim]; k, v
//     [n, n_head_kv * head_dim]; MLP gate and up [n, n_ff]; RoPE tables [n, head_dim] for global
//     and local layers; for a mixture of experts the router [n, n_expert] and the routed rows'
//     weights, ids, inputs and outputs; plus one [n_ctx] score row per pool thread. All f32
//     (the ids int32).
#pragma once

#include <cstdint>

#include "model/config.h"
#include "model/model.h"

namespace insitu {

// Tokens per forward micro-batch (kMaxBatch in model/model_internal.h, which this equals).
inline constexpr int kSessionMaxBatch = 512;

// Positions layer il's KV cache holds for a context of n_ctx tokens (see above).
int kv_cache_layer_positions(const ModelConfig& config, int il, int n_ctx);

// Elements of layer il's K cache (and again of its V cache) for a context of n_ctx tokens.
int64_t kv_cache_layer_elements(const ModelConfig& config, int il, int n_ctx);

// Bytes of the whole KV cache (every layer, K and V) for n_ctx tokens.
uint64_t kv_cache_bytes(const ModelConfig& config, int n_ctx, KvCacheType type);

// Bytes of a Session's scratch once it has evaluated a batch of n_batch tokens (the most it holds
// at once: min(prompt, kSessionMaxBatch)), with a pool of n_threads threads and n_ctx positions.
uint64_t session_scratch_bytes(const ModelConfig& config, int n_ctx, int n_threads, int n_batch);

// Everything a Session for n_ctx tokens can hold: the full KV cache and the scratch of its largest
// micro-batch (min(n_ctx, kSessionMaxBatch) tokens), plus one row of logits [n_vocab] f32 that the
// generator keeps for sampling.
uint64_t session_bytes(const ModelConfig& config, int n_ctx, KvCacheType type, int n_threads);

}  // namespace insitu
