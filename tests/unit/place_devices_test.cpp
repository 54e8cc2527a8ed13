// place_devices_test.cpp - the place-devices pass on MXNet's model-parallel example shape (layers
// split between two context groups, here two CPU devices): the device of every node, the
// _CrossDeviceCopy nodes inserted, the unknown-group error, and the placed graph computing the
// same values as the original on the reference interpreter, forward and through BuildGradient.
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kiln/ir/text.h"
#include "kiln/ir/verifier.h"
#include "kiln/passes/gradient.h"
#include "kiln/passes/place_devices.h"
#include "test_util.h"

namespace kiln {
namespace {

const Device kDev1 = Device::CPU(0);
const Device kDev2 = Device::CPU(1);

PassContext TwoDevices() {
  PassContext ctx;
  ctx.group2ctx = {{"dev1", kDev1}, {"dev2", kDev2}};
  return ctx;
}

// Two FullyConnected layers in "dev1", two in "dev2" (as MXNet's model-parallel LSTM example
// splits its layers), plus ungrouped nodes whose devices come from their neighbours:
// %pre (backward, from fc1), %act1 and %o (forward), every variable (backward, from its reader).
// %fc2 crosses to dev2 twice (fc3 and res: one shared copy); %res crosses back to dev1 (%tail).
Graph ModelParallel() {
  Graph g = ParseGraph(R"g(graph {
    %data = var : float32[4, 5]
    %fc1_weight = var : float32[6, 5]
    %fc1_bias = var : float32[6]
    %fc2_weight = var : float32[6, 6]
    %fc2_bias = var : float32[6]
    %fc3_weight = var : float32[6, 6]
    %fc3_bias = var : float32[6]
    %fc4_weight = var : float32[3, 6]
    %fc4_bias = var : float32[3]
    %pre = _mul_scalar(%data) {scalar=0.5}
    %fc1 = FullyConnected(%pre, %fc1_weight, %fc1_bias) {num_hidden=6, __ctx_group__="dev1"}
    %act1 = Activation(%fc1) {act_type=tanh}
    %fc2 = FullyConnected(%act1, %fc2_weight, %fc2_bias) {num_hidden=6, __ctx_group__="dev1"}
    %fc3 = FullyConnected(%fc2, %fc3_weight, %fc3_bias) {num_hidden=6, __ctx_group__="dev2"}
    %res = elemwise_add(%fc3, %fc2) {__ctx_group__="dev2"}
    %fc4 = FullyConnected(%res, %fc4_weight, %fc4_bias) {num_hidden=3, __ctx_group__="dev2"}
    %o = softmax(%fc4)
    %tail = _mul_scalar(%res) {scalar=2, __ctx_group__="dev1"}
    return %o, %tail
  })g");
  InferShapes(g);
  InferTypes(g);
  return g;
}

Device DeviceOf(const Graph& g, const std::string& name) {
  std::optional<uint32_t> i = g.FindNode(name);
  EXPECT_TRUE(i.has_value()) << name;
  return g.devices.at(i.value_or(0));
}

uint32_t CountCopies(const Graph& g) {
  uint32_t n = 0;
  for (const Node& node : g.nodes()) n += node.op_name() == "_CrossDeviceCopy" ? 1 : 0;
  return n;
}

std::map<std::string, Tensor> RandomVars(const Graph& g, uint32_t seed) {
  std::map<std::string, Tensor> vars;
  for (uint32_t v : g.VariableNodes()) {
    std::vector<int64_t> dims = g.shape(Entry{v, 0}).dims();
    size_t n = 1;
    for (int64_t d : dims) n *= size_t(d);
    vars[g.node(v).name] = test::F32(dims, test::RandomValues(n, seed++));
  }
  return vars;
}

void ExpectSame(const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    test::ExpectTensorNear(got[i], want[i].shape(), want[i].ToDoubles(), 1e-6);
}

TEST(PlaceDevices, GroupsAndPropagation) {
  Graph g = ModelParallel();
  Graph p = PlaceDevices(g, TwoDevices());
  ASSERT_EQ(p.devices.size(), p.num_nodes());
  // Grouped nodes.
  for (const char* n : {"fc1", "fc2", "tail"}) EXPECT_EQ(DeviceOf(p, n), kDev1) << n;
  for (const char* n : {"fc3", "res", "fc4"}) EXPECT_EQ(DeviceOf(p, n), kDev2) << n;
  // Forward from inputs.
  EXPECT_EQ(DeviceOf(p, "act1"), kDev1);
  EXPECT_EQ(DeviceOf(p, "o"), kDev2);
  // Backward from consumers: an ungrouped op with no placed input, and the variables.
  EXPECT_EQ(DeviceOf(p, "pre"), kDev1);
  for (const char* n : {"data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"})
    EXPECT_EQ(DeviceOf(p, n), kDev1) << n;
  for (const char* n : {"fc3_weight", "fc3_bias", "fc4_weight", "fc4_bias"})
    EXPECT_EQ(DeviceOf(p, n), kDev2) << n;
  // fc2 -> dev2 (shared by fc3 and res) and res -> dev1 (tail).
  EXPECT_EQ(CountCopies(p), 2u);
  EXPECT_EQ(p.num_nodes(), g.num_nodes() + 2);
  for (uint32_t i = 0; i < p.num_nodes(); ++i) {
    const Node& n = p.node(i);
    if (n.op_name() == "_CrossDeviceCopy") {
      // A copy runs on its consumers' device and reads from another one.
      EXPECT_FALSE(p.devices[n.inputs[0].node] == p.devices[i]) << n.name;
      continue;
    }
    for (const Entry& in : n.inputs)  // nothing else reads across devices
      EXPECT_EQ(p.devices[in.node], p.devices[i]) << n.name << " reads " << p.node(in.node).name;
  }
  EXPECT_EQ(p.node(p.FindNode("fc3").value()).inputs[0],
            p.node(p.FindNode("res").value()).inputs[1]);
  // Facts are carried; the placed graph still verifies against the ops' rules.
  ASSERT_TRUE(p.has_shapes() && p.has_dtypes());
  EXPECT_EQ(p.shape(Entry{*p.FindNode("fc2_copy_to_cpu1"), 0}).dims(),
            (std::vector<int64_t>{4, 6}));
  EXPECT_TRUE(VerifyGraph(p).empty());
  // Placing again changes nothing.
  Graph again = PlaceDevices(p, TwoDevices());
  EXPECT_EQ(again.num_nodes(), p.num_nodes());
  EXPECT_EQ(again.devices, p.devices);
}

TEST(PlaceDevices, UngroupedGraphTakesTheDefaultDevice) {
  Graph g = ParseGraph(R"g(graph {
    %x = var : float32[2, 3]
    %y = sigmoid(%x)
    return %y
  })g");
  PassContext ctx;
  ctx.default_device = kDev2;
  Graph p = PlaceDevices(g, ctx);
  EXPECT_EQ(p.devices, (std::vector<Device>{kDev2, kDev2}));
  EXPECT_EQ(CountCopies(p), 0u);
}

