// In-situ quantization to the 8-bit float formats (fp8, fp8_b128, f8q8): mistral.rs's promotion
// and fallback rules, whole-tensor sizes with the scale grid, bytes equal to the quantizer on the
// dequantized source for any thread count, and a model that still predicts like its source.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "model/isq.h"
#include "model/model.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"
#include "isq_load.h"
#include "test_paths.h"
#include "util/thread_pool.h"

namespace insitu {
namespace {

using Q = QuantType;

TEST(IsqFp8Rules, PromotionLeavesThemAndRowsFallBack) {
  for (Q t : {Q::kFP8, Q::kFP8_B128, Q::kF8Q8}) EXPECT_EQ(isq_promoted_type(t), t);
  EXPECT_EQ(isq_row_fallback(Q::kFP8, 100), Q::kFP8);  // one byte an element: any row fits
  EXPECT_EQ(isq_row_fallback(Q::kFP8_B128, 100), Q::kFP8_B128);
  EXPECT_EQ(isq_row_fallback(Q::kF8Q8, 576), Q::kF8Q8);
  EXPECT_EQ(isq_row_fallback(Q::kF8Q8, 100), Q::kF16);
  EXPECT_EQ(parse_isq_type("fp8"), Q::kFP8);
  EXPECT_EQ(parse_isq_type("FP8_B128"), Q::kFP8_B128);
  EXPECT_EQ(parse_isq_type("F8Q8"), Q::kF8Q8);
}

class IsqFp8Load : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = test::smollm2_path();
    if (!std::filesystem::exists(path_)) GTEST_SKIP() << "model not fetched: " << path_;
  }
  std::shared_ptr<const Model> load(std::optional<Q> type, int threads) {
    return test::load_isq(path_, type, threads);
  }
  std::string path_;
};

TEST_F(IsqFp8Load, BytesAreTheTensorQuantizerOnTheDequantizedSource) {
  const auto src = load(std::nullopt, 2);
  ThreadPool pool(2);
  for (Q type : {Q::kFP8, Q::kFP8_B128, Q::kF8Q8}) {
    SCOPED_TRACE(quant_type_name(type));
    const auto one = load(type, 1);
    const auto two = load(type, 2);
    for (const char* name : {"blk.3.attn_k.weight", "blk.7.ffn_down.weight", "token_embd.weight"}) {
      const Weight& s = *src->find_weight(name);
      const Weight& a = *one->find_weight(name);
      const Weight& b = *two->find_weight(name);
      ASSERT_EQ(a.type, type) << name;  // the embeddings are not promoted (mistral.rs)
      const int64_t n_in = s.ne[0], rows = s.ne[1];
      ASSERT_EQ(a.nbytes, quant_tensor_size(type, rows, n_in)) << name;
      ASSERT_EQ(a.nbytes, b.nbytes);
      EXPECT_EQ(0, std::memcmp(a.data, b.data, a.nbytes)) << name;
      std::vector<float> f(static_cast<size_t>(n_in * rows));
      dequantize_rows(s.type, s.data, rows, n_in, 0, rows, f.data());
      std::vector<uint8_t> want(quant_tensor_size(type, rows, n_in));
      quantize_tensor(type, f.data(), want.data(), rows, n_in, nullptr, pool);
      EXPECT_EQ(0, std::memcmp(want.data(), a.data, a.nbytes)) << name;
    }
  }
}

// The converted model's logits stay close to the source's: embedding lookup (rows of
// an fp8 tensor with its grid), GEMM over the prompt and GEMV all go through the new paths.
TEST_F(IsqFp8Load, LogitsStayCloseToTheSource) {
  const std::vector<int32_t> prompt = {1, 504, 3458, 282, 4649, 314};
  ThreadPool pool(2);
  auto logits_of = [&](std::shared_ptr<const Model> m) {
    Session s(m, 64, pool);
    std::vector<float> logits;
    s.eval(prompt, true, logits);
    std::vector<float> next;
    s.eval(std::vector<int32_t>{28}, false, next);
    logits.insert(logits.end(), next.begin(), next.end());
    return logits;
  };
  const std::vector<float> ref = logits_of(load(std::nullopt, 2));
  for (Q type : {Q::kFP8, Q::kFP8_B128, Q::kF8Q8}) {
    const std::vector<float> got = logits_of(load(type, 2));
    ASSERT_EQ(got.size(), ref.size());
    const int64_t n_vocab = static_cast<int64_t>(ref.size()) / static_cast<int64_t>(prompt.size() + 1);
    double err = 0.0, mag = 0.0;
    int same_top = 0;
    for (size_t t = 0; t <= prompt.size(); ++t) {
      const float* r = ref.data() + t * n_vocab;
      const float* g = got.data() + t * n_vocab;
      for (int64_t v = 0; v < n_vocab; ++v) {
        err += (g[v] - r[v]) * (g[v] - r[v]);
        mag += r[v] * r[v];
      }
      same_top += std::max_element(r, r + n_vocab) - r == std::max_element(g, g + n_vocab) - g;
    }
    const double rel = std::sqrt(err / mag);
    // E4M3 keeps 3 mantissa bits (F8Q8's scale too): about 5-bit integer accuracy, 0.07-0.10
    // here (q8_0 0.025, q5_0 0.097, q4_0 0.31). A wrong scale or row gives errors of order 1.
    EXPECT_LT(rel, 0.15) << quant_type_name(type);
    EXPECT_GE(same_top, 4) << quant_type_name(type);
    std::printf("%s: relative logit error %.4f, same top token %d/%zu\n",
                quant_type_name(type).c_str(), rel, same_top, prompt.size() + 1);
  }
}

}  // namespace
}  // namespace insitu
