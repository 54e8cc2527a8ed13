// ops_nn_conv_test.cpp - Convolution, Deconvolution and Pooling: shapes both ways, dtypes,
// errors, and numbers checked by hand, against a naive formula, and by the adjoint identity.
#include <random>

#include "test_util.h"

namespace kiln {
namespace {

using test::ExpectTensorNear;
using test::ExpectUserError;
using test::F32;
using test::InferOpInputShapes;
using test::InferOpShapes;
using test::RunOp;

Tensor F64(std::vector<int64_t> shape, uint32_t seed) {
  int64_t n = NumElements(shape);
  return Tensor::FromValues(std::move(shape), DType::kFloat64, test::RandomValues(size_t(n), seed));
}

double Dot(const Tensor& a, const Tensor& b) {
  auto x = a.ToDoubles(), y = b.ToDoubles();
  EXPECT_EQ(x.size(), y.size());
  double s = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) s += x[i] * y[i];
  return s;
}

std::string S(const Shape& s) {
  return s.ToString();
}

// ----- Convolution -----

TEST(Convolution, OutputShapes) {
  auto out = [](AttrMap a, Shape data) { return S(InferOpShapes("Convolution", a, {data})[0]); };
  EXPECT_EQ(out({{"kernel", "(3, 3)"}, {"num_filter", "16"}}, Shape{2, 3, 32, 32}),
            "(2, 16, 30, 30)");
  // (32 + 2 - 3) / 2 + 1 = 16
  EXPECT_EQ(
      out({{"kernel", "(3, 3)"}, {"num_filter", "8"}, {"stride", "(2, 2)"}, {"pad", "(1, 1)"}},
          Shape{1, 3, 32, 32}),
      "(1, 8, 16, 16)");
  // dilated kernel 2*(3-1)+1 = 5: (32 + 4 - 5) + 1 = 32; other axis (9 - 3)/3 + 1 = 3
  EXPECT_EQ(out({{"kernel", "(3, 3)"},
                 {"num_filter", "4"},
                 {"dilate", "(2, 1)"},
                 {"pad", "(2, 0)"},
                 {"stride", "(1, 3)"}},
                Shape{1, 3, 32, 9}),
            "(1, 4, 32, 3)");
  // 1-D: (20 - 5) / 3 + 1 = 6
  EXPECT_EQ(out({{"kernel", "(5,)"}, {"num_filter", "8"}, {"stride", "(3,)"}}, Shape{4, 2, 20}),
            "(4, 8, 6)");
  // 3-D
  EXPECT_EQ(out({{"kernel", "(2, 2, 2)"}, {"num_filter", "2"}}, Shape{1, 1, 4, 5, 6}),
            "(1, 2, 3, 4, 5)");
  // Unknown spatial extents stay unknown; batch and filters are known.
  EXPECT_EQ(out({{"kernel", "(3, 3)"}, {"num_filter", "16"}}, Shape{2, 3, -1, 32}),
            "(2, 16, ?, 30)");
}

TEST(Convolution, InfersWeightAndBiasFromDataAndChannelsFromWeight) {
  auto ins = InferOpInputShapes("Convolution",
                                {{"kernel", "(3, 3)"}, {"num_filter", "6"}, {"num_group", "2"}},
                                {Shape{1, 4, 8, 8}});
  EXPECT_EQ(S(ins[1]), "(6, 2, 3, 3)");
  EXPECT_EQ(S(ins[2]), "(6)");
  // Backward: the weight tells the data's channels (times num_group) and rank.
  ins = InferOpInputShapes("Convolution",
                           {{"kernel", "(3, 3)"}, {"num_filter", "6"}, {"num_group", "2"}},
                           {Shape(), Shape{6, 5, 3, 3}});
  EXPECT_EQ(S(ins[0]), "(?, 10, ?, ?)");
  ins = InferOpInputShapes("Convolution",
                           {{"kernel", "(3,)"}, {"num_filter", "6"}, {"no_bias", "True"}}, {});
  ASSERT_EQ(ins.size(), 2u);
  EXPECT_EQ(S(ins[0]), "(?, ?, ?)");
  EXPECT_EQ(S(ins[1]), "(6, ?, 3)");
}

TEST(Convolution, ShapeErrorsNameTheRule) {
  ExpectUserError(
      [] {
        test::InferOneOp("Convolution",
                         {{"kernel", "(3, 3)"}, {"num_filter", "4"}, {"num_group", "2"}},
                         {Shape{1, 3, 32, 32}}, "conv1");
      },
      {"Convolution \"conv1\": data (1, 3, 32, 32) has 3 channels, which num_group 2 does not "
       "divide"});
  ExpectUserError(
      [] {
        test::InferOneOp("Convolution", {{"kernel", "(3, 3)"}, {"num_filter", "16"}},
                         {Shape{1, 3, 8, 8}, Shape{16, 4, 3, 3}}, "c2");
      },
      {"Convolution \"c2\"", "weight has shape (16, 4, 3, 3) but shape (16, 3, 3, 3) was expected",
       "num_filter, channels / num_group"});
  ExpectUserError(
      [] {
        test::InferOneOp("Convolution",
                         {{"kernel", "(3, 3)"}, {"num_filter", "1"}, {"dilate", "(2, 2)"}},
                         {Shape{1, 1, 4, 4}}, "c3");
      },
      {"Convolution \"c3\"", "data (1, 1, 4, 4)", "4 wide on axis 2", "dilated kernel 5"});
  ExpectUserError(
      [] {
        test::InferOneOp("Convolution", {{"kernel", "(3, 3)"}, {"num_filter", "1"}},
                         {Shape{1, 3, 32}}, "c4");
      },
      {"Convolution \"c4\": data (1, 3, 32) has rank 3 but kernel (3, 3) needs rank 4 (NCHW)"});
}

TEST(Convolution, AttributeValidation) {
  const OpDef& op = OpRegistry::Global().Get("Convolution");
  ExpectUserError(
      [&] {
        op.attrs.parse({{"num_filter", "2"}});
      },
      {"missing required attribute kernel"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"kernel", "(3, 3)"}, {"num_filter", "0"}});
      },
      {"num_filter", "below the minimum 1"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"kernel", "(3, 0)"}, {"num_filter", "2"}});
      },
      {"kernel", "below the minimum 1"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"kernel", "(3, 3)"}, {"num_filter", "2"}, {"stride", "(1, 1, 1)"}});
      },
      {"stride = (1, 1, 1) has 3 elements but kernel has 2"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"kernel", "(3, 3)"}, {"num_filter", "3"}, {"num_group", "2"}});
      },
      {"num_filter 3 is not divisible by num_group 2"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"kernel", "(3, 3)"}, {"num_filter", "3"}, {"layout", "NHWC"}});
      },
      {"layout NHWC is not supported"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"kernel", "(1, 1, 1, 1)"}, {"num_filter", "3"}});
      },
      {"1, 2 or 3 are supported"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"kernel", "(3, 3)"}, {"num_filter", "3"}, {"cudnn_tune", "slow"}});
      },
      {"cudnn_tune", "not one of"});
  // cuDNN knobs are accepted.
  Attrs a = op.attrs.parse({{"kernel", "(3, 3)"},
                            {"num_filter", "3"},
                            {"cudnn_tune", "fastest"},
                            {"cudnn_off", "True"},
                            {"workspace", "2048"},
                            {"layout", "NCHW"}});
  EXPECT_EQ(op.InputNames(a), (std::vector<std::string>{"data", "weight", "bias"}));
  EXPECT_EQ(op.pattern(), FusionPattern::kOutElemwiseFusable);
}

