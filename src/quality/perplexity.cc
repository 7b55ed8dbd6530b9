#include "quality/perplexity.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "insitu/error.h"

namespace insitu {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Logit rows held per Session::eval call are capped at this many bytes, so a large vocabulary
// (Gemma 3: 262144, 1 MiB a row) with a large --batch does not hold n_batch MiB of logits. The
// cap changes only how scored positions are grouped into eval calls.
constexpr size_t kMaxLogitBytes = size_t{64} << 20;

// Splits [begin, end) into the fewest eval calls of at most `limit` tokens, of near-equal sizes
// (never a short remainder): with limit >= kMinBatch every call has at least 8 tokens, or the whole
// span, so every call takes the same matrix kernels whatever the limit. (The engine multiplies
// fewer than 8 tokens with per-row dot products and more with packed panels; both are exact to
// float rounding, but these small quantized models amplify a last-bit difference into a
// different token distribution, as much as llama.cpp's own KV-cache precision does.)
template <typename F>
void for_each_call(int begin, int end, int limit, F&& f) {
  const int len = end - begin;
  if (len <= 0) return;
  const int calls = (len + limit - 1) / limit;
  for (int i = 0, pos = begin; i < calls; ++i) {
    const int n = len / calls + (i < len % calls ? 1 : 0);
    f(pos, n);
    pos += n;
  }
}

// Evaluates one chunk (n_ctx tokens) in a fresh context and hands the logits of the scored
// positions (j = n_ctx/2 .. n_ctx-2) to on_rows(k0, n, logits [n, n_vocab]) in order, k = j -
// n_ctx/2. The last token is only a target, so it is never evaluated; the first half is evaluated
// without logits (only the cache is needed there).
class ChunkRunner {
 public:
  ChunkRunner(const std::shared_ptr<const Model>& model, const PerplexityOptions& options,
              ThreadPool& pool)
      : session_(model, options.n_ctx, pool, options.kv_type),
        n_ctx_(options.n_ctx),
        n_batch_(options.n_batch),
        max_logit_rows_(std::max<int>(
            1, static_cast<int>(kMaxLogitBytes / (sizeof(float) * model->config().n_vocab)))),
        add_bos_(model->tokenizer().add_bos()),
        bos_(model->tokenizer().bos_id()) {
    if (add_bos_ && bos_ < 0)
      throw FormatError(model->source_path() + ": the tokenizer adds BOS but has no BOS id");
  }

  template <typename OnRows>
  void run(std::span<const int32_t> chunk, OnRows&& on_rows) {
    const int first = n_ctx_ / 2;
    const int end = n_ctx_ - 1;
    input_.assign(chunk.begin(), chunk.begin() + end);
    if (add_bos_) input_[0] = bos_;
    session_.reset();
    const std::span<const int32_t> input(input_);
    for_each_call(0, first, n_batch_, [&](int pos, int n) {
      session_.eval(input.subspan(pos, n), /*all_logits=*/false, logits_);
    });
    for_each_call(first, end, std::min(n_batch_, max_logit_rows_), [&](int pos, int n) {
      session_.eval(input.subspan(pos, n), /*all_logits=*/true, logits_);
      on_rows(pos - first, n, logits_.data());
    });
  }

