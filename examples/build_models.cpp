// build_models.cpp - builds three models with the Symbol API and saves them as MXNet JSON.
//
//   build_models OUTDIR   writes OUTDIR/mlp.json, OUTDIR/lenet.json, OUTDIR/resnet_block.json
//
// The models are the seed MLP (784-128-64-10), LeNet (two convolutions with tanh and max
// pooling, then two dense layers) and a small ResNet-style network (a convolution stem, one
// basic residual block with BatchNorm and an elemwise_add shortcut, global pooling and a
// classifier). tests/lit/models runs this program and feeds each file to kiln-dump and kiln-opt.
#include <filesystem>
#include <iostream>

#include "kiln/frontend/ops.h"
#include "kiln/frontend/symbol.h"

using namespace kiln;

namespace {

Symbol Mlp() {
  Symbol data = Symbol::Variable("data");
  Symbol fc1 = FullyConnected(data, 128, "fc1");
  Symbol act1 = Activation(fc1, "relu", "relu1");
  Symbol fc2 = FullyConnected(act1, 64, "fc2");
  Symbol act2 = Activation(fc2, "relu", "relu2");
  Symbol fc3 = FullyConnected(act2, 10, "fc3");
  return SoftmaxOutput(fc3, "softmax");
}

Symbol LeNet() {
  Symbol data = Symbol::Variable("data");
  Symbol conv1 = Convolution(data, 20, {5, 5}, "conv1");
  Symbol tanh1 = Activation(conv1, "tanh", "tanh1");
  Symbol pool1 = Pooling(tanh1, {2, 2}, "max", "pool1", {{"stride", "(2, 2)"}});
  Symbol conv2 = Convolution(pool1, 50, {5, 5}, "conv2");
  Symbol tanh2 = Activation(conv2, "tanh", "tanh2");
  Symbol pool2 = Pooling(tanh2, {2, 2}, "max", "pool2", {{"stride", "(2, 2)"}});
  Symbol flat = Flatten(pool2, "flatten");
  Symbol fc1 = FullyConnected(flat, 500, "fc1");
  Symbol tanh3 = Activation(fc1, "tanh", "tanh3");
  Symbol fc2 = FullyConnected(tanh3, 10, "fc2");
  return SoftmaxOutput(fc2, "softmax");
}

// Convolution (3x3, same padding, no bias), BatchNorm, optionally ReLU: ResNet's unit.
Symbol ConvBn(const Symbol& x, int64_t channels, const std::string& name, bool relu) {
  Symbol conv =
      Convolution(x, channels, {3, 3}, name + "_conv", {{"pad", "(1, 1)"}, {"no_bias", "True"}});
  Symbol bn = BatchNorm(conv, name + "_bn", {{"fix_gamma", "False"}, {"eps", "2e-05"}});
  return relu ? Activation(bn, "relu", name + "_relu") : bn;
}

Symbol ResNetBlock() {
  Symbol data = Symbol::Variable("data");
  Symbol stem = ConvBn(data, 16, "stem", true);
  Symbol branch = ConvBn(ConvBn(stem, 16, "unit1a", true), 16, "unit1b", false);
  Symbol sum = elemwise_add(branch, stem, "unit1_add");
  Symbol out = Activation(sum, "relu", "unit1_relu");
  Symbol pool = Pooling(out, {}, "avg", "pool", {{"global_pool", "True"}});
  Symbol fc = FullyConnected(Flatten(pool, "flatten"), 10, "fc");
  return SoftmaxOutput(fc, "softmax");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: build_models OUTDIR\n";
    return 2;
  }
  try {
    std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);
    const std::pair<const char*, Symbol> models[] = {
        {"mlp", Mlp()}, {"lenet", LeNet()}, {"resnet_block", ResNetBlock()}};
    for (const auto& [name, symbol] : models) {
      std::string path = (dir / (std::string(name) + ".json")).string();
      symbol.Save(path);
      std::cout << path << ": " << symbol.ListArguments().size() << " arguments, "
                << symbol.ListAuxiliaryStates().size() << " auxiliary states\n";
    }
  } catch (const std::exception& e) {
    // kiln::Error and filesystem errors alike: say what failed.
    std::cerr << "build_models: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
