// core_test.cpp - dtypes, shapes, attributes, graphs, the verifier and shape inference.
#include <cmath>

#include "kiln/ir/verifier.h"
#include "test_util.h"

namespace kiln {
namespace {

TEST(DType, NamesRoundTripAndSizes) {
  for (DType t : kAllDTypes) {
    EXPECT_EQ(ParseDType(DTypeName(t)), t);
    EXPECT_EQ(DTypeFromMXNetTypeFlag(MXNetTypeFlag(t)), t);
  }
  EXPECT_EQ(DTypeSize(DType::kFloat32), 4u);
  EXPECT_EQ(DTypeSize(DType::kBFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kInt64), 8u);
  EXPECT_EQ(DTypeSize(DType::kBool), 1u);
  EXPECT_FALSE(ParseDType("float"));
  EXPECT_EQ(MXNetTypeFlag(DType::kFloat16), 2);  // mshadow::kFloat16
}

TEST(DType, Float16ConversionIsExactWhereRepresentableAndRoundsToNearestEven) {
  EXPECT_EQ(float16(1.0f).bits, 0x3c00);
  EXPECT_EQ(float16(-2.0f).bits, 0xc000);
  EXPECT_EQ(float16(65504.0f).bits, 0x7bff);       // largest finite
  EXPECT_EQ(float16(65520.0f).bits, 0x7c00);       // rounds to inf
  EXPECT_EQ(float16(5.9604645e-8f).bits, 0x0001);  // smallest subnormal
  EXPECT_EQ(float(float16(0.1f)), 0.0999755859375f);
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties go to even (1).
  EXPECT_EQ(float16(1.0f + std::ldexp(1.0f, -11)).bits, 0x3c00);
  EXPECT_EQ(float16(1.0f + 3 * std::ldexp(1.0f, -11)).bits, 0x3c02);
  EXPECT_TRUE(std::isnan(float(float16(NAN))));
  EXPECT_TRUE(std::isinf(float(float16(INFINITY))));
  // Every finite half converts to float and back unchanged.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;
    EXPECT_EQ(float16(float16::ToFloat(uint16_t(h))).bits, h);
  }
}

TEST(DType, BFloat16RoundsToNearestEven) {
  EXPECT_EQ(bfloat16(1.0f).bits, 0x3f80);
  EXPECT_EQ(float(bfloat16(3.0f)), 3.0f);
  EXPECT_EQ(bfloat16(1.0f + std::ldexp(1.0f, -8)).bits, 0x3f80);  // tie -> even
  EXPECT_EQ(bfloat16(1.0f + 3 * std::ldexp(1.0f, -8)).bits, 0x3f82);
  EXPECT_TRUE(std::isnan(float(bfloat16(NAN))));
}

TEST(Shape, MergeAndPrint) {
  Shape s;
  EXPECT_EQ(s.ToString(), "?");
  EXPECT_TRUE(s.Merge(Shape{Shape::kUnknownDim, 784}));
  EXPECT_EQ(s.ToString(), "(?, 784)");
  EXPECT_FALSE(s.IsFullyKnown());
  EXPECT_TRUE(s.Merge(Shape{100, Shape::kUnknownDim}));
  EXPECT_EQ(s.ToString(), "(100, 784)");
  EXPECT_EQ(s.NumElements(), 78400);
  EXPECT_FALSE(s.Merge(Shape{100, 785}));
  EXPECT_FALSE(s.Merge(Shape{100}));
  EXPECT_EQ(s.ToString(), "(100, 784)");  // unchanged by a failed merge
  EXPECT_EQ(Shape::Scalar().ToString(), "()");
  EXPECT_EQ(Shape::Scalar().NumElements(), 1);
}

TEST(Attrs, ParsePrintDefaultsAndErrors) {
  const OpDef& fc = OpRegistry::Global().Get("FullyConnected");
  Attrs a = fc.attrs.parse({{"num_hidden", "128"}, {"no_bias", "True"}});
  AttrList printed = fc.attrs.print(a);
  ASSERT_EQ(printed.size(), 2u);  // num_hidden (required) and no_bias (not the default)
  EXPECT_EQ(printed[0], std::make_pair(std::string("num_hidden"), std::string("128")));
  EXPECT_EQ(printed[1], std::make_pair(std::string("no_bias"), std::string("True")));
  EXPECT_EQ(fc.InputNames(a), (std::vector<std::string>{"data", "weight"}));
  test::ExpectUserError([&] { fc.attrs.parse({}); }, {"missing required attribute num_hidden"});
  test::ExpectUserError(
      [&] {
        fc.attrs.parse({{"num_hidden", "abc"}});
      },
      {"num_hidden", "expected an integer", "abc"});
  test::ExpectUserError(
      [&] {
        fc.attrs.parse({{"num_hidden", "0"}});
      },
      {"num_hidden", "below the minimum 1"});
  test::ExpectUserError(
      [&] {
        fc.attrs.parse({{"num_hidden", "2"}, {"bogus", "1"}});
      },
      {"unknown attribute \"bogus\"", "num_hidden, no_bias, flatten"});
  const OpDef& act = OpRegistry::Global().Get("Activation");
  test::ExpectUserError(
      [&] {
        act.attrs.parse({{"act_type", "swish"}});
      },
      {"act_type", "\"swish\" is not one of: relu, sigmoid"});
}

TEST(AttrText, ValuesRoundTrip) {
  std::vector<int64_t> v;
  EXPECT_TRUE(attr_text::Parse("(3, 3)", &v));
  EXPECT_EQ(v, (std::vector<int64_t>{3, 3}));
  EXPECT_TRUE(attr_text::Parse("[1,2,3]", &v));
  EXPECT_EQ(attr_text::Print(v), "(1, 2, 3)");
  EXPECT_TRUE(attr_text::Parse("(7,)", &v));
  EXPECT_EQ(attr_text::Print(v), "(7,)");
  EXPECT_TRUE(attr_text::Parse("()", &v));
  EXPECT_TRUE(v.empty());
  EXPECT_FALSE(attr_text::Parse("(1,,2)", &v));
  double d;
  EXPECT_TRUE(attr_text::Parse("0.1", &d));
  EXPECT_EQ(attr_text::Print(d), "0.1");
  EXPECT_TRUE(attr_text::Parse("1e-05", &d));
  EXPECT_EQ(d, 1e-05);
  int64_t i;
  EXPECT_TRUE(attr_text::Parse("2.0", &i));  // MXNet sometimes writes integers as floats
  EXPECT_EQ(i, 2);
  EXPECT_FALSE(attr_text::Parse("2.5", &i));
  std::optional<int64_t> o;
  EXPECT_TRUE(attr_text::Parse("None", &o));
  EXPECT_FALSE(o.has_value());
  EXPECT_EQ(attr_text::Print(o), "None");
  bool b;
  EXPECT_TRUE(attr_text::Parse("true", &b) && b);
  EXPECT_FALSE(attr_text::Parse("yes", &b));
}

Graph TwoLayerGraph() {
  Graph g = test::OneOpGraph("FullyConnected", {{"num_hidden", "64"}}, "fc2");
  return g;
}

TEST(Graph, EntriesAreDenseAndVariablesSplitIntoArgumentsAndAux) {
  Graph g = TwoLayerGraph();
  EXPECT_EQ(g.num_nodes(), 4u);
  EXPECT_EQ(g.num_entries(), 4u);
  EXPECT_EQ(g.entry_id(Entry{3, 0}), 3u);
  EXPECT_EQ(g.entry(3), (Entry{3, 0}));
  EXPECT_EQ(g.ArgumentNodes().size(), 3u);
  EXPECT_TRUE(g.AuxiliaryNodes().empty());
  EXPECT_TRUE(VerifyGraph(g).empty());
}

TEST(Verifier, ReportsArityAndDuplicateVariables) {
  Graph g = TwoLayerGraph();
  g.mutable_node(3).inputs.pop_back();
  g.mutable_node(2).name = "data";
  auto problems = VerifyGraph(g);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].find("variable name used twice"), std::string::npos);
  EXPECT_NE(problems[1].find("has 2 inputs but the op takes 3"), std::string::npos);
}

