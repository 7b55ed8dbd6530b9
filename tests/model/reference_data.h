// llama.cpp reference outputs for the shipped models (made by scripts/gen_model_reference.py) and
// the comparisons the model tests make against them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace insitu::test {

struct ReferencePrompt {
  std::string text;
  std::vector<int32_t> ids;     // with BOS
  std::vector<int32_t> greedy;  // llama.cpp's greedy continuation
};

struct ReferenceTopK {
  int32_t id;
  float logprob;
};

struct ModelReference {
  std::string model_file;
  std::vector<int32_t> text_ids;  // first + positions + 1 ids of tests/data/text/eval.txt, BOS first
  int first = 0;                  // the position of the first distribution recorded
  int positions = 0;
  int topk = 0;
  std::vector<ReferenceTopK> top;  // [positions, topk] from `first`, most probable first
  std::vector<ReferencePrompt> prompts;
};

// Reads tests/data/reference/<name>.json and its top-k file. Fails the test (ADD_FAILURE) and
// returns an empty reference when they are missing or malformed.
ModelReference load_model_reference(const std::string& name);

struct LogitAgreement {
  double mean_kl = 0;    // mean over positions of KL(reference || ours)
  double max_kl = 0;
  double top1 = 0;       // fraction of positions where our argmax is the reference's top-1
  int positions = 0;
};

// Compares our logits [positions, n_vocab] with the reference's top-k log-probs. KL is taken over
// the reference's top-k classes plus one class for all remaining mass (on both sides): the exact
// KL between the coarsened distributions, which equals the full KL when the top k carry the mass.
LogitAgreement compare_logits(const ModelReference& ref, const std::vector<float>& logits,
                              int n_vocab);

}  // namespace insitu::test
