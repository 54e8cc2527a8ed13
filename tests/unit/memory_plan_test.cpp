// memory_plan_test.cpp - the arena planner: hand-made graphs whose best plan is known, the
// models kiln ships (inference and training), and a verifier that every plan must pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "kiln/frontend/models.h"
#include "kiln/ir/text.h"
#include "kiln/passes/gradient.h"
#include "kiln/passes/infer.h"
#include "kiln/passes/memory_plan.h"
#include "test_util.h"

namespace kiln {
namespace {

Graph Typed(Graph g, const InferOptions& opt = {}) {
  InferShapes(g, opt);
  InferTypes(g, opt);
  return g;
}

Graph TypedText(std::string_view text) {
  return Typed(ParseGraph(text));
}

// Checks `plan` against `g` from first principles, so a planner bug cannot hide behind its own
// bookkeeping: lifetimes recomputed from the graph; aligned offsets inside the arena; every
// intermediate entry planned and no external one; for every pair of buffers whose lifetimes
// overlap, no shared byte unless one took the other's storage in place at the one step where
// the op both reads it for the last time and writes the output, as the registry allows.
void VerifyPlan(const Graph& g, const MemoryPlan& plan) {
  std::set<uint32_t> external;
  for (const Entry& e : g.outputs()) external.insert(g.entry_id(e));
  for (uint32_t v : g.VariableNodes()) external.insert(g.entry_id(v, 0));
  EXPECT_EQ(plan.buffers.size(), g.num_entries() - external.size());

  std::vector<uint32_t> first(g.num_entries()), last(g.num_entries());
  for (uint32_t n = 0; n < g.num_nodes(); ++n) {
    for (int k = 0; k < g.node(n).num_outputs(); ++k)
      first[g.entry_id(n, uint32_t(k))] = last[g.entry_id(n, uint32_t(k))] = n;
    for (const Entry& in : g.node(n).inputs) last[g.entry_id(in)] = n;
  }
  int64_t naive = 0;
  for (const BufferPlacement& b : plan.buffers) {
    EXPECT_EQ(external.count(b.entry), 0u) << EntryDisplayName(g, b.entry);
    EXPECT_EQ(b.first, first[b.entry]) << EntryDisplayName(g, b.entry);
    EXPECT_EQ(b.last, last[b.entry]) << EntryDisplayName(g, b.entry);
    EXPECT_EQ(b.bytes, g.shapes[b.entry].NumElements() * int64_t(DTypeSize(g.dtypes[b.entry])));
    EXPECT_GE(b.size, b.bytes);
    EXPECT_EQ(b.size % kMemoryAlignment, 0);
    EXPECT_EQ(b.offset % kMemoryAlignment, 0);
    EXPECT_LE(b.offset + b.size, plan.arena_size);
    naive += b.size;
    if (b.inplace_of >= 0) {
      // The source must be read last by the node that writes this entry, which allows it.
      uint32_t src = uint32_t(b.inplace_of);
      const Node& node = g.node(g.entry(b.entry).node);
      EXPECT_EQ(last[src], first[b.entry]);
      bool allowed = false;
      for (const auto& [in, out] : node.op->InplacePairs(node.attrs))
        if (uint32_t(out) == g.entry(b.entry).index && g.entry_id(node.inputs[size_t(in)]) == src)
          allowed = true;
      EXPECT_TRUE(allowed) << EntryDisplayName(g, b.entry);
    }
  }
  EXPECT_EQ(plan.naive_size, naive);
  EXPECT_GE(plan.arena_size, plan.lower_bound);
  EXPECT_LE(plan.arena_size, plan.naive_size);

  for (size_t i = 0; i < plan.buffers.size(); ++i) {
    const BufferPlacement& a = plan.buffers[i];
    for (size_t j = i + 1; j < plan.buffers.size(); ++j) {
      const BufferPlacement& b = plan.buffers[j];
      bool bytes =
          a.size > 0 && b.size > 0 && a.offset < b.offset + b.size && b.offset < a.offset + a.size;
      bool alive = a.first <= b.last && b.first <= a.last;
      if (!bytes || !alive) continue;
      bool inplace = (b.inplace_of == int64_t(a.entry) && a.last == b.first) ||
                     (a.inplace_of == int64_t(b.entry) && b.last == a.first);
      EXPECT_TRUE(inplace) << EntryDisplayName(g, a.entry) << " [" << a.offset << ", +" << a.size
                           << ") lives [" << a.first << ", " << a.last << "] and "
                           << EntryDisplayName(g, b.entry) << " [" << b.offset << ", +" << b.size
                           << ") lives [" << b.first << ", " << b.last << "]";
    }
  }
}

// float32[4, 16]: 256 bytes, already aligned.
TEST(MemoryPlan, ElementwiseChainRunsInPlace) {
  Graph g = TypedText(R"(graph {
    %x = var : float32[4, 16]
    %a = exp(%x)
    %b = exp(%a)
    %c = negative(%b)
    %d = exp(%c)
    return %d
  })");
  MemoryPlan plan = PlanMemory(g);
  VerifyPlan(g, plan);
  ASSERT_EQ(plan.buffers.size(), 3u);  // a, b, c: x is a variable, d a graph output
  EXPECT_EQ(plan.arena_size, 256);
  EXPECT_EQ(plan.lower_bound, 256);
  EXPECT_EQ(plan.naive_size, 3 * 256);
  EXPECT_EQ(plan.buffers[1].inplace_of, int64_t(plan.buffers[0].entry));
  EXPECT_EQ(plan.buffers[2].inplace_of, int64_t(plan.buffers[1].entry));
}

TEST(MemoryPlan, DiamondKeepsTwoAlive) {
  Graph g = TypedText(R"(graph {
    %x = var : float32[4, 16]
    %a = exp(%x)
    %b = exp(%a)
    %c = negative(%a)
    %d = elemwise_add(%b, %c)
    %e = exp(%d)
    return %e
  })");
  MemoryPlan plan = PlanMemory(g);
  VerifyPlan(g, plan);
  EXPECT_EQ(plan.arena_size, 2 * 256);
  EXPECT_EQ(plan.lower_bound, 2 * 256);
  EXPECT_EQ(plan.naive_size, 4 * 256);
}

