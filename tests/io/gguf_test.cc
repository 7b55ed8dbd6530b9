#include "io/gguf.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "insitu/error.h"
#include "io/gguf_bytes.h"
#include "test_paths.h"

namespace insitu::gguf {
namespace {

using test::GgufBytes;

std::shared_ptr<const GgufFile> parse(const GgufBytes& b) {
  return GgufFile::parse(b.bytes, "mem.gguf");
}

// Expects a FormatError whose message contains every fragment.
void expect_format_error(const GgufBytes& b, std::initializer_list<std::string> fragments) {
  try {
    parse(b);
    ADD_FAILURE() << "no error; expected one mentioning " << *fragments.begin();
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("mem.gguf"), std::string::npos) << msg;
    for (const std::string& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
}

// ---- real models against the Python gguf package's view ----------------------------------------

void compare_with_reference(const std::string& model, const std::string& ref) {
  if (!std::filesystem::exists(model))
    GTEST_SKIP() << model << " missing; run scripts/fetch-models.sh";
  auto f = GgufFile::open(model);
  std::ifstream in(ref);
  ASSERT_TRUE(in) << ref;
  std::string line;
  size_t n_keys = 0, n_tensors = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("header")) {
      EXPECT_EQ(f->version(), j["version"].get<uint32_t>());
      EXPECT_EQ(f->alignment(), j["alignment"].get<uint64_t>());
      EXPECT_EQ(f->data_offset(), j["data_offset"].get<uint64_t>());
      EXPECT_EQ(f->tensors().size(), j["n_tensors"].get<size_t>());
    } else if (j.contains("key")) {
      const std::string key = j["key"];
      SCOPED_TRACE(key);
      ASSERT_LT(n_keys, f->metadata().size());
      EXPECT_EQ(f->metadata()[n_keys].first, key) << "metadata order";
      ++n_keys;
      const Value* v = f->find(key);
      ASSERT_NE(v, nullptr);
      EXPECT_EQ(static_cast<uint32_t>(v->type), j["type"].get<uint32_t>());
      auto check = [&](const Value& x, const nlohmann::json& want) {
        if (want.is_string()) {
          EXPECT_EQ(x.as_string(key), want.get<std::string>());
        } else if (want.is_boolean()) {
          EXPECT_EQ(x.as_bool(key), want.get<bool>());
        } else if (want.is_number_float()) {
          EXPECT_EQ(x.as_f64(key), want.get<double>());
        } else {
          EXPECT_EQ(x.as_i64(key), want.get<int64_t>());
        }
      };
      if (v->type == ValueType::kArray) {
        const Array& a = v->as_array(key);
        EXPECT_EQ(static_cast<uint32_t>(a.elem_type), j["elem"].get<uint32_t>());
        ASSERT_EQ(a.items.size(), j["count"].get<size_t>());
        if (j.contains("first")) {
          check(a.items.front(), j["first"]);
          check(a.items.back(), j["last"]);
        }
      } else {
        check(*v, j["value"]);
      }
    } else {
      const std::string name = j["tensor"];
      SCOPED_TRACE(name);
      ASSERT_LT(n_tensors, f->tensors().size());
      const TensorInfo& t = f->tensors()[n_tensors++];
      EXPECT_EQ(t.name, name);
      EXPECT_EQ(&f->tensor(name), &t);
      EXPECT_EQ(static_cast<uint32_t>(t.type), j["type"].get<uint32_t>());
      EXPECT_EQ(t.ne, j["ne"].get<std::vector<int64_t>>());
      EXPECT_EQ(t.offset, j["offset"].get<uint64_t>());
      EXPECT_EQ(t.nbytes, j["nbytes"].get<uint64_t>());
      EXPECT_EQ(t.data, f->mapping()->data() + f->data_offset() + t.offset);
    }
  }
  EXPECT_EQ(n_keys, f->metadata().size());
  EXPECT_EQ(n_tensors, f->tensors().size());
}

TEST(Gguf, SmolLM2MatchesPythonGguf) {
  compare_with_reference(test::smollm2_path(), test::data_dir() + "/io/smollm2.gguf-ref.jsonl");
}

TEST(Gguf, Gemma3MatchesPythonGguf) {
  compare_with_reference(test::gemma3_path(), test::data_dir() + "/io/gemma3.gguf-ref.jsonl");
}

TEST(Gguf, RealModelTypedGetters) {
  if (!std::filesystem::exists(test::smollm2_path())) GTEST_SKIP();
  auto f = GgufFile::open(test::smollm2_path());
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_u64("llama.block_count"), 30u);
  EXPECT_EQ(f->get_u64("llama.embedding_length"), 576u);
  EXPECT_EQ(f->get_array("tokenizer.ggml.tokens")->items.size(), 49152u);
  EXPECT_EQ(f->get_array("no.such.key"), nullptr);
  EXPECT_EQ(f->get_u64("no.such.key", 7), 7u);
  EXPECT_THROW(f->get_u64("general.architecture"), FormatError);
  try {
    f->get_string("no.such.key");
    ADD_FAILURE();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'no.such.key'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
  }
  EXPECT_THROW(f->tensor("nope.weight"), FormatError);
}

