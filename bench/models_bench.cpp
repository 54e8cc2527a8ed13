// models_bench: kiln's side of issue 5's end-to-end table, and compiled code against the
// reference interpreter.
//
//   build/bench/kiln_models_bench [--peers-dir build/peers] [--threads T] [--runs N]
//                                 [--interpreter-runs N] [--fold-batchnorm 1|0]
//                                 [--epilogue-in-product 1|0]
//                                 [--cases mlp,resnet,lstm,conv_epilogue]
//
// The MLP 784-512-512-10 inference rows are the ONNX model bench/peers/torch_bench.py exports
// (bench/peers.sh writes it to build/peers), imported with kiln's ONNX importer: the same
// architecture and weights as the PyTorch and ONNX Runtime rows. The MLP's training step
// (forward, softmax cross-entropy, backward, SGD update, batch 64) is models::Mlp({512, 512})
// on the Executor, as PyTorch's step is forward, loss, backward and optimizer step.
//
// ResNet-18 is models::ResNet18(1000), built with the Symbol API, holding the peers' weights:
// torch_bench.py writes torchvision's state_dict (BatchNorm unfolded) to resnet18.params, and
// each tensor is mapped onto the Symbol model by name (conv1.weight -> conv1_conv_weight,
// layer2.0.bn1.running_var -> layer2_0_a_bn_moving_var, ...); a name either side lacks, a
// tensor used twice or left unused, or a shape or dtype that differs stops the program (exit
// 1, naming each). The weights are compile-time constants, as a deployed model's are: the
// inference passes up to fusion run with them (simplify-inference folds every BatchNorm into
// its convolution, as ONNX Runtime's session does with the ONNX model) before CompileGraph;
// --fold-batchnorm 0 compiles the Symbol graph with the weights as plain variables instead
// (BatchNorm as a per-channel scale and shift at run time). --epilogue-in-product 0 runs
// every product's and convolution's epilogue as a kernel call of its own
// (CompileOptions::epilogue_in_gemm, D43 and D44), to measure what running it inside is worth.
// Before any ResNet-18 timing, the compiled model runs on the inputs PyTorch ran
// (resnet18_b{1,16}_input.npy): its logits at batch 1 must equal PyTorch's (resnet18_b1_torch.npy)
// and those of the exported ONNX model (kiln's importer and reference interpreter) within 1e-4 of
// the largest logit, and the timed model's probabilities at batch 1 and 16 must equal the softmax
// of PyTorch's logits within 1e-4 of the largest probability; `check ...` lines print each largest
// difference, and a failed check exits 1.
//
// The LSTM (decision D45) is one layer built with the Symbol API (Symbol::Create("LSTM"),
// sequence 32, batch 16, input = hidden = 256, float32, weights uniform in +-1/16): compiled, it
// is one call of the runtime library's recurrent layer (LibraryOpKind::kRnn); its outputs must
// equal the reference interpreter's within 2e-5 (1 + |reference|) (`check lstm ...`), then both
// are timed (--runs / 4 compiled runs, at least 10; --interpreter-runs). conv_epilogue (not run by
// default) measures D44 on single layers: a 3x3 convolution with bias, a residual add and relu
// (ResNet-18's 64x56, 128x28, 256x14 and 512x7 shapes, batch 1, frozen weights) compiled with the
// epilogue inside the convolution and as a call of its own, --runs runs of each alternated: `kiln
// conv3x3_CxH_inside|separate` lines. --cases picks the cases (mlp, resnet and lstm by default;
// lstm and conv_epilogue need no peers' files).
//
// Prints, in peers.sh's format, `kiln CASE median_ms min_ms` (compiled) and
// `interpreter CASE median_ms min_ms` lines, and `compile MODEL ms` for the JIT compile time
// of each model (passes, lowering and LLVM, measured on a cold cache; for ResNet-18 with the
// constant passes that fold BatchNorm). Inference runs with the weights frozen
// (CompiledRun::FreezeVariables: packed once on the first run). bench/e2e.sh puts them beside
// the peers' lines and prints the ratios.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/codegen/compile.h"
#include "kiln/frontend/executor.h"
#include "kiln/frontend/initializer.h"
#include "kiln/frontend/models.h"
#include "kiln/frontend/onnx.h"
#include "kiln/frontend/optimizer.h"
#include "kiln/frontend/params.h"
#include "kiln/frontend/symbol.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/passes/pass_manager.h"
#include "kiln/runtime/library_ops.h"
#include "kiln/runtime/npy.h"

