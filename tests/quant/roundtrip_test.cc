// Properties of the legacy and K-quant formats beyond the golden bytes: block geometry as ggml
// defines it, quantize -> dequantize error within a bound derived from each block's step size,
// and exact round trips of zeros and of values that lie on a type's grid.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "insitu/error.h"
#include "quant/blocks.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

// ggml's block geometry (ggml-common.h static_asserts, ../shared/reference/ggml-formats.md §1).
struct Geometry {
  QuantType type;
  int64_t block;
  size_t bytes;
};
constexpr Geometry kGeometry[] = {
    {QuantType::kQ4_0, 32, 18},  {QuantType::kQ4_1, 32, 20},  {QuantType::kQ5_0, 32, 22},
    {QuantType::kQ5_1, 32, 24},  {QuantType::kQ8_0, 32, 34},  {QuantType::kQ8_1, 32, 36},
    {QuantType::kQ2K, 256, 84},  {QuantType::kQ3K, 256, 110}, {QuantType::kQ4K, 256, 144},
    {QuantType::kQ5K, 256, 176}, {QuantType::kQ6K, 256, 210}, {QuantType::kQ8K, 256, 292},
};

TEST(QuantGeometry, BlockSizesMatchGgml) {
  for (const Geometry& g : kGeometry) {
    const TypeTraits& tt = type_traits(g.type);
    EXPECT_EQ(tt.block_size, g.block) << tt.name;
    EXPECT_EQ(tt.type_size, g.bytes) << tt.name;
    EXPECT_EQ(quant_row_size(g.type, 4 * g.block), 4 * g.bytes) << tt.name;
    EXPECT_THROW(quant_row_size(g.type, g.block + 1), InvalidArgument) << tt.name;
  }
  static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ8_1) == 36 && sizeof(BlockQ2K) == 84 &&
                sizeof(BlockQ3K) == 110 && sizeof(BlockQ4K) == 144 && sizeof(BlockQ5K) == 176 &&
                sizeof(BlockQ6K) == 210 && sizeof(BlockQ8K) == 292);
  EXPECT_DOUBLE_EQ(type_traits(QuantType::kQ4K).bits_per_weight(), 4.5);
  EXPECT_DOUBLE_EQ(type_traits(QuantType::kQ6K).bits_per_weight(), 6.5625);
  EXPECT_DOUBLE_EQ(type_traits(QuantType::kQ2K).bits_per_weight(), 2.625);
}

struct Family {
  QuantType type;
  int bits;  // bits per quant: a block spans 2^bits - 1 steps
};
constexpr Family kFamilies[] = {
    {QuantType::kQ4_0, 4}, {QuantType::kQ4_1, 4}, {QuantType::kQ5_0, 5}, {QuantType::kQ5_1, 5},
    {QuantType::kQ8_0, 8}, {QuantType::kQ8_1, 8}, {QuantType::kQ2K, 2},  {QuantType::kQ3K, 3},
    {QuantType::kQ4K, 4},  {QuantType::kQ5K, 5},  {QuantType::kQ6K, 6},  {QuantType::kQ8K, 8},
};

class RoundTrip : public ::testing::TestWithParam<Family> {
 protected:
  const TypeTraits& tt() const { return type_traits(GetParam().type); }

  std::vector<float> round_trip(const std::vector<float>& x, int64_t nrows,
                                const float* imatrix) const {
    const int64_t n = static_cast<int64_t>(x.size()) / nrows;
    const size_t row_bytes = quant_row_size(tt().type, n);
    std::vector<uint8_t> q(row_bytes * static_cast<size_t>(nrows));
    EXPECT_NE(tt().quantize, nullptr);
    EXPECT_NE(tt().dequantize_row, nullptr);
    if (tt().quantize == nullptr || tt().dequantize_row == nullptr) return {};
    EXPECT_EQ(tt().quantize(x.data(), q.data(), nrows, n, imatrix), q.size());
    std::vector<float> y(x.size());
    for (int64_t r = 0; r < nrows; ++r) {
      tt().dequantize_row(q.data() + r * row_bytes, y.data() + r * n, n);
    }
    return y;
  }

