// lowered_bench: matrix products and convolutions lowered from their compute definitions to
// plain kernel IR (what bundles run, and what other dtypes and unlibraried ops get), against
// kiln's runtime library (kiln/runtime/gemm.h, conv.h) on the same shapes, one thread.
//
//   build/bench/kiln_lowered_bench [--min-ms T]
//
// Each case is one op of a one-node graph, lowered with LowerNode and JIT-compiled for this
// CPU, run on [0, tasks) on the calling thread; the library side is Gemm / ConvForward with its
// own packing on every call (no prepacked weights). Both sides run alternately so that they see
// the same machine state; times are medians and minimums; GFLOP/s from the minimums; the ratio
// is library / lowered on minimums (< 1: the lowered kernel is slower). Results are checked
// against each other (relative 1e-4 of the largest output) before timing.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kiln/codegen/llvm_jit.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/text.h"
#include "kiln/passes/infer.h"
#include "kiln/runtime/conv.h"
#include "kiln/runtime/gemm.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Stats {
  double median_ms, min_ms;
};

// f and g alternately, at least 3 runs each and `min_ms` in all.
std::pair<Stats, Stats> TimeBoth(const std::function<void()>& f, const std::function<void()>& g,
                                 double min_ms) {
  f(), g();
  std::vector<double> tf, tg;
  Clock::time_point start = Clock::now();
  while (tf.size() < 3 || Ms(start, Clock::now()) < min_ms) {
    Clock::time_point t0 = Clock::now();
    f();
    Clock::time_point t1 = Clock::now();
    g();
    tf.push_back(Ms(t0, t1)), tg.push_back(Ms(t1, Clock::now()));
  }
  auto stats = [](std::vector<double>& t) {
    std::sort(t.begin(), t.end());
    return Stats{t[t.size() / 2], t[0]};
  };
  return {stats(tf), stats(tg)};
}

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// One case: a graph of one op on float32 variables (sizes in the text), its library twin.
struct Case {
  std::string name;
  std::string graph;
  double flops;
  // Runs the library's version on the inputs (in graph order) into `out`.
  std::function<void(const std::vector<const float*>& in, float* out)> library;
};

void Run(const Case& c, double min_ms) {
  kiln::Graph g = kiln::ParseGraph(c.graph);
  kiln::InferShapes(g, {});
  kiln::InferTypes(g, {});
  uint32_t node = g.outputs()[0].node;
  kiln::codegen::Kernel k = kiln::codegen::LowerNode(g, node);
  kiln::codegen::LLVMJit jit;
  kiln::codegen::KernelFn fn = jit.Compile({k})[0];
  const int64_t tasks = kiln::codegen::TaskCount(k);

  std::vector<std::vector<float>> in;
  std::vector<const float*> in_ptr;
  std::vector<void*> args;
  uint32_t seed = 1;
  for (const kiln::Entry& e : g.node(node).inputs) {
    in.push_back(Random(size_t(g.shape(e).NumElements()), seed++));
    in_ptr.push_back(in.back().data());
    args.push_back(in.back().data());
  }
  const size_t n_out = size_t(g.shape(g.outputs()[0]).NumElements());
  std::vector<float> lowered(n_out), library(n_out);
  args.push_back(lowered.data());

  auto run_lowered = [&] { fn(args.data(), 0, tasks); };
  auto run_library = [&] { c.library(in_ptr, library.data()); };
  run_lowered();
  run_library();
  double scale = 1, err = 0;
  for (size_t i = 0; i < n_out; ++i) scale = std::max(scale, double(std::abs(library[i])));
  for (size_t i = 0; i < n_out; ++i) err = std::max(err, double(std::abs(lowered[i] - library[i])));
  if (err > 1e-4 * scale) {
    std::fprintf(stderr, "%s: lowered and library differ by %g (scale %g)\n", c.name.c_str(), err,
                 scale);
    std::exit(1);
  }
  auto [lo, li] = TimeBoth(run_lowered, run_library, min_ms);
  std::printf(
      "%-28s lowered %9.3f / %9.3f ms (%6.1f GFLOP/s)  library %9.3f / %9.3f ms "
      "(%6.1f GFLOP/s)  ratio %.3f\n",
      c.name.c_str(), lo.median_ms, lo.min_ms, c.flops / lo.min_ms * 1e-6, li.median_ms, li.min_ms,
      c.flops / li.min_ms * 1e-6, li.min_ms / lo.min_ms);
}

std::string Var(const char* name, const std::vector<int64_t>& dims) {
  std::string s = std::string("  %") + name + " = var : float32[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]\n";
}

