// jinja2's built-in filters and tests (jinja2 3.1 filters.py / tests.py semantics), plus Hugging
// Face's tojson override: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False) without HTML escaping.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/text.h"

namespace insitu::jinja {
namespace {

const char* const kFilters[] = {
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "first",
    "float", "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min",
    "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort",
    "string", "sum", "title", "tojson", "trim", "unique", "upper", "wordcount"};

const char* const kTests[] = {
    "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "float",
    "ge", "greaterthan", "gt", "in", "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping",
    "ne", "none", "number", "odd", "sameas", "sequence", "string", "true", "undefined", "upper", "filter",
    "test"};

const Value* arg(CallArgs& a, size_t i, const char* name) {
  if (i < a.positional.size()) return &a.positional[i];
  for (auto& [k, v] : a.keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

bool bool_arg(CallArgs& a, size_t i, const char* name, bool def) {
  const Value* v = arg(a, i, name);
  return v ? v->truthy() : def;
}

int64_t int_arg(CallArgs& a, size_t i, const char* name, int64_t def) {
  const Value* v = arg(a, i, name);
  if (v == nullptr || v->is_none()) return def;
  if (v->is_undefined()) v->fail_undefined();
  if (!v->is_int() && !v->is_bool()) {
    throw RenderError("'" + v->type_name() + "' object cannot be interpreted as an integer");
  }
  return v->as_int();
}

void need_number(const Value& v, const char* what) {
  if (v.is_undefined()) v.fail_undefined();
  if (!v.is_number()) throw RenderError(std::string(what) + ": expected a number, got '" + v.type_name() + "'");
}

// jinja2's make_attrgetter: dotted path, each part through getitem (integers as indexes).
Value attr_path(const Value& item, const std::string& path, const Value* def) {
  Value cur = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    int64_t index = 0;
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit) &&
                         std::from_chars(part.data(), part.data() + part.size(), index).ec == std::errc();
    cur = get_item(cur, numeric ? Value(index) : Value(part));  // beyond int64: no such element anyway
    if (cur.is_undefined() && def != nullptr) return *def;
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

// Sort/compare key for filters with case_sensitive=False: lower-cased strings.
Value fold(const Value& v, bool case_sensitive) {
  return (!case_sensitive && v.is_string()) ? Value(py_lower(v.str())) : v;
}

bool py_less(const Value& a, const Value& b) { return less_than(a, b); }

// Comparisons of a sort of n items, for the step budget.
uint64_t sort_work(size_t n) {
  uint64_t log = 1;
  while ((size_t{1} << log) < n && log < 63) ++log;
  return mul_sat(n, log);
}

// select/reject/selectattr/rejectattr: the test and its arguments start at `first`.
std::vector<Value> select_items(Interpreter& in, const Value& input, CallArgs& a, bool by_attr, bool keep) {
  std::string attr;
  size_t first = 0;
  if (by_attr) {
    if (a.positional.empty()) throw RenderError("selectattr/rejectattr need an attribute name");
    attr = a.positional[0].to_str();
    first = 1;
  }
  std::string test;
  CallArgs test_args;
  if (a.positional.size() > first) {
    if (!a.positional[first].is_string()) throw RenderError("select: the test name must be a string");
    test = a.positional[first].str();
    if (!has_test(test)) throw RenderError("No test named '" + test + "'.");
    test_args.positional.assign(a.positional.begin() + static_cast<long>(first) + 1, a.positional.end());
    test_args.keyword = a.keyword;
  }
  std::vector<Value> out;
  for (const auto& item : iterate(input)) {
    const Value subject = by_attr ? attr_path(item, attr, nullptr) : item;
    bool ok;
    if (test.empty()) {
      ok = subject.truthy();
    } else {
      CallArgs copy = test_args;
      ok = apply_test(in, test, subject, copy);
    }
    if (ok == keep) out.push_back(item);
  }
  return out;
}

std::string indent_text(const std::string& s, const Value* width, bool first, bool blank) {
  std::string ind;
  if (width != nullptr && width->is_string()) {
    ind = width->str();
  } else {
    const int64_t n = width ? std::max<int64_t>(0, width->as_int()) : 4;
    check_string_size(static_cast<uint64_t>(n), "indent width");
    ind = std::string(static_cast<size_t>(n), ' ');
  }
  auto lines = py_splitlines(s + "\n");
  std::string rv;
  auto add = [&rv](const std::string& piece) {
    check_string_size(rv.size() + piece.size(), "indent result");
    rv += piece;
  };
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) {
        add("\n");
        add(ind);
      }
      add(lines[i]);
    }
  } else {
    rv = lines.empty() ? std::string() : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      add("\n");
      if (!lines[i].empty()) add(ind);
      add(lines[i]);
    }
  }
  if (first) {
    check_string_size(rv.size() + ind.size(), "indent result");
    rv = ind + rv;
  }
  return rv;
}

