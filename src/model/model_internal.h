// Private definitions shared by the model's translation units (loader, session, architectures).
// Not part of the library's interface.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/ops.h"

namespace insitu {

// Per-layer weights, resolved once at load. Pointers refer into Model::weights_; optional ones
// are null when the architecture or file has none. Norm weights are always f32 with GGUF
// semantics (gemma3: already 1 + w).
struct Model::Layer {
  const Weight* attn_norm = nullptr;
  const Weight* wq = nullptr;
  const Weight* wk = nullptr;
  const Weight* wv = nullptr;
  const Weight* wo = nullptr;
  const Weight* bq = nullptr;  // optional biases
  const Weight* bk = nullptr;
  const Weight* bv = nullptr;
  const Weight* bo = nullptr;
  const Weight* q_norm = nullptr;          // gemma3
  const Weight* k_norm = nullptr;          // gemma3
  const Weight* post_attn_norm = nullptr;  // gemma3
  const Weight* ffn_norm = nullptr;
  const Weight* ffn_gate = nullptr;
  const Weight* ffn_up = nullptr;
  const Weight* ffn_down = nullptr;
  const Weight* post_ffw_norm = nullptr;   // gemma3
  // Mixture of experts (config.is_moe(); then the dense ffn_gate/up/down are null).
  const Weight* ffn_gate_inp = nullptr;   // router [n_expert, n_embd]
  const Weight* ffn_gate_exps = nullptr;  // [n_expert, n_ff, n_embd]
  const Weight* ffn_up_exps = nullptr;    // [n_expert, n_ff, n_embd]
  const Weight* ffn_down_exps = nullptr;  // [n_expert, n_embd, n_ff]

  // Calls f(ptr) for every weight slot above (null ones included), so code that walks a layer's
  // weights (streaming, copying a model) cannot miss one.
  template <class F>
  void visit(F&& f) {
    for (const Weight** p : {&attn_norm, &wq, &wk, &wv, &wo, &bq, &bk, &bv, &bo, &q_norm, &k_norm,
                             &post_attn_norm, &ffn_norm, &ffn_gate, &ffn_up, &ffn_down,
                             &post_ffw_norm, &ffn_gate_inp, &ffn_gate_exps, &ffn_up_exps,
                             &ffn_down_exps})
      f(*p);
  }
};

// A conversion a streaming load left undone (Model::load_streaming): the weight as stored in its
// file, and what prepare_layer does to it.
struct Model::Deferred {
  Weight* weight = nullptr;  // in Model::weights_
  int layer = -1;
  Weight stored;             // the weight as loaded: mapped bytes, rows in Hugging Face order
  int permute_heads = 0;     // > 0: permute_rows_to_gguf with this many heads
  std::vector<Weight> expert_sources;  // non-empty: stack_experts from these
};

// A weight in-situ quantization converted, as it was loaded (Model::re_isq converts from it again).
struct Model::IsqSource {
  const Weight* weight = nullptr;  // in Model::weights_
  Weight original;                 // mapped bytes, stored type
  int permute_heads = 0;           // > 0: `original` rows are in Hugging Face order
  // Non-empty for a stack of experts converted straight from its per-expert sources (`original`
  // then has no data): those sources, in expert order.
  std::vector<Weight> experts;
};

// A source file's size and modification time at load.
struct Model::SourceStamp {
  std::string path;
  uintmax_t size = 0;
  std::filesystem::file_time_type mtime;
};

// Tokens per forward micro-batch: bounds scratch memory for long prompts (as llama.cpp's
// n_ubatch does); results do not depend on it because attention is causal.
inline constexpr int kMaxBatch = 512;

// Largest supported head_dim (config validation enforces it).
inline constexpr int kMaxHeadDim = 1024;

struct Session::State {
  KvCacheType kv_type = KvCacheType::kF16;
  int n_ctx = 0;
  int kv_dim = 0;  // n_head_kv * head_dim
  // Per layer: the positions its cache holds (model/session_memory.h kv_cache_layer_positions):
  // n_ctx, or fewer for a sliding-window layer, whose cache is then a ring (position p in row
  // p % positions).
  std::vector<int> kv_positions;
  // Per layer: [kv_positions, kv_dim] keys and values, fp16 bits or floats; allocated when the
  // layer first stores into it (empty before).
  std::vector<std::vector<uint16_t>> k16, v16;
  std::vector<std::vector<float>> k32, v32;

