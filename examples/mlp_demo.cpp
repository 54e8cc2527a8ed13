// mlp_demo.cpp - the README's demo: build the seed MLP with the Symbol API, infer its shapes,
// print its typed IR, and run it with the reference interpreter on Fashion-MNIST images.
//
// Usage: mlp_demo [--batch N] [--data DIR]
// The weights are Xavier-initialised and untrained: training arrives with the autodiff issue,
// so the predictions are those of a random network (about 10% right).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>

#include "kiln/frontend/idx.h"
#include "kiln/frontend/ops.h"
#include "kiln/frontend/symbol.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/passes/infer.h"

namespace {

const char* const kClassNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// Xavier-uniform weights (MXNet's default: factor "avg", magnitude 3), zero biases.
kiln::Tensor InitParameter(const std::string& name, const kiln::Shape& shape, std::mt19937& rng) {
  kiln::Tensor t = kiln::Tensor::Zeros(shape.dims(), kiln::DType::kFloat32);
  if (name.size() < 7 || name.compare(name.size() - 7, 7, "_weight") != 0) return t;
  double fan_in = double(t.size()) / double(shape[0]), fan_out = double(shape[0]);
  double bound = std::sqrt(3.0 / ((fan_in + fan_out) / 2));
  std::uniform_real_distribution<float> dist(float(-bound), float(bound));
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.size(); ++i) p[i] = dist(rng);
  return t;
}

int Run(int argc, char** argv) {
  int64_t batch = 100;
  std::string data_dir = kiln::kFashionMnistDir;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) {
      batch = std::atoll(argv[++i]);
    } else if (!std::strcmp(argv[i], "--data") && i + 1 < argc) {
      data_dir = argv[++i];
    } else {
      std::cerr << "usage: mlp_demo [--batch N] [--data DIR]\n";
      return 2;
    }
  }
  if (batch < 1 || batch > 10000) {
    std::cerr << "mlp_demo: error: --batch must be in 1..10000\n";
    return 2;
  }

  using namespace kiln;
  std::cout << "== kiln demo: the seed MLP on Fashion-MNIST, reference interpreter ==\n\n";

  // 1. The seed example, as written in the issue.
  Symbol data = Symbol::Variable("data");
  Symbol fc1 = FullyConnected(data, 128, "fc1");
  Symbol act1 = Activation(fc1, "relu", "relu1");
  Symbol fc2 = FullyConnected(act1, 64, "fc2");
  Symbol act2 = Activation(fc2, "relu", "relu2");
  Symbol fc3 = FullyConnected(act2, 10, "fc3");
  Symbol mlp = SoftmaxOutput(fc3, "softmax");

  std::cout << "1. Symbol API\n   arguments:";
  for (const auto& a : mlp.ListArguments()) std::cout << " " << a;
  std::cout << "\n   outputs:";
  for (const auto& o : mlp.ListOutputs()) std::cout << " " << o;
  std::cout << "\n\n";

  // 2. Shape and type inference from the data shape alone.
  Graph g = mlp.ToGraph();
  InferOptions infer;
  infer.shapes["data"] = Shape{batch, 784};
  InferShapes(g, infer);
  InferTypes(g, infer);
  std::cout << "2. Inferred from data (" << batch << ", 784):\n";
  for (uint32_t v : g.ArgumentNodes())
    std::cout << "   " << g.node(v).name << " " << g.shape(Entry{v, 0}).ToString() << "\n";
  std::cout << "   output " << g.shape(g.outputs()[0]).ToString() << "\n\n";

  // 3. The typed IR.
  std::cout << "3. Typed IR\n" << PrintGraph(g) << "\n";

  // 4. Data and parameters.
  auto t0 = std::chrono::steady_clock::now();
  ImageDataset test = ReadMnistStyle(data_dir, "t10k", batch);
  double read_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "4. Read " << test.images.dim(0) << " test images (" << test.rows << "x" << test.cols
            << ") from " << data_dir << " in " << read_ms << " ms\n\n";
  std::map<std::string, Tensor> values;
  std::mt19937 rng(42);
  for (uint32_t v : g.ArgumentNodes()) {
    const std::string& name = g.node(v).name;
    values[name] = InitParameter(name, g.shape(Entry{v, 0}), rng);
  }
  values["data"] = test.images;
  values["softmax_label"] = test.labels;

  // 5. Run.
  t0 = std::chrono::steady_clock::now();
  std::vector<Tensor> out = Interpret(g, values);
  double run_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const Tensor& probs = out[0];
  std::cout << "5. Reference interpreter: output " << probs.TypeString() << " in " << run_ms
            << " ms\n   first predictions (untrained Xavier weights, seed 42):\n";
  const float* p = probs.data<float>();
  int64_t correct = 0;
  for (int64_t i = 0; i < probs.dim(0); ++i) {
    int best = 0;
    for (int c = 1; c < 10; ++c)
      if (p[i * 10 + c] > p[i * 10 + best]) best = c;
    int label = int(test.labels.At(i));
    correct += best == label;
    if (i < 8)
      std::printf("   image %lld: predicted %-11s (p=%.3f)  label %s\n", (long long)i,
                  kClassNames[best], p[i * 10 + best], kClassNames[label]);
  }
  std::printf("   accuracy on these %lld images: %.1f%% (chance is 10%%; training comes next)\n",
              (long long)probs.dim(0), 100.0 * double(correct) / double(probs.dim(0)));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const kiln::Error& e) {
    std::cerr << "mlp_demo: " << e.kind() << ": " << e.what() << "\n";
    return 1;
  }
}
