#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace insitu::jinja {

// ---- UTF-8 ---------------------------------------------------------------------------------

std::vector<char32_t> decode_utf8(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(c);
      ++i;
      continue;
    }
    int len = 1;
    char32_t cp = c;
    if (c >= 0xF0 && c < 0xF8) { len = 4; cp = c & 0x07; }
    else if (c >= 0xE0) { len = c < 0xF0 ? 3 : 1; cp = len == 3 ? (c & 0x0F) : c; }
    else if (c >= 0xC0) { len = 2; cp = c & 0x1F; }
    if (len > 1 && i + len <= s.size()) {
      bool ok = true;
      for (int k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80) { ok = false; break; }
        cp = (cp << 6) | (cc & 0x3F);
      }
      if (ok) { out.push_back(cp); i += len; continue; }
    }
    // Invalid byte: keep it as one "code point" so that round trips preserve the bytes.
    out.push_back(0x110000 + c);
    ++i;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp >= 0x110000) { out.push_back(static_cast<char>(cp - 0x110000)); return; }
  if (cp < 0x80) { out.push_back(static_cast<char>(cp)); return; }
  if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
  }
  out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
}

std::string encode_utf8(const std::vector<char32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) append_utf8(out, cps[i]);
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool is_py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

// ---- Budgets -------------------------------------------------------------------------------

void limit_exceeded(const std::string& budget, uint64_t limit, const std::string& what, uint64_t got) {
  std::string msg = "template budget exceeded: " + budget + " limit " + std::to_string(limit);
  if (!what.empty()) msg += " (" + what + (got != 0 ? ": " + std::to_string(got) : std::string()) + ")";
  throw LimitError(msg);
}

namespace {
thread_local int t_nesting = 0;
}  // namespace

NestingGuard::NestingGuard(const char* what) {
  if (t_nesting >= kMaxNesting) limit_exceeded("value nesting (levels)", kMaxNesting, what);
  ++t_nesting;
}

NestingGuard::~NestingGuard() { --t_nesting; }

// ---- Iterative destruction ------------------------------------------------------------------

namespace {

// Containers whose last reference is being dropped hand their items to the outermost destructor
// on this thread, which destroys them one by one: a chain nested N deep costs O(1) stack, not O(N).
thread_local std::vector<Value>* t_graveyard = nullptr;

bool holds_container(const Value& v) {
  return v.is_list() || v.is_dict() || v.is_namespace() || v.is_callable();
}

template <typename MoveOut>
void release_items(MoveOut move_out) {
  if (t_graveyard != nullptr) {
    move_out(*t_graveyard);
    return;
  }
  std::vector<Value> graveyard;
  t_graveyard = &graveyard;
  move_out(graveyard);
  while (!graveyard.empty()) {
    Value last = std::move(graveyard.back());
    graveyard.pop_back();
  }  // `last` dies here and may append its own items
  t_graveyard = nullptr;
}

}  // namespace

ListData::~ListData() {
  release_items([this](std::vector<Value>& g) {
    for (auto& v : items) {
      if (holds_container(v)) g.push_back(std::move(v));
    }
  });
}

DictData::~DictData() {
  release_items([this](std::vector<Value>& g) {
    for (auto& [k, v] : items) {
      if (holds_container(k)) g.push_back(std::move(k));
      if (holds_container(v)) g.push_back(std::move(v));
    }
  });
}

// ---- DictData ------------------------------------------------------------------------------

const Value* DictData::find(const Value& key) const {
  charge_work(items.size());
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

const Value* DictData::find_str(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k.is_string() && k.str() == key) return &v;
  }
  return nullptr;
}

void DictData::set(const Value& key, Value value) {
  charge_work(items.size());
  for (auto& [k, v] : items) {
    if (k == key) { v = std::move(value); return; }
  }
  items.emplace_back(key, std::move(value));
}

// ---- Value ---------------------------------------------------------------------------------

Value Value::undefined(std::string message) {
  Value v;
  v.s_ = std::move(message);
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

Value::Value(bool b) : kind_(Kind::kBool), b_(b) {}
Value::Value(int64_t i) : kind_(Kind::kInt), i_(i) {}
Value::Value(double f) : kind_(Kind::kFloat), f_(f) {}
Value::Value(std::string s) : kind_(Kind::kString), s_(std::move(s)) {}

Value Value::list(std::vector<Value> items) {
  Value v;
  v.kind_ = Kind::kList;
  v.list_ = std::make_shared<ListData>();
  v.list_->items = std::move(items);
  return v;
}

Value Value::tuple(std::vector<Value> items) {
  Value v = list(std::move(items));
  v.list_->tuple = true;
  return v;
}

Value Value::dict() {
  Value v;
  v.kind_ = Kind::kDict;
  v.dict_ = std::make_shared<DictData>();
  return v;
}

Value Value::namespace_obj() {
  Value v = dict();
  v.kind_ = Kind::kNamespace;
  return v;
}

Value Value::callable(std::string name, NativeFn fn, bool is_macro) {
  Value v;
  v.kind_ = Kind::kCallable;
  v.fn_ = std::make_shared<Callable>(Callable{std::move(name), is_macro, std::move(fn)});
  return v;
}

double Value::as_double() const {
  switch (kind_) {
    case Kind::kFloat: return f_;
    case Kind::kInt: return static_cast<double>(i_);
    case Kind::kBool: return b_ ? 1.0 : 0.0;
    default: return 0.0;
  }
}

void Value::fail_undefined() const {
  throw RenderError(s_.empty() ? std::string("value is undefined") : s_);
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return b_;
    case Kind::kInt: return i_ != 0;
    case Kind::kFloat: return f_ != 0.0;
    case Kind::kString: return !s_.empty();
    case Kind::kList: return !list_->items.empty();
    case Kind::kDict: return !dict_->items.empty();
    case Kind::kNamespace:
    case Kind::kCallable: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kList: return list_->tuple ? "tuple" : "list";
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "Namespace";
    case Kind::kCallable: return fn_->is_macro ? "Macro" : "function";
  }
  return "object";
}

