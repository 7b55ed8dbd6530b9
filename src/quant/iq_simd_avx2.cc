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

// The position in `list` of the entry minimising Σ_i weight[i]·(s·lv[l_i] - xval[i])² with
// sq = s·lv (the first on ties; 0 when no distance is below FLT_MAX). Per element i, an 8-lane
// lookup table holds its terms weight[i]·diff·diff by level: levels 0..3 repeated twice (2-bit
// codes; the permute reads 3 index bits, so the next element's bit above them selects a copy)
// or levels 0..7 (3-bit codes).
template <int kBits>
inline int nearest_position(const NeighbourList& list, const float* xval, const float* weight,
                            __m256 sq) {
  constexpr int kWidth = kBits == 2 ? 8 : 4;
  __m256 terms[kWidth];
  for (int i = 0; i < kWidth; ++i) {
    const __m256 diff = _mm256_sub_ps(sq, _mm256_set1_ps(xval[i]));
    terms[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(weight[i]), diff), diff);
  }
  // Segments of up to kSegment candidates: their distances go to d2s (NaN as +inf, which never
  // wins, as in ggml's `d2 < best` scan), then the first position of the segment's minimum wins
  // if that minimum is below the best so far: the first minimum overall, as ggml picks it.
  constexpr int kSegment = 128;
  alignas(32) float d2s[kSegment];
  const __m256 inf = _mm256_set1_ps(__builtin_inff());
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  float best = FLT_MAX;
  int best_pos = 0;
  for (int s0 = 0; s0 < list.count; s0 += kSegment) {
    const int n = list.count - s0 < kSegment ? list.count - s0 : kSegment;
    __m256 mn = inf;
    for (int c = 0; c < n; c += 8) {
      const __m256i code = _mm256_cvtepu16_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(list.code + s0 + c)));
      __m256 d2 = _mm256_setzero_ps();
      for (int i = 0; i < kWidth; ++i) {
        const __m256i li = i == 0 ? code : _mm256_srli_epi32(code, kBits * i);
        d2 = _mm256_add_ps(d2, _mm256_permutevar8x32_ps(terms[i], li));
      }
      const __m256 valid =
          _mm256_and_ps(_mm256_cmp_ps(d2, d2, _CMP_ORD_Q),
                        _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - c), lane)));
      d2 = _mm256_blendv_ps(inf, d2, valid);
      _mm256_store_ps(d2s + c, d2);
      mn = _mm256_min_ps(mn, d2);
    }
    __m128 m4 = _mm_min_ps(_mm256_castps256_ps128(mn), _mm256_extractf128_ps(mn, 1));
    m4 = _mm_min_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_min_ss(m4, _mm_movehdup_ps(m4));
    const float m = _mm_cvtss_f32(m4);
    if (!(m < best)) continue;
    const __m256 vm = _mm256_set1_ps(m);
    for (int c = 0;; c += 8) {
      const int eq = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_load_ps(d2s + c), vm, _CMP_EQ_OQ));
      if (eq != 0) {
        best = m;
        best_pos = s0 + c + __builtin_ctz(eq);
        break;
      }
    }
  }
  return best_pos;
}

int best_neighbour(const NeighbourList& list, int bits, const float* xval, const float* weight,
                   float scale, const float* level_value) {
  if (list.count == 0) return 0;
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  if (bits == 2) {
    __m256 lv = _mm256_maskload_ps(level_value, _mm256_cmpgt_epi32(_mm256_set1_epi32(3), lane));
    lv = _mm256_permute2f128_ps(lv, lv, 0);  // levels 0..3 in both halves
    return list.index[nearest_position<2>(list, xval, weight, _mm256_mul_ps(s, lv))];
  }
  const __m256 lv = _mm256_loadu_ps(level_value);
  return list.index[nearest_position<3>(list, xval, weight, _mm256_mul_ps(s, lv))];
}

