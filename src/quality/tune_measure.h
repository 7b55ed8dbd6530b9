// `insitu tune --measure`: how far each quantization candidate moves the model's next-token
// distributions from the stored weights' on a short text, measured one layer at a time so that it
// runs where the whole model does not fit.
//
// The model is loaded for streaming (Model::load_streaming). The text's tokens go through the
// model as one sequence, layer by layer: for layer il the layer is prepared, the stored weights
// run the reference hidden states through it, then for each candidate the layer's weights are
// converted as that candidate's ISQ load converts them (the same plan_isq decisions: promotion,
// fallbacks, topology, organization, imatrix), its hidden states run through, and the stored
// weights are put back; then the layer is released. Token embeddings and the output head are
// converted the same way around the embedding lookup and the final projection. Resident at any
// time: one layer as stored, one candidate's converted copy of it (or of the embeddings / head),
// each candidate's hidden states [n_tokens, n_embd], and the reference distributions encoded as
// llama.cpp's base-logits records (2 bytes per vocabulary entry and position).
//
// Each candidate's hidden states equal, bit for bit, what a Session of a model loaded with that
// candidate's ISQ computes (Session::run_layer is Session::eval between the same points), so the
// result equals loading every candidate in full and comparing logits, up to the last bits of the
// logits: the head runs over 32 positions at a time, where eval runs a whole batch at once.
//
// Per position the KL divergence is llama.cpp's (perplexity --kl-divergence),
// KL(stored || candidate), from the stored model's log-probs encoded as a base-logits record
// (engine/kld_base_file.h).
// Positions 0 .. n-2 are scored (each has its next token for the top-1 and p comparisons).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "model/isq.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace insitu {

struct IsqMeasurement {
  double kld = 0;        // mean KL(stored || candidate) per position, nats
  double kld_unc = 0;    // its standard uncertainty (standard error of the mean)
  double same_top = 0;   // fraction of positions whose argmax agrees with the stored weights'
  int64_t n_scored = 0;  // positions scored
};

// Called after each step with (steps done, steps in all); a step is one layer (or the embeddings,
// or the head) run for the reference or one candidate.
using MeasureProgress = std::function<void(int64_t done, int64_t total)>;

// Measures every candidate (ISQ options, as tune plans them) against `model`'s stored weights on
// `tokens` (>= 2; BOS first when the model adds one). `model` is used by one thread, this one, for
// the whole call; its layers are prepared and released in turn (a streaming model's layers are
// left unprepared, a plain one's pages returned to the kernel). Throws InvalidArgument for fewer
// than 2 tokens or an id outside the vocabulary, and as plan_isq does for a candidate ISQ cannot
// produce; the stored weights are back in place whenever it returns or throws.
std::vector<IsqMeasurement> measure_isq_kld(const std::shared_ptr<Model>& model,
                                            const std::vector<IsqOptions>& candidates,
                                            std::span<const int32_t> tokens, ThreadPool& pool,
                                            KvCacheType kv_type = KvCacheType::kF16,
                                            const MeasureProgress& progress = {});

}  // namespace insitu
