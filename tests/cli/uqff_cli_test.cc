// The UQFF surfaces of the CLI on a full-precision SmolLM2 directory: `quantize` writes UQFF by
// default and `run -m` loads it, `--quant` finds the sibling <model>-UQFF or falls back to ISQ,
// the refused combinations, and `-m org/name` from a Hugging Face cache layout.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli_runner.h"
#include "export/convert.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

class CliUqff : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(test::smollm2_path())) return;
    root_ = fs::temp_directory_path() / ("insitu_uqff_cli_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    ThreadPool pool(2);
    ConvertOptions o;
    o.input = test::smollm2_path();
    o.output_dir = (root_ / "smol").string();
    o.dtype = safetensors::Dtype::kBF16;
    o.show_progress = false;
    convert_gguf_to_hf(o, pool);
    // The sibling artifact every test may use: q4k only.
    const test::CliOutput q = test::run_insitu(
        "quantize -m '" + (root_ / "smol").string() + "' --isq q4k -t 2 -o '" +
            (root_ / "smol-UQFF").string() + "'",
        true);
    quantize_log_ = q.text;
    quantize_status_ = q.status;
  }
  static void TearDownTestSuite() {
    if (!root_.empty()) fs::remove_all(root_);
  }
  void SetUp() override {
    if (root_.empty()) GTEST_SKIP() << "model not fetched";
    ASSERT_EQ(quantize_status_, 0) << quantize_log_;
  }
  static std::string path(const std::string& name) { return "'" + (root_ / name).string() + "'"; }
  static test::CliOutput run(const std::string& args) { return test::run_insitu(args, true); }
  static std::string prompt() { return " -t 2 --raw --greedy -n 4 -p 'The capital of France is'"; }

  static fs::path root_;
  static std::string quantize_log_;
  static int quantize_status_;
};

fs::path CliUqff::root_;
std::string CliUqff::quantize_log_;
int CliUqff::quantize_status_ = -1;

TEST_F(CliUqff, QuantizeWritesUqffThatRuns) {
  EXPECT_TRUE(fs::exists(root_ / "smol-UQFF" / "q4k-0.uqff"));
  EXPECT_TRUE(fs::exists(root_ / "smol-UQFF" / "residual.safetensors"));
  EXPECT_TRUE(fs::exists(root_ / "smol-UQFF" / "uqff_report.json"));
  const test::CliOutput r = run("run -m " + path("smol-UQFF") + prompt());
  EXPECT_EQ(r.status, 0) << r.text;
  EXPECT_NE(r.text.find("Paris"), std::string::npos) << r.text;
}

TEST_F(CliUqff, QuantFindsTheSiblingOrQuantizesInSitu) {
  test::CliOutput r = run("run -m " + path("smol") + " --quant 4 --log-level info" + prompt());
  EXPECT_EQ(r.status, 0) << r.text;
  EXPECT_NE(r.text.find("prebuilt UQFF"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("Paris"), std::string::npos) << r.text;
  r = run("run -m " + path("smol") + " --quant q8_0 --log-level info" + prompt());
  EXPECT_EQ(r.status, 0) << r.text;
  EXPECT_NE(r.text.find("quantizing in situ"), std::string::npos) << r.text;
}

TEST_F(CliUqff, RefusedCombinations) {
  test::CliOutput r = run("run -m " + path("smol-UQFF") + " --quant 6" + prompt());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.text.find("it has: q4k"), std::string::npos) << r.text;
  r = run("run -m " + path("smol") + " --quant 4 --isq q4k" + prompt());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.text.find("--quant"), std::string::npos) << r.text;
  r = run("run -m " + path("smol-UQFF") + " --from-uqff q4k --isq q8_0" + prompt());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.text.find("--from-uqff"), std::string::npos) << r.text;
  r = run("quantize -m " + path("smol") + " --isq q4k --output-format gguf -o " + path("x.uqff"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.text.find("extension"), std::string::npos) << r.text;
  EXPECT_FALSE(fs::exists(root_ / "x.uqff"));
}

