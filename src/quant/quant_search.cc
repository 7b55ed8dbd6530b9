// Fast, bit-identical implementations of ggml's candidate-scale searches (make_qx_quants,
// make_qkx2_quants, make_qkx3_quants, make_qp_quants from src/ggml-quants.c at commit d99724f2).
//
// Why this is exact: ggml evaluates each candidate inverse scale with plain sequential sums over
// the group's elements. Here eight candidates run side by side, one per SIMD lane; every lane
// performs exactly ggml's operations in ggml's order on its own accumulators, so each lane's sums
// are bit-identical to ggml's. Only the order in which candidates are *compared* must stay
// sequential, and that part runs in scalar code afterwards, in ggml's candidate order.
//
// make_qkx2/3 has one more dependency: when a candidate wins, ggml replaces `min` by the winner's
// fitted min, and later candidates are scaled against the new min. The lane version is therefore
// speculative: a batch is evaluated with the current min; on a win that changes min, the lanes
// after the winner are discarded and a new batch starts right after it.
//
// The vectors are GCC vector extensions; the functions are cloned for AVX2 and baseline x86-64
// (target_clones) and the loader picks one. Neither clone contracts to FMA (-ffp-contract=off and
// no FMA target), so both give the same bits. scalar_ref:: in quant_common.cc is the oracle.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "quant/quant_common.h"

// Vectors never cross a call boundary (see INSITU_INLINE), so the AVX ABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace insitu {
namespace {

typedef float V8f __attribute__((vector_size(32)));
typedef int32_t V8i __attribute__((vector_size(32)));
constexpr int kLanes = 8;
constexpr int kMaxN = 64;  // groups longer than this use the scalar oracle

#define INSITU_CLONES INSITU_QUANT_CLONES

// Vector helpers are always inlined into the cloned callers, so no vector crosses a call
// boundary (whose ABI would differ between the AVX2 and baseline clones).
#define INSITU_INLINE inline __attribute__((always_inline))

INSITU_INLINE V8i nearest_int_v(V8f f) {
  const V8i bits = (V8i)(f + 12582912.f);  // a vector cast reinterprets the bits
  return (bits & 0x007fffff) - 0x00400000;
}

INSITU_INLINE V8i clamp_v(V8i v, int lo, int hi) {
  const V8i vlo = V8i{} + lo;
  const V8i vhi = V8i{} + hi;
  v = v < vlo ? vlo : v;
  return v > vhi ? vhi : v;
}

INSITU_INLINE V8f abs_v(V8f f) { return (V8f)((V8i)f & 0x7fffffff); }

inline float qx_weight(int rmse_type, float x) {
  if (rmse_type == 1) return x * x;
  if (rmse_type == 2) return 1.0f;
  if (rmse_type == 3) return std::fabs(x);
  return std::sqrt(std::fabs(x));
}

INSITU_CLONES
float make_qx_quants_lanes(int n, int nmax, const float* x, int8_t* L, int rmse_type,
                           const float* qw) {
  float max = 0;
  float amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.f;
  }
  float w[kMaxN];
  float wx[kMaxN];  // ggml's w*x[i], the left operand of w*x[i]*l
  for (int i = 0; i < n; ++i) {
    w[i] = qw ? qw[i] : qx_weight(rmse_type, x[i]);
    wx[i] = w[i] * x[i];
  }
  float iscale = -nmax / max;
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<int8_t>(l + nmax);
    sumlx += wx[i] * l;
    suml2 += w[i] * l * l;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  // The 18 candidates is = -9..-1, 1..9 in ggml's order, eight at a time.
  int cand[24];
  int n_cand = 0;
  for (int is = -9; is <= 9; ++is) {
    if (is != 0) cand[n_cand++] = is;
  }
  float best_iscale = 0;
  bool replaced = false;
  for (int base = 0; base < n_cand; base += kLanes) {
    V8f isc;
    for (int k = 0; k < kLanes; ++k) {
      const int is = cand[base + k < n_cand ? base + k : n_cand - 1];
      isc[k] = -(nmax + 0.1f * is) / max;
    }
    V8f slx = {};
    V8f sl2 = {};
    for (int i = 0; i < n; ++i) {
      const V8i li = clamp_v(nearest_int_v(isc * x[i]), -nmax, nmax - 1);
      const V8f lf = __builtin_convertvector(li, V8f);
      slx += wx[i] * lf;
      sl2 += w[i] * lf * lf;
    }
    for (int k = 0; k < kLanes && base + k < n_cand; ++k) {
      if (sl2[k] > 0 && slx[k] * slx[k] > best * sl2[k]) {
        scale = slx[k] / sl2[k];
        best = scale * slx[k];
        best_iscale = isc[k];
        replaced = true;
      }
    }
  }
  if (replaced) {
    for (int i = 0; i < n; ++i) {
      const int l = nearest_int(best_iscale * x[i]);
      L[i] = static_cast<int8_t>(nmax + std::max(-nmax, std::min(nmax - 1, l)));
    }
  }
  return scale;
}

