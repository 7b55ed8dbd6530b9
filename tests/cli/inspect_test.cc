// `insitu inspect` end to end: runs the built CLI on the shipped SmolLM2 GGUF and compares what it
// prints with the Python gguf package's view of the file (tests/data/io/smollm2.gguf-ref.jsonl).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "io/safetensors.h"
#include "cli_runner.h"
#include "test_paths.h"

namespace insitu {
namespace {

// Runs the CLI with `args`; returns its output and sets *status to the exit code.
std::string run(const std::string& args, int* status, bool with_stderr = false) {
  const test::CliOutput o = test::run_insitu(args, with_stderr);
  *status = o.status;
  return o.text;
}

std::string cli() { return test::binary_dir() + "/bin/insitu"; }

TEST(CliInspect, GgufJsonMatchesPythonGguf) {
  if (!std::filesystem::exists(test::smollm2_path())) GTEST_SKIP() << "model missing";
  ASSERT_TRUE(std::filesystem::exists(cli())) << cli();
  int status = 0;
  const std::string out = run("inspect --json '" + test::smollm2_path() + "'", &status);
  ASSERT_EQ(status, 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["format"], "gguf");

  std::ifstream ref(test::data_dir() + "/io/smollm2.gguf-ref.jsonl");
  std::string line;
  uint64_t bytes = 0, params = 0;
  size_t n_tensors = 0, n_keys = 0;
  while (std::getline(ref, line)) {
    const auto r = nlohmann::json::parse(line);
    if (r.contains("tensor")) {
      const auto& t = j["tensors"][n_tensors++];
      EXPECT_EQ(t["name"], r["tensor"]);
      EXPECT_EQ(t["shape"], r["ne"]);
      EXPECT_EQ(t["bytes"], r["nbytes"]);
      bytes += r["nbytes"].get<uint64_t>();
      uint64_t e = 1;
      for (const auto& d : r["ne"]) e *= d.get<uint64_t>();
      params += e;
    } else if (r.contains("key")) {
      ++n_keys;
      EXPECT_TRUE(j["metadata"].contains(r["key"].get<std::string>())) << r["key"];
    }
  }
  EXPECT_EQ(j["tensors"].size(), n_tensors);
  EXPECT_EQ(j["metadata"].size(), n_keys);
  EXPECT_EQ(j["totals"]["bytes"], bytes);
  EXPECT_EQ(j["totals"]["parameters"], params);
  EXPECT_NEAR(j["totals"]["bits_per_weight"].get<double>(), 8.0 * bytes / params, 1e-9);
  // The 49152-entry vocabulary is summarised, not dumped.
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["count"], 49152);
}

TEST(CliInspect, TextSummarisesArraysAndPrintsTotals) {
  if (!std::filesystem::exists(test::smollm2_path())) GTEST_SKIP() << "model missing";
  int status = 0;
  const std::string out = run("inspect '" + test::smollm2_path() + "'", &status);
  ASSERT_EQ(status, 0);
  EXPECT_NE(out.find("tokenizer.ggml.tokens = [49152 strings: \"<|endoftext|>\", \"<|im_start|>\", "
                     "\"<|im_end|>\", ... ]"),
            std::string::npos);
  EXPECT_NE(out.find("token_embd.weight"), std::string::npos);
  EXPECT_NE(out.find("totals: 272 tensors"), std::string::npos);
}

TEST(CliInspect, SafetensorsAndErrors) {
  int status = 0;
  const std::string out =
      run("inspect --json '" + test::data_dir() + "/io/reference.safetensors'", &status);
  ASSERT_EQ(status, 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["format"], "safetensors");
  EXPECT_EQ(j["metadata"]["format"], "pt");
  EXPECT_EQ(j["totals"]["tensors"], 14);
  EXPECT_EQ(j["totals"]["bytes"], 86);
  const std::string err =
      run("inspect '" + test::data_dir() + "/malformed/gguf_tensor_overlap.gguf'",
          &status, /*with_stderr=*/true);
  EXPECT_EQ(status, 1);
  EXPECT_NE(err.find("tensor 'b': data at offset 32 overlaps tensor 'a'"), std::string::npos)
      << err;
}

TEST(CliInspect, HuggingFaceDirectory) {
  const std::string dir = testing::TempDir() + "/insitu_inspect_hf";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << R"({"model_type": "llama", "hidden_size": 4})";
  const std::vector<uint8_t> a(16), b(8);
  safetensors::SafetensorsWriter w1, w2;
  w1.add_tensor("model.embed_tokens.weight", safetensors::Dtype::kF32, {2, 2}, a);
  w2.add_tensor("model.norm.weight", safetensors::Dtype::kBF16, {4}, b);
  w1.write(dir + "/model-00001-of-00002.safetensors");
  w2.write(dir + "/model-00002-of-00002.safetensors");
  std::ofstream(dir + "/model.safetensors.index.json")
      << R"({"weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",)"
      << R"( "model.norm.weight": "model-00002-of-00002.safetensors"}})";
  int status = 0;
  const std::string out = run("inspect --json '" + dir + "'", &status);
  ASSERT_EQ(status, 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["metadata"]["config.model_type"], "llama");
  EXPECT_EQ(j["shards"].size(), 2u);
  EXPECT_EQ(j["totals"]["parameters"], 8);
  EXPECT_EQ(j["totals"]["bytes"], 24);
  EXPECT_EQ(j["tensors"][1]["type"], "BF16");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace insitu
