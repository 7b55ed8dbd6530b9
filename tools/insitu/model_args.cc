#include "model_args.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include <fmt/format.h>

#include "insitu/error.h"
#include "calibration.h"
#include "io/gguf.h"
#include "io/imatrix_file.h"
#include "model/isq_topology.h"
#include "model/config.h"
#include "model/hf_cache.h"
#include "model/uqff_load.h"
#include "tune_args.h"

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
    std::error_code ec;
    if (!std::filesystem::exists(model_dir, ec) && looks_like_hf_model_id(model_dir)) {
      const std::string snapshot = resolve_hf_cache_id(model_dir);
      spdlog::info("{}: using the Hugging Face cache snapshot {}", model_dir, snapshot);
      return snapshot;
    }
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
  cmd.add_option("--isq-organization", organization,
                 "With --isq: which weights to quantize: default (attention, MLP and experts, plus "
                 "promoted embeddings and output head) or moqe (only the routed experts of a "
                 "mixture-of-experts model)")
      ->check(CLI::IsMember({"default", "moqe"}));
  cmd.add_option("--quant", quant,
                 "Bits (2 3 4 5 6 8) or a type: load a prebuilt UQFF of that type from the model "
                 "directory or its sibling <model>-UQFF when there is one, else quantize in situ");
  cmd.add_option("--profile", profile,
                 "With --quant auto: prefer quality (q8_0 first), balanced (q6k first) or fast "
                 "(q4k first) when the weights as stored do not fit")
      ->capture_default_str()
      ->check(CLI::IsMember({"quality", "balanced", "fast"}));
  cmd.add_option("--max-memory", max_memory,
                 "With --quant auto: fit in this much memory (e.g. 8G) instead of the RAM "
                 "available now");
  cmd.add_option("--from-uqff", from_uqff,
                 "Load stored UQFF weights: shard file(s) (';'-separated; <stem>-0.uqff brings "
                 "-1, -2, ...), or a type / bits looked up in the model directory");
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
    if (organization != "default") throw InvalidArgument("--isq-organization needs --isq TYPE");
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
  o.organization = parse_isq_organization(organization);
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

void IsqArgs::configure(LoadOptions& opts, int threads) const {
  namespace fs = std::filesystem;
  if (!quant.empty() && (!isq.empty() || !from_uqff.empty())) {
    throw InvalidArgument("--quant chooses between a prebuilt UQFF and in-situ quantization itself; "
                          "use it alone, or --isq to force ISQ, or --from-uqff to name the UQFF");
  }
  std::error_code ec;
  const bool is_dir = fs::is_directory(opts.path, ec);
  if (!from_uqff.empty()) {
    if (!isq.empty() || !imatrix.empty() || !calibration_file.empty() || pure) {
      throw InvalidArgument("--from-uqff loads weights as they were stored; --isq, --imatrix, "
                            "--calibration-file and --pure quantize, so they cannot be combined "
                            "with it");
    }
    const std::string dir = is_dir ? opts.path : fs::path(opts.path).parent_path().string();
    opts.uqff_files = resolve_uqff_files(from_uqff, dir);
    spdlog::info("--from-uqff: loading {} UQFF shard(s), starting with {}", opts.uqff_files.size(),
                 opts.uqff_files.front());
    return;
  }
  if (quant.empty()) {
    opts.isq = resolve(opts.path, threads);
    return;
  }
  if (quant == "auto" || quant == "AUTO") {
    // What `insitu tune` recommends: the weights as stored when they fit, else the profile's
    // first type that fits. Other ISQ flags (topology, organization, pure, imatrix) still apply.
    IsqArgs as_isq = *this;
    as_isq.quant.clear();
    as_isq.isq = "q4k";  // a placeholder type: options() then carries the other flags
    std::optional<IsqOptions> base = as_isq.resolve(opts.path, threads);
    const std::optional<IsqTarget> chosen = resolve_auto_quant(
        opts.path, *base, parse_tune_profile(profile), max_memory, auto_ctx, threads);
    if (chosen) {
      base->type = chosen->type;
      base->mix = chosen->mix;
      opts.isq = base;
    } else if (!topology.empty()) {
      as_isq.isq.clear();
      opts.isq = as_isq.resolve(opts.path, threads);
    }
    return;
  }
  uqff_type_candidates(quant);  // validates, listing the valid names
  std::vector<std::string> found;
  if (is_dir) {
    const UqffDirectory here = scan_uqff_directory(opts.path);
    found = find_uqff_type(here, quant);
    if (found.empty() && here.looks_like_artifact) {
      throw InvalidArgument(fmt::format("--quant {}: {} is a UQFF artifact without that type; it "
                                        "has: {}", quant, opts.path, here.type_list()));
    }
    std::string base = opts.path;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    const std::string sibling = base + "-UQFF";
    if (found.empty() && fs::is_directory(sibling, ec)) {
      found = find_uqff_type(scan_uqff_directory(sibling), quant);
      if (found.empty()) {
        spdlog::warn("--quant {}: {} has no UQFF of that type", quant, sibling);
      } else if (fs::is_regular_file(fs::path(sibling) / "config.json", ec)) {
        opts.path = sibling;
      }
    }
  }
  if (!found.empty()) {
    if (!imatrix.empty() || !calibration_file.empty() || pure)
      spdlog::warn("--quant {}: a prebuilt UQFF is used; --imatrix/--calibration-file/--pure only "
                   "apply to in-situ quantization and are ignored", quant);
    spdlog::info("--quant {}: loading the prebuilt UQFF {}", quant, found.front());
    opts.uqff_files = std::move(found);
    return;
  }
  spdlog::info("--quant {}: no prebuilt UQFF found; quantizing in situ", quant);
  IsqArgs as_isq = *this;
  as_isq.isq = quant;
  as_isq.quant.clear();
  opts.isq = as_isq.resolve(opts.path, threads);
}

std::shared_ptr<const Model> ModelArgs::load(const IsqArgs* isq, LoadOptions* used) const {
  set_log_level(log_level);
  LoadOptions opts;
  opts.path = path();
  if (!std::filesystem::exists(opts.path)) {
    throw InvalidArgument(opts.path + ": no such file or directory");
  }
  opts.n_threads = threads;
  if (isq != nullptr) isq->configure(opts, threads);
  ThreadPool::set_default_threads(threads);
  if (used != nullptr) *used = opts;
  return Model::load(opts);
}

}  // namespace insitu::cli
