// `insitu from-config`: a TOML file stands for an `insitu run` command line (--dry-run prints it),
// and bad TOML, unknown keys and wrong types are reported with the file's line and column.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli_runner.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

class CliFromConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("insitu_from_config_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string out(const char* name) const { return (dir_ / name).string(); }
  void write(const char* name, const std::string& text) { std::ofstream(out(name)) << text; }
  static std::string run(const std::string& args, int* status) {
    const test::CliOutput o = test::run_insitu(args, /*with_stderr=*/true);
    *status = o.status;
    return o.text;
  }
  fs::path dir_;
};

TEST_F(CliFromConfig, DryRunPrintsTheRunCommand) {
  int status = 0;
  write("m.gguf", "");
  write("ok.toml",
        "command = \"run\"\n[runtime]\nctx = 2048\nthreads = 2\n[[models]]\n"
        "model_id = \"m.gguf\"\nformat = \"gguf\"\n[models.quantization]\nisq = \"q4k\"\n"
        "pure = true\n");
  const std::string log = run("from-config --dry-run -f '" + out("ok.toml") + "' -- -n 8", &status);
  EXPECT_EQ(status, 0) << log;
  // The relative model path is resolved beside the file.
  EXPECT_EQ(log, "insitu run --format gguf -f " + out("m.gguf") +
                     " --isq q4k --pure --ctx 2048 --threads 2 -n 8\n");
}

TEST_F(CliFromConfig, TomlErrorsNameTheLine) {
  int status = 0;
  write("bad.toml", "command = \"run\"\n[runtime]\nctx = 4096\nctx_size = 2\n");
  std::string log = run("from-config --dry-run -f '" + out("bad.toml") + "'", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("bad.toml:4:1: unknown key 'ctx_size' in [runtime]"), std::string::npos)
      << log;
  write("type.toml", "[runtime]\nthreads = \"four\"\n[[models]]\nmodel_id = \"x\"\n");
  log = run("from-config --dry-run -f '" + out("type.toml") + "'", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("type.toml:2:"), std::string::npos) << log;
  EXPECT_NE(log.find("'threads' must be an integer, not a string"), std::string::npos) << log;
  write("syntax.toml", "command = \"run\"\n\n[[models]\nmodel_id = 1\n");
  log = run("from-config --dry-run -f '" + out("syntax.toml") + "'", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("syntax.toml:3:"), std::string::npos) << log;
  write("nomodel.toml", "command = \"run\"\n");
  log = run("from-config --dry-run -f '" + out("nomodel.toml") + "'", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(log.find("no [[models]] entry"), std::string::npos) << log;
}

}  // namespace
}  // namespace insitu
