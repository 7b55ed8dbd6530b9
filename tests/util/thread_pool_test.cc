// ThreadPool: every index visited exactly once, the same partition for the same thread count,
// exceptions reach the caller, and many back-to-back loops (the decoding pattern, which exercises
// the spin-then-block hand-off) all complete, also with jobs that sleep instead of spinning.
#include "util/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace insitu {
namespace {

TEST(ThreadPool, VisitsEveryIndexOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 64, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(n, [&](int, int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << n;
    }
  }
}

TEST(ThreadPool, PartitionDependsOnlyOnSizeAndThreads) {
  ThreadPool pool(3);
  std::vector<std::pair<int64_t, int64_t>> first(3), second(3);
  for (auto* ranges : {&first, &second}) {
    pool.parallel_for(100, [&](int t, int64_t b, int64_t e) {
      (*ranges)[static_cast<size_t>(t)] = {b, e};
    });
  }
  EXPECT_EQ(first, second);
  EXPECT_EQ(first[0].first, 0);
  EXPECT_EQ(first[2].second, 100);
}

TEST(ThreadPool, ExceptionsReachTheCaller) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(10,
                                 [](int t, int64_t, int64_t) {
                                   if (t == 1) throw std::runtime_error("worker failed");
                                 }),
               std::runtime_error);
  // The pool stays usable afterwards.
  std::atomic<int64_t> sum{0};
  pool.parallel_for(10, [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) sum += i;
  });
  EXPECT_EQ(sum.load(), 45);
}

TEST(ThreadPool, ManyShortLoopsComplete) {
  ThreadPool pool(2);
  std::atomic<int64_t> count{0};
  for (int r = 0; r < 20000; ++r) {
    pool.run_on_all([&](int) { count.fetch_add(1, std::memory_order_relaxed); });
  }
  EXPECT_EQ(count.load(), 40000);
}

TEST(ThreadPool, SleepingJobsCompleteAndMixWithSpinningOnes) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::atomic<int64_t> count{0};
    for (int r = 0; r < 300; ++r) {
      pool.run_on_all([&](int) { count.fetch_add(1, std::memory_order_relaxed); },
                      r % 3 == 0 ? WaitPolicy::kSpin : WaitPolicy::kSleep);
    }
    EXPECT_EQ(count.load(), 300 * threads);
    EXPECT_THROW(pool.run_on_all(
                     [threads](int t) {
                       if (t == threads - 1) throw std::runtime_error("worker failed");
                     },
                     WaitPolicy::kSleep),
                 std::runtime_error);
  }
}

}  // namespace
}  // namespace insitu

namespace insitu {
namespace {

// A user's request is capped at the CPUs this process may use (affinity and cgroup quota); 0
// means all of them. A pool itself takes what it is given, up to twice that.
TEST(ThreadPool, UserRequestsAreCappedAtTheCpus) {
  const int cpus = ThreadPool::default_thread_count();
  EXPECT_GE(cpus, 1);
  EXPECT_EQ(ThreadPool::user_thread_count(0), cpus);
  EXPECT_EQ(ThreadPool::user_thread_count(1), 1);
  EXPECT_EQ(ThreadPool::user_thread_count(cpus + 5), cpus);
  EXPECT_EQ(ThreadPool(4 * cpus + 1).size(), ThreadPool::max_thread_count());
  EXPECT_EQ(ThreadPool(0).size(), cpus);
}

}  // namespace
}  // namespace insitu
