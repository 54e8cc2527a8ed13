// lower_util.h - what the lowering tests share: every op node of a graph lowered to one kernel,
// JIT-compiled, and run at 1 and 2 threads on the interpreter's values of its inputs.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/codegen/llvm_jit.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/graph.h"
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

// |got - want| <= scale_rel * S + elem_rel * |want|, S = max(1, largest finite |want|).
struct ScaleTol {
  double scale_rel = 0;
  double elem_rel = 0;
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
// values). Reports the first five bad elements.
inline void ExpectNearScale(const Tensor& got, const Tensor& want, ScaleTol tol) {
  ASSERT_EQ(got.shape(), want.shape());
  std::vector<double> g = got.ToDoubles(), w = want.ToDoubles();
  double scale = 1;
  for (double v : w)
    if (std::isfinite(v)) scale = std::max(scale, std::fabs(v));
  int bad = 0;
  for (size_t i = 0; i < g.size() && bad < 5; ++i) {
    double bound = tol.scale_rel * scale + tol.elem_rel * std::fabs(w[i]);
    bool ok = std::isnan(w[i])   ? std::isnan(g[i])
              : std::isinf(w[i]) ? g[i] == w[i]
                                 : std::fabs(g[i] - w[i]) <= bound;
    if (!ok) {
      ++bad;
      ADD_FAILURE() << "element " << i << ": got " << g[i] << ", want " << w[i] << " (bound "
                    << bound << ", scale " << scale << ")";
    }
  }
}

}  // namespace kiln::test
