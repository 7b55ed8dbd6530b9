// HQQ's SIMD paths against the generic path: the optimiser (quant/hqq_simd.h) float for float and
// the quantizers byte for byte, on inputs larger and more varied than the numpy reference's
// (hqq_test.cc pins the generic path to that). Also the accuracy of the log / exp they share.
// Each ISA the machine supports is tested; the others are reported as skipped.
#include "quant/hqq_simd.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "quant/hqq.h"
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

// Distance in floats between a and b (same sign assumed).
int64_t ulps(float a, float b) {
  return std::abs(static_cast<int64_t>(std::bit_cast<int32_t>(a)) -
                  static_cast<int64_t>(std::bit_cast<int32_t>(b)));
}

// Weight-like groups plus the awkward ones: constant, zero, tiny (subnormal), huge, values on
// rounding boundaries, a single outlier; `groups` of 64.
std::vector<float> hqq_inputs(int64_t groups, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 0.02f);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(groups * kHqqGroup));
  for (float& v : x) v = gauss(rng) * (uni(rng) < 0.002f ? 40.0f : 1.0f);
  for (int64_t g = 0; g < groups; ++g) {
    float* w = x.data() + g * kHqqGroup;
    switch (g % 23) {
      case 1:
        for (int j = 0; j < kHqqGroup; ++j) w[j] = 0.125f;
        break;
      case 2:
        for (int j = 0; j < kHqqGroup; ++j) w[j] = 0.0f;
        break;
      case 3:
        for (int j = 0; j < kHqqGroup; ++j) w[j] *= 1e-40f;  // subnormal
        break;
      case 4:
        for (int j = 0; j < kHqqGroup; ++j) w[j] *= 1e30f;
        break;
      case 5:
        for (int j = 0; j < kHqqGroup; ++j) w[j] = static_cast<float>(j % 16) * 0.5f;
        break;
      case 6:
        for (int j = 0; j < kHqqGroup; ++j) w[j] = 0.001f * static_cast<float>(j % 3);
        w[17] = 3.0f;
        break;
      case 7:
        for (int j = 0; j < kHqqGroup; ++j) w[j] = -std::fabs(w[j]) - 1.0f;
        break;
      default:
        break;
    }
  }
  return x;
}

TEST(HqqMath, LogWithinOneUlpOfDouble) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<uint32_t> bits(1, 0x7f7fffffu);  // every positive finite float
  std::vector<float> xs = {1.0f,
                           2.0f,
                           0.5f,
                           0.70710678f,
                           1.41421356f,
                           std::numeric_limits<float>::min(),
                           std::numeric_limits<float>::denorm_min(),
                           std::numeric_limits<float>::max()};
  for (int i = 0; i < 200000; ++i) xs.push_back(std::bit_cast<float>(bits(rng)));
  for (int i = 0; i < 1000; ++i) xs.push_back(std::nextafter(1.0f, 0.0f) + i * 1e-7f);
  int64_t inexact = 0;
  for (const float x : xs) {
    const float want = static_cast<float>(std::log(static_cast<double>(x)));
    const float got = hqq::hqq_log(x);
    ASSERT_LE(ulps(got, want), 1) << x;
    inexact += got != want;
  }
  // Rounded from double precision: all but a rare midpoint case agree with the rounded log.
  EXPECT_LE(inexact, 2) << "of " << xs.size();
}

TEST(HqqMath, ExpWithinOneUlpOfDouble) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> range(-110.0f, 95.0f);
  std::vector<float> ys = {0.0f, -0.0f, 1.0f, -1.0f, 88.0f, 88.8f, -87.0f, -103.0f, -104.0f};
  for (int i = 0; i < 200000; ++i) ys.push_back(range(rng));
  int64_t inexact = 0;
  for (const float y : ys) {
    const float want = static_cast<float>(std::exp(static_cast<double>(y)));
    const float got = hqq::hqq_exp(y);
    ASSERT_LE(ulps(got, want), 1) << y;
    inexact += got != want;
  }
  EXPECT_LE(inexact, 2) << "of " << ys.size();
  EXPECT_EQ(hqq::hqq_exp(std::numeric_limits<float>::infinity()),
            std::numeric_limits<float>::infinity());
  EXPECT_EQ(hqq::hqq_exp(-std::numeric_limits<float>::infinity()), 0.0f);
}

