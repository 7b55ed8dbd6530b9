// AVX2 version of HQQ's optimiser (see hqq_simd.h for what it computes and why the results are
// bit-identical to the generic version): 8 groups side by side, one per lane; log and exp in two
// halves of 4 doubles.
//
// No multiply-add is fused (-ffp-contract=off, and only separate mul/add intrinsics are used).
// Everything here is file-local apart from the kernel table: no inline function shared with
// other translation units (std::min, std::copy ...) is instantiated with these flags.
#include <immintrin.h>

#include <cstdint>

#include "quant/hqq_simd.h"

namespace insitu::hqq {
namespace {

constexpr int kLanes = 8;

inline __m128 lower(__m256 v) { return _mm256_castps256_ps128(v); }
inline __m128 upper(__m256 v) { return _mm256_extractf128_ps(v, 1); }
inline __m256 join(__m128 lo, __m128 hi) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}

// a + b * x, rounded after the product and after the sum (never fused).
inline __m256d mul_add(__m256d a, __m256d b, __m256d x) {
  return _mm256_add_pd(a, _mm256_mul_pd(b, x));
}
inline __m256d pair(double a, double b, __m256d x) {
  return mul_add(_mm256_set1_pd(a), _mm256_set1_pd(b), x);
}

// hqq_log of 8 floats (>= 0, inf or NaN), lane for lane.
inline __m256 log8(__m256 x) {
  // Unsigned bits < 0x00800000: x is +0 or subnormal (x >= 0 or NaN here, so the sign bit is
  // clear and a signed compare is an unsigned one).
  const __m256i sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x00800000), _mm256_castps_si256(x));
  x = _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(8388608.0f)), _mm256_castsi256_ps(sub));
  const __m256i e_adjust = _mm256_and_si256(sub, _mm256_set1_epi32(-23));
  const __m256i bits = _mm256_castps_si256(x);
  const __m256i e = _mm256_srai_epi32(
      _mm256_sub_epi32(bits, _mm256_set1_epi32(static_cast<int32_t>(0x3f3504f3))), 23);
  const __m256 m = _mm256_castsi256_ps(_mm256_sub_epi32(bits, _mm256_slli_epi32(e, 23)));
  const __m256i e_total = _mm256_add_epi32(e, e_adjust);
  __m128 half[2];
  for (int h = 0; h < 2; ++h) {
    const __m256d md = _mm256_cvtps_pd(h == 0 ? lower(m) : upper(m));
    const __m256d ed = _mm256_cvtepi32_pd(h == 0 ? _mm256_castsi256_si128(e_total)
                                                 : _mm256_extracti128_si256(e_total, 1));
    const __m256d f = _mm256_sub_pd(md, _mm256_set1_pd(1.0));
    const __m256d s = _mm256_div_pd(f, _mm256_add_pd(_mm256_set1_pd(2.0), f));
    const __m256d z = _mm256_mul_pd(s, s);
    const __m256d z2 = _mm256_mul_pd(z, z);
    const __m256d z4 = _mm256_mul_pd(z2, z2);
    const __m256d z8 = _mm256_mul_pd(z4, z4);
    const double* c = kLogCoeff;
    const __m256d p01 = pair(c[0], c[1], z), p23 = pair(c[2], c[3], z), p45 = pair(c[4], c[5], z);
    const __m256d p67 = pair(c[6], c[7], z), p89 = pair(c[8], c[9], z);
    const __m256d p03 = mul_add(p01, p23, z2), p47 = mul_add(p45, p67, z2);
    const __m256d p = mul_add(mul_add(p03, p47, z4), p89, z8);
    const __m256d log_m = _mm256_mul_pd(s, p);
    half[h] = _mm256_cvtpd_ps(_mm256_add_pd(_mm256_mul_pd(ed, _mm256_set1_pd(kLn2)), log_m));
  }
  return join(half[0], half[1]);
}

