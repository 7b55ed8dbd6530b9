#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "insitu/error.h"
#include "test_paths.h"

namespace insitu::safetensors {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_all(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::path(testing::TempDir()) / ("insitu_st_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// u64 header length + header text + data, written by hand.
std::vector<uint8_t> make_file(const std::string& header, size_t data_bytes, uint8_t fill = 0) {
  std::vector<uint8_t> b(8);
  const uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data_bytes, fill);
  return b;
}

void expect_error(const std::vector<uint8_t>& bytes, std::initializer_list<std::string> fragments) {
  try {
    SafetensorsFile::parse(bytes, "mem.safetensors");
    ADD_FAILURE() << "no error; expected one mentioning " << *fragments.begin();
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("mem.safetensors"), std::string::npos) << msg;
    for (const std::string& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
}

template <typename T>
T at(const TensorView& t, size_t i) {
  T v;
  std::memcpy(&v, t.data + i * sizeof(T), sizeof(T));
  return v;
}

TEST(Safetensors, ReadsTheReferenceImplementationsFile) {
  auto f = SafetensorsFile::open(test::data_dir() + "/io/reference.safetensors");
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->metadata().at("note"), "x");
  EXPECT_EQ(f->tensors().size(), 14u);
  EXPECT_EQ(f->data_offset() % 8, 0u);
  const TensorView& f32 = f->tensor("f32");
  EXPECT_EQ(f32.dtype, Dtype::kF32);
  EXPECT_EQ(f32.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f32.n_elements(), 6);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(at<float>(f32, i), static_cast<float>(i));
  EXPECT_EQ(at<uint64_t>(f->tensor("u64"), 0), 1ull << 63);
  EXPECT_EQ(at<int64_t>(f->tensor("i64"), 0), -(1ll << 40));
  EXPECT_EQ(at<double>(f->tensor("f64"), 0), 0.25);
  EXPECT_EQ(at<int16_t>(f->tensor("i16"), 0), -300);
  EXPECT_EQ(at<uint16_t>(f->tensor("u16"), 1), 65535);
  EXPECT_EQ(at<uint16_t>(f->tensor("f16"), 0), 0x3800);  // 0.5 in binary16
  EXPECT_EQ(at<int8_t>(f->tensor("i8"), 0), -1);
  EXPECT_EQ(f->tensor("u8").data[4], 4);
  EXPECT_EQ(f->tensor("b.bool").dtype, Dtype::kBool);
  EXPECT_EQ(f->tensor("b.bool").data[2], 1);
  EXPECT_EQ(f->tensor("empty").nbytes, 0u);
  EXPECT_EQ(f->tensor("empty").shape, (std::vector<int64_t>{0, 4}));
  EXPECT_TRUE(f->tensor("scalar").shape.empty());
  EXPECT_EQ(f->tensor("scalar").n_elements(), 1);
  EXPECT_EQ(at<float>(f->tensor("scalar"), 0), 3.5f);
  for (size_t i = 1; i < f->tensors().size(); ++i) {
    EXPECT_LE(f->tensors()[i - 1].offset, f->tensors()[i].offset);
  }
  EXPECT_EQ(f->find("nope"), nullptr);
  EXPECT_THROW(f->tensor("nope"), FormatError);
}

TEST(Safetensors, WriterReproducesTheReferenceFile) {
  auto ref = SafetensorsFile::open(test::data_dir() + "/io/reference.safetensors");
  SafetensorsWriter w;
  for (const auto& [k, v] : ref->metadata()) w.set_metadata(k, v);
  for (const TensorView& t : ref->tensors()) {  // data order = the reference writer's order
    w.add_tensor(t.name, t.dtype, t.shape, std::span(t.data, t.nbytes));
  }
  const std::string path = temp_dir("repro") + "/out.safetensors";
  w.write(path);
  EXPECT_TRUE(read_all(path) == read_all(test::data_dir() + "/io/reference.safetensors"));
}

TEST(Safetensors, HandWrittenFileWithEveryDtype) {
  const std::string header = R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"F8_E4M3","shape":[3],"data_offsets":[4,7]},)"
                             R"("c":{"dtype":"F8_E5M2","shape":[1,1],"data_offsets":[7,8]},)"
                             R"("__metadata__":{"k":"v"}}   )";
  auto bytes = make_file(header, 8, 0x11);
  auto f = SafetensorsFile::parse(bytes, "hand.safetensors");
  EXPECT_EQ(f->tensor("a").dtype, Dtype::kBF16);
  EXPECT_EQ(f->tensor("b").nbytes, 3u);
  EXPECT_EQ(f->tensor("c").dtype, Dtype::kF8E5M2);
  EXPECT_EQ(f->tensor("c").data, bytes.data() + 8 + header.size() + 7);
  EXPECT_EQ(f->metadata().at("k"), "v");
  for (const char* name : {"BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
                           "F64", "I64", "U64", "F8_E4M3", "F8_E5M2"}) {
    auto d = parse_dtype(name);
    ASSERT_TRUE(d.has_value()) << name;
    EXPECT_STREQ(dtype_name(*d), name);
  }
  EXPECT_EQ(dtype_size(Dtype::kF64), 8u);
  EXPECT_EQ(dtype_size(Dtype::kF8E4M3), 1u);
  EXPECT_FALSE(parse_dtype("f16").has_value());  // the format's names are exact
}

