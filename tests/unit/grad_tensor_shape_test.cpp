// grad_tensor_shape_test.cpp - gradients of the ops that move elements (Flatten, Reshape with
// every special value, transpose, expand_dims, squeeze, broadcast_to, Concat, SliceChannel,
// slice, slice_axis, reshape_like) against finite differences; SliceChannel outputs that no
// gradient reaches; one_hot's missing gradient.
#include "grad_tensor_util.h"

namespace kiln {
namespace {

using test::CheckGradient;
using test::F64;
using test::OpGradients;

TEST(GradShape, FlattenAndReshapeWithEverySpecialValue) {
  CheckGradient({"Flatten", {}, {{2, 3, 4}}});
  CheckGradient({"Flatten", {}, {{3}}});
  for (const char* shape : {"(4, 6)", "(0, -1)", "(-2,)", "(-3, 4)", "(-4, 1, 2, -2)",
                            "(-4, -1, 1, -2)", "(0, -4, 3, -1, 4)", "(-1,)"})
    CheckGradient({"Reshape", {{"shape", shape}}, {{2, 3, 4}}});
  CheckGradient({"Reshape", {{"shape", "(-1, 0)"}, {"reverse", "True"}}, {{2, 3, 4}}});
  CheckGradient({"Reshape", {{"target_shape", "(4, 0)"}}, {{2, 3, 4}}});
}

TEST(GradShape, TransposeByTheInversePermutation) {
  for (const char* axes : {"(1, 0, 2)", "(2, 0, 1)", "(1, 2, 0)", "(-1, 0, 1)", "()"})
    CheckGradient({"transpose", {{"axes", axes}}, {{2, 3, 4}}});
  CheckGradient({"transpose", {}, {{3, 2}}});
}

TEST(GradShape, ExpandDimsAndSqueeze) {
  CheckGradient({"expand_dims", {{"axis", "1"}}, {{2, 3}}});
  CheckGradient({"expand_dims", {{"axis", "-1"}}, {{2, 3}}});
  CheckGradient({"squeeze", {{"axis", "(1,)"}}, {{2, 1, 3}}});
  CheckGradient({"squeeze", {}, {{1, 3, 1}}});
  CheckGradient({"squeeze", {}, {{1, 1}}});  // everything squeezed: (1,)
}

TEST(GradShape, BroadcastToSumsBack) {
  CheckGradient({"broadcast_to", {{"shape", "(4, 3)"}}, {{1, 3}}});
  CheckGradient({"broadcast_to", {{"shape", "(0, 3, 4)"}}, {{2, 1, 1}}});
  CheckGradient({"broadcast_to", {{"shape", "(2, 3)"}}, {{2, 3}}});
}

TEST(GradShape, ReshapeLike) {
  // rhs lends only its shape: its gradient is zero.
  CheckGradient({"reshape_like", {}, {{2, 6}, {3, 4}}});
  CheckGradient({"reshape_like", {{"lhs_begin", "1"}, {"rhs_begin", "-2"}}, {{2, 6}, {4, 2, 3}}});
}

TEST(GradSlice, ConcatSplitsTheGradient) {
  CheckGradient({"Concat", {{"num_args", "3"}, {"dim", "1"}}, {{2, 1, 2}, {2, 3, 2}, {2, 2, 2}}});
  CheckGradient({"Concat", {{"num_args", "2"}, {"dim", "-1"}}, {{2, 3}, {2, 1}}});
  CheckGradient({"Concat", {{"num_args", "2"}, {"dim", "0"}}, {{1, 3}, {2, 3}}});
  CheckGradient({"Concat", {{"num_args", "1"}, {"dim", "0"}}, {{4}}});
}

TEST(GradSlice, SliceChannelJoinsTheGradients) {
  CheckGradient({"SliceChannel", {{"num_outputs", "3"}, {"axis", "1"}}, {{2, 6}}});
  CheckGradient({"SliceChannel", {{"num_outputs", "2"}, {"axis", "-1"}}, {{2, 3, 4}}});
  CheckGradient({"SliceChannel",
                 {{"num_outputs", "3"}, {"axis", "1"}, {"squeeze_axis", "True"}},
                 {{2, 3, 4}}});
  CheckGradient(
      {"SliceChannel", {{"num_outputs", "3"}, {"axis", "-1"}, {"squeeze_axis", "True"}}, {{2, 3}}});
  // A 1-D input with squeeze_axis: each output is (1,).
  CheckGradient(
      {"SliceChannel", {{"num_outputs", "3"}, {"axis", "0"}, {"squeeze_axis", "True"}}, {{3}}});
}

TEST(GradSlice, SliceChannelOutputsWithoutGradientContributeZeros) {
  // Only output 1 is differentiated: the other pieces of the input get zeros.
  auto g = OpGradients("SliceChannel", {{"num_outputs", "3"}, {"axis", "1"}},
                       {F64({2, 3}, {1, 2, 3, 4, 5, 6})}, {F64({2, 1}, {7, 8})}, {1});
  test::ExpectTensorNear(g[0], {2, 3}, {0, 7, 0, 0, 8, 0});
}

TEST(GradSlice, SliceWithStepsAndNegatives) {
  CheckGradient({"slice", {{"begin", "(0, 1)"}, {"end", "(2, 3)"}}, {{2, 4}}});
  CheckGradient(
      {"slice", {{"begin", "(None, 0)"}, {"end", "(None, None)"}, {"step", "(1, 2)"}}, {{2, 5}}});
  CheckGradient({"slice",
                 {{"begin", "(None, -1)"}, {"end", "(None, None)"}, {"step", "(-1, -2)"}},
                 {{2, 5}}});
  CheckGradient({"slice", {{"begin", "(-2,)"}, {"end", "(None,)"}}, {{3, 2, 2}}});
  CheckGradient(
      {"slice", {{"begin", "(1, -3)"}, {"end", "(3, -1)"}, {"step", "(2, 1)"}}, {{4, 4}}});
  CheckGradient({"slice_axis", {{"axis", "1"}, {"begin", "1"}, {"end", "None"}}, {{2, 4}}});
  CheckGradient({"slice_axis", {{"axis", "-1"}, {"begin", "-3"}, {"end", "-1"}}, {{2, 2, 4}}});
  CheckGradient({"slice_axis", {{"axis", "0"}, {"begin", "0"}, {"end", "1"}}, {{3, 2}}});
}

TEST(GradSlice, SliceScattersIntoZeros) {
  auto g = OpGradients("slice", {{"begin", "(None,)"}, {"end", "(None,)"}, {"step", "(-2,)"}},
                       {F64({5}, {0, 1, 2, 3, 4})}, {F64({3}, {10, 20, 30})});
  test::ExpectTensorNear(g[0], {5}, {30, 0, 20, 0, 10});
}

TEST(GradShape, LikeOpsTakeTheSecondOperandsShape) {
  EXPECT_EQ(test::OutShape("reshape_like", {}, {{2, 6}, {3, 4}}), "(3, 4)");
  EXPECT_EQ(test::OutShape("reshape_like", {{"lhs_begin", "1"}, {"rhs_begin", "-2"}},
                           {{2, 6}, {4, 2, 3}}),
            "(2, 2, 3)");
  EXPECT_EQ(test::OutShape("_reduce_sum_like", {}, {{2, 3, 4}, {3, 1}}), "(3, 1)");
  test::ExpectUserError(
      [] {
        test::OutShape("reshape_like", {}, {{2, 6}, {5}});
      },
      {"reshape_like \"n\"", "hold 12 elements", "hold 5"});
  test::ExpectUserError(
      [] {
        test::OutShape("_reduce_sum_like", {}, {{2, 3}, {4}});
      },
      {"_reduce_sum_like \"n\"", "does not broadcast"});
  test::ExpectUserError(
      [] {
        test::OutShape("_reduce_sum_like", {}, {{3}, {1, 3}});
      },
      {"higher rank"});
}

TEST(GradShape, BackwardOpsCheckTheOutputGradientsShape) {
  // The kernels index by these shapes, so a mismatch must be a user error, not a crash.
  test::ExpectUserError(
      [] {
        test::InferOneOp("_backward_slice", {{"begin", "(0, 1)"}, {"end", "(2, 3)"}},
                         {{3, 3}, {2, 4}});
      },
      {"_backward_slice \"n\"", "(3, 3)"});
  test::ExpectUserError(
      [] {
        test::InferOneOp("_backward_slice_axis", {{"axis", "1"}, {"begin", "0"}, {"end", "2"}},
                         {{2, 3}, {2, 4}});
      },
      {"_backward_slice_axis \"n\""});
  test::ExpectUserError(
      [] {
        test::InferOneOp("_backward_Concat", {{"num_args", "2"}, {"dim", "1"}},
                         {{2, 6}, {2, 3}, {2, 4}});
      },
      {"_backward_Concat \"n\""});
  test::ExpectUserError(
      [] {
        test::InferOneOp("_backward_Concat", {{"num_args", "2"}, {"dim", "1"}},
                         {{2, 7}, {3, 3}, {2, 4}});
      },
      {"_backward_Concat \"n\""});
  test::ExpectUserError(
      [] {
        test::InferOneOp("_backward_maximum", {}, {{2, 4}, {2, 3}, {1, 3}});
      },
      {"_backward_maximum \"n\""});
  test::ExpectUserError(
      [] {
        test::InferOneOp("_backward_dot", {}, {{2, 5}, {2, 3}, {3, 4}});
      },
      {"_backward_dot \"n\""});
  test::ExpectUserError(
      [] {
        test::InferOneOp("_backward_sum", {{"axis", "(1,)"}}, {{3}, {2, 3}});
      },
      {"_backward_sum \"n\""});
  // Consistent shapes are accepted, and dy's shape is inferred from the operands.
  Graph g = test::InferOneOp("_backward_dot", {{"transpose_a", "True"}}, {{}, {3, 2, 4}, {3, 5}});
  EXPECT_EQ(g.shape(Entry{0, 0}).ToString(), "(2, 4, 5)");
}

TEST(GradShape, OneHotHasNoGradient) {
  test::ExpectUserError(
      [] {
        OpGradients("one_hot", {{"depth", "3"}}, {F64({2}, {0, 2})}, {});
      },
      {"cannot differentiate through", "one_hot \"n\"", "has no gradient"});
}

}  // namespace
}  // namespace kiln
