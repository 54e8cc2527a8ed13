// unary.cpp - elementwise one-input ops: exp, log, sqrt, rsqrt, square, abs, negative, sigmoid,
// tanh, relu, erf, clip, Cast, zeros_like and ones_like.
//
// Dtypes. exp, log, sqrt, rsqrt, sigmoid, tanh and erf are defined on floating types only
// (type inference rejects integers and bool). abs, square, relu, clip, zeros_like and
// ones_like take all nine types; negative takes all but bool (NumPy rejects -bool). Integer
// results wrap modulo 2^bits (abs(-128) is -128 in int8, as NumPy). relu propagates NaN.
// Cast converts with ConvertValue's rules (tensor_util.h): float to integer truncates and
// saturates, NaN becomes 0. sign is -1, 0 or 1 (nan stays nan; bool: x).
//
// Gradients (MXNet's, composed from existing ops where that is short):
//   exp dy*y, log dy/x, sqrt dy/(2y), rsqrt -dy*y/(2x), square 2x*dy, abs sign(x)*dy (0 at 0),
//   negative -dy, sigmoid / tanh / relu through _backward_Activation (relu: 1 where y > 0),
//   erf dy * 2/sqrt(pi) * e^(-x^2);
//   clip: dy where a_min <= x <= a_max, else 0. At the bounds themselves the gradient passes,
//     as MXNet's clip backward (it zeroes only x < a_min and x > a_max);
//   Cast: dy converted back to the input's dtype (_backward_Cast, which reads the input for
//     its dtype, unknown before type inference);
//   sign, zeros_like, ones_like: no contribution (their outputs do not change with the input's
//     values, so the gradient is exactly zero; nothing is computed, and a variable reached only
//     through them gets zeros). Unlike argmax, whose result is also piecewise constant, these
//     are legitimately differentiated through (zeros_like builds initial states and appears in
//     gradient graphs themselves), so they are not errors.
#include <cmath>
#include <functional>
#include <numbers>
#include <string_view>

#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

enum class Types { kFloat, kAll, kNonBool };

// One elementwise op: its function on doubles (floating types) and on int64 (integer and
// bool types; null for floating-only ops), and its gradient d data (null: no contribution).
struct UnaryOp {
  const char* name;
  const char* doc;
  Types types;
  double (*f)(double);
  int64_t (*fi)(int64_t);
  Entry (*grad)(GradCtx&);
};

// Gradients through Activation's backward op, which reads the output.
template <const char* kAct>
Entry ActivationGrad(GradCtx& g) {
  return g.Emit1("_backward_Activation", {g.ograd(0), g.output(0)}, {{"act_type", kAct}});
}
constexpr char kSigmoid[] = "sigmoid";
constexpr char kTanh[] = "tanh";
constexpr char kRelu[] = "relu";

