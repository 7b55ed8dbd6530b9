// quantize_tensor: argument validation and thread-count independence for every quantizable type.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "insitu/error.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

std::vector<float> weights(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.f, 0.02f);
  std::uniform_real_distribution<float> uni(0.f, 1.f);
  std::vector<float> x(n);
  for (float& v : x) v = gauss(rng) * (uni(rng) < 0.002f ? 40.f : 1.f);
  return x;
}

// Every type with a quantizer, from the table, so types added later are covered automatically.
std::vector<QuantType> quantizable_types() {
  std::vector<QuantType> out;
  for (const TypeTraits& t : all_type_traits()) {
    if (t.quantize != nullptr) out.push_back(t.type);
  }
  return out;
}

class ThreadCount : public ::testing::TestWithParam<QuantType> {};

// Bytes from 1, 2 and 3 pool threads equal one direct single-call quantization of the matrix.
// 300 rows of 512 span several work items, so rows are split differently for each count.
TEST_P(ThreadCount, BytesDoNotDependOnThreads) {
  const TypeTraits& tt = type_traits(GetParam());
  const int64_t n_per_row = 512;
  const int64_t nrows = 300;
  const auto x = weights(static_cast<size_t>(n_per_row * nrows), 17);
  std::vector<float> imatrix(n_per_row);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uni(0.1f, 4.f);
  for (float& v : imatrix) v = uni(rng);
  const size_t bytes = quant_row_size(tt.type, n_per_row) * nrows;
  for (const bool with_imatrix : {false, true}) {
    if (tt.requires_imatrix && !with_imatrix) continue;
    const float* im = with_imatrix ? imatrix.data() : nullptr;
    std::vector<uint8_t> want(bytes);
    ASSERT_EQ(tt.quantize(x.data(), want.data(), nrows, n_per_row, im), bytes);
    for (int threads = 1; threads <= 3; ++threads) {
      ThreadPool pool(threads);
      std::vector<uint8_t> got(bytes, 0xEE);
      ASSERT_EQ(quantize_tensor(tt.type, x.data(), got.data(), nrows, n_per_row, im, pool), bytes);
      EXPECT_TRUE(got == want) << tt.name << " with " << threads << " threads"
                               << (with_imatrix ? ", imatrix" : "");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Table, ThreadCount, ::testing::ValuesIn(quantizable_types()),
                         [](const ::testing::TestParamInfo<QuantType>& info) {
                           return quant_type_name(info.param);
                         });

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "<no InvalidArgument thrown>";
}

TEST(QuantizeTensor, RejectsRowLengthNotMultipleOfBlock) {
  ThreadPool pool(1);
  std::vector<float> x(300, 1.f);
  std::vector<uint8_t> out(4096, 0x5A);
  const std::string msg = message_of(
      [&] { quantize_tensor(QuantType::kQ4K, x.data(), out.data(), 1, 300, nullptr, pool); });
  EXPECT_NE(msg.find("q4k"), std::string::npos) << msg;
  EXPECT_NE(msg.find("300"), std::string::npos) << msg;
  EXPECT_NE(msg.find("256"), std::string::npos) << msg;
  for (uint8_t b : out) ASSERT_EQ(b, 0x5A) << "wrote output before failing";
  EXPECT_NE(message_of([&] {
              quantize_tensor(QuantType::kQ8_0, x.data(), out.data(), 1, 0, nullptr, pool);
            }).find("q8_0"),
            std::string::npos);
}

TEST(QuantizeTensor, TypesThatRequireAnImatrixRefuseWithoutOne) {
  ThreadPool pool(1);
  std::vector<float> x(256, 1.f);
  std::vector<uint8_t> out(1024);
  for (const TypeTraits& t : all_type_traits()) {
    if (!t.requires_imatrix || t.quantize == nullptr) continue;
    const std::string msg = message_of(
        [&] { quantize_tensor(t.type, x.data(), out.data(), 1, 256, nullptr, pool); });
    EXPECT_NE(msg.find(t.name), std::string::npos) << msg;
    EXPECT_NE(msg.find("imatrix"), std::string::npos) << msg;
  }
  // ggml requires one for exactly iq2_xxs, iq2_xs and iq1_s.
  for (const QuantType q : {QuantType::kIQ2_XXS, QuantType::kIQ2_XS, QuantType::kIQ1_S}) {
    EXPECT_TRUE(type_traits(q).requires_imatrix) << quant_type_name(q);
  }
  EXPECT_FALSE(type_traits(QuantType::kQ4K).requires_imatrix);
}

TEST(QuantizeTensor, NegativeRowsRejectedAndZeroRowsWriteNothing) {
  ThreadPool pool(2);
  std::vector<float> x(32, 1.f);
  std::vector<uint8_t> out(64, 0x11);
  EXPECT_THROW(quantize_tensor(QuantType::kQ8_0, x.data(), out.data(), -1, 32, nullptr, pool),
               InvalidArgument);
  EXPECT_EQ(quantize_tensor(QuantType::kQ8_0, x.data(), out.data(), 0, 32, nullptr, pool), 0u);
  for (uint8_t b : out) ASSERT_EQ(b, 0x11);
}

TEST(QuantizeTensor, MatchesTheRowFunctionForALegacyAndAKType) {
  ThreadPool pool(2);
  const auto x = weights(4 * 256, 3);
  for (const QuantType q : {QuantType::kQ4_0, QuantType::kQ6K}) {
    const TypeTraits& tt = type_traits(q);
    const size_t bytes = quant_row_size(q, 256) * 4;
    std::vector<uint8_t> a(bytes);
    std::vector<uint8_t> b(bytes);
    tt.quantize(x.data(), a.data(), 4, 256, nullptr);
    ASSERT_EQ(quantize_tensor(q, x.data(), b.data(), 4, 256, nullptr, pool), bytes);
    EXPECT_TRUE(a == b) << tt.name;
  }
}

}  // namespace
}  // namespace insitu
