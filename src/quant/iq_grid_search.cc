// Builds the i-quant lattice search tables; see iq_grid_search.h. Follows iq2xs_init_impl /
// iq3xs_init_impl of ggml's src/ggml-quants.c (commit d99724f2) in what it computes, not in how:
// ggml sorts all grid entries per point with qsort, here only the candidates within the wanted
// distances are sorted, which yields the same lists since (distance, index) is a total order.
#include "quant/iq_grid_search.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "quant/iq_tables.h"

namespace insitu::iq {
namespace {

struct LatticeSpec {
  const void* grid;  // uint64_t[] (width 8) or uint32_t[] (width 4)
  int size;
  int width;
  int bits;                                 // per packed level
  int nwant;                                // distinct distances kept per neighbour list
  int max_level;                            // highest level the quantizers produce
  std::array<int, 8> level_of_byte_values;  // grid byte values in level order (width used)
  int nlevels;
};

LatticeSpec spec_of(Lattice lattice) {
  switch (lattice) {
    case Lattice::kIQ2XXS:
      return {kGridIQ2XXS, 256, 8, 2, 2, 2, {8, 25, 43}, 3};
    case Lattice::kIQ2XS:
      return {kGridIQ2XS, 512, 8, 2, 2, 2, {8, 25, 43}, 3};
    case Lattice::kIQ2S:
      return {kGridIQ2S, 1024, 8, 2, 1, 2, {8, 25, 43}, 3};
    case Lattice::kIQ1S:
      return {kGridIQ1S, 2048, 8, 2, 3, 2, {-1, 0, 1}, 3};
    case Lattice::kIQ3XXS:
      return {kGridIQ3XXS, 256, 4, 3, 2, 7, {4, 12, 20, 28, 36, 44, 52, 62}, 8};
    case Lattice::kIQ3S:
      return {kGridIQ3S, 512, 4, 3, 3, 7, {1, 3, 5, 7, 9, 11, 13, 15}, 8};
  }
  return {};
}

// Element j of grid entry k as a signed byte.
int grid_byte(const LatticeSpec& s, int k, int j) {
  if (s.width == 8) {
    return static_cast<int8_t>(static_cast<const uint64_t*>(s.grid)[k] >> (8 * j));
  }
  return static_cast<int8_t>(static_cast<const uint32_t*>(s.grid)[k] >> (8 * j));
}

int level_of(const LatticeSpec& s, int byte) {
  for (int l = 0; l < s.nlevels; ++l) {
    if (s.level_of_byte_values[l] == byte) return l;
  }
  return -1;  // unreachable for the generated tables (the generator checks the level sets)
}

}  // namespace

GridSearch::GridSearch(Lattice lattice) {
  const LatticeSpec s = spec_of(lattice);
  size_ = s.size;
  width_ = s.width;
  bits_ = s.bits;
  max_level_ = s.max_level;
  entries_.resize(static_cast<size_t>(size_) * width_);
  const int radix = s.max_level + 1;
  int n_keys = 1;
  for (int j = 0; j < width_; ++j) n_keys *= radix;
  map_.assign(n_keys, -1);
  entry_code_.resize(size_);
  for (int k = 0; k < size_; ++k) {
    uint32_t u = 0;
    int key = 0;
    for (int j = width_ - 1; j >= 0; --j) {
      const int l = level_of(s, grid_byte(s, k, j));
      entries_[static_cast<size_t>(k) * width_ + j] = static_cast<int8_t>(2 * l + 1);
      u |= static_cast<uint32_t>(l) << (s.bits * j);
      key = key * radix + l;
    }
    map_[key] = static_cast<int16_t>(k);
    entry_code_[k] = static_cast<uint16_t>(u);
  }

  offsets_.assign(n_keys + 1, 0);
  std::vector<std::pair<int, int>> candidates;  // (squared distance, grid index)
  std::vector<int> dist(size_);
  int pos[8];
  for (int key = 0; key < n_keys; ++key) {
    offsets_[key] = static_cast<uint32_t>(neighbours_.size());
    if (map_[key] >= 0) continue;
    for (int j = 0, rest = key; j < width_; ++j, rest /= radix) pos[j] = 2 * (rest % radix) + 1;
    // Distances to every entry, keeping the nwant smallest distinct ones (ascending).
    int smallest[3];
    int nsmallest = 0;
    for (int k = 0; k < size_; ++k) {
      const int8_t* e = entry(k);
      int d2 = 0;
      for (int j = 0; j < width_; ++j) d2 += (e[j] - pos[j]) * (e[j] - pos[j]);
      dist[k] = d2;
      int at = 0;
      while (at < nsmallest && smallest[at] < d2) ++at;
      if (at < nsmallest && smallest[at] == d2) continue;
      if (at >= s.nwant) continue;
      nsmallest = std::min(nsmallest + 1, s.nwant);
      for (int m = nsmallest - 1; m > at; --m) smallest[m] = smallest[m - 1];
      smallest[at] = d2;
    }
    const int limit = smallest[nsmallest - 1];
    candidates.clear();
    for (int k = 0; k < size_; ++k) {
      if (dist[k] <= limit) candidates.emplace_back(dist[k], k);
    }
    std::sort(candidates.begin(), candidates.end());
    for (const auto& c : candidates) neighbours_.push_back(static_cast<uint16_t>(c.second));
  }
  offsets_[n_keys] = static_cast<uint32_t>(neighbours_.size());
  neighbours_.resize(neighbours_.size() + 15, 0);
  codes_.resize(neighbours_.size());
  for (size_t i = 0; i < neighbours_.size(); ++i) codes_[i] = entry_code_[neighbours_[i]];
}

int32_t GridSearch::key_of(uint32_t u) const {
  if (u >> (bits_ * width_) != 0) return -1;
  int32_t key = 0;
  for (int j = width_ - 1; j >= 0; --j) {
    const int l = static_cast<int>((u >> (bits_ * j)) & ((1u << bits_) - 1));
    if (l > max_level_) return -1;
    key = key * (max_level_ + 1) + l;
  }
  return key;
}

const GridSearch& grid_search(Lattice lattice) {
  switch (lattice) {
    case Lattice::kIQ2XXS: {
      static const GridSearch table(Lattice::kIQ2XXS);
      return table;
    }
    case Lattice::kIQ2XS: {
      static const GridSearch table(Lattice::kIQ2XS);
      return table;
    }
    case Lattice::kIQ2S: {
      static const GridSearch table(Lattice::kIQ2S);
      return table;
    }
    case Lattice::kIQ1S: {
      static const GridSearch table(Lattice::kIQ1S);
      return table;
    }
    case Lattice::kIQ3XXS: {
      static const GridSearch table(Lattice::kIQ3XXS);
      return table;
    }
    case Lattice::kIQ3S:
      break;
  }
  static const GridSearch table(Lattice::kIQ3S);
  return table;
}

int best_neighbour(const IqKernels& kernels, const GridSearch& g, uint32_t u, const float* xval,
                   const float* weight, float scale, int8_t* L) {
  // ggml's search tables hold each entry as odd values 2l + 1 of its levels l.
  static constexpr float kOddLevels[8] = {1, 3, 5, 7, 9, 11, 13, 15};
  // Every vector the quantizers produce from finite input has neighbours; with NaN or inf input
  // (where ggml aborts) the first candidate, or entry 0, is kept.
  const int best =
      kernels.best_neighbour(g.neighbour_list(u), g.bits(), xval, weight, scale, kOddLevels);
  const int8_t* e = g.entry(best);
  for (int i = 0; i < g.width(); ++i) L[i] = static_cast<int8_t>((e[i] - 1) / 2);
  return best;
}

bool search_trial_scales(const IqKernels& kernels, const LatticeView& g, int n, const float* xval,
                         const float* weight, const float* waux, float max, int nhalf, float step,
                         float* scale, int8_t* L, uint8_t* on_grid) {
  const int ntrials = 2 * nhalf + 1;
  float id[kMaxTrials];
  float trial_scale[kMaxTrials];
  for (int is = -nhalf; is <= nhalf; ++is) {
    id[is + nhalf] = (2 * g.max_level + 1 + is * step) / max;
    trial_scale[is + nhalf] = 1 / id[is + nhalf];
  }
  int8_t levels[kMaxTrials * 32];
  uint8_t trial_on_grid[kMaxTrials * 8];
  float pqx[kMaxTrials][32];
  float pq2[kMaxTrials][32];
  for (int t = 0; t < ntrials; ++t) {
    kernels.grid_trial_products(g, n, xval, weight, waux, id[t], trial_scale[t], levels + n * t,
                                trial_on_grid + n / g.width * t, pqx[t], pq2[t]);
  }
  float sumqx[kMaxTrials];
  float sumq2[kMaxTrials];
  sum_trials_in_order(n, ntrials, pqx, pq2, sumqx, sumq2);
  float best = 0;
  int winner = -1;
  for (int t = 0; t < ntrials; ++t) {
    if (sumq2[t] > 0 && sumqx[t] * sumqx[t] > best * sumq2[t]) {
      *scale = sumqx[t] / sumq2[t];
      best = *scale * sumqx[t];
      winner = t;
    }
  }
  if (winner < 0) return false;
  const int ngroups = n / g.width;
  std::memcpy(L, levels + n * winner, static_cast<size_t>(n));
  std::memcpy(on_grid, trial_on_grid + ngroups * winner, static_cast<size_t>(ngroups));
  return true;
}

}  // namespace insitu::iq