TEST(Convolution, Types) {
  AttrMap a = {{"kernel", "(3, 3)"}, {"num_filter", "2"}};
  EXPECT_EQ(test::InferOpTypes("Convolution", a, {DType::kFloat16})[0], DType::kFloat16);
  EXPECT_EQ(test::InferOpTypes("Convolution", a, {DType::kFloat64})[0], DType::kFloat64);
  ExpectUserError([&] { test::InferOpTypes("Convolution", a, {DType::kInt32}); },
                  {"Convolution \"n\"", "int32", "floating-point"});
}

TEST(Convolution, Hand3x3) {
  // data 0..15 as 4x4; kernel all ones with 2 at the centre; bias 1.
  // Window sums: 45, 54, 81, 90; centres 5, 6, 9, 10 -> 45+5+1 = 51, 61, 91, 101.
  std::vector<double> x(16);
  for (int i = 0; i < 16; ++i) x[size_t(i)] = i;
  auto out =
      RunOp("Convolution", {{"kernel", "(3, 3)"}, {"num_filter", "1"}},
            {F32({1, 1, 4, 4}, x), F32({1, 1, 3, 3}, {1, 1, 1, 1, 2, 1, 1, 1, 1}), F32({1}, {1})});
  ExpectTensorNear(out[0], {1, 1, 2, 2}, {51, 61, 91, 101});
  // The same in float16 and float64 (every value is exact in both).
  for (DType t : {DType::kFloat16, DType::kFloat64}) {
    auto o =
        RunOp("Convolution", {{"kernel", "(3, 3)"}, {"num_filter", "1"}},
              {F32({1, 1, 4, 4}, x).CastTo(t),
               F32({1, 1, 3, 3}, {1, 1, 1, 1, 2, 1, 1, 1, 1}).CastTo(t), F32({1}, {1}).CastTo(t)});
    EXPECT_EQ(o[0].dtype(), t);
    ExpectTensorNear(o[0], {1, 1, 2, 2}, {51, 61, 91, 101});
  }
  // Padding 1 over a 3x3 of ones with a 3x3 of ones counts the in-bounds neighbours.
  out = RunOp(
      "Convolution",
      {{"kernel", "(3, 3)"}, {"num_filter", "1"}, {"pad", "(1, 1)"}, {"no_bias", "True"}},
      {F32({1, 1, 3, 3}, std::vector<double>(9, 1)), F32({1, 1, 3, 3}, std::vector<double>(9, 1))});
  ExpectTensorNear(out[0], {1, 1, 3, 3}, {4, 6, 4, 6, 9, 6, 4, 6, 4});
}

