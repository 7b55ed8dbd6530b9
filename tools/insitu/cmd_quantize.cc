// `insitu quantize`: quantize a model once and write it out.
//   insitu quantize -m IN.gguf --isq TYPE [--imatrix FILE] --output-format gguf -o OUT.gguf
// On a GGUF input every 2-D float tensor whose rows the type can take becomes TYPE; the rest is
// copied; metadata is kept. The output is written to a temporary file and renamed.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "insitu/error.h"
#include "io/imatrix_file.h"
#include "model/isq.h"
#include "model_args.h"
#include "quant/gguf_quantize.h"
#include "quant/type_traits.h"

namespace insitu::cli {
namespace {

struct QuantizeArgs {
  ModelArgs model;
  std::string isq;
  std::string imatrix;
  std::string output;
  std::string output_format = "gguf";
};

QuantType parse_target(const std::string& name) {
  const std::optional<QuantType> t = parse_quant_type(name);
  std::string valid;
  for (const TypeTraits& tt : all_type_traits()) {
    if (tt.quantize == nullptr) continue;
    if (!valid.empty()) valid += ' ';
    valid += tt.name;
  }
  if (!t || type_traits(*t).quantize == nullptr) {
    throw InvalidArgument("--isq '" + name + "' is not a type insitu can produce; valid: " + valid);
  }
  return *t;
}

void run_quantize(const QuantizeArgs& a) {
  set_log_level(a.model.log_level);
  const std::string input = a.model.path();
  if (a.output.empty()) throw InvalidArgument("quantize: -o OUTPUT is required");
  if (a.output_format != "gguf") {
    throw InvalidArgument("quantize: --output-format '" + a.output_format + "' unknown; valid: gguf");
  }
  if (std::filesystem::is_directory(input)) {
    throw Unsupported("quantize: " + input +
                      ": quantizing a Hugging Face directory comes with in-situ quantization; "
                      "give a GGUF file");
  }
  const QuantType type = parse_target(a.isq);
  const TypeTraits& tt = type_traits(type);
  if (tt.requires_imatrix && a.imatrix.empty()) {
    throw InvalidArgument("quantize: type '" + std::string(tt.name) +
                          "' needs an importance matrix: pass --imatrix FILE");
  }
  GgufQuantizeOptions opts;
  opts.type = type;
  if (!a.imatrix.empty()) {
    opts.imatrix = imatrix_lookup(Imatrix::load(a.imatrix));
    opts.imatrix_source = a.imatrix;
  }
  ThreadPool pool(a.model.threads);
  const GgufQuantizeReport r = quantize_gguf(input, a.output, opts, pool);
  std::fprintf(stderr, "quantize: %d tensors to %s, %d kept; %.1f MiB -> %.1f MiB; wrote %s\n",
               r.n_quantized, tt.name, r.n_copied, r.bytes_in / 1048576.0,
               r.bytes_out / 1048576.0, a.output.c_str());
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a model once and write it out");
  args->model.add_to(*cmd);
  cmd->add_option("--isq", args->isq, "Target type (q4_0 ... q8_1, q2k ... q6k, iq*, tq*, mxfp4)")
      ->required();
  cmd->add_option("--imatrix", args->imatrix,
                  "Importance matrix (llama.cpp GGUF imatrix, legacy .dat, or .cimatrix)");
  cmd->add_option("-o,--output", args->output, "Output file")->required();
  cmd->add_option("--output-format", args->output_format, "gguf")->capture_default_str();
  cmd->callback([args] { run_quantize(*args); });
}

}  // namespace insitu::cli