Case Dot(int64_t m, int64_t n, int64_t k, bool tb) {
  Case c;
  c.name = "dot " + std::to_string(m) + "x" + std::to_string(k) + (tb ? " x (" : " x ") +
           std::to_string(tb ? n : k) + "x" + std::to_string(tb ? k : n) + (tb ? ")^T" : "");
  c.graph = "graph {\n" + Var("a", {m, k}) +
            Var("b", tb ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n}) +
            "  %c = dot(%a, %b)" + (tb ? " {transpose_b=True}" : "") + "\n  return %c\n}";
  c.flops = 2.0 * double(m) * double(n) * double(k);
  c.library = [=](const std::vector<const float*>& in, float* out) {
    kiln::GemmArgs a;
    a.m = m, a.n = n, a.k = k;
    a.a = in[0], a.lda = k;
    a.b = in[1], a.ldb = tb ? k : n, a.b_layout = tb ? kiln::BLayout::kNK : kiln::BLayout::kKN;
    a.c = out, a.ldc = n;
    kiln::Gemm(a);
  };
  return c;
}

Case FullyConnected(int64_t batch, int64_t in, int64_t hidden) {
  Case c;
  c.name = "FullyConnected " + std::to_string(batch) + "x" + std::to_string(in) + "->" +
           std::to_string(hidden);
  c.graph = "graph {\n" + Var("x", {batch, in}) + Var("w", {hidden, in}) + Var("b", {hidden}) +
            "  %y = FullyConnected(%x, %w, %b) {num_hidden=" + std::to_string(hidden) +
            "}\n  return %y\n}";
  c.flops = 2.0 * double(batch) * double(in) * double(hidden);
  c.library = [=](const std::vector<const float*>& v, float* out) {
    kiln::GemmArgs a;
    a.m = batch, a.n = hidden, a.k = in;
    a.a = v[0], a.lda = in;
    a.b = v[1], a.ldb = in, a.b_layout = kiln::BLayout::kNK;
    a.c = out, a.ldc = hidden;
    kiln::Gemm(a);
    for (int64_t i = 0; i < batch; ++i)
      for (int64_t j = 0; j < hidden; ++j) out[i * hidden + j] += v[2][j];
  };
  return c;
}

Case Conv(int64_t ch, int64_t filters, int64_t hw, int64_t kernel, int64_t stride) {
  const int64_t pad = kernel / 2, out_hw = (hw + 2 * pad - kernel) / stride + 1;
  Case c;
  c.name = "Convolution " + std::to_string(kernel) + "x" + std::to_string(kernel) + " " +
           std::to_string(ch) + "->" + std::to_string(filters) + " " + std::to_string(hw) +
           (stride > 1 ? "/" + std::to_string(stride) : "");
  std::string k = std::to_string(kernel), s = std::to_string(stride), p = std::to_string(pad);
  c.graph = "graph {\n" + Var("x", {1, ch, hw, hw}) + Var("w", {filters, ch, kernel, kernel}) +
            "  %y = Convolution(%x, %w) {kernel=\"(" + k + ", " + k + ")\", stride=\"(" + s + ", " +
            s + ")\", pad=\"(" + p + ", " + p + ")\", num_filter=" + std::to_string(filters) +
            ", no_bias=True}\n  return %y\n}";
  c.flops = 2.0 * double(filters) * double(out_hw * out_hw) * double(ch * kernel * kernel);
  c.library = [=](const std::vector<const float*>& v, float* out) {
    kiln::Conv2dShape sh;
    sh.in_channels = ch, sh.in_h = sh.in_w = hw, sh.out_channels = filters;
    sh.kernel_h = sh.kernel_w = kernel, sh.stride_h = sh.stride_w = stride;
    sh.pad_h = sh.pad_w = pad;
    kiln::ConvForward(sh, v[0], v[1], out, {}, nullptr, nullptr);
  };
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  double min_ms = 300;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--min-ms") {
      min_ms = std::atof(argv[i + 1]);
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  try {
    for (const Case& c :
         {Dot(256, 256, 256, false), Dot(256, 256, 256, true), Dot(64, 512, 784, false),
          FullyConnected(1, 784, 512), FullyConnected(64, 784, 512), FullyConnected(64, 512, 10),
          Conv(64, 64, 56, 3, 1), Conv(64, 128, 56, 3, 2), Conv(64, 256, 56, 1, 1),
          Conv(3, 64, 224, 7, 2)})
      Run(c, min_ms);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln_lowered_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
