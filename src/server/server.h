// `insitu serve`: an OpenAI-compatible HTTP server over one model, with continuous batching
// (server/scheduler.h), in-flight re-quantization and a chat page.
//
// Routes (every one but /health answers 401 without the API key when one is set):
//   GET  /                      the chat page (server/chat_page.h)
//   GET  /health                200 {"status":"ok"} once the model is loaded, 503 before
//   GET  /metrics               Prometheus text: requests, tokens, queue, slots, KV bytes, tokens/s
//   GET  /v1/models             the served model
//   POST /v1/chat/completions   OpenAI chat completions, streamed (SSE) or not
//   POST /v1/completions        OpenAI legacy completions, streamed or not
//   POST /tokenize /detokenize  {"content": TEXT, "add_special": false} <-> {"tokens": [...]}
//   POST /re_isq                {"ggml_type": "q4k"}: re-quantize in the background; new requests
//                               run on the new weights once done, running ones finish on the old
//   GET  /re_isq                the re-quantization's status
//   POST /v1/models/tune        `insitu tune`'s analysis of the loaded model as JSON
//   POST /calibration/start     collect importance statistics from live traffic (restarts them)
//   GET  /calibration/status    {"status", "tokens", "weights"}
//   POST /calibration/apply     {"save_imatrix": PATH?, "ggml_type": TYPE?}: stop collecting,
//                               write llama.cpp's GGUF imatrix, re-quantize with it (as /re_isq)
// Errors are OpenAI error objects: 400 bad JSON or field, 401 key, 404 model or route, 409 a
// re-quantization already running, 413 body too large, 503 loading, saturated or shutting down.
// Each request is logged on stderr as one JSON line (the access log).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "insitu/options.h"
#include "server/scheduler.h"

namespace insitu::server {

struct ServerOptions {
  std::string host = "127.0.0.1";  // default 127.0.0.1; the address to listen on
  int port = 8080;                 // default 8080; 0: any free port (see Server::port)
  std::string api_key;             // default none; required as "Authorization: Bearer KEY"
  std::string served_model_name;   // default: the model's name; what /v1/models lists
  SchedulerOptions scheduler;      // default: see SchedulerOptions
  size_t max_body_bytes = 8u << 20;  // default 8 MiB; larger bodies get 413
  bool access_log = true;          // default true; one JSON line per request on stderr
};

class Server {
 public:
  // Nothing is loaded or bound until run().
  Server(BuildOptions build, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds (throws IoError naming the address when it cannot), loads the model in the background
  // (/health is 503 meanwhile) and serves until stop(). Throws the loading error when the model
  // cannot be loaded (after the listener is closed).
  void run();
  // Graceful shutdown from any thread (not from a signal handler): refuses new requests (503),
  // lets running ones finish for up to `grace_ms`, cancels the rest, and makes run() return.
  void stop(int grace_ms = 10000);
  // The bound port (after run() has bound it), or 0.
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace insitu::server
