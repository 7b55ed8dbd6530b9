// The Gemma 3 text architecture, as llama.cpp builds its graph (src/models/gemma3.cpp, llama.cpp
// as vendored in llama-cpp-python 0.3.36): embeddings scaled by sqrt(n_embd); "sandwich" RMSNorm
// around attention and MLP (norm weights stored as 1 + w); per-head RMSNorm of Q and K; NeoX
// RoPE with base rope_freq_base_local on sliding-window layers and rope_freq_base on the global
// ones (every sliding_window_pattern-th layer); Q scaled by 1/sqrt(query_pre_attn_scalar) before
// attention; GELU(tanh)-gated MLP; optional final logit soft-capping (in Session::eval_chunk).
#include <cmath>

#include "model/model_internal.h"

namespace insitu {

void Session::forward_gemma3(int n) {
  const Model& m = *model_;
  const ModelConfig& c = m.config_;
  State& st = *state_;
  const int64_t E = c.n_embd, F = c.n_ff, D = c.head_dim;
  const int64_t QW = static_cast<int64_t>(c.n_head) * D, KW = st.kv_dim;

  ops::RopeParams global;
  global.n_dims = c.head_dim;
  global.freq_base = c.rope_freq_base;
  global.freq_scale =
      c.rope_scaling.kind == RopeScaling::Kind::kLinear ? 1.0f / c.rope_scaling.factor : 1.0f;
  global.freq_factors = m.rope_freq_factors_;
  global.neox = true;
  ops::RopeParams local = global;
  local.freq_base = c.rope_freq_base_local;
  local.freq_scale = 1.0f;
  local.freq_factors = {};
  for (int t = 0; t < n; ++t) {
    ops::rope_cache(global, st.pos0 + t, st.rope_cs.data() + t * D);
    ops::rope_cache(local, st.pos0 + t, st.rope_cs_local.data() + t * D);
  }

  float* x = st.x.data();
  float* xn = st.xn.data();
  const float embd_scale = std::sqrt(static_cast<float>(E));
  for (int64_t i = 0; i < n * E; ++i) x[i] *= embd_scale;
  const float q_scale = c.attention_scale();

  for (int il = 0; il < c.n_layer; ++il) {
    const Model::Layer& L = m.layers_[il];
    const bool sliding = c.layer_is_sliding(il);
    const ops::RopeParams& rp = sliding ? local : global;
    const float* rope_cs = sliding ? st.rope_cs_local.data() : st.rope_cs.data();

    detail::rms_norm_rows(x, L.attn_norm, xn, n, E, c.rms_eps, pool_);
    detail::linear(*L.wq, L.bq, xn, n, st.q.data(), pool_);
    detail::linear(*L.wk, L.bk, xn, n, st.k.data(), pool_);
    detail::linear(*L.wv, L.bv, xn, n, st.v.data(), pool_);
    detail::rms_norm_rows(st.q.data(), L.q_norm, st.q.data(), static_cast<int64_t>(n) * c.n_head,
                          D, c.rms_eps, pool_);
    detail::rms_norm_rows(st.k.data(), L.k_norm, st.k.data(),
                          static_cast<int64_t>(n) * c.n_head_kv, D, c.rms_eps, pool_);
    for (int t = 0; t < n; ++t) {
      const float* cs = rope_cs + t * D;
      ops::rope_apply(rp, cs, st.q.data() + t * QW, c.n_head, c.head_dim);
      ops::rope_apply(rp, cs, st.k.data() + t * KW, c.n_head_kv, c.head_dim);
    }
    for (int64_t i = 0; i < n * QW; ++i) st.q[i] *= q_scale;
    detail::store_kv(st, il, st.k.data(), st.v.data(), n);

    detail::AttentionArgs a = detail::cache_args(st, il);
    a.q = st.q.data();
    a.out = st.att.data();
    a.n_tokens = n;
    a.n_head = c.n_head;
    a.n_head_kv = c.n_head_kv;
    a.head_dim = c.head_dim;
    a.window = sliding ? c.sliding_window : 0;
    a.scale = 1.0f;
    detail::attention(a, st.scores, pool_);
    detail::linear(*L.wo, L.bo, st.att.data(), n, st.tmp.data(), pool_);
    detail::rms_norm_rows(st.tmp.data(), L.post_attn_norm, st.tmp.data(), n, E, c.rms_eps, pool_);
    detail::add_inplace(x, st.tmp.data(), n * E);

    detail::rms_norm_rows(x, L.ffn_norm, xn, n, E, c.rms_eps, pool_);
    detail::linear(*L.ffn_gate, nullptr, xn, n, st.gate.data(), pool_);
    detail::linear(*L.ffn_up, nullptr, xn, n, st.up.data(), pool_);
    ops::geglu(st.gate.data(), st.up.data(), st.gate.data(), n * F);
    detail::linear(*L.ffn_down, nullptr, st.gate.data(), n, st.tmp.data(), pool_);
    detail::rms_norm_rows(st.tmp.data(), L.post_ffw_norm, st.tmp.data(), n, E, c.rms_eps, pool_);
    detail::add_inplace(x, st.tmp.data(), n * E);
  }
}

}  // namespace insitu
