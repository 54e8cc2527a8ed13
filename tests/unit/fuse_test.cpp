// fuse_test.cpp - the fusion pass: which ops group together (diamonds, epilogues, reductions,
// the size limit, training phases), composite nodes in the text IR, and the fused graph run on
// the reference interpreter matching the input graph.
#include <map>
#include <string>

#include "kiln/ir/composite.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/ir/verifier.h"
#include "kiln/passes/fuse.h"
#include "kiln/passes/infer.h"
#include "test_util.h"

namespace kiln {
namespace {

Graph Typed(const std::string& text) {
  Graph g = ParseGraph(text);
  InferShapes(g);
  InferTypes(g);
  return g;
}

std::map<std::string, Tensor> RandomInputs(const Graph& g, uint32_t seed) {
  std::map<std::string, Tensor> vars;
  for (uint32_t v : g.VariableNodes()) {
    std::vector<int64_t> dims = g.shape(Entry{v, 0}).dims();
    size_t n = 1;
    for (int64_t d : dims) n *= size_t(d);
    vars[g.node(v).name] = test::F32(dims, test::RandomValues(n, seed++, -1.0, 1.0));
  }
  return vars;
}

// Fuses, verifies, and checks that both graphs compute the same outputs bit for bit (fusion
// only regroups the same reference kernels).
Graph FuseAndCompare(const Graph& g, const PassContext& ctx = {}) {
  Graph f = Fuse(g, ctx);
  EXPECT_EQ(VerifyGraph(f), std::vector<std::string>{});
  std::map<std::string, Tensor> in = RandomInputs(g, 3);
  std::vector<Tensor> want = Interpret(g, in), got = Interpret(f, in);
  EXPECT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size() && i < got.size(); ++i)
    test::ExpectTensorNear(got[i], want[i].shape(), want[i].ToDoubles(), 0.0);
  return f;
}

std::vector<std::string> OpsOf(const Graph& g) {
  std::vector<std::string> ops;
  for (const Node& n : g.nodes())
    if (!n.is_variable()) ops.push_back(std::string(n.op_name()));
  return ops;
}

TEST(Fuse, DiamondOfElementwiseOpsIsOneGroup) {
  Graph g = Typed(R"g(graph {
    %x = var : float32[4, 5]
    %a = exp(%x)
    %b = tanh(%x)
    %c = elemwise_add(%a, %b)
    %d = sigmoid(%c)
    return %d
  })g");
  Graph f = FuseAndCompare(g);
  KernelCount k = CountKernels(f);
  EXPECT_EQ(k.kernels, 1);
  EXPECT_EQ(k.fused, 1);
  EXPECT_EQ(k.ops, 4);
  const Node& comp = f.node(f.outputs()[0].node);
  ASSERT_TRUE(IsComposite(comp));
  EXPECT_EQ(comp.name, "d");
  EXPECT_EQ(CompositeBody(comp).outputs().size(), 1u);
}

TEST(Fuse, ElementwiseEpilogueJoinsFullyConnectedButNoPrologue) {
  Graph g = Typed(R"g(graph {
    %x = var : float32[2, 8]
    %w = var : float32[4, 8]
    %b = var : float32[1, 4]
    %pre = relu(%x)
    %fc = FullyConnected(%pre, %w) {num_hidden=4, no_bias=True}
    %biased = broadcast_add(%fc, %b)
    %y = Activation(%biased) {act_type=sigmoid}
    return %y
  })g");
  Graph f = FuseAndCompare(g);
  // relu before the matrix product stays its own kernel; bias and activation are the epilogue.
  EXPECT_EQ(OpsOf(f), (std::vector<std::string>{"relu", "fused"}));
  const Node& comp = f.node(f.outputs()[0].node);
  EXPECT_EQ(comp.attrs.Get<CompositeAttrs>().anchor, "FullyConnected");
  EXPECT_EQ(OpsOf(CompositeBody(comp)),
            (std::vector<std::string>{"FullyConnected", "broadcast_add", "Activation"}));
}

