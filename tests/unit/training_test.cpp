// training_test.cpp - short training runs on Fashion-MNIST subsets must prove learning: after
// one pass over a few thousand images, test accuracy is far above chance (10%).
#include <iostream>

#include "kiln/frontend/data_iter.h"
#include "kiln/frontend/executor.h"
#include "kiln/frontend/idx.h"
#include "kiln/frontend/initializer.h"
#include "kiln/frontend/models.h"
#include "kiln/frontend/optimizer.h"
#include "test_util.h"

namespace kiln {
namespace {

// One pass of Adam over `train_n` training images in batches of 50, then the accuracy on the
// first 1000 test images.
double TrainOnePass(const Symbol& net, std::vector<int64_t> sample_shape, int64_t train_n) {
  ImageDataset train = ReadMnistStyle(kFashionMnistDir, "train", train_n);
  ImageDataset test = ReadMnistStyle(kFashionMnistDir, "t10k", 1000);
  auto with_batch = [&](int64_t n) {
    std::vector<int64_t> s = {n};
    s.insert(s.end(), sample_shape.begin(), sample_shape.end());
    return s;
  };
  Executor exec = net.SimpleBind(Device::CPU(), {{"data", Shape(with_batch(50))}},
                                 GradReqs::Except(GradReq::kWrite, {"data", "softmax_label"}));
  InitParams(exec, Initializer::Xavier(), {"data", "softmax_label"});
  Adam adam({.learning_rate = 0.002, .rescale_grad = 1.0 / 50});
  DataIter it(train.images.Reshaped(with_batch(train_n)), train.labels, 50, true, 3);
  for (it.Reset(); it.Next();) {
    exec.Forward(true, {{"data", it.data()}, {"softmax_label", it.label()}});
    exec.Backward();
    adam.Update(exec);
  }
  Executor eval =
      net.SimpleBind(Device::CPU(), {{"data", Shape(with_batch(1000))}}, GradReq::kNull, {}, &exec);
  eval.Forward(false, {{"data", test.images.Reshaped(with_batch(1000))}});
  const Tensor& probs = eval.outputs()[0];
  int64_t correct = 0;
  for (int64_t r = 0; r < 1000; ++r) {
    int64_t best = 0;
    for (int64_t c = 1; c < 10; ++c)
      if (probs.At(r * 10 + c) > probs.At(r * 10 + best)) best = c;
    correct += best == int64_t(test.labels.At(r));
  }
  return double(correct) / 1000.0;
}

TEST(Training, MlpLearnsFromOnePassOverThreeThousandImages) {
  double acc = TrainOnePass(models::Mlp(), {784}, 3000);
  std::cout << "MLP test accuracy after one pass: " << acc << "\n";
  EXPECT_GT(acc, 0.65) << "test accuracy " << acc;  // chance is 0.10
}

TEST(Training, LeNetLearnsFromOnePassOverTwoThousandImages) {
  double acc = TrainOnePass(models::LeNet(), {1, 28, 28}, 2000);
  std::cout << "LeNet test accuracy after one pass: " << acc << "\n";
  EXPECT_GT(acc, 0.55) << "test accuracy " << acc;
}

}  // namespace
}  // namespace kiln
