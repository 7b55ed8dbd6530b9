#include "io/gguf_writer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "insitu/error.h"
#include "io/gguf.h"
#include "quant/float_convert.h"
#include "test_paths.h"

namespace insitu::gguf {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// A fresh, empty directory per test.
std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::path(testing::TempDir()) / ("insitu_io_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

size_t entries_in(const std::string& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(GgufWriter, ByteIdenticalToPythonGguf) {
  GgufWriter w;
  w.set("general.architecture", Value::string("llama"));
  w.set("t.u8", Value{ValueType::kU8, uint64_t{200}});
  w.set("t.i8", Value{ValueType::kI8, int64_t{-5}});
  w.set("t.u16", Value{ValueType::kU16, uint64_t{65000}});
  w.set("t.i16", Value{ValueType::kI16, int64_t{-30000}});
  w.set("t.u32", Value::u32(4000000000u));
  w.set("t.i32", Value::i32(-2000000000));
  w.set("t.f32", Value::f32(1.5f));
  w.set("t.bool", Value::boolean(true));
  w.set("t.string", Value::string("héllo"));
  w.set("t.u64", Value::u64(1ull << 63));
  w.set("t.i64", Value{ValueType::kI64, int64_t{-(1ll << 62)}});
  w.set("t.f64", Value{ValueType::kF64, -0.25});
  w.set("t.strings", Value::array(ValueType::kString,
                                  {Value::string("x"), Value::string(""), Value::string("yz")}));
  w.set("t.i32s", Value::array(ValueType::kI32, {Value::i32(1), Value::i32(-2), Value::i32(3)}));

  const float v[3] = {1, 2, 3};
  std::vector<uint8_t> q8(68);
  std::iota(q8.begin(), q8.end(), uint8_t{0});
  std::vector<uint16_t> h(15);
  for (int i = 0; i < 15; ++i) h[i] = fp32_to_fp16(static_cast<float>(i));
  w.add_tensor("v", QuantType::kF32, {3}, std::span(reinterpret_cast<const uint8_t*>(v), 12));
  w.add_tensor("w", QuantType::kQ8_0, {32, 2}, q8);
  w.add_tensor("h", QuantType::kF16, {5, 3},
               std::span(reinterpret_cast<const uint8_t*>(h.data()), 30));

  const std::string dir = temp_dir("python");
  const std::string path = dir + "/ours.gguf";
  w.write(path);
  const auto ours = read_all(path);
  const auto theirs = read_all(test::data_dir() + "/io/python_writer.gguf");
  ASSERT_FALSE(theirs.empty());
  EXPECT_EQ(ours.size(), theirs.size());
  EXPECT_TRUE(ours == theirs);
  EXPECT_EQ(ours.size(), w.file_size());
  EXPECT_EQ(entries_in(dir), 1u);  // no temporary left beside it
}

TEST(GgufWriter, RoundTripsEveryTypeAndNestedArrays) {
  GgufWriter w;
  w.set_alignment(64);
  w.set("a.u8", Value{ValueType::kU8, uint64_t{255}});
  w.set("a.i8", Value{ValueType::kI8, int64_t{-128}});
  w.set("a.u16", Value{ValueType::kU16, uint64_t{65535}});
  w.set("a.i16", Value{ValueType::kI16, int64_t{-32768}});
  w.set("a.u32", Value::u32(0xFFFFFFFFu));
  w.set("a.i32", Value::i32(std::numeric_limits<int32_t>::min()));
  w.set("a.u64", Value::u64(~0ull));
  w.set("a.i64", Value{ValueType::kI64, std::numeric_limits<int64_t>::min()});
  w.set("a.f32", Value::f32(-3.25f));
  w.set("a.f64", Value{ValueType::kF64, 1e300});
  w.set("a.bool", Value::boolean(false));
  w.set("a.string", Value::string(std::string("nul\0inside", 10)));
  w.set("a.nested",
        Value::array(ValueType::kArray,
                     {Value::array(ValueType::kString, {Value::string("p"), Value::string("q")}),
                      Value::array(ValueType::kString, {})}));
  w.set("a.u8", Value{ValueType::kU8, uint64_t{7}});  // replaces in place

  // A streaming producer writing in uneven pieces.
  w.add_tensor("big", QuantType::kQ4_0, {64, 3}, [](ByteSink& out) {
    for (int i = 0; i < 108; i += 9) {
      uint8_t piece[9];
      for (int k = 0; k < 9; ++k) piece[k] = static_cast<uint8_t>(i + k);
      out.write(piece, 9);
    }
  });
  const std::vector<uint8_t> small = {1, 2, 3, 4, 5, 6, 7, 8};
  w.add_tensor("small", QuantType::kI16, {2, 2}, small);
  EXPECT_EQ(w.tensors()[1].offset, 128u);  // 108 padded to 64

  const std::string path = temp_dir("roundtrip") + "/m.gguf";
  w.write(path);
  auto f = GgufFile::open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 64u);
  ASSERT_EQ(f->metadata().size(), w.metadata().size());
  for (size_t i = 0; i < w.metadata().size(); ++i) {
    SCOPED_TRACE(w.metadata()[i].first);
    EXPECT_EQ(f->metadata()[i].first, w.metadata()[i].first);
    EXPECT_TRUE(f->metadata()[i].second == w.metadata()[i].second);
  }
  EXPECT_EQ(f->get_u64("a.u8"), 7u);
  EXPECT_EQ(f->get_string("a.string").size(), 10u);
  const TensorInfo& big = f->tensor("big");
  EXPECT_EQ(big.ne, (std::vector<int64_t>{64, 3}));
  EXPECT_EQ(big.nbytes, 108u);
  for (int i = 0; i < 108; ++i) ASSERT_EQ(big.data[i], i);
  const TensorInfo& s = f->tensor("small");
  EXPECT_EQ(std::vector<uint8_t>(s.data, s.data + 8), small);
  EXPECT_EQ(f->data_offset(), w.data_offset());
  EXPECT_EQ(fs::file_size(path), w.file_size());
}

TEST(GgufWriter, RewritingARealModelReproducesItByteForByte) {
  // llama.cpp wrote this file; copying its metadata and tensors through our writer must give the
  // same bytes, which pins value encoding, info order, padding and offsets to ggml's.
  if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << "model missing";
  auto src = GgufFile::open(test::smollm2_path());
  GgufWriter w;
  for (const auto& [k, v] : src->metadata()) w.set(k, v);
  for (const TensorInfo& t : src->tensors()) {
    w.add_tensor(t.name, t.type, t.ne, std::span(t.data, t.nbytes));
  }
  const std::string path = temp_dir("rewrite") + "/copy.gguf";
  w.write(path);
  const auto a = read_all(path);
  const auto b = src->mapping()->bytes();
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size()), 0);
}

