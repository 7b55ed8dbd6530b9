#include "io/imatrix_file.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "insitu/error.h"
#include "io/gguf.h"
#include "io/gguf_bytes.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  return (fs::path(testing::TempDir()) / ("insitu_imatrix_" + name)).string();
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::string error_of(const std::string& path) {
  try {
    Imatrix::load(path);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "<no error>";
}

// A GGUF imatrix laid out by hand as llama.cpp's imatrix tool writes it: one dense entry and one
// 2-expert entry whose second expert saw no tokens.
test::GgufBytes gguf_imatrix() {
  test::GgufBytes b;
  b.header(3, 4, 4);
  b.key("general.type", 8).str("imatrix");
  b.key("imatrix.datasets", 9).u32(8).u64(1).str("calib.txt");
  b.key("imatrix.chunk_count", 4).u32(10);
  b.key("imatrix.chunk_size", 4).u32(512);
  b.tensor_info("blk.0.attn_q.weight.in_sum2", {4, 1}, 0, 0);
  b.tensor_info("blk.0.attn_q.weight.counts", {1, 1}, 0, 32);
  b.tensor_info("blk.0.ffn_up_exps.weight.in_sum2", {2, 2}, 0, 64);
  b.tensor_info("blk.0.ffn_up_exps.weight.counts", {1, 2}, 0, 96);
  b.pad_to(32);
  for (float v : {8.f, 4.f, 2.f, 0.f}) b.put(v);
  b.pad_to(32).put(4.0f).pad_to(32);
  for (float v : {6.f, 3.f, 5.f, 7.f}) b.put(v);
  b.pad_to(32).put(3.0f).put(0.0f).pad_to(32);
  return b;
}

TEST(Imatrix, ReadsGgufForm) {
  const std::string path = temp_path("a.imatrix");
  write_bytes(path, gguf_imatrix().bytes);
  const Imatrix im = Imatrix::load(path);
  EXPECT_EQ(im.datasets, std::vector<std::string>{"calib.txt"});
  EXPECT_EQ(im.chunk_count, 10);
  EXPECT_EQ(im.chunk_size, 512);
  ASSERT_EQ(im.entries.size(), 2u);
  const auto imp = im.importance();
  EXPECT_EQ(imp.at("blk.0.attn_q.weight"), (std::vector<float>{2, 1, 0.5f, 0}));
  const ImatrixEntry& ex = im.entries.at("blk.0.ffn_up_exps.weight");
  EXPECT_EQ(ex.n_cols, 2);
  EXPECT_EQ(ex.n_mat, 2);
  // Expert 0: sums / 3; expert 1 saw nothing: 1 (llama-quantize's rule).
  EXPECT_EQ(imp.at("blk.0.ffn_up_exps.weight"), (std::vector<float>{2, 1, 1, 1}));
}

TEST(Imatrix, GgufRoundTrip) {
  Imatrix im;
  im.datasets = {"a.txt", "b.txt"};
  im.chunk_count = 3;
  im.chunk_size = 256;
  im.entries["output.weight"] = ImatrixEntry{3, 1, {1, 2, 3}, {2}};
  im.entries["blk.1.ffn_down_exps.weight"] = ImatrixEntry{2, 3, {1, 2, 3, 4, 5, 6}, {1, 0, 2}};
  const std::string path = temp_path("rt.imatrix");
  im.save_gguf(path);
  // The file is a GGUF llama.cpp can read: check its layout directly.
  auto g = gguf::GgufFile::open(path);
  EXPECT_EQ(g->get_string("general.type"), "imatrix");
  ASSERT_EQ(g->tensors().size(), 4u);
  EXPECT_EQ(g->tensors()[0].name, "blk.1.ffn_down_exps.weight.in_sum2");  // sorted by name
  EXPECT_EQ(g->tensors()[0].ne, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(g->tensors()[1].name, "blk.1.ffn_down_exps.weight.counts");
  EXPECT_EQ(g->tensors()[1].ne, (std::vector<int64_t>{1, 3}));
  const Imatrix back = Imatrix::load(path);
  EXPECT_EQ(back.datasets, im.datasets);
  EXPECT_EQ(back.chunk_count, 3);
  EXPECT_EQ(back.chunk_size, 256);
  ASSERT_EQ(back.entries.size(), 2u);
  for (const auto& [name, e] : im.entries) {
    const ImatrixEntry& b = back.entries.at(name);
    EXPECT_EQ(b.n_cols, e.n_cols);
    EXPECT_EQ(b.n_mat, e.n_mat);
    EXPECT_EQ(b.sums, e.sums);
    EXPECT_EQ(b.counts, e.counts);
  }
  EXPECT_THROW((Imatrix{{{"x", ImatrixEntry{2, 1, {1}, {1}}}}}.save_gguf(temp_path("bad"))),
               InvalidArgument);
}

std::vector<uint8_t> legacy(bool trailer) {
  test::GgufBytes b;  // only its little-endian put() is used
  b.put<int32_t>(2);
  b.put<int32_t>(13).bytes.insert(
      b.bytes.end(), {'b', 'l', 'k', '.', '0', '.', 'a', 't', 't', 'n', '_', 'k', '.'});
  b.put<int32_t>(4).put<int32_t>(2);  // ncall 4, 2 values
  b.put(8.0f).put(2.0f);
  b.put<int32_t>(1).bytes.push_back('z');
  b.put<int32_t>(0).put<int32_t>(1).put(5.0f);  // ncall 0: values used as they are
  if (trailer) {
    b.put<int32_t>(7).put<int32_t>(4).bytes.insert(b.bytes.end(), {'d', '.', 't', 'x'});
  }
  return b.bytes;
}

TEST(Imatrix, ReadsLegacyDat) {
  for (bool trailer : {false, true}) {
    const std::string path = temp_path("l.dat");
    write_bytes(path, legacy(trailer));
    const Imatrix im = Imatrix::load(path);
    const auto imp = im.importance();
    EXPECT_EQ(imp.at("blk.0.attn_k."), (std::vector<float>{2, 0.5f}));
    EXPECT_EQ(imp.at("z"), std::vector<float>{5});
    if (trailer) {
      EXPECT_EQ(im.chunk_count, 7);
      EXPECT_EQ(im.datasets, std::vector<std::string>{"d.tx"});
    }
  }
}

TEST(Imatrix, ReadsCimatrix) {
  test::GgufBytes b;
  b.u64(1).str("model.layers.0.mlp.down_proj").u64(3).put(1.0f).put(0.5f).put(0.0f);
  const std::string path = temp_path("m.cimatrix");
  write_bytes(path, b.bytes);
  const auto imp = Imatrix::load(path).importance();
  EXPECT_EQ(imp.at("model.layers.0.mlp.down_proj"), (std::vector<float>{1, 0.5f, 0}));
  b.u64(9);
  write_bytes(path, b.bytes);
  EXPECT_NE(error_of(path).find("unexpected bytes"), std::string::npos);
}

// An imatrix as collected: a dense entry, an MoE entry with an expert that saw no rows.
Imatrix collected() {
  Imatrix im;
  im.datasets = {"calib.txt"};
  im.chunk_count = 3;
  im.chunk_size = 4;
  im.entries["blk.0.attn_q.weight"] = ImatrixEntry{2, 1, {24, 6}, {12}};
  im.entries["blk.1.ffn_up_exps.weight"] = ImatrixEntry{2, 2, {10, 5, 0, 0}, {5, 0}};
  im.entries["blk.2.attn_k.weight"] = ImatrixEntry{1, 1, {0}, {0}};  // never saw a row
  return im;
}

TEST(Imatrix, DatRoundTripAsLlamaCppWritesIt) {
  const Imatrix im = collected();
  const std::string path = temp_path("rt.dat");
  im.save_dat(path);
  // Byte layout of save_imatrix_legacy: the entry without rows is skipped, ncall is
  // ceil(max(counts) / chunk_size), values are E[x²] * ncall (1 * ncall where a matrix saw none).
  test::GgufBytes b;
  auto name = [&b](std::string_view s) {  // i32 length, then the bytes
    b.put<int32_t>(static_cast<int32_t>(s.size())).bytes.insert(b.bytes.end(), s.begin(), s.end());
  };
  b.put<int32_t>(2);
  name("blk.0.attn_q.weight");
  b.put<int32_t>(3).put<int32_t>(2).put(6.0f).put(1.5f);
  name("blk.1.ffn_up_exps.weight");
  b.put<int32_t>(2).put<int32_t>(4).put(4.0f).put(2.0f).put(2.0f).put(2.0f);
  b.put<int32_t>(3);
  name("calib.txt");
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> got((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(got, b.bytes);

  const Imatrix back = Imatrix::load(path);
  EXPECT_EQ(back.chunk_count, 3);
  EXPECT_EQ(back.datasets, im.datasets);
  const auto imp = back.importance();
  EXPECT_EQ(imp.at("blk.0.attn_q.weight"), (std::vector<float>{2, 0.5f}));
  EXPECT_EQ(imp.at("blk.1.ffn_up_exps.weight"), (std::vector<float>{2, 1, 1, 1}));
  EXPECT_EQ(imp.count("blk.2.attn_k.weight"), 0u);
  // Written again, a loaded legacy file keeps its values (chunk_size unknown counts as 1).
  const std::string again = temp_path("rt2.dat");
  back.save_dat(again);
  EXPECT_EQ(Imatrix::load(again).importance(), imp);
}

TEST(Imatrix, CimatrixRoundTripAsMistralRsWritesIt) {
  const Imatrix im = collected();
  const std::string path = temp_path("rt.cimatrix");
  im.save_cimatrix(path);
  // CollectedImatrixData layout: values E[x²] * ncalls (chunks), 0 where a matrix saw no rows.
  test::GgufBytes b;
  b.u64(3);
  b.str("blk.0.attn_q.weight").u64(2).put(6.0f).put(1.5f);
  b.str("blk.1.ffn_up_exps.weight").u64(4).put(6.0f).put(3.0f).put(0.0f).put(0.0f);
  b.str("blk.2.attn_k.weight").u64(1).put(0.0f);
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> got((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(got, b.bytes);
  const auto imp = Imatrix::load(path).importance();
  EXPECT_EQ(imp.at("blk.0.attn_q.weight"), (std::vector<float>{6, 1.5f}));
  EXPECT_EQ(imp.at("blk.1.ffn_up_exps.weight"), (std::vector<float>{6, 3, 0, 0}));
  // Written again, a loaded .cimatrix keeps its values.
  const std::string again = temp_path("rt2.cimatrix");
  Imatrix::load(path).save_cimatrix(again);
  EXPECT_EQ(Imatrix::load(again).importance(), imp);
}

TEST(Imatrix, WritersRejectInconsistentEntriesAndLeaveNoFile) {
  const Imatrix bad{{{"x", ImatrixEntry{2, 1, {1}, {1}}}}};
  for (const char* name : {"bad.dat", "bad.cimatrix"}) {
    const std::string path = temp_path(name);
    fs::remove(path);
    EXPECT_THROW(
        fs::path(name).extension() == ".dat" ? bad.save_dat(path) : bad.save_cimatrix(path),
        InvalidArgument);
    EXPECT_FALSE(fs::exists(path));
  }
}

// Found by imatrix_fuzz: an entry with no values copied from a null buffer.
TEST(Imatrix, EmptyEntryParsesFromMemory) {
  test::GgufBytes b;
  b.u64(1).str("k").u64(0);
  const Imatrix im = Imatrix::parse(b.bytes, "mem.cimatrix");
  ASSERT_EQ(im.entries.size(), 1u);
  EXPECT_TRUE(im.entries.at("k").importance().empty());
  // parse() picks the reader by content and name, as load() does.
  EXPECT_EQ(Imatrix::parse(gguf_imatrix().bytes, "mem.imatrix").entries.size(), 2u);
  EXPECT_EQ(Imatrix::parse(legacy(true), "mem.dat").chunk_count, 7);
}

TEST(Imatrix, RejectsHostileFiles) {
  const std::string path = temp_path("bad.dat");
  auto bytes = legacy(false);
  int32_t huge = 1 << 30;
  std::memcpy(bytes.data(), &huge, 4);
  write_bytes(path, bytes);
  EXPECT_NE(error_of(path).find("entry count 1073741824"), std::string::npos);

  bytes = legacy(false);
  bytes.resize(bytes.size() - 2);
  write_bytes(path, bytes);
  EXPECT_NE(error_of(path).find("entry 'z'"), std::string::npos) << error_of(path);

  bytes = legacy(false);
  const float nan = std::nanf("");
  std::memcpy(bytes.data() + 4 + 4 + 13 + 8, &nan, 4);
  write_bytes(path, bytes);
  EXPECT_NE(error_of(path).find("not a finite non-negative"), std::string::npos) << error_of(path);

  test::GgufBytes cim;
  cim.u64(1).u64(1ull << 60);
  const std::string cpath = temp_path("bad.cimatrix");
  write_bytes(cpath, cim.bytes);
  EXPECT_NE(error_of(cpath).find("cannot fit"), std::string::npos);

  // GGUF imatrix with in_sum2 but no counts, and a non-imatrix tensor.
  test::GgufBytes g;
  g.header(3, 1, 0).tensor_info("w.in_sum2", {4}, 0, 0).pad_to(32).fill(16);
  const std::string gpath = temp_path("bad.imatrix");
  write_bytes(gpath, g.bytes);
  EXPECT_NE(error_of(gpath).find("no w.counts"), std::string::npos) << error_of(gpath);
  test::GgufBytes m;
  m.header(3, 1, 1)
      .key("general.type", 8)
      .str("model")
      .tensor_info("w", {4}, 0, 0)
      .pad_to(32)
      .fill(16);
  write_bytes(gpath, m.bytes);
  EXPECT_NE(error_of(gpath).find("not 'imatrix'"), std::string::npos) << error_of(gpath);
}

}  // namespace
}  // namespace insitu
