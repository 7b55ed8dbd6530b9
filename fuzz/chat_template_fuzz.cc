// libFuzzer target for chat templates: the input is a template's source, parsed and rendered with
// a fixed conversation (system, user, assistant with a tool call, tool result; a tool list). It must
// render or throw insitu::Error; crashes, sanitizer reports, hangs, huge allocations and other
// exceptions are bugs. The render-time budgets are lowered (jinja::RenderLimits) so each input
// stays fast under ASan; the per-value budgets (kMaxStringBytes, kMaxItems) stay as shipped.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "insitu/error.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/json_value.h"

namespace {

constexpr std::string_view kContext = R"({
  "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true,
  "messages": [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "What is 2 + 2? \u00e9\u4e2d"},
    {"role": "assistant", "content": "", "tool_calls": [
      {"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
    {"role": "tool", "content": "4"},
    {"role": "user", "content": [{"type": "text", "text": "thanks"}, {"type": "image"}]}
  ],
  "tools": [{"type": "function", "function": {"name": "add", "description": "Adds.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "number"}},
                   "required": ["a", "b"]}}}],
  "date_string": "26 Jul 2024", "n": 3, "x": 1.5, "none": null
})";

const insitu::jinja::Value& context() {
  static const insitu::jinja::Value v = insitu::jinja::value_from_json(kContext, "fuzz context");
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  insitu::jinja::RenderLimits limits;
  limits.max_loop_iterations = 20'000;
  limits.max_steps = 200'000;
  limits.max_output_bytes = size_t{4} << 20;
  limits.max_allocated_bytes = uint64_t{128} << 20;
  try {
    const insitu::jinja::Template t(std::string_view(reinterpret_cast<const char*>(data), size));
    volatile size_t sink = t.render(context(), limits).size();
    (void)sink;
  } catch (const insitu::Error&) {
  }
  return 0;
}