namespace {

bool epilogue_in_product = true;  // --epilogue-in-product

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
  co.epilogue_in_gemm = epilogue_in_product;
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

// --- ResNet-18: models::ResNet18 with torchvision's weights ---

[[noreturn]] void Fail(const std::string& message) {
  throw std::runtime_error(message);
}

// The name torchvision's resnet18 gives a parameter or statistic of models::ResNet18 in its
// state_dict, or "" where it has none: conv1_conv_weight -> conv1.weight, conv1_bn_gamma ->
// bn1.weight, layer2_0_a_bn_moving_var -> layer2.0.bn1.running_var, layer2_0_b_conv_weight ->
// layer2.0.conv2.weight, layer2_0_proj_bn_beta -> layer2.0.downsample.1.bias, fc_bias ->
// fc.bias.
std::string TorchvisionName(const std::string& name) {
  if (name == "fc_weight") return "fc.weight";
  if (name == "fc_bias") return "fc.bias";
  static const std::regex unit(R"(^(conv1|layer([1-4])_([01])_(a|b|proj))_)"
                               R"((conv_weight|bn_gamma|bn_beta|bn_moving_mean|bn_moving_var)$)");
  std::smatch m;
  if (!std::regex_match(name, m, unit)) return "";
  std::string conv = "conv1", bn = "bn1";
  if (m[1] != "conv1") {
    std::string block = "layer" + m[2].str() + "." + m[3].str() + ".";
    if (m[4] == "a") {
      conv = block + "conv1", bn = block + "bn1";
    } else if (m[4] == "b") {
      conv = block + "conv2", bn = block + "bn2";
    } else {
      conv = block + "downsample.0", bn = block + "downsample.1";
    }
  }
  static const std::map<std::string, std::string> field = {{"conv_weight", "weight"},
                                                           {"bn_gamma", "weight"},
                                                           {"bn_beta", "bias"},
                                                           {"bn_moving_mean", "running_mean"},
                                                           {"bn_moving_var", "running_var"}};
  return (m[5] == "conv_weight" ? conv : bn) + "." + field.at(m[5].str());
}

// models::ResNet18's BatchNorm must compute what PyTorch's BatchNorm2d does in eval mode: gamma
// used (fix_gamma false) and eps 1e-5 (torch_bench.py checks torchvision's side).
void CheckBatchNormAttrs(const kiln::Symbol& net) {
  kiln::Graph g = net.ToGraph();
  int count = 0;
  for (const kiln::Node& n : g.nodes()) {
    if (n.op_name() != "BatchNorm") continue;
    ++count;
    std::string eps, fix_gamma = "True";  // the op's defaults print nothing
    for (const auto& [key, value] : n.op->attrs.print(n.attrs)) {
      if (key == "eps") eps = value;
      if (key == "fix_gamma") fix_gamma = value;
    }
    if (eps.empty() || std::fabs(std::stod(eps) - 1e-5) > 1e-12 || fix_gamma != "False")
      Fail(kiln::StrCat("models::ResNet18: BatchNorm \"", n.name, "\" has eps ",
                        eps.empty() ? "(default)" : eps, ", fix_gamma ", fix_gamma,
                        "; PyTorch's has eps 1e-05 and uses gamma"));
  }
  if (count != 20) Fail(kiln::StrCat("models::ResNet18 has ", count, " BatchNorm nodes, not 20"));
}

// Every parameter and auxiliary state of `net` (models::ResNet18), from torchvision's
// state_dict in `file`: each name mapped, each tensor used exactly once, shapes and dtypes equal.
std::map<std::string, kiln::Tensor> ResNet18Params(const kiln::Symbol& net,
                                                   const std::string& file) {
  kiln::ParamFile pf = kiln::LoadParams(file);
  std::map<std::string, kiln::Tensor> file_tensors = pf.arg;
  std::vector<std::string> problems;
  for (const auto& [name, t] : pf.aux)
    if (!file_tensors.emplace(name, t).second) problems.push_back(name + ": in arg and aux");
  kiln::ShapeResult shapes = net.InferShape({{"data", kiln::Shape({1, 3, 224, 224})}});
  std::map<std::string, kiln::Tensor> params;
  std::set<std::string> used;
  auto take = [&](const std::string& name, const kiln::Shape& shape) {
    std::string tv = TorchvisionName(name);
    auto it = file_tensors.find(tv);
    if (tv.empty()) {
      problems.push_back(name + ": no torchvision counterpart");
    } else if (it == file_tensors.end()) {
      problems.push_back(kiln::StrCat(name, ": ", tv, " is not in the file"));
    } else if (!used.insert(tv).second) {
      problems.push_back(kiln::StrCat(name, ": ", tv, " used twice"));
    } else if (it->second.dtype() != kiln::DType::kFloat32 || it->second.shape() != shape.dims()) {
      problems.push_back(kiln::StrCat(name, " ", shape.ToString(), " float32: ", tv, " is ",
                                      kiln::ShapeString(it->second.shape()), " ",
                                      kiln::DTypeName(it->second.dtype())));
    } else {
      params[name] = it->second;
    }
  };
  for (const auto& [name, shape] : shapes.arguments)
    if (name != "data" && name != "softmax_label") take(name, shape);
  for (const auto& [name, shape] : shapes.aux_states) take(name, shape);
  for (const auto& [name, t] : file_tensors)
    if (!used.count(name))
      problems.push_back(
          kiln::StrCat(name, " ", kiln::ShapeString(t.shape()), ": not used by models::ResNet18"));
  if (!problems.empty()) {
    std::string text = kiln::StrCat(file, ": torchvision's resnet18 does not map onto ",
                                    "models::ResNet18(1000):");
    for (const std::string& p : problems) text += "\n  " + p;
    Fail(text);
  }
  std::fprintf(stderr, "resnet18: %zu tensors of %s mapped onto models::ResNet18 by name\n",
               params.size(), file.c_str());
  return params;
}

// A Symbol model compiled for inference with its parameters, and what runs it.
struct ParamModel {
  kiln::Graph graph;                         // given to CompileGraph (the interpreter runs it too)
  std::map<std::string, kiln::Tensor> vars;  // a value for every variable of `graph`
  std::shared_ptr<const kiln::codegen::CompiledGraph> cg;
  double compile_ms = 0;
};

// With `fold`, the parameters are constants of the inference passes up to fusion (-O3 but
// fuse: simplify-inference folds BatchNorm into the convolutions' weights and biases), whose
// result CompileGraph compiles; without, the Symbol graph is compiled with the parameters as
// variables.
ParamModel CompileWithParams(const kiln::Symbol& net,
                             const std::map<std::string, kiln::Tensor>& params,
                             const kiln::Tensor& data, bool fold) {
  auto t0 = Clock::now();
  ParamModel r;
  r.graph = net.ToGraph();
  kiln::PassContext ctx;
  if (fold) {
    ctx.constants = params;
    ctx.infer.shapes["data"] = kiln::Shape(data.shape());
    for (const auto& [n, t] : params) ctx.infer.shapes[n] = kiln::Shape(t.shape());
    std::vector<std::string> pipeline;
    for (const std::string& p : kiln::OptPipeline(3))
      if (p != "fuse") pipeline.push_back(p);
    r.graph = kiln::PassManager(pipeline).Run(std::move(r.graph), ctx);
  }
  for (uint32_t v : r.graph.VariableNodes()) {
    const std::string& name = r.graph.node(v).name;
    auto c = ctx.constants.find(name);
    auto p = params.find(name);
    if (name == "data")
      r.vars[name] = data;
    else if (name == "softmax_label")
      r.vars[name] = kiln::Tensor::Zeros({data.shape()[0]}, kiln::DType::kFloat32);
    else if (c != ctx.constants.end())
      r.vars[name] = c->second;
    else if (p != params.end())
      r.vars[name] = p->second;
    else
      Fail("variable \"" + name + "\" has no value");
  }
  kiln::codegen::CompileOptions co;
  co.epilogue_in_gemm = epilogue_in_product;
  for (const auto& [n, t] : r.vars) co.infer.shapes[n] = kiln::Shape(t.shape());
  r.cg = kiln::codegen::CompileGraph(r.graph, co);
  r.compile_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return r;
}

std::unique_ptr<kiln::codegen::CompiledRun> Bound(const ParamModel& m) {
  auto run = std::make_unique<kiln::codegen::CompiledRun>(m.cg);
  for (const auto& [n, t] : m.vars) run->Bind(n, t);
  run->FreezeVariables();  // fixed weights, packed once, as ONNX Runtime's session does
  return run;
}

kiln::Tensor ReadNpyShaped(const std::string& path, const std::vector<int64_t>& shape) {
  kiln::Tensor t = kiln::ReadNpy(path);
  if (t.dtype() != kiln::DType::kFloat32 || t.shape() != shape)
    Fail(kiln::StrCat(path, ": ", kiln::ShapeString(t.shape()), " ", kiln::DTypeName(t.dtype()),
                      ", expected ", kiln::ShapeString(shape), " float32 (run bench/peers.sh)"));
  return t;
}

// Rows of softmax(logits), computed in double.
kiln::Tensor Softmax(const kiln::Tensor& logits) {
  kiln::Tensor p = kiln::Tensor::Empty(logits.shape(), kiln::DType::kFloat32);
  int64_t rows = logits.shape()[0], cols = logits.shape()[1];
  for (int64_t r = 0; r < rows; ++r) {
    const float* z = logits.data<float>() + r * cols;
    double top = *std::max_element(z, z + cols), sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += std::exp(double(z[c]) - top);
    for (int64_t c = 0; c < cols; ++c)
      p.data<float>()[r * cols + c] = float(std::exp(double(z[c]) - top) / sum);
  }
  return p;
}

constexpr double kTolerance = 1e-4;  // of the reference's largest magnitude

// Prints the largest difference of `got` from `want` and fails unless it is at most
// kTolerance times want's largest magnitude.
void CheckClose(const std::string& what, const kiln::Tensor& got, const kiln::Tensor& want) {
  if (got.shape() != want.shape() || got.dtype() != kiln::DType::kFloat32 ||
      want.dtype() != kiln::DType::kFloat32)
    Fail(kiln::StrCat("check ", what, ": ", kiln::ShapeString(got.shape()), " against ",
                      kiln::ShapeString(want.shape())));
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < want.size(); ++i) {
    double g = got.data<float>()[i], w = want.data<float>()[i];
    diff = std::isnan(g) ? INFINITY : std::max(diff, std::fabs(g - w));
    scale = std::max(scale, std::fabs(w));
  }
  bool ok = diff <= kTolerance * scale;
  std::printf(
      "check %s: max |difference| %.3g, largest |reference| %.4g, relative %.3g, %s "
      "(tolerance %.0e)\n",
      what.c_str(), diff, scale, diff / scale, ok ? "ok" : "FAILED", kTolerance);
  std::fflush(stdout);
  if (!ok) Fail("check " + what + " failed: the model does not compute what PyTorch's does");
}

