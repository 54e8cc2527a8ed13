// logic.cpp - comparisons, logical operators and rounding: broadcast_equal, broadcast_not_equal,
// broadcast_greater, broadcast_greater_equal, broadcast_lesser, broadcast_lesser_equal,
// broadcast_logical_and, broadcast_logical_or, broadcast_logical_xor, logical_not, floor, ceil,
// round, trunc and rint.
//
// Semantics are MXNet's: a comparison or logical result is 1 or 0 *in the operands' dtype*
// (MXNet 1.x keeps the dtype; bool operands give bool), so that MXNet symbol files that compare
// floats and multiply by the result keep working. The ONNX importer casts to bool where ONNX
// wants a bool tensor. Comparisons are exact in the element type (int64 beyond 2^53 included);
// nan compares unequal to everything, so nan != nan is 1. Logical operators treat nonzero
// (nan included) as true. Operands broadcast as NumPy does (right-aligned).
//
// floor, ceil, round (half away from zero, as C's round and MXNet's), trunc and rint (halves to
// even, NumPy's and ONNX's Round) are identities on integer and bool types.
//
// Gradients: comparisons and logical operators are piecewise constant, so they contribute
// nothing (MXNet's are zero as well); floor, ceil, round and trunc likewise.
#include <cmath>
#include <functional>
#include <string_view>

#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

// NumPy broadcasting of two operands, forward only (the output's shape from the inputs').
void BroadcastPairShape(ShapeInferCtx& ctx) {
  const Shape& a = ctx.in(0);
  const Shape& b = ctx.in(1);
  if (!a.rank_known() || !b.rank_known()) return;
  const int n = std::max(a.ndim(), b.ndim());
  std::vector<int64_t> out(size_t(n), Shape::kUnknownDim);
  for (int i = 0; i < n; ++i) {
    int ja = i - (n - a.ndim()), jb = i - (n - b.ndim());
    int64_t da = ja < 0 ? 1 : a[ja], db = jb < 0 ? 1 : b[jb];
    if (da == Shape::kUnknownDim || db == Shape::kUnknownDim) {
      if (da != Shape::kUnknownDim && da != 1) out[size_t(i)] = da;
      if (db != Shape::kUnknownDim && db != 1) out[size_t(i)] = db;
      continue;
    }
    if (da != db && da != 1 && db != 1)
      ctx.Fail(StrCat("lhs ", a.ToString(), " and rhs ", b.ToString(),
                      " cannot be broadcast together: at output axis ", i, " lhs has ", da,
                      " and rhs has ", db, " elements (they must be equal or one of them 1)"));
    out[size_t(i)] = da == 1 ? db : da;
  }
  ctx.SetOut(0, Shape(out), StrCat("broadcasting lhs ", a.ToString(), " with rhs ", b.ToString()));
}

enum class Cmp { kEq, kNe, kGt, kGe, kLt, kLe, kAnd, kOr, kXor };

template <class A>
bool Compare(Cmp c, A a, A b) {
  switch (c) {
    case Cmp::kEq:
      return a == b;
    case Cmp::kNe:
      return a != b;
    case Cmp::kGt:
      return a > b;
    case Cmp::kGe:
      return a >= b;
    case Cmp::kLt:
      return a < b;
    case Cmp::kLe:
      return a <= b;
    case Cmp::kAnd:
      return a != A(0) && b != A(0);
    case Cmp::kOr:
      return a != A(0) || b != A(0);
    case Cmp::kXor:
      return (a != A(0)) != (b != A(0));
  }
  return false;
}

template <class T>
void CompareKernel(Cmp c, const Tensor& lhs, const Tensor& rhs, const Tensor& out) {
  const T* a = lhs.data<T>();
  const T* b = rhs.data<T>();
  T* y = out.data<T>();
  int nd = out.ndim();
  ForEachIndex<2>(out.shape(),
                  {BroadcastStrides(lhs.shape(), nd), BroadcastStrides(rhs.shape(), nd)},
                  [&](int64_t i, const std::array<int64_t, 2>& o) {
                    // NaN is nonzero for the logical operators: compare doubles, where nan != 0.
                    bool r = Compare(c, ToAcc(a[o[0]]), ToAcc(b[o[1]]));
                    y[i] = ConvertValue<T>(int64_t(r));
                  });
}

