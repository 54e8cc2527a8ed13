// binary.cpp - elementwise two-operand ops: elemwise_* (same shapes), broadcast_* (NumPy
// broadcasting), the *_scalar forms and where.
//
// Arithmetic, for every dtype (the output has the operands' dtype):
// - floating types compute in double and round back (IEEE: x/0 is +-inf, 0/0 nan);
// - integer and bool types compute in int64 with wrapping overflow and convert back modulo
//   2^bits (bool: nonzero is true, so bool add is "or", mul "and", sub "xor").
// - Integer division truncates toward zero, as C and MXNet (whose integer kernels divide in
//   the element type): -7 / 2 = -3, not NumPy's floor -4. x / 0 is 0 (as NumPy's result; MXNet
//   traps), and INT64_MIN / -1 wraps to INT64_MIN.
// - Integer power: exact, wrapping; a negative exponent gives the truncated real result
//   (1 for base 1, +-1 for base -1, 0 otherwise, also for base 0).
// - maximum/minimum propagate nan (NumPy's maximum), whichever side it is on.
// - Scalar ops convert `scalar` to the operand's dtype first, as MXNet's DType(scalar):
//   _plus_scalar(int32 x, 2.7) adds 2.
//
// Gradients (MXNet's). add, sub, mul and div compose existing ops (d lhs = dy / rhs, d rhs =
// -dy * out / rhs for div); the broadcast_* forms then sum each gradient back to its operand's
// shape with _reduce_sum_like (like.cpp), since the broadcast axes are known only after shape
// inference. maximum, minimum and power (both forms) use one backward op each, which does that
// sum itself:
//   maximum: lhs gets dy where lhs >= rhs, rhs where lhs < rhs (ties go to lhs, as MXNet);
//   minimum: lhs where lhs <= rhs, rhs where lhs > rhs;
//   power:   d lhs = dy * rhs * lhs^(rhs-1), d rhs = dy * lhs^rhs * ln(lhs) (nan for lhs < 0,
//            as MXNet: the derivative in the exponent exists for positive bases only).
// Scalar forms: _maximum_scalar passes dy where x >= scalar, _minimum_scalar where x <= scalar
// (MXNet's ge / le); _power_scalar gives dy * s * x^(s-1), _rpower_scalar dy * out * ln(s),
// _rdiv_scalar -dy * out / x. where: x gets dy where condition is nonzero, y elsewhere; the
// condition gets none. add_n gives each operand dy. The backward ops take floating types.
//
// Compute definitions (codegen): binary_compute.cpp, which says which dtypes each covers.
#include <cmath>
#include <optional>

#include "ops/binary_compute.h"
#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

// --- The arithmetic, on double (floating types) and on int64 (integer types and bool). ---

int64_t IntDiv(int64_t a, int64_t b) {
  if (b == 0) return 0;
  if (b == -1) return WrapSub(0, a);  // INT64_MIN / -1 overflows; wrap instead
  return a / b;                       // C++ truncates toward zero
}

int64_t IntPow(int64_t base, int64_t exp) {
  if (exp < 0) {
    if (base == 1) return 1;
    if (base == -1) return (exp % 2 == 0) ? 1 : -1;
    return 0;
  }
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) result = WrapMul(result, base);
    base = WrapMul(base, base);
    exp >>= 1;
  }
  return result;
}

struct AddFn {
  static double F(double a, double b) { return a + b; }
  static int64_t I(int64_t a, int64_t b) { return WrapAdd(a, b); }
  static double Apply(double a, double b) { return F(a, b); }
  static int64_t Apply(int64_t a, int64_t b) { return I(a, b); }
};
struct SubFn {
  static double F(double a, double b) { return a - b; }
  static int64_t I(int64_t a, int64_t b) { return WrapSub(a, b); }
};
struct MulFn {
  static double F(double a, double b) { return a * b; }
  static int64_t I(int64_t a, int64_t b) { return WrapMul(a, b); }
};
struct DivFn {
  static double F(double a, double b) { return a / b; }
  static int64_t I(int64_t a, int64_t b) { return IntDiv(a, b); }
};
struct MaxFn {
  static double F(double a, double b) {
    if (std::isnan(a) || std::isnan(b)) return std::nan("");
    return a > b ? a : b;
  }
  static int64_t I(int64_t a, int64_t b) { return a > b ? a : b; }
};
struct MinFn {
  static double F(double a, double b) {
    if (std::isnan(a) || std::isnan(b)) return std::nan("");
    return a < b ? a : b;
  }
  static int64_t I(int64_t a, int64_t b) { return a < b ? a : b; }
};
struct PowFn {
  static double F(double a, double b) { return std::pow(a, b); }
  static int64_t I(int64_t a, int64_t b) { return IntPow(a, b); }
};
// The same with operands swapped: scalar OP x.
template <class Fn>
struct Rev {
  static double F(double a, double b) { return Fn::F(b, a); }
  static int64_t I(int64_t a, int64_t b) { return Fn::I(b, a); }
};

