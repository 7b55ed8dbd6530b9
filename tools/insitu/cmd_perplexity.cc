// `insitu perplexity`: perplexity of a text by llama.cpp's method, and KL divergence against a
// base model's saved logits (engine/perplexity.h).
//   insitu perplexity (-m DIR | --format gguf -f FILE) [--isq TYPE [--imatrix F]] --file TEXT
//                     [--ctx 512] [--chunks N] [--batch N] [--json]
//   insitu perplexity ... --kl-divergence-base BASE          (also saves BASE)
//   insitu perplexity ... --kl-divergence-base BASE --kl-divergence
// As in llama-perplexity, --file names the text; the model file is given with -f (or -m).
// Results go to stdout (a report, or JSON with --json); progress to stderr.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "quality/perplexity.h"
#include "insitu/error.h"
#include "model_args.h"
#include "text_input.h"
#include "util/progress.h"

namespace insitu::cli {
namespace {

struct PerplexityArgs {
  ModelArgs model;
  IsqArgs isq;
  std::string text_file;
  std::string base_file;
  bool kl_divergence = false;
  bool json = false;
  bool ctx_given = false;
  PerplexityOptions options;
};

// "max", "99.9", "median", "0.1", "min".
std::string quantile_label(double fraction) {
  if (fraction >= 1) return "max";
  if (fraction <= 0) return "min";
  if (fraction == 0.5) return "median";
  return fmt::format("{:g}", fraction * 100);
}

// As llama.cpp labels the report's lines: "Maximum", "99.9%", " 5.0%", "Median", "Minimum".
std::string quantile_name(double fraction) {
  if (fraction >= 1) return "Maximum";
  if (fraction <= 0) return "Minimum";
  if (fraction == 0.5) return "Median";
  return fmt::format("{:4.1f}%", fraction * 100);
}

// JSON numbers for estimates; NaN (no uncertainty available) becomes null.
nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

// Sets j[name] and j[name + "_unc"].
void put(nlohmann::json& j, const std::string& name, const Estimate& e) {
  j[name] = number(e.value);
  j[name + "_unc"] = number(e.unc);
}

nlohmann::json quantiles_json(const std::vector<Quantile>& q) {
  nlohmann::json j = nlohmann::json::object();
  for (const Quantile& x : q) j[quantile_label(x.fraction)] = number(x.value);
  return j;
}

// Progress over chunks, with ETA from the tokens evaluated per chunk.
class ChunkProgress {
 public:
  ChunkProgress(const char* label, int n_chunk, int n_ctx)
      : per_chunk_(static_cast<uint64_t>(n_ctx - 1)),
        progress_(label, n_chunk, per_chunk_ * n_chunk) {
    progress_.set_unit("tok");
  }
  ChunkCallback callback() {
    return [this](int, int) { progress_.advance(1, per_chunk_); };
  }
  void finish() { progress_.finish(); }