TEST(PlaceDevices, UnknownGroupIsAUserError) {
  Graph g = ModelParallel();
  PassContext ctx;
  ctx.group2ctx = {{"dev1", kDev1}};
  try {
    PlaceDevices(g, ctx);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("\"fc3\""), std::string::npos) << m;
    EXPECT_NE(m.find("\"dev2\""), std::string::npos) << m;
  }
}

TEST(PlaceDevices, RegisteredAsAPass) {
  PassManager pm({"place-devices"});
  Graph p = pm.Run(ModelParallel(), TwoDevices());
  EXPECT_EQ(CountCopies(p), 2u);
}

TEST(PlaceDevices, SameValuesForward) {
  Graph g = ModelParallel();
  Graph p = PlaceDevices(g, TwoDevices());
  std::map<std::string, Tensor> vars = RandomVars(g, 3);
  ExpectSame(Interpret(p, vars), Interpret(g, vars));
}

TEST(PlaceDevices, SameGradients) {
  Graph g = ModelParallel();
  Graph p = PlaceDevices(g, TwoDevices());
  std::map<std::string, Tensor> vars = RandomVars(g, 11);
  // Head gradients shaped like the outputs.
  uint32_t seed = 100;
  for (const Entry& y : g.outputs()) {
    std::vector<int64_t> dims = g.shape(y).dims();
    size_t n = 1;
    for (int64_t d : dims) n *= size_t(d);
    vars[g.node(y.node).name + "_head_grad"] = test::F32(dims, test::RandomValues(n, seed++));
  }
  // The copies shift the placed graph's node indices: take the arguments in name order in both.
  auto args = [](const Graph& graph) {
    std::vector<uint32_t> xs = graph.ArgumentNodes();
    std::sort(xs.begin(), xs.end(),
              [&](uint32_t a, uint32_t b) { return graph.node(a).name < graph.node(b).name; });
    return xs;
  };
  GradientGraph want = BuildGradient(g, args(g));
  GradientGraph got = BuildGradient(p, args(p));
  // The backward pass crosses the devices back: each copy's gradient is a copy.
  EXPECT_EQ(CountCopies(got.graph), 4u);
  ExpectSame(Interpret(got.graph, vars), Interpret(want.graph, vars));
  // The training graph can itself be placed, and still computes the same values.
  Graph placed = PlaceDevices(got.graph, TwoDevices());
  ExpectSame(Interpret(placed, vars), Interpret(want.graph, vars));
}

}  // namespace
}  // namespace kiln
