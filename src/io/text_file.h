// Text files the library reads whole (calibration, perplexity and imatrix texts): bytes as they
// are, bounded.
#pragma once

#include <cstddef>
#include <string>

namespace insitu {

// Tokenizing holds several copies of a text's bytes and ids, so inputs are bounded; perplexity
// and calibration texts are a few MB.
inline constexpr size_t kMaxTextBytes = size_t{64} << 20;

// The whole file. Throws IoError naming the path when it cannot be read, is not a regular file
// (a FIFO or a device would be read forever) or is over kMaxTextBytes.
std::string read_text_file(const std::string& path);

}  // namespace insitu
