// `insitu quantize`: quantize a model once and write it out.
//   insitu quantize -m SRC --isq TYPE|MIX [--imatrix FILE | --calibration-file TEXT] [--pure]
//       -o OUT [--output-format uqff|gguf]
// SRC is a Hugging Face-style directory, a UQFF artifact or a GGUF file. The model is loaded with
// in-situ quantization (the same decisions as `run --isq`) and written as
//   - UQFF 1.2 (model/uqff_export.h), the default: OUT is a directory (shards named after the type,
//     q4k-0.uqff, ...) or a path ending in .uqff (shards x-0.uqff, ... beside the assets);
//   - a complete GGUF model (model/gguf_export.h): OUT is the file.
// The format: --output-format when given; otherwise gguf when OUT ends in ".gguf" and uqff for
// anything else. An --output-format that contradicts OUT's extension (.gguf / .uqff) is refused.
//   insitu quantize --generic -f IN.gguf --isq TYPE [--imatrix FILE] -o OUT.gguf
// is the format-level path: every 2-D float tensor of a GGUF file whose rows the type can take
// becomes TYPE, the rest and the metadata are copied as they are (quant/gguf_quantize.h).
// Outputs are staged (a temporary file or directory) and renamed into place.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "insitu/error.h"
#include "io/imatrix_file.h"
#include "export/gguf_export.h"
#include "model/isq.h"
#include "export/uqff_export.h"
#include "model_args.h"
#include "quant/gguf_quantize.h"
#include "quant/type_traits.h"