  // The largest |x - y| in units of each block's step, step = (max(x, 0) - min(x, 0)) /
  // (2^bits - 1): the spacing of a grid spanning the block's range (including 0, as every
  // format can represent 0 up to rounding).
  double worst_steps(const std::vector<float>& x, const std::vector<float>& y) const {
    double worst = 0;
    const int64_t bs = tt().block_size;
    for (size_t b = 0; b < x.size(); b += static_cast<size_t>(bs)) {
      float lo = 0;
      float hi = 0;
      for (int64_t i = 0; i < bs; ++i) {
        lo = std::min(lo, x[b + i]);
        hi = std::max(hi, x[b + i]);
      }
      const double step = (static_cast<double>(hi) - lo) / ((1 << GetParam().bits) - 1);
      for (int64_t i = 0; i < bs; ++i) {
        const double err = std::fabs(static_cast<double>(x[b + i]) - y[b + i]);
        worst = std::max(worst, step > 0 ? err / step : err);
      }
    }
    return worst;
  }
};

std::vector<float> sample(int kind, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.f, 1.f);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  std::vector<float> x(n);
  for (float& v : x) {
    switch (kind) {
      case 0: v = 0.02f * gauss(rng); break;                            // weight-like
      case 1: v = uni(rng) + 0.7f; break;                               // mostly positive
      default: v = gauss(rng) * (uni(rng) > 0.99f ? 40.f : 1.f); break;  // outliers
    }
  }
  return x;
}

// The reference (no-imatrix) quantizers choose scales from each block's extremes and round to
// the nearest level: half a step, the clamped extreme of the symmetric types (one step of their
// coarser grid, below 0.94 of ours) and the fp16 rounding of the stored scales stay within 1.25.
TEST_P(RoundTrip, ReferenceErrorWithinStepBound) {
  for (int kind = 0; kind < 3; ++kind) {
    const auto x = sample(kind, 16 * 1024, 7 + kind);
    const auto y = round_trip(x, 16, nullptr);
    ASSERT_EQ(y.size(), x.size());
    EXPECT_LE(worst_steps(x, y), 1.25) << tt().name << " distribution " << kind;
  }
}

// With an imatrix the search minimises the importance-weighted error instead: over a matrix it
// must do about as well on that metric as the reference path, or better (q8_0, q8_1 and q8_K
// ignore the imatrix, so they tie). "About": ggml's q3_K imatrix path has no coordinate descent
// while its reference path does, and on heavy-tailed data it loses by ~5%; the bytes are ggml's
// (see golden_test.cc), so the tolerance is 10%. It may trade worst-case error on unimportant columns (q6_K even drops
// ggml's sigma2 term), so the per-element bound is a loose one that still catches misplaced or
// garbage quants.
TEST_P(RoundTrip, ImatrixLowersWeightedError) {
  std::mt19937 rng(3);
  std::normal_distribution<float> gauss(0.f, 1.f);
  const int64_t n = 4096;
  std::vector<float> imatrix(n);
  for (float& v : imatrix) v = std::exp(gauss(rng));
  for (int kind = 0; kind < 3; ++kind) {
    const auto x = sample(kind, 4 * n, 11 + kind);
    const auto y_imat = round_trip(x, 4, imatrix.data());
    const auto y_ref = round_trip(x, 4, nullptr);
    ASSERT_EQ(y_imat.size(), x.size());
    ASSERT_EQ(y_ref.size(), x.size());
    double e_imat = 0;
    double e_ref = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double w = imatrix[i % n];
      e_imat += w * (x[i] - y_imat[i]) * (x[i] - y_imat[i]);
      e_ref += w * (x[i] - y_ref[i]) * (x[i] - y_ref[i]);
    }
    EXPECT_LE(e_imat, e_ref * 1.10) << tt().name << " distribution " << kind;
    EXPECT_LE(worst_steps(x, y_imat), 8.0) << tt().name << " distribution " << kind;
  }
}

TEST_P(RoundTrip, ZerosComeBackExactly) {
  const std::vector<float> x(2 * 512, 0.0f);
  std::vector<float> imatrix(512, 1.0f);
  const float* const imatrices[] = {nullptr, imatrix.data()};
  for (const float* im : imatrices) {
    const auto y = round_trip(x, 2, im);
    ASSERT_EQ(y.size(), x.size());
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], 0.0f) << tt().name << " at " << i;
  }
}

// A row that is all zero except for some blocks must keep the zero blocks exactly zero.
TEST_P(RoundTrip, ZeroBlocksNextToLargeOnesStayZero) {
  std::vector<float> x(1024, 0.0f);
  const auto big = sample(2, 256, 5);
  std::copy(big.begin(), big.end(), x.begin() + 512);
  const auto y = round_trip(x, 1, nullptr);
  ASSERT_EQ(y.size(), x.size());
  for (size_t i = 0; i < 512; ++i) ASSERT_EQ(y[i], 0.0f) << tt().name << " at " << i;
}

