// kiln/runtime/plan.h - a compiled plan: one call per kernel on one planned arena.
//
// What a compiled graph is at run time, with no compiler in reach: a list of kernel calls in
// order, each a function with kiln's kernel calling convention (docs/codegen.md, decision D28)
//
//   void kernel(void* const* args, int64_t task_begin, int64_t task_end);
//
// and, for each of its arguments, where the buffer lives: at an offset of the arena (every
// intermediate, placed by the memory planner, passes/memory_plan.h) or in one of the caller's
// external buffers (graph inputs, parameters, outputs). A call with `tasks` > 1 is a parallel
// kernel: the executor splits [0, tasks) over the thread pool (the same split for a given thread
// count, so results are reproducible); without a pool, or with one thread, a call runs as
// kernel(args, 0, tasks) on the calling thread.
//
//   Plan plan;  // built by codegen, or loaded from an artifact
//   std::vector<std::string> problems = VerifyPlan(plan);   // offsets, indices, functions
//   PlanExecutor exec(plan, &ThreadPool::Global());          // one per thread running the plan
//   exec.Run(arena, externals);                              // arena: plan.arena_size bytes
//
// An executor holds the resolved argument arrays it fills on each Run, so it is not shared
// between threads; a Plan is immutable and may be shared by any number of executors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/runtime/thread_pool.h"

namespace kiln {

using KernelFn = void (*)(void* const* args, int64_t task_begin, int64_t task_end);

// Where one kernel argument lives.
struct PlanArg {
  enum class Kind : uint8_t { kArena, kExternal };
  Kind kind = Kind::kArena;
  int64_t offset = 0;    // kArena: byte offset into the arena
  int64_t index = 0;     // kExternal: index into the caller's external buffers
  int64_t bytes = 0;     // the bytes the call may touch, for verification (0: not checked)
  bool written = false;  // the call writes this buffer (artifact loaders check where)

  static PlanArg Arena(int64_t offset, int64_t bytes) {
    return {Kind::kArena, offset, 0, bytes, false};
  }
  static PlanArg External(int64_t index, int64_t bytes = 0) {
    return {Kind::kExternal, 0, index, bytes, false};
  }
  PlanArg Written() const {
    PlanArg a = *this;
    a.written = true;
    return a;
  }
};

struct PlanCall {
  std::string name;  // the kernel's name, for errors and profiles
  KernelFn fn = nullptr;
  std::vector<PlanArg> args;
  int64_t tasks = 1;  // > 1: a parallel kernel over [0, tasks)
};

struct Plan {
  int64_t arena_size = 0;        // bytes
  int64_t arena_alignment = 64;  // the arena's base must be aligned to this
  int64_t num_externals = 0;
  std::vector<PlanCall> calls;
};

// Every problem of the plan, each naming the call and the argument: a missing function, an
// arena buffer outside the arena or misaligned, an external index out of range, a task count
// below 1. Empty when the plan is sound. (Artifact loaders report these as corrupt files.)
std::vector<std::string> VerifyPlan(const Plan& plan);

class PlanExecutor {
 public:
  // `pool` may be null: every call then runs on the calling thread. The plan must outlive the
  // executor and must have passed VerifyPlan.
  explicit PlanExecutor(const Plan& plan, ThreadPool* pool = nullptr);

  // Runs every call in order. `arena` holds plan.arena_size bytes aligned to
  // plan.arena_alignment; `externals` holds plan.num_externals pointers. A kernel's exception
  // propagates (after the other tasks of its call have finished).
  void Run(void* arena, void* const* externals) { Run(arena, externals, 0, plan_.calls.size()); }
  // Runs calls [first, last) only: a training plan runs its forward phase, then its backward.
  void Run(void* arena, void* const* externals, size_t first, size_t last);

 private:
  const Plan& plan_;
  ThreadPool* pool_;
  std::vector<std::vector<void*>> args_;  // per call, resolved on each Run
};

}  // namespace kiln