// The logits at batch 1 (models::ResNet18 up to its classifier, compiled as the timed model
// is) against PyTorch's and against the ONNX model that ONNX Runtime runs (reference
// interpreter).
void CheckResNetLogits(const kiln::Symbol& net, const std::map<std::string, kiln::Tensor>& params,
                       const std::string& dir, bool fold) {
  kiln::Tensor x = ReadNpyShaped(dir + "/resnet18_b1_input.npy", {1, 3, 224, 224});
  kiln::Tensor want = ReadNpyShaped(dir + "/resnet18_b1_torch.npy", {1, 1000});
  ParamModel m = CompileWithParams(net.GetInternal("fc_output"), params, x, fold);
  auto run = Bound(m);
  run->Run();
  kiln::Tensor logits = run->output(0).Clone();
  CheckClose("resnet18 logits b1, kiln (Symbol API, compiled) vs PyTorch", logits, want);
  kiln::OnnxImportOptions opt;
  opt.input_shapes["data"] = {1, 3, 224, 224};
  kiln::OnnxModel onnx = kiln::ImportOnnxFile(dir + "/resnet18_b1.onnx", opt);
  std::map<std::string, kiln::Tensor> vars = onnx.params;
  vars["data"] = x;
  CheckClose("resnet18 logits b1, kiln (Symbol API, compiled) vs the ONNX model (interpreted)",
             logits, kiln::Interpret(onnx.graph, vars).at(0));
}

