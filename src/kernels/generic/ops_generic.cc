// Scalar row operators and attention tiles: the reference every SIMD path is tested against, and
// the path INSITU_ISA=generic runs.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/kernel_table.h"
#include "kernels/ops.h"
#include "quant/float_convert.h"

namespace insitu {
namespace {

void rms_norm_generic(const float* x, const float* w, float* y, int64_t n, float eps) {
  // As ggml_compute_forward_rms_norm_f32: float squares summed in double, then a float scale;
  // the weight is a separate multiply (ggml_mul) applied to the normalised value.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

void rope_apply_generic(const ops::RopeParams& p, const float* cs, float* x, int n_heads,
                        int head_dim) {
  const int half = p.n_dims / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      const float c = cs[2 * i];
      const float s = cs[2 * i + 1];
      const int i0 = p.neox ? i : 2 * i;
      const int i1 = p.neox ? i + half : 2 * i + 1;
      const float x0 = v[i0];
      const float x1 = v[i1];
      v[i0] = x0 * c - x1 * s;
      v[i1] = x0 * s + x1 * c;
    }
  }
}

void softmax_generic(float* x, int64_t n) {
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(x[i] - mx);
    x[i] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float dot_f32_generic(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

float dot_f16_generic(const float* a, const uint16_t* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * fp16_to_fp32(b[i]);
  return s;
}

void axpy_f32_generic(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void axpy_f16_generic(float alpha, const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * fp16_to_fp32(x[i]);
}

void store_f16_generic(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void load_f16_generic(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

void attn_qk_generic(const float* q, int n_rows, const float* k, int n_keys, int d, float* s) {
  for (int r = 0; r < n_rows; ++r)
    for (int j = 0; j < n_keys; ++j)
      s[static_cast<int64_t>(r) * n_keys + j] =
          dot_f32_generic(q + static_cast<int64_t>(r) * d, k + static_cast<int64_t>(j) * d, d);
}

float attn_softmax_generic(float* s, int n, float scale, float* m, float* l) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int j = 0; j < n; ++j) mx = std::max(mx, s[j] * scale);
  const float m_new = std::max(*m, mx);
  if (m_new == -std::numeric_limits<float>::infinity()) {
    std::fill(s, s + n, 0.0f);
    return 1.0f;
  }
  const float alpha = std::exp(*m - m_new);
  float sum = 0.0f;
  for (int j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] * scale - m_new);
    sum += s[j];
  }
  *l = *l * alpha + sum;
  *m = m_new;
  return alpha;
}

void attn_pv_generic(const float* p, int n_rows, const float* v, int n_keys, int d,
                     const float* alpha, float* acc) {
  for (int r = 0; r < n_rows; ++r) {
    float* a = acc + static_cast<int64_t>(r) * d;
    for (int i = 0; i < d; ++i) a[i] *= alpha[r];
    for (int j = 0; j < n_keys; ++j)
      axpy_f32_generic(p[static_cast<int64_t>(r) * n_keys + j], v + static_cast<int64_t>(j) * d,
                       a, d);
  }
}

}  // namespace

void fill_generic_ops(OpsKernels& t) {
  t.rms_norm = rms_norm_generic;
  t.rope_apply = rope_apply_generic;
  t.softmax = softmax_generic;
  t.dot_f32 = dot_f32_generic;
  t.dot_f16 = dot_f16_generic;
  t.axpy_f32 = axpy_f32_generic;
  t.axpy_f16 = axpy_f16_generic;
  t.store_f16 = store_f16_generic;
  t.load_f16 = load_f16_generic;
  t.attn_qk = attn_qk_generic;
  t.attn_softmax = attn_softmax_generic;
  t.attn_pv = attn_pv_generic;
}

}  // namespace insitu
