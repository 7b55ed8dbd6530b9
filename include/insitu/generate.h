// Text generation: options, the per-token event, results, and the loop that drives a Session.
//
// Streaming guarantees: an event's text holds only complete UTF-8 characters; a stop string is
// never emitted, and text that could still turn into one is held back until it cannot (so a caller
// never has to retract output). Generation stops at the first of: an end-of-generation token (its
// text not emitted unless render_special), a completed stop string, max_tokens generated, a full
// context, or the callback returning false.
//
// A Generation is the per-sequence state between decoding steps (sampler, RNG, stop filter,
// UTF-8 decoder); generate() runs one on a Session, and Executor::generate_batch runs many at once
// (include/insitu/executor.h). Not thread-safe per sequence; independent sequences may run on
// different threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace insitu {

class Session;
class Tokenizer;

// Sampling, in llama.cpp's default order: repetition penalty -> top-k -> top-p -> min-p ->
// temperature -> draw (engine/sampler.h). A seed reproduces a run exactly on every platform.
struct SamplerOptions {
  float temperature = 0.8f;     // default 0.8; <= 0: greedy (argmax, ties to the lowest id)
  int top_k = 40;               // default 40; <= 0: off
  float top_p = 0.95f;          // default 0.95; >= 1: off
  float min_p = 0.05f;          // default 0.05; <= 0: off
  float repeat_penalty = 1.0f;  // default 1 (off); > 1 discourages tokens in the last n
  int repeat_last_n = 64;       // default 64; 0: off; < 0: the whole history
  float frequency_penalty = 0;  // default 0 (off); OpenAI's: minus this x the token's count
  float presence_penalty = 0;   // default 0 (off); OpenAI's: minus this once a token appeared
  uint64_t seed = 0;            // default 0; seeds the sequence's RNG (std::mt19937_64)
  // Throws InvalidArgument naming the option for NaN or out-of-range values
  // (temperature < 0 is allowed and means greedy; top_p in (0, 1]; min_p in [0, 1]; penalty > 0;
  // frequency and presence penalties in [-2, 2]).
  void validate() const;
};

struct GenerateOptions {
  int max_tokens = 256;              // default 256; <= 0: until EOG, a stop string or full context
  SamplerOptions sampling;           // default: see SamplerOptions
  std::vector<std::string> stop;     // default none; stop strings (empty ones are ignored)
  bool stop_at_eog = true;           // default true; end at the tokenizer's end-of-generation ids
  bool render_special = false;       // default false; emit control tokens' text
  int top_logprobs = 0;              // default 0; > 0: each event lists the k most likely tokens
  bool logprobs = false;             // default false; fill TokenEvent::logprob
  // Throws InvalidArgument naming the option for an invalid value (sampling, top_logprobs
  // outside [0, 20]).
  void validate() const;
};

// Why a generation ended. Names (finish_reason_name) follow OpenAI where it has one.
enum class StopReason { kEog, kStopString, kMaxTokens, kContextFull, kCancelled };
// "eog", "stop", "length", "context", "cancelled".
const char* stop_reason_name(StopReason r);
// OpenAI's finish_reason: "stop" (EOG or a stop string), "length" (max tokens or a full context),
// "cancelled".
const char* finish_reason_name(StopReason r);

// One sampled token, as it becomes final.
struct TokenEvent {
  int32_t token = -1;   // the sampled id (-1 only for a closing event with no token)
  std::string text;     // text final after this token (may be empty: held back or a control id)
  float logprob = 0;    // log-probability of `token` under the model's distribution (logprobs)
  // The top_logprobs most likely ids with their log-probabilities, most likely first.
  std::vector<std::pair<int32_t, float>> top_logprobs;
  bool is_last = false;  // no event follows
  std::optional<StopReason> finish_reason;  // set on the last event
};

// Receives each event; return false to stop generating (finish reason kCancelled).
using TokenCallback = std::function<bool(const TokenEvent& event)>;

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
  std::string text;             // every event's text, concatenated
  StopReason stop_reason = StopReason::kMaxTokens;
  std::string stop_string;      // the stop string that matched (kStopString)
  GenerateStats stats;
};

// The state of one sequence's decoding between steps. Feed it the logits after its last token;
// it samples, reports the token's event, and says what to evaluate next.
class Generation {
 public:
  // context: the tokens already in the sequence (history and prompt), for the repetition and
  // frequency penalties. options are validated (InvalidArgument).
  Generation(const Tokenizer& tokenizer, const GenerateOptions& options,
             std::span<const int32_t> context);
  ~Generation();
  Generation(Generation&&) noexcept;
  Generation& operator=(Generation&&) noexcept;

  // Samples from `logits` (n_vocab values after the last token), reports the token's event to
  // `on_event` (may be null), and returns the token to evaluate next, or nullopt when the
  // generation is over (then finished() and the last event had is_last). n_remaining: positions
  // left in the context after the tokens evaluated so far.
  std::optional<int32_t> advance(std::span<const float> logits, int n_remaining,
                                 const TokenCallback& on_event);
  // Ends a generation that was not finished (e.g. its client went away): kCancelled.
  void cancel();

  bool finished() const;
  const GenerateResult& result() const;
  GenerateResult& result();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Evaluates `prompt` (appended at the session's current position; must be non-empty) and
// generates. `history` tokens already in the context (e.g. a cached prefix) count for the
// penalties. Throws InvalidArgument for an empty prompt or one that does not fit the context.
GenerateResult generate(Session& session, std::span<const int32_t> prompt,
                        const GenerateOptions& options, const TokenCallback& on_event = nullptr,
                        std::span<const int32_t> history = {});

}  // namespace insitu
