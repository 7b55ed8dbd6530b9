// IQ3_XXS and IQ3_S quantizers: 4-element groups on the D4-derived grids of quant/iq_tables.h.
//
// Ports of quantize_row_iq3_xxs_impl and quantize_row_iq3_s_impl of ggml's src/ggml-quants.c
// (commit d99724f2, as vendored in llama-cpp-python 0.3.36), byte-identical to ggml with and
// without an imatrix. Per 32 elements: signs are split off (IQ3_XXS forces an even number of
// negatives by flipping the least important element, since it stores 7 sign bits per 8), the
// magnitudes are quantized to levels 0..7 for a range of trial scales, groups off the grid snap
// to their best neighbour, and the scale with the best weighted correlation wins. The 32-element
// scales are then stored as 4 bits against max_scale / 31. ggml's quirks are kept on purpose:
// the fudge factors on the stored d (1.0125, 1.033), and IQ3_S not advancing its qs / signs
// cursors past an all-zero 32-block.
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

constexpr int kMaxQ = 8;  // levels per element

// Levels of 4 magnitudes at inverse scale id, clamped to the grid's range, packed 3 bits each.
inline uint32_t levels_of4(const float* xval, float id, int8_t* L) {
  uint32_t u = 0;
  for (int i = 0; i < 4; ++i) {
    const int l = nearest_int(0.5f * (id * xval[i] - 1));
    L[i] = static_cast<int8_t>(std::max(0, std::min(kMaxQ - 1, l)));
    u |= static_cast<uint32_t>(L[i]) << 3 * i;
  }
  return u;
}

inline uint32_t pack4(const int8_t* L) {
  uint32_t u = 0;
  for (int i = 0; i < 4; ++i) u |= static_cast<uint32_t>(L[i]) << 3 * i;
  return u;
}

}  // namespace

void quantize_row_iq3_xxs(const float* x, BlockIQ3XXS* y, int64_t n, const float* quant_weights) {
  const IqKernels& kernels = iq_kernels();
  const GridSearch& grid = grid_search(Lattice::kIQ3XXS);
  const LatticeView view = grid.view();
  float scales[kQK_K / 32];
  float weight[32];
  float xval[32];
  int8_t L[32];
  float waux[32];
  uint8_t is_on_grid[8];
  uint8_t block_signs[4];

  for (int64_t ibl = 0; ibl < n / kQK_K; ++ibl) {
    uint8_t q3[kQK_K / 4] = {};  // grid indices
    uint32_t scales_and_signs[kQK_K / 32] = {};
    float max_scale = 0;
    const float* xbl = x + kQK_K * ibl;
    const float sigma2 = 2 * super_block_sumx2(xbl) / kQK_K;

    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const float* xb = xbl + 32 * ib;
      block_weights(32, xb, quant_weights ? quant_weights + kQK_K * ibl + 32 * ib : nullptr, sigma2,
                    weight);
      for (int i = 0; i < 32; ++i) waux[i] = std::sqrt(weight[i]);
      for (int k = 0; k < 4; ++k) {
        block_signs[k] = split_signs8_even(xb + 8 * k, weight + 8 * k, xval + 8 * k) & 127;
      }
      float max = xval[0];
      for (int i = 1; i < 32; ++i) max = std::max(max, xval[i]);
      std::memset(L, 0, sizeof(L));
      if (max < kGroupMaxEpsIQ3XXS) {
        scales[ib] = 0;
        continue;
      }
      float scale = max / (2 * kMaxQ - 1);
      std::fill(is_on_grid, is_on_grid + 8, true);
      search_trial_scales(kernels, view, 32, xval, weight, waux, max, 15, 0.2f, &scale, L,
                          is_on_grid);
      const int n_not_ongrid = static_cast<int>(std::count(is_on_grid, is_on_grid + 8, false));
      if (n_not_ongrid > 0 && scale > 0) {
        const float id = 1 / scale;
        for (int k = 0; k < 8; ++k) {
          if (is_on_grid[k]) continue;
          int8_t Lk[4];
          const uint32_t u = levels_of4(xval + 4 * k, id, Lk);
          int grid_index = grid.index(u);
          if (grid_index < 0)
            grid_index =
                best_neighbour(kernels, grid, u, xval + 4 * k, waux + 4 * k, scale, L + 4 * k);
          const int8_t* e = grid.entry(grid_index);
          for (int i = 0; i < 4; ++i) L[4 * k + i] = static_cast<int8_t>((e[i] - 1) / 2);
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
      for (int k = 0; k < 8; ++k)
        q3[8 * ib + k] = static_cast<uint8_t>(grid.index(pack4(L + 4 * k)));
      scales_and_signs[ib] =
          block_signs[0] | (block_signs[1] << 7) | (block_signs[2] << 14) | (block_signs[3] << 21);
      scales[ib] = scale;
      max_scale = std::max(max_scale, scale);
    }

    if (max_scale == 0) {
      y[ibl].d = fp32_to_fp16(0.f);
      std::memset(y[ibl].qs, 0, sizeof(y[ibl].qs));
      continue;
    }
    const float d = max_scale / 31;
    y[ibl].d = fp32_to_fp16(d * 1.0125f);  // ggml's fudge factor
    const float id = 1 / d;
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      int l = nearest_int(0.5f * (id * scales[ib] - 1));
      l = std::max(0, std::min(15, l));
      scales_and_signs[ib] |= static_cast<uint32_t>(l) << 28;
    }
    std::memcpy(y[ibl].qs, q3, sizeof(q3));
    std::memcpy(y[ibl].qs + sizeof(q3), scales_and_signs, sizeof(scales_and_signs));
  }
}

