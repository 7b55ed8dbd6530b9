// libFuzzer target for JSON model configs: parsing and the typed getters must either succeed or
// throw insitu::Error; crashes, sanitizer reports and other exceptions are bugs.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "insitu/error.h"
#include "io/json_file.h"

namespace {

template <typename F>
void attempt(F&& f) {
  try {
    f();
  } catch (const insitu::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto file = insitu::JsonFile::parse(std::string_view(reinterpret_cast<const char*>(data), size),
                                        "fuzz.json");
    const insitu::JsonObject c = file.root();
    volatile int64_t sink = 0;
    attempt([&] { sink = sink + c.get_int("hidden_size"); });
    attempt([&] { sink = sink + c.get_int("num_attention_heads", 1); });
    volatile double fsink = 0;
    attempt([&] { fsink = fsink + c.get_number("rms_norm_eps", 1e-6); });
    attempt([&] { sink = sink + c.get_bool("tie_word_embeddings", false); });
    attempt([&] { sink = sink + static_cast<int64_t>(c.get_string("model_type", "").size()); });
    attempt([&] { sink = sink + static_cast<int64_t>(c.get_int_array("eos_token_id").size()); });
    attempt(
        [&] { sink = sink + static_cast<int64_t>(c.get_string_array("architectures").size()); });
    attempt([&] {
      if (auto q = c.find_object("quantization_config")) {
        sink = sink + q->get_int("bits", 0) +
               static_cast<int64_t>(q->get_string("quant_method", "").size());
      }
    });
  } catch (const insitu::Error&) {
  }
  return 0;
}
