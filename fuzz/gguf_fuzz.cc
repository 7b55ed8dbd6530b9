// libFuzzer target for the GGUF reader: any input must either parse into a consistent file or
// throw insitu::Error; crashes, sanitizer reports and other exceptions are bugs.
#include <cstddef>
#include <cstdint>
#include <span>

#include "insitu/error.h"
#include "io/gguf.h"

namespace {

// Touches everything a parsed file exposes, so the sanitizers see any bad pointer or length.
uint64_t walk(const insitu::gguf::Value& v) {
  uint64_t h = static_cast<uint64_t>(v.type);
  if (const auto* s = std::get_if<std::string>(&v.v)) {
    for (char c : *s) h = h * 31 + static_cast<uint8_t>(c);
  } else if (const auto* a = std::get_if<insitu::gguf::Array>(&v.v)) {
    for (const auto& item : a->items) h = h * 31 + walk(item);
  }
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = insitu::gguf::GgufFile::parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
    volatile uint64_t sink = 0;
    for (const auto& [key, value] : f->metadata()) sink = sink + walk(value) + key.size();
    for (const auto& t : f->tensors()) {
      sink = sink + static_cast<uint64_t>(t.n_elements()) + t.n_rows();
      if (t.nbytes > 0) sink = sink + t.data[0] + t.data[t.nbytes - 1];
      if (f->find_tensor(t.name) != &t) __builtin_trap();
    }
    (void)f->get_u64("general.alignment", 32);
  } catch (const insitu::Error&) {
  }
  return 0;
}