const UnaryOp kUnaryOps[] = {
    {"exp", "e^x", Types::kFloat, [](double x) { return std::exp(x); }, nullptr,
     [](GradCtx& g) { return EmitBinary(g, "elemwise_mul", g.ograd(0), g.output(0)); }},
    {"log", "natural logarithm (log(0) = -inf, log(x < 0) = nan)", Types::kFloat,
     [](double x) { return std::log(x); }, nullptr,
     [](GradCtx& g) { return EmitBinary(g, "elemwise_div", g.ograd(0), g.input(0)); }},
    {"sqrt", "square root", Types::kFloat, [](double x) { return std::sqrt(x); }, nullptr,
     [](GradCtx& g) {
       return EmitBinary(g, "elemwise_div", g.ograd(0),
                         EmitScalar(g, "_mul_scalar", g.output(0), 2));
     }},
    {"rsqrt", "1 / sqrt(x)", Types::kFloat, [](double x) { return 1.0 / std::sqrt(x); }, nullptr,
     [](GradCtx& g) {
       // d/dx x^(-1/2) = -x^(-3/2) / 2 = -y / (2x).
       Entry dy_y = EmitBinary(g, "elemwise_mul", g.ograd(0), g.output(0));
       return EmitScalar(g, "_mul_scalar", EmitBinary(g, "elemwise_div", dy_y, g.input(0)), -0.5);
     }},
    {"square", "x * x", Types::kAll, [](double x) { return x * x; },
     [](int64_t x) { return WrapMul(x, x); },
     [](GradCtx& g) {
       return EmitBinary(g, "elemwise_mul", g.ograd(0),
                         EmitScalar(g, "_mul_scalar", g.input(0), 2));
     }},
    {"abs", "|x|", Types::kAll, [](double x) { return std::fabs(x); },
     [](int64_t x) { return x < 0 ? WrapSub(0, x) : x; },
     [](GradCtx& g) {
       return EmitBinary(g, "elemwise_mul", g.ograd(0), EmitUnary(g, "sign", g.input(0)));
     }},
    {"sign", "-1, 0 or 1 by the sign of x; nan stays nan", Types::kAll,
     [](double x) { return std::isnan(x) ? x : double((x > 0) - (x < 0)); },
     [](int64_t x) { return int64_t((x > 0) - (x < 0)); }, nullptr},
    {"negative", "-x", Types::kNonBool, [](double x) { return -x; },
     [](int64_t x) { return WrapSub(0, x); },
     [](GradCtx& g) { return EmitUnary(g, "negative", g.ograd(0)); }},
    {"sigmoid", "1 / (1 + e^-x)", Types::kFloat,
     [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, nullptr, ActivationGrad<kSigmoid>},
    {"tanh", "hyperbolic tangent", Types::kFloat, [](double x) { return std::tanh(x); }, nullptr,
     ActivationGrad<kTanh>},
    {"relu", "max(x, 0); nan stays nan", Types::kAll,
     [](double x) { return std::isnan(x) ? x : (x > 0 ? x : 0.0); },
     [](int64_t x) { return x > 0 ? x : int64_t(0); }, ActivationGrad<kRelu>},
    {"erf", "the Gauss error function", Types::kFloat, [](double x) { return std::erf(x); },
     nullptr,
     [](GradCtx& g) {
       // erf'(x) = 2/sqrt(pi) e^(-x^2).
       Entry e = EmitUnary(g, "exp", EmitUnary(g, "negative", EmitUnary(g, "square", g.input(0))));
       return EmitBinary(g, "elemwise_mul", g.ograd(0),
                         EmitScalar(g, "_mul_scalar", e, 2 * std::numbers::inv_sqrtpi));
     }},
};

// out[i] = f(in[i]) in the accumulation type, converted back to T.
template <class T, class F>
void MapAcc(const Tensor& in, const Tensor& out, F f) {
  const T* x = in.data<T>();
  T* y = out.data<T>();
  int64_t n = in.size();
  for (int64_t i = 0; i < n; ++i) y[i] = ConvertValue<T>(f(ToAcc(x[i])));
}

FReference UnaryReference(const UnaryOp& op) {
  return [op](KernelCtx& ctx) {
    KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, {
      if constexpr (std::is_integral_v<T>) {
        KILN_INTERNAL_CHECK(op.fi != nullptr, op.name, " reached with an integer dtype");
        MapAcc<T>(ctx.in[0], ctx.out[0], op.fi);
      } else {
        MapAcc<T>(ctx.in[0], ctx.out[0], op.f);
      }
    });
  };
}

FInferType TypeRule(Types t) {
  switch (t) {
    case Types::kFloat:
      return FloatTypeInfer;
    case Types::kNonBool:
      return NonBoolTypeInfer;
    case Types::kAll:
      break;
  }
  return SameTypeInfer;
}

// --- clip ---

