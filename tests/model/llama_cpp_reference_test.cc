// The shipped models against llama.cpp (reference data from scripts/gen_model_reference.py):
// identical token ids, teacher-forced logits within KL 0.005 and 98% top-1 agreement over 512
// positions of real text, and greedy continuations identical for at least 32 tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <filesystem>
#include <unistd.h>

#include "model/convert.h"
#include "model/model.h"
#include "model/reference_data.h"
#include "test_paths.h"

namespace insitu {
namespace {

struct Case {
  std::string name;        // reference data name
  std::string (*path)();   // model location
};

std::vector<int32_t> greedy(Session& s, const std::vector<int32_t>& prompt, size_t n) {
  s.reset();
  std::vector<float> logits;
  s.eval(prompt, false, logits);
  std::vector<int32_t> out;
  const Tokenizer& tok = s.model().tokenizer();
  while (out.size() < n) {
    const int32_t next =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(next);
    if (tok.is_eog(next)) break;
    const int32_t one[1] = {next};
    s.eval(one, false, logits);
  }
  return out;
}

// Runs every comparison for a model already loaded (from GGUF, or from a converted directory).
void check_against_llama_cpp(const std::shared_ptr<const Model>& model,
                             const test::ModelReference& ref) {
  ThreadPool pool(2);
  const Tokenizer& tok = model->tokenizer();

  for (const test::ReferencePrompt& p : ref.prompts) {
    EXPECT_EQ(tok.encode(p.text, true, false), p.ids) << "prompt: " << p.text;
  }

  Session session(model, 1024, pool);
  std::vector<float> logits;
  const std::vector<int32_t> input(ref.text_ids.begin(), ref.text_ids.begin() + ref.positions);
  session.eval(input, true, logits);
  const int n_vocab = model->config().n_vocab;
  ASSERT_EQ(logits.size(), static_cast<size_t>(ref.positions) * n_vocab);
  const test::LogitAgreement a = test::compare_logits(ref, logits, n_vocab);
  std::printf("[ %s ] %d positions: mean KL %.6f, max KL %.5f, top-1 agreement %.2f%%\n",
              ref.model_file.c_str(), a.positions, a.mean_kl, a.max_kl, 100 * a.top1);
  EXPECT_LE(a.mean_kl, 0.005);
  EXPECT_GE(a.top1, 0.98);

  for (const test::ReferencePrompt& p : ref.prompts) {
    const std::vector<int32_t> ours = greedy(session, p.ids, p.greedy.size());
    size_t same = 0;
    while (same < ours.size() && same < p.greedy.size() && ours[same] == p.greedy[same]) ++same;
    std::printf("[ %s ] greedy '%.30s...': %zu/%zu tokens identical\n", ref.model_file.c_str(),
                p.text.c_str(), same, p.greedy.size());
    EXPECT_GE(same, std::min<size_t>(32, p.greedy.size())) << "prompt: " << p.text;
  }
}

class LlamaCppReference : public ::testing::TestWithParam<Case> {};

TEST_P(LlamaCppReference, GgufMatchesLlamaCpp) {
  const test::ModelReference ref = test::load_model_reference(GetParam().name);
  ASSERT_FALSE(ref.text_ids.empty());
  LoadOptions opts;
  opts.path = GetParam().path();
  check_against_llama_cpp(Model::load(opts), ref);
}

// `insitu convert` writes a Hugging Face directory that must give the same results as its GGUF.
TEST_P(LlamaCppReference, ConvertedDirectoryMatchesLlamaCpp) {
  const test::ModelReference ref = test::load_model_reference(GetParam().name);
  ASSERT_FALSE(ref.text_ids.empty());
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() /
                       ("insitu_convert_" + GetParam().name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ThreadPool pool(2);
  ConvertOptions copts;
  copts.input = GetParam().path();
  copts.output_dir = dir.string();
  copts.show_progress = false;
  convert_gguf_to_hf(copts, pool);
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors",
                        "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  }
  LoadOptions opts;
  opts.path = dir.string();
  check_against_llama_cpp(Model::load(opts), ref);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(ShippedModels, LlamaCppReference,
                         ::testing::Values(Case{"smollm2", &test::smollm2_path},
                                           Case{"gemma3", &test::gemma3_path}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace insitu
