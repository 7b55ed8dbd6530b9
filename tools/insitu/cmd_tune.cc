// `insitu tune`: which quantization of a model fits this machine, from its shapes alone.
//   insitu tune (-m DIR|ID | --format gguf -f FILE) [--profile quality|balanced|fast] [--isq TYPE]
//               [--ctx N] [--max-memory SIZE] [--json] [--emit-config FILE.toml]
//               [--topology FILE.yml] [--isq-organization default|moqe] [--pure] [--imatrix FILE]
//               [--measure --file TEXT [--measure-tokens N]]
// Prints `Quant | Est. Size | Mem % | Context Room | Quality | Status` with one row per candidate
// and the recommended `insitu run` command (engine/tune.h says how each column is computed), or
// with --json the same as one JSON object (schema: docs/tune.schema.json). No weight is read,
// except with --measure: then each candidate's mean KL divergence from the stored weights on the
// first tokens of TEXT fills the Quality column, computed one layer at a time
// (engine/tune_measure.h). As in `insitu perplexity`, --file names the text and -f the model file.
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "quality/imatrix_collect.h"
#include "quality/perplexity.h"
#include "quality/tune_json.h"
#include "quality/tune_measure.h"
#include "insitu/error.h"
#include "io/atomic_file.h"
#include "io/imatrix_file.h"
#include "model/isq_topology.h"
#include "model_args.h"
#include "run_config.h"
#include "text_input.h"
#include "api/auto_quant.h"
#include "util/progress.h"

