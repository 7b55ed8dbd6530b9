// AVX2 versions of the i-quant search kernels (see iq_simd.h for what each computes and why the
// results are bit-identical to the generic versions). 8 lanes: IQ4's 16 candidate scales in two
// vectors; 8 neighbour entries per step of the nearest-neighbour scan.
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

// IQ4's thresholds rearranged for a branch-free binary search in 8-lane registers: step s
// (8, 4, 2, 1) compares against t[idx + s - 1] with idx a multiple of 2s, i.e. against entry
// idx / 2s of the table {t[s-1], t[3s-1], ...}; and the 16 values split in two halves.
struct Iq4Tables {
  __m256 step4, step2, step1;  // tables for s = 4, 2, 1 (s = 8 compares against t[7] only)
  __m256 t7;
  __m256 values_lo, values_hi;
};

Iq4Tables iq4_tables() {
  const float* t = iq4_thresholds();
  Iq4Tables r;
  r.t7 = _mm256_set1_ps(t[7]);
  r.step4 = _mm256_setr_ps(t[3], t[11], 0, 0, 0, 0, 0, 0);
  r.step2 = _mm256_setr_ps(t[1], t[5], t[9], t[13], 0, 0, 0, 0);
  r.step1 = _mm256_setr_ps(t[0], t[2], t[4], t[6], t[8], t[10], t[12], t[14]);
  const __m256i v =
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(kValuesIQ4NL)));
  const __m256i w =
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(kValuesIQ4NL + 8)));
  r.values_lo = _mm256_cvtepi32_ps(v);
  r.values_hi = _mm256_cvtepi32_ps(w);
  return r;
}

// Index of the nearest IQ4 value: the number of thresholds t[k] with !(x < t[k]) (a prefix of
// k, since they ascend; all of them for NaN, giving 15 as ggml's search does).
inline __m256i iq4_index(__m256 x, const Iq4Tables& tb) {
  const __m256i ge8 = _mm256_castps_si256(_mm256_cmp_ps(x, tb.t7, _CMP_NLT_UQ));
  __m256i idx = _mm256_and_si256(ge8, _mm256_set1_epi32(8));
  const __m256 t4 = _mm256_permutevar8x32_ps(tb.step4, _mm256_srli_epi32(idx, 3));
  idx =
      _mm256_add_epi32(idx, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(x, t4, _CMP_NLT_UQ)),
                                             _mm256_set1_epi32(4)));
  const __m256 t2 = _mm256_permutevar8x32_ps(tb.step2, _mm256_srli_epi32(idx, 2));
  idx =
      _mm256_add_epi32(idx, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(x, t2, _CMP_NLT_UQ)),
                                             _mm256_set1_epi32(2)));
  const __m256 t1 = _mm256_permutevar8x32_ps(tb.step1, _mm256_srli_epi32(idx, 1));
  return _mm256_sub_epi32(idx, _mm256_castps_si256(_mm256_cmp_ps(x, t1, _CMP_NLT_UQ)));
}

// kValuesIQ4NL[idx] as floats.
inline __m256 iq4_value(__m256i idx, const Iq4Tables& tb) {
  const __m256 lo = _mm256_permutevar8x32_ps(tb.values_lo, idx);
  const __m256 hi = _mm256_permutevar8x32_ps(tb.values_hi, idx);
  return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

void iq4_trials(const float* x, const float* weight, const float* id, float* sumqx, float* sumq2) {
  const Iq4Tables tb = iq4_tables();
  for (int half = 0; half < 2; ++half) {
    const __m256 ids = _mm256_loadu_ps(id + 8 * half);
    __m256 sqx = _mm256_setzero_ps();
    __m256 sq2 = _mm256_setzero_ps();
    for (int j = 0; j < 32; ++j) {
      const __m256 xj = _mm256_set1_ps(x[j]);
      const __m256 q = iq4_value(iq4_index(_mm256_mul_ps(ids, xj), tb), tb);
      const __m256 wq = _mm256_mul_ps(_mm256_set1_ps(weight[j]), q);
      sqx = _mm256_add_ps(sqx, _mm256_mul_ps(wq, xj));
      sq2 = _mm256_add_ps(sq2, _mm256_mul_ps(wq, q));
    }
    _mm256_storeu_ps(sumqx + 8 * half, sqx);
    _mm256_storeu_ps(sumq2 + 8 * half, sq2);
  }
}

void iq4_indices(const float* x, int n, float id, uint8_t* L) {
  const Iq4Tables tb = iq4_tables();
  const __m256 ids = _mm256_set1_ps(id);
  for (int j = 0; j < n; j += 16) {
    const __m256i a = iq4_index(_mm256_mul_ps(ids, _mm256_loadu_ps(x + j)), tb);
    const __m256i b = iq4_index(_mm256_mul_ps(ids, _mm256_loadu_ps(x + j + 8)), tb);
    // Pack 16 int32 (all 0..15) to bytes in order.
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xd8);
    const __m128i bytes =
        _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(L + j), bytes);
  }
}

