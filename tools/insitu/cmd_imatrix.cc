// `insitu imatrix`: an importance matrix from a calibration text, collected layer by layer
// (engine/imatrix_collect.h) so that only one layer's weights are resident at a time.
//   insitu imatrix (-m DIR | -f FILE) --file CALIB.txt -o OUT [--ctx 512] [--chunks N]
//                  [--output-format gguf|dat|cimatrix] [--process-output]
// As in llama-imatrix, --file names the text; the model file is given with -f (or -m).
// Progress goes to stderr, the summary to stdout.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "commands.h"
#include "quality/imatrix_collect.h"
#include "insitu/error.h"
#include "api/calibration.h"
#include "model_args.h"
#include "text_input.h"

namespace insitu::cli {
namespace {

struct ImatrixArgs {
  ModelArgs model;
  std::string text_file;
  std::string output;
  std::string output_format = "gguf";
  ImatrixCollectOptions options;
};

// The loaders pick .cimatrix by extension, so the extension and the format must agree.
void check_output(const ImatrixArgs& a) {
  const bool cim_ext = std::filesystem::path(a.output).extension() == ".cimatrix";
  if (a.output_format == "cimatrix" && !cim_ext)
    throw InvalidArgument(
        fmt::format("-o {}: the cimatrix form needs the .cimatrix extension "
                    "(mistral.rs and insitu recognise it by that)",
                    a.output));
  if (a.output_format != "cimatrix" && cim_ext)
    throw InvalidArgument(
        fmt::format("-o {}: the .cimatrix extension is for --output-format "
                    "cimatrix, not {}",
                    a.output, a.output_format));
}

void run_imatrix(const ImatrixArgs& a) {
  set_log_level(a.model.log_level);
  if (a.text_file.empty()) throw InvalidArgument("no calibration text given: use --file TEXT");
  check_output(a);
  a.options.validate();
  LoadOptions load;
  load.path = a.model.path();
  if (!std::filesystem::exists(load.path))
    throw InvalidArgument(load.path + ": no such file or directory");
  load.n_threads = a.model.threads;
  // Read the text before the model, so a bad path fails at once.
  const std::string text = read_text_file(a.text_file);

  const auto t0 = std::chrono::steady_clock::now();
  const std::shared_ptr<Model> model = Model::load_streaming(load);
  const std::vector<int32_t> tokens = imatrix_tokens(*model, text);
  const int n_chunk = imatrix_chunk_count(static_cast<int64_t>(tokens.size()), a.options);
  const ModelConfig& c = model->config();
  ThreadPool pool(a.model.threads);

  ImatrixCollectOptions o = a.options;
  o.dataset = a.text_file;
  const auto t1 = std::chrono::steady_clock::now();
  Imatrix im = collect_with_progress(model, tokens, o, pool);
  const auto t2 = std::chrono::steady_clock::now();

  if (a.output_format == "gguf") {
    im.save_gguf(a.output);
  } else if (a.output_format == "dat") {
    im.save_dat(a.output);
  } else {
    imatrix_with_module_keys(im, c.arch).save_cimatrix(a.output);
  }

  const double load_s = std::chrono::duration<double>(t1 - t0).count();
  const double collect_s = std::chrono::duration<double>(t2 - t1).count();
  const int64_t n_used = static_cast<int64_t>(n_chunk) * o.n_ctx;
  std::printf("model:    %s (%s, %d layers)\n", c.name.c_str(), c.arch_name.c_str(), c.n_layer);
  std::printf("text:     %s: %zu tokens, %d chunks of %d (%lld tokens used)\n", a.text_file.c_str(),
              tokens.size(), n_chunk, o.n_ctx, static_cast<long long>(n_used));
  const char* output_note = "";
  if (model->find_weight("output.weight") == nullptr) {
    output_note = " (the output head is token_embd.weight, not collected, as llama.cpp does)";
  } else if (!o.process_output) {
    output_note = " (output.weight skipped; --process-output adds it)";
  }
  std::printf("entries:  %zu tensors%s\n", im.entries.size(), output_note);
  std::printf("time:     load %.2f s, collect %.2f s (%.1f tokens/s)\n", load_s, collect_s,
              collect_s > 0 ? n_used / collect_s : 0.0);
  std::printf("output:   %s (%s)\n", a.output.c_str(), a.output_format.c_str());
}

}  // namespace

void add_imatrix_command(CLI::App& app) {
  auto a = std::make_shared<ImatrixArgs>();
  CLI::App* cmd = app.add_subcommand(
      "imatrix", "Collect an importance matrix from a calibration text, one layer at a time");
  add_model_and_text_options(*cmd, a->model, a->text_file, "Calibration text (UTF-8)");
  cmd->add_option("-o,--output", a->output, "Output file")->required();
  cmd->add_option("-c,--ctx", a->options.n_ctx, "Tokens per chunk")->capture_default_str();
  cmd->add_option("--chunks", a->options.max_chunks, "Use at most N chunks (-1: all)")
      ->capture_default_str();
  cmd->add_option("--output-format", a->output_format,
                  "gguf (llama.cpp's default), dat (llama.cpp's legacy form) or cimatrix "
                  "(mistral.rs; the file name must end in .cimatrix)")
      ->check(CLI::IsMember({"gguf", "dat", "cimatrix"}))
      ->capture_default_str();
  cmd->add_flag("--process-output", a->options.process_output,
                "Also collect output.weight (as llama-imatrix; a tied output head has none)");
  cmd->callback([a] { run_imatrix(*a); });
}

}  // namespace insitu::cli