TEST(Safetensors, RejectsMalformedHeaders) {
  expect_error({1, 2, 3}, {"truncated"});
  auto huge = make_file("{}", 0);
  const uint64_t big = 1ull << 40;
  std::memcpy(huge.data(), &big, 8);
  expect_error(huge, {"length 1099511627776 exceeds"});
  auto past = make_file("{}", 0);
  const uint64_t n = 1000;
  std::memcpy(past.data(), &n, 8);
  expect_error(past, {"length 1000 runs past the end"});
  expect_error(make_file("[1,2]", 0), {"does not start with a JSON object"});
  expect_error(make_file("{\"a\":", 0), {"invalid JSON", "line 1, column"});
  expect_error(make_file("{} x", 0), {"invalid JSON"});
  expect_error(make_file(R"({"a":1})", 0), {"tensor 'a'", "expected an object, got integer"});
  expect_error(make_file(R"({"__metadata__":{"k":1}})", 0),
               {"__metadata__ key 'k'", "expected a string"});
  expect_error(make_file(R"({"__metadata__":[]})", 0), {"__metadata__", "expected an object"});
  expect_error(make_file(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4),
               {"tensor 'a'", "missing field 'dtype'"});
  expect_error(make_file(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4),
               {"tensor 'a'", "missing field 'shape'"});
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[1]}})", 4),
               {"tensor 'a'", "missing field 'data_offsets'"});
  expect_error(make_file(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 4),
               {"tensor 'a'", "dtype 'Q4' unsupported", "F8_E5M2"});
  expect_error(make_file(R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,1]}})", 4),
               {"tensor 'a'", "'dtype': expected a string"});
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
               {"tensor 'a'", "dimension -1"});
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4),
               {"tensor 'a'", "dimension 1.5"});
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4),
               {"tensor 'a'", "out of order"});
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4),
               {"tensor 'a'", "expected [begin, end]"});
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4),
               {"tensor 'a'", "run past the end of the 4-byte data section"});
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4),
               {"tensor 'a'", "span 4 bytes", "needs 8"});
  expect_error(
      make_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4),
      {"tensor 'a'", "overflows"});
  expect_error(
      make_file(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,4]}})", 4),
      {"tensor 'a'", "overflows"});
  expect_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         8),
               {"tensor 'b'", "overlap tensor 'a'"});
  expect_error(make_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                         R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                         2),
               {"duplicate key 'a'"});
}

TEST(Safetensors, DeeplyNestedJsonIsRejectedWithoutCrashing) {
  std::string header = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  expect_error(make_file(header, 0), {"tensor 'a'", "expected an object, got array"});
}

TEST(Safetensors, EveryTruncationFailsCleanly) {
  const auto full = read_all(test::data_dir() + "/io/reference.safetensors");
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
    EXPECT_THROW(SafetensorsFile::parse(cut, "cut"), FormatError) << n;
  }
}