template <class Fn, class T>
T Apply(T a, T b) {
  if constexpr (std::is_integral_v<T>)
    return ConvertValue<T>(Fn::I(ToAcc(a), ToAcc(b)));
  else
    return ConvertValue<T>(Fn::F(ToAcc(a), ToAcc(b)));
}

// out = lhs OP rhs with NumPy broadcasting (equal shapes are the trivial case).
template <class Fn, class T>
void BroadcastKernel(const Tensor& lhs, const Tensor& rhs, const Tensor& out) {
  const T* a = lhs.data<T>();
  const T* b = rhs.data<T>();
  T* y = out.data<T>();
  int nd = out.ndim();
  ForEachIndex<2>(
      out.shape(), {BroadcastStrides(lhs.shape(), nd), BroadcastStrides(rhs.shape(), nd)},
      [&](int64_t i, const std::array<int64_t, 2>& o) { y[i] = Apply<Fn, T>(a[o[0]], b[o[1]]); });
}

template <class Fn>
FReference BinaryReference() {
  return [](KernelCtx& ctx) {
    KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T,
                      (BroadcastKernel<Fn, T>(ctx.in[0], ctx.in[1], ctx.out[0])));
  };
}

// --- Shape rules. ---

// lhs, rhs and output all have one shape; a conflict names both operands.
void ElemwiseShape(ShapeInferCtx& ctx) {
  Shape s = ctx.in(0);
  if (!s.Merge(ctx.in(1)))
    ctx.Fail(StrCat("lhs ", ctx.in(0).ToString(), " and rhs ", ctx.in(1).ToString(),
                    " differ: elementwise operands have one shape (use broadcast_",
                    "* to broadcast)"));
  SameShapeInfer(ctx);
}

// Extent of `s` at output axis i of an output of rank n, right-aligned; 1 where `s` has no
// such axis.
int64_t AlignedDim(const Shape& s, int i, int n) {
  int j = i - (n - s.ndim());
  return j < 0 ? 1 : s[j];
}

// NumPy broadcasting, right-aligned. Forward: each output extent is the input extent that is
// not 1. Backward: an unknown input extent is the output's when the other operand's extent is
// 1 (or absent), or when the output's is 1.
void BroadcastShape(ShapeInferCtx& ctx) {
  const Shape& a = ctx.in(0);
  const Shape& b = ctx.in(1);
  const Shape& o = ctx.out(0);
  if (!a.rank_known() || !b.rank_known()) return;
  const int n = std::max(a.ndim(), b.ndim());
  const bool o_known = o.rank_known() && o.ndim() == n;
  std::vector<int64_t> out(size_t(n), Shape::kUnknownDim);
  const int64_t kU = Shape::kUnknownDim;
  for (int i = 0; i < n; ++i) {
    int64_t da = AlignedDim(a, i, n), db = AlignedDim(b, i, n);
    int64_t d = kU;
    if (da != kU && db != kU) {
      if (da != db && da != 1 && db != 1)
        ctx.Fail(StrCat("lhs ", a.ToString(), " and rhs ", b.ToString(),
                        " cannot be broadcast together: at output axis ", i, " lhs has ", da,
                        " and rhs has ", db, " elements (they must be equal or one of them 1)"));
      d = da == 1 ? db : da;
    } else if (da != kU && da != 1) {
      d = da;
    } else if (db != kU && db != 1) {
      d = db;
    }
    out[size_t(i)] = d;
  }
  Shape out_shape(out);
  ctx.SetOut(0, out_shape, StrCat("broadcasting lhs ", a.ToString(), " with rhs ", b.ToString()));
  if (!o_known) return;
  // Backward.
  const Shape& ob = ctx.out(0);
  for (int which = 0; which < 2; ++which) {
    const Shape& x = ctx.in(which);
    const Shape& y = ctx.in(1 - which);
    std::vector<int64_t> dims = x.dims();
    bool changed = false;
    for (int j = 0; j < x.ndim(); ++j) {
      if (dims[size_t(j)] != kU) continue;
      int i = j + (n - x.ndim());
      int64_t od = ob[i];
      if (od == kU) continue;
      int64_t other = AlignedDim(y, i, n);
      if (od == 1 || other == 1) {
        dims[size_t(j)] = od;
        changed = true;
      }
    }
    if (changed) ctx.SetIn(which, Shape(dims));
  }
}

