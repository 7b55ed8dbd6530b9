// Operators, attribute/item access, str/list/dict methods, tojson and global functions.
// Behaviour follows CPython 3.11 and jinja2 3.1's sandbox.py / runtime.py.
#include "tokenizer/jinja/builtins.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/text.h"

namespace insitu::jinja {
namespace {

// jinja2's object_type_repr, used in undefined messages.
std::string object_type_repr(const Value& v) {
  if (v.is_none()) return "None";
  if (v.is_namespace()) return "jinja2.utils.Namespace object";
  if (v.is_callable()) return v.fn().is_macro ? "jinja2.runtime.Macro object" : "builtin_function_or_method object";
  return v.type_name() + " object";
}

Value missing_attr(const Value& obj, const std::string& name) {
  return Value::undefined("'" + object_type_repr(obj) + "' has no attribute " + string_repr(name));
}

Value missing_element(const Value& obj, const Value& key) {
  return Value::undefined(object_type_repr(obj) + " has no element " + key.repr());
}

Value unsafe(const Value& obj, const std::string& name) {
  return Value::undefined("access to attribute '" + name + "' of '" + obj.type_name() + "' object is unsafe.");
}

const Value* arg(CallArgs& a, size_t i, const char* name) {
  if (i < a.positional.size()) return &a.positional[i];
  for (auto& [k, v] : a.keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::optional<std::string> opt_str(const Value* v) {
  if (v == nullptr || v->is_none()) return std::nullopt;
  if (!v->is_string()) throw RenderError("expected a string argument, got '" + v->type_name() + "'");
  return v->str();
}

int64_t int_arg(const Value* v, int64_t def) {
  if (v == nullptr || v->is_none()) return def;
  if (!v->is_int() && !v->is_bool()) throw RenderError("'" + v->type_name() + "' object cannot be interpreted as an integer");
  return v->as_int();
}

const std::string& need_str(const Value* v, const char* method) {
  if (v == nullptr) throw RenderError(std::string(method) + "() missing required argument");
  if (!v->is_string()) {
    throw RenderError(std::string(method) + "() argument must be str, not " + v->type_name());
  }
  return v->str();
}

Value str_list(const std::vector<std::string>& parts) {
  std::vector<Value> out;
  out.reserve(parts.size());
  for (const auto& p : parts) out.emplace_back(p);
  return Value::list(std::move(out));
}

bool prefix_match(const std::string& s, const Value& p, bool suffix, const char* method) {
  auto one = [&](const std::string& x) {
    if (x.size() > s.size()) return false;
    return suffix ? s.compare(s.size() - x.size(), x.size(), x) == 0 : s.compare(0, x.size(), x) == 0;
  };
  if (p.is_string()) return one(p.str());
  if (p.is_tuple()) {
    for (const auto& x : p.items()) {
      if (!x.is_string()) throw RenderError(std::string("tuple for ") + method + " must only contain str");
      if (one(x.str())) return true;
    }
    return false;
  }
  throw RenderError(std::string(method) + " first arg must be str or a tuple of str, not " + p.type_name());
}

Value string_method(const Value& self, const std::string& name) {
  static const char* kMethods[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith",
                                   "endswith", "upper", "lower", "title", "capitalize", "replace", "find",
                                   "rfind", "index", "count", "join", "isdigit", "isalpha", "isalnum",
                                   "isspace", "islower", "isupper", "casefold", "swapcase"};
  bool known = false;
  for (const char* m : kMethods) known |= name == m;
  if (!known) return missing_attr(self, name);
  const std::string s = self.str();
  return Value::callable(name, [s, name](Interpreter&, CallArgs& a) -> Value {
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      return Value(py_strip(s, opt_str(arg(a, 0, "chars")), name != "rstrip", name != "lstrip"));
    }
    if (name == "split" || name == "rsplit") {
      return str_list(py_split(s, opt_str(arg(a, 0, "sep")), int_arg(arg(a, 1, "maxsplit"), -1), name == "rsplit"));
    }
    if (name == "splitlines") return str_list(py_splitlines(s));
    if (name == "startswith" || name == "endswith") {
      const Value* p = arg(a, 0, "prefix");
      if (p == nullptr) throw RenderError(name + "() takes at least 1 argument (0 given)");
      return Value(prefix_match(s, *p, name == "endswith", name.c_str()));
    }
    if (name == "upper") return Value(py_upper(s));
    if (name == "lower" || name == "casefold") return Value(py_lower(s));
    if (name == "title") return Value(py_title(s));
    if (name == "capitalize") return Value(py_capitalize(s));
    if (name == "swapcase") {
      std::string out;
      for (char32_t c : decode_utf8(s)) {
        std::string one;
        append_utf8(one, c);
        const std::string lo = py_lower(one);
        out += lo != one ? lo : py_upper(one);
      }
      return Value(out);
    }
    if (name == "replace") {
      return Value(py_replace(s, need_str(arg(a, 0, "old"), "replace"), need_str(arg(a, 1, "new"), "replace"),
                              int_arg(arg(a, 2, "count"), -1)));
    }
    if (name == "find" || name == "rfind" || name == "index") {
      const int64_t r = py_find(s, need_str(arg(a, 0, "sub"), name.c_str()), name == "rfind");
      if (name == "index" && r < 0) throw RenderError("substring not found");
      return Value(r);
    }
    if (name == "count") return Value(py_count(s, need_str(arg(a, 0, "sub"), "count")));
    if (name == "join") {
      const Value* it = arg(a, 0, "iterable");
      if (it == nullptr) throw RenderError("join() takes exactly one argument (0 given)");
      std::string out;
      bool first = true;
      for (const auto& x : iterate(*it)) {
        if (!x.is_string()) throw RenderError("sequence item: expected str instance, " + x.type_name() + " found");
        check_string_size(out.size() + s.size() + x.str().size(), "join result");
        if (!first) out += s;
        out += x.str();
        first = false;
      }
      return Value(out);
    }
    // Character-class predicates (false on the empty string, as in Python).
    auto cps = decode_utf8(s);
    if (cps.empty()) return Value(false);
    bool all = true;
    bool any_cased = false;
    for (char32_t c : cps) {
      const bool digit = c >= '0' && c <= '9';
      const bool alpha = c < 0x80 ? std::isalpha(static_cast<int>(c)) != 0 : is_cased_letter(c) || c > 0x2FF;
      std::string one;
      append_utf8(one, c);
      if (name == "isdigit") all &= digit;
      else if (name == "isalpha") all &= alpha;
      else if (name == "isalnum") all &= alpha || digit;
      else if (name == "isspace") all &= is_py_space(c);
      else if (is_cased_letter(c)) {
        any_cased = true;
        if (name == "islower") all &= py_lower(one) == one;
        if (name == "isupper") all &= py_upper(one) == one;
      }
    }
    if (name == "islower" || name == "isupper") return Value(all && any_cased);
    return Value(all);
  });
}

Value list_method(const Value& self, const std::string& name) {
  static const char* kUnsafe[] = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"};
  for (const char* m : kUnsafe) {
    if (name == m) return unsafe(self, name);
  }
  if (name != "index" && name != "count" && name != "copy") return missing_attr(self, name);
  Value list = self;
  return Value::callable(name, [list, name](Interpreter&, CallArgs& a) -> Value {
    charge_work(list.items().size());
    if (name == "copy") return Value::list(list.items());
    const Value* x = arg(a, 0, "value");
    if (x == nullptr) throw RenderError(name + "() takes exactly one argument (0 given)");
    int64_t n = 0;
    for (size_t i = 0; i < list.items().size(); ++i) {
      if (list.items()[i] == *x) {
        if (name == "index") return Value(static_cast<int64_t>(i));
        ++n;
      }
    }
    if (name == "index") throw RenderError(x->repr() + " is not in list");
    return Value(n);
  });
}

Value dict_method(const Value& self, const std::string& name) {
  static const char* kUnsafe[] = {"update", "pop", "popitem", "setdefault", "clear"};
  for (const char* m : kUnsafe) {
    if (name == m) return unsafe(self, name);
  }
  if (name != "get" && name != "items" && name != "keys" && name != "values" && name != "copy") {
    return Value();  // not a method: caller falls back to item lookup
  }
  Value d = self;
  return Value::callable(name, [d, name](Interpreter&, CallArgs& a) -> Value {
    auto& data = d.dict_data();
    charge_work(data.items.size());
    if (name == "get") {
      const Value* k = arg(a, 0, "key");
      if (k == nullptr) throw RenderError("get expected at least 1 argument, got 0");
      const Value* v = data.find(*k);
      if (v != nullptr) return *v;
      const Value* def = arg(a, 1, "default");
      return def ? *def : Value::none();
    }
    std::vector<Value> out;
    for (const auto& [k, v] : data.items) {
      if (name == "items") out.push_back(Value::tuple({k, v}));
      else if (name == "keys") out.push_back(k);
      else if (name == "values") out.push_back(v);
    }
    if (name == "copy") {
      Value c = Value::dict();
      c.dict_data().items = data.items;
      return c;
    }
    return Value::list(std::move(out));
  });
}

int64_t checked(bool overflow, int64_t v) {
  if (overflow) throw RenderError("integer overflow (values beyond 64 bits are not supported)");
  return v;
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t floor_mod(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

[[noreturn]] void bad_operands(const std::string& op, const Value& a, const Value& b) {
  throw RenderError("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
}

// Bytes a list's items occupy, strings included (copying a list copies its strings).
uint64_t shallow_bytes(const Value& list) {
  uint64_t n = mul_sat(list.items().size(), sizeof(Value));
  for (const auto& x : list.items()) {
    if (x.is_string()) n += x.str().size();
  }
  return n;
}

Value repeat(const Value& seq, int64_t n) {
  if (n <= 0) return seq.is_string() ? Value("") : seq.is_tuple() ? Value::tuple({}) : Value::list();
  const auto times = static_cast<uint64_t>(n);
  if (seq.is_string()) {
    check_string_size(mul_sat(seq.str().size(), times), "repeated string");
    std::string out;
    out.reserve(seq.str().size() * times);
    for (uint64_t i = 0; i < times; ++i) out += seq.str();
    return Value(out);
  }
  check_item_count(mul_sat(seq.items().size(), times), "repeated list");
  const uint64_t bytes = mul_sat(shallow_bytes(seq), times);
  if (bytes > kMaxAllocatedBytes) limit_exceeded("allocated bytes", kMaxAllocatedBytes, "repeated list", bytes);
  charge_work(bytes / sizeof(Value));
  std::vector<Value> out;
  out.reserve(seq.items().size() * times);
  for (uint64_t i = 0; i < times; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return seq.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out.push_back('"');
  for (char32_t c : decode_utf8(s)) {
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    char buf[16];
    if (c < 0x20) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else if (c < 0x80 || !ensure_ascii) {
      append_utf8(out, c);
    } else {
      // \uXXXX escapes, UTF-16 surrogate pairs above the BMP, as json.dumps(ensure_ascii=True).
      if (c >= 0x110000) c -= 0x110000;  // an invalid byte kept as-is by decode_utf8
      if (c >= 0x10000) {
        const char32_t u = c - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (u >> 10)),
                      static_cast<unsigned>(0xDC00 + (u & 0x3FF)));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      }
      out += buf;
    }
  }
  out.push_back('"');
}

std::string json_float(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f < 0 ? "-Infinity" : "Infinity";
  return float_repr(f);
}

struct JsonWriter {
  int indent;  // < 0: no newlines
  std::string indent_str;
  std::string item_sep;
  std::string key_sep;
  bool sort_keys;
  bool ensure_ascii;
  std::string out;

  void newline(int level) {
    if (indent_str.empty() && indent < 0) return;
    out.push_back('\n');
    for (int i = 0; i < level; ++i) {
      check_string_size(out.size() + indent_str.size(), "tojson result");
      out += indent_str;
    }
  }

  void write(const Value& v, int level) {
    const NestingGuard guard("tojson");
    check_string_size(out.size(), "tojson result");
    switch (v.kind()) {
      case Value::Kind::kNone: out += "null"; return;
      case Value::Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
      case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
      case Value::Kind::kFloat: out += json_float(v.as_double()); return;
      case Value::Kind::kString: json_string(out, v.str(), ensure_ascii); return;
      case Value::Kind::kList: {
        charge_work(v.items().size());
        if (v.items().empty()) { out += "[]"; return; }
        out.push_back('[');
        for (size_t i = 0; i < v.items().size(); ++i) {
          if (i) out += item_sep;
          newline(level + 1);
          write(v.items()[i], level + 1);
        }
        newline(level);
        out.push_back(']');
        return;
      }
      case Value::Kind::kDict: {
        charge_work(v.dict_data().items.size());
        auto items = v.dict_data().items;
        if (items.empty()) { out += "{}"; return; }
        if (sort_keys) {
          std::stable_sort(items.begin(), items.end(),
                           [](const auto& x, const auto& y) { return less_than(x.first, y.first); });
        }
        out.push_back('{');
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_sep;
          newline(level + 1);
          const Value& k = items[i].first;
          if (k.is_string()) json_string(out, k.str(), ensure_ascii);
          else if (k.is_none()) out += "\"null\"";
          else if (k.is_bool()) out += k.as_bool() ? "\"true\"" : "\"false\"";
          else if (k.is_int()) out += "\"" + std::to_string(k.as_int()) + "\"";
          else if (k.is_float()) out += "\"" + json_float(k.as_double()) + "\"";
          else throw RenderError("keys must be str, int, float, bool or None, not " + k.type_name());
          out += key_sep;
          write(items[i].second, level + 1);
        }
        newline(level);
        out.push_back('}');
        return;
      }
      default:
        throw RenderError("Object of type " + v.type_name() + " is not JSON serializable");
    }
  }
};

}  // namespace

std::string to_json(const Value& v, int indent, const std::string& item_sep, const std::string& key_sep,
                    bool sort_keys, bool ensure_ascii) {
  JsonWriter w{indent, indent >= 0 ? std::string(static_cast<size_t>(indent), ' ') : std::string(), item_sep,
               key_sep, sort_keys, ensure_ascii, {}};
  w.write(v, 0);
  return w.out;
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kList: charge_work(v.items().size()); return v.items();
    case Value::Kind::kDict: {
      charge_work(v.dict_data().items.size());
      std::vector<Value> keys;
      for (const auto& [k, x] : v.dict_data().items) keys.push_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      const size_t n = utf8_length(v.str());
      check_item_count(n, "characters of a string");
      charge_work(n);
      std::vector<Value> out;
      out.reserve(n);
      for (char32_t c : decode_utf8(v.str())) {
        std::string one;
        append_utf8(one, c);
        out.emplace_back(std::move(one));
      }
      return out;
    }
    default: throw RenderError("'" + v.type_name() + "' object is not iterable");
  }
}

Value get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: obj.fail_undefined();
    case Value::Kind::kString: return string_method(obj, name);
    case Value::Kind::kList: return list_method(obj, name);
    case Value::Kind::kDict: {
      Value m = dict_method(obj, name);
      if (!m.is_undefined() || !m.undefined_message().empty()) return m;
      const Value* v = obj.dict_data().find_str(name);
      return v ? *v : missing_attr(obj, name);
    }
    case Value::Kind::kNamespace: {
      const Value* v = obj.dict_data().find_str(name);
      return v ? *v : missing_attr(obj, name);
    }
    default: return missing_attr(obj, name);
  }
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) obj.fail_undefined();
  if (obj.is_list() || obj.is_string()) {
    if (key.is_int() || key.is_bool()) {
      const int64_t n = obj.is_list() ? static_cast<int64_t>(obj.items().size())
                                      : static_cast<int64_t>(utf8_length(obj.str()));
      int64_t i = key.as_int();
      if (i < 0) i += n;
      if (i < 0 || i >= n) return missing_element(obj, key);
      if (obj.is_list()) return obj.items()[static_cast<size_t>(i)];
      auto cps = decode_utf8(obj.str());
      return Value(encode_utf8(cps, static_cast<size_t>(i), static_cast<size_t>(i) + 1));
    }
    if (key.is_string()) return get_attr(obj, key.str());
    return missing_element(obj, key);
  }
  if (obj.is_dict()) {
    const Value* v = obj.dict_data().find(key);
    if (v != nullptr) return *v;
    if (key.is_string()) {
      Value m = dict_method(obj, key.str());
      if (!m.is_undefined() || !m.undefined_message().empty()) return m;
      return missing_attr(obj, key.str());
    }
    return missing_element(obj, key);
  }
  if (key.is_string()) return get_attr(obj, key.str());
  return missing_element(obj, key);
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) obj.fail_undefined();
  if (!obj.is_list() && !obj.is_string()) throw RenderError("'" + obj.type_name() + "' object is not subscriptable");
  for (const Value* v : {&start, &stop, &step}) {
    if (!v->is_none() && !v->is_int() && !v->is_bool()) {
      if (v->is_undefined()) v->fail_undefined();
      throw RenderError("slice indices must be integers or None or have an __index__ method");
    }
  }
  std::vector<char32_t> cps;
  if (obj.is_string()) cps = decode_utf8(obj.str());
  const int64_t n = obj.is_list() ? static_cast<int64_t>(obj.items().size()) : static_cast<int64_t>(cps.size());
  const int64_t st = step.is_none() ? 1 : step.as_int();
  if (st == 0) throw RenderError("slice step cannot be zero");
  // CPython's PySlice_AdjustIndices.
  auto adjust = [&](const Value& v, int64_t def, bool is_stop) {
    if (v.is_none()) return def;
    int64_t i = v.as_int();
    if (i < 0) {
      i += n;
      if (i < 0) i = st < 0 ? -1 : 0;
    } else if (i >= n) {
      i = st < 0 ? n - 1 : n;
    }
    (void)is_stop;
    return i;
  };
  const int64_t b = adjust(start, st < 0 ? n - 1 : 0, false);
  const int64_t e = adjust(stop, st < 0 ? -1 : n, true);
  // Indices b, b + st, ... up to e, stepping without overflow (st may be near INT64_MIN/MAX).
  std::vector<int64_t> idx;
  for (int64_t i = b; st > 0 ? i < e : i > e;) {
    idx.push_back(i);
    if (__builtin_add_overflow(i, st, &i)) break;
  }
  if (obj.is_string()) {
    std::string out;
    for (int64_t i : idx) append_utf8(out, cps[static_cast<size_t>(i)]);
    return Value(out);
  }
  std::vector<Value> out;
  for (int64_t i : idx) out.push_back(obj.items()[static_cast<size_t>(i)]);
  return obj.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string l = a.to_str();
    const std::string r = b.to_str();
    check_string_size(l.size() + r.size(), "'~' result");
    return Value(l + r);
  }
  if (a.is_undefined()) a.fail_undefined();
  if (b.is_undefined()) b.fail_undefined();
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && !a.is_float() && !b.is_float();
  if (op == "+") {
    if (ints) {
      int64_t r = 0;
      const bool overflow = __builtin_add_overflow(a.as_int(), b.as_int(), &r);
      return Value(checked(overflow, r));
    }
    if (nums) return Value(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) {
      check_string_size(a.str().size() + b.str().size(), "'+' result");
      return Value(a.str() + b.str());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      check_item_count(a.items().size() + b.items().size(), "'+' result");
      charge_work(a.items().size() + b.items().size());
      std::vector<Value> out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      return a.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
    }
    if (a.is_string() || a.is_list()) {
      throw RenderError("can only concatenate " + a.type_name() + " (not \"" + b.type_name() + "\") to " + a.type_name());
    }
    bad_operands(op, a, b);
  }
  if (op == "-") {
    if (ints) {
      int64_t r = 0;
      const bool overflow = __builtin_sub_overflow(a.as_int(), b.as_int(), &r);
      return Value(checked(overflow, r));
    }
    if (nums) return Value(a.as_double() - b.as_double());
    bad_operands(op, a, b);
  }
  if (op == "*") {
    if (ints) {
      int64_t r = 0;
      const bool overflow = __builtin_mul_overflow(a.as_int(), b.as_int(), &r);
      return Value(checked(overflow, r));
    }
    if (nums) return Value(a.as_double() * b.as_double());
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(b, a.as_int());
    if (a.is_string() || a.is_list() || b.is_string() || b.is_list()) {
      throw RenderError("can't multiply sequence by non-int of type '" + (a.is_number() ? a : b).type_name() + "'");
    }
    bad_operands(op, a, b);
  }
  if (op == "/") {
    if (!nums) bad_operands(op, a, b);
    if (b.as_double() == 0.0) throw RenderError("division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (a.is_string() && op == "%") throw RenderError("unsupported construct: printf-style '%' string formatting");
    if (!nums) bad_operands(op, a, b);
    if (ints) {
      if (b.as_int() == 0) throw RenderError("integer division or modulo by zero");
      if (a.as_int() == std::numeric_limits<int64_t>::min() && b.as_int() == -1) checked(true, 0);
      return Value(op == "//" ? floor_div(a.as_int(), b.as_int()) : floor_mod(a.as_int(), b.as_int()));
    }
    const double x = a.as_double();
    const double y = b.as_double();
    if (y == 0.0) throw RenderError(op == "//" ? "float floor division by zero" : "float modulo");
    double mod = std::fmod(x, y);
    if (mod != 0.0 && ((mod < 0) != (y < 0))) mod += y;
    if (op == "%") return Value(mod == 0.0 ? std::copysign(0.0, y) : mod);
    return Value(std::floor((x - mod) / y + 0.0));
  }
  if (op == "**") {
    if (!nums) bad_operands("** or pow()", a, b);
    if (ints && b.as_int() >= 0) {
      // Square-and-multiply; the last squaring is skipped so it cannot overflow spuriously.
      int64_t r = 1;
      int64_t base = a.as_int();
      for (int64_t e = b.as_int(); e > 0; e >>= 1) {
        if ((e & 1) != 0 && __builtin_mul_overflow(r, base, &r)) checked(true, 0);
        if (e > 1 && __builtin_mul_overflow(base, base, &base)) checked(true, 0);
      }
      return Value(r);
    }
    if (a.as_double() == 0.0 && b.as_double() < 0) throw RenderError("0.0 cannot be raised to a negative power");
    return Value(std::pow(a.as_double(), b.as_double()));
  }
  throw RenderError("unknown operator '" + op + "'");
}

