// imatrix collection: agreement with llama.cpp's llama-imatrix on SmolLM2 (the committed reference
// from scripts/gen_imatrix_reference.py), the streaming pass against the whole-model pass, the
// streaming model's layer contract, and the module-path renaming of the .cimatrix form.
#include "quality/imatrix_collect.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "insitu/error.h"
#include "export/convert.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

std::string calibration_text() {
  std::ifstream in(test::data_dir() + "/text/calib.txt", std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Bitwise equality of two collections (sums, counts and the file-level fields).
void expect_identical(const Imatrix& a, const Imatrix& b) {
  EXPECT_EQ(a.chunk_count, b.chunk_count);
  EXPECT_EQ(a.chunk_size, b.chunk_size);
  ASSERT_EQ(a.entries.size(), b.entries.size());
  for (const auto& [name, ea] : a.entries) {
    ASSERT_EQ(b.entries.count(name), 1u) << name;
    const ImatrixEntry& eb = b.entries.at(name);
    EXPECT_EQ(ea.n_cols, eb.n_cols) << name;
    EXPECT_EQ(ea.n_mat, eb.n_mat) << name;
    EXPECT_EQ(ea.counts, eb.counts) << name;
    ASSERT_EQ(ea.sums.size(), eb.sums.size()) << name;
    EXPECT_EQ(std::memcmp(ea.sums.data(), eb.sums.data(), ea.sums.size() * sizeof(float)), 0)
        << name;
  }
}

// The shipped SmolLM2 converted once to a Hugging Face directory of f32 safetensors: the same
// values as the F32 GGUF llama.cpp's reference was made from, loaded through the streaming path
// that defers the Q/K row permutation.
class SmolLM2Directory : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(test::smollm2_path())) return;
    dir_ = (fs::temp_directory_path() / ("insitu_imatrix_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    ThreadPool pool(2);
    ConvertOptions o;
    o.input = test::smollm2_path();
    o.output_dir = dir_;
    o.show_progress = false;
    convert_gguf_to_hf(o, pool);
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (dir_.empty()) GTEST_SKIP() << "model not fetched: " << test::smollm2_path();
  }
  static LoadOptions source() {
    LoadOptions o;
    o.path = dir_;
    o.n_threads = 2;
    return o;
  }
  static std::string dir_;
};

std::string SmolLM2Directory::dir_;

// E[x²] per column against llama-imatrix's on the same weights, text, context and chunks.
// "Meaningful mass": columns whose E[x²] is at least 1e-3 of the tensor's mean; llama.cpp sums in
// float and both tools' matrix products round differently, so the rest is relative noise.
TEST_F(SmolLM2Directory, AgreesWithLlamaCpp) {
  const std::string ref_dir = test::data_dir() + "/reference/";
  const Imatrix ref = Imatrix::load(ref_dir + "smollm2.imatrix.gguf");
  std::ifstream info_in(ref_dir + "smollm2.imatrix.json");
  const nlohmann::json info = nlohmann::json::parse(info_in);
  ASSERT_EQ(info.at("kv_cache").get<std::string>(), "f32");

  ImatrixCollectOptions o;
  o.n_ctx = info.at("n_ctx").get<int>();
  o.max_chunks = info.at("n_chunks").get<int>();
  o.kv_type = KvCacheType::kF32;
  o.dataset = info.at("text").get<std::string>();
  ThreadPool pool(2);
  const Imatrix ours = collect_imatrix(source(), calibration_text(), o, pool);

  EXPECT_EQ(ours.chunk_count, ref.chunk_count);
  EXPECT_EQ(ours.chunk_size, ref.chunk_size);
  EXPECT_EQ(ours.datasets, ref.datasets);
  ASSERT_EQ(ours.entries.size(), ref.entries.size());
  double worst = 0;
  std::string worst_at;
  int64_t n_cols = 0, n_compared = 0;
  for (const auto& [name, r] : ref.entries) {
    ASSERT_EQ(ours.entries.count(name), 1u) << name << " missing from ours";
    const ImatrixEntry& e = ours.entries.at(name);
    ASSERT_EQ(e.n_cols, r.n_cols) << name;
    ASSERT_EQ(e.n_mat, r.n_mat) << name;
    EXPECT_EQ(e.counts, r.counts) << name;
    const std::vector<float> ei = e.importance(), ri = r.importance();
    double mean = 0;
    for (float v : ri) mean += v;
    mean /= static_cast<double>(ri.size());
    for (size_t j = 0; j < ri.size(); ++j) {
      ++n_cols;
      if (ri[j] < 1e-3 * mean) continue;
      ++n_compared;
      const double rel = std::abs(static_cast<double>(ei[j]) - ri[j]) / ri[j];
      if (rel > worst) {
        worst = rel;
        worst_at = name + "[" + std::to_string(j) + "]";
      }
    }
  }
  EXPECT_LE(worst, 1e-3) << "at " << worst_at;
  EXPECT_GE(n_compared, n_cols * 95 / 100) << "the mass filter left too few columns";
  std::printf("imatrix vs llama.cpp: %lld of %lld columns compared, max relative error %.3g (%s)\n",
              static_cast<long long>(n_compared), static_cast<long long>(n_cols), worst,
              worst_at.c_str());
}

// Layer by layer over the directory (Q/K permuted per layer, then dropped) gives exactly what the
// whole model gives chunk by chunk; afterwards the streaming model's layers are unprepared again.
TEST_F(SmolLM2Directory, StreamingEqualsWholeModelAndReleasesLayers) {
  ImatrixCollectOptions o;
  o.n_ctx = 48;
  o.max_chunks = 2;
  ThreadPool pool(2);
  std::shared_ptr<Model> streamed = Model::load_streaming(source());
  const std::vector<int32_t> tokens = imatrix_tokens(*streamed, calibration_text());
  const Imatrix a = collect_imatrix(streamed, tokens, o, pool);
  const std::shared_ptr<const Model> whole = Model::load(source());
  expect_identical(a, collect_imatrix_eval(whole, tokens, o, pool));

  // Released layers refuse to run; prepared again, they give the loaded model's logits.
  Session s(streamed, 64, pool);
  std::vector<float> logits, expected;
  const std::span<const int32_t> prompt(tokens.data(), 8);
  EXPECT_THROW(s.eval(prompt, true, logits), InvalidArgument);
  for (int il = 0; il < streamed->config().n_layer; ++il) streamed->prepare_layer(il);
  s.eval(prompt, true, logits);
  Session ref(whole, 64, pool);
  ref.eval(prompt, true, expected);
  EXPECT_EQ(logits, expected);
}

class ShippedModelImatrix : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    path_ = GetParam() == "smollm2" ? test::smollm2_path() : test::gemma3_path();
    if (!fs::exists(path_)) GTEST_SKIP() << "model not fetched: " << path_;
  }
  std::string path_;
};

