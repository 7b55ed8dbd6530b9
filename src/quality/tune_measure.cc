#include "quality/tune_measure.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <fmt/format.h>

#include "quality/kld_base_file.h"
#include "insitu/error.h"

namespace insitu {
namespace {

// Rows of logits computed at once by the output head: bounds the float logits held.
constexpr int kOutputRows = 32;

// Converts the weights of `plan` in place as an ISQ load would, and puts the stored weights back
// when it goes out of scope (also when the conversion throws part way).
class ScopedConversion {
 public:
  ScopedConversion(const std::vector<IsqDecision>& plan, const IsqOptions& options,
                   ThreadPool& pool) {
    std::vector<IsqDecision> converting;
    for (const IsqDecision& d : plan) {
      if (!d.converts()) continue;
      saved_.emplace_back(d.weight, *d.weight);
      converting.push_back(d);
    }
    if (!converting.empty()) apply_isq(converting, options, pool);
  }
  ~ScopedConversion() {
    for (auto& [weight, stored] : saved_) *weight = std::move(stored);
  }
  ScopedConversion(const ScopedConversion&) = delete;
  ScopedConversion& operator=(const ScopedConversion&) = delete;

 private:
  std::vector<std::pair<Weight*, Weight>> saved_;
};

// One candidate: its decisions grouped by where they apply.
struct CandidatePlan {
  IsqOptions options;
  std::vector<IsqDecision> embedding;            // applied around Session::embed
  std::vector<IsqDecision> output;               // around Session::run_output
  std::vector<std::vector<IsqDecision>> layers;  // [il], around Session::run_layer
};

CandidatePlan split_plan(const Model& model, const IsqOptions& options) {
  const ModelConfig& c = model.config();
  CandidatePlan p;
  p.options = options;
  p.options.show_progress = false;
  p.layers.resize(static_cast<size_t>(c.n_layer));
  for (IsqDecision& d : model.plan_isq(p.options)) {
    if (d.layer >= 0 && d.layer < c.n_layer) {
      p.layers[static_cast<size_t>(d.layer)].push_back(std::move(d));
    } else if (d.role == WeightRole::kOutput) {
      p.output.push_back(std::move(d));
    } else if (d.role == WeightRole::kTokenEmbedding) {
      // With tied embeddings the one matrix is both the lookup table and the head.
      if (c.tied_embeddings) p.output.push_back(d);
      p.embedding.push_back(std::move(d));
    } else {
      throw InvalidArgument(fmt::format("tune --measure: {}: a {} weight outside the layers",
                                        d.weight->name, weight_role_name(d.role)));
    }
  }
  return p;
}

}  // namespace

std::vector<IsqMeasurement> measure_isq_kld(const std::shared_ptr<Model>& model,
                                            const std::vector<IsqOptions>& candidates,
                                            std::span<const int32_t> tokens, ThreadPool& pool,
                                            KvCacheType kv_type, const MeasureProgress& progress) {
  const ModelConfig& c = model->config();
  const int n = static_cast<int>(tokens.size());
  if (n < 2 || tokens.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw InvalidArgument(fmt::format("tune --measure: the text gives {} tokens; at least 2 are "
                                      "needed", tokens.size()));
  // Every plan first: a candidate ISQ cannot produce fails before any work.
  std::vector<CandidatePlan> plans;
  plans.reserve(candidates.size());
  for (const IsqOptions& o : candidates) plans.push_back(split_plan(*model, o));

  const size_t K = plans.size();
  const int64_t total = static_cast<int64_t>(K + 1) * (c.n_layer + 2);
  int64_t done = 0;
  auto step = [&] {
    ++done;
    if (progress) progress(done, total);
  };

  Session session(model, n, pool, kv_type);
  const size_t E = static_cast<size_t>(c.n_embd);
  // Hidden states: [0] the stored weights', [k + 1] candidate k's.
  std::vector<std::vector<float>> hidden(K + 1, std::vector<float>(E * n));
  session.embed(tokens, hidden[0].data());
  step();
  for (size_t k = 0; k < K; ++k) {
    ScopedConversion converted(plans[k].embedding, plans[k].options, pool);
    session.embed(tokens, hidden[k + 1].data());
    step();
  }

  for (int il = 0; il < c.n_layer; ++il) {
    model->prepare_layer(il);
    session.run_layer(il, hidden[0].data(), n, 0);
    session.release_layer_cache(il);
    step();
    for (size_t k = 0; k < K; ++k) {
      ScopedConversion converted(plans[k].layers[static_cast<size_t>(il)], plans[k].options, pool);
      session.run_layer(il, hidden[k + 1].data(), n, 0);
      session.release_layer_cache(il);
      step();
    }
    model->release_layer(il);
  }

  // The stored weights' distributions at positions 0 .. n-2, as base-logits records.
  const int n_scored = n - 1;
  const size_t V = static_cast<size_t>(c.n_vocab);
  const size_t record = kld_record_size(c.n_vocab);
  std::vector<uint16_t> base(record * static_cast<size_t>(n_scored));
  std::vector<float> logits(V * kOutputRows);
  for (int r0 = 0; r0 < n_scored; r0 += kOutputRows) {
    const int rows = std::min(kOutputRows, n_scored - r0);
    session.run_output(hidden[0].data() + E * r0, rows, logits.data());
    for (int r = 0; r < rows; ++r)
      encode_log_probs(std::span<const float>(logits.data() + V * r, V), tokens[r0 + r + 1],
                       base.data() + record * (r0 + r));
  }
  hidden[0] = {};
  step();

  std::vector<IsqMeasurement> out(K);
  for (size_t k = 0; k < K; ++k) {
    ScopedConversion converted(plans[k].output, plans[k].options, pool);
    double sum = 0, sum2 = 0;
    int64_t same = 0;
    for (int r0 = 0; r0 < n_scored; r0 += kOutputRows) {
      const int rows = std::min(kOutputRows, n_scored - r0);
      session.run_output(hidden[k + 1].data() + E * r0, rows, logits.data());
      for (int r = 0; r < rows; ++r) {
        const KldRow row = kld_row(logits.data() + V * r, c.n_vocab,
                                   base.data() + record * (r0 + r), tokens[r0 + r + 1]);
        sum += row.kld;
        sum2 += row.kld * row.kld;
        same += row.same_top ? 1 : 0;
      }
    }
    hidden[k + 1] = {};
    IsqMeasurement& m = out[k];
    m.n_scored = n_scored;
    m.kld = sum / n_scored;
    m.same_top = static_cast<double>(same) / n_scored;
    m.kld_unc = n_scored > 1 ? std::sqrt(std::max(0.0, sum2 / n_scored - m.kld * m.kld) /
                                         (n_scored - 1))
                             : 0.0;
    step();
  }
  return out;
}

}  // namespace insitu
