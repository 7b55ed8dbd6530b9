// The Llama architecture (Llama 2/3, SmolLM2, TinyLlama, Mistral without sliding window), as
// llama.cpp builds its graph (src/models/llama.cpp, llama.cpp as vendored in llama-cpp-python
// 0.3.36): pre-norm RMSNorm blocks, RoPE on adjacent pairs (GGUF's Q/K rows are permuted for it),
// grouped-query attention scaled by 1/sqrt(head_dim), SwiGLU MLP.
#include "model/model_internal.h"

namespace insitu {

namespace {

ops::RopeParams rope_params(const ModelConfig& c, std::span<const float> freq_factors) {
  ops::RopeParams rp;
  rp.n_dims = c.head_dim;
  rp.freq_base = c.rope_freq_base;
  rp.freq_scale =
      c.rope_scaling.kind == RopeScaling::Kind::kLinear ? 1.0f / c.rope_scaling.factor : 1.0f;
  rp.freq_factors = freq_factors;
  rp.neox = false;
  return rp;
}

}  // namespace

void Session::prepare_llama(int n) {
  const ModelConfig& c = model_->config();
  State& st = *state_;
  const ops::RopeParams rp = rope_params(c, model_->rope_freq_factors_);
  for (int t = 0; t < n; ++t) ops::rope_cache(rp, st.pos0 + t, st.rope_cs.data() + t * c.head_dim);
}

void Session::layer_llama(int il, float* x, int n) {
  const Model& m = *model_;
  const ModelConfig& c = m.config();
  State& st = *state_;
  const int64_t E = c.n_embd, F = c.n_ff, D = c.head_dim;
  const int64_t QW = static_cast<int64_t>(c.n_head) * D, KW = st.kv_dim;
  const ops::RopeParams rp = rope_params(c, m.rope_freq_factors_);
  const Model::Layer& L = m.layers_[il];
  float* xn = st.xn.data();

  detail::rms_norm_rows(x, L.attn_norm, xn, n, E, c.rms_eps, pool_);
  linear(*L.wq, L.bq, xn, n, st.q.data());
  linear(*L.wk, L.bk, xn, n, st.k.data());
  linear(*L.wv, L.bv, xn, n, st.v.data());
  for (int t = 0; t < n; ++t) {
    const float* cs = st.rope_cs.data() + t * D;
    ops::rope_apply(rp, cs, st.q.data() + t * QW, c.n_head, c.head_dim);
    ops::rope_apply(rp, cs, st.k.data() + t * KW, c.n_head_kv, c.head_dim);
  }
  attend(il, n, 0, c.attention_scale());
  linear(*L.wo, L.bo, st.att.data(), n, st.tmp.data());
  detail::add_inplace(x, st.tmp.data(), n * E);

  detail::rms_norm_rows(x, L.ffn_norm, xn, n, E, c.rms_eps, pool_);
  linear(*L.ffn_gate, nullptr, xn, n, st.gate.data());
  linear(*L.ffn_up, nullptr, xn, n, st.up.data());
  ops::swiglu(st.gate.data(), st.up.data(), st.gate.data(), n * F);
  linear(*L.ffn_down, nullptr, st.gate.data(), n, st.tmp.data());
  detail::add_inplace(x, st.tmp.data(), n * E);
}

}  // namespace insitu
