// Model::re_isq: re-quantizing a loaded model makes a new model converted from the original weights
// (the same bytes a fresh load at the new type gives), falls back to the current weights when the
// source changed, and never changes the model it was called on, so sessions running on it are
// unaffected.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "insitu/error.h"
#include "export/convert.h"
#include "model/model.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"
#include "isq_load.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;
using Q = QuantType;

std::shared_ptr<const Model> load(const std::string& path, std::optional<QuantType> type) {
  return test::load_isq(path, type);
}

// Number of weights whose type or bytes differ between two loads of the same architecture.
int differing_weights(const Model& a, const Model& b) {
  int differ = 0;
  EXPECT_EQ(a.weights().size(), b.weights().size());
  for (const Weight& w : a.weights()) {
    const Weight* v = b.find_weight(w.name);
    if (v == nullptr) {
      ADD_FAILURE() << w.name << " missing";
      continue;
    }
    if (w.type != v->type || w.nbytes != v->nbytes || std::memcmp(w.data, v->data, w.nbytes) != 0)
      ++differ;
  }
  return differ;
}

class ReIsq : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = test::smollm2_path();
    if (!fs::exists(path_)) GTEST_SKIP() << "model not fetched: " << path_;
    dir_ = fs::temp_directory_path() / ("insitu_re_isq_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path_;
  fs::path dir_;
};

TEST_F(ReIsq, ConvertsFromTheOriginalWeights) {
  const auto q8 = load(path_, Q::kQ8_0);
  const auto stored = load(path_, std::nullopt);
  std::vector<IsqDecision> plan;
  std::shared_ptr<const Model> m = q8->re_isq(Q::kQ4_0, &plan);
  EXPECT_FALSE(plan.empty());
  for (const IsqDecision& d : plan)  // converted from the file's types, not from q8_0
    EXPECT_EQ(d.from, stored->find_weight(d.weight->name)->type) << d.weight->name;
  EXPECT_EQ(plan[1].from, Q::kQ4_1);
  EXPECT_EQ(plan[1].weight, m->find_weight(plan[1].weight->name));  // the new model's weight
  EXPECT_EQ(differing_weights(*m, *load(path_, Q::kQ4_0)), 0);
  // The model it was called on is unchanged.
  EXPECT_EQ(differing_weights(*q8, *load(path_, Q::kQ8_0)), 0);
  // Back to q8_0: the original again, not the q4_0 bytes.
  m = m->re_isq(Q::kQ8_0);
  EXPECT_EQ(differing_weights(*m, *load(path_, Q::kQ8_0)), 0);
  // The stored type itself: the weights are the file's own bytes again.
  m = m->re_isq(Q::kQ4_1);
  EXPECT_EQ(differing_weights(*m, *stored), 0);
}

TEST_F(ReIsq, HuggingFaceSourceKeepsItsRowOrder) {
  ConvertOptions c;
  c.input = path_;
  c.output_dir = (dir_ / "hf").string();
  c.show_progress = false;
  ThreadPool pool(2);
  convert_gguf_to_hf(c, pool);
  std::shared_ptr<const Model> m = load(c.output_dir, Q::kQ8_0);
  m = m->re_isq(Q::kQ5_0);
  EXPECT_EQ(differing_weights(*m, *load(c.output_dir, Q::kQ5_0)), 0);
  m = m->re_isq(Q::kF32);  // not converted: the source's rows, permuted into GGUF order
  EXPECT_EQ(differing_weights(*m, *load(c.output_dir, std::nullopt)), 0);
}

