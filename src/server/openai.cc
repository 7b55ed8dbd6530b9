#include "server/openai.h"

#include <cmath>
#include <random>

#include <fmt/format.h>

#include "insitu/chat.h"
#include "insitu/error.h"

namespace insitu::server {

using nlohmann::json;

const char* error_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "invalid_request_error";
    case 429: return "rate_limit_error";
    case 503: return "server_overloaded";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

json error_body(int status, const std::string& message, const std::string& param,
                const std::string& code) {
  return {{"error",
           {{"message", message},
            {"type", error_type(status)},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

std::string random_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& message) {
  throw ApiError(400, fmt::format("'{}': {}", param, message), param, "invalid_value");
}

const char* type_name(const json& v) { return v.type_name(); }

// The field's value when present and not null.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

double number(const json& body, const char* name, double lo, double hi) {
  const json& v = body.at(name);
  if (!v.is_number())
    bad(name, fmt::format("expected a number, got {}", type_name(v)));
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi)
    bad(name, fmt::format("{} is out of range; expected {} to {}", v.dump(), lo, hi));
  return d;
}

int64_t integer(const json& body, const char* name, int64_t lo, int64_t hi) {
  const json& v = body.at(name);
  if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
    bad(name, fmt::format("expected an integer, got {}", v.is_number() ? v.dump() : type_name(v)));
  const double d = v.get<double>();
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    bad(name, fmt::format("{} is out of range; expected {} to {}", v.dump(), lo, hi));
  return v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(d);
}

bool boolean(const json& body, const char* name) {
  const json& v = body.at(name);
  if (!v.is_boolean()) bad(name, fmt::format("expected a boolean, got {}", type_name(v)));
  return v.get<bool>();
}

// OpenAI message content: a string, or a list of parts of which the text parts are taken.
std::string content_text(const json& content, size_t i) {
  const std::string param = fmt::format("messages[{}].content", i);
  if (content.is_null()) return {};
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad(param, fmt::format("expected a string or an array of parts, got {}",
                                                  type_name(content)));
  std::string text;
  for (const json& part : content) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      bad(param, "each part must be an object with a string 'type'");
    if (part["type"] != "text")
      bad(param, fmt::format("part type '{}' is not supported; supported: text",
                             part["type"].get<std::string>()));
    if (!part.contains("text") || !part["text"].is_string())
      bad(param, "a text part needs a string 'text'");
    text += part["text"].get<std::string>();
  }
  return text;
}

void parse_sampling(const json& body, GenerateOptions& o) {
  SamplerOptions& s = o.sampling;
  if (field(body, "temperature")) s.temperature = static_cast<float>(number(body, "temperature", 0, 2));
  if (field(body, "top_p")) {
    s.top_p = static_cast<float>(number(body, "top_p", 0, 1));
    if (s.top_p <= 0) bad("top_p", "must be above 0");
  }
  if (field(body, "top_k")) {
    const int64_t k = integer(body, "top_k", -1, 1 << 20);
    s.top_k = static_cast<int>(std::max<int64_t>(k, 0));
  }
  if (field(body, "min_p")) s.min_p = static_cast<float>(number(body, "min_p", 0, 1));
  if (field(body, "repetition_penalty")) {
    s.repeat_penalty = static_cast<float>(number(body, "repetition_penalty", 0, 100));
    if (s.repeat_penalty <= 0) bad("repetition_penalty", "must be above 0");
  }
  if (field(body, "frequency_penalty"))
    s.frequency_penalty = static_cast<float>(number(body, "frequency_penalty", -2, 2));
  if (field(body, "presence_penalty"))
    s.presence_penalty = static_cast<float>(number(body, "presence_penalty", -2, 2));
  if (field(body, "seed")) {
    const json& v = body["seed"];
    if (!v.is_number_integer()) bad("seed", fmt::format("expected an integer, got {}", type_name(v)));
    s.seed = v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(v.get<int64_t>());
  } else {
    s.seed = std::random_device{}();
  }
  if (const json* stop = field(body, "stop")) {
    if (stop->is_string()) {
      o.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > 16) bad("stop", "at most 16 stop strings");
      for (const json& x : *stop) {
        if (!x.is_string()) bad("stop", "expected strings");
        o.stop.push_back(x.get<std::string>());
      }
    } else {
      bad("stop", fmt::format("expected a string or an array of strings, got {}", type_name(*stop)));
    }
  }
  try {
    o.validate();
  } catch (const InvalidArgument& e) {
    throw ApiError(400, e.what(), {}, "invalid_value");
  }
}

}  // namespace

