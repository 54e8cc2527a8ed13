// unary_trig.cpp - trigonometric and hyperbolic functions: sin, cos, tan, arcsin, arccos,
// arctan, sinh, cosh, arcsinh, arccosh, arctanh (MXNet's names), on floating types.
//
// Values are C's (outside an inverse function's domain the result is nan, as NumPy's).
// Gradients compose existing ops from the derivative:
//   sin: dy cos(x)          cos: -dy sin(x)           tan: dy (1 + y^2)
//   arcsin: dy / sqrt(1 - x^2)   arccos: -dy / sqrt(1 - x^2)   arctan: dy / (1 + x^2)
//   sinh: dy cosh(x)        cosh: dy sinh(x)
//   arcsinh: dy / sqrt(x^2 + 1)  arccosh: dy / sqrt(x^2 - 1)   arctanh: dy / (1 - x^2)
//
// Compute definitions (kiln/ir/compute.h), float32 and float64, float16 and bfloat16 computed in
// float32 and rounded back: sin ... arctan call the kernel IR's math functions (vmath, within
// 0.501 ulp in float32; the C library in float64). The hyperbolic functions are written with
// exp, expm1, log, log1p and sqrt in forms that keep their relative accuracy (see HyperCompute).
#include <cmath>
#include <string_view>

#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

// dy * f(x) for a one-input function f.
Entry TimesUnary(GradCtx& g, const char* f) {
  return EmitBinary(g, "elemwise_mul", g.ograd(0), EmitUnary(g, f, g.input(0)));
}

// dy / sqrt(s * x^2 + c) with s, c in {-1, 1}.
Entry OverSqrt(GradCtx& g, double s, double c) {
  Entry q = EmitScalar(g, "_plus_scalar",
                       EmitScalar(g, "_mul_scalar", EmitUnary(g, "square", g.input(0)), s), c);
  return EmitBinary(g, "elemwise_mul", g.ograd(0), EmitUnary(g, "rsqrt", q));
}

// dy / (s * x^2 + 1).
Entry OverQuadratic(GradCtx& g, double s) {
  Entry q = EmitScalar(g, "_plus_scalar",
                       EmitScalar(g, "_mul_scalar", EmitUnary(g, "square", g.input(0)), s), 1);
  return EmitBinary(g, "elemwise_div", g.ograd(0), q);
}

// --- Compute definitions ---

TExpr Call(TMath f, TExpr x) {
  return TCall(f, {std::move(x)});
}
TExpr Lt(TExpr a, TExpr b) {
  return TBinary(TBinaryOp::kLT, std::move(a), std::move(b));
}

// An odd function's value from its value s on |x|: s for x > 0, -s for x < 0, and x itself for
// +-0 (keeping the zero's sign) and NaN.
TExpr Odd(TExpr x, TExpr s) {
  TExpr zero = TConst(0, x->dtype);
  return TSelect(Lt(zero, x), s, TSelect(Lt(x, zero), s * TConst(-1, x->dtype), x));
}

// The hyperbolic functions on x (float32 or float64), a = |x|:
//   sinh  (u + u / (u + 1)) / 2, u = expm1(a): both terms have the sign of u, so nothing
//         cancels and sinh(x) ~ x near 0; for a > 80, (e/2) e with e = exp(a/2), which stays
//         finite up to the type's overflow (exp(a) alone overflows first, sinh(89) is a float).
//   cosh  e/2 + 1/(2e), e = exp(a); for a > 80 as sinh.
//   arcsinh  log1p(a + a^2 / (1 + sqrt(1 + a^2))) (= log(a + sqrt(a^2 + 1)), and ~ a near 0);
//         for a >= 2^12 (float32; 2^28 for float64), where 1/(4a^2) is below half an ulp and
//         a^2 would soon overflow, log(a) + ln 2.
//   arccosh  log1p(t + sqrt(t (t + 2))), t = x - 1 (exact below 2^24), accurate near 1; above
//         the same bound, log(x) + ln 2. x < 1 gives NaN (sqrt of a negative).
//   arctanh  log1p(2a / (1 - a)) / 2 (~ a near 0; 1 - a exact near 1; inf at 1, NaN above).
TExpr HyperCompute(std::string_view name, TExpr x) {
  DType t = x->dtype;
  auto k = [t](double v) { return TConst(v, t); };
  TExpr a = Call(TMath::kAbs, x);
  auto big_exp = [&] {  // exp(a) / 2 without overflowing before the result does
    TExpr e = Call(TMath::kExp, a * k(0.5));
    return e * k(0.5) * e;
  };
  double huge = t == DType::kFloat32 ? 0x1p12 : 0x1p28;
  TExpr ln2 = k(0.6931471805599453);
  if (name == "sinh") {
    TExpr u = Call(TMath::kExpm1, a);
    TExpr s = (u + u / (u + k(1))) * k(0.5);
    return Odd(x, TSelect(Lt(k(80), a), big_exp(), s));
  }
  if (name == "cosh") {
    TExpr e = Call(TMath::kExp, a);
    TExpr c = e * k(0.5) + k(0.5) / e;
    return TSelect(Lt(k(80), a), big_exp(), c);
  }
  if (name == "arcsinh") {
    TExpr a2 = a * a;
    TExpr s = Call(TMath::kLog1p, a + a2 / (k(1) + Call(TMath::kSqrt, k(1) + a2)));
    TExpr l = Call(TMath::kLog, a) + ln2;
    return Odd(x, TSelect(Lt(a, k(huge)), s, l));
  }
  if (name == "arccosh") {
    TExpr u = x - k(1);
    TExpr s = Call(TMath::kLog1p, u + Call(TMath::kSqrt, u * (u + k(2))));
    TExpr l = Call(TMath::kLog, x) + ln2;
    return TSelect(Lt(x, k(huge)), s, l);
  }
  if (name == "arctanh") {
    return Odd(x, Call(TMath::kLog1p, (a + a) / (k(1) - a)) * k(0.5));
  }
  return nullptr;
}

