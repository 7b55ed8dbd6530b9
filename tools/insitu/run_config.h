// Run configuration files (TOML), as `insitu tune --emit-config` writes them and `insitu
// from-config -f FILE.toml` runs them. The schema follows mistral.rs's `[[models]]` +
// `[models.quantization]` layout, adapted to insitu's flags; every key is one flag of `insitu run`
// and an absent key leaves that flag at its default. The [runtime] and [models.quantization] keys
// are the library's option table (include/insitu/options.h), names with '_' for '-':
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

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "api/tune_run.h"

namespace insitu::cli {

// The configuration: the verb and the run it stands for (api/tune_run.h's RunRecipe: the model
// and the option-table values the file sets, absent options keeping their defaults).
struct RunConfig : RunRecipe {
  std::string command = "run";
};

// Parses and checks a file. Throws InvalidArgument "FILE:LINE:COL: reason" (IoError when the file
// cannot be read).
RunConfig read_run_config(const std::string& path);

// The documented TOML text for `config` (comments explain every key; unset keys are shown as
// comments with their flag). `title` is the first comment line.
std::string run_config_toml(const RunConfig& config, const std::string& title);

// The `insitu run` arguments the configuration stands for (without the program name), in a fixed
// order: model, quantization, runtime (api/tune_run.h's run_args).
inline std::vector<std::string> run_config_args(const RunConfig& config) {
  return run_args(config);
}

}  // namespace insitu::cli
