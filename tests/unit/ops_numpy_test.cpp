// ops_numpy_test.cpp - the ops added for ONNX import, directly (the ONNX conformance suite tests
// them through the importer): comparisons and logic, rounding, _np_reshape, tile, Pad, take,
// einsum, resize, LSTM and GRU; their semantic choices (docs/ops.md) and error messages.
#include "grad_check.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::ExpectTensorNear;
using test::ExpectUserError;
using test::F32;
using test::OutShape;
using test::RunOp;
using test::Values;

TEST(Logic, ComparisonsKeepTheOperandsDtypeAndBroadcast) {
  Tensor a = F32({2, 2}, {1, 2, 3, NAN});
  Tensor b = F32({2}, {2, NAN});
  ExpectTensorNear(RunOp("broadcast_greater", {}, {a, b})[0], {2, 2}, {0, 0, 1, 0});
  ExpectTensorNear(RunOp("broadcast_equal", {}, {a, b})[0], {2, 2}, {0, 0, 0, 0});
  ExpectTensorNear(RunOp("broadcast_not_equal", {}, {a, b})[0], {2, 2}, {1, 1, 1, 1});
  EXPECT_EQ(RunOp("broadcast_lesser_equal", {}, {a, b})[0].dtype(), DType::kFloat32);
  // int64 beyond 2^53 compares exactly.
  Tensor big = Tensor::FromVector<int64_t>({2}, {(int64_t(1) << 60) + 1, 5});
  Tensor big2 = Tensor::FromVector<int64_t>({2}, {int64_t(1) << 60, 5});
  EXPECT_EQ(RunOp("broadcast_equal", {}, {big, big2})[0].ToDoubles(), (std::vector<double>{0, 1}));
  ExpectUserError(
      [&] {
        RunOp("broadcast_lesser", {}, {F32({2}, {1, 2}), F32({3}, {1, 2, 3})});
      },
      {"broadcast_lesser", "cannot be broadcast together"});
}

TEST(Logic, LogicalOpsTreatNonzeroAsTrue) {
  Tensor a = Values(DType::kBool, {4}, {0, 0, 1, 1});
  Tensor b = Values(DType::kBool, {4}, {0, 1, 0, 1});
  EXPECT_EQ(RunOp("broadcast_logical_and", {}, {a, b})[0].ToDoubles(),
            (std::vector<double>{0, 0, 0, 1}));
  EXPECT_EQ(RunOp("broadcast_logical_or", {}, {a, b})[0].ToDoubles(),
            (std::vector<double>{0, 1, 1, 1}));
  EXPECT_EQ(RunOp("broadcast_logical_xor", {}, {a, b})[0].ToDoubles(),
            (std::vector<double>{0, 1, 1, 0}));
  EXPECT_EQ(RunOp("logical_not", {}, {F32({3}, {0, -2, NAN})})[0].ToDoubles(),
            (std::vector<double>{1, 0, 0}));
}

TEST(Logic, Rounding) {
  Tensor x = F32({5}, {-2.5, -0.5, 0.5, 1.5, 2.7});
  ExpectTensorNear(RunOp("floor", {}, {x})[0], {5}, {-3, -1, 0, 1, 2});
  ExpectTensorNear(RunOp("ceil", {}, {x})[0], {5}, {-2, -0., 1, 2, 3});
  ExpectTensorNear(RunOp("round", {}, {x})[0], {5}, {-3, -1, 1, 2, 3});
  ExpectTensorNear(RunOp("trunc", {}, {x})[0], {5}, {-2, 0, 0, 1, 2});
  Tensor i = Tensor::FromVector<int32_t>({2}, {-7, 9});
  EXPECT_EQ(RunOp("floor", {}, {i})[0].ToDoubles(), (std::vector<double>{-7, 9}));
}

