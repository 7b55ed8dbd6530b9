// ggml's K-quant formats (256-element super-blocks): q2_K q3_K q4_K q5_K q6_K and the q8_K
// activation format.
//
// A port of ggml's src/ggml-quants.c at commit d99724f2: quantize_row_q{2..6}_K_ref (no imatrix),
// quantize_row_q{2..6}_K_impl (imatrix), quantize_q{2..6}_K (the dispatch between them),
// dequantize_row_q{2..6}_K, quantize_row_q8_K_ref and dequantize_row_q8_K. Output is
// byte-identical to ggml's. The element order inside each block is documented in
// ../shared/reference/ggml-formats.md §1.1 and repeated at each packer below.
//
// Two rules the bytes depend on: a super-block scale is stored as fp16 and the elements are then
// requantized against the value read back; every sum is a sequential float sum in ggml's order.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/float_convert.h"
#include "quant/quant_common.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

constexpr int kQK = kQK_K;

// Packs 256 two-bit values: per 128-element half, byte l holds elements l, l+32, l+64, l+96 at
// bits 0-1, 2-3, 4-5, 6-7 (q2_K and the low bits of q3_K).
inline void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK; j += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                           (L[j + l + 96] << 6));
    }
  }
}

// ---------------------------------------------------------------- q2_K

// Requantizes the elements of each 16-group against the stored (fp16-rounded) d and dmin.
INSITU_QUANT_CLONES void requantize_q2_K(const float* x, const BlockQ2K& b, uint8_t* L) {
  const float dall = fp16_to_fp32(b.d);
  const float mall = fp16_to_fp32(b.dmin);
  for (int j = 0; j < kQK / 16; ++j) {
    const float d = dall * (b.scales[j] & 0xF);
    if (d == 0) continue;
    const float dm = mall * (b.scales[j] >> 4);
    for (int ii = 0; ii < 16; ++ii) {
      const int l = nearest_int((x[16 * j + ii] + dm) / d);
      L[16 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
    }
  }
}

void quantize_row_q2_K_ref(const float* x, BlockQ2K* y, int64_t k) {
  const int64_t nb = k / kQK;
  uint8_t L[kQK];
  float weights[kQK];
  float mins[kQK / 16];
  float scales[kQK / 16];
  const float q4scale = 15.f;
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float max_scale = 0;  // scales are positive: the min is subtracted
    float max_min = 0;
    for (int l = 0; l < kQK; ++l) weights[l] = std::fabs(x[l]);
    make_qkx2_quants_groups(kQK / 16, 16, 3, x, weights, L, scales, mins, -0.5f, 0.1f, 15, true);
    for (int j = 0; j < kQK / 16; ++j) {
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    BlockQ2K& b = y[i];
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < kQK / 16; ++j) {
        b.scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
      }
      b.d = fp32_to_fp16(max_scale / q4scale);
    } else {
      std::memset(b.scales, 0, sizeof(b.scales));
      b.d = fp32_to_fp16(0.f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < kQK / 16; ++j) {
        const int l = nearest_int(iscale * mins[j]);
        b.scales[j] = static_cast<uint8_t>(b.scales[j] | (l << 4));
      }
      b.dmin = fp32_to_fp16(max_min / q4scale);
    } else {
      b.dmin = fp32_to_fp16(0.f);
    }
    requantize_q2_K(x, b, L);
    pack_2bit(L, b.qs);
  }
}

