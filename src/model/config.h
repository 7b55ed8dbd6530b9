// Model hyper-parameters, read from GGUF metadata or a Hugging Face config.json.
//
// Both readers produce the same ModelConfig, with GGUF semantics: e.g. rope_freq_base is the
// global layers' base, query_pre_attn_scalar is what the attention scale is derived from, and
// RoPE style is implied by the architecture (llama: "normal" adjacent pairs on GGUF's permuted
// Q/K; gemma3: NeoX halves). Missing required keys, unsupported architectures and inconsistent
// shapes throw FormatError / Unsupported naming the source and the key.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "insitu/config.h"

namespace insitu {

namespace gguf {
class GgufFile;
class GgufWriter;
}

// From GGUF metadata ("<arch>.block_count", ...); a llama file with "<arch>.expert_count" > 0 is a
// Mixtral-style mixture of experts (n_expert, n_expert_used). tied_embeddings is set from the
// absence of output.weight. Throws Unsupported for an architecture other than llama/gemma3
// (naming the valid ones) and FormatError for a missing or malformed key.
ModelConfig config_from_gguf(const gguf::GgufFile& file);

// From a parsed Hugging Face config.json ("architectures", "hidden_size", ...). `source` names the
// file in errors. MixtralForCausalLM is the llama architecture with num_local_experts experts per
// layer, num_experts_per_tok of them used per token. Gemma3 defaults follow transformers'
// Gemma3TextConfig where a key is absent.
ModelConfig config_from_hf_json(const nlohmann::json& j, const std::string& source);
ModelConfig config_from_hf_file(const std::string& path);

// The inverse: a config.json that config_from_hf_json reads back to the same ModelConfig
// (used by `insitu convert`).
nlohmann::json config_to_hf_json(const ModelConfig& config);

// The inverse of config_from_gguf: general.architecture, general.name and the "<arch>." keys
// llama.cpp's converter writes for the architecture, such that config_from_gguf (and llama.cpp)
// read back the same configuration. llama3 RoPE factors are not metadata: they go in the
// rope_freqs.weight tensor (llama3_rope_freq_factors), which is the caller's to add. Throws
// Unsupported for what GGUF cannot say: yarn scaling, and a gemma3 query_pre_attn_scalar other
// than the one llama.cpp derives from the shape.
void config_to_gguf(const ModelConfig& config, gguf::GgufWriter& writer);

// RoPE frequency factors (one per rotated pair, head_dim/2 values) implied by llama3-style rope
// scaling, computed as llama.cpp's converter does (conversion/llama.py, llama.cpp as vendored in
// llama-cpp-python 0.3.36); empty when the config has no llama3 scaling.
std::vector<float> llama3_rope_freq_factors(const ModelConfig& config);

}  // namespace insitu
