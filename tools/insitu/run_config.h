// Run configuration files (TOML), as `insitu tune --emit-config` writes them and `insitu
// from-config -f FILE.toml` runs them. The schema follows mistral.rs's `[[models]]` +
// `[models.quantization]` layout, adapted to insitu's flags; every key is one flag of `insitu run`
// and an absent key leaves that flag at its default:
//
//   command = "run"                  # the verb; only "run" for now
//   [runtime]
//   ctx = 4096                       # run --ctx
//   threads = 0                      # run --threads (0: all cores)
//   [[models]]                       # exactly one model
//   model_id = "DIR | org/name | FILE.gguf"   # run -m, or -f for a .gguf file
//   format = "gguf"                  # run --format (with a .gguf model_id)
//   [models.quantization]
//   isq = "q4k"                      # run --isq TYPE|BITS|MIX
//   quant = "auto"                   # run --quant BITS|NAME|auto (not with isq)
//   profile = "balanced"             # run --profile, for quant = "auto"
//   max_memory = "8G"                # run --max-memory, for quant = "auto"
//   imatrix = "FILE"                 # run --imatrix
//   calibration_file = "FILE"        # run --calibration-file
//   topology = "FILE.yml"            # run --topology
//   isq_organization = "default"     # run --isq-organization default|moqe
//   pure = false                     # run --pure
//   from_uqff = "FILE|TYPE"          # run --from-uqff
//
// Errors (bad TOML, unknown keys, wrong types, missing model) name the file and line.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace insitu::cli {

struct RunConfig {
  std::string command = "run";
  std::optional<int64_t> ctx;
  std::optional<int64_t> threads;
  std::string model_id;
  std::optional<std::string> format;
  std::optional<std::string> isq, quant, profile, max_memory, imatrix, calibration_file, topology,
      isq_organization, from_uqff;
  std::optional<bool> pure;
};

// Parses and checks a file. Throws InvalidArgument "FILE:LINE:COL: reason" (IoError when the file
// cannot be read).
RunConfig read_run_config(const std::string& path);

// The documented TOML text for `config` (comments explain every key; unset keys are shown as
// comments with their flag). `title` is the first comment line.
std::string run_config_toml(const RunConfig& config, const std::string& title);

// The `insitu run` arguments the configuration stands for (without the program name), in a fixed
// order: model, quantization, runtime.
std::vector<std::string> run_config_args(const RunConfig& config);

// The arguments as one shell-quoted command line ("insitu run -m 'my dir' --isq q4k").
std::string shell_command(const std::vector<std::string>& args);

}  // namespace insitu::cli
