#include "server/server.h"

#include <httplib.h>

#include <atomic>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "api/auto_quant.h"
#include "insitu/error.h"
#include "insitu/executor.h"
#include "insitu/model.h"
#include "model/isq.h"
#include "quality/tune.h"
#include "server/calibration.h"
#include "server/chat_page.h"
#include "server/openai.h"

namespace insitu::server {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message,
                 const std::string& param = {}, const std::string& code = {}) {
  reply(res, status, error_body(status, message, param, code));
}

// The request body as JSON; 400 naming the parse error otherwise.
json parse_body(const httplib::Request& req) {
  try {
    return json::parse(req.body);
  } catch (const json::parse_error& e) {
    throw ApiError(400, fmt::format("the request body is not valid JSON: {}", e.what()), {},
                   "invalid_json");
  }
}

// Prometheus' text format: one metric with its help and type.
void metric(std::string& out, const char* name, const char* type, const char* help, double value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

thread_local Clock::time_point request_start;

}  // namespace

struct Server::Impl {
  BuildOptions build;
  ServerOptions options;
  httplib::Server http;
  std::atomic<int> bound_port{0};

  // The model new requests run on; swapped by /re_isq. Null while loading.
  mutable std::mutex model_mutex;
  std::shared_ptr<const Model> model;
  std::string served_name;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<Scheduler> scheduler;
  std::atomic<bool> ready{false};
  std::atomic<bool> stopping{false};
  std::string load_error;
  std::thread loader;

  // Counters for /metrics.
  std::mutex counters_mutex;
  std::map<std::string, uint64_t> requests_by_route;  // "POST /v1/completions" -> n
  std::map<int, uint64_t> responses_by_status;

  // /re_isq
  struct ReIsq {
    std::string status = "idle";  // idle | running | done | failed
    std::string target;
    std::string error;
    double seconds = 0;
    int64_t started = 0;
    int count = 0;
  };
  std::mutex re_isq_mutex;
  ReIsq re_isq;
  std::thread re_isq_thread;

  Impl(BuildOptions b, ServerOptions o) : build(std::move(b)), options(std::move(o)) {}

  std::shared_ptr<const Model> current_model() const {
    std::lock_guard<std::mutex> lock(model_mutex);
    return model;
  }

  void load();
  void routes();
  void completions(const httplib::Request& req, httplib::Response& res, bool chat);
  void post_re_isq(const httplib::Request& req, httplib::Response& res);
  // Starts re-quantizing `m` with `isq` in the background (202 with the status), or 409.
  void start_re_isq(httplib::Response& res, std::shared_ptr<const Model> m, IsqOptions isq);
  void calibration_apply(const httplib::Request& req, httplib::Response& res);

  // Online calibration: statistics from live traffic while collecting.
  std::mutex calibration_mutex;
  std::unique_ptr<LiveImatrix> calibration;  // the one attached to the scheduler, if any
  bool collecting = false;
  int64_t calibration_started = 0;
  json re_isq_status();
  std::string metrics_text();
  json tune(const json& body);
};

Server::Server(BuildOptions build, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(build), std::move(options))) {}

Server::~Server() {
  stop(0);
  if (impl_->loader.joinable()) impl_->loader.join();
  if (impl_->re_isq_thread.joinable()) impl_->re_isq_thread.join();
}

int Server::port() const { return impl_->bound_port.load(); }

