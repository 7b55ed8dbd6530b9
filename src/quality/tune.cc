#include "quality/tune.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "insitu/error.h"
#include "model/session_memory.h"
#include "quant/type_traits.h"

namespace insitu {

const char* tune_profile_name(TuneProfile profile) {
  switch (profile) {
    case TuneProfile::kQuality: return "quality";
    case TuneProfile::kBalanced: return "balanced";
    case TuneProfile::kFast: return "fast";
  }
  return "?";
}

TuneProfile parse_tune_profile(std::string_view text) {
  for (TuneProfile p : {TuneProfile::kQuality, TuneProfile::kBalanced, TuneProfile::kFast})
    if (text == tune_profile_name(p)) return p;
  throw InvalidArgument(
      fmt::format("--profile: unknown profile '{}'; valid: quality balanced fast", text));
}

std::vector<QuantType> tune_profile_types(TuneProfile profile) {
  using Q = QuantType;
  switch (profile) {
    case TuneProfile::kQuality: return {Q::kQ8_0, Q::kQ6K, Q::kQ5K, Q::kQ4K, Q::kQ3K, Q::kQ2K};
    case TuneProfile::kBalanced: return {Q::kQ6K, Q::kQ5K, Q::kQ4K, Q::kQ3K};
    case TuneProfile::kFast: return {Q::kQ4K, Q::kQ3K, Q::kQ2K};
  }
  return {};
}

const char* fit_status_name(FitStatus status) {
  switch (status) {
    case FitStatus::kFits: return "fits";
    case FitStatus::kHybrid: return "hybrid";
    case FitStatus::kTooLarge: return "too-large";
  }
  return "?";
}

const char* quality_tier(std::optional<QuantType> type) {
  return quality_tier_name(type ? type_traits(*type).quality_tier : QualityTier::kBaseline);
}

namespace {

// The rows every tune shows after the stored weights, largest first.
std::vector<QuantType> candidate_types() {
  using Q = QuantType;
  return {Q::kQ8_0, Q::kF8Q8, Q::kFP8, Q::kQ6K, Q::kQ5K, Q::kQ4K, Q::kHQQ4, Q::kAFQ4,
          Q::kQ3K,  Q::kQ2K};
}

// "none (bf16)", or "none (mixed)" for weights stored in several quantized types.
std::string stored_name(const Model& model) {
  std::map<QuantType, uint64_t> bytes;
  for (const Weight& w : model.weights())
    if (w.ne.size() >= 2) bytes[w.type] += w.nbytes;
  if (bytes.size() == 1) return fmt::format("none ({})", quant_type_name(bytes.begin()->first));
  return "none (mixed)";
}

bool same_target(const IsqTarget& a, const IsqTarget& b) { return a.name() == b.name(); }

}  // namespace

IsqOptions candidate_isq_options(const TuneOptions& options, const IsqTarget& target) {
  IsqOptions isq = options.isq;
  isq.type = target.type;
  isq.mix = target.mix;
  isq.topology_only = false;
  isq.show_progress = false;
  return isq;
}

uint64_t isq_weight_bytes(const Model& model, const std::optional<IsqOptions>& isq) {
  uint64_t total = 0;
  for (const Weight& w : model.weights()) total += w.nbytes;
  if (!isq) return total;
  for (const IsqDecision& d : model.plan_isq(*isq)) total = total - d.bytes_before + d.bytes_after;
  return total;
}

int64_t context_room(const ModelConfig& config, uint64_t weight_bytes, uint64_t memory,
                     KvCacheType kv_type, int n_threads, int64_t cap) {
  auto fits = [&](int64_t n) {
    return weight_bytes + session_bytes(config, static_cast<int>(n), kv_type, n_threads) <= memory;
  };
  if (cap < 1 || weight_bytes >= memory || !fits(1)) return 0;
  // session_bytes grows with n: the largest n that fits, by bisection.
  int64_t lo = 1, hi = cap;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

TuneResult tune_model(const Model& model, const TuneOptions& o) {
  if (o.n_ctx < 1) throw InvalidArgument(fmt::format("tune: context {} must be >= 1", o.n_ctx));
  const ModelConfig& c = model.config();
  TuneResult r;
  r.model_name = c.name;
  r.model_path = model.source_path();
  r.n_ctx_train = c.n_ctx_train;
  r.profile = o.profile;
  r.n_ctx = o.n_ctx;
  r.kv_type = o.kv_type;
  r.kv_bytes_per_token = kv_cache_bytes(c, 1, o.kv_type);
  r.memory = o.memory;
  const int n_threads = std::max(o.n_threads, 1);
  const uint64_t device = o.memory.device_bytes;
  const uint64_t spill = o.memory.gpu_usable ? o.memory.host_bytes : 0;
  const int64_t cap = c.n_ctx_train > 0 ? c.n_ctx_train : int64_t{1} << 24;
  const uint64_t session = session_bytes(c, o.n_ctx, o.kv_type, n_threads);

  std::vector<std::optional<IsqTarget>> targets = {std::nullopt};
  for (QuantType t : candidate_types()) targets.push_back(IsqTarget{t, std::nullopt});
  if (o.requested &&
      std::none_of(targets.begin() + 1, targets.end(),
                   [&](const auto& t) { return same_target(*t, *o.requested); }))
    targets.push_back(o.requested);

  for (const std::optional<IsqTarget>& target : targets) {
    TuneCandidate cand;
    cand.target = target;
    cand.name = target ? target->name() : stored_name(model);
    cand.quality = quality_tier(target ? std::optional<QuantType>(target->type) : std::nullopt);
    std::optional<IsqOptions> isq;
    if (target) isq = candidate_isq_options(o, *target);
    try {
      cand.weight_bytes = isq_weight_bytes(model, isq);
    } catch (const InvalidArgument& e) {
      if (o.requested && target && same_target(*target, *o.requested)) throw;
      r.warnings.push_back(fmt::format("{} left out: {}", cand.name, e.what()));
      continue;
    }
    cand.session_bytes = session;
    cand.memory_percent = device > 0 ? 100.0 * static_cast<double>(cand.weight_bytes) /
                                           static_cast<double>(device)
                                     : 0.0;
    const uint64_t need = cand.weight_bytes + session;
    if (need <= device) {
      cand.status = FitStatus::kFits;
    } else if (spill > 0 && need <= device + spill) {
      cand.status = FitStatus::kHybrid;
    }
    const uint64_t room_memory = cand.status == FitStatus::kHybrid ? device + spill : device;
    cand.max_context =
        context_room(c, cand.weight_bytes, room_memory, o.kv_type, n_threads, cap);
    cand.context_is_model_max = c.n_ctx_train > 0 && cand.max_context >= c.n_ctx_train;
    if (cand.status == FitStatus::kTooLarge && target)
      r.warnings.push_back(fmt::format("{} ({:.2f} GiB with a {}-token session) exceeds the {:.2f} "
                                       "GiB available", cand.name,
                                       static_cast<double>(need) / (1 << 30), o.n_ctx,
                                       static_cast<double>(device + spill) / (1 << 30)));
    r.candidates.push_back(std::move(cand));
  }

  // The recommendation, in order (see the header).
  std::vector<IsqTarget> preferred;
  if (o.requested) {
    preferred.push_back(*o.requested);
  } else {
    for (QuantType t : tune_profile_types(o.profile)) preferred.push_back({t, std::nullopt});
  }
  auto find = [&](FitStatus status, const std::optional<IsqTarget>& target) {
    for (size_t i = 0; i < r.candidates.size(); ++i) {
      const TuneCandidate& k = r.candidates[i];
      if (k.status != status || k.target.has_value() != target.has_value()) continue;
      if (!target || same_target(*k.target, *target)) return static_cast<int>(i);
    }
    return -1;
  };
  for (FitStatus status : {FitStatus::kFits, FitStatus::kHybrid}) {
    if (!o.requested && r.recommended < 0) r.recommended = find(status, std::nullopt);
    for (size_t i = 0; i < preferred.size() && r.recommended < 0; ++i)
      r.recommended = find(status, preferred[i]);
    for (size_t i = 0; i < r.candidates.size() && r.recommended < 0; ++i)
      if (r.candidates[i].status == status) r.recommended = static_cast<int>(i);
    if (r.recommended >= 0) break;
  }
  if (r.recommended >= 0) r.candidates[r.recommended].recommended = true;
  return r;
}

}  // namespace insitu
