// The JSON form of a tune analysis (quality/tune.h), as `insitu tune --json` prints it and Python's
// insitu.tune() returns it (schema: docs/tune.schema.json). One builder, so the two cannot drift.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "quality/tune.h"
#include "util/system_memory.h"

namespace insitu {

// What `tune --measure` measured on: the text file, the tokens evaluated and the positions scored.
struct TuneMeasureInfo {
  std::string text;
  int64_t tokens = 0;
  int64_t positions = 0;
};

// The document for `result` (computed for `model`). `system` is the machine's memory as detected,
// `max_memory` the --max-memory text (empty: the RAM available now was used), `measured` set when
// --measure filled the candidates' kld, and `command` the recommended `insitu run` command line
// (ignored when nothing is recommended).
nlohmann::json tune_json(const TuneResult& result, const Model& model, const SystemMemory& system,
                         const std::string& max_memory,
                         const std::optional<TuneMeasureInfo>& measured,
                         const std::string& command);

}  // namespace insitu
