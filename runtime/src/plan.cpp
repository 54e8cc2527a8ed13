// plan.cpp - verifying and running compiled plans (see kiln/runtime/plan.h).
#include "kiln/runtime/plan.h"

#include "kiln/runtime/error.h"

namespace kiln {

std::vector<std::string> VerifyPlan(const Plan& plan) {
  std::vector<std::string> problems;
  if (plan.arena_size < 0) problems.push_back(StrCat("arena size ", plan.arena_size, " < 0"));
  if (plan.arena_alignment < 1 || (plan.arena_alignment & (plan.arena_alignment - 1)))
    problems.push_back(StrCat("arena alignment ", plan.arena_alignment, " is not a power of 2"));
  if (plan.num_externals < 0)
    problems.push_back(StrCat("external buffer count ", plan.num_externals, " < 0"));
  for (size_t i = 0; i < plan.calls.size(); ++i) {
    const PlanCall& c = plan.calls[i];
    std::string where = StrCat("call ", i, " (", c.name.empty() ? "unnamed" : c.name, ")");
    if (!c.fn) problems.push_back(StrCat(where, ": no kernel function"));
    if (c.tasks < 1) problems.push_back(StrCat(where, ": task count ", c.tasks, " < 1"));
    for (size_t k = 0; k < c.args.size(); ++k) {
      const PlanArg& a = c.args[k];
      std::string arg = StrCat(where, " argument ", k);
      if (a.kind == PlanArg::Kind::kExternal) {
        if (a.index < 0 || a.index >= plan.num_externals)
          problems.push_back(
              StrCat(arg, ": external buffer ", a.index, " of ", plan.num_externals));
        continue;
      }
      if (a.offset < 0 || a.bytes < 0 || a.offset > plan.arena_size ||
          a.bytes > plan.arena_size - a.offset)
        problems.push_back(StrCat(arg, ": arena bytes [", a.offset, ", ", a.offset + a.bytes,
                                  ") outside the arena of ", plan.arena_size));
      else if (plan.arena_alignment > 0 && a.offset % plan.arena_alignment != 0)
        problems.push_back(StrCat(arg, ": arena offset ", a.offset, " is not a multiple of ",
                                  plan.arena_alignment));
    }
  }
  return problems;
}

PlanExecutor::PlanExecutor(const Plan& plan, ThreadPool* pool) : plan_(plan), pool_(pool) {
  args_.resize(plan.calls.size());
  for (size_t i = 0; i < plan.calls.size(); ++i) args_[i].resize(plan.calls[i].args.size());
}

void PlanExecutor::Run(void* arena, void* const* externals, size_t first, size_t last) {
  KILN_INTERNAL_CHECK(first <= last && last <= plan_.calls.size(), "plan calls [", first, ", ",
                      last, ") of ", plan_.calls.size());
  char* base = static_cast<char*>(arena);
  for (size_t i = first; i < last; ++i) {
    const PlanCall& c = plan_.calls[i];
    std::vector<void*>& args = args_[i];
    for (size_t k = 0; k < c.args.size(); ++k) {
      const PlanArg& a = c.args[k];
      args[k] = a.kind == PlanArg::Kind::kArena ? static_cast<void*>(base + a.offset)
                                                : externals[a.index];
    }
    if (c.tasks > 1 && pool_ && pool_->num_threads() > 1) {
      struct Job {
        KernelFn fn;
        void* const* args;
      } job{c.fn, args.data()};
      pool_->ParallelFor(
          c.tasks,
          [](void* ctx, int64_t b, int64_t e) {
            auto* j = static_cast<Job*>(ctx);
            j->fn(j->args, b, e);
          },
          &job);
    } else {
      c.fn(args.data(), 0, c.tasks);
    }
  }
}

}  // namespace kiln