void Server::Impl::load() {
  try {
    BuildOptions b = build;
    b.show_progress = false;
    std::shared_ptr<const Model> m = ModelBuilder(b).build();
    executor = std::make_unique<Executor>(b.threads);
    scheduler = std::make_unique<Scheduler>(options.scheduler, *executor);
    {
      std::lock_guard<std::mutex> lock(model_mutex);
      model = m;
      served_name = options.served_model_name.empty() ? model_info(*m).name
                                                      : options.served_model_name;
      if (served_name.empty()) served_name = "insitu";
    }
    ready.store(true);
    spdlog::info("serve: {} loaded; serving as '{}' with {} slots of {} tokens", m->source_path(),
                 served_name, options.scheduler.n_slots, options.scheduler.n_ctx);
    std::fprintf(stderr, "insitu serve: model '%s' ready on http://%s:%d\n", served_name.c_str(),
                 options.host.c_str(), bound_port.load());
  } catch (const std::exception& e) {
    load_error = e.what();
    std::fprintf(stderr, "insitu serve: loading failed: %s\n", e.what());
    // stop() is ignored until the listener runs; run() starts it right after this thread.
    for (int i = 0; i < 1000 && !http.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    http.stop();
  }
}

void Server::run() {
  Impl& s = *impl_;
  s.routes();
  int port = s.options.port;
  if (port == 0) {
    port = s.http.bind_to_any_port(s.options.host);
    if (port <= 0) throw IoError(fmt::format("serve: cannot listen on {}", s.options.host));
  } else if (!s.http.bind_to_port(s.options.host, port)) {
    throw IoError(fmt::format("serve: cannot listen on {}:{} (in use, or not an address of this "
                              "machine)", s.options.host, port));
  }
  s.bound_port.store(port);
  std::fprintf(stderr, "insitu serve: listening on http://%s:%d (loading the model)\n",
               s.options.host.c_str(), port);
  s.loader = std::thread([&s] { s.load(); });
  s.http.listen_after_bind();
  if (s.loader.joinable()) s.loader.join();
  if (!s.load_error.empty()) throw Error(s.load_error);
}

void Server::stop(int grace_ms) {
  Impl& s = *impl_;
  if (s.stopping.exchange(true)) return;
  // Wait for loading to end first, so that the scheduler exists (or never will).
  if (s.loader.joinable() && std::this_thread::get_id() != s.loader.get_id()) s.loader.join();
  if (s.scheduler) s.scheduler->shutdown(std::chrono::milliseconds(grace_ms));
  s.http.stop();
}

void Server::Impl::routes() {
  const size_t n_http_threads = static_cast<size_t>(
      std::min(512, options.scheduler.n_slots + options.scheduler.max_queued + 16));
  http.new_task_queue = [n_http_threads] { return new httplib::ThreadPool(n_http_threads); };
  http.set_payload_max_length(options.max_body_bytes);
  http.set_read_timeout(30, 0);
  http.set_write_timeout(30, 0);

  // Authentication, and refusing work while loading or stopping.
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    request_start = Clock::now();
    {
      std::lock_guard<std::mutex> lock(counters_mutex);
      ++requests_by_route[req.method + " " + req.path];
    }
    if (req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (!options.api_key.empty()) {
      const std::string auth = req.get_header_value("Authorization");
      const std::string key = auth.starts_with("Bearer ") ? auth.substr(7)
                                                          : req.get_header_value("x-api-key");
      if (key != options.api_key) {
        reply_error(res, 401,
                    key.empty() ? "Missing API key: send 'Authorization: Bearer KEY'"
                                : "Incorrect API key provided",
                    {}, "invalid_api_key");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (req.path == "/") return httplib::Server::HandlerResponse::Unhandled;
    if (stopping.load()) {
      reply_error(res, 503, "the server is shutting down", {}, "shutting_down");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!ready.load()) {
      reply_error(res, 503, "the model is loading", {}, "loading");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Statuses httplib sets itself (unknown route, body too large, unreadable request) get an
  // OpenAI error object; ours already carry one.
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message;
    switch (res.status) {
      case 404: message = fmt::format("Unknown route {} {}", req.method, req.path); break;
      case 413: message = "the request body is too large"; break;
      default: message = fmt::format("HTTP {}", res.status); break;
    }
    reply_error(res, res.status, message);
    return httplib::Server::HandlerResponse::Handled;
  }));

  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        try {
          std::rethrow_exception(ep);
        } catch (const ApiError& e) {
          reply_error(res, e.status, e.what(), e.param, e.code);
        } catch (const Saturated& e) {
          reply_error(res, 503, e.what(), {}, "server_busy");
        } catch (const InvalidArgument& e) {
          reply_error(res, 400, e.what());
        } catch (const std::exception& e) {
          reply_error(res, 500, e.what());
        } catch (...) {
          reply_error(res, 500, "unknown error");
        }
      });

  if (options.access_log) {
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      const double ms =
          std::chrono::duration<double, std::milli>(Clock::now() - request_start).count();
      {
        std::lock_guard<std::mutex> lock(counters_mutex);
        ++responses_by_status[res.status];
      }
      const json line = {{"ts", unix_now()},       {"remote", req.remote_addr},
                         {"method", req.method},   {"path", req.path},
                         {"status", res.status},   {"ms", std::round(ms * 10) / 10},
                         {"bytes_in", req.body.size()}};
      std::fprintf(stderr, "%s\n", dump(line).c_str());
    });
  }

  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(chat_page_html(), "text/html; charset=utf-8");
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (!ready.load()) return reply_error(res, 503, "the model is loading", {}, "loading");
    reply(res, 200, {{"status", "ok"}});
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const std::shared_ptr<const Model> m = current_model();
    const ModelInfo info = model_info(*m);
    reply(res, 200,
          {{"object", "list"},
           {"data", json::array({{{"id", served_name},
                                  {"object", "model"},
                                  {"created", unix_now()},
                                  {"owned_by", "insitu"},
                                  {"meta",
                                   {{"architecture", info.architecture},
                                    {"n_params", info.n_params},
                                    {"n_ctx", options.scheduler.n_ctx},
                                    {"n_ctx_train", info.n_ctx_train},
                                    {"weight_bytes", info.weight_bytes},
                                    {"weight_types", info.weight_types}}}}})}});
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    completions(req, res, true);
  });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    completions(req, res, false);
  });
  http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    const json body = parse_body(req);
    if (!body.is_object() || !body.contains("content") || !body["content"].is_string())
      throw ApiError(400, "'content': expected a string", "content");
    bool add_special = false;
    if (body.contains("add_special")) {
      if (!body["add_special"].is_boolean())
        throw ApiError(400, "'add_special': expected a boolean", "add_special");
      add_special = body["add_special"].get<bool>();
    }
    const std::shared_ptr<const Model> m = current_model();
    const std::vector<int32_t> ids =
        m->tokenizer().encode(body["content"].get<std::string>(), add_special, true);
    reply(res, 200, {{"tokens", ids}});
  });
  http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    const json body = parse_body(req);
    const std::shared_ptr<const Model> m = current_model();
    const int32_t n_vocab = m->tokenizer().n_vocab();
    if (!body.is_object() || !body.contains("tokens") || !body["tokens"].is_array())
      throw ApiError(400, "'tokens': expected an array of token ids", "tokens");
    std::vector<int32_t> ids;
    for (const json& t : body["tokens"]) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= n_vocab)
        throw ApiError(400, fmt::format("'tokens': ids must be integers in [0, {})", n_vocab),
                       "tokens");
      ids.push_back(t.get<int32_t>());
    }
    reply(res, 200, {{"content", m->tokenizer().decode(ids, false)}});
  });
  http.Post("/re_isq", [this](const httplib::Request& req, httplib::Response& res) {
    post_re_isq(req, res);
  });
  http.Get("/re_isq", [this](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, re_isq_status());
  });
  http.Post("/calibration/start", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(calibration_mutex);
    auto fresh = std::make_unique<LiveImatrix>();
    scheduler->set_observer(fresh.get());  // the old collector is no longer used after this
    calibration = std::move(fresh);
    collecting = true;
    calibration_started = unix_now();
    reply(res, 200, {{"status", "collecting"}, {"started", calibration_started}});
  });
  http.Get("/calibration/status", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(calibration_mutex);
    reply(res, 200,
          {{"status", collecting ? "collecting" : (calibration ? "stopped" : "idle")},
           {"started", calibration ? json(calibration_started) : json(nullptr)},
           {"tokens", calibration ? calibration->rows() : 0},
           {"weights", calibration ? calibration->entries() : 0}});
  });
  http.Post("/calibration/apply", [this](const httplib::Request& req, httplib::Response& res) {
    calibration_apply(req, res);
  });
  http.Post("/v1/models/tune", [this](const httplib::Request& req, httplib::Response& res) {
    const json body = req.body.empty() ? json::object() : parse_body(req);
    if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
    reply(res, 200, tune(body));
  });
}