template <bool kQkx3>
INSITU_CLONES float make_qkx_lanes(int n, int nmax, const float* x, const float* weights,
                                   uint8_t* L, float* the_min, float rmin, float rdelta, int nstep,
                                   bool use_mad) {
  float w[kMaxN];
  float min = x[0];
  float max = x[0];
  w[0] = (!kQkx3 || weights) ? weights[0] : x[0] * x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    w[i] = (!kQkx3 || weights) ? weights[i] : x[i] * x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (kQkx3 ? max <= min : max == min) {
    std::memset(L, 0, static_cast<size_t>(n));
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += w[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  float xm[kMaxN];
  V8f lfs[kMaxN];
  int is = 0;
  while (is <= nstep) {
    // One speculative batch: candidates is .. is+7, all against the current min.
    const float range = max - min;
    for (int i = 0; i < n; ++i) xm[i] = x[i] - min;
    V8f isc;
    for (int k = 0; k < kLanes; ++k) isc[k] = (rmin + rdelta * (is + k) + nmax) / range;
    V8f sl = {};
    V8f sl2 = {};
    V8f sxl = {};
    for (int i = 0; i < n; ++i) {
      const V8i li = clamp_v(nearest_int_v(isc * xm[i]), 0, nmax);
      const V8f lf = __builtin_convertvector(li, V8f);
      lfs[i] = lf;
      const V8f wl = w[i] * lf;
      sl += wl;
      sl2 += wl * lf;
      sxl += wl * x[i];
    }
    const V8f D = sum_w * sl2 - sl * sl;
    V8f this_scale = (sum_w * sxl - sum_x * sl) / D;
    V8f this_min = (sl2 * sum_x - sl * sxl) / D;
    const V8i positive = this_min > 0.f;
    this_scale = positive ? sxl / sl2 : this_scale;
    this_min = positive ? V8f{} : this_min;
    V8f err = {};
    for (int i = 0; i < n; ++i) {
      V8f diff = this_scale * lfs[i] + this_min - x[i];
      diff = use_mad ? abs_v(diff) : diff * diff;
      err += w[i] * diff;
    }
    int next = is + kLanes;
    for (int k = 0; k < kLanes && is + k <= nstep; ++k) {
      if (!(D[k] > 0) || !(err[k] < best_error)) continue;
      for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(lfs[i][k]);
      best_error = err[k];
      scale = this_scale[k];
      // A vector lane has no address under clang; compare bit patterns through a copy.
      const float lane_min = this_min[k];
      const bool min_changed = std::memcmp(&min, &lane_min, sizeof(float)) != 0;
      min = lane_min;
      if (min_changed) {
        // Later candidates depend on the new min: re-evaluate them.
        next = is + k + 1;
        break;
      }
    }
    is = next;
  }
  *the_min = -min;
  return scale;
}

// make_q3_quants(n, nmax, x + g*n, L + g*n, true) for eight groups at once, one group per lane.
// Each lane runs ggml's coordinate descent with its own sums; a lane whose pass changes nothing
// stops updating, exactly as ggml's loop breaks.
INSITU_CLONES
void make_q3_quants_lanes(int ngroups, int n, int nmax, const float* x, int8_t* L, float* scales) {
  V8f xt[kMaxN];
  V8i lv[kMaxN];
  const V8i vnmax = V8i{} + nmax;
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < kLanes; ++k) xt[i][k] = k < ngroups ? x[k * n + i] : 0.0f;
  }
  V8f max = {};
  V8f amax = {};
  for (int i = 0; i < n; ++i) {
    const V8f ax = abs_v(xt[i]);
    const V8i gt = ax > amax;
    amax = gt ? ax : amax;
    max = gt ? xt[i] : max;
  }
  const V8i nonzero = amax >= kGroupMaxEps;
  const V8f iscale = static_cast<float>(-nmax) / max;
  V8f sumlx = {};
  V8f suml2 = {};
  for (int i = 0; i < n; ++i) {
    lv[i] = clamp_v(nearest_int_v(iscale * xt[i]), -nmax, nmax - 1);
    const V8f lf = __builtin_convertvector(lv[i], V8f);
    const V8f w = xt[i] * xt[i];
    sumlx += w * xt[i] * lf;
    suml2 += w * lf * lf;
  }
  V8i active = nonzero;
  for (int itry = 0; itry < 5; ++itry) {
    V8i changed = {};
    for (int i = 0; i < n; ++i) {
      const V8f w = xt[i] * xt[i];
      const V8f wx = w * xt[i];
      const V8f lf = __builtin_convertvector(lv[i], V8f);
      V8f slx = sumlx - wx * lf;
      V8f sl2 = suml2 - w * lf * lf;
      const V8i new_l = clamp_v(nearest_int_v(xt[i] * sl2 / slx), -nmax, nmax - 1);
      const V8f nf = __builtin_convertvector(new_l, V8f);
      slx = slx + wx * nf;
      sl2 = sl2 + w * nf * nf;
      // ggml tests slx > 0 on the value before adding the new level's term.
      const V8i pos = (sumlx - wx * lf) > 0.f;
      const V8i better = (sl2 > 0.f) & (slx * slx * suml2 > sumlx * sumlx * sl2);
      const V8i upd = active & pos & (new_l != lv[i]) & better;
      lv[i] = upd ? new_l : lv[i];
      sumlx = upd ? slx : sumlx;
      suml2 = upd ? sl2 : suml2;
      changed |= upd;
    }
    active &= changed;
    bool any = false;
    for (int k = 0; k < kLanes; ++k) any |= active[k] != 0;
    if (!any) break;
  }
  for (int k = 0; k < ngroups; ++k) {
    if (nonzero[k] == 0) {
      std::memset(L + k * n, 0, static_cast<size_t>(n));
      scales[k] = 0.f;
      continue;
    }
    for (int i = 0; i < n; ++i) L[k * n + i] = static_cast<int8_t>(lv[i][k] + vnmax[k]);
    scales[k] = suml2[k] > 0.0f ? sumlx[k] / suml2[k] : 0.0f;
  }
}

