// The Llama architecture (Llama 2/3, SmolLM2, TinyLlama, Mistral without sliding window), as
// llama.cpp builds its graph (src/models/llama.cpp, llama.cpp as vendored in llama-cpp-python
// 0.3.36): pre-norm RMSNorm blocks, RoPE on adjacent pairs (GGUF's Q/K rows are permuted for it),
// grouped-query attention scaled by 1/sqrt(head_dim), SwiGLU MLP.
#include "model/model_internal.h"

namespace insitu {

void Session::forward_llama(int n) {
  const Model& m = *model_;
  const ModelConfig& c = m.config_;
  State& st = *state_;
  const int64_t E = c.n_embd, F = c.n_ff, D = c.head_dim;
  const int64_t QW = static_cast<int64_t>(c.n_head) * D, KW = st.kv_dim;

  ops::RopeParams rp;
  rp.n_dims = c.head_dim;
  rp.freq_base = c.rope_freq_base;
  rp.freq_scale = c.rope_scaling.kind == RopeScaling::Kind::kLinear ? 1.0f / c.rope_scaling.factor : 1.0f;
  rp.freq_factors = m.rope_freq_factors_;
  rp.neox = false;
  for (int t = 0; t < n; ++t) ops::rope_cache(rp, st.pos0 + t, st.rope_cs.data() + t * D);

  float* x = st.x.data();
  float* xn = st.xn.data();
  for (int il = 0; il < c.n_layer; ++il) {
    const Model::Layer& L = m.layers_[il];
    detail::rms_norm_rows(x, L.attn_norm, xn, n, E, c.rms_eps, pool_);
    detail::linear(*L.wq, L.bq, xn, n, st.q.data(), pool_);
    detail::linear(*L.wk, L.bk, xn, n, st.k.data(), pool_);
    detail::linear(*L.wv, L.bv, xn, n, st.v.data(), pool_);
    for (int t = 0; t < n; ++t) {
      const float* cs = st.rope_cs.data() + t * D;
      ops::rope_apply(rp, cs, st.q.data() + t * QW, c.n_head, c.head_dim);
      ops::rope_apply(rp, cs, st.k.data() + t * KW, c.n_head_kv, c.head_dim);
    }
    detail::store_kv(st, il, st.k.data(), st.v.data(), n);

    detail::AttentionArgs a = detail::cache_args(st, il);
    a.q = st.q.data();
    a.out = st.att.data();
    a.n_tokens = n;
    a.n_head = c.n_head;
    a.n_head_kv = c.n_head_kv;
    a.head_dim = c.head_dim;
    a.scale = c.attention_scale();
    detail::attention(a, st.scores, pool_);
    detail::linear(*L.wo, L.bo, st.att.data(), n, st.tmp.data(), pool_);
    detail::add_inplace(x, st.tmp.data(), n * E);

    detail::rms_norm_rows(x, L.ffn_norm, xn, n, E, c.rms_eps, pool_);
    detail::linear(*L.ffn_gate, nullptr, xn, n, st.gate.data(), pool_);
    detail::linear(*L.ffn_up, nullptr, xn, n, st.up.data(), pool_);
    ops::swiglu(st.gate.data(), st.up.data(), st.gate.data(), n * F);
    detail::linear(*L.ffn_down, nullptr, st.gate.data(), n, st.tmp.data(), pool_);
    detail::add_inplace(x, st.tmp.data(), n * E);
  }
}

}  // namespace insitu