void quantize_row_q2_K_imat(const float* x, BlockQ2K* y, int64_t n_per_row, const float* qw_row) {
  const int64_t nb = n_per_row / kQK;
  uint8_t L[kQK];
  float mins[kQK / 16];
  float scales[kQK / 16];
  float sw[kQK / 16];
  float weight[kQK];
  uint8_t Ls[kQK / 16];
  uint8_t Lm[kQK / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float sumx2 = 0;
    for (int j = 0; j < kQK; ++j) sumx2 += x[j] * x[j];
    const float sigma2 = sumx2 / kQK;
    for (int j = 0; j < kQK / 16; ++j) {
      const float* qw = qw_row + kQK * i + 16 * j;
      float* wj = weight + 16 * j;
      for (int l = 0; l < 16; ++l) wj[l] = qw[l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
      float s = 0;
      for (int l = 0; l < 16; ++l) s += wj[l];
      sw[j] = s;
    }
    make_qkx3_quants_groups(kQK / 16, 16, 3, x, weight, L, scales, mins, -0.9f, 0.05f, 36, false);
    const float dm = make_qp_quants(kQK / 16, 15, scales, Ls, sw);
    const float mm = make_qp_quants(kQK / 16, 15, mins, Lm, sw);
    BlockQ2K& b = y[i];
    b.d = fp32_to_fp16(dm);
    b.dmin = fp32_to_fp16(mm);
    for (int j = 0; j < kQK / 16; ++j) b.scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
    requantize_q2_K(x, b, L);
    pack_2bit(L, b.qs);
  }
}

INSITU_QUANT_CLONES void dequantize_row_q2_K(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockQ2K*>(src);
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float min = fp16_to_fp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (int n = 0; n < kQK; n += 128) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const uint8_t sc = x[i].scales[is++];
          const float dl = d * (sc & 0xF);
          const float ml = min * (sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
        }
      }
      q += 32;
    }
  }
}

// ---------------------------------------------------------------- q3_K

// Stores sixteen 6-bit scales (already offset by +32): low 4 bits in scales[j] (j < 8) or the high
// nibble of scales[j-8]; the top 2 bits at bit 2*(j/4) of scales[8 + j%4].
inline void pack_q3_K_scales(const int* ls, uint8_t* scales) {
  std::memset(scales, 0, 12);
  for (int j = 0; j < 16; ++j) {
    int l = ls[j];
    if (j < 8) {
      scales[j] = static_cast<uint8_t>(l & 0xF);
    } else {
      scales[j - 8] = static_cast<uint8_t>(scales[j - 8] | ((l & 0xF) << 4));
    }
    l >>= 4;
    scales[j % 4 + 8] = static_cast<uint8_t>(scales[j % 4 + 8] | (l << (2 * (j / 4))));
  }
}

inline int q3_K_scale(const uint8_t* scales, int j) {
  const int low = j < 8 ? (scales[j] & 0xF) : (scales[j - 8] >> 4);
  return (low | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

// Requantizes against the stored scales, then splits each value into its high bit (hmask: element
// j sets bit j/32 of hmask[j%32]) and low two bits (qs).
INSITU_QUANT_CLONES void finish_q3_K(const float* x, BlockQ3K& b, int8_t* L) {
  const float dall = fp16_to_fp32(b.d);
  for (int j = 0; j < kQK / 16; ++j) {
    const float d = dall * q3_K_scale(b.scales, j);
    if (d == 0) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = nearest_int(x[16 * j + ii] / d);
      L[16 * j + ii] = static_cast<int8_t>(std::max(-4, std::min(3, l)) + 4);
    }
  }
  // L is in [0, 7]: bit 2 goes to hmask, the low two bits to qs (branch-free so it vectorises).
  for (int m = 0; m < 32; ++m) {
    int h = 0;
    for (int k = 0; k < 8; ++k) h |= ((L[32 * k + m] >> 2) & 1) << k;
    b.hmask[m] = static_cast<uint8_t>(h);
  }
  uint8_t low[kQK];
  for (int j = 0; j < kQK; ++j) low[j] = static_cast<uint8_t>(L[j] & 3);
  pack_2bit(low, b.qs);
}

void quantize_row_q3_K_ref(const float* x, BlockQ3K* y, int64_t k) {
  const int64_t nb = k / kQK;
  int8_t L[kQK];
  float scales[kQK / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float max_scale = 0;
    float amax = 0;
    make_q3_quants_rmse_groups(kQK / 16, 16, 4, x, L, scales);
    for (int j = 0; j < kQK / 16; ++j) {
      const float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }
    BlockQ3K& b = y[i];
    if (max_scale != 0) {
      const float iscale = -32.f / max_scale;
      int ls[16];
      for (int j = 0; j < kQK / 16; ++j) {
        // ggml keeps this in an int8_t before clamping; the value is always within [-32, 32].
        const int8_t l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
        ls[j] = std::max<int>(-32, std::min<int>(31, l)) + 32;
      }
      pack_q3_K_scales(ls, b.scales);
      b.d = fp32_to_fp16(1 / iscale);
    } else {
      std::memset(b.scales, 0, sizeof(b.scales));
      b.d = fp32_to_fp16(0.f);
    }
    finish_q3_K(x, b, L);
  }
}

void quantize_row_q3_K_imat(const float* x, BlockQ3K* y, int64_t n_per_row, const float* qw_row) {
  const int64_t nb = n_per_row / kQK;
  int8_t L[kQK];
  float scales[kQK / 16];
  float weight[kQK];
  float sw[kQK / 16];
  int8_t Ls[kQK / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float sumx2 = 0;
    for (int j = 0; j < kQK; ++j) sumx2 += x[j] * x[j];
    const float sigma2 = 2 * sumx2 / kQK;
    for (int j = 0; j < kQK / 16; ++j) {
      const float* qw = qw_row + kQK * i + 16 * j;
      float* wj = weight + 16 * j;
      for (int l = 0; l < 16; ++l) wj[l] = qw[l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
      float sumw = 0;
      for (int l = 0; l < 16; ++l) sumw += wj[l];
      sw[j] = sumw;
    }
    make_qx_quants_rmse1_groups(kQK / 16, 16, 4, x, L, weight, scales);
    const float d_block = make_qx_quants(kQK / 16, 32, scales, Ls, 1, sw);
    int ls[16];
    for (int j = 0; j < 16; ++j) ls[j] = Ls[j];
    BlockQ3K& b = y[i];
    pack_q3_K_scales(ls, b.scales);
    b.d = fp32_to_fp16(d_block);
    finish_q3_K(x, b, L);
  }
}

INSITU_QUANT_CLONES void dequantize_row_q3_K(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockQ3K*>(src);
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float d_all = fp16_to_fp32(x[i].d);
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;
    int is = 0;
    for (int n = 0; n < kQK; n += 128) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const float dl = d_all * q3_K_scale(x[i].scales, is++);
          for (int l = 0; l < 16; ++l) {
            const int idx = l + 16 * half;
            *y++ = dl * (((q[idx] >> shift) & 3) - ((hm[idx] & m) ? 0 : 4));
          }
        }
        m = static_cast<uint8_t>(m << 1);
      }
      q += 32;
    }
  }
}

