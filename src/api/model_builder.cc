// ModelBuilder: one description of what to load (include/insitu/options.h's BuildOptions) turned
// into a loaded Model, for every front end alike.
#include "api/model_builder.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "api/auto_quant.h"
#include "api/calibration.h"
#include "insitu/error.h"
#include "io/gguf.h"
#include "io/imatrix_file.h"
#include "model/config.h"
#include "model/hf_cache.h"
#include "model/isq_topology.h"
#include "model/uqff_load.h"

namespace insitu {

namespace {

namespace fs = std::filesystem;

// The architecture a model path holds, from its config alone (no weights read).
Arch architecture_of(const std::string& path) {
  if (fs::is_directory(path))
    return config_from_hf_file((fs::path(path) / "config.json").string()).arch;
  return config_from_gguf(*gguf::GgufFile::open(path)).arch;
}

// isq_options() with the importance matrix attached: read from `imatrix` (any form; .cimatrix
// module keys mapped to the architecture's GGUF names), or collected from `calibration_file` on
// `model_path` first (a streaming pass, one layer resident at a time).
std::optional<IsqOptions> resolve_isq(const BuildOptions& b, const std::string& model_path) {
  std::optional<IsqOptions> o = isq_options(b);
  if (!o) return o;
  if (!b.calibration_file.empty()) {
    o->imatrix = imatrix_lookup(calibrate(model_path, b.threads, b.calibration_file,
                                          b.show_progress));
  } else if (!b.imatrix.empty()) {
    // A mistral.rs .cimatrix names module paths ("model.layers.3.mlp.down_proj"); ISQ looks
    // weights up by GGUF name. GGUF-named entries pass through unchanged.
    o->imatrix = imatrix_lookup(
        imatrix_with_gguf_names(Imatrix::load(b.imatrix), architecture_of(model_path)));
  }
  o->show_progress = b.show_progress;
  return o;
}

}  // namespace

std::string resolve_model_path(const std::string& path) {
  if (path.empty()) throw InvalidArgument("no model given: a .gguf file, a directory or org/name");
  std::error_code ec;
  if (!fs::exists(path, ec) && looks_like_hf_model_id(path)) {
    const std::string snapshot = resolve_hf_cache_id(path);
    spdlog::info("{}: using the Hugging Face cache snapshot {}", path, snapshot);
    return snapshot;
  }
  if (!fs::exists(path, ec)) throw InvalidArgument(path + ": no such file or directory");
  if (fs::path(path).extension() == ".safetensors" && !fs::is_directory(path, ec))
    throw InvalidArgument(path + ": a safetensors file alone is not a model; give the directory "
                          "that holds it with config.json and tokenizer.json");
  return path;
}

std::optional<IsqOptions> isq_options(const BuildOptions& b) {
  std::shared_ptr<const IsqTopology> topo;
  if (!b.topology.empty()) topo = IsqTopology::load(b.topology);
  if (b.isq.empty() && topo) {
    if (b.pure) throw InvalidArgument("--pure needs --isq TYPE (--topology alone promotes nothing)");
    if (const IsqTopologyEntry* e = topo->first_untyped()) {
      throw InvalidArgument("--topology " + b.topology + ": line " + std::to_string(e->line) +
                            ": '" + e->key + "' names no isq type, which means --isq's type; "
                            "give --isq TYPE, or a type for every entry");
    }
  }
  const IsqOrganization organization = parse_isq_organization(b.isq_organization);
  if (b.isq.empty() && !topo) {
    if (!b.imatrix.empty()) throw InvalidArgument("--imatrix needs --isq TYPE");
    if (b.pure) throw InvalidArgument("--pure needs --isq TYPE");
    if (organization != IsqOrganization::kDefault)
      throw InvalidArgument("--isq-organization needs --isq TYPE");
    if (!b.calibration_file.empty()) throw InvalidArgument("--calibration-file needs --isq TYPE");
    return std::nullopt;
  }
  if (!b.imatrix.empty() && !b.calibration_file.empty()) {
    throw InvalidArgument("--imatrix and --calibration-file both give an importance matrix; "
                          "use one (--calibration-file collects a new one from a text)");
  }
  IsqOptions o;
  o.topology = topo;
  if (b.isq.empty()) {
    o.topology_only = true;
    return o;
  }
  const IsqTarget target = parse_isq_target(b.isq);
  o.type = target.type;
  o.mix = target.mix;
  o.pure = b.pure;
  o.organization = organization;
  if (o.mix && b.pure) {
    throw InvalidArgument("--pure cannot be used with the mix '" + b.isq +
                          "': a mix chooses a type per tensor; give a single type with --pure");
  }
  return o;
}

LoadOptions resolve_load_options(const BuildOptions& b) {
  LoadOptions opts;
  opts.path = resolve_model_path(b.path);
  opts.n_threads = b.threads;
  if (!b.quant.empty() && (!b.isq.empty() || !b.from_uqff.empty())) {
    throw InvalidArgument("--quant chooses between a prebuilt UQFF and in-situ quantization itself; "
                          "use it alone, or --isq to force ISQ, or --from-uqff to name the UQFF");
  }
  std::error_code ec;
  const bool is_dir = fs::is_directory(opts.path, ec);
  if (!b.from_uqff.empty()) {
    if (!b.isq.empty() || !b.imatrix.empty() || !b.calibration_file.empty() || b.pure) {
      throw InvalidArgument("--from-uqff loads weights as they were stored; --isq, --imatrix, "
                            "--calibration-file and --pure quantize, so they cannot be combined "
                            "with it");
    }
    const std::string dir = is_dir ? opts.path : fs::path(opts.path).parent_path().string();
    opts.uqff_files = resolve_uqff_files(b.from_uqff, dir);
    spdlog::info("--from-uqff: loading {} UQFF shard(s), starting with {}", opts.uqff_files.size(),
                 opts.uqff_files.front());
    return opts;
  }
  if (b.quant.empty()) {
    opts.isq = resolve_isq(b, opts.path);
    return opts;
  }
  if (b.quant == "auto" || b.quant == "AUTO") {
    // What `insitu tune` recommends: the weights as stored when they fit, else the profile's
    // first type that fits. Other ISQ options (topology, organization, pure, imatrix) still apply.
    BuildOptions as_isq = b;
    as_isq.quant.clear();
    as_isq.isq = "q4k";  // a placeholder type: isq_options() then carries the other options
    std::optional<IsqOptions> base = resolve_isq(as_isq, opts.path);
    const std::optional<IsqTarget> chosen = resolve_auto_quant(
        opts.path, *base, parse_tune_profile(b.profile), b.max_memory, b.ctx, b.threads);
    if (chosen) {
      base->type = chosen->type;
      base->mix = chosen->mix;
      opts.isq = base;
    } else if (!b.topology.empty()) {
      as_isq.isq.clear();
      opts.isq = resolve_isq(as_isq, opts.path);
    }
    return opts;
  }
  uqff_type_candidates(b.quant);  // validates, listing the valid names
  std::vector<std::string> found;
  if (is_dir) {
    const UqffDirectory here = scan_uqff_directory(opts.path);
    found = find_uqff_type(here, b.quant);
    if (found.empty() && here.looks_like_artifact) {
      throw InvalidArgument(fmt::format("--quant {}: {} is a UQFF artifact without that type; it "
                                        "has: {}", b.quant, opts.path, here.type_list()));
    }
    std::string base = opts.path;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    const std::string sibling = base + "-UQFF";
    if (found.empty() && fs::is_directory(sibling, ec)) {
      found = find_uqff_type(scan_uqff_directory(sibling), b.quant);
      if (found.empty()) {
        spdlog::warn("--quant {}: {} has no UQFF of that type", b.quant, sibling);
      } else if (fs::is_regular_file(fs::path(sibling) / "config.json", ec)) {
        opts.path = sibling;
      }
    }
  }
  if (!found.empty()) {
    if (!b.imatrix.empty() || !b.calibration_file.empty() || b.pure)
      spdlog::warn("--quant {}: a prebuilt UQFF is used; --imatrix/--calibration-file/--pure only "
                   "apply to in-situ quantization and are ignored", b.quant);
    spdlog::info("--quant {}: loading the prebuilt UQFF {}", b.quant, found.front());
    opts.uqff_files = std::move(found);
    return opts;
  }
  spdlog::info("--quant {}: no prebuilt UQFF found; quantizing in situ", b.quant);
  BuildOptions as_isq = b;
  as_isq.isq = b.quant;
  as_isq.quant.clear();
  opts.isq = resolve_isq(as_isq, opts.path);
  return opts;
}

ModelBuilder::ModelBuilder(std::string path) { options_.path = std::move(path); }
ModelBuilder::ModelBuilder(BuildOptions options) : options_(std::move(options)) {}

ModelBuilder& ModelBuilder::with_isq(QuantType type) {
  check_isq_type(type);
  options_.isq = quant_type_name(type);
  return *this;
}

ModelBuilder& ModelBuilder::with_isq(std::string_view name) {
  parse_isq_target(name);  // validates now, listing the valid names
  options_.isq = std::string(name);
  return *this;
}

ModelBuilder& ModelBuilder::with_auto_isq(Bits bits) {
  return with_isq(std::to_string(static_cast<int>(bits)));
}

ModelBuilder& ModelBuilder::with_quant(std::string_view spec) {
  if (spec != "auto" && spec != "AUTO") uqff_type_candidates(spec);  // validates
  options_.quant = std::string(spec);
  return *this;
}

ModelBuilder& ModelBuilder::with_topology(std::string yaml_path) {
  options_.topology = std::move(yaml_path);
  return *this;
}

ModelBuilder& ModelBuilder::with_imatrix(std::string path) {
  options_.imatrix = std::move(path);
  return *this;
}

ModelBuilder& ModelBuilder::with_calibration_file(std::string text_path) {
  options_.calibration_file = std::move(text_path);
  return *this;
}

ModelBuilder& ModelBuilder::with_from_uqff(std::string spec) {
  options_.from_uqff = std::move(spec);
  return *this;
}

ModelBuilder& ModelBuilder::with_isq_organization(IsqOrganization organization) {
  options_.isq_organization = isq_organization_name(organization);
  return *this;
}

ModelBuilder& ModelBuilder::with_pure(bool pure) {
  options_.pure = pure;
  return *this;
}

ModelBuilder& ModelBuilder::with_threads(int n_threads) {
  for (const OptionSpec& s : build_option_specs())
    if (std::string_view(s.name) == "threads") check_option(s, n_threads);
  options_.threads = n_threads;
  return *this;
}

ModelBuilder& ModelBuilder::with_auto_profile(std::string profile) {
  parse_tune_profile(profile);
  options_.profile = std::move(profile);
  return *this;
}

ModelBuilder& ModelBuilder::with_max_memory(std::string size) {
  options_.max_memory = std::move(size);
  return *this;
}

ModelBuilder& ModelBuilder::with_context(int n_ctx) {
  for (const OptionSpec& s : build_option_specs())
    if (std::string_view(s.name) == "ctx") check_option(s, n_ctx);
  options_.ctx = n_ctx;
  return *this;
}

ModelBuilder& ModelBuilder::with_progress(bool show) {
  options_.show_progress = show;
  return *this;
}

std::shared_ptr<const Model> ModelBuilder::build() const {
  BuildOptions b = options_;
  b.threads = ThreadPool::user_thread_count(b.threads);
  const LoadOptions opts = resolve_load_options(b);
  ThreadPool::set_default_threads(b.threads);
  return Model::load(opts);
}

}  // namespace insitu
