#include "api/calibration.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <fmt/format.h>

#include "io/text_file.h"
#include "util/progress.h"

namespace insitu {

Imatrix collect_with_progress(const std::shared_ptr<Model>& model,
                              const std::vector<int32_t>& tokens,
                              const ImatrixCollectOptions& options, ThreadPool& pool,
                              bool show_progress) {
  const int n_chunk = imatrix_chunk_count(static_cast<int64_t>(tokens.size()), options);
  const int n_layer = model->config().n_layer;
  const uint64_t per_step = static_cast<uint64_t>(options.n_ctx);
  Progress progress(fmt::format("imatrix {} layers x {} chunks", n_layer, n_chunk),
                    static_cast<int64_t>(n_chunk) * n_layer,
                    per_step * static_cast<uint64_t>(n_chunk) * n_layer, show_progress);
  progress.set_unit("tok-layer");
  Imatrix im = collect_imatrix(model, tokens, options, pool, [&](int64_t done, int64_t) {
    // The output head (with process_output) runs after the layers; the bar counts layers.
    if (done <= static_cast<int64_t>(n_chunk) * n_layer) progress.advance(1, per_step);
  });
  progress.finish();
  return im;
}

Imatrix calibrate(const std::string& model_path, int threads, const std::string& text_file,
                  bool show_progress) {
  const std::string text = read_text_file(text_file);
  LoadOptions load;
  load.path = model_path;
  load.n_threads = threads;
  const auto t0 = std::chrono::steady_clock::now();
  const std::shared_ptr<Model> model = Model::load_streaming(load);
  ImatrixCollectOptions o;
  o.dataset = text_file;
  // A calibration text shorter than llama-imatrix's 512-token chunks still calibrates, as one
  // chunk of its own length.
  const std::vector<int32_t> tokens = imatrix_tokens(*model, text);
  o.n_ctx = static_cast<int>(std::clamp<int64_t>(static_cast<int64_t>(tokens.size()), 1, 512));
  ThreadPool pool(threads);
  Imatrix im = collect_with_progress(model, tokens, o, pool, show_progress);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("--calibration-file {}: {} chunks of {} tokens, {} tensors, {:.1f} s", text_file,
               im.chunk_count, o.n_ctx, im.entries.size(), s);
  return im;
}

}  // namespace insitu
