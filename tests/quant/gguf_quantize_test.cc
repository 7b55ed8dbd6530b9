// quantize_gguf: which tensors change, that their bytes are exactly quantize_tensor's, that the
// rest is copied, metadata is kept, and that failures leave nothing behind.
#include "quant/gguf_quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <random>
#include <span>
#include <vector>

#include "insitu/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::span<const uint8_t> bytes_of(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

class GgufQuantizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("insitu_gguf_quantize_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    weight_ = random_floats(512 * 6, 1);
    odd_ = random_floats(100 * 4, 2);
    norm_ = random_floats(512, 3);
    gguf::GgufWriter w;
    w.set("general.architecture", gguf::Value::string("llama"));
    w.set("general.name", gguf::Value::string("tiny"));
    w.add_tensor("blk.0.attn_q.weight", QuantType::kF32, {512, 6}, bytes_of(weight_));
    w.add_tensor("blk.0.odd.weight", QuantType::kF32, {100, 4}, bytes_of(odd_));
    w.add_tensor("blk.0.attn_norm.weight", QuantType::kF32, {512}, bytes_of(norm_));
    input_ = (dir_ / "in.gguf").string();
    w.write(input_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::string input_;
  std::vector<float> weight_, odd_, norm_;
};

TEST_F(GgufQuantizeTest, QuantizesEligibleTensorsAndCopiesTheRest) {
  ThreadPool pool(2);
  for (QuantType type : {QuantType::kQ4_0, QuantType::kQ4K, QuantType::kQ6K}) {
    const std::string out = (dir_ / "out.gguf").string();
    GgufQuantizeOptions opts;
    opts.type = type;
    opts.show_progress = false;
    const GgufQuantizeReport r = quantize_gguf(input_, out, opts, pool);
    EXPECT_EQ(r.n_quantized, 1);
    EXPECT_EQ(r.n_copied, 2);

    const auto f = gguf::GgufFile::open(out);
    EXPECT_EQ(f->get_string("general.name"), "tiny");
    EXPECT_EQ(f->get_u64("general.quantization_version"), 2u);
    EXPECT_EQ(f->get_u64("general.file_type"), llama_file_type(type));

    const gguf::TensorInfo& q = f->tensor("blk.0.attn_q.weight");
    ASSERT_EQ(q.type, type);
    std::vector<uint8_t> expected(quant_row_size(type, 512) * 6);
    quantize_tensor(type, weight_.data(), expected.data(), 6, 512, nullptr, pool);
    ASSERT_EQ(q.nbytes, expected.size());
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), q.data));

    // Row length 100 is not a multiple of 32 or 256: kept as f32, unchanged.
    const gguf::TensorInfo& odd = f->tensor("blk.0.odd.weight");
    EXPECT_EQ(odd.type, QuantType::kF32);
    EXPECT_EQ(0, std::memcmp(odd.data, odd_.data(), odd.nbytes));
    const gguf::TensorInfo& norm = f->tensor("blk.0.attn_norm.weight");
    EXPECT_EQ(norm.type, QuantType::kF32);
    EXPECT_EQ(0, std::memcmp(norm.data, norm_.data(), norm.nbytes));
  }
}

TEST_F(GgufQuantizeTest, ImatrixIsUsedAndRequiredWhereNeeded) {
  ThreadPool pool(1);
  const std::string out = (dir_ / "imat.gguf").string();
  std::vector<float> imat(512);
  for (size_t i = 0; i < imat.size(); ++i) imat[i] = 0.1f + static_cast<float>(i % 7);

  GgufQuantizeOptions opts;
  opts.type = QuantType::kIQ2_XXS;
  opts.show_progress = false;
  EXPECT_THROW(quantize_gguf(input_, out, opts, pool), InvalidArgument);
  EXPECT_FALSE(fs::exists(out)) << "a failed quantization must leave nothing behind";

  opts.imatrix = [&](std::string_view name) -> const std::vector<float>* {
    return name == "blk.0.attn_q.weight" ? &imat : nullptr;
  };
  quantize_gguf(input_, out, opts, pool);
  const auto f = gguf::GgufFile::open(out);
  const gguf::TensorInfo& q = f->tensor("blk.0.attn_q.weight");
  std::vector<uint8_t> expected(quant_row_size(QuantType::kIQ2_XXS, 512) * 6);
  quantize_tensor(QuantType::kIQ2_XXS, weight_.data(), expected.data(), 6, 512, imat.data(), pool);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), q.data));

  std::vector<float> wrong(100);
  opts.imatrix = [&](std::string_view) { return &wrong; };
  EXPECT_THROW(quantize_gguf(input_, (dir_ / "bad.gguf").string(), opts, pool), InvalidArgument);
  EXPECT_FALSE(fs::exists(dir_ / "bad.gguf"));
}

TEST_F(GgufQuantizeTest, RejectsActivationOnlyTargets) {
  ThreadPool pool(1);
  GgufQuantizeOptions opts;
  opts.type = QuantType::kQ8K;
  opts.show_progress = false;
  // q8_K has a reference quantizer in ggml but is an activation format; producing it is allowed
  // only if the table gives it a quantize function.
  if (type_traits(QuantType::kQ8K).quantize == nullptr) {
    EXPECT_THROW(quantize_gguf(input_, (dir_ / "x.gguf").string(), opts, pool), Unsupported);
  }
  opts.type = QuantType::kI32;
  EXPECT_THROW(quantize_gguf(input_, (dir_ / "x.gguf").string(), opts, pool), Error);
  EXPECT_FALSE(fs::exists(dir_ / "x.gguf"));
}

}  // namespace
}  // namespace insitu
