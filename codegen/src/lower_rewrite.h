// lower_rewrite.h - internal to codegen: what lower_reduce.cpp's schedules ask of kernel-IR
// expressions: the variables and buffers they read, substitution and fresh copies, how an
// index moves with a loop variable (affine coefficients, load strides), and the index clamps
// of padded reads with the tests they imply.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kiln/codegen/kernel_ir.h"

namespace kiln::codegen::detail {

// Variables and buffers an expression reads (`seen`: nodes already visited).
void Collect(const Expr& e, std::set<const VarNode*>& vars, std::set<const BufferNode*>& bufs,
             std::set<const ExprNode*>& seen);

// Replaces variables, rank-0 loads of buffers (by a value), buffers (by others) and given
// expression nodes (by expressions, themselves rewritten).
struct Subst {
  std::map<const VarNode*, Expr> vars;
  std::map<const BufferNode*, Expr> loads;
  std::map<const BufferNode*, Buffer> bufs;
  std::map<const ExprNode*, Expr> nodes;
};

// `e` with `s` applied (`memo`: nodes already rewritten).
Expr Rewrite(const Expr& e, const Subst& s, std::map<const ExprNode*, Expr>& memo);
Expr Rewrite(const Expr& e, const Subst& s);

// A copy of `st` with `s` applied, in which every variable it binds and every buffer it
// allocates is a new one, so that the copy can sit beside `st` in one kernel (a variable is
// bound once). Adds those renamings to `s`.
Stmt Freshen(const Stmt& st, Subst& s);

// How `e` changes when `v` grows by one, or nullopt when not affine in v (as the emitter's).
std::optional<int64_t> Coef(const Expr& e, const VarNode* v);

// How many elements the load `e` (of a buffer, not a rank-0 local) moves when `v` grows by one,
// or nullopt when that is not a constant.
std::optional<int64_t> LoadStride(const Expr& e, const VarNode* v);

// Whether some load of a buffer (not a rank-0 local) in `e` walks memory contiguously in `v`.
bool HasUnitStrideLoad(const Expr& e, const VarNode* v, std::set<const ExprNode*>& seen);

// Whether every buffer load in `e` is contiguous (stride 1) or invariant (stride 0) in `v`, and
// at least one is contiguous: vectors along `v` need no gathers.
bool LoadsVectorAlong(const Expr& e, const VarNode* v);

// An index clamp max(min(a, hi), lo) or min(max(a, lo), hi) with constant bounds.
struct Clamp {
  const ExprNode* node;
  Expr arg;
  int64_t lo, hi, step;  // step: how `arg` moves with the vector variable
};

// `e` as a clamp whose argument moves with `v`, or nullopt.
std::optional<Clamp> AsClamp(const Expr& e, const VarNode* v);

// The clamps in `e` whose argument moves with `v`: they turn contiguous reads into gathers.
void VaryingClamps(const Expr& e, const VarNode* v, std::vector<Clamp>& out,
                   std::set<const ExprNode*>& seen);

// Comparisons of a clamp's argument with a constant that every unclamped value satisfies
// (the padding tests beside a clamped read), collected as true in `s.nodes`; `range` maps an
// argument's StructuralKey to its unclamped range.
void ImpliedTests(const Expr& e, const std::map<std::string, std::pair<int64_t, int64_t>>& range,
                  Subst& s, std::set<const ExprNode*>& seen);

}  // namespace kiln::codegen::detail
