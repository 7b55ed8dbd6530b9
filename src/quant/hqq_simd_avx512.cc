// AVX-512 version of HQQ's optimiser (see hqq_simd.h for what it computes and why the results are
// bit-identical to the generic version): 16 groups side by side, one per lane; log and exp in two
// halves of 8 doubles.
//
// No multiply-add is fused (-ffp-contract=off, and only separate mul/add intrinsics are used).
// Everything here is file-local apart from the kernel table: no inline function shared with
// other translation units (std::min, std::copy ...) is instantiated with these flags.
// GCC 12 reports the deliberately undefined pass-through operand inside _mm512_min_ps and
// others as "may be used uninitialized" (GCC bug 105593); the intrinsics are fully defined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "quant/hqq_simd.h"

namespace insitu::hqq {
namespace {

constexpr int kLanes = 16;

// a + b * x, rounded after the product and after the sum (never fused).
inline __m512d mul_add(__m512d a, __m512d b, __m512d x) {
  return _mm512_add_pd(a, _mm512_mul_pd(b, x));
}
inline __m512d pair(double a, double b, __m512d x) {
  return mul_add(_mm512_set1_pd(a), _mm512_set1_pd(b), x);
}

// hqq_log of 16 floats (>= 0, inf or NaN), lane for lane.
inline __m512 log16(__m512 x) {
  const __mmask16 sub =
      _mm512_cmplt_epu32_mask(_mm512_castps_si512(x), _mm512_set1_epi32(0x00800000));
  x = _mm512_mask_mul_ps(x, sub, x, _mm512_set1_ps(8388608.0f));
  const __m512i e_adjust = _mm512_maskz_mov_epi32(sub, _mm512_set1_epi32(-23));
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i e = _mm512_srai_epi32(
      _mm512_sub_epi32(bits, _mm512_set1_epi32(static_cast<int32_t>(0x3f3504f3))), 23);
  const __m512 m = _mm512_castsi512_ps(_mm512_sub_epi32(bits, _mm512_slli_epi32(e, 23)));
  const __m512i e_total = _mm512_add_epi32(e, e_adjust);
  __m256 half[2];
  for (int h = 0; h < 2; ++h) {
    const __m512d md =
        _mm512_cvtps_pd(h == 0 ? _mm512_castps512_ps256(m) : _mm512_extractf32x8_ps(m, 1));
    const __m512d ed = _mm512_cvtepi32_pd(h == 0 ? _mm512_castsi512_si256(e_total)
                                                 : _mm512_extracti32x8_epi32(e_total, 1));
    const __m512d f = _mm512_sub_pd(md, _mm512_set1_pd(1.0));
    const __m512d s = _mm512_div_pd(f, _mm512_add_pd(_mm512_set1_pd(2.0), f));
    const __m512d z = _mm512_mul_pd(s, s);
    const __m512d z2 = _mm512_mul_pd(z, z);
    const __m512d z4 = _mm512_mul_pd(z2, z2);
    const __m512d z8 = _mm512_mul_pd(z4, z4);
    const double* c = kLogCoeff;
    const __m512d p01 = pair(c[0], c[1], z), p23 = pair(c[2], c[3], z), p45 = pair(c[4], c[5], z);
    const __m512d p67 = pair(c[6], c[7], z), p89 = pair(c[8], c[9], z);
    const __m512d p03 = mul_add(p01, p23, z2), p47 = mul_add(p45, p67, z2);
    const __m512d p = mul_add(mul_add(p03, p47, z4), p89, z8);
    const __m512d log_m = _mm512_mul_pd(s, p);
    half[h] = _mm512_cvtpd_ps(_mm512_add_pd(_mm512_mul_pd(ed, _mm512_set1_pd(kLn2)), log_m));
  }
  return _mm512_insertf32x8(_mm512_castps256_ps512(half[0]), half[1], 1);
}

// hqq_exp of 16 floats, lane for lane (NaN lanes give unspecified values; the optimiser never
// uses them).
inline __m512 exp16(__m512 y) {
  __m256 half[2];
  for (int h = 0; h < 2; ++h) {
    __m512d yd = _mm512_cvtps_pd(h == 0 ? _mm512_castps512_ps256(y) : _mm512_extractf32x8_ps(y, 1));
    yd = _mm512_min_pd(_mm512_max_pd(yd, _mm512_set1_pd(-kExpClamp)), _mm512_set1_pd(kExpClamp));
    const __m512d t =
        _mm512_add_pd(_mm512_mul_pd(yd, _mm512_set1_pd(kInvLn2)), _mm512_set1_pd(kShift));
    const __m512d kd = _mm512_sub_pd(t, _mm512_set1_pd(kShift));
    const __m512d r = _mm512_sub_pd(_mm512_sub_pd(yd, _mm512_mul_pd(kd, _mm512_set1_pd(kLn2Hi))),
                                    _mm512_mul_pd(kd, _mm512_set1_pd(kLn2Lo)));
    const __m512d r2 = _mm512_mul_pd(r, r);
    const __m512d r4 = _mm512_mul_pd(r2, r2);
    const __m512d r8 = _mm512_mul_pd(r4, r4);
    const double* c = kExpCoeff;
    const __m512d p01 = pair(c[0], c[1], r), p23 = pair(c[2], c[3], r), p45 = pair(c[4], c[5], r);
    const __m512d p67 = pair(c[6], c[7], r), p89 = pair(c[8], c[9], r);
    const __m512d p1011 = pair(c[10], c[11], r);
    const __m512d p03 = mul_add(p01, p23, r2), p47 = mul_add(p45, p67, r2);
    const __m512d p811 = mul_add(p89, p1011, r2);
    const __m512d p07 = mul_add(p03, p47, r4);
    const __m512d p812 = mul_add(p811, _mm512_set1_pd(c[12]), r4);
    const __m512d p = mul_add(p07, p812, r8);
    half[h] = _mm512_cvtpd_ps(_mm512_scalef_pd(p, kd));  // p * 2^k, exact
  }
  return _mm512_insertf32x8(_mm512_castps256_ps512(half[0]), half[1], 1);
}

// std::round: half away from zero. v - trunc(v) is exact.
inline __m512 round_half_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 up =
      _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 one = _mm512_or_ps(_mm512_and_ps(v, _mm512_set1_ps(-0.0f)), _mm512_set1_ps(1.0f));
  return _mm512_mask_add_ps(t, up, t, one);
}

// The optimiser for 16 groups, transposed: wt[j][lane] is element j of lane's group.
void optimize16(const float (*wt)[kLanes], float max_v, float* s_out, float* z_out) {
  const __m512 vmax = _mm512_set1_ps(max_v);
  const __m512 zero = _mm512_setzero_ps();
  // min / max / clamp with std::min / std::max / std::clamp's operand order (NaN included).
  __m512 w_min = _mm512_load_ps(wt[0]);
  __m512 w_max = w_min;
  for (int j = 1; j < kGroup; ++j) {
    const __m512 wj = _mm512_load_ps(wt[j]);
    w_min = _mm512_min_ps(wj, w_min);
    w_max = _mm512_max_ps(wj, w_max);
  }
  const __m512 s = _mm512_min_ps(
      _mm512_set1_ps(2e4f), _mm512_max_ps(zero, _mm512_div_ps(vmax, _mm512_sub_ps(w_max, w_min))));
  __m512 z = _mm512_mul_ps(_mm512_xor_ps(w_min, _mm512_set1_ps(-0.0f)), s);

  double beta = kBeta;
  __m512 best_error = _mm512_set1_ps(1e4f);
  __mmask16 active = 0xffff;
  const __m512 lp = _mm512_set1_ps(kLpNormM1);
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int it = 0; it < kHqqOptSteps && active != 0; ++it) {
    const float inv_beta_f = static_cast<float>(1.0 / beta);
    const __m512 inv_beta = _mm512_set1_ps(inv_beta_f);
    const __m512 zero_below = _mm512_set1_ps(hqq_shrink_zero_below(inv_beta_f));
    __m512 zero_sum = zero, err_sum = zero;
    for (int j = 0; j < kGroup; ++j) {
      const __m512 wj = _mm512_load_ps(wt[j]);
      const __m512 wq = _mm512_min_ps(
          vmax, _mm512_max_ps(zero, round_half_away(_mm512_add_ps(_mm512_mul_ps(wj, s), z))));
      const __m512 wr = _mm512_div_ps(_mm512_sub_ps(wq, z), s);
      const __m512 x = _mm512_sub_ps(wj, wr);
      const __m512 ax = _mm512_and_ps(x, abs_mask);
      __m512 we = zero;  // the shrink operator is 0 below zero_below (hqq_shrink_zero_below)
      if (_mm512_cmp_ps_mask(ax, zero_below, _CMP_NLT_UQ) != 0) {
        const __m512 r =
            _mm512_sub_ps(ax, _mm512_mul_ps(inv_beta, exp16(_mm512_mul_ps(log16(ax), lp))));
        // r > 0 implies x is nonzero and not NaN, so x > 0 ? r : -r is r with x's sign.
        const __mmask16 pos = _mm512_cmp_ps_mask(r, zero, _CMP_GT_OQ);
        we = _mm512_maskz_mov_ps(pos, _mm512_or_ps(r, _mm512_and_ps(x, _mm512_set1_ps(-0.0f))));
      }
      zero_sum =
          _mm512_add_ps(zero_sum, _mm512_sub_ps(wq, _mm512_mul_ps(_mm512_sub_ps(wj, we), s)));
      err_sum = _mm512_add_ps(err_sum, ax);
    }
    const __m512 n = _mm512_set1_ps(static_cast<float>(kGroup));
    z = _mm512_mask_div_ps(z, active, zero_sum, n);
    beta *= kKappa;
    const __m512 error = _mm512_div_ps(err_sum, n);
    const __mmask16 improved = active & _mm512_cmp_ps_mask(error, best_error, _CMP_LT_OQ);
    best_error = _mm512_mask_mov_ps(best_error, improved, error);
    active = improved;
  }
  _mm512_storeu_ps(s_out, s);
  _mm512_storeu_ps(z_out, z);
}