// make_qx_quants(n, nmax, x + g*n, L + g*n, 1, qw ? qw + g*n : nullptr) for eight groups at once,
// one group per lane: every lane runs ggml's whole search (first fit, then the 18 candidates in
// order, each compared against that lane's running best) with its own sums.
INSITU_CLONES
void make_qx_quants_lanes_groups(int ngroups, int n, int nmax, const float* x, int8_t* L,
                                 const float* qw, float* scales) {
  V8f xt[kMaxN];
  V8f wt[kMaxN];
  V8f wxt[kMaxN];
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < kLanes; ++k) {
      xt[i][k] = k < ngroups ? x[k * n + i] : 0.0f;
      wt[i][k] = k < ngroups ? (qw ? qw[k * n + i] : xt[i][k] * xt[i][k]) : 0.0f;
    }
    wxt[i] = wt[i] * xt[i];
  }
  V8f max = {};
  V8f amax = {};
  for (int i = 0; i < n; ++i) {
    const V8f ax = abs_v(xt[i]);
    const V8i gt = ax > amax;
    amax = gt ? ax : amax;
    max = gt ? xt[i] : max;
  }
  const V8i nonzero = amax >= kGroupMaxEps;
  const V8f iscale0 = static_cast<float>(-nmax) / max;
  V8f sumlx = {};
  V8f suml2 = {};
  for (int i = 0; i < n; ++i) {
    const V8f lf =
        __builtin_convertvector(clamp_v(nearest_int_v(iscale0 * xt[i]), -nmax, nmax - 1), V8f);
    sumlx += wxt[i] * lf;
    suml2 += wt[i] * lf * lf;
  }
  V8f scale = suml2 != 0.f ? sumlx / suml2 : V8f{};
  V8f best = scale * sumlx;
  V8f best_iscale = iscale0;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const float t = nmax + 0.1f * is;
    const V8f isc = -t / max;
    V8f slx = {};
    V8f sl2 = {};
    for (int i = 0; i < n; ++i) {
      const V8f lf =
          __builtin_convertvector(clamp_v(nearest_int_v(isc * xt[i]), -nmax, nmax - 1), V8f);
      slx += wxt[i] * lf;
      sl2 += wt[i] * lf * lf;
    }
    const V8i win = (sl2 > 0.f) & (slx * slx > best * sl2);
    scale = win ? slx / sl2 : scale;
    best = win ? scale * slx : best;
    best_iscale = win ? isc : best_iscale;
  }
  for (int i = 0; i < n; ++i) {
    const V8i l = clamp_v(nearest_int_v(best_iscale * xt[i]), -nmax, nmax - 1) + nmax;
    for (int k = 0; k < ngroups; ++k) L[k * n + i] = static_cast<int8_t>(nonzero[k] ? l[k] : 0);
  }
  for (int k = 0; k < ngroups; ++k) scales[k] = nonzero[k] ? scale[k] : 0.f;
}