TEST(Convolution, Hand1D) {
  AttrMap a = {{"kernel", "(3,)"}, {"num_filter", "1"}, {"no_bias", "True"}, {"stride", "(2,)"}};
  auto out = RunOp("Convolution", a, {F32({1, 1, 5}, {1, 2, 3, 4, 5}), F32({1, 1, 3}, {1, 0, -1})});
  ExpectTensorNear(out[0], {1, 1, 2}, {1 - 3, 3 - 5});
  a = {{"kernel", "(3,)"}, {"num_filter", "1"}, {"no_bias", "True"}, {"dilate", "(2,)"}};
  out = RunOp("Convolution", a, {F32({1, 1, 5}, {1, 2, 3, 4, 5}), F32({1, 1, 3}, {1, 0, -1})});
  ExpectTensorNear(out[0], {1, 1, 1}, {1 - 5});
}

TEST(Convolution, StridedPaddedDilatedGroupedMatchesNaiveFormula) {
  const int64_t N = 2, C = 4, H = 7, W = 6, F = 6, G = 2, KH = 3, KW = 2;
  const int64_t SH = 2, SW = 1, PH = 1, PW = 0, DH = 1, DW = 2;
  const int64_t OH = (H + 2 * PH - (DH * (KH - 1) + 1)) / SH + 1;
  const int64_t OW = (W + 2 * PW - (DW * (KW - 1) + 1)) / SW + 1;
  Tensor x = F64({N, C, H, W}, 1), w = F64({F, C / G, KH, KW}, 2), b = F64({F}, 3);
  auto out = RunOp("Convolution",
                   {{"kernel", "(3, 2)"},
                    {"num_filter", "6"},
                    {"num_group", "2"},
                    {"stride", "(2, 1)"},
                    {"pad", "(1, 0)"},
                    {"dilate", "(1, 2)"}},
                   {x, w, b});
  auto X = x.ToDoubles(), Wt = w.ToDoubles(), B = b.ToDoubles();
  std::vector<double> want;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t f = 0; f < F; ++f)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double s = B[size_t(f)];
          int64_t g = f / (F / G);
          for (int64_t c = 0; c < C / G; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                int64_t h = oh * SH + kh * DH - PH, ww = ow * SW + kw * DW - PW;
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                s += X[size_t(((n * C + g * (C / G) + c) * H + h) * W + ww)] *
                     Wt[size_t(((f * (C / G) + c) * KH + kh) * KW + kw)];
              }
          want.push_back(s);
        }
  ExpectTensorNear(out[0], {N, F, OH, OW}, want, 1e-12);
}