void Server::Impl::completions(const httplib::Request& req, httplib::Response& res, bool chat) {
  const json body = parse_body(req);
  const std::shared_ptr<const Model> m = current_model();
  auto request = std::make_shared<CompletionRequest>(
      parse_completion_request(body, chat, *m, served_name, options.scheduler.n_ctx));
  if (request->n > options.scheduler.n_slots)
    throw ApiError(400, fmt::format("'n': {} is more than this server's {} parallel slots",
                                    request->n, options.scheduler.n_slots), "n");
  std::shared_ptr<Job> job = scheduler->submit(m, request->prompt, request->options, request->n);
  const std::string id = random_id();
  const int64_t created = unix_now();

  if (!request->stream) {
    std::vector<std::vector<TokenEvent>> events(static_cast<size_t>(request->n));
    std::vector<Job::Piece> pieces;
    while (job->take(pieces, std::chrono::milliseconds(1000))) {
      if (request->logprobs)
        for (Job::Piece& p : pieces) events[static_cast<size_t>(p.index)].push_back(std::move(p.event));
      pieces.clear();
    }
    job->wait();
    if (!job->error().empty()) return reply_error(res, 500, job->error());
    json out = completion_response(*request, *job, *m, id, served_name, created);
    if (request->logprobs) add_logprobs(out, *request, *m, events);
    return reply(res, 200, out);
  }

  struct Stream {
    std::shared_ptr<CompletionRequest> request;
    std::shared_ptr<const Model> model;
    std::shared_ptr<Job> job;
    StreamWriter writer;
    Clock::time_point last_write = Clock::now();
    Stream(std::shared_ptr<CompletionRequest> r, std::shared_ptr<const Model> m,
           std::shared_ptr<Job> j, const std::string& id, const std::string& name, int64_t t)
        : request(std::move(r)), model(std::move(m)), job(std::move(j)),
          writer(*request, *model, id, name, t) {}
  };
  auto stream = std::make_shared<Stream>(request, m, job, id, served_name, created);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [stream](size_t, httplib::DataSink& sink) {
        std::vector<Job::Piece> pieces;
        const bool more = stream->job->take(pieces, std::chrono::milliseconds(250));
        std::string out;
        for (const Job::Piece& p : pieces) out += stream->writer.event(p.index, p.event);
        if (!more) out += stream->writer.finish(*stream->job);
        // While nothing is generated (queued, or prefilling a long prompt), an SSE comment now
        // and then finds out whether the client is still there.
        if (out.empty() && Clock::now() - stream->last_write > std::chrono::milliseconds(500))
          out = ": waiting\n\n";
        if (!out.empty()) {
          if (!sink.write(out.data(), out.size())) {
            stream->job->cancel();
            return false;
          }
          stream->last_write = Clock::now();
        }
        if (!more) sink.done();
        return true;
      },
      [stream](bool success) {
        if (!success) stream->job->cancel();
      });
}

