// ggml's legacy 32-element formats: q4_0 q4_1 q5_0 q5_1 q8_0 q8_1.
//
// A port of the reference quantizers, the imatrix-weighted quantizers and the dequantizers of
// ggml's src/ggml-quants.c at commit d99724f2 (quantize_row_q4_0_ref .. quantize_row_q8_1_ref,
// quantize_row_q4_0_impl .. quantize_row_q5_1_impl, quantize_q4_0 .. quantize_q8_0,
// dequantize_row_q4_0 .. dequantize_row_q8_0). Output is byte-identical to ggml's.
//
// Element order (all four 4/5-bit types): qs[j] low nibble = element j, high nibble = element
// j + 16; bit j of the little-endian u32 qh is the fifth bit of element j.
//
// The reference quantizers truncate (x * id + 8.5) toward zero instead of rounding, and q8_0 /
// q8_1 use roundf (ties away from zero): ggml does so and the bytes depend on it.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/float_convert.h"
#include "quant/quant_common.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

// C's float -> int8_t conversion as GCC emits it on x86 (truncate to int32, keep the low byte);
// the reference quantizers' values are always in range, so this is plain truncation.
inline int8_t trunc_to_i8(float f) { return static_cast<int8_t>(static_cast<int32_t>(f)); }
inline uint8_t trunc_to_u8(float f) { return static_cast<uint8_t>(static_cast<int32_t>(f)); }

// Block reductions over 32 floats in eight-float vectors (GCC vector extensions), so that the
// AVX2 clone of each row function uses full-width max/min; max and min are exact in any order.
// Vectors never leave these always-inlined helpers.
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float V8f __attribute__((vector_size(32)));
typedef int32_t V8i __attribute__((vector_size(32)));
#define INSITU_INLINE inline __attribute__((always_inline))

