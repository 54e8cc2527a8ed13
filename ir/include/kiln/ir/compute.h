// kiln/ir/compute.h - compute definitions: what an op computes, as a tensor expression.
//
// An op's compute definition (OpDef::compute(), set with `.Compute(f)`) says, for each output,
// the value of out[i0, ..., ik] as an expression of the output's index variables (Axis(k)),
// reading inputs at index expressions (Read(j, {...})). It is the algorithm only: codegen
// (kiln/codegen/lower.h) inlines producers into consumers inside a fused group and chooses the
// loop nest, parallel and vector loops (docs/compute_definition.md, docs/codegen.md).
//
//   // broadcast_add: each input read with its size-1 dimensions pinned to 0
//   .Compute([](const ComputeCtx& c) -> std::vector<TExpr> {
//     if (!IsComputeFloat(c.out_dtype(0))) return {};   // no definition for integer types (yet)
//     return {c.Read(0, c.BroadcastIndex(0)) + c.Read(1, c.BroadcastIndex(1))};
//   })
//
// Shapes are compile-time constants, so a definition may branch on them in C++; the result
// holds only constants, axes, input reads and operators. A definition returns no expressions
// when it does not cover the given dtypes or attributes: the op is then unsupported by
// codegen for that node, as an op without a definition is.
//
// Semantics are the kernel IR's (kiln/codegen/kernel_ir.h): index expressions are int64,
// arithmetic needs both operands of one type (float32, float64, int32, int64), comparisons give
// bool, Min/Max on floats return the other operand for a NaN, math calls take floats.
// The operator enums mirror the kernel IR's so that lowering maps them one to one; ir/ cannot
// include codegen/ (the layering of DESIGN.md).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/ir/attrs.h"
#include "kiln/ir/shape.h"
#include "kiln/runtime/dtype.h"

namespace kiln {

enum class TExprKind : uint8_t {
  kAxis,
  kRead,
  kConst,
  kBinary,
  kSelect,
  kCast,
  kCall,
  kReduce,      // a reduction over its domain's axes of its one operand (TReduce)
  kReduceAxis,  // an index of a reduction's domain, inside its body
};

enum class TBinaryOp : uint8_t {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,  // integers only: C's remainder (truncating), for index expressions
  kMin,
  kMax,
  kEQ,
  kNE,
  kLT,
  kLE,
  kGT,
  kGE,
  kAnd,
  kOr,
};

enum class TMath : uint8_t {
  kExp,
  kLog,
  kTanh,
  kSigmoid,
  kErf,
  kSqrt,
  kRsqrt,
  kPow,
  kAbs,
  kFloor,
  kCeil,
  kRound,
  kExpm1,
  kLog1p,
  kSin,
  kCos,
  kTan,
  kAsin,
  kAcos,
  kAtan,
  // random_bits(stream, counter): int64 operands, an int64 result in [0, 2^32): draw `counter`
  // of `stream` under the run's seed (kiln/ir/random.h). Built with ComputeCtx::RandomBits,
  // which names the node's stream; lowering passes the seed as the kernel's scalar "seed".
  kRandomBits,
};

// How a reduction combines its values, and the result of an empty one.
//   kSum  0 + x0 + x1 + ...           kProd  1 * x0 * x1 * ...
//   kMax, kMin     NaN propagates: one NaN makes the result NaN (NumPy's max and min; the
//                  reference reductions of reduce.cpp); empty: -inf / +inf (integers: the
//                  type's lowest / highest value).
//   kMaxNum, kMinNum   NaN is skipped (IEEE maxNum; C++'s std::max(acc, x) over the values,
//                  as the pooling and softmax references compute); empty: as kMax / kMin.
// The order in which values are combined is not specified: sums and products of floats may
// round differently from a serial loop (lowering states its order, docs/codegen.md).
enum class TReduceOp : uint8_t { kSum, kProd, kMax, kMin, kMaxNum, kMinNum };

// The iteration space of one reduction: its axes and their extents. Each TReduce owns one;
// TReduceAxis nodes point at it, so a body may also use the axes of an enclosing reduction.
struct TReduceDomain {
  std::vector<int64_t> extents;
};

struct TExprNode;
using TExpr = std::shared_ptr<const TExprNode>;

struct TExprNode {
  TExprKind kind;
  DType dtype;
  int index = 0;     // kAxis: the output axis; kRead: the input
  double value = 0;  // kConst
  TBinaryOp op = TBinaryOp::kAdd;
  TMath fn = TMath::kExp;
  TReduceOp reduce_op = TReduceOp::kSum;        // kReduce
  std::shared_ptr<const TReduceDomain> domain;  // kReduce, kReduceAxis (index: the axis)
  std::vector<TExpr> operands;  // read: indices; binary: a, b; select: c, t, f; cast: a; call
                                // args; reduce: the body
};

// Constructors. Binary operands must have one dtype (InternalError otherwise: definitions are
// kiln code).
TExpr TAxis(int k);
TExpr TConst(double value, DType dtype);
TExpr TIndex(int64_t value);  // an int64 constant, for index expressions (|value| <= 2^53)
TExpr TBinary(TBinaryOp op, TExpr a, TExpr b);
TExpr TSelect(TExpr cond, TExpr t, TExpr f);
TExpr TCast(DType dtype, TExpr a);
TExpr TCall(TMath fn, std::vector<TExpr> args);
TExpr operator+(TExpr a, TExpr b);
TExpr operator-(TExpr a, TExpr b);
TExpr operator*(TExpr a, TExpr b);
TExpr operator/(TExpr a, TExpr b);
TExpr operator%(TExpr a, TExpr b);  // integers only
TExpr TMin(TExpr a, TExpr b);
TExpr TMax(TExpr a, TExpr b);

// A reduction: `op` over every point r of the box [0, extents[0]) x ... of body(r), where
// r[k] is an int64 index expression (TReduceAxis) usable in the body's reads. The result has
// the body's dtype (float32, float64, int32 or int64; floats accumulate in their own type).
// The body may contain other reductions, which may use r. Example, the sum over axis 1 of
// x (N, C, H):  out[n, h] = TReduce(kSum, {C}, [&](auto& r) { return c.Read(0, {n, r[0], h}); })
TExpr TReduce(TReduceOp op, std::vector<int64_t> extents,
              const std::function<TExpr(const std::vector<TExpr>& r)>& body);
// The row-major flat index (int64) of the current element in a tensor of `shape`, its
// extent-1 axes read at 0: in an output of that shape, its element number; in an output whose
// shape differs only where `shape` has extent 1, the number of the element it broadcasts from.
TExpr TFlatIndex(const Shape& shape);
// The value a reduction starts from (and the result of an empty one), as a constant.
TExpr TReduceIdentity(TReduceOp op, DType dtype);

// What a definition sees of one node.
class ComputeCtx {
 public:
  ComputeCtx(const Attrs& attrs, std::vector<Shape> in_shapes, std::vector<DType> in_dtypes,
             std::vector<Shape> out_shapes, std::vector<DType> out_dtypes,
             std::string node_name = {}, bool is_train = false);

