// IQ2_XXS, IQ2_XS and IQ2_S quantizers: 8-element groups on the E8-derived grids of
// quant/iq_tables.h, magnitudes at levels {1, 3, 5} (stored as 0..2).
//
// Ports of quantize_row_iq2_xxs_impl, quantize_row_iq2_xs_impl and quantize_row_iq2_s_impl of
// ggml's src/ggml-quants.c (commit d99724f2, as vendored in llama-cpp-python 0.3.36),
// byte-identical to ggml. IQ2_XXS and IQ2_XS need an imatrix (their callers refuse to run
// without one); IQ2_S weighs by 0.25 sigma² + x² without one.
//
// Per group of 32 (IQ2_XXS) or 16 elements: signs are split off (XXS and XS force an even count
// of negatives, since they store 7 sign bits per 8), a range of trial scales quantizes the
// magnitudes, groups off the grid snap to their best neighbour, and the scale with the best
// weighted correlation wins. Group scales are then stored as 4 bits against max_scale / 31
// (IQ2_S with ggml's 0.9875 fudge factor on the stored d).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/float_convert.h"
#include "quant/iq_grid_search.h"
#include "quant/iq_helpers.h"
#include "quant/iq_quants.h"
#include "quant/quant_common.h"

namespace insitu::iq {
namespace {

constexpr int kMaxQ = 3;  // levels per element

// Levels of 8 magnitudes at inverse scale id, clamped to 0..2, packed 2 bits each.
inline uint32_t levels_of8(const float* xval, float id, int8_t* L) {
  uint32_t u = 0;
  for (int i = 0; i < 8; ++i) {
    const int l = nearest_int(0.5f * (id * xval[i] - 1));
    L[i] = static_cast<int8_t>(std::max(0, std::min(kMaxQ - 1, l)));
    u |= static_cast<uint32_t>(L[i]) << 2 * i;
  }
  return u;
}

inline uint32_t pack8(const int8_t* L) {
  uint32_t u = 0;
  for (int i = 0; i < 8; ++i) u |= static_cast<uint32_t>(L[i]) << 2 * i;
  return u;
}

inline void imatrix_weights(int n, const float* xb, const float* qw, float sigma2, float* weight) {
  for (int i = 0; i < n; ++i) weight[i] = qw[i] * std::sqrt(sigma2 + xb[i] * xb[i]);
}

// The scale search of IQ2_XS and IQ2_S over one 16-element group (two grid points): trial
// inverse scales (5 + 0.1 is) / max for is = -9..9, then the off-grid points re-snapped at the
// winning scale. Returns the group scale and its levels in L.
float search_group16(const IqKernels& kernels, const GridSearch& grid, const float* weight,
                     const float* waux, const float* xval, float max, int8_t* L) {
  uint8_t is_on_grid[2] = {true, true};
  float scale = max / (2 * kMaxQ - 1);
  search_trial_scales(kernels, grid.view(), 16, xval, weight, waux, max, 9, 0.1f, &scale, L,
                      is_on_grid);
  if ((!is_on_grid[0] || !is_on_grid[1]) && scale > 0) {
    const float id = 1 / scale;
    for (int k = 0; k < 2; ++k) {
      if (is_on_grid[k]) continue;
      const uint32_t u = levels_of8(xval + 8 * k, id, L + 8 * k);
      if (grid.index(u) < 0)
        best_neighbour(kernels, grid, u, xval + 8 * k, waux + 8 * k, scale, L + 8 * k);
    }
    float sumqx, sumq2;
    weighted_sums(16, weight, xval, L, &sumqx, &sumq2);
    if (sumq2 > 0) scale = sumqx / sumq2;
  }
  return scale;
}

// 4-bit group scale l with scale ~ d * (2l + 1), as IQ2 stores it.
inline int group_scale_code(float id, float scale) {
  const int l = nearest_int(0.5f * (id * scale - 1));
  return std::max(0, std::min(15, l));
}

}  // namespace

void quantize_row_iq2_xxs(const float* x, BlockIQ2XXS* y, int64_t n, const float* quant_weights) {
  const IqKernels& kernels = iq_kernels();
  const GridSearch& grid = grid_search(Lattice::kIQ2XXS);
  const LatticeView view = grid.view();
  float scales[kQK_K / 32];
  float weight[32];
  float xval[32];
  int8_t L[32];
  float waux[32];
  uint8_t block_signs[4];

  for (int64_t ibl = 0; ibl < n / kQK_K; ++ibl) {
    uint32_t q2[2 * (kQK_K / 32)] = {};  // per 32: grid indices, then signs | scale << 28
    float max_scale = 0;
    const float* xbl = x + kQK_K * ibl;
    const float sigma2 = super_block_sumx2(xbl) / kQK_K;

    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const float* xb = xbl + 32 * ib;
      imatrix_weights(32, xb, quant_weights + kQK_K * ibl + 32 * ib, sigma2, weight);
      for (int i = 0; i < 32; ++i) waux[i] = std::sqrt(weight[i]);
      for (int k = 0; k < 4; ++k) {
        block_signs[k] = split_signs8_even(xb + 8 * k, weight + 8 * k, xval + 8 * k) & 127;
      }
      float max = xval[0];
      for (int i = 1; i < 32; ++i) max = std::max(max, xval[i]);
      if (max < kGroupMaxEps) {
        scales[ib] = 0;
        continue;
      }
      // Start from the best scale for levels 0..4 and search around 5 / (3 * that scale).
      float scale = make_qp_quants(32, kMaxQ + 1, xval, reinterpret_cast<uint8_t*>(L), weight);
      const float eff_max = scale * kMaxQ;
      if (eff_max <= 0) {
        scales[ib] = 0;
        continue;
      }
      uint8_t on_grid[4];
      search_trial_scales(kernels, view, 32, xval, weight, waux, eff_max, 6, 0.1f, &scale, L,
                          on_grid);
      if (scale > 0) {
        // Re-snap every point at the winning scale (this also replaces make_qp_quants' levels
        // when no trial improved on it).
        const float id = 1 / scale;
        for (int k = 0; k < 4; ++k) {
          int8_t Lk[8];
          const uint32_t u = levels_of8(xval + 8 * k, id, Lk);
          int grid_index = grid.index(u);
          if (grid_index < 0)
            grid_index =
                best_neighbour(kernels, grid, u, xval + 8 * k, waux + 8 * k, scale, L + 8 * k);
          const int8_t* e = grid.entry(grid_index);
          for (int i = 0; i < 8; ++i) L[8 * k + i] = static_cast<int8_t>((e[i] - 1) / 2);
        }
        float sumqx, sumq2;
        weighted_sums(32, weight, xval, L, &sumqx, &sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
      }
      if (scale < 0) {
        // Cannot happen with non-negative magnitudes; ggml keeps the scale positive anyway.
        scale = -scale;
        for (int k = 0; k < 4; ++k) block_signs[k] = static_cast<uint8_t>(~block_signs[k] & 127);
      }
      for (int k = 0; k < 4; ++k) {
        // Off the grid only when non-finite input kept make_qp_quants' levels (ggml aborts).
        const int grid_index = std::max(0, grid.index(pack8(L + 8 * k)));
        q2[2 * ib + 0] |= static_cast<uint32_t>(grid_index) << 8 * k;
        q2[2 * ib + 1] |= static_cast<uint32_t>(block_signs[k]) << 7 * k;
      }
      scales[ib] = scale;
      max_scale = std::max(max_scale, scale);
    }

    y[ibl].d = fp32_to_fp16(0.f);
    if (max_scale == 0) {
      std::memset(y[ibl].qs, 0, sizeof(y[ibl].qs));
      continue;
    }
    const float d = max_scale / 31;
    y[ibl].d = fp32_to_fp16(d);
    const float id = 1 / d;
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      q2[2 * ib + 1] |= static_cast<uint32_t>(group_scale_code(id, scales[ib])) << 28;
    }
    std::memcpy(y[ibl].qs, q2, sizeof(q2));
  }
}