namespace insitu::cli {
namespace {

struct QuantizeArgs {
  ModelArgs model;
  IsqArgs isq;
  std::string output;
  std::string output_format;  // empty: from the output's extension
  uint64_t shard_bytes = uqff::kDefaultShardBytes;
  bool generic = false;
};

void run_generic(const QuantizeArgs& a, const std::string& input) {
  if (std::filesystem::is_directory(input))
    throw InvalidArgument("quantize --generic: " + input + " is a directory; it takes a GGUF file");
  if (a.isq.pure) throw InvalidArgument("quantize --generic: --pure is implied (one type for all)");
  if (!a.isq.calibration_file.empty()) {
    throw InvalidArgument(
        "quantize --generic: --calibration-file needs the model; drop --generic "
        "or collect with `insitu imatrix` and pass --imatrix");
  }
  const IsqTarget target = parse_isq_target(a.isq.isq);
  if (target.mix) {
    throw InvalidArgument("quantize --generic: '" + a.isq.isq +
                          "' is a mix, which needs the model's structure; drop --generic");
  }
  GgufQuantizeOptions opts;
  opts.type = target.type;
  if (!a.isq.imatrix.empty()) {
    opts.imatrix = imatrix_lookup(Imatrix::load(a.isq.imatrix));
    opts.imatrix_source = a.isq.imatrix;
  }
  if (type_traits(opts.type).requires_imatrix && !opts.imatrix) {
    throw InvalidArgument("quantize: type '" + quant_type_name(opts.type) +
                          "' needs an importance matrix: pass --imatrix FILE");
  }
  ThreadPool pool(a.model.threads);
  const GgufQuantizeReport r = quantize_gguf(input, a.output, opts, pool);
  std::fprintf(stderr, "quantize: %d tensors to %s, %d kept; %.1f MiB -> %.1f MiB; wrote %s\n",
               r.n_quantized, quant_type_name(opts.type).c_str(), r.n_copied,
               r.bytes_in / 1048576.0, r.bytes_out / 1048576.0, a.output.c_str());
}

// The output format: explicit, else from the extension (.gguf -> gguf, anything else -> uqff).
std::string output_format(const QuantizeArgs& a) {
  const std::string ext = std::filesystem::path(a.output).extension().string();
  if (a.output_format.empty()) return ext == ".gguf" ? "gguf" : "uqff";
  if (a.output_format != "gguf" && a.output_format != "uqff") {
    throw InvalidArgument("quantize: --output-format '" + a.output_format +
                          "' unknown; valid: uqff gguf");
  }
  if ((ext == ".gguf" || ext == ".uqff") && ext.substr(1) != a.output_format) {
    throw InvalidArgument("quantize: --output-format " + a.output_format + " with -o " + a.output +
                          ": the extension says " + ext.substr(1));
  }
  return a.output_format;
}

void write_gguf(const QuantizeArgs& a, const Model& model, const std::string& input,
                const IsqTarget& target) {
  GgufExportOptions opts;
  opts.file_type = target.mix ? static_cast<uint32_t>(*target.mix) : llama_file_type(target.type);
  if (!a.isq.imatrix.empty()) {
    const Imatrix im = Imatrix::load(a.isq.imatrix);
    opts.imatrix_file = a.isq.imatrix;
    if (!im.datasets.empty()) opts.imatrix_dataset = im.datasets.front();
    opts.imatrix_entries = static_cast<int64_t>(im.entries.size());
    opts.imatrix_chunks = im.chunk_count;
  } else if (!a.isq.calibration_file.empty()) {
    opts.imatrix_dataset = a.isq.calibration_file;  // collected in memory: no file to name
  }
  if (!std::filesystem::is_directory(input)) opts.general_metadata_from = input;
  const GgufExportReport r = export_gguf(model, a.output, opts);
  std::fprintf(stderr, "quantize: %s: %d tensors, %.1f MiB of weights; wrote %s (%.1f MiB)\n",
               target.name().c_str(), r.n_tensors, r.tensor_bytes / 1048576.0, a.output.c_str(),
               r.file_bytes / 1048576.0);
}

void run_quantize(const QuantizeArgs& a) {
  set_log_level(a.model.log_level);
  const std::string input = a.model.path();
  if (a.output.empty()) throw InvalidArgument("quantize: -o OUTPUT is required");
  const std::string format = output_format(a);
  if (!a.isq.quant.empty() || !a.isq.from_uqff.empty()) {
    throw InvalidArgument("quantize: --quant and --from-uqff choose what to load; quantize takes "
                          "the type to write with --isq");
  }
  if (a.isq.isq.empty()) throw InvalidArgument("quantize: --isq TYPE|MIX is required");
  if (a.generic) {
    if (format != "gguf") throw InvalidArgument("quantize --generic writes GGUF only");
    return run_generic(a, input);
  }

  const IsqTarget target = parse_isq_target(a.isq.isq);
  std::shared_ptr<const Model> model = a.model.load(&a.isq);
  if (format == "gguf") return write_gguf(a, *model, input, target);

  UqffExportOptions opts;
  opts.output = a.output;
  opts.stem = target.name();
  opts.requested = target.name();
  opts.shard_bytes = a.shard_bytes;
  // The decisions the load made: a plan from shapes alone repeats them (converted weights now
  // hold their decided types).
  opts.plan = model->plan_isq(*model->isq_options());
  const UqffExportReport r = export_uqff(*model, opts);
  std::fprintf(stderr, "quantize: %s: %d layers, %.1f MiB in %zu shard%s; wrote %s\n",
               target.name().c_str(), r.n_layers, r.shard_bytes / 1048576.0, r.shards.size(),
               r.shards.size() == 1 ? "" : "s", r.dir.c_str());
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a model once and write it out");
  args->model.add_to(*cmd);
  args->isq.add_to(*cmd);
  cmd->add_option("-o,--output", args->output,
                  "Output: a directory or x.uqff (UQFF), or x.gguf (GGUF)")->required();
  cmd->add_option("--output-format", args->output_format,
                  "uqff | gguf (default: gguf for -o *.gguf, else uqff)");
  cmd->add_option("--uqff-shard-bytes", args->shard_bytes,
                  "UQFF: start a new shard before one would pass this size (default 10 GiB)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--generic", args->generic,
                "GGUF input only: convert every 2-D float tensor to the type, copying the rest and "
                "the metadata as they are, without loading the model");
  cmd->callback([args] { run_quantize(*args); });
}

}  // namespace insitu::cli