// --- where ---

// condition is x's shape, or 1-D with x's first extent (selecting whole rows, as MXNet).
void WhereShape(ShapeInferCtx& ctx) {
  Shape s = ctx.in(1);
  if (!s.Merge(ctx.in(2)) || !s.Merge(ctx.out(0)))
    ctx.Fail(StrCat("x ", ctx.in(1).ToString(), " and y ", ctx.in(2).ToString(),
                    " must have one shape (output ", ctx.out(0).ToString(), ")"));
  ctx.SetIn(1, s);
  ctx.SetIn(2, s);
  ctx.SetOut(0, s);
  const Shape& c = ctx.in(0);
  if (!c.rank_known()) {
    return;
  }
  if (!s.rank_known()) {
    // A condition of rank > 1 can only be x's shape.
    if (c.ndim() > 1) {
      ctx.SetIn(1, c, "a condition of rank > 1 has x's shape");
      ctx.SetIn(2, c, "a condition of rank > 1 has x's shape");
      ctx.SetOut(0, c, "a condition of rank > 1 has x's shape");
    }
    return;
  }
  if (c.ndim() == s.ndim()) {
    Shape m = c;
    if (!m.Merge(s))
      ctx.Fail(StrCat("condition ", c.ToString(), " must have x's shape ", s.ToString(),
                      " or be 1-D with x's first extent"));
    ctx.SetIn(0, m);
    ctx.SetIn(1, m);
    ctx.SetIn(2, m);
    ctx.SetOut(0, m);
  } else if (c.ndim() == 1 && s.ndim() >= 1) {
    if (c.dim_known(0) && s.dim_known(0) && c[0] != s[0])
      ctx.Fail(StrCat("condition ", c.ToString(), " has ", c[0], " elements but x ", s.ToString(),
                      " has ", s[0], " rows"));
    std::vector<int64_t> xd = s.dims();
    if (xd[0] == Shape::kUnknownDim) xd[0] = c[0];
    ctx.SetIn(0, Shape{xd[0]});
    ctx.SetIn(1, Shape(xd));
    ctx.SetIn(2, Shape(xd));
    ctx.SetOut(0, Shape(xd));
  } else {
    ctx.Fail(StrCat("condition ", c.ToString(), " must have x's shape ", s.ToString(),
                    " or be 1-D with x's first extent"));
  }
}

// x, y and the output share a dtype; the condition's dtype is free.
void WhereType(TypeInferCtx& ctx) {
  DType t = ctx.in(1);
  if (t == DType::kUnknown) t = ctx.in(2);
  if (t == DType::kUnknown) t = ctx.out(0);
  if (t == DType::kUnknown) return;
  ctx.SetIn(1, t, "x, y and the output have one dtype");
  ctx.SetIn(2, t, "x, y and the output have one dtype");
  ctx.SetOut(0, t, "x, y and the output have one dtype");
}

