// The shipped models load, produce finite logits, and the session's batching, truncation and
// checks behave. (Agreement with llama.cpp is tested against reference data elsewhere.)
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/generator.h"
#include "insitu/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/hf_names.h"
#include "model/model.h"
#include "quant/float_convert.h"
#include "quant/type_traits.h"
#include "test_paths.h"
#include "tokenizer/hf_export.h"

namespace insitu {
namespace {

const char kText[] =
    "The GNU Coding Standards were written by Richard Stallman and other GNU Project volunteers.";

double kl(const float* p_logits, const float* q_logits, int n) {
  auto lse = [n](const float* x) {
    double m = x[0];
    for (int i = 1; i < n; ++i) m = std::max(m, static_cast<double>(x[i]));
    double s = 0;
    for (int i = 0; i < n; ++i) s += std::exp(x[i] - m);
    return m + std::log(s);
  };
  const double lp = lse(p_logits), lq = lse(q_logits);
  double k = 0;
  for (int i = 0; i < n; ++i) {
    const double a = p_logits[i] - lp;
    k += std::exp(a) * (a - (q_logits[i] - lq));
  }
  return k;
}

int argmax(const float* x, int n) { return static_cast<int>(std::max_element(x, x + n) - x); }

class ModelSmoke : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    path_ = GetParam() == "smollm2" ? test::smollm2_path() : test::gemma3_path();
    if (!std::filesystem::exists(path_)) GTEST_SKIP() << "model not fetched: " << path_;
  }
  std::string path_;
};

TEST_P(ModelSmoke, LoadsAndProducesFiniteConsistentLogits) {
  LoadOptions o;
  o.path = path_;
  std::shared_ptr<const Model> m = Model::load(o);
  const ModelConfig& c = m->config();
  const int V = c.n_vocab;
  ThreadPool pool(2);
  const std::vector<int32_t> ids = m->tokenizer().encode(kText, true, false);
  ASSERT_GE(ids.size(), 12u);
  const int n = static_cast<int>(ids.size());

  Session s(m, 256, pool);
  std::vector<float> all;
  s.eval(ids, true, all);
  ASSERT_EQ(all.size(), static_cast<size_t>(n) * V);
  for (float x : all) ASSERT_TRUE(std::isfinite(x));
  EXPECT_EQ(s.n_past(), n);

  // Two batches give what one batch gave.
  Session s2(m, 256, pool);
  std::vector<float> a, b;
  const int half = n / 2;
  s2.eval(std::span(ids).first(half), true, a);
  s2.eval(std::span(ids).subspan(half), true, b);
  for (int t = 0; t < n - half; ++t)
    EXPECT_LT(kl(all.data() + (half + t) * V, b.data() + t * V, V), 1e-3) << t;

  // Token by token (the decode path) agrees closely too.
  Session s3(m, 256, pool);
  std::vector<float> one;
  int same_top = 0;
  for (int t = 0; t < n; ++t) {
    s3.eval(std::span(ids).subspan(t, 1), false, one);
    ASSERT_EQ(one.size(), static_cast<size_t>(V));
    EXPECT_LT(kl(all.data() + t * V, one.data(), V), 0.05) << t;
    same_top += argmax(all.data() + t * V, V) == argmax(one.data(), V);
  }
  EXPECT_GE(same_top, n - 2);

  // Truncating and re-evaluating reproduces the logits.
  s.truncate(half);
  EXPECT_EQ(s.n_past(), half);
  std::vector<float> again;
  s.eval(std::span(ids).subspan(half), true, again);
  for (int t = 0; t < n - half; ++t)
    EXPECT_LT(kl(b.data() + t * V, again.data() + t * V, V), 1e-6) << t;

  // The f32 cache stays close to the f16 one.
  Session s4(m, 256, pool, KvCacheType::kF32);
  std::vector<float> f32;
  s4.eval(ids, false, f32);
  EXPECT_LT(kl(all.data() + (n - 1) * V, f32.data(), V), 0.05);

  // Checks on input.
  Session small(m, 4, pool);
  EXPECT_THROW(small.eval(ids, false, one), InvalidArgument);
  const std::vector<int32_t> bad = {V};
  EXPECT_THROW(small.eval(bad, false, one), InvalidArgument);
  EXPECT_EQ(small.n_past(), 0);
}