// ----- Deconvolution -----

TEST(Deconvolution, OutputShapesAndParameters) {
  auto out = [](AttrMap a, Shape data) { return S(InferOpShapes("Deconvolution", a, {data})[0]); };
  // 2 * (8 - 1) + 4 - 2 = 16
  AttrMap a = {{"kernel", "(4, 4)"}, {"num_filter", "5"}, {"stride", "(2, 2)"}, {"pad", "(1, 1)"}};
  EXPECT_EQ(out(a, Shape{1, 3, 8, 8}), "(1, 5, 16, 16)");
  a["adj"] = "(1, 0)";
  EXPECT_EQ(out(a, Shape{1, 3, 8, 8}), "(1, 5, 17, 16)");
  // target_shape overrides pad and adj: the output is exactly the target.
  EXPECT_EQ(out({{"kernel", "(3, 3)"},
                 {"num_filter", "5"},
                 {"stride", "(2, 2)"},
                 {"target_shape", "(16, 15)"}},
                Shape{1, 3, 8, 8}),
            "(1, 5, 16, 15)");
  // 1-D, dilated: 1 * (10 - 1) + 2 * (3 - 1) + 1 = 14
  EXPECT_EQ(out({{"kernel", "(3,)"}, {"num_filter", "2"}, {"dilate", "(2,)"}}, Shape{2, 4, 10}),
            "(2, 2, 14)");
  // Weight (channels, num_filter / num_group, k...); no bias by default (MXNet's default).
  auto ins = InferOpInputShapes("Deconvolution",
                                {{"kernel", "(3, 3)"}, {"num_filter", "6"}, {"num_group", "3"}},
                                {Shape{1, 3, 5, 5}});
  ASSERT_EQ(ins.size(), 2u);
  EXPECT_EQ(S(ins[1]), "(3, 2, 3, 3)");
  ins = InferOpInputShapes("Deconvolution",
                           {{"kernel", "(3, 3)"}, {"num_filter", "6"}, {"no_bias", "False"}},
                           {Shape(), Shape{7, 6, 3, 3}});
  ASSERT_EQ(ins.size(), 3u);
  EXPECT_EQ(S(ins[0]), "(?, 7, ?, ?)");
  EXPECT_EQ(S(ins[2]), "(6)");
}