void quantize_row_iq2_xs(const float* x, BlockIQ2XS* y, int64_t n, const float* quant_weights) {
  const IqKernels& kernels = iq_kernels();
  const GridSearch& grid = grid_search(Lattice::kIQ2XS);
  float scales[kQK_K / 16];
  float weight[16];
  float xval[16];
  int8_t L[16];
  float waux[16];
  uint8_t block_signs[2];

  for (int64_t ibl = 0; ibl < n / kQK_K; ++ibl) {
    uint16_t q2[kQK_K / 8] = {};  // per 8: grid index | sign code << 9
    std::memset(y[ibl].scales, 0, sizeof(y[ibl].scales));
    float max_scale = 0;
    const float* xbl = x + kQK_K * ibl;
    const float sigma2 = super_block_sumx2(xbl) / kQK_K;

    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      const float* xb = xbl + 16 * ib;
      imatrix_weights(16, xb, quant_weights + kQK_K * ibl + 16 * ib, sigma2, weight);
      for (int i = 0; i < 16; ++i) waux[i] = std::sqrt(weight[i]);
      for (int k = 0; k < 2; ++k) {
        block_signs[k] = split_signs8_even(xb + 8 * k, weight + 8 * k, xval + 8 * k) & 127;
      }
      float max = xval[0];
      for (int i = 1; i < 16; ++i) max = std::max(max, xval[i]);
      std::memset(L, 0, sizeof(L));
      if (max < kGroupMaxEps) {
        scales[ib] = 0;
        continue;
      }
      float scale = search_group16(kernels, grid, weight, waux, xval, max, L);
      if (scale < 0) {
        scale = -scale;
        for (int k = 0; k < 2; ++k) block_signs[k] = static_cast<uint8_t>(~block_signs[k] & 127);
      }
      for (int k = 0; k < 2; ++k) {
        const int grid_index = grid.index(pack8(L + 8 * k));
        q2[2 * ib + k] = static_cast<uint16_t>(grid_index | (block_signs[k] << 9));
      }
      scales[ib] = scale;
      max_scale = std::max(max_scale, scale);
    }

    y[ibl].d = fp32_to_fp16(0.f);
    if (max_scale == 0) {
      std::memset(y[ibl].qs, 0, sizeof(y[ibl].qs));
      continue;
    }
    const float d = max_scale / 31;
    y[ibl].d = fp32_to_fp16(d);
    const float id = 1 / d;
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      const int l = group_scale_code(id, scales[ib]);
      if (ib % 2 == 0) {
        y[ibl].scales[ib / 2] = static_cast<uint8_t>(l);
      } else {
        y[ibl].scales[ib / 2] |= static_cast<uint8_t>(l << 4);
      }
    }
    std::memcpy(y[ibl].qs, q2, sizeof(q2));
  }
}