TEST(Fuse, ResidualAddAndReluJoinConvolution) {
  Graph g = Typed(R"g(graph {
    %x = var : float32[1, 4, 6, 6]
    %w = var : float32[4, 4, 3, 3]
    %b = var : float32[4]
    %conv = Convolution(%x, %w, %b) {kernel="(3, 3)", pad="(1, 1)", num_filter=4}
    %sum = elemwise_add(%conv, %x)
    %y = relu(%sum)
    return %y
  })g");
  Graph f = FuseAndCompare(g);
  EXPECT_EQ(OpsOf(f), std::vector<std::string>{"fused"});
  EXPECT_EQ(CountKernels(f).lone_elementwise, 0);
}

TEST(Fuse, HeavyOpWhoseOutputIsBroadcastKeepsItsEpilogueOut) {
  // The product's output is read by a broadcast that expands it: not an elementwise epilogue.
  Graph g = Typed(R"g(graph {
    %x = var : float32[3, 4]
    %w = var : float32[4, 4]
    %d = dot(%x, %w)
    %big = var : float32[2, 3, 4]
    %y = broadcast_mul(%d, %big)
    return %y
  })g");
  Graph f = FuseAndCompare(g);
  EXPECT_EQ(OpsOf(f), (std::vector<std::string>{"dot", "broadcast_mul"}));
}

TEST(Fuse, ReductionEndsItsGroup) {
  Graph g = Typed(R"g(graph {
    %x = var : float32[4, 5]
    %a = exp(%x)
    %s = sum(%a) {axis="(1,)"}
    %y = sqrt(%s)
    return %y
  })g");
  Graph f = FuseAndCompare(g);
  // exp feeds the reduction (a prologue); sqrt after it is a kernel of its own.
  EXPECT_EQ(OpsOf(f), (std::vector<std::string>{"fused", "sqrt"}));
  EXPECT_EQ(OpsOf(CompositeBody(f.node(f.node(f.outputs()[0].node).inputs[0].node))),
            (std::vector<std::string>{"exp", "sum"}));
}

TEST(Fuse, InjectiveOpsFuseWithInjectiveSuccessors) {
  Graph g = Typed(R"g(graph {
    %x = var : float32[2, 3, 4]
    %t = transpose(%x) {axes="(2, 0, 1)"}
    %r = Reshape(%t) {shape="(4, 6)"}
    %y = exp(%r)
    return %y
  })g");
  Graph f = FuseAndCompare(g);
  EXPECT_EQ(CountKernels(f).kernels, 1);
}

TEST(Fuse, GroupsRespectTheSizeLimit) {
  std::string text = "graph {\n  %x0 = var : float32[8]\n";
  for (int i = 1; i <= 10; ++i) text += StrCat("  %x", i, " = tanh(%x", i - 1, ")\n");
  text += "  return %x10\n}\n";
  Graph g = Typed(text);
  PassContext ctx;
  ctx.max_fused_ops = 4;
  Graph f = FuseAndCompare(g, ctx);
  KernelCount k = CountKernels(f);
  EXPECT_EQ(k.kernels, 3);  // 4 + 4 + 2
  EXPECT_EQ(k.ops, 10);
  for (const Node& n : f.nodes()) {
    if (!n.is_variable() && IsComposite(n)) {
      EXPECT_LE(CompositeBody(n).num_nodes(), 5u);
    }
  }
  ctx.max_fused_ops = 0;
  test::ExpectUserError([&] { Fuse(g, ctx); }, {"max_fused_ops"});
}

TEST(Fuse, AGraphOutputEndsItsGroup) {
  // a leaves the graph, so nothing post-dominates it but the sink: it is not fused forward.
  Graph g = Typed(R"g(graph {
    %x = var : float32[3]
    %a = exp(%x)
    %b = tanh(%a)
    %c = sigmoid(%b)
    return %c, %a
  })g");
  Graph f = FuseAndCompare(g);
  EXPECT_EQ(OpsOf(f), (std::vector<std::string>{"exp", "fused"}));
}

TEST(Fuse, PutsTheForwardPhaseFirst) {
  // o = sigmoid(exp(x)) is the forward output; the backward part (reading y) is written between
  // the forward nodes here, as a graph may order them.
  Graph g = Typed(R"g(graph {
    %x = var : float32[3]
    %y = exp(%x)
    %head = var : float32[3]
    %g1 = elemwise_mul(%head, %y)
    %g2 = tanh(%g1)
    %o = Activation(%y) {act_type=sigmoid}
    return %o, %g2
  })g");
  PassContext ctx;
  ctx.forward_outputs = 1;
  Graph f = FuseAndCompare(g, ctx);
  EXPECT_EQ(CountKernels(f).kernels, 3);  // exp (read by both phases), sigmoid, mul + tanh
  uint32_t prefix = ForwardPrefix(f, 1);
  for (uint32_t i = 0; i < prefix; ++i) EXPECT_NE(f.node(i).name, "g2");
  EXPECT_EQ(f.node(prefix - 1).name, "o");
  EXPECT_EQ(ForwardPrefix(g, 1), 6u);  // in the input order, o comes last
}

