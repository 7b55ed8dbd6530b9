#include "commands.h"

namespace insitu::cli {

// One line per verb; each is defined in its cmd_<verb>.cc.
void add_inspect_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);

void register_commands(CLI::App& app) {
  add_inspect_command(app);
  add_tokenize_command(app);
}

}  // namespace insitu::cli
