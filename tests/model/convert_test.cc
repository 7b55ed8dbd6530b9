// convert's failure behaviour: it refuses to overwrite, and a failure leaves nothing behind.
#include "export/convert.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "insitu/error.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

class ConvertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("insitu_convert_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(ConvertTest, RefusesANonEmptyTarget) {
  fs::create_directories(root_ / "out");
  std::ofstream(root_ / "out" / "keep.txt") << "mine";
  ConvertOptions o;
  o.input = test::smollm2_path();
  o.output_dir = (root_ / "out").string();
  o.show_progress = false;
  ThreadPool pool(1);
  EXPECT_THROW(convert_gguf_to_hf(o, pool), InvalidArgument);
  EXPECT_TRUE(fs::exists(root_ / "out" / "keep.txt"));
}

TEST_F(ConvertTest, BadInputLeavesNothingBehind) {
  std::ofstream(root_ / "broken.gguf") << "GGUF but not really";
  ConvertOptions o;
  o.input = (root_ / "broken.gguf").string();
  o.output_dir = (root_ / "out").string();
  o.show_progress = false;
  ThreadPool pool(1);
  EXPECT_THROW(convert_gguf_to_hf(o, pool), FormatError);
  for (const auto& e : fs::directory_iterator(root_)) {
    EXPECT_EQ(e.path().filename(), "broken.gguf") << "left behind: " << e.path();
  }
}

TEST_F(ConvertTest, RejectsUnsupportedDtype) {
  ConvertOptions o;
  o.input = test::smollm2_path();
  o.output_dir = (root_ / "out").string();
  o.dtype = safetensors::Dtype::kI32;
  ThreadPool pool(1);
  EXPECT_THROW(convert_gguf_to_hf(o, pool), InvalidArgument);
  EXPECT_FALSE(fs::exists(root_ / "out"));
}

}  // namespace
}  // namespace insitu
