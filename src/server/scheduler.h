// Continuous batching for the server: many requests decode together, one pass over the weights per
// step for every decoding sequence (Session::step), new requests join between steps.
//
// One scheduler thread owns every Session. Each iteration of its loop:
//   1. admits queued sequences into free slots (FIFO), reusing the KV prefix a free slot already
//      holds when the new prompt starts with it (multi-turn chat: the next turn's prompt extends
//      the last one's tokens). Among free slots the one sharing the longest prefix wins, then the
//      least recently used;
//   2. drops sequences whose client went away (Job::cancel), freeing their slots;
//   3. samples one token for every sequence that has logits (Generation::advance) and evaluates
//      all of them in one Session::step per model (a re-quantized model's sequences step apart
//      from the old one's);
//   4. prefills at most `prefill_chunk` prompt tokens, oldest admitted sequence first, so a long
//      prompt delays the decoding sequences by one chunk per step rather than by its whole length.
// Fairness: admission is first come, first served; every admitted sequence advances by exactly one
// token per step; prompt processing is shared out in arrival order, a chunk per step.
//
// Thread safety: submit(), stats() and shutdown() may be called from any thread. A Job is shared
// between the scheduler thread (which appends events) and the HTTP thread that waits on it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "insitu/error.h"
#include "insitu/executor.h"
#include "insitu/generate.h"
#include "insitu/model.h"
#include "insitu/session.h"
#include "model/model.h"

namespace insitu::server {

struct SchedulerOptions {
  int n_slots = 4;          // default 4; sequences that hold a KV cache at once (--parallel)
  int n_ctx = 4096;         // default 4096; each slot's context in tokens (--ctx-size)
  int max_queued = 64;      // default 64; sequences waiting for a slot before submit refuses
  int prefill_chunk = 256;  // default 256; prompt tokens evaluated per scheduler step
};

// Thrown by submit() when the queue is full or the scheduler is shutting down (HTTP 503).
class Saturated : public Error {
 public:
  using Error::Error;
};

// One request's sequences (n choices of one prompt), as the HTTP thread waiting on them sees them.
class Job {
 public:
  struct Piece {
    int index = 0;      // which choice
    TokenEvent event;
  };
  explicit Job(int n) : results_(static_cast<size_t>(n)), n_left_(n) {}

  // Moves out the events that arrived (waiting up to `timeout` for one). Returns false once the
  // job is over and every event has been taken.
  bool take(std::vector<Piece>& out, std::chrono::milliseconds timeout);
  // Blocks until every sequence has finished.
  void wait();
  // The client went away: the scheduler stops its sequences at the next step.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  // After the job is over: each choice's result (stats.n_prompt counts the whole prompt, including
  // tokens reused from a slot's cache) and the first error, if a sequence failed.
  const std::vector<GenerateResult>& results() const { return results_; }
  const std::string& error() const { return error_; }
  // Prompt tokens taken from a slot's cache instead of being evaluated, summed over the choices.
  int reused_tokens() const { return reused_.load(); }

 private:
  friend class Scheduler;
  void push(int index, const TokenEvent& event);
  void finish(int index, GenerateResult result, const std::string& error);
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Piece> pieces_;
  std::vector<GenerateResult> results_;
  std::string error_;
  int n_left_;
  std::atomic<bool> cancelled_{false};
  std::atomic<int> reused_{0};
};

// Counters for /metrics; a consistent snapshot.
struct SchedulerStats {
  int n_slots = 0;
  int slots_busy = 0;
  int queued = 0;                   // sequences waiting for a slot
  uint64_t prompt_tokens = 0;       // prompt tokens evaluated (total)
  uint64_t reused_tokens = 0;       // prompt tokens taken from a cached prefix (total)
  uint64_t generated_tokens = 0;    // tokens sampled (total)
  uint64_t steps = 0;               // batched decoding steps (total)
  uint64_t kv_bytes = 0;            // bytes held by the slots' KV caches now
  double decode_tokens_per_second = 0;  // over the last ~10 seconds of stepping
};

class Scheduler {
 public:
  // The executor must outlive the scheduler. Starts the scheduler thread.
  Scheduler(const SchedulerOptions& options, Executor& executor);
  // Cancels whatever still runs and joins the thread.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues `n` sequences generating from `prompt` on `model` (choice i is seeded with
  // options.sampling.seed + i). Throws InvalidArgument when the prompt is empty or leaves no room
  // in a slot's context, or n is out of [1, n_slots]; Saturated when the queue cannot take n more
  // sequences or the scheduler is shutting down.
  std::shared_ptr<Job> submit(std::shared_ptr<const Model> model, std::vector<int32_t> prompt,
                              const GenerateOptions& options, int n = 1);

  // Stops admitting (submit throws Saturated), cancels queued sequences, lets the running ones
  // finish for up to `grace`, then cancels them too and stops the thread.
  void shutdown(std::chrono::milliseconds grace);

  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }

  // Every slot's linear-layer inputs go to `observer` from the next step on (null: none); online
  // calibration. Not owned; it must stay alive until replaced and one more step has passed
  // (set_observer(nullptr) returns once the scheduler thread no longer uses the old one).
  void set_observer(LinearObserver* observer);

 private:
  struct Seq;
  struct Slot;
  void loop();
  void admit_locked();
  void finish(Seq& seq, const std::string& error = {});
  void decode_step();
  void prefill_step();

  SchedulerOptions options_;
  Executor& executor_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Seq>> queue_;   // guarded by mutex_
  std::vector<std::unique_ptr<Seq>> active_;  // scheduler thread only
  std::vector<Slot> slots_;                   // scheduler thread only (busy counts: mutex_)
  bool draining_ = false;                     // guarded by mutex_
  bool stop_ = false;                         // guarded by mutex_
  SchedulerStats stats_;                      // guarded by mutex_
  std::deque<std::pair<std::chrono::steady_clock::time_point, int>> recent_;  // mutex_
  uint64_t clock_ = 0;                        // LRU stamp, scheduler thread only
  LinearObserver* observer_ = nullptr;        // guarded by mutex_ (applied by the thread)
  uint64_t loops_ = 0;                        // loop iterations begun; guarded by mutex_
  std::thread thread_;
};

}  // namespace insitu::server
