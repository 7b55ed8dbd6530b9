// Quantizing a GGUF file's tensors to one type (the generic `insitu quantize` on a GGUF input).
//
// Every 2-D F32/F16/BF16 tensor whose row length is a multiple of the target's block size becomes
// the target type; every other tensor (norms, 1-D vectors, already-quantized tensors, rows the
// type cannot take) is copied unchanged, and the reason is reported. Metadata is kept, with
// general.quantization_version and general.file_type updated. The output is streamed one tensor
// at a time (input pages released as each finishes) and written atomically: on any failure
// nothing is left at the output path.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "insitu/quant_type.h"
#include "util/thread_pool.h"

namespace insitu {

// Importance weights for a tensor (length = row length), or null when there are none.
using ImatrixLookup = std::function<const std::vector<float>*(std::string_view tensor_name)>;

struct GgufQuantizeOptions {
  QuantType type = QuantType::kQ4K;
  ImatrixLookup imatrix;              // empty: no imatrix
  std::string imatrix_source;         // recorded in quantize.imatrix.file
  bool show_progress = true;
};

struct GgufQuantizeReport {
  int n_quantized = 0;
  int n_copied = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;  // tensor data only
  std::vector<std::string> notes;  // one line per tensor left as it was, with the reason
};

// Throws InvalidArgument when the type needs an imatrix and a tensor to quantize has none (naming
// the tensor), IoError/FormatError for file problems.
GgufQuantizeReport quantize_gguf(const std::string& input, const std::string& output,
                                 const GgufQuantizeOptions& options, ThreadPool& pool);

// llama.cpp's general.file_type (llama_ftype) for a file whose tensors are mostly `type`: the type
// table's llama_ftype column, or 0 (all f32) for a type without one.
uint32_t llama_file_type(QuantType type);

}  // namespace insitu