INSITU_INLINE V8f load8(const float* p) {
  V8f v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

#if defined(__clang__)
#define INSITU_SWAP(v, a, b, c, d, e, f, g, h) __builtin_shufflevector(v, v, a, b, c, d, e, f, g, h)
#else
#define INSITU_SWAP(v, a, b, c, d, e, f, g, h) __builtin_shuffle(v, V8i{a, b, c, d, e, f, g, h})
#endif

// Lane-wise max / min with C's `a > b ? a : b` semantics, and their all-lanes broadcasts
// (three butterfly steps; exact, as max and min are).
INSITU_INLINE V8f vmax(V8f a, V8f b) { return a > b ? a : b; }
INSITU_INLINE V8f vmin(V8f a, V8f b) { return a < b ? a : b; }
INSITU_INLINE V8f hmax(V8f t) {
  t = vmax(t, INSITU_SWAP(t, 4, 5, 6, 7, 0, 1, 2, 3));
  t = vmax(t, INSITU_SWAP(t, 2, 3, 0, 1, 6, 7, 4, 5));
  return vmax(t, INSITU_SWAP(t, 1, 0, 3, 2, 5, 4, 7, 6));
}
INSITU_INLINE V8f hmin(V8f t) {
  t = vmin(t, INSITU_SWAP(t, 4, 5, 6, 7, 0, 1, 2, 3));
  t = vmin(t, INSITU_SWAP(t, 2, 3, 0, 1, 6, 7, 4, 5));
  return vmin(t, INSITU_SWAP(t, 1, 0, 3, 2, 5, 4, 7, 6));
}
INSITU_INLINE V8i hmin_i(V8i t) {
  t = t < INSITU_SWAP(t, 4, 5, 6, 7, 0, 1, 2, 3) ? t : INSITU_SWAP(t, 4, 5, 6, 7, 0, 1, 2, 3);
  t = t < INSITU_SWAP(t, 2, 3, 0, 1, 6, 7, 4, 5) ? t : INSITU_SWAP(t, 2, 3, 0, 1, 6, 7, 4, 5);
  return t < INSITU_SWAP(t, 1, 0, 3, 2, 5, 4, 7, 6) ? t : INSITU_SWAP(t, 1, 0, 3, 2, 5, 4, 7, 6);
}

// max |x[j]| over 32 values. NaNs are skipped (ggml's q4_0 skips them too; its q8_0 would
// propagate one: rows with NaNs are garbage in either case).
INSITU_INLINE float absmax32(const float* x) {
  V8f m = {};
  for (int k = 0; k < 32; k += 8) m = vmax((V8f)((V8i)load8(x + k) & 0x7fffffff), m);
  return hmax(m)[0];
}

// Signed value of largest magnitude, the first one on ties, as ggml's reference picks it. Each
// lane keeps its first strict maximum and that element's index; the smallest index among the lanes
// holding the overall maximum is the first occurrence. NaNs are skipped, as `amax < |v|` skips them.
INSITU_INLINE float signed_absmax32(const float* x) {
  V8f m = {};
  V8i idx = {};
  const V8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
  for (int k = 0; k < 32; k += 8) {
    const V8f a = (V8f)((V8i)load8(x + k) & 0x7fffffff);
    const V8i gt = a > m;
    m = gt ? a : m;
    idx = gt ? lane + k : idx;
  }
  const V8f all = hmax(m);
  if (!(all[0] > 0.0f)) return 0.0f;
  const V8i first = hmin_i(m == all ? idx : V8i{} + 32);
  return x[first[0]];
}

// Min and max from +-FLT_MAX with ggml's `v < min` / `v > max` updates. Values are exact in any
// order except the sign of a zero result (ggml keeps the first zero it meets), so a zero result
// is recomputed in order.
INSITU_INLINE void min_max32(const float* x, float* min, float* max) {
  V8f lo = V8f{} + FLT_MAX;
  V8f hi = V8f{} - FLT_MAX;
  for (int k = 0; k < 32; k += 8) {
    const V8f v = load8(x + k);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  float l = hmin(lo)[0];
  float h = hmax(hi)[0];
  if (l == 0.0f || h == 0.0f) {
    l = FLT_MAX;
    h = -FLT_MAX;
    for (int j = 0; j < 32; ++j) {
      if (x[j] < l) l = x[j];
      if (x[j] > h) h = x[j];
    }
  }
  *min = l;
  *max = h;
}

inline void store_qh(uint8_t* qh, uint32_t bits) { std::memcpy(qh, &bits, sizeof(bits)); }
inline uint32_t load_qh(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, sizeof(bits));
  return bits;
}

// ---------------------------------------------------------------- reference quantizers (no imatrix)

INSITU_QUANT_CLONES void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, int64_t k) {
  constexpr int qk = kQK4_0;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; ++i, x += qk) {
    const float max = signed_absmax32(x);
    const float d = max / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = x[j] * id;
      const float x1 = x[qk / 2 + j] * id;
      const uint8_t q0 = static_cast<uint8_t>(std::min<int>(15, trunc_to_i8(x0 + 8.5f)));
      const uint8_t q1 = static_cast<uint8_t>(std::min<int>(15, trunc_to_i8(x1 + 8.5f)));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

INSITU_QUANT_CLONES void quantize_row_q4_1_ref(const float* x, BlockQ4_1* y, int64_t k) {
  constexpr int qk = kQK4_1;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; ++i, x += qk) {
    float min;
    float max;
    min_max32(x, &min, &max);
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = (x[j] - min) * id;
      const float x1 = (x[qk / 2 + j] - min) * id;
      const uint8_t q0 = static_cast<uint8_t>(std::min<int>(15, trunc_to_i8(x0 + 0.5f)));
      const uint8_t q1 = static_cast<uint8_t>(std::min<int>(15, trunc_to_i8(x1 + 0.5f)));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

INSITU_QUANT_CLONES void quantize_row_q5_0_ref(const float* x, BlockQ5_0* y, int64_t k) {
  constexpr int qk = kQK5_0;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; ++i, x += qk) {
    const float max = signed_absmax32(x);
    const float d = max / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = x[j] * id;
      const float x1 = x[qk / 2 + j] * id;
      const uint8_t q0 = static_cast<uint8_t>(std::min<int>(31, trunc_to_i8(x0 + 16.5f)));
      const uint8_t q1 = static_cast<uint8_t>(std::min<int>(31, trunc_to_i8(x1 + 16.5f)));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + qk / 2);
    }
    store_qh(y[i].qh, qh);
  }
}