TEST(Layout, NpReshapeMakes0dAndInfersOneDim) {
  EXPECT_EQ(OutShape("_np_reshape", {{"newshape", "(3, -1)"}}, {Shape{2, 3, 2}}), "(3, 4)");
  EXPECT_EQ(OutShape("_np_reshape", {}, {Shape{1, 1}}), "()");
  ExpectUserError(
      [] {
        OutShape("_np_reshape", {{"newshape", "(5, -1)"}}, {Shape{2, 3}});
      },
      {"_np_reshape", "cannot reshape (2, 3)"});
  ExpectUserError(
      [] {
        OutShape("_np_reshape", {{"newshape", "(-1, -1)"}}, {Shape{2, 3}});
      },
      {"two -1"});
}

TEST(Layout, TileRepeatsAndPadsTheRank) {
  Tensor x = F32({2}, {1, 2});
  ExpectTensorNear(RunOp("tile", {{"reps", "(2, 2)"}}, {x})[0], {2, 4}, {1, 2, 1, 2, 1, 2, 1, 2});
  EXPECT_EQ(OutShape("tile", {{"reps", "(3,)"}}, {Shape{2, 5}}), "(2, 15)");
}

TEST(Layout, PadModes) {
  Tensor x = F32({3}, {1, 2, 3});
  ExpectTensorNear(RunOp("Pad", {{"pad_width", "(2, 1)"}, {"constant_value", "9"}}, {x})[0], {6},
                   {9, 9, 1, 2, 3, 9});
  ExpectTensorNear(RunOp("Pad", {{"mode", "edge"}, {"pad_width", "(2, 1)"}}, {x})[0], {6},
                   {1, 1, 1, 2, 3, 3});
  ExpectTensorNear(RunOp("Pad", {{"mode", "reflect"}, {"pad_width", "(2, 2)"}}, {x})[0], {7},
                   {3, 2, 1, 2, 3, 2, 1});
  ExpectUserError(
      [] {
        OutShape("Pad", {{"mode", "reflect"}, {"pad_width", "(3, 0)"}}, {Shape{3}});
      },
      {"Pad", "reflect padding of axis 0 by (3, 0)"});
  ExpectUserError([] { OutShape("Pad", {{"pad_width", "(1, 1)"}}, {Shape{3, 3}}); }, {"needs 4"});
}

TEST(Layout, TakeGathersAlongAnAxis) {
  Tensor a = F32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor idx = Tensor::FromVector<int64_t>({2, 2}, {2, 0, -1, 1});
  ExpectTensorNear(RunOp("take", {{"axis", "1"}, {"mode", "raise"}}, {a, idx})[0], {2, 2, 2},
                   {3, 1, 3, 2, 6, 4, 6, 5});
  ExpectTensorNear(RunOp("take", {{"axis", "0"}}, {a, F32({}, {7})})[0], {3}, {4, 5, 6});  // clip
  ExpectTensorNear(RunOp("take", {{"mode", "wrap"}}, {a, F32({1}, {-3})})[0], {1, 3}, {4, 5, 6});
  ExpectUserError(
      [&] {
        RunOp("take", {{"mode", "raise"}}, {a, F32({1}, {2})});
      },
      {"take", "index 2 at position 0 is out of range for axis 0 of extent 2"});
}

TEST(Layout, GradientsOfPadTileAndTake) {
  test::CheckGradient(
      {.op = "Pad", .attrs = {{"pad_width", "(1, 0, 2, 1)"}}, .shapes = {Shape{2, 3}}});
  test::CheckGradient({.op = "tile", .attrs = {{"reps", "(2, 1, 3)"}}, .shapes = {Shape{2, 3}}});
  test::CheckGradient({.op = "take",
                       .attrs = {{"axis", "1"}, {"mode", "raise"}},
                       .shapes = {Shape{2, 3}, Shape{4}},
                       .values = {{1, {2, 0, 2, -1}}},
                       .no_grad = {1}});
  ExpectUserError(
      [] {
        test::CheckGradient({.op = "Pad",
                             .attrs = {{"mode", "edge"}, {"pad_width", "(1, 1)"}},
                             .shapes = {Shape{3}}});
      },
      {"Pad", "constant mode only"});
}