// The streaming pass equals Session::eval with an observer, on each architecture, and collects
// every linear layer's input: 7 per layer, no output head (both models tie it to the embedding,
// which llama.cpp does not collect even with --process-output).
TEST_P(ShippedModelImatrix, StreamingEqualsWholeModel) {
  LoadOptions lo;
  lo.path = path_;
  ImatrixCollectOptions o;
  o.n_ctx = 40;
  o.max_chunks = 3;
  o.process_output = true;
  o.dataset = "calib.txt";
  ThreadPool pool(2);
  std::shared_ptr<Model> streamed = Model::load_streaming(lo);
  const std::vector<int32_t> tokens = imatrix_tokens(*streamed, calibration_text());
  const Imatrix a = collect_imatrix(streamed, tokens, o, pool);
  expect_identical(a, collect_imatrix_eval(Model::load(lo), tokens, o, pool));

  const ModelConfig& c = streamed->config();
  EXPECT_EQ(a.entries.size(), static_cast<size_t>(7 * c.n_layer));
  EXPECT_EQ(a.entries.count("output.weight"), 0u);
  EXPECT_EQ(a.chunk_count, 3);
  EXPECT_EQ(a.chunk_size, 40);
  EXPECT_EQ(a.datasets, std::vector<std::string>{"calib.txt"});
  const ImatrixEntry& down = a.entries.at("blk.0.ffn_down.weight");
  EXPECT_EQ(down.n_cols, c.n_ff);
  EXPECT_EQ(down.counts, std::vector<float>{120});
  for (float v : down.sums) EXPECT_GE(v, 0.0f);
}

INSTANTIATE_TEST_SUITE_P(ShippedModels, ShippedModelImatrix, testing::Values("smollm2", "gemma3"));

TEST(ImatrixCollect, RejectsTooLittleTextAndBadOptions) {
  if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model not fetched";
  LoadOptions lo;
  lo.path = test::smollm2_path();
  ThreadPool pool(2);
  ImatrixCollectOptions o;
  o.n_ctx = 512;
  EXPECT_THROW(collect_imatrix(lo, "A short text.", o, pool), InvalidArgument);
  o.n_ctx = 0;
  EXPECT_THROW(collect_imatrix(lo, "A short text.", o, pool), InvalidArgument);
  o.n_ctx = 4;
  o.max_chunks = 0;
  EXPECT_THROW(collect_imatrix(lo, "A short text.", o, pool), InvalidArgument);
  LoadOptions dq = lo;
  dq.dequantize_to_f32 = true;
  EXPECT_THROW(Model::load_streaming(dq), InvalidArgument);
}

TEST(ImatrixCollect, ModuleKeysForCimatrix) {
  Imatrix im;
  im.entries["blk.3.ffn_down.weight"] = ImatrixEntry{2, 1, {1, 2}, {1}};
  im.entries["blk.0.attn_q.weight"] = ImatrixEntry{1, 1, {1}, {1}};
  im.entries["output.weight"] = ImatrixEntry{1, 1, {1}, {1}};
  const Imatrix keyed = imatrix_with_module_keys(im, Arch::kLlama);
  std::vector<std::string> keys;
  for (const auto& [k, e] : keyed.entries) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"lm_head", "model.layers.0.self_attn.q_proj",
                                            "model.layers.3.mlp.down_proj"}));
  const Imatrix back = imatrix_with_gguf_names(keyed, Arch::kLlama);
  for (const auto& [name, e] : im.entries) EXPECT_EQ(back.entries.count(name), 1u) << name;
  EXPECT_EQ(imatrix_with_gguf_names(im, Arch::kLlama).entries.size(), 3u);  // already GGUF names
  Imatrix odd;
  odd.entries["blk.0.not_a_tensor.weight"] = ImatrixEntry{1, 1, {1}, {1}};
  EXPECT_THROW(imatrix_with_module_keys(odd, Arch::kLlama), InvalidArgument);
  EXPECT_THROW(imatrix_with_gguf_names(odd, Arch::kLlama), InvalidArgument);
}

}  // namespace
}  // namespace insitu