Value round_value(const Value& v, int64_t precision, const std::string& method) {
  need_number(v, "round");
  if (method != "common" && method != "floor" && method != "ceil") {
    throw RenderError("method must be 'common', 'ceil' or 'floor'");
  }
  if (method == "common") {
    if (!v.is_float()) return Value(v.as_int());  // round(int, n) keeps the int
    const double x = v.as_double();
    if (!std::isfinite(x)) return v;
    if (precision >= 0) {
      // printf rounds the exact binary value half-to-even, as CPython's round() does.
      char buf[512];
      std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(std::min<int64_t>(precision, 300)), x);
      return Value(std::strtod(buf, nullptr));
    }
    const double p = std::pow(10.0, -static_cast<double>(precision));  // no int64 negation
    return Value(std::nearbyint(x / p) * p);
  }
  const double p = std::pow(10.0, static_cast<double>(precision));
  const double x = v.as_double() * p;
  return Value((method == "floor" ? std::floor(x) : std::ceil(x)) / p);
}

// int(f) for a finite float; beyond 64 bits (where the cast is undefined) an error, as Python's
// int is unbounded and we cannot print its digits.
int64_t float_to_int(double f) {
  const double t = std::trunc(f);
  if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0)) {
    throw RenderError("integer overflow (values beyond 64 bits are not supported)");
  }
  return static_cast<int64_t>(t);
}

Value to_int(const Value& v, const Value& def) {
  if (v.is_undefined()) v.fail_undefined();
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.is_float()) {
    const double f = v.as_double();
    if (!std::isfinite(f)) return def;
    return Value(float_to_int(f));
  }
  if (v.is_string()) {
    if (auto i = parse_py_int(v.str())) return Value(*i);
    if (auto f = parse_py_float(v.str()); f && std::isfinite(*f)) return Value(float_to_int(*f));
  }
  return def;
}

std::string sep_arg(const Value* seps, size_t i, const std::string& def) {
  if (seps == nullptr || seps->is_none()) return def;
  if (!seps->is_list() || seps->items().size() != 2 || !seps->items()[i].is_string()) {
    throw RenderError("tojson: separators must be a pair of strings");
  }
  return seps->items()[i].str();
}

// Parameter names of each filter (after the input), to reject unknown keywords and surplus
// positional arguments as Python would. Filters that forward extra arguments (map, select, ...)
// are not listed.
struct Signature {
  const char* filter;
  std::vector<const char*> params;
};

const std::vector<Signature>& signatures() {
  static const std::vector<Signature> kSigs = {
      {"abs", {}}, {"attr", {"name"}}, {"batch", {"linecount", "fill_with"}}, {"capitalize", {}},
      {"center", {"width"}}, {"count", {}}, {"length", {}}, {"default", {"default_value", "boolean"}},
      {"d", {"default_value", "boolean"}}, {"dictsort", {"case_sensitive", "by", "reverse"}}, {"escape", {}},
      {"e", {}}, {"first", {}}, {"float", {"default"}}, {"indent", {"width", "first", "blank"}},
      {"int", {"default", "base"}}, {"items", {}}, {"join", {"d", "attribute"}}, {"last", {}}, {"list", {}},
      {"lower", {}}, {"max", {"case_sensitive", "attribute"}}, {"min", {"case_sensitive", "attribute"}},
      {"replace", {"old", "new", "count"}}, {"reverse", {}}, {"round", {"precision", "method"}}, {"safe", {}},
      {"sort", {"reverse", "case_sensitive", "attribute"}}, {"string", {}}, {"sum", {"attribute", "start"}},
      {"title", {}}, {"tojson", {"ensure_ascii", "indent", "separators", "sort_keys"}}, {"trim", {"chars"}},
      {"unique", {"case_sensitive", "attribute"}}, {"upper", {}}, {"wordcount", {}}};
  return kSigs;
}

