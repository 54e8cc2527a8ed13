// executor_test.cpp - Symbol::Bind / SimpleBind and the Executor: grad_req, head gradients,
// shared arrays, BatchNorm's and Dropout's two modes, and the errors a caller can cause.
#include "kiln/frontend/executor.h"

#include <cmath>

#include "kiln/frontend/initializer.h"
#include "kiln/frontend/models.h"
#include "kiln/frontend/ops.h"
#include "kiln/frontend/optimizer.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::ExpectTensorNear;
using test::ExpectUserError;
using test::F32;

// fc = x W^T + b with x (2, 3), W (2, 3), b (2): small enough to differentiate by hand.
Symbol Dense() {
  return FullyConnected(Symbol::Variable("x"), 2, "fc");
}
const std::vector<double> kX = {1, 2, 3, -1, 0, 2};
const std::vector<double> kW = {0.5, -1, 2, 1, 1, -0.5};
const std::vector<double> kB = {0.1, -0.2};
const std::vector<double> kDy = {1, -2, 0.5, 3};

std::map<std::string, Tensor> DenseArgs() {
  return {{"x", F32({2, 3}, kX)}, {"fc_weight", F32({2, 3}, kW)}, {"fc_bias", F32({2}, kB)}};
}
std::map<std::string, Tensor> DenseGrads() {
  return {{"x", Tensor::Zeros({2, 3}, DType::kFloat32)},
          {"fc_weight", Tensor::Zeros({2, 3}, DType::kFloat32)},
          {"fc_bias", Tensor::Zeros({2}, DType::kFloat32)}};
}

// dW[j][i] = sum_r dy[r][j] x[r][i]; db[j] = sum_r dy[r][j]; dx[r][i] = sum_j dy[r][j] W[j][i].
std::vector<double> DenseDW(double times = 1) {
  std::vector<double> d(6, 0);
  for (int j = 0; j < 2; ++j)
    for (int i = 0; i < 3; ++i)
      for (int r = 0; r < 2; ++r)
        d[size_t(j * 3 + i)] += times * kDy[size_t(r * 2 + j)] * kX[size_t(r * 3 + i)];
  return d;
}
std::vector<double> DenseDB(double times = 1) {
  return {times * (kDy[0] + kDy[2]), times * (kDy[1] + kDy[3])};
}
std::vector<double> DenseDX() {
  std::vector<double> d(6, 0);
  for (int r = 0; r < 2; ++r)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 2; ++j)
        d[size_t(r * 3 + i)] += kDy[size_t(r * 2 + j)] * kW[size_t(j * 3 + i)];
  return d;
}

TEST(Executor, ForwardComputesOutputsIntoStableArrays) {
  Executor e = Dense().Bind(Device::CPU(), DenseArgs(), {}, GradReq::kNull);
  EXPECT_EQ(e.output_names(), std::vector<std::string>{"fc_output"});
  Tensor out = e.outputs()[0];  // taken before Forward: the same array is overwritten
  e.Forward(false);
  ExpectTensorNear(out, {2, 2},
                   {1 * 0.5 - 2 + 6 + 0.1, 1 + 2 - 1.5 - 0.2, -0.5 + 4 + 0.1, -1 - 1 - 0.2});
  e.arg_dict().at("fc_bias").data<float>()[0] = 1.1f;  // arrays are the executor's: seen next run
  e.Forward(false);
  EXPECT_NEAR(out.At(0), 1 * 0.5 - 2 + 6 + 1.1, 1e-5);
}

TEST(Executor, GradReqWriteOverwritesWithTheGradient) {
  Executor e = Dense().Bind(Device::CPU(), DenseArgs(), DenseGrads(), GradReq::kWrite);
  for (int round = 0; round < 2; ++round) {
    e.Forward(true);
    e.Backward({F32({2, 2}, kDy)});
    ExpectTensorNear(e.grad_dict().at("fc_weight"), {2, 3}, DenseDW(), 1e-6);
    ExpectTensorNear(e.grad_dict().at("fc_bias"), {2}, DenseDB(), 1e-6);
    ExpectTensorNear(e.grad_dict().at("x"), {2, 3}, DenseDX(), 1e-6);
  }
}

