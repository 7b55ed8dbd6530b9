// In-situ quantization (ISQ): deciding, per weight, what type a model loads it as, and converting
// the weights in place while the model loads.
//
// Weights are chosen by their role in the architecture (the loader resolves roles from the layer
// structure, never from name suffixes). The decision for one weight, in order:
//   1. the requested type, or when a llama.cpp mix is requested (model/isq_mix.h) the type its
//      recipe gives the weight's role and layer (the mix then replaces step 2);
//   2. unless `pure`: token embeddings and the output head are promoted as mistral.rs does
//      (IsqType::promote_for_sensitive_tensor: q2k/q3k/q4k/q4_0/q4_1 and every i-quant/ternary type
//      -> q6k; q5*/q6k/q8* -> q8_0; afq2/3/4 -> afq6 and afq6/8 -> afq8 with the same group size;
//      float, mxfp4, fp8*, f8q8 unchanged) except that hqq2/3/4 -> hqq8, which mistral.rs leaves
//      at the requested bits;
//   3. a row length the type cannot hold falls back as llama.cpp's quantizer does
//      (llama-quant.cpp tensor_type_fallback, llama.cpp as vendored in llama-cpp-python 0.3.36):
//      i-quants -> iq4_nl, q2k/q3k/tq* -> q4_0, q4k -> q5_0, q5k -> q5_1, q6k -> q8_0; and for the
//      insitu types: afq (groups of 64/128) -> the same bits in groups of 32, hqq2/3/4 -> q4_1,
//      hqq8 -> q8_0 (mistral.rs keeps such AFQ weights unquantized and has no HQQ fallback);
//      f16 when even that does not fit.
// A topology (model/isq_topology.h) entry matching the weight replaces steps 1 and 2 with its type
// ("pinned"); step 3 still applies.
// A weight already stored in its decided type is kept as is. The plan is computed from shapes alone
// (no weight data), so its byte counts are exactly what loading produces.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "insitu/options.h"
#include "insitu/quant_type.h"
#include "model/isq_mix.h"
#include "util/thread_pool.h"

