// thread_pool_test.cpp - the runtime's thread pool: coverage, static partitioning,
// determinism, errors, nesting, KILN_NUM_THREADS. (Its speed is measured in bench/.)
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kiln/runtime/error.h"
#include "kiln/runtime/thread_pool.h"

namespace kiln {
namespace {

TEST(ThreadPool, EveryIndexRunsOnceInTheStaticRanges) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (int64_t n : {0, 1, 2, 3, 7, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      std::mutex mu;
      std::vector<std::pair<int64_t, int64_t>> ranges;
      pool.ParallelFor(n, [&](int64_t b, int64_t e) {
        {
          std::lock_guard<std::mutex> lock(mu);
          ranges.emplace_back(b, e);
        }
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(hits[i].load(), 1) << threads << " threads, n=" << n;
      // The ranges are exactly the non-empty [n*t/T, n*(t+1)/T).
      std::vector<std::pair<int64_t, int64_t>> want;
      for (int t = 0; t < threads; ++t) {
        int64_t b = n * t / threads, e = n * (t + 1) / threads;
        if (b < e) want.emplace_back(b, e);
      }
      if (n == 1 && !want.empty()) want = {{0, 1}};
      std::sort(ranges.begin(), ranges.end());
      EXPECT_EQ(ranges, want) << threads << " threads, n=" << n;
    }
  }
}

TEST(ThreadPool, RangesRunConcurrently) {
  // Each range waits until every range has started: this finishes only if the three ranges
  // run on three threads at once (a sleeping worker wakes up and claims its range while the
  // caller waits in its own).
  ThreadPool pool(3);
  std::atomic<int> started{0};
  std::mutex mu;
  std::vector<std::thread::id> ids;
  pool.ParallelFor(3, [&](int64_t, int64_t) {
    started.fetch_add(1);
    while (started.load() < 3) std::this_thread::yield();
    std::lock_guard<std::mutex> lock(mu);
    ids.push_back(std::this_thread::get_id());
  });
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()) - ids.begin(), 3);
}

TEST(ThreadPool, LateWorkersNeverRunARangeTwiceOrOfTheWrongJob) {
  // Workers that sleep at once (no spinning) wake late: the caller then runs their ranges
  // itself, and a worker waking after its job ended must not take a range of the next job.
  ThreadPool pool(3, /*spin_us=*/0);
  for (int rep = 0; rep < 3000; ++rep) {
    std::vector<std::atomic<int>> hits(7);
    pool.ParallelFor(7, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1 + rep);
    });
    for (int i = 0; i < 7; ++i)
      ASSERT_EQ(hits[i].load(), 1 + rep) << "job " << rep << " index " << i;
  }
}

// A float sum split by ranges: partial sums combined in range order.
float RangeSum(ThreadPool& pool, const std::vector<float>& x) {
  std::vector<float> partial(pool.num_threads(), 0.0f);
  int64_t n = x.size();
  pool.ParallelFor(n, [&](int64_t b, int64_t e) {
    float s = 0;
    for (int64_t i = b; i < e; ++i) s += x[i];
    // The range's index among the T ranges follows from its start.
    int t = 0;
    while (ThreadPool::RangeBegin(n, t + 1, pool.num_threads()) <= b) ++t;
    partial[t] = s;
  });
  float total = 0;
  for (float p : partial) total += p;
  return total;
}

TEST(ThreadPool, ResultsAreIdenticalForAGivenThreadCount) {
  std::vector<float> x(100003);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(float(i)) * 1e3f;
  ThreadPool pool(2);
  float first = RangeSum(pool, x);
  for (int rep = 0; rep < 200; ++rep) ASSERT_EQ(RangeSum(pool, x), first) << "run " << rep;
}

TEST(ThreadPool, ManyBackToBackJobsAndConcurrentCallers) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  for (int rep = 0; rep < 20000; ++rep) {
    pool.ParallelFor(2, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
  }
  EXPECT_EQ(total.load(), 40000);
  // Two outside threads sharing the pool are serialised, not mixed up.
  std::atomic<int64_t> a{0}, c{0};
  auto caller = [&](std::atomic<int64_t>& sum) {
    for (int rep = 0; rep < 2000; ++rep) {
      pool.ParallelFor(10, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
    }
  };
  std::thread t1(caller, std::ref(a)), t2(caller, std::ref(c));
  t1.join();
  t2.join();
  EXPECT_EQ(a.load(), 20000);
  EXPECT_EQ(c.load(), 20000);
}

TEST(ThreadPool, NestedCallsRunSeriallyInsideTasks) {
  ThreadPool pool(2);
  std::atomic<int> inner_calls{0};
  std::atomic<int64_t> covered{0};
  pool.ParallelFor(2, [&](int64_t, int64_t) {
    pool.ParallelFor(100, [&](int64_t b, int64_t e) {
      inner_calls.fetch_add(1);
      covered.fetch_add(e - b);
    });
  });
  EXPECT_EQ(inner_calls.load(), 2);  // one whole-range call per outer task
  EXPECT_EQ(covered.load(), 200);
}

TEST(ThreadPool, TaskErrorsReachTheCallerAfterAllRangesFinish) {
  ThreadPool pool(2);
  std::atomic<int> finished{0};
  EXPECT_THROW(pool.ParallelFor(2,
                                [&](int64_t b, int64_t) {
                                  if (b != 0) throw std::runtime_error("task failed");
                                  finished.fetch_add(1);
                                }),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 1);
  // The pool still works afterwards.
  std::atomic<int64_t> n{0};
  pool.ParallelFor(8, [&](int64_t b, int64_t e) { n.fetch_add(e - b); });
  EXPECT_EQ(n.load(), 8);
}

TEST(ThreadPool, NumThreadsFromTheEnvironment) {
  const char* old = std::getenv("KILN_NUM_THREADS");
  std::string saved = old ? old : "";
  setenv("KILN_NUM_THREADS", "3", 1);
  EXPECT_EQ(DefaultNumThreads(), 3);
  for (const char* bad : {"0", "-2", "two", "4x", ""}) {
    setenv("KILN_NUM_THREADS", bad, 1);
    EXPECT_THROW(DefaultNumThreads(), UserError) << "'" << bad << "'";
  }
  unsetenv("KILN_NUM_THREADS");
  EXPECT_GE(DefaultNumThreads(), 1);
  EXPECT_LE(DefaultNumThreads(), int(std::max(1u, std::thread::hardware_concurrency())));
  if (old) setenv("KILN_NUM_THREADS", saved.c_str(), 1);
}

}  // namespace
}  // namespace kiln
