// Text files the library reads whole (calibration text): bytes as they are.
#pragma once

#include <string>

namespace insitu {

// The whole file. Throws IoError naming the path when it cannot be opened or read, or when it is
// not a regular file (a FIFO or a device would be read forever).
std::string read_text_file(const std::string& path);

}  // namespace insitu