// ---- hand-built files -------------------------------------------------------------------------

// Every value type, nested arrays, a custom alignment and two tensors.
GgufBytes all_types_file(uint32_t version, uint64_t alignment) {
  GgufBytes b;
  b.header(version, 2, 16);
  b.key("general.alignment", 4).u32(static_cast<uint32_t>(alignment));
  b.key("a.u8", 0).u8(200);
  b.key("a.i8", 1).put<int8_t>(-5);
  b.key("a.u16", 2).put<uint16_t>(65000);
  b.key("a.i16", 3).put<int16_t>(-30000);
  b.key("a.u32", 4).u32(4000000000u);
  b.key("a.i32", 5).put<int32_t>(-2000000000);
  b.key("a.f32", 6).put<float>(1.5f);
  b.key("a.bool", 7).u8(1);
  b.key("a.string", 8).str("héllo");
  b.key("a.u64", 10).u64(1ull << 63);
  b.key("a.i64", 11).put<int64_t>(-(1ll << 62));
  b.key("a.f64", 12).put<double>(-0.25);
  b.key("a.strings", 9).u32(8).u64(3).str("x").str("").str("yz");
  b.key("a.nested", 9).u32(9).u64(2);  // array of arrays: [[1, 2], []] of i32
  b.u32(5).u64(2).put<int32_t>(1).put<int32_t>(2);
  b.u32(5).u64(0);
  b.key("a.empty", 9).u32(6).u64(0);
  // Tensors in reverse offset order: aligned and disjoint, not a running sum.
  b.tensor_info("w", {32, 2}, 8, alignment);  // q8_0: 34 bytes per 32 -> 68 bytes
  b.tensor_info("v", {3}, 0, 0);              // f32: 12 bytes
  b.pad_to(alignment);
  b.fill(12, 0xAB).pad_to(alignment);
  b.fill(68, 0xCD);
  return b;
}

