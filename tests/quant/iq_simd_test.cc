// The SIMD paths of the quantizers against the generic path: the i-quant search kernels
// (quant/iq_simd.h) result for result, and every quantizer byte for byte on inputs far larger and
// more varied than the golden file's (which pins the generic path to ggml). Each ISA the machine
// supports is tested; the others are reported as skipped.
#include "quant/iq_simd.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "quant/iq_grid_search.h"
#include "quant/iq_tables.h"
#include "quant/quant_common.h"
#include "quant/quant_isa.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

const QuantIsa kSimdIsas[] = {QuantIsa::kAvx2, QuantIsa::kAvx512};

// Restores the quantizers' path when a test ends.
class ScopedQuantIsa {
 public:
  explicit ScopedQuantIsa(QuantIsa isa) : saved_(quant_isa()) { set_quant_isa(isa); }
  ~ScopedQuantIsa() { set_quant_isa(saved_); }
  ScopedQuantIsa(const ScopedQuantIsa&) = delete;
  ScopedQuantIsa& operator=(const ScopedQuantIsa&) = delete;

 private:
  QuantIsa saved_;
};

float next_float(float f, int ulps) {
  for (int i = 0; i < std::abs(ulps); ++i) {
    f = std::nextafter(f, ulps > 0 ? std::numeric_limits<float>::infinity()
                                   : -std::numeric_limits<float>::infinity());
  }
  return f;
}

int count_thresholds(float x) {
  const float* t = iq::iq4_thresholds();
  int n = 0;
  for (int k = 0; k < 15; ++k) n += !(x < t[k]);
  return n;
}

