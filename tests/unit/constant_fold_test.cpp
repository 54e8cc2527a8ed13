// constant_fold_test.cpp - the constant-fold pass: node counts after the pass, and the graph
// before (all variables bound) and after (its constants plus the same inputs) run on the
// reference interpreter giving the same outputs.
#include <map>
#include <string>

#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/passes/constant_fold.h"
#include "kiln/passes/pass_manager.h"
#include "test_util.h"

namespace kiln {
namespace {

// Random values for every variable, shaped as the graph's facts say (the tests' graphs carry
// every variable's shape).
std::map<std::string, Tensor> RandomValuesFor(const Graph& g, uint32_t seed) {
  std::map<std::string, Tensor> vars;
  for (uint32_t v : g.VariableNodes()) {
    std::vector<int64_t> dims = g.shape(Entry{v, 0}).dims();
    size_t n = 1;
    for (int64_t d : dims) n *= size_t(d);
    // Positive values, so variances bound as moving_var stay valid.
    vars[g.node(v).name] = test::F32(dims, test::RandomValues(n, seed++, 0.1, 1.0));
  }
  return vars;
}

uint32_t CountOps(const Graph& g) {
  uint32_t n = 0;
  for (const Node& node : g.nodes()) n += node.is_variable() ? 0 : 1;
  return n;
}

// Makes the named variables constants (with their random values) in `ctx`, folds, and checks
// that the folded graph, run with ctx.constants and the same other inputs, matches the
// original run with every value.
Graph FoldAndCompare(const Graph& g, const std::vector<std::string>& constant_names,
                     PassContext& ctx) {
  std::map<std::string, Tensor> all = RandomValuesFor(g, 11);
  for (const std::string& name : constant_names) ctx.constants[name] = all.at(name);
  Graph folded = ConstantFold(g, ctx);
  std::map<std::string, Tensor> vars = ctx.constants;
  for (const auto& [name, value] : all)
    if (!ctx.constants.count(name)) vars[name] = value;
  std::vector<Tensor> want = Interpret(g, all);
  std::vector<Tensor> got = Interpret(folded, vars);
  EXPECT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size() && i < got.size(); ++i)
    test::ExpectTensorNear(got[i], want[i].shape(), want[i].ToDoubles(), 1e-5);
  return folded;
}

TEST(ConstantFold, FoldsConstantChainKeepsTheRest) {
  Graph g = ParseGraph(R"g(graph {
    %x = var : float32[2, 4]
    %w = var : float32[3, 4]
    %s = var : float32[3, 4]
    %ws = elemwise_mul(%w, %s)
    %wt = sigmoid(%ws)
    %y = FullyConnected(%x, %wt) {num_hidden=3, no_bias=True}
    %z = relu(%y)
    return %z
  })g");
  InferShapes(g);
  InferTypes(g);
  PassContext ctx;
  Graph out = FoldAndCompare(g, {"w", "s"}, ctx);
  EXPECT_EQ(CountOps(g), 4u);
  EXPECT_EQ(CountOps(out), 2u);  // FullyConnected and relu
  // x, w, s are kept (variables are the interface) and wt_folded is new.
  EXPECT_EQ(out.num_nodes(), 6u);
  ASSERT_TRUE(out.FindNode("wt_folded").has_value());
  EXPECT_FALSE(out.FindNode("ws").has_value());
  EXPECT_EQ(ctx.constants.count("wt_folded"), 1u);
  EXPECT_EQ(ctx.constants.count("ws_folded"), 0u);  // only read by folded nodes
  ASSERT_TRUE(out.has_shapes());
  EXPECT_EQ(out.shape(Entry{*out.FindNode("wt_folded"), 0}).ToString(), "(3, 4)");
  EXPECT_EQ(out.shape(out.outputs()[0]).ToString(), "(2, 3)");
  ASSERT_TRUE(out.has_dtypes());
  EXPECT_EQ(out.dtype(out.outputs()[0]), DType::kFloat32);
}

TEST(ConstantFold, FullyConstantOutputBecomesVariable) {
  Graph g = ParseGraph(R"g(graph {
    %a = var : float32[2, 3]
    %b = var : float32[2, 3]
    %c = elemwise_add(%a, %b)
    %d = exp(%c)
    return %d, %c
  })g");
  InferShapes(g);
  PassContext ctx;
  Graph out = FoldAndCompare(g, {"a", "b"}, ctx);
  EXPECT_EQ(CountOps(out), 0u);
  EXPECT_EQ(out.num_nodes(), 4u);  // a, b, c_folded, d_folded
  EXPECT_TRUE(out.FindNode("c_folded").has_value());
  EXPECT_TRUE(out.FindNode("d_folded").has_value());
}

