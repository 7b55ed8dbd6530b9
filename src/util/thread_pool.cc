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
    stop_ = true;
  }
  cv_start_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int)>* job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    (*job)(index);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) cv_done_.notify_one();
    }
  }
}

void ThreadPool::run_on_all(const std::function<void(int)>& fn) {
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
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &guarded;
      pending_ = n_threads_ - 1;
      ++generation_;
    }
    cv_start_.notify_all();
  }
  guarded(0);
  if (n_threads_ > 1) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
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
