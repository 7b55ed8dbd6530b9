// IQ1_S and IQ1_M quantizers: 8-element groups from the ternary grid iq1s_grid, shifted by
// +-0.125 per group.
//
// Ports of quantize_row_iq1_s_impl and quantize_row_iq1_m_impl of ggml's src/ggml-quants.c
// (commit d99724f2, as vendored in llama-cpp-python 0.3.36), byte-identical to ggml's golden
// output. IQ1_M follows the vendored copy, whose split search uses per-half prefix sums: it
// reproduces the golden bytes and also the installed llama.cpp on any input. d99724f2 itself
// summed each split directly; that is algebraically equal but rounds differently on rare inputs
// (it also matches the golden file, so the golden cannot tell the two apart).
//
// With only three levels {-1, 0, 1} (+- delta), the weighted least-squares optimum over a group
// is found exactly: sort the values, and every split of the sorted order into three runs is a
// candidate assignment. IQ1_S splits 32 values with one delta sign; IQ1_M splits 16 values and
// lets each half pick its delta sign (4 combinations). Groups whose levels are not on the grid
// snap to their nearest neighbour. IQ1_S needs an imatrix (its caller refuses to run without);
// IQ1_M weighs by x² without one.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/float_convert.h"
#include "quant/iq_grid_search.h"
#include "quant/iq_helpers.h"
#include "quant/iq_quants.h"
#include "quant/iq_tables.h"
#include "quant/quant_common.h"
#include "quant/quant_vec.h"