// ---------------------------------------------------------------- q4_K and q5_K

// Packs eight 6-bit scales and mins into 12 bytes (the inverse of get_scale_min_k4).
inline void pack_k4_scales(const uint8_t* ls, const uint8_t* lm, uint8_t* scales) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scales[j] = ls[j];
      scales[j + 4] = lm[j];
    } else {
      scales[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      scales[j - 4] = static_cast<uint8_t>(scales[j - 4] | ((ls[j] >> 4) << 6));
      scales[j] = static_cast<uint8_t>(scales[j] | ((lm[j] >> 4) << 6));
    }
  }
}

// The reference paths' conversion of float sub-block scales/mins to 6 bits against the largest.
inline void scales_to_6bit(const float* scales, const float* mins, float max_scale, float max_min,
                           uint8_t* ls, uint8_t* lm) {
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < 8; ++j) {
    // ggml stores nearest_int's result in a uint8_t before clamping to 63.
    const uint8_t s = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
    const uint8_t m = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
    ls[j] = std::min<uint8_t>(63, s);
    lm[j] = std::min<uint8_t>(63, m);
  }
}

// Requantizes the 32-groups against the stored fp16 d/dmin and 6-bit scales: L in [0, nmax].
template <int kNmax, typename Block>
INSITU_QUANT_CLONES void requantize_k4(const float* x, const Block& b, uint8_t* L) {
  const float dall = fp16_to_fp32(b.d);
  const float mall = fp16_to_fp32(b.dmin);
  for (int j = 0; j < kQK / 32; ++j) {
    uint8_t sc;
    uint8_t m;
    get_scale_min_k4(j, b.scales, &sc, &m);
    const float d = dall * sc;
    if (d == 0) continue;
    const float dm = mall * m;
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(kNmax, l)));
    }
  }
}