  template <class A>
  const A& attrs() const {
    return attrs_.Get<A>();
  }
  int num_in() const { return int(in_shapes_.size()); }
  const Shape& in_shape(int j) const { return in_shapes_.at(size_t(j)); }
  DType in_dtype(int j) const { return in_dtypes_.at(size_t(j)); }
  const Shape& out_shape(int k) const { return out_shapes_.at(size_t(k)); }
  DType out_dtype(int k) const { return out_dtypes_.at(size_t(k)); }

  // Input j at these indices (one per dimension of input j; InternalError otherwise).
  TExpr Read(int j, std::vector<TExpr> indices) const;
  // Axis(0), ..., Axis(rank - 1) of output 0.
  std::vector<TExpr> Axes() const;
  // The index of input j for the current element of output 0 under NumPy broadcasting (input
  // dimensions aligned right; a size-1 dimension of the input is read at 0).
  std::vector<TExpr> BroadcastIndex(int j) const;
  // Input j read elementwise (its shape is output 0's).
  TExpr In(int j) const { return Read(j, Axes()); }
  // Whether the code runs in training mode (Dropout draws, rrelu's slopes are random).
  bool is_train() const { return is_train_; }
  // This node's random draw number `counter` (an int64 expression): RandomBits(seed,
  // RandomStream(node name), counter) of kiln/ir/random.h, as an int64 in [0, 2^32).
  TExpr RandomBits(TExpr counter) const;

 private:
  const Attrs& attrs_;
  std::vector<Shape> in_shapes_;
  std::vector<DType> in_dtypes_;
  std::vector<Shape> out_shapes_;
  std::vector<DType> out_dtypes_;
  std::string node_name_;
  bool is_train_ = false;
};

// One expression per output; none when the definition does not cover this node.
using FCompute = std::function<std::vector<TExpr>(const ComputeCtx&)>;

// float32 or float64: the floating types the kernel IR computes on (float16 and bfloat16 are
// only loaded and stored; their ops compute in float32 or wider in the reference kernels, which
// a definition would have to spell with casts: none does yet).
bool IsComputeFloat(DType t);

// A definition for elementwise unary ops on floating types: out = f(in(0)).
FCompute UnaryFloatCompute(std::function<TExpr(TExpr x)> f);

}  // namespace kiln
