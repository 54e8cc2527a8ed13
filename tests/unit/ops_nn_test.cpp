// ops_nn_test.cpp - Embedding, LeakyReLU, softmax, log_softmax and the loss heads
// (SoftmaxOutput, LinearRegressionOutput, MakeLoss): shapes both ways, dtypes, errors, and
// numbers checked by hand or by mathematical identities. (Convolution and pooling:
// ops_nn_conv_test.cpp; normalisation and Dropout: ops_nn_norm_test.cpp.)
#include <random>

#include "test_util.h"

namespace kiln {
namespace {

using test::ExpectTensorNear;
using test::ExpectUserError;
using test::F32;
using test::InferOpInputShapes;
using test::InferOpShapes;
using test::InferOpTypes;
using test::RunOp;

std::string S(const Shape& s) {
  return s.ToString();
}

TEST(NnOps, RegisteredWithTheirFusionPatterns) {
  const auto& r = OpRegistry::Global();
  EXPECT_EQ(r.Get("Convolution").pattern(), FusionPattern::kOutElemwiseFusable);
  EXPECT_EQ(r.Get("Deconvolution").pattern(), FusionPattern::kOutElemwiseFusable);
  EXPECT_EQ(r.Get("LeakyReLU").pattern(), FusionPattern::kBroadcast);
  // Dropout's draws are counter-based (D50): it fuses like any elementwise op.
  EXPECT_EQ(r.Get("Dropout").pattern(), FusionPattern::kElemwise);
  // Window and normalisation ops (and the heavy ops' gradients) take epilogues on output 0.
  for (const char* op : {"Pooling", "BatchNorm", "_backward_Pooling", "_backward_Convolution",
                         "_backward_Deconvolution", "_backward_FullyConnected"})
    EXPECT_EQ(r.Get(op).pattern(), FusionPattern::kOutElemwiseFusable) << op;
  for (const char* op : {"softmax", "log_softmax", "LayerNorm", "Embedding", "SoftmaxOutput",
                         "LinearRegressionOutput", "MakeLoss", "_backward_BatchNorm"})
    EXPECT_EQ(r.Get(op).pattern(), FusionPattern::kOpaque) << op;
  EXPECT_EQ(&r.Get("Softmax"), &r.Get("SoftmaxOutput"));
}

// ----- Embedding -----

TEST(Embedding, ShapesBothWays) {
  AttrMap a = {{"input_dim", "10"}, {"output_dim", "4"}};
  EXPECT_EQ(S(InferOpShapes("Embedding", a, {Shape{2, 3}})[0]), "(2, 3, 4)");
  auto ins = InferOpInputShapes("Embedding", a, {Shape{2, 3}});
  EXPECT_EQ(S(ins[1]), "(10, 4)");
  ins = InferOpInputShapes("Embedding", a, {});
  EXPECT_EQ(S(ins[1]), "(10, 4)");
  ExpectUserError(
      [] {
        test::InferOneOp("Embedding", {{"input_dim", "4"}, {"output_dim", "2"}},
                         {Shape{3}, Shape{5, 2}}, "emb");
      },
      {"Embedding \"emb\": weight has shape (5, 2) but shape (4, 2) was expected"});
  const OpDef& op = OpRegistry::Global().Get("Embedding");
  ExpectUserError(
      [&] {
        op.attrs.parse({{"output_dim", "2"}});
      },
      {"missing required attribute input_dim"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"input_dim", "2"}, {"output_dim", "0"}});
      },
      {"output_dim", "below the minimum 1"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"input_dim", "2"}, {"output_dim", "2"}, {"dtype", "complex"}});
      },
      {"dtype", "not one of"});
}

TEST(Embedding, Types) {
  AttrMap a = {{"input_dim", "10"}, {"output_dim", "4"}};
  // Indices of any numeric type; output and weight of the dtype attribute.
  auto t = InferOpTypes("Embedding", a, {DType::kInt32});
  EXPECT_EQ(t[0], DType::kFloat32);
  a["dtype"] = "float16";
  t = InferOpTypes("Embedding", a, {DType::kInt64});
  EXPECT_EQ(t[0], DType::kFloat16);
  ExpectUserError(
      [] {
        InferOpTypes("Embedding", {{"input_dim", "10"}, {"output_dim", "4"}},
                     {DType::kFloat32, DType::kFloat64});
      },
      {"Embedding \"n\": weight has dtype float64 but dtype float32 was expected"});
  ExpectUserError(
      [] {
        InferOpTypes("Embedding", {{"input_dim", "10"}, {"output_dim", "4"}}, {DType::kBool});
      },
      {"Embedding \"n\"", "bool"});
}

