// Values of the Jinja2 interpreter, modelled on the Python objects jinja2 works with.
//
// A Value is cheap to copy: strings are held by value, lists, dicts, namespaces and callables by
// shared pointer, so (as in Python) two Values can alias one list and see each other's changes.
// Printing (str/repr), equality, ordering and truthiness follow Python 3 so that rendered text is
// byte-identical to jinja2's. Integers are 64-bit (Python's are unbounded: overflow throws).
// Strings are UTF-8; length, indexing and slicing count code points as Python does.
//
// Not thread-safe for mutation; a rendering owns every Value it creates.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "insitu/error.h"
#include "tokenizer/jinja/limits.h"

namespace insitu::jinja {

class Value;
class Interpreter;

// Arguments of a call: positional then keyword, in source order.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

using NativeFn = std::function<Value(Interpreter&, CallArgs&)>;

struct Callable {
  std::string name;   // for messages and printing
  bool is_macro = false;
  NativeFn fn;
};

// Lists and dicts release their items iteratively (value.cc): destroying a value nested 500,000
// deep takes no more stack than destroying a flat one.
struct ListData {
  ListData() = default;
  ListData(const ListData&) = delete;
  ListData& operator=(const ListData&) = delete;
  ~ListData();
  std::vector<Value> items;
  bool tuple = false;  // printed as (a, b) and never equal to a list
};

// Insertion-ordered mapping (Python dict order). Keys compare with Python equality.
struct DictData {
  DictData() = default;
  DictData(const DictData&) = delete;
  DictData& operator=(const DictData&) = delete;
  ~DictData();
  std::vector<std::pair<Value, Value>> items;
  const Value* find(const Value& key) const;
  const Value* find_str(std::string_view key) const;
  void set(const Value& key, Value value);
};

// Deepest nesting of lists/dicts that printing, JSON conversion, comparison and parsing accept
// (deeper values throw LimitError).
inline constexpr int kMaxNesting = 512;

// Counts one level of value nesting for a recursive walk (repr, ==, <, tojson) on this thread;
// throws LimitError beyond kMaxNesting.
class NestingGuard {
 public:
  explicit NestingGuard(const char* what);
  ~NestingGuard();
  NestingGuard(const NestingGuard&) = delete;
  NestingGuard& operator=(const NestingGuard&) = delete;
};

// A runtime error in a template (jinja2's UndefinedError, TypeError, SecurityError, ...).
class RenderError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable
  };

  Value() = default;  // undefined with the generic message
  static Value undefined(std::string message);
  static Value none();
  Value(bool b);
  Value(int64_t i);
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(double f);
  Value(std::string s);
  Value(std::string_view s) : Value(std::string(s)) {}
  Value(const char* s) : Value(std::string(s)) {}
  static Value list(std::vector<Value> items = {});
  static Value tuple(std::vector<Value> items);
  static Value dict();
  static Value namespace_obj();
  static Value callable(std::string name, NativeFn fn, bool is_macro = false);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }  // list or tuple
  bool is_tuple() const { return kind_ == Kind::kList && list_->tuple; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }  // bool or int
  double as_double() const;  // any number
  const std::string& str() const { return s_; }
  std::vector<Value>& items() const { return list_->items; }  // list or tuple
  DictData& dict_data() const { return *dict_; }              // dict or namespace
  const Callable& fn() const { return *fn_; }
  // The error jinja2 would raise on using this undefined value.
  const std::string& undefined_message() const { return s_; }
  [[noreturn]] void fail_undefined() const;

  bool truthy() const;
  std::string to_str() const;   // Python str()
  std::string repr() const;     // Python repr()
  std::string type_name() const;  // Python type name: 'str', 'int', 'NoneType', ...
  bool operator==(const Value& other) const;
  bool operator!=(const Value& other) const { return !(*this == other); }
  bool same_object(const Value& other) const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0.0;
  std::string s_;  // string, or the undefined's message
  std::shared_ptr<ListData> list_;
  std::shared_ptr<DictData> dict_;
  std::shared_ptr<Callable> fn_;
};

// Python float repr ("1.0", "1e+16", "0.0001", "inf").
std::string float_repr(double f);
// Python repr of a str.
std::string string_repr(std::string_view s);
// Python ordering (<): numbers with numbers, strings, lists/tuples lexicographically; otherwise a
// RenderError naming both types.
bool less_than(const Value& a, const Value& b, const char* op = "<");

// UTF-8 helpers: code points of a string and back.
std::vector<char32_t> decode_utf8(std::string_view s);
void append_utf8(std::string& out, char32_t cp);
std::string encode_utf8(const std::vector<char32_t>& cps, size_t begin, size_t end);
size_t utf8_length(std::string_view s);
bool is_py_space(char32_t c);  // str.isspace()

}  // namespace insitu::jinja