// q4_K quants: each 64-element chunk fills 32 bytes, low nibble = element l, high = element l+32.
inline void pack_q4_K(const uint8_t* L, uint8_t* q) {
  for (int j = 0; j < kQK; j += 64, q += 32) {
    for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

// q5_K: nibbles as q4_K; bit 2c of qh[l] is the fifth bit of element 64c+l, bit 2c+1 of 64c+32+l.
inline void pack_q5_K(const uint8_t* L, uint8_t* ql, uint8_t* qh) {
  std::memset(qh, 0, kQK / 8);
  uint8_t m1 = 1;
  uint8_t m2 = 2;
  for (int n = 0; n < kQK; n += 64, ql += 32) {
    for (int j = 0; j < 32; ++j) {
      int l1 = L[n + j];
      if (l1 > 15) {
        l1 -= 16;
        qh[j] = static_cast<uint8_t>(qh[j] | m1);
      }
      int l2 = L[n + j + 32];
      if (l2 > 15) {
        l2 -= 16;
        qh[j] = static_cast<uint8_t>(qh[j] | m2);
      }
      ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
    m1 = static_cast<uint8_t>(m1 << 2);
    m2 = static_cast<uint8_t>(m2 << 2);
  }
}

// The no-imatrix search of q4_K / q5_K: per 32-group weights av_x + |x|, then make_qkx2_quants.
template <int kNmax, typename Block>
void quantize_row_k4_ref(const float* x, Block* y, int64_t k, float rmin, int nstep) {
  const int64_t nb = k / kQK;
  uint8_t L[kQK];
  float weights[kQK];
  float mins[kQK / 32];
  float scales[kQK / 32];
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < kQK / 32; ++j) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[32 * j + l] = av_x + std::fabs(x[32 * j + l]);
    }
    make_qkx2_quants_groups(kQK / 32, 32, kNmax, x, weights, L, scales, mins, rmin, 0.1f, nstep,
                            false);
    for (int j = 0; j < kQK / 32; ++j) {
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    uint8_t ls[8];
    uint8_t lm[8];
    scales_to_6bit(scales, mins, max_scale, max_min, ls, lm);
    Block& b = y[i];
    pack_k4_scales(ls, lm, b.scales);
    b.d = fp32_to_fp16(max_scale / 63.f);
    b.dmin = fp32_to_fp16(max_min / 63.f);
    requantize_k4<kNmax>(x, b, L);
    if constexpr (kNmax == 15) {
      pack_q4_K(L, b.qs);
    } else {
      pack_q5_K(L, b.qs, b.qh);
    }
  }
}

// The imatrix search of q4_K / q5_K: weights qw * sqrt(sigma2 + x^2), make_qkx3_quants per group
// and make_qp_quants for the 6-bit scales and mins.
template <int kNmax, typename Block>
void quantize_row_k4_imat(const float* x, Block* y, int64_t n_per_row, const float* qw_row) {
  const int64_t nb = n_per_row / kQK;
  uint8_t L[kQK];
  uint8_t Ls[kQK / 32];
  uint8_t Lm[kQK / 32];
  float weights[kQK];
  float sw[kQK / 32];
  float mins[kQK / 32];
  float scales[kQK / 32];
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float sum_x2 = 0;
    for (int l = 0; l < kQK; ++l) sum_x2 += x[l] * x[l];
    const float sigma2 = 2 * sum_x2 / kQK;
    for (int j = 0; j < kQK / 32; ++j) {
      const float* qw = qw_row + kQK * i + 32 * j;
      float* wj = weights + 32 * j;
      for (int l = 0; l < 32; ++l) wj[l] = qw[l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
      float sumw = 0;
      for (int l = 0; l < 32; ++l) sumw += wj[l];
      sw[j] = sumw;
    }
    make_qkx3_quants_groups(kQK / 32, 32, kNmax, x, weights, L, scales, mins, -0.9f, 0.05f, 36,
                            false);
    const float d_block = make_qp_quants(kQK / 32, 63, scales, Ls, sw);
    const float m_block = make_qp_quants(kQK / 32, 63, mins, Lm, sw);
    for (int j = 0; j < 8; ++j) {
      Ls[j] = std::min<uint8_t>(63, Ls[j]);
      Lm[j] = std::min<uint8_t>(63, Lm[j]);
    }
    Block& b = y[i];
    pack_k4_scales(Ls, Lm, b.scales);
    b.d = fp32_to_fp16(d_block);
    b.dmin = fp32_to_fp16(m_block);
    requantize_k4<kNmax>(x, b, L);
    if constexpr (kNmax == 15) {
      pack_q4_K(L, b.qs);
    } else {
      pack_q5_K(L, b.qs, b.qh);
    }
  }
}

void quantize_row_q4_K_ref(const float* x, BlockQ4K* y, int64_t k) {
  quantize_row_k4_ref<15>(x, y, k, -1.f, 20);
}
void quantize_row_q5_K_ref(const float* x, BlockQ5K* y, int64_t k) {
  quantize_row_k4_ref<31>(x, y, k, -0.5f, 15);
}
void quantize_row_q4_K_imat(const float* x, BlockQ4K* y, int64_t n, const float* qw) {
  quantize_row_k4_imat<15>(x, y, n, qw);
}
void quantize_row_q5_K_imat(const float* x, BlockQ5K* y, int64_t n, const float* qw) {
  quantize_row_k4_imat<31>(x, y, n, qw);
}

INSITU_QUANT_CLONES void dequantize_row_q4_K(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockQ4K*>(src);
  for (int64_t i = 0; i < k / kQK; ++i) {
    const uint8_t* q = x[i].qs;
    const float d = fp16_to_fp32(x[i].d);
    const float min = fp16_to_fp32(x[i].dmin);
    for (int is = 0; is < 8; is += 2, q += 32) {
      uint8_t sc;
      uint8_t m;
      get_scale_min_k4(is, x[i].scales, &sc, &m);
      const float d1 = d * sc;
      const float m1 = min * m;
      get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc;
      const float m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

INSITU_QUANT_CLONES void dequantize_row_q5_K(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockQ5K*>(src);
  for (int64_t i = 0; i < k / kQK; ++i) {
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    const float d = fp16_to_fp32(x[i].d);
    const float min = fp16_to_fp32(x[i].dmin);
    uint8_t u1 = 1;
    uint8_t u2 = 2;
    for (int is = 0; is < 8; is += 2, ql += 32) {
      uint8_t sc;
      uint8_t m;
      get_scale_min_k4(is, x[i].scales, &sc, &m);
      const float d1 = d * sc;
      const float m1 = min * m;
      get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc;
      const float m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
  }
}

// ---------------------------------------------------------------- q6_K

// Finishes one 256-block of q6_K from its sixteen 16-group scales (from make_qx_quants): int8
// sub-scales against the signed largest, fp16 d, requantization, packing. An all-zero block is
// written as zeros.
INSITU_QUANT_CLONES void finish_q6_K(const float* x, const float* scales, BlockQ6K& b, int8_t* L) {
  float max_scale = 0;
  float max_abs_scale = 0;
  for (int ib = 0; ib < kQK / 16; ++ib) {
    const float abs_scale = std::fabs(scales[ib]);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scales[ib];
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(&b, 0, sizeof(b));
    b.d = fp32_to_fp16(0.f);
    return;
  }
  const float iscale = -128.f / max_scale;
  b.d = fp32_to_fp16(1 / iscale);
  for (int ib = 0; ib < kQK / 16; ++ib) {
    b.scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  }
  const float dall = fp16_to_fp32(b.d);
  for (int j = 0; j < kQK / 16; ++j) {
    const float d = dall * b.scales[j];
    if (d == 0) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = nearest_int(x[16 * j + ii] / d);
      L[16 * j + ii] = static_cast<int8_t>(std::max(-32, std::min(31, l)) + 32);
    }
  }
  // Per 128-half: ql[l] = low4(q[l]) | low4(q[l+64]) << 4, ql[l+32] = low4(q[l+32]) |
  // low4(q[l+96]) << 4; qh[l] holds the top two bits of q[l], q[l+32], q[l+64], q[l+96].
  uint8_t* ql = b.ql;
  uint8_t* qh = b.qh;
  for (int j = 0; j < kQK; j += 128, ql += 64, qh += 32) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l];
      const int q2 = L[j + l + 32];
      const int q3 = L[j + l + 64];
      const int q4 = L[j + l + 96];
      ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) |
                                   ((q4 >> 4) << 6));
    }
  }
}

