// lower_pool_norm_test.cpp - compute definitions of the pooling gradient (_backward_Pooling),
// BatchNorm (use_global_stats), _backward_BatchNorm, LayerNorm and _backward_LayerNorm: each
// lowered alone or in a fused group, JIT-compiled and compared with the reference interpreter
// on random inputs at 1 and 2 threads, under the default schedule and with the parallel loop
// forced on small shapes; odd sizes, size-1 dimensions, empty batches, float64.
//
// Tolerances (ExpectTensorNear: tol * (1 + |expected|)):
// - kExact (0): the max-pooling gradient with non-overlapping windows (each element receives
//   at most one dy: a copy), whatever the ties and NaNs.
// - PoolTol = SumTol(9) + kMath: overlapping windows add at most 9 values in float32 (the
//   reference adds in double and rounds once), avg divides each by the window size first.
// - Normalisation: NormTol(n) = 8 * SumTol(n): the float32 sums of n terms of magnitude up to
//   8 (dy (x - mean) with dy and x in [-2, 2]), then a few multiplications.
// - float64 cases use 1e-12: the same formulas, summed in another order.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kiln/codegen/llvm_jit.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/composite.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/passes/fuse.h"
#include "kiln/passes/infer.h"
#include "kiln/runtime/thread_pool.h"
#include "lower_util.h"
#include "test_util.h"