TEST(Embedding, LooksUpRowsAndClipsOutOfRangeIndices) {
  Tensor w = F32({4, 2}, {0, 1, 10, 11, 20, 21, 30, 31});
  // 1 -> row 1; 3 -> 3; -1 -> clipped to 0; 7 -> clipped to 3; 2.7 -> truncated to 2.
  auto out = RunOp("Embedding", {{"input_dim", "4"}, {"output_dim", "2"}},
                   {F32({5}, {1, 3, -1, 7, 2.7}), w});
  ExpectTensorNear(out[0], {5, 2}, {10, 11, 30, 31, 0, 1, 30, 31, 20, 21});
  out = RunOp("Embedding", {{"input_dim", "4"}, {"output_dim", "2"}},
              {Tensor::FromVector<int32_t>({2, 1}, {2, 0}), w});
  ExpectTensorNear(out[0], {2, 1, 2}, {20, 21, 0, 1});
  out = RunOp("Embedding", {{"input_dim", "4"}, {"output_dim", "2"}, {"dtype", "float64"}},
              {Tensor::FromVector<int64_t>({1}, {3}), w.CastTo(DType::kFloat64)});
  EXPECT_EQ(out[0].dtype(), DType::kFloat64);
  ExpectTensorNear(out[0], {1, 2}, {30, 31});
}

// ----- LeakyReLU -----

TEST(LeakyReLU, ElementwiseVariantsByHand) {
  auto run = [](AttrMap a, std::vector<double> x) {
    return RunOp("LeakyReLU", a, {F32({int64_t(x.size())}, x)})[0];
  };
  ExpectTensorNear(run({}, {-4, -1, 0, 2}), {4}, {-1, -0.25, 0, 2});
  ExpectTensorNear(run({{"slope", "0.1"}}, {-4, 3}), {2}, {-0.4, 3});
  ExpectTensorNear(run({{"act_type", "elu"}, {"slope", "1"}}, {-1, 1}), {2}, {std::exp(-1) - 1, 1});
  const double alpha = 1.6732632423543772, lambda = 1.0507009873554805;
  ExpectTensorNear(run({{"act_type", "selu"}}, {-1, 2}), {2},
                   {lambda * alpha * (std::exp(-1) - 1), lambda * 2});
  // gelu(x) = x Phi(x); Phi(1) = 0.8413447460685429.
  ExpectTensorNear(run({{"act_type", "gelu"}}, {0, 1, -1}), {3},
                   {0, 0.8413447460685429, -(1 - 0.8413447460685429)});
  // rrelu in inference: slope (lower + upper) / 2.
  ExpectTensorNear(
      run({{"act_type", "rrelu"}, {"lower_bound", "0.1"}, {"upper_bound", "0.3"}}, {-10, 5}), {2},
      {-2, 5});
}

TEST(LeakyReLU, PReluBroadcastsGammaOverChannels) {
  auto ins = InferOpInputShapes("LeakyReLU", {{"act_type", "prelu"}}, {Shape{2, 3, 4, 4}});
  ASSERT_EQ(ins.size(), 2u);
  EXPECT_EQ(S(ins[1]), "(3)");
  // One value for every channel is accepted too.
  EXPECT_EQ(S(InferOpShapes("LeakyReLU", {{"act_type", "prelu"}}, {Shape{2, 3}, Shape{1}})[0]),
            "(2, 3)");
  ExpectUserError(
      [] {
        test::InferOneOp("LeakyReLU", {{"act_type", "prelu"}}, {Shape{2, 3, 5}, Shape{4}}, "act1");
      },
      {"LeakyReLU \"act1\": gamma (4) has 4 values but data (2, 3, 5) has 3 channels on axis 1"});
  // data (2, 3, 2): channel c scales negatives by gamma[c].
  auto out = RunOp(
      "LeakyReLU", {{"act_type", "prelu"}},
      {F32({2, 3, 2}, {-1, 1, -1, 1, -1, 1, -2, 2, -2, 2, -2, 2}), F32({3}, {0.1, 0.2, 0.3})});
  ExpectTensorNear(out[0], {2, 3, 2}, {-0.1, 1, -0.2, 1, -0.3, 1, -0.2, 2, -0.4, 2, -0.6, 2});
  out =
      RunOp("LeakyReLU", {{"act_type", "prelu"}}, {F32({2, 2}, {-1, -2, 3, -4}), F32({1}, {0.5})});
  ExpectTensorNear(out[0], {2, 2}, {-0.5, -1, 3, -2});
}

