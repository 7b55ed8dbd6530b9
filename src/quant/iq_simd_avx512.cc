// AVX-512 versions of the i-quant search kernels (see iq_simd.h for what each computes and why
// the results are bit-identical to the generic versions). 16 lanes: IQ4's 16 candidate scales
// in one vector; 16 neighbour entries per step of the nearest-neighbour scan.
//
// No multiply-add is fused (-ffp-contract=off, and only separate mul/add intrinsics are used).
// Everything here is file-local apart from the kernel table: no inline function shared with
// other translation units is instantiated with these flags.
#include <immintrin.h>

#include <cfloat>
#include <cstdint>
#include <cstring>

#include "quant/iq_simd.h"
#include "quant/iq_tables.h"

namespace insitu::iq {
namespace {

__m512 iq4_values() {
  return _mm512_cvtepi32_ps(
      _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kValuesIQ4NL))));
}

// Index of the nearest IQ4 value: the number of thresholds t[k] with !(x < t[k]), found by a
// branch-free binary search (the thresholds ascend, so that predicate holds for a prefix of k;
// for NaN it holds for all, giving 15 as ggml's search does).
inline __m512i iq4_index(__m512 x, __m512 t) {
  __m512i idx = _mm512_setzero_si512();
  for (int step = 8; step > 0; step >>= 1) {
    const __m512i cand = _mm512_add_epi32(idx, _mm512_set1_epi32(step));
    const __m512 tc = _mm512_permutexvar_ps(_mm512_sub_epi32(cand, _mm512_set1_epi32(1)), t);
    const __mmask16 ge = _mm512_cmp_ps_mask(x, tc, _CMP_NLT_UQ);
    idx = _mm512_mask_mov_epi32(idx, ge, cand);
  }
  return idx;
}

void iq4_trials(const float* x, const float* weight, const float* id, float* sumqx, float* sumq2) {
  const __m512 t = _mm512_loadu_ps(iq4_thresholds());
  const __m512 values = iq4_values();
  const __m512 ids = _mm512_loadu_ps(id);
  __m512 sqx = _mm512_setzero_ps();
  __m512 sq2 = _mm512_setzero_ps();
  for (int j = 0; j < 32; ++j) {
    const __m512 xj = _mm512_set1_ps(x[j]);
    const __m512 q = _mm512_permutexvar_ps(iq4_index(_mm512_mul_ps(ids, xj), t), values);
    const __m512 wq = _mm512_mul_ps(_mm512_set1_ps(weight[j]), q);
    sqx = _mm512_add_ps(sqx, _mm512_mul_ps(wq, xj));
    sq2 = _mm512_add_ps(sq2, _mm512_mul_ps(wq, q));
  }
  _mm512_storeu_ps(sumqx, sqx);
  _mm512_storeu_ps(sumq2, sq2);
}

void iq4_indices(const float* x, int n, float id, uint8_t* L) {
  const __m512 t = _mm512_loadu_ps(iq4_thresholds());
  const __m512 ids = _mm512_set1_ps(id);
  for (int j = 0; j < n; j += 16) {
    const __m512i idx = iq4_index(_mm512_mul_ps(ids, _mm512_loadu_ps(x + j)), t);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(L + j), _mm512_cvtepi32_epi8(idx));
  }
}

// Per element i, the 16-lane lookup table of its terms weight[i]·diff·diff by level: levels
// 0..3 repeated four times (2-bit codes; the permute reads 4 index bits, so the next element's
// bits above them select a copy) or 0..7 twice (3-bit codes).
template <int kBits>
int best_neighbour_impl(const NeighbourList& list, const float* xval, const float* weight,
                        float scale, const float* level_value) {
  constexpr int kWidth = kBits == 2 ? 8 : 4;
  constexpr int kLevels = kBits == 2 ? 3 : 8;
  __m512 terms[kWidth];
  alignas(64) float lv[16] = {};
  for (int l = 0; l < kLevels; ++l) lv[l] = level_value[l];
  const __m512 sq = _mm512_mul_ps(_mm512_set1_ps(scale), _mm512_load_ps(lv));
  for (int i = 0; i < kWidth; ++i) {
    const __m512 diff = _mm512_sub_ps(sq, _mm512_set1_ps(xval[i]));
    const __m512 term = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(weight[i]), diff), diff);
    terms[i] =
        kBits == 2 ? _mm512_shuffle_f32x4(term, term, 0) : _mm512_shuffle_f32x4(term, term, 0x44);
  }
  const __m512 inf = _mm512_set1_ps(__builtin_inff());
  __m512 best = _mm512_set1_ps(FLT_MAX);
  __m512i best_pos = _mm512_setzero_si512();
  __m512i pos = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i count = _mm512_set1_epi32(list.count);
  for (int c = 0; c < list.count; c += 16) {
    const __m512i code =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(list.code + c)));
    __m512 d2 = _mm512_setzero_ps();
    for (int i = 0; i < kWidth; ++i) {
      const __m512i li = i == 0 ? code : _mm512_srli_epi32(code, kBits * i);
      d2 = _mm512_add_ps(d2, _mm512_permutexvar_ps(li, terms[i]));
    }
    d2 = _mm512_mask_mov_ps(inf, _mm512_cmplt_epi32_mask(pos, count), d2);
    const __mmask16 lt = _mm512_cmp_ps_mask(d2, best, _CMP_LT_OQ);
    best = _mm512_mask_mov_ps(best, lt, d2);
    best_pos = _mm512_mask_mov_epi32(best_pos, lt, pos);
    pos = _mm512_add_epi32(pos, _mm512_set1_epi32(16));
  }
  // The first position holding the smallest distance (lanes that never improved on FLT_MAX keep
  // position 0, which is the fallback when nothing did).
  const float m = _mm512_reduce_min_ps(best);
  const __mmask16 at_min = _mm512_cmp_ps_mask(best, _mm512_set1_ps(m), _CMP_EQ_OQ);
  const int first = _mm512_mask_reduce_min_epi32(at_min, best_pos);
  return list.count > 0 ? list.index[first] : 0;
}

int best_neighbour(const NeighbourList& list, int bits, const float* xval, const float* weight,
                   float scale, const float* level_value) {
  return bits == 2 ? best_neighbour_impl<2>(list, xval, weight, scale, level_value)
                   : best_neighbour_impl<3>(list, xval, weight, scale, level_value);
}

}  // namespace

const IqKernels kIqKernelsAvx512 = {iq4_trials, iq4_indices, best_neighbour};

}  // namespace insitu::iq