struct CmpOp {
  const char* name;
  const char* doc;
  Cmp cmp;
};

const CmpOp kCmpOps[] = {
    {"broadcast_equal", "lhs == rhs", Cmp::kEq},
    {"broadcast_not_equal", "lhs != rhs", Cmp::kNe},
    {"broadcast_greater", "lhs > rhs", Cmp::kGt},
    {"broadcast_greater_equal", "lhs >= rhs", Cmp::kGe},
    {"broadcast_lesser", "lhs < rhs", Cmp::kLt},
    {"broadcast_lesser_equal", "lhs <= rhs", Cmp::kLe},
    {"broadcast_logical_and", "lhs and rhs (nonzero is true)", Cmp::kAnd},
    {"broadcast_logical_or", "lhs or rhs (nonzero is true)", Cmp::kOr},
    {"broadcast_logical_xor", "lhs xor rhs (nonzero is true)", Cmp::kXor},
};

struct RoundOp {
  const char* name;
  const char* doc;
  double (*f)(double);
};

const RoundOp kRoundOps[] = {
    {"floor", "the largest integer <= x", [](double x) { return std::floor(x); }},
    {"ceil", "the smallest integer >= x", [](double x) { return std::ceil(x); }},
    {"round", "x rounded to the nearest integer, halves away from zero",
     [](double x) { return std::round(x); }},
    {"trunc", "x rounded toward zero", [](double x) { return std::trunc(x); }},
    {"rint", "x rounded to the nearest integer, halves to even",
     [](double x) { return std::nearbyint(x); }},
};

// --- Compute definitions (kiln/ir/compute.h), for every dtype: operands widen exactly to the
// kernel IR's arithmetic types (int8, uint8, bool to int32; float16, bfloat16 to float32),
// where comparisons give the reference's double or int64 comparison; NaN compares unequal.

// 1 or 0 in dtype t.
TExpr OneOrZero(TExpr cond, DType t) {
  return TSelect(std::move(cond), ConstOf(1, t), ConstOf(0, t));
}

FCompute CompareCompute(Cmp cmp) {
  return [cmp](const ComputeCtx& c) -> std::vector<TExpr> {
    TExpr a = c.Read(0, c.BroadcastIndex(0)), b = c.Read(1, c.BroadcastIndex(1));
    TExpr r;
    if (cmp == Cmp::kAnd || cmp == Cmp::kOr || cmp == Cmp::kXor) {
      TBinaryOp op = cmp == Cmp::kAnd  ? TBinaryOp::kAnd
                     : cmp == Cmp::kOr ? TBinaryOp::kOr
                                       : TBinaryOp::kNE;
      r = TBinary(op, NonZero(a), NonZero(b));
    } else {
      const TBinaryOp ops[] = {TBinaryOp::kEQ, TBinaryOp::kNE, TBinaryOp::kGT,
                               TBinaryOp::kGE, TBinaryOp::kLT, TBinaryOp::kLE};
      r = TBinary(ops[int(cmp)], Widen(a), Widen(b));
    }
    return {OneOrZero(r, c.out_dtype(0))};
  };
}

// Round half to even (nearbyint in the default rounding mode): below 2^(mantissa bits) adding
// and subtracting that power of two rounds |x| to an integer; above it, x is one. Zeros keep
// their sign, and a negative x rounding to 0 gives -0, as nearbyint.
TExpr Rint(TExpr x) {
  DType t = x->dtype;
  TExpr big = TConst(t == DType::kFloat32 ? 8388608.0 : 4503599627370496.0, t);
  TExpr ax = TCall(TMath::kAbs, {x});
  TExpr r = (ax + big) - big;
  TExpr sr = TSelect(TBinary(TBinaryOp::kLT, x, TConst(0, t)), r * TConst(-1, t), r);
  TExpr rounded = TSelect(TBinary(TBinaryOp::kEQ, x, TConst(0, t)), x, sr);
  return TSelect(TBinary(TBinaryOp::kLT, ax, big), rounded, x);
}

