// Syntax tree of a parsed Jinja2 template. Built once by the parser, read-only afterwards (so a
// Template can render concurrently from several threads).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace insitu::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using StmtList = std::vector<StmtPtr>;

struct Expr {
  enum class Kind : uint8_t {
    kLiteral,  // literal
    kName,     // name
    kList,     // args = items
    kTuple,    // args = items
    kDict,     // args = k0, v0, k1, v1, ...
    kAttr,     // obj.name
    kItem,     // obj[args[0]]
    kSlice,    // obj[args[0]:args[1]:args[2]] (null entries are omitted bounds)
    kCall,     // obj(args, kwargs)
    kFilter,   // obj | name(args, kwargs)
    kTest,     // obj is [not] name(args)
    kNeg,      // -obj
    kPos,      // +obj
    kNot,      // not obj
    kBinary,   // args[0] name args[1], name in + - * / // % ** ~ and or
    kCompare,  // obj ops[0] args[0] ops[1] args[1] ... (chained like Python)
    kCond,     // args[0] if obj else args[1] (args[1] may be null)
  };
  Kind kind;
  int line = 0;
  int depth = 1;  // of the subtree rooted here; the parser keeps it within kMaxExprDepth
  Value literal;
  std::string name;
  ExprPtr obj;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
};

struct Stmt {
  enum class Kind : uint8_t {
    kText,         // text
    kPrint,        // {{ expr }}
    kIf,           // branches (cond, body) ...; else_body
    kFor,          // for target in expr [if cond]: body; else_body
    kSet,          // set target = expr
    kSetBlock,     // set name [| filter]: body
    kMacro,        // macro name(params): body
    kCallBlock,    // call(params) expr: body
    kFilterBlock,  // filter: body
    kBreak,
    kContinue,
    kWith,         // with params: body
    kGeneration,   // {% generation %} (Hugging Face's AssistantTracker): body
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr target;
  ExprPtr cond;
  ExprPtr filter;  // a kFilter chain whose innermost obj is the name kBlockInput
  std::string name;
  std::vector<std::pair<ExprPtr, StmtList>> branches;
  StmtList body;
  StmtList else_body;
  std::vector<std::pair<std::string, ExprPtr>> params;  // name, default (may be null)
  // Macros whose body reads `varargs` / `kwargs` accept surplus positional / keyword arguments.
  bool catch_varargs = false;
  bool catch_kwargs = false;
};

// The variable a filter block's filter chain reads its input from (not a valid identifier).
inline constexpr const char* kBlockInput = "\x01block";

}  // namespace insitu::jinja