TEST(Executor, GradReqAddAccumulatesAcrossBackwardCalls) {
  auto grads = DenseGrads();
  grads["fc_bias"] = F32({2}, {10, 20});  // add starts from what the array holds
  Executor e = Dense().Bind(Device::CPU(), DenseArgs(), grads, GradReq::kAdd);
  e.Forward(true);
  e.Backward({F32({2, 2}, kDy)});
  e.Backward({F32({2, 2}, kDy)});  // one Forward, two Backward calls: allowed, adds twice
  ExpectTensorNear(grads["fc_weight"], {2, 3}, DenseDW(2), 1e-6);
  auto db = DenseDB(2);
  ExpectTensorNear(grads["fc_bias"], {2}, {10 + db[0], 20 + db[1]}, 1e-6);
}

TEST(Executor, GradReqNullLeavesTheArrayAloneAndComputesNothing) {
  auto grads = DenseGrads();
  grads["x"] = F32({2, 3}, std::vector<double>(6, 7.0));
  Executor e = Dense().Bind(Device::CPU(), DenseArgs(), grads,
                            {{"fc_weight", GradReq::kWrite}, {"fc_bias", GradReq::kAdd}});
  // MXNet's rule: names the map leaves out (x) are null.
  EXPECT_EQ(e.grad_reqs(), (std::vector<GradReq>{GradReq::kNull, GradReq::kWrite, GradReq::kAdd}));
  e.Forward(true);
  e.Backward({F32({2, 2}, kDy)});
  ExpectTensorNear(grads["x"], {2, 3}, std::vector<double>(6, 7.0));
  ExpectTensorNear(grads["fc_weight"], {2, 3}, DenseDW(), 1e-6);

  // Nothing is built for a null argument: a path through an op without a gradient (argmax) is
  // fine when no wanted gradient needs it, and a UserError naming the op when one does.
  Symbol x = Symbol::Variable("x");
  Symbol net = Symbol::Group({FullyConnected(x, 2, "fc"), argmax(x, 1, false, "am")});
  auto args = DenseArgs();
  ExpectUserError([&] { net.Bind(Device::CPU(), args, DenseGrads(), GradReq::kWrite); },
                  {"argmax", "\"am\""});
  Executor ok =
      net.Bind(Device::CPU(), args, DenseGrads(), GradReqs::Except(GradReq::kWrite, {"x"}));
  ok.Forward(true);
  ok.Backward({F32({2, 2}, kDy), Tensor()});  // argmax's output reads no head gradient
  ExpectTensorNear(ok.grad_dict().at("fc_bias"), {2}, DenseDB(), 1e-6);
}

TEST(Executor, ArgumentWithoutGradientArrayIsNull) {
  auto grads = DenseGrads();
  grads.erase("x");
  Executor e = Dense().Bind(Device::CPU(), DenseArgs(), grads, GradReq::kWrite);
  EXPECT_EQ(e.grad_reqs()[0], GradReq::kNull);
  EXPECT_FALSE(e.grad_arrays()[0].defined());
  EXPECT_EQ(e.grad_dict().size(), 2u);
}

TEST(Executor, PositionalBindingMatchesNamedBinding) {
  std::vector<Tensor> args = {F32({2, 3}, kX), F32({2, 3}, kW), F32({2}, kB)};
  std::vector<Tensor> grads = {Tensor(), Tensor::Zeros({2, 3}, DType::kFloat32),
                               Tensor::Zeros({2}, DType::kFloat32)};
  Executor e =
      Dense().Bind(Device::CPU(), args, grads, {GradReq::kNull, GradReq::kWrite, GradReq::kWrite});
  EXPECT_EQ(e.argument_names(), (std::vector<std::string>{"x", "fc_weight", "fc_bias"}));
  e.Forward(true);
  e.Backward({F32({2, 2}, kDy)});
  ExpectTensorNear(grads[1], {2, 3}, DenseDW(), 1e-6);
  EXPECT_EQ(e.arg_arrays()[1].storage(), args[1].storage());  // bound, not copied
  // Literal lists work too: {x, w, b} by position.
  Executor lit = Dense().Bind(Device::CPU(), {args[0], args[1], args[2]}, {}, GradReq::kNull);
  lit.Forward(false);
  e.Forward(false);
  EXPECT_EQ(lit.outputs()[0].ToDoubles(), e.outputs()[0].ToDoubles());
}

