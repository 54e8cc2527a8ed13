// grad_tensor_reduce_test.cpp - gradients of the reductions (sum, mean, prod, max, min) and the
// matrix products (dot, batch_dot) against finite differences, plus exact values where finite
// differences cannot judge (ties of max/min, zeros in prod), and argmax's missing gradient.
#include "grad_tensor_util.h"

namespace kiln {
namespace {

using test::CheckGradient;
using test::F64;
using test::OpGradients;

// Axis attributes covering every axis, some axes, negative axes, keepdims and exclude.
const std::vector<AttrMap> kReduceAttrs = {
    {},
    {{"axis", "(1,)"}},
    {{"axis", "(0, 2)"}, {"keepdims", "True"}},
    {{"axis", "(-1,)"}},
    {{"axis", "(1,)"}, {"exclude", "True"}},
    {{"axis", "(0, -1)"}, {"exclude", "True"}, {"keepdims", "True"}},
    {{"keepdims", "True"}},
};

TEST(GradReduce, SumAndMean) {
  for (const AttrMap& a : kReduceAttrs)
    for (const char* op : {"sum", "mean"}) CheckGradient({op, a, {{2, 3, 4}}});
}

TEST(GradReduce, ProdAwayFromAndAtZero) {
  for (const AttrMap& a : kReduceAttrs) CheckGradient({"prod", a, {{2, 3, 2}}});
  // prod is a polynomial, so differences are exact at zeros too: a group with one zero, one
  // with two zeros, and one without.
  CheckGradient({"prod", {{"axis", "(1,)"}}, {{3, 3}}, {{0, {0.5, 0, 2, 0, 1.5, 0, 3, -1, 0.25}}}});
  auto g = OpGradients("prod", {{"axis", "(1,)"}}, {F64({2, 3}, {2, 0, 3, 0, 0, 5})},
                       {F64({2}, {1, 1})});
  test::ExpectTensorNear(g[0], {2, 3}, {0, 6, 0, 0, 0, 0});
}

TEST(GradReduce, MaxAndMinWithoutTies) {
  for (const AttrMap& a : kReduceAttrs)
    for (const char* op : {"max", "min"}) CheckGradient({op, a, {{2, 3, 4}}});
}

TEST(GradReduce, MaxAndMinGiveEveryTieTheWholeGradient) {
  // MXNet's _backward_max: d x = d y * (x == y).
  Tensor x = F64({2, 3}, {1, 3, 3, 2, -1, 2});
  auto mx = OpGradients("max", {{"axis", "(1,)"}}, {x}, {F64({2}, {10, 20})});
  test::ExpectTensorNear(mx[0], {2, 3}, {0, 10, 10, 20, 0, 20});
  auto mn =
      OpGradients("min", {{"axis", "(0,)"}, {"keepdims", "True"}}, {x}, {F64({1, 3}, {4, 5, 6})});
  test::ExpectTensorNear(mn[0], {2, 3}, {4, 0, 0, 0, 5, 6});
}

TEST(GradReduce, ArgmaxHasNoGradient) {
  test::ExpectUserError(
      [] {
        OpGradients("argmax", {{"axis", "1"}}, {F64({1, 2}, {1, 2})}, {});
      },
      {"cannot differentiate through", "argmax \"n\"", "has no gradient"});
}

TEST(GradMatmul, DotOfMatricesWithEveryTranspose) {
  CheckGradient({"dot", {}, {{2, 3}, {3, 4}}});
  CheckGradient({"dot", {{"transpose_a", "True"}}, {{3, 2}, {3, 4}}});
  CheckGradient({"dot", {{"transpose_b", "True"}}, {{2, 3}, {4, 3}}});
  CheckGradient({"dot", {{"transpose_a", "True"}, {"transpose_b", "True"}}, {{3, 2}, {4, 3}}});
}

TEST(GradMatmul, DotOfNDOperandsAndVectors) {
  CheckGradient({"dot", {}, {{2, 3, 4}, {4, 5}}});
  CheckGradient({"dot", {}, {{3, 4}, {4, 2, 5}}});
  CheckGradient({"dot", {}, {{2, 2, 3}, {3, 2, 2}}});
  CheckGradient({"dot", {{"transpose_a", "True"}}, {{4, 2, 3}, {4, 5}}});
  CheckGradient({"dot", {{"transpose_b", "True"}}, {{3, 4}, {2, 5, 4}}});
  CheckGradient(
      {"dot", {{"transpose_a", "True"}, {"transpose_b", "True"}}, {{4, 2, 3}, {5, 2, 4}}});
  CheckGradient({"dot", {}, {{3}, {3}}});
  CheckGradient({"dot", {}, {{3}, {3, 4}}});
  CheckGradient({"dot", {}, {{2, 3}, {3}}});
}

TEST(GradMatmul, BatchDotWithEveryTranspose) {
  CheckGradient({"batch_dot", {}, {{2, 3, 4}, {2, 4, 5}}});
  CheckGradient({"batch_dot", {{"transpose_a", "True"}}, {{2, 4, 3}, {2, 4, 5}}});
  CheckGradient({"batch_dot", {{"transpose_b", "True"}}, {{2, 3, 4}, {2, 5, 4}}});
  CheckGradient(
      {"batch_dot", {{"transpose_a", "True"}, {"transpose_b", "True"}}, {{2, 4, 3}, {2, 5, 4}}});
  CheckGradient({"batch_dot", {}, {{2, 2, 3, 2}, {2, 2, 2, 3}}});
}

}  // namespace
}  // namespace kiln