TEST(Deconvolution, Errors) {
  ExpectUserError(
      [] {
        test::InferOneOp("Deconvolution",
                         {{"kernel", "(3, 3)"}, {"num_filter", "5"}, {"target_shape", "(40, 40)"}},
                         {Shape{1, 3, 8, 8}}, "up1");
      },
      {"Deconvolution \"up1\"", "target_shape (40, 40)", "at most 10"});
  ExpectUserError(
      [] {
        test::InferOneOp("Deconvolution",
                         {{"kernel", "(3, 3)"}, {"num_filter", "4"}, {"num_group", "2"}},
                         {Shape{1, 5, 8, 8}}, "up2");
      },
      {"Deconvolution \"up2\": data (1, 5, 8, 8) has 5 channels, which num_group 2 does not "
       "divide"});
  // pad 2 on a 1-wide input with kernel 1: 0 + 1 - 4 < 1.
  ExpectUserError(
      [] {
        test::InferOneOp("Deconvolution",
                         {{"kernel", "(1,)"}, {"num_filter", "1"}, {"pad", "(2,)"}},
                         {Shape{1, 1, 1}}, "up3");
      },
      {"Deconvolution \"up3\"", "output extent of -3"});
  const OpDef& op = OpRegistry::Global().Get("Deconvolution");
  ExpectUserError(
      [&] {
        op.attrs.parse({{"kernel", "(3, 3)"}, {"num_filter", "1"}, {"adj", "(1,)"}});
      },
      {"adj = (1,) has 1 elements but kernel has 2"});
}

TEST(Deconvolution, Hand1D) {
  AttrMap a = {{"kernel", "(2,)"}, {"num_filter", "1"}, {"stride", "(2,)"}};
  // Each input element stamps x * w at stride 2: [1*1, 1*10, 2*1, 2*10].
  auto out = RunOp("Deconvolution", a, {F32({1, 1, 2}, {1, 2}), F32({1, 1, 2}, {1, 10})});
  ExpectTensorNear(out[0], {1, 1, 4}, {1, 10, 2, 20});
  a["stride"] = "(1,)";
  a["no_bias"] = "False";
  out =
      RunOp("Deconvolution", a, {F32({1, 1, 2}, {1, 2}), F32({1, 1, 2}, {1, 10}), F32({1}, {0.5})});
  ExpectTensorNear(out[0], {1, 1, 3}, {1.5, 12.5, 20.5});
}

// <conv(x, w), y> == <x, deconv(y, w)>: Deconvolution is the adjoint of Convolution.
void CheckAdjoint(std::vector<int64_t> x_shape, int64_t filters, int64_t groups,
                  std::vector<int64_t> kernel, std::vector<int64_t> stride,
                  std::vector<int64_t> pad, std::vector<int64_t> dilate) {
  size_t nd = kernel.size();
  int64_t C = x_shape[1];
  std::vector<int64_t> y_shape = {x_shape[0], filters}, adj;
  for (size_t i = 0; i < nd; ++i) {
    int64_t in = x_shape[2 + i], dk = dilate[i] * (kernel[i] - 1) + 1;
    y_shape.push_back((in + 2 * pad[i] - dk) / stride[i] + 1);
    adj.push_back((in + 2 * pad[i] - dk) % stride[i]);  // recovers in exactly
  }
  std::vector<int64_t> w_shape = {filters, C / groups};
  w_shape.insert(w_shape.end(), kernel.begin(), kernel.end());
  Tensor x = F64(x_shape, 11), y = F64(y_shape, 12), w = F64(w_shape, 13);
  auto P = [](const std::vector<int64_t>& v) { return attr_text::Print(v); };
  AttrMap common = {{"kernel", P(kernel)}, {"stride", P(stride)},
                    {"pad", P(pad)},       {"dilate", P(dilate)},
                    {"no_bias", "True"},   {"num_group", std::to_string(groups)}};
  AttrMap conv = common, deconv = common;
  conv["num_filter"] = std::to_string(filters);
  deconv["num_filter"] = std::to_string(C);
  deconv["adj"] = P(adj);
  Tensor cx = RunOp("Convolution", conv, {x, w})[0];
  Tensor dy = RunOp("Deconvolution", deconv, {y, w})[0];
  ASSERT_EQ(ShapeString(cx.shape()), ShapeString(y_shape));
  ASSERT_EQ(ShapeString(dy.shape()), ShapeString(x_shape));
  double lhs = Dot(cx, y), rhs = Dot(x, dy);
  EXPECT_NEAR(lhs, rhs, 1e-9 * (1 + std::fabs(lhs))) << "kernel " << P(kernel);
  EXPECT_GT(std::fabs(lhs), 1e-3);  // not trivially zero
}