// make_qkx2/3_quants for eight groups at once, one group per lane. Each lane runs ggml's whole
// sequential search, including the update of `min` after a win that later candidates scale
// against, with its own sums; nothing is speculative.
template <bool kQkx3>
INSITU_CLONES void make_qkx_lanes_groups(int ngroups, int n, int nmax, const float* x,
                                         const float* weights, uint8_t* L, float* scales,
                                         float* the_mins, float rmin, float rdelta, int nstep,
                                         bool use_mad) {
  if (n < 1) return;
  V8f xt[kMaxN];
  V8f wt[kMaxN];
  V8i lv[kMaxN];
  V8i aux[kMaxN];
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < kLanes; ++k) {
      const float xv = k < ngroups ? x[k * n + i] : 0.0f;
      xt[i][k] = xv;
      wt[i][k] = k < ngroups ? ((!kQkx3 || weights) ? weights[k * n + i] : xv * xv) : 0.0f;
    }
  }
  V8f min = xt[0];
  V8f max = xt[0];
  V8f sum_w = wt[0];
  V8f sum_x = sum_w * xt[0];
  for (int i = 1; i < n; ++i) {
    min = xt[i] < min ? xt[i] : min;
    max = xt[i] > max ? xt[i] : max;
    sum_w += wt[i];
    sum_x += wt[i] * xt[i];
  }
  min = min > 0.f ? V8f{} : min;
  const V8i live = kQkx3 ? ~(max <= min) : (max != min);  // ggml's exits, NaNs included
  const V8f iscale0 = static_cast<float>(nmax) / (max - min);
  V8f scale = 1.f / iscale0;
  V8f best_error = {};
  for (int i = 0; i < n; ++i) {
    lv[i] = clamp_v(nearest_int_v(iscale0 * (xt[i] - min)), 0, nmax);
    V8f diff = scale * __builtin_convertvector(lv[i], V8f) + min - xt[i];
    diff = use_mad ? abs_v(diff) : diff * diff;
    best_error += wt[i] * diff;
  }
  for (int is = 0; nstep >= 1 && is <= nstep; ++is) {
    const float num = rmin + rdelta * is + nmax;
    const V8f isc = num / (max - min);
    V8f sum_l = {};
    V8f sum_l2 = {};
    V8f sum_xl = {};
    for (int i = 0; i < n; ++i) {
      aux[i] = clamp_v(nearest_int_v(isc * (xt[i] - min)), 0, nmax);
      const V8f wl = wt[i] * __builtin_convertvector(aux[i], V8f);
      sum_l += wl;
      sum_l2 += wl * __builtin_convertvector(aux[i], V8f);
      sum_xl += wl * xt[i];
    }
    const V8f D = sum_w * sum_l2 - sum_l * sum_l;
    V8f this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    V8f this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    const V8i positive = this_min > 0.f;
    this_scale = positive ? sum_xl / sum_l2 : this_scale;
    this_min = positive ? V8f{} : this_min;
    V8f err = {};
    for (int i = 0; i < n; ++i) {
      V8f diff = this_scale * __builtin_convertvector(aux[i], V8f) + this_min - xt[i];
      diff = use_mad ? abs_v(diff) : diff * diff;
      err += wt[i] * diff;
    }
    const V8i win = live & (D > 0.f) & (err < best_error);
    bool any = false;
    for (int k = 0; k < kLanes; ++k) any |= win[k] != 0;
    if (!any) continue;
    for (int i = 0; i < n; ++i) lv[i] = win ? aux[i] : lv[i];
    best_error = win ? err : best_error;
    scale = win ? this_scale : scale;
    min = win ? this_min : min;
  }
  for (int k = 0; k < ngroups; ++k) {
    if (live[k] == 0) {
      std::memset(L + k * n, 0, static_cast<size_t>(n));
      scales[k] = 0.f;
    } else {
      for (int i = 0; i < n; ++i) L[k * n + i] = static_cast<uint8_t>(lv[i][k]);
      scales[k] = scale[k];
    }
    the_mins[k] = -min[k];
  }
}
// make_qp_quants with its eight candidate scales is = -4..-1, 1..4 in the lanes of one vector.
INSITU_CLONES
float make_qp_quants_lanes(int n, int nmax, const float* x, uint8_t* L,
                           const float* quant_weights) {
  float max;
  float iscale;
  float best_mse;
  if (!make_qp_quants_start(n, nmax, x, L, quant_weights, &max, &iscale, &best_mse)) return 0.f;
  const V8f isc = (0.1f * V8f{-4, -3, -2, -1, 1, 2, 3, 4} + static_cast<float>(nmax)) / max;
  const V8f ssc = 1 / isc;
  V8f mse = {};
  for (int i = 0; i < n; ++i) {
    const V8i l = nearest_int_v(isc * x[i]);
    const V8f lf = __builtin_convertvector(l < nmax ? l : V8i{} + nmax, V8f);
    const V8f diff = x[i] - ssc * lf;
    mse += quant_weights[i] * diff * diff;
  }
  for (int k = 0; k < kLanes; ++k) {
    if (mse[k] < best_mse) {
      best_mse = mse[k];
      iscale = isc[k];
    }
  }
  return make_qp_quants_refine(n, nmax, x, L, quant_weights, iscale);
}

}  // namespace

