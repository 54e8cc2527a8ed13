// initializer_test.cpp - MXNet's initializers: Xavier's bound and spread, uniform and normal
// statistics, the naming rule, and reproducibility.
#include "kiln/frontend/initializer.h"

#include <algorithm>
#include <cmath>

#include "kiln/frontend/executor.h"
#include "kiln/frontend/models.h"
#include "test_util.h"

namespace kiln {
namespace {

struct Stats {
  double mean = 0, var = 0, min = 1e300, max = -1e300;
};
Stats StatsOf(const Tensor& t) {
  Stats s;
  std::vector<double> v = t.ToDoubles();
  for (double x : v) {
    s.mean += x;
    s.min = std::min(s.min, x);
    s.max = std::max(s.max, x);
  }
  s.mean /= double(v.size());
  for (double x : v) s.var += (x - s.mean) * (x - s.mean);
  s.var /= double(v.size());
  return s;
}

Tensor Empty(std::vector<int64_t> shape) {
  return Tensor::Empty(std::move(shape), DType::kFloat32);
}

// Xavier uniform avg on a 64x32x3x3 convolution weight: fan_in = 32*9, fan_out = 64*9, bound
// sqrt(3 / ((288 + 576) / 2)). 18432 draws: the extremes come within 1% of the bound, the
// mean within 4 standard errors of 0, the variance (bound^2 / 3) within 3%.
TEST(Initializer, XavierUniformAvgBound) {
  Tensor w = Empty({64, 32, 3, 3});
  Initializer::Xavier().Init("conv_weight", w);
  const double bound = std::sqrt(3.0 / ((288.0 + 576.0) / 2));
  EXPECT_NEAR(Initializer::XavierScale({64, 32, 3, 3}, XavierFactor::kAvg, 3), bound, 1e-12);
  Stats s = StatsOf(w);
  EXPECT_GE(s.min, -bound);
  EXPECT_LE(s.max, bound);
  EXPECT_GT(s.max, 0.99 * bound);
  EXPECT_LT(s.min, -0.99 * bound);
  const double var = bound * bound / 3;
  EXPECT_NEAR(s.mean, 0, 4 * std::sqrt(var / 18432));
  EXPECT_NEAR(s.var, var, 0.03 * var);
}

// Gaussian, factor in, magnitude 2 (He's initialization): standard deviation sqrt(2 / fan_in).
TEST(Initializer, XavierGaussianInIsHe) {
  Tensor w = Empty({256, 100});
  Initializer::Xavier(XavierRnd::kGaussian, XavierFactor::kIn, 2).Init("fc_weight", w);
  Stats s = StatsOf(w);
  EXPECT_NEAR(std::sqrt(s.var), std::sqrt(2.0 / 100), 0.02 * std::sqrt(2.0 / 100));
  EXPECT_NEAR(s.mean, 0, 4 * std::sqrt(0.02 / 25600));
  EXPECT_NEAR(Initializer::XavierScale({256, 100}, XavierFactor::kOut, 3), std::sqrt(3.0 / 256),
              1e-12);
  test::ExpectUserError([] { Initializer::Xavier().Init("v_weight", Empty({5})); },
                        {"Xavier", "(5)", "2 dimensions"});
}

TEST(Initializer, UniformAndNormalStatistics) {
  Tensor u = Empty({20000}), n = Empty({20000});
  Initializer::Uniform(0.1).Fill(u, "u");
  Initializer::Normal(0.5).Fill(n, "n");
  Stats su = StatsOf(u), sn = StatsOf(n);
  EXPECT_GE(su.min, -0.1);
  EXPECT_LE(su.max, 0.1);
  EXPECT_NEAR(su.var, 0.01 / 3, 0.03 * 0.01 / 3);
  EXPECT_NEAR(sn.mean, 0, 4 * 0.5 / std::sqrt(20000.0));
  EXPECT_NEAR(std::sqrt(sn.var), 0.5, 0.02 * 0.5);
}

// MXNet's naming rule: the chosen initializer for weights only; zeros and ones by suffix.
TEST(Initializer, DefaultRuleByName) {
  Initializer init = Initializer::Uniform(1);
  auto filled = [&](const std::string& name) {
    Tensor t = Tensor::FromValues({4}, DType::kFloat32, {5, 5, 5, 5});
    init.Init(name, t);
    return t.ToDoubles();
  };
  std::vector<double> zeros(4, 0.0), ones(4, 1.0);
  EXPECT_EQ(filled("fc1_bias"), zeros);
  EXPECT_EQ(filled("bn_beta"), zeros);
  EXPECT_EQ(filled("bn_moving_mean"), zeros);
  EXPECT_EQ(filled("bn_gamma"), ones);
  EXPECT_EQ(filled("bn_moving_var"), ones);
  std::vector<double> w = filled("fc1_weight");
  EXPECT_NE(w, zeros);
  for (double x : w) EXPECT_LE(std::fabs(x), 1.0);
  test::ExpectUserError([&] { filled("data"); }, {"\"data\"", "weight"});
  // Zeros / Ones / Constant as the weight's rule.
  Tensor t = Empty({3});
  Initializer::Constant(0.25).Init("w_weight", t);
  test::ExpectTensorNear(t, {3}, {0.25, 0.25, 0.25});
  Initializer::Ones().Fill(t);
  test::ExpectTensorNear(t, {3}, {1, 1, 1});
}

// A parameter's values depend on the seed and its name only, not on what else was initialized.
TEST(Initializer, ReproducibleBySeedAndName) {
  auto draw = [](uint64_t seed, const std::string& name) {
    Tensor t = Empty({8, 8});
    Initializer::Xavier().Seed(seed).Init(name, t);
    return t.ToDoubles();
  };
  EXPECT_EQ(draw(1, "fc1_weight"), draw(1, "fc1_weight"));
  EXPECT_NE(draw(1, "fc1_weight"), draw(2, "fc1_weight"));
  EXPECT_NE(draw(1, "fc1_weight"), draw(1, "fc2_weight"));
  // Unnamed fills advance a stream: two calls differ, a re-seeded initializer repeats them.
  Initializer a = Initializer::Normal(), b = Initializer::Normal();
  Tensor a1 = Empty({16}), a2 = Empty({16}), b1 = Empty({16});
  a.Fill(a1);
  a.Fill(a2);
  b.Fill(b1);
  EXPECT_NE(a1.ToDoubles(), a2.ToDoubles());
  EXPECT_EQ(a1.ToDoubles(), b1.ToDoubles());
}

// InitParams fills the parameters and auxiliary states of an executor, leaving the inputs.
TEST(Initializer, InitParamsSkipsInputs) {
  Symbol net = models::ResNetBlockNet(4, 3);
  Executor e = net.SimpleBind(Device::CPU(), {{"data", {2, 1, 8, 8}}}, GradReq::kNull);
  e.arg_dict().at("data").data<float>()[0] = 3;
  InitParams(e, Initializer::Xavier(), {"data", "softmax_label"});
  EXPECT_EQ(e.arg_dict().at("data").At(0), 3);
  for (const auto& [name, t] : e.aux_dict()) {
    double expect = name.ends_with("moving_var") ? 1 : 0;
    for (double x : t.ToDoubles()) EXPECT_EQ(x, expect) << name;
  }
  for (const auto& [name, t] : e.arg_dict()) {
    if (!name.ends_with("_weight")) continue;
    Stats s = StatsOf(t);
    double bound = Initializer::XavierScale(t.shape(), XavierFactor::kAvg, 3);
    EXPECT_LE(std::max(-s.min, s.max), bound) << name;
    EXPECT_GT(s.max - s.min, 0) << name;
  }
  test::ExpectUserError([&] { InitParams(e, Initializer::Zeros(), {"data"}); }, {"softmax_label"});
  test::ExpectUserError([&] { InitParams(e, Initializer::Zeros(), {"dat"}); }, {"\"dat\""});
}

}  // namespace
}  // namespace kiln