TEST(LeakyReLU, RReluTrainingDrawsSlopesWithinBounds) {
  std::vector<double> x(1000, -1.0);
  AttrMap a = {{"act_type", "rrelu"}, {"lower_bound", "0.2"}, {"upper_bound", "0.4"}};
  auto out = RunOp("LeakyReLU", a, {F32({1000}, x)}, true, 3);
  ASSERT_EQ(out.size(), 2u);  // output and mask
  auto y = out[0].ToDoubles(), m = out[1].ToDoubles();
  double sum = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_GE(m[i], 0.2 - 1e-6);
    EXPECT_LE(m[i], 0.4 + 1e-6);
    EXPECT_NEAR(y[i], -m[i], 1e-6);
    sum += m[i];
  }
  EXPECT_NEAR(sum / 1000, 0.3, 0.01);  // uniform mean; sd of the mean ~ 0.0018
  EXPECT_EQ(RunOp("LeakyReLU", a, {F32({1000}, x)}, true, 3)[1].ToDoubles(), m);
  const OpDef& op = OpRegistry::Global().Get("LeakyReLU");
  EXPECT_EQ(op.NumVisibleOutputs(op.attrs.parse(a)), 1);
}

TEST(LeakyReLU, TypesAndAttributes) {
  EXPECT_EQ(InferOpTypes("LeakyReLU", {}, {DType::kFloat16})[0], DType::kFloat16);
  ExpectUserError([] { InferOpTypes("LeakyReLU", {}, {DType::kInt32}); },
                  {"LeakyReLU \"n\"", "int32", "floating-point"});
  const OpDef& op = OpRegistry::Global().Get("LeakyReLU");
  ExpectUserError(
      [&] {
        op.attrs.parse({{"act_type", "swish"}});
      },
      {"act_type", "\"swish\" is not one of: leaky, elu, prelu, selu, gelu, rrelu"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"act_type", "rrelu"}, {"lower_bound", "0.5"}, {"upper_bound", "0.2"}});
      },
      {"lower_bound 0.5 is above upper_bound 0.2"});
  auto out = RunOp("LeakyReLU", {}, {F32({3}, {-8, 0.5, 3}).CastTo(DType::kFloat16)});
  EXPECT_EQ(out[0].dtype(), DType::kFloat16);
  ExpectTensorNear(out[0], {3}, {-2, 0.5, 3});
}

// ----- softmax, log_softmax -----

TEST(Softmax, HandValuesRowsSumToOneAndShiftInvariance) {
  // softmax([0, ln 2, ln 3]) = [1, 2, 3] / 6.
  auto out = RunOp("softmax", {}, {F32({1, 3}, {0, std::log(2.0), std::log(3.0)})});
  ExpectTensorNear(out[0], {1, 3}, {1 / 6.0, 2 / 6.0, 3 / 6.0});
  out = RunOp("log_softmax", {}, {F32({1, 3}, {0, std::log(2.0), std::log(3.0)})});
  ExpectTensorNear(out[0], {1, 3}, {std::log(1 / 6.0), std::log(2 / 6.0), std::log(3 / 6.0)});
  // Random float64 rows: sums of 1, invariance to adding a constant, log_softmax = log(softmax).
  std::vector<double> x = test::RandomValues(4 * 7, 1, -5, 5), shifted = x;
  for (double& v : shifted) v += 100;
  auto F64 = [](std::vector<double> v) { return Tensor::FromValues({4, 7}, DType::kFloat64, v); };
  auto p = RunOp("softmax", {}, {F64(x)})[0].ToDoubles();
  auto q = RunOp("softmax", {}, {F64(shifted)})[0].ToDoubles();
  auto lp = RunOp("log_softmax", {}, {F64(x)})[0].ToDoubles();
  for (int r = 0; r < 4; ++r) {
    double s = 0;
    for (int j = 0; j < 7; ++j) {
      size_t k = size_t(r * 7 + j);
      s += p[k];
      EXPECT_GT(p[k], 0);
      EXPECT_NEAR(p[k], q[k], 1e-14);
      EXPECT_NEAR(lp[k], std::log(p[k]), 1e-12);
    }
    EXPECT_NEAR(s, 1, 1e-14);
  }
  // Stable: huge logits do not overflow.
  out = RunOp("softmax", {}, {F32({2}, {1000, 1000})});
  ExpectTensorNear(out[0], {2}, {0.5, 0.5});
  out = RunOp("log_softmax", {}, {F32({2}, {-1000, 0})});
  ExpectTensorNear(out[0], {2}, {-1000, 0});
}

