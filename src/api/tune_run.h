// `tune` as every front end runs it (`insitu tune`, Python's insitu.tune(), the server's
// /v1/models/tune): the analysis from a model's shapes, optionally measured on a text, its JSON,
// and the `insitu run` command the recommendation stands for.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "insitu/options.h"
#include "model/model.h"
#include "quality/tune.h"
#include "quality/tune_json.h"
#include "util/system_memory.h"

namespace insitu {

struct TuneRequest {
  // path, isq (a candidate to add, or the only one with a mix), profile, max_memory, ctx,
  // threads, and what every candidate is planned with: pure, isq_organization, topology, imatrix.
  BuildOptions build;
  bool measure = false;       // measure each candidate's KL divergence on measure_text
  std::string measure_text;   // a text file
  int measure_tokens = 256;   // its first tokens measured
};

// An `insitu run` invocation as options: the model and the option-table values it sets (names as
// in include/insitu/options.h; "true" for a flag). A TOML run configuration holds the same.
struct RunRecipe {
  std::string model_id;                       // a directory, org/name id, or file
  std::optional<std::string> format;          // "gguf" for a file
  std::map<std::string, std::string> values;  // option name -> value
};

// `insitu run` arguments (without the program name) for a recipe: the model, then the option
// table's quantization and runtime options in the table's order.
std::vector<std::string> run_args(const RunRecipe& recipe);
// The arguments as one shell-quoted command line ("insitu run -m 'my dir' --isq q4k").
std::string shell_command(const std::vector<std::string>& args);

struct TuneReport {
  TuneResult result;
  SystemMemory system;                       // the machine as detected
  std::optional<TuneMeasureInfo> measured;   // with TuneRequest::measure
  std::optional<RunRecipe> recommended;      // the run the recommendation stands for, if any
  std::string command;                       // shell_command of it ("" when nothing fits)
  nlohmann::json json;                       // the document `insitu tune --json` prints
};

// Loads the model's shapes (no weights unless measuring), analyses, measures when asked (one
// layer at a time, so a model that does not fit can be measured), and builds the report. Throws
// InvalidArgument for bad options (measure without a text, a text of fewer than 2 tokens).
TuneReport run_tune(const TuneRequest& request, bool show_progress = true);

}  // namespace insitu
