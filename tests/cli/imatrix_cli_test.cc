// `insitu imatrix` end to end on the shipped SmolLM2: the three output forms load back with the
// same importance, the summary names what was collected, and misuse is a one-line error.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "io/imatrix_file.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

class CliImatrix : public testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model missing";
    dir_ = fs::temp_directory_path() / ("insitu-imatrix-cli-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // Runs `insitu imatrix` on SmolLM2 and the calibration text with `extra`; returns the exit
  // status, with stdout and stderr in log_.
  int run(const std::string& extra, const std::string& chunking = "--ctx 32 --chunks 2") {
    const std::string log = (dir_ / "log.txt").string();
    const std::string cmd = test::binary_dir() + "/bin/insitu imatrix -t 2 -f '" +
                            test::smollm2_path() + "' --file '" + test::data_dir() +
                            "/text/calib.txt' " + chunking + " " + extra + " > '" + log + "' 2>&1";
    const int rc = std::system(cmd.c_str());
    std::ifstream in(log);
    log_.assign(std::istreambuf_iterator<char>(in), {});
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
  std::string out(const char* name) const { return (dir_ / name).string(); }
  fs::path dir_;
  std::string log_;
};

TEST_F(CliImatrix, WritesEveryFormAndTheyAgree) {
  ASSERT_EQ(run("-o '" + out("m.gguf") + "'"), 0) << log_;
  EXPECT_NE(log_.find("2 chunks of 32 (64 tokens used)"), std::string::npos) << log_;
  EXPECT_NE(log_.find("210 tensors"), std::string::npos) << log_;
  ASSERT_EQ(run("-o '" + out("m.dat") + "' --output-format dat"), 0) << log_;
  ASSERT_EQ(run("-o '" + out("m.cimatrix") + "' --output-format cimatrix"), 0) << log_;

  const Imatrix gguf = Imatrix::load(out("m.gguf"));
  EXPECT_EQ(gguf.chunk_count, 2);
  EXPECT_EQ(gguf.chunk_size, 32);
  EXPECT_EQ(gguf.entries.at("blk.0.attn_q.weight").counts, std::vector<float>{64});
  const auto want = gguf.importance();
  const auto dat = Imatrix::load(out("m.dat")).importance();
  const auto cim = Imatrix::load(out("m.cimatrix")).importance();
  ASSERT_EQ(dat.size(), want.size());
  ASSERT_EQ(cim.size(), want.size());
  const std::vector<float>& w = want.at("blk.5.ffn_down.weight");
  const std::vector<float>& d = dat.at("blk.5.ffn_down.weight");
  const std::vector<float>& c = cim.at("model.layers.5.mlp.down_proj");  // E[x²] * 2 chunks
  ASSERT_EQ(d.size(), w.size());
  ASSERT_EQ(c.size(), w.size());
  for (size_t j = 0; j < w.size(); ++j) {
    EXPECT_NEAR(d[j], w[j], 1e-6f * w[j]) << j;
    EXPECT_NEAR(c[j], 2 * w[j], 1e-6f * w[j]) << j;
  }
}

TEST_F(CliImatrix, MisuseIsAOneLineError) {
  EXPECT_EQ(run("-o '" + out("x.gguf") + "' --output-format cimatrix"), 1);
  EXPECT_NE(log_.find("needs the .cimatrix extension"), std::string::npos) << log_;
  EXPECT_EQ(run("-o '" + out("x.cimatrix") + "'"), 1);
  EXPECT_NE(log_.find("is for --output-format cimatrix"), std::string::npos) << log_;
  EXPECT_EQ(run("-o '" + out("x.gguf") + "'", "--ctx 100000"), 1);
  EXPECT_NE(log_.find("fewer than one chunk"), std::string::npos) << log_;
  EXPECT_FALSE(fs::exists(out("x.gguf")));
}

}  // namespace
}  // namespace insitu
