// models.cpp - reference networks built with the Symbol API.
#include "kiln/frontend/models.h"

#include "kiln/frontend/ops.h"

namespace kiln::models {

namespace {

// Convolution (no bias), BatchNorm, optionally ReLU: the unit ResNets are made of.
Symbol ConvBn(const Symbol& x, int64_t channels, int64_t kernel, int64_t stride,
              const std::string& name, bool relu) {
  int64_t pad = kernel / 2;
  Symbol conv = Convolution(x, channels, {kernel, kernel}, name + "_conv",
                            {{"stride", StrCat("(", stride, ", ", stride, ")")},
                             {"pad", StrCat("(", pad, ", ", pad, ")")},
                             {"no_bias", "True"}});
  Symbol bn = BatchNorm(conv, name + "_bn", {{"fix_gamma", "False"}, {"eps", "1e-05"}});
  return relu ? Activation(bn, "relu", name + "_relu") : bn;
}

// ResNet's basic block: two 3x3 conv-BN units and a shortcut (a 1x1 projection when the
// stride or the channel count changes), added and passed through ReLU.
Symbol BasicBlock(const Symbol& x, int64_t channels, int64_t stride, bool project,
                  const std::string& name) {
  Symbol a = ConvBn(x, channels, 3, stride, name + "_a", true);
  Symbol b = ConvBn(a, channels, 3, 1, name + "_b", false);
  Symbol shortcut = project ? ConvBn(x, channels, 1, stride, name + "_proj", false) : x;
  return Activation(elemwise_add(b, shortcut, name + "_add"), "relu", name + "_relu");
}

Symbol Classifier(const Symbol& features, int64_t num_classes, const std::string& fc_name) {
  Symbol pool = Pooling(features, {1, 1}, "avg", "pool", {{"global_pool", "True"}});
  Symbol fc = FullyConnected(Flatten(pool, "flatten"), num_classes, fc_name);
  return SoftmaxOutput(fc, "softmax");
}

}  // namespace

Symbol Mlp(const std::vector<int64_t>& hidden, int64_t num_classes) {
  Symbol x = Symbol::Variable("data");
  int layer = 1;
  for (int64_t width : hidden) {
    x = FullyConnected(x, width, StrCat("fc", layer));
    x = Activation(x, "relu", StrCat("relu", layer));
    ++layer;
  }
  x = FullyConnected(x, num_classes, StrCat("fc", layer));
  return SoftmaxOutput(x, "softmax");
}

Symbol LeNet(int64_t num_classes, const std::string& act) {
  Symbol data = Symbol::Variable("data");
  Symbol conv1 = Convolution(data, 20, {5, 5}, "conv1");
  Symbol act1 = Activation(conv1, act, act + "1");
  Symbol pool1 = Pooling(act1, {2, 2}, "max", "pool1", {{"stride", "(2, 2)"}});
  Symbol conv2 = Convolution(pool1, 50, {5, 5}, "conv2");
  Symbol act2 = Activation(conv2, act, act + "2");
  Symbol pool2 = Pooling(act2, {2, 2}, "max", "pool2", {{"stride", "(2, 2)"}});
  Symbol fc1 = FullyConnected(Flatten(pool2, "flatten"), 500, "fc1");
  Symbol act3 = Activation(fc1, act, act + "3");
  Symbol fc2 = FullyConnected(act3, num_classes, "fc2");
  return SoftmaxOutput(fc2, "softmax");
}

Symbol ResNetBlockNet(int64_t channels, int64_t num_classes) {
  Symbol stem = ConvBn(Symbol::Variable("data"), channels, 3, 1, "stem", true);
  Symbol block = BasicBlock(stem, channels, 1, false, "unit1");
  return Classifier(block, num_classes, "fc");
}

Symbol ResNet18(int64_t num_classes) {
  Symbol x = ConvBn(Symbol::Variable("data"), 64, 7, 2, "conv1", true);
  x = Pooling(x, {3, 3}, "max", "maxpool", {{"stride", "(2, 2)"}, {"pad", "(1, 1)"}});
  const int64_t widths[4] = {64, 128, 256, 512};
  for (int stage = 0; stage < 4; ++stage) {
    int64_t stride = stage == 0 ? 1 : 2;
    std::string name = StrCat("layer", stage + 1);
    x = BasicBlock(x, widths[stage], stride, stage != 0, name + "_0");
    x = BasicBlock(x, widths[stage], 1, false, name + "_1");
  }
  return Classifier(x, num_classes, "fc");
}

}  // namespace kiln::models