CompletionRequest parse_completion_request(const json& body, bool chat, const Model& model,
                                           const std::string& served_name, int n_ctx) {
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  CompletionRequest r;
  r.chat = chat;
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) bad("model", fmt::format("expected a string, got {}", type_name(*m)));
    if (m->get<std::string>() != served_name)
      throw ApiError(404, fmt::format("The model '{}' does not exist; this server serves '{}'",
                                      m->get<std::string>(), served_name),
                     "model", "model_not_found");
  }
  if (field(body, "stream")) r.stream = boolean(body, "stream");
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) bad("stream_options", "expected an object");
    if (field(*so, "include_usage")) r.include_usage = boolean(*so, "include_usage");
  }
  if (field(body, "n")) r.n = static_cast<int>(integer(body, "n", 1, 128));
  parse_sampling(body, r.options);

  // logprobs: a boolean with top_logprobs (chat), an integer 0..5 (legacy completions).
  if (chat) {
    if (field(body, "logprobs")) r.logprobs = boolean(body, "logprobs");
    if (field(body, "top_logprobs")) {
      r.top_logprobs = static_cast<int>(integer(body, "top_logprobs", 0, 20));
      if (!r.logprobs && r.top_logprobs > 0) bad("top_logprobs", "requires logprobs: true");
    }
  } else if (field(body, "logprobs")) {
    r.logprobs = true;
    r.top_logprobs = static_cast<int>(integer(body, "logprobs", 0, 5));
  }
  r.options.logprobs = r.logprobs;
  r.options.top_logprobs = r.top_logprobs;

  const Tokenizer& tok = model.tokenizer();
  if (chat) {
    const json* messages = field(body, "messages");
    if (!messages) throw ApiError(400, "'messages' is required", "messages", "missing_required_parameter");
    if (!messages->is_array() || messages->empty())
      bad("messages", "expected a non-empty array of messages");
    std::vector<ChatMessage> list;
    for (size_t i = 0; i < messages->size(); ++i) {
      const json& m = (*messages)[i];
      if (!m.is_object()) bad(fmt::format("messages[{}]", i), "expected an object");
      if (!m.contains("role") || !m["role"].is_string())
        bad(fmt::format("messages[{}].role", i), "expected a string");
      ChatMessage cm;
      cm.role = m["role"].get<std::string>();
      if (cm.role == "developer") cm.role = "system";
      cm.content = content_text(m.contains("content") ? m["content"] : json(nullptr), i);
      list.push_back(std::move(cm));
    }
    ChatPromptOptions po;
    if (const json* tools = field(body, "tools")) {
      if (!tools->is_array()) bad("tools", "expected an array");
      po.extra_json = json{{"tools", *tools}}.dump();
    }
    try {
      r.prompt = chat_prompt(model, list, po);
    } catch (const InvalidArgument& e) {
      throw ApiError(400, e.what(), "messages");
    }
  } else {
    const json* prompt = field(body, "prompt");
    if (!prompt) throw ApiError(400, "'prompt' is required", "prompt", "missing_required_parameter");
    if (prompt->is_string()) {
      r.prompt_text = prompt->get<std::string>();
      r.prompt = tok.encode(r.prompt_text, true, true);
    } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
      r.prompt_text = (*prompt)[0].get<std::string>();
      r.prompt = tok.encode(r.prompt_text, true, true);
    } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number_integer()) {
      for (const json& t : *prompt) {
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok.n_vocab())
          bad("prompt", fmt::format("token ids must be integers in [0, {})", tok.n_vocab()));
        r.prompt.push_back(t.get<int32_t>());
      }
      r.prompt_text = tok.decode(r.prompt, false);
    } else {
      bad("prompt", "expected a string, a one-string array or an array of token ids");
    }
    if (field(body, "echo")) r.echo = boolean(body, "echo");
    if (r.prompt.empty()) bad("prompt", "the prompt is empty");
  }
  const int64_t room = n_ctx - static_cast<int64_t>(r.prompt.size());
  if (room < 1)
    throw ApiError(400, fmt::format("This model's maximum context length is {} tokens; the prompt "
                                    "has {}", n_ctx, r.prompt.size()),
                   chat ? "messages" : "prompt", "context_length_exceeded");
  const char* max_name = field(body, "max_completion_tokens") ? "max_completion_tokens"
                                                              : "max_tokens";
  if (field(body, max_name)) {
    const int64_t m = integer(body, max_name, 1, int64_t{1} << 40);
    if (m > room)
      throw ApiError(400, fmt::format("This model's maximum context length is {} tokens; the prompt "
                                      "has {} and {} asks for {} more", n_ctx, r.prompt.size(),
                                      max_name, m),
                     max_name, "context_length_exceeded");
    r.options.max_tokens = static_cast<int>(m);
  } else {
    r.options.max_tokens = 0;  // until the end of generation or a full context
  }
  return r;
}

