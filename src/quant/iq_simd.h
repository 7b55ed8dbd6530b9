// The inner searches of the i-quant quantizers, in a generic version and hand-written AVX2 /
// AVX-512 versions (iq_simd_avx2.cc, iq_simd_avx512.cc), bound in a table per instruction set
// (quant/quant_isa.h chooses which). Internal: not part of the library's API.
//
// Every version returns exactly what ggml's scalar code computes (src/ggml-quants.c, commit
// d99724f2), because the quantized bytes depend on each rounding:
//   - SIMD lanes run independent candidates (trial scales, neighbour entries), each lane doing
//     ggml's operations in ggml's order; the comparisons between candidates, which ggml does
//     sequentially, are either left to the caller in scalar code or reduced so that the first
//     minimum wins, as ggml's strict `<` scan picks it.
//   - A nearest-neighbour distance Σ_i w_i (s·q_i - x_i)² over grid entries takes each term
//     w_i·(s·q - x_i)·(s·q - x_i) from a table built per element and level: the same float ggml
//     computes for that element and level, added in ggml's element order.
//   - IQ4's nearest-value search (ggml's best_index_int8 over kValuesIQ4NL) becomes a count of
//     thresholds: the decision `x - v[k] < v[k+1] - x` between neighbouring values is monotone in
//     x, so it flips at one float, found once by bisection with that very expression.
// The functions are pure and thread-safe.
#pragma once

#include <cstdint>

#include "quant/quant_isa.h"

namespace insitu::iq {

// The neighbour list of one off-grid level vector: `count` grid indices, nearest first, and each
// entry's packed level vector (`bits` bits per element, element i at bit bits*i). Both arrays may
// be read up to 15 entries past `count` (the tables carry padding).
struct NeighbourList {
  const uint16_t* index;
  const uint16_t* code;
  int count;
};

// A lattice's search tables as the kernels read them (quant/iq_grid_search.h builds them). A
// level vector is packed `bits` bits per element (element i at bit bits*i), `width` elements. The
// tables are indexed by a dense key instead, Σ_i l_i·(max_level + 1)^i (for the 3-bit lattices the
// packed vector itself; for the 2-bit ones, base 3, which keeps the tables small enough to stay in
// cache).
struct LatticeView {
  const int16_t* map;          // [keys]: grid index of a level vector, or -1
  const uint32_t* offsets;     // [keys + 1]: each vector's neighbour list in index / code
  const uint16_t* index;       // neighbour grid indices, nearest first, padded by 15 entries
  const uint16_t* code;        // [same]: each neighbour's packed level vector
  const uint16_t* entry_code;  // [grid size]: packed level vector of each grid entry
  int bits;                    // 2 (width 8, levels 0..2) or 3 (width 4, levels 0..7)
  int width;
  int max_level;

  NeighbourList neighbours(uint32_t key) const {
    return {index + offsets[key], code + offsets[key],
            static_cast<int>(offsets[key + 1] - offsets[key])};
  }
};

// Thresholds t[0..15) of IQ4's nearest-value search: for any float x (NaN included), ggml's
// best_index_int8(16, kValuesIQ4NL, x) equals the number of k with !(x < t[k]). t[15] = +inf
// pads the table to 16.
const float* iq4_thresholds();

inline constexpr int kMaxTrials = 31;  // IQ3_XXS tries 31 scales

// sumqx[t] = Σ_i pqx[t][i] and sumq2[t] = Σ_i pq2[t][i], each summed in order of i (ggml's
// sums); the trials' additions are interleaved, so they run side by side instead of one long
// dependency chain after another.
void sum_trials_in_order(int n, int ntrials, const float (*pqx)[32], const float (*pq2)[32],
                         float* sumqx, float* sumq2);

struct IqKernels {
  // IQ4_NL / IQ4_XS scale search over one 32-element sub-block: for each of 16 candidate inverse
  // scales id[c], sumqx[c] = Σ_j w_j·q_j·x_j and sumq2[c] = Σ_j w_j·q_j·q_j summed over j in
  // order, q_j = kValuesIQ4NL[best_index(id[c]·x_j)] (quantize_row_iq4_nl_impl's inner loop).
  void (*iq4_trials)(const float* x, const float* weight, const float* id, float* sumqx,
                     float* sumq2);

  // L[j] = best_index_int8(16, kValuesIQ4NL, id·x[j]) for j < n; n a multiple of 16.
  void (*iq4_indices)(const float* x, int n, float id, uint8_t* L);

  // The grid index, among `list`, minimising Σ_i weight[i]·(scale·level_value[l_i] - xval[i])²
  // over the entry's levels l_i (the first one on ties; the first entry when no distance is
  // below FLT_MAX). bits is 2 (8 elements, levels 0..2) or 3 (4 elements, levels 0..7).
  // iq2_find_best_neighbour / iq3_find_best_neighbour / iq1_find_best_neighbour2 of ggml.
  int (*best_neighbour)(const NeighbourList& list, int bits, const float* xval, const float* weight,
                        float scale, const float* level_value);

  // One trial scale of the IQ2 / IQ3 scale searches over n elements (n / g.width groups, n at
  // most 32): levels L[i] = clamp(nearest_int(0.5·(id·xval[i] - 1)), 0, g.max_level); each
  // group off the grid (on_grid[k] = 0) is replaced by its best neighbour as best_neighbour picks
  // it with weights waux, scale `scale` and level values 2l + 1. Then the terms of the trial's
  // sums: pqx[i] = weight[i]·xval[i]·q_i and pq2[i] = weight[i]·q_i·q_i with q_i = 2·L[i] + 1,
  // which the caller adds in order of i (sum_trials_in_order). (The loop body of ggml's
  // quantize_row_iq2_*_impl and quantize_row_iq3_*_impl for one trial scale.)
  void (*grid_trial_products)(const LatticeView& g, int n, const float* xval, const float* weight,
                              const float* waux, float id, float scale, int8_t* L, uint8_t* on_grid,
                              float* pqx, float* pq2);
};

// The table of an instruction set this build has (every QuantIsa value on x86-64).
const IqKernels& iq_kernels(QuantIsa isa);

// The table of the path in use (quant_isa()); fetch once per row.
inline const IqKernels& iq_kernels() { return iq_kernels(quant_isa()); }

// The ISA tables, defined in their own translation units.
extern const IqKernels kIqKernelsAvx2;
extern const IqKernels kIqKernelsAvx512;

}  // namespace insitu::iq
