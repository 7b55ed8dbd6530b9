// --calibration-file: the importance matrix collected at load is the one `insitu imatrix` writes
// for the same text, so quantizing with either gives the same model; and the flag's misuse is
// refused with one clear line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

class CliCalibration : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model missing";
    dir_ = fs::temp_directory_path() / ("insitu-calib-cli-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    model_ = "-t 2 --format gguf -f '" + test::smollm2_path() + "' ";
    // The first 3 KB of the committed calibration text: one chunk of 512 tokens keeps this quick.
    std::ifstream in(test::data_dir() + "/text/calib.txt", std::ios::binary);
    std::string text(3000, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    calib_ = (dir_ / "calib.txt").string();
    std::ofstream(calib_, std::ios::binary) << text;
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
  std::string model_;
  std::string calib_;
};

TEST_F(CliCalibration, QuantizesWithTheImatrixThatImatrixCollects) {
  const std::string imat = (dir_ / "calib.imatrix.gguf").string();
  // --calibration-file uses chunks of 512 tokens (or the whole text when shorter).
  test::CliOutput o = test::run_insitu("imatrix " + model_ + "--file '" + calib_ +
                                           "' --ctx 512 -o '" + imat + "'",
                                       true);
  ASSERT_EQ(o.status, 0) << o.text;
  const std::string ppl = "perplexity " + model_ + "--file '" + test::data_dir() +
                          "/text/eval.txt' --ctx 64 --chunks 2 --json --isq q4_0 ";
  const test::CliOutput with_file = test::run_insitu(ppl + "--imatrix '" + imat + "'");
  const test::CliOutput collected = test::run_insitu(ppl + "--calibration-file '" + calib_ + "'");
  const test::CliOutput plain = test::run_insitu(ppl);
  ASSERT_EQ(with_file.status, 0) << with_file.text;
  ASSERT_EQ(collected.status, 0) << collected.text;
  ASSERT_EQ(plain.status, 0) << plain.text;
  const auto a = nlohmann::json::parse(with_file.text);
  const auto b = nlohmann::json::parse(collected.text);
  const auto c = nlohmann::json::parse(plain.text);
  EXPECT_EQ(a["ppl"], b["ppl"]);
  EXPECT_EQ(a["running_ppl"], b["running_ppl"]);
  // ...and the imatrix did change the quantized weights.
  EXPECT_NE(a["ppl"], c["ppl"]);
}

TEST_F(CliCalibration, MisuseIsOneClearError) {
  test::CliOutput o = test::run_insitu(
      "run " + model_ + "--prompt hi --isq q4_0 --imatrix x.gguf --calibration-file '" + calib_ +
          "'",
      true);
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.text.find("--imatrix and --calibration-file"), std::string::npos) << o.text;
  o = test::run_insitu("run " + model_ + "--prompt hi --calibration-file '" + calib_ + "'", true);
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.text.find("--calibration-file needs --isq"), std::string::npos) << o.text;
  o = test::run_insitu("run " + model_ + "--prompt hi --isq q4_0 --calibration-file /nonexistent.txt",
                       true);
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.text.find("/nonexistent.txt"), std::string::npos) << o.text;
}

}  // namespace
}  // namespace insitu
