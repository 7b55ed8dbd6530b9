// The text a verb reads (perplexity, imatrix), named by `--file TEXT` as llama.cpp's own tools
// name it. Such verbs take the model file with -f alone (or -m), since --file is the text.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "model_args.h"

namespace insitu::cli {

// Adds the model flags (ModelArgs::add_to) with -f as the model file's only name, and --file for
// the text, described by `text_help`.
void add_model_and_text_options(CLI::App& cmd, ModelArgs& model, std::string& text_file,
                                const std::string& text_help);

// Tokenizing holds several copies of a text's bytes and ids, so inputs are bounded; perplexity
// and calibration texts are a few MB.
inline constexpr size_t kMaxTextBytes = size_t{64} << 20;

// The whole file, bytes as they are. Throws IoError naming the path when it is not a regular
// file or is over kMaxTextBytes.
std::string read_text_file(const std::string& path);

}  // namespace insitu::cli
