// models_bench: kiln's side of issue 5's end-to-end table, and compiled code against the
// reference interpreter.
//
//   build/bench/kiln_models_bench [--peers-dir build/peers] [--threads T] [--runs N]
//                                 [--interpreter-runs N]
//
// The MLP 784-512-512-10 and ResNet-18 are the ONNX models bench/peers/torch_bench.py exports
// (bench/peers.sh writes them to build/peers), imported with kiln's ONNX importer: the same
// architecture and weights as the PyTorch and ONNX Runtime rows. The MLP's training step
// (forward, softmax cross-entropy, backward, SGD update, batch 64) is models::Mlp({512, 512})
// on the Executor, as PyTorch's step is forward, loss, backward and optimizer step.
//
// Prints, in peers.sh's format, `kiln CASE median_ms min_ms` (compiled) and
// `interpreter CASE median_ms min_ms` lines, and `compile MODEL ms` for the JIT compile time
// of each model (passes, lowering and LLVM, measured on a cold cache). Inference runs with
// the weights frozen (CompiledRun::FreezeVariables: packed once on the first run). bench/e2e.sh
// puts them beside the peers' lines and prints the ratios.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kiln/codegen/compile.h"
#include "kiln/frontend/executor.h"
#include "kiln/frontend/initializer.h"
#include "kiln/frontend/models.h"
#include "kiln/frontend/onnx.h"
#include "kiln/frontend/optimizer.h"
#include "kiln/ir/interpreter.h"

namespace {

using Clock = std::chrono::steady_clock;

// Median and minimum milliseconds of `runs` calls after `warmup` calls.
std::pair<double, double> Timed(const std::function<void()>& fn, int runs, int warmup = 3) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    auto t0 = Clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front()};
}

void Report(const char* who, const std::string& name, std::pair<double, double> t) {
  std::printf("%s %s %.4f %.4f\n", who, name.c_str(), t.first, t.second);
  std::fflush(stdout);
}

kiln::Tensor Random(std::vector<int64_t> shape, uint32_t seed) {
  kiln::Tensor t = kiln::Tensor::Empty(std::move(shape), kiln::DType::kFloat32);
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0, 1);
  for (int64_t i = 0; i < t.size(); ++i) t.data<float>()[i] = n(rng);
  return t;
}

// Inference on an ONNX model at one batch size: compiled, then (fewer runs) interpreted.
void OnnxCase(const std::string& file, const std::string& name, std::vector<int64_t> input,
              int runs, int interpreter_runs, bool report_compile) {
  kiln::OnnxImportOptions opt;
  opt.input_shapes["data"] = input;
  kiln::OnnxModel m = kiln::ImportOnnxFile(file, opt);
  std::map<std::string, kiln::Tensor> vars = m.params;
  vars["data"] = Random(input, 1);
  kiln::codegen::CompileOptions co;
  for (const auto& [n, t] : vars) co.infer.shapes[n] = kiln::Shape(t.shape());
  auto t0 = Clock::now();
  auto cg = kiln::codegen::CompileGraph(m.graph, co);
  double compile_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (report_compile) {
    std::printf("compile %s %.1f\n", name.c_str(), compile_ms);
    std::fprintf(stderr, "%s: %s\n", name.c_str(), cg->Report().c_str());
  }
  kiln::codegen::CompiledRun run(cg);
  for (const auto& [n, t] : vars) run.Bind(n, t);
  run.FreezeVariables();  // fixed weights, packed once, as ONNX Runtime's session does
  Report("kiln", name, Timed([&] { run.Run(); }, runs));
  if (interpreter_runs > 0)
    Report("interpreter", name,
           Timed([&] { kiln::Interpret(m.graph, vars); }, interpreter_runs, 1));
}

void MlpTrainCase(int runs, int interpreter_runs) {
  using namespace kiln;
  for (ExecutorBackend b : {ExecutorBackend::kCompiled, ExecutorBackend::kInterpreter}) {
    int n = b == ExecutorBackend::kCompiled ? runs : interpreter_runs;
    if (n <= 0) continue;
    SetExecutorBackend(b);
    Symbol net = models::Mlp({512, 512}, 10);
    Executor exec = net.SimpleBind(Device::CPU(), {{"data", Shape({64, 784})}},
                                   GradReqs::Except(GradReq::kWrite, {"data", "softmax_label"}));
    InitParams(exec, Initializer::Xavier(), {"data", "softmax_label"});
    SGD sgd({.learning_rate = 0.01, .rescale_grad = 1.0 / 64});
    Tensor x = Random({64, 784}, 2);
    Tensor y = Tensor::Zeros({64}, DType::kFloat32);
    for (int64_t i = 0; i < 64; ++i) y.data<float>()[i] = float(i % 10);
    Report(b == ExecutorBackend::kCompiled ? "kiln" : "interpreter", "mlp_train_b64",
           Timed(
               [&] {
                 exec.Forward(true, {{"data", x}, {"softmax_label", y}});
                 exec.Backward();
                 sgd.Update(exec);
               },
               n, 2));
  }
  SetExecutorBackend(ExecutorBackend::kDefault);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "build/peers";
  int runs = 200, interpreter_runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--peers-dir")
      dir = argv[i + 1];
    else if (a == "--runs")
      runs = std::atoi(argv[i + 1]);
    else if (a == "--interpreter-runs")
      interpreter_runs = std::atoi(argv[i + 1]);
    else if (a == "--threads")
      setenv("KILN_NUM_THREADS", argv[i + 1], 1);
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  try {
    for (int64_t b : {1, 64, 256})
      OnnxCase(dir + "/mlp.onnx", "mlp_infer_b" + std::to_string(b), {b, 784}, runs,
               interpreter_runs, b == 1);
    MlpTrainCase(runs, interpreter_runs);
    OnnxCase(dir + "/resnet18_b1.onnx", "resnet18_infer_b1", {1, 3, 224, 224},
             std::max(10, runs / 10), std::min(interpreter_runs, 2), true);
    OnnxCase(dir + "/resnet18_b16.onnx", "resnet18_infer_b16", {16, 3, 224, 224},
             std::max(5, runs / 40), 0, false);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln_models_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