// Reference (qw_row null) and imatrix paths of q6_K differ only in the weights given to
// make_qx_quants: x^2, or the raw importance values (ggml's sigma2 term is disabled for q6_K).
void quantize_row_q6_K_any(const float* x, BlockQ6K* y, int64_t n_per_row, const float* qw_row) {
  const int64_t nb = n_per_row / kQK;
  int8_t L[kQK];
  float scales[kQK / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    make_qx_quants_rmse1_groups(kQK / 16, 16, 32, x, L, qw_row ? qw_row + kQK * i : nullptr,
                                scales);
    finish_q6_K(x, scales, y[i], L);
  }
}

void quantize_row_q6_K_ref(const float* x, BlockQ6K* y, int64_t k) {
  quantize_row_q6_K_any(x, y, k, nullptr);
}

INSITU_QUANT_CLONES void dequantize_row_q6_K(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockQ6K*>(src);
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int n = 0; n < kQK; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}

// ---------------------------------------------------------------- q8_K (activations)

INSITU_QUANT_CLONES void quantize_row_q8_K_ref(const float* x, BlockQ8K* y, int64_t k) {
  const int64_t nb = k / kQK;
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float max = 0;
    float amax = 0;
    for (int j = 0; j < kQK; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0) {
      // ggml leaves bsums untouched here; zero them so the output is fully defined.
      std::memset(&y[i], 0, sizeof(y[i]));
      continue;
    }
    // -127 rather than -128 so that no value needs the int8 extreme (ggml's choice).
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    }
    for (int j = 0; j < kQK / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

INSITU_QUANT_CLONES void dequantize_row_q8_K(const void* src, float* y, int64_t k) {
  const auto* x = static_cast<const BlockQ8K*>(src);
  for (int64_t i = 0; i < k / kQK; ++i) {
    for (int j = 0; j < kQK; ++j) *y++ = x[i].d * x[i].qs[j];
  }
}

// ---------------------------------------------------------------- table entry points

// ggml's quantize_q*_K: the reference over whole rows without an imatrix, the weighted row
// quantizer with one.
template <typename Block, void (*kRef)(const float*, Block*, int64_t),
          void (*kImat)(const float*, Block*, int64_t, const float*)>
size_t quantize_rows(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  auto* out = static_cast<Block*>(dst);
  const int64_t blocks_per_row = n_per_row / kQK;
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
    out += blocks_per_row;
  }
  return static_cast<size_t>(nrows * blocks_per_row) * sizeof(Block);
}