namespace kiln {
namespace {

using codegen::Kernel;
using codegen::KernelFn;
using codegen::LowerNode;
using codegen::LowerOptions;
using test::kExact;
using test::kMath;
using test::SumTol;

constexpr double kF64 = 1e-12;
const double kPoolTol = SumTol(9) + kMath;
double NormTol(int64_t n) {
  return 8 * SumTol(n);
}

Graph Typed(const std::string& text, bool fuse) {
  Graph g = ParseGraph(text);
  InferShapes(g);
  InferTypes(g);
  return fuse ? Fuse(g, {}) : g;
}

// Random values for every variable but those given: in [-2, 2], or from {-1, 0, 1} (many ties)
// when `ties`.
std::map<std::string, Tensor> Inputs(const Graph& g, const std::map<std::string, Tensor>& given,
                                     bool ties) {
  std::map<std::string, Tensor> vars = given;
  uint32_t seed = 11;
  for (uint32_t v : g.VariableNodes()) {
    const std::string& name = g.node(v).name;
    ++seed;
    if (vars.count(name)) continue;
    std::vector<int64_t> dims = g.shape(Entry{v, 0}).dims();
    size_t n = 1;
    for (int64_t d : dims) n *= size_t(d);
    std::vector<double> values = test::RandomValues(n, seed, -2.0, 2.0);
    if (ties)
      for (double& x : values) x = std::round(x / 2);
    vars[name] = Tensor::FromValues(dims, g.dtype(Entry{v, 0}), values);
  }
  return vars;
}

struct Case {
  bool fuse = true;
  bool is_train = false;
  bool ties = false;
  std::map<std::string, Tensor> given;
};

// Lowers the nodes of `f` that are composites or run an op of `ops`, runs each at 1 and 2
// threads on the interpreter's values of its inputs and compares every output with the
// interpreter's. Returns the number of kernels.
int LowerAndCompare(const Graph& f, const std::set<std::string>& ops, double tol,
                    const LowerOptions& opt, const Case& c) {
  InterpretOptions io;
  io.is_train = c.is_train;
  std::vector<Tensor> values = InterpretAll(f, Inputs(f, c.given, c.ties), io);
  return test::LowerRunAndCompare(
      f, values, opt,
      [&](const Node& n) { return IsComposite(n) || ops.count(std::string(n.op_name())) > 0; },
      [&](const Tensor& got, const Tensor& want) {
        test::ExpectTensorNear(got, want.shape(), want.ToDoubles(), tol);
      });
}

void Check(const std::string& text, const std::set<std::string>& ops, double tol, int want_kernels,
           const Case& c = {}) {
  Graph f = Typed(text, c.fuse);
  LowerOptions forced;
  forced.parallel_min_elements = 0;
  forced.parallel_chunk = 8;
  EXPECT_EQ(LowerAndCompare(f, ops, tol, {}, c), want_kernels);
  EXPECT_EQ(LowerAndCompare(f, ops, tol, forced, c), want_kernels);
}

std::string ShapeText(const std::vector<int64_t>& dims) {
  std::string s;
  for (int64_t d : dims) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return s;
}

// Pooling's output shape for data of `shape`.
std::string PooledShape(const std::string& attrs, const std::string& shape,
                        const std::string& dtype) {
  Graph g = Typed("graph {\n  %x = var : " + dtype + "[" + shape + "]\n  %y = Pooling(%x) {" +
                      attrs + "}\n  return %y\n}",
                  false);
  return ShapeText(g.shape(g.outputs()[0]).dims());
}

// x -> Pooling -> y; dx = _backward_Pooling(dy, x, y) with dy a variable.
std::string PoolGrad(const std::string& attrs, const std::string& shape,
                     const std::string& dtype = "float32") {
  return "graph {\n  %x = var : " + dtype + "[" + shape + "]\n  %dy = var : " + dtype + "[" +
         PooledShape(attrs, shape, dtype) + "]\n  %y = Pooling(%x) {" + attrs +
         "}\n  %dx = _backward_Pooling(%dy, %x, %y) {" + attrs + "}\n  return %dx\n}";
}

const std::set<std::string> kPoolGrad = {"_backward_Pooling"};

// (attributes, data shape, whether windows overlap).
struct PoolCase {
  std::string attrs, shape;
  bool overlap;
};
const PoolCase kPoolCases[] = {
    {"kernel=\"(2, 2)\", stride=\"(2, 2)\", pool_type=max", "2, 3, 8, 8", false},  // LeNet
    {"kernel=\"(2, 2)\", stride=\"(2, 2)\", pool_type=max", "1, 2, 7, 9", false},  // odd
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=max", "2, 3, 11, 13",
     true},  // ResNet
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pool_type=max, pooling_convention=full", "1, 2, 10, 7",
     true},
    {"kernel=\"(3, 3)\", stride=\"(1, 1)\", pad=\"(1, 1)\", pool_type=max", "1, 2, 6, 5", true},
    {"kernel=\"(2, 3)\", stride=\"(3, 2)\", pad=\"(1, 1)\", pool_type=max", "2, 2, 7, 8", true},
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=avg", "2, 3, 11, 13", true},
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=avg, "
     "count_include_pad=False",
     "2, 3, 11, 13", true},
    {"kernel=\"(3, 2)\", stride=\"(2, 1)\", pad=\"(1, 1)\", pool_type=avg, "
     "pooling_convention=full, count_include_pad=False",
     "1, 3, 8, 6", true},
    {"kernel=\"(2, 3)\", stride=\"(1, 2)\", pool_type=sum, pooling_convention=full", "1, 4, 5, 9",
     true},
    {"kernel=\"(1, 1)\", global_pool=True, pool_type=avg", "2, 5, 7, 7", false},
    {"kernel=\"(1, 1)\", global_pool=True, pool_type=max", "2, 5, 3, 1", false},
    {"kernel=\"(1, 1)\", global_pool=True, pool_type=sum", "1, 3, 4, 5", false},
    {"kernel=\"(3)\", stride=\"(2)\", pool_type=max", "2, 3, 17", true},
    {"kernel=\"(3)\", stride=\"(2)\", pool_type=avg, pooling_convention=same", "2, 3, 16", true},
    {"kernel=\"(2)\", stride=\"(3)\", pool_type=max, pooling_convention=same", "2, 3, 16", false},
    {"kernel=\"(2, 2, 2)\", pool_type=avg", "1, 2, 3, 4, 5", true},
    {"kernel=\"(2, 3, 2)\", stride=\"(2, 2, 1)\", pad=\"(1, 0, 1)\", pool_type=max",
     "1, 2, 5, 6, 3", true},
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=max, layout=NHWC",
     "2, 9, 7, 5", true},
    {"kernel=\"(2, 2)\", stride=\"(2, 2)\", pool_type=avg, layout=NHWC", "2, 6, 5, 3", false},
    {"kernel=\"(3)\", stride=\"(1)\", pool_type=max, layout=NWC", "2, 9, 4", true},
    {"kernel=\"(2, 2)\", pool_type=lp, p_value=1", "1, 2, 6, 5", true},
    {"kernel=\"(2, 2)\", pool_type=lp, p_value=2", "1, 2, 6, 5", true},
    {"kernel=\"(2, 3)\", stride=\"(2, 1)\", pool_type=lp, p_value=3", "1, 2, 6, 5", true},
    {"kernel=\"(2, 2)\", stride=\"(2, 2)\", pool_type=max", "0, 3, 8, 8", false},  // no batch
    {"kernel=\"(1, 1)\", pool_type=max", "2, 1, 1, 1", false},                     // size 1
};

double PoolCaseTol(const PoolCase& p) {
  bool max = p.attrs.find("max") != std::string::npos;
  if (max && !p.overlap) return kExact;
  if (p.attrs.find("lp") != std::string::npos) return kPoolTol + 1e-5;  // x / y, then squared
  return kPoolTol;
}

