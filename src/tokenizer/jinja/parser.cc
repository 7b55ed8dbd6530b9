// Grammar and precedence follow jinja2 3.1's parser.py (parse_condexpr .. parse_unary,
// parse_filter_expr, parse_test); the code is written independently.
#include "tokenizer/jinja/parser.h"

#include <algorithm>
#include <set>

#include "insitu/error.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/lexer.h"

namespace insitu::jinja {
namespace {

[[noreturn]] void fail(int line, const std::string& what) {
  throw FormatError("jinja: template line " + std::to_string(line) + ": " + what);
}

[[noreturn]] void fail_limit(int line, const std::string& budget, int limit) {
  try {
    limit_exceeded(budget, static_cast<uint64_t>(limit));
  } catch (const LimitError& e) {
    throw LimitError("jinja: template line " + std::to_string(line) + ": " + e.what());
  }
}

// Records the depth of a finished node from its children's and enforces kMaxExprDepth, so that
// evaluating, walking and destroying any syntax tree recurses at most that deep. Every node with
// children passes through here: operator chains such as 1 + 1 + ... are iterative in the parser
// but deep in the tree.
ExprPtr seal(ExprPtr e) {
  int d = e->obj ? e->obj->depth : 0;
  for (const auto& a : e->args) {
    if (a) d = std::max(d, a->depth);
  }
  for (const auto& [k, a] : e->kwargs) {
    if (a) d = std::max(d, a->depth);
  }
  e->depth = d + 1;
  if (e->depth > kMaxExprDepth) fail_limit(e->line, "expression depth", kMaxExprDepth);
  return e;
}

// Whether an expression or statement list reads the variable `name` (macros: varargs, kwargs).
bool uses_name(const Expr* e, const std::string& name);
bool uses_name(const StmtList& list, const std::string& name);

bool uses_name(const Expr* e, const std::string& name) {
  if (e == nullptr) return false;
  if (e->kind == Expr::Kind::kName && e->name == name) return true;
  if (uses_name(e->obj.get(), name)) return true;
  for (const auto& a : e->args) {
    if (uses_name(a.get(), name)) return true;
  }
  for (const auto& [k, a] : e->kwargs) {
    if (uses_name(a.get(), name)) return true;
  }
  return false;
}

bool uses_name(const StmtList& list, const std::string& name) {
  for (const auto& st : list) {
    if (uses_name(st->expr.get(), name) || uses_name(st->cond.get(), name) || uses_name(st->filter.get(), name) ||
        uses_name(st->body, name) || uses_name(st->else_body, name))
      return true;
    for (const auto& [c, body] : st->branches) {
      if (uses_name(c.get(), name) || uses_name(body, name)) return true;
    }
    for (const auto& [n, d] : st->params) {
      if (uses_name(d.get(), name)) return true;
    }
  }
  return false;
}

ExprPtr make(Expr::Kind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

std::string describe(const Token& t) {
  switch (t.type) {
    case Token::Type::kEnd: return "end of tag";
    case Token::Type::kString: return "string literal";
    case Token::Type::kInt:
    case Token::Type::kFloat: return "number";
    default: return "'" + t.text + "'";
  }
}

// Expression parser over one tag's tokens.
class ExprParser {
 public:
  // soft: the expression sits directly inside an if statement. As in jinja2 3.x, an unknown filter
  // or test there (or in a conditional expression) fails only when evaluated; elsewhere it is a
  // parse error.
  ExprParser(const std::vector<Token>& toks, bool soft) : toks_(toks), soft_(soft) {}

  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  bool at_end() const { return cur().type == Token::Type::kEnd; }
  bool is_op(const char* op) const { return cur().type == Token::Type::kOp && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Token::Type::kName && cur().text == n; }
  void next() { if (!at_end()) ++pos_; }
  bool accept_op(const char* op) { if (is_op(op)) { next(); return true; } return false; }
  bool accept_name(const char* n) { if (is_name(n)) { next(); return true; } return false; }
  void expect_op(const char* op) {
    if (!accept_op(op)) fail(cur().line, std::string("expected '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().type != Token::Type::kName) fail(cur().line, "expected a name, got " + describe(cur()));
    std::string n = cur().text;
    next();
    return n;
  }
  void expect_end(const std::string& tag) {
    if (!at_end()) fail(cur().line, "unexpected " + describe(cur()) + " in '" + tag + "' tag");
  }

  ExprPtr parse_expression(bool with_condexpr = true) {
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  // Comma-separated expressions form a tuple (`{{ a, b }}`, `for a, b in`, `set a, b = `).
  ExprPtr parse_tuple(bool with_condexpr = true, const std::set<std::string>& end_names = {},
                      bool explicit_parens = false) {
    const int line = cur().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (tuple_ends(end_names)) break;
      items.push_back(parse_expression(with_condexpr));
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (items.empty()) {
        if (!explicit_parens) fail(line, "expected an expression, got " + describe(cur()));
      } else {
        return std::move(items[0]);
      }
    }
    auto t = make(Expr::Kind::kTuple, line);
    t->args = std::move(items);
    return seal(std::move(t));
  }

  // Assignment targets: name, (a, b), a, b, or ns.attr when with_namespace.
  ExprPtr parse_assign_target(bool with_namespace, const std::set<std::string>& end_names) {
    const int line = cur().line;
    if (with_namespace && cur().type == Token::Type::kName && peek().type == Token::Type::kOp &&
        peek().text == ".") {
      auto ns = make(Expr::Kind::kName, line);
      ns->name = expect_name();
      next();
      auto a = make(Expr::Kind::kAttr, line);
      a->obj = std::move(ns);
      a->name = expect_name();
      return seal(std::move(a));
    }
    std::vector<ExprPtr> names;
    bool is_tuple = false;
    bool parens = accept_op("(");
    while (true) {
      if (cur().type != Token::Type::kName || end_names.count(cur().text)) break;
      auto n = make(Expr::Kind::kName, cur().line);
      n->name = expect_name();
      check_assignable(n->name, n->line);
      names.push_back(std::move(n));
      if (accept_op(",")) is_tuple = true;
      else break;
    }
    if (parens) expect_op(")");
    if (names.empty()) fail(line, "expected an assignment target, got " + describe(cur()));
    if (!is_tuple && !parens) return std::move(names[0]);
    auto t = make(Expr::Kind::kTuple, line);
    t->args = std::move(names);
    return seal(std::move(t));
  }

  void parse_call_args(Expr& call) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) fail(cur().line, "unsupported construct: *args/**kwargs in a call");
      if (cur().type == Token::Type::kName && peek().type == Token::Type::kOp && peek().text == "=") {
        std::string key = expect_name();
        next();
        call.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        if (!call.kwargs.empty()) fail(cur().line, "positional argument follows keyword argument");
        call.args.push_back(parse_expression());
      }
    }
    expect_op(")");
  }

  // A filter or test name may be dotted (jinja2 allows `foo.bar`); we only know plain names.
  std::string parse_dotted_name() {
    std::string n = expect_name();
    while (is_op(".") && peek().type == Token::Type::kName) {
      next();
      n += "." + expect_name();
    }
    return n;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      const int line = cur().line;
      auto f = make(Expr::Kind::kFilter, line);
      f->name = parse_dotted_name();
      if (!has_filter(f->name) && !soft_) fail(line, "unsupported filter '" + f->name + "'");
      if (is_op("(")) parse_call_args(*f);
      f->obj = std::move(node);
      node = seal(std::move(f));
    }
    return node;
  }