TEST(Gguf, EveryValueTypeV2AndV3) {
  for (uint32_t version : {2u, 3u}) {
    SCOPED_TRACE(version);
    GgufBytes b = all_types_file(version, 64);
    auto f = parse(b);
    EXPECT_EQ(f->version(), version);
    EXPECT_EQ(f->alignment(), 64u);
    EXPECT_EQ(f->metadata().size(), 16u);
    EXPECT_EQ(f->get_u64("a.u8"), 200u);
    EXPECT_EQ(f->get_i64("a.i8", 0), -5);
    EXPECT_EQ(f->get_u64("a.u16"), 65000u);
    EXPECT_EQ(f->get_i64("a.i16", 0), -30000);
    EXPECT_EQ(f->get_u64("a.u32"), 4000000000u);
    EXPECT_EQ(f->get_i64("a.i32", 0), -2000000000);
    EXPECT_EQ(f->get_f64("a.f32"), 1.5);
    EXPECT_TRUE(f->get_bool("a.bool", false));
    EXPECT_EQ(f->get_string("a.string"), "héllo");
    EXPECT_EQ(f->get_u64("a.u64"), 1ull << 63);
    EXPECT_THROW(f->get_i64("a.u64", 0), FormatError);  // does not fit
    EXPECT_EQ(f->get_i64("a.i64", 0), -(1ll << 62));
    EXPECT_THROW(f->get_u64("a.i64"), FormatError);  // negative
    EXPECT_EQ(f->get_f64("a.f64"), -0.25);
    EXPECT_EQ(f->find("a.u8")->type, ValueType::kU8);
    EXPECT_EQ(f->find("a.i16")->type, ValueType::kI16);
    const Array* s = f->get_array("a.strings");
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(s->items.size(), 3u);
    EXPECT_EQ(s->items[2].as_string("x"), "yz");
    const Array* n = f->get_array("a.nested");
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(n->elem_type, ValueType::kArray);
    ASSERT_EQ(n->items.size(), 2u);
    const Array& inner = n->items[0].as_array("inner");
    EXPECT_EQ(inner.elem_type, ValueType::kI32);
    ASSERT_EQ(inner.items.size(), 2u);
    EXPECT_EQ(inner.items[1].as_i64("x"), 2);
    EXPECT_TRUE(n->items[1].as_array("inner").items.empty());
    EXPECT_TRUE(f->get_array("a.empty")->items.empty());

    ASSERT_EQ(f->tensors().size(), 2u);
    const TensorInfo& w = f->tensor("w");
    EXPECT_EQ(w.type, QuantType::kQ8_0);
    EXPECT_EQ(w.ne, (std::vector<int64_t>{32, 2}));
    EXPECT_EQ(w.n_elements(), 64);
    EXPECT_EQ(w.n_rows(), 2);
    EXPECT_EQ(w.nbytes, 68u);
    EXPECT_EQ(w.data[0], 0xCD);
    EXPECT_EQ(w.data, b.bytes.data() + f->data_offset() + 64);
    const TensorInfo& v = f->tensor("v");
    EXPECT_EQ(v.nbytes, 12u);
    EXPECT_EQ(v.data[11], 0xAB);
    EXPECT_EQ(f->data_offset() % 64, 0u);
  }
}

TEST(Gguf, NoTensorsNeedsNoPadding) {
  GgufBytes b;
  b.header(3, 0, 1).key("general.type", 8).str("imatrix");
  auto f = parse(b);
  EXPECT_TRUE(f->tensors().empty());
  EXPECT_EQ(f->get_string("general.type"), "imatrix");
}

TEST(Gguf, ZeroDimTensorIsOneElement) {
  GgufBytes b;
  b.header(3, 1, 0).tensor_info("s", {}, 0, 0).pad_to(32).fill(4);
  auto f = parse(b);
  EXPECT_EQ(f->tensor("s").ne, std::vector<int64_t>{1});
  EXPECT_EQ(f->tensor("s").nbytes, 4u);
}

TEST(Gguf, RejectsBadHeaders) {
  expect_format_error(GgufBytes{}, {"truncated"});
  GgufBytes magic;
  magic.bytes = {'G', 'G', 'M', 'L', 3, 0, 0, 0};
  expect_format_error(magic, {"bad magic 'GGML'"});
  for (uint32_t v : {0u, 1u, 4u, 0x03000000u}) {
    GgufBytes b;
    b.header(v, 0, 0);
    expect_format_error(b, {"version " + std::to_string(v) + " unsupported"});
  }
  GgufBytes big_endian;
  big_endian.header(0x03000000u, 0, 0);
  expect_format_error(big_endian, {"big-endian"});
  GgufBytes truncated;
  truncated.header(3, 0, 0);
  truncated.bytes.resize(12);
  expect_format_error(truncated, {"truncated", "tensor count"});
}

TEST(Gguf, RejectsHugeCountsWithoutAllocating) {
  GgufBytes kv;
  kv.header(3, 0, 1ull << 60);
  expect_format_error(kv, {"metadata count 1152921504606846976"});
  GgufBytes tensors;
  tensors.header(3, ~0ull, 0);
  expect_format_error(tensors, {"tensor count"});
  GgufBytes array;
  array.header(3, 0, 1).key("big", 9).u32(0).u64(1ull << 60);
  expect_format_error(array, {"key 'big'", "array of 1152921504606846976"});
  GgufBytes strings;  // strings need 8 bytes each: 100 strings cannot fit in 99*8 bytes
  strings.header(3, 0, 1).key("s", 9).u32(8).u64(100).fill(99 * 8);
  expect_format_error(strings, {"key 's'", "cannot fit"});
}

