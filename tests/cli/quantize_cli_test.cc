// `insitu quantize` end to end on the shipped SmolLM2 GGUF: a mix written as a complete GGUF model
// that insitu runs, --pure refused with a mix, and the format-level --generic path.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "cli_runner.h"
#include "io/gguf.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

class CliQuantize : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model missing";
    ASSERT_TRUE(fs::exists(test::binary_dir() + "/bin/insitu"));
    dir_ = fs::temp_directory_path() / ("insitu_quantize_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    src_ = " --format gguf -f '" + test::smollm2_path() + "' -t 2 ";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string out(const char* name) const { return (dir_ / name).string(); }
  // Runs `insitu ARGS`; returns its stdout and stderr and sets *status to the exit code.
  static std::string run(const std::string& args, int* status) {
    const test::CliOutput o = test::run_insitu(args, /*with_stderr=*/true);
    *status = o.status;
    return o.text;
  }
  std::string src_;
  fs::path dir_;
};

TEST_F(CliQuantize, MixWritesAGgufModelThatRuns) {
  int status = 0;
  std::string log = run("quantize" + src_ + "--isq q4k_m -o '" + out("m.gguf") + "'", &status);
  ASSERT_EQ(status, 0) << log;
  const auto f = gguf::GgufFile::open(out("m.gguf"));
  EXPECT_EQ(f->get_u64("general.file_type"), 15u);  // LLAMA_FTYPE_MOSTLY_Q4_K_M
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_TRUE(f->has("tokenizer.chat_template"));
  EXPECT_EQ(f->find_tensor("blk.0.ffn_down.weight")->type, QuantType::kQ6K);
  EXPECT_EQ(f->find_tensor("blk.4.ffn_down.weight")->type, QuantType::kQ4K);
  log = run("run --format gguf -f '" + out("m.gguf") +
                "' -t 2 --raw --greedy -n 4 -p 'The capital of France is'",
            &status);
  EXPECT_EQ(status, 0) << log;
  EXPECT_NE(log.find("Paris"), std::string::npos) << log;
}

TEST_F(CliQuantize, PureWithAMixIsRefused) {
  int status = 0;
  const std::string log =
      run("quantize" + src_ + "--isq q4k_m --pure -o '" + out("p.gguf") + "'", &status);
  EXPECT_NE(status, 0) << log;
  EXPECT_NE(log.find("--pure"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(out("p.gguf")));
}

TEST_F(CliQuantize, GenericPathConvertsFloatTensorsOnly) {
  int status = 0;
  std::string log =
      run("quantize" + src_ + "--generic --isq q8_0 -o '" + out("g.gguf") + "'", &status);
  ASSERT_EQ(status, 0) << log;
  // The shipped tensors are already quantized: the generic path copies them as they are.
  EXPECT_EQ(gguf::GgufFile::open(out("g.gguf"))->find_tensor("blk.0.attn_q.weight")->type,
            QuantType::kQ4_1);
  log = run("quantize" + src_ + "--generic --isq q4k_m -o '" + out("x.gguf") + "'", &status);
  EXPECT_NE(status, 0) << log;
  EXPECT_NE(log.find("mix"), std::string::npos) << log;
}

}  // namespace
}  // namespace insitu
