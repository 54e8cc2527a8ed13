// kiln/frontend/models.h - reference networks built with the Symbol API.
//
// The models that examples, tests and benchmarks share, so that each is written once:
// - Mlp: the seed example's multi-layer perceptron (784-128-64-10 by default): FullyConnected
//   layers fc1, fc2, ... with ReLU activations relu1, relu2, ... and a SoftmaxOutput "softmax".
// - LeNet: two 5x5 convolutions (20 and 50 filters) with an activation (tanh, as MXNet's
//   tutorial, or e.g. relu; nodes named <act>1, <act>2, <act>3) and 2x2 max pooling, then
//   dense 500 with the activation and the classifier; for 1x28x28 images.
// - ResNetBlockNet: a small ResNet-style network: a 3x3 convolution stem with BatchNorm and
//   ReLU, one basic residual block (two conv-BN units and an elemwise_add shortcut), global
//   average pooling and a classifier.
// - ResNet18: torchvision's resnet18 architecture (7x7/2 stem, 3x3/2 max pool, four stages of
//   two basic blocks with 64, 128, 256, 512 channels, 1x1/2 projection shortcuts, global average
//   pooling, dense classifier), BatchNorm with eps 1e-5 and fix_gamma False as PyTorch has it.
// Every model ends in SoftmaxOutput named "softmax", so its label is "softmax_label".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/frontend/symbol.h"

namespace kiln::models {

Symbol Mlp(const std::vector<int64_t>& hidden = {128, 64}, int64_t num_classes = 10);
Symbol LeNet(int64_t num_classes = 10, const std::string& act = "tanh");
Symbol ResNetBlockNet(int64_t channels = 16, int64_t num_classes = 10);
Symbol ResNet18(int64_t num_classes = 1000);

}  // namespace kiln::models
