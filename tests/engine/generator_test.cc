// Generation loop with a scripted model and tokenizer: stop strings, EOG, limits, streaming.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/generator.h"
#include "insitu/error.h"

namespace insitu {
namespace {

// Token i's piece is pieces[i]; id 0 is the end-of-generation token "<eos>".
class FakeTokenizer : public Tokenizer {
 public:
  explicit FakeTokenizer(std::vector<std::string> pieces) : pieces_(std::move(pieces)) {}
  std::vector<int32_t> encode(std::string_view, bool, bool) const override { return {}; }
  std::string token_to_piece(int32_t id, bool render_special) const override {
    if (id == 0) return render_special ? "<eos>" : "";
    return pieces_.at(id);
  }
  std::string decode(std::span<const int32_t> ids, bool rs) const override {
    std::string s;
    for (int32_t id : ids) s += token_to_piece(id, rs);
    return s;
  }
  int32_t n_vocab() const override { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const override { return -1; }
  int32_t eos_id() const override { return 0; }
  bool add_bos() const override { return false; }
  bool is_eog(int32_t id) const override { return id == 0; }
  std::string token_text(int32_t id) const override { return pieces_.at(id); }
  TokenAttr token_attr(int32_t id) const override {
    return id == 0 ? TokenAttr::kControl : TokenAttr::kNormal;
  }

 private:
  std::vector<std::string> pieces_;
};

// Emits one-hot logits that make greedy sampling follow `script`, then EOS forever.
class ScriptedModel : public TokenModel {
 public:
  ScriptedModel(const FakeTokenizer& tok, std::vector<int32_t> script, int n_ctx = 1000)
      : tok_(tok), script_(std::move(script)), n_ctx_(n_ctx) {}
  const Tokenizer& tokenizer() const override { return tok_; }
  void eval(std::span<const int32_t> tokens, std::vector<float>& logits) override {
    n_past_ += static_cast<int>(tokens.size());
    evaluated_.insert(evaluated_.end(), tokens.begin(), tokens.end());
    logits.assign(tok_.n_vocab(), 0.0f);
    const int32_t next = step_ < script_.size() ? script_[step_] : 0;
    ++step_;
    logits[next] = 10.0f;
  }
  int n_remaining() const override { return n_ctx_ - n_past_; }
  std::vector<int32_t> evaluated_;