TEST(Deconvolution, IsTheAdjointOfConvolution) {
  CheckAdjoint({2, 3, 9}, 4, 1, {3}, {2}, {1}, {1});
  CheckAdjoint({1, 4, 8, 7}, 6, 2, {3, 2}, {2, 3}, {1, 1}, {1, 2});
  CheckAdjoint({2, 2, 6, 6}, 2, 2, {3, 3}, {1, 1}, {2, 0}, {2, 1});
  CheckAdjoint({1, 2, 5, 4, 6}, 3, 1, {2, 2, 3}, {2, 1, 2}, {0, 1, 1}, {1, 1, 1});
}

// ----- Pooling -----

TEST(Pooling, OutputShapes) {
  auto out = [](AttrMap a, Shape data) { return S(InferOpShapes("Pooling", a, {data})[0]); };
  AttrMap a = {{"kernel", "(2, 2)"}, {"stride", "(2, 2)"}};
  EXPECT_EQ(out(a, Shape{1, 1, 5, 5}), "(1, 1, 2, 2)");  // 1 + (5 - 2) / 2
  a["pooling_convention"] = "full";
  EXPECT_EQ(out(a, Shape{1, 1, 5, 5}), "(1, 1, 3, 3)");  // 1 + ceil(3 / 2)
  a = {{"kernel", "(2, 2)"}, {"stride", "(2, 2)"}, {"pad", "(1, 1)"}};
  EXPECT_EQ(out(a, Shape{1, 1, 5, 5}), "(1, 1, 3, 3)");  // 1 + (5 + 2 - 2) / 2
  // Stride defaults to 1.
  EXPECT_EQ(out({{"kernel", "(3, 3)"}}, Shape{2, 4, 6, 7}), "(2, 4, 4, 5)");
  EXPECT_EQ(out({{"global_pool", "True"}, {"pool_type", "avg"}}, Shape{2, 3, 7, 9}),
            "(2, 3, 1, 1)");
  EXPECT_EQ(out({{"global_pool", "True"}, {"kernel", "(2,)"}}, Shape{2, 3, 7}), "(2, 3, 1)");
  // same: ceil(7 / 2)
  EXPECT_EQ(
      out({{"kernel", "(3,)"}, {"stride", "(2,)"}, {"pooling_convention", "same"}}, Shape{1, 1, 7}),
      "(1, 1, 4)");
  EXPECT_EQ(out({{"kernel", "(2, 2, 2)"}}, Shape{1, 1, 4, 4, 4}), "(1, 1, 3, 3, 3)");
  EXPECT_EQ(
      out({{"kernel", "(2, 2)"}, {"stride", "(2, 2)"}, {"layout", "NHWC"}}, Shape{1, 5, 5, 3}),
      "(1, 2, 2, 3)");
  // Batch and channels pass through even when the spatial extents are unknown.
  EXPECT_EQ(out({{"kernel", "(2, 2)"}}, Shape{4, 3, -1, 5}), "(4, 3, ?, 4)");
}