TEST(LowerPoolNorm, PoolingGradient) {
  for (const PoolCase& p : kPoolCases) {
    SCOPED_TRACE(p.attrs + " on " + p.shape);
    Check(PoolGrad(p.attrs, p.shape), kPoolGrad, PoolCaseTol(p), 1);
  }
}

TEST(LowerPoolNorm, MaxPoolingGradientTies) {
  // Values from {-1, 0, 1}: most windows hold several maxima; the reference sends dy to the
  // first in window order.
  Case c;
  c.ties = true;
  for (const PoolCase& p : kPoolCases) {
    if (p.attrs.find("max") == std::string::npos) continue;
    SCOPED_TRACE(p.attrs + " on " + p.shape);
    Check(PoolGrad(p.attrs, p.shape), kPoolGrad, PoolCaseTol(p), 1, c);
  }
}

TEST(LowerPoolNorm, MaxPoolingGradientNaNAndInfinity) {
  // NaN first in a window keeps the gradient there; NaN later is skipped; -inf everywhere
  // still routes to the first element.
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = INFINITY;
  std::vector<double> x = {nan, 1, 2,    0, 3,    nan, 5, 5,   -inf, -inf, -inf, -inf,
                           1,   1, -inf, 2, -inf, nan, 4, nan, 4,    0,    -1,   -1,
                           nan, 7, 7,    1, 2,    nan, 3, 3,   -inf, nan,  6,    5};
  for (const char* attrs : {"kernel=\"(2, 2)\", stride=\"(2, 2)\", pool_type=max",
                            "kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=max",
                            "kernel=\"(3, 2)\", stride=\"(1, 1)\", pool_type=max"}) {
    SCOPED_TRACE(attrs);
    Case c;
    c.given["x"] = Tensor::FromValues({1, 1, 6, 6}, DType::kFloat32, x);
    bool overlap = std::string(attrs).find("(2, 2)\", stride=\"(2, 2)") == std::string::npos;
    Check(PoolGrad(attrs, "1, 1, 6, 6"), kPoolGrad, overlap ? kPoolTol : kExact, 1, c);
  }
}

TEST(LowerPoolNorm, PoolingGradientFloat64) {
  for (const char* attrs : {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=max",
                            "kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=avg",
                            "kernel=\"(2, 2)\", pool_type=lp, p_value=2"}) {
    SCOPED_TRACE(attrs);
    Check(PoolGrad(attrs, "2, 3, 9, 7", "float64"), kPoolGrad, kF64, 1);
  }
}

TEST(LowerPoolNorm, PoolingGradientFusedWithReluGradient) {
  // LeNet's training graph: relu -> max pool; the pool gradient and the relu gradient fuse
  // into one kernel (the gradient's epilogue).
  for (const char* attrs :
       {"kernel=\"(2, 2)\", stride=\"(2, 2)\", pool_type=max",
        "kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=max",
        "kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=avg"}) {
    SCOPED_TRACE(attrs);
    std::string shape = "3, 6, 9, 11";
    std::string text = "graph {\n  %x = var : float32[" + shape + "]\n  %dy = var : float32[" +
                       PooledShape(attrs, shape, "float32") +
                       "]\n  %a = Activation(%x) {act_type=relu}\n  %y = Pooling(%a) {" + attrs +
                       "}\n  %dp = _backward_Pooling(%dy, %a, %y) {" + attrs +
                       "}\n  %dx = _backward_Activation(%dp, %a) {act_type=relu}\n  return %dx, "
                       "%y\n}";
    Graph f = Typed(text, true);
    int composites = 0;
    for (uint32_t id = 0; id < f.num_nodes(); ++id) {
      const Node& n = f.node(id);
      if (!IsComposite(n)) continue;
      ++composites;
      std::string ops;
      const Graph& body = CompositeBody(n);
      for (uint32_t i = 0; i < body.num_nodes(); ++i)
        if (!body.node(i).is_variable()) ops += std::string(body.node(i).op_name()) + " ";
      EXPECT_NE(ops.find("_backward_Pooling _backward_Activation"), std::string::npos) << ops;
    }
    EXPECT_EQ(composites, 1);
    bool overlap = std::string(attrs).find("pad") != std::string::npos;
    Check(text, {}, overlap ? kPoolTol : kExact, 1);
  }
}

// ----- BatchNorm -----