void Server::Impl::post_re_isq(const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  const char* key = body.contains("ggml_type") ? "ggml_type" : "isq";
  if (!body.contains(key) || !body[key].is_string())
    throw ApiError(400, "'ggml_type': expected a type name such as \"q4k\"", "ggml_type");
  const std::string name = body[key].get<std::string>();
  const std::shared_ptr<const Model> m = current_model();
  IsqOptions isq;
  if (m->isq_options() != nullptr) isq = *m->isq_options();
  try {
    const IsqTarget target = parse_isq_target(name);
    isq.type = target.type;
    isq.mix = target.mix;
    isq.topology_only = false;
    isq.show_progress = false;
    m->plan_isq(isq);  // every check re_isq makes, before anything starts
  } catch (const InvalidArgument& e) {
    throw ApiError(400, fmt::format("'ggml_type': {}", e.what()), "ggml_type", "invalid_value");
  }
  start_re_isq(res, m, isq);
}

void Server::Impl::start_re_isq(httplib::Response& res, std::shared_ptr<const Model> m,
                                IsqOptions isq) {
  {
    std::lock_guard<std::mutex> lock(re_isq_mutex);
    if (re_isq.status == "running")
      return reply_error(res, 409, fmt::format("a re-quantization to {} is already running",
                                               re_isq.target), {}, "busy");
    re_isq.status = "running";
    re_isq.target = isq_target_name(isq);
    re_isq.error.clear();
    re_isq.started = unix_now();
    re_isq.seconds = 0;
    if (re_isq_thread.joinable()) re_isq_thread.join();
    re_isq_thread = std::thread([this, m, isq] {
      const auto t0 = Clock::now();
      std::string error;
      try {
        std::shared_ptr<const Model> next = m->re_isq(isq);
        std::lock_guard<std::mutex> lock(model_mutex);
        model = std::move(next);  // new requests only; running ones keep the old pointer
      } catch (const std::exception& e) {
        error = e.what();
      }
      std::lock_guard<std::mutex> lock(re_isq_mutex);
      re_isq.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      re_isq.status = error.empty() ? "done" : "failed";
      re_isq.error = error;
      ++re_isq.count;
      if (error.empty())
        spdlog::info("serve: re-quantized to {} in {:.1f} s", re_isq.target, re_isq.seconds);
      else
        spdlog::error("serve: re-quantization to {} failed: {}", re_isq.target, error);
    });
  }
  reply(res, 202, re_isq_status());
}

