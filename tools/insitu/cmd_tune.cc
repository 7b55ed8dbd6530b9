// `insitu tune`: which quantization of a model fits this machine, from its shapes alone.
//   insitu tune (-m DIR|ID | --format gguf -f FILE) [--profile quality|balanced|fast] [--isq TYPE]
//               [--ctx N] [--max-memory SIZE] [--json] [--emit-config FILE.toml]
//               [--topology FILE.yml] [--isq-organization default|moqe] [--pure] [--imatrix FILE]
// Prints `Quant | Est. Size | Mem % | Context Room | Quality | Status` with one row per candidate
// and the recommended `insitu run` command (engine/tune.h says how each column is computed), or
// with --json the same as one JSON object (schema: docs/tune.schema.json). No weight is read.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "engine/imatrix_collect.h"
#include "insitu/error.h"
#include "io/atomic_file.h"
#include "io/imatrix_file.h"
#include "model/isq_topology.h"
#include "model_args.h"
#include "run_config.h"
#include "tune_args.h"

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
};

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
    c.isq = k.target->name();
    if (a.pure) c.pure = true;
    if (a.organization != "default") c.isq_organization = a.organization;
    if (!a.imatrix.empty())
      c.imatrix = std::filesystem::absolute(a.imatrix, ec).lexically_normal().string();
  }
  if (!a.topology.empty())
    c.topology = std::filesystem::absolute(a.topology, ec).lexically_normal().string();
  if (a.n_ctx != 4096) c.ctx = a.n_ctx;
  if (a.model.threads != 0) c.threads = a.model.threads;
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
                 const std::string& command) {
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
  const bool measured = !r.candidates.empty() && r.candidates.front().kld.has_value();
  if (measured) rows[0][4] = "Quality (KLD)";
  for (const TuneCandidate& c : r.candidates) {
    std::string quality = c.quality;
    if (c.kld) quality = fmt::format("{:.5f} {}", *c.kld, c.quality);
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

nlohmann::json to_json(const TuneResult& r, const Model& model, const SystemMemory& sys,
                       const std::string& max_memory, const std::string& command) {
  using nlohmann::json;
  const ModelConfig& c = model.config();
  json out;
  out["model"] = {{"name", r.model_name},
                  {"path", r.model_path},
                  {"architecture", c.arch_name},
                  {"n_layer", c.n_layer},
                  {"n_ctx_train", r.n_ctx_train}};
  out["profile"] = tune_profile_name(r.profile);
  out["backend"] = "cpu";
  out["context_tokens"] = r.n_ctx;
  out["kv_cache_type"] = r.kv_type == KvCacheType::kF16 ? "f16" : "f32";
  out["kv_bytes_per_token"] = r.kv_bytes_per_token;
  json gpu = nullptr;
  if (sys.gpu_count > 0)
    gpu = {{"count", sys.gpu_count}, {"name", sys.gpu_name}, {"total_bytes", sys.gpu_total},
           {"available_bytes", sys.gpu_available}, {"used", false}};
  out["memory"] = {{"device", "cpu"},
                   {"available_bytes", r.memory.device_bytes},
                   {"source", max_memory.empty() ? "system" : "max-memory"},
                   {"system_total_bytes", sys.host_total},
                   {"system_available_bytes", sys.host_available},
                   {"gpu", gpu}};
  json list = json::array();
  for (const TuneCandidate& k : r.candidates) {
    list.push_back({{"isq", k.target ? json(k.target->name()) : json(nullptr)},
                    {"name", k.name},
                    {"estimated_size_bytes", k.weight_bytes},
                    {"session_bytes", k.session_bytes},
                    {"memory_percent", k.memory_percent},
                    {"max_context_tokens", k.max_context},
                    {"context_is_model_max", k.context_is_model_max},
                    {"quality", k.quality},
                    {"kld", k.kld ? json(*k.kld) : json(nullptr)},
                    {"fit_status", fit_status_name(k.status)},
                    {"recommended", k.recommended}});
  }
  out["candidates"] = list;
  const TuneCandidate* rec = r.recommended >= 0 ? &r.candidates[r.recommended] : nullptr;
  out["recommended_isq"] = rec && rec->target ? json(rec->target->name()) : json(nullptr);
  out["recommended_name"] = rec ? json(rec->name) : json(nullptr);
  out["recommended_command"] = rec ? json(command) : json(nullptr);
  out["warnings"] = r.warnings;
  return out;
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
  const TuneResult r = tune_model(*model, o);
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
    std::printf("%s\n", to_json(r, *model, sys, a.max_memory, command).dump(2).c_str());
  } else {
    print_table(r, sys, a.max_memory, command);
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
  a->model.add_to(*cmd);
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
  cmd->callback([a] { tune(*a); });
}

}  // namespace insitu::cli
