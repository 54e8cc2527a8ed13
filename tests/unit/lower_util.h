// lower_util.h - what the lowering tests share: every op node of a graph lowered to one kernel,
// JIT-compiled, and run at 1 and 2 threads on the interpreter's values of its inputs.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

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

}  // namespace kiln::test
