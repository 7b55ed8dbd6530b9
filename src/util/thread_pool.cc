#include "util/thread_pool.h"

#include <atomic>
#include <exception>
#include <memory>

namespace insitu {

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
  if (n_threads <= 0) n_threads = 1;
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_start_.notify_all();
  for (std::thread& t : workers_) t.join();
}

namespace {

// Iterations of busy-waiting (with a pause hint) before blocking: about a tenth of a millisecond,
// long enough to cover the gap between the loops of one decoding step.
constexpr int kSpinIterations = 1 << 14;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  bool spin_for_next = true;  // as the last job asked
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    const int spin_limit = spin_for_next ? kSpinIterations : 0;
    for (int spin = 0; gen == seen && !stop_.load(std::memory_order_relaxed) && spin < spin_limit;
         ++spin) {
      cpu_relax();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_start_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
      gen = generation_.load(std::memory_order_acquire);
    }
    if (stop_.load()) return;
    seen = gen;
    spin_for_next = job_spins_.load(std::memory_order_acquire);
    (*job_.load(std::memory_order_acquire))(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_done_.notify_one();
    }
  }
}

void ThreadPool::run_on_all(const std::function<void(int)>& fn, WaitPolicy wait) {
  std::exception_ptr error;
  std::mutex error_mu;
  const std::function<void(int)> guarded = [&](int index) {
    try {
      fn(index);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
    }
  };
  if (n_threads_ > 1) {
    job_.store(&guarded, std::memory_order_release);
    job_spins_.store(wait == WaitPolicy::kSpin, std::memory_order_release);
    pending_.store(n_threads_ - 1, std::memory_order_release);
    {
      // Under the lock, so a worker about to block cannot miss the new generation.
      std::lock_guard<std::mutex> lock(mu_);
      generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    cv_start_.notify_all();
  }
  guarded(0);
  if (n_threads_ > 1) {
    const int spin_limit = wait == WaitPolicy::kSpin ? kSpinIterations : 0;
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0 && spin < spin_limit; ++spin) {
      cpu_relax();
    }
    if (pending_.load(std::memory_order_acquire) != 0) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    }
  }
  if (error) std::rethrow_exception(error);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int, int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t nt = n_threads_;
  if (nt == 1 || n == 1) {
    fn(0, 0, n);
    return;
  }
  run_on_all([&](int index) {
    const int64_t begin = n * index / nt;
    const int64_t end = n * (index + 1) / nt;
    if (begin < end) fn(index, begin, end);
  });
}

namespace {
std::atomic<int> g_default_threads{0};
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool(g_default_threads.load());
  return pool;
}

void ThreadPool::set_default_threads(int n) { g_default_threads.store(n); }

}  // namespace insitu