// Loss heads ignore their head gradient: Backward() is enough. SoftmaxOutput's input gradient
// is softmax - one_hot(label) (grad_scale 1, normalization null).
TEST(Executor, LossOutputsNeedNoHeadGradient) {
  Symbol net = SoftmaxOutput(Dense(), "sm");
  auto args = DenseArgs();
  args["sm_label"] = F32({2}, {1, 0});
  Executor e =
      net.Bind(Device::CPU(), args, DenseGrads(), GradReqs::Except(GradReq::kWrite, {"sm_label"}));
  e.Forward(true);
  e.Backward();
  std::vector<double> p = e.outputs()[0].ToDoubles(), dy = p;
  dy[1] -= 1;  // row 0, label 1
  dy[2] -= 1;  // row 1, label 0
  std::vector<double> db = {dy[0] + dy[2], dy[1] + dy[3]};
  ExpectTensorNear(e.grad_dict().at("fc_bias"), {2}, db, 1e-5);
  // The same through MakeLoss on a plain output: d data = 1 everywhere.
  Executor m = MakeLoss(Dense(), "loss").Bind(Device::CPU(), DenseArgs(), DenseGrads());
  m.Forward(true);
  m.Backward();
  ExpectTensorNear(m.grad_dict().at("fc_bias"), {2}, {2, 2}, 1e-6);
}

TEST(Executor, NonLossOutputWithoutHeadGradientIsAUserError) {
  Executor e = Dense().Bind(Device::CPU(), DenseArgs(), DenseGrads());
  e.Forward(true);
  ExpectUserError([&] { e.Backward(); }, {"fc_output", "head gradient"});
  ExpectUserError([&] { e.Backward({Tensor()}); }, {"fc_output"});
  ExpectUserError(
      [&] {
        e.Backward({F32({2, 2}, kDy), F32({2, 2}, kDy)});
      },
      {"2 head gradients", "1 outputs"});
  ExpectUserError([&] { e.Backward({F32({2, 3}, kX)}); }, {"fc_output", "(2, 3)", "(2, 2)"});
}

TEST(Executor, BackwardNeedsATrainingForward) {
  Executor e = Dense().Bind(Device::CPU(), DenseArgs(), DenseGrads());
  ExpectUserError([&] { e.Backward({F32({2, 2}, kDy)}); }, {"Forward(is_train=true)"});
  e.Forward(true);
  e.Forward(false);  // inference replaces the training values
  ExpectUserError([&] { e.Backward({F32({2, 2}, kDy)}); }, {"Forward(is_train=true)"});
}

TEST(Executor, BindErrorsNameWhatIsWrong) {
  auto args = DenseArgs();
  args.erase("fc_bias");
  ExpectUserError([&] { Dense().Bind(Device::CPU(), args); }, {"no array", "fc_bias"});
  args = DenseArgs();
  args["fc_weight"] = F32({3, 3}, std::vector<double>(9, 0));
  ExpectUserError([&] { Dense().Bind(Device::CPU(), args); }, {"fc"});
  args = DenseArgs();
  args["fc_wieght"] = F32({2, 3}, kW);
  ExpectUserError([&] { Dense().Bind(Device::CPU(), args); }, {"fc_wieght", "fc_weight"});
  auto grads = DenseGrads();
  grads["fc_weight"] = Tensor::Zeros({3, 2}, DType::kFloat32);
  ExpectUserError([&] { Dense().Bind(Device::CPU(), DenseArgs(), grads); },
                  {"gradient array", "fc_weight", "(3, 2)", "(2, 3)"});
  grads["fc_weight"] = Tensor::Zeros({2, 3}, DType::kFloat64);
  ExpectUserError([&] { Dense().Bind(Device::CPU(), DenseArgs(), grads); },
                  {"float64", "fc_weight"});
  ExpectUserError(
      [&] {
        Dense().Bind(Device::CPU(), std::vector<Tensor>{F32({2, 3}, kX)});
      },
      {"1 argument arrays", "3 arguments"});
  ExpectUserError(
      [&] {
        Dense().Bind(Device::CPU(), DenseArgs(), DenseGrads(),
                     std::map<std::string, GradReq>{{"fc_weigth", GradReq::kWrite}});
      },
      {"fc_weigth"});
  ExpectUserError(
      [&] {
        Dense().Bind(Device::CPU(), DenseArgs(), DenseGrads(),
                     std::vector<GradReq>{GradReq::kWrite});
      },
      {"1 requests", "3 arguments"});
  // Not the caller's model: a device kiln cannot run on.
  try {
    Dense().Bind(Device{DeviceType::kCUDA, 0}, DenseArgs());
    ADD_FAILURE() << "expected a RuntimeError";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("cuda(0)"), std::string::npos) << e.what();
  }
}