TMath TrigMath(std::string_view name) {
  if (name == "sin") return TMath::kSin;
  if (name == "cos") return TMath::kCos;
  if (name == "tan") return TMath::kTan;
  if (name == "arcsin") return TMath::kAsin;
  if (name == "arccos") return TMath::kAcos;
  return TMath::kAtan;
}

// float32/float64 directly; float16/bfloat16 widened to float32 and rounded back (the
// reference computes in double and rounds once: the two can differ by one ulp of the narrow
// type where float32's result lies near a halfway point).
FCompute TrigCompute(std::string_view name) {
  bool hyper = name.back() == 'h';  // sinh, cosh, arcsinh, arccosh, arctanh
  return [name, hyper](const ComputeCtx& c) -> std::vector<TExpr> {
    DType t = c.out_dtype(0);
    if (!IsFloatingPoint(t) || c.in_dtype(0) != t) return {};
    TExpr x = Widen(c.In(0));
    TExpr y = hyper ? HyperCompute(name, x) : Call(TrigMath(name), x);
    return {y->dtype == t ? y : TCast(t, y)};
  };
}

struct TrigOp {
  const char* name;
  double (*f)(double);
  Entry (*grad)(GradCtx&);
};

const TrigOp kTrigOps[] = {
    {"sin", [](double x) { return std::sin(x); }, [](GradCtx& g) { return TimesUnary(g, "cos"); }},
    {"cos", [](double x) { return std::cos(x); },
     [](GradCtx& g) { return EmitUnary(g, "negative", TimesUnary(g, "sin")); }},
    {"tan", [](double x) { return std::tan(x); },
     [](GradCtx& g) {
       Entry q = EmitScalar(g, "_plus_scalar", EmitUnary(g, "square", g.output(0)), 1);
       return EmitBinary(g, "elemwise_mul", g.ograd(0), q);
     }},
    {"arcsin", [](double x) { return std::asin(x); },
     [](GradCtx& g) { return OverSqrt(g, -1, 1); }},
    {"arccos", [](double x) { return std::acos(x); },
     [](GradCtx& g) { return EmitUnary(g, "negative", OverSqrt(g, -1, 1)); }},
    {"arctan", [](double x) { return std::atan(x); },
     [](GradCtx& g) { return OverQuadratic(g, 1); }},
    {"sinh", [](double x) { return std::sinh(x); },
     [](GradCtx& g) { return TimesUnary(g, "cosh"); }},
    {"cosh", [](double x) { return std::cosh(x); },
     [](GradCtx& g) { return TimesUnary(g, "sinh"); }},
    {"arcsinh", [](double x) { return std::asinh(x); },
     [](GradCtx& g) { return OverSqrt(g, 1, 1); }},
    {"arccosh", [](double x) { return std::acosh(x); },
     [](GradCtx& g) { return OverSqrt(g, 1, -1); }},
    {"arctanh", [](double x) { return std::atanh(x); },
     [](GradCtx& g) { return OverQuadratic(g, -1); }},
};

}  // namespace

void RegisterTrigOps(OpRegistry& r) {
  for (const TrigOp& op : kTrigOps) {
    r.Register(op.name)
        .Describe(StrCat("elementwise ", op.name, "(x) on floating types"))
        .SetAttrs<NoAttrs>()
        .InferShape(SameShapeInfer)
        .InferType(FloatTypeInfer)
        .Pattern(FusionPattern::kElemwise)
        .Inplace(InplaceIdentity)
        .Reference([f = op.f](KernelCtx& ctx) {
          KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, {
            const T* x = ctx.in[0].data<T>();
            T* y = ctx.out[0].data<T>();
            for (int64_t i = 0; i < ctx.out[0].size(); ++i) y[i] = ConvertValue<T>(f(ToAcc(x[i])));
          });
        })
        .Compute(TrigCompute(op.name))
        .Gradient([grad = op.grad](GradCtx& g) -> GradList { return {grad(g)}; });
  }
}

}  // namespace kiln::ops
