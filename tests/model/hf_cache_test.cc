// Hugging Face cache ids on a fake cache: refs/main -> snapshot of symlinks into blobs/, the only
// snapshot without refs/main, an ambiguous choice, and a missing id naming where it looked.
#include "model/hf_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "insitu/error.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

class HfCache : public testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("insitu_hf_cache_" + std::to_string(::getpid()));
    fs::create_directories(root_ / "hub");
    const char* old = std::getenv("HF_HUB_CACHE");
    if (old != nullptr) saved_ = old;
    had_ = old != nullptr;
    ::setenv("HF_HUB_CACHE", (root_ / "hub").c_str(), 1);
  }
  void TearDown() override {
    if (had_) {
      ::setenv("HF_HUB_CACHE", saved_.c_str(), 1);
    } else {
      ::unsetenv("HF_HUB_CACHE");
    }
    fs::remove_all(root_);
  }
  // models--org--name with a blob and snapshot `sha` linking config.json to it.
  fs::path repo(const std::string& org, const std::string& name) {
    return root_ / "hub" / ("models--" + org + "--" + name);
  }
  fs::path snapshot(const fs::path& r, const std::string& sha) {
    fs::create_directories(r / "blobs");
    std::ofstream(r / "blobs" / ("b" + sha)) << "{}";
    const fs::path s = r / "snapshots" / sha;
    fs::create_directories(s);
    fs::create_symlink(fs::path("../../blobs") / ("b" + sha), s / "config.json");
    return s;
  }
  fs::path root_;
  std::string saved_;
  bool had_ = false;
};

TEST_F(HfCache, IdsAreOrgSlashName) {
  EXPECT_TRUE(looks_like_hf_model_id("HuggingFaceTB/SmolLM2-135M-Instruct"));
  EXPECT_FALSE(looks_like_hf_model_id("/abs/path"));
  EXPECT_FALSE(looks_like_hf_model_id("./x/y"));
  EXPECT_FALSE(looks_like_hf_model_id("a/b/c"));
  EXPECT_FALSE(looks_like_hf_model_id("model.gguf"));
}

TEST_F(HfCache, RefsMainPicksTheSnapshot) {
  const fs::path r = repo("org", "name");
  snapshot(r, "aaa");
  const fs::path want = snapshot(r, "bbb");
  fs::create_directories(r / "refs");
  std::ofstream(r / "refs" / "main") << "bbb\n";
  EXPECT_EQ(resolve_hf_cache_id("org/name"), want.string());
  EXPECT_TRUE(fs::is_regular_file(want / "config.json"));  // through the blob symlink
}

TEST_F(HfCache, WithoutRefsTheOnlySnapshot) {
  const fs::path r = repo("org", "one");
  const fs::path s = snapshot(r, "ccc");
  EXPECT_EQ(resolve_hf_cache_id("org/one"), s.string());
  snapshot(r, "ddd");
  try {
    resolve_hf_cache_id("org/one");
    FAIL() << "ambiguous snapshots accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("ccc ddd"), std::string::npos) << e.what();
  }
}

TEST_F(HfCache, MissingIdNamesThePathTried) {
  try {
    resolve_hf_cache_id("org/absent");
    FAIL() << "missing id accepted";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find((root_ / "hub" / "models--org--absent").string()),
              std::string::npos)
        << e.what();
  }
  const fs::path r = repo("org", "stale");
  snapshot(r, "eee");
  fs::create_directories(r / "refs");
  std::ofstream(r / "refs" / "main") << "fff";
  EXPECT_THROW(resolve_hf_cache_id("org/stale"), FormatError);
}

}  // namespace
}  // namespace insitu
