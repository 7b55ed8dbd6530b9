#include "commands.h"

namespace insitu::cli {

// One line per verb; each is defined in its cmd_<verb>.cc.

void register_commands(CLI::App& app) {
}

}  // namespace insitu::cli
