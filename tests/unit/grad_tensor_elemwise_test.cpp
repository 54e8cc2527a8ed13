// grad_tensor_elemwise_test.cpp - gradients of the elementwise tensor ops (unary, binary,
// broadcast, scalar, where, clip, Cast, add_n) against finite differences, plus the exact
// values at points finite differences cannot judge: ties, clip's bounds, ops whose gradient is
// zero, and the dtype Cast's gradient comes back in.
#include "grad_tensor_util.h"

namespace kiln {
namespace {

using test::CheckGradient;
using test::F64;
using test::OpGradients;

TEST(GradElemwise, SmoothUnaryOps) {
  for (const char* op : {"exp", "sigmoid", "tanh", "erf", "square", "negative"})
    CheckGradient({op, {}, {{2, 3}}});
  // Defined (and smooth) for positive inputs only.
  for (const char* op : {"log", "sqrt", "rsqrt"}) CheckGradient({op, {}, {{2, 3}}, {}, {}, 0.5, 2});
}

TEST(GradElemwise, KinkedUnaryOpsAwayFromZero) {
  std::vector<double> x = {-2, -0.5, -0.25, 0.3, 1, 2.5};
  CheckGradient({"abs", {}, {{6}}, {{0, x}}});
  CheckGradient({"relu", {}, {{2, 3}}, {{0, x}}});
}

TEST(GradElemwise, OpsWithZeroGradient) {
  // sign, zeros_like and ones_like do not change with their input: the gradient is zeros.
  for (const char* op : {"sign", "zeros_like", "ones_like"}) {
    CheckGradient({op, {}, {{2, 3}}, {{0, {-2, -0.5, 0.3, 1, 2, -1}}}});
    auto g = OpGradients(op, {}, {F64({3}, {-1, 0.5, 2})}, {F64({3}, {1, 1, 1})});
    test::ExpectTensorNear(g[0], {3}, {0, 0, 0});
  }
}

TEST(GradElemwise, ClipPassesTheGradientInsideItsBounds) {
  CheckGradient({"clip",
                 {{"a_min", "-0.5"}, {"a_max", "0.5"}},
                 {{7}},
                 {{0, {-0.9, -0.45, -0.3, 0, 0.2, 0.45, 0.7}}}});
  // At the bounds themselves the gradient passes, as MXNet's clip backward.
  auto g = OpGradients("clip", {{"a_min", "-0.5"}, {"a_max", "0.5"}},
                       {F64({5}, {-1, -0.5, 0, 0.5, 1})}, {F64({5}, {2, 3, 4, 5, 6})});
  test::ExpectTensorNear(g[0], {5}, {0, 3, 4, 5, 0});
}

TEST(GradElemwise, CastGivesTheGradientBackInTheInputsDtype) {
  CheckGradient({"Cast", {{"dtype", "float64"}}, {{2, 3}}});
  // Through float32 the forward rounds, so the differences need a larger step.
  test::GradCheck c{"Cast", {{"dtype", "float32"}}, {{2, 3}}};
  c.eps = 1e-2;
  c.tol = 1e-4;
  CheckGradient(c);
  auto g = OpGradients("Cast", {{"dtype", "float64"}}, {test::F32({2}, {1.5, -2})},
                       {F64({2}, {0.25, 3})});
  EXPECT_EQ(g[0].dtype(), DType::kFloat32);
  test::ExpectTensorNear(g[0], {2}, {0.25, 3});
}

TEST(GradElemwise, ElementwiseBinaryOps) {
  for (const char* op : {"elemwise_add", "elemwise_sub", "elemwise_mul", "_maximum", "_minimum"})
    CheckGradient({op, {}, {{2, 3}, {2, 3}}});
  // Division and power with positive operands (power's exponent gradient needs a positive base).
  for (const char* op : {"elemwise_div", "_power"})
    CheckGradient({op, {}, {{2, 3}, {2, 3}}, {}, {}, 0.5, 2});
}

TEST(GradElemwise, MaximumAndMinimumTiesGoToLhs) {
  Tensor a = F64({3}, {1, 2, 3}), b = F64({3}, {0, 2, 4}), h = F64({3}, {10, 20, 30});
  auto mx = OpGradients("_maximum", {}, {a, b}, {h});
  test::ExpectTensorNear(mx[0], {3}, {10, 20, 0});
  test::ExpectTensorNear(mx[1], {3}, {0, 0, 30});
  auto mn = OpGradients("broadcast_minimum", {}, {a, b}, {h});
  test::ExpectTensorNear(mn[0], {3}, {0, 20, 30});
  test::ExpectTensorNear(mn[1], {3}, {10, 0, 0});
}

// Operand shapes covering broadcasting on either side, both sides at once, and rank differences.
const std::vector<std::pair<Shape, Shape>> kBroadcastShapes = {
    {{2, 3, 4}, {3, 1}},     // rhs broadcast, lower rank
    {{4}, {2, 3, 4}},        // lhs broadcast, lower rank
    {{1, 3, 1}, {2, 1, 4}},  // both broadcast, along different axes
    {{2, 1}, {1}},           // rhs a single element
    {{2, 3}, {2, 3}},        // no broadcasting
};

TEST(GradElemwise, BroadcastBinaryOps) {
  for (const auto& [l, r] : kBroadcastShapes) {
    SCOPED_TRACE(l.ToString() + " " + r.ToString());
    for (const char* op : {"broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_maximum",
                           "broadcast_minimum"})
      CheckGradient({op, {}, {l, r}});
    for (const char* op : {"broadcast_div", "broadcast_power"})
      CheckGradient({op, {}, {l, r}, {}, {}, 0.5, 2});
  }
}

TEST(GradElemwise, BroadcastGradientsHaveTheOperandsShapes) {
  // d lhs sums the head gradient over the broadcast axis; d rhs over the other one.
  auto g = OpGradients("broadcast_add", {}, {F64({2, 1}, {1, 2}), F64({3}, {1, 2, 3})},
                       {F64({2, 3}, {1, 2, 3, 4, 5, 6})});
  test::ExpectTensorNear(g[0], {2, 1}, {6, 15});
  test::ExpectTensorNear(g[1], {3}, {5, 7, 9});
}

TEST(GradElemwise, ScalarOps) {
  for (const char* op : {"_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar",
                         "_div_scalar", "_maximum_scalar", "_minimum_scalar"})
    CheckGradient({op, {{"scalar", "0.3"}}, {{2, 3}}});
  CheckGradient({"_rdiv_scalar", {{"scalar", "1.5"}}, {{2, 3}}, {}, {}, 0.5, 2});
  CheckGradient({"_power_scalar", {{"scalar", "2.5"}}, {{2, 3}}, {}, {}, 0.5, 2});
  CheckGradient({"_power_scalar", {{"scalar", "-1.5"}}, {{2, 3}}, {}, {}, 0.5, 2});
  CheckGradient({"_rpower_scalar", {{"scalar", "1.7"}}, {{2, 3}}});
  CheckGradient({"_rpower_scalar", {{"scalar", "0.4"}}, {{2, 3}}});
}

TEST(GradElemwise, MaximumScalarTiesPassTheGradient) {
  // MXNet: _maximum_scalar passes where x >= scalar, _minimum_scalar where x <= scalar.
  Tensor x = F64({3}, {0, 1, 2}), h = F64({3}, {5, 6, 7});
  test::ExpectTensorNear(OpGradients("_maximum_scalar", {{"scalar", "1"}}, {x}, {h})[0], {3},
                         {0, 6, 7});
  test::ExpectTensorNear(OpGradients("_minimum_scalar", {{"scalar", "1"}}, {x}, {h})[0], {3},
                         {5, 6, 0});
}

TEST(GradElemwise, WhereSendsTheGradientToTheChosenOperand) {
  // Same-shaped condition; the condition gets no gradient.
  CheckGradient({"where", {}, {{2, 3}, {2, 3}, {2, 3}}, {{0, {1, 0, 0, 1, 1, 0}}}, {0}});
  // A 1-D condition selecting rows.
  CheckGradient({"where", {}, {{3}, {3, 2}, {3, 2}}, {{0, {0, 1, 0}}}, {0}});
  auto g = OpGradients("where", {}, {F64({3}, {1, 0, 2}), F64({3}, {1, 1, 1}), F64({3}, {2, 2, 2})},
                       {F64({3}, {4, 5, 6})});
  test::ExpectTensorNear(g[0], {3}, {0, 0, 0});  // the pass gives an unreached variable zeros
  test::ExpectTensorNear(g[1], {3}, {4, 0, 6});
  test::ExpectTensorNear(g[2], {3}, {0, 5, 0});
}

TEST(GradElemwise, AddNGivesEveryOperandTheGradient) {
  CheckGradient({"add_n", {{"num_args", "3"}}, {{2, 2}, {2, 2}, {2, 2}}});
  CheckGradient({"add_n", {{"num_args", "1"}}, {{3}}});
}

}  // namespace
}  // namespace kiln