void quantize_row_q8_K_entry(const float* src, void* dst, int64_t n) {
  quantize_row_q8_K_ref(src, static_cast<BlockQ8K*>(dst), n);
}

}  // namespace

void register_k_quant_types(std::span<TypeTraits> table) {
  TypeTraits& q2 = table_row(table, QuantType::kQ2K);
  q2.dequantize_row = dequantize_row_q2_K;
  q2.quantize = quantize_rows<BlockQ2K, quantize_row_q2_K_ref, quantize_row_q2_K_imat>;

  TypeTraits& q3 = table_row(table, QuantType::kQ3K);
  q3.dequantize_row = dequantize_row_q3_K;
  q3.quantize = quantize_rows<BlockQ3K, quantize_row_q3_K_ref, quantize_row_q3_K_imat>;

  TypeTraits& q4 = table_row(table, QuantType::kQ4K);
  q4.dequantize_row = dequantize_row_q4_K;
  q4.quantize = quantize_rows<BlockQ4K, quantize_row_q4_K_ref, quantize_row_q4_K_imat>;

  TypeTraits& q5 = table_row(table, QuantType::kQ5K);
  q5.dequantize_row = dequantize_row_q5_K;
  q5.quantize = quantize_rows<BlockQ5K, quantize_row_q5_K_ref, quantize_row_q5_K_imat>;

  TypeTraits& q6 = table_row(table, QuantType::kQ6K);
  q6.dequantize_row = dequantize_row_q6_K;
  q6.quantize = quantize_rows<BlockQ6K, quantize_row_q6_K_ref, quantize_row_q6_K_any>;

  TypeTraits& q8 = table_row(table, QuantType::kQ8K);
  q8.dequantize_row = dequantize_row_q8_K;
  q8.quantize = quantize_rows<BlockQ8K, quantize_row_q8_K_ref, nullptr>;
  q8.quantize_row_ref = quantize_row_q8_K_entry;
}

}  // namespace insitu
