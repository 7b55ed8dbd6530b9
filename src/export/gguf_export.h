// Writing a loaded Model as a complete GGUF model file that llama.cpp and insitu load: the
// architecture metadata (config_to_gguf), the tokenizer (write_gguf_tokenizer), the chat template,
// general.file_type and general.quantization_version, quantize.imatrix.* when an importance matrix
// was used, and every weight under llama.cpp's tensor names in the type and bytes the Model holds
// (a Model loaded with in-situ quantization writes its quantized weights).
//
// The Model already holds llama.cpp's conventions, whatever it was loaded from: llama Q/K rows in
// GGUF order, gemma3 norm weights as 1 + w, norms in f32, a tied output head as the token
// embedding alone (no output.weight). llama3 RoPE factors are added as rope_freqs.weight when the
// Model's weights do not carry them. Tensors are ordered as llama.cpp's converter orders them
// (token embeddings, then layer by layer, then the output norm and head), and streamed from the
// Model's memory one at a time; the file is written atomically (io/gguf_writer.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/model.h"

namespace insitu {

struct GgufExportOptions {
  // general.file_type (llama_ftype); unset: general_metadata_from's, else that of the type most
  // weight bytes are stored in (llama_file_type in quant/gguf_quantize.h).
  std::optional<uint32_t> file_type;
  // The importance matrix used to quantize, if any, recorded as llama-quantize records it:
  // quantize.imatrix.file and .dataset (each when known: a matrix collected in memory has only a
  // dataset), .entries_count and .chunks_count (when > 0).
  std::string imatrix_file;
  std::string imatrix_dataset;
  int64_t imatrix_entries = 0;
  int64_t imatrix_chunks = 0;
  // A GGUF file whose general.* descriptive keys (license, tags, ...) are carried over; empty:
  // none. The CLI names the source when it is a GGUF.
  std::string general_metadata_from;
  bool show_progress = true;
};

struct GgufExportReport {
  int n_tensors = 0;
  uint64_t tensor_bytes = 0;
  uint64_t file_bytes = 0;
};

// Throws Unsupported for a weight whose type has no GGUF form (types numbered from 1000) or
// metadata GGUF cannot carry (config_to_gguf, write_gguf_tokenizer), IoError when writing fails;
// nothing is left at `path` on failure.
GgufExportReport export_gguf(const Model& model, const std::string& path,
                             const GgufExportOptions& options);

}  // namespace insitu
