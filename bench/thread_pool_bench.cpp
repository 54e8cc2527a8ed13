// thread_pool_bench - dispatch cost of kiln's thread pool against OpenMP, in the same run.
//
// Measures one parallel region of `threads` threads doing nothing, (a) back to back and
// (b) after the threads idled for 1 ms, for kiln::ThreadPool::ParallelFor and for
// `#pragma omp parallel`. Prints medians and minimums in microseconds.
//
//   build-cg/bench/kiln-bench-thread-pool [threads] [reps] [kiln spin microseconds]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

#include "kiln/runtime/thread_pool.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Stat {
  double median, min;
};

Stat Summarise(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t[0]};
}

// Times `reps` calls of `region`, sleeping `idle` before each when non-zero.
Stat Measure(int reps, std::chrono::microseconds idle, const std::function<void()>& region) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    if (idle.count()) std::this_thread::sleep_for(idle);
    auto s = Clock::now();
    region();
    t.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
  }
  return Summarise(t);
}

volatile int sink;

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  int reps = argc > 2 ? std::atoi(argv[2]) : 20000;
  int spin_us = argc > 3 ? std::atoi(argv[3]) : kiln::ThreadPool::kDefaultSpinUs;
  kiln::ThreadPool pool(threads, spin_us);
  omp_set_num_threads(threads);
  auto kiln_region = [&] { pool.ParallelFor(threads, [](int64_t b, int64_t) { sink = int(b); }); };
  auto omp_region = [&] {
#pragma omp parallel
    { sink = omp_get_thread_num(); }
  };
  // Warm both up (thread creation).
  for (int i = 0; i < 100; ++i) {
    kiln_region();
    omp_region();
  }
  std::printf("%d threads, kiln spins %d us; microseconds per parallel region (median / min)\n",
              threads, spin_us);
  for (int round = 0; round < 2; ++round) {
    Stat kb = Measure(reps, {}, kiln_region);
    Stat ob = Measure(reps, {}, omp_region);
    Stat ki = Measure(reps / 20, std::chrono::microseconds(1000), kiln_region);
    Stat oi = Measure(reps / 20, std::chrono::microseconds(1000), omp_region);
    std::printf("round %d  back-to-back: kiln %.2f / %.2f   OpenMP %.2f / %.2f\n", round, kb.median,
                kb.min, ob.median, ob.min);
    std::printf("round %d  after 1 ms idle: kiln %.2f / %.2f   OpenMP %.2f / %.2f\n", round,
                ki.median, ki.min, oi.median, oi.min);
  }
  return 0;
}
