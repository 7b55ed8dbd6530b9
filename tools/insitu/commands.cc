#include "commands.h"

namespace insitu::cli {

// One line per verb; each is defined in its cmd_<verb>.cc.
void add_inspect_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_imatrix_command(CLI::App& app);
void add_tune_command(CLI::App& app);
void add_from_config_command(CLI::App& app);
void add_serve_command(CLI::App& app);

void register_commands(CLI::App& app) {
  add_inspect_command(app);
  add_convert_command(app);
  add_quantize_command(app);
  add_tokenize_command(app);
  add_run_command(app);
  add_bench_command(app);
  add_perplexity_command(app);
  add_imatrix_command(app);
  add_tune_command(app);
  add_from_config_command(app);
  add_serve_command(app);
}

}  // namespace insitu::cli
