// `insitu serve`: an OpenAI-compatible HTTP server (src/server/server.h).
//   insitu serve --format gguf -f FILE.gguf [--isq q4k] [--host 127.0.0.1] [--port 8080]
//                [--parallel 4] [--ctx-size 4096] [--api-key KEY] [--served-model-name NAME]
// SIGTERM or SIGINT shuts down gracefully: new requests get 503, running ones finish (for up to
// --shutdown-grace seconds, then they are cancelled), and the process exits 0.
#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <thread>

#include "commands.h"
#include "insitu/error.h"
#include "model_args.h"
#include "server/server.h"

namespace insitu::cli {
namespace {

struct ServeArgs {
  ModelArgs model;
  IsqArgs isq;
  server::ServerOptions server;
  int ctx_size = 0;
  int grace_seconds = 10;
};

void serve(ServeArgs a) {
  set_log_level(a.model.log_level);
  if (a.server.api_key.empty())
    if (const char* key = std::getenv("INSITU_API_KEY")) a.server.api_key = key;
  a.server.scheduler.n_ctx = a.ctx_size > 0 ? a.ctx_size : a.isq.ctx;
  // --ctx-size is the context of each slot; the model is loaded (and --quant auto sized) for all.
  a.isq.ctx = a.server.scheduler.n_ctx;
  BuildOptions build = a.model.build_options(&a.isq);
  build.show_progress = false;

  // Signals are taken by one thread with sigwait (every thread started from here on inherits the
  // blocked mask), so the shutdown runs as ordinary code rather than in a signal handler.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);  // sent by ourselves when the server stops on its own
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  server::Server server(std::move(build), a.server);
  const int grace_ms = a.grace_seconds * 1000;
  std::thread signals([&server, set, grace_ms] {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGUSR1) return;
    std::fprintf(stderr, "insitu serve: %s received; finishing running requests\n",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
    server.stop(grace_ms);
  });
  try {
    server.run();
  } catch (...) {
    pthread_kill(signals.native_handle(), SIGUSR1);
    signals.join();
    throw;
  }
  pthread_kill(signals.native_handle(), SIGUSR1);
  signals.join();
  std::fprintf(stderr, "insitu serve: stopped\n");
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  a->model.add_to(*cmd);
  a->isq.add_to(*cmd);
  add_build_options(*cmd, a->isq, {"ctx"});
  cmd->add_option("--ctx-size", a->ctx_size, "Context of each parallel slot in tokens (as --ctx)")
      ->check(CLI::Range(8, 1 << 24));
  cmd->add_option("--host", a->server.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->server.port, "Port to listen on (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--api-key", a->server.api_key,
                  "Require 'Authorization: Bearer KEY' on every route but /health "
                  "(default: $INSITU_API_KEY)");
  cmd->add_option("--parallel", a->server.scheduler.n_slots,
                  "Sequences decoded at once (slots, each with its own KV cache)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--max-queue", a->server.scheduler.max_queued,
                  "Sequences that may wait for a slot; more get 503")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--prefill-chunk", a->server.scheduler.prefill_chunk,
                  "Prompt tokens evaluated per step between decoding steps")
      ->check(CLI::Range(1, 512))
      ->capture_default_str();
  cmd->add_option("--served-model-name", a->server.served_model_name,
                  "Model name /v1/models lists and requests give (default: the model's name)");
  cmd->add_option("--max-body", a->server.max_body_bytes, "Largest request body in bytes (413)")
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", a->grace_seconds,
                  "Seconds running requests may take to finish after SIGTERM")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  cmd->add_flag("--no-access-log", [a](int64_t) { a->server.access_log = false; },
                "Do not log each request on stderr");
  cmd->callback([a] { serve(*a); });
}

}  // namespace insitu::cli