 private:
  static void check_assignable(const std::string& n, int line) {
    static const std::set<std::string> kReserved = {"true", "false", "none", "True", "False", "None"};
    if (kReserved.count(n)) fail(line, "cannot assign to '" + n + "'");
  }

  bool tuple_ends(const std::set<std::string>& end_names) const {
    if (at_end()) return true;
    if (cur().type == Token::Type::kOp && (cur().text == ")" || cur().text == "]" || cur().text == "}" || cur().text == "="))
      return true;
    return cur().type == Token::Type::kName && end_names.count(cur().text) > 0;
  }

  ExprPtr parse_condexpr() {
    DepthGuard guard(*this);
    const size_t start = pos_;
    const bool was_soft = soft_;
    // A conditional expression is soft as a whole (jinja2 compiles it in a soft frame), including
    // the part before `if`: look ahead for a top-level `if` first.
    if (!soft_ && has_top_level_if(start)) soft_ = true;
    auto expr1 = parse_or();
    struct Restore {
      bool& flag;
      bool value;
      ~Restore() { flag = value; }
    } restore{soft_, was_soft};
    while (is_name("if")) {
      const int line = cur().line;
      next();
      auto cond = make(Expr::Kind::kCond, line);
      auto test = parse_or();
      ExprPtr else_expr;
      if (accept_name("else")) else_expr = parse_condexpr();
      cond->obj = std::move(test);
      cond->args.push_back(std::move(expr1));
      cond->args.push_back(std::move(else_expr));
      expr1 = seal(std::move(cond));
    }
    return expr1;
  }

  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
    auto b = make(Expr::Kind::kBinary, line);
    b->name = op;
    b->args.push_back(std::move(l));
    b->args.push_back(std::move(r));
    return seal(std::move(b));
  }

