// Jinja2 parser: template source -> statement tree, with jinja2 3.1's grammar and operator
// precedence (filters and `is` tests bind tighter than arithmetic; `not` looser than comparisons).
//
// Unsupported constructs (extends/block/include/import, recursive loops, *args in calls, unknown
// filters or tests, ...) throw FormatError naming the construct and the template line. As in
// jinja2 3.x, an unknown filter or test directly inside an if statement or a conditional
// expression is accepted and fails only if evaluated (RenderError "No filter named 'x' found.").
#pragma once

#include <string_view>

#include "tokenizer/jinja/ast.h"

namespace insitu::jinja {

StmtList parse_template(std::string_view source);

}  // namespace insitu::jinja
