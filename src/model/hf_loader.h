// Reads a Hugging Face-style checkpoint directory (config.json, model.safetensors or shards with
// model.safetensors.index.json, tokenizer_config.json) into weights with GGUF names and GGUF
// semantics, so the rest of the model code sees one layout:
//   - names mapped with hf_to_gguf_name; HF's rotary inv_freq buffers are skipped;
//   - llama Q/K rows permuted as llama.cpp's converter does (RoPE then rotates adjacent pairs);
//   - gemma3 norm weights shifted by +1 (stored as f32).
// Weights in f32/f16/bf16 stay in the mapping (no copy) unless a transform needs a new buffer.
// Errors name the file and tensor: unsupported dtypes, unknown tensors, shape mismatches.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace insitu {

struct HfCheckpoint {
  ModelConfig config;
  std::vector<Weight> weights;            // GGUF names ("blk.0.attn_q.weight")
  std::shared_ptr<const void> keepalive;  // the safetensors mappings
  std::string chat_template;              // from tokenizer_config.json / chat_template.jinja
};

HfCheckpoint load_hf_checkpoint(const std::string& dir);

}  // namespace insitu