// Inference of models::ResNet18 at one batch size on PyTorch's input: compiled (checked against
// PyTorch's probabilities after the first run and after the timed ones), then (fewer runs)
// interpreted.
void ResNetCase(const kiln::Symbol& net, const std::map<std::string, kiln::Tensor>& params,
                const std::string& dir, int64_t batch, int runs, int interpreter_runs,
                bool report_compile, bool fold) {
  std::string name = "resnet18_infer_b" + std::to_string(batch);
  std::string stem = dir + "/resnet18_b" + std::to_string(batch);
  kiln::Tensor x = ReadNpyShaped(stem + "_input.npy", {batch, 3, 224, 224});
  kiln::Tensor want = Softmax(ReadNpyShaped(stem + "_torch.npy", {batch, 1000}));
  ParamModel m = CompileWithParams(net, params, x, fold);
  if (report_compile) {
    std::printf("compile %s %.1f\n", name.c_str(), m.compile_ms);
    std::fprintf(stderr, "%s: %s\n", name.c_str(), m.cg->Report().c_str());
  }
  auto run = Bound(m);
  run->Run();
  CheckClose(name + " probabilities, kiln vs softmax(PyTorch's logits), first run", run->output(0),
             want);
  Report("kiln", name, Timed([&] { run->Run(); }, runs));
  CheckClose(name + " probabilities, kiln vs softmax(PyTorch's logits), last run", run->output(0),
             want);
  if (interpreter_runs > 0)
    Report("interpreter", name,
           Timed([&] { kiln::Interpret(m.graph, m.vars); }, interpreter_runs, 1));
}

