// Verb registration for the insitu CLI. Each add_*_command attaches one subcommand whose callback
// does the work and throws insitu::Error on failure (main maps it to one line and exit 1).
#pragma once

#include <CLI/CLI.hpp>

namespace insitu::cli {

void register_commands(CLI::App& app);

}  // namespace insitu::cli