// hqq_exp of 8 floats, lane for lane (NaN lanes give unspecified values; the optimiser never uses
// them).
inline __m256 exp8(__m256 y) {
  __m128 half[2];
  for (int h = 0; h < 2; ++h) {
    __m256d yd = _mm256_cvtps_pd(h == 0 ? lower(y) : upper(y));
    yd = _mm256_min_pd(_mm256_max_pd(yd, _mm256_set1_pd(-kExpClamp)), _mm256_set1_pd(kExpClamp));
    const __m256d t =
        _mm256_add_pd(_mm256_mul_pd(yd, _mm256_set1_pd(kInvLn2)), _mm256_set1_pd(kShift));
    const __m256d kd = _mm256_sub_pd(t, _mm256_set1_pd(kShift));
    const __m256d r = _mm256_sub_pd(_mm256_sub_pd(yd, _mm256_mul_pd(kd, _mm256_set1_pd(kLn2Hi))),
                                    _mm256_mul_pd(kd, _mm256_set1_pd(kLn2Lo)));
    const __m256d r2 = _mm256_mul_pd(r, r);
    const __m256d r4 = _mm256_mul_pd(r2, r2);
    const __m256d r8 = _mm256_mul_pd(r4, r4);
    const double* c = kExpCoeff;
    const __m256d p01 = pair(c[0], c[1], r), p23 = pair(c[2], c[3], r), p45 = pair(c[4], c[5], r);
    const __m256d p67 = pair(c[6], c[7], r), p89 = pair(c[8], c[9], r);
    const __m256d p1011 = pair(c[10], c[11], r);
    const __m256d p03 = mul_add(p01, p23, r2), p47 = mul_add(p45, p67, r2);
    const __m256d p811 = mul_add(p89, p1011, r2);
    const __m256d p07 = mul_add(p03, p47, r4);
    const __m256d p812 = mul_add(p811, _mm256_set1_pd(c[12]), r4);
    const __m256d p = mul_add(p07, p812, r8);
    // 2^k from k = bits(t) - bits(kShift), as the generic version builds it.
    const __m256i k =
        _mm256_sub_epi64(_mm256_castpd_si256(t), _mm256_castpd_si256(_mm256_set1_pd(kShift)));
    const __m256d scale =
        _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(k, _mm256_set1_epi64x(1023)), 52));
    half[h] = _mm256_cvtpd_ps(_mm256_mul_pd(p, scale));
  }
  return join(half[0], half[1]);
}

// std::round: half away from zero. v - trunc(v) is exact.
inline __m256 round_half_away(__m256 v) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 up =
      _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
  return _mm256_blendv_ps(t, _mm256_add_ps(t, one), up);
}