// ResNet-18 with torchvision's weights: the checks, then batch 1 and 16.
void ResNetCases(const std::string& dir, int runs, int interpreter_runs, bool fold) {
  kiln::Symbol resnet = kiln::models::ResNet18(1000);
  CheckBatchNormAttrs(resnet);
  std::map<std::string, kiln::Tensor> params = ResNet18Params(resnet, dir + "/resnet18.params");
  CheckResNetLogits(resnet, params, dir, fold);
  ResNetCase(resnet, params, dir, 1, std::max(10, runs / 10), std::min(interpreter_runs, 2), true,
             fold);
  ResNetCase(resnet, params, dir, 16, std::max(5, runs / 40), 0, false, fold);
}

// --- LSTM: one recurrent layer on the runtime library ---

// One LSTM layer (S 32, N 16, I = H = 256), compiled (checked against the reference interpreter
// first), then (fewer runs) interpreted.
void LstmCase(int runs, int interpreter_runs) {
  constexpr int64_t kSeq = 32, kBatch = 16, kInput = 256, kHidden = 256;
  kiln::Symbol net = kiln::Symbol::Create("LSTM", {kiln::Symbol::Variable("data")},
                                          {{"hidden_size", std::to_string(kHidden)}}, "lstm");
  kiln::Graph graph = net.ToGraph();
  kiln::ShapeResult shapes = net.InferShape({{"data", kiln::Shape({kSeq, kBatch, kInput})}});
  std::map<std::string, kiln::Tensor> vars;
  uint32_t seed = 10;
  for (const auto& [name, shape] : shapes.arguments) {
    kiln::Tensor t = kiln::Tensor::Empty(shape.dims(), kiln::DType::kFloat32);
    std::mt19937 rng(seed++);
    // Weights of about 1/sqrt(H), as initialisers give, keep the gates out of saturation.
    std::uniform_real_distribution<float> u(-1, 1);
    float scale = name == "data" ? 1.0f : 1.0f / 16;
    for (int64_t i = 0; i < t.size(); ++i) t.data<float>()[i] = scale * u(rng);
    vars[name] = t;
  }
  kiln::codegen::CompileOptions co;
  for (const auto& [n, t] : vars) co.infer.shapes[n] = kiln::Shape(t.shape());
  auto cg = kiln::codegen::CompileGraph(graph, co);
  std::fprintf(stderr, "lstm: %s\n", cg->Report().c_str());
  bool on_library = false;
  for (const kiln::LibraryOpDesc& op : cg->library_ops())
    on_library = on_library || op.kind == kiln::LibraryOpKind::kRnn;
  if (!on_library) Fail("lstm: the compiled graph has no kRnn library call");
  kiln::codegen::CompiledRun run(cg);
  for (const auto& [n, t] : vars) run.Bind(n, t);
  run.FreezeVariables();
  run.Run();
  std::vector<kiln::Tensor> want = kiln::Interpret(graph, vars);
  double worst = 0;  // largest |difference| / (1 + |reference|)
  for (size_t k = 0; k < want.size(); ++k) {
    kiln::Tensor got = run.output(k);
    for (int64_t i = 0; i < want[k].size(); ++i) {
      double g = got.data<float>()[i], w = want[k].data<float>()[i];
      worst = std::isnan(g) ? INFINITY : std::max(worst, std::fabs(g - w) / (1 + std::fabs(w)));
    }
  }
  bool ok = worst <= 2e-5;
  std::printf(
      "check lstm outputs, kiln (compiled) vs the reference interpreter: max |difference| "
      "/ (1 + |reference|) %.3g, %s (tolerance 2e-05)\n",
      worst, ok ? "ok" : "FAILED");
  if (!ok) Fail("check lstm failed");
  const std::string name = "lstm_s32_b16_h256";
  Report("kiln", name, Timed([&] { run.Run(); }, runs));
  if (interpreter_runs > 0)
    Report("interpreter", name, Timed([&] { kiln::Interpret(graph, vars); }, interpreter_runs, 1));
}

