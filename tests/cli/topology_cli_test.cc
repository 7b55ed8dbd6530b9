// `--topology FILE.yml` on the CLI: with --isq its typed entries win; without --isq every entry
// must name a type, and the other weights stay as stored.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli_runner.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

class CliTopology : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model missing";
    dir_ = fs::temp_directory_path() / ("insitu-topology-cli-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    run_ = "run -t 2 --format gguf -f '" + test::smollm2_path() +
           "' --raw -p 'The capital of France is' -n 2 --greedy --log-level debug ";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
  std::string run_;
};

TEST_F(CliTopology, TypedTopologyAloneQuantizesOnlyWhatItMatches) {
  const std::string file = write("typed.yml", "0-2:\n  isq: q8_0\n");
  const test::CliOutput o = test::run_insitu(run_ + "--topology '" + file + "'", true);
  ASSERT_EQ(o.status, 0) << o.text;
  EXPECT_NE(o.text.find("blk.1.ffn_down.weight: pinned by topology (0-2)"), std::string::npos)
      << o.text;
  EXPECT_EQ(o.text.find("blk.2.ffn_down.weight"), std::string::npos) << o.text;
}

TEST_F(CliTopology, UntypedEntryNeedsIsq) {
  const std::string file = write("untyped.yml", "0-2:\n  isq: q8_0\n2-4:\n  device: cpu\n");
  test::CliOutput o = test::run_insitu(run_ + "--topology '" + file + "'", true);
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.text.find("line 3: '2-4' names no isq type"), std::string::npos) << o.text;
  // With --isq the untyped entry means q4_0, and the typed one still wins on its layers.
  o = test::run_insitu(run_ + "--isq q4_0 --topology '" + file + "'", true);
  ASSERT_EQ(o.status, 0) << o.text;
  EXPECT_NE(o.text.find("blk.0.attn_q.weight: pinned by topology (0-2)"), std::string::npos)
      << o.text;
  EXPECT_EQ(o.text.find("blk.2.attn_q.weight: pinned"), std::string::npos) << o.text;
}

TEST_F(CliTopology, BadFilesAndFlagsFailWithOneLine) {
  std::string file = write("bad.yml", "0-2:\n  isq: q8_0\n  typo: 1\n");
  test::CliOutput o = test::run_insitu(run_ + "--isq q4k --topology '" + file + "'", true);
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.text.find("bad.yml:3: '0-2': unknown key 'typo'"), std::string::npos) << o.text;
  file = write("typed.yml", "0-2:\n  isq: q8_0\n");
  o = test::run_insitu(run_ + "--pure --topology '" + file + "'", true);
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.text.find("--pure needs --isq"), std::string::npos) << o.text;
  o = test::run_insitu(run_ + "--topology '" + (dir_ / "missing.yml").string() + "'", true);
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.text.find("missing.yml"), std::string::npos) << o.text;
}

}  // namespace
}  // namespace insitu