// {"save_imatrix": PATH?, "ggml_type": TYPE?}: stops collecting, writes the statistics as a
// llama.cpp GGUF imatrix when asked, and re-quantizes with them (to ggml_type, else the type the
// model was last quantized to, else q4k) in the background, as /re_isq does.
void Server::Impl::calibration_apply(const httplib::Request& req, httplib::Response& res) {
  const json body = req.body.empty() ? json::object() : parse_body(req);
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  for (const char* key : {"save_imatrix", "ggml_type"})
    if (body.contains(key) && !body[key].is_string())
      throw ApiError(400, fmt::format("'{}': expected a string", key), key);
  const std::shared_ptr<const Model> m = current_model();
  IsqOptions isq;
  if (m->isq_options() != nullptr) isq = *m->isq_options();
  isq.show_progress = false;
  isq.topology_only = false;
  if (body.contains("ggml_type")) {
    try {
      const IsqTarget target = parse_isq_target(body["ggml_type"].get<std::string>());
      isq.type = target.type;
      isq.mix = target.mix;
    } catch (const InvalidArgument& e) {
      throw ApiError(400, fmt::format("'ggml_type': {}", e.what()), "ggml_type", "invalid_value");
    }
  }
  std::shared_ptr<Imatrix> imatrix;
  {
    std::lock_guard<std::mutex> lock(calibration_mutex);
    if (!calibration || calibration->entries() == 0)
      throw ApiError(400, "no calibration statistics: POST /calibration/start, send requests, "
                          "then apply", {}, "no_statistics");
    imatrix = std::make_shared<Imatrix>(calibration->snapshot());
    if (collecting) {
      scheduler->set_observer(nullptr);
      collecting = false;
    }
  }
  if (body.contains("save_imatrix")) {
    try {
      imatrix->save_gguf(body["save_imatrix"].get<std::string>());
    } catch (const Error& e) {
      throw ApiError(400, fmt::format("'save_imatrix': {}", e.what()), "save_imatrix");
    }
  }
  // The lookup refers to the importance vectors, which the closure keeps alive.
  auto importance = std::make_shared<std::map<std::string, std::vector<float>>>(
      imatrix->importance());
  isq.imatrix = [importance](std::string_view name) -> const std::vector<float>* {
    auto it = importance->find(std::string(name));
    return it == importance->end() ? nullptr : &it->second;
  };
  try {
    m->plan_isq(isq);
  } catch (const InvalidArgument& e) {
    throw ApiError(400, e.what(), "ggml_type", "invalid_value");
  }
  start_re_isq(res, m, isq);
}

json Server::Impl::re_isq_status() {
  const std::shared_ptr<const Model> m = current_model();
  std::lock_guard<std::mutex> lock(re_isq_mutex);
  json out = {{"status", re_isq.status},
              {"ggml_type", re_isq.target.empty() ? json(nullptr) : json(re_isq.target)},
              {"started", re_isq.started ? json(re_isq.started) : json(nullptr)},
              {"seconds", re_isq.seconds},
              {"error", re_isq.error.empty() ? json(nullptr) : json(re_isq.error)},
              {"completed", re_isq.count}};
  if (m) {
    const ModelInfo info = model_info(*m);
    out["weight_types"] = info.weight_types;
    out["weight_bytes"] = info.weight_bytes;
  }
  return out;
}

