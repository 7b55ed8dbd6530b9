#include "test_paths.h"

#include <cstdlib>

namespace insitu::test {

std::string source_dir() { return INSITU_SOURCE_DIR; }
std::string shared_dir() { return INSITU_SHARED_DIR; }
std::string binary_dir() { return INSITU_BINARY_DIR; }
std::string data_dir() { return source_dir() + "/tests/data"; }

std::string model_cache_dir() {
  if (const char* env = std::getenv("INSITU_MODEL_CACHE"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/root") + "/.cache/insitu/models";
}
std::string smollm2_path() { return model_cache_dir() + "/SmolLM2-135M-Instruct.Q4_1.gguf"; }
std::string gemma3_path() { return model_cache_dir() + "/gemma-3-270m-q4_k_m.gguf"; }

}  // namespace insitu::test