INSTANTIATE_TEST_SUITE_P(GgmlFormats, RoundTrip, ::testing::ValuesIn(kFamilies),
                         [](const ::testing::TestParamInfo<Family>& info) {
                           return quant_type_name(info.param.type);
                         });

// Values on a type's grid come back bit for bit. Each block is built so that the reference
// algorithm's chosen scale is exactly representable in fp16 and every level appears, so the
// only possible answer is the input.
std::vector<float> grid_values(QuantType type, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> x(512);
  auto fill = [&](int64_t block, int lo, int hi, float scale, float offset) {
    std::uniform_int_distribution<int> level(lo, hi);
    for (size_t b = 0; b < x.size(); b += static_cast<size_t>(block)) {
      for (int64_t i = 0; i < block; ++i) x[b + i] = offset + scale * level(rng);
      // Pin both extremes so the block's range is exactly [lo, hi] levels.
      x[b] = offset + scale * lo;
      x[b + 1] = offset + scale * hi;
    }
  };
  switch (type) {
    case QuantType::kQ4_0: fill(32, -8, 7, 0.25f, 0); break;       // d = max / -8
    case QuantType::kQ5_0: fill(32, -16, 15, 0.125f, 0); break;    // d = max / -16
    case QuantType::kQ4_1: fill(32, 0, 15, 0.5f, -2.0f); break;    // d = (max - min) / 15
    case QuantType::kQ5_1: fill(32, 0, 31, 0.25f, -4.0f); break;   // d = (max - min) / 31
    case QuantType::kQ8_0:
    case QuantType::kQ8_1: fill(32, -127, 127, 0.5f, 0); break;    // d = amax / 127
    case QuantType::kQ8K: fill(256, -127, 127, 0.25f, 0); break;  // d = max / -127
    // K-quants: every sub-block spans the full level range with the same scale s, chosen so the
    // super-block scale s / 15 (q2_K), -s / 32 (q3_K), s / 63 (q4_K, q5_K), -s / 128 (q6_K) is
    // a power of two.
    case QuantType::kQ2K: fill(16, 0, 3, 15.f / 16, 0); break;
    case QuantType::kQ3K: fill(16, -4, 3, 0.5f, 0); break;
    case QuantType::kQ4K: fill(32, 0, 15, 63.f / 64, 0); break;
    case QuantType::kQ5K: fill(32, 0, 31, 63.f / 128, 0); break;
    case QuantType::kQ6K: fill(16, -32, 31, 0.25f, 0); break;
    default: ADD_FAILURE() << "no grid for " << quant_type_name(type);
  }
  return x;
}

TEST_P(RoundTrip, GridValuesComeBackExactly) {
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    const auto x = grid_values(GetParam().type, seed);
    const auto y = round_trip(x, 1, nullptr);
    ASSERT_EQ(y.size(), x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(y[i], x[i]) << tt().name << " element " << i << " seed " << seed;
    }
  }
}

}  // namespace
}  // namespace insitu

namespace insitu {
namespace {

// ggml's references keep the FIRST extreme they meet; the vectorised block reductions must too.
// q4_0: d = max / -8 takes its sign from the first element of largest magnitude.
TEST(LegacyTies, Q4_0ScaleSignFollowsFirstLargestMagnitude) {
  for (const int first : {3, 20}) {
    std::vector<float> x(32, 0.5f);
    x[first] = -2.0f;
    x[first == 3 ? 20 : 3] = 2.0f;
    BlockQ4_0 b{};
    type_traits(QuantType::kQ4_0).quantize(x.data(), &b, 1, 32, nullptr);
    // -2 at index 3 comes first -> max = -2 -> d = +0.25 (0x3400); otherwise +2 at index 3
    // comes first -> d = -0.25 (0xB400).
    EXPECT_EQ(b.d, first == 3 ? 0x3400 : 0xB400) << "first " << first;
  }
}

// q4_1 stores m = min as fp16, so the sign of a zero minimum is visible: ggml keeps the first zero.
TEST(LegacyTies, Q4_1KeepsTheSignOfTheFirstZeroMinimum) {
  for (const bool negative_first : {false, true}) {
    std::vector<float> x(32, 1.0f);
    x[5] = negative_first ? -0.0f : 0.0f;
    x[17] = negative_first ? 0.0f : -0.0f;
    BlockQ4_1 b{};
    type_traits(QuantType::kQ4_1).quantize(x.data(), &b, 1, 32, nullptr);
    EXPECT_EQ(b.m, negative_first ? 0x8000 : 0x0000);
  }
}

}  // namespace
}  // namespace insitu
