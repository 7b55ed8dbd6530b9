// `insitu tune`: which quantization of a model fits this machine, from its shapes alone.
//   insitu tune (-m DIR|ID | --format gguf -f FILE) [--profile quality|balanced|fast] [--isq TYPE]
//               [--ctx N] [--max-memory SIZE] [--json] [--emit-config FILE.toml]
//               [--topology FILE.yml] [--isq-organization default|moqe] [--pure] [--imatrix FILE]
//               [--measure --file TEXT [--measure-tokens N]]
// Prints `Quant | Est. Size | Mem % | Context Room | Quality | Status` with one row per candidate
// and the recommended `insitu run` command (quality/tune.h says how each column is computed), or
// with --json the same as one JSON object (schema: docs/tune.schema.json). No weight is read,
// except with --measure: then each candidate's mean KL divergence from the stored weights on the
// first tokens of TEXT fills the Quality column, computed one layer at a time
// (quality/tune_measure.h). As in `insitu perplexity`, --file names the text and -f the model file.
// The work is the library's (api/tune_run.h); this verb maps flags and prints.
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "api/tune_run.h"
#include "quality/tune_json.h"
#include "insitu/error.h"
#include "io/atomic_file.h"
#include "model_args.h"
#include "run_config.h"
#include "text_input.h"
#include "api/auto_quant.h"

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
  TuneRequest q;
  BuildOptions& b = q.build;
  b.path = a.model.path();
  b.threads = a.model.threads;
  b.profile = a.profile;
  b.isq = a.isq;
  b.ctx = a.n_ctx;
  b.max_memory = a.max_memory;
  b.topology = a.topology;
  b.isq_organization = a.organization;
  b.pure = a.pure;
  b.imatrix = a.imatrix;
  q.measure = a.measure;
  q.measure_text = a.text_file;
  q.measure_tokens = a.measure_tokens;
  const TuneReport report = run_tune(q);
  const TuneResult& r = report.result;
  if (!a.emit_config.empty()) {
    if (!report.recommended)
      throw InvalidArgument("--emit-config: nothing fits, so there is no configuration to write");
    RunConfig config;
    static_cast<RunRecipe&>(config) = *report.recommended;
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
  if (a.json) {
    std::printf("%s\n", report.json.dump(2).c_str());
  } else {
    print_table(r, report.system, a.max_memory, report.measured, report.command);
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
