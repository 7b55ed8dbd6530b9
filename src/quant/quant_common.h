// Exact scalar building blocks shared by the ggml-compatible quantizers (legacy, K, i-quants).
//
// Each routine is a port of the helper of the same name in ggml's src/ggml-quants.c at commit
// d99724f2 (as vendored in llama-cpp-python 0.3.36). They reproduce ggml's results bit for bit,
// which requires: round-half-to-even through nearest_int (never roundf), single-precision
// arithmetic in ggml's operation order, plain sequential sums, and no FMA contraction (the build
// passes -ffp-contract=off). Any change in evaluation order changes quantized bytes; the golden
// tests in tests/quant/ catch that.
//
// All functions are pure, reentrant and thread-safe; output arrays are caller-owned and must hold
// `n` elements. None of them allocate or throw.
#pragma once

#include <bit>
#include <cstdint>

// Marks a hot row function to be compiled twice, for AVX2 and for baseline x86-64, with the
// loader picking one (GCC target_clones). Only element-wise loops get vectorised: GCC never
// reassociates a float reduction without -ffast-math, so both clones give identical bits.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(INSITU_NO_CLONES)
#define INSITU_QUANT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define INSITU_QUANT_CLONES
#endif

namespace insitu {

// Group maxima below these are treated as all-zero groups (ggml's GROUP_MAX_EPS*).
inline constexpr float kGroupMaxEps = 1e-15f;
inline constexpr float kGroupMaxEpsIQ3XXS = 1e-8f;
inline constexpr float kGroupMaxEpsIQ2S = 1e-8f;
inline constexpr float kGroupMaxEpsIQ1M = 1e-7f;
inline constexpr float kGroupMaxEpsIQ1S = 1e-12f;

// Rounds to the nearest integer, ties to even, using the float unit: adding 1.5 * 2^23 leaves the
// rounded integer in the low mantissa bits. Exact for |f| <= 4194303; outside that range the
// result is ggml's (meaningless but deterministic) value, which a byte-exact port must also give.
inline int nearest_int(float f) {
  const float biased = f + 12582912.f;
  const int32_t bits = std::bit_cast<int32_t>(biased);
  return (bits & 0x007fffff) - 0x00400000;
}

// C's roundf (half away from zero) for |f| < 2^31, written so that loops over it vectorise: the
// truncated integer plus a correction from the exact remainder f - trunc(f).
inline int round_half_away(float f) {
  int i = static_cast<int>(f);
  const float rem = f - static_cast<float>(i);
  i += (rem >= 0.5f) ? 1 : 0;
  i -= (rem <= -0.5f) ? 1 : 0;
  return i;
}

// Symmetric quantization of n values to L[i] in [0, 2*nmax) (stored as l + nmax, l in
// [-nmax, nmax-1]); returns the scale d with x ~= d * (L - nmax).
// rmse_type 0: plain rounding at -nmax/max. Otherwise a weighted least-squares scale with weights
// qw (if non-null) or x^2 (1), 1 (2), |x| (3), sqrt|x| (other), followed by a search over 18
// candidate inverse scales; a negative rmse_type stops before the search and returns the mean of
// the fitted and the initial scale. All-zero groups (|x| < kGroupMaxEps) give L = 0 and 0.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw);

// Symmetric quantization used by q3_K's reference path: L[i] in [0, 2*nmax), weights x^2, with up
// to five passes of per-element coordinate descent when do_rmse. Returns the scale.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse);

// make_qx_quants(n, nmax, x + g*n, L + g*n, 1, qw ? qw + g*n : nullptr) for g in [0, ngroups),
// writing scales[g]: the same bits, computed for several groups at once.
void make_qx_quants_rmse1_groups(int ngroups, int n, int nmax, const float* x, int8_t* L,
                                 const float* qw, float* scales);

// make_q3_quants(n, nmax, x + g*n, L + g*n, true) for g in [0, ngroups), writing scales[g]: the
// same bits, computed for several groups at once.
void make_q3_quants_rmse_groups(int ngroups, int n, int nmax, const float* x, int8_t* L,
                                float* scales);

// Asymmetric (scale + min) quantization to L[i] in [0, nmax] with per-element weights (never
// null). Tries nstep+1 inverse scales (nmax + rmin + rdelta*is)/(max - min) and keeps the one with
// the lowest weighted error (|err| if use_mad, err^2 otherwise). Writes *the_min = -min (a
// non-negative offset subtracted at dequantization) and returns the scale:
// x ~= scale * L - *the_min. Laux is n bytes of scratch.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad);

// As make_qkx2_quants, but weights may be null (meaning x^2) and an all-non-positive-range group
// (max <= min) exits early. Used by the imatrix paths.
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad);

// make_qkx2_quants / make_qkx3_quants(n, nmax, x + g*n, weights + g*n, L + g*n, &the_mins[g],
// ...) for g in [0, ngroups), writing scales[g]: the same bits, computed for several groups at
// once. weights holds ngroups*n values (qkx2: never null; qkx3: null means x^2).
void make_qkx2_quants_groups(int ngroups, int n, int nmax, const float* x, const float* weights,
                             uint8_t* L, float* scales, float* the_mins, float rmin, float rdelta,
                             int nstep, bool use_mad);
void make_qkx3_quants_groups(int ngroups, int n, int nmax, const float* x, const float* weights,
                             uint8_t* L, float* scales, float* the_mins, float rmin, float rdelta,
                             int nstep, bool use_mad);

// Quantizes non-negative values (sub-block scales or mins) to L[i] in [0, nmax] against one
// positive scale, minimising the error weighted by quant_weights (never null). Returns the scale.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights);

// make_qp_quants around its search over candidate scales, shared by both implementations of it.
// _start: false (L zeroed; the result is 0) for an all-zero group; otherwise the group's max, the
// first inverse scale nmax / max, L at it, and that fit's weighted squared error. _refine, once
// the search has chosen the inverse scale: L at that scale, then up to five passes of
// per-element coordinate descent on the weighted least-squares fit; returns the scale.
bool make_qp_quants_start(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights,
                          float* max, float* iscale, float* best_mse);
float make_qp_quants_refine(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights,
                            float iscale);

// The plain scalar transcriptions of the four searches above, kept as the oracle for the
// faster implementations behind the public names (which evaluate several candidate scales at
// once in SIMD lanes, each lane summing in ggml's order). Tests compare the two bit for bit.
namespace scalar_ref {
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw);
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad);
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad);
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights);
}  // namespace scalar_ref

// Index of the entry of the ascending table val[0..n) nearest to x. An exact tie between two
// neighbours goes to the upper one (ggml compares with a strict <).
inline int best_index_int8(int n, const int8_t* val, float x) {
  if (x <= val[0]) return 0;
  if (x >= val[n - 1]) return n - 1;
  int lo = 0;
  int hi = n - 1;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (x < val[mid]) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return x - val[hi - 1] < val[hi] - x ? hi - 1 : hi;
}

// Unpacks the 6-bit scale and min of sub-block j (0..7) from q4_K / q5_K's 12 packed bytes.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

}  // namespace insitu