 private:
  uint64_t per_chunk_;
  Progress progress_;
};

int expected_chunks(int64_t n_tokens, const PerplexityOptions& o) {
  const int64_t n = n_tokens / std::max(o.n_ctx, 1);
  return static_cast<int>(o.max_chunks < 0 ? n : std::min<int64_t>(n, o.max_chunks));
}

void print_model_line(const PerplexityArgs& a, const Model& model) {
  std::printf("model:  %s%s\n", model.config().name.c_str(),
              a.isq.isq.empty() ? "" : fmt::format(" (--isq {})", a.isq.isq).c_str());
}

// The loaded weights' size, so results can be set against bits per weight.
nlohmann::json weights_json(const Model& model) {
  uint64_t bytes = 0, elements = 0;
  for (const Weight& w : model.weights()) {
    uint64_t n = 1;
    for (int64_t d : w.ne) n *= static_cast<uint64_t>(d);
    bytes += w.nbytes;
    elements += n;
  }
  return {{"bytes", bytes}, {"elements", elements}};
}

void report_perplexity(const PerplexityArgs& a, const Model& model, const PerplexityResult& r) {
  if (a.json) {
    nlohmann::json j = {{"model", model.config().name},
                        {"text", a.text_file},
                        {"n_ctx", r.n_ctx},
                        {"n_chunk", r.n_chunk},
                        {"n_text_tokens", r.n_text_tokens},
                        {"n_scored", r.n_scored},
                        {"running_ppl", r.running_ppl}};
    put(j, "ppl", r.ppl);
    if (!a.base_file.empty()) j["kl_divergence_base"] = a.base_file;
    if (!a.isq.isq.empty()) j["isq"] = a.isq.isq;
    j["weights"] = weights_json(model);
    std::printf("%s\n", j.dump(1).c_str());
    return;
  }
  print_model_line(a, model);
  std::printf("text:   %s: %lld tokens, %d chunks of %d, %lld tokens scored\n", a.text_file.c_str(),
              static_cast<long long>(r.n_text_tokens), r.n_chunk, r.n_ctx,
              static_cast<long long>(r.n_scored));
  std::printf("chunks:");
  for (size_t i = 0; i < r.running_ppl.size(); ++i) {
    std::printf("%s[%zu]%.4f,", i % 8 == 0 && i > 0 ? "\n        " : " ", i + 1, r.running_ppl[i]);
  }
  std::printf("\n");
  if (!a.base_file.empty()) std::printf("base:   logits saved to %s\n", a.base_file.c_str());
  std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", r.ppl.value, r.ppl.unc);
}

void report_kld(const PerplexityArgs& a, const Model& model, const KlDivergenceResult& r) {
  if (a.json) {
    nlohmann::json chunks = nlohmann::json::array();
    for (const KlDivergenceChunk& c : r.chunks) {
      nlohmann::json row = nlohmann::json::object();
      put(row, "ppl", c.ppl);
      put(row, "ln_ppl_ratio", c.ln_ppl_ratio);
      put(row, "kld", c.kld);
      put(row, "delta_p_rms", c.delta_p_rms);
      put(row, "same_top", c.same_top);
      chunks.push_back(row);
    }
    nlohmann::json j = {{"model", model.config().name},
                        {"kl_divergence_base", a.base_file},
                        {"n_ctx", r.n_ctx},
                        {"n_chunk", r.n_chunk},
                        {"n_scored", r.n_scored},
                        {"ln_ppl_correlation", number(r.ln_ppl_correlation)},
                        {"kld_quantiles", quantiles_json(r.kld_quantiles)},
                        {"delta_p_quantiles", quantiles_json(r.delta_p_quantiles)},
                        {"chunks", chunks}};
    if (!a.isq.isq.empty()) j["isq"] = a.isq.isq;
    j["weights"] = weights_json(model);
    put(j, "ppl", r.ppl);
    put(j, "ppl_base", r.ppl_base);
    put(j, "ln_ppl_ratio", r.ln_ppl_ratio);
    put(j, "ppl_ratio", r.ppl_ratio);
    put(j, "ppl_diff", r.ppl_diff);
    put(j, "kld", r.kld);
    put(j, "same_top", r.same_top);
    put(j, "delta_p", r.delta_p);
    put(j, "delta_p_rms", r.delta_p_rms);
    std::printf("%s\n", j.dump(1).c_str());
    return;
  }
  print_model_line(a, model);
  std::printf("base:   %s: %d chunks of %d, %lld tokens scored\n\n", a.base_file.c_str(), r.n_chunk,
              r.n_ctx, static_cast<long long>(r.n_scored));
  std::printf(
      "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence"
      "              Δp RMS            Same top p\n");
  for (size_t i = 0; i < r.chunks.size(); ++i) {
    const KlDivergenceChunk& c = r.chunks[i];
    std::printf(
        "%4zu    %9.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%"
        "    %6.3f ± %6.3f %%\n",
        i + 1, c.ppl.value, c.ppl.unc, c.ln_ppl_ratio.value, c.ln_ppl_ratio.unc, c.kld.value,
        c.kld.unc, 100 * c.delta_p_rms.value, 100 * c.delta_p_rms.unc, 100 * c.same_top.value,
        100 * c.same_top.unc);
  }
  std::printf("\n====== Perplexity statistics ======\n");
  std::printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", r.ppl.value, r.ppl.unc);
  std::printf("Mean PPL(base)                : %10.6f ± %10.6f\n", r.ppl_base.value,
              r.ppl_base.unc);
  std::printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100 * r.ln_ppl_correlation);
  std::printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", r.ln_ppl_ratio.value,
              r.ln_ppl_ratio.unc);
  std::printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", r.ppl_ratio.value,
              r.ppl_ratio.unc);
  std::printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", r.ppl_diff.value,
              r.ppl_diff.unc);
  std::printf("\n====== KL divergence statistics ======\n");
  std::printf("Mean    KLD: %10.6f ± %10.6f\n", r.kld.value, r.kld.unc);
  for (const Quantile& q : r.kld_quantiles)
    std::printf("%-7s KLD: %10.6f\n", quantile_name(q.fraction).c_str(), q.value);
  std::printf("\n====== Token probability statistics ======\n");
  std::printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100 * r.delta_p.value, 100 * r.delta_p.unc);
  for (const Quantile& q : r.delta_p_quantiles)
    std::printf("%-7s Δp: %6.3f%%\n", quantile_name(q.fraction).c_str(), 100 * q.value);
  std::printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100 * r.delta_p_rms.value, 100 * r.delta_p_rms.unc);
  std::printf("Same top p: %6.3f ± %5.3f %%\n", 100 * r.same_top.value, 100 * r.same_top.unc);
}

