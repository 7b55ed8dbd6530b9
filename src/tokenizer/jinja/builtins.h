// jinja2's built-in filters, tests, global functions and operators, plus the Python methods of
// str/list/dict that chat templates call (as jinja2's ImmutableSandboxedEnvironment allows them:
// methods that mutate lists or dicts resolve to an undefined that raises "... is unsafe" when used).
//
// Failures throw RenderError with jinja2's (Python's) message where templates are known to rely on
// it, e.g. "'dict object' has no attribute 'x'" or "list object has no element 3".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace insitu::jinja {

bool has_filter(std::string_view name);
bool has_test(std::string_view name);

Value apply_filter(Interpreter& interp, const std::string& name, const Value& input, CallArgs& args);
bool apply_test(Interpreter& interp, const std::string& name, const Value& input, CallArgs& args);

// environment.getattr / getitem of jinja2's sandbox: Python attribute first (methods), then item
// (getattr), or item first then attribute (getitem). Missing -> an undefined with jinja2's message.
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Python binary operators (+ - * / // % ** ~) and comparisons (== != < <= > >= in notin).
Value binary_op(const std::string& op, const Value& a, const Value& b);
bool compare_op(const std::string& op, const Value& a, const Value& b);

// Items of an iterable as Python iterates them (dict -> keys, str -> characters, undefined ->
// nothing); RenderError for non-iterables.
std::vector<Value> iterate(const Value& v);

// json.dumps(v, ensure_ascii=..., indent=indent, separators=..., sort_keys=...), as Hugging
// Face's tojson filter calls it. indent < 0 means None.
std::string to_json(const Value& v, int indent, const std::string& item_sep, const std::string& key_sep,
                    bool sort_keys, bool ensure_ascii);

// Global functions: range, dict, namespace, and Hugging Face's raise_exception, strftime_now.
Value make_global(std::string_view name);

}  // namespace insitu::jinja