  // Scratch for one micro-batch of n tokens.
  std::vector<float> x;     // [n, n_embd] residual stream
  std::vector<float> xn;    // [n, n_embd] normed input
  std::vector<float> q;     // [n, n_head * head_dim]
  std::vector<float> k;     // [n, kv_dim]
  std::vector<float> v;     // [n, kv_dim]
  std::vector<float> att;   // [n, n_head * head_dim]
  std::vector<float> tmp;   // [n, n_embd]
  std::vector<float> gate;  // [n, n_ff]
  std::vector<float> up;    // [n, n_ff]
  // Mixture of experts, for a micro-batch of n tokens with k = n_expert_used.
  std::vector<float> router;        // [n, n_expert] logits, then probabilities
  std::vector<int32_t> moe_ids;     // [n, k] chosen experts, most probable first
  std::vector<float> moe_w;         // [n, k] their renormalised weights
  std::vector<int32_t> moe_rows;    // rows (t * k + slot) routed to the current expert
  std::vector<float> moe_x;         // [n, n_embd] the current expert's gathered inputs
  std::vector<float> moe_y;         // [n * k, n_embd] every (token, slot)'s expert output
  std::vector<float> rope_cs;              // [n, head_dim] cos/sin per position (global layers)
  std::vector<float> rope_cs_local;        // [n, head_dim] for sliding-window layers (gemma3)
  std::vector<std::vector<float>> scores;  // per thread: [n_ctx]
  int pos0 = 0;  // position of the batch's (or the segment's being stored) first token

  // The micro-batch's sequences: rows [row0, row0 + n) of the batch belong to the cache of `kv`
  // at positions [pos0, pos0 + n). One segment (this state) when a session evaluates its own
  // tokens; one per session in a batched step (Session::step), whose scratch is the first
  // session's. Attention and the KV store go segment by segment; everything else runs on all rows.
  struct Segment {
    State* kv = nullptr;
    int row0 = 0;
    int n = 0;
    int pos0 = 0;
  };
  std::vector<Segment> segments;
  std::vector<int> row_pos;  // [n] each row's position (RoPE)
};

namespace detail {

// y[n, w.n_out] = x[n, w.n_in] @ w^T (+ bias) through insitu::matmul.
void linear(const Weight& w, const Weight* bias, const float* x, int64_t n, float* y,
            ThreadPool& pool);

// rms_norm of n rows of width d with weight w (f32), x -> y (may alias).
void rms_norm_rows(const float* x, const Weight* w, float* y, int64_t n, int64_t d, float eps,
                   ThreadPool& pool);

struct AttentionArgs {
  const float* q = nullptr;  // [n_tokens, n_head * head_dim], RoPE applied
  float* out = nullptr;      // [n_tokens, n_head * head_dim]
  int n_tokens = 0;
  int pos0 = 0;        // position of the first query token; keys cover [0, pos0 + n_tokens)
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int window = 0;      // > 0: a query at p sees keys at p - window < j <= p
  float scale = 1.0f;  // applied to q·k before the softmax
  // Rows of the cache: the key of position j is in row j % cache_rows (a ring for a sliding-window
  // layer; for a global layer every position is below it).
  int cache_rows = 0;
  const uint16_t* k16 = nullptr;  // cache rows [cache_rows, n_head_kv * head_dim] (one of 16/32)
  const uint16_t* v16 = nullptr;
  const float* k32 = nullptr;
  const float* v32 = nullptr;
};

// Causal (optionally sliding-window) multi-head attention with grouped KV heads, parallel over
// (token, head) pairs; `scores` holds one [n_ctx] buffer per pool thread.
void attention(const AttentionArgs& a, std::vector<std::vector<float>>& scores, ThreadPool& pool);

// Writes the batch's keys and values (rows [n, kv_dim]) into the layer's cache at pos0 (row
// position % kv_positions[il]), allocating the cache on first use.
void store_kv(Session::State& st, int il, const float* k, const float* v, int n);

// AttentionArgs pointing at layer il's cache.
AttentionArgs cache_args(const Session::State& st, int il);

// x[i] += y[i] for n values.
void add_inplace(float* x, const float* y, int64_t n);

}  // namespace detail

}  // namespace insitu
