#include "kernels/ops.h"

#include <array>
#include <cmath>
#include <memory>

#include "kernels/kernel_table.h"
#include "quant/float_convert.h"

namespace insitu::ops {

namespace {

const OpsKernels& k() { return active_kernels().ops; }

}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  k().rms_norm(x, w, y, n, eps);
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
  k().rope_apply(p, cs, x, n_heads, head_dim);
}

void softmax(float* x, int64_t n) { k().softmax(x, n); }

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

float dot_f32(const float* a, const float* b, int64_t n) { return k().dot_f32(a, b, n); }
float dot_f16(const float* a, const uint16_t* b, int64_t n) { return k().dot_f16(a, b, n); }
void axpy_f32(float alpha, const float* x, float* y, int64_t n) { k().axpy_f32(alpha, x, y, n); }
void axpy_f16(float alpha, const uint16_t* x, float* y, int64_t n) {
  k().axpy_f16(alpha, x, y, n);
}
void store_f16(const float* x, uint16_t* y, int64_t n) { k().store_f16(x, y, n); }
void load_f16(const uint16_t* x, float* y, int64_t n) { k().load_f16(x, y, n); }

}  // namespace insitu::ops
