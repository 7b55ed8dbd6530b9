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

// Thresholds t[0..15) of IQ4's nearest-value search: for any float x (NaN included), ggml's
// best_index_int8(16, kValuesIQ4NL, x) equals the number of k with !(x < t[k]). t[15] = +inf
// pads the table to 16.
const float* iq4_thresholds();

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
};

// The table of an instruction set this build has (every QuantIsa value on x86-64).
const IqKernels& iq_kernels(QuantIsa isa);

// The table of the path in use (quant_isa()); fetch once per row.
inline const IqKernels& iq_kernels() { return iq_kernels(quant_isa()); }

// The ISA tables, defined in their own translation units.
extern const IqKernels kIqKernelsAvx2;
extern const IqKernels kIqKernelsAvx512;

}  // namespace insitu::iq
