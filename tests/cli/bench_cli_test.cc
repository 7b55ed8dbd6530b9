// `insitu bench` speaks llama-bench's formats: its JSON has llama-bench's keys with the same
// types (so tools that parse llama-bench's output read ours), its table has the same columns, and
// comma-separated lists and -pg make one test each.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_runner.h"
#include "test_paths.h"

namespace insitu {
namespace {

class CliBench : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(test::smollm2_path()))
      GTEST_SKIP() << "model not fetched: " << test::smollm2_path();
  }
  std::string model() const { return "-f '" + test::smollm2_path() + "' "; }
};

// The keys llama-bench writes and the JSON type each has there.
void expect_llama_bench_record(const nlohmann::json& j) {
  using T = nlohmann::json::value_t;
  const std::vector<std::pair<const char*, std::vector<T>>> keys = {
      {"build_commit", {T::string}}, {"build_number", {T::number_integer, T::number_unsigned}},
      {"cpu_info", {T::string}}, {"gpu_info", {T::string}}, {"backends", {T::string}},
      {"model_filename", {T::string}}, {"model_type", {T::string}},
      {"model_size", {T::number_unsigned, T::number_integer}},
      {"model_n_params", {T::number_unsigned, T::number_integer}},
      {"n_batch", {T::number_integer, T::number_unsigned}},
      {"n_ubatch", {T::number_integer, T::number_unsigned}},
      {"n_threads", {T::number_integer, T::number_unsigned}}, {"type_k", {T::string}},
      {"type_v", {T::string}}, {"n_gpu_layers", {T::number_integer, T::number_unsigned}},
      {"flash_attn", {T::boolean}}, {"use_mmap", {T::boolean}}, {"embeddings", {T::boolean}},
      {"n_prompt", {T::number_integer, T::number_unsigned}},
      {"n_gen", {T::number_integer, T::number_unsigned}},
      {"n_depth", {T::number_integer, T::number_unsigned}}, {"test_time", {T::string}},
      {"avg_ns", {T::number_unsigned, T::number_integer}},
      {"stddev_ns", {T::number_unsigned, T::number_integer}}, {"avg_ts", {T::number_float}},
      {"stddev_ts", {T::number_float}}, {"samples_ns", {T::array}}, {"samples_ts", {T::array}}};
  for (const auto& [key, types] : keys) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_NE(std::find(types.begin(), types.end(), j[key].type()), types.end()) << key;
  }
  EXPECT_GT(j["avg_ts"].get<double>(), 0);
  EXPECT_EQ(j["samples_ts"].size(), j["samples_ns"].size());
}

TEST_F(CliBench, JsonHasLlamaBenchKeysAndOneRecordPerTest) {
  const test::CliOutput o =
      test::run_insitu("bench " + model() + "-p 8,16 -n 4 -pg 8,2 -d 0,8 -r 2 -t 1 -o json "
                       "--log-level warn");
  ASSERT_EQ(o.status, 0) << o.text;
  const nlohmann::json all = nlohmann::json::parse(o.text);
  ASSERT_TRUE(all.is_array());
  ASSERT_EQ(all.size(), 8u);  // (pp8, pp16, tg4, pp8+tg2) x depths 0 and 8
  for (const nlohmann::json& j : all) expect_llama_bench_record(j);
  EXPECT_EQ(all[0]["n_prompt"], 8);
  EXPECT_EQ(all[0]["n_gen"], 0);
  EXPECT_EQ(all[3]["n_prompt"], 8);
  EXPECT_EQ(all[3]["n_gen"], 2);
  EXPECT_EQ(all[4]["n_depth"], 8);
  EXPECT_EQ(all[0]["samples_ns"].size(), 2u);
  EXPECT_NE(all[0]["model_type"].get<std::string>().find("llama"), std::string::npos);
}

TEST_F(CliBench, TableJsonlAndCsv) {
  test::CliOutput o = test::run_insitu("bench " + model() + "-p 8 -n 2 -r 1 -t 1 --log-level warn");
  ASSERT_EQ(o.status, 0) << o.text;
  EXPECT_NE(o.text.find("| model"), std::string::npos) << o.text;
  for (const char* col : {"size", "params", "backend", "threads", "test", "t/s"})
    EXPECT_NE(o.text.find(col), std::string::npos) << col;
  EXPECT_NE(o.text.find("pp8"), std::string::npos);
  EXPECT_NE(o.text.find("tg2"), std::string::npos);
  EXPECT_NE(o.text.find(" ± "), std::string::npos);

  o = test::run_insitu("bench " + model() + "-p 8 -n 2 -r 1 -t 1 -o jsonl --log-level warn");
  ASSERT_EQ(o.status, 0) << o.text;
  std::istringstream lines(o.text);
  int n = 0;
  for (std::string line; std::getline(lines, line);) {
    expect_llama_bench_record(nlohmann::json::parse(line));
    ++n;
  }
  EXPECT_EQ(n, 2);

  o = test::run_insitu("bench " + model() + "-p 8 -n 0 -r 1 -t 1 -o csv --log-level warn");
  ASSERT_EQ(o.status, 0) << o.text;
  EXPECT_EQ(o.text.rfind("build_commit,", 0), 0u) << o.text;

  // An in-situ quantized load names its type in the model column.
  o = test::run_insitu("bench " + model() + "--isq q8_0 -p 8 -n 0 -r 1 -t 1 --log-level warn");
  ASSERT_EQ(o.status, 0) << o.text;
  EXPECT_NE(o.text.find("q8_0 (isq)"), std::string::npos) << o.text;
  // Bad values name the range.
  o = test::run_insitu("bench " + model() + "-o xml", true);
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.text.find("md csv json jsonl"), std::string::npos) << o.text;
}

}  // namespace
}  // namespace insitu