// --- One convolution layer: its epilogue inside the convolution or as a call of its own ---

void ConvEpilogueCase(int64_t channels, int64_t hw, int runs) {
  std::string c = std::to_string(channels), h = std::to_string(hw);
  std::string act = "float32[1, " + c + ", " + h + ", " + h + "]";
  kiln::Graph graph = kiln::ParseGraph(
      "graph {\n  %x = var : " + act + "\n  %w = var : float32[" + c + ", " + c +
      ", 3, 3]\n  %b = var : float32[" + c + "]\n  %r = var : " + act +
      "\n  %c = Convolution(%x, %w, %b) {kernel=\"(3, 3)\", pad=\"(1, 1)\", num_filter=" + c +
      "}\n  %s = elemwise_add(%c, %r)\n  %y = Activation(%s) {act_type=\"relu\"}\n  return %y\n}");
  std::map<std::string, kiln::Tensor> vars = {{"x", Random({1, channels, hw, hw}, 3)},
                                              {"w", Random({channels, channels, 3, 3}, 4)},
                                              {"b", Random({channels}, 5)},
                                              {"r", Random({1, channels, hw, hw}, 6)}};
  std::unique_ptr<kiln::codegen::CompiledRun> run[2];
  size_t calls[2];
  for (int inside : {1, 0}) {
    kiln::codegen::CompileOptions co;
    co.epilogue_in_gemm = inside == 1;
    for (const auto& [n, t] : vars) co.infer.shapes[n] = kiln::Shape(t.shape());
    auto cg = kiln::codegen::CompileGraph(graph, co);
    calls[inside] = cg->calls().size();
    run[inside] = std::make_unique<kiln::codegen::CompiledRun>(cg);
    for (const auto& [n, t] : vars) run[inside]->Bind(n, t);
    run[inside]->FreezeVariables();
    run[inside]->Run();
  }
  if (calls[1] >= calls[0])
    Fail("conv_epilogue: the epilogue is not inside the convolution (" + std::to_string(calls[1]) +
         " plan calls against " + std::to_string(calls[0]) + ")");
  // The two compiled forms alternately, so that both see the same machine state.
  std::vector<double> ms[2];
  for (int i = 0; i < runs + 3; ++i)
    for (int inside : {1, 0}) {
      auto t0 = Clock::now();
      run[inside]->Run();
      double t = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (i >= 3) ms[inside].push_back(t);  // 3 warm-up runs each
    }
  std::string name = "conv3x3_" + c + "x" + h;
  for (int inside : {1, 0}) {
    std::sort(ms[inside].begin(), ms[inside].end());
    Report("kiln", name + (inside ? "_inside" : "_separate"),
           {ms[inside][ms[inside].size() / 2], ms[inside].front()});
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "build/peers";
  int runs = 200, interpreter_runs = 3;
  bool fold = true;
  std::string cases = "mlp,resnet,lstm";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--peers-dir")
      dir = argv[i + 1];
    else if (a == "--runs")
      runs = std::atoi(argv[i + 1]);
    else if (a == "--interpreter-runs")
      interpreter_runs = std::atoi(argv[i + 1]);
    else if (a == "--fold-batchnorm")
      fold = std::atoi(argv[i + 1]) != 0;
    else if (a == "--epilogue-in-product")
      epilogue_in_product = std::atoi(argv[i + 1]) != 0;
    else if (a == "--cases")
      cases = argv[i + 1];
    else if (a == "--threads")
      setenv("KILN_NUM_THREADS", argv[i + 1], 1);
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  std::set<std::string> wanted;
  for (size_t at = 0; at <= cases.size();) {
    size_t comma = std::min(cases.find(',', at), cases.size());
    std::string c = cases.substr(at, comma - at);
    if (c != "mlp" && c != "resnet" && c != "lstm" && c != "conv_epilogue") {
      std::fprintf(stderr, "unknown case \"%s\" in --cases (mlp, resnet, lstm, conv_epilogue)\n",
                   c.c_str());
      return 2;
    }
    wanted.insert(c);
    at = comma + 1;
  }
  try {
    if (wanted.count("mlp")) {
      for (int64_t b : {1, 64, 256})
        OnnxCase(dir + "/mlp.onnx", "mlp_infer_b" + std::to_string(b), {b, 784}, runs,
                 interpreter_runs, b == 1);
      MlpTrainCase(runs, interpreter_runs);
    }
    if (wanted.count("resnet")) ResNetCases(dir, runs, interpreter_runs, fold);
    if (wanted.count("lstm")) LstmCase(std::max(10, runs / 4), interpreter_runs);
    if (wanted.count("conv_epilogue"))
      for (auto [channels, hw] :
           {std::pair<int64_t, int64_t>{64, 56}, {128, 28}, {256, 14}, {512, 7}})
        ConvEpilogueCase(channels, hw, runs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln_models_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