// FullyConnected may not write over its input, so consecutive layers need two buffers, and the
// third layer reuses the first's.
TEST(MemoryPlan, NoInplaceOpsReuseFreedBuffers) {
  Graph g = TypedText(R"(graph {
    %x = var : float32[1, 64]
    %w1 = var
    %b1 = var
    %w2 = var
    %b2 = var
    %w3 = var
    %b3 = var
    %w4 = var
    %b4 = var
    %h1 = FullyConnected(%x, %w1, %b1) {num_hidden=64}
    %h2 = FullyConnected(%h1, %w2, %b2) {num_hidden=32}
    %h3 = FullyConnected(%h2, %w3, %b3) {num_hidden=64}
    %y = FullyConnected(%h3, %w4, %b4) {num_hidden=8}
    return %y
  })");
  MemoryPlan plan = PlanMemory(g);
  VerifyPlan(g, plan);
  EXPECT_EQ(plan.lower_bound, 256 + 128);
  EXPECT_EQ(plan.arena_size, 256 + 128);
  EXPECT_EQ(plan.naive_size, 256 + 128 + 256);
  for (const BufferPlacement& b : plan.buffers) EXPECT_EQ(b.inplace_of, -1);
}

// Small buffers are padded to the alignment; an output read by nobody lives one step.
TEST(MemoryPlan, AlignsAndHandlesUnreadOutputs) {
  Graph g = TypedText(R"(graph {
    %x = var : float32[3]
    %a = exp(%x)
    %parts = SliceChannel(%a) {num_outputs=3, axis=0}
    %y = elemwise_add(%parts, %parts#2)
    return %y
  })");
  MemoryPlan plan = PlanMemory(g);
  VerifyPlan(g, plan);
  for (const BufferPlacement& b : plan.buffers) EXPECT_EQ(b.size, 64);
  EXPECT_EQ(plan.arena_size, plan.lower_bound);
  EXPECT_EQ(plan.lower_bound, 4 * 64);  // a and the three parts are alive at the slice
}

TEST(MemoryPlan, UnknownShapeIsAUserError) {
  Graph g = ParseGraph("graph {\n  %x = var\n  %a = exp(%x)\n  %b = exp(%a)\n  return %b\n}");
  test::ExpectUserError([&] { PlanMemory(g); }, {"shapes"});
}