TEST(GgufWriter, FailedWritesLeaveNothing) {
  const std::string dir = temp_dir("atomic");
  const std::string path = dir + "/m.gguf";
  { std::ofstream(path) << "previous"; }
  auto expect_untouched = [&] {
    EXPECT_EQ(entries_in(dir), 1u);
    std::ifstream in(path);
    std::string s;
    in >> s;
    EXPECT_EQ(s, "previous");
  };

  GgufWriter throws;
  throws.add_tensor("t", QuantType::kF32, {4}, [](ByteSink& out) {
    out.write_zeros(8);
    throw IoError("source went away");
  });
  EXPECT_THROW(throws.write(path), IoError);
  expect_untouched();

  GgufWriter short_write;
  short_write.add_tensor("t", QuantType::kF32, {4}, [](ByteSink& out) { out.write_zeros(15); });
  try {
    short_write.write(path);
    ADD_FAILURE();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("wrote 15 of the tensor's 16 bytes"), std::string::npos);
  }
  expect_untouched();

  GgufWriter long_write;
  long_write.add_tensor("t", QuantType::kF32, {4}, [](ByteSink& out) { out.write_zeros(17); });
  EXPECT_THROW(long_write.write(path), InvalidArgument);
  expect_untouched();

  GgufWriter ok;
  EXPECT_THROW(ok.write(dir + "/no/such/dir/m.gguf"), IoError);
}

TEST(GgufWriter, RejectsInvalidInput) {
  GgufWriter w;
  EXPECT_THROW(w.set("", Value::u32(1)), InvalidArgument);
  EXPECT_THROW(w.set("k", Value{ValueType::kU8, uint64_t{256}}), InvalidArgument);
  EXPECT_THROW(w.set("k", Value{ValueType::kI8, int64_t{-129}}), InvalidArgument);
  EXPECT_THROW(w.set("k", Value{ValueType::kU32, std::string("x")}), InvalidArgument);
  EXPECT_THROW(w.set("k", Value{ValueType::kArray, Array{ValueType::kU32, {Value::string("x")}}}),
               InvalidArgument);
  EXPECT_THROW(w.set_alignment(48), InvalidArgument);
  EXPECT_THROW(w.set("general.alignment", Value::u64(64)), InvalidArgument);
  EXPECT_EQ(w.alignment(), 32u);
  auto none = [](ByteSink&) {};
  EXPECT_THROW(w.add_tensor("t", QuantType::kQ4K, {128}, none), InvalidArgument);  // 256-blocks
  EXPECT_THROW(w.add_tensor("t", QuantType::kF32, {}, none), InvalidArgument);
  EXPECT_THROW(w.add_tensor("t", QuantType::kF32, {1, 1, 1, 1, 1}, none), InvalidArgument);
  EXPECT_THROW(w.add_tensor("t", QuantType::kF32, {-1}, none), InvalidArgument);
  EXPECT_THROW(w.add_tensor("t", QuantType::kF32, {1ll << 40, 1ll << 40}, none), InvalidArgument);
  EXPECT_THROW(w.add_tensor(std::string(64, 'n'), QuantType::kF32, {1}, none), InvalidArgument);
  EXPECT_THROW(w.add_tensor("t", static_cast<QuantType>(1000), {1}, none), InvalidArgument);
  EXPECT_THROW(w.add_tensor("t", QuantType::kF32, {4}, std::vector<uint8_t>(15)), InvalidArgument);
  EXPECT_TRUE(w.tensors().empty());
  w.add_tensor("t", QuantType::kF32, {4}, none);
  EXPECT_THROW(w.add_tensor("t", QuantType::kF32, {4}, none), InvalidArgument);
}

}  // namespace
}  // namespace insitu::gguf
