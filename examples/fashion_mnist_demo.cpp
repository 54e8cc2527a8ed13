// fashion_mnist_demo.cpp - the README's demo: build the seed MLP with the Symbol API, show its
// typed IR, then train it and a LeNet-style CNN on Fashion-MNIST from C++ and evaluate both on
// the 10,000 test images.
//
// Usage: see kUsage below (--help). Defaults: both models, MLP 5 epochs, LeNet (ReLU) 2 epochs,
// batch 50, Adam with lr 0.001 decaying along a cosine to 0 over each model's run, Xavier
// initialisation; these reach the targets (MLP >= 85%, LeNet >= 88%) on the test set.
// Per epoch it prints the mean training loss (cross-entropy of SoftmaxOutput's probabilities),
// the training accuracy (of the network as it was during the epoch), the test accuracy and the
// training throughput in samples per second.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "kiln/frontend/data_iter.h"
#include "kiln/frontend/executor.h"
#include "kiln/frontend/idx.h"
#include "kiln/frontend/initializer.h"
#include "kiln/frontend/models.h"
#include "kiln/frontend/ops.h"
#include "kiln/frontend/optimizer.h"
#include "kiln/ir/text.h"
#include "kiln/passes/infer.h"

namespace {

using namespace kiln;
using Clock = std::chrono::steady_clock;

const char* const kUsage =
    "usage: fashion_mnist_demo [--model mlp|lenet|all] [--epochs-mlp N] [--epochs-lenet N]\n"
    "                          [--train-limit N] [--batch N] [--lr RATE] [--data DIR]\n"
    "                          [--lenet-act relu|tanh|sigmoid] [--quiet-ir]\n";

struct Options {
  std::string model = "all";
  int epochs_mlp = 5;
  int epochs_lenet = 2;
  int64_t train_limit = -1;
  int64_t batch = 50;
  double lr = 0.001;
  std::string lenet_act = "relu";
  std::string data_dir = kFashionMnistDir;
  bool print_ir = true;
};

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Counts correct predictions and sums -log p[label] over the first `rows` rows of `probs`.
void Score(const Tensor& probs, const Tensor& labels, int64_t rows, int64_t* correct,
           double* loss) {
  const float* p = probs.data<float>();
  int64_t classes = probs.dim(1);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t label = int64_t(labels.At(r)), best = 0;
    for (int64_t c = 1; c < classes; ++c)
      if (p[r * classes + c] > p[r * classes + best]) best = c;
    *correct += best == label;
    *loss -= std::log(std::max(double(p[r * classes + label]), 1e-12));
  }
}

// Accuracy of `train`'s current weights on `test`, through an evaluation executor that shares
// them (bound once per model).
double Evaluate(Executor& eval, const ImageDataset& test, const std::vector<int64_t>& shape) {
  int64_t batch = eval.outputs()[0].dim(0), correct = 0;
  double loss = 0;
  std::vector<int64_t> data_shape = shape;
  data_shape[0] = test.images.dim(0);
  DataIter it(test.images.Reshaped(data_shape), test.labels, batch, false);
  for (it.Reset(); it.Next();) {
    eval.Forward(false, {{"data", it.data()}});
    Score(eval.outputs()[0], it.label(), batch - it.pad(), &correct, &loss);
  }
  return double(correct) / double(test.images.dim(0));
}

// Trains `net` (ending in SoftmaxOutput "softmax") and returns the final test accuracy.
double Train(const std::string& title, const Symbol& net, std::vector<int64_t> sample_shape,
             const ImageDataset& train, const ImageDataset& test, int epochs, int64_t batch,
             Optimizer& opt) {
  std::vector<int64_t> batch_shape = {batch};
  batch_shape.insert(batch_shape.end(), sample_shape.begin(), sample_shape.end());
  std::vector<int64_t> eval_shape = batch_shape;
  eval_shape[0] = 1000;
  std::printf("\n== %s: %zu parameter arrays, batch %lld, %d epochs ==\n", title.c_str(),
              net.ListArguments().size() - 2, (long long)batch, epochs);
  Executor exec = net.SimpleBind(Device::CPU(), {{"data", Shape(batch_shape)}},
                                 GradReqs::Except(GradReq::kWrite, {"data", "softmax_label"}));
  InitParams(exec, Initializer::Xavier(XavierRnd::kUniform, XavierFactor::kAvg, 3.0),
             {"data", "softmax_label"});
  Executor eval =
      net.SimpleBind(Device::CPU(), {{"data", Shape(eval_shape)}}, GradReq::kNull, {}, &exec);

  std::vector<int64_t> all_shape = batch_shape;
  all_shape[0] = train.images.dim(0);
  DataIter it(train.images.Reshaped(all_shape), train.labels, batch, /*shuffle=*/true, 42);
  double test_acc = 0;
  auto train_start = Clock::now();
  std::printf("epoch  train-loss  train-acc  test-acc  samples/s\n");
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    auto start = Clock::now();
    int64_t correct = 0, seen = 0;
    double loss = 0;
    for (it.Reset(); it.Next();) {
      exec.Forward(true, {{"data", it.data()}, {"softmax_label", it.label()}});
      exec.Backward();
      opt.Update(exec);
      int64_t rows = batch - it.pad();
      Score(exec.outputs()[0], it.label(), rows, &correct, &loss);
      seen += rows;
    }
    double secs = Seconds(start);
    test_acc = Evaluate(eval, test, all_shape);
    std::printf("%5d  %10.4f  %8.2f%%  %7.2f%%  %9.0f\n", epoch, loss / double(seen),
                100.0 * double(correct) / double(seen), 100.0 * test_acc, double(seen) / secs);
    std::fflush(stdout);
  }
  std::printf("%s: test accuracy on %lld images: %.2f%% (trained and evaluated in %.0f s)\n",
              title.c_str(), (long long)test.images.dim(0), 100.0 * test_acc, Seconds(train_start));
  return test_acc;
}

