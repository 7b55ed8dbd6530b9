#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include <fmt/format.h>

#include "insitu/error.h"

namespace insitu {

void SamplerOptions::validate() const {
  auto bad = [](const char* name, double v, const char* range) {
    throw InvalidArgument(fmt::format("sampler: {} = {} invalid; expected {}", name, v, range));
  };
  if (std::isnan(temperature) || std::isinf(temperature))
    bad("temperature", temperature, "a finite number (<= 0: greedy)");
  if (!(top_p > 0.0f && top_p <= 1.0f)) bad("top_p", top_p, "0 < top_p <= 1");
  if (!(min_p >= 0.0f && min_p <= 1.0f)) bad("min_p", min_p, "0 <= min_p <= 1");
  if (!(repeat_penalty > 0.0f) || std::isinf(repeat_penalty))
    bad("repeat_penalty", repeat_penalty, "a finite number > 0 (1: off)");
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f))
    bad("frequency_penalty", frequency_penalty, "-2 <= frequency_penalty <= 2 (0: off)");
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f))
    bad("presence_penalty", presence_penalty, "-2 <= presence_penalty <= 2 (0: off)");
}

Sampler::Sampler(SamplerOptions options) : options_(options) { options_.validate(); }

double Sampler::uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Higher logit first; equal logits keep the lower id first so results never depend on the sort.
bool before(const std::pair<int32_t, float>& a, const std::pair<int32_t, float>& b) {
  if (a.second != b.second) return a.second > b.second;
  return a.first < b.first;
}

}  // namespace

std::vector<Sampler::Candidate> Sampler::distribution(std::span<const float> logits,
                                                      std::span<const int32_t> history) const {
  if (logits.empty()) throw InvalidArgument("sampler: empty logits");
  const int32_t n = static_cast<int32_t>(logits.size());
  std::vector<float> l(logits.begin(), logits.end());
  for (float& x : l)
    if (!std::isfinite(x)) x = kNegInf;

  // Penalties over the last repeat_last_n tokens, as llama.cpp's penalties sampler applies them:
  // the repetition penalty scales each distinct recent token once; OpenAI's frequency penalty
  // subtracts count x penalty, its presence penalty subtracts the penalty once.
  const bool penalize = options_.repeat_penalty != 1.0f || options_.frequency_penalty != 0.0f ||
                        options_.presence_penalty != 0.0f;
  if (penalize && options_.repeat_last_n != 0 && !history.empty()) {
    size_t take = history.size();
    if (options_.repeat_last_n > 0) take = std::min(take, static_cast<size_t>(options_.repeat_last_n));
    std::unordered_map<int32_t, int> count;
    for (int32_t id : history.subspan(history.size() - take))
      if (id >= 0 && id < n) ++count[id];
    // In id order, so the result never depends on the hash table's order.
    std::vector<std::pair<int32_t, int>> seen(count.begin(), count.end());
    std::sort(seen.begin(), seen.end());
    for (const auto& [id, c] : seen) {
      float& x = l[id];
      if (x == kNegInf) continue;
      if (options_.repeat_penalty != 1.0f)
        x = x > 0 ? x / options_.repeat_penalty : x * options_.repeat_penalty;
      x -= static_cast<float>(c) * options_.frequency_penalty + options_.presence_penalty;
    }
  }

  // Greedy: the argmax, lowest id on ties.
  if (options_.temperature <= 0.0f) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; ++i)
      if (l[i] > l[best]) best = i;
    return {{best, 1.0f}};
  }

  std::vector<std::pair<int32_t, float>> cand;
  cand.reserve(l.size());
  for (int32_t i = 0; i < n; ++i)
    if (l[i] != kNegInf) cand.emplace_back(i, l[i]);
  if (cand.empty()) return {{0, 1.0f}};

  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < cand.size()) {
    std::partial_sort(cand.begin(), cand.begin() + options_.top_k, cand.end(), before);
    cand.resize(options_.top_k);
  } else {
    std::sort(cand.begin(), cand.end(), before);
  }

  // Probabilities at temperature 1 over the remaining candidates, for top-p.
  const float max_logit = cand.front().second;
  if (options_.top_p < 1.0f) {
    std::vector<double> p(cand.size());
    double sum = 0.0;
    for (size_t i = 0; i < cand.size(); ++i) sum += p[i] = std::exp(static_cast<double>(cand[i].second - max_logit));
    double cum = 0.0;
    size_t keep = cand.size();
    for (size_t i = 0; i < cand.size(); ++i) {
      cum += p[i] / sum;
      if (cum >= options_.top_p) {
        keep = i + 1;
        break;
      }
    }
    cand.resize(keep);
  }

  // min-p: keep tokens whose probability is at least min_p times the top one.
  if (options_.min_p > 0.0f) {
    const float threshold = max_logit + std::log(options_.min_p);
    size_t keep = 1;
    while (keep < cand.size() && cand[keep].second >= threshold) ++keep;
    cand.resize(keep);
  }

  // Temperature, then normalise.
  const double inv_t = 1.0 / options_.temperature;
  std::vector<Candidate> out(cand.size());
  double sum = 0.0;
  std::vector<double> w(cand.size());
  for (size_t i = 0; i < cand.size(); ++i)
    sum += w[i] = std::exp((static_cast<double>(cand[i].second) - max_logit) * inv_t);
  for (size_t i = 0; i < cand.size(); ++i)
    out[i] = {cand[i].first, static_cast<float>(w[i] / sum)};
  return out;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history,
                        std::mt19937_64& rng) const {
  const std::vector<Candidate> d = distribution(logits, history);
  if (d.size() == 1) return d.front().id;
  const double u = uniform(rng);
  double cum = 0.0;
  for (const Candidate& c : d) {
    cum += c.p;
    if (u < cum) return c.id;
  }
  return d.back().id;  // rounding left u above the float sum
}

}  // namespace insitu
