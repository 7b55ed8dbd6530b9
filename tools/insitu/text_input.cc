#include "text_input.h"

namespace insitu::cli {

void add_model_and_text_options(CLI::App& cmd, ModelArgs& model, std::string& text_file,
                                const std::string& text_help) {
  model.add_to(cmd);
  cmd.remove_option(cmd.get_option("--file"));
  cmd.add_option("-f", model.file, "Model file (with --format gguf)");
  cmd.add_option("--file", text_file, text_help);
}

}  // namespace insitu::cli
