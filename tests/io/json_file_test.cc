#include "io/json_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "insitu/error.h"

namespace insitu {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const FormatError& e) {
    return e.what();
  }
  return "<no error>";
}

const char* kConfig = R"({
  "architectures": ["LlamaForCausalLM"],
  "hidden_size": 576,
  "num_attention_heads": "9",
  "rms_norm_eps": 1e-05,
  "rope_theta": 100000.0,
  "max_position_embeddings": 8192.0,
  "tie_word_embeddings": true,
  "rope_scaling": null,
  "eos_token_id": [1, 2],
  "quantization_config": {"bits": 4, "group_size": "x"}
})";

TEST(JsonFile, TypedGetters) {
  auto f = JsonFile::parse(kConfig, "config.json");
  JsonObject c = f.root();
  EXPECT_EQ(c.get_int("hidden_size"), 576);
  EXPECT_EQ(c.get_int("max_position_embeddings"), 8192);  // integral float accepted
  EXPECT_DOUBLE_EQ(c.get_number("rms_norm_eps"), 1e-5);
  EXPECT_DOUBLE_EQ(c.get_number("hidden_size"), 576.0);
  EXPECT_TRUE(c.get_bool("tie_word_embeddings"));
  EXPECT_FALSE(c.get_bool("missing", false));
  EXPECT_FALSE(c.has("rope_scaling"));  // null is absent
  EXPECT_FALSE(c.find_object("rope_scaling").has_value());
  EXPECT_EQ(c.get_int("rope_scaling", 3), 3);
  EXPECT_EQ(c.get_int_array("eos_token_id"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(c.get_string_array("architectures"), std::vector<std::string>{"LlamaForCausalLM"});
  EXPECT_EQ(c.get_string("model_type", "llama"), "llama");
  EXPECT_FALSE(c.find_int("vocab_size").has_value());
  auto q = c.find_object("quantization_config");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->get_int("bits"), 4);
  EXPECT_EQ(q->where(), "quantization_config");
}

TEST(JsonFile, ErrorsNameFileFieldAndTypes) {
  auto c = JsonFile::parse(kConfig, "config.json").root();
  EXPECT_EQ(error_of([&] { c.get_int("num_attention_heads"); }),
            "config.json: field 'num_attention_heads': expected integer, got string");
  EXPECT_EQ(error_of([&] { c.get_int("vocab_size"); }), "config.json: field 'vocab_size': missing");
  EXPECT_EQ(error_of([&] { c.get_int("rope_scaling"); }),
            "config.json: field 'rope_scaling': missing");
  EXPECT_EQ(error_of([&] { c.get_int("rms_norm_eps"); }),
            "config.json: field 'rms_norm_eps': expected integer, got number");
  EXPECT_EQ(error_of([&] { c.get_string("hidden_size"); }),
            "config.json: field 'hidden_size': expected string, got integer");
  EXPECT_EQ(error_of([&] { c.get_bool("hidden_size", true); }),
            "config.json: field 'hidden_size': expected boolean, got integer");
  EXPECT_EQ(error_of([&] { c.get_object("eos_token_id"); }),
            "config.json: field 'eos_token_id': expected object, got array");
  EXPECT_EQ(error_of([&] { c.get_string_array("eos_token_id"); }),
            "config.json: field 'eos_token_id[0]': expected string, got integer");
  EXPECT_EQ(error_of([&] { c.get_object("quantization_config").get_int("group_size"); }),
            "config.json: field 'quantization_config.group_size': expected integer, got string");
  auto big = JsonFile::parse(R"({"n": 18446744073709551615})", "c.json").root();
  EXPECT_NE(error_of([&] { big.get_int("n"); }).find("out of range"), std::string::npos);
}

TEST(JsonFile, SyntaxErrorsGiveLineAndColumn) {
  EXPECT_EQ(error_of([] {
              JsonFile::parse("{\n  \"a\": 1,\n  \"b\" 2\n}", "config.json");
            }).rfind("json: config.json: line 3, column 7: syntax error", 0),
            0u);
  const std::string truncated = error_of([] { JsonFile::parse("{\"a\": [1, 2", "t.json"); });
  EXPECT_NE(truncated.find("json: t.json: line 1, column"), std::string::npos) << truncated;
  EXPECT_EQ(error_of([] { JsonFile::parse("[1]", "x.json").root(); }),
            "x.json: expected a JSON object at the top level, got array");
}

TEST(JsonFile, LoadsFromDisk) {
  const std::string path = testing::TempDir() + "/insitu_json_config.json";
  std::ofstream(path) << kConfig;
  auto f = JsonFile::load(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.root().get_int("hidden_size"), 576);
  EXPECT_THROW(JsonFile::load(path + ".missing"), IoError);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace insitu