void WhereKernel(KernelCtx& ctx) {
  const Tensor& c = ctx.in[0];
  const Tensor& out = ctx.out[0];
  std::vector<double> cond = c.ToDoubles();  // nonzero (nan included) is true
  std::vector<int64_t> cs;
  if (c.ndim() == out.ndim()) {
    cs = Strides(c.shape());
  } else {
    cs.assign(size_t(out.ndim()), 0);  // 1-D condition: one value per row
    cs[0] = 1;
  }
  std::vector<int64_t> xs = Strides(out.shape());
  const size_t es = DTypeSize(out.dtype());
  const char* x = static_cast<const char*>(ctx.in[1].raw_data());
  const char* y = static_cast<const char*>(ctx.in[2].raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  ForEachIndex<1>(out.shape(), {cs}, [&](int64_t i, const std::array<int64_t, 1>& o) {
    const char* src = cond[size_t(o[0])] != 0.0 ? x : y;
    std::memcpy(dst + size_t(i) * es, src + size_t(i) * es, es);
  });
}

// --- Scalar forms. ---

struct ScalarAttrs {
  double scalar = 0;
  bool is_int = true;  // MXNet 2's hint that `scalar` was an int; accepted, not needed here
  static void Describe(AttrSchema<ScalarAttrs>& s) {
    s.Field("scalar", &ScalarAttrs::scalar).Required();
    s.Field("is_int", &ScalarAttrs::is_int);
  }
};

template <class Fn, class T>
void ScalarKernel(const KernelCtx& ctx) {
  const T s = ConvertValue<T>(ctx.Attr<ScalarAttrs>().scalar);
  const T* x = ctx.in[0].data<T>();
  T* y = ctx.out[0].data<T>();
  int64_t n = ctx.in[0].size();
  for (int64_t i = 0; i < n; ++i) y[i] = Apply<Fn, T>(x[i], s);
}

template <class Fn>
FReference ScalarReference() {
  return
      [](KernelCtx& ctx) { KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, (ScalarKernel<Fn, T>(ctx))); };
}

// --- Gradients. ---

// Gradients of lhs OP rhs. With `broadcast`, each is summed back to its operand's shape.
FGradient BinaryGradient(BinOp op, bool broadcast) {
  return [op, broadcast](GradCtx& g) -> GradList {
    Entry dy = g.ograd(0), a = g.input(0), b = g.input(1);
    if (op == BinOp::kMax || op == BinOp::kMin || op == BinOp::kPow) {
      const char* name = op == BinOp::kMax   ? "_backward_maximum"
                         : op == BinOp::kMin ? "_backward_minimum"
                                             : "_backward_power";
      std::vector<Entry> d = g.Emit(name, {dy, a, b});
      return {d[0], d[1]};
    }
    auto reduce = [&](Entry e, Entry like) {
      return broadcast ? EmitBinary(g, "_reduce_sum_like", e, like) : e;
    };
    const char* mul = broadcast ? "broadcast_mul" : "elemwise_mul";
    const char* div = broadcast ? "broadcast_div" : "elemwise_div";
    GradList d(2);
    if (g.wants(0)) {
      Entry e = dy;
      if (op == BinOp::kMul) e = EmitBinary(g, mul, dy, b);
      if (op == BinOp::kDiv) e = EmitBinary(g, div, dy, b);
      d[0] = reduce(e, a);
    }
    if (g.wants(1)) {
      Entry e = dy;
      if (op == BinOp::kMul) e = EmitBinary(g, mul, dy, a);
      // d(a/b)/db = -a/b^2 = -out/b; out has dy's shape, so their product is elementwise.
      if (op == BinOp::kDiv)
        e = EmitBinary(g, div, EmitBinary(g, "elemwise_mul", dy, g.output(0)), b);
      e = reduce(e, b);
      if (op == BinOp::kSub || op == BinOp::kDiv) e = EmitUnary(g, "negative", e);
      d[1] = e;
    }
    return d;
  };
}

// The partial derivatives of max, min and pow with respect to each operand, at (a, b).
struct MaxGrad {
  static std::pair<double, double> D(double a, double b) { return {double(a >= b), double(a < b)}; }
};
struct MinGrad {
  static std::pair<double, double> D(double a, double b) { return {double(a <= b), double(a > b)}; }
};
struct PowGrad {
  static std::pair<double, double> D(double a, double b) {
    return {b * std::pow(a, b - 1), std::pow(a, b) * std::log(a)};
  }
};