namespace insitu {

struct Weight;       // model/model.h
class IsqTopology;  // model/isq_topology.h

enum class WeightRole {
  kTokenEmbedding,
  kOutput,
  kAttnQ,
  kAttnK,
  kAttnV,
  kAttnOutput,
  kFfnGate,
  kFfnUp,
  kFfnDown,
  // Mixture of experts (Mixtral): the router, and the stacked routed experts' projections.
  kFfnRouter,
  kFfnGateExp,
  kFfnUpExp,
  kFfnDownExp,
};

const char* weight_role_name(WeightRole role);

// The routed experts' projections (kFfn*Exp).
bool is_expert_role(WeightRole role);

// Which weights ISQ quantizes (mistral.rs --isq-organization):
//   kDefault: attention, dense MLP and routed expert projections, plus token embeddings and the
//     output head (promoted). A MoE router stays as stored: it is tiny and decides which experts
//     run, and llama.cpp never quantizes ffn_gate_inp either (mistral.rs does for Mixtral).
//   kMoqe: only the routed expert projections (MoQE); attention, router, embeddings and output head
//     stay as stored. A model without experts is refused.
// (IsqOrganization and its names are declared in insitu/options.h.)

// The type a sensitive tensor (token embeddings, output head) is promoted to for `requested`.
QuantType isq_promoted_type(QuantType requested);

// The type a row of n_per_row elements gets when `type`'s blocks do not divide it; `type` itself
// when they do.
QuantType isq_row_fallback(QuantType type, int64_t n_per_row);

// A weight the quantizer is asked to consider, with its role and, for per-layer weights, its
// layer index (-1 for embeddings and the output head).
struct IsqCandidate {
  Weight* weight = nullptr;
  WeightRole role = WeightRole::kAttnQ;
  int layer = -1;
};

struct IsqDecision {
  Weight* weight = nullptr;
  WeightRole role = WeightRole::kAttnQ;
  int layer = -1;  // the candidate's layer; -1 for embeddings and the output head
  QuantType from = QuantType::kF32;
  QuantType to = QuantType::kF32;
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
  std::string note;  // why `to` differs from the requested type (promotion, fallback), or empty
  QuantType target = QuantType::kF32;  // `to` before the row-length fallback (UQFF report)
  // The topology entry (model/isq_topology.h) that matched the weight, or empty; `pinned` when it
  // named the type (before the row-length fallback), which a later re-quantization keeps.
  std::string topology_key;
  bool pinned = false;
  // > 0: the weight's rows are still in Hugging Face order (model/hf_names.h permute_qk_rows with
  // this many heads); apply_isq permutes the converted rows, which gives the same bytes as
  // converting permuted rows because every row is quantized on its own. Saves a full-precision
  // copy of each Q/K weight while loading.
  int permute_heads = 0;
  // Non-empty: the weight is a stack of experts not yet assembled (its data is null); apply_isq
  // converts expert e from expert_sources[e] into its slab and releases that source's pages.
  std::vector<const Weight*> expert_sources;
  bool converts() const { return from != to; }
};

// Per-tensor importance vector by GGUF tensor name, or null: the row length, or for a stack of
// experts either that (shared) or n_expert times it (one row per expert, as llama-quantize uses).
using IsqImatrixLookup = std::function<const std::vector<float>*(std::string_view name)>;

struct Imatrix;  // io/imatrix_file.h

// A lookup over an importance matrix's dense entries (E[x²] per column, by tensor name).
IsqImatrixLookup imatrix_lookup(const Imatrix& imatrix);

struct IsqOptions {
  QuantType type = QuantType::kQ4K;  // with `mix`: the mix's default type
  std::optional<IsqMix> mix;         // a llama.cpp per-tensor recipe instead of one type
  bool pure = false;           // no promotion of embeddings and output head (not with `mix`)
  IsqImatrixLookup imatrix;    // empty: no importance weights
  bool show_progress = true;   // a progress bar on a terminal
  IsqOrganization organization = IsqOrganization::kDefault;
  // Per-layer and per-weight types from a topology file (model/isq_topology.h); null: none. A
  // typed entry beats the requested type, the mix and the promotion.
  std::shared_ptr<const IsqTopology> topology;
  // --topology without --isq: a weight no entry matches keeps its stored type (every entry then
  // names a type; `type`, `mix` and `pure` are unused).
  bool topology_only = false;
};

// Parses an ISQ type: any weight type name, or mistral.rs's numeric shorthand as resolved on CPU
// (2 3 4 5 6 8 -> q2k q3k q4k q5k q6k q8_0). Throws InvalidArgument listing the valid names.
QuantType parse_isq_type(std::string_view text);

// What --isq asks for: one type, or a mix (then `type` is the mix's default type).
struct IsqTarget {
  QuantType type = QuantType::kQ4K;
  std::optional<IsqMix> mix;
  std::string name() const;  // "q4k" or "q4k_m"
};

// Parses a mix name (model/isq_mix.h) or else an ISQ type as parse_isq_type does. Throws
// InvalidArgument listing the valid types and mixes.
IsqTarget parse_isq_target(std::string_view text);

// The name of what `options` asks for ("q4k", "q4k_m").
std::string isq_target_name(const IsqOptions& options);

// "; 181 of 211: rows of 576 do not fit q4k's 256-element blocks; q5_0 instead; ...": each
// distinct reason a decision gives for its type (fallbacks, promotions) with its count, for the
// one-line summary of a conversion. Empty when every weight got the requested type.
std::string isq_notes_summary(const std::vector<IsqDecision>& plan);

// Checks that `type` can be produced as a weight type (throws InvalidArgument listing the valid
// names otherwise).
void check_isq_type(QuantType type);

// Decides every candidate's type from shapes alone. `model` is needed by a mix only. Throws
// InvalidArgument when a decided type needs an importance matrix that the options do not provide
// for that tensor, and for a mix with `pure` or without the model's shape.
std::vector<IsqDecision> plan_isq(const std::vector<IsqCandidate>& candidates,
                                  const IsqOptions& options, const IsqModelShape& model = {});

// Converts every decided weight, one tensor at a time with its rows split across `pool`, replacing
// the weight's bytes with an owned buffer and releasing the source pages as each finishes. The
// result does not depend on the thread count.
void apply_isq(const std::vector<IsqDecision>& plan, const IsqOptions& options, ThreadPool& pool);

}  // namespace insitu
