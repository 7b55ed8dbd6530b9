// Model-selection and common flags shared by the verbs that load a model (run, bench, convert,
// perplexity, ...), declared once so every verb spells them the same way.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "model/model.h"

namespace insitu::cli {

struct ModelArgs {
  std::string model_dir;   // -m: Hugging Face-style directory
  std::string format;      // --format: "gguf" (with -f) or empty
  std::string file;        // -f: model file
  int threads = 0;         // --threads / -t
  std::string log_level = "warn";

  // Adds -m, --format, -f, -t/--threads, --log-level to `cmd`.
  void add_to(CLI::App& cmd);
  // The path to load, after checking the flags agree; throws InvalidArgument otherwise.
  std::string path() const;
  // Applies --log-level and --threads, then loads the model.
  std::shared_ptr<const Model> load() const;
};

// Sets spdlog's level from a name (trace debug info warn error off); throws on an unknown name.
void set_log_level(const std::string& level);

}  // namespace insitu::cli