TEST(Pooling, ErrorsAndAttributes) {
  ExpectUserError(
      [] {
        test::InferOneOp("Pooling", {{"kernel", "(3, 3)"}}, {Shape{1, 1, 2, 2}}, "pool1");
      },
      {"Pooling \"pool1\": kernel (3, 3) is 3 on axis 2 but data (1, 1, 2, 2) is only 2 there"});
  ExpectUserError(
      [] {
        test::InferOneOp("Pooling", {{"kernel", "(3, 3)"}}, {Shape{1, 1, 8}}, "pool2");
      },
      {"Pooling \"pool2\": data (1, 1, 8) has rank 3 but kernel (3, 3) needs rank 4"});
  ExpectUserError(
      [] {
        test::InferOneOp("Pooling", {{"global_pool", "True"}}, {Shape{4, 8}}, "pool3");
      },
      {"Pooling \"pool3\"", "rank 2", "3-D, 4-D or 5-D"});
  const OpDef& op = OpRegistry::Global().Get("Pooling");
  ExpectUserError(
      [&] {
        op.attrs.parse({{"pool_type", "max"}});
      },
      {"1, 2 or 3 are needed unless global_pool"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"kernel", "(2,)"}, {"pool_type", "lp"}});
      },
      {"pool_type lp needs p_value"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"kernel", "(2,)"}, {"pool_type", "lp"}, {"p_value", "4"}});
      },
      {"p_value", "above the maximum 3"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"kernel", "(2, 2)"}, {"pooling_convention", "same"}});
      },
      {"same supports 1-D pooling only"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"kernel", "(2, 2)"}, {"pool_type", "median"}});
      },
      {"pool_type", "\"median\" is not one of: max, avg, sum, lp"});
  ExpectUserError(
      [&] {
        test::InferOpTypes("Pooling", {{"kernel", "(2,)"}}, {DType::kInt32});
      },
      {"Pooling \"n\"", "int32"});
  EXPECT_EQ(test::InferOpTypes("Pooling", {{"kernel", "(2,)"}}, {DType::kFloat16})[0],
            DType::kFloat16);
}

std::vector<double> Iota(int n, double start = 0) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = start + i;
  return v;
}

TEST(Pooling, MaxAndAvgByHand) {
  auto out =
      RunOp("Pooling", {{"kernel", "(2, 2)"}, {"stride", "(2, 2)"}}, {F32({1, 1, 4, 4}, Iota(16))});
  ExpectTensorNear(out[0], {1, 1, 2, 2}, {5, 7, 13, 15});
  // 1..9 as 3x3, kernel 2, stride 2, pad 1. Windows (clipped to the input): {1}, {2, 3},
  // {4, 7}, {5, 6, 8, 9}; their padded sizes are all 4.
  AttrMap a = {{"kernel", "(2, 2)"}, {"stride", "(2, 2)"}, {"pad", "(1, 1)"}, {"pool_type", "avg"}};
  out = RunOp("Pooling", a, {F32({1, 1, 3, 3}, Iota(9, 1))});
  ExpectTensorNear(out[0], {1, 1, 2, 2}, {1 / 4.0, 5 / 4.0, 11 / 4.0, 28 / 4.0});
  a["count_include_pad"] = "False";
  out = RunOp("Pooling", a, {F32({1, 1, 3, 3}, Iota(9, 1))});
  ExpectTensorNear(out[0], {1, 1, 2, 2}, {1, 5 / 2.0, 11 / 2.0, 28 / 4.0});
}