TEST(Softmax, AxisTemperatureDtypeAndLength) {
  // axis 0 of (2, 2): columns [0, ln 3] -> [1/4, 3/4].
  auto out = RunOp("softmax", {{"axis", "0"}}, {F32({2, 2}, {0, std::log(3.0), std::log(3.0), 0})});
  ExpectTensorNear(out[0], {2, 2}, {0.25, 0.75, 0.75, 0.25});
  // temperature 2 on [0, 2 ln 3] is softmax([0, ln 3]).
  out = RunOp("softmax", {{"temperature", "2"}}, {F32({2}, {0, 2 * std::log(3.0)})});
  ExpectTensorNear(out[0], {2}, {0.25, 0.75});
  out = RunOp("softmax", {{"dtype", "float64"}}, {F32({2}, {0, 0})});
  EXPECT_EQ(out[0].dtype(), DType::kFloat64);
  ExpectTensorNear(out[0], {2}, {0.5, 0.5});
  EXPECT_EQ(InferOpTypes("softmax", {{"dtype", "float16"}}, {DType::kFloat32})[0], DType::kFloat16);
  EXPECT_EQ(InferOpTypes("log_softmax", {}, {DType::kFloat16})[0], DType::kFloat16);
  ExpectUserError([] { InferOpTypes("softmax", {}, {DType::kInt32}); },
                  {"softmax \"n\"", "int32", "floating-point"});
  // use_length: row 0 uses 2 elements, row 1 all 3; the rest are 0.
  auto ins = InferOpInputShapes("softmax", {{"use_length", "True"}}, {Shape{2, 3}});
  ASSERT_EQ(ins.size(), 2u);
  EXPECT_EQ(S(ins[1]), "(2)");
  out = RunOp("softmax", {{"use_length", "True"}},
              {F32({2, 3}, {0, 0, 5, 0, std::log(2.0), std::log(5.0)}),
               Tensor::FromVector<int32_t>({2}, {2, 3})});
  ExpectTensorNear(out[0], {2, 3}, {0.5, 0.5, 0, 1 / 8.0, 2 / 8.0, 5 / 8.0});
  ExpectUserError(
      [] {
        test::InferOneOp("softmax", {{"axis", "2"}}, {Shape{4, 5}}, "sm");
      },
      {"softmax \"sm\": axis = 2 is out of range for rank 2"});
  const OpDef& op = OpRegistry::Global().Get("softmax");
  ExpectUserError([&] { op.attrs.parse({{"dtype", "int32"}}); }, {"dtype", "not one of"});
  ExpectUserError([&] { op.attrs.parse({{"temperature", "0"}}); }, {"temperature must not be 0"});
}

TEST(Softmax, Float16) {
  auto out =
      RunOp("softmax", {}, {F32({3}, {0, std::log(2.0), std::log(3.0)}).CastTo(DType::kFloat16)});
  EXPECT_EQ(out[0].dtype(), DType::kFloat16);
  ExpectTensorNear(out[0], {3}, {1 / 6.0, 2 / 6.0, 3 / 6.0}, 2e-3);
}

// ----- SoftmaxOutput -----

TEST(SoftmaxOutput, LabelShapesBothWays) {
  auto ins = InferOpInputShapes("SoftmaxOutput", {}, {Shape{4, 10}});
  EXPECT_EQ(S(ins[1]), "(4)");
  ins = InferOpInputShapes("SoftmaxOutput", {}, {Shape(), Shape{8}});
  EXPECT_EQ(S(ins[0]), "(8, ?)");
  AttrMap multi = {{"multi_output", "True"}};
  ins = InferOpInputShapes("SoftmaxOutput", multi, {Shape{2, 3, 4, 5}});
  EXPECT_EQ(S(ins[1]), "(2, 4, 5)");
  // The other two label forms MXNet accepts.
  EXPECT_EQ(S(InferOpShapes("SoftmaxOutput", multi, {Shape{2, 3, 4, 5}, Shape{2, 20}})[0]),
            "(2, 3, 4, 5)");
  EXPECT_EQ(S(InferOpShapes("SoftmaxOutput", multi, {Shape{2, 3, 4, 5}, Shape{2, 1, 4, 5}})[0]),
            "(2, 3, 4, 5)");
  ExpectUserError(
      [&] {
        test::InferOneOp("SoftmaxOutput", multi, {Shape{2, 3, 4, 5}, Shape{2, 7}}, "sm1");
      },
      {"SoftmaxOutput \"sm1\": label (2, 7) does not fit data (2, 3, 4, 5)",
       "(2, 4, 5), (2, 20) or (2, 1, 4, 5)"});
  ExpectUserError(
      [] {
        test::InferOneOp("SoftmaxOutput", {}, {Shape{4, 10}, Shape{5}}, "sm2");
      },
      {"SoftmaxOutput \"sm2\": label (5) does not fit data (4, 10)"});
  EXPECT_EQ(InferOpTypes("SoftmaxOutput", {}, {DType::kFloat32, DType::kInt32})[0],
            DType::kFloat32);
  ExpectUserError([] { InferOpTypes("SoftmaxOutput", {}, {DType::kInt32}); },
                  {"SoftmaxOutput \"n\"", "int32"});
  const OpDef& op = OpRegistry::Global().Get("SoftmaxOutput");
  ExpectUserError(
      [&] {
        op.attrs.parse({{"normalization", "mean"}});
      },
      {"normalization", "\"mean\" is not one of: null, batch, valid"});
}

