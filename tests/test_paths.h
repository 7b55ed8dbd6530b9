// Locations of test inputs, shared by every test binary.
#pragma once

#include <string>

namespace insitu::test {

std::string source_dir();   // the repository root
std::string shared_dir();   // ../shared beside the checkout (golden data, references)
std::string binary_dir();   // the CMake build directory (build/bin/insitu lives below it)
std::string data_dir();     // tests/data: committed fixtures and reference outputs

// The model cache filled by scripts/fetch-models.sh ($INSITU_MODEL_CACHE or
// ~/.cache/insitu/models) and the paths of the two shipped models inside it.
std::string model_cache_dir();
std::string smollm2_path();
std::string gemma3_path();

}  // namespace insitu::test