namespace {

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// The token as text for logprobs (raw bytes may be a partial character: JSON needs valid UTF-8,
// so nlohmann's replace handler is used when dumping).
std::string piece(const Tokenizer& tok, int32_t id) { return tok.token_to_piece(id, true); }

// True for the event of an end-of-generation token, which is not part of the text or logprobs.
bool is_closing_eog(const Tokenizer& tok, const TokenEvent& e) {
  return e.token < 0 || (e.finish_reason == StopReason::kEog && tok.is_eog(e.token));
}

json chat_logprob_entry(const Tokenizer& tok, const TokenEvent& e) {
  json top = json::array();
  for (const auto& [id, lp] : e.top_logprobs) {
    const std::string p = piece(tok, id);
    top.push_back({{"token", p}, {"logprob", lp}, {"bytes", bytes_of(p)}});
  }
  const std::string p = piece(tok, e.token);
  return {{"token", p}, {"logprob", e.logprob}, {"bytes", bytes_of(p)}, {"top_logprobs", top}};
}

// Legacy completions' logprobs for a run of events, text offsets from `offset`.
json legacy_logprobs(const Tokenizer& tok, const std::vector<TokenEvent>& events, size_t offset) {
  json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenEvent& e : events) {
    const std::string p = piece(tok, e.token);
    tokens.push_back(p);
    lps.push_back(e.logprob);
    json top = json::object();
    for (const auto& [id, lp] : e.top_logprobs) top[piece(tok, id)] = lp;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += p.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops},
          {"text_offset", offsets}};
}

const char* finish_reason(const GenerateResult& r) { return finish_reason_name(r.stop_reason); }

}  // namespace

json usage_json(const Job& job) {
  int64_t completion = 0;
  for (const GenerateResult& r : job.results()) completion += static_cast<int64_t>(r.tokens.size());
  const int64_t prompt = job.results().empty() ? 0 : job.results()[0].stats.n_prompt;
  const int reused = job.results().empty() ? 0 : job.reused_tokens() /
                                                     static_cast<int>(job.results().size());
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion},
          {"prompt_tokens_details", {{"cached_tokens", reused}}}};
}

json completion_response(const CompletionRequest& request, const Job& job, const Model& model,
                         const std::string& id, const std::string& served_name, int64_t created) {
  (void)model;
  json choices = json::array();
  for (size_t i = 0; i < job.results().size(); ++i) {
    const GenerateResult& r = job.results()[i];
    json choice = {{"index", i}, {"finish_reason", finish_reason(r)}, {"logprobs", nullptr}};
    if (request.chat) {
      choice["message"] = {{"role", "assistant"}, {"content", r.text}};
    } else {
      choice["text"] = request.echo ? request.prompt_text + r.text : r.text;
    }
    choices.push_back(std::move(choice));
  }
  json out = {{"id", (request.chat ? "chatcmpl-" : "cmpl-") + id},
              {"object", request.chat ? "chat.completion" : "text_completion"},
              {"created", created},
              {"model", served_name},
              {"system_fingerprint", "insitu"},
              {"choices", choices},
              {"usage", usage_json(job)}};
  return out;
}