INSITU_QUANT_CLONES void quantize_row_q5_1_ref(const float* x, BlockQ5_1* y, int64_t k) {
  constexpr int qk = kQK5_1;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; ++i, x += qk) {
    float min;
    float max;
    min_max32(x, &min, &max);
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = (x[j] - min) * id;
      const float x1 = (x[qk / 2 + j] - min) * id;
      const uint8_t q0 = trunc_to_u8(x0 + 0.5f);
      const uint8_t q1 = trunc_to_u8(x1 + 0.5f);
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + qk / 2);
    }
    store_qh(y[i].qh, qh);
  }
}

INSITU_QUANT_CLONES void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, int64_t k) {
  constexpr int qk = kQK8_0;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; ++i, x += qk) {
    const float d = absmax32(x) / ((1 << 7) - 1);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < qk; ++j) y[i].qs[j] = static_cast<int8_t>(round_half_away(x[j] * id));
  }
}

INSITU_QUANT_CLONES void quantize_row_q8_1_ref(const float* x, BlockQ8_1* y, int64_t k) {
  constexpr int qk = kQK8_1;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; ++i, x += qk) {
    const float d = absmax32(x) / ((1 << 7) - 1);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < qk / 2; ++j) {
      y[i].qs[j] = static_cast<int8_t>(round_half_away(x[j] * id));
      y[i].qs[qk / 2 + j] = static_cast<int8_t>(round_half_away(x[qk / 2 + j] * id));
      sum += y[i].qs[j];
      sum += y[i].qs[qk / 2 + j];
    }
    y[i].s = fp32_to_fp16(sum * d);
  }
}

// ---------------------------------------------------------------- imatrix-weighted quantizers

// Whole-row variance: the four legacy imatrix paths weight each element by
// qw * sqrt(sigma2 + x^2) with sigma2 taken over the entire row (not per block).
inline float row_sigma2(const float* x, int64_t n_per_row) {
  float sum_x2 = 0;
  for (int64_t j = 0; j < n_per_row; ++j) sum_x2 += x[j] * x[j];
  return sum_x2 / n_per_row;
}

inline void importance(const float* xb, const float* qw, float sigma2, float* weight) {
  for (int j = 0; j < 32; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
}

// Packs 32 five-bit values into q5_0 / q5_1's nibbles and high-bit word.
inline void pack_q5(const uint8_t* L, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const uint8_t q0 = L[j];
    const uint8_t q1 = L[j + 16];
    qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
    qh |= ((q0 & 0x10u) >> 4) << j;
    qh |= ((q1 & 0x10u) >> 4) << (j + 16);
  }
  store_qh(qh_bytes, qh);
}

// q4_0 / q5_0 with an imatrix: make_qx_quants(32, nmax, ...) per block with the weights above,
// run for up to eight blocks at once (same bits as one block at a time).
template <int kNmax, typename Block>
void quantize_row_qx_0_imat(const float* x, Block* y, int64_t n_per_row, const float* qw) {
  constexpr int kGroups = 8;
  float weight[kGroups * 32];
  int8_t L[kGroups * 32];
  float d[kGroups];
  const float sigma2 = row_sigma2(x, n_per_row);
  const int64_t nb = n_per_row / 32;
  for (int64_t ib0 = 0; ib0 < nb; ib0 += kGroups) {
    const int ng = static_cast<int>(std::min<int64_t>(kGroups, nb - ib0));
    for (int g = 0; g < ng; ++g) {
      importance(x + 32 * (ib0 + g), qw + 32 * (ib0 + g), sigma2, weight + 32 * g);
    }
    make_qx_quants_rmse1_groups(ng, 32, kNmax, x + 32 * ib0, L, weight, d);
    for (int g = 0; g < ng; ++g) {
      Block& b = y[ib0 + g];
      const int8_t* Lg = L + 32 * g;
      b.d = fp32_to_fp16(d[g]);
      if constexpr (kNmax == 8) {
        for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(Lg[j] | (Lg[j + 16] << 4));
      } else {
        pack_q5(reinterpret_cast<const uint8_t*>(Lg), b.qs, b.qh);
      }
    }
  }
}

