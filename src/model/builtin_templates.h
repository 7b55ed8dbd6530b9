// Chat templates for models whose files carry none (e.g. the Gemma 3 GGUF shipped on PyPI): the
// prompt format the architecture's instruction-tuned models were trained with, written as Jinja2
// so it renders through the same ChatTemplate as a template read from a file.
#pragma once

#include <string>

#include "model/config.h"

namespace insitu {

// The architecture's chat format: Gemma's <start_of_turn> turns for gemma3, ChatML otherwise.
// `name` receives a short label for logs ("gemma", "chatml").
std::string builtin_chat_template(Arch arch, std::string* name = nullptr);

}  // namespace insitu
