#include "runtime/generator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>

#include <fmt/format.h>

#include "insitu/error.h"
#include "model/model.h"

namespace insitu {

void GenerateOptions::validate() const {
  sampling.validate();
  if (top_logprobs < 0 || top_logprobs > 20)
    throw InvalidArgument(fmt::format("generate: top_logprobs = {} invalid; expected 0 to 20",
                                      top_logprobs));
}

const char* finish_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kEog:
    case StopReason::kStopString: return "stop";
    case StopReason::kMaxTokens:
    case StopReason::kContextFull: return "length";
    case StopReason::kCancelled: return "cancelled";
  }
  return "unknown";
}

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

namespace {

// log(sum(exp(l - max))) + max over the finite logits; -inf when none is finite.
double log_sum_exp(std::span<const float> logits) {
  float mx = -std::numeric_limits<float>::infinity();
  for (float x : logits)
    if (std::isfinite(x)) mx = std::max(mx, x);
  if (!std::isfinite(mx)) return mx;
  double sum = 0;
  for (float x : logits)
    if (std::isfinite(x)) sum += std::exp(static_cast<double>(x) - mx);
  return std::log(sum) + mx;
}

}  // namespace

float token_logprob(std::span<const float> logits, int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= logits.size() || !std::isfinite(logits[id]))
    return -std::numeric_limits<float>::infinity();
  return static_cast<float>(logits[id] - log_sum_exp(logits));
}

std::vector<std::pair<int32_t, float>> top_logprobs(std::span<const float> logits, int k) {
  std::vector<std::pair<int32_t, float>> top;
  if (k <= 0 || logits.empty()) return top;
  const double lse = log_sum_exp(logits);
  std::vector<int32_t> ids;
  ids.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    if (std::isfinite(logits[i])) ids.push_back(static_cast<int32_t>(i));
  const size_t take = std::min(ids.size(), static_cast<size_t>(k));
  std::partial_sort(ids.begin(), ids.begin() + take, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  });
  for (size_t i = 0; i < take; ++i)
    top.emplace_back(ids[i], static_cast<float>(logits[ids[i]] - lse));
  return top;
}

struct Generation::Impl {
  Impl(const Tokenizer& tok, const GenerateOptions& o, std::span<const int32_t> ctx)
      : tokenizer(tok),
        options(o),
        sampler(o.sampling),
        rng(o.sampling.seed),
        context(ctx.begin(), ctx.end()),
        decoder(tok, o.render_special),
        filter(o.stop) {}
  const Tokenizer& tokenizer;
  GenerateOptions options;
  Sampler sampler;
  std::mt19937_64 rng;
  std::vector<int32_t> context;
  StreamDecoder decoder;
  StopStringFilter filter;
  GenerateResult result;
  bool finished = false;
};

Generation::Generation(const Tokenizer& tokenizer, const GenerateOptions& options,
                       std::span<const int32_t> context) {
  options.validate();
  impl_ = std::make_unique<Impl>(tokenizer, options, context);
}

Generation::~Generation() = default;
Generation::Generation(Generation&&) noexcept = default;
Generation& Generation::operator=(Generation&&) noexcept = default;

bool Generation::finished() const { return impl_->finished; }
const GenerateResult& Generation::result() const { return impl_->result; }
GenerateResult& Generation::result() { return impl_->result; }

void Generation::cancel() {
  if (impl_->finished) return;
  impl_->finished = true;
  impl_->result.stop_reason = StopReason::kCancelled;
}

std::optional<int32_t> Generation::advance(std::span<const float> logits, int n_remaining,
                                           const TokenCallback& on_event) {
  Impl& g = *impl_;
  if (g.finished) return std::nullopt;
  GenerateResult& r = g.result;
  const GenerateOptions& o = g.options;
  const int32_t id = g.sampler.sample(logits, g.context, g.rng);
  r.tokens.push_back(id);
  g.context.push_back(id);
  ++r.stats.n_generated;

  TokenEvent e;
  e.token = id;
  if (o.logprobs || o.top_logprobs > 0) e.logprob = token_logprob(logits, id);
  if (o.top_logprobs > 0) e.top_logprobs = top_logprobs(logits, o.top_logprobs);

  std::optional<StopReason> reason;
  const bool eog = o.stop_at_eog && g.tokenizer.is_eog(id);
  if (eog && !o.render_special) {
    reason = StopReason::kEog;
  } else {
    e.text = g.filter.push(g.decoder.push(id));
    if (g.filter.stopped()) reason = StopReason::kStopString;
    else if (eog) reason = StopReason::kEog;
    else if (n_remaining < 1) reason = StopReason::kContextFull;
    else if (o.max_tokens > 0 && r.stats.n_generated >= o.max_tokens) reason = StopReason::kMaxTokens;
  }
  if (reason && !g.filter.stopped()) {
    // Text held back for an incomplete character or a possible stop string is final now.
    e.text += g.filter.push(g.decoder.flush());
    if (g.filter.stopped()) reason = StopReason::kStopString;
    else e.text += g.filter.flush();
  }
  if (reason) {
    g.finished = true;
    r.stop_reason = *reason;
    if (g.filter.stopped()) r.stop_string = g.filter.matched();
    e.is_last = true;
    e.finish_reason = reason;
  }
  r.text += e.text;
  if (on_event && !on_event(e)) {
    if (!g.finished) {
      g.finished = true;
      r.stop_reason = StopReason::kCancelled;
    }
    return std::nullopt;
  }
  if (g.finished) return std::nullopt;
  return id;
}

GenerateResult generate(TokenModel& model, std::span<const int32_t> prompt,
                        const GenerateOptions& options, const TokenCallback& on_event,
                        std::span<const int32_t> history) {
  using Clock = std::chrono::steady_clock;
  if (prompt.empty()) throw InvalidArgument("generate: empty prompt");
  if (static_cast<int64_t>(prompt.size()) > model.n_remaining())
    throw InvalidArgument(fmt::format("generate: prompt of {} tokens does not fit the {} tokens "
                                      "left in the context", prompt.size(), model.n_remaining()));
  std::vector<int32_t> context(history.begin(), history.end());
  context.insert(context.end(), prompt.begin(), prompt.end());
  Generation gen(model.tokenizer(), options, context);
  std::vector<float> logits;

  const auto t0 = Clock::now();
  model.eval(prompt, logits);
  const auto t1 = Clock::now();
  gen.result().stats.n_prompt = static_cast<int>(prompt.size());
  gen.result().stats.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  // max_tokens < 0 means no limit, like 0.
  while (std::optional<int32_t> next = gen.advance(logits, model.n_remaining(), on_event))
    model.eval(std::span<const int32_t>(&*next, 1), logits);
  GenerateResult r = std::move(gen.result());
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
                        const GenerateOptions& options, const TokenCallback& on_event,
                        std::span<const int32_t> history) {
  SessionModel m(session);
  return generate(m, prompt, options, on_event, history);
}

}  // namespace insitu