TEST(Executor, SimpleBindErrors) {
  ExpectUserError([&] { Dense().SimpleBind(Device::CPU(), {{"data", {2, 3}}}); }, {"data", "x"});
  ExpectUserError([&] { Dense().SimpleBind(Device::CPU(), {}); }, {"x"});
  ExpectUserError(
      [&] {
        BatchNorm(Symbol::Variable("x"), "bn").Bind(Device::CPU(), {{"x", F32({2}, {1, 2})}});
      },
      {"bn_gamma"});
}

TEST(Executor, ForwardInputsAreCopiedIntoTheArguments) {
  Executor e = Dense().SimpleBind(Device::CPU(), {{"x", {2, 3}}}, GradReq::kNull);
  Tensor x = e.arg_dict().at("x");
  e.Forward(false, {{"x", F32({2, 3}, kX)}});
  ExpectTensorNear(x, {2, 3}, kX);
  // Other dtypes convert (labels often come as integers).
  e.Forward(false, {{"x", Tensor::FromValues({2, 3}, DType::kInt32, {1, 2, 3, 4, 5, 6})}});
  ExpectTensorNear(x, {2, 3}, {1, 2, 3, 4, 5, 6});
  ExpectUserError([&] { e.Forward(false, {{"y", F32({2, 3}, kX)}}); }, {"\"y\"", "x"});
  ExpectUserError(
      [&] {
        e.Forward(false, {{"x", F32({3, 2}, kX)}});
      },
      {"\"x\"", "(3, 2)", "(2, 3)"});
}

// The seed's pattern: a test executor at another batch size shares the training executor's
// weights, so an update through one is seen by the other, with no copy.
TEST(Executor, SharedArgumentExecutorsSeeEachOthersUpdates) {
  Symbol net = Dense();
  Executor train =
      net.SimpleBind(Device::CPU(), {{"x", {2, 3}}}, GradReqs::Except(GradReq::kWrite, {"x"}));
  Executor test = net.SimpleBind(Device::CPU(), {{"x", {1, 3}}}, GradReq::kNull, {}, &train);
  EXPECT_EQ(test.arg_dict().at("fc_weight").storage(), train.arg_dict().at("fc_weight").storage());
  EXPECT_NE(test.arg_dict().at("x").storage(),
            train.arg_dict().at("x").storage());  // shapes differ

  // The other way: Bind with the training executor's tensors.
  auto shared = train.arg_dict();
  shared["x"] = F32({1, 3}, {1, 2, 3});
  Executor bound = net.Bind(Device::CPU(), shared, {}, GradReq::kNull);

  train.Forward(true, {{"x", F32({2, 3}, kX)}});
  train.Backward({F32({2, 2}, kDy)});
  SGD sgd({.learning_rate = 0.5});
  sgd.Update(train);
  // Weights were zeros, so after one step W = -0.5 dW and b = -0.5 db; the test executors see it.
  test.Forward(false, {{"x", F32({1, 3}, {1, 2, 3})}});
  bound.Forward(false);
  auto dw = DenseDW(), db = DenseDB();
  for (int j = 0; j < 2; ++j) {
    double expect = -0.5 * db[size_t(j)];
    for (int i = 0; i < 3; ++i) expect += -0.5 * dw[size_t(j * 3 + i)] * (i + 1);
    EXPECT_NEAR(test.outputs()[0].At(j), expect, 1e-4);
    EXPECT_NEAR(bound.outputs()[0].At(j), expect, 1e-4);
  }
}

