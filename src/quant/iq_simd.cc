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

int best_neighbour_generic(const NeighbourList& list, int bits, const float* xval,
                           const float* weight, float scale, const float* level_value) {
  const int width = bits == 2 ? 8 : 4;
  const int nlevels = bits == 2 ? 3 : 8;
  const int stride = 1 << bits;
  float terms[32];  // [width][stride]: weight·diff·diff of element i at level l
  for (int i = 0; i < width; ++i) {
    for (int l = 0; l < nlevels; ++l) {
      const float diff = scale * level_value[l] - xval[i];
      terms[i * stride + l] = weight[i] * diff * diff;
    }
  }
  float best_d2 = FLT_MAX;
  int best = list.count > 0 ? list.index[0] : 0;
  for (int c = 0; c < list.count; ++c) {
    const uint32_t code = list.code[c];
    float d2 = 0;
    for (int i = 0; i < width; ++i) d2 += terms[i * stride + ((code >> (bits * i)) & (stride - 1))];
    if (d2 < best_d2) {
      best_d2 = d2;
      best = list.index[c];
    }
  }
  return best;
}

void grid_trial_products_generic(const LatticeView& g, int n, const float* xval,
                                 const float* weight, const float* waux, float id, float scale,
                                 int8_t* L, uint8_t* on_grid, float* pqx, float* pq2) {
  static constexpr float kOddLevels[8] = {1, 3, 5, 7, 9, 11, 13, 15};
  for (int k = 0; k < n / g.width; ++k) {
    int8_t* Lk = L + g.width * k;
    uint32_t key = 0;
    for (int i = 0, radix_power = 1; i < g.width; ++i, radix_power *= g.max_level + 1) {
      const int l = nearest_int(0.5f * (id * xval[g.width * k + i] - 1));
      Lk[i] = static_cast<int8_t>(std::max(0, std::min(g.max_level, l)));
      key += static_cast<uint32_t>(Lk[i] * radix_power);
    }
    on_grid[k] = g.map[key] >= 0;
    if (on_grid[k]) continue;
    const NeighbourList list = g.neighbours(key);
    const int best = best_neighbour_generic(list, g.bits, xval + g.width * k, waux + g.width * k,
                                            scale, kOddLevels);
    const uint32_t code = g.entry_code[best];
    for (int i = 0; i < g.width; ++i) {
      Lk[i] = static_cast<int8_t>((code >> (g.bits * i)) & ((1u << g.bits) - 1));
    }
  }
  for (int i = 0; i < n; ++i) {
    const float w = weight[i];
    const float q = 2 * L[i] + 1;
    pqx[i] = w * xval[i] * q;
    pq2[i] = w * q * q;
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