namespace insitu::iq {
namespace {

// The three levels shifted up (x_p) or down (x_m) by delta.
constexpr float kXp[3] = {-1 + kIQ1Delta, kIQ1Delta, 1 + kIQ1Delta};
constexpr float kXm[3] = {-1 - kIQ1Delta, -kIQ1Delta, 1 - kIQ1Delta};

inline uint32_t pack8(const int8_t* L) {
  uint32_t u = 0;
  for (int i = 0; i < 8; ++i) u |= static_cast<uint32_t>(L[i]) << 2 * i;
  return u;
}

// The split searches evaluate eight consecutive i2 at once, each lane with ggml's expressions in
// ggml's order, and leave the comparisons sequential: a batch in which no candidate beats the
// current best score (the usual case) is skipped whole, which the sequential scan would have done
// too since nothing changes the best score in between; otherwise the batch's candidates are
// compared one by one in ggml's order. Vectors never leave the always-inlined helpers.
using qvec::any;
using qvec::load8;
using qvec::V8f;
using qvec::V8i;

// Whether candidate (sumqx, sumq2) beats best_score, as ggml tests it.
INSITU_VEC_INLINE V8i beats(V8f sumqx, V8f sumq2, float best_score) {
  return (sumq2 > 0) & (sumqx * sumqx > best_score * sumq2);
}

// Positions 0..n-1 (n = 16 or 32) ordered by ascending x, equal values keeping their order
// (ggml uses glibc's qsort, a stable merge sort for arrays this small). NaNs sort last, which
// keeps the order a strict weak one whatever the input. Each position's rank is counted at once
// against all others: those that order before it, and the equivalent ones with a lower index.
INSITU_QUANT_CLONES void sort_positions(int n, const float* x, int* idx) {
  const V8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
  for (int i = 0; i < n; ++i) {
    const float xi = x[i];
    const bool nan_i = std::isnan(xi);
    V8i rank = {};
    for (int j0 = 0; j0 < n; j0 += 8) {
      const V8f xj = load8(x + j0);
      const V8i nan_j = xj != xj;
      const V8i before = nan_i ? ~nan_j : ~nan_j & (xj < xi);  // x_j orders before x_i
      const V8i after = nan_i ? V8i{} : nan_j | (xi < xj);     // x_i orders before x_j
      rank -= before | (~after & (lane + j0 < i));
    }
    idx[rank[0] + rank[1] + rank[2] + rank[3] + rank[4] + rank[5] + rank[6] + rank[7]] = i;
  }
}

// Compares the candidates of one batch, lane j then k = 0..K-1, in that order against the best
// score as ggml does, calling take(j, k, scale) for each that beats it (which then sets the new
// score). Lanes are re-filtered in vectors after each winner, so only lanes that would beat the
// current best are visited one by one.
template <int K, typename Take>
INSITU_VEC_INLINE void compare_batch(const V8f* sumqx, const V8f* sumq2, int nvalid,
                                     float& best_score, Take take) {
  const V8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
  V8i pass = beats(sumqx[0], sumq2[0], best_score);
  for (int k = 1; k < K; ++k) pass |= beats(sumqx[k], sumq2[k], best_score);
  pass &= lane < nvalid;
  if (!any(pass)) return;
  for (int j = 0; j < 8 && j < nvalid; ++j) {
    for (int k = 0; k < K; ++k) {
      const float qx = sumqx[k][j];
      const float q2 = sumq2[k][j];
      if (q2 > 0 && qx * qx > best_score * q2) {
        const float scale = qx / q2;
        best_score = scale * qx;
        take(j, k, scale);
      }
    }
  }
}

struct Split {
  float scale;
  int i1 = -1;
  int i2 = -1;
  int shift = 0;  // IQ1_S: +-1; IQ1_M: the delta-sign combination 0..3, or -1
};

// IQ1_S: sorted positions [0, i1) at level 0, [i1, i2) at 1, [i2, n) at 2, with delta +1 or -1;
// sumx / sumw are the prefix sums over the sorted order, readable 7 entries past [n].
INSITU_QUANT_CLONES Split iq1s_best_split(int n, const float* sumx, const float* sumw, float max) {
  Split best;
  best.scale = max;
  float best_score = -FLT_MAX;
  for (int i1 = 0; i1 <= n; ++i1) {
    const float qx0_p = (sumx[i1] - sumx[0]) * kXp[0];
    const float qx0_m = (sumx[i1] - sumx[0]) * kXm[0];
    const float q20_p = (sumw[i1] - sumw[0]) * kXp[0] * kXp[0];
    const float q20_m = (sumw[i1] - sumw[0]) * kXm[0] * kXm[0];
    for (int i2 = i1; i2 <= n; i2 += 8) {
      const V8f sx = load8(sumx + i2);
      const V8f sw = load8(sumw + i2);
      const V8f qx_p = qx0_p + (sx - sumx[i1]) * kXp[1] + (sumx[n] - sx) * kXp[2];
      const V8f q2_p = q20_p + (sw - sumw[i1]) * kXp[1] * kXp[1] + (sumw[n] - sw) * kXp[2] * kXp[2];
      const V8f qx_m = qx0_m + (sx - sumx[i1]) * kXm[1] + (sumx[n] - sx) * kXm[2];
      const V8f q2_m = q20_m + (sw - sumw[i1]) * kXm[1] * kXm[1] + (sumw[n] - sw) * kXm[2] * kXm[2];
      const V8f sumqx[2] = {qx_p, qx_m};
      const V8f sumq2[2] = {q2_p, q2_m};
      compare_batch<2>(sumqx, sumq2, n + 1 - i2, best_score, [&](int j, int c, float scale) {
        best.scale = scale;
        best.i1 = i1;
        best.i2 = i2 + j;
        best.shift = c == 0 ? 1 : -1;
      });
    }
  }
  return best;
}

// IQ1_M over 16 values: px / pw [h][j] are half h's prefix sums over the sorted order (readable
// 7 entries past [16]); see quantize_row_iq1_m for the algebra. Combinations 0..3 are the delta
// signs (+,+), (+,-), (-,+), (-,-) of the two halves.
INSITU_QUANT_CLONES Split iq1m_best_split(const float (*px)[24], const float (*pw)[24], float max) {
  constexpr int n = 16;
  Split best;
  best.scale = max;
  best.shift = -1;
  float best_score = -FLT_MAX;
  const float p2 = kXp[2];
  const float m2 = kXm[2];
  const float cp1 = kXp[0] * kXp[0] - kXp[1] * kXp[1];
  const float cp2 = kXp[1] * kXp[1] - kXp[2] * kXp[2];
  const float cm1 = kXm[0] * kXm[0] - kXm[1] * kXm[1];
  const float cm2 = kXm[1] * kXm[1] - kXm[2] * kXm[2];
  float txp[2], txm[2], twp[2], twm[2];
  for (int h = 0; h < 2; ++h) {
    txp[h] = px[h][n] * p2;
    txm[h] = px[h][n] * m2;
    twp[h] = pw[h][n] * p2 * p2;
    twm[h] = pw[h][n] * m2 * m2;
  }
  for (int i1 = 0; i1 <= n; ++i1) {
    V8f qx_p[2], qx_m[2], q2_p[2], q2_m[2];
    for (int i2 = i1; i2 <= n; i2 += 8) {
      for (int h = 0; h < 2; ++h) {
        const V8f sx = px[h][i1] + load8(px[h] + i2);
        qx_p[h] = txp[h] - sx;
        qx_m[h] = txm[h] - sx;
        const V8f pw2 = load8(pw[h] + i2);
        q2_p[h] = (twp[h] + pw[h][i1] * cp1) + pw2 * cp2;
        q2_m[h] = (twm[h] + pw[h][i1] * cm1) + pw2 * cm2;
      }
      const V8f sumqx[4] = {qx_p[0] + qx_p[1], qx_p[0] + qx_m[1], qx_m[0] + qx_p[1],
                            qx_m[0] + qx_m[1]};
      const V8f sumq2[4] = {q2_p[0] + q2_p[1], q2_p[0] + q2_m[1], q2_m[0] + q2_p[1],
                            q2_m[0] + q2_m[1]};
      compare_batch<4>(sumqx, sumq2, n + 1 - i2, best_score, [&](int j, int k, float scale) {
        best.scale = scale;
        best.i1 = i1;
        best.i2 = i2 + j;
        best.shift = k;
      });
    }
  }
  return best;
}

// Among the neighbours of the off-grid level vector u, the entry minimising
// Σ w·(scale·xg[level] - x)²; writes its levels to L. Port of iq1_find_best_neighbour2. ggml
// falls back to a scan of the whole grid when no neighbour gives a finite distance (only with
// non-finite input); here the first neighbour is kept instead.
int best_neighbour_shifted(const IqKernels& kernels, const GridSearch& g, uint32_t u,
                           const float* xval, const float* weight, float scale, const float* xg,
                           int8_t* L) {
  const int best = kernels.best_neighbour(g.neighbour_list(u), g.bits(), xval, weight, scale, xg);
  const int8_t* e = g.entry(best);
  for (int i = 0; i < 8; ++i) L[i] = static_cast<int8_t>((e[i] - 1) / 2);
  return best;
}

// Snaps the groups of 8 to the grid; returns whether all were on it. shift_of(k) gives group k's
// level values.
template <typename ShiftOf>
bool snap_to_grid(const IqKernels& kernels, const GridSearch& grid, int ngroups, const float* xb,
                  const float* weight, float scale, int8_t* L, uint16_t* index, ShiftOf shift_of) {
  bool all_on_grid = true;
  for (int k = 0; k < ngroups; ++k) {
    const uint32_t u = pack8(L + 8 * k);
    int grid_index = grid.index(u);
    if (grid_index < 0) {
      all_on_grid = false;
      grid_index = best_neighbour_shifted(kernels, grid, u, xb + 8 * k, weight + 8 * k, scale,
                                          shift_of(k), L + 8 * k);
    }
    index[k] = static_cast<uint16_t>(grid_index);
  }
  return all_on_grid;
}

// The least-squares scale of the snapped groups; keeps `scale` unless both sums are positive.
template <typename ShiftOf>
float refit_scale(const GridSearch& grid, int ngroups, const float* xb, const float* weight,
                  const uint16_t* index, float scale, ShiftOf shift_of) {
  float sumqx = 0;
  float sumq2 = 0;
  for (int k = 0; k < ngroups; ++k) {
    const float* xx = shift_of(k);
    const int8_t* e = grid.entry(index[k]);
    for (int j = 0; j < 8; ++j) {
      const float w = weight[8 * k + j];
      const float q = xx[(e[j] - 1) / 2];
      sumqx += w * q * xb[8 * k + j];
      sumq2 += w * q * q;
    }
  }
  return sumqx > 0 && sumq2 > 0 ? sumqx / sumq2 : scale;
}

}  // namespace

void quantize_row_iq1_s(const float* x, BlockIQ1S* y, int64_t n, const float* quant_weights) {
  constexpr int kBlock = 32;
  const IqKernels& kernels = iq_kernels();
  const GridSearch& grid = grid_search(Lattice::kIQ1S);
  float scales[kQK_K / kBlock];
  int8_t shifts[kQK_K / kBlock];
  float weight[kBlock];
  float sumx[kBlock + 8] = {};  // prefix sums, padded for 8-lane loads
  float sumw[kBlock + 8] = {};
  int idx[kBlock];
  int8_t L[kBlock];
  uint16_t index[kBlock / 8];

  for (int64_t ibl = 0; ibl < n / kQK_K; ++ibl) {
    y[ibl].d = fp32_to_fp16(0.f);
    std::memset(y[ibl].qs, 0, sizeof(y[ibl].qs));
    std::memset(y[ibl].qh, 0, sizeof(y[ibl].qh));
    float max_scale = 0;
    const float* xbl = x + kQK_K * ibl;
    const float sigma2 = 2 * super_block_sumx2(xbl) / kQK_K;

    for (int ib = 0; ib < kQK_K / kBlock; ++ib) {
      const float* xb = xbl + kBlock * ib;
      const float* qw = quant_weights + kQK_K * ibl + kBlock * ib;
      for (int i = 0; i < kBlock; ++i) weight[i] = qw[i] * std::sqrt(sigma2 + xb[i] * xb[i]);
      float max = std::fabs(xb[0]);
      for (int i = 1; i < kBlock; ++i) max = std::max(max, std::fabs(xb[i]));
      if (max < kGroupMaxEpsIQ1S) {
        scales[ib] = 0;
        shifts[ib] = 1;
        continue;
      }
      sort_positions(kBlock, xb, idx);
      sumx[0] = sumw[0] = 0;
      for (int j = 0; j < kBlock; ++j) {
        const int i = idx[j];
        sumx[j + 1] = sumx[j] + weight[i] * xb[i];
        sumw[j + 1] = sumw[j] + weight[i];
      }
      // Sorted positions [0, i1) get level 0, [i1, i2) level 1, [i2, 32) level 2.
      const Split split = iq1s_best_split(kBlock, sumx, sumw, max);
      float scale = split.scale;
      const int besti1 = split.i1;
      const int besti2 = split.i2;
      int best_shift = split.shift;
      if (besti1 < 0 || besti2 < 0 || best_shift == 0) {
        scales[ib] = 0;
        shifts[ib] = 1;
        continue;
      }
      for (int j = 0; j < besti1; ++j) L[idx[j]] = 0;
      for (int j = besti1; j < besti2; ++j) L[idx[j]] = 1;
      for (int j = besti2; j < kBlock; ++j) L[idx[j]] = 2;
      if (scale < 0) {
        for (int j = 0; j < kBlock; ++j) L[j] = static_cast<int8_t>(2 - L[j]);
        scale = -scale;
        best_shift = -best_shift;
      }
      const float* xx = best_shift == 1 ? kXp : kXm;
      const auto shift_of = [xx](int) { return xx; };
      if (!snap_to_grid(kernels, grid, kBlock / 8, xb, weight, scale, L, index, shift_of)) {
        scale = refit_scale(grid, kBlock / 8, xb, weight, index, scale, shift_of);
      }
      uint16_t h = 0;
      for (int k = 0; k < kBlock / 8; ++k) {
        y[ibl].qs[(kBlock / 8) * ib + k] = static_cast<uint8_t>(index[k] & 255);
        h = static_cast<uint16_t>(h | ((index[k] >> 8) << 3 * k));
      }
      y[ibl].qh[ib] = h;
      scales[ib] = scale;
      shifts[ib] = static_cast<int8_t>(best_shift);
      max_scale = std::max(max_scale, scale);
    }

    if (max_scale == 0) continue;
    const float d = max_scale / 15;
    y[ibl].d = fp32_to_fp16(d * 1.125f);  // ggml's fudge factor
    const float id = 1 / d;
    for (int ib = 0; ib < kQK_K / kBlock; ++ib) {
      int l = nearest_int(0.5f * (id * scales[ib] - 1));
      l = std::max(0, std::min(7, l));
      if (shifts[ib] == -1) l |= 8;
      y[ibl].qh[ib] = static_cast<uint16_t>(y[ibl].qh[ib] | (l << 12));
    }
  }
}

void quantize_row_iq1_m(const float* x, BlockIQ1M* y, int64_t n, const float* quant_weights) {
  constexpr int kBlock = 16;
  const IqKernels& kernels = iq_kernels();
  const GridSearch& grid = grid_search(Lattice::kIQ1S);
  // Delta signs of the two halves: 0 = (+, +), 1 = (+, -), 2 = (-, +), 3 = (-, -).
  constexpr uint8_t kMasks[4] = {0x00, 0x80, 0x08, 0x88};
  const auto shift_table = [](int combo, int half) {
    return half == 0 ? (combo < 2 ? kXp : kXm) : (combo % 2 == 0 ? kXp : kXm);
  };
  float scales[kQK_K / kBlock];
  int8_t shifts[kQK_K / kBlock];
  float weight[kBlock];
  int idx[kBlock];
  int8_t L[kBlock];
  uint16_t index[kBlock / 8];

  for (int64_t ibl = 0; ibl < n / kQK_K; ++ibl) {
    std::memset(&y[ibl], 0, sizeof(BlockIQ1M));
    float max_scale = 0;
    const float* xbl = x + kQK_K * ibl;
    const float sigma2 = 2 * super_block_sumx2(xbl) / kQK_K;
    const auto block_weights_of = [&](int ib) {
      block_weights(kBlock, xbl + kBlock * ib,
                    quant_weights ? quant_weights + kQK_K * ibl + kBlock * ib : nullptr, sigma2,
                    weight);
    };

    for (int ib = 0; ib < kQK_K / kBlock; ++ib) {
      const float* xb = xbl + kBlock * ib;
      block_weights_of(ib);
      float max = std::fabs(xb[0]);
      for (int i = 1; i < kBlock; ++i) max = std::max(max, std::fabs(xb[i]));
      if (max < kGroupMaxEpsIQ1M) {
        scales[ib] = 0;
        shifts[ib] = 0;
        continue;
      }
      sort_positions(kBlock, xb, idx);
      // Per-half prefix sums over the sorted order: the delta-shifted levels differ by exactly 1
      // (v0 - v1 = v1 - v2 = -1), so a split's Σ w·v·x collapses to T·v2 - P(i1) - P(i2), and
      // Σ w·v² to W·v2² + Pw(i1)·(v0² - v1²) + Pw(i2)·(v1² - v2²).
      float px[2][24] = {};  // [half][sorted prefix length]: Σ w·x of that half's elements
      float pw[2][24] = {};  //                               Σ w (padded for 8-lane loads)
      for (int j = 0; j < kBlock; ++j) {
        const int i = idx[j];
        const int h = i < kBlock / 2 ? 0 : 1;
        px[h][j + 1] = px[h][j] + weight[i] * xb[i];
        px[1 - h][j + 1] = px[1 - h][j];
        pw[h][j + 1] = pw[h][j] + weight[i];
        pw[1 - h][j + 1] = pw[1 - h][j];
      }
      const Split split = iq1m_best_split(px, pw, max);
      float scale = split.scale;
      const int besti1 = split.i1;
      const int besti2 = split.i2;
      int best_k = split.shift;
      if (besti1 < 0 || besti2 < 0 || best_k < 0) {
        scales[ib] = 0;
        shifts[ib] = 0;
        continue;
      }
      for (int j = 0; j < besti1; ++j) L[idx[j]] = 0;
      for (int j = besti1; j < besti2; ++j) L[idx[j]] = 1;
      for (int j = besti2; j < kBlock; ++j) L[idx[j]] = 2;
      if (scale < 0) {
        for (int j = 0; j < kBlock; ++j) L[j] = static_cast<int8_t>(2 - L[j]);
        scale = -scale;
        best_k = 3 - best_k;  // both halves' delta signs flip
      }
      const auto shift_of = [&shift_table, best_k](int k) { return shift_table(best_k, k); };
      if (!snap_to_grid(kernels, grid, kBlock / 8, xb, weight, scale, L, index, shift_of)) {
        scale = refit_scale(grid, kBlock / 8, xb, weight, index, scale, shift_of);
      }
      y[ibl].qs[2 * ib + 0] = static_cast<uint8_t>(index[0] & 255);
      y[ibl].qs[2 * ib + 1] = static_cast<uint8_t>(index[1] & 255);
      y[ibl].qh[ib] = static_cast<uint8_t>((index[0] >> 8) | ((index[1] >> 8) << 4));
      scales[ib] = scale;
      shifts[ib] = static_cast<int8_t>(best_k);
      max_scale = std::max(max_scale, scale);
    }

    if (max_scale == 0) continue;

    // 3-bit scales per 16, then one least-squares super-scale over the whole block as stored.
    uint16_t sc[4] = {0, 0, 0, 0};
    float d = max_scale / 15;
    const float id = 1 / d;
    float sumqx = 0;
    float sumq2 = 0;
    for (int ib = 0; ib < kQK_K / kBlock; ++ib) {
      int l = nearest_int(0.5f * (id * scales[ib + 0] - 1));
      l = std::max(0, std::min(7, l));
      sc[ib / 4] = static_cast<uint16_t>(sc[ib / 4] | (l << 3 * (ib % 4)));
      y[ibl].qh[ib] |= kMasks[shifts[ib]];
      const float* xb = xbl + kBlock * ib;
      block_weights_of(ib);
      for (int k = 0; k < kBlock / 8; ++k) {
        const float* xx = shift_table(shifts[ib], k);
        const int grid_index = y[ibl].qs[2 * ib + k] | ((y[ibl].qh[ib] << (8 - 4 * k)) & 0x700);
        const int8_t* e = grid.entry(grid_index);
        for (int j = 0; j < 8; ++j) {
          const float w = weight[8 * k + j];
          const float q = xx[(e[j] - 1) / 2] * (2 * l + 1);
          sumqx += w * q * xb[8 * k + j];
          sumq2 += w * q * q;
        }
      }
    }
    if (sumq2 > 0) d = sumqx / sumq2;
    const uint16_t d16 = fp32_to_fp16(d * 1.1125f);  // ggml's fudge factor
    sc[0] = static_cast<uint16_t>(sc[0] | ((d16 & 0x000f) << 12));
    sc[1] = static_cast<uint16_t>(sc[1] | ((d16 & 0x00f0) << 8));
    sc[2] = static_cast<uint16_t>(sc[2] | ((d16 & 0x0f00) << 4));
    sc[3] = static_cast<uint16_t>(sc[3] | (d16 & 0xf000));
    std::memcpy(y[ibl].scales, sc, sizeof(sc));
  }
}

}  // namespace insitu::iq
