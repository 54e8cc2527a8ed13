// artifact_bench: issue 6's figures for .kiln artifacts, each model measured in one run:
//   - file size against the raw parameter bytes (overhead),
//   - load time (Artifact::LoadFile: map, verify, link the kernel object, pack the weights),
//   - latency of the loaded artifact (what kiln-run and libkiln_rt.so run) against the JIT's
//     (CompiledRun with frozen weights) on the same model, weights and input, alternating runs.
//
//   build/bench/kiln_artifact_bench [--threads T] [--runs N] [--dir DIR]
//
// Models: the MLP 784-512-512-10 at batch 1 and 64, LeNet at batch 64, ResNet-18 (torchvision's
// architecture, models::ResNet18) at batch 1, 224x224; random weights. Prints one line per
// model; medians and minimums in milliseconds.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kiln/codegen/artifact.h"
#include "kiln/codegen/compile.h"
#include "kiln/frontend/models.h"
#include "kiln/passes/infer.h"
#include "kiln/runtime/artifact.h"
#include "kiln/runtime/npy.h"

namespace {

using Clock = std::chrono::steady_clock;
using kiln::Shape;
using kiln::Tensor;

double Ms(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Stats {
  double median = 0, min = 0;
};

Stats Summarise(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front()};
}

Tensor Random(const Shape& s, uint32_t seed) {
  Tensor t = Tensor::Empty(s.dims(), kiln::DType::kFloat32);
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0, 0.1f);
  float* p = static_cast<float*>(t.raw_data());
  for (int64_t i = 0; i < s.NumElements(); ++i) p[i] = n(rng);
  return t;
}

void Bench(const char* name, const kiln::Symbol& net, const Shape& data, int threads, int runs,
           const std::string& dir) {
  kiln::Graph g = net.ToGraph();
  kiln::codegen::CompileOptions o;
  o.allow_reference = false;
  o.infer.shapes = {{"data", data}, {"softmax_label", Shape({data[0]})}};
  kiln::Graph typed = g;
  kiln::InferShapes(typed, o.infer);
  std::map<std::string, Tensor> params;
  int64_t raw = 0;
  uint32_t seed = 1;
  for (uint32_t v : typed.VariableNodes()) {
    const std::string& n = typed.node(v).name;
    if (n == "data" || n == "softmax_label") continue;
    params[n] = Random(typed.shape(kiln::Entry{v, 0}), seed++);
    raw += int64_t(params[n].nbytes());
  }
  auto jit = kiln::codegen::CompileGraph(g, o);
  o.jit = false;
  auto aot = kiln::codegen::CompileGraph(g, o);
  std::string path = dir + "/" + name + ".kiln";
  std::string bytes = kiln::codegen::SerializeArtifact(*aot, params, o.cpu);
  kiln::WriteFileAtomically(path, bytes);

  std::vector<double> load_ms;
  std::shared_ptr<const kiln::Artifact> model;
  for (int i = 0; i < 7; ++i) {
    auto t0 = Clock::now();
    model = kiln::Artifact::LoadFile(path);
    load_ms.push_back(Ms(t0));
  }

  std::unique_ptr<kiln::ThreadPool> pool;
  if (threads > 1) pool = std::make_unique<kiln::ThreadPool>(threads);
  kiln::ThreadPool one(1);
  kiln::codegen::CompiledRun run(jit, pool ? pool.get() : &one);
  for (const auto& [n, t] : params) run.Bind(n, t);
  Tensor x = Random(data, 99);
  run.Bind("data", x);
  run.FreezeVariables();
  kiln::ArtifactSession session(model, pool.get());
  session.SetInput(0, x.raw_data());
  for (int i = 0; i < 3; ++i) run.Run(), session.Run();
  if (std::memcmp(session.output(0), run.output(0).raw_data(), run.output(0).nbytes()) != 0)
    std::printf("note: %s: the artifact's output differs from the JIT's in some bits\n", name);
  std::vector<double> jit_ms, aot_ms;
  for (int i = 0; i < runs; ++i) {
    auto t0 = Clock::now();
    run.Run();
    jit_ms.push_back(Ms(t0));
    t0 = Clock::now();
    session.Run();
    aot_ms.push_back(Ms(t0));
  }
  Stats load = Summarise(load_ms), j = Summarise(jit_ms), a = Summarise(aot_ms);
  std::printf(
      "%-10s file %10zu B  params %10lld B  overhead %6.3f%%  load %7.3f / %7.3f ms  "
      "JIT %8.4f / %8.4f ms  artifact %8.4f / %8.4f ms  JIT/artifact %.3f (median) %.3f (min)\n",
      name, bytes.size(), static_cast<long long>(raw),
      100.0 * double(int64_t(bytes.size()) - raw) / double(raw), load.median, load.min, j.median,
      j.min, a.median, a.min, j.median / a.median, j.min / a.min);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, runs = 50;
  std::string dir = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--threads") threads = std::atoi(argv[i + 1]);
    if (a == "--runs") runs = std::atoi(argv[i + 1]);
    if (a == "--dir") dir = argv[i + 1];
  }
  std::printf("artifact_bench: %d thread(s), %d runs each; times are median / min\n", threads,
              runs);
  namespace m = kiln::models;
  Bench("mlp_b1", m::Mlp({512, 512}, 10), Shape({1, 784}), threads, runs * 20, dir);
  Bench("mlp_b64", m::Mlp({512, 512}, 10), Shape({64, 784}), threads, runs * 4, dir);
  Bench("lenet_b64", m::LeNet(10, "relu"), Shape({64, 1, 28, 28}), threads, runs, dir);
  Bench("resnet18", m::ResNet18(1000), Shape({1, 3, 224, 224}), threads, std::max(5, runs / 5),
        dir);
  return 0;
}