TEST(Gguf, RejectsBadStringsAndValues) {
  GgufBytes past_eof;
  past_eof.header(3, 0, 1).key("k", 8).u64(1000).fill(10, 'a');
  expect_format_error(past_eof, {"key 'k'", "length 1000", "past the end"});
  GgufBytes long_key;
  long_key.header(3, 0, 1).str(std::string(70000, 'k')).u32(0).u8(0);
  expect_format_error(long_key, {"key length 70000 exceeds"});
  GgufBytes empty_key;
  empty_key.header(3, 0, 1).str("").u32(0).u8(0);
  expect_format_error(empty_key, {"empty key"});
  GgufBytes dup;
  dup.header(3, 0, 2).key("k", 0).u8(1).key("k", 0).u8(2);
  expect_format_error(dup, {"key 'k'", "duplicate"});
  GgufBytes bad_type;
  bad_type.header(3, 0, 1).key("k", 13).u8(0);
  expect_format_error(bad_type, {"key 'k'", "value type 13"});
  GgufBytes bad_elem;
  bad_elem.header(3, 0, 1).key("k", 9).u32(99).u64(0);
  expect_format_error(bad_elem, {"key 'k'", "element type 99"});
  GgufBytes bad_bool;
  bad_bool.header(3, 0, 1).key("k", 7).u8(2);
  expect_format_error(bad_bool, {"key 'k'", "bool value 2"});
  GgufBytes truncated_value;
  truncated_value.header(3, 0, 1).key("k", 10).u32(0);
  expect_format_error(truncated_value, {"key 'k'", "truncated", "u64"});
}

TEST(Gguf, RejectsArrayNestingBomb) {
  GgufBytes b;
  b.header(3, 0, 1).key("bomb", 9);
  for (int i = 0; i < 10000; ++i) b.u32(9).u64(1);
  b.u32(0).u64(0);
  expect_format_error(b, {"key 'bomb'", "nested deeper"});
}

TEST(Gguf, RejectsBadAlignment) {
  for (uint32_t al : {0u, 48u, 3u}) {
    GgufBytes b;
    b.header(3, 0, 1).key("general.alignment", 4).u32(al);
    expect_format_error(b, {"general.alignment", "not a power of two"});
  }
  GgufBytes wrong_type;
  wrong_type.header(3, 0, 1).key("general.alignment", 8).str("32");
  expect_format_error(wrong_type, {"general.alignment", "expected an unsigned integer"});
  GgufBytes u64_ok;
  u64_ok.header(3, 0, 1).key("general.alignment", 10).u64(128);
  EXPECT_EQ(parse(u64_ok)->alignment(), 128u);
}

GgufBytes one_tensor(std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data) {
  GgufBytes b;
  b.header(3, 1, 0).tensor_info("t", std::move(ne), type, offset).pad_to(32).fill(data);
  return b;
}

