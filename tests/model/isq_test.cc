// In-situ quantization at load: the per-tensor decisions (promotion, row-length fallbacks,
// imatrix requirements) and the converted bytes, which must equal quantizing the dequantized
// source with the library's quantizer (itself checked byte-exact against ggml's golden output)
// for any thread count.
#include <gtest/gtest.h>

#include <filesystem>
#include <cstring>

#include "insitu/error.h"
#include "model/isq.h"
#include "model/model.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"
#include "test_paths.h"

namespace insitu {
namespace {

using Q = QuantType;

TEST(IsqRules, PromotionFollowsMistralRs) {
  for (Q t : {Q::kQ2K, Q::kQ3K, Q::kQ4K, Q::kQ4_0, Q::kQ4_1, Q::kIQ2_XXS, Q::kIQ4_XS, Q::kTQ1_0})
    EXPECT_EQ(isq_promoted_type(t), Q::kQ6K) << quant_type_name(t);
  for (Q t : {Q::kQ5K, Q::kQ6K, Q::kQ5_0, Q::kQ5_1, Q::kQ8_0})
    EXPECT_EQ(isq_promoted_type(t), Q::kQ8_0) << quant_type_name(t);
  for (Q t : {Q::kF16, Q::kBF16, Q::kF32, Q::kMXFP4}) EXPECT_EQ(isq_promoted_type(t), t);
}

TEST(IsqRules, RowFallbackFollowsLlamaCpp) {
  EXPECT_EQ(isq_row_fallback(Q::kQ4K, 4096), Q::kQ4K);
  EXPECT_EQ(isq_row_fallback(Q::kQ4K, 576), Q::kQ5_0);
  EXPECT_EQ(isq_row_fallback(Q::kQ5K, 576), Q::kQ5_1);
  EXPECT_EQ(isq_row_fallback(Q::kQ6K, 640), Q::kQ8_0);
  EXPECT_EQ(isq_row_fallback(Q::kQ2K, 576), Q::kQ4_0);
  EXPECT_EQ(isq_row_fallback(Q::kQ3K, 576), Q::kQ4_0);
  EXPECT_EQ(isq_row_fallback(Q::kTQ2_0, 576), Q::kQ4_0);
  EXPECT_EQ(isq_row_fallback(Q::kIQ3_S, 576), Q::kIQ4_NL);
  EXPECT_EQ(isq_row_fallback(Q::kIQ4_XS, 640), Q::kIQ4_NL);
  EXPECT_EQ(isq_row_fallback(Q::kQ4K, 100), Q::kF16);   // not even 32-element blocks fit
  EXPECT_EQ(isq_row_fallback(Q::kQ4_0, 100), Q::kF16);
}

TEST(IsqRules, ParsesNamesAndShorthands) {
  EXPECT_EQ(parse_isq_type("4"), Q::kQ4K);
  EXPECT_EQ(parse_isq_type("8"), Q::kQ8_0);
  EXPECT_EQ(parse_isq_type("Q4_K"), Q::kQ4K);
  EXPECT_EQ(parse_isq_type("iq4_xs"), Q::kIQ4_XS);
  EXPECT_THROW(parse_isq_type("7"), InvalidArgument);
  EXPECT_THROW(parse_isq_type("q8k"), InvalidArgument);  // activation-only
  EXPECT_THROW(parse_isq_type("i32"), InvalidArgument);
}

class IsqLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = test::smollm2_path();
    if (!std::filesystem::exists(path_)) GTEST_SKIP() << "model not fetched: " << path_;
  }
  std::shared_ptr<const Model> load(std::optional<IsqOptions> isq, int threads) {
    LoadOptions o;
    o.path = path_;
    o.n_threads = threads;
    if (isq) isq->show_progress = false;
    o.isq = isq;
    return Model::load(o);
  }
  std::string path_;
};

TEST_F(IsqLoad, DecisionsFollowRolesPromotionAndFallbacks) {
  IsqOptions o;
  o.type = Q::kQ4K;
  const auto m = load(o, 2);
  // SmolLM2: n_embd 576 (not a multiple of 256), n_ff 1536 (a multiple).
  EXPECT_EQ(m->find_weight("blk.0.attn_q.weight")->type, Q::kQ5_0);
  EXPECT_EQ(m->find_weight("blk.0.ffn_up.weight")->type, Q::kQ5_0);
  EXPECT_EQ(m->find_weight("blk.0.ffn_down.weight")->type, Q::kQ4K);
  // Tied embeddings: promoted to q6k, whose blocks do not fit 576 either.
  EXPECT_EQ(m->find_weight("token_embd.weight")->type, Q::kQ8_0);
  EXPECT_EQ(m->find_weight("blk.0.attn_norm.weight")->type, Q::kF32);

  o.pure = true;
  const auto p = load(o, 2);
  EXPECT_EQ(p->find_weight("token_embd.weight")->type, Q::kQ5_0);
}

TEST_F(IsqLoad, BytesEqualTheQuantizerOnTheDequantizedSourceForAnyThreadCount) {
  IsqOptions o;
  o.type = Q::kQ8_0;
  const auto src = load(std::nullopt, 2);
  const auto one = load(o, 1);
  const auto two = load(o, 2);
  ThreadPool pool(2);
  int checked = 0;
  for (const char* name : {"blk.3.attn_k.weight", "blk.7.ffn_down.weight", "token_embd.weight"}) {
    const Weight& s = *src->find_weight(name);
    const Weight& a = *one->find_weight(name);
    const Weight& b = *two->find_weight(name);
    ASSERT_EQ(a.type, Q::kQ8_0) << name;
    ASSERT_EQ(a.nbytes, b.nbytes);
    EXPECT_EQ(0, std::memcmp(a.data, b.data, a.nbytes)) << name;
    const int64_t n_in = s.ne[0], rows = s.ne[1];
    std::vector<float> f(static_cast<size_t>(n_in * rows));
    for (int64_t r = 0; r < rows; ++r)
      type_traits(s.type).dequantize_row(s.data + r * quant_row_size(s.type, n_in),
                                         f.data() + r * n_in, n_in);
    std::vector<uint8_t> want(quant_row_size(Q::kQ8_0, n_in) * rows);
    quantize_tensor(Q::kQ8_0, f.data(), want.data(), rows, n_in, nullptr, pool);
    ASSERT_EQ(want.size(), a.nbytes);
    EXPECT_EQ(0, std::memcmp(want.data(), a.data, a.nbytes)) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

TEST_F(IsqLoad, TypesThatNeedAnImatrixSayWhichTensorLacksOne) {
  IsqOptions o;
  o.type = Q::kIQ2_XXS;
  o.pure = true;
  // Rows of 576 fall back to iq4_nl, but ffn_down's 1536 keep iq2_xxs, which needs an imatrix.
  try {
    load(o, 2);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("ffn_down.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("importance matrix"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace insitu
