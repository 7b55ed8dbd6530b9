// quantize_model: load with in-situ quantization, write UQFF or GGUF.
#include "api/quantize.h"

#include <filesystem>

#include <fmt/format.h>

#include "api/auto_quant.h"
#include "api/model_builder.h"
#include "export/gguf_export.h"
#include "export/uqff_export.h"
#include "insitu/error.h"
#include "io/imatrix_file.h"
#include "model/isq.h"
#include "quant/gguf_quantize.h"
#include "quant/type_traits.h"

namespace insitu {

namespace {

namespace fs = std::filesystem;

// The output format: explicit, else from the extension (.gguf -> gguf, anything else -> uqff).
std::string output_format(const QuantizeOptions& o) {
  const std::string ext = fs::path(o.output).extension().string();
  if (o.output_format.empty()) return ext == ".gguf" ? "gguf" : "uqff";
  if (o.output_format != "gguf" && o.output_format != "uqff") {
    throw InvalidArgument("quantize: --output-format '" + o.output_format +
                          "' unknown; valid: uqff gguf");
  }
  if ((ext == ".gguf" || ext == ".uqff") && ext.substr(1) != o.output_format) {
    throw InvalidArgument("quantize: --output-format " + o.output_format + " with -o " +
                          o.output + ": the extension says " + ext.substr(1));
  }
  return o.output_format;
}

// The types a GGUF file can hold that in-situ quantization produces, for error messages.
std::string gguf_isq_types() {
  std::string out;
  for (QuantType t : all_quant_types()) {
    if (static_cast<uint32_t>(t) >= kFirstInsituTypeId) continue;
    try {
      check_isq_type(t);
    } catch (const InvalidArgument&) {
      continue;
    }
    out += (out.empty() ? "" : " ") + quant_type_name(t);
  }
  return out;
}

// A GGUF cannot hold insitu/mistral.rs types: refuse before any work.
void check_gguf_target(const IsqTarget& target) {
  if (target.mix || static_cast<uint32_t>(target.type) < kFirstInsituTypeId) return;
  throw Unsupported(fmt::format("quantize: {} has no GGUF form (it is a mistral.rs type); write "
                                "UQFF (-o DIR) or choose a GGUF type: {}",
                                quant_type_name(target.type), gguf_isq_types()));
}

QuantizeReport quantize_generic(const QuantizeOptions& o, const std::string& input) {
  const BuildOptions& b = o.build;
  if (fs::is_directory(input))
    throw InvalidArgument("quantize --generic: " + input + " is a directory; it takes a GGUF file");
  if (b.pure) throw InvalidArgument("quantize --generic: --pure is implied (one type for all)");
  if (!b.calibration_file.empty()) {
    throw InvalidArgument(
        "quantize --generic: --calibration-file needs the model; drop --generic "
        "or collect with `insitu imatrix` and pass --imatrix");
  }
  const IsqTarget target = parse_isq_target(b.isq);
  if (target.mix) {
    throw InvalidArgument("quantize --generic: '" + b.isq +
                          "' is a mix, which needs the model's structure; drop --generic");
  }
  check_gguf_target(target);
  GgufQuantizeOptions opts;
  opts.type = target.type;
  opts.show_progress = b.show_progress;
  if (!b.imatrix.empty()) {
    opts.imatrix = imatrix_lookup(Imatrix::load(b.imatrix));
    opts.imatrix_source = b.imatrix;
  }
  if (type_traits(opts.type).requires_imatrix && !opts.imatrix) {
    throw InvalidArgument("quantize: type '" + quant_type_name(opts.type) +
                          "' needs an importance matrix: pass --imatrix FILE");
  }
  ThreadPool pool(b.threads);
  const GgufQuantizeReport r = quantize_gguf(input, o.output, opts, pool);
  QuantizeReport report{"gguf", target.name(), o.output,
                        fmt::format("quantize: {} tensors to {}, {} kept; {:.1f} MiB -> {:.1f} "
                                    "MiB; wrote {}",
                                    r.n_quantized, quant_type_name(opts.type), r.n_copied,
                                    r.bytes_in / 1048576.0, r.bytes_out / 1048576.0, o.output)};
  report.count = r.n_quantized + r.n_copied;
  report.tensor_bytes = r.bytes_out;
  return report;
}

}  // namespace

QuantizeReport quantize_model(const QuantizeOptions& options) {
  QuantizeOptions o = options;
  BuildOptions& b = o.build;
  if (o.output.empty()) throw InvalidArgument("quantize: -o OUTPUT is required");
  const std::string format = output_format(o);
  if (!b.from_uqff.empty())
    throw InvalidArgument("quantize: --from-uqff loads stored weights; quantize converts from the "
                          "source weights (give the source model and --isq)");
  if (!b.quant.empty() && !b.isq.empty())
    throw InvalidArgument("quantize: give --isq or --quant, not both");
  const std::string input = resolve_model_path(b.path);
  b.path = input;
  if (!b.quant.empty()) {
    if (b.quant == "auto" || b.quant == "AUTO") {
      // What `insitu tune` recommends for this machine; weights that fit as stored still get the
      // profile's first type, since quantize exists to write a quantized model.
      BuildOptions as_isq = b;
      as_isq.quant.clear();
      as_isq.isq = "q4k";  // a placeholder: isq_options() carries the other options
      const std::optional<IsqOptions> base = isq_options(as_isq);
      std::optional<IsqTarget> chosen = resolve_auto_quant(
          input, *base, parse_tune_profile(b.profile), b.max_memory, b.ctx, b.threads);
      if (!chosen) chosen = IsqTarget{tune_profile_types(parse_tune_profile(b.profile)).front(), {}};
      b.isq = chosen->name();
    } else {
      b.isq = b.quant;  // quantize always converts: bits or a type mean that type
    }
    b.quant.clear();
  }
  if (b.isq.empty()) throw InvalidArgument("quantize: --isq TYPE|MIX (or --quant) is required");
  const IsqTarget target = parse_isq_target(b.isq);
  if (format == "gguf") check_gguf_target(target);
  if (o.generic) {
    if (format != "gguf") throw InvalidArgument("quantize --generic writes GGUF only");
    return quantize_generic(o, input);
  }

  const std::shared_ptr<const Model> model = ModelBuilder(b).build();
  if (format == "gguf") {
    GgufExportOptions opts;
    opts.file_type =
        target.mix ? static_cast<uint32_t>(*target.mix) : llama_file_type(target.type);
    if (!b.imatrix.empty()) {
      const Imatrix im = Imatrix::load(b.imatrix);
      opts.imatrix_file = b.imatrix;
      if (!im.datasets.empty()) opts.imatrix_dataset = im.datasets.front();
      opts.imatrix_entries = static_cast<int64_t>(im.entries.size());
      opts.imatrix_chunks = im.chunk_count;
    } else if (!b.calibration_file.empty()) {
      opts.imatrix_dataset = b.calibration_file;  // collected in memory: no file to name
    }
    if (!fs::is_directory(input)) opts.general_metadata_from = input;
    opts.show_progress = b.show_progress;
    const GgufExportReport r = export_gguf(*model, o.output, opts);
    QuantizeReport report{
        "gguf", target.name(), o.output,
        fmt::format("quantize: {}: {} tensors, {:.1f} MiB of weights; wrote {} ({:.1f} MiB)",
                    target.name(), r.n_tensors, r.tensor_bytes / 1048576.0, o.output,
                    r.file_bytes / 1048576.0)};
    report.count = r.n_tensors;
    report.tensor_bytes = r.tensor_bytes;
    return report;
  }
  UqffExportOptions opts;
  opts.output = o.output;
  opts.stem = target.name();
  opts.requested = target.name();
  if (o.shard_bytes > 0) opts.shard_bytes = o.shard_bytes;
  opts.show_progress = b.show_progress;
  // The decisions the load made: a plan from shapes alone repeats them (converted weights now
  // hold their decided types).
  opts.plan = model->plan_isq(*model->isq_options());
  const UqffExportReport r = export_uqff(*model, opts);
  QuantizeReport report{"uqff", target.name(), r.dir,
                        fmt::format("quantize: {}: {} layers, {:.1f} MiB in {} shard{}; wrote {}",
                                    target.name(), r.n_layers, r.shard_bytes / 1048576.0,
                                    r.shards.size(), r.shards.size() == 1 ? "" : "s", r.dir)};
  report.shards = r.shards;
  report.count = r.n_layers;
  report.tensor_bytes = r.shard_bytes;
  return report;
}

}  // namespace insitu