TEST(Gguf, RejectsBadTensorInfos) {
  expect_format_error(one_tensor({1, 1, 1, 1, 1}, 0, 0, 4), {"tensor 't'", "n_dims 5"});
  expect_format_error(one_tensor({4, ~0ull}, 0, 0, 16), {"tensor 't'", "negative"});
  expect_format_error(one_tensor({33}, 8, 0, 64), {"tensor 't'", "not a multiple", "32"});
  expect_format_error(one_tensor({1ull << 32, 1ull << 32}, 0, 0, 4), {"tensor 't'", "overflow"});
  expect_format_error(one_tensor({1ull << 62}, 0, 0, 4), {"tensor 't'", "overflow"});
  expect_format_error(one_tensor({4}, 4, 0, 16), {"tensor 't'", "type 4 unsupported"});
  expect_format_error(one_tensor({4}, 1000, 0, 16), {"tensor 't'", "type 1000 unsupported"});
  expect_format_error(one_tensor({4}, 0, 16, 64),
                      {"tensor 't'", "not a multiple of the alignment"});
  expect_format_error(one_tensor({4}, 0, 32, 40), {"tensor 't'", "past the end"});
  expect_format_error(one_tensor({4}, 0, 0, 15), {"tensor 't'", "past the end"});
  expect_format_error(one_tensor({4}, 0, 1ull << 63, 16), {"tensor 't'", "past the end"});
  GgufBytes long_name;
  long_name.header(3, 1, 0).tensor_info(std::string(64, 'n'), {4}, 0, 0).pad_to(32).fill(16);
  expect_format_error(long_name, {"tensor name length 64 exceeds"});
  GgufBytes dup;
  dup.header(3, 2, 0).tensor_info("t", {4}, 0, 0).tensor_info("t", {4}, 0, 32).pad_to(32).fill(64);
  expect_format_error(dup, {"tensor 't'", "duplicate"});
  GgufBytes overlap;
  overlap.header(3, 2, 0).tensor_info("a", {16}, 0, 0).tensor_info("b", {4}, 0, 32);
  overlap.pad_to(32).fill(96);
  expect_format_error(overlap, {"tensor 'b'", "overlaps tensor 'a'"});
  GgufBytes no_data;
  no_data.header(3, 1, 0).tensor_info("t", {4}, 0, 0);
  expect_format_error(no_data, {"data section", "past the end"});
}

TEST(Gguf, EmptyTensorsMayShareAnOffset) {
  GgufBytes b;
  b.header(3, 2, 0).tensor_info("a", {0}, 0, 0).tensor_info("b", {4}, 0, 0).pad_to(32).fill(16);
  auto f = parse(b);
  EXPECT_EQ(f->tensor("a").nbytes, 0u);
  EXPECT_EQ(f->tensor("b").nbytes, 16u);
}

// Found by gguf_fuzz: n_rows() divided by ne[0], which may be 0.
TEST(Gguf, NRowsOfAnEmptyRowTensorDoesNotDivideByZero) {
  GgufBytes b;
  b.header(3, 1, 0).tensor_info("t", {0, 7, 2}, 0, 0).pad_to(32);
  auto f = parse(b);
  EXPECT_EQ(f->tensor("t").n_rows(), 14);
  EXPECT_EQ(f->tensor("t").n_elements(), 0);
  EXPECT_EQ(f->tensor("t").nbytes, 0u);
  GgufBytes huge_rows;
  huge_rows.header(3, 1, 0).tensor_info("t", {0, 1ull << 40, 1ull << 40}, 0, 0).pad_to(32);
  expect_format_error(huge_rows, {"tensor 't'", "overflows"});
}

TEST(Gguf, EveryTruncationOfAValidFileFailsCleanly) {
  const GgufBytes full = all_types_file(3, 32);
  ASSERT_NO_THROW(parse(full));
  for (size_t n = 0; n < full.bytes.size(); ++n) {
    GgufBytes cut;
    cut.bytes.assign(full.bytes.begin(), full.bytes.begin() + static_cast<ptrdiff_t>(n));
    EXPECT_THROW(parse(cut), FormatError) << "prefix of " << n << " bytes";
  }
}

TEST(Gguf, ValueConstructorsKeepTypes) {
  EXPECT_EQ(Value::u32(7).type, ValueType::kU32);
  EXPECT_EQ(Value::i32(-7).as_i64("x"), -7);
  EXPECT_EQ(Value::u64(1ull << 40).as_u64("x"), 1ull << 40);
  EXPECT_EQ(Value::f32(0.5f).as_f64("x"), 0.5);
  EXPECT_TRUE(Value::boolean(true).as_bool("x"));
  EXPECT_EQ(Value::string("s").as_string("x"), "s");
  EXPECT_THROW(Value::string("s").as_u64("what"), FormatError);
  EXPECT_THROW(Value::array(ValueType::kU32, {Value::string("s")}), InvalidArgument);
  const Value a = Value::array(ValueType::kU32, {Value::u32(1), Value::u32(2)});
  EXPECT_EQ(a.as_array("x").items.size(), 2u);
  try {
    Value::string("s").as_u64("gguf: f: key 'k'");
    ADD_FAILURE();
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(), "gguf: f: key 'k': expected an unsigned integer, got string");
  }
}

}  // namespace
}  // namespace insitu::gguf
