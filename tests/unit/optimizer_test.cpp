// optimizer_test.cpp - SGD and Adam against steps computed by hand, learning-rate schedules at
// chosen steps, elementwise and global-norm clipping.
#include "kiln/frontend/optimizer.h"

#include <cmath>

#include "kiln/frontend/executor.h"
#include "kiln/frontend/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::ExpectTensorNear;
using test::F32;

// Two steps of sgd_mom_update with lr 0.1, momentum 0.9, wd 0.01, rescale_grad 0.5:
//   step 1: g = (0.25, 0.5); mom = -0.001 w - 0.1 g = (-0.026, -0.048); w = (0.974, -2.048)
//   step 2: g = (-0.5, 1); mom = 0.9 mom - 0.001 w - 0.1 g = (0.025626, -0.141152);
//           w = (0.999626, -2.189152)
TEST(Optimizer, SgdMomentumAndWeightDecayTwoSteps) {
  SGD sgd({.learning_rate = 0.1, .momentum = 0.9, .wd = 0.01, .rescale_grad = 0.5});
  Tensor w = F32({2}, {1, -2});
  sgd.Update(0, w, F32({2}, {0.5, 1}));
  ExpectTensorNear(w, {2}, {0.974, -2.048}, 1e-6);
  sgd.Update(0, w, F32({2}, {-1, 2}));
  ExpectTensorNear(w, {2}, {0.999626, -2.189152}, 1e-6);
  EXPECT_EQ(sgd.num_update(), 2);
}

// Without momentum (sgd_update): w = w - lr wd w - lr g. MXNet's Module decays only *_weight
// and *_gamma: a bias named as such gets no weight decay.
TEST(Optimizer, SgdWithoutMomentumAndWdMultByName) {
  SGD sgd({.learning_rate = 0.1, .wd = 0.5});
  Tensor w = F32({1}, {2}), b = F32({1}, {2});
  sgd.Update(0, w, F32({1}, {1}), "fc_weight");
  sgd.Update(1, b, F32({1}, {1}), "fc_bias");
  ExpectTensorNear(w, {1}, {2 - 0.1 * 0.5 * 2 - 0.1}, 1e-6);
  ExpectTensorNear(b, {1}, {2 - 0.1}, 1e-6);
}

// A float32 weight large enough to be updated in chunks over the process's thread pool
// (300001 elements: chunks of 64 Ki and a short last one; KILN_NUM_THREADS or the machine's
// cores): every element is the double-precision formula's value on the float inputs within one
// float rounding of the result plus the rounding of the two coefficients the float32 path
// uses: 2e-7 of |w| + |lr rescale g| bounds both.
TEST(Optimizer, SgdFloat32LargeWeightInChunks) {
  const int64_t n = 300001;
  std::vector<double> w0(static_cast<size_t>(n)), g(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) w0[size_t(i)] = std::sin(0.001 * double(i));
  for (int64_t i = 0; i < n; ++i) g[size_t(i)] = std::cos(0.003 * double(i));
  SGD sgd({.learning_rate = 0.1, .wd = 0.01, .rescale_grad = 0.5});
  Tensor w = Tensor::FromValues({n}, DType::kFloat32, w0);
  sgd.Update(0, w, Tensor::FromValues({n}, DType::kFloat32, g), "fc_weight");
  const float* got = w.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    double wf = double(float(w0[size_t(i)])), gf = double(float(g[size_t(i)]));
    double want = wf - 0.1 * 0.01 * wf - 0.1 * 0.5 * gf;
    ASSERT_NEAR(got[i], want, 2e-7 * (std::abs(wf) + 0.05 * std::abs(gf)))
        << "element " << i << " of " << n;
  }
}

