// The Executor and batched decoding: sessions running concurrently on one executor get exactly
// what they get alone; a re-quantization swapped in while sessions generate leaves each session
// entirely on the weights it started with; a batched step equals separate steps; generate_batch
// equals generate.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <thread>

#include "insitu/chat.h"
#include "insitu/error.h"
#include "insitu/executor.h"
#include "insitu/model.h"
#include "model/model.h"
#include "test_paths.h"

namespace insitu {
namespace {

const std::vector<std::string>& prompts() {
  static const std::vector<std::string> p = {
      "The capital of France is", "Once upon a time, in a small village,",
      "def fibonacci(n):", "The three primary colours are red,"};
  return p;
}

GenerateOptions greedy(int n) {
  GenerateOptions g;
  g.sampling.temperature = 0;
  g.max_tokens = n;
  g.stop_at_eog = false;
  return g;
}

std::vector<int32_t> tokens_of(const Model& m, const std::string& text) {
  return m.tokenizer().encode(text, true, false);
}

std::vector<int32_t> alone(const std::shared_ptr<const Model>& m, Executor& ex,
                           const std::string& prompt, int n) {
  Session s(m, 256, ex);
  return generate(s, tokens_of(*m, prompt), greedy(n)).tokens;
}

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(test::smollm2_path()))
      GTEST_SKIP() << "model not fetched: " << test::smollm2_path();
    model_ = ModelBuilder(test::smollm2_path()).with_progress(false).with_threads(2).build();
  }
  std::shared_ptr<const Model> model_;
};

TEST_F(ExecutorTest, ConcurrentSessionsGetWhatTheyGetAlone) {
  Executor ex(2);
  std::vector<std::vector<int32_t>> want;
  for (const std::string& p : prompts()) want.push_back(alone(model_, ex, p, 24));
  std::vector<std::vector<int32_t>> got(prompts().size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts().size(); ++i)
    threads.emplace_back([&, i] { got[i] = alone(model_, ex, prompts()[i], 24); });
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << prompts()[i];
}

TEST_F(ExecutorTest, ReIsqWhileSessionsGenerate) {
  Executor ex(2);
  const std::shared_ptr<const Model> old_model =
      ModelBuilder(test::smollm2_path()).with_isq("q8_0").with_progress(false).build();
  std::vector<IsqDecision> decisions;
  const std::shared_ptr<const Model> new_model = old_model->re_isq(QuantType::kQ4_0);
  std::vector<std::vector<int32_t>> on_old, on_new;
  for (const std::string& p : prompts()) {
    on_old.push_back(alone(old_model, ex, p, 16));
    on_new.push_back(alone(new_model, ex, p, 16));
  }
  ASSERT_NE(on_old, on_new);  // the two weight sets are told apart by their greedy text

  std::mutex mu;
  std::shared_ptr<const Model> current = old_model;  // what the "server" hands new sessions
  std::atomic<bool> swapped{false};
  std::vector<std::vector<std::pair<bool, std::vector<int32_t>>>> runs(prompts().size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts().size(); ++i) {
    threads.emplace_back([&, i] {
      // Generate until a run has started after the swap.
      for (bool after = false; !after;) {
        after = swapped.load();
        std::shared_ptr<const Model> m;
        {
          std::lock_guard lock(mu);
          m = current;
        }
        std::vector<int32_t> t = alone(m, ex, prompts()[i], 16);
        runs[i].emplace_back(m == old_model, std::move(t));
      }
    });
  }
  // Re-quantize while the sessions run, then swap the pointer.
  const std::shared_ptr<const Model> next = old_model->re_isq(QuantType::kQ4_0);
  {
    std::lock_guard lock(mu);
    current = next;
  }
  swapped = true;
  for (std::thread& t : threads) t.join();
  int n_old = 0, n_new = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    for (const auto& [was_old, tokens] : runs[i]) {
      EXPECT_EQ(tokens, was_old ? on_old[i] : on_new[i]) << prompts()[i];
      (was_old ? n_old : n_new)++;
    }
  }
  EXPECT_GT(n_new, 0);
  EXPECT_GT(n_old + n_new, static_cast<int>(prompts().size()));
}

