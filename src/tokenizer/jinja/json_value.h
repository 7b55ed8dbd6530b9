// JSON text -> jinja Value (objects keep their key order, as Python's json.loads does; integers
// stay integers, numbers with a fraction or exponent become floats).
#pragma once

#include <string_view>

#include "tokenizer/jinja/value.h"

namespace insitu::jinja {

// Throws InvalidArgument naming `what` when the text is not valid JSON.
Value value_from_json(std::string_view json_text, std::string_view what);

}  // namespace insitu::jinja
