// The generic i-quant search kernels and the per-ISA table (see iq_simd.h). The generic versions
// are plain scalar code in ggml's order; the AVX2 / AVX-512 versions must agree with them bit for
// bit (tests/quant/iq_simd_test.cc).
#include "quant/iq_simd.h"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>

#include "quant/iq_tables.h"
#include "quant/quant_common.h"

namespace insitu::iq {
namespace {

// Floats in ascending order as integers (for bisection over adjacent floats).
int64_t order_key(float f) {
  const int32_t b = std::bit_cast<int32_t>(f);
  return b >= 0 ? int64_t{b} : -int64_t{b & 0x7fffffff};
}
float from_order_key(int64_t k) {
  return k >= 0 ? std::bit_cast<float>(static_cast<int32_t>(k))
                : std::bit_cast<float>(static_cast<int32_t>((-k) | 0x80000000u));
}

struct Iq4Thresholds {
  float t[16];
  Iq4Thresholds() {
    for (int k = 0; k < 15; ++k) {
      const int8_t* v = kValuesIQ4NL;
      // best_index_int8's decision between v[k] and v[k+1]: the lower one while
      // x - v[k] < v[k+1] - x. Both sides are monotone in x, so the decision flips once, at the
      // smallest float where it is false (v[k] < t <= v[k+1]).
      const auto lower = [&](float x) { return x - v[k] < v[k + 1] - x; };
      int64_t lo = order_key(static_cast<float>(v[k]));      // lower(lo) holds
      int64_t hi = order_key(static_cast<float>(v[k + 1]));  // lower(hi) does not
      while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (lower(from_order_key(mid))) {
          lo = mid;
        } else {
          hi = mid;
        }
      }
      t[k] = from_order_key(hi);
    }
    t[15] = std::numeric_limits<float>::infinity();
  }
};

// best_index_int8(16, kValuesIQ4NL, x) as a branch-free binary search over the thresholds (see
// iq4_thresholds): ggml's branchy search mispredicts on almost every weight.
inline int iq4_index(const float* t, float x) {
  int idx = 0;
  for (int step = 8; step > 0; step >>= 1) idx += !(x < t[idx + step - 1]) ? step : 0;
  return idx;
}

void iq4_trials_generic(const float* x, const float* weight, const float* id, float* sumqx,
                        float* sumq2) {
  const float* t = iq4_thresholds();
  for (int c = 0; c < 16; ++c) {
    float sqx = 0;
    float sq2 = 0;
    for (int j = 0; j < 32; ++j) {
      const float al = id[c] * x[j];
      const float q = kValuesIQ4NL[iq4_index(t, al)];
      const float w = weight[j];
      sqx += w * q * x[j];
      sq2 += w * q * q;
    }
    sumqx[c] = sqx;
    sumq2[c] = sq2;
  }
}

void iq4_indices_generic(const float* x, int n, float id, uint8_t* L) {
  const float* t = iq4_thresholds();
  for (int j = 0; j < n; ++j) L[j] = static_cast<uint8_t>(iq4_index(t, id * x[j]));
}

// Lattice shapes as compile-time constants, so that the element loops unroll.
template <int kBits>
struct Shape {
  static constexpr int kWidth = kBits == 2 ? 8 : 4;
  static constexpr int kLevels = kBits == 2 ? 3 : 8;
  static constexpr int kStride = 1 << kBits;
};

template <int kBits>
int best_neighbour_impl(const NeighbourList& list, const float* xval, const float* weight,
                        float scale, const float* level_value) {
  using S = Shape<kBits>;
  float terms[S::kWidth * S::kStride];  // [width][stride]: weight·diff·diff of element i, level l
  for (int i = 0; i < S::kWidth; ++i) {
    for (int l = 0; l < S::kLevels; ++l) {
      const float diff = scale * level_value[l] - xval[i];
      terms[i * S::kStride + l] = weight[i] * diff * diff;
    }
  }
  float best_d2 = FLT_MAX;
  int best = list.count > 0 ? list.index[0] : 0;
  for (int c = 0; c < list.count; ++c) {
    const uint32_t code = list.code[c];
    float d2 = 0;
    for (int i = 0; i < S::kWidth; ++i) {
      d2 += terms[i * S::kStride + ((code >> (kBits * i)) & (S::kStride - 1))];
    }
    if (d2 < best_d2) {
      best_d2 = d2;
      best = list.index[c];
    }
  }
  return best;
}

int best_neighbour_generic(const NeighbourList& list, int bits, const float* xval,
                           const float* weight, float scale, const float* level_value) {
  return bits == 2 ? best_neighbour_impl<2>(list, xval, weight, scale, level_value)
                   : best_neighbour_impl<3>(list, xval, weight, scale, level_value);
}

template <int kBits>
void grid_trial_products_impl(const LatticeView& g, int n, const float* xval, const float* weight,
                              const float* waux, float id, float scale, int8_t* L, uint8_t* on_grid,
                              float* pqx, float* pq2) {
  using S = Shape<kBits>;
  static constexpr float kOddLevels[8] = {1, 3, 5, 7, 9, 11, 13, 15};
  for (int k = 0; k < n / S::kWidth; ++k) {
    int8_t* Lk = L + S::kWidth * k;
    uint32_t key = 0;
    for (int i = 0, radix_power = 1; i < S::kWidth; ++i, radix_power *= S::kLevels) {
      const int l = nearest_int(0.5f * (id * xval[S::kWidth * k + i] - 1));
      Lk[i] = static_cast<int8_t>(std::max(0, std::min(S::kLevels - 1, l)));
      key += static_cast<uint32_t>(Lk[i] * radix_power);
    }
    on_grid[k] = g.map[key] >= 0;
    if (on_grid[k]) continue;
    const int best = best_neighbour_impl<kBits>(g.neighbours(key), xval + S::kWidth * k,
                                                waux + S::kWidth * k, scale, kOddLevels);
    const uint32_t code = g.entry_code[best];
    for (int i = 0; i < S::kWidth; ++i) {
      Lk[i] = static_cast<int8_t>((code >> (kBits * i)) & (S::kStride - 1));
    }
  }
  for (int i = 0; i < n; ++i) {
    const float w = weight[i];
    const float q = 2 * L[i] + 1;
    pqx[i] = w * xval[i] * q;
    pq2[i] = w * q * q;
  }
}

void grid_trial_products_generic(const LatticeView& g, int n, const float* xval,
                                 const float* weight, const float* waux, float id, float scale,
                                 int8_t* L, uint8_t* on_grid, float* pqx, float* pq2) {
  if (g.bits == 2) {
    grid_trial_products_impl<2>(g, n, xval, weight, waux, id, scale, L, on_grid, pqx, pq2);
  } else {
    grid_trial_products_impl<3>(g, n, xval, weight, waux, id, scale, L, on_grid, pqx, pq2);
  }
}

const IqKernels kIqKernelsGeneric = {iq4_trials_generic, iq4_indices_generic,
                                     best_neighbour_generic, grid_trial_products_generic};

}  // namespace

void sum_trials_in_order(int n, int ntrials, const float (*pqx)[32], const float (*pq2)[32],
                         float* sumqx, float* sumq2) {
  float qx[kMaxTrials] = {};
  float q2[kMaxTrials] = {};
  for (int i = 0; i < n; ++i) {
    for (int t = 0; t < ntrials; ++t) {
      qx[t] += pqx[t][i];
      q2[t] += pq2[t][i];
    }
  }
  for (int t = 0; t < ntrials; ++t) {
    sumqx[t] = qx[t];
    sumq2[t] = q2[t];
  }
}

const float* iq4_thresholds() {
  static const Iq4Thresholds table;
  return table.t;
}

const IqKernels& iq_kernels(QuantIsa isa) {
#if defined(__x86_64__)
  if (isa == QuantIsa::kAvx512) return kIqKernelsAvx512;
  if (isa == QuantIsa::kAvx2) return kIqKernelsAvx2;
#endif
  return kIqKernelsGeneric;
}

}  // namespace insitu::iq
