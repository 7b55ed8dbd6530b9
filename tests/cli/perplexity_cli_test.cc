// `insitu perplexity` end to end on the shipped SmolLM2: the JSON report, a base written and read
// back through --kl-divergence-base / --kl-divergence, and one-line errors for misuse.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

using Output = test::CliOutput;

Output insitu_cli(const std::string& args, bool with_stderr = false) {
  return test::run_insitu(args, with_stderr);
}

class CliPerplexity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model missing";
    dir_ = fs::temp_directory_path() / ("insitu-ppl-cli-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    model_ = "perplexity -t 2 --format gguf -f '" + test::smollm2_path() + "' ";
    common_ = model_ + "--file '" + test::data_dir() + "/text/eval.txt' --chunks 2 --ctx 32 ";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
  std::string model_;   // the verb and the model
  std::string common_;  // and the text, 2 chunks of 32
};

TEST_F(CliPerplexity, JsonReportAndSelfKlDivergence) {
  const std::string base = (dir_ / "base.kld").string();
  Output o = insitu_cli(common_ + "--json --kl-divergence-base '" + base + "'");
  ASSERT_EQ(o.status, 0) << o.text;
  const auto p = nlohmann::json::parse(o.text);
  EXPECT_EQ(p["n_ctx"], 32);
  EXPECT_EQ(p["n_chunk"], 2);
  EXPECT_EQ(p["n_scored"], 2 * 15);
  EXPECT_EQ(p["running_ppl"].size(), 2u);
  EXPECT_GT(p["ppl"].get<double>(), 1.0);
  EXPECT_GT(p["ppl_unc"].get<double>(), 0.0);
  ASSERT_TRUE(fs::exists(base));

  // --ctx is taken from the base when not given.
  o = insitu_cli(model_ + "--kl-divergence --json --kl-divergence-base '" + base + "'");
  ASSERT_EQ(o.status, 0) << o.text;
  const auto k = nlohmann::json::parse(o.text);
  EXPECT_EQ(k["n_scored"], 30);
  EXPECT_LT(k["kld"].get<double>(), 1e-5);
  EXPECT_EQ(k["same_top"], 1.0);
  EXPECT_NEAR(k["ppl"].get<double>(), p["ppl"].get<double>(), 1e-4 * p["ppl"].get<double>());
  for (const char* q : {"max", "99.9", "99", "90", "median", "10", "1", "0.1", "min"})
    EXPECT_TRUE(k["kld_quantiles"].contains(q)) << q;
  EXPECT_TRUE(k["delta_p_quantiles"].contains("median"));
  EXPECT_EQ(k["chunks"].size(), 2u);

  // The readable report.
  o = insitu_cli(common_ + "--kl-divergence --kl-divergence-base '" + base + "'");
  ASSERT_EQ(o.status, 0) << o.text;
  for (const char* line : {"Mean PPL(Q)/PPL(base)", "Mean    KLD:", "Median  KLD:", "99.9%",
                           "RMS Δp", "Same top p: 100.000"})
    EXPECT_NE(o.text.find(line), std::string::npos) << line << "\n" << o.text;
}

TEST_F(CliPerplexity, PlainReport) {
  const Output o = insitu_cli(common_);
  ASSERT_EQ(o.status, 0) << o.text;
  EXPECT_NE(o.text.find("Final estimate: PPL = "), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("[2]"), std::string::npos) << o.text;
}

TEST_F(CliPerplexity, ErrorsAreOneLine) {
  Output o = insitu_cli(common_ + "--kl-divergence", true);
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("--kl-divergence needs --kl-divergence-base"), std::string::npos) << o.text;

  const std::string missing = (dir_ / "missing.kld").string();
  o = insitu_cli(common_ + "--kl-divergence --kl-divergence-base '" + missing + "'", true);
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("missing.kld"), std::string::npos) << o.text;

  o = insitu_cli(model_ + "--file '" + test::data_dir() + "/text/eval.txt' --ctx 4096", true);
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("needs at least 8192"), std::string::npos) << o.text;
}

}  // namespace
}  // namespace insitu
