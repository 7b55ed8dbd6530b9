// Model-selection and common flags shared by the verbs that load a model (run, bench, convert,
// perplexity, ...), declared once so every verb spells them the same way.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "model/model.h"

namespace insitu::cli {

// In-situ quantization flags for the verbs that load a model to run it (run, perplexity, bench).
struct IsqArgs {
  std::string isq;         // --isq NAME|BITS
  std::string imatrix;     // --imatrix FILE
  bool pure = false;       // --pure
  std::string organization = "default";  // --isq-organization default|moqe
  std::string calibration_file;  // --calibration-file TEXT
  std::string topology;          // --topology FILE.yml (model/isq_topology.h)
  std::string quant;             // --quant BITS|NAME: a prebuilt UQFF if there is one, else ISQ
  std::string from_uqff;         // --from-uqff FILE|TYPE|BITS[;...]
  std::string profile = "balanced";  // --profile, for --quant auto (engine/tune.h)
  std::string max_memory;            // --max-memory SIZE, for --quant auto
  int auto_ctx = 4096;  // the context the verb allocates, which --quant auto must leave room for

  // Adds --isq, --imatrix, --pure, --calibration-file, --quant, --from-uqff to `cmd`.
  void add_to(CLI::App& cmd);
  // The ISQ options these flags ask for, without an importance matrix yet; nullopt without --isq
  // and --topology. --topology alone quantizes only what its entries match, so every entry must
  // name a type (there is no default type); other weights keep their stored types.
  // Throws InvalidArgument for an unknown type, flags that need --isq without it, or both
  // --imatrix and --calibration-file.
  std::optional<IsqOptions> options() const;
  // options() with the importance matrix attached: read from --imatrix (any form; .cimatrix
  // module keys mapped to the architecture's GGUF names), or collected from --calibration-file on
  // `model_path` first (a streaming pass, one layer resident at a time).
  std::optional<IsqOptions> resolve(const std::string& model_path, int threads) const;
  // Sets what `opts` (path already set) loads: UQFF files from --from-uqff, or for --quant a
  // prebuilt UQFF of that type in the model directory or its sibling `<model>-UQFF` (which may
  // replace opts.path), else in-situ quantization as resolve() gives it. Logs which happened.
  // Throws InvalidArgument for conflicting flags (--quant with --isq or --from-uqff; --from-uqff
  // with --isq, --imatrix or --calibration-file), --quant auto, and a UQFF artifact directory
  // without the type asked for (listing the types it has).
  void configure(LoadOptions& opts, int threads) const;
};

struct ModelArgs {
  std::string model_dir;   // -m: Hugging Face-style directory, or an org/name id in the HF cache
  std::string format;      // --format: "gguf" (with -f) or empty
  std::string file;        // -f: model file
  int threads = 0;         // --threads / -t
  std::string log_level = "warn";

  // Adds -m, --format, -f, -t/--threads, --log-level to `cmd`.
  void add_to(CLI::App& cmd);
  // The path to load, after checking the flags agree; throws InvalidArgument otherwise. An
  // `org/name` -m that is no local path is looked up in the Hugging Face cache (model/hf_cache.h).
  std::string path() const;
  // Applies --log-level and --threads, then loads the model (quantizing it in situ when `isq`
  // asks for it). `used`, when given, receives the load options (the resolved ISQ options).
  std::shared_ptr<const Model> load(const IsqArgs* isq = nullptr, LoadOptions* used = nullptr) const;
};

// Sets spdlog's level from a name (trace debug info warn error off); throws on an unknown name.
void set_log_level(const std::string& level);

}  // namespace insitu::cli