TEST(Safetensors, ShardedCheckpointWithIndex) {
  const std::string dir = temp_dir("sharded");
  const std::vector<uint8_t> four(4, 7), eight(8, 9);
  SafetensorsWriter a, b;
  a.add_tensor("x.weight", Dtype::kF32, {1}, four);
  a.add_tensor("y.weight", Dtype::kF16, {2, 2}, eight);
  b.add_tensor("z.weight", Dtype::kU8, {4}, four);
  a.write(dir + "/model-00001-of-00002.safetensors");
  b.write(dir + "/model-00002-of-00002.safetensors");
  std::ofstream(dir + "/model.safetensors.index.json")
      << R"({"metadata":{"total_size":16},"weight_map":{)"
      << R"("x.weight":"model-00001-of-00002.safetensors",)"
      << R"("y.weight":"model-00001-of-00002.safetensors",)"
      << R"("z.weight":"model-00002-of-00002.safetensors"}})";
  auto s = ShardedSafetensors::open(dir);
  EXPECT_EQ(s->shards().size(), 2u);
  EXPECT_EQ(s->size(), 3u);
  EXPECT_EQ(s->tensor_names(), (std::vector<std::string>{"x.weight", "y.weight", "z.weight"}));
  EXPECT_EQ(s->tensor("y.weight").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(s->tensor("z.weight").data[0], 7);
  EXPECT_NE(s->shard_of("z.weight").path().find("00002"), std::string::npos);
  EXPECT_EQ(s->index_metadata().at("total_size"), "16");
  try {
    s->tensor("missing.weight");
    ADD_FAILURE();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'missing.weight'"), std::string::npos);
  }
  // The index file itself and a single shard open too.
  EXPECT_EQ(ShardedSafetensors::open(dir + "/model.safetensors.index.json")->size(), 3u);
  EXPECT_EQ(ShardedSafetensors::open(dir + "/model-00002-of-00002.safetensors")->size(), 1u);
}

TEST(Safetensors, ShardedIndexErrors) {
  const std::string dir = temp_dir("badindex");
  const std::vector<uint8_t> one{1};
  SafetensorsWriter a;
  a.add_tensor("x", Dtype::kU8, {1}, one);
  a.write(dir + "/s.safetensors");
  auto index_error = [&](const std::string& json, const std::string& fragment) {
    std::ofstream(dir + "/model.safetensors.index.json") << json;
    try {
      ShardedSafetensors::open(dir);
      ADD_FAILURE() << fragment;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  index_error(R"({"weight_map":{"y":"s.safetensors"}})", "'y': not found in shard 's.safetensors'");
  index_error(R"({"weight_map":{"x":"../s.safetensors"}})",
              "not a file inside the model directory");
  index_error(R"({"weight_map":{"x":"/etc/passwd"}})", "not a file inside the model directory");
  index_error(R"({"weight_map":{"x":3}})", "expected a shard file name");
  index_error(R"({"metadata":{}})", "missing field 'weight_map'");
  index_error(R"({"weight_map":)", "invalid JSON");
  index_error(R"({"weight_map":{"x":"gone.safetensors"}})", "gone.safetensors");
}

TEST(Safetensors, DirectoryWithoutIndexRejectsDuplicates) {
  const std::string dir = temp_dir("noindex");
  // Span-backed tensors read their bytes during write(), so the buffers outlive the writers.
  const std::vector<uint8_t> one{1}, two{2};
  SafetensorsWriter a, b;
  a.add_tensor("x", Dtype::kU8, {1}, one);
  b.add_tensor("y", Dtype::kU8, {1}, two);
  a.write(dir + "/a.safetensors");
  b.write(dir + "/b.safetensors");
  auto s = ShardedSafetensors::open(dir);
  EXPECT_EQ(s->size(), 2u);
  EXPECT_EQ(s->tensor("y").data[0], 2);
  a.write(dir + "/c.safetensors");
  EXPECT_THROW(ShardedSafetensors::open(dir), FormatError);
  EXPECT_THROW(ShardedSafetensors::open(temp_dir("empty")), IoError);
}

TEST(Safetensors, WriterStreamsAndFailsAtomically) {
  const std::string dir = temp_dir("writer");
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.add_tensor("big", Dtype::kF32, {3, 5}, [](ByteSink& out) {
    for (int i = 0; i < 15; ++i) {
      const float v = static_cast<float>(i) * 0.5f;
      out.write(&v, 4);
    }
  });
  w.write(dir + "/ok.safetensors");
  auto f = SafetensorsFile::open(dir + "/ok.safetensors");
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(at<float>(f->tensor("big"), 14), 7.0f);

  SafetensorsWriter bad;
  bad.add_tensor("t", Dtype::kF32, {2}, [](ByteSink& out) { out.write_zeros(4); });
  EXPECT_THROW(bad.write(dir + "/bad.safetensors"), InvalidArgument);
  SafetensorsWriter throws;
  throws.add_tensor("t", Dtype::kF32, {2}, [](ByteSink&) { throw IoError("gone"); });
  EXPECT_THROW(throws.write(dir + "/bad.safetensors"), IoError);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);

  auto none = [](ByteSink&) {};
  EXPECT_THROW(w.add_tensor("big", Dtype::kF32, {1}, none), InvalidArgument);
  EXPECT_THROW(w.add_tensor("__metadata__", Dtype::kF32, {1}, none), InvalidArgument);
  EXPECT_THROW(w.add_tensor("n", Dtype::kF32, {-1}, none), InvalidArgument);
  EXPECT_THROW(w.add_tensor("n", Dtype::kF32, {1ll << 40, 1ll << 40}, none), InvalidArgument);
  EXPECT_THROW(w.add_tensor("n", Dtype::kF32, {2}, std::vector<uint8_t>(7)), InvalidArgument);
}

}  // namespace
}  // namespace insitu::safetensors
