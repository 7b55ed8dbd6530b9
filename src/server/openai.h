// OpenAI's wire format: request bodies of /v1/chat/completions and /v1/completions checked and
// turned into a prompt and GenerateOptions, and results turned into response objects, stream
// chunks and error objects (https://platform.openai.com/docs/api-reference).
//
// Every field is checked for its JSON type and range (HTTP bodies are untrusted); a bad one throws
// ApiError naming the field, which the server answers with OpenAI's error object. Unknown fields
// are ignored, as OpenAI-compatible servers do.
//
// Sampling defaults, when a request leaves a field out, are the library's (SamplerOptions:
// temperature 0.8, top_k 40, top_p 0.95, min_p 0.05), as llama-server does; a request that sets
// temperature 0 is greedy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "insitu/generate.h"
#include "insitu/model.h"
#include "server/scheduler.h"

namespace insitu::server {

// An error answered with OpenAI's error object:
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = {}, std::string code = {})
      : std::runtime_error(message), status(status), param(std::move(param)),
        code(std::move(code)) {}
  int status;
  std::string param;
  std::string code;
};

// OpenAI's error type for an HTTP status ("invalid_request_error", "authentication_error", ...).
const char* error_type(int status);
nlohmann::json error_body(int status, const std::string& message, const std::string& param = {},
                          const std::string& code = {});

// A checked completion request.
struct CompletionRequest {
  bool chat = false;               // /v1/chat/completions (else /v1/completions)
  std::vector<int32_t> prompt;     // the prompt's tokens (chat: the template rendered)
  GenerateOptions options;
  int n = 1;
  bool stream = false;
  bool include_usage = false;      // stream_options.include_usage
  bool logprobs = false;           // report logprobs (chat: logprobs; legacy: logprobs >= 0)
  int top_logprobs = 0;
  bool echo = false;               // legacy completions: prepend the prompt's text
  std::string prompt_text;         // legacy completions: the prompt as given
};

// Checks `body` and builds the request for `model`. served_name: the name /v1/models lists (a
// different "model" is 404). n_ctx: a slot's context, which prompt plus max_tokens must fit.
// Throws ApiError (400 for a bad field, 404 for another model).
CompletionRequest parse_completion_request(const nlohmann::json& body, bool chat,
                                           const Model& model, const std::string& served_name,
                                           int n_ctx);

// The finished (non-streamed) response object.
nlohmann::json completion_response(const CompletionRequest& request, const Job& job,
                                   const Model& model, const std::string& id,
                                   const std::string& served_name, int64_t created);

// Fills each choice's "logprobs" of a finished response from its events (every event the job
// reported for that choice, in order).
void add_logprobs(nlohmann::json& response, const CompletionRequest& request, const Model& model,
                  const std::vector<std::vector<TokenEvent>>& events);

// Builds the chunks of a streamed response, one event at a time.
class StreamWriter {
 public:
  StreamWriter(const CompletionRequest& request, const Model& model, std::string id,
               std::string served_name, int64_t created);
  // The SSE lines ("data: {...}\n\n") for one event of choice `index`.
  std::string event(int index, const TokenEvent& event);
  // The closing lines: the usage chunk when asked for, then "data: [DONE]".
  std::string finish(const Job& job);

 private:
  nlohmann::json chunk(nlohmann::json choices) const;
  const CompletionRequest& request_;
  const Model& model_;
  std::string id_;
  std::string served_name_;
  int64_t created_;
  std::vector<bool> started_;  // per choice: the role chunk was sent
};

// usage: {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details":
// {"cached_tokens"}}.
nlohmann::json usage_json(const Job& job);

// A short random id suffix ("chatcmpl-" + this).
std::string random_id();

}  // namespace insitu::server
