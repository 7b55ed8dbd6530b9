// Search tables over the i-quant lattices: which grid entry a vector of levels is, and, for a
// vector off the grid, which grid entries are its nearest neighbours.
//
// These are the tables ggml's ggml_quantize_init builds lazily (iq2xs_init_impl and
// iq3xs_init_impl in src/ggml-quants.c, commit d99724f2). The quantizers' output depends on the
// neighbour order, so it is reproduced exactly: neighbours are sorted by (squared distance, grid
// index) and a list holds every entry within the `nwant` smallest distinct distances
// (IQ2_XXS/IQ2_XS 2, IQ2_S 1, IQ1_S/IQ1_M 3, IQ3_XXS 2, IQ3_S 3).
//
// The grids come from quant/iq_tables.h; scripts/gen_iq_tables.py checks that ggml's compressed
// grids are exactly their level indices. A level vector is packed `bits` bits per element,
// element i at bit bits*i. For the 2-bit grids only levels 0..2 occur in the grids and the
// quantizers clamp to that range, so neighbour lists exist for those points only.
//
// Each table is built once, on first use, thread-safely (a function-local static), and is
// immutable afterwards: safe to share between threads.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "quant/iq_simd.h"

namespace insitu::iq {

enum class Lattice { kIQ2XXS, kIQ2XS, kIQ2S, kIQ1S, kIQ3XXS, kIQ3S };

class GridSearch {
 public:
  explicit GridSearch(Lattice lattice);

  int size() const { return size_; }    // grid entries
  int width() const { return width_; }  // elements per entry: 8, or 4 for the IQ3 grids

  // Entry k as odd values 2*l + 1 of its levels l (the form ggml's search tables use).
  const int8_t* entry(int k) const { return &entries_[static_cast<size_t>(k) * width_]; }

  // Grid index of the packed level vector u, or -1 when it is not on the grid (or is no level
  // vector at all, which only non-finite input can produce).
  int index(uint32_t u) const {
    const int32_t key = key_of(u);
    return key < 0 ? -1 : map_[key];
  }

  // The neighbours of an off-grid vector u, nearest first (empty for vectors the quantizers
  // never produce).
  std::span<const uint16_t> neighbours(uint32_t u) const {
    const NeighbourList list = neighbour_list(u);
    return {list.index, static_cast<size_t>(list.count)};
  }

  // The same list with each entry's packed level vector, for the search kernels (readable 15
  // entries past its end).
  NeighbourList neighbour_list(uint32_t u) const {
    const int32_t key = key_of(u);
    if (key < 0) return {neighbours_.data(), codes_.data(), 0};
    return view().neighbours(static_cast<uint32_t>(key));
  }

  int bits() const { return bits_; }  // per packed level: 2 (8-wide grids) or 3 (4-wide)

  // The tables as the search kernels read them.
  LatticeView view() const {
    return {map_.data(), offsets_.data(), neighbours_.data(), codes_.data(), entry_code_.data(),
            bits_,       width_,          max_level_};
  }

 private:
  // The dense index of a level vector that the quantizers can produce (see LatticeView), or -1.
  int32_t key_of(uint32_t u) const;

  int size_ = 0;
  int width_ = 0;
  int bits_ = 0;
  int max_level_ = 0;
  std::vector<int8_t> entries_;       // [size, width]
  std::vector<int16_t> map_;          // [keys]: grid index of a level vector, or -1
  std::vector<uint32_t> offsets_;     // [keys + 1] into neighbours_
  std::vector<uint16_t> neighbours_;  // every list, then 15 padding entries
  std::vector<uint16_t> codes_;       // [neighbours_.size()]: packed levels of each entry
  std::vector<uint16_t> entry_code_;  // [size]: packed levels of grid entry k
};

// The table of a lattice (IQ1_S and IQ1_M share kIQ1S).
const GridSearch& grid_search(Lattice lattice);

// Among the neighbours of the off-grid level vector u, the entry minimising
// sum_i weight[i] * (scale * entry[i] - xval[i])^2 (the first one on ties); writes its levels to
// L[0..width) and returns its index. Port of iq2_find_best_neighbour / iq3_find_best_neighbour
// (ggml-quants.c, d99724f2), computed by `kernels`. u must be a vector the quantizers produce
// (levels in range).
int best_neighbour(const IqKernels& kernels, const GridSearch& g, uint32_t u, const float* xval,
                   const float* weight, float scale, int8_t* L);

// The trial-scale loop of the IQ2 / IQ3 quantizers over n elements of one block (ggml's
// quantize_row_iq2_*_impl / quantize_row_iq3_*_impl): inverse scales
// id = (2·max_level + 1 + is·step) / max for is = -nhalf..nhalf, each trial's levels snapped to
// the grid (kernels.grid_trial_products), and the first trial with the best weighted correlation
// kept, compared in ggml's order with ggml's `best` starting at 0. When a trial wins, *scale
// becomes its least-squares scale and L[n] / on_grid[n / width] its levels and on-grid flags;
// otherwise all three are left as they were. Returns whether one won.
bool search_trial_scales(const IqKernels& kernels, const LatticeView& g, int n, const float* xval,
                         const float* weight, const float* waux, float max, int nhalf, float step,
                         float* scale, int8_t* L, uint8_t* on_grid);

}  // namespace insitu::iq
