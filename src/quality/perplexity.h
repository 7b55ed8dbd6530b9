// Perplexity and KL divergence over a text, by llama.cpp's method, so numbers compare with
// llama-perplexity's (a port of perplexity() and kl_divergence() in
// tools/perplexity/perplexity.cpp, llama.cpp as vendored in llama-cpp-python 0.3.36):
//   * the whole text is tokenized once as llama.cpp's common_tokenize(text, add_special = true,
//     parse_special = false): BOS first when the model adds one;
//   * n_chunk = n_tokens / n_ctx (at most max_chunks); chunk c holds tokens [c*n_ctx, (c+1)*n_ctx),
//     is evaluated in a fresh context with its first token replaced by BOS (when the model adds
//     BOS), and only its second half is scored: the logits at positions j = n_ctx/2 .. n_ctx-2
//     against token j+1, n_ctx - 1 - n_ctx/2 tokens per chunk;
//   * -log p(token) from a log-softmax in float with a double sum of exponentials, as there;
//   * PPL = exp(mean NLL) with uncertainty PPL * sqrt((E[nll^2] - E[nll]^2) / (count - 1)).
// Sums run in token order (llama.cpp's run in thread-completion order), so results do not depend
// on the thread count, and n_batch only sets how many tokens go to each Session::eval call.
// The tokens of a chunk are given to eval in near-equal calls of at most n_batch; the memory held
// is about n_batch rows of logits (at most 64 MiB of them) plus the model and a KV cache of n_ctx.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quality/kld_base_file.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace insitu {

// The smallest n_batch: from here up the batch never changes the results (see perplexity.cc).
inline constexpr int kMinBatch = 16;

struct PerplexityOptions {
  int n_ctx = 512;      // tokens per chunk, the context each chunk is evaluated in
  int max_chunks = -1;  // < 0: every whole chunk of the text
  int n_batch = 512;    // most tokens per Session::eval call (>= kMinBatch); never changes results
  KvCacheType kv_type = KvCacheType::kF16;

  // Throws InvalidArgument naming the option: n_ctx < 4, n_batch < kMinBatch, max_chunks == 0.
  void validate() const;
};

// A value and its standard uncertainty (NaN where llama.cpp has none to give).
struct Estimate {
  double value = 0.0;
  double unc = 0.0;
};

// A point of a sorted distribution: fraction 1 is the maximum, 0 the minimum, 0.5 the median.
struct Quantile {
  double fraction = 0.0;
  double value = 0.0;
};

struct PerplexityResult {
  int n_ctx = 0;
  int n_chunk = 0;            // chunks evaluated
  int64_t n_text_tokens = 0;  // tokens of the whole text (BOS included)
  int64_t n_scored = 0;       // tokens whose probability entered the estimate
  Estimate ppl;
  std::vector<double> running_ppl;  // the estimate after each chunk
};

struct KlDivergenceChunk {  // running values after a chunk, as llama.cpp prints them
  Estimate ppl;
  Estimate ln_ppl_ratio;
  Estimate kld;
  Estimate delta_p_rms;
  Estimate same_top;
};

struct KlDivergenceResult {
  int n_ctx = 0;
  int n_chunk = 0;
  int64_t n_scored = 0;
  Estimate ppl;       // this model
  Estimate ppl_base;  // the base, from its stored log-probs
  double ln_ppl_correlation = 0.0;
  Estimate ln_ppl_ratio;  // mean ln(PPL(Q)/PPL(base))
  Estimate ppl_ratio;
  Estimate ppl_diff;
  Estimate kld;                         // mean KL(base || this) per token, nats
  std::vector<Quantile> kld_quantiles;  // 1, .999, .99, .95, .9, .5, .1, .05, .01, .001, 0
  Estimate delta_p;                     // mean p(token) - p_base(token)
  std::vector<Quantile>
      delta_p_quantiles;  // 1, .999, .99, .95, .9, .75, .5, .25, .1, .05, .01, .001, 0
  Estimate delta_p_rms;
  Estimate same_top;  // fraction of positions where both argmaxes agree
  std::vector<KlDivergenceChunk> chunks;
};

// Called after each chunk with (chunks done, chunks in all).
using ChunkCallback = std::function<void(int done, int total)>;

// The text's tokens as llama-perplexity makes them (BOS first when the model adds one).
std::vector<int32_t> perplexity_tokens(const Model& model, std::string_view text);

// Perplexity of `tokens` (from perplexity_tokens). When base_path is non-empty the base-logits
// file for a later KL-divergence run is streamed there (kld_base_file.h), atomically: nothing is
// left under that name when anything fails. Throws InvalidArgument when the text has fewer than
// 2 * n_ctx tokens (llama.cpp's requirement) or options are invalid.
PerplexityResult compute_perplexity(const std::shared_ptr<const Model>& model,
                                    std::span<const int32_t> tokens,
                                    const PerplexityOptions& options, ThreadPool& pool,
                                    const ChunkCallback& on_chunk = {},
                                    const std::string& base_path = {});

// KL divergence of `model` from the base file's distributions over the base's own tokens, as
// llama.cpp's kl_divergence(). options.n_ctx must equal the base's (0: take the base's);
// max_chunks limits the chunks compared. When `text_tokens` is non-empty it must begin with the
// base's tokens. Throws InvalidArgument naming the base file and the mismatch: another vocabulary
// size, another n_ctx, another text or tokenization (the first differing position and ids).
KlDivergenceResult compute_kl_divergence(const std::shared_ptr<const Model>& model,
                                         const KldBaseFile& base,
                                         std::span<const int32_t> text_tokens,
                                         PerplexityOptions options, ThreadPool& pool,
                                         const ChunkCallback& on_chunk = {});

}  // namespace insitu