struct ClipAttrs {
  double a_min = 0;
  double a_max = 0;
  static void Describe(AttrSchema<ClipAttrs>& s) {
    s.Field("a_min", &ClipAttrs::a_min).Required();
    s.Field("a_max", &ClipAttrs::a_max).Required();
    s.Check([](const ClipAttrs& a) -> std::string {
      if (a.a_min <= a.a_max) return "";
      return StrCat("a_min = ", attr_text::Print(a.a_min),
                    " must not exceed a_max = ", attr_text::Print(a.a_max));
    });
  }
};

// For integer types the bounds are converted to T first (truncation, saturation), as MXNet's
// DType(a_min); comparing in T keeps int64 values beyond 2^53 exact.
template <class T>
void ClipKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<ClipAttrs>();
  const T* x = ctx.in[0].data<T>();
  T* y = ctx.out[0].data<T>();
  int64_t n = ctx.in[0].size();
  if constexpr (std::is_integral_v<T>) {
    int64_t lo = ToAcc(ConvertValue<T>(a.a_min)), hi = ToAcc(ConvertValue<T>(a.a_max));
    for (int64_t i = 0; i < n; ++i) {
      int64_t v = ToAcc(x[i]);
      y[i] = ConvertValue<T>(v < lo ? lo : (v > hi ? hi : v));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      double v = ToAcc(x[i]);
      // nan compares false both ways and passes through.
      y[i] = ConvertValue<T>(v < a.a_min ? a.a_min : (v > a.a_max ? a.a_max : v));
    }
  }
}

// --- Cast ---

struct CastAttrs {
  DType dtype = DType::kFloat32;
  static void Describe(AttrSchema<CastAttrs>& s) {
    s.Enum("dtype", &CastAttrs::dtype, DTypeEnumNames()).Required();
  }
};

void CastType(TypeInferCtx& ctx) {
  ctx.SetOut(0, ctx.attrs<CastAttrs>().dtype, "Cast's dtype attribute");
}

template <class D, class S>
void CastKernel(const Tensor& in, const Tensor& out) {
  const S* x = in.data<S>();
  D* y = out.data<D>();
  int64_t n = in.size();
  for (int64_t i = 0; i < n; ++i) y[i] = ConvertValue<D>(x[i]);
}

// d data = d output where a_min <= data <= a_max (nan data included: it passed through), else 0.
template <class T>
void ClipBackwardKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<ClipAttrs>();
  const T* dy = ctx.in[0].data<T>();
  const T* x = ctx.in[1].data<T>();
  T* dx = ctx.out[0].data<T>();
  for (int64_t i = 0; i < ctx.out[0].size(); ++i) {
    double v = ToAcc(x[i]);
    dx[i] = (v < a.a_min || v > a.a_max) ? ConvertValue<T>(0.0) : dy[i];
  }
}

// _backward_Cast: the gradient has the shape of all three and the dtype of `data`.
void CastBackwardType(TypeInferCtx& ctx) {
  ctx.SetOut(0, ctx.in(1), "the gradient has the Cast input's dtype");
  ctx.SetIn(1, ctx.out(0), "the gradient has the Cast input's dtype");
}

// --- zeros_like / ones_like ---

template <int kValue>
void FillKernel(KernelCtx& ctx) {
  KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, {
    T* y = ctx.out[0].data<T>();
    int64_t n = ctx.out[0].size();
    for (int64_t i = 0; i < n; ++i) y[i] = ConvertValue<T>(int64_t(kValue));
  });
}

