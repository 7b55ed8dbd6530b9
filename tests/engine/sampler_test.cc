// Sampler semantics: each filter alone, their order, determinism under a seed.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "runtime/sampler.h"
#include "insitu/error.h"

namespace insitu {
namespace {

SamplerOptions plain() {
  SamplerOptions o;
  o.temperature = 1.0f;
  o.top_k = 0;
  o.top_p = 1.0f;
  o.min_p = 0.0f;
  o.repeat_penalty = 1.0f;
  return o;
}

std::map<int32_t, float> as_map(const std::vector<Sampler::Candidate>& d) {
  std::map<int32_t, float> m;
  for (const auto& c : d) m[c.id] = c.p;
  return m;
}

// Logits whose softmax is exactly the given probabilities.
std::vector<float> logits_of(std::vector<double> p) {
  std::vector<float> l;
  for (double x : p) l.push_back(static_cast<float>(std::log(x)));
  return l;
}

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  SamplerOptions o = plain();
  o.temperature = 0.0f;
  Sampler s(o);
  std::mt19937_64 rng(1);
  EXPECT_EQ(s.sample(std::vector<float>{0.1f, 3.0f, -1.0f, 3.0f}, {}, rng), 1);
  EXPECT_EQ(s.sample(std::vector<float>{NAN, 2.0f, INFINITY}, {}, rng), 1);  // non-finite never wins
}

TEST(Sampler, FullDistributionIsSoftmax) {
  Sampler s(plain());
  const auto m = as_map(s.distribution(logits_of({0.5, 0.25, 0.125, 0.125}), {}));
  ASSERT_EQ(m.size(), 4u);
  EXPECT_NEAR(m.at(0), 0.5, 1e-6);
  EXPECT_NEAR(m.at(3), 0.125, 1e-6);
}

TEST(Sampler, TemperatureSharpensAndFlattens) {
  SamplerOptions o = plain();
  o.temperature = 0.5f;  // p^2 renormalised
  auto m = as_map(Sampler(o).distribution(logits_of({0.6, 0.3, 0.1}), {}));
  EXPECT_NEAR(m.at(0), 0.36 / 0.46, 1e-5);
  o.temperature = 2.0f;  // sqrt(p) renormalised
  m = as_map(Sampler(o).distribution(logits_of({0.6, 0.3, 0.1}), {}));
  const double z = std::sqrt(0.6) + std::sqrt(0.3) + std::sqrt(0.1);
  EXPECT_NEAR(m.at(2), std::sqrt(0.1) / z, 1e-5);
}

TEST(Sampler, TopKKeepsTheKLargest) {
  SamplerOptions o = plain();
  o.top_k = 2;
  const auto d = Sampler(o).distribution(logits_of({0.1, 0.4, 0.2, 0.3}), {});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].id, 1);
  EXPECT_EQ(d[1].id, 3);
  EXPECT_NEAR(d[0].p, 0.4 / 0.7, 1e-5);
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingP) {
  SamplerOptions o = plain();
  o.top_p = 0.7f;  // 0.4 + 0.3 reaches 0.7: two tokens
  auto d = Sampler(o).distribution(logits_of({0.1, 0.4, 0.2, 0.3}), {});
  ASSERT_EQ(d.size(), 2u);
  o.top_p = 0.71f;  // needs the third
  d = Sampler(o).distribution(logits_of({0.1, 0.4, 0.2, 0.3}), {});
  EXPECT_EQ(d.size(), 3u);
  o.top_p = 0.01f;  // always at least one
  d = Sampler(o).distribution(logits_of({0.1, 0.4, 0.2, 0.3}), {});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].id, 1);
}

TEST(Sampler, MinPIsRelativeToTheTopToken) {
  SamplerOptions o = plain();
  o.min_p = 0.5f;  // keep p >= 0.2 when the top is 0.4
  const auto d = Sampler(o).distribution(logits_of({0.1, 0.4, 0.19, 0.31}), {});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].id, 1);
  EXPECT_EQ(d[1].id, 3);
}

TEST(Sampler, RepetitionPenaltyAsLlamaCpp) {
  SamplerOptions o = plain();
  o.repeat_penalty = 2.0f;
  o.repeat_last_n = 2;
  // Token 0 (positive logit) is divided, token 1 (negative) multiplied; token 2 is outside the
  // window and untouched; repeats in the window count once.
  const std::vector<float> l = {2.0f, -1.0f, 1.0f, 0.0f};
  const auto m = as_map(Sampler(o).distribution(l, std::vector<int32_t>{2, 1, 0, 1}));
  const double z = std::exp(1.0) + std::exp(-2.0) + std::exp(1.0) + std::exp(0.0);
  EXPECT_NEAR(m.at(0), std::exp(1.0) / z, 1e-5);
  EXPECT_NEAR(m.at(1), std::exp(-2.0) / z, 1e-5);
  EXPECT_NEAR(m.at(2), std::exp(1.0) / z, 1e-5);
  // With the penalty, greedy moves off a repeated token.
  o.temperature = 0.0f;
  o.repeat_last_n = 64;
  std::mt19937_64 rng(0);
  EXPECT_EQ(Sampler(o).sample(std::vector<float>{2.0f, 1.5f}, std::vector<int32_t>{0}, rng), 1);
}

TEST(Sampler, SeedReproducesAndFrequenciesFollowTheDistribution) {
  Sampler s(plain());
  const std::vector<float> l = logits_of({0.5, 0.3, 0.2});
  std::mt19937_64 a(42), b(42);
  std::vector<int> counts(3);
  for (int i = 0; i < 20000; ++i) {
    const int32_t x = s.sample(l, {}, a);
    EXPECT_EQ(x, s.sample(l, {}, b));
    ++counts[x];
  }
  EXPECT_NEAR(counts[0] / 20000.0, 0.5, 0.02);
  EXPECT_NEAR(counts[1] / 20000.0, 0.3, 0.02);
  EXPECT_NEAR(counts[2] / 20000.0, 0.2, 0.02);
  // A different seed gives a different sequence.
  std::mt19937_64 c(43), d(42);
  int same = 0;
  for (int i = 0; i < 100; ++i) same += s.sample(l, {}, c) == s.sample(l, {}, d);
  EXPECT_LT(same, 100);
}

TEST(Sampler, RejectsBadOptions) {
  SamplerOptions o = plain();
  o.top_p = 0.0f;
  EXPECT_THROW(Sampler{o}, InvalidArgument);
  o = plain();
  o.min_p = 1.5f;
  EXPECT_THROW(Sampler{o}, InvalidArgument);
  o = plain();
  o.temperature = NAN;
  EXPECT_THROW(Sampler{o}, InvalidArgument);
  o = plain();
  o.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler{o}, InvalidArgument);
  std::mt19937_64 rng(0);
  EXPECT_THROW(Sampler(plain()).sample(std::vector<float>{}, {}, rng), InvalidArgument);
}

}  // namespace
}  // namespace insitu
