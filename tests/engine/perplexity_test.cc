// Perplexity and KL divergence (engine/perplexity.h, engine/kld_base_file.h): the base file's
// log-prob encoding against hand-computed values, the file's checks, and on the shipped models
// agreement with llama.cpp's own llama-perplexity (tests/data/reference/perplexity.json, made by
// scripts/gen_perplexity_reference.py), independence from the batch size, KLD of a model against
// itself, and rejection of bases made for another model, text or context.
#include "quality/perplexity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "quality/kld_base_file.h"
#include "insitu/error.h"
#include "model/model.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string eval_text() { return read_all(test::data_dir() + "/text/eval.txt"); }

// A fresh directory for the files a test writes; removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("insitu-ppl-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  size_t entries() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(path_), {}));
  }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

// ---- The uint16 log-prob encoding (llama.cpp's log_softmax with log_prob output) ----

TEST(KldEncoding, HandComputedRecord) {
  // max 2, floor max(-20, 2 - 16) = -14, scale 16/65535; -20 lies below the floor.
  const std::vector<float> logits = {0.f, 1.f, 2.f, -20.f};
  ASSERT_EQ(kld_record_size(4), 8u);
  std::vector<uint16_t> rec(8, 0xffff);
  const double nll = encode_log_probs(logits, 1, rec.data());

  const double lse = std::log(std::exp(-2.0) + std::exp(-1.0) + 1.0 + std::exp(-22.0));
  float scale, min_log_prob;
  std::memcpy(&scale, rec.data(), 4);
  std::memcpy(&min_log_prob, rec.data() + 2, 4);
  EXPECT_FLOAT_EQ(scale, 16.0f / 65535.0f);
  EXPECT_NEAR(min_log_prob, -14.0 - 2.0 - lse, 1e-6);
  // (logit - floor) / scale rounded: 14*65535/16 = 57343.125, 15*65535/16 = 61439.0625, 65535.
  EXPECT_EQ(rec[4], 57343);
  EXPECT_EQ(rec[5], 61439);
  EXPECT_EQ(rec[6], 65535);
  EXPECT_EQ(rec[7], 0);  // below the floor
  EXPECT_NEAR(nll, 1.0 + lse, 1e-6);
  // Decoding gives the log-softmax within half a step.
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(decoded_log_prob(rec.data(), i), logits[i] - 2.0 - lse, scale / 2 + 1e-6) << i;
}

TEST(KldEncoding, OddVocabularyPadsAndFlatRowHasZeroScale) {
  ASSERT_EQ(kld_record_size(5), 10u);  // 2 * 3 + 4
  std::vector<uint16_t> rec(10, 0xffff);
  const std::vector<float> flat(5, 3.5f);
  const double nll = encode_log_probs(flat, 4, rec.data());
  float scale, min_log_prob;
  std::memcpy(&scale, rec.data(), 4);
  std::memcpy(&min_log_prob, rec.data() + 2, 4);
  EXPECT_EQ(scale, 0.0f);
  EXPECT_NEAR(min_log_prob, -std::log(5.0), 1e-6);
  for (int i = 4; i < 10; ++i) EXPECT_EQ(rec[i], 0) << i;  // q all zero, pad zero
  EXPECT_NEAR(nll, std::log(5.0), 1e-6);
}

// ---- The file ----

std::vector<uint16_t> synthetic_records(int n_records, int n_vocab) {
  std::vector<uint16_t> out;
  std::vector<uint16_t> rec(kld_record_size(n_vocab));
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  for (int r = 0; r < n_records; ++r) {
    for (int i = 0; i < n_vocab; ++i) logits[i] = std::sin(0.7f * i + r);
    encode_log_probs(logits, r % n_vocab, rec.data());
    out.insert(out.end(), rec.begin(), rec.end());
  }
  return out;
}

