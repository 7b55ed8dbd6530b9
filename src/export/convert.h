// Converting a GGUF model into a Hugging Face-style directory: config.json,
// generation_config.json, model.safetensors and the tokenizer files. The directory is the
// full-precision source in-situ quantization starts from, and `insitu run -m DIR` gives the same
// output as the GGUF it came from.
//
// Each tensor is dequantized to f32, the converter's GGUF-only value transforms are undone
// (llama's Q/K row permutation, Gemma's +1 on norm weights; see model/hf_names.h) and it is
// stored in the requested dtype (f32 keeps the GGUF's values exactly; f16/bf16 round them).
// Tensors are streamed one at a time. The directory is built under a temporary name beside the
// target and renamed into place, so a failure leaves nothing behind.
#pragma once

#include <string>

#include "io/safetensors.h"
#include "util/thread_pool.h"

namespace insitu {

struct ConvertOptions {
  std::string input;       // a .gguf file
  std::string output_dir;  // must not exist, or be an empty directory
  safetensors::Dtype dtype = safetensors::Dtype::kF32;  // kF32, kF16 or kBF16
  bool show_progress = true;
};

struct ConvertReport {
  int n_tensors = 0;
  uint64_t bytes_written = 0;  // model.safetensors tensor data
};

ConvertReport convert_gguf_to_hf(const ConvertOptions& options, ThreadPool& pool);

}  // namespace insitu