void quantize_row_q4_0_imat(const float* x, BlockQ4_0* y, int64_t n_per_row, const float* qw) {
  quantize_row_qx_0_imat<8>(x, y, n_per_row, qw);
}

void quantize_row_q5_0_imat(const float* x, BlockQ5_0* y, int64_t n_per_row, const float* qw) {
  quantize_row_qx_0_imat<16>(x, y, n_per_row, qw);
}

// q4_1 / q5_1 with an imatrix: make_qkx3_quants(32, nmax, ..., -0.9, 0.05, 36) per block with
// the weights above, run for up to eight blocks at once (same bits as one block at a time).
template <int kNmax, typename Block>
void quantize_row_qx_1_imat(const float* x, Block* y, int64_t n_per_row, const float* qw) {
  constexpr int kGroups = 8;
  float weight[kGroups * 32];
  uint8_t L[kGroups * 32];
  float d[kGroups];
  float min[kGroups];
  const float sigma2 = row_sigma2(x, n_per_row);
  const int64_t nb = n_per_row / 32;
  for (int64_t ib0 = 0; ib0 < nb; ib0 += kGroups) {
    const int ng = static_cast<int>(std::min<int64_t>(kGroups, nb - ib0));
    for (int g = 0; g < ng; ++g) {
      importance(x + 32 * (ib0 + g), qw + 32 * (ib0 + g), sigma2, weight + 32 * g);
    }
    make_qkx3_quants_groups(ng, 32, kNmax, x + 32 * ib0, weight, L, d, min, -0.9f, 0.05f, 36,
                            false);
    for (int g = 0; g < ng; ++g) {
      Block& b = y[ib0 + g];
      const uint8_t* Lg = L + 32 * g;
      b.d = fp32_to_fp16(d[g]);
      b.m = fp32_to_fp16(-min[g]);
      if constexpr (kNmax == 15) {
        for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(Lg[j] | (Lg[j + 16] << 4));
      } else {
        pack_q5(Lg, b.qs, b.qh);
      }
    }
  }
}

void quantize_row_q4_1_imat(const float* x, BlockQ4_1* y, int64_t n_per_row, const float* qw) {
  quantize_row_qx_1_imat<15>(x, y, n_per_row, qw);
}

void quantize_row_q5_1_imat(const float* x, BlockQ5_1* y, int64_t n_per_row, const float* qw) {
  quantize_row_qx_1_imat<31>(x, y, n_per_row, qw);
}

// ---------------------------------------------------------------- table entry points

// ggml's quantize_<type>: the reference over the whole matrix without an imatrix, the weighted
// row quantizer row by row with one.
template <typename Block, void (*kRef)(const float*, Block*, int64_t),
          void (*kImat)(const float*, Block*, int64_t, const float*)>
size_t quantize_rows(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  const size_t row_size = static_cast<size_t>(n_per_row / 32) * sizeof(Block);
  auto* out = static_cast<Block*>(dst);
  for (int64_t r = 0; r < nrows; ++r) {
    if constexpr (kImat != nullptr) {
      if (imatrix != nullptr) {
        kImat(src, out, n_per_row, imatrix);
      } else {
        kRef(src, out, n_per_row);
      }
    } else {
      kRef(src, out, n_per_row);
    }
    src += n_per_row;
    out += n_per_row / 32;
  }
  return static_cast<size_t>(nrows) * row_size;
}

template <typename Block, void (*kRef)(const float*, Block*, int64_t)>
void quantize_row_entry(const float* src, void* dst, int64_t n) {
  kRef(src, static_cast<Block*>(dst), n);
}

INSITU_QUANT_CLONES void dequantize_row_q4_0(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < k / kQK4_0; ++i, y += kQK4_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < 16; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F) - 8;
      const int x1 = (x[i].qs[j] >> 4) - 8;
      y[j] = x0 * d;
      y[j + 16] = x1 * d;
    }
  }
}

