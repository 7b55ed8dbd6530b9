// Element-wise and per-row operators of the transformer forward pass (everything but matmul).
//
// Each operator follows the arithmetic of ggml's CPU backend (llama.cpp as vendored in
// llama-cpp-python 0.3.36, ggml/src/ggml-cpu/ops.cpp and vec.h) where that matters for matching
// its logits: RMSNorm accumulates the sum of squares in double, RoPE builds its angles by repeated
// multiplication in float, GELU goes through an fp16 table. All functions are pure, single
// threaded and thread-safe; callers parallelise over rows or heads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace insitu::ops {

// y[i] = x[i] / sqrt(mean(x^2) + eps) * (w ? w[i] : 1), for one row of n. y may alias x.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

// RoPE parameters for one layer. Angles for pair i at position p:
//   theta_i = p * freq_scale * base^(-2i/n_dims) / freq_factors[i]
// (freq_factors: llama3 rope_freqs, or empty).
struct RopeParams {
  int n_dims = 0;          // rotated dimensions (== head_dim here)
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;  // 1/linear factor
  std::span<const float> freq_factors;  // n_dims/2 values or empty
  bool neox = false;  // false: rotate (x[2i], x[2i+1]); true: rotate (x[i], x[i + n_dims/2])
};

// Fills cs[2*i] = cos(theta_i), cs[2*i+1] = sin(theta_i) for position pos (n_dims values).
void rope_cache(const RopeParams& p, int64_t pos, float* cs);

// Rotates n_heads heads of head_dim values each (contiguous) using a cache from rope_cache.
void rope_apply(const RopeParams& p, const float* cs, float* x, int n_heads, int head_dim);

// In place: x[i] = exp(x[i] - max) / sum over n values. n >= 1.
void softmax(float* x, int64_t n);

float silu(float x);
// GELU with the tanh approximation, evaluated exactly in float.
float gelu_tanh(float x);
// GELU as ggml's CPU backend computes it (GGML_GELU_FP16): the input rounded to fp16, looked up
// in a table of fp16-rounded results; identity above 10 and 0 below -10.
float gelu_tanh_ggml(float x);

// out[i] = silu(gate[i]) * up[i]  /  out[i] = gelu_tanh_ggml(gate[i]) * up[i]. out may alias.
void swiglu(const float* gate, const float* up, float* out, int64_t n);
void geglu(const float* gate, const float* up, float* out, int64_t n);

// Dot products and accumulations of float activations with cache rows stored as fp32 or fp16.
// Vectorised with AVX2/F16C/FMA when the kernel ISA allows it (INSITU_ISA=generic forces scalar).
float dot_f32(const float* a, const float* b, int64_t n);
float dot_f16(const float* a, const uint16_t* b, int64_t n);
void axpy_f32(float alpha, const float* x, float* y, int64_t n);   // y += alpha * x
void axpy_f16(float alpha, const uint16_t* x, float* y, int64_t n);
void store_f16(const float* x, uint16_t* y, int64_t n);             // round to nearest even

}  // namespace insitu::ops