TEST(ConstantFold, MultiOutputNodeAndBatchNormInInference) {
  Graph g = ParseGraph(R"g(graph {
    %x = var : float32[2, 3]
    %p = var : float32[2, 6]
    %parts = SliceChannel(%p) {num_outputs=2}
    %a = elemwise_add(%x, %parts)
    %b = elemwise_mul(%a, %parts#1)
    %bd = var : float32[2, 3, 2, 2]
    %gamma = var : float32[3]
    %beta = var : float32[3]
    %mean = var : float32[3]
    %var = var : float32[3]
    %bn = BatchNorm(%bd, %gamma, %beta, %mean, %var) {fix_gamma=False}
    return %b, %bn
  })g");
  InferShapes(g);
  PassContext ctx;
  Graph out = FoldAndCompare(g, {"p", "bd", "gamma", "beta", "mean", "var"}, ctx);
  EXPECT_EQ(CountOps(out), 2u);  // the two elemwise ops
  EXPECT_TRUE(out.FindNode("parts_folded0").has_value());
  EXPECT_TRUE(out.FindNode("parts_folded1").has_value());
  EXPECT_TRUE(out.FindNode("bn_folded0").has_value());
  EXPECT_FALSE(out.FindNode("bn_folded1").has_value());  // mean output: not read
}

TEST(ConstantFold, RandomOpsAreNotFolded) {
  Graph g = ParseGraph(R"g(graph {
    %w = var : float32[2, 3]
    %d = Dropout(%w) {p=0.5}
    %r = LeakyReLU(%w) {act_type=rrelu}
    %l = LeakyReLU(%w) {act_type=leaky}
    %s = elemwise_add(%d, %r)
    %t = elemwise_add(%s, %l)
    return %t
  })g");
  InferShapes(g);
  PassContext ctx;
  Graph out = FoldAndCompare(g, {"w"}, ctx);
  EXPECT_EQ(CountOps(out), 4u);  // Dropout, rrelu and both adds; leaky is folded
  EXPECT_TRUE(out.FindNode("d").has_value());
  EXPECT_TRUE(out.FindNode("r").has_value());
  EXPECT_TRUE(out.FindNode("l_folded").has_value());
}

TEST(ConstantFold, NoConstantsLeavesGraphUnchanged) {
  Graph g = ParseGraph(R"g(graph {
    %x = var : float32[2, 3]
    %w = var : float32[2, 3]
    %y = elemwise_mul(%x, %w)
    %z = tanh(%y)
    return %z
  })g");
  InferShapes(g);
  PassContext ctx;
  Graph out = ConstantFold(g, ctx);
  EXPECT_EQ(PrintGraph(out), PrintGraph(g));
  EXPECT_TRUE(ctx.constants.empty());
  // Only some inputs constant: nothing is foldable either.
  ctx.constants["w"] = test::F32({2, 3}, test::RandomValues(6, 3));
  Graph out2 = ConstantFold(g, ctx);
  EXPECT_EQ(PrintGraph(out2), PrintGraph(g));
  EXPECT_EQ(ctx.constants.size(), 1u);
}

TEST(ConstantFold, RegisteredAndRunsThroughPassManager) {
  Graph g = ParseGraph(R"g(graph {
    %x = var : float32[2, 3]
    %w = var : float32[2, 3]
    %n = negative(%w)
    %y = elemwise_add(%x, %n)
    return %y
  })g");
  ASSERT_NE(PassRegistry::Global().Find("constant-fold"), nullptr);
  PassContext ctx;
  ctx.constants["w"] = test::F32({2, 3}, test::RandomValues(6, 5));
  PassManager pm({"infer-shape", "constant-fold", "verify"});
  pm.options().verify_each = true;
  ctx.infer.shapes["x"] = Shape{2, 3};
  ctx.infer.shapes["w"] = Shape{2, 3};
  Graph out = pm.Run(g, ctx);
  EXPECT_EQ(CountOps(out), 1u);
  EXPECT_EQ(ctx.constants.count("n_folded"), 1u);
}

}  // namespace
}  // namespace kiln
