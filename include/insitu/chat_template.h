// Chat templates: renders a model's Jinja2 chat template (GGUF tokenizer.chat_template or
// tokenizer_config.json's chat_template) with a conversation, as Python's jinja2 would.
//
// Construction parses the template once (throws FormatError naming the construct and position on
// syntax it does not support); apply() is const and thread-safe.
//
// Templates come from model files, so they are untrusted: the engine enforces the budgets of
// jinja/limits.h (syntax depth, render depth, loop iterations, evaluation steps, output bytes,
// value sizes, allocated bytes) and a template beyond one throws jinja::LimitError (a FormatError)
// whose message names the template's origin and the budget, e.g.
//   chat template of model.gguf (tokenizer.chat_template): jinja: template line 3: template budget
//   exceeded: loop iterations limit 1000000
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace insitu {

struct ChatMessage {
  std::string role;     // "system" | "user" | "assistant" | ...
  std::string content;
};

class ChatTemplate {
 public:
  // origin names where the template came from, for error messages (e.g. "model.gguf
  // (tokenizer.chat_template)" or "tokenizer_config.json"); empty when unknown.
  ChatTemplate(std::string source, std::string bos_token, std::string eos_token,
               std::string origin = {});
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // Renders with variables messages, add_generation_prompt, bos_token, eos_token (and the helpers
  // templates expect: raise_exception, strftime_now). Errors raised by the template
  // (raise_exception) or evaluation failures throw InvalidArgument with the template's message.
  std::string apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

  // As apply(), with more variables given as a JSON object (e.g. {"tools": [...],
  // "date_string": "26 Jul 2024"}); they are added after the standard ones and may override them.
  // Throws InvalidArgument when extra_json is not a JSON object.
  std::string apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                    std::string_view extra_json) const;

  // Renders with every variable from a JSON object, for conversations that plain ChatMessages
  // cannot express (OpenAI-style messages with tool_calls, list-of-parts content, tools).
  // bos_token, eos_token and add_generation_prompt (false) are provided unless the object sets them.
  std::string render_json(std::string_view variables_json) const;

  const std::string& source() const { return source_; }
  const std::string& origin() const { return origin_; }

 private:
  struct Impl;
  std::string source_;
  std::string origin_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace insitu
