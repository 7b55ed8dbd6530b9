// The Executor: one set of worker threads that every Session of a process computes on.
//
// Many sessions run concurrently through one Executor: each evaluation is split into parallel
// loops (one per matrix product, norm, attention, ...), and the executor runs one loop at a time
// on all its threads. Fairness rule: callers take turns loop by loop in the order they arrived
// (a FIFO ticket), so with N sessions evaluating at once each gets about 1/N of the machine and
// none waits behind another's whole prompt. Results never depend on what else runs: a loop's
// split depends only on its size and the thread count.
//
// Concurrent sessions each read the whole model for every token; for decoding, generate_batch
// steps many sequences together instead, reading the weights once per step for all of them
// (Session::step), which is what a server's continuous batching uses.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "insitu/generate.h"
#include "insitu/session.h"

namespace insitu {

class ThreadPool;

class Executor {
 public:
  // n_threads <= 0: every CPU this process may use (affinity mask and cgroup quota); a request
  // above that is capped there, with a warning.
  explicit Executor(int n_threads = 0);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  int n_threads() const;
  // The thread pool the executor's sessions share (for the library's own tools).
  ThreadPool& pool() { return *pool_; }

  // One decoding step for sessions that run the same Model: see Session::step. Sessions on
  // different models are stepped in one group per model. logits: [N, n_vocab] (may be null).
  void step(std::span<Session* const> sessions, std::span<const int32_t> tokens, float* logits);

  // One sequence of a batched generation: its session (holding any cached prefix), the prompt
  // to append, the tokens already in the session (for penalties), its options and events.
  struct Request {
    Session* session = nullptr;
    std::vector<int32_t> prompt;   // appended at session->n_past(); must not be empty
    std::vector<int32_t> history;  // tokens already in the session's cache (penalties)
    GenerateOptions options;
    TokenCallback on_event;        // may be null; false stops this sequence alone
  };
  // Generates for every request at once: each prompt is evaluated, then every step samples one
  // token per unfinished sequence and evaluates all of them together (Session::step). Each
  // sequence gets exactly what generate() gives it alone (greedy or seeded), within the batched
  // kernels' tolerance. Returns the results in request order. Throws InvalidArgument (nothing
  // generated) for an empty prompt, one that does not fit, or a session given twice.
  std::vector<GenerateResult> generate_batch(std::span<Request> requests);

 private:
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace insitu
