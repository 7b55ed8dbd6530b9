// Token sampling: a pure function of the logits, the recent tokens, the options and an injected
// random generator, so a seed reproduces a run exactly on every platform.
//
// The filters run in llama.cpp's default order (common/sampling.cpp, llama.cpp as vendored in
// llama-cpp-python 0.3.36): repetition penalty -> top-k -> top-p -> min-p -> temperature ->
// draw. top-p and min-p look at the probabilities before temperature is applied, as there.
// temperature <= 0 is greedy decoding (argmax after the repetition penalty; ties go to the lowest
// id). Thread-safe: a Sampler is immutable; each caller brings its own RNG.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "insitu/generate.h"

namespace insitu {

class Sampler {
 public:
  explicit Sampler(SamplerOptions options);

  // Picks the next token from `logits` (n_vocab values). `history` is the context so far (prompt
  // and generated tokens, oldest first); only its last repeat_last_n entries matter. Throws
  // InvalidArgument for empty logits; non-finite logits are treated as -infinity (never picked
  // unless every logit is, in which case the lowest id wins).
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history,
                 std::mt19937_64& rng) const;

  // The candidates (id, probability) left after every filter, probabilities normalised at the
  // final temperature, sorted by probability descending (ties: lower id first). Greedy returns
  // the single argmax with probability 1. For tests and diagnostics.
  struct Candidate {
    int32_t id;
    float p;
  };
  std::vector<Candidate> distribution(std::span<const float> logits,
                                      std::span<const int32_t> history) const;

  const SamplerOptions& options() const { return options_; }

  // A uniform double in [0, 1) from 53 random bits: platform-independent, unlike
  // std::uniform_real_distribution.
  static double uniform(std::mt19937_64& rng);

 private:
  SamplerOptions options_;
};

}  // namespace insitu