TEST(Gather, TakeAlongAxis) {
  Tensor a = F32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor idx = Tensor::FromVector<int64_t>({2, 2}, {2, 0, -1, 1});
  ExpectTensorNear(RunOp("take_along_axis", {{"axis", "1"}}, {a, idx})[0], {2, 2}, {3, 1, 6, 5});
  ExpectUserError(
      [&] {
        RunOp("take_along_axis", {{"axis", "0"}}, {a, Tensor::FromVector<int64_t>({1, 1}, {2})});
      },
      {"take_along_axis", "index 2 at position 0 is out of range for axis 0 of extent 2"});
  ExpectUserError(
      [] {
        OutShape("take_along_axis", {{"axis", "0"}}, {Shape{2, 3}, Shape{4}});
      },
      {"must have the rank of a"});
  test::CheckGradient({.op = "take_along_axis",
                       .attrs = {{"axis", "0"}},
                       .shapes = {Shape{2, 3}, Shape{3, 2}},
                       .values = {{1, {1, 0, 1, 1, -2, 0}}},
                       .no_grad = {1}});
}

TEST(Scan, CumsumModesAndGradient) {
  Tensor x = F32({2, 3}, {1, 2, 3, 4, 5, 6});
  ExpectTensorNear(RunOp("cumsum", {{"axis", "1"}}, {x})[0], {2, 3}, {1, 3, 6, 4, 9, 15});
  ExpectTensorNear(RunOp("cumsum", {{"axis", "-1"}, {"exclusive", "True"}}, {x})[0], {2, 3},
                   {0, 1, 3, 0, 4, 9});
  ExpectTensorNear(RunOp("cumsum", {{"axis", "0"}, {"reverse", "True"}}, {x})[0], {2, 3},
                   {5, 7, 9, 4, 5, 6});
  test::CheckGradient(
      {.op = "cumsum", .attrs = {{"axis", "1"}, {"exclusive", "True"}}, .shapes = {Shape{2, 4}}});
  ExpectUserError(
      [] {
        OutShape("cumsum", {{"axis", "2"}}, {Shape{2, 3}});
      },
      {"cumsum", "axis = 2 is out of range"});
}