std::string float_repr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f < 0 ? "-inf" : "inf";
  if (f == 0.0) return std::signbit(f) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: fixed for 1e-4 <= |f| < 1e16.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  const size_t epos = sci.find('e');
  std::string digits = sci.substr(0, epos);
  const int exp = std::atoi(sci.c_str() + epos + 1);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  std::string out = neg ? "-" : "";
  if (exp >= -5 + 1 && exp < 16) {
    if (exp >= 0) {
      if (static_cast<int>(digits.size()) <= exp + 1) {
        out += digits + std::string(exp + 1 - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
      }
    } else {
      out += "0." + std::string(-exp - 1, '0') + digits;
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof(e), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += e;
  }
  return out;
}

static bool py_printable(char32_t c) {
  if (c < 0x20 || c == 0x7F) return false;
  if (c >= 0x80 && c <= 0xA0) return false;
  if (c == 0xAD || c == 0x1680 || c == 0x3000 || c == 0xFEFF) return false;
  if ((c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F))
    return false;
  if ((c >= 0xD800 && c <= 0xF8FF) || (c >= 0xFFF9 && c <= 0xFFFB) || c >= 0xE0000) return false;
  return true;
}

std::string string_repr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : decode_utf8(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c >= 0x110000) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c - 0x110000));
      out += buf;
    } else if (!py_printable(c)) {
      char buf[16];
      if (c < 0x100) std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
      else if (c < 0x10000) std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      else std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(c));
      out += buf;
    } else {
      append_utf8(out, c);
    }
  }
  out.push_back(quote);
  return out;
}

std::string Value::repr() const {
  // Values built at run time can nest arbitrarily (a namespace list wrapped in itself in a loop);
  // bound the recursion instead of exhausting the stack.
  const NestingGuard guard("printing a value");
  switch (kind_) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kString: return string_repr(s_);
    case Kind::kList: {
      charge_work(list_->items.size());
      std::string out = list_->tuple ? "(" : "[";
      for (size_t i = 0; i < list_->items.size(); ++i) {
        if (i) out += ", ";
        out += list_->items[i].repr();
        check_string_size(out.size(), "printed list");
      }
      if (list_->tuple && list_->items.size() == 1) out += ",";
      out += list_->tuple ? ")" : "]";
      return out;
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      charge_work(dict_->items.size());
      std::string out = kind_ == Kind::kNamespace ? "<Namespace {" : "{";
      for (size_t i = 0; i < dict_->items.size(); ++i) {
        if (i) out += ", ";
        out += dict_->items[i].first.repr() + ": " + dict_->items[i].second.repr();
        check_string_size(out.size(), "printed dict");
      }
      out += kind_ == Kind::kNamespace ? "}>" : "}";
      return out;
    }
    default: return to_str();
  }
}

std::string Value::to_str() const {
  switch (kind_) {
    case Kind::kUndefined: return "";
    case Kind::kNone: return "None";
    case Kind::kBool: return b_ ? "True" : "False";
    case Kind::kInt: return std::to_string(i_);
    case Kind::kFloat: return float_repr(f_);
    case Kind::kString: return s_;
    case Kind::kCallable:
      return fn_->is_macro ? "<Macro '" + fn_->name + "'>" : "<built-in function " + fn_->name + ">";
    default: return repr();
  }
}

bool Value::same_object(const Value& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kList: return list_ == other.list_;
    case Kind::kDict:
    case Kind::kNamespace: return dict_ == other.dict_;
    case Kind::kCallable: return fn_ == other.fn_;
    default: return *this == other;
  }
}

bool Value::operator==(const Value& o) const {
  if (is_number() && o.is_number()) {
    if (kind_ == Kind::kFloat || o.kind_ == Kind::kFloat) return as_double() == o.as_double();
    return as_int() == o.as_int();
  }
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return true;
    case Kind::kString: return s_ == o.s_;
    case Kind::kList: {
      if (list_ == o.list_) return true;
      const NestingGuard guard("comparing values");
      charge_work(list_->items.size());
      if (list_->tuple != o.list_->tuple || list_->items.size() != o.list_->items.size()) return false;
      for (size_t i = 0; i < list_->items.size(); ++i) {
        if (list_->items[i] != o.list_->items[i]) return false;
      }
      return true;
    }
    case Kind::kDict: {
      if (dict_ == o.dict_) return true;
      if (dict_->items.size() != o.dict_->items.size()) return false;
      const NestingGuard guard("comparing values");
      for (const auto& [k, v] : dict_->items) {
        const Value* ov = o.dict_->find(k);
        if (ov == nullptr || *ov != v) return false;
      }
      return true;
    }
    default: return same_object(o);
  }
}

bool less_than(const Value& a, const Value& b, const char* op) {
  if (a.is_undefined()) a.fail_undefined();
  if (b.is_undefined()) b.fail_undefined();
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const NestingGuard guard("comparing values");
    charge_work(std::min(a.items().size(), b.items().size()));
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (x[i] != y[i]) return less_than(x[i], y[i], op);
    }
    return x.size() < y.size();
  }
  throw RenderError(std::string("'") + op + "' not supported between instances of '" +
                    a.type_name() + "' and '" + b.type_name() + "'");
}

}  // namespace insitu::jinja