TEST_F(ReIsq, ChangedSourceFallsBackToTheCurrentWeights) {
  const fs::path copy = dir_ / "model.gguf";
  fs::copy_file(path_, copy);
  const auto q8 = load(copy.string(), Q::kQ8_0);
  const Weight& before = *q8->find_weight("blk.2.ffn_down.weight");
  const int64_t n_in = before.ne[0], rows = before.ne[1];
  std::vector<float> f(static_cast<size_t>(n_in * rows));
  for (int64_t r = 0; r < rows; ++r)
    type_traits(Q::kQ8_0).dequantize_row(before.data + r * quant_row_size(Q::kQ8_0, n_in),
                                         f.data() + r * n_in, n_in);
  ThreadPool pool(2);
  std::vector<uint8_t> want(quant_row_size(Q::kQ4_0, n_in) * rows);
  quantize_tensor(Q::kQ4_0, f.data(), want.data(), rows, n_in, nullptr, pool);

  fs::last_write_time(copy, fs::last_write_time(copy) + std::chrono::seconds(5));
  std::vector<IsqDecision> plan;
  const std::shared_ptr<const Model> m = q8->re_isq(Q::kQ4_0, &plan);
  for (const IsqDecision& d : plan) EXPECT_EQ(d.from, Q::kQ8_0) << d.weight->name;
  const Weight& after = *m->find_weight("blk.2.ffn_down.weight");
  ASSERT_EQ(after.type, Q::kQ4_0);
  ASSERT_EQ(after.nbytes, want.size());
  EXPECT_EQ(0, std::memcmp(after.data, want.data(), want.size()));
  // Converting q8_0 bytes is not converting the file's: some weight differs from a fresh load.
  EXPECT_GT(differing_weights(*m, *load(copy.string(), Q::kQ4_0)), 0);
}

// A session that started on a model keeps computing on its weights while another thread makes
// re-quantized models from it: every pass gives exactly the old model's logits.
TEST_F(ReIsq, SessionsOnTheOldModelAreUnaffected) {
  const auto m = load(path_, Q::kQ8_0);
  const std::vector<int32_t> prompt = m->tokenizer().encode("The quick brown fox", true, false);
  std::vector<float> want;
  {
    ThreadPool pool(1);
    Session s(m, 64, pool);
    s.eval(prompt, false, want);
  }
  std::atomic<bool> stop{false};
  std::atomic<int> passes{0};
  std::thread runner([&] {
    ThreadPool pool(1);
    Session s(m, 64, pool);
    std::vector<float> logits;
    while (!stop || passes == 0) {
      s.reset();
      s.eval(prompt, false, logits);
      ASSERT_EQ(logits, want);
      ++passes;
    }
  });
  std::shared_ptr<const Model> next = m->re_isq(Q::kQ4_0);
  next = next->re_isq(Q::kQ6K);
  stop = true;
  runner.join();
  EXPECT_GT(passes.load(), 0);
  // The new model computes exactly what a fresh load at that type computes.
  ThreadPool pool(2);
  Session a(next, 64, pool), b(load(path_, Q::kQ6K), 64, pool);
  std::vector<float> la, lb;
  a.eval(prompt, false, la);
  b.eval(prompt, false, lb);
  EXPECT_EQ(la, lb);
  EXPECT_NE(la, want);
}

// Weights re_isq leaves alone are shared with the model it was called on, not copied.
TEST_F(ReIsq, SharesTheWeightsItDoesNotConvert) {
  const auto m = load(path_, Q::kQ8_0);
  const auto next = m->re_isq(Q::kQ4_0);
  const Weight* norm_a = m->find_weight("blk.0.attn_norm.weight");
  const Weight* norm_b = next->find_weight("blk.0.attn_norm.weight");
  ASSERT_NE(norm_a, nullptr);
  ASSERT_NE(norm_b, nullptr);
  EXPECT_NE(norm_a, norm_b);
  EXPECT_EQ(norm_a->data, norm_b->data);
  EXPECT_NE(m->find_weight("blk.0.attn_q.weight")->data,
            next->find_weight("blk.0.attn_q.weight")->data);
}

TEST_F(ReIsq, RefusesBadTypesAndChangesNothing) {
  const auto m = load(path_, Q::kQ8_0);
  EXPECT_THROW(m->re_isq(Q::kQ8K), InvalidArgument);
  EXPECT_EQ(differing_weights(*m, *load(path_, Q::kQ8_0)), 0);
}

}  // namespace
}  // namespace insitu
