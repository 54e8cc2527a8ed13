// gradient_test.cpp - the gradient pass: sums over multiple uses, prunes what is not needed,
// names ops without gradients, and matches finite differences on whole graphs.
#include "grad_check.h"
#include "kiln/frontend/models.h"
#include "kiln/frontend/ops.h"
#include "kiln/ir/text.h"

namespace kiln {
namespace {

int CountOps(const Graph& g, const std::string& op) {
  int n = 0;
  for (const Node& node : g.nodes())
    if (node.op && node.op->name() == op) ++n;
  return n;
}

TEST(Gradient, FullyConnectedAndActivationMatchFiniteDifferences) {
  test::CheckGradient({"FullyConnected", {{"num_hidden", "3"}}, {{2, 4}, {3, 4}, {3}}});
  test::CheckGradient(
      {"FullyConnected", {{"num_hidden", "2"}, {"no_bias", "True"}}, {{2, 3, 2}, {2, 6}}});
  test::CheckGradient(
      {"FullyConnected", {{"num_hidden", "2"}, {"flatten", "False"}}, {{2, 3, 4}, {2, 4}, {2}}});
  for (const char* act : {"sigmoid", "tanh", "softrelu", "softsign"})
    test::CheckGradient({"Activation", {{"act_type", act}}, {{3, 4}}});
  // relu away from its kink at 0.
  test::CheckGradient(
      {"Activation", {{"act_type", "relu"}}, {{6}}, {{0, {-2, -1, -0.5, 0.5, 1, 2}}}});
}

TEST(Gradient, EntryUsedTwiceGetsTheSumOfItsGradients) {
  // y = relu(x) used twice: fc(y) + y... built as text so the structure is explicit.
  Graph g = ParseGraph(R"(graph {
  %x = var
  %y = Activation(%x) {act_type=sigmoid}
  %z = elemwise_add(%y, %y)
  return %z
})");
  GradientGraph gg = BuildGradient(g, {0});
  EXPECT_EQ(gg.grads.size(), 1u);
  EXPECT_EQ(CountOps(gg.graph, "add_n"), 1);  // the two contributions to y's gradient
  std::map<std::string, Tensor> feeds = {{"x", test::F32({2}, {0.0, 1.0})},
                                         {"z_head_grad", test::F32({2}, {1, 1})}};
  std::vector<Tensor> out = Interpret(gg.graph, feeds);
  // dz/dx = 2 sigmoid'(x) = 2 s (1 - s): 0.5 at 0, 0.39322 at 1.
  double s1 = 1 / (1 + std::exp(-1.0));
  test::ExpectTensorNear(out[1], {2}, {0.5, 2 * s1 * (1 - s1)}, 1e-6);
}

TEST(Gradient, ComputesOnlyWhatTheRequestedGradientsNeed) {
  Symbol net = models::Mlp({8}, 4);
  Graph g = net.ToGraph();
  auto id = [&](const char* name) { return *g.FindNode(name); };
  // Only fc2's weight: no gradient flows into fc1's parameters or the data, so the backward of
  // fc1 is never built; fc2's backward is.
  GradientGraph gg = BuildGradient(g, {id("fc2_weight")});
  EXPECT_EQ(CountOps(gg.graph, "_backward_FullyConnected"), 1);
  EXPECT_EQ(CountOps(gg.graph, "_backward_Activation"), 0);
  GradientGraph all = BuildGradient(g, {id("data"), id("fc1_weight"), id("fc2_weight")});
  EXPECT_EQ(CountOps(all.graph, "_backward_FullyConnected"), 2);
  EXPECT_EQ(CountOps(all.graph, "_backward_Activation"), 1);
  // Forward nodes keep their indices.
  for (uint32_t i = 0; i < g.num_nodes(); ++i) EXPECT_EQ(gg.graph.node(i).name, g.node(i).name);
}

TEST(Gradient, VariableThatNoOutputReadsGetsZeros) {
  Graph g = ParseGraph(R"(graph {
  %x = var
  %unused = var
  %y = Activation(%x) {act_type=tanh}
  return %y
})");
  GradientGraph gg = BuildGradient(g, {1});
  std::map<std::string, Tensor> feeds = {{"x", test::F32({2}, {1, 2})},
                                         {"unused", test::F32({3}, {5, 6, 7})},
                                         {"y_head_grad", test::F32({2}, {1, 1})}};
  test::ExpectTensorNear(Interpret(gg.graph, feeds)[1], {3}, {0, 0, 0});
}

TEST(Gradient, OpWithoutGradientIsAUserErrorNamingEveryNode) {
  Graph g = ParseGraph(R"(graph {
  %x = var
  %a = argmax(%x) {axis=1}
  %b = argmax(%x) {axis=0}
  %s = broadcast_add(%a, %b)
  return %s
})");
  test::ExpectUserError(
      [&] { BuildGradient(g, {0}); },
      {"cannot differentiate through", "argmax \"a\"", "argmax \"b\"", "has no gradient"});
  // Asking only for gradients that do not pass through argmax is fine.
  Graph h = ParseGraph(R"(graph {
  %x = var
  %a = argmax(%x) {axis=1}
  %y = Activation(%x) {act_type=tanh}
  return %a, %y
})");
  EXPECT_NO_THROW(BuildGradient(h, {0}, {Entry{2, 0}}));
}

TEST(Gradient, NonVariableIsAUserError) {
  Graph g =
      ParseGraph("graph {\n  %x = var\n  %y = Activation(%x) {act_type=tanh}\n  return %y\n}");
  test::ExpectUserError([&] { BuildGradient(g, {1}); }, {"not a variable"});
}

}  // namespace
}  // namespace kiln