 private:
  const FakeTokenizer& tok_;
  std::vector<int32_t> script_;
  size_t step_ = 0;
  int n_ctx_;
  int n_past_ = 0;
};

const FakeTokenizer& tok() {
  // ids:              0        1       2      3       4       5        6         7
  static const FakeTokenizer t({"<eos>", "Hello", " wor", "ld", "\nUs", "er:", "\xE2\x82", "\xAC!"});
  return t;
}

GenerateOptions greedy() {
  GenerateOptions o;
  o.sampling.temperature = 0.0f;
  o.max_tokens = 50;
  return o;
}

struct Outcome {
  GenerateResult r;
  std::vector<std::string> chunks;  // the events' non-empty texts
  std::vector<TokenEvent> events;
};

Outcome run(std::vector<int32_t> script, GenerateOptions o, int n_ctx = 1000, int stop_after = -1) {
  ScriptedModel m(tok(), std::move(script), n_ctx);
  Outcome out;
  const std::vector<int32_t> prompt = {1};
  out.r = generate(m, prompt, o, [&](const TokenEvent& e) {
    out.events.push_back(e);
    if (e.text.empty()) return true;
    out.chunks.push_back(e.text);
    return stop_after < 0 || static_cast<int>(out.chunks.size()) < stop_after;
  });
  return out;
}

TEST(Generator, StopsAtEogWithoutEmittingIt) {
  const Outcome x = run({1, 2, 3, 0, 1}, greedy());
  EXPECT_EQ(x.r.text, "Hello world");
  EXPECT_EQ(x.r.stop_reason, StopReason::kEog);
  EXPECT_EQ(x.r.tokens, (std::vector<int32_t>{1, 2, 3, 0}));
  EXPECT_EQ(x.r.stats.n_prompt, 1);
  EXPECT_EQ(x.r.stats.n_generated, 4);
}

TEST(Generator, StopStringIsNeverEmittedAndPrefixIsHeldBack) {
  GenerateOptions o = greedy();
  o.stop = {"\nUser:"};
  const Outcome x = run({1, 2, 3, 4, 5, 1}, o);
  EXPECT_EQ(x.r.text, "Hello world");
  EXPECT_EQ(x.r.stop_reason, StopReason::kStopString);
  EXPECT_EQ(x.r.stop_string, "\nUser:");
  for (const std::string& c : x.chunks) EXPECT_EQ(c.find('\n'), std::string::npos) << c;
}

TEST(Generator, HeldBackTextIsReleasedWhenItDoesNotComplete) {
  GenerateOptions o = greedy();
  o.stop = {"\nUser:"};
  // "\nUs" could start the stop string, but the generation ends with EOG: it is emitted then.
  const Outcome x = run({1, 4, 0}, o);
  EXPECT_EQ(x.r.text, "Hello\nUs");
  EXPECT_EQ(x.r.stop_reason, StopReason::kEog);
  ASSERT_FALSE(x.chunks.empty());
  EXPECT_EQ(x.chunks.back(), "\nUs");
  // ...and when the next text rules the stop string out.
  const Outcome y = run({4, 2, 0}, o);
  EXPECT_EQ(y.r.text, "\nUs wor");
}

TEST(Generator, MaxTokensAndContextLimits) {
  GenerateOptions o = greedy();
  o.max_tokens = 2;
  Outcome x = run({1, 2, 3}, o);
  EXPECT_EQ(x.r.text, "Hello wor");
  EXPECT_EQ(x.r.stop_reason, StopReason::kMaxTokens);
  o.max_tokens = 0;
  x = run({1, 2, 3, 1, 2, 3}, o, /*n_ctx=*/3);  // prompt + 2 evaluated tokens fill 3 positions
  EXPECT_EQ(x.r.stop_reason, StopReason::kContextFull);
  EXPECT_EQ(x.r.tokens.size(), 3u);
}

TEST(Generator, StreamsWholeUtf8Characters) {
  const Outcome x = run({6, 7, 0}, greedy());
  EXPECT_EQ(x.r.text, "\xE2\x82\xAC!");
  ASSERT_EQ(x.chunks.size(), 1u);  // the first half of the euro sign alone is never emitted
}

TEST(Generator, CallbackCanCancel) {
  const Outcome x = run({1, 2, 3, 1, 2, 3}, greedy(), 1000, /*stop_after=*/2);
  EXPECT_EQ(x.r.stop_reason, StopReason::kCancelled);
  EXPECT_EQ(x.chunks.size(), 2u);
}

TEST(Generator, RenderSpecialEmitsTheEogText) {
  GenerateOptions o = greedy();
  o.render_special = true;
  const Outcome x = run({1, 0}, o);
  EXPECT_EQ(x.r.text, "Hello<eos>");
  EXPECT_EQ(x.r.stop_reason, StopReason::kEog);
}

TEST(Generator, RejectsEmptyOrOversizedPrompt) {
  ScriptedModel m(tok(), {1}, 2);
  EXPECT_THROW(generate(m, std::vector<int32_t>{}, greedy(), nullptr), InvalidArgument);
  EXPECT_THROW(generate(m, std::vector<int32_t>{1, 1, 1}, greedy(), nullptr), InvalidArgument);
}

// One event per sampled token, in order; only the last has is_last and the finish reason, and
// the events' texts concatenate to the result's text.
TEST(Generator, EventsCarryTokensAndTheFinishReason) {
  GenerateOptions o = greedy();
  o.logprobs = true;
  o.top_logprobs = 2;
  const Outcome x = run({1, 2, 3, 0}, o);
  ASSERT_EQ(x.events.size(), 4u);
  std::string text;
  for (size_t i = 0; i < x.events.size(); ++i) {
    const TokenEvent& e = x.events[i];
    EXPECT_EQ(e.token, x.r.tokens[i]);
    EXPECT_EQ(e.is_last, i + 1 == x.events.size());
    EXPECT_EQ(e.finish_reason.has_value(), e.is_last);
    ASSERT_EQ(e.top_logprobs.size(), 2u);
    EXPECT_EQ(e.top_logprobs[0].first, e.token);  // greedy picks the most likely
    EXPECT_FLOAT_EQ(e.top_logprobs[0].second, e.logprob);
    EXPECT_LT(e.logprob, 0.0f);
    text += e.text;
  }
  EXPECT_EQ(text, x.r.text);
  EXPECT_EQ(x.events.back().finish_reason, StopReason::kEog);
  EXPECT_STREQ(finish_reason_name(StopReason::kEog), "stop");
  EXPECT_STREQ(finish_reason_name(StopReason::kMaxTokens), "length");
}

// The log-probabilities are the model's log-softmax: exp sums to 1 and ranks follow the logits.
TEST(Generator, LogprobsAreTheLogSoftmax) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, -INFINITY};
  double sum = 0;
  for (int i = 0; i < 3; ++i) sum += std::exp(token_logprob(logits, i));
  EXPECT_NEAR(sum, 1.0, 1e-6);
  const auto top = top_logprobs(logits, 5);
  ASSERT_EQ(top.size(), 3u);  // -inf is never listed
  EXPECT_EQ(top[0].first, 1);
  EXPECT_EQ(top[1].first, 2);
  EXPECT_EQ(top[2].first, 0);
}

TEST(Generator, FrequencyAndPresencePenaltiesLowerSeenTokens) {
  SamplerOptions o;
  o.temperature = 0;
  o.frequency_penalty = 0.5f;
  const Sampler s(o);
  const std::vector<float> logits = {0.0f, 2.0f, 1.4f};
  const std::vector<int32_t> history = {1, 1};  // 2 - 2 x 0.5 = 1.0 < 1.4
  EXPECT_EQ(s.sample(logits, history, *std::make_unique<std::mt19937_64>(0)), 2);
  o.frequency_penalty = 0;
  o.presence_penalty = 0.5f;  // 2 - 0.5 = 1.5 > 1.4
  EXPECT_EQ(Sampler(o).sample(logits, history, *std::make_unique<std::mt19937_64>(0)), 1);
  o.presence_penalty = 3;
  EXPECT_THROW(o.validate(), InvalidArgument);
}

TEST(StopStringFilter, EarliestMatchWinsAcrossPushes) {
  StopStringFilter f({"abc", "bcd", ""});
  EXPECT_EQ(f.push("xa"), "x");
  EXPECT_EQ(f.push("b"), "");
  EXPECT_EQ(f.push("cd"), "");
  EXPECT_TRUE(f.stopped());
  EXPECT_EQ(f.matched(), "abc");
  EXPECT_EQ(f.push("more"), "");
  EXPECT_EQ(f.flush(), "");
  StopStringFilter g({"END"});
  EXPECT_EQ(g.push("the EN"), "the ");
  EXPECT_EQ(g.push("D"), "");
  EXPECT_EQ(g.matched(), "END");
  StopStringFilter h({"END"});
  EXPECT_EQ(h.push("E"), "");
  EXPECT_EQ(h.flush(), "E");
}

}  // namespace
}  // namespace insitu
