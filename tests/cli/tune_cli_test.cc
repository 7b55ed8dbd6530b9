// `insitu tune`, `--quant auto` and `insitu from-config` end to end on the shipped SmolLM2 GGUF:
// the JSON output against docs/tune.schema.json, the recommendation under a memory limit, --quant
// auto choosing full precision or a quantized type, and the emitted TOML round-tripping through
// from-config.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The subset of JSON Schema the schema file uses: type (one or a list), enum, required,
// properties, additionalProperties: false, items, minimum, minItems.
void validate(const json& v, const json& schema, const std::string& at) {
  if (schema.contains("type")) {
    const json types = schema["type"].is_array() ? schema["type"] : json::array({schema["type"]});
    bool ok = false;
    for (const json& t : types) {
      const std::string n = t.get<std::string>();
      ok |= (n == "object" && v.is_object()) || (n == "array" && v.is_array()) ||
            (n == "string" && v.is_string()) || (n == "integer" && v.is_number_integer()) ||
            (n == "number" && v.is_number()) || (n == "boolean" && v.is_boolean()) ||
            (n == "null" && v.is_null());
    }
    ASSERT_TRUE(ok) << at << ": " << v.dump() << " is not " << types.dump();
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const json& e : schema["enum"]) found |= e == v;
    EXPECT_TRUE(found) << at << ": " << v.dump() << " not in " << schema["enum"].dump();
  }
  if (schema.contains("minimum") && v.is_number()) {
    EXPECT_GE(v.get<double>(), schema["minimum"].get<double>()) << at;
  }
  if (v.is_object()) {
    for (const json& r : schema.value("required", json::array()))
      EXPECT_TRUE(v.contains(r.get<std::string>())) << at << ": missing " << r;
    const json props = schema.value("properties", json::object());
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (props.contains(it.key())) validate(it.value(), props[it.key()], at + "." + it.key());
      else if (schema.value("additionalProperties", true) == false)
        ADD_FAILURE() << at << ": property '" << it.key() << "' not in the schema";
    }
  }
  if (v.is_array() && schema.contains("items")) {
    if (schema.contains("minItems")) {
      EXPECT_GE(v.size(), schema["minItems"].get<size_t>()) << at;
    }
    for (size_t i = 0; i < v.size(); ++i)
      validate(v[i], schema["items"], at + "[" + std::to_string(i) + "]");
  }
}

class CliTune : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model missing";
    dir_ = fs::temp_directory_path() / ("insitu_tune_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    src_ = " --format gguf -f '" + test::smollm2_path() + "' -t 2 ";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string out(const char* name) const { return (dir_ / name).string(); }
  static std::string run(const std::string& args, int* status, bool with_stderr = true) {
    const test::CliOutput o = test::run_insitu(args, with_stderr);
    *status = o.status;
    return o.text;
  }
  json tune_json(const std::string& extra) {
    int status = 0;
    const std::string text = run("tune" + src_ + "--json " + extra, &status, false);
    EXPECT_EQ(status, 0) << text;
    return json::parse(text);
  }
  void write(const char* name, const std::string& text) { std::ofstream(out(name)) << text; }
  // --max-memory one byte short of the stored weights plus a 512-token session: a quantized type
  // must be chosen.
  std::string tight() {
    const json j = tune_json("--max-memory 16G --ctx 512");
    const json& stored = j["candidates"][0];
    return std::to_string(stored["estimated_size_bytes"].get<uint64_t>() +
                          stored["session_bytes"].get<uint64_t>() - 1);
  }
  std::string src_;
  fs::path dir_;
};

TEST_F(CliTune, JsonFollowsTheSchema) {
  const json schema = json::parse(std::ifstream(test::source_dir() + "/docs/tune.schema.json"));
  const json j = tune_json("--max-memory 16G");
  validate(j, schema, "$");
  EXPECT_EQ(j["memory"]["available_bytes"], uint64_t{16} << 30);
  EXPECT_EQ(j["memory"]["source"], "max-memory");
  // Room to spare: the file's own weights, as stored.
  EXPECT_TRUE(j["recommended_isq"].is_null());
  EXPECT_EQ(j["recommended_name"].get<std::string>().rfind("none (", 0), 0u);
  EXPECT_EQ(j["candidates"][0]["recommended"], true);
  EXPECT_EQ(j["candidates"][1]["isq"], "q8_0");
}