// (dy, lhs, rhs) -> (d lhs, d rhs): each output element adds dy times the partial derivative
// into the operand elements it read, which sums over broadcast axes.
template <class G, class T>
void BinaryBackwardKernel(const KernelCtx& ctx) {
  const Tensor& dy = ctx.in[0];
  const T* g = dy.data<T>();
  const T* a = ctx.in[1].data<T>();
  const T* b = ctx.in[2].data<T>();
  std::vector<double> da(size_t(ctx.out[0].size()), 0.0), db(size_t(ctx.out[1].size()), 0.0);
  int nd = dy.ndim();
  ForEachIndex<2>(
      dy.shape(),
      {BroadcastStrides(ctx.in[1].shape(), nd), BroadcastStrides(ctx.in[2].shape(), nd)},
      [&](int64_t i, const std::array<int64_t, 2>& o) {
        auto [pa, pb] = G::D(ToAcc(a[o[0]]), ToAcc(b[o[1]]));
        double gi = ToAcc(g[i]);
        // Skip zero partials so that dy * 0 stays 0 when dy is inf.
        if (pa != 0) da[size_t(o[0])] += gi * pa;
        if (pb != 0) db[size_t(o[1])] += gi * pb;
      });
  for (size_t k = 0; k < da.size(); ++k) ctx.out[0].data<T>()[k] = ConvertValue<T>(da[k]);
  for (size_t k = 0; k < db.size(); ++k) ctx.out[1].data<T>()[k] = ConvertValue<T>(db[k]);
}

// The gradients have the operands' shapes, and dy their broadcast shape: checked, since the
// kernel indexes the operands by dy's index.
void BinaryBackwardShape(ShapeInferCtx& ctx) {
  for (int k = 0; k < 2; ++k) {
    ctx.SetOut(k, ctx.in(k + 1));
    ctx.SetIn(k + 1, ctx.out(k));
  }
  const Shape& a = ctx.in(1);
  const Shape& b = ctx.in(2);
  if (!a.rank_known() || !b.rank_known()) return;
  const int n = std::max(a.ndim(), b.ndim());
  const int64_t kU = Shape::kUnknownDim;
  std::vector<int64_t> dy(size_t(n), kU);
  for (int i = 0; i < n; ++i) {
    int64_t da = AlignedDim(a, i, n), db = AlignedDim(b, i, n);
    if (da != kU && db != kU && da != db && da != 1 && db != 1)
      ctx.Fail(StrCat("lhs ", a.ToString(), " and rhs ", b.ToString(),
                      " cannot be broadcast together at axis ", i));
    if (da != kU && da != 1)
      dy[size_t(i)] = da;
    else if (db != kU && db != 1)
      dy[size_t(i)] = db;
    else if (da == 1 && db == 1)
      dy[size_t(i)] = 1;
  }
  ctx.SetIn(0, Shape(dy), "d output has the operands' broadcast shape");
}

template <class G>
void RegisterBinaryBackward(OpRegistry& r, const char* name, const char* doc, BinOp op) {
  r.Register(name)
      .Describe(StrCat("gradient of ", doc, " (elementwise or broadcast): (d lhs, d rhs) from ",
                       "(d output, lhs, rhs), each summed to its operand's shape"))
      .SetAttrs<NoAttrs>()
      .Inputs({"ograd", "lhs", "rhs"})
      .Outputs({"lhs_grad", "rhs_grad"})
      .InferShape(BinaryBackwardShape)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, (BinaryBackwardKernel<G, T>(ctx)));
      })
      .Compute(BinaryBackwardCompute(op));
}

// _backward_maximum_scalar / _backward_minimum_scalar: dy where x >= s (x <= s), else 0, with
// the scalar converted to the data's dtype as in the forward op.
template <bool kMax, class T>
void ExtremumScalarBackwardKernel(const KernelCtx& ctx) {
  const double s = ToAcc(ConvertValue<T>(ctx.Attr<ScalarAttrs>().scalar));
  const T* dy = ctx.in[0].data<T>();
  const T* x = ctx.in[1].data<T>();
  T* dx = ctx.out[0].data<T>();
  for (int64_t i = 0; i < ctx.out[0].size(); ++i) {
    double v = ToAcc(x[i]);
    dx[i] = (kMax ? v >= s : v <= s) ? dy[i] : ConvertValue<T>(0.0);
  }
}

double ScalarAttr(const ComputeCtx& c) {
  return c.attrs<ScalarAttrs>().scalar;
}