INSITU_QUANT_CLONES void dequantize_row_q4_1(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < k / kQK4_1; ++i, y += kQK4_1) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < 16; ++j) {
      const int x0 = x[i].qs[j] & 0x0F;
      const int x1 = x[i].qs[j] >> 4;
      y[j] = x0 * d + m;
      y[j + 16] = x1 * d + m;
    }
  }
}

INSITU_QUANT_CLONES void dequantize_row_q5_0(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockQ5_0*>(src);
  for (int64_t i = 0; i < k / kQK5_0; ++i, y += kQK5_0) {
    const float d = fp16_to_fp32(x[i].d);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < 16; ++j) {
      const int h0 = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      const int x0 = ((x[i].qs[j] & 0x0F) | h0) - 16;
      const int x1 = ((x[i].qs[j] >> 4) | h1) - 16;
      y[j] = x0 * d;
      y[j + 16] = x1 * d;
    }
  }
}

INSITU_QUANT_CLONES void dequantize_row_q5_1(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockQ5_1*>(src);
  for (int64_t i = 0; i < k / kQK5_1; ++i, y += kQK5_1) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < 16; ++j) {
      const int h0 = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      const int x0 = (x[i].qs[j] & 0x0F) | h0;
      const int x1 = (x[i].qs[j] >> 4) | h1;
      y[j] = x0 * d + m;
      y[j + 16] = x1 * d + m;
    }
  }
}

INSITU_QUANT_CLONES void dequantize_row_q8_0(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < k / kQK8_0; ++i, y += kQK8_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK8_0; ++j) y[j] = x[i].qs[j] * d;
  }
}

// ggml has no q8_1 dequantizer (it is an activation format); this decodes d * q the same way.
INSITU_QUANT_CLONES void dequantize_row_q8_1(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockQ8_1*>(src);
  for (int64_t i = 0; i < k / kQK8_1; ++i, y += kQK8_1) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK8_1; ++j) y[j] = x[i].qs[j] * d;
  }
}

}  // namespace

void register_legacy_types(std::span<TypeTraits> table) {
  TypeTraits& q4_0 = table_row(table, QuantType::kQ4_0);
  q4_0.dequantize_row = dequantize_row_q4_0;
  q4_0.quantize = quantize_rows<BlockQ4_0, quantize_row_q4_0_ref, quantize_row_q4_0_imat>;

  TypeTraits& q4_1 = table_row(table, QuantType::kQ4_1);
  q4_1.dequantize_row = dequantize_row_q4_1;
  q4_1.quantize = quantize_rows<BlockQ4_1, quantize_row_q4_1_ref, quantize_row_q4_1_imat>;

  TypeTraits& q5_0 = table_row(table, QuantType::kQ5_0);
  q5_0.dequantize_row = dequantize_row_q5_0;
  q5_0.quantize = quantize_rows<BlockQ5_0, quantize_row_q5_0_ref, quantize_row_q5_0_imat>;

  TypeTraits& q5_1 = table_row(table, QuantType::kQ5_1);
  q5_1.dequantize_row = dequantize_row_q5_1;
  q5_1.quantize = quantize_rows<BlockQ5_1, quantize_row_q5_1_ref, quantize_row_q5_1_imat>;

  // q8_0 ignores an imatrix, as ggml's quantize_q8_0 does.
  TypeTraits& q8_0 = table_row(table, QuantType::kQ8_0);
  q8_0.dequantize_row = dequantize_row_q8_0;
  q8_0.quantize = quantize_rows<BlockQ8_0, quantize_row_q8_0_ref, nullptr>;
  q8_0.quantize_row_ref = quantize_row_entry<BlockQ8_0, quantize_row_q8_0_ref>;

  TypeTraits& q8_1 = table_row(table, QuantType::kQ8_1);
  q8_1.dequantize_row = dequantize_row_q8_1;
  q8_1.quantize = quantize_rows<BlockQ8_1, quantize_row_q8_1_ref, nullptr>;
  q8_1.quantize_row_ref = quantize_row_entry<BlockQ8_1, quantize_row_q8_1_ref>;
}

}  // namespace insitu