TEST(Iq4Thresholds, CountEqualsNearestValueSearch) {
  const float* t = iq::iq4_thresholds();
  std::vector<float> xs = {0.f,
                           -0.f,
                           std::numeric_limits<float>::quiet_NaN(),
                           std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(),
                           1e30f,
                           -1e30f};
  for (int k = 0; k < 16; ++k) {
    const float v = kValuesIQ4NL[k];
    for (int u = -300; u <= 300; ++u) xs.push_back(next_float(v, u));
  }
  for (int k = 0; k < 15; ++k) {
    EXPECT_GT(t[k], kValuesIQ4NL[k]);
    EXPECT_LE(t[k], kValuesIQ4NL[k + 1]);
    for (int u = -300; u <= 300; ++u) xs.push_back(next_float(t[k], u));
    // Midpoints as the quantizers compute them, with their rounding.
    xs.push_back(0.5f * (kValuesIQ4NL[k] + kValuesIQ4NL[k + 1]));
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> wide(-140.f, 140.f);
  for (int i = 0; i < 200000; ++i) xs.push_back(wide(rng));
  for (const float x : xs) {
    ASSERT_EQ(count_thresholds(x), best_index_int8(16, kValuesIQ4NL, x)) << x;
  }
}

std::vector<float> gauss(size_t n, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

TEST(IqSimdKernels, Iq4TrialsAndIndicesMatchGeneric) {
  const iq::IqKernels& ref = iq::iq_kernels(QuantIsa::kGeneric);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uni(0.05f, 5.f);
  for (const QuantIsa isa : kSimdIsas) {
    if (!quant_isa_supported(isa)) {
      GTEST_LOG_(INFO) << quant_isa_name(isa) << " not supported here; skipped";
      continue;
    }
    SCOPED_TRACE(quant_isa_name(isa));
    const iq::IqKernels& k = iq::iq_kernels(isa);
    for (int rep = 0; rep < 2000; ++rep) {
      const float sigma = rep % 3 == 0 ? 0.02f : rep % 3 == 1 ? 1.f : 300.f;
      std::vector<float> x = gauss(256, sigma, 100 + rep);
      if (rep % 7 == 0) x[rep % 256] = std::numeric_limits<float>::quiet_NaN();
      float w[32];
      for (float& v : w) v = uni(rng);
      float max = 0;
      for (int j = 0; j < 32; ++j) max = std::fabs(x[j]) > std::fabs(max) ? x[j] : max;
      float id[16];
      id[0] = -kValuesIQ4NL[0] / max;
      for (int c = 1; c < 16; ++c) id[c] = (c - 8 + kValuesIQ4NL[0]) / max;
      float a_qx[16], a_q2[16], b_qx[16], b_q2[16];
      ref.iq4_trials(x.data(), w, id, a_qx, a_q2);
      k.iq4_trials(x.data(), w, id, b_qx, b_q2);
      ASSERT_EQ(std::memcmp(a_qx, b_qx, sizeof(a_qx)), 0) << rep;
      ASSERT_EQ(std::memcmp(a_q2, b_q2, sizeof(a_q2)), 0) << rep;
      uint8_t la[256], lb[256];
      ref.iq4_indices(x.data(), 256, id[rep % 16], la);
      k.iq4_indices(x.data(), 256, id[rep % 16], lb);
      ASSERT_EQ(std::memcmp(la, lb, sizeof(la)), 0) << rep;
    }
  }
}

TEST(IqSimdKernels, BestNeighbourMatchesGenericOnEveryLattice) {
  const iq::IqKernels& ref = iq::iq_kernels(QuantIsa::kGeneric);
  const iq::Lattice lattices[] = {iq::Lattice::kIQ2XXS, iq::Lattice::kIQ2XS,  iq::Lattice::kIQ2S,
                                  iq::Lattice::kIQ1S,   iq::Lattice::kIQ3XXS, iq::Lattice::kIQ3S};
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uni(0.f, 1.f);
  for (const QuantIsa isa : kSimdIsas) {
    if (!quant_isa_supported(isa)) continue;
    SCOPED_TRACE(quant_isa_name(isa));
    const iq::IqKernels& k = iq::iq_kernels(isa);
    for (const iq::Lattice lattice : lattices) {
      const iq::GridSearch& g = iq::grid_search(lattice);
      const uint32_t n_codes = 1u << (g.bits() * g.width());
      int tested = 0;
      for (uint32_t u = 0; u < n_codes; ++u) {
        const iq::NeighbourList list = g.neighbour_list(u);
        if (list.count == 0) continue;
        for (int rep = 0; rep < 3; ++rep) {
          float xval[8], weight[8], levels[8];
          const float scale = 0.1f + uni(rng);
          for (int i = 0; i < 8; ++i) {
            xval[i] = scale * 16 * uni(rng);
            weight[i] = rep == 2 && i == 3 ? 0.f : uni(rng) * 3;
            levels[i] = rep == 1 ? -1.125f + i : 2.f * i + 1;
          }
          const int a = ref.best_neighbour(list, g.bits(), xval, weight, scale, levels);
          const int b = k.best_neighbour(list, g.bits(), xval, weight, scale, levels);
          ASSERT_EQ(a, b) << "lattice " << static_cast<int>(lattice) << " code " << u;
          ++tested;
        }
        // Equal distances everywhere: the first entry must win.
        float zeros[8] = {};
        float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
        ASSERT_EQ(k.best_neighbour(list, g.bits(), zeros, zeros, 0.f, ones), list.index[0]);
      }
      EXPECT_GT(tested, 0);
    }
  }
}

TEST(IqSimdKernels, GridTrialProductsMatchGeneric) {
  const iq::IqKernels& ref = iq::iq_kernels(QuantIsa::kGeneric);
  const iq::Lattice lattices[] = {iq::Lattice::kIQ2XXS, iq::Lattice::kIQ2XS, iq::Lattice::kIQ2S,
                                  iq::Lattice::kIQ3XXS, iq::Lattice::kIQ3S};
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> uni(0.f, 1.f);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (const QuantIsa isa : kSimdIsas) {
    if (!quant_isa_supported(isa)) continue;
    SCOPED_TRACE(quant_isa_name(isa));
    const iq::IqKernels& k = iq::iq_kernels(isa);
    for (const iq::Lattice lattice : lattices) {
      const iq::LatticeView g = iq::grid_search(lattice).view();
      for (const int n : {16, 32}) {
        for (int rep = 0; rep < 3000; ++rep) {
          float xval[32], weight[32], waux[32];
          for (int i = 0; i < n; ++i) {
            xval[i] = std::fabs(normal(rng));
            weight[i] = rep % 11 == 0 && i % 5 == 0 ? 0.f : uni(rng) * 4;
            waux[i] = std::sqrt(weight[i]);
          }
          float max = 0;
          for (int i = 0; i < n; ++i) max = std::max(max, xval[i]);
          const float id = (2 * g.max_level + 1 + (rep % 31 - 15) * 0.2f) / max;
          int8_t la[32], lb[32];
          uint8_t oa[8], ob[8];
          float pxa[32], p2a[32], pxb[32], p2b[32];
          ref.grid_trial_products(g, n, xval, weight, waux, id, 1 / id, la, oa, pxa, p2a);
          k.grid_trial_products(g, n, xval, weight, waux, id, 1 / id, lb, ob, pxb, p2b);
          ASSERT_EQ(std::memcmp(la, lb, n), 0) << rep;
          ASSERT_EQ(std::memcmp(oa, ob, n / g.width), 0) << rep;
          ASSERT_EQ(std::memcmp(pxa, pxb, sizeof(float) * n), 0) << rep;
          ASSERT_EQ(std::memcmp(p2a, p2b, sizeof(float) * n), 0) << rep;
        }
      }
    }
  }
}

// Weight-like rows with the features that exercise the quantizers' branches: outliers, zero and
// tiny blocks, huge magnitudes, exact ties.
std::vector<float> varied_matrix(int64_t nrows, int64_t n_per_row, uint32_t seed) {
  std::vector<float> x = gauss(static_cast<size_t>(nrows * n_per_row), 0.02f, seed);
  std::mt19937 rng(seed + 1);
  std::uniform_real_distribution<float> uni(0.f, 1.f);
  for (size_t i = 0; i < x.size(); ++i) {
    if (uni(rng) < 0.003f) x[i] *= 40;
  }
  const size_t nblocks = x.size() / 32;
  for (size_t b = 0; b < nblocks; ++b) {
    const float r = uni(rng);
    float* blk = x.data() + 32 * b;
    if (r < 0.03f) {
      std::fill(blk, blk + 32, 0.f);
    } else if (r < 0.06f) {
      for (int j = 0; j < 32; ++j) blk[j] *= 1e-6f;
    } else if (r < 0.09f) {
      for (int j = 0; j < 32; ++j) blk[j] *= 1e4f;
    } else if (r < 0.12f) {
      for (int j = 0; j < 32; ++j) blk[j] = 0.01f * static_cast<float>((j % 5) - 2);
    }
  }
  return x;
}

TEST(IqSimdQuantizers, EveryTypeWritesTheGenericBytes) {
  constexpr int64_t kRows = 24;
  constexpr int64_t kCols = 1024;
  const std::vector<float> x = varied_matrix(kRows, kCols, 11);
  std::vector<float> imatrix(kCols);
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> uni(0.05f, 5.f);
  for (float& v : imatrix) v = uni(rng);
  for (const TypeTraits& tt : all_type_traits()) {
    if (tt.quantize == nullptr || !tt.is_quantized) continue;
    for (const bool with_imatrix : {false, true}) {
      if (tt.requires_imatrix && !with_imatrix) continue;
      SCOPED_TRACE(std::string(tt.name) + (with_imatrix ? " imatrix" : ""));
      const size_t bytes = quant_row_size(tt.type, kCols) * kRows;
      std::vector<uint8_t> want(bytes);
      {
        ScopedQuantIsa generic(QuantIsa::kGeneric);
        tt.quantize(x.data(), want.data(), kRows, kCols, with_imatrix ? imatrix.data() : nullptr);
      }
      for (const QuantIsa isa : kSimdIsas) {
        if (!quant_isa_supported(isa)) continue;
        SCOPED_TRACE(quant_isa_name(isa));
        ScopedQuantIsa scoped(isa);
        std::vector<uint8_t> got(bytes);
        tt.quantize(x.data(), got.data(), kRows, kCols, with_imatrix ? imatrix.data() : nullptr);
        size_t first = 0;
        while (first < bytes && got[first] == want[first]) ++first;
        EXPECT_EQ(first, bytes) << "first difference at byte " << first;
      }
    }
  }
}

TEST(QuantIsa, GenericIsAlwaysSupportedAndSelectable) {
  EXPECT_TRUE(quant_isa_supported(QuantIsa::kGeneric));
  ScopedQuantIsa scoped(QuantIsa::kGeneric);
  EXPECT_EQ(quant_isa(), QuantIsa::kGeneric);
}

}  // namespace
}  // namespace insitu
