// The text a verb reads (perplexity, imatrix), named by `--file TEXT` as llama.cpp's own tools
// name it. Such verbs take the model file with -f alone (or -m), since --file is the text.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "io/text_file.h"
#include "model_args.h"

namespace insitu::cli {

// Adds the model flags (ModelArgs::add_to) with -f as the model file's only name, and --file for
// the text, described by `text_help`.
void add_model_and_text_options(CLI::App& cmd, ModelArgs& model, std::string& text_file,
                                const std::string& text_help);

// The text itself is read by the library's read_text_file (io/text_file.h).

}  // namespace insitu::cli
