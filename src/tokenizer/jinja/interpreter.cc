#include "tokenizer/jinja/interpreter.h"

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/parser.h"

namespace insitu::jinja {
namespace {

// Bytes a list or dict occupies with the strings it holds, for the allocation budget: copying its
// items (iterating, filtering) copies those strings too.
uint64_t item_bytes(const Value& x) { return sizeof(Value) + (x.is_string() ? x.str().size() : 0); }

uint64_t shallow_bytes(const std::vector<Value>& items) {
  uint64_t n = 0;
  for (const auto& x : items) n += item_bytes(x);
  return n;
}

uint64_t shallow_bytes(const Value& v) {
  uint64_t n = 0;
  auto add = [&n](const Value& x) { n += item_bytes(x); };
  if (v.is_list()) {
    n = shallow_bytes(v.items());
  } else if (v.is_dict()) {
    for (const auto& [k, x] : v.dict_data().items) {
      add(k);
      add(x);
    }
  }
  return n;
}

// Work of comparing or searching a value: its items (strings are charged when copied).
uint64_t size_of(const Value& v) {
  if (v.is_list()) return v.items().size();
  if (v.is_dict()) return v.dict_data().items.size();
  return 0;
}

// Filters that do not walk their input.
bool cheap_filter(const std::string& name) {
  return name == "length" || name == "count" || name == "default" || name == "d" || name == "first" ||
         name == "last" || name == "attr" || name == "abs" || name == "int" || name == "float" ||
         name == "round";
}

std::shared_ptr<Scope> child_scope(const std::shared_ptr<Scope>& parent) {
  auto s = std::make_shared<Scope>();
  s->parent = parent;
  return s;
}

Value loop_object(const std::vector<Value>& items, size_t i) {
  const auto n = static_cast<int64_t>(items.size());
  const auto k = static_cast<int64_t>(i);
  Value loop = Value::dict();
  // Distinct keys: appended directly, without set()'s search (this runs once per iteration).
  auto& d = loop.dict_data().items;
  d.reserve(12);
  auto set = [&d](const char* key, Value v) { d.emplace_back(Value(key), std::move(v)); };
  set("index", Value(k + 1));
  set("index0", Value(k));
  set("revindex", Value(n - k));
  set("revindex0", Value(n - k - 1));
  set("first", Value(k == 0));
  set("last", Value(k == n - 1));
  set("length", Value(n));
  set("depth", Value(int64_t{1}));
  set("depth0", Value(int64_t{0}));
  set("previtem", k > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
  set("nextitem", k + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
  set("cycle", Value::callable("cycle", [k](Interpreter&, CallArgs& a) -> Value {
          if (a.positional.empty()) throw RenderError("no items for cycling given");
          return a.positional[static_cast<size_t>(k) % a.positional.size()];
        }));
  return loop;
}

// The rendering running on this thread, charged by charge_work().
thread_local Interpreter* t_current = nullptr;

}  // namespace

void charge_work(uint64_t n) {
  if (t_current != nullptr) t_current->charge_steps(n);
}

void Interpreter::run(const StmtList& program, const Value& context, std::string& out) {
  auto root = std::make_shared<Scope>();
  if (context.is_dict()) {
    for (const auto& [k, v] : context.dict_data().items) {
      if (k.is_string()) root->vars[k.str()] = v;
    }
  }
  // Break the cycles namespaces may form, whatever way the rendering ends.
  struct EmptyNamespaces {
    std::vector<Value>& list;
    ~EmptyNamespaces() {
      for (auto& ns : list) ns.dict_data().items.clear();
      list.clear();
    }
  } empty_namespaces{namespaces_};
  struct Current {
    Interpreter* saved;
    explicit Current(Interpreter* in) : saved(t_current) { t_current = in; }
    ~Current() { t_current = saved; }
  } current(this);
  try {
    exec_list(program, root, out);
  } catch (const RenderError& e) {
    throw RenderError("jinja: template line " + std::to_string(line_) + ": " + e.what());
  } catch (const LimitError& e) {
    throw LimitError("jinja: template line " + std::to_string(line_) + ": " + e.what());
  }
}

Interpreter::Frame::Frame(Interpreter& in) : in_(in) {
  if (in_.depth_ >= in_.limits_.max_depth) {
    limit_exceeded("render depth (nested frames)", static_cast<uint64_t>(in_.limits_.max_depth));
  }
  ++in_.depth_;
}

void Interpreter::charge_steps(uint64_t n) {
  steps_ += n;
  if (steps_ > limits_.max_steps) limit_exceeded("evaluation steps", limits_.max_steps);
}

void Interpreter::charge_bytes(uint64_t n) {
  allocated_bytes_ += n;
  if (allocated_bytes_ > limits_.max_allocated_bytes) {
    limit_exceeded("allocated bytes", limits_.max_allocated_bytes);
  }
}

void Interpreter::emit(std::string& out, std::string_view text) {
  output_bytes_ += text.size();
  if (output_bytes_ > limits_.max_output_bytes) limit_exceeded("output size (bytes)", limits_.max_output_bytes);
  out += text;
}

Interpreter::Flow Interpreter::exec_list(const StmtList& list, const std::shared_ptr<Scope>& scope,
                                         std::string& out) {
  for (const auto& st : list) {
    const Flow f = exec(*st, scope, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Stmt& st, const std::shared_ptr<Scope>& scope, std::string& out) {
  const Frame frame(*this);
  charge_steps(1);
  line_ = st.line;
  switch (st.kind) {
    case Stmt::Kind::kText:
      emit(out, st.text);
      return Flow::kNormal;
    case Stmt::Kind::kPrint:
      emit(out, eval(*st.expr, scope).to_str());
      return Flow::kNormal;
    case Stmt::Kind::kIf:
      for (const auto& [cond, body] : st.branches) {
        if (eval(*cond, scope).truthy()) return exec_list(body, scope, out);
        line_ = st.line;
      }
      return exec_list(st.else_body, scope, out);
    case Stmt::Kind::kFor:
      exec_for(st, scope, out);
      return Flow::kNormal;
    case Stmt::Kind::kSet:
      assign(*st.target, eval(*st.expr, scope), scope);
      return Flow::kNormal;
    case Stmt::Kind::kSetBlock: {
      std::string body;
      exec_list(st.body, child_scope(scope), body);
      Value v(std::move(body));
      if (st.filter) {
        auto tmp = child_scope(scope);
        tmp->vars[kBlockInput] = v;
        v = eval(*st.filter, tmp);
      }
      scope->vars[st.name] = v;
      return Flow::kNormal;
    }
    case Stmt::Kind::kMacro:
      scope->vars[st.name] = make_macro(st, scope, st.name);
      return Flow::kNormal;
    case Stmt::Kind::kCallBlock: {
      const Expr& call_expr = *st.expr;
      Value fn = eval(*call_expr.obj, scope);
      CallArgs args = eval_args(call_expr, scope);
      args.keyword.emplace_back("caller", make_macro(st, scope, "caller"));
      line_ = st.line;
      emit(out, call(fn, args).to_str());
      return Flow::kNormal;
    }
    case Stmt::Kind::kFilterBlock: {
      std::string body;
      exec_list(st.body, child_scope(scope), body);
      auto tmp = child_scope(scope);
      tmp->vars[kBlockInput] = Value(std::move(body));
      emit(out, eval(*st.filter, tmp).to_str());
      return Flow::kNormal;
    }
    case Stmt::Kind::kBreak: return Flow::kBreak;
    case Stmt::Kind::kContinue: return Flow::kContinue;
    case Stmt::Kind::kWith: {
      auto inner = child_scope(scope);
      for (const auto& [name, expr] : st.params) inner->vars[name] = eval(*expr, scope);
      return exec_list(st.body, inner, out);
    }
    case Stmt::Kind::kGeneration:
      return exec_list(st.body, scope, out);
  }
  return Flow::kNormal;
}

void Interpreter::exec_for(const Stmt& st, const std::shared_ptr<Scope>& scope, std::string& out) {
  std::vector<Value> items = iterate(eval(*st.expr, scope));
  charge_steps(items.size());
  // Each iteration copies its item, and loop.previtem / loop.nextitem copy its neighbours.
  charge_bytes(3 * shallow_bytes(items));
  auto count_iteration = [this] {
    if (++iterations_ > limits_.max_loop_iterations) {
      limit_exceeded("loop iterations", limits_.max_loop_iterations);
    }
  };
  if (st.cond) {
    std::vector<Value> kept;
    for (auto& item : items) {
      count_iteration();
      auto tmp = child_scope(scope);
      assign(*st.target, item, tmp);
      if (eval(*st.cond, tmp).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec_list(st.else_body, child_scope(scope), out);
    return;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    count_iteration();
    auto body_scope = child_scope(scope);
    assign(*st.target, items[i], body_scope);
    body_scope->vars["loop"] = loop_object(items, i);
    if (exec_list(st.body, body_scope, out) == Flow::kBreak) break;
  }
}

Value Interpreter::make_macro(const Stmt& st, const std::shared_ptr<Scope>& scope, const std::string& name) {
  // The macro keeps only a weak reference to its defining scope: the scope owns the macro, and a
  // strong reference would be a cycle.
  std::weak_ptr<Scope> weak = scope;
  const Stmt* def = &st;
  return Value::callable(
      name,
      [def, weak, name](Interpreter& in, CallArgs& args) -> Value {
        auto parent = weak.lock();
        if (!parent) throw RenderError("macro '" + name + "' called after its scope ended");
        if (args.positional.size() > def->params.size() && !def->catch_varargs) {
          throw RenderError("macro '" + name + "' takes not more than " +
                            std::to_string(def->params.size()) + " argument(s)");
        }
        auto frame = child_scope(parent);
        std::vector<bool> bound(def->params.size(), false);
        std::vector<Value> extra_positional;
        for (size_t i = 0; i < args.positional.size(); ++i) {
          if (i >= def->params.size()) {
            extra_positional.push_back(args.positional[i]);
            continue;
          }
          frame->vars[def->params[i].first] = args.positional[i];
          bound[i] = true;
        }
        if (def->catch_varargs) frame->vars["varargs"] = Value::tuple(std::move(extra_positional));
        Value extra_keywords = Value::dict();
        if (def->catch_kwargs) frame->vars["kwargs"] = extra_keywords;
        for (auto& [key, v] : args.keyword) {
          size_t i = 0;
          while (i < def->params.size() && def->params[i].first != key) ++i;
          if (i == def->params.size()) {
            if (key == "caller") {
              frame->vars["caller"] = v;
              continue;
            }
            if (def->catch_kwargs) {
              extra_keywords.dict_data().set(Value(key), v);
              continue;
            }
            throw RenderError("macro '" + name + "' takes no keyword argument '" + key + "'");
          }
          if (bound[i]) throw RenderError("macro '" + name + "' got multiple values for argument '" + key + "'");
          frame->vars[key] = v;
          bound[i] = true;
        }
        for (size_t i = 0; i < def->params.size(); ++i) {
          if (bound[i]) continue;
          const auto& [pname, pdef] = def->params[i];
          frame->vars[pname] = pdef ? in.eval(*pdef, frame)
                                    : Value::undefined("parameter '" + pname + "' was not provided");
        }
        if (in.call_depth_ >= kMaxCallDepth) {
          throw RenderError("maximum macro recursion depth exceeded (" + std::to_string(kMaxCallDepth) + ")");
        }
        struct CallDepth {
          int& n;
          ~CallDepth() { --n; }
        } call_depth{++in.call_depth_};
        std::string body;
        const int saved_line = in.line_;
        in.exec_list(def->body, frame, body);
        in.line_ = saved_line;
        return Value(std::move(body));
      },
      true);
}

Value Interpreter::call(const Value& fn, CallArgs& args) {
  const Frame frame(*this);
  if (fn.is_undefined()) fn.fail_undefined();
  if (!fn.is_callable()) throw RenderError("'" + fn.type_name() + "' object is not callable");
  return fn.fn().fn(*this, args);
}

Value Interpreter::lookup(const std::string& name, const std::shared_ptr<Scope>& scope) {
  for (const Scope* s = scope.get(); s != nullptr; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
  }
  Value g = make_global(name);
  if (!g.is_undefined()) return g;
  return Value::undefined("'" + name + "' is undefined");
}

void Interpreter::assign(const Expr& target, const Value& v, const std::shared_ptr<Scope>& scope) {
  switch (target.kind) {
    case Expr::Kind::kName:
      scope->vars[target.name] = v;
      return;
    case Expr::Kind::kTuple: {
      std::vector<Value> items = iterate(v);
      if (items.size() < target.args.size()) {
        throw RenderError("not enough values to unpack (expected " + std::to_string(target.args.size()) +
                          ", got " + std::to_string(items.size()) + ")");
      }
      if (items.size() > target.args.size()) {
        throw RenderError("too many values to unpack (expected " + std::to_string(target.args.size()) + ")");
      }
      for (size_t i = 0; i < items.size(); ++i) assign(*target.args[i], items[i], scope);
      return;
    }
    case Expr::Kind::kAttr: {
      Value ns = lookup(target.obj->name, scope);
      if (!ns.is_namespace()) throw RenderError("cannot assign attribute on non-namespace object");
      ns.dict_data().set(Value(target.name), v);
      return;
    }
    default: throw RenderError("cannot assign to this expression");
  }
}

CallArgs Interpreter::eval_args(const Expr& e, const std::shared_ptr<Scope>& scope) {
  CallArgs a;
  for (const auto& x : e.args) a.positional.push_back(eval(*x, scope));
  for (const auto& [k, x] : e.kwargs) a.keyword.emplace_back(k, eval(*x, scope));
  return a;
}

Value Interpreter::eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
  const Frame frame(*this);
  charge_steps(1);
  Value v = eval_node(e, scope);
  // Strings are held by value: every string an expression yields is a new copy, charged whole.
  // Lists and dicts are shared; those an operation builds are charged by their items.
  if (v.is_string()) {
    check_string_size(v.str().size(), "string value");
    charge_bytes(v.str().size());
  } else if (v.is_list() || v.is_dict()) {
    switch (e.kind) {
      case Expr::Kind::kName:
      case Expr::Kind::kAttr:
      case Expr::Kind::kItem:
      case Expr::Kind::kCond:
      case Expr::Kind::kLiteral: break;
      default: {
        const uint64_t n = size_of(v);
        check_item_count(n, "list or dict value");
        charge_steps(n);
        charge_bytes(shallow_bytes(v));
      }
    }
  }
  return v;
}

Value Interpreter::eval_node(const Expr& e, const std::shared_ptr<Scope>& scope) {
  line_ = e.line ? e.line : line_;
  switch (e.kind) {
    case Expr::Kind::kLiteral: return e.literal;
    case Expr::Kind::kName: return lookup(e.name, scope);
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      std::vector<Value> items;
      for (const auto& x : e.args) items.push_back(eval(*x, scope));
      return e.kind == Expr::Kind::kList ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case Expr::Kind::kDict: {
      Value d = Value::dict();
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i], scope);
        if (k.is_list() && !k.is_tuple()) throw RenderError("unhashable type: 'list'");
        if (k.is_dict()) throw RenderError("unhashable type: 'dict'");
        charge_steps(d.dict_data().items.size());  // set() searches the keys
        d.dict_data().set(k, eval(*e.args[i + 1], scope));
      }
      return d;
    }
    case Expr::Kind::kAttr: return get_attr(eval(*e.obj, scope), e.name);
    case Expr::Kind::kItem: {
      Value obj = eval(*e.obj, scope);
      return get_item(obj, eval(*e.args[0], scope));
    }
    case Expr::Kind::kSlice: {
      Value obj = eval(*e.obj, scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i) parts[i] = e.args[i] ? eval(*e.args[i], scope) : Value::none();
      return get_slice(obj, parts[0], parts[1], parts[2]);
    }
    case Expr::Kind::kCall: {
      Value fn = eval(*e.obj, scope);
      CallArgs args = eval_args(e, scope);
      for (const auto& a : args.positional) charge_steps(size_of(a));
      line_ = e.line;
      return call(fn, args);
    }
    case Expr::Kind::kFilter: {
      Value input = eval(*e.obj, scope);
      CallArgs args = eval_args(e, scope);
      if (!cheap_filter(e.name)) {
        charge_steps(size_of(input));
        charge_bytes(shallow_bytes(input));  // most filters iterate, copying the items
      }
      line_ = e.line;
      return apply_filter(*this, e.name, input, args);
    }
    case Expr::Kind::kTest: {
      Value input = eval(*e.obj, scope);
      CallArgs args = eval_args(e, scope);
      charge_steps(size_of(input));
      for (const auto& a : args.positional) charge_steps(size_of(a));
      line_ = e.line;
      return Value(apply_test(*this, e.name, input, args) != e.negated);
    }
    case Expr::Kind::kNeg:
    case Expr::Kind::kPos: {
      Value v = eval(*e.obj, scope);
      if (v.is_undefined()) v.fail_undefined();
      if (!v.is_number()) {
        throw RenderError(std::string("bad operand type for unary ") + (e.kind == Expr::Kind::kNeg ? "-" : "+") +
                          ": '" + v.type_name() + "'");
      }
      if (e.kind == Expr::Kind::kPos) return v.is_bool() ? Value(v.as_int()) : v;
      if (v.is_float()) return Value(-v.as_double());
      return binary_op("-", Value(int64_t{0}), v);
    }
    case Expr::Kind::kNot: return Value(!eval(*e.obj, scope).truthy());
    case Expr::Kind::kBinary: {
      if (e.name == "and") {
        Value l = eval(*e.args[0], scope);
        return l.truthy() ? eval(*e.args[1], scope) : l;
      }
      if (e.name == "or") {
        Value l = eval(*e.args[0], scope);
        return l.truthy() ? l : eval(*e.args[1], scope);
      }
      Value l = eval(*e.args[0], scope);
      Value r = eval(*e.args[1], scope);
      line_ = e.line;
      if (e.name == "~") {
        // to_str() of a list is its repr: charge the walk, then the size of the result.
        charge_steps(size_of(l) + size_of(r));
      }
      return binary_op(e.name, l, r);
    }
    case Expr::Kind::kCompare: {
      Value left = eval(*e.obj, scope);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.args[i], scope);
        charge_steps(size_of(left) + size_of(right));
        if (!compare_op(e.ops[i], left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case Expr::Kind::kCond: {
      if (eval(*e.obj, scope).truthy()) return eval(*e.args[0], scope);
      if (e.args[1]) return eval(*e.args[1], scope);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined.");
    }
  }
  return Value();
}

Template::Template(std::string_view source) : program_(parse_template(source)) {}

std::string Template::render(const Value& context, const RenderLimits& limits) const {
  Interpreter interp(limits);
  std::string out;
  interp.run(program_, context, out);
  return out;
}

}  // namespace insitu::jinja
