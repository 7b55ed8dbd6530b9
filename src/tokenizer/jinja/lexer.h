// Jinja2 lexer: splits a template into text and tags, applying jinja2's whitespace rules exactly as
// Hugging Face configures them (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False),
// and tokenizes the expressions inside {{ }} and {% %}.
//
// Whitespace rules, as jinja2 3.1 applies them:
//  - newlines (\r\n, \r) become \n; one trailing newline of the template is dropped;
//  - {{- {%- {#- strip all whitespace before the tag; -}} -%} -#} strip all whitespace after it;
//  - trim_blocks: the first newline after %} or #} is removed (not after }}; not after +%});
//  - lstrip_blocks: spaces and tabs from the start of a line up to {% or {# are removed
//    (not for {{, not for {%+).
// Errors (unterminated tags or strings, bad characters) throw FormatError naming the line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace insitu::jinja {

struct Token {
  enum class Type : uint8_t { kName, kInt, kFloat, kString, kOp, kEnd };
  Type type = Type::kEnd;
  std::string text;  // name, operator, or the decoded string literal
  int64_t int_value = 0;
  double float_value = 0.0;
  int line = 1;
};

struct Segment {
  enum class Kind : uint8_t { kText, kVariable, kBlock };
  Kind kind = Kind::kText;
  std::string text;           // kText: the output text after whitespace control
  std::vector<Token> tokens;  // kVariable/kBlock: the tag's tokens, ending with a kEnd token
  int line = 1;
};

std::vector<Segment> lex_template(std::string_view source);

}  // namespace insitu::jinja