  ExprPtr parse_or() {
    auto left = parse_and();
    while (is_name("or")) {
      const int line = cur().line;
      next();
      left = binary("or", std::move(left), parse_and(), line);
    }
    return left;
  }

  ExprPtr parse_and() {
    auto left = parse_not();
    while (is_name("and")) {
      const int line = cur().line;
      next();
      left = binary("and", std::move(left), parse_not(), line);
    }
    return left;
  }

  ExprPtr parse_not() {
    DepthGuard guard(*this);
    if (is_name("not")) {
      auto n = make(Expr::Kind::kNot, cur().line);
      next();
      n->obj = parse_not();
      return seal(std::move(n));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = cur().line;
    auto expr = parse_math1();
    std::vector<std::string> ops;
    std::vector<ExprPtr> rhs;
    while (true) {
      if (cur().type == Token::Type::kOp &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" ||
           cur().text == ">" || cur().text == ">=")) {
        ops.push_back(cur().text);
        next();
      } else if (is_name("in")) {
        ops.push_back("in");
        next();
      } else if (is_name("not") && peek().type == Token::Type::kName && peek().text == "in") {
        ops.push_back("notin");
        next();
        next();
      } else {
        break;
      }
      rhs.push_back(parse_math1());
    }
    if (ops.empty()) return expr;
    auto c = make(Expr::Kind::kCompare, line);
    c->obj = std::move(expr);
    c->ops = std::move(ops);
    c->args = std::move(rhs);
    return seal(std::move(c));
  }

