// run_tune: the analysis, the measurement and the recommended command, for every front end.
#include "api/tune_run.h"

#include <filesystem>

#include <fmt/format.h>

#include "api/auto_quant.h"
#include "insitu/error.h"
#include "io/imatrix_file.h"
#include "io/text_file.h"
#include "model/isq_topology.h"
#include "quality/imatrix_collect.h"
#include "quality/perplexity.h"
#include "quality/tune_measure.h"
#include "util/progress.h"

namespace insitu {

namespace {

namespace fs = std::filesystem;

// What every candidate is planned with.
IsqOptions base_options(const BuildOptions& b, const Model& model) {
  IsqOptions o;
  o.show_progress = false;
  o.pure = b.pure;
  o.organization = parse_isq_organization(b.isq_organization);
  if (!b.topology.empty()) o.topology = IsqTopology::load(b.topology);
  if (!b.imatrix.empty())
    o.imatrix = imatrix_lookup(imatrix_with_gguf_names(Imatrix::load(b.imatrix),
                                                       model.config().arch));
  return o;
}

// Fills kld and top-1 agreement of every candidate (0 and 1 for the stored weights).
TuneMeasureInfo measure(const TuneRequest& q, const TuneOptions& o, TuneResult& r,
                        bool show_progress) {
  if (q.measure_text.empty()) throw InvalidArgument("--measure needs a text: --file TEXT");
  LoadOptions lo;
  lo.path = q.build.path;
  lo.n_threads = q.build.threads;
  const std::shared_ptr<Model> model = Model::load_streaming(lo);
  std::vector<int32_t> tokens = perplexity_tokens(*model, read_text_file(q.measure_text));
  if (tokens.size() > static_cast<size_t>(q.measure_tokens))
    tokens.resize(static_cast<size_t>(q.measure_tokens));
  if (tokens.size() < 2)
    throw InvalidArgument(fmt::format("--measure: {} gives {} tokens; at least 2 are needed",
                                      q.measure_text, tokens.size()));
  std::vector<IsqOptions> candidates;
  std::vector<size_t> rows;
  for (size_t i = 0; i < r.candidates.size(); ++i) {
    TuneCandidate& c = r.candidates[i];
    if (!c.target) {
      c.kld = 0.0;
      c.top1 = 1.0;
      continue;
    }
    candidates.push_back(candidate_isq_options(o, *c.target));
    rows.push_back(i);
  }
  ThreadPool pool(q.build.threads);
  // One step is one layer (or the embeddings, or the head) run over the text for the stored
  // weights or one candidate: the bar counts steps and the tokens they processed.
  const int64_t steps =
      static_cast<int64_t>(candidates.size() + 1) * (model->config().n_layer + 2);
  Progress bar(fmt::format("measure {} candidates", candidates.size()), steps,
               static_cast<uint64_t>(steps) * tokens.size(), show_progress);
  bar.set_unit("tok");
  const std::vector<IsqMeasurement> m = measure_isq_kld(
      model, candidates, tokens, pool, o.kv_type,
      [&](int64_t, int64_t) { bar.advance(1, tokens.size()); });
  bar.finish();
  for (size_t j = 0; j < rows.size(); ++j) {
    r.candidates[rows[j]].kld = m[j].kld;
    r.candidates[rows[j]].top1 = m[j].same_top;
  }
  return {q.measure_text, static_cast<int64_t>(tokens.size()),
          static_cast<int64_t>(tokens.size()) - 1};
}

// The run the recommendation stands for: absolute paths, and only what differs from defaults.
RunRecipe recommended_recipe(const BuildOptions& b, const TuneCandidate& k) {
  RunRecipe c;
  const std::string& path = b.path;
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  c.model_id = exists ? fs::absolute(path, ec).lexically_normal().string() : path;
  if (exists && !fs::is_directory(path, ec)) c.format = "gguf";
  auto absolute = [&](const std::string& p) {
    return fs::absolute(p, ec).lexically_normal().string();
  };
  if (k.target) {
    c.values["isq"] = k.target->name();
    if (b.pure) c.values["pure"] = "true";
    if (b.isq_organization != "default") c.values["isq-organization"] = b.isq_organization;
    if (!b.imatrix.empty()) c.values["imatrix"] = absolute(b.imatrix);
  }
  if (!b.topology.empty()) c.values["topology"] = absolute(b.topology);
  if (b.ctx != 4096) c.values["ctx"] = std::to_string(b.ctx);
  if (b.threads != 0) c.values["threads"] = std::to_string(b.threads);
  return c;
}

}  // namespace

std::vector<std::string> run_args(const RunRecipe& c) {
  std::vector<std::string> a = {"run"};
  if (c.format) a.insert(a.end(), {"--format", *c.format, "-f", c.model_id});
  else a.insert(a.end(), {"-m", c.model_id});
  // Quantization, then runtime: the table's order within each.
  const BuildOptions defaults;
  for (const char* section : {"quantization", "runtime"}) {
    visit_build_options(defaults, [&](const OptionSpec& spec, const auto&) {
      if (std::string_view(spec.section) != section) return;
      const auto it = c.values.find(spec.name);
      if (it == c.values.end()) return;
      const std::string flag = std::string("--") + spec.name;
      if (spec.kind == OptionKind::kBool) {
        if (it->second == "true") a.push_back(flag);
      } else {
        a.insert(a.end(), {flag, it->second});
      }
    });
  }
  return a;
}

std::string shell_command(const std::vector<std::string>& args) {
  std::string out = "insitu";
  for (const std::string& s : args) {
    const bool plain = !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM"
                                                         "NOPQRSTUVWXYZ0123456789-_./=:,+@%") ==
                                         std::string::npos;
    if (plain) {
      out += " " + s;
      continue;
    }
    std::string q = "'";
    for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    out += " " + q + "'";
  }
  return out;
}

TuneReport run_tune(const TuneRequest& q, bool show_progress) {
  const BuildOptions& b = q.build;
  if (!q.measure && !q.measure_text.empty())
    throw InvalidArgument("--file names the text for --measure; give --measure as well (the "
                          "model file is -f)");
  const std::shared_ptr<const Model> model = load_shapes(b.path, b.threads);
  TuneOptions o;
  o.profile = parse_tune_profile(b.profile);
  if (!b.isq.empty()) o.requested = parse_isq_target(b.isq);
  o.isq = base_options(b, *model);
  o.n_ctx = b.ctx;
  o.n_threads = pool_threads(b.threads);
  TuneReport report;
  o.memory = tune_memory(b.max_memory, &report.system);
  report.result = tune_model(*model, o);
  if (q.measure) report.measured = measure(q, o, report.result, show_progress);
  const TuneResult& r = report.result;
  if (r.recommended >= 0) {
    report.recommended = recommended_recipe(b, r.candidates[r.recommended]);
    report.command = shell_command(run_args(*report.recommended));
  }
  report.json = tune_json(r, *model, report.system, b.max_memory, report.measured,
                          report.command);
  return report;
}

}  // namespace insitu
