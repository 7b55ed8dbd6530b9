#include "model/ops.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>

#include "kernels/cpu_features.h"
#include "quant/float_convert.h"

namespace insitu::ops {

// AVX2 + FMA + F16C versions, in ops_avx2.cc (compiled with those flags).
float dot_f32_avx2(const float* a, const float* b, int64_t n);
float dot_f16_avx2(const float* a, const uint16_t* b, int64_t n);
void axpy_f32_avx2(float alpha, const float* x, float* y, int64_t n);
void axpy_f16_avx2(float alpha, const uint16_t* x, float* y, int64_t n);
void store_f16_avx2(const float* x, uint16_t* y, int64_t n);

namespace {

bool use_avx2() {
  static const bool v = default_isa() != Isa::kGeneric;
  return v;
}

}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
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

void rope_cache(const RopeParams& p, int64_t pos, float* cs) {
  // ggml_rope_cache_init: the angle starts at the position and is multiplied by
  // theta_scale = base^(-2/n_dims) once per pair, in float (no YaRN: ext_factor 0, mscale 1).
  const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_dims));
  float theta = static_cast<float>(pos);
  for (int i = 0; i < p.n_dims / 2; ++i) {
    const float ff = p.freq_factors.empty() ? 1.0f : p.freq_factors[i];
    const float t = p.freq_scale * (theta / ff);
    cs[2 * i] = std::cos(t);
    cs[2 * i + 1] = std::sin(t);
    theta *= theta_scale;
  }
}

void rope_apply(const RopeParams& p, const float* cs, float* x, int n_heads, int head_dim) {
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

void softmax(float* x, int64_t n) {
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

float silu(float x) { return x / (1.0f + std::exp(-x)); }

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  constexpr float kCoef = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoef * x * x)));
}

namespace {

// gelu_tanh of every fp16 value, rounded to fp16: ggml's ggml_table_gelu_f16.
const std::array<uint16_t, 65536>& gelu_table() {
  static const std::unique_ptr<std::array<uint16_t, 65536>> table = [] {
    auto t = std::make_unique<std::array<uint16_t, 65536>>();
    for (uint32_t i = 0; i < 65536; ++i)
      (*t)[i] = fp32_to_fp16(gelu_tanh(fp16_to_fp32(static_cast<uint16_t>(i))));
    return t;
  }();
  return *table;
}

}  // namespace

float gelu_tanh_ggml(float x) {
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return fp16_to_fp32(gelu_table()[fp32_to_fp16(x)]);
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = silu(gate[i]) * up[i];
}

void geglu(const float* gate, const float* up, float* out, int64_t n) {
  const std::array<uint16_t, 65536>& table = gelu_table();
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    float g;
    if (x <= -10.0f) g = 0.0f;
    else if (x >= 10.0f) g = x;
    else g = fp16_to_fp32(table[fp32_to_fp16(x)]);
    out[i] = g * up[i];
  }
}

float dot_f32(const float* a, const float* b, int64_t n) {
  if (use_avx2()) return dot_f32_avx2(a, b, n);
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

float dot_f16(const float* a, const uint16_t* b, int64_t n) {
  if (use_avx2()) return dot_f16_avx2(a, b, n);
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * fp16_to_fp32(b[i]);
  return s;
}

void axpy_f32(float alpha, const float* x, float* y, int64_t n) {
  if (use_avx2()) return axpy_f32_avx2(alpha, x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void axpy_f16(float alpha, const uint16_t* x, float* y, int64_t n) {
  if (use_avx2()) return axpy_f16_avx2(alpha, x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * fp16_to_fp32(x[i]);
}

void store_f16(const float* x, uint16_t* y, int64_t n) {
  if (use_avx2()) return store_f16_avx2(x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

}  // namespace insitu::ops
