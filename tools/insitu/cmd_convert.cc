// `insitu convert --format gguf -f FILE.gguf -o DIR [--dtype bf16|f16|f32]`: writes a Hugging
// Face-style directory (config.json, model.safetensors, tokenizer files) from a GGUF model.
#include <cstdio>

#include "commands.h"
#include "insitu/error.h"
#include "export/convert.h"
#include "model_args.h"
#include "util/progress.h"

namespace insitu::cli {
namespace {

struct ConvertArgs {
  ModelArgs model;
  std::string output;
  std::string dtype = "f32";
};

void run_convert(const ConvertArgs& a) {
  set_log_level(a.model.log_level);
  ConvertOptions opts;
  opts.input = a.model.path();
  opts.output_dir = a.output;
  if (a.dtype == "f32") {
    opts.dtype = safetensors::Dtype::kF32;
  } else if (a.dtype == "f16") {
    opts.dtype = safetensors::Dtype::kF16;
  } else if (a.dtype == "bf16") {
    opts.dtype = safetensors::Dtype::kBF16;
  } else {
    throw InvalidArgument("convert: --dtype '" + a.dtype + "' unknown; valid: f32 f16 bf16");
  }
  ThreadPool pool(a.model.threads);
  const ConvertReport r = convert_gguf_to_hf(opts, pool);
  std::fprintf(stderr, "convert: wrote %d tensors (%s) to %s\n", r.n_tensors,
               Progress::format_bytes(static_cast<double>(r.bytes_written)).c_str(),
               a.output.c_str());
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand(
      "convert", "Re-encode a GGUF model as a Hugging Face-style safetensors directory");
  args->model.add_to(*cmd);
  cmd->add_option("-o,--output", args->output, "Output directory (must not exist)")->required();
  cmd->add_option("--dtype", args->dtype,
                  "Stored precision: f32 keeps the GGUF's values exactly; f16 and bf16 round them")
      ->capture_default_str();
  cmd->callback([args] { run_convert(*args); });
}

}  // namespace insitu::cli