TEST(Fuse, MultiOutputOpTakesAnEpilogueOnOutputZero) {
  // BatchNorm's output 0 gets relu; its mean output leaves the graph, so the composite returns
  // both.
  Graph g = Typed(R"g(graph {
    %x = var : float32[2, 3, 4, 4]
    %g = var : float32[3]
    %b = var : float32[3]
    %m = var : float32[3]
    %v = var : float32[3]
    %bn = BatchNorm(%x, %g, %b, %m, %v) {output_mean_var=True}
    %r = relu(%bn)
    return %r, %bn#1
  })g");
  Graph f = FuseAndCompare(g);
  EXPECT_EQ(OpsOf(f), std::vector<std::string>{"fused"});
  EXPECT_EQ(f.node(f.outputs()[0].node).num_outputs(), 2);
}

TEST(Fuse, NoEpilogueThatAnotherOutputReachesAgain) {
  // The mean (output 1) flows through exp back into the multiplication that would be the
  // epilogue: fusing would need the group's own result before it is computed.
  Graph g = Typed(R"g(graph {
    %x = var : float32[2, 3, 4, 4]
    %g = var : float32[3]
    %b = var : float32[3]
    %m = var : float32[3]
    %v = var : float32[3]
    %bn = BatchNorm(%x, %g, %b, %m, %v) {output_mean_var=True}
    %mr = Reshape(%bn#1) {shape="(1, 3, 1, 1)"}
    %e = exp(%mr)
    %t = broadcast_mul(%bn, %e)
    return %t
  })g");
  Graph f = FuseAndCompare(g);
  for (const Node& n : f.nodes()) {
    if (n.is_variable() || !IsComposite(n)) continue;
    for (const Node& b : CompositeBody(n).nodes())
      EXPECT_NE(std::string(b.op_name()), "BatchNorm") << PrintGraph(f);
  }
}

TEST(Fuse, NeedsFacts) {
  Graph g = ParseGraph("graph {\n  %x = var\n  %y = exp(%x)\n  return %y\n}\n");
  test::ExpectUserError([&] { Fuse(g, {}); }, {"fuse needs", "infer-shape"});
}

TEST(Composite, PrintsParsesAndRoundTripsThroughMXNetJson) {
  Graph g = Typed(R"g(graph {
    %x = var : float32[4, 5]
    %a = exp(%x)
    %b = tanh(%a)
    return %b
  })g");
  Graph f = Fuse(g, {});
  std::string text = PrintGraph(f);
  EXPECT_NE(text.find("%b = fused(%x) : float32[4, 5] {\n    %x = var : float32[4, 5]\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(PrintGraph(ParseGraph(text)), text);
}

TEST(Composite, ParseErrorsNameTheProblem) {
  test::ExpectUserError(
      [] {
        ParseGraph(R"g(graph {
          %x = var
          %f = fused(%x, %x) {
            %p = var
            %q = exp(%p)
            return %q
          }
          return %f
        })g");
      },
      {"fused \"f\"", "takes 1 input"});
  test::ExpectUserError([] { ParseGraph("graph {\n  %x = var\n  %f = fused(%x)\n  return %f\n}"); },
                        {"expected the body of fused \"f\""});
}

TEST(Composite, DeepNestingIsAnErrorNotACrash) {
  std::string text = "graph {\n  %x = var\n";
  std::string close;
  for (int i = 0; i < 100; ++i) {
    text += StrCat("  %f", i, " = fused(%x) {\n  %x = var\n");
    close = "  return %x\n  }\n" + close;
  }
  text += "  return %x\n" + close + "  return %f0\n}\n";
  test::ExpectUserError([&] { ParseGraph(text); }, {"nested deeper than 64"});
}

}  // namespace
}  // namespace kiln