 private:
  Session session_;
  int n_ctx_;
  int n_batch_;
  int max_logit_rows_;
  bool add_bos_;
  int32_t bos_;
  std::vector<int32_t> input_;
  std::vector<float> logits_;
};

// -log p(tok) of one row, as llama.cpp's log_softmax(n_vocab, logits, tok): the log-sum-exp in
// double, the difference taken from float logits.
double row_nll(const float* logits, int n_vocab, int32_t tok) {
  float max_logit = logits[0];
  for (int i = 1; i < n_vocab; ++i) max_logit = std::max(max_logit, logits[i]);
  double sum_exp = 0.0;
  for (int i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
  return -(logits[tok] - max_logit - std::log(sum_exp));
}

// llama.cpp's kl_divergence_result, accumulated in token order.
struct KldSums {
  double sum_nll = 0, sum_nll2 = 0, sum_nll_base = 0, sum_nll_base2 = 0, sum_nll_nll_base = 0;
  double sum_kld = 0, sum_kld2 = 0;
  double sum_p_diff = 0, sum_p_diff2 = 0, sum_p_diff4 = 0;
  size_t n_same_top = 0;
  size_t count = 0;

  void add(const KldRow& r) {
    // The float products are float, as in llama.cpp.
    sum_nll += r.nll;
    sum_nll2 += r.nll * r.nll;
    sum_nll_base += r.nll_base;
    sum_nll_base2 += r.nll_base * r.nll_base;
    sum_nll_nll_base += r.nll * r.nll_base;
    sum_kld += r.kld;
    sum_kld2 += r.kld * r.kld;
    ++count;
    n_same_top += r.same_top;
    sum_p_diff += r.p_diff;
    const double p_diff2 = r.p_diff * r.p_diff;
    sum_p_diff2 += p_diff2;
    sum_p_diff4 += p_diff2 * p_diff2;
  }
};

Estimate mean_and_uncertainty(double sum, double sum2, size_t count) {
  if (count < 1) return {0.0, 0.0};
  const double f = sum / count;
  double df = sum2 / count - f * f;
  df = df > 0 && count > 10 ? std::sqrt(df / (count - 1)) : 0.;
  return {f, df};
}

double covariance(double suma, double sumb, double sumab, size_t count) {
  if (count < 10) return 0.0;
  double var = sumab / count - (suma / count) * (sumb / count);
  var /= count - 1;
  return var;
}

// llama.cpp's percentile() over sorted values, in float as there.
float percentile(const std::vector<float>& values, float fraction) {
  if (fraction <= 0) return values.front();
  if (fraction >= 1) return values.back();
  float p = fraction * (values.size() - 1);
  const size_t ip = static_cast<size_t>(p);
  p -= ip;
  return (1 - p) * values[ip] + p * values[std::min(ip + 1, values.size() - 1)];
}

float median(const std::vector<float>& v) {
  const size_t n = v.size();
  return n % 2 == 0 ? 0.5f * (v[n / 2] + v[n / 2 - 1]) : v[n / 2];
}

std::vector<Quantile> quantiles(const std::vector<float>& sorted,
                                std::span<const float> fractions) {
  std::vector<Quantile> out;
  for (float f : fractions) {
    // The fraction reported is the decimal one (0.999, not 0.99900001); the value uses the float,
    // as llama.cpp does.
    const double decimal = std::round(static_cast<double>(f) * 1e6) / 1e6;
    out.push_back({decimal, f == 0.5f ? median(sorted) : percentile(sorted, f)});
  }
  return out;
}

Estimate same_top_estimate(size_t same, size_t count) {
  const double p = 1.0 * same / count;
  return {p, count > 1 ? std::sqrt(p * (1 - p) / (count - 1)) : kNaN};
}

Estimate rms_estimate(const KldSums& s) {
  const Estimate mse = mean_and_uncertainty(s.sum_p_diff2, s.sum_p_diff4, s.count);
  const double rms = std::sqrt(mse.value);
  return {rms, 0.5 / rms * mse.unc};
}

int chunks_of(int64_t n_tokens, const PerplexityOptions& o) {
  const int64_t n_max = n_tokens / o.n_ctx;
  return static_cast<int>(o.max_chunks < 0 ? n_max : std::min<int64_t>(o.max_chunks, n_max));
}

}  // namespace

void PerplexityOptions::validate() const {
  if (n_ctx < 4) throw InvalidArgument(fmt::format("--ctx {} too small; at least 4", n_ctx));
  if (n_batch < kMinBatch)
    throw InvalidArgument(
        fmt::format("--batch {} too small; at least {} (results are the same for "
                    "every batch from {} up)",
                    n_batch, kMinBatch, kMinBatch));
  if (max_chunks == 0)
    throw InvalidArgument(
        "--chunks 0 leaves nothing to evaluate; give a positive count or omit it");
}

std::vector<int32_t> perplexity_tokens(const Model& model, std::string_view text) {
  return model.tokenizer().encode(text, /*add_special=*/true, /*parse_special=*/false);
}

PerplexityResult compute_perplexity(const std::shared_ptr<const Model>& model,
                                    std::span<const int32_t> tokens,
                                    const PerplexityOptions& options, ThreadPool& pool,
                                    const ChunkCallback& on_chunk, const std::string& base_path) {
  options.validate();
  const int n_ctx = options.n_ctx;
  if (static_cast<int64_t>(tokens.size()) < 2 * static_cast<int64_t>(n_ctx))
    throw InvalidArgument(
        fmt::format("the text tokenizes to only {} tokens; perplexity with a "
                    "context of {} needs at least {}",
                    tokens.size(), n_ctx, 2 * n_ctx));
  const int n_vocab = model->config().n_vocab;
  if (n_ctx > model->config().n_ctx_train && model->config().n_ctx_train > 0)
    spdlog::warn("perplexity: the model was trained on only {} context tokens ({} asked)",
                 model->config().n_ctx_train, n_ctx);

  PerplexityResult res;
  res.n_ctx = n_ctx;
  res.n_chunk = chunks_of(static_cast<int64_t>(tokens.size()), options);
  res.n_text_tokens = static_cast<int64_t>(tokens.size());
  const int first = n_ctx / 2;
  const int n_scored = kld_scored_per_chunk(n_ctx);

  std::optional<KldBaseWriter> writer;
  const size_t nv = kld_record_size(n_vocab);
  std::vector<uint16_t> records;
  if (!base_path.empty())
    writer.emplace(base_path, n_ctx, n_vocab, res.n_chunk,
                   tokens.first(static_cast<size_t>(res.n_chunk) * n_ctx));

  ChunkRunner runner(model, options, pool);
  std::vector<double> nll(static_cast<size_t>(n_scored));
  double sum_nll = 0.0, sum_nll2 = 0.0;
  int64_t count = 0;
  for (int c = 0; c < res.n_chunk; ++c) {
    const std::span<const int32_t> chunk = tokens.subspan(static_cast<size_t>(c) * n_ctx, n_ctx);
    // targets[k]: the token predicted at scored position k.
    const int32_t* targets = chunk.data() + first + 1;
    runner.run(chunk, [&](int k0, int n, const float* logits) {
      if (writer) records.resize(static_cast<size_t>(n) * nv);
      pool.parallel_for(n, [&](int, int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const float* row = logits + static_cast<size_t>(r) * n_vocab;
          nll[k0 + r] = writer ? encode_log_probs({row, static_cast<size_t>(n_vocab)},
                                                  targets[k0 + r], records.data() + r * nv)
                               : row_nll(row, n_vocab, targets[k0 + r]);
        }
      });
      if (writer) writer->append(records);
    });
    for (double v : nll) {
      sum_nll += v;
      sum_nll2 += v * v;
    }
    count += n_scored;
    res.running_ppl.push_back(std::exp(sum_nll / count));
    if (on_chunk) on_chunk(c + 1, res.n_chunk);
  }
  if (writer) writer->commit();

