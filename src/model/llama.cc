// The Llama architecture (Llama 2/3, SmolLM2, TinyLlama, Mistral without sliding window), as
// llama.cpp builds its graph (src/models/llama.cpp, llama.cpp as vendored in llama-cpp-python
// 0.3.36): pre-norm RMSNorm blocks, RoPE on adjacent pairs (GGUF's Q/K rows are permuted for it),
// grouped-query attention scaled by 1/sqrt(head_dim), SwiGLU MLP.
//
// Mixtral is this architecture with the MLP replaced by a sparse mixture of SwiGLU experts, as
// llama.cpp's build_moe_ffn does for it (src/llama-graph.cpp; softmax gating, weights normalised):
// router logits -> softmax over the experts -> the k most probable -> their probabilities divided
// by their sum -> out = sum over the k slots, in order, of weight * down(silu(gate(x)) * up(x)).
// A batch is grouped by expert: each expert's rows are gathered and multiplied once.
#include <algorithm>
#include <numeric>

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
  for (int t = 0; t < n; ++t)
    ops::rope_cache(rp, st.row_pos[t], st.rope_cs.data() + t * c.head_dim);
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
  if (c.is_moe()) {
    moe_llama(il, xn, n, st.tmp.data());
  } else {
    linear(*L.ffn_gate, nullptr, xn, n, st.gate.data());
    linear(*L.ffn_up, nullptr, xn, n, st.up.data());
    ops::swiglu(st.gate.data(), st.up.data(), st.gate.data(), n * F);
    linear(*L.ffn_down, nullptr, st.gate.data(), n, st.tmp.data());
  }
  detail::add_inplace(x, st.tmp.data(), n * E);
}

void Session::moe_llama(int il, const float* xn, int n, float* out) {
  const Model& m = *model_;
  const ModelConfig& c = m.config();
  State& st = *state_;
  const Model::Layer& L = m.layers_[il];
  const int n_expert = c.n_expert, k = c.n_expert_used;
  const int64_t E = c.n_embd, F = c.n_ff;

  // Routing: probabilities over the experts, the k largest (ties to the lower index), renormalised.
  linear(*L.ffn_gate_inp, nullptr, xn, n, st.router.data());
  std::vector<int32_t> order(static_cast<size_t>(n_expert));
  for (int t = 0; t < n; ++t) {
    float* p = st.router.data() + static_cast<int64_t>(t) * n_expert;
    ops::softmax(p, n_expert);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [p](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    float sum = 0;
    for (int s = 0; s < k; ++s) sum += p[order[s]];
    for (int s = 0; s < k; ++s) {
      st.moe_ids[t * k + s] = order[s];
      st.moe_w[t * k + s] = p[order[s]] / sum;
    }
  }

  // Each expert once, over the rows routed to it (gathered in token order).
  for (int e = 0; e < n_expert; ++e) {
    int n_e = 0;
    for (int r = 0; r < n * k; ++r)
      if (st.moe_ids[r] == e) st.moe_rows[n_e++] = r;
    if (n_e == 0) continue;
    for (int i = 0; i < n_e; ++i) {
      const float* src = xn + static_cast<int64_t>(st.moe_rows[i] / k) * E;
      std::copy(src, src + E, st.moe_x.data() + static_cast<int64_t>(i) * E);
    }
    linear_expert(*L.ffn_gate_exps, e, st.moe_x.data(), n_e, st.gate.data());
    linear_expert(*L.ffn_up_exps, e, st.moe_x.data(), n_e, st.up.data());
    ops::swiglu(st.gate.data(), st.up.data(), st.gate.data(), n_e * F);
    linear_expert(*L.ffn_down_exps, e, st.gate.data(), n_e, st.moe_x.data());
    for (int i = 0; i < n_e; ++i) {
      const float* y = st.moe_x.data() + static_cast<int64_t>(i) * E;
      std::copy(y, y + E, st.moe_y.data() + static_cast<int64_t>(st.moe_rows[i]) * E);
    }
  }

  // Weighted sum over the slots in slot order.
  for (int t = 0; t < n; ++t) {
    float* o = out + static_cast<int64_t>(t) * E;
    for (int s = 0; s < k; ++s) {
      const float w = st.moe_w[t * k + s];
      const float* y = st.moe_y.data() + static_cast<int64_t>(t * k + s) * E;
      if (s == 0) {
        for (int64_t i = 0; i < E; ++i) o[i] = w * y[i];
      } else {
        for (int64_t i = 0; i < E; ++i) o[i] += w * y[i];
      }
    }
  }
}

}  // namespace insitu