TEST(Pooling, FullConventionByHand) {
  // 0..15 as 4x4, kernel 3, stride 2, full: 2x2 windows, the second ones overhang the input.
  AttrMap a = {{"kernel", "(3, 3)"}, {"stride", "(2, 2)"}, {"pooling_convention", "full"}};
  auto out = RunOp("Pooling", a, {F32({1, 1, 4, 4}, Iota(16))});
  ExpectTensorNear(out[0], {1, 1, 2, 2}, {10, 11, 14, 15});
  a["pool_type"] = "avg";
  out = RunOp("Pooling", a, {F32({1, 1, 4, 4}, Iota(16))});
  ExpectTensorNear(out[0], {1, 1, 2, 2}, {45 / 9.0, 39 / 6.0, 66 / 6.0, 50 / 4.0});
  // 1-D [1, 2, 3, 4], kernel 3, stride 2, pad 1, full: windows [-1, 2), [1, 4), [3, 5) (the
  // last clipped at the padded end): padded sizes 3, 3, 2; inner {1, 2}, {2, 3, 4}, {4}.
  a = {{"kernel", "(3,)"},
       {"stride", "(2,)"},
       {"pad", "(1,)"},
       {"pool_type", "avg"},
       {"pooling_convention", "full"}};
  out = RunOp("Pooling", a, {F32({1, 1, 4}, {1, 2, 3, 4})});
  ExpectTensorNear(out[0], {1, 1, 3}, {3 / 3.0, 9 / 3.0, 4 / 2.0});
  a["count_include_pad"] = "False";
  out = RunOp("Pooling", a, {F32({1, 1, 4}, {1, 2, 3, 4})});
  ExpectTensorNear(out[0], {1, 1, 3}, {3 / 2.0, 9 / 3.0, 4 / 1.0});
}

TEST(Pooling, SumLpGlobalSameAndChannelLast) {
  AttrMap a = {{"kernel", "(2,)"}, {"stride", "(2,)"}, {"pool_type", "sum"}};
  auto out = RunOp("Pooling", a, {F32({1, 1, 4}, {1, -2, 3, 4})});
  ExpectTensorNear(out[0], {1, 1, 2}, {-1, 7});
  a["pool_type"] = "lp";
  a["p_value"] = "2";
  out = RunOp("Pooling", a, {F32({1, 1, 4}, {1, -2, 3, 4})});
  ExpectTensorNear(out[0], {1, 1, 2}, {std::sqrt(5.0), 5});
  a["p_value"] = "3";
  out = RunOp("Pooling", a, {F32({1, 1, 4}, {1, -2, 3, 4})});
  ExpectTensorNear(out[0], {1, 1, 2}, {std::cbrt(1.0 - 8), std::cbrt(27.0 + 64)}, 1e-6);
  out = RunOp("Pooling", {{"global_pool", "True"}, {"pool_type", "avg"}},
              {F32({1, 2, 2, 2}, {1, 2, 3, 4, 10, 20, 30, 40})});
  ExpectTensorNear(out[0], {1, 2, 1, 1}, {2.5, 25});
  out = RunOp("Pooling", {{"global_pool", "True"}}, {F32({1, 2, 3}, {1, 5, 2, -1, -7, -3})});
  ExpectTensorNear(out[0], {1, 2, 1}, {5, -1});
  // same, 1-D: windows [0, 3), [2, 5), [4, 6) (clipped at the end).
  out = RunOp("Pooling", {{"kernel", "(3,)"}, {"stride", "(2,)"}, {"pooling_convention", "same"}},
              {F32({1, 1, 6}, {1, 9, 2, 3, 8, 7})});
  ExpectTensorNear(out[0], {1, 1, 3}, {9, 8, 8});
  // NWC: channels interleaved.
  out = RunOp("Pooling", {{"kernel", "(2,)"}, {"stride", "(2,)"}, {"layout", "NWC"}},
              {F32({1, 4, 2}, {1, 10, 2, 20, 3, 30, 4, 40})});
  ExpectTensorNear(out[0], {1, 2, 2}, {2, 20, 4, 40});
}

TEST(Pooling, Float16AndFloat64) {
  for (DType t : {DType::kFloat16, DType::kFloat64}) {
    auto out = RunOp("Pooling", {{"kernel", "(2, 2)"}, {"stride", "(2, 2)"}, {"pool_type", "avg"}},
                     {F32({1, 1, 4, 4}, Iota(16)).CastTo(t)});
    EXPECT_EQ(out[0].dtype(), t);
    ExpectTensorNear(out[0], {1, 1, 2, 2}, {2.5, 4.5, 10.5, 12.5});
  }
}

}  // namespace
}  // namespace kiln
