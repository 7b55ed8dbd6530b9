// libFuzzer target for the UQFF reader (io/uqff.h): a shard is a safetensors file whose entries
// carry mistral.rs's serialized-quantization headers. Anything but success or insitu::Error is a
// bug; every entry's tensors are touched.
#include <cstddef>
#include <cstdint>

#include "fuzz_file.h"
#include "insitu/error.h"
#include "io/uqff.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = insitu::fuzz::write_input(data, size, "-0.uqff");
  try {
    const auto reader = insitu::uqff::Reader::open({path});
    volatile uint64_t sink = 0;
    for (const insitu::uqff::Entry& e : reader->entries())
      for (const auto& [suffix, view] : e.tensors) sink = sink + view->nbytes + e.shape.size();
  } catch (const insitu::Error&) {
  }
  return 0;
}
