// Writing a loaded Model as a UQFF 1.2 artifact (io/uqff.h) that insitu and mistral.rs load.
//
// Layer entries: every weight in-situ quantization decided (the plan's weights: token embeddings,
// attention and MLP projections, experts, output head), plus any other matrix stored in a packed
// type, keyed by its Hugging Face module key (model/uqff_load.h uqff_module_key), in key order.
// ggml types (every GGUF type, i-quants included) become Gguf (0) entries; f32/f16/bf16 weights
// Unquant (1) entries. Rows are written in Hugging Face order (llama Q/K rows moved back from GGUF
// order; rows move whole, so the packed bytes are ggml's for each row). A module's bias goes into
// its entry. Token embeddings are layer entries (UQFF 1.2).
//
// Beside the shards: residual.safetensors with every other tensor the model uses under its Hugging
// Face name (from a safetensors source: the source's bytes and dtype; from a GGUF: the model's
// values with the converter's transforms undone, in their stored dtype), config.json without any
// quantization_config, the tokenizer files with tokenizer_config.json carrying the chat template
// the model uses, generation_config.json, and uqff_report.json (schema 1, one output per type;
// outputs of other types already in the directory are kept).
//
// Output: a directory (file stem = options.stem) or a path ending in ".uqff" (stem = its name
// without the extension; the rest goes beside it). Everything is written into a staging directory
// first. A new (or empty) destination directory is renamed into place in one step; into an
// existing one each file is renamed over its old version, old shards of the same stem that the new
// output does not have are removed, and a failure restores the files replaced so far. Either way a
// failure leaves no partial output behind.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/uqff.h"
#include "model/model.h"

namespace insitu {

struct UqffExportOptions {
  std::string output;  // a directory, or a path ending in ".uqff"
  std::string stem;    // the shards' stem for a directory output ("q4k", "q4k_m")
  uint64_t shard_bytes = uqff::kDefaultShardBytes;
  // The decisions in-situ quantization made (Model::plan_isq with the load's options): which
  // weights are layer entries, and the report's targets and fallbacks.
  std::vector<IsqDecision> plan;
  std::string requested;  // what was asked for ("q4k", "q4k_m"), for the report
  bool show_progress = true;
};

struct UqffExportReport {
  std::string dir;                  // where the artifact is
  std::vector<std::string> shards;  // shard file names
  int n_layers = 0;
  uint64_t shard_bytes = 0;  // tensor bytes in the shards
};

// Throws Unsupported for a weight whose type has no UQFF form in this build, InvalidArgument for an
// unusable output path, IoError when writing fails.
UqffExportReport export_uqff(const Model& model, const UqffExportOptions& options);

}  // namespace insitu
