// plan_test.cpp - compiled plans: verification of offsets, indices and functions, and
// execution of hand-written kernels (kiln's calling convention) on an arena, serially and on a
// thread pool, against values computed directly.
#include <cstdlib>
#include <memory>
#include <vector>

#include "kiln/runtime/plan.h"
#include "test_util.h"

namespace kiln {
namespace {

constexpr int64_t kN = 1000;  // elements per buffer; tasks split it into chunks

// Task t of `tasks` covers elements [kN*t/T, kN*(t+1)/T); T is read from args[3].
void Bounds(void* const* args, int64_t t, int64_t* lo, int64_t* hi) {
  int64_t tasks = *static_cast<const int64_t*>(args[3]);
  *lo = kN * t / tasks;
  *hi = kN * (t + 1) / tasks;
}

// out = a + b
void AddKernel(void* const* args, int64_t begin, int64_t end) {
  auto* a = static_cast<const float*>(args[0]);
  auto* b = static_cast<const float*>(args[1]);
  auto* out = static_cast<float*>(args[2]);
  for (int64_t t = begin; t < end; ++t) {
    int64_t lo, hi;
    Bounds(args, t, &lo, &hi);
    for (int64_t i = lo; i < hi; ++i) out[i] = a[i] + b[i];
  }
}

// out = a * a - b
void SquareMinusKernel(void* const* args, int64_t begin, int64_t end) {
  auto* a = static_cast<const float*>(args[0]);
  auto* b = static_cast<const float*>(args[1]);
  auto* out = static_cast<float*>(args[2]);
  for (int64_t t = begin; t < end; ++t) {
    int64_t lo, hi;
    Bounds(args, t, &lo, &hi);
    for (int64_t i = lo; i < hi; ++i) out[i] = a[i] * a[i] - b[i];
  }
}

void ThrowingKernel(void* const*, int64_t, int64_t) {
  throw UserError("kernel failed");
}

// x, y, z (externals 0-2) and the task counts (externals 3-4); t1 = x + y in the arena at 0,
// t2 = t1 * t1 - z in the arena at 4096, out (external 5) = t2 + t1.
Plan ThreeCalls(int64_t tasks) {
  constexpr int64_t kBytes = kN * 4;
  Plan p;
  p.arena_size = 8192;
  p.num_externals = 6;
  PlanArg count = PlanArg::External(tasks > 1 ? 3 : 4);
  p.calls.push_back({"add",
                     AddKernel,
                     {PlanArg::External(0), PlanArg::External(1), PlanArg::Arena(0, kBytes), count},
                     tasks});
  p.calls.push_back(
      {"square_minus",
       SquareMinusKernel,
       {PlanArg::Arena(0, kBytes), PlanArg::External(2), PlanArg::Arena(4096, kBytes), count},
       tasks});
  p.calls.push_back(
      {"add2",
       AddKernel,
       {PlanArg::Arena(4096, kBytes), PlanArg::Arena(0, kBytes), PlanArg::External(5), count},
       tasks});
  return p;
}

std::vector<float> RunThreeCalls(int64_t tasks, ThreadPool* pool) {
  Plan plan = ThreeCalls(tasks);
  EXPECT_EQ(VerifyPlan(plan), std::vector<std::string>{});
  std::vector<float> x(kN), y(kN), z(kN), out(kN, -1);
  for (int64_t i = 0; i < kN; ++i) {
    x[size_t(i)] = float(i % 7) - 3;
    y[size_t(i)] = 0.5f * float(i % 5);
    z[size_t(i)] = float(i % 3);
  }
  int64_t many = tasks, one = 1;
  std::unique_ptr<void, decltype(&std::free)> arena(std::aligned_alloc(64, 8192), &std::free);
  void* externals[] = {x.data(), y.data(), z.data(), &many, &one, out.data()};
  PlanExecutor exec(plan, pool);
  exec.Run(arena.get(), externals);
  for (int64_t i = 0; i < kN; ++i) {
    float t1 = x[size_t(i)] + y[size_t(i)];
    float want = (t1 * t1 - z[size_t(i)]) + t1;
    EXPECT_EQ(out[size_t(i)], want) << i;
  }
  return out;
}

TEST(Plan, RunsCallsInOrderOnTheArena) {
  RunThreeCalls(1, nullptr);
}

TEST(Plan, ParallelCallsGiveTheSameBitsOnAPool) {
  ThreadPool pool(2);
  std::vector<float> serial = RunThreeCalls(8, nullptr);
  std::vector<float> parallel = RunThreeCalls(8, &pool);
  EXPECT_EQ(serial, parallel);
}

TEST(Plan, VerifyNamesEveryProblem) {
  Plan p = ThreeCalls(4);
  p.calls[0].fn = nullptr;
  p.calls[1].args[2] = PlanArg::Arena(8000, 4000);  // past the 8192-byte arena
  p.calls[2].args[0] = PlanArg::Arena(100, 4);      // misaligned
  p.calls[2].args[2] = PlanArg::External(9);        // no such external
  p.calls[2].tasks = 0;
  std::vector<std::string> problems = VerifyPlan(p);
  ASSERT_EQ(problems.size(), 5u);
  EXPECT_NE(problems[0].find("call 0 (add): no kernel function"), std::string::npos);
  EXPECT_NE(problems[1].find("call 1 (square_minus) argument 2: arena bytes [8000, 12000)"),
            std::string::npos);
  EXPECT_NE(problems[2].find("task count 0"), std::string::npos);
  EXPECT_NE(problems[3].find("arena offset 100 is not a multiple of 64"), std::string::npos);
  EXPECT_NE(problems[4].find("external buffer 9 of 6"), std::string::npos);
}

TEST(Plan, KernelErrorsReachTheCaller) {
  Plan p;
  p.calls.push_back({"bad", ThrowingKernel, {}, 4});
  ThreadPool pool(2);
  PlanExecutor exec(p, &pool);
  test::ExpectUserError([&] { exec.Run(nullptr, nullptr); }, {"kernel failed"});
}

}  // namespace
}  // namespace kiln
