// Synthetic Hugging Face checkpoints for tests, regenerated bit for bit as
// bench/make_synthetic_checkpoint.py writes them: a dense Llama or a Mixtral-style mixture of
// experts of any shape, with the generator's "exact" bf16 values and SmolLM2's tokenizer (so the
// model cache must hold SmolLM2).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace insitu::test {

struct SyntheticShape {
  int hidden = 64;
  int layers = 2;
  int ff = 128;
  int heads = 4;
  int kv_heads = 2;
  int experts = 0;  // 0: a dense Llama; else a Mixtral with `used` experts per token
  int used = 2;
};

// make_synthetic_checkpoint.py's exact_values for tensor `name` (seed 0), as bf16 bits.
std::vector<uint16_t> exact_bf16(const std::string& name, int64_t n);

// Writes config.json, model.safetensors and tokenizer files into `dir` (created).
void write_synthetic_checkpoint(const std::filesystem::path& dir, const SyntheticShape& shape);

}  // namespace insitu::test
