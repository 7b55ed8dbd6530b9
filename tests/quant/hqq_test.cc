// HQQ: the quantizer against an independent numpy implementation of mistral.rs's algorithm
// (tests/data/reference/hqq_ref.bin from scripts/gen_hqq_reference.py), the UQFF converters and
// the dequantizer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "insitu/error.h"
#include "quant/group_affine.h"
#include "quant/hqq.h"
#include "quant/type_traits.h"
#include "test_paths.h"

namespace insitu {
namespace {

QuantType hqq_type(int bits) {
  switch (bits) {
    case 2: return QuantType::kHQQ2;
    case 3: return QuantType::kHQQ3;
    case 4: return QuantType::kHQQ4;
    default: return QuantType::kHQQ8;
  }
}

// The q values of group g of packed HQQ rows.
std::vector<uint8_t> group_q(const GroupAffineFormat& f, const uint8_t* blocks, int64_t g) {
  std::vector<uint8_t> q(kHqqGroup);
  unpack_bit_stream(blocks + g * f.block_bytes() + 8, kHqqGroup, f.bits, q.data());
  return q;
}

TEST(Hqq, TypeTableRows) {
  for (int bits : {2, 3, 4, 8}) {
    const TypeTraits& tt = type_traits(hqq_type(bits));
    EXPECT_EQ(tt.block_size, 64) << tt.name;
    EXPECT_EQ(tt.type_size, 8u + 8u * bits) << tt.name;
    EXPECT_TRUE(is_hqq_type(tt.type));
  }
  EXPECT_EQ(parse_quant_type("HQQ4"), QuantType::kHQQ4);
  EXPECT_EQ(type_traits(QuantType::kHQQ4).bits_per_weight(), 5.0);
  EXPECT_FALSE(is_hqq_type(QuantType::kAFQ4));
}

TEST(Hqq, QuantizerMatchesNumpyReference) {
  const std::string path = test::data_dir() + "/reference/hqq_ref.bin";
  std::ifstream file(path, std::ios::binary);
  ASSERT_TRUE(file) << path;
  const std::vector<uint8_t> bytes(std::istreambuf_iterator<char>(file), {});
  size_t pos = 0;
  auto read = [&](void* dst, size_t n) {
    ASSERT_LE(pos + n, bytes.size()) << "truncated";
    std::memcpy(dst, bytes.data() + pos, n);
    pos += n;
  };
  char magic[8];
  read(magic, 8);
  ASSERT_EQ(std::string(magic, 7), "HQQREF1");
  uint32_t rows, cols, n_cases;
  read(&rows, 4);
  read(&cols, 4);
  std::vector<float> x(static_cast<size_t>(rows) * cols);
  read(x.data(), x.size() * 4);
  read(&n_cases, 4);
  ASSERT_EQ(n_cases, 4u);
  const int64_t groups = static_cast<int64_t>(rows) * cols / kHqqGroup;
  for (uint32_t c = 0; c < n_cases; ++c) {
    uint32_t bits;
    read(&bits, 4);
    const QuantType type = hqq_type(static_cast<int>(bits));
    const GroupAffineFormat& f = *group_affine_format(type);
    SCOPED_TRACE(quant_type_name(type));
    std::vector<uint8_t> blocks(quant_row_size(type, cols) * rows);
    type_traits(type).quantize(x.data(), blocks.data(), rows, cols, nullptr);
    for (int64_t g = 0; g < groups; ++g) {
      float want_scale, want_zero;
      uint8_t want_q[kHqqGroup];
      read(&want_scale, 4);
      read(&want_zero, 4);
      read(want_q, kHqqGroup);
      float scale, zero;
      std::memcpy(&scale, blocks.data() + g * f.block_bytes(), 4);
      std::memcpy(&zero, blocks.data() + g * f.block_bytes() + 4, 4);
      ASSERT_EQ(scale, want_scale) << "group " << g;
      ASSERT_NEAR(zero, want_zero, 1e-5f * (1.0f + std::fabs(want_zero))) << "group " << g;
      const std::vector<uint8_t> q = group_q(f, blocks.data(), g);
      for (int j = 0; j < kHqqGroup; ++j) {
        if (q[j] == want_q[j]) continue;
        // Only a value on a rounding boundary may round differently with a zero one ulp apart.
        const float t = x[g * kHqqGroup + j] / scale + zero;
        EXPECT_LT(std::fabs(std::fabs(t - std::trunc(t)) - 0.5f), 1e-3f)
            << "group " << g << " element " << j << ": q " << int(q[j]) << " want "
            << int(want_q[j]);
      }
    }
  }
}

// Constant groups come back as the constant, zeros exactly; other values within about a step
// (the optimiser moves the zero, never the scale, so values at the edges may clip by a little).
TEST(Hqq, DequantizerRoundTrip) {
  std::mt19937 rng(9);
  std::normal_distribution<float> gauss(0.0f, 0.05f);
  for (int bits : {2, 3, 4, 8}) {
    const QuantType type = hqq_type(bits);
    const GroupAffineFormat& f = *group_affine_format(type);
    SCOPED_TRACE(quant_type_name(type));
    const int64_t n = 512;
    std::vector<float> x(n);
    for (float& v : x) v = gauss(rng);
    for (int i = 0; i < 64; ++i) x[i] = 0.0f;
    for (int i = 64; i < 128; ++i) x[i] = -0.375f;
    std::vector<uint8_t> q(quant_row_size(type, n));
    type_traits(type).quantize(x.data(), q.data(), 1, n, nullptr);
    std::vector<float> y(n);
    type_traits(type).dequantize_row(q.data(), y.data(), n);
    for (int i = 0; i < 64; ++i) ASSERT_EQ(y[i], 0.0f);
    for (int i = 64; i < 128; ++i) ASSERT_NEAR(y[i], -0.375f, 1e-6f);
    double err = 0.0;
    for (int64_t i = 128; i < n; ++i) {
      float scale;
      std::memcpy(&scale, q.data() + (i / 64) * f.block_bytes(), 4);
      ASSERT_LE(std::fabs(y[i] - x[i]), 1.5f * scale) << "element " << i;
      err += std::fabs(y[i] - x[i]) / scale;
    }
    EXPECT_LT(err / static_cast<double>(n - 128), 0.35) << "mean error in steps";
  }
}

// mistral.rs's axis-1 tensors: the bit-packing along dim 0 of the [groups, 64] q matrix, checked
// element by element, and the exact round trip back to blocks.
TEST(Hqq, UqffTensorsPackAlongGroups) {
  std::mt19937 rng(4);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  const int64_t rows = 6, n = 256;  // 24 groups: even, a multiple of 4, padded to 30 for 3 bits
  std::vector<float> x(rows * n);
  for (float& v : x) v = gauss(rng);
  for (int bits : {2, 3, 4, 8}) {
    const QuantType type = hqq_type(bits);
    const GroupAffineFormat& f = *group_affine_format(type);
    SCOPED_TRACE(quant_type_name(type));
    std::vector<uint8_t> blocks(quant_row_size(type, n) * rows);
    type_traits(type).quantize(x.data(), blocks.data(), rows, n, nullptr);
    const HqqUqffTensors t = hqq_to_uqff(type, blocks.data(), rows, n);
    const int64_t groups = rows * n / 64;
    ASSERT_EQ(t.scales.size(), static_cast<size_t>(groups));
    const int64_t packed = bits == 3 ? 3 : groups * bits / 8;
    ASSERT_EQ(t.w_q_shape, (std::vector<int64_t>{packed, 64}));
    for (int64_t g = 0; g < groups; ++g) {
      const std::vector<uint8_t> q = group_q(f, blocks.data(), g);
      float scale;
      std::memcpy(&scale, blocks.data() + g * f.block_bytes(), 4);
      EXPECT_EQ(t.scales[g], scale);
      for (int c = 0; c < 64; ++c) {
        uint32_t v;
        if (bits == 3) {
          uint32_t word;
          std::memcpy(&word, &t.w_q[((g % packed) * 64 + c) * 4], 4);
          v = (word >> (27 - 3 * (g / packed))) & 7;
        } else {
          const int per = 8 / bits;
          const int64_t step = groups / per;
          v = (t.w_q[(g % step) * 64 + c] >> (8 - bits * (g / step + 1))) & ((1u << bits) - 1);
        }
        ASSERT_EQ(v, q[c]) << "group " << g << " column " << c;
      }
    }
    std::vector<uint8_t> back(blocks.size(), 0xEE);
    hqq_from_uqff(type, t, rows, n, back.data());
    EXPECT_TRUE(back == blocks);
  }
  // 4-bit packing halves the group count; an odd count cannot be split.
  std::vector<uint8_t> one(quant_row_size(QuantType::kHQQ4, 64));
  EXPECT_THROW(hqq_to_uqff(QuantType::kHQQ4, one.data(), 1, 64), InvalidArgument);
  HqqUqffTensors bad = hqq_to_uqff(QuantType::kHQQ8, one.data(), 1, 64);
  bad.zeros.pop_back();
  EXPECT_THROW(hqq_from_uqff(QuantType::kHQQ8, bad, 1, 64, one.data()), InvalidArgument);
}

}  // namespace
}  // namespace insitu