void run_perplexity(PerplexityArgs& a) {
  if (a.kl_divergence && a.base_file.empty())
    throw InvalidArgument("--kl-divergence needs --kl-divergence-base FILE (the base's logits)");
  if (!a.kl_divergence && a.text_file.empty())
    throw InvalidArgument("no text given: use --file TEXT");
  // Read the inputs before the (slow) model load, so a bad path fails at once.
  const std::string text = a.text_file.empty() ? std::string() : read_text_file(a.text_file);
  std::optional<KldBaseFile> base;
  if (a.kl_divergence) base = KldBaseFile::open(a.base_file);

  const std::shared_ptr<const Model> model = a.model.load(&a.isq);
  ThreadPool pool(a.model.threads);
  const std::vector<int32_t> tokens =
      text.empty() ? std::vector<int32_t>() : perplexity_tokens(*model, text);
  if (a.kl_divergence) {
    PerplexityOptions o = a.options;
    if (!a.ctx_given) o.n_ctx = 0;  // the base's
    const int n_ctx = o.n_ctx > 0 ? o.n_ctx : base->n_ctx();
    const int n_chunk =
        o.max_chunks < 0 ? base->n_chunk() : std::min(o.max_chunks, base->n_chunk());
    ChunkProgress progress("kl-divergence", n_chunk, n_ctx);
    const KlDivergenceResult r =
        compute_kl_divergence(model, *base, tokens, o, pool, progress.callback());
    progress.finish();
    report_kld(a, *model, r);
    return;
  }
  a.options.validate();
  ChunkProgress progress("perplexity",
                         expected_chunks(static_cast<int64_t>(tokens.size()), a.options),
                         a.options.n_ctx);
  const PerplexityResult r =
      compute_perplexity(model, tokens, a.options, pool, progress.callback(), a.base_file);
  progress.finish();
  report_perplexity(a, *model, r);
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
  auto a = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand(
      "perplexity", "Perplexity of a text (llama.cpp's method) and KL divergence against a base");
  add_model_and_text_options(*cmd, a->model, a->text_file, "Text to evaluate (UTF-8)");
  a->isq.add_to(*cmd);
  CLI::Option* ctx = cmd->add_option("-c,--ctx", a->options.n_ctx,
                                     "Tokens per chunk (with --kl-divergence: the base's)")
                         ->capture_default_str();
  cmd->add_option("--chunks", a->options.max_chunks, "Evaluate at most N chunks (-1: all)")
      ->capture_default_str();
  cmd->add_option(
         "-b,--batch", a->options.n_batch,
         "Most tokens per evaluation call, at least 16 (memory/speed only; results do not change)")
      ->capture_default_str();
  cmd->add_option("--kl-divergence-base", a->base_file,
                  "Base logits file: written by a plain run, read with --kl-divergence "
                  "(llama.cpp's format)");
  cmd->add_flag("--kl-divergence", a->kl_divergence,
                "Report KL divergence and token statistics against --kl-divergence-base");
  cmd->add_flag("--json", a->json, "Print the results as JSON");
  cmd->callback([a, ctx] {
    a->ctx_given = ctx->count() > 0;
    run_perplexity(*a);
  });
}

}  // namespace insitu::cli
