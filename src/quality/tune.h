// `insitu tune` and `--quant auto`: which quantization of a model fits this machine, what it costs
// and how much context it leaves, from the model's shapes alone (Model loaded with
// LoadOptions::shapes_only: no weight is read).
//
// For each candidate (the weights as stored, then q8_0 f8q8 fp8 q6k q5k q4k hqq4 afq4 q3k q2k, plus
// a requested type or mix not among them):
//   * Est. size is exact: the sum of Weight::nbytes of the model an ISQ load with that type holds,
//     i.e. the stored sizes with every weight plan_isq converts replaced by its bytes_after. So it
//     follows the same decisions the load makes: promotion, row-length fallbacks, topology pins,
//     moqe, imatrix-free types only.
//   * Context room: the largest context n (up to the model's training context) whose Session --
//     KV cache, scratch and one row of logits, model/session_memory.h, the arithmetic the Session
//     is tested against -- fits next to the weights in the memory.
//   * Fit: the weights plus a Session of the context asked for (--ctx, default run's 4096) in the
//     memory of the device that computes. This build computes on the CPU, so that is system RAM;
//     with an accelerator that computes (gpu_usable), Fits means within its memory and Hybrid within
//     its memory plus system RAM.
//   * Quality: a fixed tier per type (mistral.rs's table, tuning.rs quality_tier), or a measured
//     mean KL divergence from the stored weights when the caller fills TuneCandidate::kld.
// Recommendation (what --quant auto loads), unlike mistral.rs which always quantizes:
//   1. the weights as stored, when they fit (no quantization is needed);
//   2. else the first type of the profile's list (or the one requested) that fits;
//   3. else the largest candidate that fits; Hybrid candidates only when nothing fits outright.
//   Never a larger type that does not fit over a smaller one that does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/isq.h"
#include "model/model.h"

namespace insitu {

enum class TuneProfile { kQuality, kBalanced, kFast };
const char* tune_profile_name(TuneProfile profile);  // "quality" "balanced" "fast"
// Throws InvalidArgument listing the valid names.
TuneProfile parse_tune_profile(std::string_view text);
// The profile's types in order of preference: quality q8_0 q6k q5k q4k q3k q2k; balanced q6k q5k
// q4k q3k; fast q4k q3k q2k (mistral.rs's CPU/CUDA lists).
std::vector<QuantType> tune_profile_types(TuneProfile profile);

enum class FitStatus { kFits, kHybrid, kTooLarge };
const char* fit_status_name(FitStatus status);  // "fits" "hybrid" "too-large"

// "baseline" for the stored weights (nullopt), else "near-lossless", "good", "acceptable" or
// "degraded" (mistral.rs's tiers; f8q8 counts as near-lossless and fp8 as good, which mistral.rs
// leaves at its default "acceptable").
const char* quality_tier(std::optional<QuantType> type);

// The memory a model is placed in. `device_bytes` is the memory of the device that computes (system
// RAM on a CPU build); `host_bytes` is system RAM a GPU build could spill layers to (only with
// gpu_usable).
struct TuneMemory {
  uint64_t device_bytes = 0;
  bool gpu_usable = false;
  uint64_t host_bytes = 0;
};

struct TuneOptions {
  TuneProfile profile = TuneProfile::kBalanced;
  // --isq TYPE|MIX: replaces the profile's list (and is added as a row when not a candidate).
  std::optional<IsqTarget> requested;
  // The rest of the ISQ options every candidate is planned with (topology, organization, pure,
  // imatrix); type and mix are replaced per candidate.
  IsqOptions isq;
  int n_ctx = 4096;  // the context a run allocates (run's --ctx)
  KvCacheType kv_type = KvCacheType::kF16;
  int n_threads = 1;  // the run's pool size (each thread holds one row of attention scores)
  TuneMemory memory;
};

struct TuneCandidate {
  std::optional<IsqTarget> target;  // nullopt: the weights as stored (no ISQ)
  std::string name;                 // "q4k", "q4k_m", or "none (bf16)"
  uint64_t weight_bytes = 0;        // Σ Weight::nbytes after such a load
  uint64_t session_bytes = 0;       // a Session of options.n_ctx
  double memory_percent = 0;        // weight_bytes / memory.device_bytes, in percent
  int64_t max_context = 0;          // context room (0: not even one token)
  bool context_is_model_max = false;
  std::string quality;              // quality_tier
  std::optional<double> kld;        // measured mean KL divergence (nats/token), when measured
  std::optional<double> top1;       // measured top-1 agreement with the stored weights (0..1)
  FitStatus status = FitStatus::kTooLarge;
  bool recommended = false;
};

struct TuneResult {
  std::string model_name;
  std::string model_path;
  int n_ctx_train = 0;
  TuneProfile profile = TuneProfile::kBalanced;
  int n_ctx = 0;
  KvCacheType kv_type = KvCacheType::kF16;
  uint64_t kv_bytes_per_token = 0;  // KV cache bytes one more token of context costs
  TuneMemory memory;
  std::vector<TuneCandidate> candidates;
  int recommended = -1;  // index into candidates; -1 when nothing fits
  std::vector<std::string> warnings;
};

// The analysis for a model loaded as stored (shapes_only or a plain load; not with ISQ). A
// candidate ISQ cannot produce for this model (a type that needs an importance matrix without
// one, moqe on a dense model) is left out with a warning; the requested one throws instead.
// Throws InvalidArgument when options.n_ctx < 1.
TuneResult tune_model(const Model& model, const TuneOptions& options);

// The ISQ options candidate `target` is planned (and measured) with: options.isq with the
// target's type or mix, quietly.
IsqOptions candidate_isq_options(const TuneOptions& options, const IsqTarget& target);

// The exact bytes of the weights after an ISQ load of `model` with `isq` (nullopt: none).
uint64_t isq_weight_bytes(const Model& model, const std::optional<IsqOptions>& isq);

// The largest context (<= cap) whose Session fits in `memory` next to `weight_bytes`; 0 if none.
int64_t context_room(const ModelConfig& config, uint64_t weight_bytes, uint64_t memory,
                     KvCacheType kv_type, int n_threads, int64_t cap);

}  // namespace insitu
