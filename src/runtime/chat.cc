// Chats: conversation -> prompt (template, special tokens, BOS once), and a Chat that reuses its
// KV cache between turns.
#include "insitu/chat.h"

#include <algorithm>

#include <fmt/format.h>

#include "insitu/error.h"
#include "insitu/executor.h"
#include "model/model.h"

namespace insitu {

std::string chat_prompt_text(const Model& model, const std::vector<ChatMessage>& messages,
                             const ChatPromptOptions& options) {
  if (options.raw) {
    std::string all;
    for (const ChatMessage& m : messages) all += m.content;
    return all;
  }
  const ChatTemplate* tmpl = model.chat_template();
  if (tmpl == nullptr) {
    throw InvalidArgument("model '" + model.config().name +
                          "' has no usable chat template; use raw text continuation (--raw)");
  }
  std::string text =
      options.extra_json.empty()
          ? tmpl->apply(messages, options.add_generation_prompt)
          : tmpl->apply(messages, options.add_generation_prompt, options.extra_json);
  // Templates that print bos_token themselves would get a second BOS from the tokenizer; drop the
  // rendered one, as llama.cpp does.
  const Tokenizer& tok = model.tokenizer();
  if (tok.add_bos() && tok.bos_id() >= 0) {
    const std::string bos = tok.token_text(tok.bos_id());
    if (!bos.empty() && text.starts_with(bos)) text.erase(0, bos.size());
  }
  return text;
}

std::vector<int32_t> chat_prompt(const Model& model, const std::vector<ChatMessage>& messages,
                                 const ChatPromptOptions& options) {
  // Chat prompts carry the template's control tokens as text: parse them as special tokens.
  return model.tokenizer().encode(chat_prompt_text(model, messages, options),
                                  /*add_special=*/true, /*parse_special=*/!options.raw);
}

Chat::Chat(std::shared_ptr<const Model> model, Executor& executor, ChatOptions options)
    : model_(std::move(model)), executor_(executor), options_(std::move(options)) {
  if (!model_) throw InvalidArgument("Chat: null model");
  if (!options_.system.empty()) messages_.push_back({"system", options_.system});
  session_ = std::make_unique<Session>(model_, options_.n_ctx, executor_, options_.kv_type);
}

Chat::~Chat() = default;

void Chat::add(ChatMessage message) { messages_.push_back(std::move(message)); }

void Chat::reset() { messages_.resize(options_.system.empty() ? 0 : 1); }

void Chat::set_model(std::shared_ptr<const Model> model) {
  if (!model) throw InvalidArgument("Chat::set_model: null model");
  model_ = std::move(model);
  session_ = std::make_unique<Session>(model_, options_.n_ctx, executor_, options_.kv_type);
  cached_.clear();
}

GenerateResult Chat::send(std::string user_message, const GenerateOptions& options,
                          const TokenCallback& on_event) {
  messages_.push_back({"user", std::move(user_message)});
  try {
    return respond(options, on_event);
  } catch (...) {
    messages_.pop_back();
    throw;
  }
}

GenerateResult Chat::respond(const GenerateOptions& options, const TokenCallback& on_event) {
  const std::vector<int32_t> ids = chat_prompt(*model_, messages_, options_.prompt);
  if (ids.empty()) throw InvalidArgument("Chat: the conversation renders to no tokens");
  if (static_cast<int>(ids.size()) >= session_->n_ctx()) {
    throw InvalidArgument(fmt::format("the conversation no longer fits the context ({} tokens "
                                      "for {}); reset it to start again", ids.size(),
                                      session_->n_ctx()));
  }
  // Reuse the cached prefix; evaluate at least one token so there are logits to sample from.
  size_t common = 0;
  while (common < cached_.size() && common < ids.size() && cached_[common] == ids[common])
    ++common;
  common = std::min(common, ids.size() - 1);
  common = static_cast<size_t>(session_->truncate(static_cast<int>(common)));
  reused_ = static_cast<int>(common);
  const std::span<const int32_t> prompt(ids.data() + common, ids.size() - common);
  const std::span<const int32_t> history(ids.data(), common);
  GenerateResult r = generate(*session_, prompt, options, on_event, history);
  messages_.push_back({"assistant", r.text});
  cached_ = ids;
  cached_.insert(cached_.end(), r.tokens.begin(), r.tokens.end());
  cached_.resize(std::min(cached_.size(), static_cast<size_t>(session_->n_past())));
  return r;
}

}  // namespace insitu
