// lowered_bench: ops lowered from their compute definitions to plain kernel IR, one thread,
// against what kiln runs otherwise on the same shapes.
//
//   build/bench/kiln_lowered_bench [--min-ms T] [--cases products,definitions]
//
// products: matrix products and convolutions lowered (what bundles run, and what other dtypes
// and unlibraried ops get) against kiln's runtime library (kiln/runtime/gemm.h, conv.h). Each
// case is one op of a one-node graph, lowered with LowerNode and JIT-compiled for this CPU, run
// on [0, tasks) on the calling thread; the library side is Gemm / ConvForward with its own
// packing on every call (no prepacked weights). GFLOP/s from the minimums; the ratio is
// library / lowered on minimums (< 1: the lowered kernel is slower).
//
// definitions: ops whose compute definitions replaced reference calls in compiled graphs, the
// kernel lowered from the definition against the op's reference kernel (OpDef::reference on
// buffers of its own, as a compiled graph's reference call runs it): _backward_dot
// (docs/compute_definition.md), and the ops whose definitions are given only up to a size
// (decision D48: cumsum, _backward_take, _backward_take_along_axis), at widths that are multiples
// of the 16 lanes and widths that are not (33, 100, 17: the schedule's partial last chunk, also
// in sums over axis 0 and 1 against the reduce ops' reference). Beyond its size rule an op
// has no definition (UnsupportedOps names it), so only the reference kernel runs there: what a
// compiled graph calls; the case says so. The ratios are reference / lowered (> 1: the lowered
// kernel is faster).
//
// Every side runs alternately with the others so that they see the same machine state; times
// are medians and minimums; results are checked against each other (relative 1e-4 of the
// largest output) before timing.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/codegen/llvm_jit.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/op.h"
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

