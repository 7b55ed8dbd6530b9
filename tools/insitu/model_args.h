// Model-selection and common flags shared by the verbs that load a model (run, bench, convert,
// perplexity, ...), declared once so every verb spells them the same way. The quantization and
// runtime flags come from the library's option table (include/insitu/options.h), so the CLI, the
// TOML run files, the server and Python cannot drift apart.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "insitu/model.h"
#include "insitu/options.h"
#include "model/model.h"

namespace insitu::cli {

// Adds one flag per option of the table whose section or name is in `sections`
// ("quantization", "ctx"), bound to the fields of `options`, with the table's help, default and
// check.
void add_build_options(CLI::App& cmd, BuildOptions& options,
                       std::initializer_list<std::string_view> sections,
                       std::initializer_list<std::string_view> except = {});

// In-situ quantization flags for the verbs that load a model to run it (run, perplexity, bench,
// quantize): the quantization section of the option table, written into these fields.
struct IsqArgs : BuildOptions {
  // The quantization section of the table, less the options named in `except`.
  void add_to(CLI::App& cmd, std::initializer_list<std::string_view> except = {});
};

struct ModelArgs {
  std::string model_dir;   // -m: Hugging Face-style directory, or an org/name id in the HF cache
  std::string format;      // --format: "gguf" (with -f) or empty
  std::string file;        // -f: model file
  int threads = 0;         // --threads / -t
  std::string log_level = "info";

  // Adds -m, --format, -f, -t/--threads (unless `threads` is false: the verb takes its own),
  // --log-level to `cmd`.
  void add_to(CLI::App& cmd, bool threads = true);
  // The path to load, after checking the flags agree; throws InvalidArgument otherwise. An
  // `org/name` -m that is no local path is looked up in the Hugging Face cache (model/hf_cache.h).
  std::string path() const;
  // What ModelBuilder loads: these flags' path and threads with the quantization flags of `isq`.
  BuildOptions build_options(const IsqArgs* isq = nullptr) const;
  // Applies --log-level, then loads the model through ModelBuilder (quantizing it in situ when
  // `isq` asks for it).
  std::shared_ptr<const Model> load(const IsqArgs* isq = nullptr) const;
};

// Sets spdlog's level from a name (trace debug info warn error off); throws on an unknown name.
void set_log_level(const std::string& level);

}  // namespace insitu::cli