// q = clamp(round(w * s + z), 0, max_v) of one group, as the generic version computes it.
void levels(const float* w, float s, float z, float max_v, uint8_t* q) {
  const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(z), vmax = _mm512_set1_ps(max_v);
  for (int j = 0; j < kGroup; j += kLanes) {
    const __m512 v = round_half_away(_mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(w + j), vs), vz));
    const __m512 c = _mm512_min_ps(vmax, _mm512_max_ps(_mm512_setzero_ps(), v));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + j),
                     _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(c)));
  }
}

void optimize(const float* w, int64_t count, float max_v, float* s, float* z, uint8_t* q) {
  alignas(64) float wt[kGroup][kLanes];
  alignas(64) float s_lanes[kLanes];
  alignas(64) float z_lanes[kLanes];
  const __m512i lane_offsets =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(kGroup));
  for (int64_t g0 = 0; g0 < count; g0 += kLanes) {
    const int n = count - g0 < kLanes ? static_cast<int>(count - g0) : kLanes;
    const __mmask16 live = static_cast<__mmask16>((1u << n) - 1);
    // Lanes past the last group hold zeros (a constant group: harmless) and are dropped.
    const float* base = w + g0 * kGroup;
    for (int j = 0; j < kGroup; ++j) {
      _mm512_store_ps(wt[j], _mm512_mask_i32gather_ps(
                                 _mm512_setzero_ps(), live,
                                 _mm512_add_epi32(lane_offsets, _mm512_set1_epi32(j)), base, 4));
    }
    optimize16(wt, max_v, s_lanes, z_lanes);
    for (int l = 0; l < n; ++l) {
      s[g0 + l] = s_lanes[l];
      z[g0 + l] = z_lanes[l];
      levels(base + l * kGroup, s_lanes[l], z_lanes[l], max_v, q + (g0 + l) * kGroup);
    }
  }
}

}  // namespace

const HqqKernels kHqqKernelsAvx512 = {optimize};

}  // namespace insitu::hqq