void quantize_row_iq2_s(const float* x, BlockIQ2S* y, int64_t n, const float* quant_weights) {
  const IqKernels& kernels = iq_kernels();
  const GridSearch& grid = grid_search(Lattice::kIQ2S);
  float scales[kQK_K / 16];
  float weight[16];
  float xval[16];
  int8_t L[16];
  float waux[16];
  uint8_t block_signs[2];

  for (int64_t ibl = 0; ibl < n / kQK_K; ++ibl) {
    std::memset(&y[ibl], 0, sizeof(BlockIQ2S));
    y[ibl].d = fp32_to_fp16(0.f);
    float max_scale = 0;
    const float* xbl = x + kQK_K * ibl;
    const float sigma2 = 2 * super_block_sumx2(xbl) / kQK_K;

    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      const float* xb = xbl + 16 * ib;
      if (quant_weights != nullptr) {
        imatrix_weights(16, xb, quant_weights + kQK_K * ibl + 16 * ib, sigma2, weight);
      } else {
        for (int i = 0; i < 16; ++i) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
      }
      for (int i = 0; i < 16; ++i) waux[i] = std::sqrt(weight[i]);
      for (int k = 0; k < 2; ++k) block_signs[k] = split_signs8(xb + 8 * k, xval + 8 * k);
      float max = xval[0];
      for (int i = 1; i < 16; ++i) max = std::max(max, xval[i]);
      std::memset(L, 0, sizeof(L));
      if (max < kGroupMaxEpsIQ2S) {
        scales[ib] = 0;
        continue;
      }
      float scale = search_group16(kernels, grid, weight, waux, xval, max, L);
      if (scale < 0) {
        scale = -scale;
        for (int k = 0; k < 2; ++k) block_signs[k] = static_cast<uint8_t>(~block_signs[k]);
      }
      for (int k = 0; k < 2; ++k) {
        const int grid_index = grid.index(pack8(L + 8 * k));
        const int i8 = 2 * ib + k;
        y[ibl].qs[i8] = static_cast<uint8_t>(grid_index & 255);
        y[ibl].qh[i8 / 4] |= static_cast<uint8_t>((grid_index >> 8) << 2 * (i8 % 4));
        y[ibl].qs[kQK_K / 8 + i8] = block_signs[k];
      }
      scales[ib] = scale;
      max_scale = std::max(max_scale, scale);
    }

    if (max_scale == 0) continue;
    const float d = max_scale / 31;
    y[ibl].d = fp32_to_fp16(d * 0.9875f);  // ggml's fudge factor
    const float id = 1 / d;
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      const int l = group_scale_code(id, scales[ib]);
      if (ib % 2 == 0) {
        y[ibl].scales[ib / 2] = static_cast<uint8_t>(l);
      } else {
        y[ibl].scales[ib / 2] |= static_cast<uint8_t>(l << 4);
      }
    }
  }
}

}  // namespace insitu::iq
