// ops_tensor_elemwise_test.cpp - unary, binary, scalar, where, clip and Cast ops: shapes both
// ways, dtype rules, and values checked against hand computation and NumPy/IEEE facts.
#include <cmath>
#include <limits>

#include "test_util.h"

namespace kiln {
namespace {

using test::ExpectTensorNear;
using test::ExpectUserError;
using test::F32;
using test::RunOp;

const int64_t kU = Shape::kUnknownDim;

TEST(TensorOps, AliasesFindTheSameOp) {
  const OpRegistry& r = OpRegistry::Global();
  const std::vector<std::pair<const char*, const char*>> aliases = {
      {"_plus", "elemwise_add"},
      {"_add", "elemwise_add"},
      {"_Plus", "elemwise_add"},
      {"_minus", "elemwise_sub"},
      {"_sub", "elemwise_sub"},
      {"_Minus", "elemwise_sub"},
      {"_mul", "elemwise_mul"},
      {"_Mul", "elemwise_mul"},
      {"_div", "elemwise_div"},
      {"_Div", "elemwise_div"},
      {"_Maximum", "_maximum"},
      {"_Minimum", "_minimum"},
      {"_Power", "_power"},
      {"broadcast_plus", "broadcast_add"},
      {"broadcast_minus", "broadcast_sub"},
      {"_PlusScalar", "_plus_scalar"},
      {"_MinusScalar", "_minus_scalar"},
      {"_RMinusScalar", "_rminus_scalar"},
      {"_MulScalar", "_mul_scalar"},
      {"_DivScalar", "_div_scalar"},
      {"_RDivScalar", "_rdiv_scalar"},
      {"_MaximumScalar", "_maximum_scalar"},
      {"_MinimumScalar", "_minimum_scalar"},
      {"_PowerScalar", "_power_scalar"},
      {"_RPowerScalar", "_rpower_scalar"},
      {"cast", "Cast"},
      {"sum_axis", "sum"},
      {"max_axis", "max"},
      {"min_axis", "min"},
      {"flatten", "Flatten"},
      {"reshape", "Reshape"},
      {"concat", "Concat"},
      {"split", "SliceChannel"},
  };
  for (const auto& [alias, name] : aliases) {
    ASSERT_NE(r.Find(alias), nullptr) << alias;
    EXPECT_EQ(r.Find(alias), &r.Get(name)) << alias;
    EXPECT_EQ(r.Find(alias)->name(), name);
  }
}

TEST(TensorOps, PatternsAndInplaceOptions) {
  const OpRegistry& r = OpRegistry::Global();
  Attrs none = r.Get("exp").attrs.parse({});
  EXPECT_EQ(r.Get("exp").pattern(), FusionPattern::kElemwise);
  EXPECT_EQ(r.Get("elemwise_add").pattern(), FusionPattern::kElemwise);
  EXPECT_EQ(r.Get("_plus_scalar").pattern(), FusionPattern::kElemwise);
  EXPECT_EQ(r.Get("broadcast_mul").pattern(), FusionPattern::kBroadcast);
  EXPECT_EQ(r.Get("sum").pattern(), FusionPattern::kCommReduce);
  EXPECT_EQ(r.Get("dot").pattern(), FusionPattern::kOutElemwiseFusable);
  EXPECT_EQ(r.Get("batch_dot").pattern(), FusionPattern::kOutElemwiseFusable);
  EXPECT_EQ(r.Get("transpose").pattern(), FusionPattern::kInjective);
  EXPECT_EQ(r.Get("Concat").pattern(), FusionPattern::kInjective);
  using Pairs = std::vector<std::pair<int, int>>;
  EXPECT_EQ(r.Get("exp").InplacePairs(none), (Pairs{{0, 0}}));
  EXPECT_EQ(r.Get("elemwise_add").InplacePairs(none), (Pairs{{0, 0}, {1, 0}}));
  Attrs shape = r.Get("Reshape").attrs.parse({{"shape", "(-1,)"}});
  EXPECT_EQ(r.Get("Reshape").InplacePairs(shape), (Pairs{{0, 0}}));
  EXPECT_EQ(r.Get("Flatten").InplacePairs(none), (Pairs{{0, 0}}));
  Attrs perm = r.Get("transpose").attrs.parse({});
  EXPECT_TRUE(r.Get("transpose").InplacePairs(perm).empty());
  Attrs cast = r.Get("Cast").attrs.parse({{"dtype", "int8"}});
  EXPECT_TRUE(r.Get("Cast").InplacePairs(cast).empty());  // sizes differ
  Attrs b = r.Get("broadcast_add").attrs.parse({});
  EXPECT_TRUE(r.Get("broadcast_add").InplacePairs(b).empty());  // lhs may be smaller
}

// --- Unary ops. ---

TEST(Unary, FloatValuesMatchHandComputation) {
  const double e = std::exp(1.0);
  ExpectTensorNear(RunOp("exp", {}, {F32({3}, {0, 1, -1})})[0], {3}, {1, e, 1 / e});
  ExpectTensorNear(RunOp("log", {}, {F32({3}, {1, e, -1})})[0], {3}, {0, 1, NAN});
  EXPECT_EQ(RunOp("log", {}, {F32({1}, {0})})[0].At(0), -INFINITY);
  ExpectTensorNear(RunOp("sqrt", {}, {F32({2}, {4, 2.25})})[0], {2}, {2, 1.5});
  ExpectTensorNear(RunOp("rsqrt", {}, {F32({2}, {4, 0.25})})[0], {2}, {0.5, 2});
  ExpectTensorNear(RunOp("square", {}, {F32({2}, {-3, 1.5})})[0], {2}, {9, 2.25});
  ExpectTensorNear(RunOp("abs", {}, {F32({3}, {-2, 3, -0.5})})[0], {3}, {2, 3, 0.5});
  ExpectTensorNear(RunOp("negative", {}, {F32({2}, {-2, 3})})[0], {2}, {2, -3});
  // sigmoid(ln 3) = 1 / (1 + 1/3) = 3/4; tanh(ln 2) = (2 - 1/2) / (2 + 1/2) = 3/5.
  ExpectTensorNear(RunOp("sigmoid", {}, {F32({2}, {0, std::log(3.0)})})[0], {2}, {0.5, 0.75});
  ExpectTensorNear(RunOp("tanh", {}, {F32({2}, {0, std::log(2.0)})})[0], {2}, {0, 0.6});
  ExpectTensorNear(RunOp("relu", {}, {F32({4}, {-1, 0, 2, NAN})})[0], {4}, {0, 0, 2, NAN});
  // erf(1) = 0.8427007929497149 (tables); erf is odd; erf(inf) = 1.
  ExpectTensorNear(RunOp("erf", {}, {F32({4}, {0, 1, -1, INFINITY})})[0], {4},
                   {0, 0.8427007929497149, -0.8427007929497149, 1});
}

TEST(Unary, InfAndNanBehaviour) {
  auto exp = RunOp("exp", {}, {F32({3}, {INFINITY, -INFINITY, NAN})})[0];
  EXPECT_EQ(exp.At(0), INFINITY);
  EXPECT_EQ(exp.At(1), 0.0);
  EXPECT_TRUE(std::isnan(exp.At(2)));
  EXPECT_EQ(RunOp("exp", {}, {F32({1}, {100})})[0].At(0), INFINITY);  // overflows float32
  auto log = RunOp("log", {}, {F32({2}, {INFINITY, NAN})})[0];
  EXPECT_EQ(log.At(0), INFINITY);
  EXPECT_TRUE(std::isnan(log.At(1)));
  EXPECT_EQ(RunOp("rsqrt", {}, {F32({1}, {0})})[0].At(0), INFINITY);
}

TEST(Unary, HalfPrecisionRoundsTheDoubleResult) {
  // e = 2.71828...; float16 spacing at 2 is 2^-9, so it rounds to 1392 * 2^-9 = 2.71875.
  auto out = RunOp("exp", {}, {test::Values(DType::kFloat16, {1}, {1})})[0];
  EXPECT_EQ(out.dtype(), DType::kFloat16);
  EXPECT_EQ(out.At(0), 2.71875);
  auto bf = RunOp("square", {}, {test::Values(DType::kBFloat16, {1}, {3})})[0];
  EXPECT_EQ(bf.At(0), 9.0);
}

TEST(Unary, IntegerOpsWrapLikeNumPy) {
  ExpectTensorNear(RunOp("abs", {}, {test::Values(DType::kInt8, {3}, {-128, -3, 5})})[0], {3},
                   {-128, 3, 5});
  ExpectTensorNear(RunOp("negative", {}, {test::Values(DType::kUInt8, {2}, {5, 0})})[0], {2},
                   {251, 0});
  ExpectTensorNear(RunOp("square", {}, {test::Values(DType::kInt32, {2}, {-7, 46341})})[0], {2},
                   {49, -2147479015});  // 46341^2 = 2147488281 wraps by 2^32
  ExpectTensorNear(RunOp("relu", {}, {test::Values(DType::kInt64, {2}, {-5, 7})})[0], {2}, {0, 7});
  auto b = RunOp("abs", {}, {test::Values(DType::kBool, {2}, {1, 0})})[0];
  EXPECT_EQ(b.dtype(), DType::kBool);
  ExpectTensorNear(b, {2}, {1, 0});
}

TEST(Unary, TypeRules) {
  for (DType t : kAllDTypes) {
    EXPECT_EQ(test::InferOpTypes("abs", {}, {t})[0], t);
    EXPECT_EQ(test::InferOpTypes("relu", {}, {t})[0], t);
    EXPECT_EQ(test::InferOpTypes("zeros_like", {}, {t})[0], t);
    if (IsFloatingPoint(t)) {
      for (const char* op : {"exp", "log", "sqrt", "rsqrt", "sigmoid", "tanh", "erf"})
        EXPECT_EQ(test::InferOpTypes(op, {}, {t})[0], t) << op;
    } else {
      for (const char* op : {"exp", "log", "sqrt", "rsqrt", "sigmoid", "tanh", "erf"})
        ExpectUserError([&] { test::InferOpTypes(op, {}, {t}); },
                        {StrCat(op, " \"n\""), std::string(DTypeName(t)), "floating-point"});
    }
  }
  EXPECT_EQ(test::InferOpTypes("negative", {}, {DType::kInt8})[0], DType::kInt8);
  ExpectUserError([] { test::InferOpTypes("negative", {}, {DType::kBool}); },
                  {"negative \"n\"", "bool"});
}

TEST(Unary, ShapesFlowBothWays) {
  EXPECT_EQ(test::OutShape("exp", {}, {Shape{2, kU}}), "(2, ?)");
  auto in = test::InferOpInputShapes("sigmoid", {}, {}, Shape{4, 5});
  EXPECT_EQ(in[0].ToString(), "(4, 5)");
  ExpectUserError(
      [] {
        test::InferOpInputShapes("exp", {}, {Shape{2, 3}}, Shape{3, 2});
      },
      {"exp \"n\"", "(2, 3)", "(3, 2)"});
}

TEST(Unary, ClipClampsAndKeepsNan) {
  ExpectTensorNear(
      RunOp("clip", {{"a_min", "-1"}, {"a_max", "1"}}, {F32({4}, {-2, 0.5, 3, NAN})})[0], {4},
      {-1, 0.5, 1, NAN});
  // Integer data: the bounds are converted to the dtype first (truncation), as MXNet.
  ExpectTensorNear(RunOp("clip", {{"a_min", "-1.5"}, {"a_max", "2.9"}},
                         {test::Values(DType::kInt32, {3}, {-5, 0, 9})})[0],
                   {3}, {-1, 0, 2});
  ExpectUserError(
      [] {
        test::OneOpGraph("clip", {{"a_min", "2"}, {"a_max", "1"}});
      },
      {"a_min = 2 must not exceed a_max = 1"});
  ExpectUserError(
      [] {
        test::OneOpGraph("clip", {{"a_min", "2"}});
      },
      {"missing required attribute a_max"});
}

TEST(Unary, ZerosAndOnesLike) {
  ExpectTensorNear(RunOp("zeros_like", {}, {test::Values(DType::kInt32, {2}, {5, -3})})[0], {2},
                   {0, 0});
  auto ones = RunOp("ones_like", {}, {test::Values(DType::kBool, {2}, {0, 0})})[0];
  EXPECT_EQ(ones.dtype(), DType::kBool);
  ExpectTensorNear(ones, {2}, {1, 1});
}

// --- Cast. ---

TEST(Cast, ConversionsAreDefinedEverywhere) {
  // float -> int8: truncation toward zero, saturation, nan -> 0.
  ExpectTensorNear(RunOp("Cast", {{"dtype", "int8"}}, {F32({5}, {1.7, -1.7, NAN, 300, -300})})[0],
                   {5}, {1, -1, 0, 127, -128});
  ExpectTensorNear(RunOp("Cast", {{"dtype", "uint8"}}, {F32({2}, {-1.5, 255.9})})[0], {2},
                   {0, 255});
  // int -> int wraps modulo 2^bits: 300 = 256 + 44.
  ExpectTensorNear(
      RunOp("cast", {{"dtype", "uint8"}}, {test::Values(DType::kInt32, {2}, {300, -1})})[0], {2},
      {44, 255});
  // -> bool: nonzero (nan included) is true.
  ExpectTensorNear(RunOp("Cast", {{"dtype", "bool"}}, {F32({3}, {0, 0.1, NAN})})[0], {3},
                   {0, 1, 1});
  ExpectTensorNear(
      RunOp("Cast", {{"dtype", "float32"}}, {test::Values(DType::kBool, {2}, {1, 0})})[0], {2},
      {1, 0});
  // 65520 is past float16's largest finite value (65504) by more than half a step: inf.
  auto h = RunOp("Cast", {{"dtype", "float16"}}, {test::Values(DType::kFloat64, {1}, {65520})})[0];
  EXPECT_EQ(h.At(0), INFINITY);
  // int64 -> float64 -> int64 is exact below 2^53.
  auto big = RunOp("Cast", {{"dtype", "int64"}},
                   {test::Values(DType::kFloat64, {1}, {9007199254740992.0})})[0];
  EXPECT_EQ(big.data<int64_t>()[0], int64_t(1) << 53);
}

TEST(Cast, TypeRulesAndAttributes) {
  for (DType t : kAllDTypes) {
    EXPECT_EQ(
        test::InferOpTypes("Cast", {{"dtype", std::string(DTypeName(t))}}, {DType::kFloat32})[0],
        t);
    EXPECT_EQ(test::InferOpTypes("Cast", {{"dtype", "float16"}}, {t})[0], DType::kFloat16);
  }
  ExpectUserError(
      [] {
        test::OneOpGraph("Cast", {{"dtype", "float"}});
      },
      {"dtype", "\"float\" is not one of", "bfloat16"});
  ExpectUserError([] { test::OneOpGraph("Cast", {}); }, {"missing required attribute dtype"});
  EXPECT_EQ(test::OutShape("Cast", {{"dtype", "int8"}}, {Shape{2, 3}}), "(2, 3)");
}

// --- Binary ops with one shape. ---

TEST(Elemwise, ValuesAndShapes) {
  ExpectTensorNear(RunOp("elemwise_add", {}, {F32({3}, {1, 2, 3}), F32({3}, {10, 20, 30})})[0], {3},
                   {11, 22, 33});
  ExpectTensorNear(RunOp("_minus", {}, {F32({2}, {1, 2}), F32({2}, {10, 20})})[0], {2}, {-9, -18});
  ExpectTensorNear(RunOp("_Mul", {}, {F32({2}, {1.5, 2}), F32({2}, {4, -3})})[0], {2}, {6, -6});
  ExpectTensorNear(RunOp("elemwise_div", {}, {F32({2}, {1, -3}), F32({2}, {4, 2})})[0], {2},
                   {0.25, -1.5});
  ExpectTensorNear(RunOp("_power", {}, {F32({3}, {2, 4, 2}), F32({3}, {3, 0.5, -1})})[0], {3},
                   {8, 2, 0.5});
  ExpectTensorNear(RunOp("_maximum", {}, {F32({3}, {NAN, 1, 2}), F32({3}, {1, NAN, 3})})[0], {3},
                   {NAN, NAN, 3});
  ExpectTensorNear(RunOp("_minimum", {}, {F32({3}, {NAN, 1, 2}), F32({3}, {1, NAN, 3})})[0], {3},
                   {NAN, NAN, 2});
  auto div0 = RunOp("elemwise_div", {}, {F32({3}, {1, -1, 0}), F32({3}, {0, 0, 0})})[0];
  EXPECT_EQ(div0.At(0), INFINITY);
  EXPECT_EQ(div0.At(1), -INFINITY);
  EXPECT_TRUE(std::isnan(div0.At(2)));

  EXPECT_EQ(test::OutShape("elemwise_mul", {}, {Shape{2, kU}, Shape{kU, 3}}), "(2, 3)");
  auto ins = test::InferOpInputShapes("elemwise_add", {}, {Shape{2, 3}});
  EXPECT_EQ(ins[1].ToString(), "(2, 3)");  // rhs from lhs
  auto back = test::InferOpInputShapes("elemwise_sub", {}, {}, Shape{7});
  EXPECT_EQ(back[0].ToString(), "(7)");
  EXPECT_EQ(back[1].ToString(), "(7)");
  ExpectUserError(
      [] {
        test::InferOpShapes("elemwise_add", {}, {Shape{2, 3}, Shape{3, 2}});
      },
      {"elemwise_add \"n\"", "lhs (2, 3)", "rhs (3, 2)"});
}

TEST(Elemwise, IntegerDivisionTruncatesAndDivisionByZeroIsZero) {
  // C truncation (MXNet's integer kernels), not NumPy's floor: -7 / 2 = -3.
  ExpectTensorNear(RunOp("elemwise_div", {},
                         {test::Values(DType::kInt32, {5}, {-7, 7, 7, 5, -8}),
                          test::Values(DType::kInt32, {5}, {2, -2, 0, 5, -3})})[0],
                   {5}, {-3, -3, 0, 1, 2});
  auto m = RunOp("elemwise_div", {},
                 {test::Values(DType::kInt64, {1}, {-9223372036854775808.0}),
                  test::Values(DType::kInt64, {1}, {-1})})[0];
  EXPECT_EQ(m.data<int64_t>()[0], std::numeric_limits<int64_t>::min());  // wraps
  ExpectTensorNear(
      RunOp("_div_scalar", {{"scalar", "2"}}, {test::Values(DType::kInt32, {2}, {7, -7})})[0], {2},
      {3, -3});
}

TEST(Elemwise, IntegerAndBoolArithmetic) {
  ExpectTensorNear(RunOp("_power", {},
                         {test::Values(DType::kInt32, {7}, {2, 3, -2, 2, 1, -1, 0}),
                          test::Values(DType::kInt32, {7}, {10, 0, 3, -1, -5, -3, -1})})[0],
                   {7}, {1024, 1, -8, 0, 1, -1, 0});
  ExpectTensorNear(
      RunOp("elemwise_add", {},
            {test::Values(DType::kInt8, {1}, {100}), test::Values(DType::kInt8, {1}, {100})})[0],
      {1}, {-56});  // 200 - 256
  ExpectTensorNear(
      RunOp("elemwise_sub", {},
            {test::Values(DType::kUInt8, {1}, {3}), test::Values(DType::kUInt8, {1}, {5})})[0],
      {1}, {254});
  Tensor p = test::Values(DType::kBool, {4}, {1, 1, 0, 0}),
         q = test::Values(DType::kBool, {4}, {1, 0, 1, 0});
  ExpectTensorNear(RunOp("elemwise_add", {}, {p, q})[0], {4}, {1, 1, 1, 0});  // or
  ExpectTensorNear(RunOp("elemwise_mul", {}, {p, q})[0], {4}, {1, 0, 0, 0});  // and
  ExpectTensorNear(RunOp("elemwise_sub", {}, {p, q})[0], {4}, {0, 1, 1, 0});  // xor
  ExpectTensorNear(RunOp("_maximum", {}, {p, q})[0], {4}, {1, 1, 1, 0});
  // float16: 1 + 2^-11 lies halfway between 1 and the next half, 1 + 2^-10: ties to even (1).
  auto h = RunOp("elemwise_add", {},
                 {test::Values(DType::kFloat16, {1}, {1}),
                  test::Values(DType::kFloat16, {1}, {std::ldexp(1.0, -11)})})[0];
  EXPECT_EQ(h.At(0), 1.0);
}

TEST(Elemwise, TypeRules) {
  for (DType t : kAllDTypes) {
    EXPECT_EQ(test::InferOpTypes("elemwise_add", {}, {t, t})[0], t);
    EXPECT_EQ(test::InferOpTypes("broadcast_power", {}, {t})[0], t);
    EXPECT_EQ(test::InferOpTypes("_mul_scalar", {{"scalar", "2"}}, {t})[0], t);
  }
  ExpectUserError(
      [] {
        test::InferOpTypes("elemwise_add", {}, {DType::kInt32, DType::kFloat32});
      },
      {"elemwise_add \"n\"", "int32", "float32"});
}

// --- Broadcasting. ---

TEST(Broadcast, ShapesAlignRightAndMergePartialKnowledge) {
  EXPECT_EQ(test::OutShape("broadcast_add", {}, {Shape{2, 1, 4}, Shape{3, 1}}), "(2, 3, 4)");
  EXPECT_EQ(test::OutShape("broadcast_mul", {}, {Shape{2, 1}, Shape{5}}), "(2, 5)");
  EXPECT_EQ(test::OutShape("broadcast_sub", {}, {Shape::Scalar(), Shape{2, 3}}), "(2, 3)");
  EXPECT_EQ(test::OutShape("broadcast_div", {}, {Shape{0, 3}, Shape{1, 3}}), "(0, 3)");
  EXPECT_EQ(test::OutShape("broadcast_maximum", {}, {Shape{2, kU}, Shape{1, 3}}), "(2, 3)");
  EXPECT_EQ(test::OutShape("broadcast_minimum", {}, {Shape{kU, 1}, Shape{4}}), "(?, 4)");
  EXPECT_EQ(test::OutShape("broadcast_power", {}, {Shape{kU, 5}, Shape{kU}}), "(?, 5)");
  // Backward: lhs's 1 means rhs's extent is the output's.
  auto in = test::InferOpInputShapes("broadcast_add", {}, {Shape{1, 3}, Shape{kU, 3}}, Shape{4, 3});
  EXPECT_EQ(in[1].ToString(), "(4, 3)");
  auto in1 = test::InferOpInputShapes("broadcast_add", {}, {Shape{kU, kU}, Shape{kU}}, Shape{1, 6});
  EXPECT_EQ(in1[0].ToString(), "(1, ?)");  // an output extent of 1 forces 1
  ExpectUserError(
      [] {
        test::InferOpShapes("broadcast_add", {}, {Shape{2, 3}, Shape{4, 3}});
      },
      {"broadcast_add \"n\"", "(2, 3)", "(4, 3)", "axis 0"});
  ExpectUserError(
      [] {
        test::InferOpInputShapes("broadcast_mul", {}, {Shape{3}, Shape{3}}, Shape{4});
      },
      {"broadcast_mul \"n\"", "(3)", "(4)"});
}

TEST(Broadcast, ValuesByHand) {
  ExpectTensorNear(
      RunOp("broadcast_add", {}, {F32({2, 3}, {1, 2, 3, 4, 5, 6}), F32({3}, {10, 20, 30})})[0],
      {2, 3}, {11, 22, 33, 14, 25, 36});
  ExpectTensorNear(RunOp("broadcast_mul", {}, {F32({2, 1}, {1, 2}), F32({1, 3}, {1, 2, 3})})[0],
                   {2, 3}, {1, 2, 3, 2, 4, 6});
  ExpectTensorNear(RunOp("broadcast_minus", {}, {F32({}, {10}), F32({2}, {1, 2})})[0], {2}, {9, 8});
  ExpectTensorNear(RunOp("broadcast_div", {},
                         {test::Values(DType::kInt32, {2, 1}, {-7, 9}),
                          test::Values(DType::kInt32, {2}, {2, 0})})[0],
                   {2, 2}, {-3, 0, 4, 0});
}

// broadcast_add(a, b) equals elemwise_add(tile(a), tile(b)) with the tiling done by hand.
TEST(Broadcast, EqualsElemwiseOnExplicitlyTiledInputs) {
  // a: (2, 1, 3), b: (4, 1) -> (2, 4, 3).
  std::vector<double> av, bv;
  for (int i = 0; i < 6; ++i) av.push_back(i * 1.5 - 2);
  for (int i = 0; i < 4; ++i) bv.push_back(100 * (i + 1));
  std::vector<double> at, bt;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 3; ++k) {
        at.push_back(av[size_t(i * 3 + k)]);
        bt.push_back(bv[size_t(j)]);
      }
  for (const char* op : {"add", "sub", "mul", "div", "maximum", "minimum"}) {
    auto b = RunOp(StrCat("broadcast_", op), {}, {F32({2, 1, 3}, av), F32({4, 1}, bv)})[0];
    std::string eop = std::string(op).size() <= 3 ? StrCat("elemwise_", op) : StrCat("_", op);
    auto e = RunOp(eop, {}, {F32({2, 4, 3}, at), F32({2, 4, 3}, bt)})[0];
    ExpectTensorNear(b, {2, 4, 3}, e.ToDoubles(), 0);
  }
}

// --- Scalar forms. ---

TEST(Scalar, ValuesByHand) {
  auto x = F32({2}, {1, 4});
  ExpectTensorNear(RunOp("_plus_scalar", {{"scalar", "0.5"}}, {x})[0], {2}, {1.5, 4.5});
  ExpectTensorNear(RunOp("_minus_scalar", {{"scalar", "1"}}, {x})[0], {2}, {0, 3});
  ExpectTensorNear(RunOp("_rminus_scalar", {{"scalar", "10"}}, {x})[0], {2}, {9, 6});
  ExpectTensorNear(RunOp("_mul_scalar", {{"scalar", "-2"}}, {x})[0], {2}, {-2, -8});
  ExpectTensorNear(RunOp("_div_scalar", {{"scalar", "4"}}, {x})[0], {2}, {0.25, 1});
  ExpectTensorNear(RunOp("_rdiv_scalar", {{"scalar", "1"}}, {x})[0], {2}, {1, 0.25});
  ExpectTensorNear(RunOp("_maximum_scalar", {{"scalar", "2"}}, {x})[0], {2}, {2, 4});
  ExpectTensorNear(RunOp("_minimum_scalar", {{"scalar", "2"}}, {x})[0], {2}, {1, 2});
  ExpectTensorNear(RunOp("_power_scalar", {{"scalar", "2"}}, {x})[0], {2}, {1, 16});
  ExpectTensorNear(RunOp("_rpower_scalar", {{"scalar", "2"}}, {F32({2}, {3, -1})})[0], {2},
                   {8, 0.5});
  ExpectTensorNear(RunOp("_RMinusScalar", {{"scalar", "1"}, {"is_int", "False"}}, {x})[0], {2},
                   {0, -3});
  // The scalar is converted to the data's dtype first: int32 + 2.7 adds 2.
  ExpectTensorNear(
      RunOp("_plus_scalar", {{"scalar", "2.7"}}, {test::Values(DType::kInt32, {1}, {1})})[0], {1},
      {3});
  ExpectUserError([] { test::OneOpGraph("_plus_scalar", {}); },
                  {"missing required attribute scalar"});
  EXPECT_EQ(test::OutShape("_mul_scalar", {{"scalar", "3"}}, {Shape{2, kU}}), "(2, ?)");
}

// --- where. ---

TEST(Where, SelectsElementsOrRows) {
  ExpectTensorNear(
      RunOp("where", {}, {F32({3}, {1, 0, 1}), F32({3}, {1, 2, 3}), F32({3}, {10, 20, 30})})[0],
      {3}, {1, 20, 3});
  // A 1-D condition selects rows; any dtype; nonzero (nan included) is true.
  ExpectTensorNear(RunOp("where", {},
                         {test::Values(DType::kInt32, {2}, {0, 5}), F32({2, 2}, {1, 2, 3, 4}),
                          F32({2, 2}, {-1, -2, -3, -4})})[0],
                   {2, 2}, {-1, -2, 3, 4});
  ExpectTensorNear(RunOp("where", {},
                         {F32({2}, {NAN, 0}), test::Values(DType::kInt64, {2}, {7, 8}),
                          test::Values(DType::kInt64, {2}, {70, 80})})[0],
                   {2}, {7, 80});
  auto t = test::InferOpTypes("where", {}, {DType::kBool, DType::kFloat16});
  EXPECT_EQ(t[0], DType::kFloat16);
  ExpectUserError(
      [] {
        test::InferOpTypes("where", {}, {DType::kBool, DType::kFloat16, DType::kInt8});
      },
      {"where \"n\"", "float16", "int8"});
}

TEST(Where, Shapes) {
  EXPECT_EQ(test::OutShape("where", {}, {Shape{2, 3}, Shape{2, kU}, Shape{kU, 3}}), "(2, 3)");
  EXPECT_EQ(test::OutShape("where", {}, {Shape{2}, Shape{kU, 3}, Shape()}), "(2, 3)");
  auto in = test::InferOpInputShapes("where", {}, {Shape{4, 5}});
  EXPECT_EQ(in[1].ToString(), "(4, 5)");  // a condition of rank 2 is x's shape
  ExpectUserError(
      [] {
        test::InferOpShapes("where", {}, {Shape{3}, Shape{2, 3}, Shape{2, 3}});
      },
      {"where \"n\"", "condition (3)", "(2, 3)"});
  ExpectUserError(
      [] {
        test::InferOpShapes("where", {}, {Shape{2, 3}, Shape{2, 3}, Shape{3, 2}});
      },
      {"where \"n\"", "(2, 3)", "(3, 2)"});
}

}  // namespace
}  // namespace kiln
