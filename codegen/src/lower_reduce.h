// lower_reduce.h - internal to codegen: the loop nest of a group of outputs, with the
// reductions their values contain (used by lower.cpp; see kiln/codegen/lower.h).
//
// Translating an output's value (lower.cpp's Inliner) turns every reduction it meets into a
// `Reduction`: its axes as fresh loop variables, its body as kernel IR, and a rank-0 local
// accumulator whose Load stands for the result. BuildNest then places each reduction at the
// loop level where every variable it depends on is bound (hoisting: softmax's row maximum and
// row sum run once per row, not once per element) and picks the schedule:
//
//   - a reduction that does not depend on the innermost output axis runs before that loop,
//     which stays vectorized;
//   - reductions that depend on it either tile the innermost output loop (W lanes of
//     accumulators, a vectorized update inside the reduction loops: sum over axis 0, pooling),
//     or leave it serial and reduce with W vector partial sums when their innermost axis reads
//     memory contiguously (sum over the last axis). Either way whole chunks of W run first and
//     the last, shorter one as a vector loop of its own constant width, so that every vector
//     loop has a constant extent and LLVM keeps the lanes in registers;
//   - tiled contractions (sums of products, one factor free of an outer output loop's variable
//     and read along the tiled axis: convolutions, matrix products) run 8 values of that loop
//     at once (register blocking: each vector read feeds 8 accumulators);
//   - a tiled update that reads through index clamps moving with the tiled axis (padding) has
//     a second copy without the clamps and the padding tests, run when every lane is inside;
//   - a reduction that depends on no output axis disables the parallel loop (it would be
//     recomputed by every task).
//
// Summation order depends only on the shapes (partial sums are per lane, combined lane 0 to
// W-1 at the end), never on the thread count: a parallel loop splits output axes only.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kiln/codegen/kernel_ir.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/compute.h"

namespace kiln::codegen::detail {

struct Reduction {
  Buffer acc;  // rank 0: holds the result after the reduction's loops
  TReduceOp op;
  std::vector<Var> vars;  // one loop variable per reduction axis, outermost first
  std::vector<int64_t> extents;
  Expr body;  // the value combined at each point; may Load earlier reductions' accumulators
};

// The reductions of one nest in creation order: every reduction comes after those its body
// reads. Identical reductions (same definition node, same output indices, same enclosing
// reduction variables) are created once: `Find`/`Remember` keep that cache.
struct Reductions {
  std::vector<Reduction> list;
  std::map<std::pair<const void*, std::string>, Expr> cache;  // (TExpr node, StructuralKey)

  // Records a reduction; returns the Load of its result.
  Expr Add(TReduceOp op, std::vector<Var> vars, std::vector<int64_t> extents, Expr body);
};

// A text equal for two index lists exactly when they compute the same values: the structure
// of the expressions, with variables and buffers by identity.
std::string StructuralKey(const std::vector<Expr>& exprs);

// The value of output `out` at the output indices `idx`, registering its reductions in `reds`.
using NestValue = std::function<Expr(size_t out, const std::vector<Expr>& idx, Reductions& reds)>;

// The loop nest over `dims` storing each of `outs` (all of shape `dims`). The outermost loop is
// parallel when `allow_parallel` and the nest has at least opt.parallel_min_elements elements.
Stmt BuildNest(const std::vector<int64_t>& dims, const std::vector<Buffer>& outs,
               const NestValue& value, bool allow_parallel, const LowerOptions& opt);

}  // namespace kiln::codegen::detail