// Below hqq_shrink_zero_below the shrink operator computed in full is 0 (so skipping it changes
// nothing), for every beta the optimiser uses; a little above the exact crossing it is not.
TEST(HqqMath, ShrinkIsZeroBelowTheSkipBound) {
  double beta = hqq::kBeta;
  for (int it = 0; it < kHqqOptSteps; ++it, beta *= hqq::kKappa) {
    const float ib = static_cast<float>(1.0 / beta);
    const float bound = hqq::hqq_shrink_zero_below(ib);
    const auto r = [&](float ax) {
      return ax - ib * hqq::hqq_exp(hqq::hqq_log(ax) * hqq::kLpNormM1);
    };
    std::vector<float> xs = {0.0f, std::numeric_limits<float>::denorm_min(), 1e-30f};
    float x = bound;
    for (int i = 0; i < 20000; ++i) xs.push_back(x = std::nextafter(x, 0.0f));
    for (float v = bound; v > 1e-38f; v *= 0.999f) xs.push_back(v * 0.9999f);
    for (const float ax : xs) {
      ASSERT_LT(ax, bound);
      ASSERT_FALSE(r(ax) > 0.0f) << "beta " << beta << " |x| " << ax;
    }
    EXPECT_GT(r(bound / 0.99f * 1.001f), 0.0f) << "beta " << beta;
  }
}

// The optimiser's inverse scales, zeros and levels, float for float, for group counts around the
// lane widths (tails included).
TEST(HqqSimd, OptimizerMatchesGeneric) {
  const std::vector<float> x = hqq_inputs(301, 11);
  const hqq::HqqKernels& generic = hqq::hqq_kernels(QuantIsa::kGeneric);
  for (const QuantIsa isa : kSimdIsas) {
    if (!quant_isa_supported(isa)) {
      std::printf("[  SKIPPED ] %s: not supported here\n", quant_isa_name(isa));
      continue;
    }
    const hqq::HqqKernels& simd = hqq::hqq_kernels(isa);
    for (const float max_v : {3.0f, 7.0f, 15.0f, 255.0f}) {
      for (const int64_t count : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{15}, int64_t{16},
                                  int64_t{17}, int64_t{40}, int64_t{301}}) {
        std::vector<float> s0(count), z0(count), s1(count), z1(count);
        std::vector<uint8_t> q0(count * kHqqGroup), q1(count * kHqqGroup, 0xEE);
        generic.optimize(x.data(), count, max_v, s0.data(), z0.data(), q0.data());
        simd.optimize(x.data(), count, max_v, s1.data(), z1.data(), q1.data());
        ASSERT_TRUE(q1 == q0) << quant_isa_name(isa) << " max_v " << max_v << " count " << count;
        for (int64_t g = 0; g < count; ++g) {
          ASSERT_EQ(std::bit_cast<uint32_t>(s1[g]), std::bit_cast<uint32_t>(s0[g]))
              << quant_isa_name(isa) << " max_v " << max_v << " group " << g;
          ASSERT_EQ(std::bit_cast<uint32_t>(z1[g]), std::bit_cast<uint32_t>(z0[g]))
              << quant_isa_name(isa) << " max_v " << max_v << " group " << g;
        }
      }
    }
  }
}

// The quantizers as the type table runs them, byte for byte, generic against each SIMD path.
TEST(HqqSimd, QuantizersByteIdenticalAcrossIsas) {
  const int64_t rows = 37, n = 512;  // 296 groups: not a multiple of 16
  const std::vector<float> x = hqq_inputs(rows * n / kHqqGroup, 21);
  for (const QuantType type :
       {QuantType::kHQQ2, QuantType::kHQQ3, QuantType::kHQQ4, QuantType::kHQQ8}) {
    const TypeTraits& tt = type_traits(type);
    std::vector<uint8_t> want(quant_row_size(type, n) * rows);
    {
      ScopedQuantIsa scoped(QuantIsa::kGeneric);
      tt.quantize(x.data(), want.data(), rows, n, nullptr);
    }
    for (const QuantIsa isa : kSimdIsas) {
      if (!quant_isa_supported(isa)) continue;
      ScopedQuantIsa scoped(isa);
      std::vector<uint8_t> got(want.size(), 0xEE);
      tt.quantize(x.data(), got.data(), rows, n, nullptr);
      // One row at a time too: a group's bytes do not depend on its neighbours.
      std::vector<uint8_t> by_row(want.size(), 0xEE);
      for (int64_t r = 0; r < rows; ++r) {
        tt.quantize(x.data() + r * n, by_row.data() + r * quant_row_size(type, n), 1, n, nullptr);
      }
      EXPECT_TRUE(got == want) << tt.name << " " << quant_isa_name(isa);
      EXPECT_TRUE(by_row == want) << tt.name << " " << quant_isa_name(isa) << " row by row";
    }
  }
}

}  // namespace
}  // namespace insitu
