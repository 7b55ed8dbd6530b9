// insitu command-line front end: a thin layer over the library. Each verb lives in its own file
// (cmd_*.cc) and registers itself here.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <cstdio>
#include <algorithm>
#include <string>
#include <vector>
#include <exception>

#include "insitu/error.h"
#include "insitu/version.h"
#include "io/atomic_file.h"
#include "commands.h"

namespace {

// Error messages quote names and values from untrusted files: control characters are shown as
// \xNN so that a model file cannot drive the terminal, and the message stays on one line.
std::string one_line(const char* what) {
  std::string out;
  for (const char* p = what; *p != '\0'; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // Logs go to stderr; stdout carries only what the user asked for (text, tables, JSON).
  spdlog::set_default_logger(spdlog::stderr_color_mt("insitu"));
  spdlog::set_pattern("%^[%l]%$ %v");
  // Info by default: one line each for what loading decided (ISQ summary, UQFF, template).
  spdlog::set_level(spdlog::level::info);
  // A signal during a write removes the partial files instead of leaving them behind.
  insitu::install_staging_cleanup();
  CLI::App app{"insitu: run, quantize and inspect large language models on the CPU"};
  app.name("insitu");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("insitu ") + insitu::version());
  insitu::cli::register_commands(app);
  // llama-bench's -pg (a two-letter single-dash flag, which CLI11 does not take) is --pg.
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::string& s : args)
    if (s == "-pg") s = "--pg";
  std::reverse(args.begin(), args.end());  // CLI11's vector form takes the arguments reversed
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const insitu::Error& e) {
    std::fprintf(stderr, "insitu: error: %s\n", one_line(e.what()).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "insitu: internal error: %s\n", one_line(e.what()).c_str());
    return 2;
  }
  return 0;
}
