#include "model_args.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "insitu/error.h"
#include "calibration.h"
#include "io/gguf.h"
#include "io/imatrix_file.h"
#include "model/isq_topology.h"
#include "model/config.h"

namespace insitu::cli {

void set_log_level(const std::string& level) {
  const spdlog::level::level_enum l = spdlog::level::from_str(level);
  if (l == spdlog::level::off && level != "off") {
    throw InvalidArgument("--log-level '" + level +
                          "' unknown; valid: trace debug info warn error off");
  }
  spdlog::set_level(l);
}

void ModelArgs::add_to(CLI::App& cmd) {
  cmd.add_option("-m,--model", model_dir,
                 "Hugging Face-style model directory (config.json, *.safetensors, tokenizer.json)");
  cmd.add_option("--format", format, "Format of the file given with -f")
      ->check(CLI::IsMember({"gguf"}));
  cmd.add_option("-f,--file", file, "Model file (with --format gguf)");
  cmd.add_option("-t,--threads", threads, "Worker threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--log-level", log_level, "trace | debug | info | warn | error | off")
      ->capture_default_str();
}

std::string ModelArgs::path() const {
  if (!model_dir.empty() && !file.empty()) {
    throw InvalidArgument("give either -m DIR or --format gguf -f FILE, not both");
  }
  if (!file.empty()) {
    if (!format.empty() && format != "gguf") {
      throw InvalidArgument("--format '" + format + "' unknown; valid: gguf");
    }
    return file;
  }
  if (!model_dir.empty()) {
    // A GGUF file given with -m is accepted as a convenience.
    return model_dir;
  }
  throw InvalidArgument("no model given: use -m DIR or --format gguf -f FILE");
}

void IsqArgs::add_to(CLI::App& cmd) {
  cmd.add_option("--isq", isq,
                 "Quantize the weights in situ while loading: a type name (q4k, iq4_xs, q8_0, ...), "
                 "bits (2 3 4 5 6 8) or a llama.cpp mix (q4k_m, q3k_s, q5k_m, ...)");
  cmd.add_option("--imatrix", imatrix,
                 "Importance matrix for --isq (llama.cpp GGUF imatrix, legacy .dat, or .cimatrix)");
  cmd.add_option("--calibration-file", calibration_file,
                 "With --isq: collect an importance matrix from this text first (streaming, as "
                 "`insitu imatrix` does) and quantize with it");
  cmd.add_flag("--pure", pure,
               "With --isq: no promotion of token embeddings and output head");
  cmd.add_option("--topology", topology,
                 "YAML file of per-layer and per-weight ISQ types, as mistral.rs reads it (layer "
                 "ranges 'START-END', indices, '/regex/' on Hugging Face weight names); its types "
                 "beat --isq's. Without --isq every entry must name a type and the other weights "
                 "stay as stored");
}

std::optional<IsqOptions> IsqArgs::options() const {
  std::shared_ptr<const IsqTopology> topo;
  if (!topology.empty()) topo = IsqTopology::load(topology);
  if (isq.empty() && topo) {
    if (pure) throw InvalidArgument("--pure needs --isq TYPE (--topology alone promotes nothing)");
    if (const IsqTopologyEntry* e = topo->first_untyped()) {
      throw InvalidArgument("--topology " + topology + ": line " + std::to_string(e->line) +
                            ": '" + e->key + "' names no isq type, which means --isq's type; "
                            "give --isq TYPE, or a type for every entry");
    }
  }
  if (isq.empty() && !topo) {
    if (!imatrix.empty()) throw InvalidArgument("--imatrix needs --isq TYPE");
    if (pure) throw InvalidArgument("--pure needs --isq TYPE");
    if (!calibration_file.empty()) throw InvalidArgument("--calibration-file needs --isq TYPE");
    return std::nullopt;
  }
  if (!imatrix.empty() && !calibration_file.empty()) {
    throw InvalidArgument("--imatrix and --calibration-file both give an importance matrix; "
                          "use one (--calibration-file collects a new one from a text)");
  }
  IsqOptions o;
  o.topology = topo;
  if (isq.empty()) {
    o.topology_only = true;
    return o;
  }
  const IsqTarget target = parse_isq_target(isq);
  o.type = target.type;
  o.mix = target.mix;
  o.pure = pure;
  if (o.mix && pure) {
    throw InvalidArgument("--pure cannot be used with the mix '" + isq +
                          "': a mix chooses a type per tensor; give a single type with --pure");
  }
  return o;
}

namespace {

// The architecture a model path holds, from its config alone (no weights read).
Arch architecture_of(const std::string& path) {
  if (std::filesystem::is_directory(path))
    return config_from_hf_file((std::filesystem::path(path) / "config.json").string()).arch;
  return config_from_gguf(*gguf::GgufFile::open(path)).arch;
}

}  // namespace

std::optional<IsqOptions> IsqArgs::resolve(const std::string& model_path, int threads) const {
  std::optional<IsqOptions> o = options();
  if (!o) return o;
  if (!calibration_file.empty()) {
    o->imatrix = imatrix_lookup(calibrate(model_path, threads, calibration_file));
  } else if (!imatrix.empty()) {
    // A mistral.rs .cimatrix names module paths ("model.layers.3.mlp.down_proj"); ISQ looks
    // weights up by GGUF name. GGUF-named entries pass through unchanged.
    o->imatrix = imatrix_lookup(
        imatrix_with_gguf_names(Imatrix::load(imatrix), architecture_of(model_path)));
  }
  return o;
}

std::shared_ptr<const Model> ModelArgs::load(const IsqArgs* isq) const {
  set_log_level(log_level);
  LoadOptions opts;
  opts.path = path();
  if (!std::filesystem::exists(opts.path)) {
    throw InvalidArgument(opts.path + ": no such file or directory");
  }
  opts.n_threads = threads;
  if (isq != nullptr) opts.isq = isq->resolve(opts.path, threads);
  ThreadPool::set_default_threads(threads);
  return Model::load(opts);
}

}  // namespace insitu::cli
