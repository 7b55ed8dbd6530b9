// Budgets of the Jinja engine.
//
// Chat templates come from model files, that is from strangers: every construct that could
// exhaust the stack, the memory or the CPU is bounded here, and a breach throws LimitError naming
// the budget (ChatTemplate adds the template's origin). The values are generous: every template in
// tests/data/templates renders far below them. Python's jinja2 has no such budgets but fails
// earlier in most of these cases (RecursionError at ~1,000 Python frames, MAX_RANGE = 100,000).
//
// Memory stays bounded because every value a rendering creates is charged to kMaxAllocatedBytes
// before or right after it is built, and no single value may exceed kMaxStringBytes or
// kMaxItems; the stack stays bounded because syntax trees, values and render frames have depth
// limits, and values are destroyed iteratively (value.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "insitu/error.h"

namespace insitu::jinja {

// Parse time.
inline constexpr int kMaxExprDepth = 256;   // syntax-tree depth of one expression, every construct
                                            // counted (operator chains, ( [ {, filters, calls, ...)
inline constexpr int kMaxBlockDepth = 256;  // nested {% if/for/macro/... %} blocks

// Render time.
inline constexpr int kMaxCallDepth = 200;       // nested macro calls
inline constexpr int kMaxRenderDepth = 1000;    // nested statement + expression + call frames (about
                                                // 1 KiB of stack each in a release build, 3 KiB with ASan)
inline constexpr uint64_t kMaxLoopIterations = 1'000'000;  // for-loop bodies run, all loops together
inline constexpr int kMaxFilterDepth = 32;      // filters applied by filters: map('map', 'map', ...)
inline constexpr uint64_t kMaxSteps = 20'000'000;  // expression nodes evaluated + items processed
inline constexpr size_t kMaxOutputBytes = size_t{64} << 20;  // text written by statements, set and
                                                             // macro bodies included
inline constexpr size_t kMaxStringBytes = size_t{32} << 20;  // one string value
inline constexpr size_t kMaxItems = size_t{1} << 20;         // items of one list or dict
inline constexpr uint64_t kMaxAllocatedBytes = uint64_t{512} << 20;  // strings and items created,
                                                                     // all values together
// Value nesting (printing, JSON, comparison): kMaxNesting in value.h.

// The render-time budgets that count a whole rendering, as one object: a caller may lower them
// (the fuzzer does, to keep each input fast); the defaults are the constants above.
struct RenderLimits {
  int max_depth = kMaxRenderDepth;
  uint64_t max_loop_iterations = kMaxLoopIterations;
  uint64_t max_steps = kMaxSteps;
  uint64_t max_output_bytes = kMaxOutputBytes;
  uint64_t max_allocated_bytes = kMaxAllocatedBytes;
};

// A template ran past one of the budgets above: hostile or broken (a model-file problem, so a
// FormatError). The message names the budget and its value.
class LimitError : public FormatError {
 public:
  using FormatError::FormatError;
};

// Throws LimitError "<what>: <got> exceeds the <budget> budget (<limit>)".
[[noreturn]] void limit_exceeded(const std::string& budget, uint64_t limit, const std::string& what = "",
                                 uint64_t got = 0);

// Charges n units of work (items walked by a comparison, a search, printing, iteration) to the
// kMaxSteps budget of the rendering running on this thread; nothing outside a rendering.
void charge_work(uint64_t n);

// Throws unless a string of `bytes` bytes fits kMaxStringBytes.
inline void check_string_size(uint64_t bytes, const char* what) {
  if (bytes > kMaxStringBytes) limit_exceeded("string size (bytes)", kMaxStringBytes, what, bytes);
}

// Throws unless a list or dict of `n` items fits kMaxItems.
inline void check_item_count(uint64_t n, const char* what) {
  if (n > kMaxItems) limit_exceeded("list size (items)", kMaxItems, what, n);
}

// a * b, saturating at UINT64_MAX (sizes compared against the budgets above).
inline uint64_t mul_sat(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

}  // namespace insitu::jinja