std::string Server::Impl::metrics_text() {
  const SchedulerStats s = scheduler->stats();
  std::string out;
  {
    std::lock_guard<std::mutex> lock(counters_mutex);
    out += "# HELP insitu_requests_total HTTP requests received, by route.\n"
           "# TYPE insitu_requests_total counter\n";
    for (const auto& [route, n] : requests_by_route) {
      const size_t space = route.find(' ');
      json path = route.substr(space + 1);  // JSON string escaping suits label values
      out += fmt::format("insitu_requests_total{{method=\"{}\",path={}}} {}\n",
                         route.substr(0, space), dump(path), n);
    }
    out += "# HELP insitu_responses_total HTTP responses sent, by status.\n"
           "# TYPE insitu_responses_total counter\n";
    for (const auto& [status, n] : responses_by_status)
      out += fmt::format("insitu_responses_total{{status=\"{}\"}} {}\n", status, n);
  }
  metric(out, "insitu_prompt_tokens_total", "counter", "Prompt tokens evaluated.",
         static_cast<double>(s.prompt_tokens));
  metric(out, "insitu_prompt_tokens_reused_total", "counter",
         "Prompt tokens taken from a cached prefix instead of being evaluated.",
         static_cast<double>(s.reused_tokens));
  metric(out, "insitu_generated_tokens_total", "counter", "Tokens generated.",
         static_cast<double>(s.generated_tokens));
  metric(out, "insitu_decode_steps_total", "counter", "Batched decoding steps.",
         static_cast<double>(s.steps));
  metric(out, "insitu_queue_depth", "gauge", "Sequences waiting for a slot.", s.queued);
  metric(out, "insitu_slots_busy", "gauge", "Slots holding a running sequence.", s.slots_busy);
  metric(out, "insitu_slots_total", "gauge", "Slots (--parallel).", s.n_slots);
  metric(out, "insitu_kv_cache_bytes", "gauge", "Bytes held by the slots' KV caches.",
         static_cast<double>(s.kv_bytes));
  metric(out, "insitu_decode_tokens_per_second", "gauge",
         "Tokens generated per second over the last 10 seconds of decoding.",
         s.decode_tokens_per_second);
  {
    std::lock_guard<std::mutex> lock(re_isq_mutex);
    metric(out, "insitu_re_isq_total", "counter", "Re-quantizations completed.", re_isq.count);
  }
  return out;
}

json Server::Impl::tune(const json& body) {
  const std::shared_ptr<const Model> m = current_model();
  TuneOptions o;
  std::string max_memory;
  try {
    if (body.contains("profile")) {
      if (!body["profile"].is_string()) throw ApiError(400, "'profile': expected a string", "profile");
      o.profile = parse_tune_profile(body["profile"].get<std::string>());
    }
    if (body.contains("ctx")) {
      if (!body["ctx"].is_number_integer() || body["ctx"].get<int64_t>() < 1 ||
          body["ctx"].get<int64_t>() > (int64_t{1} << 24))
        throw ApiError(400, "'ctx': expected an integer from 1 to 16777216", "ctx");
      o.n_ctx = body["ctx"].get<int>();
    } else {
      o.n_ctx = options.scheduler.n_ctx;
    }
    if (body.contains("max_memory")) {
      if (!body["max_memory"].is_string())
        throw ApiError(400, "'max_memory': expected a size such as \"8G\"", "max_memory");
      max_memory = body["max_memory"].get<std::string>();
    }
    if (body.contains("isq")) {
      if (!body["isq"].is_string()) throw ApiError(400, "'isq': expected a string", "isq");
      o.requested = parse_isq_target(body["isq"].get<std::string>());
    }
    o.memory = tune_memory(max_memory);
  } catch (const InvalidArgument& e) {
    throw ApiError(400, e.what());
  }
  o.n_threads = executor->n_threads();
  const std::shared_ptr<const Model> shapes = load_shapes(m->source_path(), build.threads);
  const TuneResult r = tune_model(*shapes, o);
  json list = json::array();
  for (const TuneCandidate& k : r.candidates) {
    list.push_back({{"isq", k.target ? json(k.target->name()) : json(nullptr)},
                    {"name", k.name},
                    {"weight_bytes", k.weight_bytes},
                    {"session_bytes", k.session_bytes},
                    {"memory_percent", k.memory_percent},
                    {"max_context", k.max_context},
                    {"context_is_model_max", k.context_is_model_max},
                    {"quality", k.quality},
                    {"status", fit_status_name(k.status)},
                    {"recommended", k.recommended}});
  }
  const TuneCandidate* rec = r.recommended >= 0 ? &r.candidates[static_cast<size_t>(r.recommended)]
                                                : nullptr;
  return {{"model", r.model_name},
          {"path", r.model_path},
          {"n_ctx_train", r.n_ctx_train},
          {"profile", tune_profile_name(r.profile)},
          {"n_ctx", r.n_ctx},
          {"kv_bytes_per_token", r.kv_bytes_per_token},
          {"memory_bytes", r.memory.device_bytes},
          {"candidates", list},
          {"recommended_isq", rec && rec->target ? json(rec->target->name()) : json(nullptr)},
          {"recommended_name", rec ? json(rec->name) : json(nullptr)},
          {"warnings", r.warnings}};
}

}  // namespace insitu::server