float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw) {
  if (rmse_type <= 0 || n > kMaxN) return scalar_ref::make_qx_quants(n, nmax, x, L, rmse_type, qw);
  return make_qx_quants_lanes(n, nmax, x, L, rmse_type, qw);
}

float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad) {
  if (n > kMaxN) {
    return scalar_ref::make_qkx2_quants(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep,
                                        use_mad);
  }
  return make_qkx_lanes<false>(n, nmax, x, weights, L, the_min, rmin, rdelta, nstep, use_mad);
}

float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad) {
  if (n > kMaxN) {
    return scalar_ref::make_qkx3_quants(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep,
                                        use_mad);
  }
  return make_qkx_lanes<true>(n, nmax, x, weights, L, the_min, rmin, rdelta, nstep, use_mad);
}

float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights) {
  return make_qp_quants_lanes(n, nmax, x, L, quant_weights);
}

void make_qx_quants_rmse1_groups(int ngroups, int n, int nmax, const float* x, int8_t* L,
                                 const float* qw, float* scales) {
  if (n > kMaxN) {
    for (int g = 0; g < ngroups; ++g) {
      scales[g] = make_qx_quants(n, nmax, x + g * n, L + g * n, 1, qw ? qw + g * n : nullptr);
    }
    return;
  }
  for (int g = 0; g < ngroups; g += kLanes) {
    make_qx_quants_lanes_groups(std::min(kLanes, ngroups - g), n, nmax, x + g * n, L + g * n,
                                qw ? qw + g * n : nullptr, scales + g);
  }
}

