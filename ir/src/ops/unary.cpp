// unary.cpp - elementwise one-input ops: exp, log, sqrt, rsqrt, square, abs, negative, sigmoid,
// tanh, relu, erf, clip, Cast, zeros_like and ones_like.
//
// Dtypes. exp, log, sqrt, rsqrt, sigmoid, tanh and erf are defined on floating types only
// (type inference rejects integers and bool). abs, square, relu, clip, zeros_like and
// ones_like take all nine types; negative takes all but bool (NumPy rejects -bool). Integer
// results wrap modulo 2^bits (abs(-128) is -128 in int8, as NumPy). relu propagates NaN.
// Cast converts with ConvertValue's rules (tensor_util.h): float to integer truncates and
// saturates, NaN becomes 0.
#include <cmath>

#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

enum class Types { kFloat, kAll, kNonBool };

// One elementwise op: its function on doubles (floating types) and on int64 (integer and
// bool types; null for floating-only ops).
struct UnaryOp {
  const char* name;
  const char* doc;
  Types types;
  double (*f)(double);
  int64_t (*fi)(int64_t);
};

const UnaryOp kUnaryOps[] = {
    {"exp", "e^x", Types::kFloat, [](double x) { return std::exp(x); }, nullptr},
    {"log", "natural logarithm (log(0) = -inf, log(x < 0) = nan)", Types::kFloat,
     [](double x) { return std::log(x); }, nullptr},
    {"sqrt", "square root", Types::kFloat, [](double x) { return std::sqrt(x); }, nullptr},
    {"rsqrt", "1 / sqrt(x)", Types::kFloat, [](double x) { return 1.0 / std::sqrt(x); }, nullptr},
    {"square", "x * x", Types::kAll, [](double x) { return x * x; },
     [](int64_t x) { return WrapMul(x, x); }},
    {"abs", "|x|", Types::kAll, [](double x) { return std::fabs(x); },
     [](int64_t x) { return x < 0 ? WrapSub(0, x) : x; }},
    {"negative", "-x", Types::kNonBool, [](double x) { return -x; },
     [](int64_t x) { return WrapSub(0, x); }},
    {"sigmoid", "1 / (1 + e^-x)", Types::kFloat,
     [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, nullptr},
    {"tanh", "hyperbolic tangent", Types::kFloat, [](double x) { return std::tanh(x); }, nullptr},
    {"relu", "max(x, 0); nan stays nan", Types::kAll,
     [](double x) { return std::isnan(x) ? x : (x > 0 ? x : 0.0); },
     [](int64_t x) { return x > 0 ? x : int64_t(0); }},
    {"erf", "the Gauss error function", Types::kFloat, [](double x) { return std::erf(x); },
     nullptr},
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

// --- zeros_like / ones_like ---

template <int kValue>
void FillKernel(KernelCtx& ctx) {
  KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, {
    T* y = ctx.out[0].data<T>();
    int64_t n = ctx.out[0].size();
    for (int64_t i = 0; i < n; ++i) y[i] = ConvertValue<T>(int64_t(kValue));
  });
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
        .Reference(UnaryReference(op));
  }

  r.Register("clip")
      .Describe("elementwise min(max(x, a_min), a_max); nan stays nan")
      .SetAttrs<ClipAttrs>()
      .InferShape(SameShapeInfer)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference(
          [](KernelCtx& ctx) { KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, ClipKernel<T>(ctx)); });

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
      });

  r.Register("zeros_like")
      .Describe("zeros of the input's shape and dtype")
      .SetAttrs<NoAttrs>()
      .InferShape(SameShapeInfer)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference(FillKernel<0>);

  r.Register("ones_like")
      .Describe("ones of the input's shape and dtype")
      .SetAttrs<NoAttrs>()
      .InferShape(SameShapeInfer)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference(FillKernel<1>);
}

}  // namespace kiln::ops
