// Causal (optionally sliding-window) multi-head attention with grouped KV heads over a KV cache.
//
// attention() is a tiled kernel with an online softmax (flash-attention style): each task owns one
// KV head g, a block of query tokens and a range of keys; it holds the block's rows (every query
// head of g's group for every token of the block: R = tokens x group rows) and walks the keys in
// tiles, converting each K/V tile from the f16 (or f32) cache to f32 once for all R rows,
//   S = Q K^T (R x tile),  m' = max(m, rowmax(S * scale)),  P = exp(S * scale - m'),
//   l = l * e^(m - m') + rowsum(P),  acc = acc * e^(m - m') + P V,
// and finishes with out = acc / l. Tasks are (KV head, query block) pairs; when there are too few
// of them to occupy the threads (single-token decode at depth), each pair's keys are also split
// into ranges whose partial (m, l, acc) states are merged at the end. The tiles go through the
// active KernelTable (OpsKernels::attn_*), so INSITU_ISA chooses their path.
//
// Numerics: with an f16 K cache q is rounded to f16 before q.k, as llama.cpp does; scores and
// probabilities stay f32 and V is accumulated in f32 (llama.cpp's flash path converts Q to f16 and
// accumulates V in f16/f32; its non-flash path rounds the probabilities to f16).
// attention_reference() is the straightforward two-pass version (whole score row, softmax, then
// V), with llama.cpp's non-flash roundings; tests compare the two.
//
// Thread safety: pure functions of their arguments; scratch is per thread.
#pragma once

#include <cstdint>

#include "util/thread_pool.h"

namespace insitu {

struct AttentionArgs {
  const float* q = nullptr;  // [n_tokens, n_head * head_dim], RoPE applied
  float* out = nullptr;      // [n_tokens, n_head * head_dim]
  int n_tokens = 0;
  int pos0 = 0;        // position of the first query token; keys cover [0, pos0 + n_tokens)
  int n_head = 0;
  int n_head_kv = 0;   // divides n_head
  int head_dim = 0;
  int window = 0;      // > 0: a query at p sees keys at p - window < j <= p
  float scale = 1.0f;  // applied to q·k before the softmax (> 0)
  // Rows of the cache: the key of position j is in row j % cache_rows (a ring for a sliding-window
  // layer; for a global layer every position is below it). Every key a query of the batch sees
  // must still be in its row.
  int cache_rows = 0;
  const uint16_t* k16 = nullptr;  // cache rows [cache_rows, n_head_kv * head_dim] (one of 16/32)
  const uint16_t* v16 = nullptr;
  const float* k32 = nullptr;
  const float* v32 = nullptr;
};

// The tiled kernel, parallel over the pool.
void attention(const AttentionArgs& a, ThreadPool& pool);

// The two-pass reference, parallel over (token, head) pairs.
void attention_reference(const AttentionArgs& a, ThreadPool& pool);

}  // namespace insitu
