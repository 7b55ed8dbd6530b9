// A fixed pool of worker threads for data-parallel loops.
//
// parallel_for splits [0, n) into contiguous chunks, one per worker (the caller's thread takes a
// share too), and returns when all are done. Chunking depends only on n and the thread count, never
// on timing, so work that is row-local gives identical results for any thread count.
// A pool is safe to share: callers on several threads (one Session each, say) take turns job by
// job, in the order they arrived (a FIFO ticket), so concurrent sessions interleave loop by loop
// and none waits behind another's whole step. A job that itself calls parallel_for or run_on_all
// on the same pool runs that inner job on its own thread (no deadlock, same results for row-local
// work). Per-thread scratch indexed by the thread index is safe: one job runs at a time.
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
  // n_threads <= 0 means default_thread_count(). A request above max_thread_count() is capped
  // there with a warning: more threads than CPUs only makes them wait for each other.
  // Waiting threads spin briefly, yielding the CPU every few hundred steps, then sleep.
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

  // The CPUs this process may use: its affinity mask (sched_getaffinity), further limited by a
  // cgroup CPU quota (cpu.max, rounded up); at least 1.
  static int default_thread_count();
  // The most threads a pool gets: twice the CPUs the process may use (a bound against runaway
  // requests; a pool's size is otherwise what its creator asks for).
  static int max_thread_count();
  // What a user's thread request (a flag, a Python argument) becomes: 0 is every CPU the process
  // may use, and more than that is capped there with a warning. A loop is split evenly, so a
  // thread more than there are CPUs only makes every loop wait for the one not running.
  static int user_thread_count(int requested);

 private:
  void worker_loop(int index);
  void run_job(const std::function<void(int)>& fn, WaitPolicy wait);

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
  // FIFO admission of callers: a caller takes a ticket and runs its job when serving_ reaches it.
  std::mutex turn_mu_;
  std::condition_variable turn_cv_;
  uint64_t next_ticket_ = 0;
  uint64_t serving_ = 0;
};

}  // namespace insitu