void ShowSeedMlp(int64_t batch) {
  // The seed example, as the issue writes it.
  Symbol data = Symbol::Variable("data");
  Symbol fc1 = FullyConnected(data, 128, "fc1");
  Symbol act1 = Activation(fc1, "relu", "relu1");
  Symbol fc2 = FullyConnected(act1, 64, "fc2");
  Symbol act2 = Activation(fc2, "relu", "relu2");
  Symbol fc3 = FullyConnected(act2, 10, "fc3");
  Symbol mlp = SoftmaxOutput(fc3, "softmax");
  ShapeResult shapes = mlp.InferShape({{"data", {batch, 784}}});
  std::printf("== The seed MLP, built with the Symbol API ==\n");
  for (const auto& [name, shape] : shapes.arguments)
    std::printf("  %-14s %s\n", name.c_str(), shape.ToString().c_str());
  for (const auto& [name, shape] : shapes.outputs)
    std::printf("  %-14s %s\n", name.c_str(), shape.ToString().c_str());
  Graph g = mlp.ToGraph();
  InferOptions infer;
  infer.shapes["data"] = Shape{batch, 784};
  InferShapes(g, infer);
  InferTypes(g, infer);
  std::printf("\nTyped IR:\n%s", PrintGraph(g).c_str());
}

int Run(const Options& o) {
  if (o.print_ir) ShowSeedMlp(o.batch);
  auto start = Clock::now();
  ImageDataset train = ReadMnistStyle(o.data_dir, "train", o.train_limit);
  ImageDataset test = ReadMnistStyle(o.data_dir, "t10k");
  std::printf("\nFashion-MNIST: %lld training and %lld test images from %s (%.1f s)\n",
              (long long)train.images.dim(0), (long long)test.images.dim(0), o.data_dir.c_str(),
              Seconds(start));
  bool ok = true;
  // Adam with the learning rate decaying along a cosine to 0 over the whole run.
  int64_t batches = (train.images.dim(0) + o.batch - 1) / o.batch;
  auto make_adam = [&](int epochs) {
    return Adam({.learning_rate = o.lr,
                 .rescale_grad = 1.0 / double(o.batch),
                 .lr_schedule = LRSchedule::Cosine(o.lr, std::max<int64_t>(1, epochs * batches))});
  };
  if (o.model == "mlp" || o.model == "all") {
    Adam adam = make_adam(o.epochs_mlp);
    double acc =
        Train("MLP 784-128-64-10", models::Mlp(), {784}, train, test, o.epochs_mlp, o.batch, adam);
    ok &= acc >= 0.85 || o.train_limit >= 0;
  }
  if (o.model == "lenet" || o.model == "all") {
    Adam adam = make_adam(o.epochs_lenet);
    double acc = Train("LeNet (" + o.lenet_act + ")", models::LeNet(10, o.lenet_act), {1, 28, 28},
                       train, test, o.epochs_lenet, o.batch, adam);
    ok &= acc >= 0.88 || o.train_limit >= 0;
  }
  std::printf("\n%s\n", ok ? "Targets reached (MLP >= 85%, LeNet >= 88%)."
                           : "A target was missed (MLP >= 85%, LeNet >= 88%).");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "fashion_mnist_demo: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model")
      o.model = value();
    else if (a == "--epochs-mlp")
      o.epochs_mlp = std::atoi(value().c_str());
    else if (a == "--epochs-lenet")
      o.epochs_lenet = std::atoi(value().c_str());
    else if (a == "--train-limit")
      o.train_limit = std::atoll(value().c_str());
    else if (a == "--batch")
      o.batch = std::atoll(value().c_str());
    else if (a == "--lr")
      o.lr = std::atof(value().c_str());
    else if (a == "--lenet-act")
      o.lenet_act = value();
    else if (a == "--data")
      o.data_dir = value();
    else if (a == "--quiet-ir")
      o.print_ir = false;
    else if (a == "--help") {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "%s", kUsage);
      return 2;
    }
  }
  if (o.model != "mlp" && o.model != "lenet" && o.model != "all") {
    std::fprintf(stderr, "fashion_mnist_demo: --model must be mlp, lenet or all\n");
    return 2;
  }
  if (o.batch < 1 || o.epochs_mlp < 0 || o.epochs_lenet < 0 || !(o.lr > 0)) {
    std::fprintf(stderr, "fashion_mnist_demo: --batch must be >= 1, epochs >= 0 and --lr > 0\n");
    return 2;
  }
  try {
    return Run(o);
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "fashion_mnist_demo: %s: %s\n", e.kind(), e.what());
    return 1;
  }
}
