// Jinja2 template: parse once, render many times.
//
// Rendering semantics follow jinja2 3.1 with Hugging Face's chat-template environment
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, HTML autoescape off,
// tojson = json.dumps(ensure_ascii=False), globals raise_exception and strftime_now). Scoping is
// jinja2's: a for loop body is a new scope per iteration (a `set` inside does not leak; use
// namespace()), if blocks share their enclosing scope, macros close over their defining scope.
//
// Template is immutable after construction and render() is const: one Template may render from
// several threads at once. Parse errors throw FormatError; render errors (undefined values used
// where jinja2 raises, type errors, raise_exception) throw RenderError (an InvalidArgument)
// prefixed with the template line.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/value.h"

namespace insitu::jinja {

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
};

class Interpreter {
 public:
  Interpreter() = default;
  // Renders `program` with the variables of `context` (a dict) into `out`.
  void run(const StmtList& program, const Value& context, std::string& out);

  // Calls a callable Value (builtin or macro).
  Value call(const Value& fn, CallArgs& args);
  int line() const { return line_; }

 private:
  enum class Flow : uint8_t { kNormal, kBreak, kContinue };
  Flow exec_list(const StmtList& list, const std::shared_ptr<Scope>& scope, std::string& out);
  Flow exec(const Stmt& st, const std::shared_ptr<Scope>& scope, std::string& out);
  void exec_for(const Stmt& st, const std::shared_ptr<Scope>& scope, std::string& out);
  Value eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value lookup(const std::string& name, const std::shared_ptr<Scope>& scope);
  void assign(const Expr& target, const Value& v, const std::shared_ptr<Scope>& scope);
  CallArgs eval_args(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value make_macro(const Stmt& st, const std::shared_ptr<Scope>& scope, const std::string& name);

  int line_ = 0;
  int depth_ = 0;  // macro call depth, bounded so that runaway recursion fails cleanly
};

class Template {
 public:
  explicit Template(std::string_view source);
  // context: a dict of variables (messages, add_generation_prompt, ...).
  std::string render(const Value& context) const;

 private:
  StmtList program_;
};

}  // namespace insitu::jinja