void check_signature(const std::string& name, const CallArgs& a) {
  for (const auto& sig : signatures()) {
    if (name != sig.filter) continue;
    if (a.positional.size() > sig.params.size()) {
      throw RenderError("filter '" + name + "' takes at most " + std::to_string(sig.params.size()) +
                        " argument(s), " + std::to_string(a.positional.size()) + " given");
    }
    for (const auto& [k, v] : a.keyword) {
      size_t i = 0;
      while (i < sig.params.size() && k != sig.params[i]) ++i;
      if (i == sig.params.size()) throw RenderError("filter '" + name + "' got an unexpected keyword argument '" + k + "'");
      if (i < a.positional.size()) throw RenderError("filter '" + name + "' got multiple values for argument '" + k + "'");
    }
    return;
  }
}

}  // namespace

bool has_filter(std::string_view name) {
  return std::any_of(std::begin(kFilters), std::end(kFilters), [&](const char* f) { return name == f; });
}

bool has_test(std::string_view name) {
  return std::any_of(std::begin(kTests), std::end(kTests), [&](const char* t) { return name == t; });
}

Value apply_filter(Interpreter& in, const std::string& name, const Value& v, CallArgs& a) {
  check_signature(name, a);
  if (name == "tojson") {
    // HF signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
    const Value* ensure_ascii = arg(a, 0, "ensure_ascii");
    const Value* indent = arg(a, 1, "indent");
    const Value* seps = arg(a, 2, "separators");
    const Value* sort_keys = arg(a, 3, "sort_keys");
    int width = -1;
    if (indent != nullptr && !indent->is_none()) {
      if (!indent->is_int()) throw RenderError("tojson: indent must be an integer");
      const int64_t n = std::max<int64_t>(0, indent->as_int());
      check_string_size(static_cast<uint64_t>(n), "tojson indent");
      width = static_cast<int>(n);
    }
    const std::string item_sep = sep_arg(seps, 0, width >= 0 ? "," : ", ");
    const std::string key_sep = sep_arg(seps, 1, ": ");
    return Value(to_json(v, width, item_sep, key_sep, sort_keys != nullptr && sort_keys->truthy(),
                         ensure_ascii != nullptr && ensure_ascii->truthy()));
  }
  if (name == "trim") {
    const Value* chars = arg(a, 0, "chars");
    std::optional<std::string> c;
    if (chars && !chars->is_none()) c = chars->to_str();
    return Value(py_strip(v.to_str(), c, true, true));
  }
  if (name == "length" || name == "count") {
    switch (v.kind()) {
      case Value::Kind::kUndefined: return Value(int64_t{0});
      case Value::Kind::kString: return Value(static_cast<int64_t>(utf8_length(v.str())));
      case Value::Kind::kList: return Value(static_cast<int64_t>(v.items().size()));
      case Value::Kind::kDict: return Value(static_cast<int64_t>(v.dict_data().items.size()));
      default: throw RenderError("object of type '" + v.type_name() + "' has no len()");
    }
  }
  if (name == "join") {
    const Value* sep = arg(a, 0, "d");
    const Value* attr = arg(a, 1, "attribute");
    const std::string s = sep ? sep->to_str() : std::string();
    std::string out;
    bool first = true;
    for (const auto& item : iterate(v)) {
      const std::string piece = (attr && !attr->is_none() ? attr_path(item, attr->to_str(), nullptr) : item).to_str();
      check_string_size(out.size() + s.size() + piece.size(), "join result");
      if (!first) out += s;
      out += piece;
      first = false;
    }
    return Value(out);
  }
  if (name == "upper") return Value(py_upper(v.to_str()));
  if (name == "lower") return Value(py_lower(v.to_str()));
  if (name == "title") return Value(jinja_title(v.to_str()));
  if (name == "capitalize") return Value(py_capitalize(v.to_str()));
  if (name == "replace") {
    const Value* old = arg(a, 0, "old");
    const Value* repl = arg(a, 1, "new");
    if (old == nullptr || repl == nullptr) throw RenderError("replace: needs old and new strings");
    return Value(py_replace(v.to_str(), old->to_str(), repl->to_str(), int_arg(a, 2, "count", -1)));
  }
  if (name == "default" || name == "d") {
    const Value* def = arg(a, 0, "default_value");
    const bool boolean = bool_arg(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !v.truthy())) return def ? *def : Value("");
    return v;
  }
  if (name == "first") {
    if (v.is_list()) return v.items().empty() ? Value::undefined("No first item, sequence was empty.") : v.items().front();
    auto items = iterate(v);
    return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
  }
  if (name == "last") {
    if (v.is_undefined()) v.fail_undefined();
    if (v.is_list()) return v.items().empty() ? Value::undefined("No last item, sequence was empty.") : v.items().back();
    auto items = iterate(v);
    return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
  }
  if (name == "list") return Value::list(iterate(v));
  if (name == "reverse") {
    if (v.is_string()) {
      auto cps = decode_utf8(v.str());
      std::reverse(cps.begin(), cps.end());
      return Value(encode_utf8(cps, 0, cps.size()));
    }
    auto items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
  }
  if (name == "map") {
    std::vector<Value> out;
    const Value* attribute = nullptr;
    const Value* def = nullptr;
    for (auto& [k, x] : a.keyword) {
      if (k == "attribute") attribute = &x;
      if (k == "default") def = &x;
    }
    const std::vector<Value> items = iterate(v);
    if (items.empty()) return Value::list();  // jinja2's map is lazy: nothing to check
    if (attribute != nullptr) {
      for (const auto& item : items) out.push_back(attr_path(item, attribute->to_str(), def));
      return Value::list(std::move(out));
    }
    if (a.positional.empty()) throw RenderError("map requires a filter argument");
    if (!a.positional[0].is_string()) throw RenderError("map: the filter name must be a string");
    const std::string f = a.positional[0].str();
    if (!has_filter(f)) throw RenderError("No filter named '" + f + "'.");
    // map('map', 'map', ...) recurses once per argument.
    const Interpreter::Frame frame(in);
    thread_local int filter_depth = 0;
    if (filter_depth >= kMaxFilterDepth) limit_exceeded("filter nesting (map)", kMaxFilterDepth);
    struct Nest {
      Nest() { ++filter_depth; }
      ~Nest() { --filter_depth; }
    } nest;
    for (const auto& item : items) {
      CallArgs rest;
      rest.positional.assign(a.positional.begin() + 1, a.positional.end());
      rest.keyword = a.keyword;
      charge_work(rest.positional.size());
      out.push_back(apply_filter(in, f, item, rest));
    }
    return Value::list(std::move(out));
  }
  if (name == "select" || name == "reject") return Value::list(select_items(in, v, a, false, name == "select"));
  if (name == "selectattr" || name == "rejectattr") {
    return Value::list(select_items(in, v, a, true, name == "selectattr"));
  }
  if (name == "string") return Value(v.to_str());
  if (name == "safe") return Value(v.to_str());
  if (name == "escape" || name == "e") return Value(html_escape(v.to_str()));
  if (name == "int") {
    const Value* def = arg(a, 0, "default");
    if (int_arg(a, 1, "base", 10) != 10) throw RenderError("unsupported construct: int filter with base other than 10");
    return to_int(v, def ? *def : Value(int64_t{0}));
  }
  if (name == "float") {
    const Value* def = arg(a, 0, "default");
    if (v.is_undefined()) v.fail_undefined();
    if (v.is_number()) return Value(v.as_double());
    if (v.is_string()) {
      if (auto f = parse_py_float(v.str())) return Value(*f);
    }
    return def ? *def : Value(0.0);
  }
  if (name == "abs") {
    need_number(v, "abs");
    if (v.is_float()) return Value(std::fabs(v.as_double()));
    if (v.as_int() == std::numeric_limits<int64_t>::min()) throw RenderError("integer overflow");
    return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  if (name == "round") {
    const Value* method = arg(a, 1, "method");
    return round_value(v, int_arg(a, 0, "precision", 0), method ? method->to_str() : "common");
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::list();
    if (!v.is_dict()) throw RenderError("Can only get item pairs from a mapping.");
    std::vector<Value> out;
    for (const auto& [k, x] : v.dict_data().items) out.push_back(Value::tuple({k, x}));
    return Value::list(std::move(out));
  }
  if (name == "dictsort") {
    if (!v.is_dict()) throw RenderError("dictsort: expected a mapping, got '" + v.type_name() + "'");
    const bool cs = bool_arg(a, 0, "case_sensitive", false);
    const Value* by = arg(a, 1, "by");
    const std::string by_s = by ? by->to_str() : "key";
    if (by_s != "key" && by_s != "value") throw RenderError("You can only sort by either 'key' or 'value'");
    const bool rev = bool_arg(a, 2, "reverse", false);
    auto items = v.dict_data().items;
    charge_work(sort_work(items.size()));
    const bool by_key = by_s == "key";
    std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
      const Value& kx = by_key ? x.first : x.second;
      const Value& ky = by_key ? y.first : y.second;
      return rev ? py_less(fold(ky, cs), fold(kx, cs)) : py_less(fold(kx, cs), fold(ky, cs));
    });
    std::vector<Value> out;
    for (const auto& [k, x] : items) out.push_back(Value::tuple({k, x}));
    return Value::list(std::move(out));
  }
  if (name == "sort") {
    const bool rev = bool_arg(a, 0, "reverse", false);
    const bool cs = bool_arg(a, 1, "case_sensitive", false);
    const Value* attr = arg(a, 2, "attribute");
    auto items = iterate(v);
    charge_work(sort_work(items.size()));
    auto key = [&](const Value& x) { return fold(attr && !attr->is_none() ? attr_path(x, attr->to_str(), nullptr) : x, cs); };
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      return rev ? py_less(key(y), key(x)) : py_less(key(x), key(y));
    });
    return Value::list(std::move(items));
  }
  if (name == "unique") {
    const bool cs = bool_arg(a, 0, "case_sensitive", false);
    const Value* attr = arg(a, 1, "attribute");
    std::vector<Value> out;
    std::vector<Value> seen;
    for (const auto& item : iterate(v)) {
      Value k = fold(attr && !attr->is_none() ? attr_path(item, attr->to_str(), nullptr) : item, cs);
      charge_work(seen.size());  // quadratic: a linear search per item
      if (std::find(seen.begin(), seen.end(), k) != seen.end()) continue;
      seen.push_back(k);
      out.push_back(item);
    }
    return Value::list(std::move(out));
  }
  if (name == "min" || name == "max") {
    const bool cs = bool_arg(a, 0, "case_sensitive", false);
    const Value* attr = arg(a, 1, "attribute");
    auto items = iterate(v);
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    auto key = [&](const Value& x) { return fold(attr && !attr->is_none() ? attr_path(x, attr->to_str(), nullptr) : x, cs); };
    size_t best = 0;
    for (size_t i = 1; i < items.size(); ++i) {
      const bool better = name == "min" ? py_less(key(items[i]), key(items[best])) : py_less(key(items[best]), key(items[i]));
      if (better) best = i;
    }
    return items[best];
  }
  if (name == "sum") {
    const Value* attr = arg(a, 0, "attribute");
    const Value* start = arg(a, 1, "start");
    Value total = start ? *start : Value(int64_t{0});
    for (const auto& item : iterate(v)) {
      total = binary_op("+", total, attr && !attr->is_none() ? attr_path(item, attr->to_str(), nullptr) : item);
    }
    return total;
  }
  if (name == "indent") {
    return Value(indent_text(v.to_str(), arg(a, 0, "width"), bool_arg(a, 1, "first", false), bool_arg(a, 2, "blank", false)));
  }
  if (name == "center") {
    // str.center: the odd padding character goes left only when both padding and width are odd.
    const std::string s = v.to_str();
    const int64_t width = int_arg(a, 0, "width", 80);
    const auto len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return Value(s);
    check_string_size(static_cast<uint64_t>(width - len) + s.size(), "center result");
    const int64_t marg = width - len;
    const int64_t left = marg / 2 + (marg & width & 1);
    return Value(std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(marg - left), ' '));
  }
  if (name == "wordcount") return Value(word_count(v.to_str()));
  if (name == "batch") {
    const int64_t n = int_arg(a, 0, "linecount", 0);
    if (n <= 0) throw RenderError("batch: linecount must be positive");
    const Value* fill = arg(a, 1, "fill_with");
    std::vector<Value> out;
    std::vector<Value> cur;
    for (const auto& item : iterate(v)) {
      cur.push_back(item);
      if (static_cast<int64_t>(cur.size()) == n) {
        out.push_back(Value::list(std::move(cur)));
        cur.clear();
      }
    }
    if (!cur.empty()) {
      if (fill && !fill->is_none()) {
        check_item_count(static_cast<uint64_t>(n), "batch filled with fill_with");
        while (static_cast<int64_t>(cur.size()) < n) cur.push_back(*fill);
      }
      out.push_back(Value::list(std::move(cur)));
    }
    return Value::list(std::move(out));
  }
  if (name == "attr") {
    const Value* n = arg(a, 0, "name");
    if (n == nullptr) throw RenderError("attr: missing attribute name");
    if (v.is_undefined()) v.fail_undefined();
    // Python getattr only: a dict's keys are not attributes.
    if (v.is_dict()) {
      Value m = get_attr(Value::dict(), n->to_str());
      return m.is_callable() ? get_attr(v, n->to_str()) : Value::undefined("'dict object' has no attribute " + string_repr(n->to_str()));
    }
    return get_attr(v, n->to_str());
  }
  throw RenderError("No filter named '" + name + "' found.");
}

