#include "model/builtin_templates.h"

namespace insitu {
namespace {

// Gemma's turn format: optional system text folded into the first user turn, roles alternating
// user/model, each turn closed by <end_of_turn>.
constexpr const char* kGemmaTemplate = R"({{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
  {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
  {%- set loop_messages = messages[1:] -%}
{%- else -%}
  {%- set first_user_prefix = '' -%}
  {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
  {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
    {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
  {%- endif -%}
  {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
  {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}
  {{- message['content'] | trim }}
  {{- '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{ '<start_of_turn>model\n' }}
{%- endif -%}
)";

// ChatML, the most common instruction format among the supported families.
constexpr const char* kChatmlTemplate = R"({%- for message in messages -%}
  {{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{ '<|im_start|>assistant\n' }}
{%- endif -%}
)";

}  // namespace

std::string builtin_chat_template(Arch arch, std::string* name) {
  if (arch == Arch::kGemma3) {
    if (name) *name = "gemma";
    return kGemmaTemplate;
  }
  if (name) *name = "chatml";
  return kChatmlTemplate;
}

}  // namespace insitu