template <bool kQkx3>
void qkx_groups(int ngroups, int n, int nmax, const float* x, const float* weights, uint8_t* L,
                float* scales, float* the_mins, float rmin, float rdelta, int nstep, bool use_mad) {
  if (n > kMaxN) {
    uint8_t aux[256];
    std::vector<uint8_t> big;
    uint8_t* scratch = aux;
    if (n > 256) {
      big.resize(static_cast<size_t>(n));
      scratch = big.data();
    }
    for (int g = 0; g < ngroups; ++g) {
      const float* w = weights ? weights + g * n : nullptr;
      scales[g] = kQkx3 ? make_qkx3_quants(n, nmax, x + g * n, w, L + g * n, the_mins + g, scratch,
                                           rmin, rdelta, nstep, use_mad)
                        : make_qkx2_quants(n, nmax, x + g * n, w, L + g * n, the_mins + g, scratch,
                                           rmin, rdelta, nstep, use_mad);
    }
    return;
  }
  for (int g = 0; g < ngroups; g += kLanes) {
    make_qkx_lanes_groups<kQkx3>(std::min(kLanes, ngroups - g), n, nmax, x + g * n,
                                 weights ? weights + g * n : nullptr, L + g * n, scales + g,
                                 the_mins + g, rmin, rdelta, nstep, use_mad);
  }
}

void make_qkx2_quants_groups(int ngroups, int n, int nmax, const float* x, const float* weights,
                             uint8_t* L, float* scales, float* the_mins, float rmin, float rdelta,
                             int nstep, bool use_mad) {
  qkx_groups<false>(ngroups, n, nmax, x, weights, L, scales, the_mins, rmin, rdelta, nstep,
                    use_mad);
}

void make_qkx3_quants_groups(int ngroups, int n, int nmax, const float* x, const float* weights,
                             uint8_t* L, float* scales, float* the_mins, float rmin, float rdelta,
                             int nstep, bool use_mad) {
  qkx_groups<true>(ngroups, n, nmax, x, weights, L, scales, the_mins, rmin, rdelta, nstep, use_mad);
}

void make_q3_quants_rmse_groups(int ngroups, int n, int nmax, const float* x, int8_t* L,
                                float* scales) {
  if (n > kMaxN) {
    for (int g = 0; g < ngroups; ++g)
      scales[g] = make_q3_quants(n, nmax, x + g * n, L + g * n, true);
    return;
  }
  for (int g = 0; g < ngroups; g += kLanes) {
    make_q3_quants_lanes(std::min(kLanes, ngroups - g), n, nmax, x + g * n, L + g * n, scales + g);
  }
}

}  // namespace insitu
