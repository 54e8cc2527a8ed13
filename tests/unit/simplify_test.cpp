// simplify_test.cpp - the dce, cse and simplify passes: node counts after each pass, and the
// graph before and after run on the reference interpreter giving the same outputs.
#include <map>
#include <string>

#include "kiln/ir/text.h"
#include "kiln/passes/cse.h"
#include "kiln/passes/dce.h"
#include "kiln/passes/simplify.h"
#include "test_util.h"

namespace kiln {
namespace {

// Random values for every variable, shaped as the graph's facts say (the tests' graphs carry
// every variable's shape).
std::map<std::string, Tensor> RandomInputs(const Graph& g, uint32_t seed) {
  std::map<std::string, Tensor> vars;
  for (uint32_t v : g.VariableNodes()) {
    const Shape& s = g.shape(Entry{v, 0});
    std::vector<int64_t> dims = s.dims();
    size_t n = 1;
    for (int64_t d : dims) n *= size_t(d);
    vars[g.node(v).name] = test::F32(dims, test::RandomValues(n, seed++));
  }
  return vars;
}

// Runs both graphs on the same random inputs and expects equal outputs (within 1e-6).
void ExpectSameOutputs(const Graph& before, const Graph& after) {
  std::map<std::string, Tensor> vars = RandomInputs(before, 7);
  std::vector<Tensor> want = Interpret(before, vars);
  std::vector<Tensor> got = Interpret(after, vars);
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i)
    test::ExpectTensorNear(got[i], want[i].shape(), want[i].ToDoubles());
}

uint32_t CountOps(const Graph& g) {
  uint32_t n = 0;
  for (const Node& node : g.nodes()) n += node.is_variable() ? 0 : 1;
  return n;
}

TEST(Dce, RemovesDeadOpsKeepsVariablesAndFacts) {
  Graph g = ParseGraph(R"g(graph {
    %x = var : float32[2, 3]
    %unused = var : float32[2, 3]
    %dead = Activation(%x) {act_type=relu}
    %dead2 = elemwise_add(%dead, %unused)
    %y = sigmoid(%x)
    %z = elemwise_mul(%y, %x)
    return %z
  })g");
  InferShapes(g);
  Graph out = EliminateDeadCode(g, PassContext{});
  EXPECT_EQ(g.num_nodes(), 6u);
  EXPECT_EQ(out.num_nodes(), 4u);
  EXPECT_EQ(CountOps(out), 2u);
  ASSERT_TRUE(out.has_shapes());
  EXPECT_EQ(out.shape(out.outputs()[0]).dims(), (std::vector<int64_t>{2, 3}));
  ExpectSameOutputs(g, out);
}

TEST(Cse, MergesEqualNodesAndKeepsDropoutApart) {
  Graph g = ParseGraph(R"g(graph {
    %x = var : float32[4, 5]
    %a = _mul_scalar(%x) {scalar=2}
    %b = _mul_scalar(%x) {scalar=2}
    %c = _mul_scalar(%x) {scalar=3}
    %ra = Activation(%a) {act_type=relu}
    %rb = Activation(%b) {act_type=relu}
    %s = elemwise_add(%ra, %rb)
    %t = elemwise_add(%s, %c)
    %d1 = Dropout(%t)
    %d2 = Dropout(%t)
    %u = elemwise_add(%d1, %d2)
    return %u
  })g");
  InferShapes(g);
  InferTypes(g);
  Graph out = EliminateCommonSubexpressions(g, PassContext{});
  EXPECT_EQ(CountOps(g), 10u);
  EXPECT_EQ(CountOps(out), 8u);  // %b and %rb merged; the Dropouts stay
  EXPECT_TRUE(out.has_dtypes());
  ExpectSameOutputs(g, out);
}

TEST(Simplify, RemovesIdentitiesAndComposesShapeOps) {
  Graph g = ParseGraph(R"g(graph {
    %x = var : float32[2, 3, 4]
    %m = _mul_scalar(%x) {scalar=1}
    %p = _plus_scalar(%m) {scalar=0}
    %s = _minus_scalar(%p) {scalar=0}
    %d = _div_scalar(%s) {scalar=1}
    %keep = _mul_scalar(%d) {scalar=2}
    %drop = Dropout(%keep) {p=0.5}
    %r1 = Reshape(%drop) {shape="(6, 4)"}
    %r2 = Reshape(%r1) {shape="(4, 6)"}
    %t1 = transpose(%x) {axes="(1, 2, 0)"}
    %t2 = transpose(%t1) {axes="(2, 0, 1)"}
    %t3 = transpose(%x) {axes="(1, 0, 2)"}
    %t4 = transpose(%t3) {axes="(0, 2, 1)"}
    %t5 = transpose(%t2)
    %t6 = transpose(%t5)
    %o = elemwise_add(%t6, %x)
    return %r2, %o, %t4
  })g");
  InferShapes(g);
  InferTypes(g);
  Graph out = Simplify(g, PassContext{});
  EXPECT_EQ(CountOps(g), 15u);
  // Left: %keep, %drop (simplify-inference's to remove), %r2, %t4 (composed), %o; the reversed
  // transpose pair is the identity.
  EXPECT_EQ(CountOps(out), 5u);
  EXPECT_TRUE(out.has_shapes());
  EXPECT_EQ(out.shape(out.outputs()[2]).dims(), (std::vector<int64_t>{3, 4, 2}));
  ExpectSameOutputs(g, out);
}

TEST(Simplify, KeepsWhatIsNotAnIdentity) {
  Graph g = ParseGraph(R"g(graph {
    %x = var : float32[2, 6]
    %m = _mul_scalar(%x) {scalar=1.5}
    %p = _plus_scalar(%m) {scalar=1}
    %r1 = Reshape(%p) {shape="(3, 4)"}
    %r2 = Reshape(%r1) {shape="(0, -1)"}
    %drop = Dropout(%r2) {mode=always}
    return %drop
  })g");
  InferShapes(g);
  Graph out = Simplify(g, PassContext{});
  EXPECT_EQ(CountOps(out), 5u);
  // The always-on Dropout is random, so only the deterministic prefix is compared.
  Graph prefix = ParseGraph(PrintGraph(g));
  prefix.mutable_outputs()[0] = Entry{*prefix.FindNode("r2"), 0};
  Graph prefix_out = Simplify(prefix, PassContext{});
  EXPECT_EQ(CountOps(prefix_out), 4u);
  ExpectSameOutputs(prefix, prefix_out);
}

}  // namespace
}  // namespace kiln
