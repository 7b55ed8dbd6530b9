// libFuzzer target for the KL-divergence base file reader (quality/kld_base_file.h), which
// `perplexity --kl-divergence` maps from a path the user gives. Anything but success or
// insitu::Error is a bug; every token and record is read.
#include <cstddef>
#include <cstdint>

#include "fuzz_file.h"
#include "insitu/error.h"
#include "quality/kld_base_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = insitu::fuzz::write_input(data, size, ".kld");
  try {
    const insitu::KldBaseFile f = insitu::KldBaseFile::open(path);
    volatile int64_t sink = 0;
    for (int32_t t : f.tokens()) sink = sink + t;
    const int scored = insitu::kld_scored_per_chunk(f.n_ctx());
    for (int c = 0; c < f.n_chunk(); ++c)
      for (int k = 0; k < scored; ++k) sink = sink + insitu::decoded_log_prob(f.record(c, k), 0);
  } catch (const insitu::Error&) {
  }
  return 0;
}