template <bool kMax>
void RegisterExtremumScalarBackward(OpRegistry& r, const char* name) {
  r.Register(name)
      .Describe(kMax ? "gradient of _maximum_scalar: d output where data >= scalar, else 0"
                     : "gradient of _minimum_scalar: d output where data <= scalar, else 0")
      .SetAttrs<ScalarAttrs>()
      .Inputs({"ograd", "data"})
      .InferShape(SameShapeInfer)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T,
                                (ExtremumScalarBackwardKernel<kMax, T>(ctx)));
      })
      .Compute(ExtremumScalarBackwardCompute(kMax, ScalarAttr));
}

// Gradients of the scalar forms, by op.
GradList PassThrough(GradCtx& g) {
  return {g.ograd(0)};
}
GradList Negate(GradCtx& g) {
  return {EmitUnary(g, "negative", g.ograd(0))};
}
// The same scalar op applied to dy: d(x * s) = dy * s, d(x / s) = dy / s.
template <const char* kOp>
GradList SameScalarOp(GradCtx& g) {
  return {g.EmitWithAttrs(kOp, {g.ograd(0)})[0]};
}
constexpr char kMulScalar[] = "_mul_scalar";
constexpr char kDivScalar[] = "_div_scalar";
constexpr char kMaxScalarGrad[] = "_backward_maximum_scalar";
constexpr char kMinScalarGrad[] = "_backward_minimum_scalar";
template <const char* kOp>
GradList ExtremumScalarGrad(GradCtx& g) {
  return {g.EmitWithAttrs(kOp, {g.ograd(0), g.input(0)})[0]};
}
GradList RDivScalarGrad(GradCtx& g) {
  // d(s/x)/dx = -s/x^2 = -out/x.
  Entry e = EmitBinary(g, "elemwise_mul", g.ograd(0), g.output(0));
  return {EmitUnary(g, "negative", EmitBinary(g, "elemwise_div", e, g.input(0)))};
}
GradList PowerScalarGrad(GradCtx& g) {
  double s = g.attrs<ScalarAttrs>().scalar;
  Entry p = EmitScalar(g, "_power_scalar", g.input(0), s - 1);
  return {EmitBinary(g, "elemwise_mul", g.ograd(0), EmitScalar(g, "_mul_scalar", p, s))};
}
GradList RPowerScalarGrad(GradCtx& g) {
  double s = g.attrs<ScalarAttrs>().scalar;
  Entry e = EmitBinary(g, "elemwise_mul", g.ograd(0), g.output(0));
  return {EmitScalar(g, "_mul_scalar", e, std::log(s))};
}

std::vector<std::pair<int, int>> InplaceEither(const Attrs&) {
  return {{0, 0}, {1, 0}};
}

struct Names {
  const char* name;
  std::vector<const char*> aliases;
};

// What simplify-inference may fold: sums and products (kiln/ir/op.h ArithKind).
ArithKind ArithOf(BinOp op) {
  return op == BinOp::kAdd   ? ArithKind::kAdd
         : op == BinOp::kMul ? ArithKind::kMul
                             : ArithKind::kNone;
}

template <class Fn>
void RegisterElemwise(OpRegistry& r, const Names& n, const char* doc, BinOp grad) {
  OpDef& op = r.Register(n.name);
  for (const char* a : n.aliases) op.Alias(a);
  op.Describe(StrCat("elementwise ", doc, " of two operands of one shape"))
      .SetAttrs<NoAttrs>()
      .Inputs({"lhs", "rhs"})
      .InferShape(ElemwiseShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceEither)
      .Reference(BinaryReference<Fn>())
      .Compute(BinaryCompute(grad))
      .Gradient(BinaryGradient(grad, false))
      .Arith(ArithOf(grad));
}

template <class Fn>
void RegisterBroadcast(OpRegistry& r, const Names& n, const char* doc, BinOp grad) {
  OpDef& op = r.Register(n.name);
  for (const char* a : n.aliases) op.Alias(a);
  op.Describe(StrCat("elementwise ", doc, " with NumPy broadcasting (right-aligned)"))
      .SetAttrs<NoAttrs>()
      .Inputs({"lhs", "rhs"})
      .InferShape(BroadcastShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kBroadcast)
      .Reference(BinaryReference<Fn>())
      .Compute(BinaryCompute(grad))
      .Gradient(BinaryGradient(grad, true))
      .Arith(ArithOf(grad));
}