TEST(KldBaseFile, WritesAndReadsBack) {
  TempDir dir;
  const int n_ctx = 8, n_vocab = 5, n_chunk = 2;
  std::vector<int32_t> tokens(n_ctx * n_chunk);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i % n_vocab);
  const int n_records = n_chunk * kld_scored_per_chunk(n_ctx);  // 2 * 3
  const std::vector<uint16_t> records = synthetic_records(n_records, n_vocab);
  KldBaseWriter w(dir.file("base.bin"), n_ctx, n_vocab, n_chunk, tokens);
  w.append(records);
  w.commit();
  EXPECT_EQ(fs::file_size(dir.file("base.bin")), 20 + 4 * tokens.size() + 2 * records.size());

  const KldBaseFile f = KldBaseFile::open(dir.file("base.bin"));
  EXPECT_EQ(f.n_ctx(), n_ctx);
  EXPECT_EQ(f.n_vocab(), n_vocab);
  EXPECT_EQ(f.n_chunk(), n_chunk);
  EXPECT_EQ(std::vector<int32_t>(f.tokens().begin(), f.tokens().end()), tokens);
  const size_t nv = kld_record_size(n_vocab);
  EXPECT_EQ(0, std::memcmp(f.record(1, 2), records.data() + 5 * nv, nv * 2));
}

