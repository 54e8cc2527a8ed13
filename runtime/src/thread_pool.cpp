// The persistent thread pool (kiln/runtime/thread_pool.h).
#include "kiln/runtime/thread_pool.h"

#include <sched.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "kiln/runtime/error.h"

namespace kiln {
namespace {

// True on threads that are running a pool task: their ParallelFor calls run serially.
thread_local bool t_in_task = false;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Waits until `a` differs from `old`: spins for `spin`, then sleeps (futex). The default spin
// (ThreadPool::kDefaultSpinUs) is long enough to cover the gap between two kernels of a plan,
// short enough that an idle pool stops taking a core from other work almost at once.
template <class T>
T SpinThenWait(const std::atomic<T>& a, T old, std::chrono::microseconds spin) {
  auto start = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    T v = a.load(std::memory_order_acquire);
    if (v != old) return v;
    CpuRelax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() - start > spin) break;
  }
  for (;;) {
    a.wait(old, std::memory_order_acquire);
    T v = a.load(std::memory_order_acquire);
    if (v != old) return v;
  }
}

}  // namespace

ThreadPool::ThreadPool(int num_threads, int spin_us)
    : num_threads_(num_threads < 1 ? 1 : num_threads), spin_(spin_us < 0 ? 0 : spin_us) {
  workers_.reserve(num_threads_ - 1);
  for (int t = 1; t < num_threads_; ++t) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (std::thread& w : workers_) w.join();
}

void ThreadPool::RunRange(int t) {
  int64_t begin = RangeBegin(n_, t, num_threads_);
  int64_t end = RangeBegin(n_, t + 1, num_threads_);
  if (begin >= end) return;
  try {
    fn_(ctx_, begin, end);
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }
}

void ThreadPool::ClaimRanges(uint32_t gen) {
  uint64_t c = claim_.load(std::memory_order_acquire);
  for (;;) {
    // A thread that woke late for a finished job finds another generation and leaves.
    if (static_cast<uint32_t>(c >> 32) != gen) return;
    int t = static_cast<int>(static_cast<uint32_t>(c));
    if (t >= num_threads_) return;
    if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      continue;
    }
    // The job cannot finish before this range does, so its fields stay put meanwhile.
    RunRange(t);
    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == num_threads_) done_.notify_one();
    c = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::WorkerLoop() {
  t_in_task = true;  // a worker's own ParallelFor calls (from tasks) run serially
  uint32_t seen = 0;
  for (;;) {
    seen = SpinThenWait(generation_, seen, spin_);
    if (stop_.load(std::memory_order_relaxed)) return;
    ClaimRanges(seen);
  }
}

void ThreadPool::ParallelFor(int64_t n, void (*fn)(void*, int64_t, int64_t), void* ctx) {
  if (n <= 0) return;
  if (num_threads_ == 1 || t_in_task || n == 1) {
    fn(ctx, 0, n);
    return;
  }
  std::lock_guard<std::mutex> lock(dispatch_mutex_);
  fn_ = fn;
  ctx_ = ctx;
  n_ = n;
  error_ = nullptr;
  done_.store(0, std::memory_order_relaxed);
  uint32_t gen = generation_.load(std::memory_order_relaxed) + 1;
  // The releases make the job fields above visible to every thread that claims a range.
  claim_.store(uint64_t{gen} << 32, std::memory_order_release);
  generation_.store(gen, std::memory_order_release);
  generation_.notify_all();  // no system call when no worker sleeps
  t_in_task = true;
  ClaimRanges(gen);
  t_in_task = false;
  for (int d = done_.load(std::memory_order_acquire); d != num_threads_;) {
    d = SpinThenWait(done_, d, spin_);
  }
  if (error_) std::rethrow_exception(error_);
}

ThreadPool& ThreadPool::Global() {
  static ThreadPool pool(DefaultNumThreads());
  return pool;
}

int DefaultNumThreads() {
  if (const char* env = std::getenv("KILN_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end == env || *end != '\0' || v < 1 || v > 4096) {
      throw UserError(StrCat("KILN_NUM_THREADS must be a positive integer, not '", env, "'"));
    }
    return static_cast<int>(v);
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

}  // namespace kiln