bool compare_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return a == b;
  if (op == "!=") return a != b;
  if (op == "<") return less_than(a, b, "<");
  if (op == ">") return less_than(b, a, ">");
  if (op == "<=") return a == b || less_than(a, b, "<=");
  if (op == ">=") return a == b || less_than(b, a, ">=");
  if (op == "in" || op == "notin") {
    bool found = false;
    if (b.is_string()) {
      if (a.is_undefined()) a.fail_undefined();
      if (!a.is_string()) throw RenderError("'in <string>' requires string as left operand, not " + a.type_name());
      found = b.str().find(a.str()) != std::string::npos;
    } else if (b.is_dict()) {
      found = b.dict_data().find(a) != nullptr;
    } else if (b.is_list()) {
      charge_work(b.items().size());
      for (const auto& x : b.items()) found = found || x == a;
    } else if (!b.is_undefined()) {
      throw RenderError("argument of type '" + b.type_name() + "' is not iterable");
    }
    return op == "in" ? found : !found;
  }
  throw RenderError("unknown comparison '" + op + "'");
}

Value make_global(std::string_view name) {
  if (name == "range") {
    return Value::callable("range", [](Interpreter&, CallArgs& a) -> Value {
      if (!a.keyword.empty()) throw RenderError("range() takes no keyword arguments");
      if (a.positional.empty() || a.positional.size() > 3) {
        throw RenderError("range expected at most 3 arguments, got " + std::to_string(a.positional.size()));
      }
      for (const auto& v : a.positional) {
        if (v.is_undefined()) v.fail_undefined();
        if (!v.is_int() && !v.is_bool()) throw RenderError("'" + v.type_name() + "' object cannot be interpreted as an integer");
      }
      int64_t start = 0;
      int64_t stop = 0;
      int64_t step = 1;
      if (a.positional.size() == 1) {
        stop = a.positional[0].as_int();
      } else {
        start = a.positional[0].as_int();
        stop = a.positional[1].as_int();
        if (a.positional.size() == 3) step = a.positional[2].as_int();
      }
      if (step == 0) throw RenderError("range() arg 3 must not be zero");
      // jinja2's sandbox refuses ranges over MAX_RANGE items. The count is exact: the distance
      // and the step are taken as unsigned 64-bit magnitudes, which cannot overflow.
      uint64_t count = 0;
      if (step > 0 ? start < stop : start > stop) {
        const uint64_t span = step > 0 ? static_cast<uint64_t>(stop) - static_cast<uint64_t>(start)
                                       : static_cast<uint64_t>(start) - static_cast<uint64_t>(stop);
        const uint64_t stride = step > 0 ? static_cast<uint64_t>(step) : uint64_t{0} - static_cast<uint64_t>(step);
        count = (span - 1) / stride + 1;
      }
      if (count > 100000) {
        throw RenderError("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
      }
      std::vector<Value> out;
      out.reserve(count);
      // start + k * step stays between start and stop for k < count: no overflow.
      for (uint64_t k = 0; k < count; ++k) {
        out.emplace_back(static_cast<int64_t>(static_cast<uint64_t>(start) + k * static_cast<uint64_t>(step)));
      }
      charge_work(count);
      return Value::list(std::move(out));
    });
  }
  if (name == "dict" || name == "namespace") {
    const bool ns = name == "namespace";
    return Value::callable(std::string(name), [ns](Interpreter& in, CallArgs& a) -> Value {
      Value d = ns ? Value::namespace_obj() : Value::dict();
      if (ns) in.adopt_namespace(d);
      for (const auto& p : a.positional) {
        if (p.is_dict()) {
          for (const auto& [k, v] : p.dict_data().items) d.dict_data().set(k, v);
        } else {
          for (const auto& item : iterate(p)) {
            auto kv = iterate(item);
            if (kv.size() != 2) throw RenderError("dictionary update sequence element has wrong length");
            d.dict_data().set(kv[0], kv[1]);
          }
        }
      }
      for (const auto& [k, v] : a.keyword) d.dict_data().set(Value(k), v);
      return d;
    });
  }
  // Hugging Face's chat-template globals (transformers' _compile_jinja_template).
  if (name == "raise_exception") {
    return Value::callable("raise_exception", [](Interpreter&, CallArgs& a) -> Value {
      const Value* m = arg(a, 0, "message");
      if (m == nullptr) throw RenderError("raise_exception() missing 1 required positional argument: 'message'");
      throw RenderError(m->to_str());
    });
  }
  if (name == "strftime_now") {
    return Value::callable("strftime_now", [](Interpreter&, CallArgs& a) -> Value {
      const Value* f = arg(a, 0, "format");
      if (f == nullptr || !f->is_string()) throw RenderError("strftime_now() needs a format string");
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[512];
      const size_t n = std::strftime(buf, sizeof(buf), f->str().c_str(), &tm);
      return Value(std::string(buf, n));
    });
  }
  return Value();
}

}  // namespace insitu::jinja