bool apply_test(Interpreter& in, const std::string& name, const Value& v, CallArgs& a) {
  (void)in;
  static const char* const kOneArg[] = {"sameas", "eq", "equalto", "ne", "lt", "lessthan", "le", "gt",
                                        "greaterthan", "ge", "in", "divisibleby"};
  const bool one = std::any_of(std::begin(kOneArg), std::end(kOneArg), [&](const char* t) { return name == t; });
  const size_t n_args = a.positional.size() + a.keyword.size();
  if (has_test(name) && n_args > (one ? 1u : 0u)) {
    throw RenderError("test '" + name + "' takes " + (one ? "1 argument" : "no arguments") + ", " +
                      std::to_string(n_args) + " given");
  }
  const Value* x = arg(a, 0, "value");
  auto need_arg = [&]() -> const Value& {
    if (x == nullptr) throw RenderError("test '" + name + "' needs an argument");
    return *x;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_undefined() || v.is_list() || v.is_dict() || v.is_string();
  if (name == "sequence") return v.is_undefined() || v.is_list() || v.is_dict() || v.is_string();
  if (name == "callable") return v.is_callable();
  if (name == "escaped") return false;
  if (name == "filter") return v.is_string() && has_filter(v.str());
  if (name == "test") return v.is_string() && has_test(v.str());
  if (name == "sameas") return v.same_object(need_arg()) || (v.is_none() && need_arg().is_none()) ||
                               (v.is_bool() && need_arg().is_bool() && v.as_bool() == need_arg().as_bool());
  if (name == "eq" || name == "equalto") return compare_op("==", v, need_arg());
  if (name == "ne") return compare_op("!=", v, need_arg());
  if (name == "lt" || name == "lessthan") return compare_op("<", v, need_arg());
  if (name == "le") return compare_op("<=", v, need_arg());
  if (name == "gt" || name == "greaterthan") return compare_op(">", v, need_arg());
  if (name == "ge") return compare_op(">=", v, need_arg());
  if (name == "in") return compare_op("in", v, need_arg());
  if (name == "lower") {
    const std::string s = v.to_str();
    return py_lower(s) == s && py_upper(s) != s;
  }
  if (name == "upper") {
    const std::string s = v.to_str();
    return py_upper(s) == s && py_lower(s) != s;
  }
  if (name == "odd" || name == "even") {
    need_number(v, name.c_str());
    if (v.is_float()) {
      const double m = std::fmod(std::fabs(v.as_double()), 2.0);
      return name == "odd" ? m == 1.0 : m == 0.0;
    }
    const bool odd = (v.as_int() % 2) != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "divisibleby") {
    const Value& n = need_arg();
    return binary_op("%", v, n) == Value(int64_t{0});
  }
  throw RenderError("No test named '" + name + "' found.");
}

}  // namespace insitu::jinja