// --- Compute definitions (kiln/ir/compute.h). ---
// Floating ops on float32/float64: each matches the reference function above up to the
// rounding of the math call (vmath's bounds, docs/codegen.md). relu keeps NaN (x <= 0 is false
// for it); negative multiplies by -1 so that -0 comes out as the reference's; rsqrt divides by
// sqrt, as the reference does. abs, square, negative, relu and sign also cover the integer
// types and bool: computed in int32/int64 after widening and converted back, which wraps
// exactly as the reference's int64 arithmetic converted to the type does.
FCompute UnaryComputeOf(std::string_view name) {
  std::function<TExpr(TExpr)> f;
  auto call = [](TMath m) { return [m](TExpr x) { return TCall(m, {std::move(x)}); }; };
  if (name == "exp") f = call(TMath::kExp);
  if (name == "log") f = call(TMath::kLog);
  if (name == "sqrt") f = call(TMath::kSqrt);
  if (name == "tanh") f = call(TMath::kTanh);
  if (name == "sigmoid") f = call(TMath::kSigmoid);
  if (name == "erf") f = call(TMath::kErf);
  if (name == "rsqrt") f = [](TExpr x) { return TConst(1, x->dtype) / TCall(TMath::kSqrt, {x}); };
  if (name == "abs") f = call(TMath::kAbs);
  if (name == "square") f = [](TExpr x) { return x * x; };
  if (name == "negative") f = [](TExpr x) { return x * TConst(-1, x->dtype); };
  if (name == "relu")
    f = [](TExpr x) {
      TExpr zero = TConst(0, x->dtype);
      return TSelect(TBinary(TBinaryOp::kLE, x, zero), zero, x);
    };
  if (name == "sign")
    f = [](TExpr x) {
      DType t = x->dtype;
      TExpr s =
          TSelect(TBinary(TBinaryOp::kGT, x, TConst(0, t)), TConst(1, t),
                  TSelect(TBinary(TBinaryOp::kLT, x, TConst(0, t)), TConst(-1, t), TConst(0, t)));
      return IsComputeFloat(t) ? TSelect(IsNan(x), x, s) : s;  // NaN stays (-0 gives +0)
    };
  if (!f) return nullptr;
  bool ints =
      name == "abs" || name == "square" || name == "negative" || name == "relu" || name == "sign";
  return [f, ints](const ComputeCtx& c) -> std::vector<TExpr> {
    DType t = c.out_dtype(0);
    if (IsComputeFloat(t)) return {f(c.In(0))};
    if (!ints || IsFloatingPoint(t)) return {};  // float16/bfloat16: not covered
    TExpr w = Widen(c.In(0));
    return {w->dtype == t ? f(w) : TCast(t, f(w))};
  };
}

// clip: min(max(x, a_min), a_max) keeping NaN. For floats the bounds are compared in the type:
// x < a_min (double) holds exactly when x < float(a_min) or x == float(a_min), and both give
// float(a_min). Integers compare with the bounds converted to the type, as the reference.
std::vector<TExpr> ClipCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<ClipAttrs>();
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t) && IsFloatingPoint(t)) return {};
  TExpr x = Widen(c.In(0));
  TExpr lo = Widen(ConstOf(a.a_min, t)), hi = Widen(ConstOf(a.a_max, t));
  TExpr y =
      TSelect(TBinary(TBinaryOp::kLT, x, lo), lo, TSelect(TBinary(TBinaryOp::kGT, x, hi), hi, x));
  return {y->dtype == t ? y : TCast(t, y)};
}

// _backward_clip: dy where a_min <= x <= a_max, compared in double as the reference does.
std::vector<TExpr> ClipBackwardCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<ClipAttrs>();
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t)) return {};
  TExpr v = TCast(DType::kFloat64, c.In(1));
  TExpr out = TBinary(TBinaryOp::kOr, TBinary(TBinaryOp::kLT, v, TConst(a.a_min, v->dtype)),
                      TBinary(TBinaryOp::kGT, v, TConst(a.a_max, v->dtype)));
  return {TSelect(out, TConst(0, t), c.In(0))};
}

// Cast and _backward_Cast (input 0 converted to the output's dtype), every pair of dtypes.
std::vector<TExpr> CastCompute(const ComputeCtx& c) {
  return {ConvertExpr(c.In(0), c.out_dtype(0))};
}

template <int kValue>
std::vector<TExpr> FillCompute(const ComputeCtx& c) {
  return {ConstOf(kValue, c.out_dtype(0))};
}

}  // namespace