// Per element i, the 8-lane lookup table of its terms weight[i]·diff·diff by level: levels 0..3
// repeated twice (2-bit codes; the permute reads 3 index bits, so the next element's bit above
// them selects a copy) or levels 0..7 (3-bit codes).
template <int kBits>
int best_neighbour_impl(const NeighbourList& list, const float* xval, const float* weight,
                        float scale, const float* level_value) {
  constexpr int kWidth = kBits == 2 ? 8 : 4;
  constexpr int kLevels = kBits == 2 ? 3 : 8;
  __m256 terms[kWidth];
  alignas(32) float lv[8] = {};
  for (int l = 0; l < kLevels; ++l) lv[l] = level_value[l];
  if (kBits == 2) {
    for (int l = 0; l < 4; ++l) lv[l + 4] = lv[l];
  }
  const __m256 sq = _mm256_mul_ps(_mm256_set1_ps(scale), _mm256_load_ps(lv));
  for (int i = 0; i < kWidth; ++i) {
    const __m256 diff = _mm256_sub_ps(sq, _mm256_set1_ps(xval[i]));
    terms[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(weight[i]), diff), diff);
  }
  const __m256 inf = _mm256_set1_ps(__builtin_inff());
  __m256 best = _mm256_set1_ps(FLT_MAX);
  __m256i best_pos = _mm256_setzero_si256();
  __m256i pos = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i count = _mm256_set1_epi32(list.count);
  for (int c = 0; c < list.count; c += 8) {
    const __m256i code =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(list.code + c)));
    __m256 d2 = _mm256_setzero_ps();
    for (int i = 0; i < kWidth; ++i) {
      const __m256i li = i == 0 ? code : _mm256_srli_epi32(code, kBits * i);
      d2 = _mm256_add_ps(d2, _mm256_permutevar8x32_ps(terms[i], li));
    }
    d2 = _mm256_blendv_ps(inf, d2, _mm256_castsi256_ps(_mm256_cmpgt_epi32(count, pos)));
    const __m256 lt = _mm256_cmp_ps(d2, best, _CMP_LT_OQ);
    best = _mm256_blendv_ps(best, d2, lt);
    best_pos = _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(best_pos), _mm256_castsi256_ps(pos), lt));
    pos = _mm256_add_epi32(pos, _mm256_set1_epi32(8));
  }
  if (list.count == 0) return 0;
  // The first position holding the smallest distance (lanes that never improved on FLT_MAX keep
  // position 0, which is the fallback when nothing did).
  alignas(32) float b[8];
  alignas(32) int32_t p[8];
  _mm256_store_ps(b, best);
  _mm256_store_si256(reinterpret_cast<__m256i*>(p), best_pos);
  float m = b[0];
  int first = p[0];
  for (int k = 1; k < 8; ++k) {
    if (b[k] < m || (b[k] == m && p[k] < first)) {
      m = b[k];
      first = p[k];
    }
  }
  return list.index[first];
}

int best_neighbour(const NeighbourList& list, int bits, const float* xval, const float* weight,
                   float scale, const float* level_value) {
  return bits == 2 ? best_neighbour_impl<2>(list, xval, weight, scale, level_value)
                   : best_neighbour_impl<3>(list, xval, weight, scale, level_value);
}

}  // namespace

const IqKernels kIqKernelsAvx2 = {iq4_trials, iq4_indices, best_neighbour};

}  // namespace insitu::iq
