#include "util/thread_pool.h"

#include <sched.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

namespace insitu {

namespace {

// The pool whose job the current thread is running (a worker's, or a caller's inside run_on_all),
// so that a nested call runs inline instead of waiting for itself.
thread_local const ThreadPool* t_in_job = nullptr;
thread_local int t_index = 0;  // the thread's index in that job

// CPUs allowed by a cgroup v2 (cpu.max "QUOTA PERIOD") or v1 (cfs_quota_us / cfs_period_us)
// quota; 0 when there is none or it cannot be read.
int cgroup_cpu_limit() {
  double quota = -1, period = 0;
  {
    std::ifstream f("/sys/fs/cgroup/cpu.max");
    std::string q;
    if (f >> q >> period && q != "max") quota = std::strtod(q.c_str(), nullptr);
  }
  if (quota <= 0) {
    std::ifstream fq("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
    std::ifstream fp("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
    double q = -1, p = 0;
    if (fq >> q && fp >> p && q > 0 && p > 0) {
      quota = q;
      period = p;
    }
  }
  if (quota <= 0 || period <= 0) return 0;
  return std::max(1, static_cast<int>(std::ceil(quota / period)));
}

}  // namespace

int ThreadPool::default_thread_count() {
  int n = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  const int quota = cgroup_cpu_limit();
  if (quota > 0) n = n > 0 ? std::min(n, quota) : quota;
  return std::max(n, 1);
}

int ThreadPool::max_thread_count() { return 2 * default_thread_count(); }

int ThreadPool::user_thread_count(int requested) {
  const int cpus = default_thread_count();
  if (requested <= 0) return cpus;
  if (requested > cpus) {
    spdlog::warn("{} threads asked for, but this process may use {} CPU(s); using {} (more "
                 "threads than CPUs only wait for each other)", requested, cpus, cpus);
    return cpus;
  }
  return requested;
}

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = default_thread_count();
  const int cap = max_thread_count();
  if (n_threads > cap) {
    spdlog::warn("{} threads asked for, but this process may use {} CPU(s); using {}", n_threads,
                 default_thread_count(), cap);
    n_threads = cap;
  }
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

// One step of a busy-wait. Every 256th step yields the CPU: when the machine has more runnable
// threads than cores (another busy process), the thread being waited for may be the one that is
// not running, and a pure spin would keep it off the core for a whole time slice.
inline void cpu_relax(int step) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
  if ((step & 255) == 255) sched_yield();
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
      cpu_relax(spin);
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
    t_in_job = this;
    t_index = index;
    (*job_.load(std::memory_order_acquire))(index);
    t_in_job = nullptr;
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_done_.notify_one();
    }
  }
}

void ThreadPool::run_on_all(const std::function<void(int)>& fn, WaitPolicy wait) {
  if (t_in_job == this) {
    // Nested inside one of this pool's jobs: the other threads are busy with the outer job.
    for (int i = 0; i < n_threads_; ++i) fn(i);
    return;
  }
  uint64_t ticket;
  {
    std::lock_guard<std::mutex> lock(turn_mu_);
    ticket = next_ticket_++;
  }
  {
    std::unique_lock<std::mutex> lock(turn_mu_);
    turn_cv_.wait(lock, [&] { return serving_ == ticket; });
  }
  struct NextTurn {
    ThreadPool& pool;
    ~NextTurn() {
      {
        std::lock_guard<std::mutex> lock(pool.turn_mu_);
        ++pool.serving_;
      }
      pool.turn_cv_.notify_all();
    }
  } next_turn{*this};
  t_in_job = this;
  t_index = 0;
  try {
    run_job(fn, wait);
  } catch (...) {
    t_in_job = nullptr;
    throw;
  }
  t_in_job = nullptr;
}

void ThreadPool::run_job(const std::function<void(int)>& fn, WaitPolicy wait) {
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
      cpu_relax(spin);
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
  if (t_in_job == this) {  // nested: this thread's share of the outer job does it all
    fn(t_index, 0, n);
    return;
  }
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