// BatchNorm through the executor: training uses the batch's statistics and moves the moving
// ones (momentum 0.9); inference uses the moving ones and leaves them alone.
TEST(Executor, BatchNormTrainingAndInferenceModes) {
  Symbol net = BatchNorm(Symbol::Variable("x"), "bn", {{"fix_gamma", "False"}});
  Executor e = net.SimpleBind(Device::CPU(), {{"x", {2, 2}}}, GradReq::kNull);
  EXPECT_EQ(e.aux_names(), (std::vector<std::string>{"bn_moving_mean", "bn_moving_var"}));
  InitParams(e, Initializer::Zeros(), {"x"});  // gamma 1, beta 0, mean 0, var 1 by name
  Tensor mean = e.aux_dict().at("bn_moving_mean"), var = e.aux_dict().at("bn_moving_var");
  ExpectTensorNear(var, {2}, {1, 1});
  const double eps = 1e-3;
  Tensor x = F32({2, 2}, {1, 10, 3, 20});  // batch means (2, 15), variances (1, 25)

  e.Forward(true, {{"x", x}});
  ExpectTensorNear(e.outputs()[0], {2, 2},
                   {-1 / std::sqrt(1 + eps), -5 / std::sqrt(25 + eps), 1 / std::sqrt(1 + eps),
                    5 / std::sqrt(25 + eps)},
                   1e-5);
  ExpectTensorNear(mean, {2}, {0.2, 1.5}, 1e-6);
  ExpectTensorNear(var, {2}, {1.0, 0.9 + 2.5}, 1e-6);

  e.Forward(false);
  ExpectTensorNear(e.outputs()[0], {2, 2},
                   {(1 - 0.2) / std::sqrt(1 + eps), (10 - 1.5) / std::sqrt(3.4 + eps),
                    (3 - 0.2) / std::sqrt(1 + eps), (20 - 1.5) / std::sqrt(3.4 + eps)},
                   1e-5);
  ExpectTensorNear(mean, {2}, {0.2, 1.5}, 1e-6);  // unchanged by inference
}

// BatchNorm's gradients through a loss: d beta = sum of the loss's unit gradient over the batch,
// d gamma = sum of the normalised input, which is 0 for batch statistics.
TEST(Executor, BatchNormBackwardThroughMakeLoss) {
  Symbol net = MakeLoss(BatchNorm(Symbol::Variable("x"), "bn", {{"fix_gamma", "False"}}), "loss");
  Executor e =
      net.SimpleBind(Device::CPU(), {{"x", {3, 2}}}, GradReqs::Except(GradReq::kWrite, {"x"}));
  InitParams(e, Initializer::Zeros(), {"x"});
  e.Forward(true, {{"x", F32({3, 2}, {1, 2, 4, -1, 0, 5})}});
  e.Backward();
  ExpectTensorNear(e.grad_dict().at("bn_beta"), {2}, {3, 3}, 1e-5);
  ExpectTensorNear(e.grad_dict().at("bn_gamma"), {2}, {0, 0}, 1e-4);
}

TEST(Executor, DropoutIsIdentityInInferenceAndSeededInTraining) {
  Symbol net = Dropout(Symbol::Variable("x"), 0.5, "drop");
  std::vector<double> ones(256, 1.0);
  auto run = [&](Executor& e, bool train) {
    e.Forward(train, {{"x", F32({256}, ones)}});
    return e.outputs()[0].ToDoubles();
  };
  Executor a = net.SimpleBind(Device::CPU(), {{"x", {256}}}, GradReq::kNull);
  Executor b = net.SimpleBind(Device::CPU(), {{"x", {256}}}, GradReq::kNull);
  EXPECT_EQ(run(a, false), ones);
  std::vector<double> a1 = run(a, true), a2 = run(a, true);
  EXPECT_NE(a1, a2);  // a new mask each step
  int kept = 0;
  for (double v : a1) {
    EXPECT_TRUE(v == 0 || v == 2) << v;  // kept elements are scaled by 1 / (1 - p)
    kept += v != 0;
  }
  EXPECT_GT(kept, 96);
  EXPECT_LT(kept, 160);
  // Reproducible: the same seed gives the same sequence, and inference in between shifts nothing.
  EXPECT_EQ(run(b, true), a1);
  EXPECT_EQ(run(b, false), ones);
  EXPECT_EQ(run(b, true), a2);
  a.set_seed(42);
  b.set_seed(42);
  EXPECT_EQ(run(a, true), run(b, true));
  EXPECT_NE(run(a, true), a2);
}