template <int kBits>
void trial_products(const LatticeView& g, int n, const float* xval, const float* weight,
                    const float* waux, float id, float scale, int8_t* L, uint8_t* on_grid,
                    float* pqx, float* pq2) {
  constexpr int kWidth = kBits == 2 ? 8 : 4;
  constexpr int kGroups = 8 / kWidth;  // per vector
  const __m256i shifts = kBits == 2 ? _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)
                                    : _mm256_setr_epi32(0, 3, 6, 9, 0, 3, 6, 9);
  // The dense key Σ l_i·radix^i (radix 3 for 2-bit levels, 8 for 3-bit ones).
  const __m256i radix_powers = kBits == 2 ? _mm256_setr_epi32(1, 3, 9, 27, 81, 243, 729, 2187)
                                          : _mm256_setr_epi32(1, 8, 64, 512, 1, 8, 64, 512);
  const __m256i group_of_lane =
      kBits == 2 ? _mm256_setzero_si256() : _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  const __m256i level_mask = _mm256_set1_epi32((1 << kBits) - 1);
  // Levels (0.5·(id·x - 1) rounded half to even as nearest_int does, clamped) and each group's
  // key: the weighted levels of a group summed across its lanes.
  __m256i levels[4];
  uint32_t keys[8];
  const __m256 vid = _mm256_set1_ps(id);
  for (int v = 0; v < n / 8; ++v) {
    const __m256 t = _mm256_mul_ps(
        _mm256_set1_ps(0.5f),
        _mm256_sub_ps(_mm256_mul_ps(vid, _mm256_loadu_ps(xval + 8 * v)), _mm256_set1_ps(1.f)));
    const __m256i biased = _mm256_castps_si256(_mm256_add_ps(t, _mm256_set1_ps(12582912.f)));
    __m256i l = _mm256_sub_epi32(_mm256_and_si256(biased, _mm256_set1_epi32(0x007fffff)),
                                 _mm256_set1_epi32(0x00400000));
    l = _mm256_max_epi32(_mm256_setzero_si256(),
                         _mm256_min_epi32(_mm256_set1_epi32(g.max_level), l));
    levels[v] = l;
    __m256i c = _mm256_mullo_epi32(l, radix_powers);
    c = _mm256_add_epi32(c, _mm256_shuffle_epi32(c, _MM_SHUFFLE(2, 3, 0, 1)));
    c = _mm256_add_epi32(c, _mm256_shuffle_epi32(c, _MM_SHUFFLE(1, 0, 3, 2)));
    if (kBits == 2) c = _mm256_add_epi32(c, _mm256_permute2x128_si256(c, c, 1));
    keys[kGroups * v] = static_cast<uint32_t>(_mm256_cvtsi256_si32(c));
    if (kBits == 3) keys[kGroups * v + 1] = static_cast<uint32_t>(_mm256_extract_epi32(c, 4));
  }
  const __m256 sq =
      _mm256_mul_ps(_mm256_set1_ps(scale), kBits == 2 ? _mm256_setr_ps(1, 3, 5, 7, 1, 3, 5, 7)
                                                      : _mm256_setr_ps(1, 3, 5, 7, 9, 11, 13, 15));
  // Groups off the grid take their best neighbour's levels, patched into the level vectors.
  for (int k = 0; k < n / kWidth; ++k) {
    const uint32_t key = keys[k];
    on_grid[k] = g.map[key] >= 0;
    if (on_grid[k]) continue;
    const NeighbourList list = g.neighbours(key);
    const int pos = nearest_position<kBits>(list, xval + kWidth * k, waux + kWidth * k, sq);
    const uint32_t code = list.count > 0 ? list.code[pos] : g.entry_code[0];
    const __m256i decoded = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(code)), shifts), level_mask);
    const __m256i lanes = _mm256_cmpeq_epi32(group_of_lane, _mm256_set1_epi32(k % kGroups));
    levels[k / kGroups] = _mm256_blendv_epi8(levels[k / kGroups], decoded, lanes);
  }
  // The products of the sums, lane by lane.
  const __m256i first_bytes =
      _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1,
                       -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  for (int v = 0; v < n / 8; ++v) {
    const __m256i l = levels[v];
    const __m256i b = _mm256_shuffle_epi8(l, first_bytes);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(L + 8 * v),
                     _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1)));
    const __m256 q =
        _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_slli_epi32(l, 1), _mm256_set1_epi32(1)));
    const __m256 w = _mm256_loadu_ps(weight + 8 * v);
    _mm256_storeu_ps(pqx + 8 * v,
                     _mm256_mul_ps(_mm256_mul_ps(w, _mm256_loadu_ps(xval + 8 * v)), q));
    _mm256_storeu_ps(pq2 + 8 * v, _mm256_mul_ps(_mm256_mul_ps(w, q), q));
  }
}

void grid_trial_products(const LatticeView& g, int n, const float* xval, const float* weight,
                         const float* waux, float id, float scale, int8_t* L, uint8_t* on_grid,
                         float* pqx, float* pq2) {
  if (g.bits == 2) {
    trial_products<2>(g, n, xval, weight, waux, id, scale, L, on_grid, pqx, pq2);
  } else {
    trial_products<3>(g, n, xval, weight, waux, id, scale, L, on_grid, pqx, pq2);
  }
}

}  // namespace

const IqKernels kIqKernelsAvx2 = {iq4_trials, iq4_indices, best_neighbour, grid_trial_products};

}  // namespace insitu::iq
