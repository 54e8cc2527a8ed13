// compiled_executor_test.cpp - the Executor on compiled code against the Executor on the
// reference interpreter: the same model, weights and batches, forward outputs, gradients and
// BatchNorm statistics after training steps, and the compile cache. CTest runs this binary
// twice, with KILN_NUM_THREADS=1 and =2 (tests/CMakeLists.txt).
//
// Tolerance: 2e-4 of the largest magnitude of each array (plus 1e-6 absolute). The interpreter
// accumulates in double, compiled kernels in float32 in another order; over a few hundred terms
// float32 sums differ by a few 1e-6 relative, and SGD steps carry that into the weights, so
// 2e-4 leaves a margin of ~20x while a wrong index, a missing epilogue or a lost update (errors
// of order 1) cannot pass.
#include <cmath>
#include <cstdlib>

#include "kiln/codegen/compile.h"
#include "kiln/frontend/executor.h"
#include "kiln/frontend/initializer.h"
#include "kiln/frontend/models.h"
#include "kiln/frontend/ops.h"
#include "kiln/frontend/optimizer.h"
#include "kiln/ir/interpreter.h"
#include "kiln/passes/infer.h"
#include "test_util.h"

namespace kiln {
namespace {

void ExpectClose(const Tensor& want, const Tensor& got, const std::string& what) {
  ASSERT_EQ(want.shape(), got.shape()) << what;
  std::vector<double> a = want.ToDoubles(), b = got.ToDoubles();
  double scale = 0;
  for (double v : a) scale = std::max(scale, std::abs(v));
  double worst = 0;
  int64_t at = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_FALSE(std::isnan(b[i])) << what << " element " << i << " is NaN";
    double err = std::abs(a[i] - b[i]);
    if (err > worst) worst = err, at = int64_t(i);
  }
  EXPECT_LE(worst, 2e-4 * scale + 1e-6)
      << what << ": element " << at << " differs by " << worst << " (scale " << scale << ")";
}

// A deterministic batch: inputs in [-1, 1], labels 0..classes-1.
std::map<std::string, Tensor> Batch(const std::vector<int64_t>& data_shape, int64_t classes,
                                    uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  Tensor data = Tensor::Empty(data_shape, DType::kFloat32);
  for (int64_t i = 0; i < data.size(); ++i) data.data<float>()[i] = float(u(rng));
  Tensor label = Tensor::Empty({data_shape[0]}, DType::kFloat32);
  for (int64_t i = 0; i < label.size(); ++i) label.data<float>()[i] = float(i % classes);
  return {{"data", data}, {"softmax_label", label}};
}

struct Trained {
  std::vector<Tensor> outputs, grads, args, aux, eval;
};

// `steps` forward and backward passes with an SGD update between them, on one backend, then an
// inference pass on a second executor sharing the weights.
Trained Train(const Symbol& net, const std::vector<int64_t>& data_shape, int64_t classes, int steps,
              ExecutorBackend backend) {
  SetExecutorBackend(backend);
  Executor exec = net.SimpleBind(Device::CPU(), {{"data", Shape(data_shape)}},
                                 GradReqs::Except(GradReq::kWrite, {"data", "softmax_label"}));
  InitParams(exec, Initializer::Xavier(), {"data", "softmax_label"});
  SGD sgd({.learning_rate = 0.05, .momentum = 0.9, .rescale_grad = 1.0 / double(data_shape[0])});
  Trained t;
  for (int step = 0; step < steps; ++step) {
    exec.Forward(true, Batch(data_shape, classes, uint64_t(step)));
    exec.Backward();
    if (step + 1 < steps) sgd.Update(exec);
  }
  for (const Tensor& x : exec.outputs()) t.outputs.push_back(x.Clone());
  for (const Tensor& x : exec.grad_arrays())
    if (x.defined()) t.grads.push_back(x.Clone());
  for (const Tensor& x : exec.arg_arrays()) t.args.push_back(x.Clone());
  for (const Tensor& x : exec.aux_arrays()) t.aux.push_back(x.Clone());
  std::vector<int64_t> eval_shape = data_shape;
  eval_shape[0] = 3;
  Executor eval =
      net.SimpleBind(Device::CPU(), {{"data", Shape(eval_shape)}}, GradReq::kNull, {}, &exec);
  eval.Forward(false, {{"data", Batch(eval_shape, classes, 7)["data"]}});
  for (const Tensor& x : eval.outputs()) t.eval.push_back(x.Clone());
  SetExecutorBackend(ExecutorBackend::kCompiled);
  return t;
}

void CompareBackends(const Symbol& net, const std::vector<int64_t>& data_shape, int64_t classes,
                     int steps = 3) {
  Trained ref = Train(net, data_shape, classes, steps, ExecutorBackend::kInterpreter);
  {
    Trained got = Train(net, data_shape, classes, steps, ExecutorBackend::kCompiled);
    ASSERT_EQ(ref.grads.size(), got.grads.size());
    for (size_t i = 0; i < ref.outputs.size(); ++i)
      ExpectClose(ref.outputs[i], got.outputs[i], StrCat("output ", i));
    for (size_t i = 0; i < ref.grads.size(); ++i)
      ExpectClose(ref.grads[i], got.grads[i], StrCat("gradient ", i));
    for (size_t i = 0; i < ref.args.size(); ++i)
      ExpectClose(ref.args[i], got.args[i], StrCat("argument ", i, " after the SGD steps"));
    for (size_t i = 0; i < ref.aux.size(); ++i)
      ExpectClose(ref.aux[i], got.aux[i], StrCat("auxiliary state ", i));
    for (size_t i = 0; i < ref.eval.size(); ++i)
      ExpectClose(ref.eval[i], got.eval[i], StrCat("inference output ", i));
  }
}

TEST(CompiledExecutor, MlpMatchesTheInterpreter) {
  CompareBackends(models::Mlp({37, 20}), {13, 1, 5, 7}, 10);
}

// Dropout and rrelu draw the same numbers on both backends (kiln/ir/random.h), so a training
// run with them matches step for step: a mask that differed would change whole activations.
TEST(CompiledExecutor, MlpWithDropoutAndRreluMatchesTheInterpreter) {
  Symbol x = Symbol::Variable("data");
  x = Dropout(Activation(FullyConnected(x, 37, "fc1"), "relu", "relu1"), 0.4, "drop1");
  x = Dropout(LeakyReLU(FullyConnected(x, 20, "fc2"), "rrelu", "rrelu2"), 0.25, "drop2");
  CompareBackends(SoftmaxOutput(FullyConnected(x, 10, "fc3"), "softmax"), {13, 1, 5, 7}, 10);
}

TEST(CompiledExecutor, LeNetMatchesTheInterpreter) {
  CompareBackends(models::LeNet(10, "tanh"), {5, 1, 28, 28}, 10);
}

TEST(CompiledExecutor, ResNetBlockNetWithBatchNormMatchesTheInterpreter) {
  CompareBackends(models::ResNetBlockNet(8, 10), {4, 3, 12, 12}, 10);
}

// One training step, at batch 4 and 64x64 so that the last stage's BatchNorm normalises over
// 16 values per channel: at batch 2 and 32x32 it normalises over 2, the gradients reach
// thousands, and float32 rounding (the library's GEMM against the interpreter's double sums) is
// amplified past any useful tolerance; later steps would amplify it the same way.
TEST(CompiledExecutor, ResNet18TrainingStepMatchesTheInterpreter) {
  CompareBackends(models::ResNet18(10), {4, 3, 64, 64}, 10, 1);
}

TEST(CompiledExecutor, LaterBindsReuseTheCompiledCode) {
  Symbol net = models::Mlp({16}, 10);
  auto bind_and_run = [&] {
    Executor e = net.SimpleBind(Device::CPU(), {{"data", Shape({4, 12})}}, GradReq::kNull);
    e.Forward(false, Batch({4, 12}, 10, 1));
    return e.outputs()[0].Clone();
  };
  Tensor first = bind_and_run();
  codegen::CompileCacheStats before = codegen::GetCompileCacheStats();
  Tensor second = bind_and_run();
  codegen::CompileCacheStats after = codegen::GetCompileCacheStats();
  EXPECT_EQ(after.hits, before.hits + 1);
  EXPECT_EQ(after.misses, before.misses);
  EXPECT_EQ(first.ToDoubles(), second.ToDoubles());
  // Another batch size is another program.
  Executor other = net.SimpleBind(Device::CPU(), {{"data", Shape({5, 12})}}, GradReq::kNull);
  other.Forward(false, Batch({5, 12}, 10, 1));
  EXPECT_EQ(codegen::GetCompileCacheStats().misses, after.misses + 1);
}

// Frozen variables: the products reuse weights packed on the first run, and a Bind repacks.
TEST(CompiledExecutor, FrozenWeightsGiveTheSameResultsAndABindRepacks) {
  Graph g = models::LeNet(10, "relu").ToGraph();
  std::map<std::string, Tensor> vars;
  codegen::CompileOptions o;
  InferOptions io;
  io.shapes["data"] = Shape({3, 1, 28, 28});
  io.shapes["softmax_label"] = Shape({3});
  Graph typed = g;
  InferShapes(typed, io);
  uint32_t seed = 1;
  for (uint32_t v : typed.VariableNodes()) {
    const std::string& name = typed.node(v).name;
    std::vector<double> values =
        test::RandomValues(size_t(typed.shape(Entry{v, 0}).NumElements()), seed++);
    vars[name] = Tensor::FromValues(typed.shape(Entry{v, 0}).dims(), DType::kFloat32, values);
    o.infer.shapes[name] = typed.shape(Entry{v, 0});
  }
  auto cg = codegen::CompileGraph(g, o);
  codegen::CompiledRun plain(cg), frozen(cg);
  for (const auto& [n, t] : vars) plain.Bind(n, t), frozen.Bind(n, t);
  frozen.FreezeVariables();
  plain.Run();
  frozen.Run();
  frozen.Run();  // the second run uses the packed weights
  EXPECT_EQ(plain.output(0).ToDoubles(), frozen.output(0).ToDoubles());
  // New weights: a Bind drops the packed ones.
  Tensor w2 = vars["conv2_weight"].Clone();
  for (int64_t i = 0; i < w2.size(); ++i) w2.data<float>()[i] *= -0.5f;
  plain.Bind("conv2_weight", w2);
  frozen.Bind("conv2_weight", w2);
  plain.Run();
  frozen.Run();
  EXPECT_EQ(plain.output(0).ToDoubles(), frozen.output(0).ToDoubles());
  std::vector<Tensor> ref = Interpret(g, [&] {
    auto v = vars;
    v["conv2_weight"] = w2;
    return v;
  }());
  ExpectClose(ref[0], frozen.output(0), "LeNet output with frozen, rebound weights");
}

TEST(CompiledExecutor, AnUnknownBackendNameIsAClearError) {
  setenv("KILN_EXECUTOR", "llvm", 1);
  SetExecutorBackend(ExecutorBackend::kDefault);
  try {
    models::Mlp({8}, 10).SimpleBind(Device::CPU(), {{"data", Shape({2, 4})}}, GradReq::kNull);
    ADD_FAILURE() << "bound with KILN_EXECUTOR=llvm";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("KILN_EXECUTOR is \"llvm\""), std::string::npos)
        << e.what();
  }
  setenv("KILN_EXECUTOR", "interpreter", 1);
  EXPECT_EQ(GetExecutorBackend(), ExecutorBackend::kInterpreter);
  unsetenv("KILN_EXECUTOR");
  EXPECT_EQ(GetExecutorBackend(), ExecutorBackend::kCompiled);
  SetExecutorBackend(ExecutorBackend::kCompiled);
}

}  // namespace
}  // namespace kiln
