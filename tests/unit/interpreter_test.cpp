// interpreter_test.cpp - whole graphs on the reference interpreter, checked against loops
// written here independently of the op kernels.
#include <cmath>
#include <random>

#include "kiln/frontend/models.h"
#include "kiln/frontend/ops.h"
#include "kiln/frontend/symbol.h"
#include "test_util.h"

namespace kiln {
namespace {

// y = x W^T + b for row-major x (rows, k), W (m, k).
std::vector<double> Dense(const std::vector<double>& x, const std::vector<double>& w,
                          const std::vector<double>& b, int64_t rows, int64_t k, int64_t m) {
  std::vector<double> y(size_t(rows * m));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < m; ++j) {
      double acc = b[size_t(j)];
      for (int64_t i = 0; i < k; ++i) acc += x[size_t(r * k + i)] * w[size_t(j * k + i)];
      y[size_t(r * m + j)] = acc;
    }
  return y;
}

// The seed MLP, scaled down to 20-16-8-10.
Symbol SeedMlp() {
  return models::Mlp({16, 8}, 10);
}

// The seed MLP (scaled down) against an independent forward pass: dense, relu, dense, relu,
// dense, softmax, computed in double. Tolerance: float32 rounding over sums of 20 terms, 1e-5.
TEST(Interpreter, SeedMlpMatchesIndependentForwardPass) {
  const int64_t batch = 5, in = 20;
  Graph g = SeedMlp().ToGraph();
  uint32_t seed = 7;
  std::map<std::string, std::vector<double>> v;
  std::map<std::string, Tensor> feeds;
  auto shapes = SeedMlp().InferShape({{"data", {batch, in}}});
  for (const auto& [name, shape] : shapes.arguments) {
    v[name] = test::RandomValues(size_t(shape.NumElements()), seed++, -0.5, 0.5);
    if (name == "softmax_label")
      for (auto& l : v[name]) l = std::floor((l + 0.5) * 9.99);
    feeds[name] = test::F32(shape.dims(), v[name]);
    v[name] = feeds[name].ToDoubles();  // the float32-rounded inputs
  }
  std::vector<Tensor> out = Interpret(g, feeds);
  ASSERT_EQ(out.size(), 1u);

  auto relu = [](std::vector<double> x) {
    for (auto& e : x) e = std::max(e, 0.0);
    return x;
  };
  auto h1 = relu(Dense(v["data"], v["fc1_weight"], v["fc1_bias"], batch, in, 16));
  auto h2 = relu(Dense(h1, v["fc2_weight"], v["fc2_bias"], batch, 16, 8));
  auto logits = Dense(h2, v["fc3_weight"], v["fc3_bias"], batch, 8, 10);
  std::vector<double> probs(logits.size());
  for (int64_t r = 0; r < batch; ++r) {
    double mx = -1e300, sum = 0;
    for (int j = 0; j < 10; ++j) mx = std::max(mx, logits[size_t(r * 10 + j)]);
    for (int j = 0; j < 10; ++j) sum += std::exp(logits[size_t(r * 10 + j)] - mx);
    for (int j = 0; j < 10; ++j)
      probs[size_t(r * 10 + j)] = std::exp(logits[size_t(r * 10 + j)] - mx) / sum;
  }
  test::ExpectTensorNear(out[0], {batch, 10}, probs, 1e-5);
}

// The same graph in float64 (dtypes flow from the data) agrees with float32 to float32 precision.
TEST(Interpreter, Float64GraphAgreesWithFloat32) {
  Graph g = SeedMlp().ToGraph();
  auto shapes = SeedMlp().InferShape({{"data", {3, 20}}});
  uint32_t seed = 11;
  std::map<std::string, Tensor> f32, f64;
  for (const auto& [name, shape] : shapes.arguments) {
    Tensor t = test::F32(shape.dims(), test::RandomValues(size_t(shape.NumElements()), seed++));
    f32[name] = t;
    f64[name] = t.CastTo(DType::kFloat64);
  }
  Tensor a = Interpret(g, f32)[0], b = Interpret(g, f64)[0];
  EXPECT_EQ(b.dtype(), DType::kFloat64);
  test::ExpectTensorNear(a, b.shape(), b.ToDoubles(), 1e-6);
}

// BatchNorm in training updates the caller's moving statistics in place; in inference it
// leaves them alone. moving_mean' = 0.9 * moving_mean + 0.1 * batch mean.
TEST(Interpreter, BatchNormTrainingUpdatesAuxiliaryStatesInPlace) {
  Symbol bn = BatchNorm(Symbol::Variable("x"), "bn");
  EXPECT_EQ(bn.ListAuxiliaryStates(),
            (std::vector<std::string>{"bn_moving_mean", "bn_moving_var"}));
  Graph g = bn.ToGraph();
  std::map<std::string, Tensor> feeds = {
      {"x", test::F32({2, 2}, {1, 10, 3, 20})},  {"bn_gamma", test::F32({2}, {1, 1})},
      {"bn_beta", test::F32({2}, {0, 0})},       {"bn_moving_mean", test::F32({2}, {0, 0})},
      {"bn_moving_var", test::F32({2}, {1, 1})},
  };
  Interpret(g, feeds);  // inference
  test::ExpectTensorNear(feeds["bn_moving_mean"], {2}, {0, 0});
  InterpretOptions train;
  train.is_train = true;
  Tensor y = Interpret(g, feeds, train)[0];
  // Batch means (2, 15), biased variances (1, 25).
  test::ExpectTensorNear(feeds["bn_moving_mean"], {2}, {0.2, 1.5}, 1e-6);
  test::ExpectTensorNear(feeds["bn_moving_var"], {2}, {0.9 + 0.1 * 1, 0.9 + 0.1 * 25}, 1e-6);
  const double e = 1e-3;  // MXNet's default eps
  test::ExpectTensorNear(
      y, {2, 2},
      {-1 / std::sqrt(1 + e), -5 / std::sqrt(25 + e), 1 / std::sqrt(1 + e), 5 / std::sqrt(25 + e)},
      1e-5);
}

TEST(Interpreter, RandomOpsAreDeterministicForASeed) {
  Graph g = Dropout(Symbol::Variable("x"), 0.5, "drop").ToGraph();
  std::map<std::string, Tensor> feeds = {{"x", test::F32({64}, std::vector<double>(64, 1.0))}};
  InterpretOptions a, b;
  a.is_train = b.is_train = true;
  a.seed = b.seed = 3;
  EXPECT_EQ(Interpret(g, feeds, a)[0].ToDoubles(), Interpret(g, feeds, b)[0].ToDoubles());
  b.seed = 4;
  EXPECT_NE(Interpret(g, feeds, a)[0].ToDoubles(), Interpret(g, feeds, b)[0].ToDoubles());
}

TEST(Interpreter, WrongInputShapeNamesTheNode) {
  Graph g = SeedMlp().ToGraph();
  auto shapes = SeedMlp().InferShape({{"data", {2, 20}}});
  std::map<std::string, Tensor> feeds;
  for (const auto& [name, shape] : shapes.arguments)
    feeds[name] = Tensor::Zeros(shape.dims(), DType::kFloat32);
  feeds["fc2_weight"] = Tensor::Zeros({8, 15}, DType::kFloat32);
  test::ExpectUserError([&] { Interpret(g, feeds); },
                        {"FullyConnected \"fc2\"", "(2, 16) has 16 features", "expects 15"});
}

}  // namespace
}  // namespace kiln
