// Chats: the prompt a conversation gives a model (chat_prompt: its template rendered, BOS
// de-duplicated), and a Chat that keeps a conversation and its KV cache between turns.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "insitu/chat_template.h"
#include "insitu/generate.h"
#include "insitu/session.h"

namespace insitu {

class Executor;
class Model;

// How a conversation becomes a prompt.
struct ChatPromptOptions {
  bool add_generation_prompt = true;  // default true; end with the assistant's turn opening
  bool raw = false;        // default false; no template: the messages' contents concatenated
  std::string extra_json;  // default empty; a JSON object of more template variables ({"tools":
                           // [...]} for tool definitions, "date_string", ...)
};

// The token ids `messages` give `model`: its chat template rendered (throws InvalidArgument when
// the model has none, suggesting raw continuation), the template's control tokens parsed as
// special tokens, and a BOS the template printed dropped when the tokenizer adds one itself (as
// llama.cpp does), so the prompt never starts with two.
std::vector<int32_t> chat_prompt(const Model& model, const std::vector<ChatMessage>& messages,
                                 const ChatPromptOptions& options = {});
// The rendered text alone (BOS de-duplicated), for display and tests.
std::string chat_prompt_text(const Model& model, const std::vector<ChatMessage>& messages,
                             const ChatPromptOptions& options = {});

struct ChatOptions {
  std::string system;      // default empty; a system message kept first across reset()
  int n_ctx = 4096;        // default 4096; the session's context in tokens (<= 0: the model's
                           // trained context, at most 4096)
  KvCacheType kv_type = KvCacheType::kF16;  // default f16
  ChatPromptOptions prompt;  // default: see ChatPromptOptions
};

// A conversation with a model: the messages, and a Session whose KV cache holds the tokens of the
// last turn, so the next turn evaluates only what is new (the common prefix of the cached tokens
// and the new prompt is kept). Not thread-safe; run many Chats on one Executor to serve many
// conversations at once.
class Chat {
 public:
  Chat(std::shared_ptr<const Model> model, Executor& executor, ChatOptions options = {});
  ~Chat();

  // Adds a user message and answers it: renders the conversation, reuses the cached prefix,
  // generates (events to on_event) and appends the assistant's reply. Throws InvalidArgument when
  // the conversation no longer fits the context; the message is then not kept.
  GenerateResult send(std::string user_message, const GenerateOptions& options,
                      const TokenCallback& on_event = nullptr);
  // Answers the conversation as it stands (after add()), appending the reply.
  GenerateResult respond(const GenerateOptions& options, const TokenCallback& on_event = nullptr);
  // Appends a message without answering (a tool result, a prefilled turn).
  void add(ChatMessage message);
  // Back to the system message alone; the cache is kept (its prefix may be reused).
  void reset();
  // Continues on another model (a re-quantized one, say): the cache is dropped.
  void set_model(std::shared_ptr<const Model> model);

  const std::vector<ChatMessage>& messages() const { return messages_; }
  const Model& model() const { return *model_; }
  // Tokens of the last prompt taken from the cache instead of being evaluated again.
  int reused_tokens() const { return reused_; }
  const Session& session() const { return *session_; }

 private:
  std::shared_ptr<const Model> model_;
  Executor& executor_;
  ChatOptions options_;
  std::vector<ChatMessage> messages_;
  std::unique_ptr<Session> session_;
  std::vector<int32_t> cached_;  // the tokens whose keys and values the session holds
  int reused_ = 0;
};

}  // namespace insitu
