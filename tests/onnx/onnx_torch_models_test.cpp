// onnx_torch_models_test.cpp - a LeNet and a ResNet-style network exported from PyTorch import
// and compute PyTorch's outputs on kiln's reference interpreter.
//
// export_torch_models.py (the CTest fixture onnx.torch_export) writes the models with a dynamic
// batch axis, an input and PyTorch's output into $KILN_TORCH_MODELS/<model>/. The batch is
// fixed here through OnnxImportOptions::input_shapes, as `--shape input=2x1x28x28` does in the
// tools; each is also saved as MXNet symbol JSON and reloaded. Without python3-torch the script
// writes SKIPPED with its reason, which is printed here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "kiln/frontend/onnx.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/mxnet_json.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

fs::path ModelsDir() {
  const char* d = std::getenv("KILN_TORCH_MODELS");
  return d ? fs::path(d) : fs::path();
}

void CheckModel(const std::string& name, std::vector<int64_t> shape) {
  fs::path root = ModelsDir();
  ASSERT_FALSE(root.empty()) << "KILN_TORCH_MODELS is not set (run through ctest)";
  if (fs::exists(root / "SKIPPED")) {
    std::ifstream in(root / "SKIPPED");
    std::string reason((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    GTEST_SKIP() << reason;
  }
  fs::path dir = root / name;
  ASSERT_TRUE(fs::exists(dir / "model.onnx")) << dir << " has no model.onnx";

  // The batch axis is dynamic in the export: without a shape the importer names it.
  try {
    ImportOnnxFile((dir / "model.onnx").string());
    ADD_FAILURE() << "a dynamic batch axis was accepted without --shape";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("input \"input\" has a dynamic dim 0"), std::string::npos)
        << e.what();
  }

  OnnxImportOptions opt;
  opt.input_shapes["input"] = shape;
  OnnxModel m = ImportOnnxFile((dir / "model.onnx").string(), opt);
  ASSERT_EQ(m.input_names, std::vector<std::string>{"input"});
  std::map<std::string, Tensor> vars = m.params;
  vars["input"] = ReadOnnxTensorFile((dir / "input_0.pb").string());
  Tensor want = ReadOnnxTensorFile((dir / "output_0.pb").string());
  std::vector<Tensor> got = Interpret(m.graph, vars);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].shape(), want.shape());
  double worst = 0;
  for (int64_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::fabs(got[0].At(i) - want.At(i)) / (1e-4 + std::fabs(want.At(i))));
  EXPECT_LT(worst, 1e-3) << name << ": largest relative difference from PyTorch";
  // MXNet interchange: the imported network saved as symbol JSON and loaded back computes the
  // same values.
  Graph back = LoadMXNetJson(SaveMXNetJson(m.graph), name + "-symbol.json");
  EXPECT_EQ(Interpret(back, vars)[0].ToDoubles(), got[0].ToDoubles());
  std::cout << name << ": " << m.graph.num_nodes() << " kiln nodes, " << m.params.size()
            << " parameters, largest relative difference from PyTorch " << worst << "\n";
}

TEST(TorchModels, LeNetMatchesPyTorch) {
  CheckModel("lenet", {2, 1, 28, 28});
}

TEST(TorchModels, ResNetMatchesPyTorch) {
  CheckModel("resnet", {2, 3, 64, 64});
}

}  // namespace
}  // namespace kiln
