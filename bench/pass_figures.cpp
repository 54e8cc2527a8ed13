// pass_figures: the issue-4 figures for the -O3 pipeline on the MLP, LeNet and ResNet-18, at
// batch 1 inference (parameters as constants) and batch 32 training (forward and backward).
//
//   build/bench/kiln_pass_figures [--runs N]
//
// Per model and mode: op nodes before the pipeline, kernels after it (fused composites,
// lone elementwise kernels), the memory plan of the optimised graph (arena, lower bound, naive
// total, and the naive total of the graph before optimisation), and the pipeline's wall time
// over N runs (median and minimum, in ms), and its slowest pass with its share of the first
// run.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/frontend/model_graphs.h"
#include "kiln/frontend/models.h"
#include "kiln/passes/fuse.h"
#include "kiln/passes/memory_plan.h"
#include "kiln/passes/pass_manager.h"

namespace kiln {
namespace {

struct Row {
  std::string model, mode;
  ModelGraph graph;
  bool training;
};

double Ms(std::chrono::nanoseconds t) {
  return double(t.count()) / 1e6;
}

void Report(const Row& r, int runs) {
  std::vector<double> totals;
  Graph opt;
  std::string slowest;
  double slowest_ms = 0, first = 0;
  for (int i = 0; i < runs; ++i) {
    PassContext ctx = ContextFor(r.graph, r.training);
    PassManager pm(OptPipeline(3));
    pm.options().verify_each = false;
    opt = pm.Run(r.graph.graph, ctx);
    double total = 0;
    for (const PassTiming& t : pm.timings()) total += Ms(t.time);
    totals.push_back(total);
    if (i == 0) first = total;
    if (i == 0)
      for (const PassTiming& t : pm.timings())
        if (Ms(t.time) > slowest_ms) slowest_ms = Ms(t.time), slowest = t.pass;
  }
  std::sort(totals.begin(), totals.end());
  KernelCount before = CountKernels(r.graph.graph), after = CountKernels(opt);
  MemoryPlan plan = PlanMemory(opt);
  MemoryPlan unopt = PlanMemory(r.graph.graph);
  std::printf(
      "| %-9s | %-13s | %5d | %5d | %4d | %4d | %12lld | %12lld | %5.3f | %12lld | %5.1f%% | "
      "%12lld | %8.2f | %8.2f | %s %.0f%% |\n",
      r.model.c_str(), r.mode.c_str(), before.kernels, after.kernels, after.fused,
      after.lone_elementwise, (long long)plan.arena_size, (long long)plan.lower_bound,
      double(plan.arena_size) / double(std::max<int64_t>(plan.lower_bound, 1)),
      (long long)plan.naive_size,
      100.0 * double(plan.arena_size) / double(std::max<int64_t>(plan.naive_size, 1)),
      (long long)unopt.naive_size, totals[totals.size() / 2], totals[0], slowest.c_str(),
      100.0 * slowest_ms / std::max(first, 1e-9));
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  using namespace kiln;
  int runs = 11;
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
  std::vector<Row> rows;
  rows.push_back(
      {"MLP", "infer b1", InferenceGraph(models::Mlp(), {{"data", Shape{1, 784}}}), false});
  rows.push_back(
      {"MLP", "train b32", TrainingGraph(models::Mlp(), {{"data", Shape{32, 784}}}), true});
  rows.push_back({"LeNet", "infer b1",
                  InferenceGraph(models::LeNet(), {{"data", Shape{1, 1, 28, 28}}}), false});
  rows.push_back({"LeNet", "train b32",
                  TrainingGraph(models::LeNet(), {{"data", Shape{32, 1, 28, 28}}}), true});
  rows.push_back({"ResNet-18", "infer b1",
                  InferenceGraph(models::ResNet18(), {{"data", Shape{1, 3, 224, 224}}}), false});
  rows.push_back({"ResNet-18", "train b32",
                  TrainingGraph(models::ResNet18(), {{"data", Shape{32, 3, 224, 224}}}), true});
  std::printf(
      "| model | mode | ops before | kernels after | fused | lone elementwise | arena B | lower "
      "bound B | arena/bound | naive B | arena/naive | naive B before -O3 | -O3 median ms | -O3 "
      "min ms | slowest pass |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) Report(r, runs);
  return 0;
}