TEST(SoftmaxOutput, ForwardIsSoftmaxOverTheRightAxes) {
  std::vector<double> x = {0, std::log(2.0), std::log(3.0)};
  auto out = RunOp("Softmax", {}, {F32({1, 3}, x), F32({1}, {2})});
  ExpectTensorNear(out[0], {1, 3}, {1 / 6.0, 2 / 6.0, 3 / 6.0});
  // (1, 2, 2) without preserve_shape: one softmax over all 4 trailing elements.
  std::vector<double> y = {0, std::log(2.0), std::log(3.0), std::log(4.0)};
  out = RunOp("SoftmaxOutput", {}, {F32({1, 2, 2}, y), F32({1, 2}, {0, 0})});
  ExpectTensorNear(out[0], {1, 2, 2}, {0.1, 0.2, 0.3, 0.4});
  // preserve_shape: over the last axis.
  out = RunOp("SoftmaxOutput", {{"preserve_shape", "True"}},
              {F32({1, 2, 2}, y), F32({1, 2}, {0, 0})});
  ExpectTensorNear(out[0], {1, 2, 2}, {1 / 3.0, 2 / 3.0, 3 / 7.0, 4 / 7.0});
  // multi_output: over axis 1 of (1, 2, 2), i.e. pairs (y0, y2) and (y1, y3).
  out =
      RunOp("SoftmaxOutput", {{"multi_output", "True"}}, {F32({1, 2, 2}, y), F32({1, 2}, {0, 0})});
  ExpectTensorNear(out[0], {1, 2, 2}, {1 / 4.0, 2 / 6.0, 3 / 4.0, 4 / 6.0});
}

// ----- LinearRegressionOutput, MakeLoss -----

TEST(LinearRegressionOutput, LabelShapeAndIdentityForward) {
  EXPECT_EQ(S(InferOpInputShapes("LinearRegressionOutput", {}, {Shape{5, 3}})[1]), "(5, 3)");
  EXPECT_EQ(S(InferOpInputShapes("LinearRegressionOutput", {}, {Shape{5, 1}})[1]), "(5)");
  EXPECT_EQ(S(InferOpInputShapes("LinearRegressionOutput", {}, {Shape(), Shape{4, 2}})[0]),
            "(4, 2)");
  ExpectUserError(
      [] {
        test::InferOneOp("LinearRegressionOutput", {}, {Shape{2, 3}, Shape{3, 2, 1}}, "lr");
      },
      {"LinearRegressionOutput \"lr\": label (3, 2, 1) does not fit data (2, 3)"});
  auto out = RunOp("LinearRegressionOutput", {{"grad_scale", "2"}},
                   {F32({2, 1}, {1.5, -2}), F32({2}, {0, 0})});
  ExpectTensorNear(out[0], {2, 1}, {1.5, -2});
}

TEST(MakeLoss, IdentityForward) {
  EXPECT_EQ(S(InferOpShapes("MakeLoss", {}, {Shape{3, 4}})[0]), "(3, 4)");
  auto out = RunOp("MakeLoss", {{"normalization", "batch"}, {"valid_thresh", "0.1"}},
                   {F32({3}, {1, -2, 3})});
  ExpectTensorNear(out[0], {3}, {1, -2, 3});
  ExpectUserError([] { InferOpTypes("MakeLoss", {}, {DType::kInt32}); },
                  {"MakeLoss \"n\"", "int32"});
}

}  // namespace
}  // namespace kiln