// floor, ceil, round, trunc, rint: the identity on integers and bool; float16 and bfloat16
// round in float32 (the integer result is exact in the narrow type).
FCompute RoundCompute(std::string_view name) {
  std::function<TExpr(TExpr)> f;
  auto call = [](TMath m) { return [m](TExpr x) { return TCall(m, {std::move(x)}); }; };
  if (name == "floor") f = call(TMath::kFloor);
  if (name == "ceil") f = call(TMath::kCeil);
  if (name == "round") f = call(TMath::kRound);
  if (name == "rint") f = Rint;
  if (name == "trunc")
    f = [](TExpr x) {
      return TSelect(TBinary(TBinaryOp::kLT, x, TConst(0, x->dtype)), TCall(TMath::kCeil, {x}),
                     TCall(TMath::kFloor, {x}));
    };
  return [f](const ComputeCtx& c) -> std::vector<TExpr> {
    DType t = c.out_dtype(0);
    if (!IsFloatingPoint(t)) return {c.In(0)};
    TExpr w = Widen(c.In(0));
    return {t == w->dtype ? f(w) : TCast(t, f(w))};
  };
}

}  // namespace

void RegisterLogicOps(OpRegistry& r) {
  for (const CmpOp& op : kCmpOps) {
    r.Register(op.name)
        .Describe(StrCat(op.doc, " with NumPy broadcasting; 1 or 0 in the operands' dtype"))
        .SetAttrs<NoAttrs>()
        .Inputs({"lhs", "rhs"})
        .InferShape(BroadcastPairShape)
        .InferType(SameTypeInfer)
        .Pattern(FusionPattern::kBroadcast)
        .Reference([cmp = op.cmp](KernelCtx& ctx) {
          KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T,
                            CompareKernel<T>(cmp, ctx.in[0], ctx.in[1], ctx.out[0]));
        })
        .Compute(CompareCompute(op.cmp))
        .Gradient([](GradCtx&) -> GradList {
          return {std::nullopt, std::nullopt};
        });
  }

  r.Register("logical_not")
      .Describe("elementwise: 1 where x is zero, else 0, in x's dtype")
      .SetAttrs<NoAttrs>()
      .InferShape(SameShapeInfer)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference([](KernelCtx& ctx) {
        KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, {
          const T* x = ctx.in[0].data<T>();
          T* y = ctx.out[0].data<T>();
          for (int64_t i = 0; i < ctx.out[0].size(); ++i)
            y[i] = ConvertValue<T>(int64_t(ToAcc(x[i]) == 0));
        });
      })
      .Compute([](const ComputeCtx& c) -> std::vector<TExpr> {
        return {OneOrZero(TBinary(TBinaryOp::kEQ, NonZero(c.In(0)), TConst(0, DType::kBool)),
                          c.out_dtype(0))};
      })
      .Gradient([](GradCtx&) -> GradList { return {std::nullopt}; });

  for (const RoundOp& op : kRoundOps) {
    r.Register(op.name)
        .Describe(StrCat("elementwise ", op.doc, "; the identity on integers"))
        .SetAttrs<NoAttrs>()
        .InferShape(SameShapeInfer)
        .InferType(SameTypeInfer)
        .Pattern(FusionPattern::kElemwise)
        .Inplace(InplaceIdentity)
        .Reference([f = op.f](KernelCtx& ctx) {
          KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, {
            const T* x = ctx.in[0].data<T>();
            T* y = ctx.out[0].data<T>();
            for (int64_t i = 0; i < ctx.out[0].size(); ++i) {
              if constexpr (std::is_integral_v<T>)
                y[i] = x[i];
              else
                y[i] = ConvertValue<T>(f(ToAcc(x[i])));
            }
          });
        })
        .Compute(RoundCompute(op.name))
        .Gradient([](GradCtx&) -> GradList { return {std::nullopt}; });
  }
}

}  // namespace kiln::ops
