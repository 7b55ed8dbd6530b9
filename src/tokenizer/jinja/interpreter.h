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
// prefixed with the template line. A template beyond a budget of limits.h (too deep, too long a
// loop, too much output or memory) throws LimitError (a FormatError), at parse or render time.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/value.h"

namespace insitu::jinja {

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
};

// One rendering. Every budget of limits.h that is counted at run time lives here, so each render
// starts with the full budget; a breach throws LimitError prefixed with the template line.
class Interpreter {
 public:
  explicit Interpreter(const RenderLimits& limits = {}) : limits_(limits) {}
  // Renders `program` with the variables of `context` (a dict) into `out`.
  void run(const StmtList& program, const Value& context, std::string& out);

  // Calls a callable Value (builtin or macro).
  Value call(const Value& fn, CallArgs& args);
  int line() const { return line_; }

  // Charges n units of work (items visited, comparisons) to kMaxSteps.
  void charge_steps(uint64_t n);
  // Charges bytes of strings or items just created to kMaxAllocatedBytes.
  void charge_bytes(uint64_t n);
  // Namespaces are the only mutable values, hence the only way to build a reference cycle
  // (ns.self = ns); the interpreter empties every namespace it made when the rendering ends.
  void adopt_namespace(const Value& ns) { namespaces_.push_back(ns); }

  // One level of nested evaluation (statement, expression, call, recursive filter), bounded by
  // kMaxRenderDepth so that no template can exhaust the stack.
  class Frame {
   public:
    explicit Frame(Interpreter& in);
    ~Frame() { --in_.depth_; }
    Frame(const Frame&) = delete;
    Frame& operator=(const Frame&) = delete;

   private:
    Interpreter& in_;
  };

 private:
  enum class Flow : uint8_t { kNormal, kBreak, kContinue };
  Flow exec_list(const StmtList& list, const std::shared_ptr<Scope>& scope, std::string& out);
  Flow exec(const Stmt& st, const std::shared_ptr<Scope>& scope, std::string& out);
  void exec_for(const Stmt& st, const std::shared_ptr<Scope>& scope, std::string& out);
  Value eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_node(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value lookup(const std::string& name, const std::shared_ptr<Scope>& scope);
  void assign(const Expr& target, const Value& v, const std::shared_ptr<Scope>& scope);
  CallArgs eval_args(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value make_macro(const Stmt& st, const std::shared_ptr<Scope>& scope, const std::string& name);
  // Appends rendered text, charged to kMaxOutputBytes.
  void emit(std::string& out, std::string_view text);

  RenderLimits limits_;
  int line_ = 0;
  int depth_ = 0;       // nested frames (kMaxRenderDepth)
  int call_depth_ = 0;  // nested macro calls (kMaxCallDepth)
  uint64_t steps_ = 0;
  uint64_t iterations_ = 0;
  uint64_t output_bytes_ = 0;
  uint64_t allocated_bytes_ = 0;
  std::vector<Value> namespaces_;
};

class Template {
 public:
  explicit Template(std::string_view source);
  // context: a dict of variables (messages, add_generation_prompt, ...).
  std::string render(const Value& context, const RenderLimits& limits = {}) const;

 private:
  StmtList program_;
};

}  // namespace insitu::jinja