std::string BatchNormGraph(const std::string& attrs, const std::string& shape, int64_t channels,
                           const std::string& dtype = "float32") {
  std::string p = dtype + "[" + std::to_string(channels) + "]";
  return "graph {\n  %x = var : " + dtype + "[" + shape + "]\n  %gamma = var : " + p +
         "\n  %beta = var : " + p + "\n  %mm = var : " + p + "\n  %mv = var : " + p +
         "\n  %y = BatchNorm(%x, %gamma, %beta, %mm, %mv) {" + attrs + "}\n  return %y\n}";
}

std::string BatchNormGradGraph(const std::string& attrs, const std::string& shape, int64_t channels,
                               const std::string& dtype = "float32") {
  std::string p = dtype + "[" + std::to_string(channels) + "]";
  return "graph {\n  %dy = var : " + dtype + "[" + shape + "]\n  %x = var : " + dtype + "[" +
         shape + "]\n  %gamma = var : " + p + "\n  %mean = var : " + p + "\n  %istd = var : " + p +
         "\n  %d = _backward_BatchNorm(%dy, %x, %gamma, %mean, %istd) {" + attrs +
         "}\n  return %d\n}";
}

// Positive variances (one of them 0 when `zero`).
Tensor Variances(int64_t c, DType t, bool zero) {
  std::vector<double> v = test::RandomValues(size_t(c), 99, 0.05, 2.0);
  if (zero) v[0] = 0;
  return Tensor::FromValues({c}, t, v);
}

TEST(LowerPoolNorm, BatchNormWithGlobalStats) {
  struct B {
    std::string attrs, shape;
    int64_t channels;
  };
  const B cases[] = {
      {"use_global_stats=True", "2, 3, 5, 7", 3},
      {"use_global_stats=True, fix_gamma=False", "2, 3, 5, 7", 3},
      {"use_global_stats=True, fix_gamma=False, axis=-1", "4, 5, 17", 17},
      {"use_global_stats=True, fix_gamma=False, axis=0, eps=0", "6, 9", 6},
      {"use_global_stats=True, fix_gamma=False", "0, 4, 3", 4},
      {"use_global_stats=True, fix_gamma=False", "1, 1, 1", 1},
  };
  for (const B& b : cases)
    for (bool train : {false, true}) {
      SCOPED_TRACE(b.attrs + " on " + b.shape + (train ? ", training" : ""));
      Case c;
      c.fuse = false;
      c.is_train = train;
      bool zero_eps = b.attrs.find("eps=0") != std::string::npos;
      c.given["mv"] = Variances(b.channels, DType::kFloat32, zero_eps);
      Check(BatchNormGraph(b.attrs, b.shape, b.channels), {"BatchNorm"}, kMath * 4, 1, c);
    }
  Case c;
  c.fuse = false;
  c.given["mv"] = Variances(3, DType::kFloat64, false);
  Check(BatchNormGraph("use_global_stats=True, fix_gamma=False", "2, 3, 4", 3, "float64"),
        {"BatchNorm"}, kF64, 1, c);
}

TEST(LowerPoolNorm, BatchNormTrainingStatisticsAreNotDefined) {
  // Batch statistics update the moving statistics in place: no definition can say so.
  Graph f = Typed(BatchNormGraph("fix_gamma=False", "2, 3, 4", 3), false);
  for (uint32_t id = 0; id < f.num_nodes(); ++id) {
    if (f.node(id).is_variable()) continue;
    EXPECT_EQ(codegen::UnsupportedOps(f, id).size(), 1u);
  }
}

TEST(LowerPoolNorm, BatchNormGradient) {
  struct B {
    std::string attrs, shape;
    int64_t channels, count;
  };
  const B cases[] = {
      {"", "1, 3, 5, 7", 3, 35},
      {"fix_gamma=False", "1, 4, 9, 17", 4, 153},
      {"fix_gamma=False, axis=0", "5, 8, 3", 5, 24},
      {"fix_gamma=False, axis=-2", "1, 1, 6, 33", 6, 33},
      {"fix_gamma=False, use_global_stats=True", "1, 3, 5, 7", 3, 35},
      {"use_global_stats=True, axis=0", "7, 2, 3", 7, 6},
      {"fix_gamma=False", "1, 1, 1, 1", 1, 1},
      {"fix_gamma=False, axis=0", "3, 0", 3, 0},  // empty: d gamma and d beta are 0
      {"fix_gamma=False", "1, 5, 1, 1", 5, 1},
  };
  for (const B& b : cases) {
    SCOPED_TRACE(b.attrs + " on " + b.shape);
    Case c;
    c.fuse = false;
    c.is_train = true;  // the mode of every gradient pass
    c.given["istd"] = Variances(b.channels, DType::kFloat32, false);
    Check(BatchNormGradGraph(b.attrs, b.shape, b.channels), {"_backward_BatchNorm"},
          NormTol(b.count), 1, c);
  }
  Case c;
  c.fuse = false;
  c.is_train = true;
  Check(BatchNormGradGraph("fix_gamma=False", "1, 3, 4, 5", 3, "float64"), {"_backward_BatchNorm"},
        kF64, 1, c);
}

