// The UQFF container reader on hand-made files: version rules, pre-1.0 artifacts, duplicates
// across shards, each format's exact tensor set, and sizes checked against the bytes present.
#include "io/uqff.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <list>

#include "insitu/error.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;
namespace st = safetensors;

class UqffReader : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("insitu_uqff_io_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A writer holding the version scalars (major.minor) and nothing else.
  static st::SafetensorsWriter versioned(uint32_t major = 1, uint32_t minor = 2) {
    st::SafetensorsWriter w;
    add_u32(w, "uqff.version.major", major);
    add_u32(w, "uqff.version.minor", minor);
    add_u32(w, "uqff.version.patch", 0);
    return w;
  }
  static void add_u32(st::SafetensorsWriter& w, const std::string& name, uint32_t v) {
    std::vector<uint8_t> b(4);
    std::memcpy(b.data(), &v, 4);
    keep().push_back(b);
    w.add_tensor(name, st::Dtype::kU32, {}, keep().back());
  }
  static void add_bytes(st::SafetensorsWriter& w, const std::string& name, st::Dtype d,
                        std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
    keep().push_back(std::move(bytes));
    w.add_tensor(name, d, std::move(shape), keep().back());
  }
  // A q8_0 (ggml id 8) entry of `rows` x 32: 34 bytes a row.
  static void add_q8_entry(st::SafetensorsWriter& w, const std::string& key, uint32_t rows,
                           size_t nbytes = 0) {
    add_bytes(w, key + ".weight", st::Dtype::kU8,
              {static_cast<int64_t>(nbytes ? nbytes : rows * 34)},
              std::vector<uint8_t>(nbytes ? nbytes : rows * 34));
    add_u32(w, key + ".weight.dtype", 8);
    add_bytes(w, key + ".weight.format", st::Dtype::kU8, {}, {0});
    std::vector<uint8_t> shape(8);
    const uint32_t dims[2] = {rows, 32};
    std::memcpy(shape.data(), dims, 8);
    add_bytes(w, key + ".weight.shape", st::Dtype::kU32, {2}, shape);
  }
  std::string write(st::SafetensorsWriter& w, const std::string& name) {
    const std::string p = (dir_ / name).string();
    w.write(p);
    return p;
  }
  static std::string error_of(const std::vector<std::string>& paths) {
    try {
      uqff::Reader::open(paths);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  static std::list<std::vector<uint8_t>>& keep() {
    static std::list<std::vector<uint8_t>> k;
    return k;
  }
  fs::path dir_;
};

TEST_F(UqffReader, ReadsAGgufEntryAcrossShards) {
  st::SafetensorsWriter a = versioned();
  add_q8_entry(a, "model.layers.0.mlp.up_proj", 4);
  st::SafetensorsWriter b = versioned();  // identical version scalars may repeat
  add_q8_entry(b, "lm_head", 2);
  const auto r = uqff::Reader::open({write(a, "t-0.uqff"), write(b, "t-1.uqff")});
  ASSERT_EQ(r->entries().size(), 2u);
  const uqff::Entry* e = r->find("model.layers.0.mlp.up_proj");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->format, uqff::Format::kGguf);
  EXPECT_EQ(e->ggml_type, 8u);
  EXPECT_EQ(e->shape, (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(r->find("lm_head")->file, (dir_ / "t-1.uqff").string());
}

TEST_F(UqffReader, VersionRules) {
  st::SafetensorsWriter older = versioned(1, 1);
  add_q8_entry(older, "lm_head", 1);
  EXPECT_NO_THROW(uqff::Reader::open({write(older, "a.uqff")}));
  st::SafetensorsWriter newer = versioned(1, 3);
  EXPECT_NE(error_of({write(newer, "b.uqff")}).find("version 1.3 unsupported"), std::string::npos);
  st::SafetensorsWriter major = versioned(2, 0);
  EXPECT_NE(error_of({write(major, "c.uqff")}).find("version 2.0"), std::string::npos);
  st::SafetensorsWriter none;
  add_q8_entry(none, "lm_head", 1);
  EXPECT_NE(error_of({write(none, "d.uqff")}).find("uqff.version.major"), std::string::npos);
}

TEST_F(UqffReader, PreOneZeroArtifactsAreRefused) {
  st::SafetensorsWriter w;
  add_bytes(w, "0", st::Dtype::kU8, {4}, {1, 2, 3, 4});
  add_bytes(w, "1", st::Dtype::kU8, {4}, {1, 2, 3, 4});
  EXPECT_NE(error_of({write(w, "old.uqff")}).find("Pre-1.0 UQFF artifacts are no longer supported"),
            std::string::npos);
}

TEST_F(UqffReader, DuplicatesAcrossShardsAreRefused) {
  st::SafetensorsWriter a = versioned();
  add_q8_entry(a, "lm_head", 1);
  st::SafetensorsWriter b;
  add_q8_entry(b, "lm_head", 1);
  const std::string err = error_of({write(a, "x-0.uqff"), write(b, "x-1.uqff")});
  EXPECT_NE(err.find("lm_head.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("one shard only"), std::string::npos) << err;
  st::SafetensorsWriter c = versioned(1, 1);  // a different version scalar is a duplicate too
  EXPECT_NE(error_of({write(a, "y-0.uqff"), write(c, "y-1.uqff")}).find("uqff.version.minor"),
            std::string::npos);
}

TEST_F(UqffReader, EntriesNeedTheirFormatsExactTensors) {
  st::SafetensorsWriter extra = versioned();
  add_q8_entry(extra, "lm_head", 1);
  add_bytes(extra, "lm_head.weight.scales", st::Dtype::kF32, {1}, std::vector<uint8_t>(4));
  std::string err = error_of({write(extra, "e.uqff")});
  EXPECT_NE(err.find("lm_head.weight.scales"), std::string::npos) << err;
  EXPECT_NE(err.find("unexpected in a gguf entry"), std::string::npos) << err;

  st::SafetensorsWriter missing = versioned();
  add_bytes(missing, "lm_head.weight", st::Dtype::kU8, {34}, std::vector<uint8_t>(34));
  add_bytes(missing, "lm_head.weight.format", st::Dtype::kU8, {}, {0});
  err = error_of({write(missing, "m.uqff")});
  EXPECT_NE(err.find("lm_head.weight.dtype"), std::string::npos) << err;

  st::SafetensorsWriter no_format = versioned();
  add_bytes(no_format, "lm_head.weight", st::Dtype::kF32, {1, 1}, std::vector<uint8_t>(4));
  EXPECT_NE(error_of({write(no_format, "n.uqff")}).find("lm_head.weight.format"), std::string::npos);

  st::SafetensorsWriter bad_format = versioned();
  add_bytes(bad_format, "lm_head.weight", st::Dtype::kF32, {1, 1}, std::vector<uint8_t>(4));
  add_bytes(bad_format, "lm_head.weight.format", st::Dtype::kU8, {}, {9});
  EXPECT_NE(error_of({write(bad_format, "f.uqff")}).find("format 9 unknown"), std::string::npos);
}

TEST_F(UqffReader, SizesAreCheckedAgainstTheBytes) {
  st::SafetensorsWriter short_weight = versioned();
  add_q8_entry(short_weight, "lm_head", 4, /*nbytes=*/100);
  std::string err = error_of({write(short_weight, "s.uqff")});
  EXPECT_NE(err.find("100 bytes"), std::string::npos) << err;

  st::SafetensorsWriter bad_type = versioned();
  add_bytes(bad_type, "lm_head.weight", st::Dtype::kU8, {34}, std::vector<uint8_t>(34));
  add_u32(bad_type, "lm_head.weight.dtype", 1006);  // an insitu-only id has no ggml blocks
  add_bytes(bad_type, "lm_head.weight.format", st::Dtype::kU8, {}, {0});
  add_bytes(bad_type, "lm_head.weight.shape", st::Dtype::kU32, {2}, std::vector<uint8_t>(8, 1));
  err = error_of({write(bad_type, "t.uqff")});
  EXPECT_NE(err.find("ggml type id 1006 unknown"), std::string::npos) << err;
}

TEST_F(UqffReader, ShardWriterSplitsAtTheCap) {
  uqff::ShardedWriter w(dir_.string(), "z", 100);
  for (int i = 0; i < 5; ++i) {
    w.add_tensor("m" + std::to_string(i) + ".weight", st::Dtype::kU8, {60},
                 [](ByteSink& s) { s.write_zeros(60); });
  }
  EXPECT_THROW(w.add_u8("m0.weight", 0), InvalidArgument);
  const std::vector<std::string> files = w.write();
  // The version scalars (12 bytes) and one 60-byte tensor share shard 0; then one per shard.
  EXPECT_EQ(files, (std::vector<std::string>{"z-0.uqff", "z-1.uqff", "z-2.uqff", "z-3.uqff",
                                              "z-4.uqff"}));
  EXPECT_EQ(uqff::parse_shard_name("z-12.uqff"), std::make_pair(std::string("z"), 12));
  EXPECT_EQ(uqff::parse_shard_name("z.uqff"), std::nullopt);
}

}  // namespace
}  // namespace insitu