void RegisterUnaryOps(OpRegistry& r) {
  for (const UnaryOp& op : kUnaryOps) {
    r.Register(op.name)
        .Describe(StrCat("elementwise ", op.doc))
        .SetAttrs<NoAttrs>()
        .InferShape(SameShapeInfer)
        .InferType(TypeRule(op.types))
        .Pattern(FusionPattern::kElemwise)
        .Inplace(InplaceIdentity)
        .Reference(UnaryReference(op))
        .Compute(UnaryComputeOf(op.name))
        .Gradient([grad = op.grad](GradCtx& g) -> GradList {
          if (!grad) return {std::nullopt};
          return {grad(g)};
        });
  }

  r.Register("clip")
      .Describe("elementwise min(max(x, a_min), a_max); nan stays nan")
      .SetAttrs<ClipAttrs>()
      .InferShape(SameShapeInfer)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference(
          [](KernelCtx& ctx) { KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, ClipKernel<T>(ctx)); })
      .Compute(ClipCompute)
      .Gradient([](GradCtx& g) -> GradList {
        return {g.EmitWithAttrs("_backward_clip", {g.ograd(0), g.input(0)})[0]};
      });

  r.Register("_backward_clip")
      .Describe("gradient of clip: d output where a_min <= data <= a_max, else 0")
      .SetAttrs<ClipAttrs>()
      .Inputs({"ograd", "data"})
      .InferShape(SameShapeInfer)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, ClipBackwardKernel<T>(ctx));
      })
      .Compute(ClipBackwardCompute);

  r.Register("Cast")
      .Alias("cast")
      .Describe(
          "converts elements to `dtype`: to bool nonzero is true; float to integer truncates "
          "toward zero and saturates, nan becomes 0; integer to integer wraps")
      .SetAttrs<CastAttrs>()
      .InferShape(SameShapeInfer)
      .InferType(CastType)
      .Pattern(FusionPattern::kElemwise)
      .Reference([](KernelCtx& ctx) {
        KILN_DTYPE_SWITCH(ctx.in[0].dtype(), S, {
          KILN_DTYPE_SWITCH(ctx.out[0].dtype(), D, (CastKernel<D, S>(ctx.in[0], ctx.out[0])));
        });
      })
      .Compute(CastCompute)
      .Gradient([](GradCtx& g) -> GradList {
        return {g.Emit1("_backward_Cast", {g.ograd(0), g.input(0)})};
      });

  r.Register("_backward_Cast")
      .Describe("gradient of Cast: d output converted to the dtype of data (the Cast's input)")
      .SetAttrs<NoAttrs>()
      .Inputs({"ograd", "data"})
      .InferShape(SameShapeInfer)
      .InferType(CastBackwardType)
      .Pattern(FusionPattern::kElemwise)
      .Reference([](KernelCtx& ctx) {
        KILN_DTYPE_SWITCH(ctx.in[0].dtype(), S, {
          KILN_DTYPE_SWITCH(ctx.out[0].dtype(), D, (CastKernel<D, S>(ctx.in[0], ctx.out[0])));
        });
      })
      .Compute(CastCompute);

  r.Register("zeros_like")
      .Describe("zeros of the input's shape and dtype")
      .SetAttrs<NoAttrs>()
      .InferShape(SameShapeInfer)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference(FillKernel<0>)
      .Compute(FillCompute<0>)
      .Gradient([](GradCtx&) -> GradList { return {std::nullopt}; });

  r.Register("ones_like")
      .Describe("ones of the input's shape and dtype")
      .SetAttrs<NoAttrs>()
      .InferShape(SameShapeInfer)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference(FillKernel<1>)
      .Compute(FillCompute<1>)
      .Gradient([](GradCtx&) -> GradList { return {std::nullopt}; });
}

}  // namespace kiln::ops