// The seed's MLP learns through the executor: Xavier weights, SGD with momentum, a separable
// toy problem (the class is the index of the largest of the first three features).
TEST(Executor, MlpTrainsOnAToyProblem) {
  const int64_t batch = 32, dim = 8;
  Symbol net = models::Mlp({16}, 3);
  Executor train = net.SimpleBind(Device::CPU(), {{"data", {batch, dim}}},
                                  GradReqs::Except(GradReq::kWrite, {"data", "softmax_label"}));
  InitParams(train, Initializer::Xavier().Seed(1), {"data", "softmax_label"});
  SGD sgd({.learning_rate = 0.5, .momentum = 0.9, .rescale_grad = 1.0 / batch});
  std::vector<double> x = test::RandomValues(size_t(batch * dim), 3), y(static_cast<size_t>(batch));
  for (int64_t r = 0; r < batch; ++r) {
    const double* row = &x[size_t(r * dim)];
    y[size_t(r)] = double(std::max_element(row, row + 3) - row);
  }
  auto loss = [&] {
    double l = 0;
    Tensor p = train.outputs()[0];
    for (int64_t r = 0; r < batch; ++r) l -= std::log(p.At(r * 3 + int64_t(y[size_t(r)])));
    return l / double(batch);
  };
  std::map<std::string, Tensor> feed = {{"data", F32({batch, dim}, x)},
                                        {"softmax_label", F32({batch}, y)}};
  train.Forward(false, feed);
  double first = loss();
  for (int step = 0; step < 60; ++step) {
    train.Forward(true, feed);
    train.Backward();
    sgd.Update(train);
  }
  train.Forward(false, feed);
  EXPECT_LT(loss(), 0.3 * first) << "first loss " << first;
}

// The executor's gradients of a whole network (convolutions, BatchNorm in training mode, a
// residual add, pooling, SoftmaxOutput) against central differences of the cross-entropy the
// SoftmaxOutput gradient belongs to, in float64 (dtypes flow from the data), on the first few
// elements of every parameter. Step 1e-5: truncation error about 1e-10, far below 1e-6.
TEST(Executor, ResNetBlockGradientsMatchFiniteDifferences) {
  Symbol net = models::ResNetBlockNet(4, 3);
  Executor e = net.SimpleBind(Device::CPU(), {{"data", {3, 1, 6, 6}}},
                              GradReqs::Except(GradReq::kWrite, {"data", "softmax_label"}),
                              {{"data", DType::kFloat64}});
  InitParams(e, Initializer::Xavier(XavierRnd::kGaussian).Seed(5), {"data", "softmax_label"});
  Initializer::Uniform(1).Seed(6).Fill(e.arg_dict().at("data"), "data");
  std::vector<double> labels = {2, 0, 1};
  e.Forward(true, {{"softmax_label", test::Values(DType::kFloat64, {3}, labels)}});
  e.Backward();
  auto loss = [&] {
    e.Forward(true);
    double l = 0;
    for (int64_t r = 0; r < 3; ++r)
      l -= std::log(e.outputs()[0].At(r * 3 + int64_t(labels[size_t(r)])));
    return l;
  };
  int checked = 0;
  for (const auto& [name, grad] : e.grad_dict()) {
    ASSERT_EQ(grad.dtype(), DType::kFloat64) << name;
    double* w = e.arg_dict().at(name).data<double>();
    for (int64_t i = 0; i < std::min<int64_t>(grad.size(), 3); ++i) {
      const double h = 1e-5, saved = w[i];
      w[i] = saved + h;
      double up = loss();
      w[i] = saved - h;
      double down = loss();
      w[i] = saved;
      EXPECT_NEAR(grad.At(i), (up - down) / (2 * h), 1e-6 * (1 + std::fabs(grad.At(i))))
          << name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
}

}  // namespace
}  // namespace kiln
