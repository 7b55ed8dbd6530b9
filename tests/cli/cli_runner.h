// Running the built `insitu` binary from tests.
#pragma once

#include <string>

namespace insitu::test {

struct CliOutput {
  int status = -1;   // exit code; -1 when the process did not exit normally
  std::string text;  // stdout, or stdout and stderr interleaved
};

// Runs `<build>/bin/insitu <args>` through the shell (the caller quotes paths in `args`). A process
// that cannot be started or waited for fails the calling test.
CliOutput run_insitu(const std::string& args, bool with_stderr = false);

}  // namespace insitu::test