// clip_gradient clips rescale_grad * grad elementwise; SGD's weight decay is not clipped.
TEST(Optimizer, SgdClipGradient) {
  SGD sgd({.learning_rate = 1, .clip_gradient = 0.3});
  Tensor w = F32({3}, {0, 0, 0});
  sgd.Update(0, w, F32({3}, {0.5, -1, 0.1}));
  ExpectTensorNear(w, {3}, {-0.3, 0.3, -0.1}, 1e-6);
  SGD decayed({.learning_rate = 0.1, .wd = 1, .clip_gradient = 0.3});
  Tensor v = F32({1}, {1});
  decayed.Update(0, v, F32({1}, {10}));
  ExpectTensorNear(v, {1}, {1 - 0.1 * 1 - 0.1 * 0.3}, 1e-6);
}

// Adam, lr 0.01 and MXNet's defaults, w = 1, gradients 0.5 then -0.2 (values from the update
// written out in double):
//   t=1: lr_t = 0.01 sqrt(1-0.999)/(1-0.9); m = 0.05; v = 0.00025;       w = 0.99000000632455
//   t=2: lr_t = 0.01 sqrt(1-0.999^2)/(1-0.81); m = 0.025; v = 0.00028975; w = 0.98654394987577
TEST(Optimizer, AdamTwoSteps) {
  Adam adam({.learning_rate = 0.01});
  Tensor w = Tensor::FromValues({1}, DType::kFloat64, {1});
  adam.Update(3, w, Tensor::FromValues({1}, DType::kFloat64, {0.5}));
  EXPECT_NEAR(w.At(0), 0.9900000063245513, 1e-12);
  adam.Update(3, w, Tensor::FromValues({1}, DType::kFloat64, {-0.2}));
  EXPECT_NEAR(w.At(0), 0.986543949875767, 1e-12);
}

// Adam clips rescale_grad * grad + wd * weight (MXNet's adam_update): rescale 2, wd 0.1,
// clip 0.6, w = (2, -1), gradients (0.5, -1) then (0.1, 0.2).
TEST(Optimizer, AdamWeightDecayAndClipping) {
  Adam adam({.learning_rate = 0.01, .wd = 0.1, .rescale_grad = 2, .clip_gradient = 0.6});
  Tensor w = Tensor::FromValues({2}, DType::kFloat64, {2, -1});
  adam.Update(0, w, Tensor::FromValues({2}, DType::kFloat64, {0.5, -1}));
  ExpectTensorNear(w, {2}, {1.99000000527046, -0.99000000527046}, 1e-12);
  adam.Update(0, w, Tensor::FromValues({2}, DType::kFloat64, {0.1, 0.2}));
  ExpectTensorNear(w, {2}, {1.980299350391629, -0.9873495042649284}, 1e-12);
}

TEST(LRSchedule, FactorDecaysAfterEachFullPeriod) {
  LRSchedule s = LRSchedule::Factor(1, 10, 0.5);
  EXPECT_DOUBLE_EQ(s(1), 1);
  EXPECT_DOUBLE_EQ(s(10), 1);  // MXNet decays once num_update exceeds count + step
  EXPECT_DOUBLE_EQ(s(11), 0.5);
  EXPECT_DOUBLE_EQ(s(20), 0.5);
  EXPECT_DOUBLE_EQ(s(21), 0.25);
  EXPECT_DOUBLE_EQ(LRSchedule::Factor(1, 1, 0.1, 1e-3)(5), 1e-3);  // floored at stop_factor_lr
  LRSchedule warm = LRSchedule::Factor(1, 10, 0.5, 1e-8, {.steps = 4, .begin_lr = 0.2});
  EXPECT_DOUBLE_EQ(warm(0), 0.2);
  EXPECT_DOUBLE_EQ(warm(2), 0.6);
  EXPECT_DOUBLE_EQ(warm(4), 1);
  test::ExpectUserError([] { LRSchedule::Factor(1, 0, 0.5); }, {"step"});
}