// --measure fills the quality column with measured KL divergence (the layer-streamed measurement
// itself is checked against full loads in tests/engine/tune_measure_test.cc).
TEST_F(CliTune, MeasureFillsKldPerCandidate) {
  const json schema = json::parse(std::ifstream(test::source_dir() + "/docs/tune.schema.json"));
  const std::string text = test::data_dir() + "/text/eval.txt";
  const json j = tune_json("--max-memory 16G --measure --file '" + text + "' --measure-tokens 24");
  validate(j, schema, "$");
  EXPECT_EQ(j["measure"]["text"], text);
  EXPECT_EQ(j["measure"]["tokens"], 24);
  EXPECT_EQ(j["measure"]["positions"], 23);
  std::map<std::string, double> kld;
  for (const json& c : j["candidates"]) {
    ASSERT_TRUE(c["kld"].is_number()) << c.dump();
    ASSERT_TRUE(c["top1_agreement"].is_number()) << c.dump();
    kld[c["name"].get<std::string>()] = c["kld"].get<double>();
    if (c["isq"].is_null()) {
      EXPECT_EQ(c["kld"], 0.0);
      EXPECT_EQ(c["top1_agreement"], 1.0);
    } else {
      EXPECT_GT(c["kld"].get<double>(), 0.0) << c["name"];
      EXPECT_LE(c["top1_agreement"].get<double>(), 1.0);
    }
  }
  EXPECT_LT(kld.at("q8_0"), kld.at("q4k"));
  EXPECT_LT(kld.at("q4k"), kld.at("q2k"));

  int status = 0;
  std::string table = run("tune" + src_ + "--max-memory 16G --measure --file '" + text +
                              "' --measure-tokens 24 --isq q4k",
                          &status, false);
  ASSERT_EQ(status, 0) << table;
  EXPECT_NE(table.find("| Quality (KLD, top-1)"), std::string::npos) << table;
  EXPECT_NE(table.find("over 23 positions of " + text + " (24 tokens)"), std::string::npos)
      << table;
  // The text belongs to --measure, and --measure needs a text.
  table = run("tune" + src_ + "--file '" + text + "'", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(table.find("give --measure as well"), std::string::npos) << table;
  table = run("tune" + src_ + "--measure", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(table.find("--measure needs a text: --file TEXT"), std::string::npos) << table;
}

TEST_F(CliTune, TableAndALowerLimit) {
  int status = 0;
  const std::string limit = tight();
  std::string text = run("tune" + src_ + "--max-memory " + limit + " --ctx 512", &status, false);
  ASSERT_EQ(status, 0) << text;
  EXPECT_NE(text.find("Quant        | Est. Size | Mem %"), std::string::npos) << text;
  EXPECT_NE(text.find("| Context Room | Quality       | Status"), std::string::npos) << text;
  EXPECT_NE(text.find("| Too Large"), std::string::npos) << text;
  EXPECT_NE(text.find("| Recommended"), std::string::npos) << text;
  EXPECT_NE(text.find("Recommended: insitu run --format gguf -f "), std::string::npos) << text;
  const json j = tune_json("--max-memory " + limit + " --ctx 512");
  ASSERT_FALSE(j["recommended_isq"].is_null()) << j.dump(2);
  EXPECT_EQ(j["candidates"][0]["fit_status"], "too-large");
  int recommended = 0;
  for (const json& c : j["candidates"]) {
    if (c["recommended"] != true) continue;
    ++recommended;
    EXPECT_EQ(c["fit_status"], "fits");
    EXPECT_LE(c["estimated_size_bytes"].get<uint64_t>() + c["session_bytes"].get<uint64_t>(),
              std::stoull(limit));
  }
  EXPECT_EQ(recommended, 1);
  EXPECT_NE(j["recommended_command"].get<std::string>().find(
                "--isq " + j["recommended_isq"].get<std::string>() + " --ctx 512"),
            std::string::npos)
      << j["recommended_command"];
}

TEST_F(CliTune, QuantAutoKeepsFullPrecisionOrQuantizes) {
  int status = 0;
  const std::string prompt = "--raw --greedy -n 2 -p 'The capital of France is' --log-level info ";
  std::string log = run("run" + src_ + "--quant auto --max-memory 16G " + prompt, &status);
  ASSERT_EQ(status, 0) << log;
  EXPECT_NE(log.find("the weights fit as stored"), std::string::npos) << log;
  const std::string limit = tight();
  const json j = tune_json("--max-memory " + limit + " --ctx 512");
  const std::string chosen = j["recommended_isq"].get<std::string>();
  log = run("run" + src_ + "--quant auto --max-memory " + limit + " --ctx 512 " + prompt, &status);
  ASSERT_EQ(status, 0) << log;
  EXPECT_NE(log.find("--quant auto (balanced profile"), std::string::npos) << log;
  EXPECT_NE(log.find("): " + chosen + " ("), std::string::npos) << chosen << "\n" << log;
  log = run("run" + src_ + "--quant auto --max-memory 1M " + prompt, &status);
  EXPECT_NE(status, 0) << log;
  EXPECT_NE(log.find("nothing fits"), std::string::npos) << log;
}

TEST_F(CliTune, EmittedConfigRoundTripsThroughFromConfig) {
  int status = 0;
  const json j =
      tune_json("--max-memory " + tight() + " --ctx 512 --emit-config '" + out("c.toml") + "'");
  ASSERT_TRUE(fs::exists(out("c.toml")));
  std::string dry = run("from-config -f '" + out("c.toml") + "' --dry-run", &status, false);
  ASSERT_EQ(status, 0) << dry;
  EXPECT_EQ(dry, j["recommended_command"].get<std::string>() + "\n");
  // And it runs, with run flags after `--`.
  const std::string log = run("from-config -f '" + out("c.toml") +
                                  "' -- --raw --greedy -n 4 -p 'The capital of France is'",
                              &status);
  EXPECT_EQ(status, 0) << log;
  EXPECT_NE(log.find("Paris"), std::string::npos) << log;
}

}  // namespace
}  // namespace insitu