// `identity`: the scalar for which the op is the identity (0 for x + s, 1 for x * s), if any.
template <class Fn>
void RegisterScalar(OpRegistry& r, const Names& n, const char* doc, FGradient grad,
                    std::optional<double> identity = std::nullopt, FCompute compute = nullptr) {
  OpDef& op = r.Register(n.name);
  if (identity)
    op.IdentityWhen([v = *identity](const Attrs& a) { return a.Get<ScalarAttrs>().scalar == v; });
  for (const char* a : n.aliases) op.Alias(a);
  op.Describe(StrCat("elementwise ", doc, "; scalar is first converted to the data's dtype"))
      .SetAttrs<ScalarAttrs>()
      .InferShape(SameShapeInfer)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference(ScalarReference<Fn>())
      .Compute(std::move(compute))
      .Gradient(std::move(grad));
}

// add_n: the sum of num_args same-shaped operands (the gradient pass sums with it).
struct AddNAttrs {
  int64_t num_args = 1;
  static void Describe(AttrSchema<AddNAttrs>& s) {
    s.Field("num_args", &AddNAttrs::num_args).Required().Min(1).Max(65536);
  }
};

template <class T>
void AddNKernel(const KernelCtx& ctx) {
  T* y = ctx.out[0].data<T>();
  int64_t n = ctx.out[0].size();
  for (int64_t i = 0; i < n; ++i) {
    AccType<T> acc = 0;
    for (const Tensor& t : ctx.in) acc = AddFn::Apply(acc, ToAcc(t.data<T>()[i]));
    y[i] = ConvertValue<T>(acc);
  }
}

}  // namespace

