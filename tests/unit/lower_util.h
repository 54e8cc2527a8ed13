// lower_util.h - what the lowering tests share: every op node of a graph lowered to one kernel,
// JIT-compiled, and run at 1 and 2 threads on the interpreter's values of its inputs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/codegen/compile.h"
#include "kiln/codegen/llvm_jit.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/graph.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/passes/infer.h"
#include "kiln/runtime/tensor.h"
#include "kiln/runtime/thread_pool.h"
#include "test_util.h"

namespace kiln::test {

// Tolerances of the lowering tests (each test file states where they apply): exact for ops that
// select or copy, kMath for elementwise math (vmath is within 2.5 ulp), and for a float32 sum of
// n values (kiln accumulates in float32, the reference in double) 1e-5 sqrt(n).
inline constexpr double kExact = 0.0;
inline constexpr double kMath = 2e-6;
inline double SumTol(int64_t n) {
  return 1e-5 * std::sqrt(double(std::max<int64_t>(n, 1)));
}

// For every op node of `f` that `keep(node)` accepts: lowers it with `opt` (named k<id>),
// compiles it, runs it on `values` (the interpreter's value of every entry of `f`) with 1 and
// with 2 threads, and calls compare(got, want) for each output under a SCOPED_TRACE naming the
// node, the output, the thread count and the kernel's text. Returns the number of kernels.
template <class Keep, class Compare>
int LowerRunAndCompare(const Graph& f, const std::vector<Tensor>& values,
                       const codegen::LowerOptions& opt, Keep keep, Compare compare) {
  int kernels = 0;
  for (uint32_t id = 0; id < f.num_nodes(); ++id) {
    const Node& n = f.node(id);
    if (n.is_variable() || !keep(n)) continue;
    ++kernels;
    codegen::LowerOptions o = opt;
    o.kernel_name = "k" + std::to_string(id);
    codegen::Kernel k = codegen::LowerNode(f, id, o);
    codegen::LLVMJit jit;
    codegen::KernelFn fn = jit.Compile({k})[0];
    for (int threads : {1, 2}) {
      std::vector<void*> args;
      for (const Entry& e : n.inputs) args.push_back(values[f.entry_id(e)].raw_data());
      std::vector<Tensor> outs;
      for (int j = 0; j < n.num_outputs(); ++j) {
        Entry e{id, uint32_t(j)};
        outs.push_back(Tensor::Zeros(f.shape(e).dims(), f.dtype(e)));
        args.push_back(outs.back().raw_data());
      }
      ThreadPool pool(threads);
      pool.ParallelFor(codegen::TaskCount(k), [&](int64_t b, int64_t e) { fn(args.data(), b, e); });
      for (int j = 0; j < n.num_outputs(); ++j) {
        SCOPED_TRACE(n.name + " output " + std::to_string(j) + ", " + std::to_string(threads) +
                     " threads\n" + codegen::PrintKernel(k));
        compare(outs[size_t(j)], values[f.entry_id(Entry{id, uint32_t(j)})]);
      }
    }
  }
  return kernels;
}

// The schedule the lowering tests try besides the default one: the parallel loop forced on
// small shapes, in chunks of 8.
inline codegen::LowerOptions ForcedParallel() {
  codegen::LowerOptions o;
  o.parallel_min_elements = 0;
  o.parallel_chunk = 8;
  return o;
}

// Lowers node `id` of `f` (one output) under ForcedParallel(), runs it on `values` with 1, 2
// and 3 threads, and expects the same bits each time (a parallel loop splits output axes only).
inline void ExpectSameBitsAtThreadCounts(const Graph& f, const std::vector<Tensor>& values,
                                         uint32_t id) {
  codegen::Kernel k = codegen::LowerNode(f, id, ForcedParallel());
  ASSERT_NE(k.ParallelLoop(), nullptr);
  codegen::LLVMJit jit;
  codegen::KernelFn fn = jit.Compile({k})[0];
  std::vector<std::vector<double>> results;
  for (int threads : {1, 2, 3}) {
    std::vector<void*> args;
    for (const Entry& e : f.node(id).inputs) args.push_back(values[f.entry_id(e)].raw_data());
    Tensor out = Tensor::Zeros(f.shape(Entry{id, 0}).dims(), f.dtype(Entry{id, 0}));
    args.push_back(out.raw_data());
    ThreadPool pool(threads);
    pool.ParallelFor(codegen::TaskCount(k), [&](int64_t b, int64_t e) { fn(args.data(), b, e); });
    results.push_back(out.ToDoubles());
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

// LowerRunAndCompare under the default schedule and under ForcedParallel(), each expected to
// give `kernels` kernels.
template <class Keep, class Compare>
void LowerBothSchedules(const Graph& f, const std::vector<Tensor>& values, Keep keep,
                        Compare compare, int kernels = 1) {
  for (const codegen::LowerOptions& opt : {codegen::LowerOptions{}, ForcedParallel()})
    EXPECT_EQ(LowerRunAndCompare(f, values, opt, keep, compare), kernels);
}

// Compiles the training graph `g` whole (CompileGraph with `o`, in training mode and with no
// reference call allowed: an UnsupportedError would name every one), expects every op named in
// `jit_ops` to run as a JIT kernel, then runs it at 1 and 2 threads on `vars` and calls
// compare(got, want) for each output against the interpreter's (in training mode).
template <class Compare>
void CompileTrainingAndCompare(const Graph& g, codegen::CompileOptions o,
                               const std::map<std::string, Tensor>& vars,
                               const std::set<std::string>& jit_ops, Compare compare) {
  o.is_train = true;
  o.allow_reference = false;
  InterpretOptions train;
  train.is_train = true;
  std::vector<Tensor> ref = Interpret(g, vars, train);
  std::shared_ptr<const codegen::CompiledGraph> cg;
  ASSERT_NO_THROW(cg = codegen::CompileGraph(g, o));
  EXPECT_NE(cg->Report().find(" 0 on reference kernels"), std::string::npos) << cg->Report();
  std::set<std::string> lowered;
  for (const codegen::CompiledCall& call : cg->calls())
    for (const std::string& op : jit_ops)
      if (call.kind == codegen::CompiledCall::Kind::kJit && call.ops.find(op) != std::string::npos)
        lowered.insert(op);
  EXPECT_EQ(lowered, jit_ops) << cg->Report();
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    codegen::CompiledRun run(cg, &pool);
    for (const auto& [name, value] : vars) run.Bind(name, value);
    run.Run(true);
    for (size_t i = 0; i < ref.size(); ++i) {
      SCOPED_TRACE("output " + std::to_string(i) + ", " + std::to_string(threads) + " threads");
      compare(run.output(i), ref[i]);
    }
  }
}

// The same for every op node, comparing within `tol` (test::ExpectTensorNear).
inline int LowerRunAndCompare(const Graph& f, const std::vector<Tensor>& values,
                              const codegen::LowerOptions& opt, double tol) {
  return LowerRunAndCompare(
      f, values, opt, [](const Node&) { return true; },
      [&](const Tensor& got, const Tensor& want) {
        ExpectTensorNear(got, want.shape(), want.ToDoubles(), tol);
      });
}

// ----- One-op graphs and scale-relative tolerances (the heavy-op and more-op lowering tests) --

// The graph of `text` with its shapes and dtypes inferred.
inline Graph Typed(const std::string& text) {
  Graph g = ParseGraph(text);
  InferShapes(g);
  InferTypes(g);
  return g;
}

// Random values for every variable of `g`, the k-th variable from seed `seed + k` (k from 1):
// floating types in [-2, 2]; integers rounded, in [-100, 100] ([0, 100] for uint8; int8 and
// int32 sums wrap), or [-1e12, 1e12] for int64 (products overflow); bool from [-1, 1] rounded.
inline std::map<std::string, Tensor> RandomInputs(const Graph& g, uint32_t seed) {
  std::map<std::string, Tensor> vars;
  for (uint32_t v : g.VariableNodes()) {
    DType t = g.dtype(Entry{v, 0});
    std::vector<int64_t> dims = g.shape(Entry{v, 0}).dims();
    size_t n = size_t(NumElements(dims));
    std::vector<double> values;
    if (IsFloatingPoint(t)) {
      values = RandomValues(n, ++seed, -2.0, 2.0);
    } else {
      double range = t == DType::kInt64 ? 1e12 : t == DType::kBool ? 1 : 100;
      values = RandomValues(n, ++seed, t == DType::kUInt8 ? 0 : -range, range);
      for (double& x : values) x = std::round(x);
    }
    vars[g.node(v).name] = Tensor::FromValues(dims, t, values);
  }
  return vars;
}

inline std::string Dims(const std::vector<int64_t>& dims) {
  std::string s;
  for (int64_t d : dims) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return s;
}

// A variable of a one-op graph; unshaped, its shape and dtype are left to inference.
struct Var {
  std::string name;
  std::vector<int64_t> dims;
  bool shaped = true;
};

// graph { vars; %out = op(vars...) {attrs}; return %out } with every shaped variable of dtype
// `t`.
inline std::string OneOp(const std::string& op, const std::string& attrs,
                         const std::vector<Var>& vars, const std::string& t = "float32") {
  std::string s = "graph {\n";
  std::string args;
  for (const Var& v : vars) {
    s += "  %" + v.name + " = var" + (v.shaped ? " : " + t + "[" + Dims(v.dims) + "]" : "") + "\n";
    args += (args.empty() ? "%" : ", %") + v.name;
  }
  s += "  %out = " + op + "(" + args + ")" + (attrs.empty() ? "" : " {" + attrs + "}") + "\n";
  return s + "  return %out\n}";
}

// The attributes of dot and batch_dot (and their gradients) with these transpositions.
inline std::string DotAttrs(bool ta, bool tb) {
  return std::string("transpose_a=") + (ta ? "True" : "False") +
         ", transpose_b=" + (tb ? "True" : "False");
}

// A convolution (or deconvolution) case: its attributes, data shape and filter count.
struct ConvCase {
  std::string attrs;  // without num_filter and no_bias
  std::vector<int64_t> data;
  int64_t filters;
};

inline std::string ConvAttrs(const ConvCase& c, bool no_bias) {
  return c.attrs + ", num_filter=" + std::to_string(c.filters) +
         ", no_bias=" + (no_bias ? "True" : "False");
}

// |got - want| <= scale_rel * S + elem_rel * |want| + abs, S = max(1, largest finite |want|);
// or, with `exact`, the same bytes (any NaN matching any NaN).
struct ScaleTol {
  double scale_rel = 0;
  double elem_rel = 0;
  bool exact = false;
  double abs = 0;
};

// A sum in float32 (float16 and bfloat16 rounded once to their type) or float64 against the
// reference's double sum: the files using it state why these bounds hold for their sums.
inline ScaleTol FloatSumTol(DType t) {
  switch (t) {
    case DType::kFloat32:
      return {1e-5, 0};
    case DType::kFloat64:
      return {1e-12, 0};
    case DType::kFloat16:
      return {1e-5, std::ldexp(1.0, -10)};
    case DType::kBFloat16:
      return {1e-5, std::ldexp(1.0, -7)};
    default:
      return {0, 0};  // integers and bool: exact
  }
}

// Within `tol`; NaN must meet NaN and an infinity the same infinity (the scale is over finite
// values). got and want have one dtype and shape. Reports the first five bad elements.
inline void ExpectNearScale(const Tensor& got, const Tensor& want, ScaleTol tol) {
  ASSERT_EQ(got.dtype(), want.dtype());
  ASSERT_EQ(got.shape(), want.shape());
  std::vector<double> g = got.ToDoubles(), w = want.ToDoubles();
  const size_t es = DTypeSize(got.dtype());
  const auto* gb = static_cast<const unsigned char*>(got.raw_data());
  const auto* wb = static_cast<const unsigned char*>(want.raw_data());
  double scale = 1;
  for (double v : w)
    if (std::isfinite(v)) scale = std::max(scale, std::fabs(v));
  int bad = 0;
  for (size_t i = 0; i < g.size() && bad < 5; ++i) {
    double bound = tol.scale_rel * scale + tol.elem_rel * std::fabs(w[i]) + tol.abs;
    bool ok = std::isnan(w[i])   ? std::isnan(g[i])
              : tol.exact        ? std::memcmp(gb + i * es, wb + i * es, es) == 0
              : std::isinf(w[i]) ? g[i] == w[i]
                                 : std::fabs(g[i] - w[i]) <= bound;
    if (!ok) {
      ++bad;
      ADD_FAILURE() << "element " << i << ": got " << g[i] << ", want " << w[i] << " (bound "
                    << bound << ", scale " << scale << ")";
    }
  }
}

// ExpectNearScale within FloatSumTol of the dtype: a sum's result against the reference's.
inline void ExpectNearSum(const Tensor& got, const Tensor& want) {
  ExpectNearScale(got, want, FloatSumTol(want.dtype()));
}

}  // namespace kiln::test