TEST(LowerPoolNorm, BatchNormGradientWithABatchAxisIsNotDefinedYet) {
  // Channel sums under an outer batch loop would be recomputed per batch element.
  Graph f = Typed(BatchNormGradGraph("", "2, 3, 4", 3), false);
  for (uint32_t id = 0; id < f.num_nodes(); ++id) {
    if (f.node(id).is_variable()) continue;
    EXPECT_EQ(codegen::UnsupportedOps(f, id).size(), 1u);
  }
}

// ----- LayerNorm -----

std::string LayerNormGraph(const std::string& attrs, const std::string& shape, int64_t channels,
                           const std::string& dtype = "float32") {
  std::string p = dtype + "[" + std::to_string(channels) + "]";
  return "graph {\n  %x = var : " + dtype + "[" + shape + "]\n  %gamma = var : " + p +
         "\n  %beta = var : " + p + "\n  %y = LayerNorm(%x, %gamma, %beta) {" + attrs +
         "}\n  return %y\n}";
}

std::string LayerNormGradGraph(const std::string& attrs, const std::string& shape,
                               const std::string& stat_shape, int64_t channels,
                               const std::string& dtype = "float32") {
  std::string p = dtype + "[" + std::to_string(channels) + "]";
  std::string s = dtype + "[" + stat_shape + "]";
  return "graph {\n  %dy = var : " + dtype + "[" + shape + "]\n  %x = var : " + dtype + "[" +
         shape + "]\n  %gamma = var : " + p + "\n  %mean = var : " + s + "\n  %std = var : " + s +
         "\n  %d = _backward_LayerNorm(%dy, %x, %gamma, %mean, %std) {" + attrs +
         "}\n  return %d\n}";
}

struct L {
  std::string attrs, shape, stat_shape;
  int64_t channels, count;  // count: the other axes' elements (the d gamma sums)
};
const L kLayerNormCases[] = {
    {"", "3, 17", "3, 1", 17, 3},     {"axis=1", "2, 5, 7", "2, 1, 7", 5, 14},
    {"axis=0", "6, 4", "1, 4", 6, 4}, {"", "4, 1", "4, 1", 1, 4},
    {"", "0, 5", "0, 1", 5, 0},       {"eps=0.1", "2, 3, 40", "2, 3, 1", 40, 6},
};

TEST(LowerPoolNorm, LayerNorm) {
  for (const L& l : kLayerNormCases) {
    SCOPED_TRACE(l.attrs + " on " + l.shape);
    Case c;
    c.fuse = false;
    Check(LayerNormGraph(l.attrs, l.shape, l.channels), {"LayerNorm"}, NormTol(l.channels), 1, c);
  }
  Case c;
  c.fuse = false;
  Check(LayerNormGraph("axis=1", "2, 5, 3", 5, "float64"), {"LayerNorm"}, kF64, 1, c);
}

TEST(LowerPoolNorm, LayerNormGradient) {
  for (const L& l : kLayerNormCases) {
    SCOPED_TRACE(l.attrs + " on " + l.shape);
    Case c;
    c.fuse = false;
    std::vector<int64_t> dims;
    for (size_t pos = 0; pos < l.stat_shape.size();) {
      size_t e = l.stat_shape.find(',', pos);
      if (e == std::string::npos) e = l.stat_shape.size();
      dims.push_back(std::stoll(l.stat_shape.substr(pos, e - pos)));
      pos = e + 1;
    }
    int64_t size = 1;
    for (int64_t d : dims) size *= d;
    c.given["std"] =
        Tensor::FromValues(dims, DType::kFloat32, test::RandomValues(size_t(size), 5, 0.5, 2.0));
    Check(LayerNormGradGraph(l.attrs, l.shape, l.stat_shape, l.channels), {"_backward_LayerNorm"},
          NormTol(std::max(l.channels, l.count)), 1, c);
  }
  Case c;
  c.fuse = false;
  c.given["std"] =
      Tensor::FromValues({2, 1, 3}, DType::kFloat64, test::RandomValues(6, 5, 0.5, 2.0));
  Check(LayerNormGradGraph("axis=1", "2, 5, 3", "2, 1, 3", 5, "float64"), {"_backward_LayerNorm"},
        kF64, 1, c);
}

}  // namespace
}  // namespace kiln
