#include "cli_runner.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>

#include "test_paths.h"

namespace insitu::test {

CliOutput run_insitu(const std::string& args, bool with_stderr) {
  const std::string cmd =
      binary_dir() + "/bin/insitu " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  CliOutput out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    ADD_FAILURE() << "could not start: " << cmd;
    return out;
  }
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.text.append(buf.data(), n);
  const int rc = pclose(p);
  EXPECT_NE(rc, -1) << "could not wait for: " << cmd;
  out.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

}  // namespace insitu::test
