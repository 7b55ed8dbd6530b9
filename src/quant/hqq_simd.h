// HQQ's proximal optimiser (quant/hqq.h) in a generic version and AVX2 / AVX-512 versions
// (hqq_simd_avx2.cc, hqq_simd_avx512.cc), bound in a table per instruction set (quant/quant_isa.h
// chooses which). Internal: not part of the library's API.
//
// Every version writes the same floats as the generic one:
//   - SIMD lanes run independent groups (8 per AVX2 vector, 16 per AVX-512 vector), each lane
//     doing the generic version's operations in its order, so a group's sums are added in element
//     order as the scalar loop adds them; a lane that stops early is masked, not cut short.
//   - The power |x|^(p - 1) of the shrink operator is candle's exp(log|x| * (p - 1)) with each of
//     exp and log computed by the functions below (hqq_log, hqq_exp), not by the C library:
//     libm's expf / logf differ between libraries and cannot be reproduced lane by lane. They are
//     evaluated in double precision from float arguments (relative error a few 2^-53) and rounded
//     to float, so they return the correctly rounded float except where the exact result lies
//     within about 2^-50 of a rounding midpoint; all versions use only IEEE +, -, *, / on doubles
//     in the same order, with no fused multiply-add (-ffp-contract=off), and exact scalings.
//   - Where the shrink operator is provably 0 (hqq_shrink_zero_below), every version skips log
//     and exp; that is almost every weight, and what makes the optimiser cheap.
// Both polynomials are evaluated by Estrin's scheme, in the grouping that hqq_log / hqq_exp spell
// out, rather than by Horner's rule: its dependency chains are a quarter as long (7% faster on
// the AVX-512 path before the skip above existed).
//
// Speed (hqq4, 64 x 4096 weight-like rows, one thread's CPU time, AMD EPYC with AVX-512): libm
// scalar 0.015 s; the generic path here about 2.5x that speed, AVX2 about 9x, AVX-512 about 14x.
// The functions are pure and thread-safe.
#pragma once

#include <cstdint>

#include "quant/hqq.h"
#include "quant/quant_isa.h"

namespace insitu::hqq {

inline constexpr int kGroup = kHqqGroup;
inline constexpr float kLpNormM1 = 0.7f - 1.0f;  // lp_norm - 1, in float as hqq.cc had it
inline constexpr double kBeta = 10.0;
inline constexpr double kKappa = 1.01;

// --- log: x = 2^e * m with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact), s = f / (2 + f),
// log m = 2 atanh s = s * (2 + 2/3 s^2 + 2/5 s^4 + ... + 2/19 s^18); |s| <= 0.1716, so the first
// omitted term is below 2^-55 of the sum.
inline constexpr int kLogTerms = 10;
inline constexpr double kLogCoeff[kLogTerms] = {2.0,        2.0 / 3.0,  2.0 / 5.0,  2.0 / 7.0,
                                                2.0 / 9.0,  2.0 / 11.0, 2.0 / 13.0, 2.0 / 15.0,
                                                2.0 / 17.0, 2.0 / 19.0};
inline constexpr double kLn2 = 0.6931471805599453094;
inline constexpr float kSqrtHalf = 0.70710678f;  // the split point of m; any value near works

// --- exp: y = k ln2 + r with k = nearest integer to y / ln2 (by the 1.5 * 2^52 shift, ties to
// even), r = (y - k ln2_hi) - k ln2_lo with ln2_hi exact in 32 bits (k ln2_hi is exact),
// exp r = 1 + r + r^2/2! + ... + r^12/12! (|r| <= 0.347: the first omitted term is below 2^-52),
// times 2^k (exact). y is clamped to +-120 first: beyond that the float result is 0 or inf.
inline constexpr int kExpTerms = 13;  // 1/0! .. 1/12!
inline constexpr double kExpCoeff[kExpTerms] = {1.0,
                                                1.0,
                                                1.0 / 2.0,
                                                1.0 / 6.0,
                                                1.0 / 24.0,
                                                1.0 / 120.0,
                                                1.0 / 720.0,
                                                1.0 / 5040.0,
                                                1.0 / 40320.0,
                                                1.0 / 362880.0,
                                                1.0 / 3628800.0,
                                                1.0 / 39916800.0,
                                                1.0 / 479001600.0};
inline constexpr double kInvLn2 = 1.4426950408889634074;
inline constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 0x3fe62e42fee00000
inline constexpr double kLn2Lo = 1.90821492927058770002e-10;  // ln 2 - kLn2Hi
inline constexpr double kShift = 6755399441055744.0;          // 1.5 * 2^52
inline constexpr double kExpClamp = 120.0;

struct HqqKernels {
  // For `count` consecutive groups of 64 floats at w (group g at w + 64 g): HQQ's inverse scale
  // s[g] and its zero z[g] after the proximal optimisation with levels 0..max_v (the whole
  // algorithm is in quant/hqq.h; every group stops on its own error), and the levels
  // q[64 g + j] = clamp(round(w[64 g + j] * s[g] + z[g]), 0, max_v). max_v is at most 255; w
  // finite.
  void (*optimize)(const float* w, int64_t count, float max_v, float* s, float* z, uint8_t* q);
};

// The table of an instruction set this build has (every QuantIsa value on x86-64).
const HqqKernels& hqq_kernels(QuantIsa isa);

// The table of the path in use (quant_isa()).
inline const HqqKernels& hqq_kernels() { return hqq_kernels(quant_isa()); }

extern const HqqKernels kHqqKernelsAvx2;
extern const HqqKernels kHqqKernelsAvx512;

// The scalar log and exp every version reproduces (see above), exposed for tests.
float hqq_log(float x);
float hqq_exp(float y);

// A bound below which the shrink operator is exactly 0: for |x| < hqq_shrink_zero_below(ib),
// |x| - ib * hqq_exp(hqq_log(|x|) * kLpNormM1) <= 0 in float arithmetic. It is 0.99 times the
// exact crossing point ib^(1 / (1 - kLpNormM1)), where ib |x|^kLpNormM1 exceeds |x| by at least
// 0.99^(kLpNormM1 - 1) > 1.013 times, far beyond the error of the computed power (below 1e-5
// relative). Every version skips log and exp there; quantization errors are almost always
// below it (about 0.16 for the default betas), which makes the optimiser cheap.
float hqq_shrink_zero_below(float inv_beta);

}  // namespace insitu::hqq
