// Importance-matrix collection shared by the front ends: `insitu imatrix` writes the result;
// ModelBuilder::with_calibration_file (`run`/`quantize --calibration-file`) quantizes with it
// straight away.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "quality/imatrix_collect.h"
#include "io/imatrix_file.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace insitu {

// Streams `model` (from Model::load_streaming) over the chunks of `tokens` (imatrix_tokens) as
// `options` say, showing layer-by-chunk progress on a terminal. Throws InvalidArgument when there
// are fewer tokens than one chunk.
Imatrix collect_with_progress(const std::shared_ptr<Model>& model,
                              const std::vector<int32_t>& tokens,
                              const ImatrixCollectOptions& options, ThreadPool& pool,
                              bool show_progress = true);

// --calibration-file: loads `model_path` for streaming, collects with llama-imatrix's defaults
// (chunks of 512 tokens, or the whole text as one chunk when it is shorter) and logs a summary.
Imatrix calibrate(const std::string& model_path, int threads, const std::string& text_file,
                  bool show_progress = true);

}  // namespace insitu
