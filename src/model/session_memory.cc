#include "model/session_memory.h"

#include <algorithm>

#include "model/model_internal.h"

namespace insitu {

static_assert(kSessionMaxBatch == kMaxBatch, "session_memory.h must follow the Session's batch");

int kv_cache_layer_positions(const ModelConfig& c, int il, int n_ctx) {
  if (!c.layer_is_sliding(il)) return n_ctx;
  return static_cast<int>(std::min<int64_t>(n_ctx, int64_t{c.sliding_window} + kSessionMaxBatch));
}

int64_t kv_cache_layer_elements(const ModelConfig& c, int il, int n_ctx) {
  return static_cast<int64_t>(kv_cache_layer_positions(c, il, n_ctx)) * c.n_head_kv * c.head_dim;
}

uint64_t kv_cache_bytes(const ModelConfig& c, int n_ctx, KvCacheType type) {
  const uint64_t elt = type == KvCacheType::kF16 ? 2 : 4;
  uint64_t total = 0;
  for (int il = 0; il < c.n_layer; ++il)
    total += 2 * elt * static_cast<uint64_t>(kv_cache_layer_elements(c, il, n_ctx));
  return total;
}

uint64_t session_scratch_bytes(const ModelConfig& c, int n_ctx, int n_threads, int n_batch) {
  const uint64_t n = static_cast<uint64_t>(std::max(n_batch, 0));
  const uint64_t E = c.n_embd, D = c.head_dim, F = c.n_ff;
  const uint64_t QW = static_cast<uint64_t>(c.n_head) * D;
  const uint64_t KW = static_cast<uint64_t>(c.n_head_kv) * D;
  uint64_t floats = n * (3 * E + 2 * QW + 2 * KW + 2 * F + 2 * D);
  uint64_t ints = 0;
  if (c.is_moe()) {
    const uint64_t nk = n * static_cast<uint64_t>(c.n_expert_used);
    floats += n * static_cast<uint64_t>(c.n_expert) + nk + n * E + nk * E;
    ints += 2 * nk;
  }
  floats += static_cast<uint64_t>(std::max(n_threads, 1)) * static_cast<uint64_t>(n_ctx);
  return 4 * floats + 4 * ints;
}

uint64_t session_bytes(const ModelConfig& c, int n_ctx, KvCacheType type, int n_threads) {
  const int n_batch = std::min(n_ctx, kSessionMaxBatch);
  return kv_cache_bytes(c, n_ctx, type) + session_scratch_bytes(c, n_ctx, n_threads, n_batch) +
         4 * static_cast<uint64_t>(c.n_vocab);
}

uint64_t Session::kv_cache_bytes() const {
  const State& st = *state_;
  uint64_t total = 0;
  for (const auto* v : {&st.k16, &st.v16})
    for (const auto& layer : *v) total += layer.size() * sizeof(uint16_t);
  for (const auto* v : {&st.k32, &st.v32})
    for (const auto& layer : *v) total += layer.size() * sizeof(float);
  return total;
}

uint64_t Session::scratch_bytes() const {
  const State& st = *state_;
  uint64_t total = 0;
  for (const std::vector<float>* v :
       {&st.x, &st.xn, &st.q, &st.k, &st.v, &st.att, &st.tmp, &st.gate, &st.up, &st.router,
        &st.moe_w, &st.moe_x, &st.moe_y, &st.rope_cs, &st.rope_cs_local})
    total += v->size() * sizeof(float);
  total += (st.moe_ids.size() + st.moe_rows.size()) * sizeof(int32_t);
  for (const std::vector<float>& s : st.scores) total += s.size() * sizeof(float);
  return total;
}

}  // namespace insitu