TEST(Verifier, ReportsShapesTheRulesReject) {
  Graph g = TwoLayerGraph();
  InferOptions opt;
  opt.shapes["data"] = Shape{100, 128};
  InferShapes(g, opt);
  EXPECT_TRUE(VerifyGraph(g).empty());
  g.shapes[g.entry_id(Entry{1, 0})] = Shape{64, 256};
  auto problems = VerifyGraph(g);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("expects 256"), std::string::npos) << problems[0];
}

TEST(InferShape, FullyConnectedFillsWeightsAndNamesTheNodeOnConflict) {
  auto ins = test::InferOpInputShapes("FullyConnected", {{"num_hidden", "128"}}, {Shape{100, 784}});
  EXPECT_EQ(ins[1].ToString(), "(128, 784)");
  EXPECT_EQ(ins[2].ToString(), "(128)");
  test::ExpectUserError(
      [] {
        Graph g = test::OneOpGraph("FullyConnected", {{"num_hidden", "64"}}, "fc2");
        InferOptions opt;
        opt.shapes["data"] = Shape{100, 128};
        opt.shapes["weight"] = Shape{64, 256};
        InferShapes(g, opt);
      },
      {"FullyConnected \"fc2\": input (100, 128) has 128 features but weight (64, 256) "
       "expects 256"});
  test::ExpectUserError(
      [] {
        Graph g = test::OneOpGraph("FullyConnected", {{"num_hidden", "64"}}, "fc2");
        InferShapes(g, {});
      },
      {"cannot infer the shapes of variables: data ?"});
}

TEST(InferType, DefaultsToFloat32AndRejectsIntegersForFloatOps) {
  auto out = test::InferOpTypes("Activation", {{"act_type", "relu"}}, {});
  EXPECT_EQ(out[0], DType::kFloat32);
  out = test::InferOpTypes("Activation", {{"act_type", "relu"}}, {DType::kFloat16});
  EXPECT_EQ(out[0], DType::kFloat16);
  test::ExpectUserError(
      [] {
        test::InferOpTypes("Activation", {{"act_type", "relu"}}, {DType::kInt32});
      },
      {"Activation \"n\"", "int32", "floating-point"});
}

TEST(Interpreter, FullyConnectedMatchesHandComputation) {
  // x = [[1, 2], [3, 4]], W = [[1, 0], [1, 1], [0, -1]], b = [0.5, 0, 1]
  auto out = test::RunOp("FullyConnected", {{"num_hidden", "3"}},
                         {test::F32({2, 2}, {1, 2, 3, 4}), test::F32({3, 2}, {1, 0, 1, 1, 0, -1}),
                          test::F32({3}, {0.5, 0, 1})});
  test::ExpectTensorNear(out[0], {2, 3}, {1.5, 3, -1, 3.5, 7, -3});
}

TEST(Interpreter, MissingVariableIsAUserError) {
  Graph g = TwoLayerGraph();
  test::ExpectUserError([&] { Interpret(g, {}); }, {"variable \"data\" has no value"});
}

}  // namespace
}  // namespace kiln
