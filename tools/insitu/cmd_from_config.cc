// `insitu from-config`: run a TOML configuration (tools/insitu/run_config.h), as
// `insitu tune --emit-config` writes one.
//   insitu from-config -f FILE.toml [--dry-run] [-- RUN_FLAGS...]
// Does exactly what `insitu run` does with the flags the file stands for; flags after `--` are
// appended (e.g. `-- --prompt "Hello" -n 32`). --dry-run prints that command line instead.
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "run_config.h"

namespace insitu::cli {
namespace {

struct FromConfigArgs {
  std::string file;
  bool dry_run = false;
  std::vector<std::string> run_args;  // after `--`
};

void from_config(const FromConfigArgs& a, const std::vector<std::string>& extra) {
  std::vector<std::string> args = run_config_args(read_run_config(a.file));
  args.insert(args.end(), extra.begin(), extra.end());
  if (a.dry_run) {
    std::printf("%s\n", shell_command(args).c_str());
    return;
  }
  // The same parser and verbs as the command line itself.
  CLI::App app{"insitu"};
  app.require_subcommand(1);
  register_commands(app);
  std::vector<const char*> argv = {"insitu"};
  for (const std::string& s : args) argv.push_back(s.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
}

}  // namespace

void add_from_config_command(CLI::App& app) {
  auto a = std::make_shared<FromConfigArgs>();
  CLI::App* cmd = app.add_subcommand(
      "from-config", "Run a TOML configuration file (as `insitu tune --emit-config` writes)");
  cmd->add_option("-f,--file", a->file, "The configuration file")->required();
  cmd->add_flag("--dry-run", a->dry_run, "Print the `insitu run` command line instead of running");
  cmd->add_option("run_args", a->run_args, "More `insitu run` flags, after `--`");
  cmd->callback([a] { from_config(*a, a->run_args); });
}

}  // namespace insitu::cli
