// The generation loop's internals (the public API is include/insitu/generate.h): the model
// interface it drives, and the stop-string filter.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/sampler.h"
#include "insitu/generate.h"
#include "insitu/tokenizer.h"

namespace insitu {

// What generation needs from a model: the tokenizer, and a way to append tokens to a context and
// get the logits after the last one. Session is adapted to it; tests use scripted fakes.
class TokenModel {
 public:
  virtual ~TokenModel() = default;
  virtual const Tokenizer& tokenizer() const = 0;
  // Appends tokens at the current position; last_logits receives n_vocab values.
  virtual void eval(std::span<const int32_t> tokens, std::vector<float>& last_logits) = 0;
  // Tokens that still fit in the context.
  virtual int n_remaining() const = 0;
};

// generate() on any TokenModel.
GenerateResult generate(TokenModel& model, std::span<const int32_t> prompt,
                        const GenerateOptions& options, const TokenCallback& on_event = nullptr,
                        std::span<const int32_t> history = {});

// The log-softmax of `logits` at `id`, and the k most likely ids with theirs (most likely first,
// ties to the lower id). Non-finite logits count as -infinity.
float token_logprob(std::span<const float> logits, int32_t id);
std::vector<std::pair<int32_t, float>> top_logprobs(std::span<const float> logits, int k);

// The stop-string filter used by generation: feed it text, it returns what may be emitted now.
class StopStringFilter {
 public:
  explicit StopStringFilter(std::vector<std::string> stops);

  // Appends text; returns the longest prefix of the pending text that can no longer be part of
  // a stop string. Once a stop string completes, returns the text before it, sets stopped(), and
  // ignores further input.
  std::string push(std::string_view text);
  // At the end of generation: the text still held back (nothing after a stop).
  std::string flush();

  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace insitu
