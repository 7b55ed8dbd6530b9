// The Gemma 3 text architecture, as llama.cpp builds its graph (src/models/gemma3.cpp, llama.cpp
// as vendored in llama-cpp-python 0.3.36): embeddings scaled by sqrt(n_embd); "sandwich" RMSNorm
// around attention and MLP (norm weights stored as 1 + w); per-head RMSNorm of Q and K; NeoX
// RoPE with base rope_freq_base_local on sliding-window layers and rope_freq_base on the global
// ones (every sliding_window_pattern-th layer); Q scaled by 1/sqrt(query_pre_attn_scalar) before
// attention; GELU(tanh)-gated MLP; optional final logit soft-capping (in Session::run_output).
// The sqrt(n_embd) embedding scale is applied by Session::embed.
#include <cmath>

#include "model/model_internal.h"

namespace insitu {

namespace {

// RoPE of the global (full-attention) layers and of the sliding-window ones.
struct GemmaRope {
  ops::RopeParams global, local;
};

GemmaRope rope_params(const ModelConfig& c, std::span<const float> freq_factors) {
  GemmaRope r;
  r.global.n_dims = c.head_dim;
  r.global.freq_base = c.rope_freq_base;
  r.global.freq_scale =
      c.rope_scaling.kind == RopeScaling::Kind::kLinear ? 1.0f / c.rope_scaling.factor : 1.0f;
  r.global.freq_factors = freq_factors;
  r.global.neox = true;
  r.local = r.global;
  r.local.freq_base = c.rope_freq_base_local;
  r.local.freq_scale = 1.0f;
  r.local.freq_factors = {};
  return r;
}

}  // namespace

void Session::prepare_gemma3(int n) {
  const ModelConfig& c = model_->config();
  State& st = *state_;
  const GemmaRope r = rope_params(c, model_->rope_freq_factors_);
  for (int t = 0; t < n; ++t) {
    ops::rope_cache(r.global, st.row_pos[t], st.rope_cs.data() + t * c.head_dim);
    ops::rope_cache(r.local, st.row_pos[t], st.rope_cs_local.data() + t * c.head_dim);
  }
}

void Session::layer_gemma3(int il, float* x, int n) {
  const Model& m = *model_;
  const ModelConfig& c = m.config();
  State& st = *state_;
  const int64_t E = c.n_embd, F = c.n_ff, D = c.head_dim;
  const int64_t QW = static_cast<int64_t>(c.n_head) * D, KW = st.kv_dim;
  const GemmaRope r = rope_params(c, m.rope_freq_factors_);
  const float q_scale = c.attention_scale();
  const Model::Layer& L = m.layers_[il];
  const bool sliding = c.layer_is_sliding(il);
  const ops::RopeParams& rp = sliding ? r.local : r.global;
  const float* rope_cs = sliding ? st.rope_cs_local.data() : st.rope_cs.data();
  float* xn = st.xn.data();

  detail::rms_norm_rows(x, L.attn_norm, xn, n, E, c.rms_eps, pool_);
  linear(*L.wq, L.bq, xn, n, st.q.data());
  linear(*L.wk, L.bk, xn, n, st.k.data());
  linear(*L.wv, L.bv, xn, n, st.v.data());
  detail::rms_norm_rows(st.q.data(), L.q_norm, st.q.data(), static_cast<int64_t>(n) * c.n_head, D,
                        c.rms_eps, pool_);
  detail::rms_norm_rows(st.k.data(), L.k_norm, st.k.data(), static_cast<int64_t>(n) * c.n_head_kv,
                        D, c.rms_eps, pool_);
  for (int t = 0; t < n; ++t) {
    const float* cs = rope_cs + t * D;
    ops::rope_apply(rp, cs, st.q.data() + t * QW, c.n_head, c.head_dim);
    ops::rope_apply(rp, cs, st.k.data() + t * KW, c.n_head_kv, c.head_dim);
  }
  for (int64_t i = 0; i < n * QW; ++i) st.q[i] *= q_scale;
  attend(il, n, sliding ? c.sliding_window : 0, 1.0f);
  linear(*L.wo, L.bo, st.att.data(), n, st.tmp.data());
  detail::rms_norm_rows(st.tmp.data(), L.post_attn_norm, st.tmp.data(), n, E, c.rms_eps, pool_);
  detail::add_inplace(x, st.tmp.data(), n * E);

  detail::rms_norm_rows(x, L.ffn_norm, xn, n, E, c.rms_eps, pool_);
  linear(*L.ffn_gate, nullptr, xn, n, st.gate.data());
  linear(*L.ffn_up, nullptr, xn, n, st.up.data());
  ops::geglu(st.gate.data(), st.up.data(), st.gate.data(), n * F);
  linear(*L.ffn_down, nullptr, st.gate.data(), n, st.tmp.data());
  detail::rms_norm_rows(st.tmp.data(), L.post_ffw_norm, st.tmp.data(), n, E, c.rms_eps, pool_);
  detail::add_inplace(x, st.tmp.data(), n * E);
}

}  // namespace insitu
