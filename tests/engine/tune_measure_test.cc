// tune --measure's layer-streamed KL divergence against the direct computation: each candidate's
// model loaded in full with that ISQ, run over the same tokens with Session::eval, its logits
// compared with the stored model's by llama.cpp's per-position KL (engine/kld_base_file.h). A GGUF
// (SmolLM2, Q4_1, tied embeddings), a Hugging Face bf16 directory (whose Q/K rows are permuted when
// a layer is prepared) and a synthetic checkpoint with its own output head are measured; the
// stored weights are back in place afterwards, and bad input changes nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "quality/kld_base_file.h"
#include "quality/perplexity.h"
#include "quality/tune_measure.h"
#include "insitu/error.h"
#include "export/convert.h"
#include "model/synthetic_checkpoint.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;
using Q = QuantType;

constexpr int kTokens = 40;

std::vector<int32_t> text_tokens(const Model& model) {
  std::ifstream in(test::data_dir() + "/text/eval.txt", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<int32_t> t = perplexity_tokens(model, text);
  t.resize(kTokens);
  return t;
}

IsqOptions isq(QuantType type) {
  IsqOptions o;
  o.type = type;
  o.show_progress = false;
  return o;
}

std::vector<float> all_logits(const std::shared_ptr<const Model>& model,
                              const std::vector<int32_t>& tokens, ThreadPool& pool) {
  Session s(model, static_cast<int>(tokens.size()), pool);
  std::vector<float> logits;
  s.eval(tokens, true, logits);
  return logits;
}

// What measure_isq_kld computes, the direct way: the candidate loaded in full.
IsqMeasurement direct(const std::string& path, const IsqOptions& candidate,
                      const std::vector<int32_t>& tokens, const std::vector<float>& stored,
                      ThreadPool& pool) {
  LoadOptions lo;
  lo.path = path;
  lo.n_threads = 2;
  lo.isq = candidate;
  const std::shared_ptr<const Model> model = Model::load(lo);
  const std::vector<float> logits = all_logits(model, tokens, pool);
  const int V = model->config().n_vocab;
  std::vector<uint16_t> record(kld_record_size(V));
  IsqMeasurement m;
  int64_t same = 0;
  for (size_t r = 0; r + 1 < tokens.size(); ++r) {
    encode_log_probs(std::span<const float>(stored.data() + r * V, V), tokens[r + 1],
                     record.data());
    const KldRow row = kld_row(logits.data() + r * V, V, record.data(), tokens[r + 1]);
    m.kld += row.kld;
    same += row.same_top;
    ++m.n_scored;
  }
  m.kld /= static_cast<double>(m.n_scored);
  m.same_top = static_cast<double>(same) / static_cast<double>(m.n_scored);
  return m;
}

// Measures `candidates` on `path` and checks each against the direct computation, then that the
// streaming model runs as stored again.
void check_against_direct(const std::string& path, const std::vector<IsqOptions>& candidates) {
  ThreadPool pool(2);
  LoadOptions lo;
  lo.path = path;
  lo.n_threads = 2;
  const std::shared_ptr<const Model> plain = Model::load(lo);
  const std::vector<int32_t> tokens = text_tokens(*plain);
  const std::vector<float> stored = all_logits(plain, tokens, pool);

  const std::shared_ptr<Model> streaming = Model::load_streaming(lo);
  int64_t steps = 0, total = 0;
  const std::vector<IsqMeasurement> measured =
      measure_isq_kld(streaming, candidates, tokens, pool, KvCacheType::kF16,
                      [&](int64_t done, int64_t all) {
                        EXPECT_EQ(done, steps + 1);
                        steps = done;
                        total = all;
                      });
  ASSERT_EQ(measured.size(), candidates.size());
  EXPECT_EQ(steps, total);
  EXPECT_EQ(total, static_cast<int64_t>(candidates.size() + 1) *
                       (streaming->config().n_layer + 2));
  for (size_t k = 0; k < candidates.size(); ++k) {
    SCOPED_TRACE(quant_type_name(candidates[k].type));
    const IsqMeasurement want = direct(path, candidates[k], tokens, stored, pool);
    EXPECT_EQ(measured[k].n_scored, kTokens - 1);
    EXPECT_GT(measured[k].kld, 0.0);
    // The hidden states are the same bits; the head runs in blocks of 32 rows where eval runs
    // all 40 at once, which moves the logits' last bits.
    EXPECT_NEAR(measured[k].kld, want.kld, 1e-5 * want.kld);
    EXPECT_DOUBLE_EQ(measured[k].same_top, want.same_top);
    EXPECT_GT(measured[k].kld_unc, 0.0);
    EXPECT_LT(measured[k].kld_unc, measured[k].kld);
  }
  // Fewer bits, further away.
  if (candidates.size() == 2) {
    EXPECT_GT(measured[1].kld, measured[0].kld);
  }

  // The stored weights are back: every layer prepared again, the streaming model's logits are the
  // plain load's.
  for (int il = 0; il < streaming->config().n_layer; ++il) streaming->prepare_layer(il);
  EXPECT_EQ(all_logits(streaming, tokens, pool), stored);
}

TEST(TuneMeasure, GgufMatchesFullLoads) {
  if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model not fetched";
  check_against_direct(test::smollm2_path(), {isq(Q::kQ8_0), isq(Q::kQ3K)});
}

TEST(TuneMeasure, MixMatchesFullLoad) {
  if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model not fetched";
  IsqOptions mix = isq(Q::kQ4K);
  mix.mix = parse_isq_target("q4k_m").mix;
  check_against_direct(test::smollm2_path(), {mix});
}

TEST(TuneMeasure, HfDirectoryMatchesFullLoad) {
  if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model not fetched";
  const fs::path dir =
      fs::temp_directory_path() / ("insitu_tune_measure_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ConvertOptions c;
  c.input = test::smollm2_path();
  c.output_dir = dir.string();
  c.dtype = safetensors::Dtype::kBF16;
  c.show_progress = false;
  ThreadPool pool(2);
  convert_gguf_to_hf(c, pool);
  check_against_direct(dir.string(), {isq(Q::kQ6K)});
  fs::remove_all(dir);
}

// An untied output head (SmolLM2's is tied to the embeddings): converted on its own for the head.
TEST(TuneMeasure, UntiedHeadMatchesFullLoad) {
  if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model not fetched";
  const fs::path dir =
      fs::temp_directory_path() / ("insitu_tune_measure_llama_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  test::SyntheticShape shape;
  shape.hidden = 256;
  shape.ff = 768;
  test::write_synthetic_checkpoint(dir, shape);
  {
    LoadOptions lo;
    lo.path = dir.string();
    const auto model = Model::load(lo);
    ASSERT_FALSE(model->config().tied_embeddings);
    ASSERT_NE(model->find_weight("output.weight"), nullptr);
  }
  check_against_direct(dir.string(), {isq(Q::kQ8_0), isq(Q::kQ2K)});
  fs::remove_all(dir);
}

TEST(TuneMeasure, BadInputChangesNothing) {
  if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model not fetched";
  ThreadPool pool(2);
  LoadOptions lo;
  lo.path = test::smollm2_path();
  lo.n_threads = 2;
  const std::shared_ptr<Model> model = Model::load_streaming(lo);
  const std::vector<int32_t> tokens = text_tokens(*model);
  const std::vector<int32_t> one(tokens.begin(), tokens.begin() + 1);
  EXPECT_THROW(measure_isq_kld(model, {isq(Q::kQ4K)}, one, pool), InvalidArgument);
  std::vector<int32_t> bad = tokens;
  bad[3] = model->config().n_vocab;
  EXPECT_THROW(measure_isq_kld(model, {isq(Q::kQ4K)}, bad, pool), InvalidArgument);
  // An i-quant without an importance matrix is refused before anything is converted.
  EXPECT_THROW(measure_isq_kld(model, {isq(Q::kQ4K), isq(Q::kIQ2_XXS)}, tokens, pool),
               InvalidArgument);
  for (const Weight& w : model->weights()) EXPECT_NE(w.type, Q::kQ4K) << w.name;
  // No candidates: nothing but the stored run.
  EXPECT_TRUE(measure_isq_kld(model, {}, tokens, pool).empty());
}

}  // namespace
}  // namespace insitu