void RegisterBinaryOps(OpRegistry& r) {
  r.Register("add_n")
      .Alias("ElementWiseSum")
      .Alias("_grad_add")
      .Describe("elementwise sum of num_args operands of one shape")
      .SetAttrs<AddNAttrs>()
      .VariadicInputs("num_args", [](const Attrs& a) { return int(a.Get<AddNAttrs>().num_args); })
      .InferShape(SameShapeInfer)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference(
          [](KernelCtx& ctx) { KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, AddNKernel<T>(ctx)); })
      .Compute(AddNCompute())
      .Gradient(
          [](GradCtx& g) -> GradList { return GradList(size_t(g.num_inputs()), g.ograd(0)); });

  RegisterElemwise<AddFn>(r, {"elemwise_add", {"_plus", "_add", "_Plus"}}, "lhs + rhs",
                          BinOp::kAdd);
  RegisterElemwise<SubFn>(r, {"elemwise_sub", {"_minus", "_sub", "_Minus"}}, "lhs - rhs",
                          BinOp::kSub);
  RegisterElemwise<MulFn>(r, {"elemwise_mul", {"_mul", "_Mul"}}, "lhs * rhs", BinOp::kMul);
  RegisterElemwise<DivFn>(r, {"elemwise_div", {"_div", "_Div"}},
                          "lhs / rhs (integers: truncating, x / 0 = 0)", BinOp::kDiv);
  RegisterElemwise<MaxFn>(r, {"_maximum", {"_Maximum"}}, "max(lhs, rhs) (nan propagates)",
                          BinOp::kMax);
  RegisterElemwise<MinFn>(r, {"_minimum", {"_Minimum"}}, "min(lhs, rhs) (nan propagates)",
                          BinOp::kMin);
  RegisterElemwise<PowFn>(r, {"_power", {"_Power"}}, "lhs ^ rhs", BinOp::kPow);

  RegisterBroadcast<AddFn>(r, {"broadcast_add", {"broadcast_plus"}}, "lhs + rhs", BinOp::kAdd);
  RegisterBroadcast<SubFn>(r, {"broadcast_sub", {"broadcast_minus"}}, "lhs - rhs", BinOp::kSub);
  RegisterBroadcast<MulFn>(r, {"broadcast_mul", {}}, "lhs * rhs", BinOp::kMul);
  RegisterBroadcast<DivFn>(r, {"broadcast_div", {}}, "lhs / rhs (integers: truncating, x / 0 = 0)",
                           BinOp::kDiv);
  RegisterBroadcast<MaxFn>(r, {"broadcast_maximum", {}}, "max(lhs, rhs) (nan propagates)",
                           BinOp::kMax);
  RegisterBroadcast<MinFn>(r, {"broadcast_minimum", {}}, "min(lhs, rhs) (nan propagates)",
                           BinOp::kMin);
  RegisterBroadcast<PowFn>(r, {"broadcast_power", {}}, "lhs ^ rhs", BinOp::kPow);
  RegisterBinaryBackward<MaxGrad>(r, "_backward_maximum", "maximum", BinOp::kMax);
  RegisterBinaryBackward<MinGrad>(r, "_backward_minimum", "minimum", BinOp::kMin);
  RegisterBinaryBackward<PowGrad>(r, "_backward_power", "power", BinOp::kPow);

  RegisterScalar<AddFn>(r, {"_plus_scalar", {"_PlusScalar"}}, "data + scalar", PassThrough, 0.0,
                        ScalarCompute(BinOp::kAdd, false, ScalarAttr));
  RegisterScalar<SubFn>(r, {"_minus_scalar", {"_MinusScalar"}}, "data - scalar", PassThrough, 0.0,
                        ScalarCompute(BinOp::kSub, false, ScalarAttr));
  RegisterScalar<Rev<SubFn>>(r, {"_rminus_scalar", {"_RMinusScalar"}}, "scalar - data", Negate,
                             std::nullopt, ScalarCompute(BinOp::kSub, true, ScalarAttr));
  RegisterScalar<MulFn>(r, {"_mul_scalar", {"_MulScalar"}}, "data * scalar",
                        SameScalarOp<kMulScalar>, 1.0,
                        ScalarCompute(BinOp::kMul, false, ScalarAttr));
  RegisterScalar<DivFn>(r, {"_div_scalar", {"_DivScalar"}}, "data / scalar",
                        SameScalarOp<kDivScalar>, 1.0,
                        ScalarCompute(BinOp::kDiv, false, ScalarAttr));
  RegisterScalar<Rev<DivFn>>(r, {"_rdiv_scalar", {"_RDivScalar"}}, "scalar / data", RDivScalarGrad,
                             std::nullopt, ScalarCompute(BinOp::kDiv, true, ScalarAttr));
  RegisterScalar<MaxFn>(r, {"_maximum_scalar", {"_MaximumScalar"}}, "max(data, scalar)",
                        ExtremumScalarGrad<kMaxScalarGrad>, std::nullopt,
                        ScalarCompute(BinOp::kMax, false, ScalarAttr));
  RegisterScalar<MinFn>(r, {"_minimum_scalar", {"_MinimumScalar"}}, "min(data, scalar)",
                        ExtremumScalarGrad<kMinScalarGrad>, std::nullopt,
                        ScalarCompute(BinOp::kMin, false, ScalarAttr));
  RegisterScalar<PowFn>(r, {"_power_scalar", {"_PowerScalar"}}, "data ^ scalar", PowerScalarGrad,
                        std::nullopt, ScalarCompute(BinOp::kPow, false, ScalarAttr));
  RegisterScalar<Rev<PowFn>>(r, {"_rpower_scalar", {"_RPowerScalar"}}, "scalar ^ data",
                             RPowerScalarGrad, std::nullopt,
                             ScalarCompute(BinOp::kPow, true, ScalarAttr));
  RegisterExtremumScalarBackward<true>(r, "_backward_maximum_scalar");
  RegisterExtremumScalarBackward<false>(r, "_backward_minimum_scalar");

  r.Register("where")
      .Describe(
          "x where condition is nonzero, else y; condition has x's shape or is 1-D with x's "
          "first extent (selecting rows)")
      .SetAttrs<NoAttrs>()
      .Inputs({"condition", "x", "y"})
      .InferShape(WhereShape)
      .InferType(WhereType)
      .Pattern(FusionPattern::kBroadcast)
      .Inplace([](const Attrs&) {
        return std::vector<std::pair<int, int>>{{1, 0}, {2, 0}};
      })
      .Reference(WhereKernel)
      .Compute(WhereCompute())
      .Gradient([](GradCtx& g) -> GradList {
        Entry dy = g.ograd(0), c = g.input(0);
        Entry zeros = EmitUnary(g, "zeros_like", dy);
        GradList d = {std::nullopt, std::nullopt, std::nullopt};
        if (g.wants(1)) d[1] = g.Emit1("where", {c, dy, zeros});
        if (g.wants(2)) d[2] = g.Emit1("where", {c, zeros, dy});
        return d;
      });
}

}  // namespace kiln::ops