void quantize_row_iq3_s(const float* x, BlockIQ3S* y, int64_t n, const float* quant_weights) {
  constexpr int kBlock = 32;
  constexpr int bs4 = kBlock / 4;
  constexpr int bs8 = kBlock / 8;
  const IqKernels& kernels = iq_kernels();
  const GridSearch& grid = grid_search(Lattice::kIQ3S);
  const LatticeView view = grid.view();
  float scales[kQK_K / kBlock];
  float weight[kBlock];
  float xval[kBlock];
  int8_t L[kBlock];
  float waux[kBlock];
  uint8_t is_on_grid[bs4];
  uint8_t block_signs[bs8];

  for (int64_t ibl = 0; ibl < n / kQK_K; ++ibl) {
    std::memset(&y[ibl], 0, sizeof(BlockIQ3S));
    y[ibl].d = fp32_to_fp16(0.f);
    // ggml advances these cursors only past blocks it stores, so an all-zero 32-block shifts the
    // following blocks' indices and signs down (their qh bits do not move). Kept for exactness.
    uint8_t* qs = y[ibl].qs;
    uint8_t* qh = y[ibl].qh;
    uint8_t* signs = y[ibl].signs;
    float max_scale = 0;
    const float* xbl = x + kQK_K * ibl;
    const float sigma2 = 2 * super_block_sumx2(xbl) / kQK_K;

    for (int ib = 0; ib < kQK_K / kBlock; ++ib) {
      const float* xb = xbl + kBlock * ib;
      block_weights(kBlock, xb, quant_weights ? quant_weights + kQK_K * ibl + kBlock * ib : nullptr,
                    sigma2, weight);
      for (int i = 0; i < kBlock; ++i) waux[i] = std::sqrt(weight[i]);
      for (int k = 0; k < bs8; ++k) block_signs[k] = split_signs8(xb + 8 * k, xval + 8 * k);
      float max = xval[0];
      for (int i = 1; i < kBlock; ++i) max = std::max(max, xval[i]);
      std::memset(L, 0, sizeof(L));
      if (max == 0) {
        scales[ib] = 0;
        continue;
      }
      float scale = max / (2 * kMaxQ - 1);
      std::fill(is_on_grid, is_on_grid + bs4, false);
      search_trial_scales(kernels, view, kBlock, xval, weight, waux, max, 9, 0.2f, &scale, L,
                          is_on_grid);
      const int n_not_ongrid = static_cast<int>(std::count(is_on_grid, is_on_grid + bs4, false));
      if (n_not_ongrid > 0 && scale > 0) {
        // Unlike IQ3_XXS, every group (on the grid or not) is re-snapped at the final scale.
        const float id = 1 / scale;
        for (int k = 0; k < bs4; ++k) {
          int8_t Lk[4];
          const uint32_t u = levels_of4(xval + 4 * k, id, Lk);
          int grid_index = grid.index(u);
          if (grid_index < 0)
            grid_index =
                best_neighbour(kernels, grid, u, xval + 4 * k, waux + 4 * k, scale, L + 4 * k);
          const int8_t* e = grid.entry(grid_index);
          for (int i = 0; i < 4; ++i) L[4 * k + i] = static_cast<int8_t>((e[i] - 1) / 2);
        }
        float sumqx, sumq2;
        weighted_sums(kBlock, weight, xval, L, &sumqx, &sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
      }
      if (scale < 0) {
        scale = -scale;
        for (int k = 0; k < bs8; ++k) block_signs[k] = static_cast<uint8_t>(~block_signs[k]);
      }
      for (int k = 0; k < bs4; ++k) {
        const int grid_index = grid.index(pack4(L + 4 * k));
        qs[k] = static_cast<uint8_t>(grid_index & 255);
        qh[(ib * bs4 + k) / 8] |= static_cast<uint8_t>((grid_index >> 8) << ((ib * bs4 + k) % 8));
      }
      qs += bs4;
      std::memcpy(signs, block_signs, bs8);
      signs += bs8;
      scales[ib] = scale;
      max_scale = std::max(max_scale, scale);
    }

    if (max_scale == 0) continue;
    const float d = max_scale / 31;
    y[ibl].d = fp32_to_fp16(d * 1.033f);  // ggml's fudge factor
    const float id = 1 / d;
    for (int ib = 0; ib < kQK_K / kBlock; ib += 2) {
      int l1 = nearest_int(0.5f * (id * scales[ib + 0] - 1));
      l1 = std::max(0, std::min(15, l1));
      int l2 = nearest_int(0.5f * (id * scales[ib + 1] - 1));
      l2 = std::max(0, std::min(15, l2));
      y[ibl].scales[ib / 2] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
  }
}

}  // namespace insitu::iq
