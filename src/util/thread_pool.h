// A fixed pool of worker threads for data-parallel loops.
//
// parallel_for splits [0, n) into contiguous chunks, one per worker (the caller's thread takes a
// share too), and returns when all are done. Chunking depends only on n and the thread count, never
// on timing, so work that is row-local gives identical results for any thread count.
// A pool is used by one caller at a time (it is not re-entrant); create one per engine.
// Workers spin briefly on an atomic before sleeping, and so does the caller while waiting: a
// decoding step issues hundreds of small parallel loops, and a condition-variable wake-up per loop
// would cost more than the loop itself. Coarse jobs (a millisecond or more each, such as
// quantizing a tensor) can ask for WaitPolicy::kSleep instead: on a machine with more runnable
// threads than cores, threads spinning for a late worker or for the next job take CPU time from
// the threads that still have work (two threads quantizing back-to-back tensors used twice the
// CPU time of one, half of it spinning).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace insitu {

// How the caller waits for a job's workers, and the workers for the job after it.
enum class WaitPolicy {
  kSpin,   // busy-wait briefly, then sleep: for the many short loops of a decoding step
  kSleep,  // sleep at once: for coarse jobs on a possibly busy machine
};

class ThreadPool {
 public:
  // n_threads <= 0 means the number of hardware threads.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index, begin, end) over a partition of [0, n) into size() nearly equal ranges
  // (empty ranges are skipped). Exceptions thrown by fn are rethrown here (the first one).
  void parallel_for(int64_t n, const std::function<void(int, int64_t, int64_t)>& fn);

  // Runs fn(thread_index) once on every thread, including the caller's (index 0).
  void run_on_all(const std::function<void(int)>& fn, WaitPolicy wait = WaitPolicy::kSpin);

  // The process-wide default pool (sized by set_default_threads or the hardware).
  static ThreadPool& global();
  static void set_default_threads(int n);

 private:
  void worker_loop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_;
  std::condition_variable cv_done_;
  std::atomic<const std::function<void(int)>*> job_{nullptr};
  std::atomic<bool> job_spins_{true};  // the job's WaitPolicy is kSpin
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace insitu