// inspect reads a UQFF artifact: its entries with their types, shards, residual and report.
TEST_F(CliUqff, InspectReadsUqff) {
  test::CliOutput r = run("inspect --json " + path("smol-UQFF"));
  ASSERT_EQ(r.status, 0) << r.text;
  for (const char* want : {"\"uqff\"", "\"uqff_version\"", "\"entries_per_type\"",
                           "\"residual_tensors\"", "\"report\"", "model.layers.0.self_attn.q_proj",
                           "q5_0"})
    EXPECT_NE(r.text.find(want), std::string::npos) << want << "\n" << r.text.substr(0, 2000);
  r = run("inspect " + path("smol-UQFF/q4k-0.uqff"));
  ASSERT_EQ(r.status, 0) << r.text;
  EXPECT_NE(r.text.find("uqff"), std::string::npos) << r.text.substr(0, 2000);
}

// Errors before work: a GGUF cannot hold hqq4, and quantize says so before quantizing anything;
// the types it lists are GGUF types only. --quant auto writes what tune recommends.
TEST_F(CliUqff, QuantizeChecksBeforeWorkAndTakesQuantAuto) {
  test::CliOutput r =
      run("quantize -m " + path("smol") + " --isq hqq4 --output-format gguf -o " + path("h.gguf"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.text.find("hqq4 has no GGUF form"), std::string::npos) << r.text;
  EXPECT_EQ(r.text.find("afq4"), std::string::npos) << r.text;
  EXPECT_EQ(r.text.find("re-isq"), std::string::npos) << r.text;
  EXPECT_EQ(r.text.find("isq hqq4"), std::string::npos) << "no conversion ran: " << r.text;
  EXPECT_FALSE(fs::exists(root_ / "h.gguf"));
  r = run("quantize -m " + path("smol") + " --quant auto --max-memory 16G -t 2 -o " +
          path("auto-UQFF"));
  EXPECT_EQ(r.status, 0) << r.text;
  EXPECT_TRUE(fs::exists(root_ / "auto-UQFF" / "uqff_report.json")) << r.text;
  r = run("quantize -m " + path("smol") + " --from-uqff q4k --isq q4k -o " + path("y"));
  EXPECT_NE(r.status, 0);
  // -m on a lone safetensors file says a directory is expected.
  r = run("run -m " + path("smol/model.safetensors") + prompt());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.text.find("directory"), std::string::npos) << r.text;
}

TEST_F(CliUqff, FromUqffWithTheSourceDirectory) {
  const test::CliOutput r =
      run("run -m " + path("smol") + " --from-uqff " + path("smol-UQFF/q4k-0.uqff") + prompt());
  EXPECT_EQ(r.status, 0) << r.text;
  EXPECT_NE(r.text.find("Paris"), std::string::npos) << r.text;
}

// A cache laid out as huggingface_hub does: blobs, and a snapshot of symlinks to them.
TEST_F(CliUqff, ModelIdFromTheHuggingFaceCache) {
  const fs::path repo = root_ / "hub" / "models--org--smol";
  const fs::path snap = repo / "snapshots" / "0123abc";
  fs::create_directories(repo / "blobs");
  fs::create_directories(snap);
  fs::create_directories(repo / "refs");
  std::ofstream(repo / "refs" / "main") << "0123abc";
  for (const fs::directory_entry& e : fs::directory_iterator(root_ / "smol")) {
    const std::string blob = "blob-" + e.path().filename().string();
    fs::create_symlink(e.path(), repo / "blobs" / blob);
    fs::create_symlink(fs::path("../../blobs") / blob, snap / e.path().filename());
  }
  ::setenv("HF_HUB_CACHE", (root_ / "hub").c_str(), 1);
  test::CliOutput r = run("run -m org/smol" + prompt());
  EXPECT_EQ(r.status, 0) << r.text;
  EXPECT_NE(r.text.find("Paris"), std::string::npos) << r.text;
  r = run("run -m org/absent" + prompt());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.text.find("models--org--absent"), std::string::npos) << r.text;
  ::unsetenv("HF_HUB_CACHE");
}

}  // namespace
}  // namespace insitu
