// pipeline_test.cpp - the -O3 pipeline on whole networks: kernel counts after fusion for the
// seed MLP, LeNet and ResNet-18, and the optimised graph run on the reference interpreter
// matching the input graph, for inference (parameters as constants, BatchNorm folded) and for
// training graphs (forward and backward, every gradient compared).
#include <map>
#include <string>

#include "kiln/frontend/model_graphs.h"
#include "kiln/frontend/models.h"
#include "kiln/ir/composite.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/verifier.h"
#include "kiln/passes/fuse.h"
#include "kiln/passes/pass_manager.h"
#include "test_util.h"

namespace kiln {
namespace {

using models::LeNet;
using models::Mlp;
using models::ResNet18;
using models::ResNetBlockNet;

Graph RunO3(const ModelGraph& m, PassContext& ctx) {
  PassManager pm(OptPipeline(3));
  pm.options().verify_each = true;
  return pm.Run(m.graph, ctx);
}

// |got - want| <= tol * (1 + max |want|) elementwise: a bound relative to the tensor's scale,
// since folding BatchNorm into weights rounds differently (float32 weights, double folding).
void ExpectClose(const std::vector<Tensor>& got, const std::vector<Tensor>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].shape(), want[i].shape()) << "output " << i;
    std::vector<double> g = got[i].ToDoubles(), w = want[i].ToDoubles();
    double scale = 0;
    for (double x : w) scale = std::max(scale, std::fabs(x));
    double worst = 0;
    for (size_t k = 0; k < w.size(); ++k) worst = std::max(worst, std::fabs(g[k] - w[k]));
    EXPECT_LE(worst, tol * (1 + scale)) << "output " << i << " of " << want.size();
  }
}

// Inference: the optimised graph gets the network's inputs plus ctx.constants (which now holds
// the folded weights).
Graph CheckInference(const ModelGraph& m, double tol) {
  PassContext ctx = ContextFor(m, false);
  Graph opt = RunO3(m, ctx);
  std::map<std::string, Tensor> vars = ctx.constants;
  for (const std::string& name : m.inputs) vars[name] = m.values.at(name);
  ExpectClose(Interpret(opt, vars), Interpret(m.graph, m.values), tol);
  return opt;
}

Graph CheckTraining(const ModelGraph& m, double tol) {
  PassContext ctx = ContextFor(m, true);
  Graph opt = RunO3(m, ctx);
  InterpretOptions train{.is_train = true, .seed = 5};
  ExpectClose(Interpret(opt, m.values, train), Interpret(m.graph, m.values, train), tol);
  EXPECT_GT(ForwardPrefix(opt, m.forward_outputs), 0u);
  return opt;
}

TEST(Pipeline, MlpInference) {
  Graph opt = CheckInference(InferenceGraph(Mlp(), {{"data", Shape{1, 784}}}), 1e-5);
  KernelCount k = CountKernels(opt);
  // fc1+relu, fc2+relu, fc3, SoftmaxOutput.
  EXPECT_EQ(k.kernels, 4);
  EXPECT_EQ(k.fused, 2);
  EXPECT_EQ(k.lone_elementwise, 0);
}

TEST(Pipeline, LeNetInference) {
  Graph opt = CheckInference(InferenceGraph(LeNet(), {{"data", Shape{1, 1, 28, 28}}}), 1e-5);
  KernelCount k = CountKernels(opt);
  // conv1+tanh, pool1, conv2+tanh, pool2, flatten, fc1+tanh, fc2, softmax.
  EXPECT_EQ(k.kernels, 8);
  EXPECT_EQ(k.fused, 3);
  EXPECT_EQ(k.lone_elementwise, 0);
}

TEST(Pipeline, ResNet18Inference) {
  // 64x64 keeps the reference interpreter quick; the graph is the same as at 224x224.
  Graph opt = CheckInference(InferenceGraph(ResNet18(), {{"data", Shape{1, 3, 64, 64}}}), 1e-4);
  KernelCount k = CountKernels(opt);
  EXPECT_EQ(k.lone_elementwise, 0);
  // 20 convolutions (BatchNorm folded, relu and residual adds in their epilogues), max pool,
  // global average pool, flatten, fc, softmax.
  EXPECT_EQ(k.kernels, 25);
  for (const Node& n : opt.nodes()) EXPECT_NE(std::string(n.op_name()), "BatchNorm");
}

TEST(Pipeline, MlpTraining) {
  Graph opt = CheckTraining(TrainingGraph(Mlp(), {{"data", Shape{32, 784}}}), 1e-6);
  KernelCount k = CountKernels(opt);
  // Forward: fc1+relu, fc2+relu, fc3, softmax. Backward: softmax, fc3's gradient with relu2's
  // gradient as its epilogue, fc2's with relu1's, fc1's.
  EXPECT_EQ(k.kernels, 8);
  EXPECT_EQ(k.lone_elementwise, 0);
}

TEST(Pipeline, LeNetTraining) {
  Graph opt = CheckTraining(TrainingGraph(LeNet(), {{"data", Shape{4, 1, 28, 28}}}), 1e-6);
  EXPECT_EQ(CountKernels(opt).kernels, 16);
  EXPECT_EQ(CountKernels(opt).lone_elementwise, 0);
}

TEST(Pipeline, ResNetBlockTraining) {
  Graph opt =
      CheckTraining(TrainingGraph(ResNetBlockNet(8), {{"data", Shape{2, 3, 16, 16}}}), 1e-6);
  EXPECT_EQ(CountKernels(opt).kernels, 20);
  EXPECT_EQ(CountKernels(opt).lone_elementwise, 0);
}

TEST(Pipeline, ResNet18TrainingGraphKernelCounts) {
  // Counts only (no interpretation: the reference interpreter would take minutes at batch 32).
  ModelGraph m = TrainingGraph(ResNet18(), {{"data", Shape{32, 3, 224, 224}}});
  PassContext ctx = ContextFor(m, true);
  Graph opt = RunO3(m, ctx);
  KernelCount before = CountKernels(m.graph), after = CountKernels(opt);
  EXPECT_EQ(before.kernels, 140);
  // relu (and the residual add) join BatchNorm; the relu gradients and gradient sums join the
  // convolution and pooling gradients.
  EXPECT_EQ(after.kernels, 90);
  EXPECT_EQ(after.lone_elementwise, 0);
  EXPECT_EQ(after.ops, before.kernels);  // fusion regroups ops, it adds and drops none
}

}  // namespace
}  // namespace kiln
