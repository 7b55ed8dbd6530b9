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

// The position in `list` of the entry minimising Σ_i weight[i]·(s·lv[l_i] - xval[i])² with
// sq = s·lv (the first on ties; 0 when no distance is below FLT_MAX). Per element i, a 16-lane
// lookup table holds its terms weight[i]·diff·diff by level: levels 0..3 repeated four times
// (2-bit codes; the permute reads 4 index bits, so the next element's bits above them select a
// copy) or 0..7 twice (3-bit codes).
template <int kBits>
inline int nearest_position(const NeighbourList& list, const float* xval, const float* weight,
                            __m512 sq) {
  constexpr int kWidth = kBits == 2 ? 8 : 4;
  __m512 terms[kWidth];
  for (int i = 0; i < kWidth; ++i) {
    const __m512 diff = _mm512_sub_ps(sq, _mm512_set1_ps(xval[i]));
    const __m512 term = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(weight[i]), diff), diff);
    terms[i] =
        kBits == 2 ? _mm512_shuffle_f32x4(term, term, 0) : _mm512_shuffle_f32x4(term, term, 0x44);
  }
  // Segments of up to kSegment candidates: their distances go to d2s (NaN as +inf, which never
  // wins, as in ggml's `d2 < best` scan), then the first position of the segment's minimum wins
  // if that minimum is below the best so far: the first minimum overall, as ggml picks it.
  constexpr int kSegment = 128;
  alignas(64) float d2s[kSegment];
  const __m512 inf = _mm512_set1_ps(__builtin_inff());
  float best = FLT_MAX;
  int best_pos = 0;
  for (int s0 = 0; s0 < list.count; s0 += kSegment) {
    const int n = list.count - s0 < kSegment ? list.count - s0 : kSegment;
    __m512 mn = inf;
    for (int c = 0; c < n; c += 16) {
      const __m512i code = _mm512_cvtepu16_epi32(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(list.code + s0 + c)));
      __m512 d2 = _mm512_setzero_ps();
      for (int i = 0; i < kWidth; ++i) {
        const __m512i li = i == 0 ? code : _mm512_srli_epi32(code, kBits * i);
        d2 = _mm512_add_ps(d2, _mm512_permutexvar_ps(li, terms[i]));
      }
      const __mmask16 valid = static_cast<__mmask16>(_mm512_cmp_ps_mask(d2, d2, _CMP_ORD_Q) &
                                                     (n - c >= 16 ? 0xffff : (1u << (n - c)) - 1));
      d2 = _mm512_mask_mov_ps(inf, valid, d2);
      _mm512_store_ps(d2s + c, d2);
      mn = _mm512_min_ps(mn, d2);
    }
    const float m = _mm512_reduce_min_ps(mn);
    if (!(m < best)) continue;
    const __m512 vm = _mm512_set1_ps(m);
    for (int c = 0;; c += 16) {
      const __mmask16 eq = _mm512_cmp_ps_mask(_mm512_load_ps(d2s + c), vm, _CMP_EQ_OQ);
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
  const __m512 s = _mm512_set1_ps(scale);
  if (bits == 2) {
    const __m512 sq = _mm512_mul_ps(s, _mm512_maskz_loadu_ps(0x7, level_value));
    return list.index[nearest_position<2>(list, xval, weight, sq)];
  }
  const __m512 sq = _mm512_mul_ps(s, _mm512_maskz_loadu_ps(0xff, level_value));
  return list.index[nearest_position<3>(list, xval, weight, sq)];
}

