// AtomicFile: a failed or interrupted write leaves nothing behind.
#include "io/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <string>

namespace insitu {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / (name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

size_t entries(const fs::path& d) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(d)) ++n;
  return n;
}

TEST(AtomicFile, DestructorWithoutCommitRemovesTheTemporary) {
  const fs::path d = fresh_dir("atomic-discard");
  {
    AtomicFile f((d / "out.bin").string());
    f.write("abc", 3);
  }
  EXPECT_EQ(entries(d), 0u);
  fs::remove_all(d);
}

// Regression: SIGINT/SIGTERM/SIGHUP during a write left the staging file (and staging
// directories) behind, since a signal runs no destructors.
TEST(AtomicFile, SignalDuringAWriteRemovesStagingPathsAndStillKills) {
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) {
    const fs::path d = fresh_dir("atomic-signal-" + std::to_string(sig));
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      install_staging_cleanup();
      AtomicFile f((d / "out.bin").string());
      f.write_zeros(8u << 20);  // past the buffer, so the temporary file has data
      fs::create_directories(d / "staging" / "sub");
      AtomicFile inner((d / "staging" / "sub" / "x").string());
      inner.write_zeros(16);
      StagingRegistration reg((d / "staging").string());
      ::raise(sig);
      ::_exit(0);  // not reached
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
    EXPECT_EQ(WTERMSIG(status), sig);
    EXPECT_EQ(entries(d), 0u) << "left behind in " << d;
    fs::remove_all(d);
  }
}

}  // namespace
}  // namespace insitu
