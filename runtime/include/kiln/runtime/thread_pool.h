// kiln/runtime/thread_pool.h - the persistent thread pool that runs parallel kernels.
//
// A pool of T threads is the caller plus T-1 workers that live as long as the pool. ParallelFor
// splits [0, n) statically into T contiguous ranges, range t being [n*t/T, n*(t+1)/T), and
// returns when all ranges are done. The split depends only on n and T, so a computation gives
// bit-identical results for a given thread count however the threads are scheduled. Threads
// claim ranges in order, the caller included: a worker that has not woken up yet (or whose
// vCPU the VM stalled) delays nothing, because the caller runs the ranges left unclaimed.
//
// Dispatch is cheap: the caller publishes the job by bumping a generation counter; workers spin
// on it for a short while (50 microseconds by default) after each job, then sleep on a futex
// (std::atomic::wait), so back-to-back kernels pay no system call and an idle pool uses no CPU.
// Measurements against OpenMP are in docs/decisions.md (bench/thread_pool_bench.cpp).
//
// Calls from inside a task run serially on the calling thread (no nested parallelism); calls
// from several outside threads at once are serialised. An exception thrown by a task is
// rethrown by ParallelFor (the first one, if several) after every range has finished.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace kiln {

class ThreadPool {
 public:
  // A pool of `num_threads` threads in all (the caller included); at least 1. Idle threads
  // spin for `spin_us` microseconds before they sleep.
  explicit ThreadPool(int num_threads, int spin_us = kDefaultSpinUs);
  static constexpr int kDefaultSpinUs = 50;
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Runs fn(begin, end) on each of the num_threads() ranges of [0, n) that is not empty.
  template <class F>
  void ParallelFor(int64_t n, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    auto call = [](void* ctx, int64_t b, int64_t e) { (*static_cast<Fn*>(ctx))(b, e); };
    ParallelFor(n, call, const_cast<void*>(static_cast<const void*>(&fn)));
  }
  // The same with a plain function pointer and context (what compiled plans use).
  void ParallelFor(int64_t n, void (*fn)(void* ctx, int64_t begin, int64_t end), void* ctx);

  // Range t of [0, n) split into `parts`: [n*t/parts, n*(t+1)/parts).
  static int64_t RangeBegin(int64_t n, int t, int parts) { return n * t / parts; }

  // The process-wide pool, created on first use with DefaultNumThreads() threads.
  static ThreadPool& Global();

 private:
  void WorkerLoop();
  void ClaimRanges(uint32_t gen);
  void RunRange(int t);

  const int num_threads_;
  const std::chrono::microseconds spin_;
  std::vector<std::thread> workers_;
  std::mutex dispatch_mutex_;  // one ParallelFor at a time from outside threads

  // The current job, written by the dispatcher before it bumps `generation_`.
  void (*fn_)(void*, int64_t, int64_t) = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  std::exception_ptr error_;
  std::mutex error_mutex_;

  // Bumped once per job; idle workers watch it. 32 bits: std::atomic::wait is then a plain
  // futex (wrapping is harmless).
  alignas(64) std::atomic<uint32_t> generation_{0};
  // (generation << 32) | the next unclaimed range: claiming with the generation means a
  // worker that wakes after its job ended cannot take a range of the next one.
  alignas(64) std::atomic<uint64_t> claim_{0};
  alignas(64) std::atomic<int> done_{0};  // ranges of the current job finished
  alignas(64) std::atomic<bool> stop_{false};
};

// KILN_NUM_THREADS when set (a positive integer, else a UserError), otherwise the number of
// CPUs this process may run on.
int DefaultNumThreads();

}  // namespace kiln
