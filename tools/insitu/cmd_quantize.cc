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
// Outputs are staged (a temporary file or directory) and renamed into place. The work is the
// library's (api/quantize.h); this verb maps flags.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "api/quantize.h"
#include "commands.h"
#include "model_args.h"

namespace insitu::cli {
namespace {

struct QuantizeArgs {
  ModelArgs model;
  IsqArgs isq;
  QuantizeOptions options;
};

void run_quantize(QuantizeArgs& a) {
  set_log_level(a.model.log_level);
  a.options.build = a.model.build_options(&a.isq);
  const QuantizeReport r = quantize_model(a.options);
  std::fprintf(stderr, "%s\n", r.summary.c_str());
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a model once and write it out");
  args->model.add_to(*cmd);
  // Every quantization option but --from-uqff (quantize converts from the source weights), and
  // --ctx, which --quant auto leaves room for.
  args->isq.add_to(*cmd, {"from-uqff"});
  add_build_options(*cmd, args->isq, {"ctx"});
  cmd->add_option("-o,--output", args->options.output,
                  "Output: a directory or x.uqff (UQFF), or x.gguf (GGUF)")->required();
  cmd->add_option("--output-format", args->options.output_format,
                  "uqff | gguf (default: gguf for -o *.gguf, else uqff)");
  cmd->add_option("--uqff-shard-bytes", args->options.shard_bytes,
                  "UQFF: start a new shard before one would pass this size (default 10 GiB)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--generic", args->options.generic,
                "GGUF input only: convert every 2-D float tensor to the type, copying the rest and "
                "the metadata as they are, without loading the model");
  cmd->callback([args] { run_quantize(*args); });
}

}  // namespace insitu::cli