  res.n_scored = count;
  const double mean = sum_nll / count;
  const double var = sum_nll2 / count - mean * mean;
  res.ppl.value = std::exp(mean);
  res.ppl.unc = var > 0 && count > 1 ? std::sqrt(var / (count - 1)) * res.ppl.value : kNaN;
  return res;
}

KlDivergenceResult compute_kl_divergence(const std::shared_ptr<const Model>& model,
                                         const KldBaseFile& base,
                                         std::span<const int32_t> text_tokens,
                                         PerplexityOptions options, ThreadPool& pool,
                                         const ChunkCallback& on_chunk) {
  const int n_vocab = model->config().n_vocab;
  if (base.n_vocab() != n_vocab)
    throw InvalidArgument(
        fmt::format("{}: the KL-divergence base was made for a vocabulary of {} "
                    "tokens; this model has {} (another model or tokenizer)",
                    base.path(), base.n_vocab(), n_vocab));
  if (options.n_ctx == 0) options.n_ctx = base.n_ctx();
  if (options.n_ctx != base.n_ctx())
    throw InvalidArgument(
        fmt::format("{}: the KL-divergence base was made with a context of {}; "
                    "this run asks for {} (use --ctx {})",
                    base.path(), base.n_ctx(), options.n_ctx, base.n_ctx()));
  options.validate();
  const int n_ctx = options.n_ctx;
  const int n_chunk =
      options.max_chunks < 0 ? base.n_chunk() : std::min(options.max_chunks, base.n_chunk());
  const std::span<const int32_t> tokens = base.tokens().first(static_cast<size_t>(n_chunk) * n_ctx);
  if (!text_tokens.empty()) {
    const auto [ours, theirs] =
        std::mismatch(text_tokens.begin(), text_tokens.end(), tokens.begin(), tokens.end());
    if (theirs != tokens.end()) {
      const size_t i = static_cast<size_t>(theirs - tokens.begin());
      if (ours == text_tokens.end())
        throw InvalidArgument(
            fmt::format("{}: the KL-divergence base holds {} tokens but this "
                        "text gives only {} (the base was made from another "
                        "text)",
                        base.path(), tokens.size(), text_tokens.size()));
      throw InvalidArgument(
          fmt::format("{}: the KL-divergence base was made from another text or "
                      "tokenization: token {} (chunk {}) is id {} there, {} here",
                      base.path(), i, i / n_ctx + 1, *theirs, *ours));
    }
  }

  KlDivergenceResult res;
  res.n_ctx = n_ctx;
  res.n_chunk = n_chunk;
  const int first = n_ctx / 2;
  const int n_scored = kld_scored_per_chunk(n_ctx);
  std::vector<float> kld_values;
  std::vector<float> p_diff_values;
  kld_values.reserve(static_cast<size_t>(n_chunk) * n_scored);
  p_diff_values.reserve(kld_values.capacity());

  ChunkRunner runner(model, options, pool);
  std::vector<KldRow> rows(static_cast<size_t>(n_scored));
  KldSums s;
  for (int c = 0; c < n_chunk; ++c) {
    const std::span<const int32_t> chunk = tokens.subspan(static_cast<size_t>(c) * n_ctx, n_ctx);
    const int32_t* targets = chunk.data() + first + 1;
    runner.run(chunk, [&](int k0, int n, const float* logits) {
      pool.parallel_for(n, [&](int, int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const int k = k0 + static_cast<int>(r);
          rows[k] = kld_row(logits + static_cast<size_t>(r) * n_vocab, n_vocab, base.record(c, k),
                            targets[k]);
        }
      });
    });
    base.release_chunk(c);
    for (const KldRow& r : rows) {
      s.add(r);
      kld_values.push_back(static_cast<float>(r.kld));
      p_diff_values.push_back(r.p_diff);
    }

    KlDivergenceChunk row;
    const Estimate log_ppl = mean_and_uncertainty(s.sum_nll, s.sum_nll2, s.count);
    row.ppl = {std::exp(log_ppl.value), std::exp(log_ppl.value) * log_ppl.unc};
    const Estimate log_ppl_base = mean_and_uncertainty(s.sum_nll_base, s.sum_nll_base2, s.count);
    const double cov = covariance(s.sum_nll, s.sum_nll_base, s.sum_nll_nll_base, s.count);
    row.ln_ppl_ratio = {
        log_ppl.value - log_ppl_base.value,
        std::sqrt(log_ppl.unc * log_ppl.unc + log_ppl_base.unc * log_ppl_base.unc - 2.0 * cov)};
    row.kld = mean_and_uncertainty(s.sum_kld, s.sum_kld2, s.count);
    row.delta_p_rms = rms_estimate(s);
    row.same_top = same_top_estimate(s.n_same_top, s.count);
    res.chunks.push_back(row);
    if (on_chunk) on_chunk(c + 1, n_chunk);
  }

  res.n_scored = static_cast<int64_t>(s.count);
  const Estimate log_ppl = mean_and_uncertainty(s.sum_nll, s.sum_nll2, s.count);
  res.ppl = {std::exp(log_ppl.value), std::exp(log_ppl.value) * log_ppl.unc};
  const Estimate log_ppl_base = mean_and_uncertainty(s.sum_nll_base, s.sum_nll_base2, s.count);
  res.ppl_base = {std::exp(log_ppl_base.value), std::exp(log_ppl_base.value) * log_ppl_base.unc};
  const double cov = covariance(s.sum_nll, s.sum_nll_base, s.sum_nll_nll_base, s.count);
  res.ln_ppl_correlation = cov / (log_ppl.unc * log_ppl_base.unc);
  res.ln_ppl_ratio = {
      log_ppl.value - log_ppl_base.value,
      std::sqrt(log_ppl.unc * log_ppl.unc + log_ppl_base.unc * log_ppl_base.unc - 2.0 * cov)};
  res.ppl_ratio = {std::exp(res.ln_ppl_ratio.value),
                   std::exp(res.ln_ppl_ratio.value) * res.ln_ppl_ratio.unc};
  const double ppl_cov = res.ppl.value * res.ppl_base.value * cov;
  res.ppl_diff = {
      res.ppl.value - res.ppl_base.value,
      std::sqrt(res.ppl.unc * res.ppl.unc + res.ppl_base.unc * res.ppl_base.unc - 2.0 * ppl_cov)};

  std::sort(kld_values.begin(), kld_values.end());
  std::sort(p_diff_values.begin(), p_diff_values.end());
  res.kld = mean_and_uncertainty(s.sum_kld, s.sum_kld2, s.count);
  static constexpr float kKldFractions[] = {1.f,  0.999f, 0.99f, 0.95f,  0.9f, 0.5f,
                                            0.1f, 0.05f,  0.01f, 0.001f, 0.f};
  res.kld_quantiles = quantiles(kld_values, kKldFractions);
  res.delta_p = mean_and_uncertainty(s.sum_p_diff, s.sum_p_diff2, s.count);
  static constexpr float kDeltaPFractions[] = {1.f,   0.999f, 0.99f, 0.95f, 0.9f,   0.75f, 0.5f,
                                               0.25f, 0.1f,   0.05f, 0.01f, 0.001f, 0.f};
  res.delta_p_quantiles = quantiles(p_diff_values, kDeltaPFractions);
  res.delta_p_rms = rms_estimate(s);
  res.same_top = same_top_estimate(s.n_same_top, s.count);
  return res;
}

}  // namespace insitu