TEST(MemoryPlan, FormatHasTheSummary) {
  Graph g = TypedText(R"(graph {
    %x = var : float32[4, 16]
    %a = exp(%x)
    %b = exp(%a)
    return %b
  })");
  std::string text = FormatMemoryPlan(g, PlanMemory(g));
  EXPECT_NE(text.find("%a"), std::string::npos) << text;
  EXPECT_NE(text.find("arena size: 256 bytes"), std::string::npos) << text;
  EXPECT_NE(text.find("lower bound: 256 bytes"), std::string::npos) << text;
  EXPECT_NE(text.find("arena / lower bound: 1.000"), std::string::npos) << text;
}

MemoryPlan PlanModel(const char* name, const Graph& g, double max_ratio) {
  MemoryPlan plan = PlanMemory(g);
  VerifyPlan(g, plan);
  std::printf(
      "%s: %zu buffers, arena %lld, lower bound %lld, naive %lld, arena/lb %.3f, "
      "arena/naive %.3f (%s)\n",
      name, plan.buffers.size(), (long long)plan.arena_size, (long long)plan.lower_bound,
      (long long)plan.naive_size, double(plan.arena_size) / double(plan.lower_bound),
      double(plan.arena_size) / double(plan.naive_size), plan.strategy.c_str());
  EXPECT_LE(double(plan.arena_size), max_ratio * double(plan.lower_bound)) << name;
  return plan;
}

Graph TypedModel(const Symbol& net, Shape data) {
  InferOptions opt;
  opt.shapes["data"] = data;
  return Typed(net.ToGraph(), opt);
}

TEST(MemoryPlan, Mlp) {
  PlanModel("mlp", TypedModel(models::Mlp(), {1, 784}), 1.1);
}

TEST(MemoryPlan, LeNet) {
  PlanModel("lenet", TypedModel(models::LeNet(), {1, 1, 28, 28}), 1.1);
}

TEST(MemoryPlan, ResNet18) {
  PlanModel("resnet18", TypedModel(models::ResNet18(), {1, 3, 224, 224}), 1.1);
}

// Every strategy alone must give a valid plan, not only the one that wins.
TEST(MemoryPlan, EveryStrategyIsValid) {
  Graph fwd = models::ResNet18().ToGraph();
  std::vector<uint32_t> xs;
  for (uint32_t v : fwd.ArgumentNodes())
    if (fwd.node(v).name != "data" && fwd.node(v).name != "softmax_label") xs.push_back(v);
  InferOptions fwd_opt, train_opt;
  fwd_opt.shapes["data"] = train_opt.shapes["data"] = Shape{1, 3, 224, 224};
  train_opt.shapes["softmax_head_grad"] = Shape{1, 1000};
  Graph graphs[] = {Typed(fwd, fwd_opt), Typed(BuildGradient(fwd, xs).graph, train_opt)};
  for (const Graph& g : graphs) {
    for (const std::string& s : MemoryPlanStrategies()) {
      SCOPED_TRACE(s);
      MemoryPlan plan = PlanMemory(g, s);
      EXPECT_EQ(plan.strategy, s);
      VerifyPlan(g, plan);
      std::printf("resnet18 %s, %s: arena %lld, lower bound %lld\n",
                  &g == &graphs[0] ? "inference" : "training", s.c_str(),
                  (long long)plan.arena_size, (long long)plan.lower_bound);
    }
  }
}

// A training graph: the backward nodes read forward activations, which must stay alive; the
// verifier checks that against the graph.
TEST(MemoryPlan, LeNetTraining) {
  Graph fwd = models::LeNet().ToGraph();
  std::vector<uint32_t> xs;
  for (uint32_t v : fwd.ArgumentNodes())
    if (fwd.node(v).name != "data" && fwd.node(v).name != "softmax_label") xs.push_back(v);
  GradientGraph grad = BuildGradient(fwd, xs);
  InferOptions opt;
  opt.shapes["data"] = Shape{8, 1, 28, 28};
  opt.shapes["softmax_head_grad"] = Shape{8, 10};  // ignored by the loss head, but typed
  Graph g = Typed(grad.graph, opt);
  PlanModel("lenet-training", g, 1.1);
}

}  // namespace
}  // namespace kiln
