#include "engine/generator.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "insitu/error.h"
#include "model/model.h"

namespace insitu {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kEog: return "eog";
    case StopReason::kStopString: return "stop";
    case StopReason::kMaxTokens: return "length";
    case StopReason::kContextFull: return "context";
    case StopReason::kCancelled: return "cancelled";
  }
  return "unknown";
}

double GenerateStats::prefill_tokens_per_second() const {
  return prefill_seconds > 0 ? n_prompt / prefill_seconds : 0.0;
}

double GenerateStats::decode_tokens_per_second() const {
  return decode_seconds > 0 ? n_generated / decode_seconds : 0.0;
}

StopStringFilter::StopStringFilter(std::vector<std::string> stops) {
  for (std::string& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

std::string StopStringFilter::push(std::string_view text) {
  if (stopped_) return {};
  pending_.append(text);
  // The earliest complete stop string wins (the longer one when two start at the same byte).
  size_t best = std::string::npos;
  for (const std::string& s : stops_) {
    const size_t pos = pending_.find(s);
    if (pos == std::string::npos) continue;
    if (pos < best || (pos == best && s.size() > matched_.size())) {
      best = pos;
      matched_ = s;
    }
  }
  if (best != std::string::npos) {
    std::string out = pending_.substr(0, best);
    pending_.clear();
    stopped_ = true;
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    for (size_t k = std::min(s.size() - 1, pending_.size()); k > hold; --k) {
      if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopStringFilter::flush() {
  std::string out;
  if (!stopped_) out.swap(pending_);
  pending_.clear();
  return out;
}

GenerateResult generate(TokenModel& model, std::span<const int32_t> prompt,
                        const GenerateOptions& options, const TextCallback& on_text,
                        std::span<const int32_t> history) {
  using Clock = std::chrono::steady_clock;
  if (prompt.empty()) throw InvalidArgument("generate: empty prompt");
  if (static_cast<int64_t>(prompt.size()) > model.n_remaining())
    throw InvalidArgument(fmt::format("generate: prompt of {} tokens does not fit the {} tokens "
                                      "left in the context", prompt.size(), model.n_remaining()));
  const Sampler sampler(options.sampling);
  std::mt19937_64 rng(options.sampling.seed);
  const Tokenizer& tok = model.tokenizer();

  GenerateResult r;
  std::vector<int32_t> context(history.begin(), history.end());
  context.insert(context.end(), prompt.begin(), prompt.end());
  std::vector<float> logits;

  const auto t0 = Clock::now();
  model.eval(prompt, logits);
  const auto t1 = Clock::now();
  r.stats.n_prompt = static_cast<int>(prompt.size());
  r.stats.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

  StreamDecoder decoder(tok, options.render_special);
  StopStringFilter filter(options.stop);
  bool cancelled = false;
  // Passes final text to the caller; false once the caller asked to stop.
  auto emit = [&](const std::string& text) {
    if (text.empty() || cancelled) return !cancelled;
    r.text += text;
    if (on_text && !on_text(text)) cancelled = true;
    return !cancelled;
  };

  r.stop_reason = StopReason::kMaxTokens;
  bool done = false;
  while (!done) {
    if (options.max_tokens > 0 && r.stats.n_generated >= options.max_tokens) {
      r.stop_reason = StopReason::kMaxTokens;
      break;
    }
    const int32_t id = sampler.sample(logits, context, rng);
    r.tokens.push_back(id);
    context.push_back(id);
    ++r.stats.n_generated;
    const bool eog = options.stop_at_eog && tok.is_eog(id);
    if (eog && !options.render_special) {
      r.stop_reason = StopReason::kEog;
      break;
    }
    if (!emit(filter.push(decoder.push(id)))) {
      r.stop_reason = StopReason::kCancelled;
      break;
    }
    if (filter.stopped()) {
      r.stop_reason = StopReason::kStopString;
      break;
    }
    if (eog) {
      r.stop_reason = StopReason::kEog;
      break;
    }
    if (model.n_remaining() < 1) {
      r.stop_reason = StopReason::kContextFull;
      break;
    }
    model.eval(std::span<const int32_t>(&id, 1), logits);
  }
  // Text held back for an incomplete character or a possible stop string is final now.
  if (!cancelled && !filter.stopped()) {
    emit(filter.push(decoder.flush()));
    if (filter.stopped()) r.stop_reason = StopReason::kStopString;
    else emit(filter.flush());
  }
  if (cancelled) r.stop_reason = StopReason::kCancelled;
  if (filter.stopped()) r.stop_string = filter.matched();
  r.stats.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return r;
}

namespace {

class SessionModel : public TokenModel {
 public:
  explicit SessionModel(Session& s) : s_(s) {}
  const Tokenizer& tokenizer() const override { return s_.model().tokenizer(); }
  void eval(std::span<const int32_t> tokens, std::vector<float>& logits) override {
    s_.eval(tokens, false, logits);
  }
  int n_remaining() const override { return s_.n_ctx() - s_.n_past(); }

 private:
  Session& s_;
};

}  // namespace

GenerateResult generate(Session& session, std::span<const int32_t> prompt,
                        const GenerateOptions& options, const TextCallback& on_text,
                        std::span<const int32_t> history) {
  SessionModel m(session);
  return generate(m, prompt, options, on_text, history);
}

}  // namespace insitu
