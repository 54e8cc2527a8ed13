// unary_trig.cpp - trigonometric and hyperbolic functions: sin, cos, tan, arcsin, arccos,
// arctan, sinh, cosh, arcsinh, arccosh, arctanh (MXNet's names), on floating types.
//
// Values are C's (outside an inverse function's domain the result is nan, as NumPy's).
// Gradients compose existing ops from the derivative:
//   sin: dy cos(x)          cos: -dy sin(x)           tan: dy (1 + y^2)
//   arcsin: dy / sqrt(1 - x^2)   arccos: -dy / sqrt(1 - x^2)   arctan: dy / (1 + x^2)
//   sinh: dy cosh(x)        cosh: dy sinh(x)
//   arcsinh: dy / sqrt(x^2 + 1)  arccosh: dy / sqrt(x^2 - 1)   arctanh: dy / (1 - x^2)
#include <cmath>

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
        .Gradient([grad = op.grad](GradCtx& g) -> GradList { return {grad(g)}; });
  }
}

}  // namespace kiln::ops