// The optimiser for 8 groups, transposed: wt[j][lane] is element j of lane's group.
void optimize8(const float (*wt)[kLanes], float max_v, float* s_out, float* z_out) {
  const __m256 vmax = _mm256_set1_ps(max_v);
  const __m256 zero = _mm256_setzero_ps();
  const __m256 sign = _mm256_set1_ps(-0.0f);
  // min / max / clamp with std::min / std::max / std::clamp's operand order (NaN included).
  __m256 w_min = _mm256_load_ps(wt[0]);
  __m256 w_max = w_min;
  for (int j = 1; j < kGroup; ++j) {
    const __m256 wj = _mm256_load_ps(wt[j]);
    w_min = _mm256_min_ps(wj, w_min);
    w_max = _mm256_max_ps(wj, w_max);
  }
  const __m256 s = _mm256_min_ps(
      _mm256_set1_ps(2e4f), _mm256_max_ps(zero, _mm256_div_ps(vmax, _mm256_sub_ps(w_max, w_min))));
  __m256 z = _mm256_mul_ps(_mm256_xor_ps(w_min, sign), s);

  double beta = kBeta;
  __m256 best_error = _mm256_set1_ps(1e4f);
  __m256 active = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  const __m256 lp = _mm256_set1_ps(kLpNormM1);
  const __m256 n = _mm256_set1_ps(static_cast<float>(kGroup));
  for (int it = 0; it < kHqqOptSteps && _mm256_movemask_ps(active) != 0; ++it) {
    const float inv_beta_f = static_cast<float>(1.0 / beta);
    const __m256 inv_beta = _mm256_set1_ps(inv_beta_f);
    const __m256 zero_below = _mm256_set1_ps(hqq_shrink_zero_below(inv_beta_f));
    __m256 zero_sum = zero, err_sum = zero;
    for (int j = 0; j < kGroup; ++j) {
      const __m256 wj = _mm256_load_ps(wt[j]);
      const __m256 wq = _mm256_min_ps(
          vmax, _mm256_max_ps(zero, round_half_away(_mm256_add_ps(_mm256_mul_ps(wj, s), z))));
      const __m256 wr = _mm256_div_ps(_mm256_sub_ps(wq, z), s);
      const __m256 x = _mm256_sub_ps(wj, wr);
      const __m256 ax = _mm256_andnot_ps(sign, x);
      __m256 we = zero;  // the shrink operator is 0 below zero_below (hqq_shrink_zero_below)
      if (_mm256_movemask_ps(_mm256_cmp_ps(ax, zero_below, _CMP_NLT_UQ)) != 0) {
        const __m256 r =
            _mm256_sub_ps(ax, _mm256_mul_ps(inv_beta, exp8(_mm256_mul_ps(log8(ax), lp))));
        // r > 0 implies x is nonzero and not NaN, so x > 0 ? r : -r is r with x's sign.
        const __m256 pos = _mm256_cmp_ps(r, zero, _CMP_GT_OQ);
        we = _mm256_and_ps(pos, _mm256_or_ps(r, _mm256_and_ps(x, sign)));
      }
      zero_sum =
          _mm256_add_ps(zero_sum, _mm256_sub_ps(wq, _mm256_mul_ps(_mm256_sub_ps(wj, we), s)));
      err_sum = _mm256_add_ps(err_sum, ax);
    }
    z = _mm256_blendv_ps(z, _mm256_div_ps(zero_sum, n), active);
    beta *= kKappa;
    const __m256 error = _mm256_div_ps(err_sum, n);
    const __m256 improved = _mm256_and_ps(active, _mm256_cmp_ps(error, best_error, _CMP_LT_OQ));
    best_error = _mm256_blendv_ps(best_error, error, improved);
    active = improved;
  }
  _mm256_storeu_ps(s_out, s);
  _mm256_storeu_ps(z_out, z);
}

// q = clamp(round(w * s + z), 0, max_v) of one group, as the generic version computes it.
void levels(const float* w, float s, float z, float max_v, uint8_t* q) {
  const __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(z), vmax = _mm256_set1_ps(max_v);
  // packus interleaves 128-bit lanes; this puts the 32 bytes back in element order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int j = 0; j < kGroup; j += 32) {
    __m256i v[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 r =
          round_half_away(_mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(w + j + 8 * k), vs), vz));
      v[k] = _mm256_cvttps_epi32(_mm256_min_ps(vmax, _mm256_max_ps(_mm256_setzero_ps(), r)));
    }
    const __m256i bytes =
        _mm256_packus_epi16(_mm256_packus_epi32(v[0], v[1]), _mm256_packus_epi32(v[2], v[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + j),
                        _mm256_permutevar8x32_epi32(bytes, order));
  }
}

void optimize(const float* w, int64_t count, float max_v, float* s, float* z, uint8_t* q) {
  alignas(32) float wt[kGroup][kLanes];
  alignas(32) float s_lanes[kLanes];
  alignas(32) float z_lanes[kLanes];
  for (int64_t g0 = 0; g0 < count; g0 += kLanes) {
    const int n = count - g0 < kLanes ? static_cast<int>(count - g0) : kLanes;
    // Lanes past the last group hold zeros (a constant group: harmless) and are dropped.
    const float* base = w + g0 * kGroup;
    for (int j = 0; j < kGroup; ++j) {
      for (int l = 0; l < kLanes; ++l) wt[j][l] = l < n ? base[l * kGroup + j] : 0.0f;
    }
    optimize8(wt, max_v, s_lanes, z_lanes);
    for (int l = 0; l < n; ++l) {
      s[g0 + l] = s_lanes[l];
      z[g0 + l] = z_lanes[l];
      levels(base + l * kGroup, s_lanes[l], z_lanes[l], max_v, q + (g0 + l) * kGroup);
    }
  }
}

}  // namespace

const HqqKernels kHqqKernelsAvx2 = {optimize};

}  // namespace insitu::hqq
