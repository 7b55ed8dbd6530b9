// libFuzzer target for the safetensors reader: any input must either parse or throw
// insitu::Error; crashes, sanitizer reports and other exceptions are bugs.
#include <cstddef>
#include <cstdint>
#include <span>

#include "insitu/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = insitu::safetensors::SafetensorsFile::parse(std::span<const uint8_t>(data, size),
                                                         "fuzz.safetensors");
    volatile uint64_t sink = 0;
    for (const auto& [k, v] : f->metadata()) sink = sink + k.size() + v.size();
    for (const auto& t : f->tensors()) {
      sink = sink + static_cast<uint64_t>(t.n_elements());
      if (t.nbytes > 0) sink = sink + t.data[0] + t.data[t.nbytes - 1];
      if (f->find(t.name) != &t) __builtin_trap();
    }
  } catch (const insitu::Error&) {
  }
  return 0;
}
