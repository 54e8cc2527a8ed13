// symbol_test.cpp - the Symbol API: composition, MXNet's naming and listings, inference by
// name, operators, groups, JSON, and real model shapes (MLP, LeNet, a ResNet block).
#include "kiln/frontend/symbol.h"

#include "kiln/frontend/models.h"
#include "kiln/frontend/ops.h"
#include "kiln/ir/verifier.h"
#include "test_util.h"

namespace kiln {
namespace {

using Names = std::vector<std::string>;

Symbol SeedMlp() {
  Symbol data = Symbol::Variable("data");
  Symbol fc1 = FullyConnected(data, 128, "fc1");
  Symbol act1 = Activation(fc1, "relu", "relu1");
  Symbol fc2 = FullyConnected(act1, 64, "fc2");
  Symbol act2 = Activation(fc2, "relu", "relu2");
  Symbol fc3 = FullyConnected(act2, 10, "fc3");
  return SoftmaxOutput(fc3, "softmax");
}

// The MLP without its loss, for tests that need only the two ops registered first.
Symbol TwoLayer() {
  Symbol data = Symbol::Variable("data");
  Symbol fc1 = FullyConnected(data, 128, "fc1");
  Symbol act1 = Activation(fc1, "relu", "relu1");
  return FullyConnected(act1, 10, "fc2");
}

TEST(Symbol, SeedMlpListsAsMXNet) {
  Symbol mlp = SeedMlp();
  EXPECT_EQ(mlp.ListArguments(), (Names{"data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias",
                                        "fc3_weight", "fc3_bias", "softmax_label"}));
  EXPECT_EQ(mlp.ListOutputs(), (Names{"softmax_output"}));
  EXPECT_TRUE(mlp.ListAuxiliaryStates().empty());
  EXPECT_EQ(mlp.ListInputs(), mlp.ListArguments());
  EXPECT_EQ(mlp.name(), "softmax");
}

TEST(Symbol, SeedMlpInfersShapesByName) {
  ShapeResult r = SeedMlp().InferShape({{"data", {100, 784}}});
  EXPECT_TRUE(r.complete);
  ASSERT_EQ(r.arguments.size(), 8u);
  EXPECT_EQ(r.arguments[1].first, "fc1_weight");
  EXPECT_EQ(r.arguments.at("fc1_weight"), (Shape{128, 784}));
  EXPECT_EQ(r.arguments.at("fc1_bias"), (Shape{128}));
  EXPECT_EQ(r.arguments.at("fc2_weight"), (Shape{64, 128}));
  EXPECT_EQ(r.arguments.at("fc3_weight"), (Shape{10, 64}));
  EXPECT_EQ(r.arguments.at("fc3_bias"), (Shape{10}));
  EXPECT_EQ(r.arguments.at("softmax_label"), (Shape{100}));
  EXPECT_EQ(r.outputs.at("softmax_output"), (Shape{100, 10}));
  EXPECT_TRUE(r.aux_states.empty());
  test::ExpectUserError([&] { r.arguments.at("fc4_weight"); }, {"fc4_weight", "fc1_weight"});
}

TEST(Symbol, InferShapePartialGoesForwardAndBackward) {
  Symbol net = TwoLayer();
  // Forward from data: every weight and the output.
  ShapeResult fwd = net.InferShapePartial({{"data", {32, 784}}});
  EXPECT_TRUE(fwd.complete);
  EXPECT_EQ(fwd.arguments.at("fc2_weight"), (Shape{10, 128}));
  EXPECT_EQ(fwd.outputs.at("fc2_output"), (Shape{32, 10}));
  // Backward: the output's consumers fix a variable's shape (b from a through elemwise_add),
  // and data's batch size comes back from the output shape of a later op.
  Symbol a = Symbol::Variable("a"), b = Symbol::Variable("b");
  ShapeResult sum = Activation(a + b, "relu", "act").InferShapePartial({{"b", {5, 7}}});
  EXPECT_TRUE(sum.complete);
  EXPECT_EQ(sum.arguments.at("a"), (Shape{5, 7}));
  // Nothing known: partial inference still answers, with what the attributes alone give.
  ShapeResult none = net.InferShapePartial({});
  EXPECT_FALSE(none.complete);
  EXPECT_EQ(none.arguments.at("fc1_bias"), (Shape{128}));
}

// MXNet finds data's feature dimension from fc1's weight once data's rank is known (a
// partial shape written (0, 0)). Disabled: FullyConnected's shape rule (ir/src/ops/nn_dense.cpp)
// does not yet set data's features from weight[1]; enable when it does.
TEST(Symbol, InferShapePartialFindsDataFeaturesFromWeight) {
  Symbol net = TwoLayer();
  ShapeResult bwd =
      net.InferShapePartial({{"fc1_weight", {128, 784}}, {"data", Shape::UnknownDims(2)}});
  EXPECT_FALSE(bwd.complete);
  EXPECT_EQ(bwd.arguments.at("data").ToString(), "(?, 784)");
  EXPECT_EQ(bwd.arguments.at("fc2_weight"), (Shape{10, 128}));
  EXPECT_EQ(bwd.outputs.at("fc2_output").ToString(), "(?, 10)");
}

TEST(Symbol, InferShapeFullNamesWhatIsUnknown) {
  test::ExpectUserError(
      [] { TwoLayer().InferShape({}); },
      {"InferShape: cannot infer the shapes of", "data ?", "fc1_weight (128, ?)", "fc2_output"});
  test::ExpectUserError(
      [] {
        TwoLayer().InferShape({{"nodata", {1, 2}}});
      },
      {"\"nodata\", which is not a variable"});
}

TEST(Symbol, BadShapeNamesTheNode) {
  test::ExpectUserError(
      [] {
        TwoLayer().InferShapePartial({{"data", {100, 784}}, {"fc2_weight", {10, 64}}});
      },
      {"FullyConnected \"fc2\"", "(10, 64)", "128"});
}

TEST(Symbol, InferTypeDefaultsAndFollowsTheData) {
  TypeResult r = TwoLayer().InferType();
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.arguments.at("fc1_weight"), DType::kFloat32);
  r = TwoLayer().InferType({{"data", DType::kFloat16}});
  EXPECT_EQ(r.arguments.at("fc2_bias"), DType::kFloat16);
  EXPECT_EQ(r.outputs.at("fc2_output"), DType::kFloat16);
  test::ExpectUserError(
      [] {
        TwoLayer().InferType({{"data", DType::kInt32}});
      },
      {"FullyConnected \"fc1\"", "int32"});
}

TEST(Symbol, AutomaticNamesCountPerOpAsMXNet) {
  NameScope scope;
  Symbol data = Symbol::Variable("data");
  Symbol a = FullyConnected(data, 10);
  Symbol b = FullyConnected(a, 10);
  Symbol c = Activation(b, "relu");
  EXPECT_EQ(a.name(), "fullyconnected0");
  EXPECT_EQ(b.name(), "fullyconnected1");
  EXPECT_EQ(c.name(), "activation0");
  EXPECT_EQ(c.ListArguments(), (Names{"data", "fullyconnected0_weight", "fullyconnected0_bias",
                                      "fullyconnected1_weight", "fullyconnected1_bias"}));
  {
    NameScope inner;  // fresh counters, as with mx.name.NameManager()
    EXPECT_EQ(FullyConnected(data, 10).name(), "fullyconnected0");
  }
  EXPECT_EQ(FullyConnected(data, 10).name(), "fullyconnected2");
}

TEST(Symbol, OperatorsAreMXNetsElementwiseAndScalarOps) {
  NameScope scope;
  Symbol a = Symbol::Variable("a"), b = Symbol::Variable("b");
  auto op_of = [](const Symbol& s) {
    Graph g = s.ToGraph();
    return std::string(g.node(g.outputs()[0].node).op_name());
  };
  auto scalar_of = [](const Symbol& s) {
    Graph g = s.ToGraph();
    const Node& n = g.node(g.outputs()[0].node);
    for (const auto& [k, v] : n.op->attrs.print(n.attrs))
      if (k == "scalar") return v;
    return std::string("none");
  };
  EXPECT_EQ(op_of(a + b), "elemwise_add");
  EXPECT_EQ(op_of(a - b), "elemwise_sub");
  EXPECT_EQ(op_of(a * b), "elemwise_mul");
  EXPECT_EQ(op_of(a / b), "elemwise_div");
  EXPECT_EQ(op_of(a + 1), "_plus_scalar");
  EXPECT_EQ(op_of(1 + a), "_plus_scalar");
  EXPECT_EQ(op_of(a - 2), "_minus_scalar");
  EXPECT_EQ(op_of(2 - a), "_rminus_scalar");
  EXPECT_EQ(op_of(a * 3), "_mul_scalar");
  EXPECT_EQ(op_of(3 * a), "_mul_scalar");
  EXPECT_EQ(op_of(a / 4), "_div_scalar");
  EXPECT_EQ(op_of(4 / a), "_rdiv_scalar");
  EXPECT_EQ(op_of(-a), "_mul_scalar");
  EXPECT_EQ(scalar_of(-a), "-1");
  EXPECT_EQ(scalar_of(a / 0.5), "0.5");
  // MXNet's automatic names for operators.
  NameScope fresh;
  EXPECT_EQ((a + b).name(), "_plus0");
  EXPECT_EQ((a + b).name(), "_plus1");
  EXPECT_EQ((a + 1).name(), "_plusscalar0");
  EXPECT_EQ((2 - a).name(), "_rminusscalar0");
  EXPECT_EQ((a * b).name(), "_mul0");
  // MXNet's own spellings are aliases: the node is the canonical op, named after the alias.
  Symbol plus = Symbol::Create("_Plus", {a, b});
  EXPECT_EQ(plus.name(), "_plus2");
  EXPECT_EQ(op_of(plus), "elemwise_add");
  EXPECT_NE(plus.ToJSON().find("\"op\": \"elemwise_add\""), std::string::npos);
  // A symbol used twice is one node read twice.
  Symbol sq = a * a;
  Graph g = (sq + sq).ToGraph();
  EXPECT_EQ(g.num_nodes(), 3u);
  EXPECT_EQ((sq + sq).ListArguments(), (Names{"a"}));
  // Shapes flow through the operators.
  ShapeResult r = ((a + b) * 2.0 - a).InferShape({{"a", {2, 3}}});
  EXPECT_EQ(r.arguments.at("b"), (Shape{2, 3}));
}

TEST(Symbol, GroupAndIndexing) {
  Symbol data = Symbol::Variable("data");
  Symbol fc1 = FullyConnected(data, 8, "fc1");
  Symbol act = Activation(fc1, "relu", "relu1");
  Symbol group = Symbol::Group({fc1, act});
  EXPECT_EQ(group.num_outputs(), 2u);
  EXPECT_EQ(group.ListOutputs(), (Names{"fc1_output", "relu1_output"}));
  EXPECT_EQ(group.ListArguments(), (Names{"data", "fc1_weight", "fc1_bias"}));
  EXPECT_EQ(group[1].name(), "relu1");
  EXPECT_EQ(group[0].ListOutputs(), (Names{"fc1_output"}));
  ShapeResult r = group.InferShape({{"data", {4, 3}}});
  EXPECT_EQ(r.outputs.at("relu1_output"), (Shape{4, 8}));
  test::ExpectUserError([&] { group[2]; }, {"output 2", "2 outputs", "fc1_output, relu1_output"});
  test::ExpectUserError([&] { group.name(); }, {"2 outputs"});
  test::ExpectUserError([&] { Activation(group, "relu", "bad"); },
                        {"Activation \"bad\"", "2 outputs"});
  // Internals: every node's output, variables included, in graph order.
  Symbol internals = act.GetInternals();
  EXPECT_EQ(internals.ListOutputs(),
            (Names{"data", "fc1_weight", "fc1_bias", "fc1_output", "relu1_output"}));
  EXPECT_EQ(act.GetInternal("fc1_output").name(), "fc1");
}

TEST(Symbol, MultiOutputOpsNameEachOutput) {
  Symbol data = Symbol::Variable("data");
  Symbol split = SliceChannel(data, 3, "split");
  EXPECT_EQ(split.num_outputs(), 3u);
  EXPECT_EQ(split.ListOutputs(), (Names{"split_output0", "split_output1", "split_output2"}));
  ShapeResult r = split.InferShape({{"data", {4, 6}}});
  EXPECT_EQ(r.outputs.at("split_output2"), (Shape{4, 2}));
  Symbol second = Activation(split[1], "relu", "act");
  EXPECT_EQ(second.InferShape({{"data", {4, 6}}}).outputs.at("act_output"), (Shape{4, 2}));
}

TEST(Symbol, CreateTakesInputsByPositionAndByName) {
  Symbol data = Symbol::Variable("data");
  Symbol w = Symbol::Variable("shared_weight");
  Symbol fc = Symbol::Create("FullyConnected", {data, {"weight", w}}, {{"num_hidden", "4"}}, "fc");
  EXPECT_EQ(fc.ListArguments(), (Names{"data", "shared_weight", "fc_bias"}));
  Symbol nobias = FullyConnected(data, 4, "nb", {{"no_bias", "True"}});
  EXPECT_EQ(nobias.ListArguments(), (Names{"data", "nb_weight"}));
  // Extra attributes travel with the node.
  Symbol tagged = FullyConnected(data, 4, "t", {{"__lr_mult__", "2"}});
  Graph g = tagged.ToGraph();
  EXPECT_EQ(g.node(g.outputs()[0].node).extra.at("__lr_mult__"), "2");
  Symbol v = Symbol::Variable("x", {{"__shape__", "(2, 3)"}});
  EXPECT_EQ(Activation(v, "relu").InferShape({}).arguments.at("x"), (Shape{2, 3}));
}

TEST(Symbol, CreateErrorsNameTheNodeAndOp) {
  Symbol data = Symbol::Variable("data");
  test::ExpectUserError([&] { Symbol::Create("NoSuchOp", {data}); }, {"NoSuchOp"});
  test::ExpectUserError([&] { FullyConnected(data, 0, "fc"); },
                        {"FullyConnected \"fc\"", "num_hidden", "below the minimum 1"});
  test::ExpectUserError(
      [&] {
        FullyConnected(data, 4, "fc", {{"numhidden", "3"}});
      },
      {"FullyConnected \"fc\"", "unknown attribute \"numhidden\"", "no_bias"});
  test::ExpectUserError(
      [&] {
        FullyConnected(data, 4, "fc", {{"num_hidden", "3"}});
      },
      {"FullyConnected \"fc\"", "num_hidden", "both"});
  test::ExpectUserError(
      [&] {
        Symbol::Create("Activation", {data, data}, {{"act_type", "relu"}}, "act");
      },
      {"Activation \"act\"", "takes 1 input (data) but 2 were given"});
  test::ExpectUserError(
      [&] {
        Symbol::Create("FullyConnected", {data, {"wieght", data}}, {{"num_hidden", "2"}}, "fc");
      },
      {"FullyConnected \"fc\"", "no input named \"wieght\"", "data, weight, bias"});
  test::ExpectUserError(
      [&] {
        Symbol::Create("FullyConnected", {data, {"data", data}}, {{"num_hidden", "2"}}, "fc");
      },
      {"input data is given twice"});
  test::ExpectUserError([&] { Activation(Symbol(), "relu", "a"); }, {"0 outputs"});
  test::ExpectUserError([] { Symbol::Variable(""); }, {"needs a name"});
}

TEST(Symbol, TwoVariablesWithOneNameAreRejected) {
  Symbol a = Symbol::Variable("x"), b = Symbol::Variable("x");
  test::ExpectUserError(
      [&] {
        Symbol::Group({Activation(a, "relu"), Activation(b, "relu")}).ToGraph();
      },
      {"two different variables are named \"x\""});
}

TEST(Symbol, ToGraphIsTopologicalAndVerifies) {
  Graph g = TwoLayer().ToGraph();
  EXPECT_TRUE(VerifyGraph(g).empty());
  EXPECT_EQ(g.num_nodes(), 8u);
  EXPECT_EQ(g.node(0).name, "data");
  EXPECT_EQ(g.node(3).name, "fc1");
  EXPECT_EQ(Symbol::FromGraph(g).ListArguments(), TwoLayer().ListArguments());
}

TEST(Symbol, JsonAndTextRoundTrip) {
  Symbol mlp = SeedMlp();
  std::string json = mlp.ToJSON();
  EXPECT_NE(json.find("\"fc1_weight\""), std::string::npos);
  Symbol back = Symbol::FromJSON(json);
  EXPECT_EQ(back.ListArguments(), mlp.ListArguments());
  EXPECT_EQ(back.ListOutputs(), mlp.ListOutputs());
  EXPECT_EQ(back.ToJSON(), json);
  EXPECT_EQ(back.ToText(), mlp.ToText());
  EXPECT_EQ(back.InferShape({{"data", {100, 784}}}).outputs.at("softmax_output"), (Shape{100, 10}));
  // Files.
  std::string path = ::testing::TempDir() + "/kiln_symbol_test_mlp.json";
  mlp.Save(path);
  EXPECT_EQ(Symbol::Load(path).ToJSON(), json);
  std::remove(path.c_str());
  EXPECT_THROW(Symbol::Load(path), RuntimeError);
  EXPECT_NE(mlp.ToText().find("%fc1 = FullyConnected(%data, %fc1_weight, %fc1_bias)"),
            std::string::npos)
      << mlp.ToText();
}

TEST(Symbol, LeNetShapes) {
  Symbol net = models::LeNet();
  EXPECT_EQ(net.ListArguments(),
            (Names{"data", "conv1_weight", "conv1_bias", "conv2_weight", "conv2_bias", "fc1_weight",
                   "fc1_bias", "fc2_weight", "fc2_bias", "softmax_label"}));
  ShapeResult r = net.InferShape({{"data", {64, 1, 28, 28}}});
  EXPECT_EQ(r.arguments.at("conv1_weight"), (Shape{20, 1, 5, 5}));
  EXPECT_EQ(r.arguments.at("conv2_weight"), (Shape{50, 20, 5, 5}));
  EXPECT_EQ(r.arguments.at("fc1_weight"), (Shape{500, 800}));  // 50 * 4 * 4
  EXPECT_EQ(r.arguments.at("softmax_label"), (Shape{64}));
  EXPECT_EQ(r.outputs.at("softmax_output"), (Shape{64, 10}));
  EXPECT_EQ(Symbol::FromJSON(net.ToJSON()).ToText(), net.ToText());
}

// conv-bn-relu-conv-bn, plus the input: ResNet's basic block.
Symbol ResidualBlock(const Symbol& data, int64_t channels, const std::string& name) {
  AttrMap same = {{"pad", "(1, 1)"}, {"no_bias", "True"}};
  Symbol c1 = Convolution(data, channels, {3, 3}, name + "_conv1", same);
  Symbol b1 = BatchNorm(c1, name + "_bn1", {{"fix_gamma", "False"}});
  Symbol r1 = Activation(b1, "relu", name + "_relu1");
  Symbol c2 = Convolution(r1, channels, {3, 3}, name + "_conv2", same);
  Symbol b2 = BatchNorm(c2, name + "_bn2", {{"fix_gamma", "False"}});
  return Activation(elemwise_add(b2, data, name + "_add"), "relu", name + "_relu2");
}

TEST(Symbol, ResNetBlockHasAuxiliaryStates) {
  Symbol block = ResidualBlock(Symbol::Variable("data"), 16, "stage1");
  EXPECT_EQ(block.ListArguments(),
            (Names{"data", "stage1_conv1_weight", "stage1_bn1_gamma", "stage1_bn1_beta",
                   "stage1_conv2_weight", "stage1_bn2_gamma", "stage1_bn2_beta"}));
  EXPECT_EQ(block.ListAuxiliaryStates(),
            (Names{"stage1_bn1_moving_mean", "stage1_bn1_moving_var", "stage1_bn2_moving_mean",
                   "stage1_bn2_moving_var"}));
  EXPECT_EQ(block.ListInputs().size(), 11u);
  EXPECT_EQ(block.ListOutputs(), (Names{"stage1_relu2_output"}));
  ShapeResult r = block.InferShape({{"data", {8, 16, 32, 32}}});
  EXPECT_EQ(r.arguments.at("stage1_conv2_weight"), (Shape{16, 16, 3, 3}));
  EXPECT_EQ(r.aux_states.at("stage1_bn2_moving_var"), (Shape{16}));
  EXPECT_EQ(r.outputs.at("stage1_relu2_output"), (Shape{8, 16, 32, 32}));
  // BatchNorm computes three outputs but shows one.
  Symbol bn = BatchNorm(Symbol::Variable("x"), "bn");
  EXPECT_EQ(bn.num_outputs(), 1u);
  EXPECT_EQ(bn.ListOutputs(), (Names{"bn_output"}));
  // A residual with the wrong channel count names the add.
  test::ExpectUserError(
      [] {
        Symbol data = Symbol::Variable("data");
        Symbol c = Convolution(data, 8, {3, 3}, "conv", {{"pad", "(1, 1)"}});
        elemwise_add(c, data, "add").InferShape({{"data", {1, 4, 8, 8}}});
      },
      {"elemwise_add \"add\""});
}

// torchvision's resnet18: 62 arguments (data, 20 convolutions, 20 BatchNorms with gamma and
// beta, fc weight and bias, label) and 40 auxiliary states; 224x224 images end as 512x7x7.
TEST(Symbol, ResNet18HasTorchvisionsShapes) {
  Symbol net = models::ResNet18();
  EXPECT_EQ(net.ListArguments().size(), 1u + 20 + 40 + 2 + 1);
  EXPECT_EQ(net.ListAuxiliaryStates().size(), 40u);
  ShapeResult r = net.InferShape({{"data", {2, 3, 224, 224}}});
  EXPECT_EQ(r.arguments.at("conv1_conv_weight"), (Shape{64, 3, 7, 7}));
  EXPECT_EQ(r.arguments.at("layer2_0_proj_conv_weight"), (Shape{128, 64, 1, 1}));
  EXPECT_EQ(r.arguments.at("layer4_1_b_conv_weight"), (Shape{512, 512, 3, 3}));
  EXPECT_EQ(r.arguments.at("fc_weight"), (Shape{1000, 512}));
  EXPECT_EQ(r.outputs.at("softmax_output"), (Shape{2, 1000}));
  Graph g = net.ToGraph();
  InferOptions opt;
  opt.shapes["data"] = Shape{2, 3, 224, 224};
  InferShapes(g, opt);
  auto id = g.FindNode("layer4_1_relu");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(g.shape(Entry{*id, 0}), (Shape{2, 512, 7, 7}));
  int64_t params = 0;
  for (const auto& [name, shape] : r.arguments)
    if (name != "data" && name != "softmax_label") params += shape.NumElements();
  EXPECT_EQ(params, 11689512);  // torchvision's resnet18 parameter count
}

TEST(Symbol, VariadicOpsCountTheirInputs) {
  Symbol a = Symbol::Variable("a"), b = Symbol::Variable("b"), c = Symbol::Variable("c");
  Symbol cat = Concat({a, b, c}, 1, "cat");
  Graph g = cat.ToGraph();
  const Node& n = g.node(g.outputs()[0].node);
  EXPECT_EQ(n.inputs.size(), 3u);
  ShapeResult r = cat.InferShape({{"a", {2, 1}}, {"b", {2, 2}}, {"c", {2, 3}}});
  EXPECT_EQ(r.outputs.at("cat_output"), (Shape{2, 6}));
  test::ExpectUserError(
      [&] {
        Symbol::Create("Concat", {a, b}, {{"num_args", "3"}}, "bad");
      },
      {"Concat \"bad\"", "num_args = 3 but 2 inputs"});
}

// Every typed function builds the op it names, once that op exists.
TEST(Symbol, EveryTypedFunctionBuildsItsOp) {
  NameScope scope;
  Symbol x = Symbol::Variable("x"), y = Symbol::Variable("y"), c = Symbol::Variable("c");
  std::vector<std::pair<std::string, std::function<Symbol()>>> cases = {
      {"Deconvolution",
       [&] {
         return Deconvolution(x, 4, {2, 2});
       }},
      {"LeakyReLU",
       [&] {
         return LeakyReLU(x, "leaky", "", {{"slope", "0.1"}});
       }},
      {"LayerNorm", [&] { return LayerNorm(x); }},
      {"Dropout", [&] { return Dropout(x, 0.5); }},
      {"Embedding", [&] { return Embedding(x, 100, 8); }},
      {"LinearRegressionOutput", [&] { return LinearRegressionOutput(x, y); }},
      {"MakeLoss", [&] { return MakeLoss(x); }},
      {"Reshape",
       [&] {
         return Reshape(x, {0, -1});
       }},
      {"transpose",
       [&] {
         return transpose(x, {1, 0});
       }},
      {"expand_dims", [&] { return expand_dims(x, 0); }},
      {"squeeze", [&] { return squeeze(x); }},
      {"slice",
       [&] {
         return slice(x, {0, std::nullopt}, {1, std::nullopt});
       }},
      {"slice_axis", [&] { return slice_axis(x, 0, 0, std::nullopt); }},
      {"broadcast_to",
       [&] {
         return broadcast_to(x, {2, 3});
       }},
      {"_maximum", [&] { return _maximum(x, y); }},
      {"_minimum", [&] { return _minimum(x, y); }},
      {"_power", [&] { return _power(x, y); }},
      {"broadcast_add", [&] { return broadcast_add(x, y); }},
      {"broadcast_sub", [&] { return broadcast_sub(x, y); }},
      {"broadcast_mul", [&] { return broadcast_mul(x, y); }},
      {"broadcast_div", [&] { return broadcast_div(x, y); }},
      {"broadcast_maximum", [&] { return broadcast_maximum(x, y); }},
      {"broadcast_minimum", [&] { return broadcast_minimum(x, y); }},
      {"broadcast_power", [&] { return broadcast_power(x, y); }},
      {"_maximum_scalar", [&] { return _maximum_scalar(x, 1); }},
      {"_minimum_scalar", [&] { return _minimum_scalar(x, 1); }},
      {"_power_scalar", [&] { return _power_scalar(x, 2); }},
      {"_rpower_scalar", [&] { return _rpower_scalar(x, 2); }},
      {"exp", [&] { return exp(x); }},
      {"log", [&] { return log(x); }},
      {"sqrt", [&] { return sqrt(x); }},
      {"rsqrt", [&] { return rsqrt(x); }},
      {"square", [&] { return square(x); }},
      {"abs", [&] { return abs(x); }},
      {"negative", [&] { return negative(x); }},
      {"sigmoid", [&] { return sigmoid(x); }},
      {"tanh", [&] { return tanh(x); }},
      {"relu", [&] { return relu(x); }},
      {"erf", [&] { return erf(x); }},
      {"clip", [&] { return clip(x, 0, 6); }},
      {"sum", [&] { return sum(x, {1}, true); }},
      {"mean", [&] { return mean(x); }},
      {"max", [&] { return max(x, {0}); }},
      {"min", [&] { return min(x); }},
      {"prod", [&] { return prod(x); }},
      {"argmax", [&] { return argmax(x, 1); }},
      {"dot",
       [&] {
         return dot(x, y, "", {{"transpose_b", "True"}});
       }},
      {"batch_dot", [&] { return batch_dot(x, y); }},
      {"softmax", [&] { return softmax(x); }},
      {"log_softmax", [&] { return log_softmax(x, 1); }},
      {"where", [&] { return where(c, x, y); }},
      {"Cast", [&] { return Cast(x, DType::kFloat16); }},
      {"zeros_like", [&] { return zeros_like(x); }},
      {"ones_like", [&] { return ones_like(x); }},
      {"one_hot", [&] { return one_hot(x, 10); }},
  };
  for (const auto& [op, make] : cases) {
    Symbol s = make();
    Graph g = s.ToGraph();
    const OpDef* def = g.node(g.outputs()[0].node).op;
    ASSERT_NE(def, nullptr) << op;
    EXPECT_EQ(def, OpRegistry::Global().Find(op)) << op;
  }
}

}  // namespace
}  // namespace kiln