TEST(Einsum, MatrixFormsAndDiagonals) {
  Tensor a = F32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = F32({3, 2}, {1, 0, 0, 1, 1, 1});
  ExpectTensorNear(RunOp("einsum", {{"subscripts", "ij,jk->ik"}, {"num_args", "2"}}, {a, b})[0],
                   {2, 2}, {4, 5, 10, 11});
  ExpectTensorNear(RunOp("einsum", {{"subscripts", "ij"}, {"num_args", "1"}}, {a})[0], {2, 3},
                   {1, 2, 3, 4, 5, 6});
  ExpectTensorNear(RunOp("einsum", {{"subscripts", "ij->ji"}, {"num_args", "1"}}, {a})[0], {3, 2},
                   {1, 4, 2, 5, 3, 6});
  Tensor sq = F32({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  ExpectTensorNear(RunOp("einsum", {{"subscripts", "...ii->...i"}, {"num_args", "1"}}, {sq})[0],
                   {2, 2}, {1, 4, 5, 8});
  ExpectTensorNear(RunOp("einsum", {{"subscripts", "i,i"}, {"num_args", "2"}},
                         {F32({3}, {1, 2, 3}), F32({3}, {4, 5, 6})})[0],
                   {}, {32});
  ExpectUserError(
      [] {
        OutShape("einsum", {{"subscripts", "ij,jk->ik"}, {"num_args", "2"}},
                 {Shape{2, 3}, Shape{4, 2}});
      },
      {"einsum", "label 'j' has extents 3 and 4"});
}

TEST(Einsum, GradientsAreEinsums) {
  test::CheckGradient({.op = "einsum",
                       .attrs = {{"subscripts", "bij,bjk->bik"}, {"num_args", "2"}},
                       .shapes = {Shape{2, 3, 4}, Shape{2, 4, 2}}});
  test::CheckGradient({.op = "einsum",
                       .attrs = {{"subscripts", "ij,j"}, {"num_args", "2"}},
                       .shapes = {Shape{3, 4}, Shape{4}}});
  ExpectUserError(
      [] {
        test::CheckGradient({.op = "einsum",
                             .attrs = {{"subscripts", "ii->i"}, {"num_args", "1"}},
                             .shapes = {Shape{3, 3}}});
      },
      {"einsum", "no gradient for operand 0"});
}

TEST(Resize, NearestLinearAndCubic) {
  Tensor x = F32({1, 1, 2, 2}, {1, 2, 3, 4});
  ExpectTensorNear(RunOp("resize",
                         {{"size", "(1, 1, 4, 4)"},
                          {"coordinate_transformation_mode", "asymmetric"},
                          {"nearest_mode", "floor"}},
                         {x})[0],
                   {1, 1, 4, 4}, {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  ExpectTensorNear(RunOp("resize",
                         {{"size", "(1, 1, 3, 3)"},
                          {"mode", "linear"},
                          {"coordinate_transformation_mode", "align_corners"}},
                         {x})[0],
                   {1, 1, 3, 3}, {1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4});
  // Cubic with a = -0.5 (Keys' third-order kernel) reproduces a linear ramp away from the
  // edges.
  Tensor ramp = F32({8}, {0, 1, 2, 3, 4, 5, 6, 7});
  Tensor y = RunOp("resize",
                   {{"size", "(16,)"},
                    {"mode", "cubic"},
                    {"cubic_coeff_a", "-0.5"},
                    {"coordinate_transformation_mode", "align_corners"}},
                   {ramp})[0];
  for (int i = 4; i < 12; ++i) EXPECT_NEAR(y.At(i), i * 7.0 / 15, 1e-5) << i;
  ExpectUserError(
      [] {
        OutShape("resize", {{"size", "(4, 4)"}}, {Shape{1, 2, 2}});
      },
      {"resize", "does not have the rank"});
}

TEST(Rnn, ShapesFollowTheLayout) {
  auto s = test::InferOpShapes("LSTM", {{"hidden_size", "4"}, {"direction", "bidirectional"}},
                               {Shape{5, 2, 3}});
  EXPECT_EQ(s[0].ToString(), "(5, 2, 2, 4)");
  EXPECT_EQ(s[1].ToString(), "(2, 2, 4)");
  auto in =
      test::InferOpInputShapes("GRU", {{"hidden_size", "4"}, {"layout", "1"}}, {Shape{2, 5, 3}});
  EXPECT_EQ(in[1].ToString(), "(1, 12, 3)");
  EXPECT_EQ(in[4].ToString(), "(2, 1, 4)");
}

TEST(Rnn, OneStepMatchesTheEquations) {
  // One LSTM step, hidden size 1, input size 1: with zero state, c = i * tanh(c~), h = o tanh(c).
  Tensor x = F32({1, 1, 1}, {0.5});
  Tensor w = F32({1, 4, 1}, {1, 2, 3, 4});  // i, o, f, c
  Tensor r = F32({1, 4, 1}, {0, 0, 0, 0});
  Tensor b = F32({1, 8}, {0, 0, 0, 0, 0, 0, 0, 0});
  Tensor h0 = F32({1, 1, 1}, {0}), c0 = F32({1, 1, 1}, {0}), p = F32({1, 3}, {0, 0, 0});
  auto out = RunOp("LSTM", {{"hidden_size", "1"}}, {x, w, r, b, h0, c0, p});
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  double c = sig(0.5) * std::tanh(2.0);
  double h = sig(1.0) * std::tanh(c);
  ExpectTensorNear(out[0], {1, 1, 1, 1}, {h});
  ExpectTensorNear(out[2], {1, 1, 1}, {c});
  // GRU: z = sig(x Wz), h~ = tanh(x Wh), h = (1 - z) h~ with a zero state.
  Tensor gw = F32({1, 3, 1}, {1, 2, 3});
  auto g = RunOp("GRU", {{"hidden_size", "1"}},
                 {x, gw, F32({1, 3, 1}, {0, 0, 0}), F32({1, 6}, {0, 0, 0, 0, 0, 0}), h0});
  ExpectTensorNear(g[1], {1, 1, 1}, {(1 - sig(0.5)) * std::tanh(1.5)});
}

}  // namespace
}  // namespace kiln