// The functions in turn, at least 3 runs each and `min_ms` in all.
std::vector<Stats> TimeAlternately(const std::vector<std::function<void()>>& fns, double min_ms) {
  for (const auto& f : fns) f();
  std::vector<std::vector<double>> t(fns.size());
  Clock::time_point start = Clock::now();
  while (t[0].size() < 3 || Ms(start, Clock::now()) < min_ms) {
    for (size_t i = 0; i < fns.size(); ++i) {
      Clock::time_point t0 = Clock::now();
      fns[i]();
      t[i].push_back(Ms(t0, Clock::now()));
    }
  }
  std::vector<Stats> stats;
  for (std::vector<double>& ti : t) {
    std::sort(ti.begin(), ti.end());
    stats.push_back({ti[ti.size() / 2], ti[0]});
  }
  return stats;
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
  std::vector<Stats> t = TimeAlternately({run_lowered, run_library}, min_ms);
  const Stats &lo = t[0], &li = t[1];
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

// ----- definitions: lowered kernels against reference kernels -----

// Values for a variable of `n` elements, by name: a case fills its indices, the rest are
// uniform in [-1, 1] seeded by the name.
using Fill = std::function<std::vector<float>(const std::string& var, size_t n)>;

std::vector<float> RandomByName(const std::string& var, size_t n) {
  uint32_t seed = 1;
  for (char ch : var) seed = seed * 31 + uint8_t(ch);
  return Random(n, seed);
}

// One op node with buffers for its inputs (variables of the graph, by name) and outputs; `args`
// are the kernel's: inputs in order, then outputs.
struct Bound {
  std::vector<std::vector<float>> in, out;
  std::vector<void*> args;
};

Bound BindNode(const kiln::Graph& g, uint32_t node, const Fill& fill) {
  Bound b;
  for (const kiln::Entry& e : g.node(node).inputs) {
    const kiln::Node& v = g.node(e.node);
    if (!v.is_variable())
      throw std::runtime_error("input of node \"" + g.node(node).name + "\" is not a variable");
    b.in.push_back(fill(v.name, size_t(g.shape(e).NumElements())));
  }
  for (int k = 0; k < g.node(node).num_outputs(); ++k)
    b.out.emplace_back(size_t(g.shape(kiln::Entry{node, uint32_t(k)}).NumElements()));
  for (auto& v : b.in) b.args.push_back(v.data());
  for (auto& v : b.out) b.args.push_back(v.data());
  return b;
}

// The largest difference of `got` from `want`, relative to want's largest magnitude (at least 1).
double Difference(const std::vector<std::vector<float>>& got,
                  const std::vector<std::vector<float>>& want) {
  double err = 0, scale = 1;
  for (size_t k = 0; k < want.size(); ++k)
    for (size_t i = 0; i < want[k].size(); ++i) {
      scale = std::max(scale, double(std::abs(want[k][i])));
      double d = std::abs(double(got[k][i]) - want[k][i]);
      err = std::isnan(d) ? INFINITY : std::max(err, d);
    }
  return err / scale;
}

// The seed of random ops' draws (Dropout), for the kernel (its scalar argument) and the
// reference alike, so that both draw the same mask.
uint64_t g_seed = 0x5eed;

// A JIT-compiled kernel and the buffers it runs on.
struct Lowered {
  std::unique_ptr<kiln::codegen::LLVMJit> jit;
  kiln::codegen::KernelFn fn = nullptr;
  int64_t tasks = 0;
  Bound bound;
  void Run() { fn(bound.args.data(), 0, tasks); }
};

Lowered Lower(const kiln::Graph& g, uint32_t node, const Fill& fill) {
  Lowered l;
  kiln::codegen::Kernel k = kiln::codegen::LowerNode(g, node);
  l.jit = std::make_unique<kiln::codegen::LLVMJit>();
  l.fn = l.jit->Compile({k})[0];
  l.tasks = kiln::codegen::TaskCount(k);
  l.bound = BindNode(g, node, fill);
  if (!k.scalars.empty()) l.bound.args.push_back(&g_seed);  // the seed (lower.h)
  return l;
}

struct DefinitionCase {
  std::string name;
  std::string graph;  // one op on float32 variables; the op is the first output's node
  Fill fill = RandomByName;
  double tolerance = 1e-4;
};

// Prints `name  lowered median / min us  reference median / min us  ratio median / min`, the
// ratios reference / lowered; "no definition" where the op has none at this size.
void RunDefinition(const DefinitionCase& c, double min_ms) {
  kiln::Graph g = kiln::ParseGraph(c.graph);
  kiln::InferShapes(g, {});
  kiln::InferTypes(g, {});
  const uint32_t node = g.outputs()[0].node;
  const kiln::Node& n = g.node(node);

  // The reference kernel on views of buffers of its own.
  Bound ref = BindNode(g, node, c.fill);
  auto run_reference = [&] {
    kiln::KernelCtx ctx{*n.op, n.name, n.attrs, {}, {}, false, g_seed};
    size_t a = 0;
    for (const kiln::Entry& e : n.inputs)
      ctx.in.push_back(kiln::Tensor::View(ref.args[a++], g.shape(e).dims(), kiln::DType::kFloat32));
    for (int k = 0; k < n.num_outputs(); ++k)
      ctx.out.push_back(kiln::Tensor::View(
          ref.args[a++], g.shape(kiln::Entry{node, uint32_t(k)}).dims(), kiln::DType::kFloat32));
    n.op->reference()(ctx);
  };
  run_reference();

  if (!kiln::codegen::UnsupportedOps(g, node).empty()) {
    Stats r = TimeAlternately({run_reference}, min_ms)[0];
    std::printf("%-50s lowered %21s  reference %8.1f / %8.1f us\n", c.name.c_str(),
                "(no definition)", r.median_ms * 1e3, r.min_ms * 1e3);
    std::fflush(stdout);
    return;
  }
  Lowered def = Lower(g, node, c.fill);
  def.Run();
  double d = Difference(def.bound.out, ref.out);
  if (d > c.tolerance)
    throw std::runtime_error(c.name + ": the lowered kernel and the reference differ by " +
                             std::to_string(d) + " of the largest output");
  std::vector<Stats> t = TimeAlternately({[&] { def.Run(); }, run_reference}, min_ms);
  const Stats &lo = t[0], &r = t[1];
  std::printf("%-50s lowered %8.1f / %8.1f us  reference %8.1f / %8.1f us  ratio %.2f / %.2f\n",
              c.name.c_str(), lo.median_ms * 1e3, lo.min_ms * 1e3, r.median_ms * 1e3,
              r.min_ms * 1e3, r.median_ms / lo.median_ms, r.min_ms / lo.min_ms);
  std::fflush(stdout);
}

std::string Dims(const std::vector<int64_t>& dims) {
  std::string s;
  for (int64_t d : dims) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

// _backward_dot of dot((m, k), (k, n)): both gradients, two serial nests.
DefinitionCase BackwardDot(int64_t m, int64_t k, int64_t n) {
  DefinitionCase c;
  c.name = "_backward_dot " + Dims({m, k}) + " . " + Dims({k, n});
  c.graph = "graph {\n" + Var("dy", {m, n}) + Var("a", {m, k}) + Var("b", {k, n}) +
            "  %g = _backward_dot(%dy, %a, %b)\n  return %g, %g#1\n}";
  return c;
}

// Dropout drawing its mask (mode always) over (rows, cols): Philox draws against the reference's
// scalar loop of the same function (D50); the two must agree exactly.
DefinitionCase DropoutDraws(int64_t rows, int64_t cols) {
  DefinitionCase c;
  c.name = "Dropout p 0.5 (draws) " + Dims({rows, cols});
  c.graph = "graph {\n" + Var("x", {rows, cols}) +
            "  %d = Dropout(%x) {p=0.5, mode=always}\n  return %d, %d#1\n}";
  c.tolerance = 0;
  return c;
}

// cumsum along axis 1 of (outer, n, inner) (inner 1: the last axis).
DefinitionCase Cumsum(int64_t outer, int64_t n, int64_t inner) {
  DefinitionCase c;
  std::vector<int64_t> x = {outer, n};
  if (inner > 1) x.push_back(inner);
  c.name = "cumsum " + Dims(x) + ", axis 1 (" + std::to_string(n) + ")";
  c.graph = "graph {\n" + Var("x", x) + "  %y = cumsum(%x) {axis=1}\n  return %y\n}";
  return c;
}

// sum of x (rows, cols) over `axis`: over 0, the reduction tiles the output's one axis (lanes of
// accumulators); over 1, it reads rows contiguously (vector partial sums). Odd `cols` leave a
// partial last chunk of lanes.
DefinitionCase Sum(int64_t rows, int64_t cols, int axis) {
  DefinitionCase c;
  c.name = "sum " + Dims({rows, cols}) + ", axis " + std::to_string(axis);
  c.graph = "graph {\n" + Var("x", {rows, cols}) + "  %s = sum(%x) {axis=\"(" +
            std::to_string(axis) + ")\"}\n  return %s\n}";
  return c;
}

// Random integer indices in [0, n) as floats (take's indices may have any numeric dtype).
std::vector<float> Indices(size_t count, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> u(0, n - 1);
  std::vector<float> v(count);
  for (float& x : v) x = float(u(rng));
  return v;
}

// _backward_take of take(a (rows, cols), idx (count,), axis 0).
DefinitionCase BackwardTake(int64_t rows, int64_t cols, int64_t count) {
  DefinitionCase c;
  c.name = "_backward_take table " + Dims({rows, cols}) + ", " + std::to_string(count) + " indices";
  c.graph = "graph {\n" + Var("dy", {count, cols}) + Var("idx", {count}) + Var("a", {rows, cols}) +
            "  %g = _backward_take(%dy, %idx, %a) {axis=0}\n  return %g\n}";
  c.fill = [rows](const std::string& var, size_t size) {
    return var == "idx" ? Indices(size, rows, 7) : RandomByName(var, size);
  };
  return c;
}

// _backward_Embedding of an Embedding (rows, cols) looked up at `count` ids (D51: defined for at
// most 4 ids, the sum spelled out).
DefinitionCase BackwardEmbedding(int64_t rows, int64_t cols, int64_t count) {
  DefinitionCase c;
  c.name =
      "_backward_Embedding table " + Dims({rows, cols}) + ", " + std::to_string(count) + " ids";
  c.graph = "graph {\n" + Var("dy", {count, cols}) + Var("ids", {count}) +
            "  %g = _backward_Embedding(%dy, %ids) {input_dim=" + std::to_string(rows) +
            ", output_dim=" + std::to_string(cols) + "}\n  return %g\n}";
  c.fill = [rows](const std::string& var, size_t size) {
    return var == "ids" ? Indices(size, rows, 11) : RandomByName(var, size);
  };
  return c;
}

// _backward_take_along_axis of take_along_axis(a (rows, n), idx (rows, m), axis 1).
DefinitionCase BackwardTakeAlongAxis(int64_t rows, int64_t n, int64_t m) {
  DefinitionCase c;
  c.name = "_backward_take_along_axis a " + Dims({rows, n}) + ", idx " + Dims({rows, m});
  c.graph = "graph {\n" + Var("dy", {rows, m}) + Var("idx", {rows, m}) + Var("a", {rows, n}) +
            "  %g = _backward_take_along_axis(%dy, %idx, %a) {axis=1}\n  return %g\n}";
  c.fill = [n](const std::string& var, size_t size) {
    return var == "idx" ? Indices(size, n, 9) : RandomByName(var, size);
  };
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  double min_ms = 300;
  std::string cases = "products,definitions";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--min-ms") {
      min_ms = std::atof(argv[i + 1]);
    } else if (a == "--cases") {
      cases = argv[i + 1];
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  std::set<std::string> wanted;
  for (size_t at = 0; at <= cases.size();) {
    size_t comma = std::min(cases.find(',', at), cases.size());
    wanted.insert(cases.substr(at, comma - at));
    at = comma + 1;
  }
  for (const std::string& c : wanted)
    if (c != "products" && c != "definitions") {
      std::fprintf(stderr, "unknown case \"%s\" in --cases (products, definitions)\n", c.c_str());
      return 2;
    }
  try {
    if (wanted.count("products"))
      for (const Case& c :
           {Dot(256, 256, 256, false), Dot(256, 256, 256, true), Dot(64, 512, 784, false),
            FullyConnected(1, 784, 512), FullyConnected(64, 784, 512), FullyConnected(64, 512, 10),
            Conv(64, 64, 56, 3, 1), Conv(64, 128, 56, 3, 2), Conv(64, 256, 56, 1, 1),
            Conv(3, 64, 224, 7, 2)})
        Run(c, min_ms);
    if (wanted.count("definitions")) {
      std::printf("# float32, 1 thread: median / minimum us; ratio reference / lowered\n");
      for (const DefinitionCase& c : {BackwardDot(64, 256, 128),
                                      Cumsum(256, 8, 1),
                                      Cumsum(256, 16, 1),
                                      Cumsum(64, 8, 4),
                                      Cumsum(64, 16, 4),
                                      BackwardTake(1000, 64, 4),
                                      BackwardTake(1000, 64, 5),
                                      BackwardTake(1000, 64, 8),
                                      BackwardTake(1000, 64, 32),
                                      BackwardTake(300, 33, 1),
                                      BackwardTake(300, 100, 4),
                                      BackwardTake(1000, 100, 4),
                                      BackwardTake(1000, 17, 4),
                                      Sum(1000, 33, 0),
                                      Sum(1000, 100, 0),
                                      Sum(1000, 33, 1),
                                      Sum(1000, 100, 1),
                                      BackwardTakeAlongAxis(64, 64, 64),
                                      BackwardTakeAlongAxis(64, 2000, 32),
                                      BackwardEmbedding(1000, 64, 4),
                                      BackwardEmbedding(300, 33, 4),
                                      BackwardEmbedding(30000, 128, 4),
                                      BackwardEmbedding(1000, 64, 5),
                                      DropoutDraws(1024, 1024)})
        RunDefinition(c, min_ms);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln_lowered_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
