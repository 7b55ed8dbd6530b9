// Reads a Hugging Face-style checkpoint directory (config.json, model.safetensors or shards with
// model.safetensors.index.json, tokenizer_config.json) into weights with GGUF names and GGUF
// semantics, so the rest of the model code sees one layout:
//   - names mapped with hf_to_gguf_name; HF's rotary inv_freq buffers are skipped;
//   - llama Q/K rows permuted as llama.cpp's converter does (RoPE then rotates adjacent pairs);
//   - gemma3 norm weights shifted by +1 (stored as f32);
//   - Mixtral's per-expert tensors stacked into one [n_expert, n_out, n_in] weight per projection
//     (hf_expert_tensor), copied into an owned buffer in their stored dtype.
// Weights in f32/f16/bf16 stay in the mapping (no copy) unless a transform needs a new buffer.
// A deferred load (Model::load_streaming, and ISQ, which stacks each expert weight just before
// quantizing it) leaves the transforms that copy whole weights -- the Q/K permutation and the
// expert stacking -- to when their layer is prepared.
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
  // With defer_permutation: the weights (index into `weights`) whose rows are still in Hugging Face
  // order, and the head count permute_rows_to_gguf needs for each.
  struct DeferredPermutation {
    size_t index = 0;
    int n_head = 0;
  };
  std::vector<DeferredPermutation> deferred_permutations;
  // With defer: the stacked expert weights (index into `weights`, data null until stacked) and
  // their per-expert 2-D sources in expert order, for stack_experts.
  struct DeferredStack {
    size_t index = 0;
    std::vector<Weight> experts;
  };
  std::vector<DeferredStack> deferred_stacks;
};

// shapes_only: read no tensor data at all (LoadOptions::shapes_only); the gemma3 norm shift then
// only sets the f32 type and size it would give, with data null. Use with defer.
HfCheckpoint load_hf_checkpoint(const std::string& dir, bool defer = false,
                                bool shapes_only = false);

// Points a stacked expert weight (ne [n_in, n_out, n_expert]) at an owned buffer holding the
// experts' rows in order (all of the weight's type and shape, checked at load), releasing each
// source's pages once copied.
void stack_experts(Weight& w, const std::vector<Weight>& experts);

// Points a Q/K weight whose rows are in Hugging Face order at an owned copy in GGUF order (the
// converter's permutation with n_head heads; rows already checked to split into heads), then
// releases the source pages.
void permute_rows_to_gguf(Weight& w, int n_head);

}  // namespace insitu