// Fills choice i's "logprobs" of a finished response from the events collected for it.
void add_logprobs(json& response, const CompletionRequest& request, const Model& model,
                  const std::vector<std::vector<TokenEvent>>& events) {
  const Tokenizer& tok = model.tokenizer();
  for (size_t i = 0; i < events.size() && i < response["choices"].size(); ++i) {
    std::vector<TokenEvent> kept;
    for (const TokenEvent& e : events[i])
      if (!is_closing_eog(tok, e)) kept.push_back(e);
    if (request.chat) {
      json content = json::array();
      for (const TokenEvent& e : kept) content.push_back(chat_logprob_entry(tok, e));
      response["choices"][i]["logprobs"] = {{"content", content}, {"refusal", nullptr}};
    } else {
      response["choices"][i]["logprobs"] =
          legacy_logprobs(tok, kept, request.echo ? request.prompt_text.size() : 0);
    }
  }
}

StreamWriter::StreamWriter(const CompletionRequest& request, const Model& model, std::string id,
                           std::string served_name, int64_t created)
    : request_(request), model_(model), id_(std::move(id)), served_name_(std::move(served_name)),
      created_(created), started_(static_cast<size_t>(request.n), false) {}

json StreamWriter::chunk(json choices) const {
  json c = {{"id", (request_.chat ? "chatcmpl-" : "cmpl-") + id_},
            {"object", request_.chat ? "chat.completion.chunk" : "text_completion"},
            {"created", created_},
            {"model", served_name_},
            {"system_fingerprint", "insitu"},
            {"choices", std::move(choices)}};
  if (request_.include_usage) c["usage"] = nullptr;
  return c;
}

static std::string sse(const json& j) {
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

std::string StreamWriter::event(int index, const TokenEvent& e) {
  const Tokenizer& tok = model_.tokenizer();
  std::string out;
  const size_t i = static_cast<size_t>(index);
  if (request_.chat && !started_[i]) {
    started_[i] = true;
    out += sse(chunk(json::array({{{"index", index},
                                   {"delta", {{"role", "assistant"}, {"content", ""}}},
                                   {"logprobs", nullptr},
                                   {"finish_reason", nullptr}}})));
  }
  const bool with_logprobs = request_.logprobs && !is_closing_eog(tok, e);
  if (!e.text.empty() || with_logprobs) {
    json choice = {{"index", index}, {"finish_reason", nullptr}, {"logprobs", nullptr}};
    if (request_.chat) {
      choice["delta"] = {{"content", e.text}};
      if (with_logprobs)
        choice["logprobs"] = {{"content", json::array({chat_logprob_entry(tok, e)})},
                              {"refusal", nullptr}};
    } else {
      choice["text"] = e.text;
      if (with_logprobs) choice["logprobs"] = legacy_logprobs(tok, {e}, 0);
    }
    out += sse(chunk(json::array({choice})));
  }
  if (e.is_last) {
    const char* reason = e.finish_reason ? finish_reason_name(*e.finish_reason) : "stop";
    json choice = {{"index", index}, {"finish_reason", reason}, {"logprobs", nullptr}};
    if (request_.chat) choice["delta"] = json::object();
    else choice["text"] = "";
    out += sse(chunk(json::array({choice})));
  }
  return out;
}

std::string StreamWriter::finish(const Job& job) {
  std::string out;
  if (!job.error().empty())
    out += sse(error_body(500, job.error()));
  if (request_.include_usage) {
    json c = chunk(json::array());
    c["usage"] = usage_json(job);
    out += sse(c);
  }
  out += "data: [DONE]\n\n";
  return out;
}

}  // namespace insitu::server