TEST(LRSchedule, CosineFromBaseToFinal) {
  LRSchedule s = LRSchedule::Cosine(1, 100, 0.1);
  EXPECT_DOUBLE_EQ(s(0), 1);
  EXPECT_NEAR(s(50), 0.55, 1e-12);
  EXPECT_NEAR(s(25), 0.1 + 0.9 * (1 + std::cos(M_PI / 4)) / 2, 1e-12);
  EXPECT_NEAR(s(100), 0.1, 1e-12);
  EXPECT_NEAR(s(150), 0.1, 1e-12);
  LRSchedule warm = LRSchedule::Cosine(1, 110, 0.1, {.steps = 10});
  EXPECT_DOUBLE_EQ(warm(5), 0.5);
  EXPECT_NEAR(warm(10), 1, 1e-12);
  EXPECT_NEAR(warm(60), 0.55, 1e-12);
  test::ExpectUserError([] { LRSchedule::Cosine(1, 10, 0, {.steps = 10}); }, {"max_update"});
}

// num_update is the largest per-parameter count: both parameters of the first pass update at
// num_update 1 (lr 1), both of the second at num_update 2 (lr 0.5).
TEST(Optimizer, ScheduleFollowsNumUpdate) {
  SGD sgd({.lr_schedule = LRSchedule::Factor(1, 1, 0.5)});
  Tensor a = F32({1}, {0}), b = F32({1}, {0});
  for (int pass = 0; pass < 2; ++pass) {
    sgd.Update(0, a, F32({1}, {1}));
    sgd.Update(1, b, F32({1}, {1}));
  }
  ExpectTensorNear(a, {1}, {-1.5}, 1e-6);
  ExpectTensorNear(b, {1}, {-1.5}, 1e-6);
  EXPECT_DOUBLE_EQ(sgd.LearningRate(3), 0.25);
}

TEST(Optimizer, ClipGlobalNorm) {
  Tensor a = F32({1}, {3}), b = F32({1}, {4});
  EXPECT_NEAR(ClipGlobalNorm({a, b, Tensor()}, 10), 5, 1e-9);
  ExpectTensorNear(a, {1}, {3});  // already within the bound
  EXPECT_NEAR(ClipGlobalNorm({a, b}, 1), 5, 1e-9);
  ExpectTensorNear(a, {1}, {0.6}, 1e-6);
  ExpectTensorNear(b, {1}, {0.8}, 1e-6);
}

TEST(Optimizer, MismatchedArraysAreUserErrors) {
  SGD sgd;
  test::ExpectUserError(
      [&] {
        sgd.Update(0, F32({2}, {1, 2}), F32({3}, {1, 2, 3}), "w_weight");
      },
      {"\"w_weight\"", "(2)", "(3)"});
  test::ExpectUserError(
      [&] { sgd.Update(0, Tensor::FromValues({1}, DType::kInt32, {1}), F32({1}, {1})); },
      {"int32"});
}

// Update(exec) touches the arguments with a gradient only (grad_req not null), by position.
TEST(Optimizer, UpdatesAnExecutorsParameters) {
  Symbol net = MakeLoss(FullyConnected(Symbol::Variable("x"), 1, "fc"), "loss");
  Executor e = net.SimpleBind(Device::CPU(), {{"x", {2, 2}}}, {{"fc_weight", GradReq::kWrite}});
  e.Forward(true, {{"x", F32({2, 2}, {1, 2, 3, 4})}});
  e.Backward();  // d weight = sum of x's rows = (4, 6)
  SGD sgd({.learning_rate = 0.1});
  sgd.Update(e);
  ExpectTensorNear(e.arg_dict().at("fc_weight"), {1, 2}, {-0.4, -0.6}, 1e-6);
  ExpectTensorNear(e.arg_dict().at("fc_bias"), {1}, {0});
  ExpectTensorNear(e.arg_dict().at("x"), {2, 2}, {1, 2, 3, 4});
}

}  // namespace
}  // namespace kiln
