// build_models.cpp - builds four models with the Symbol API and saves them as MXNet JSON.
//
//   build_models OUTDIR   writes OUTDIR/{mlp,lenet,resnet_block,resnet18}.json
//
// The models are those of kiln/frontend/models.h: the seed MLP (784-128-64-10), LeNet, a small
// ResNet-style network (one basic residual block with BatchNorm and an elemwise_add shortcut)
// and torchvision's ResNet-18. tests/lit/models runs this program and feeds each file to
// kiln-dump and kiln-opt.
#include <filesystem>
#include <iostream>

#include "kiln/frontend/models.h"
#include "kiln/frontend/symbol.h"

using namespace kiln;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: build_models OUTDIR\n";
    return 2;
  }
  try {
    std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);
    const std::pair<const char*, Symbol> nets[] = {{"mlp", models::Mlp()},
                                                     {"lenet", models::LeNet()},
                                                     {"resnet_block", models::ResNetBlockNet()},
                                                     {"resnet18", models::ResNet18()}};
    for (const auto& [name, symbol] : nets) {
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
