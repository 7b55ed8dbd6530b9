// ModelBuilder's resolution step, for the front ends that need the load options themselves
// (`insitu quantize` writes what was loaded).
#pragma once

#include "insitu/model.h"
#include "model/model.h"

namespace insitu {

// The model path `options.path` names: the path itself, or for an org/name id that is no local
// path, the Hugging Face cache snapshot. Throws InvalidArgument when nothing is there.
std::string resolve_model_path(const std::string& path);

// The ISQ options the quantization options ask for, without an importance matrix; nullopt without
// isq and topology. topology alone quantizes only what its entries match, so every entry must
// name a type. Throws InvalidArgument for an unknown type, options that need isq without it, or
// both imatrix and calibration_file.
std::optional<IsqOptions> isq_options(const BuildOptions& options);

// What `options` loads: the resolved path, UQFF files (from_uqff, or quant's prebuilt UQFF), or
// in-situ quantization with its importance matrix (read, or collected from calibration_file).
// Logs which happened. Throws InvalidArgument for conflicting options.
LoadOptions resolve_load_options(const BuildOptions& options);

}  // namespace insitu