// A batched step gives each session the logits a separate step gives it, within the tolerance
// the matrix kernels have between one row and many (their activation blocks are quantized per
// row, so the difference is only in float summation order).
TEST_F(ExecutorTest, BatchedStepMatchesSeparateSteps) {
  Executor ex(2);
  const int n = static_cast<int>(prompts().size());
  std::vector<std::unique_ptr<Session>> a, b;
  std::vector<int32_t> next(n);
  const int n_vocab = model_->config().n_vocab;
  std::vector<float> logits;
  for (int i = 0; i < n; ++i) {
    a.push_back(std::make_unique<Session>(model_, 128, ex));
    b.push_back(std::make_unique<Session>(model_, 128, ex));
    const std::vector<int32_t> t = tokens_of(*model_, prompts()[i]);
    a[i]->eval(t, false, logits);
    b[i]->eval(t, false, logits);
    next[i] = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  std::vector<Session*> bs;
  for (auto& s : b) bs.push_back(s.get());
  std::vector<float> batched(static_cast<size_t>(n) * n_vocab);
  double worst = 0;
  for (int step = 0; step < 8; ++step) {
    Session::step(bs, next, batched.data());
    for (int i = 0; i < n; ++i) {
      a[i]->eval(std::span<const int32_t>(&next[i], 1), false, logits);
      float scale = 0;
      double diff = 0;
      for (int v = 0; v < n_vocab; ++v) {
        scale = std::max(scale, std::abs(logits[v]));
        diff = std::max(diff, static_cast<double>(std::abs(logits[v] - batched[i * n_vocab + v])));
      }
      worst = std::max(worst, diff / scale);
      const auto top = std::max_element(logits.begin(), logits.end()) - logits.begin();
      const auto top_b = std::max_element(batched.begin() + i * n_vocab,
                                          batched.begin() + (i + 1) * n_vocab) -
                         (batched.begin() + i * n_vocab);
      EXPECT_EQ(top, top_b) << "session " << i << " step " << step;
      EXPECT_EQ(a[i]->n_past(), b[i]->n_past());
      next[i] = static_cast<int32_t>(top);
    }
  }
  EXPECT_LT(worst, 2e-3) << "largest difference relative to the largest logit";
  // Bad input changes nothing.
  const int before = b[0]->n_past();
  std::vector<Session*> twice = {bs[0], bs[0]};
  EXPECT_THROW(Session::step(twice, std::vector<int32_t>{1, 2}, nullptr), InvalidArgument);
  EXPECT_THROW(Session::step(bs, std::vector<int32_t>{1}, nullptr), InvalidArgument);
  std::vector<Session*> one = {bs[0]};
  EXPECT_THROW(Session::step(one, std::vector<int32_t>{n_vocab}, nullptr), InvalidArgument);
  EXPECT_EQ(b[0]->n_past(), before);
}

TEST_F(ExecutorTest, GenerateBatchMatchesGenerate) {
  Executor ex(2);
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<Executor::Request> requests;
  std::vector<std::vector<int32_t>> want;
  for (size_t i = 0; i < prompts().size(); ++i) {
    const int n = 8 + 4 * static_cast<int>(i);  // sequences finish at different steps
    want.push_back(alone(model_, ex, prompts()[i], n));
    sessions.push_back(std::make_unique<Session>(model_, 256, ex));
    Executor::Request r;
    r.session = sessions.back().get();
    r.prompt = tokens_of(*model_, prompts()[i]);
    r.options = greedy(n);
    requests.push_back(std::move(r));
  }
  std::vector<std::string> streamed(requests.size());
  for (size_t i = 0; i < requests.size(); ++i)
    requests[i].on_event = [&, i](const TokenEvent& e) {
      streamed[i] += e.text;
      return true;
    };
  const std::vector<GenerateResult> got = ex.generate_batch(requests);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].tokens, want[i]) << prompts()[i];
    EXPECT_EQ(got[i].text, streamed[i]);
    EXPECT_EQ(got[i].stop_reason, StopReason::kMaxTokens);
  }
}

TEST_F(ExecutorTest, ChatReusesItsCacheAndRendersOneBos) {
  Executor ex(2);
  Chat chat(model_, ex, {.system = "You are terse."});
  const GenerateResult first = chat.send("Name a colour.", greedy(12));
  EXPECT_FALSE(first.tokens.empty());
  EXPECT_EQ(chat.reused_tokens(), 0);
  const GenerateResult second = chat.send("And another one?", greedy(12));
  EXPECT_FALSE(second.tokens.empty());
  EXPECT_GT(chat.reused_tokens(), 10);
  ASSERT_EQ(chat.messages().size(), 5u);
  EXPECT_EQ(chat.messages()[2].content, first.text);
  const std::vector<int32_t> ids = chat_prompt(*model_, chat.messages());
  const int32_t bos = model_->tokenizer().bos_id();
  if (bos >= 0 && model_->tokenizer().add_bos()) {
    EXPECT_EQ(ids[0], bos);
    EXPECT_NE(ids[1], bos);
  }
  // A message that cannot fit is refused and not kept.
  Chat small(model_, ex, {.n_ctx = 16});
  EXPECT_THROW(small.send(std::string(400, 'x'), greedy(4)), InvalidArgument);
  EXPECT_TRUE(small.messages().empty());
}

TEST_F(ExecutorTest, ModelBuilderValidatesAtOnce) {
  EXPECT_THROW(ModelBuilder("x").with_isq("q9k"), InvalidArgument);
  EXPECT_THROW(ModelBuilder("x").with_threads(-1), InvalidArgument);
  EXPECT_THROW(ModelBuilder("x").with_quant("bogus"), InvalidArgument);
  try {
    ModelBuilder("x").with_context(0);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("from 1 to"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ModelBuilder("/no/such/model").build(), InvalidArgument);
  // The front door and the loader agree.
  const auto m = ModelBuilder(test::smollm2_path()).with_isq(QuantType::kQ8_0)
                     .with_progress(false).build();
  ASSERT_NE(m->isq_options(), nullptr);
  EXPECT_EQ(m->find_weight("blk.0.attn_q.weight")->type, QuantType::kQ8_0);
  const ModelInfo info = model_info(*m);
  EXPECT_EQ(info.architecture, "llama");
  EXPECT_TRUE(info.has_chat_template);
  EXPECT_NE(info.weight_types.find("q8_0"), std::string::npos);
  // with_auto_isq is mistral.rs's bits shorthand.
  const auto m4 = ModelBuilder(test::smollm2_path()).with_auto_isq(Bits::kFour)
                      .with_progress(false).build();
  EXPECT_EQ(m4->find_weight("blk.0.ffn_down.weight")->type, QuantType::kQ4K);
}

}  // namespace
}  // namespace insitu
