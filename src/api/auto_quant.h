// What `insitu tune` and `--quant auto` share: the machine's memory, the ISQ options every
// candidate is planned with, and the analysis of a model's shapes (quality/tune.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/model.h"
#include "quality/tune.h"
#include "util/system_memory.h"

namespace insitu {

// The memory a run on this machine may use: `max_memory` (a size such as "8G") when given, else
// the system RAM available now. This build computes on the CPU, so a GPU is reported (in
// `detected`) but never placed in.
TuneMemory tune_memory(const std::string& max_memory, SystemMemory* detected = nullptr);

// The pool size a run with --threads `threads` gets (0: every hardware thread).
int pool_threads(int threads);

// Loads `path` for its shapes only (no weight data; model/model.h LoadOptions::shapes_only).
std::shared_ptr<const Model> load_shapes(const std::string& path, int threads);

// --quant auto: the ISQ target the analysis recommends for `path`, or nullopt to keep the weights
// as stored (they fit). `base` carries the other ISQ options (topology, organization, pure,
// imatrix). Logs the choice and why. Throws InvalidArgument when nothing fits, naming the memory
// and the smallest candidate's needs.
std::optional<IsqTarget> resolve_auto_quant(const std::string& path, const IsqOptions& base,
                                            TuneProfile profile, const std::string& max_memory,
                                            int n_ctx, int threads);

}  // namespace insitu