  ExprPtr parse_math1() {
    auto left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = cur().text;
      const int line = cur().line;
      next();
      left = binary(op, std::move(left), parse_concat(), line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    auto left = parse_math2();
    while (is_op("~")) {
      const int line = cur().line;
      next();
      left = binary("~", std::move(left), parse_math2(), line);
    }
    return left;
  }

  ExprPtr parse_math2() {
    auto left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = cur().text;
      const int line = cur().line;
      next();
      left = binary(op, std::move(left), parse_pow(), line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    auto left = parse_unary();
    while (is_op("**")) {
      const int line = cur().line;
      next();
      left = binary("**", std::move(left), parse_unary(), line);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter = true) {
    DepthGuard guard(*this);
    const int line = cur().line;
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const bool neg = is_op("-");
      next();
      node = make(neg ? Expr::Kind::kNeg : Expr::Kind::kPos, line);
      node->obj = parse_unary(false);
      node = seal(std::move(node));
    } else {
      node = parse_postfix(parse_primary());
    }
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr literal(Value v, int line) {
    auto e = make(Expr::Kind::kLiteral, line);
    e->literal = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    const int line = t.line;
    switch (t.type) {
      case Token::Type::kName: {
        const std::string n = t.text;
        next();
        if (n == "true" || n == "True") return literal(Value(true), line);
        if (n == "false" || n == "False") return literal(Value(false), line);
        if (n == "none" || n == "None") return literal(Value::none(), line);
        auto e = make(Expr::Kind::kName, line);
        e->name = n;
        return e;
      }
      case Token::Type::kString: {
        std::string s = t.text;
        next();
        while (cur().type == Token::Type::kString) {  // adjacent literals concatenate
          s += cur().text;
          next();
        }
        return literal(Value(std::move(s)), line);
      }
      case Token::Type::kInt: {
        auto e = literal(Value(t.int_value), line);
        next();
        return e;
      }
      case Token::Type::kFloat: {
        auto e = literal(Value(t.float_value), line);
        next();
        return e;
      }
      case Token::Type::kOp:
        if (t.text == "(") {
          next();
          auto e = parse_tuple(true, {}, true);
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          next();
          auto l = make(Expr::Kind::kList, line);
          while (!is_op("]")) {
            if (!l->args.empty()) expect_op(",");
            if (is_op("]")) break;
            l->args.push_back(parse_expression());
          }
          expect_op("]");
          return seal(std::move(l));
        }
        if (t.text == "{") {
          next();
          auto d = make(Expr::Kind::kDict, line);
          while (!is_op("}")) {
            if (!d->args.empty()) expect_op(",");
            if (is_op("}")) break;
            d->args.push_back(parse_expression());
            expect_op(":");
            d->args.push_back(parse_expression());
          }
          expect_op("}");
          return seal(std::move(d));
        }
        break;
      default: break;
    }
    fail(line, "unexpected " + describe(t) + " in expression");
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter(std::move(node), false);
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_call(ExprPtr node) {
    auto c = make(Expr::Kind::kCall, cur().line);
    parse_call_args(*c);
    c->obj = std::move(node);
    return seal(std::move(c));
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const int line = cur().line;
    if (accept_op(".")) {
      if (cur().type == Token::Type::kName) {
        auto a = make(Expr::Kind::kAttr, line);
        a->obj = std::move(node);
        a->name = expect_name();
        return seal(std::move(a));
      }
      if (cur().type == Token::Type::kInt) {
        auto i = make(Expr::Kind::kItem, line);
        i->obj = std::move(node);
        i->args.push_back(literal(Value(cur().int_value), line));
        next();
        return seal(std::move(i));
      }
      fail(line, "expected a name after '.', got " + describe(cur()));
    }
    expect_op("[");
    std::vector<ExprPtr> keys;
    while (!is_op("]")) {
      if (!keys.empty()) expect_op(",");
      keys.push_back(parse_subscribed());
    }
    expect_op("]");
    if (keys.empty()) fail(line, "expected a subscript inside []");
    ExprPtr key;
    if (keys.size() == 1) {
      key = std::move(keys[0]);
    } else {
      key = make(Expr::Kind::kTuple, line);
      key->args = std::move(keys);
      key = seal(std::move(key));
    }
    if (key->kind == Expr::Kind::kSlice) {
      key->obj = std::move(node);
      return seal(std::move(key));
    }
    auto i = make(Expr::Kind::kItem, line);
    i->obj = std::move(node);
    i->args.push_back(std::move(key));
    return seal(std::move(i));
  }

  // expr, or a slice a:b:c with any part omitted (returned as a kSlice without obj).
  ExprPtr parse_subscribed() {
    const int line = cur().line;
    ExprPtr first;
    if (!is_op(":")) {
      first = parse_expression();
      if (!is_op(":")) return first;
    }
    auto s = make(Expr::Kind::kSlice, line);
    s->args.resize(3);
    s->args[0] = std::move(first);
    next();  // ':'
    if (!is_op("]") && !is_op(",") && !is_op(":")) s->args[1] = parse_expression();
    if (accept_op(":")) {
      if (!is_op("]") && !is_op(",")) s->args[2] = parse_expression();
    }
    return seal(std::move(s));
  }

  ExprPtr parse_test(ExprPtr node) {
    const int line = cur().line;
    next();  // 'is'
    auto t = make(Expr::Kind::kTest, line);
    t->negated = accept_name("not");
    t->name = parse_dotted_name();
    if (!has_test(t->name) && !soft_) fail(line, "unsupported test '" + t->name + "'");
    if (is_op("(")) {
      parse_call_args(*t);
    } else if ((cur().type == Token::Type::kName || cur().type == Token::Type::kString ||
                cur().type == Token::Type::kInt || cur().type == Token::Type::kFloat || is_op("(") ||
                is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail(cur().line, "cannot chain multiple tests with 'is'");
      t->args.push_back(parse_postfix(parse_primary()));
    }
    t->obj = std::move(node);
    return seal(std::move(t));
  }

  // Bounds recursion on hostile input such as ((((... or not not not ...
  struct DepthGuard {
    explicit DepthGuard(ExprParser& p) : p_(p) {
      if (++p_.depth_ > kMaxExprDepth) {
        --p_.depth_;
        fail_limit(p_.cur().line, "expression nesting (brackets, unary operators)", kMaxExprDepth);
      }
    }
    ~DepthGuard() { --p_.depth_; }
    ExprParser& p_;
  };

  // Whether a conditional `if` follows at bracket depth 0 before the expression ends.
  bool has_top_level_if(size_t from) const {
    int nest = 0;
    for (size_t i = from; i < toks_.size(); ++i) {
      const Token& t = toks_[i];
      if (t.type == Token::Type::kEnd) return false;
      if (t.type == Token::Type::kOp) {
        if (t.text == "(" || t.text == "[" || t.text == "{") {
          // Deeper than any expression that parses: stop, or nested brackets scan quadratically.
          if (++nest > kMaxExprDepth) return false;
        }
        else if (t.text == ")" || t.text == "]" || t.text == "}") { if (--nest < 0) return false; }
        else if (nest == 0 && (t.text == "," || t.text == ":" || t.text == "=")) return false;
      } else if (t.type == Token::Type::kName && nest == 0 && t.text == "if" && i > from) {
        return true;
      }
    }
    return false;
  }

  const std::vector<Token>& toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  bool soft_ = false;
};

// Statement parser over the lexer's segments.
class TemplateParser {
 public:
  explicit TemplateParser(std::vector<Segment> segs) : segs_(std::move(segs)) {}

  StmtList parse() {
    std::string end_tag;
    StmtList body = parse_body({}, end_tag);
    return body;
  }

 private:
  static std::string tag_name(const Segment& s) {
    return s.tokens.empty() || s.tokens[0].type != Token::Type::kName ? std::string() : s.tokens[0].text;
  }

  // Parses statements until a block tag named in `ends` (left unconsumed; its name in end_tag).
  StmtList parse_body(const std::set<std::string>& ends, std::string& end_tag, const char* opener = nullptr,
                      int open_line = 0) {
    StmtList out;
    while (pos_ < segs_.size()) {
      Segment& s = segs_[pos_];
      if (s.kind == Segment::Kind::kText) {
        auto st = std::make_unique<Stmt>();
        st->kind = Stmt::Kind::kText;
        st->line = s.line;
        st->text = std::move(s.text);
        out.push_back(std::move(st));
        ++pos_;
        continue;
      }
      if (s.kind == Segment::Kind::kVariable) {
        ExprParser p(s.tokens, soft_);
        auto st = std::make_unique<Stmt>();
        st->kind = Stmt::Kind::kPrint;
        st->line = s.line;
        if (p.at_end()) fail(s.line, "expected an expression inside {{ }}");
        st->expr = p.parse_tuple();
        p.expect_end("{{ }}");
        out.push_back(std::move(st));
        ++pos_;
        continue;
      }
      const std::string name = tag_name(s);
      if (ends.count(name)) {
        end_tag = name;
        return out;
      }
      if (name.rfind("end", 0) == 0 || name == "elif" || name == "else") {
        if (opener == nullptr) fail(s.line, "unexpected '{% " + name + " %}' outside any block");
        fail(s.line, "unexpected '{% " + name + " %}'; expected one of:" + join(ends) + " to close '" + opener +
                         "' opened on line " + std::to_string(open_line));
      }
      out.push_back(parse_statement(s, name));
    }
    if (opener != nullptr) {
      fail(open_line, std::string("missing end tag for '") + opener + "' (expected one of:" +
                          join(ends) + ")");
    }
    return out;
  }

  static std::string join(const std::set<std::string>& s) {
    std::string out;
    for (const auto& x : s) out += " " + x;
    return out;
  }

  StmtPtr parse_statement(Segment& s, const std::string& name) {
    if (nesting_ >= kMaxBlockDepth) fail_limit(s.line, "block nesting", kMaxBlockDepth);
    ++nesting_;
    struct Unnest {
      int& n;
      ~Unnest() { --n; }
    } unnest{nesting_};
    ExprParser p(s.tokens, soft_ || name == "if");
    const int line = s.line;
    auto st = std::make_unique<Stmt>();
    st->line = line;
    if (name.empty()) fail(line, "expected a tag name after '{%'");
    p.next();
    ++pos_;
    std::string end;
    if (name == "if") {
      SoftScope soft(soft_, true);
      st->kind = Stmt::Kind::kIf;
      ExprPtr cond = p.parse_tuple(true);
      p.expect_end("if");
      while (true) {
        StmtList body = parse_body({"elif", "else", "endif"}, end, "if", line);
        st->branches.emplace_back(std::move(cond), std::move(body));
        ExprParser q(segs_[pos_].tokens, soft_);
        q.next();
        ++pos_;
        if (end == "elif") {
          cond = q.parse_tuple(true);
          q.expect_end("elif");
          continue;
        }
        q.expect_end(end);
        if (end == "else") {
          st->else_body = parse_body({"endif"}, end, "if", line);
          ExprParser r(segs_[pos_].tokens, soft_);
          r.next();
          r.expect_end("endif");
          ++pos_;
        }
        break;
      }
    } else if (name == "for") {
      st->kind = Stmt::Kind::kFor;
      st->target = p.parse_assign_target(false, {"in"});
      if (!p.accept_name("in")) fail(line, "expected 'in' in for loop");
      st->expr = p.parse_tuple(false, {"recursive", "if"});
      if (p.accept_name("if")) st->cond = p.parse_expression();
      if (p.is_name("recursive")) fail(line, "unsupported construct: recursive for loop");
      p.expect_end("for");
      ++loop_depth_;
      st->body = body_of_new_frame([&] { return parse_body({"else", "endfor"}, end, "for", line); });
      --loop_depth_;
      close_tag(end);
      if (end == "else") {
        st->else_body = body_of_new_frame([&] { return parse_body({"endfor"}, end, "for", line); });
        close_tag("endfor");
      }
    } else if (name == "set") {
      st->target = p.parse_assign_target(true, {});
      if (p.accept_op("=")) {
        st->kind = Stmt::Kind::kSet;
        st->expr = p.parse_tuple(true);
        p.expect_end("set");
      } else {
        st->kind = Stmt::Kind::kSetBlock;
        if (st->target->kind != Expr::Kind::kName) fail(line, "block set needs a plain variable name");
        st->name = st->target->name;
        if (p.is_op("|")) {
          auto input = std::make_unique<Expr>();
          input->kind = Expr::Kind::kName;
          input->name = kBlockInput;
          st->filter = p.parse_filter(std::move(input), false);
        }
        p.expect_end("set");
        st->body = body_of_new_frame([&] { return parse_body({"endset"}, end, "set", line); });
        close_tag("endset");
      }
    } else if (name == "macro") {
      st->kind = Stmt::Kind::kMacro;
      st->name = p.expect_name();
      parse_params(p, *st);
      p.expect_end("macro");
      const int saved = loop_depth_;
      loop_depth_ = 0;
      st->body = body_of_new_frame([&] { return parse_body({"endmacro"}, end, "macro", line); });
      st->catch_varargs = uses_name(st->body, "varargs");
      st->catch_kwargs = uses_name(st->body, "kwargs");
      loop_depth_ = saved;
      close_tag("endmacro");
    } else if (name == "call") {
      st->kind = Stmt::Kind::kCallBlock;
      if (p.is_op("(")) parse_params(p, *st);
      st->expr = p.parse_expression();
      if (st->expr->kind != Expr::Kind::kCall) fail(line, "expected a call after 'call'");
      p.expect_end("call");
      st->body = body_of_new_frame([&] { return parse_body({"endcall"}, end, "call", line); });
      close_tag("endcall");
    } else if (name == "filter") {
      st->kind = Stmt::Kind::kFilterBlock;
      auto input = std::make_unique<Expr>();
      input->kind = Expr::Kind::kName;
      input->name = kBlockInput;
      st->filter = p.parse_filter(std::move(input), true);
      p.expect_end("filter");
      st->body = body_of_new_frame([&] { return parse_body({"endfilter"}, end, "filter", line); });
      close_tag("endfilter");
    } else if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) fail(line, "'" + name + "' outside a for loop");
      st->kind = name == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
      p.expect_end(name);
    } else if (name == "with") {
      st->kind = Stmt::Kind::kWith;
      while (!p.at_end()) {
        if (!st->params.empty()) p.expect_op(",");
        std::string var = p.expect_name();
        p.expect_op("=");
        st->params.emplace_back(std::move(var), p.parse_expression());
      }
      st->body = body_of_new_frame([&] { return parse_body({"endwith"}, end, "with", line); });
      close_tag("endwith");
    } else if (name == "generation") {
      st->kind = Stmt::Kind::kGeneration;
      p.expect_end("generation");
      st->body = body_of_new_frame([&] { return parse_body({"endgeneration"}, end, "generation", line); });
      close_tag("endgeneration");
    } else {
      static const std::set<std::string> kKnownUnsupported = {
          "extends", "block", "include", "import", "from", "do", "autoescape", "trans", "raw"};
      if (kKnownUnsupported.count(name)) fail(line, "unsupported construct: '{% " + name + " %}' tag");
      fail(line, "unknown tag '" + name + "'");
    }
    return st;
  }

  // Loops, macros, call/filter/set blocks and with open a new frame in jinja2: not soft.
  template <typename F>
  StmtList body_of_new_frame(F parse) {
    SoftScope hard(soft_, false);
    return parse();
  }

  struct SoftScope {
    SoftScope(bool& flag, bool value) : flag_(flag), saved_(flag) { flag_ = value; }
    ~SoftScope() { flag_ = saved_; }
    bool& flag_;
    bool saved_;
  };

  void close_tag(const std::string& expected) {
    ExprParser q(segs_[pos_].tokens, soft_);
    q.next();
    q.expect_end(expected);
    ++pos_;
  }

  static void parse_params(ExprParser& p, Stmt& st) {
    p.expect_op("(");
    while (!p.is_op(")")) {
      if (!st.params.empty()) p.expect_op(",");
      std::string n = p.expect_name();
      ExprPtr def;
      if (p.accept_op("=")) def = p.parse_expression();
      st.params.emplace_back(std::move(n), std::move(def));
    }
    p.expect_op(")");
  }

  std::vector<Segment> segs_;
  size_t pos_ = 0;
  int loop_depth_ = 0;
  int nesting_ = 0;
  bool soft_ = false;  // directly inside an if statement (see ExprParser)
};

}  // namespace

StmtList parse_template(std::string_view source) {
  return TemplateParser(lex_template(source)).parse();
}

}  // namespace insitu::jinja