TEST_P(ModelSmoke, GreedyGenerationFollowsLlamaCpp) {
  LoadOptions o;
  o.path = path_;
  std::shared_ptr<const Model> m = Model::load(o);
  ThreadPool pool(2);
  Session s(m, 128, pool);
  // llama.cpp's greedy continuation of the first reference prompt (scripts/gen_model_reference.py).
  std::ifstream in(test::data_dir() + "/reference/" + GetParam() + ".json");
  ASSERT_TRUE(in) << "reference data missing";
  const nlohmann::json ref = nlohmann::json::parse(in);
  const nlohmann::json& p = ref.at("prompts").at(0);
  const std::vector<int32_t> prompt = m->tokenizer().encode(p.at("text").get<std::string>(), true, false);
  EXPECT_EQ(prompt, p.at("ids").get<std::vector<int32_t>>());
  const std::vector<int32_t> want = p.at("greedy").get<std::vector<int32_t>>();
  GenerateOptions g;
  g.sampling.temperature = 0;
  g.max_tokens = 8;
  std::string streamed;
  const GenerateResult r = generate(s, prompt, g, [&](const TokenEvent& e) {
    streamed += e.text;
    return true;
  });
  EXPECT_EQ(r.text, streamed);
  EXPECT_EQ(r.stats.n_prompt, static_cast<int>(prompt.size()));
  ASSERT_EQ(r.tokens.size(), 8u);
  EXPECT_EQ(r.tokens, std::vector<int32_t>(want.begin(), want.begin() + 8));
  EXPECT_EQ(r.text, m->tokenizer().decode(r.tokens, false));
}

INSTANTIATE_TEST_SUITE_P(Shipped, ModelSmoke, ::testing::Values("smollm2", "gemma3"));

// GGUF -> Hugging Face directory (names mapped, Q/K un-permuted, f16) -> load: the same model.
TEST(ModelHf, SmolLM2RoundTripThroughSafetensors) {
  const std::string path = test::smollm2_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model not fetched";
  auto file = gguf::GgufFile::open(path);
  const ModelConfig c = config_from_gguf(*file);
  const std::string dir = (std::filesystem::temp_directory_path() / "insitu_model_hf_test").string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << config_to_hf_json(c).dump(2);
  write_hf_tokenizer_files(*file, dir);

  safetensors::SafetensorsWriter w;
  std::vector<std::vector<uint8_t>> keep;  // the writer reads the bytes in write()
  for (const gguf::TensorInfo& t : file->tensors()) {
    const std::optional<std::string> hf = gguf_to_hf_name(t.name, c.arch);
    ASSERT_TRUE(hf) << t.name;
    const int64_t n_in = t.ne[0], rows = t.n_rows();
    std::vector<float> f(static_cast<size_t>(n_in * rows));
    const size_t rb = quant_row_size(t.type, n_in);
    for (int64_t r = 0; r < rows; ++r)
      type_traits(t.type).dequantize_row(t.data + r * rb, f.data() + r * n_in, n_in);
    std::vector<uint16_t> h(f.size());
    for (size_t i = 0; i < f.size(); ++i) h[i] = fp32_to_fp16(f[i]);
    const HfTransform tr = hf_transform(t.name, c);
    if (tr.permute_heads > 0) {
      std::vector<uint16_t> p(h.size());
      permute_qk_rows(h.data(), p.data(), rows, n_in * 2, tr.permute_heads, false);
      h.swap(p);
    }
    std::vector<int64_t> shape(t.ne.rbegin(), t.ne.rend());
    std::vector<uint8_t>& bytes = keep.emplace_back(h.size() * 2);
    std::memcpy(bytes.data(), h.data(), bytes.size());
    w.add_tensor(*hf, safetensors::Dtype::kF16, shape, std::span<const uint8_t>(bytes));
  }
  w.write(dir + "/model.safetensors");

  LoadOptions og;
  og.path = path;
  og.dequantize_to_f32 = true;
  LoadOptions oh;
  oh.path = dir;
  auto mg = Model::load(og);
  auto mh = Model::load(oh);
  ASSERT_EQ(mh->config().n_layer, c.n_layer);
  EXPECT_EQ(mh->find_weight("blk.0.attn_q.weight")->type, QuantType::kF16);
  ThreadPool pool(2);
  const std::vector<int32_t> ids = mg->tokenizer().encode(kText, true, false);
  EXPECT_EQ(mh->tokenizer().encode(kText, true, false), ids);
  Session sg(mg, 128, pool), sh(mh, 128, pool);
  std::vector<float> lg, lh;
  sg.eval(ids, true, lg);
  sh.eval(ids, true, lh);
  const int V = c.n_vocab;
  for (size_t t = 0; t < ids.size(); ++t) {
    EXPECT_LT(kl(lg.data() + t * V, lh.data() + t * V, V), 0.01) << t;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace insitu
