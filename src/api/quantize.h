// Quantize a model once and write it out (what `insitu quantize` and Python's insitu.quantize
// do): UQFF 1.2 (mistral.rs's format) or a complete GGUF model, or the format-level GGUF path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "insitu/options.h"

namespace insitu {

struct QuantizeOptions {
  // What to load and how to quantize it: path and isq (a type, bits or a llama.cpp mix) or quant
  // ("auto": what `insitu tune` recommends for profile/max_memory/ctx; bits or a type: as isq),
  // imatrix or calibration_file, topology, pure, isq_organization, threads. from_uqff is refused:
  // quantize converts from the source weights.
  BuildOptions build;
  std::string output;         // a directory or x.uqff (UQFF), or x.gguf (GGUF)
  std::string output_format;  // "uqff" | "gguf"; empty: gguf for *.gguf, else uqff
  uint64_t shard_bytes = 0;   // UQFF: start a new shard before one would pass this (0: 10 GiB)
  // GGUF input only: every 2-D float tensor whose rows the type takes becomes the type, the rest
  // and the metadata are copied as they are, without loading the model.
  bool generic = false;
};

struct QuantizeReport {
  std::string format;               // "uqff" | "gguf"
  std::string target;               // "q4k", "q4k_m"
  std::string output;               // the file or directory written
  std::string summary;              // one line for a terminal
  std::vector<std::string> shards;  // UQFF: the shard file names
  int64_t count = 0;                // GGUF: tensors written; UQFF: layer entries
  uint64_t tensor_bytes = 0;        // weight bytes written
};

// Checks everything it can before any work (the output format against the type: a GGUF cannot
// hold insitu-only types such as hqq4; combinations of options), then loads with in-situ
// quantization and writes. Outputs are staged and renamed into place. Throws InvalidArgument
// for bad options, Unsupported for a type the format cannot hold, IoError when writing fails.
QuantizeReport quantize_model(const QuantizeOptions& options);

}  // namespace insitu
