// libFuzzer target for the imatrix readers (GGUF, legacy .dat, .cimatrix). The first input byte
// picks the .cimatrix reader when odd; the rest is the file. Anything but success or
// insitu::Error is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "insitu/error.h"
#include "io/imatrix_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool cimatrix = (data[0] & 1) != 0;
  try {
    const insitu::Imatrix im = insitu::Imatrix::parse(std::span<const uint8_t>(data + 1, size - 1),
                                                      cimatrix ? "fuzz.cimatrix" : "fuzz.imatrix");
    volatile float sink = 0;
    for (const auto& [name, values] : im.importance()) {
      for (float v : values) sink = sink + v;
    }
  } catch (const insitu::Error&) {
  }
  return 0;
}