namespace insitu::cli {
namespace {

struct TuneArgs {
  ModelArgs model;
  std::string profile = "balanced";
  std::string isq;
  int n_ctx = 4096;
  std::string max_memory;
  bool json = false;
  std::string emit_config;
  std::string topology;
  std::string organization = "default";
  bool pure = false;
  std::string imatrix;
  bool measure = false;
  std::string text_file;     // --file: the text --measure runs
  int measure_tokens = 256;  // its first tokens measured
};

// --measure: fills kld and top-1 agreement of every candidate (0 and 1 for the stored weights).
TuneMeasureInfo measure(const TuneArgs& a, const std::string& path, const TuneOptions& o,
                    TuneResult& r) {
  if (a.text_file.empty()) throw InvalidArgument("--measure needs a text: --file TEXT");
  LoadOptions lo;
  lo.path = path;
  lo.n_threads = a.model.threads;
  const std::shared_ptr<Model> model = Model::load_streaming(lo);
  std::vector<int32_t> tokens = perplexity_tokens(*model, read_text_file(a.text_file));
  if (tokens.size() > static_cast<size_t>(a.measure_tokens))
    tokens.resize(static_cast<size_t>(a.measure_tokens));
  if (tokens.size() < 2)
    throw InvalidArgument(fmt::format("--measure: {} gives {} tokens; at least 2 are needed",
                                      a.text_file, tokens.size()));
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
  ThreadPool pool(a.model.threads);
  // One step is one layer (or the embeddings, or the head) run over the text for the stored
  // weights or one candidate: the bar counts steps and the tokens they processed.
  const int64_t steps =
      static_cast<int64_t>(candidates.size() + 1) * (model->config().n_layer + 2);
  Progress bar(fmt::format("measure {} candidates", candidates.size()), steps,
               static_cast<uint64_t>(steps) * tokens.size());
  bar.set_unit("tok");
  const std::vector<IsqMeasurement> m = measure_isq_kld(
      model, candidates, tokens, pool, o.kv_type,
      [&](int64_t, int64_t) { bar.advance(1, tokens.size()); });
  bar.finish();
  for (size_t j = 0; j < rows.size(); ++j) {
    r.candidates[rows[j]].kld = m[j].kld;
    r.candidates[rows[j]].top1 = m[j].same_top;
  }
  return {a.text_file, static_cast<int64_t>(tokens.size()),
          static_cast<int64_t>(tokens.size()) - 1};
}

// The options every candidate is planned with.
IsqOptions base_options(const TuneArgs& a, const Model& model) {
  IsqOptions o;
  o.show_progress = false;
  o.pure = a.pure;
  o.organization = parse_isq_organization(a.organization);
  if (!a.topology.empty()) o.topology = IsqTopology::load(a.topology);
  if (!a.imatrix.empty())
    o.imatrix = imatrix_lookup(imatrix_with_gguf_names(Imatrix::load(a.imatrix),
                                                       model.config().arch));
  return o;
}

// The run configuration the recommendation stands for.
RunConfig recommended_config(const TuneArgs& a, const std::string& path, const TuneResult& r) {
  RunConfig c;
  const bool is_file = !std::filesystem::is_directory(path);
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(path, ec);
  c.model_id = std::filesystem::exists(path, ec) ? abs.lexically_normal().string() : path;
  if (is_file && std::filesystem::exists(path, ec)) c.format = "gguf";
  const TuneCandidate& k = r.candidates.at(static_cast<size_t>(r.recommended));
  if (k.target) {
    c.values["isq"] = k.target->name();
    if (a.pure) c.values["pure"] = "true";
    if (a.organization != "default") c.values["isq-organization"] = a.organization;
    if (!a.imatrix.empty())
      c.values["imatrix"] = std::filesystem::absolute(a.imatrix, ec).lexically_normal().string();
  }
  if (!a.topology.empty())
    c.values["topology"] = std::filesystem::absolute(a.topology, ec).lexically_normal().string();
  if (a.n_ctx != 4096) c.values["ctx"] = std::to_string(a.n_ctx);
  if (a.model.threads != 0) c.values["threads"] = std::to_string(a.model.threads);
  return c;
}

const char* status_label(const TuneCandidate& c) {
  if (c.recommended) return c.status == FitStatus::kHybrid ? "Recommended (Hybrid)" : "Recommended";
  switch (c.status) {
    case FitStatus::kFits: return "Fits";
    case FitStatus::kHybrid: return "Hybrid";
    case FitStatus::kTooLarge: return "Too Large";
  }
  return "?";
}

std::string room_text(const TuneCandidate& c) {
  if (c.max_context == 0) return "none";
  return c.context_is_model_max ? fmt::format("{} (max)", c.max_context)
                                 : std::to_string(c.max_context);
}

void print_table(const TuneResult& r, const SystemMemory& sys, const std::string& max_memory,
                 const std::optional<TuneMeasureInfo>& measured, const std::string& command) {
  std::printf("Model: %s (%s)\n", r.model_name.c_str(), r.model_path.c_str());
  if (max_memory.empty()) {
    std::printf("Memory: %s of system RAM available (of %s); this build computes on the CPU\n",
                format_memory_size(r.memory.device_bytes).c_str(),
                format_memory_size(sys.host_total).c_str());
  } else {
    std::printf("Memory: %s (--max-memory); this build computes on the CPU\n",
                format_memory_size(r.memory.device_bytes).c_str());
  }
  if (sys.gpu_count > 0)
    std::printf("GPU: %d x %s, %s free of %s (not used: this build computes on the CPU)\n",
                sys.gpu_count, sys.gpu_name.c_str(), format_memory_size(sys.gpu_available).c_str(),
                format_memory_size(sys.gpu_total).c_str());
  std::printf("Context: %d tokens, %s KV cache (%s per token); training context %d; profile %s\n\n",
              r.n_ctx, r.kv_type == KvCacheType::kF16 ? "f16" : "f32",
              format_memory_size(r.kv_bytes_per_token).c_str(), r.n_ctx_train,
              tune_profile_name(r.profile));
  std::vector<std::vector<std::string>> rows = {
      {"Quant", "Est. Size", "Mem %", "Context Room", "Quality", "Status"}};
  if (measured) {
    std::printf("Quality: mean KL divergence from the stored weights and top-1 agreement over %lld "
                "positions of %s (%lld tokens), measured layer by layer\n\n",
                static_cast<long long>(measured->positions), measured->text.c_str(),
                static_cast<long long>(measured->tokens));
    rows[0][4] = "Quality (KLD, top-1)";
  }
  for (const TuneCandidate& c : r.candidates) {
    std::string quality = c.quality;
    if (c.kld)
      quality = fmt::format("{:.5f}, {:.1f}% {}", *c.kld, 100.0 * c.top1.value_or(0), c.quality);
    rows.push_back({c.name, format_memory_size(c.weight_bytes),
                    fmt::format("{:.1f}%", c.memory_percent), room_text(c), quality,
                    status_label(c)});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  for (size_t r_i = 0; r_i < rows.size(); ++r_i) {
    std::string line;
    for (size_t i = 0; i < rows[r_i].size(); ++i)
      line += fmt::format("{}{:<{}}", i ? " | " : "", rows[r_i][i], width[i]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
    if (r_i == 0) {
      std::string rule;
      for (size_t i = 0; i < width.size(); ++i) rule += (i ? "-|-" : "") + std::string(width[i], '-');
      std::printf("%s\n", rule.c_str());
    }
  }
  for (const std::string& w : r.warnings) std::printf("warning: %s\n", w.c_str());
  if (r.recommended < 0) {
    std::printf("\nNothing fits: lower --ctx, free memory, or use a smaller model.\n");
  } else {
    std::printf("\nRecommended: %s\n", command.c_str());
  }
}

void tune(const TuneArgs& a) {
  set_log_level(a.model.log_level);
  const std::string path = a.model.path();
  const std::shared_ptr<const Model> model = load_shapes(path, a.model.threads);
  TuneOptions o;
  o.profile = parse_tune_profile(a.profile);
  if (!a.isq.empty()) o.requested = parse_isq_target(a.isq);
  o.isq = base_options(a, *model);
  o.n_ctx = a.n_ctx;
  o.n_threads = pool_threads(a.model.threads);
  SystemMemory sys;
  o.memory = tune_memory(a.max_memory, &sys);
  TuneResult r = tune_model(*model, o);
  std::optional<TuneMeasureInfo> measured;
  if (a.measure) {
    measured = measure(a, path, o, r);
  } else if (!a.text_file.empty()) {
    throw InvalidArgument("--file names the text for --measure; give --measure as well (the "
                          "model file is -f)");
  }
  std::string command;
  if (r.recommended >= 0) {
    const RunConfig config = recommended_config(a, path, r);
    command = shell_command(run_config_args(config));
    if (!a.emit_config.empty()) {
      const std::string text = run_config_toml(
          config, fmt::format("insitu run configuration for {}, written by `insitu tune` ({} "
                              "profile, {} of memory): {}",
                              r.model_name, tune_profile_name(r.profile),
                              format_memory_size(r.memory.device_bytes),
                              r.candidates[r.recommended].name));
      AtomicFile f(a.emit_config);
      f.write(text.data(), text.size());
      f.commit();
    }
  } else if (!a.emit_config.empty()) {
    throw InvalidArgument("--emit-config: nothing fits, so there is no configuration to write");
  }
  if (a.json) {
    std::printf("%s\n", tune_json(r, *model, sys, a.max_memory, measured, command).dump(2).c_str());
  } else {
    print_table(r, sys, a.max_memory, measured, command);
    if (!a.emit_config.empty())
      std::printf("Configuration written to %s (run it with: insitu from-config -f %s)\n",
                  a.emit_config.c_str(), a.emit_config.c_str());
  }
}

}  // namespace

void add_tune_command(CLI::App& app) {
  auto a = std::make_shared<TuneArgs>();
  CLI::App* cmd = app.add_subcommand(
      "tune", "Which quantization fits this machine: size, memory share, context room and quality "
              "per type, from the model's shapes alone");
  add_model_and_text_options(*cmd, a->model, a->text_file,
                             "Text for --measure (UTF-8); the model file is -f");
  cmd->add_option("--profile", a->profile,
                  "Which types to prefer when the stored weights do not fit: quality (q8_0 first), "
                  "balanced (q6k first) or fast (q4k first)")
      ->capture_default_str()
      ->check(CLI::IsMember({"quality", "balanced", "fast"}));
  cmd->add_option("--isq", a->isq,
                  "Evaluate and recommend this type or mix instead of the profile's list");
  cmd->add_option("-c,--ctx", a->n_ctx, "Context the run will allocate, in tokens")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-memory", a->max_memory,
                  "Fit in this much memory (e.g. 8G, 512M) instead of the RAM available now");
  cmd->add_flag("--json", a->json, "Print the analysis as JSON (schema: docs/tune.schema.json)");
  cmd->add_option("--emit-config", a->emit_config,
                  "Write the recommended configuration as a TOML file for `insitu from-config`");
  cmd->add_option("--topology", a->topology, "Plan every candidate with this topology file");
  cmd->add_option("--isq-organization", a->organization, "default or moqe, for every candidate")
      ->check(CLI::IsMember({"default", "moqe"}));
  cmd->add_flag("--pure", a->pure, "No promotion of token embeddings and output head");
  cmd->add_option("--imatrix", a->imatrix,
                  "Importance matrix, for types that need one (i-quants)");
  cmd->add_flag("--measure", a->measure,
                "Measure each candidate's mean KL divergence from the stored weights on the text "
                "of --file, one layer at a time (reads the weights; takes minutes on large "
                "models)");
  cmd->add_option("--measure-tokens", a->measure_tokens,
                  "How many of the text's first tokens --measure evaluates")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 20));
  cmd->callback([a] { tune(*a); });
}

}  // namespace insitu::cli
