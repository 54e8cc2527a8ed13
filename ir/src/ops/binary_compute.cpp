// binary_compute.cpp - compute definitions (kiln/ir/compute.h) of the elementwise two-operand
// ops of binary.cpp, and where and add_n.
//
// Each gives the reference's result exactly:
// - add, sub, mul, div on float32/float64: the reference computes in double and rounds once,
//   which equals the float operation (double holds the exact result to round). Integer types
//   have no definition (x / 0 = 0 and the wrapping INT_MIN / -1 need guards not written yet).
// - maximum, minimum: NaN when either operand is NaN, else a > b ? a : b (a < b ? a : b), so
//   max(-0, +0) is +0 and max(+0, -0) is -0, as the reference; every dtype but float16 and
//   bfloat16, integers and bool compared after widening.
// - power on float32: pow in float64 (the C library's pow, as the reference's std::pow) rounded
//   to float32, bit for bit; float64 directly. Integer power (wrapping, exact) is not covered.
// - where: any dtype for x and y, any condition dtype (nonzero, NaN included, is true).
// - add_n: summed left to right from 0 in double (int64 for integers), then converted, as the
//   reference; every dtype.
// - The backward ops compute in double and convert, as the reference kernels do.
#include "ops/binary_compute.h"

#include <limits>

#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

// a OP b, of dtype t, as the reference computes it; null where no definition matches it.
TExpr BinaryExpr(BinOp op, TExpr a, TExpr b, DType t) {
  const bool fl = IsComputeFloat(t);
  switch (op) {
    case BinOp::kAdd:
      return fl ? a + b : nullptr;
    case BinOp::kSub:
      return fl ? a - b : nullptr;
    case BinOp::kMul:
      return fl ? a * b : nullptr;
    case BinOp::kDiv:
      return fl ? a / b : nullptr;
    case BinOp::kMax:
    case BinOp::kMin: {
      if (IsFloatingPoint(t) && !fl) return nullptr;
      TExpr wa = Widen(a), wb = Widen(b);
      TExpr v =
          TSelect(TBinary(op == BinOp::kMax ? TBinaryOp::kGT : TBinaryOp::kLT, wa, wb), wa, wb);
      if (fl)
        v = TSelect(TBinary(TBinaryOp::kOr, IsNan(wa), IsNan(wb)),
                    TConst(std::numeric_limits<double>::quiet_NaN(), t), v);
      return v->dtype == t ? v : TCast(t, v);
    }
    case BinOp::kPow: {
      if (!fl) return nullptr;
      if (t == DType::kFloat64) return TCall(TMath::kPow, {a, b});
      return TCast(t, TCall(TMath::kPow, {TCast(DType::kFloat64, a), TCast(DType::kFloat64, b)}));
    }
  }
  return nullptr;
}

std::vector<TExpr> Defined(TExpr e) {
  if (!e) return {};
  return {e};
}

}  // namespace

FCompute BinaryCompute(BinOp op) {
  return [op](const ComputeCtx& c) -> std::vector<TExpr> {
    return Defined(BinaryExpr(op, c.Read(0, c.BroadcastIndex(0)), c.Read(1, c.BroadcastIndex(1)),
                              c.out_dtype(0)));
  };
}

FCompute ScalarCompute(BinOp op, bool reversed, ScalarOf scalar) {
  return [op, reversed, scalar](const ComputeCtx& c) -> std::vector<TExpr> {
    DType t = c.out_dtype(0);
    TExpr s = ConstOf(scalar(c), t);
    return Defined(reversed ? BinaryExpr(op, s, c.In(0), t) : BinaryExpr(op, c.In(0), s, t));
  };
}

FCompute BinaryBackwardCompute(BinOp op) {
  return [op](const ComputeCtx& c) -> std::vector<TExpr> {
    DType t = c.out_dtype(0);
    if (!IsComputeFloat(t) || c.in_shape(1) != c.in_shape(0) || c.in_shape(2) != c.in_shape(0))
      return {};
    TExpr dy = c.In(0), a = c.In(1), b = c.In(2), zero = TConst(0, t);
    if (op == BinOp::kMax || op == BinOp::kMin) {
      // The reference adds dy * 1 into a zero: +0 for a dy of -0.
      bool mx = op == BinOp::kMax;
      TExpr to_a = TBinary(mx ? TBinaryOp::kGE : TBinaryOp::kLE, a, b);
      TExpr to_b = TBinary(mx ? TBinaryOp::kLT : TBinaryOp::kGT, a, b);
      return {TSelect(to_a, zero + dy, zero), TSelect(to_b, zero + dy, zero)};
    }
    if (op != BinOp::kPow) return {};
    // In double, as the reference: d a = dy b a^(b-1), d b = dy a^b ln(a), each added into a
    // zero only when the partial derivative is nonzero (NaN is).
    auto f64 = [](TExpr x) { return TCast(DType::kFloat64, std::move(x)); };
    TExpr A = f64(a), B = f64(b), G = f64(dy), z = TConst(0, DType::kFloat64);
    TExpr pa = B * TCall(TMath::kPow, {A, B - TConst(1, DType::kFloat64)});
    TExpr pb = TCall(TMath::kPow, {A, B}) * TCall(TMath::kLog, {A});
    auto acc = [&](TExpr p) {
      TExpr v = TSelect(TBinary(TBinaryOp::kNE, p, z), z + G * p, z);
      return t == DType::kFloat64 ? v : TCast(t, v);
    };
    return {acc(pa), acc(pb)};
  };
}

FCompute ExtremumScalarBackwardCompute(bool max, ScalarOf scalar) {
  return [max, scalar](const ComputeCtx& c) -> std::vector<TExpr> {
    DType t = c.out_dtype(0);
    if (!IsComputeFloat(t)) return {};
    TExpr x = c.In(1), s = TConst(scalar(c), t);
    TExpr pass = TBinary(max ? TBinaryOp::kGE : TBinaryOp::kLE, x, s);
    return {TSelect(pass, c.In(0), TConst(0, t))};
  };
}

FCompute WhereCompute() {
  return [](const ComputeCtx& c) -> std::vector<TExpr> {
    // The condition has x's shape, or is 1-D with x's first extent (one value per row).
    TExpr cond = c.in_shape(0).ndim() == c.out_shape(0).ndim() ? c.In(0) : c.Read(0, {TAxis(0)});
    return {TSelect(NonZero(cond), c.In(1), c.In(2))};
  };
}

FCompute AddNCompute() {
  return [](const ComputeCtx& c) -> std::vector<TExpr> {
    DType t = c.out_dtype(0);
    bool fl = IsFloatingPoint(t);
    DType acc = fl ? DType::kFloat64 : DType::kInt64;
    // From a zero, as the reference: -0 + -0 sums to +0.
    TExpr sum = fl ? TConst(0, acc) : nullptr;
    for (int j = 0; j < c.num_in(); ++j) {
      TExpr x = ConvertExpr(c.In(j), acc);
      sum = sum ? sum + x : x;
    }
    return {ConvertExpr(sum, t)};
  };
}

}  // namespace kiln::ops
