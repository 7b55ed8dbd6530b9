// AFQ: bytes identical to MLX's mx.quantize (tests/data/reference/afq_mlx.bin, written by
// scripts/gen_afq_reference.py with MLX itself), the MLX layout converters, and the dequantizer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "insitu/error.h"
#include "quant/afq.h"
#include "quant/float_convert.h"
#include "quant/group_affine.h"
#include "quant/type_traits.h"
#include "test_paths.h"

namespace insitu {
namespace {

struct MlxCase {
  int bits = 0;
  int group = 0;
  std::vector<uint8_t> w_q;
  std::vector<uint16_t> scales, biases;
};

struct MlxReference {
  int64_t rows = 0, cols = 0;
  std::vector<float> input;  // the bf16 matrix, widened
  std::vector<MlxCase> cases;
};

class Reader {
 public:
  explicit Reader(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
  template <class T>
  T get() {
    T v;
    read(&v, sizeof(T));
    return v;
  }
  template <class T>
  std::vector<T> array(size_t n) {
    std::vector<T> v(n);
    read(v.data(), n * sizeof(T));
    return v;
  }

 private:
  void read(void* dst, size_t n) {
    if (pos_ + n > bytes_.size()) throw std::runtime_error("afq_mlx.bin: truncated");
    std::memcpy(dst, bytes_.data() + pos_, n);
    pos_ += n;
  }
  std::vector<uint8_t> bytes_;
  size_t pos_ = 0;
};

MlxReference load_reference() {
  const std::string path = test::data_dir() + "/reference/afq_mlx.bin";
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  Reader r(std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {}));
  const auto magic = r.array<char>(8);
  if (std::string(magic.data(), 7) != "AFQREF1") throw std::runtime_error(path + ": bad magic");
  MlxReference ref;
  ref.rows = r.get<uint32_t>();
  ref.cols = r.get<uint32_t>();
  const size_t n = static_cast<size_t>(ref.rows * ref.cols);
  for (uint16_t h : r.array<uint16_t>(n)) ref.input.push_back(bf16_to_fp32(h));
  const uint32_t n_cases = r.get<uint32_t>();
  for (uint32_t c = 0; c < n_cases; ++c) {
    MlxCase mc;
    mc.bits = static_cast<int>(r.get<uint32_t>());
    mc.group = static_cast<int>(r.get<uint32_t>());
    mc.w_q = r.array<uint8_t>(n * mc.bits / 8);
    mc.scales = r.array<uint16_t>(n / mc.group);
    mc.biases = r.array<uint16_t>(n / mc.group);
    ref.cases.push_back(std::move(mc));
  }
  return ref;
}

TEST(Afq, TypeTableRowsAndNames) {
  for (const GroupAffineFormat& f : group_affine_formats()) {
    if (f.header != AffineHeader::kAfq) continue;
    const TypeTraits& tt = type_traits(f.type);
    EXPECT_EQ(tt.block_size, f.group) << tt.name;
    EXPECT_EQ(tt.type_size, 4 + static_cast<size_t>(f.group * f.bits / 8)) << tt.name;
    EXPECT_EQ(tt.vec_dot_type, QuantType::kQ8_1) << tt.name;
    EXPECT_EQ(afq_type(f.bits, f.group), f.type) << tt.name;
    EXPECT_TRUE(is_afq_type(f.type));
  }
  EXPECT_EQ(parse_quant_type("AFQ4"), QuantType::kAFQ4);
  EXPECT_EQ(parse_quant_type("afq8_g128"), QuantType::kAFQ8_G128);
  EXPECT_EQ(quant_type_name(QuantType::kAFQ3_G32), "afq3_g32");
  EXPECT_EQ(type_traits(QuantType::kAFQ4).bits_per_weight(), 4.5);
  EXPECT_FALSE(afq_type(5, 64).has_value());
  EXPECT_FALSE(is_afq_type(QuantType::kHQQ4));
}

// Every bit width and group size against MLX's own output for the same bf16 input: constant and
// all-zero groups, one-signed groups, ranges under MLX's 1e-7 scale floor, outliers, halfway cases.
TEST(Afq, QuantizerWritesMlxBytes) {
  const MlxReference ref = load_reference();
  ASSERT_EQ(ref.cases.size(), 15u);
  for (const MlxCase& c : ref.cases) {
    const auto type = afq_type(c.bits, c.group);
    ASSERT_TRUE(type.has_value()) << c.bits << " bits, group " << c.group;
    const TypeTraits& tt = type_traits(*type);
    SCOPED_TRACE(tt.name);
    std::vector<uint8_t> blocks(quant_row_size(*type, ref.cols) * ref.rows);
    ASSERT_EQ(tt.quantize(ref.input.data(), blocks.data(), ref.rows, ref.cols, nullptr),
              blocks.size());
    const AfqMlxTensors got = afq_to_mlx(*type, blocks.data(), ref.rows, ref.cols);
    ASSERT_EQ(got.w_q.size() * 4, c.w_q.size());
    const auto* wq = reinterpret_cast<const uint8_t*>(got.w_q.data());
    for (size_t i = 0; i < c.w_q.size(); ++i) {
      ASSERT_EQ(wq[i], c.w_q[i]) << "w_q byte " << i << " (row "
                                 << i / (ref.cols * c.bits / 8) << ")";
    }
    for (size_t g = 0; g < c.scales.size(); ++g) {
      ASSERT_EQ(got.scales[g], c.scales[g]) << "scale of group " << g;
      ASSERT_EQ(got.biases[g], c.biases[g]) << "bias of group " << g;
    }
    // And back: MLX's arrays rebuild exactly the blocks.
    AfqMlxTensors mlx;
    mlx.bits = c.bits;
    mlx.group = c.group;
    mlx.w_q.resize(c.w_q.size() / 4);
    std::memcpy(mlx.w_q.data(), c.w_q.data(), c.w_q.size());
    mlx.scales = c.scales;
    mlx.biases = c.biases;
    std::vector<uint8_t> rebuilt(blocks.size(), 0xEE);
    afq_from_mlx(*type, mlx, ref.rows, ref.cols, rebuilt.data());
    EXPECT_TRUE(rebuilt == blocks);
  }
}

TEST(Afq, ConvertersRejectMismatchedArrays) {
  AfqMlxTensors mlx;
  mlx.bits = 4;
  mlx.group = 64;
  mlx.w_q.resize(8);
  mlx.scales.resize(1);
  mlx.biases.resize(1);
  std::vector<uint8_t> out(36);
  afq_from_mlx(QuantType::kAFQ4, mlx, 1, 64, out.data());  // sizes fit
  mlx.w_q.resize(7);
  EXPECT_THROW(afq_from_mlx(QuantType::kAFQ4, mlx, 1, 64, out.data()), InvalidArgument);
  mlx.w_q.resize(8);
  EXPECT_THROW(afq_from_mlx(QuantType::kAFQ4_G32, mlx, 1, 64, out.data()), InvalidArgument);
  EXPECT_THROW(afq_to_mlx(QuantType::kAFQ4, out.data(), 1, 48), InvalidArgument);
  EXPECT_THROW(afq_to_mlx(QuantType::kHQQ4, out.data(), 1, 64), InvalidArgument);
}

// w = q * scale + bias on the stored bf16 values; a group on an exact grid comes back exactly,
// zeros stay zero, and any value is within a step plus the bf16 rounding of scale and bias.
TEST(Afq, DequantizerRoundTrip) {
  std::mt19937 rng(3);
  std::normal_distribution<float> gauss(0.0f, 0.05f);
  for (const GroupAffineFormat& f : group_affine_formats()) {
    if (f.header != AffineHeader::kAfq) continue;
    const TypeTraits& tt = type_traits(f.type);
    SCOPED_TRACE(tt.name);
    const int64_t n = 512;
    std::vector<float> x(n);
    for (float& v : x) v = bf16_to_fp32(fp32_to_bf16(gauss(rng)));
    const float bins = static_cast<float>((1 << f.bits) - 1);
    // a grid of integers spanning 0 .. bins: step -1 from the edge bins, exact in bf16
    for (int64_t i = 0; i < f.group; ++i) x[i] = static_cast<float>((i * 7) % (1 << f.bits));
    x[0] = 0.0f;
    x[f.group - 1] = bins;
    for (int64_t i = f.group; i < 2 * f.group; ++i) x[i] = 0.0f;
    std::vector<uint8_t> q(quant_row_size(f.type, n));
    tt.quantize(x.data(), q.data(), 1, n, nullptr);
    std::vector<float> y(n);
    tt.dequantize_row(q.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      if (i < 2 * f.group) {
        ASSERT_EQ(y[i], x[i]) << "element " << i;
        continue;
      }
      const uint8_t* blk = q.data() + (i / f.group) * f.block_bytes();
      uint16_t s16, b16;
      std::memcpy(&s16, blk, 2);
      std::memcpy(&b16, blk + 2, 2);
      const float s = std::fabs(bf16_to_fp32(s16)), b = std::fabs(bf16_to_fp32(b16));
      // MLX makes the larger edge exact; rounding the step to fit it can leave the far edge up to
      // one step outside the grid (clipped), so the bound is one step, not half of one.
      const float bound = s + (bins * s + b) * 0x1p-8f + 1e-7f;
      ASSERT_LE(std::fabs(y[i] - x[i]), bound) << "element " << i;
    }
  }
}

}  // namespace
}  // namespace insitu
