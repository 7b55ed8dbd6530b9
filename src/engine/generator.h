// Text generation: prompt processing, then sample / evaluate one token at a time, streaming text.
//
// Streaming guarantees: text reaches on_text only in complete UTF-8 characters (StreamDecoder);
// a stop string is never emitted, and text that could still turn into one is held back until it
// cannot (so a caller never has to retract output). Generation stops at the first of: an
// end-of-generation token (not emitted unless render_special), a completed stop string,
// max_tokens generated, a full context, or on_text returning false.
// Not thread-safe per session; independent sessions may generate concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampler.h"
#include "tokenizer/tokenizer.h"

namespace insitu {

class Session;

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

struct GenerateOptions {
  int max_tokens = 256;                // <= 0: until EOG, a stop string or a full context
  SamplerOptions sampling;
  std::vector<std::string> stop;       // stop strings (empty ones are ignored)
  bool stop_at_eog = true;             // end at the tokenizer's end-of-generation tokens
  bool render_special = false;         // emit control tokens' text
};

enum class StopReason { kEog, kStopString, kMaxTokens, kContextFull, kCancelled };
const char* stop_reason_name(StopReason r);  // "eog", "stop", "length", "context", "cancelled"

struct GenerateStats {
  int n_prompt = 0;     // tokens evaluated as the prompt
  int n_generated = 0;  // tokens sampled (including a final EOG token)
  double prefill_seconds = 0;
  double decode_seconds = 0;  // sampling + evaluating generated tokens
  double prefill_tokens_per_second() const;
  double decode_tokens_per_second() const;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // sampled ids, in order
  std::string text;             // everything passed to on_text, concatenated
  StopReason stop_reason = StopReason::kMaxTokens;
  std::string stop_string;      // the stop string that matched (kStopString)
  GenerateStats stats;
};

// Receives text as it becomes final; return false to stop generating.
using TextCallback = std::function<bool(std::string_view text)>;

// Evaluates `prompt` (appended at the model's current position; must be non-empty) and generates.
// `history` tokens already in the context (e.g. a cached prefix) count for the repetition
// penalty. Throws InvalidArgument for an empty prompt or one that does not fit the context.
GenerateResult generate(TokenModel& model, std::span<const int32_t> prompt,
                        const GenerateOptions& options, const TextCallback& on_text,
                        std::span<const int32_t> history = {});

// Same, on a Session.
GenerateResult generate(Session& session, std::span<const int32_t> prompt,
                        const GenerateOptions& options, const TextCallback& on_text,
                        std::span<const int32_t> history = {});

// The stop-string filter used by generate: feed it text, it returns what may be emitted now.
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
