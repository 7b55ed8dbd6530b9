// For fuzz targets whose reader takes a path: the input written to one temporary file per
// process, rewritten for each input.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace insitu::fuzz {

inline const std::string& write_input(const uint8_t* data, size_t size, const char* suffix) {
  static const std::string path = [&] {
    std::string p = std::string("/tmp/insitu_fuzz_") + std::to_string(::getpid()) + suffix;
    return p;
  }();
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    if (size > 0) std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  return path;
}

}  // namespace insitu::fuzz