TEST(KldBaseFile, RejectsTruncatedAndForeignFiles) {
  TempDir dir;
  const int n_ctx = 8, n_vocab = 5;
  std::vector<int32_t> tokens(n_ctx, 1);
  KldBaseWriter w(dir.file("base.bin"), n_ctx, n_vocab, 1, tokens);
  w.append(synthetic_records(kld_scored_per_chunk(n_ctx), n_vocab));
  w.commit();
  const std::string bytes = read_all(dir.file("base.bin"));

  std::ofstream(dir.file("short.bin"), std::ios::binary) << bytes.substr(0, bytes.size() - 3);
  const std::string e = error_of<FormatError>([&] { KldBaseFile::open(dir.file("short.bin")); });
  EXPECT_NE(e.find("short.bin"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;

  std::ofstream(dir.file("long.bin"), std::ios::binary) << bytes << "xx";
  EXPECT_NE(error_of<FormatError>([&] {
              KldBaseFile::open(dir.file("long.bin"));
            }).find("longer than its header"),
            std::string::npos);

  std::ofstream(dir.file("magic.bin"), std::ios::binary) << "GGUF" << bytes.substr(4);
  EXPECT_NE(
      error_of<FormatError>([&] { KldBaseFile::open(dir.file("magic.bin")); }).find("_logits_"),
      std::string::npos);

  std::string bad_token = bytes;
  bad_token[20 + 4 * 3] = 9;  // token 3 := 9, outside the vocabulary of 5
  std::ofstream(dir.file("token.bin"), std::ios::binary) << bad_token;
  EXPECT_NE(error_of<FormatError>([&] {
              KldBaseFile::open(dir.file("token.bin"));
            }).find("outside the vocabulary"),
            std::string::npos);
}

TEST(KldBaseFile, IncompleteWriteLeavesNothing) {
  TempDir dir;
  {
    KldBaseWriter w(dir.file("base.bin"), 8, 5, 2, std::vector<int32_t>(16, 0));
    w.append(synthetic_records(kld_scored_per_chunk(8), 5));  // one chunk of two
    EXPECT_THROW(w.commit(), InvalidArgument);
  }
  {
    KldBaseWriter w(dir.file("base.bin"), 8, 5, 2, std::vector<int32_t>(16, 0));
    w.append(synthetic_records(3, 5));
  }  // never committed
  EXPECT_EQ(dir.entries(), 0u);
}

// ---- On the shipped models ----

std::shared_ptr<const Model> load(const std::string& path) {
  LoadOptions o;
  o.path = path;
  return Model::load(o);
}

struct Case {
  const char* name;
  std::string (*path)();
};

// Our perplexity over the reference text equals llama-perplexity's within 0.5% (the acceptance
// bound: ggml's kernels round differently from ours), chunk count and all.
TEST(Perplexity, AgreesWithLlamaCpp) {
  const nlohmann::json ref =
      nlohmann::json::parse(read_all(test::data_dir() + "/reference/perplexity.json"));
  const std::string text = read_all(test::source_dir() + "/" + ref["text_file"].get<std::string>());
  ThreadPool pool(2);
  for (const Case& c : {Case{"smollm2", test::smollm2_path}, Case{"gemma3", test::gemma3_path}}) {
    SCOPED_TRACE(c.name);
    if (!fs::exists(c.path())) GTEST_SKIP() << "model missing: " << c.path();
    const nlohmann::json& m = ref["models"][c.name];
    const auto model = load(c.path());
    PerplexityOptions o;
    o.n_ctx = ref["ctx"];
    o.n_batch = ref["batch"];
    const PerplexityResult r = compute_perplexity(model, perplexity_tokens(*model, text), o, pool);
    const double theirs = m["ppl"];
    ASSERT_EQ(r.n_chunk, m["n_chunks"].get<int>());
    EXPECT_EQ(r.n_scored, static_cast<int64_t>(r.n_chunk) * (o.n_ctx - 1 - o.n_ctx / 2));
    std::printf("[ %s ] PPL %.4f +/- %.5f, llama.cpp %.4f +/- %.5f (%+.3f%%)\n", c.name,
                r.ppl.value, r.ppl.unc, theirs, m["ppl_unc"].get<double>(),
                100 * (r.ppl.value / theirs - 1));
    EXPECT_NEAR(r.ppl.value / theirs, 1.0, 0.005);
    // The uncertainty follows the same formula over nearly the same values.
    EXPECT_NEAR(r.ppl.unc / m["ppl_unc"].get<double>(), 1.0, 0.05);
    for (size_t i = 0; i < r.running_ppl.size(); ++i)
      EXPECT_NEAR(r.running_ppl[i] / m["running_ppl"][i].get<double>(), 1.0, 0.01) << "chunk " << i;
  }
}

// The batch only groups tokens into eval calls: a chunk split at any allowed size gives the same
// numbers, bit for bit.
TEST(Perplexity, BatchSizeDoesNotChangeResults) {
  if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model missing";
  const auto model = load(test::smollm2_path());
  const std::vector<int32_t> tokens = perplexity_tokens(*model, eval_text());
  ThreadPool pool(2);
  PerplexityOptions o;
  o.n_ctx = 64;
  o.max_chunks = 2;
  o.n_batch = 64;
  const PerplexityResult whole = compute_perplexity(model, tokens, o, pool);
  o.n_batch = 17;  // calls of 16 and 15 tokens
  const PerplexityResult split = compute_perplexity(model, tokens, o, pool);
  ASSERT_EQ(whole.running_ppl.size(), 2u);
  EXPECT_EQ(split.running_ppl, whole.running_ppl);
  EXPECT_EQ(split.ppl.unc, whole.ppl.unc);

  o.n_batch = kMinBatch - 1;
  const std::string e =
      error_of<InvalidArgument>([&] { compute_perplexity(model, tokens, o, pool); });
  EXPECT_NE(e.find("--batch 15 too small"), std::string::npos) << e;
}

TEST(Perplexity, RejectsTooShortText) {
  if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model missing";
  const auto model = load(test::smollm2_path());
  ThreadPool pool(2);
  PerplexityOptions o;
  o.n_ctx = 512;
  const std::string e = error_of<InvalidArgument>(
      [&] { compute_perplexity(model, perplexity_tokens(*model, "Too short."), o, pool); });
  EXPECT_NE(e.find("needs at least 1024"), std::string::npos) << e;
}

// A model against its own base: KLD ~ 0 (only the uint16 rounding of the stored log-probs),
// the same top token everywhere, PPL(Q) = PPL(base) = the perplexity run's.
TEST(KlDivergence, ModelAgainstItsOwnBase) {
  if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model missing";
  const auto model = load(test::smollm2_path());
  const std::vector<int32_t> tokens = perplexity_tokens(*model, eval_text());
  ThreadPool pool(2);
  TempDir dir;
  PerplexityOptions o;
  o.n_ctx = 64;
  o.max_chunks = 3;
  const PerplexityResult p = compute_perplexity(model, tokens, o, pool, {}, dir.file("base.kld"));
  EXPECT_EQ(dir.entries(), 1u);  // the base, no temporary left
  const KldBaseFile base = KldBaseFile::open(dir.file("base.kld"));
  EXPECT_EQ(base.n_chunk(), 3);
  EXPECT_EQ(base.n_ctx(), 64);

  o.n_batch = 24;  // another grouping: still the same logits
  const KlDivergenceResult k = compute_kl_divergence(model, base, tokens, o, pool);
  EXPECT_EQ(k.n_scored, p.n_scored);
  EXPECT_NEAR(k.ppl.value, p.ppl.value, 1e-5 * p.ppl.value);
  EXPECT_NEAR(k.ppl_base.value, p.ppl.value, 1e-3 * p.ppl.value);
  EXPECT_LT(std::fabs(k.kld.value), 1e-5);         // measured 1.8e-6: rounding to uint16 steps
  EXPECT_LT(k.kld_quantiles.front().value, 1e-4);  // the maximum
  EXPECT_EQ(k.same_top.value, 1.0);
  EXPECT_LT(k.delta_p_rms.value, 1e-3);
  EXPECT_EQ(k.chunks.size(), 3u);
  ASSERT_EQ(k.kld_quantiles.size(), 11u);
  EXPECT_EQ(k.kld_quantiles[5].fraction, 0.5);
  ASSERT_EQ(k.delta_p_quantiles.size(), 13u);
}

// Bases that do not fit the run are refused with the file named and the mismatch said.
TEST(KlDivergence, RejectsBasesThatDoNotMatch) {
  if (!fs::exists(test::smollm2_path()) || !fs::exists(test::gemma3_path()))
    GTEST_SKIP() << "model missing";
  const auto smollm2 = load(test::smollm2_path());
  const auto gemma3 = load(test::gemma3_path());
  const std::string text = eval_text();
  const std::vector<int32_t> tokens = perplexity_tokens(*smollm2, text);
  ThreadPool pool(2);
  TempDir dir;
  PerplexityOptions o;
  o.n_ctx = 16;
  o.max_chunks = 1;
  compute_perplexity(smollm2, tokens, o, pool, {}, dir.file("smollm2.kld"));
  compute_perplexity(gemma3, perplexity_tokens(*gemma3, text), o, pool, {}, dir.file("gemma3.kld"));
  const KldBaseFile own = KldBaseFile::open(dir.file("smollm2.kld"));

  // Another model's vocabulary.
  std::string e = error_of<InvalidArgument>([&] {
    compute_kl_divergence(smollm2, KldBaseFile::open(dir.file("gemma3.kld")), tokens, o, pool);
  });
  EXPECT_NE(e.find("gemma3.kld"), std::string::npos) << e;
  EXPECT_NE(e.find("vocabulary of 262144"), std::string::npos) << e;

  // Another text.
  const std::vector<int32_t> other =
      perplexity_tokens(*smollm2, "A different text entirely, which tokenizes otherwise. " + text);
  e = error_of<InvalidArgument>([&] { compute_kl_divergence(smollm2, own, other, o, pool); });
  EXPECT_NE(e.find("smollm2.kld"), std::string::npos) << e;
  EXPECT_NE(e.find("another text"), std::string::npos) << e;

  // Another context.
  PerplexityOptions wide = o;
  wide.n_ctx = 32;
  e = error_of<InvalidArgument>([&] { compute_kl_divergence(smollm2, own, tokens, wide, pool); });
  EXPECT_NE(e.find("context of 16"), std::string::npos) << e;

  // Truncated.
  const std::string bytes = read_all(dir.file("smollm2.kld"));
  std::ofstream(dir.file("cut.kld"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  e = error_of<FormatError>([&] { KldBaseFile::open(dir.file("cut.kld")); });
  EXPECT_NE(e.find("cut.kld"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
}

// A run that fails part-way leaves no base file and no temporary behind.
TEST(KlDivergence, FailedRunLeavesNoBase) {
  if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model missing";
  const auto model = load(test::smollm2_path());
  ThreadPool pool(2);
  TempDir dir;
  PerplexityOptions o;
  o.n_ctx = 16;
  o.max_chunks = 3;
  auto fail_after_one = [](int done, int) {
    if (done == 1) throw IoError("interrupted");
  };
  EXPECT_THROW(compute_perplexity(model, perplexity_tokens(*model, eval_text()), o, pool,
                                  fail_after_one, dir.file("base.kld")),
               IoError);
  EXPECT_EQ(dir.entries(), 0u);
}

}  // namespace
}  // namespace insitu
