// The shipped models against llama.cpp (reference data from scripts/gen_model_reference.py):
// identical token ids, teacher-forced logits close to llama.cpp's over 512 positions of real text,
// and greedy continuations that follow llama.cpp's until a near-tie.
//
// How close is close: these small quantized models are so sensitive to rounding that llama.cpp
// disagrees with itself when only its arithmetic changes. Measured on this text with
// llama-cpp-python 0.3.36 (scripts/gen_model_reference.py's settings vs one change):
//   f32 instead of f16 KV cache: SmolLM2 mean KL 0.0044, top-1 95.9%; Gemma 3 0.0067, 95.1%
//   flash attention on:          SmolLM2 mean KL 0.0042, top-1 96.3%
// insitu measures SmolLM2 0.0034 / 95.3%, Gemma 3 0.0052 / 95.7% (GGUF), so the bounds below sit
// just outside llama.cpp's own variation: a real error (a wrong RoPE, norm or mask) moves mean KL
// by orders of magnitude. The stricter targets (KL <= 0.005, top-1 >= 98%, 32 identical
// greedy tokens) would need bit-exact reproduction of llama.cpp's kernels and are reported, not
// asserted. Greedy continuations may part from llama.cpp's only where its token was a near-tie
// for us too.
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

constexpr double kMaxMeanKl = 0.0075;
constexpr double kMinTop1 = 0.94;
constexpr size_t kMinIdenticalGreedy = 3;
// Largest gap seen at a divergence: 0.82 nats (Gemma 3, the fibonacci prompt, token 23); the
// rest are below 0.4. A wrong token from a real bug is typically several nats behind.
constexpr double kNearTieNats = 1.0;

struct GreedyComparison {
  size_t same = 0;        // leading tokens identical to llama.cpp's
  double tie_gap = 0.0;   // at the first difference: our log-prob of our token minus of theirs
};

// Greedy decoding, compared step by step with llama.cpp's continuation.
GreedyComparison greedy_against(Session& s, const std::vector<int32_t>& prompt,
                                const std::vector<int32_t>& theirs) {
  s.reset();
  std::vector<float> logits;
  s.eval(prompt, false, logits);
  GreedyComparison c;
  const Tokenizer& tok = s.model().tokenizer();
  while (c.same < theirs.size()) {
    const int32_t next =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (next != theirs[c.same]) {
      c.tie_gap = static_cast<double>(logits[next]) - logits[theirs[c.same]];
      break;
    }
    ++c.same;
    if (tok.is_eog(next)) break;
    const int32_t one[1] = {next};
    s.eval(one, false, logits);
  }
  return c;
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
  EXPECT_LE(a.mean_kl, kMaxMeanKl);
  EXPECT_GE(a.top1, kMinTop1);

  for (const test::ReferencePrompt& p : ref.prompts) {
    const GreedyComparison g = greedy_against(session, p.ids, p.greedy);
    std::printf("[ %s ] greedy '%.30s...': %zu/%zu tokens identical", ref.model_file.c_str(),
                p.text.c_str(), g.same, p.greedy.size());
    if (g.same < p.greedy.size()) std::printf(", then a %.3f-nat tie", g.tie_gap);
    std::printf("\n");
    EXPECT_GE(g.same, std::min(kMinIdenticalGreedy, p.greedy.size())) << "prompt: " << p.text;
    if (g.same < p.greedy.size()) {
      EXPECT_LE(g.tie_gap, kNearTieNats)
          << "prompt: " << p.text << ": parted from llama.cpp at token " << g.same
          << " where its choice was not a near-tie";
    }
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
