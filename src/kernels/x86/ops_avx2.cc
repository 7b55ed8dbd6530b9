// AVX2 / FMA / F16C row operators and attention tiles (ops_x86.inc over 8-lane vectors). Built
// with those flags; bound into the table only after the CPU was checked (kernels/dispatch.cc).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/kernel_table.h"
#include "quant/float_convert.h"

namespace insitu {
namespace {

struct V {
  using T = __m256;
  static constexpr int W = 8;
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T loadh(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static void storeh(uint16_t* p, T v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  static T set1(float x) { return _mm256_set1_ps(x); }
  static T zero() { return _mm256_setzero_ps(); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static float reduce_add(T v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
  }
  static float reduce_max(T v) {
    __m128 lo = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_max_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
  }
  // Lane j of the result is the sum of a[j]'s lanes.
  static T reduce_w(const T* a) {
    T x[4];
    for (int i = 0; i < 4; ++i)
      x[i] = _mm256_add_ps(_mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                           _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    T y[2];
    for (int i = 0; i < 2; ++i) {
      const __m256d p = _mm256_castps_pd(x[2 * i]), q = _mm256_castps_pd(x[2 * i + 1]);
      y[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(p, q)),
                           _mm256_castpd_ps(_mm256_unpackhi_pd(p, q)));
    }
    return _mm256_add_ps(_mm256_permute2f128_ps(y[0], y[1], 0x20),
                         _mm256_permute2f128_ps(y[0], y[1], 0x31));
  }
  // e^x to about 1 ulp on [-87.3, 88]; 0 below (the -inf of masked scores included).
  static T exp(T x) {
    const T lo = _mm256_set1_ps(-87.33654f);
    const T underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.0f));
    const T n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    T r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    T p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
  }
  // Sum of the float squares x[k]^2 in double over the first *end = n rounded down to 8.
  static double sumsq_d(const float* x, int64_t n, int64_t* end) {
    __m256d d0 = _mm256_setzero_pd(), d1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_loadu_ps(x + i);
      const __m256 sq = _mm256_mul_ps(v, v);
      d0 = _mm256_add_pd(d0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
      d1 = _mm256_add_pd(d1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
    }
    *end = i;
    alignas(32) double t[4];
    _mm256_store_pd(t, _mm256_add_pd(d0, d1));
    return (t[0] + t[1]) + (t[2] + t[3]);
  }
};

}  // namespace

#include "kernels/x86/ops_x86.inc"

void fill_avx2_ops(OpsKernels& t) { fill_ops_simd(t); }

}  // namespace insitu