template <int kBits>
void trial_products(const LatticeView& g, int n, const float* xval, const float* weight,
                    const float* waux, float id, float scale, int8_t* L, uint8_t* on_grid,
                    float* pqx, float* pq2) {
  constexpr int kWidth = kBits == 2 ? 8 : 4;
  constexpr int kGroups = 16 / kWidth;  // per vector
  const __m512i shifts =
      kBits == 2 ? _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14)
                 : _mm512_setr_epi32(0, 3, 6, 9, 0, 3, 6, 9, 0, 3, 6, 9, 0, 3, 6, 9);
  // The dense key Σ l_i·radix^i (radix 3 for 2-bit levels, 8 for 3-bit ones).
  const __m512i radix_powers =
      kBits == 2
          ? _mm512_setr_epi32(1, 3, 9, 27, 81, 243, 729, 2187, 1, 3, 9, 27, 81, 243, 729, 2187)
          : _mm512_setr_epi32(1, 8, 64, 512, 1, 8, 64, 512, 1, 8, 64, 512, 1, 8, 64, 512);
  const __m512i level_mask = _mm512_set1_epi32((1 << kBits) - 1);
  // Levels (0.5·(id·x - 1) rounded half to even as nearest_int does, clamped) and each group's
  // key: the weighted levels of a group summed across its lanes.
  __m512i levels[2];
  uint32_t keys[8];
  const __m512 vid = _mm512_set1_ps(id);
  for (int v = 0; v < n / 16; ++v) {
    const __m512 t = _mm512_mul_ps(
        _mm512_set1_ps(0.5f),
        _mm512_sub_ps(_mm512_mul_ps(vid, _mm512_loadu_ps(xval + 16 * v)), _mm512_set1_ps(1.f)));
    const __m512i biased = _mm512_castps_si512(_mm512_add_ps(t, _mm512_set1_ps(12582912.f)));
    __m512i l = _mm512_sub_epi32(_mm512_and_si512(biased, _mm512_set1_epi32(0x007fffff)),
                                 _mm512_set1_epi32(0x00400000));
    l = _mm512_max_epi32(_mm512_setzero_si512(),
                         _mm512_min_epi32(_mm512_set1_epi32(g.max_level), l));
    levels[v] = l;
    __m512i c = _mm512_mullo_epi32(l, radix_powers);
    c = _mm512_add_epi32(c, _mm512_shuffle_epi32(c, _MM_PERM_CDAB));
    c = _mm512_add_epi32(c, _mm512_shuffle_epi32(c, _MM_PERM_BADC));
    if (kBits == 2) c = _mm512_add_epi32(c, _mm512_shuffle_i32x4(c, c, _MM_SHUFFLE(2, 3, 0, 1)));
    alignas(64) uint32_t lanes[16];
    _mm512_store_si512(lanes, c);
    for (int k = 0; k < kGroups; ++k) keys[kGroups * v + k] = lanes[kWidth * k];
  }
  const __m512 sq = _mm512_mul_ps(
      _mm512_set1_ps(scale),
      kBits == 2 ? _mm512_setr_ps(1, 3, 5, 7, 1, 3, 5, 7, 1, 3, 5, 7, 1, 3, 5, 7)
                 : _mm512_setr_ps(1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15));
  // Groups off the grid take their best neighbour's levels, patched into the level vectors.
  for (int k = 0; k < n / kWidth; ++k) {
    const uint32_t key = keys[k];
    on_grid[k] = g.map[key] >= 0;
    if (on_grid[k]) continue;
    const NeighbourList list = g.neighbours(key);
    const int pos = nearest_position<kBits>(list, xval + kWidth * k, waux + kWidth * k, sq);
    const uint32_t code = list.count > 0 ? list.code[pos] : g.entry_code[0];
    const __m512i decoded = _mm512_and_si512(
        _mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(code)), shifts), level_mask);
    const __mmask16 lanes =
        static_cast<__mmask16>(((1u << kWidth) - 1) << (kWidth * (k % kGroups)));
    levels[k / kGroups] = _mm512_mask_mov_epi32(levels[k / kGroups], lanes, decoded);
  }
  // The products of the sums, lane by lane.
  for (int v = 0; v < n / 16; ++v) {
    const __m512i l = levels[v];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(L + 16 * v), _mm512_cvtepi32_epi8(l));
    const __m512 q =
        _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_slli_epi32(l, 1), _mm512_set1_epi32(1)));
    const __m512 w = _mm512_loadu_ps(weight + 16 * v);
    _mm512_storeu_ps(pqx + 16 * v,
                     _mm512_mul_ps(_mm512_mul_ps(w, _mm512_loadu_ps(xval + 16 * v)), q));
    _mm512_storeu_ps(pq2 + 16 * v, _mm512_mul_ps(_mm512_mul_ps(w, q), q));
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

const IqKernels kIqKernelsAvx512 = {iq4_trials, iq4_indices, best_neighbour, grid_trial_products};

}  // namespace insitu::iq
