// Vectorised float32 transcendental functions emitted as LLVM IR (see vmath.h).
//
// All float32 functions follow one recipe: reduce the argument to a small interval where a
// short polynomial is accurate, evaluate it with multiply-adds, rebuild the result, and fix the
// special values (NaN, infinities, zeros, overflow) with selects at the end. Coefficients are
// either Taylor coefficients (exp, expm1, log: the reduced intervals are small enough) or
// Chebyshev fits made with mpmath's chebyfit for erf (the fitting script is in
// docs/codegen.md). Measured errors are in docs/codegen.md and vmath_test.cpp.
#include "llvm/vmath.h"

#include <cmath>
#include <string>

#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Module.h>

#include "kiln/runtime/error.h"

namespace kiln::codegen::llvm_backend {
namespace {

// Builds code for one helper function: constants are splatted to the function's type.
class MathBuilder {
 public:
  MathBuilder(llvm::IRBuilder<>& b, llvm::Type* type) : b_(b), type_(type) {
    auto* vt = llvm::dyn_cast<llvm::VectorType>(type);
    int_type_ = vt ? llvm::VectorType::get(b.getInt32Ty(), vt->getElementCount())
                   : static_cast<llvm::Type*>(b.getInt32Ty());
  }

  llvm::Value* C(double v) { return llvm::ConstantFP::get(type_, v); }
  llvm::Value* I(int32_t v) { return llvm::ConstantInt::get(int_type_, v, true); }
  llvm::Value* Bits(int32_t v) { return b_.CreateBitCast(I(v), type_); }

  llvm::Value* Add(llvm::Value* a, llvm::Value* c) { return b_.CreateFAdd(a, c); }
  llvm::Value* Sub(llvm::Value* a, llvm::Value* c) { return b_.CreateFSub(a, c); }
  llvm::Value* Mul(llvm::Value* a, llvm::Value* c) { return b_.CreateFMul(a, c); }
  llvm::Value* Div(llvm::Value* a, llvm::Value* c) { return b_.CreateFDiv(a, c); }
  // a*x + c, fused where the target has FMA (llvm.fmuladd), so accuracy never depends on it.
  llvm::Value* Fma(llvm::Value* a, llvm::Value* x, llvm::Value* c) {
    return b_.CreateIntrinsic(llvm::Intrinsic::fmuladd, {type_}, {a, x, c});
  }
  llvm::Value* Unary(llvm::Intrinsic::ID id, llvm::Value* x) {
    return b_.CreateUnaryIntrinsic(id, x);
  }
  llvm::Value* Abs(llvm::Value* x) { return Unary(llvm::Intrinsic::fabs, x); }
  llvm::Value* Min(llvm::Value* a, llvm::Value* c) { return b_.CreateMinNum(a, c); }
  llvm::Value* Max(llvm::Value* a, llvm::Value* c) { return b_.CreateMaxNum(a, c); }
  llvm::Value* CopySign(llvm::Value* mag, llvm::Value* sign) {
    return b_.CreateCopySign(mag, sign);
  }
  llvm::Value* Select(llvm::Value* c, llvm::Value* t, llvm::Value* f) {
    return b_.CreateSelect(c, t, f);
  }
  llvm::Value* IsNaN(llvm::Value* x) { return b_.CreateFCmpUNO(x, x); }
  // Returns x where x is NaN, else r: every function maps NaN to (the same) NaN.
  llvm::Value* KeepNaN(llvm::Value* x, llvm::Value* r) { return Select(IsNaN(x), x, r); }

  // c[0]*x^(n-1) + ... + c[n-1] by Horner's rule; coefficients highest degree first.
  llvm::Value* Horner(llvm::Value* x, std::initializer_list<double> c) {
    auto it = c.begin();
    llvm::Value* acc = C(*it++);
    for (; it != c.end(); ++it) acc = Fma(acc, x, C(*it));
    return acc;
  }

  // 2^k for integer k in [-126, 127], built from the exponent bits.
  llvm::Value* Pow2(llvm::Value* k) {
    llvm::Value* e = b_.CreateShl(b_.CreateAdd(k, I(127)), I(23));
    return b_.CreateBitCast(e, type_);
  }

  llvm::IRBuilder<>& b() { return b_; }
  llvm::Type* int_type() const { return int_type_; }

 private:
  llvm::IRBuilder<>& b_;
  llvm::Type* type_;
  llvm::Type* int_type_;
};

constexpr double kLog2e = 1.4426950408889634;
// ln 2 split so that n * kLn2Hi is exact for |n| < 256 (kLn2Hi has 16 significant bits).
constexpr double kLn2Hi = 0.693145751953125;
constexpr double kLn2Lo = 1.4286068203094172e-06;

// exp(x) = 2^n * e^r with n = rint(x / ln2), |r| <= ln2 / 2 (Cody-Waite reduction, exact for
// the clamped range). e^r by its Taylor polynomial of degree 7: the truncation error is
// below r^8/8! = 5e-9 relative. 2^n is applied as two factors, 2^n2 first (exact) and then
// 2^n1 (one rounding), so that results in the subnormal range are rounded once.
llvm::Value* ExpF32(MathBuilder& m, llvm::Value* x) {
  auto& b = m.b();
  // Beyond these bounds the result is 0 or inf; clamping keeps n in range for Pow2.
  llvm::Value* xc = m.Max(m.Min(x, m.C(89.0)), m.C(-104.0));
  llvm::Value* n = m.Unary(llvm::Intrinsic::rint, m.Mul(xc, m.C(kLog2e)));
  llvm::Value* r = m.Fma(n, m.C(-kLn2Hi), xc);
  r = m.Fma(n, m.C(-kLn2Lo), r);
  llvm::Value* p =
      m.Horner(r, {1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1.0, 1.0});
  llvm::Value* ni = b.CreateFPToSI(n, m.int_type());
  llvm::Value* n1 = b.CreateBinaryIntrinsic(
      llvm::Intrinsic::smax, b.CreateBinaryIntrinsic(llvm::Intrinsic::smin, ni, m.I(127)),
      m.I(-126));
  llvm::Value* n2 = b.CreateSub(ni, n1);
  llvm::Value* res = m.Mul(m.Mul(p, m.Pow2(n2)), m.Pow2(n1));
  return m.KeepNaN(x, res);
}

// expm1(x) = 2^n * (e^r - 1) + (2^n - 1), with e^r - 1 by its Taylor polynomial of degree 8
// (no leading 1, so small results keep their relative accuracy). Above 17.5 the -1 is below
// half an ulp and exp(x) is the answer; below -17.5 the answer rounds to -1.
llvm::Value* Expm1F32(MathBuilder& m, llvm::Value* x) {
  auto& b = m.b();
  llvm::Value* xc = m.Max(m.Min(x, m.C(17.5)), m.C(-17.5));
  llvm::Value* n = m.Unary(llvm::Intrinsic::rint, m.Mul(xc, m.C(kLog2e)));
  llvm::Value* r = m.Fma(n, m.C(-kLn2Hi), xc);
  r = m.Fma(n, m.C(-kLn2Lo), r);
  llvm::Value* poly =
      m.Horner(r, {1.0 / 40320, 1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5});
  llvm::Value* q = m.Fma(m.Mul(r, r), poly, r);  // e^r - 1
  llvm::Value* t = m.Pow2(b.CreateFPToSI(n, m.int_type()));
  llvm::Value* res = m.Fma(q, t, m.Sub(t, m.C(1.0)));
  res = m.Select(b.CreateFCmpOGT(x, m.C(17.5)), ExpF32(m, x), res);
  res = m.Select(b.CreateFCmpOEQ(x, m.C(0.0)), x, res);  // keeps the sign of zero
  return m.KeepNaN(x, res);
}

// log(x) = e*ln2 + log(1+f) with x = 2^e * (1+f), sqrt(1/2) <= 1+f < sqrt(2). log(1+f) is
// computed as f - (f^2/2 - s*(f^2/2 + R(s^2))), s = f/(2+f), where
// R(z) = 2z/3 + 2z^2/5 + 2z^3/7 + 2z^4/9 is the atanh series (|s| <= 0.1716, truncation
// below 3e-10 relative); the leading f is exact, which keeps results near x = 1 accurate.
llvm::Value* LogF32(MathBuilder& m, llvm::Value* x) {
  auto& b = m.b();
  // Subnormal inputs are scaled into the normal range first.
  llvm::Value* tiny = b.CreateFCmpOLT(x, m.C(0x1p-126));
  llvm::Value* xs = m.Select(tiny, m.Mul(x, m.C(0x1p23)), x);
  llvm::Value* bits = b.CreateBitCast(xs, m.int_type());
  llvm::Value* e = b.CreateSub(b.CreateLShr(bits, m.I(23)), m.I(127));
  e = b.CreateSub(e, b.CreateSelect(tiny, m.I(23), m.I(0)));
  llvm::Value* mant = b.CreateBitCast(
      b.CreateOr(b.CreateAnd(bits, m.I(0x007fffff)), m.I(0x3f800000)), xs->getType());
  llvm::Value* big = b.CreateFCmpOGT(mant, m.C(1.4142135623730951));
  mant = m.Select(big, m.Mul(mant, m.C(0.5)), mant);
  e = b.CreateAdd(e, b.CreateSelect(big, m.I(1), m.I(0)));
  llvm::Value* f = m.Sub(mant, m.C(1.0));
  llvm::Value* s = m.Div(f, m.Add(f, m.C(2.0)));
  llvm::Value* z = m.Mul(s, s);
  llvm::Value* R = m.Mul(z, m.Horner(z, {2.0 / 9, 2.0 / 7, 2.0 / 5, 2.0 / 3}));
  llvm::Value* hfsq = m.Mul(m.C(0.5), m.Mul(f, f));
  llvm::Value* ef = b.CreateSIToFP(e, xs->getType());
  // e*ln2_hi - ((hfsq - (s*(hfsq+R) + e*ln2_lo)) - f)
  llvm::Value* inner = m.Fma(s, m.Add(hfsq, R), m.Mul(ef, m.C(kLn2Lo)));
  llvm::Value* res = m.Fma(ef, m.C(kLn2Hi), m.Sub(f, m.Sub(hfsq, inner)));
  // Special values: log(0) = -inf, log(x < 0) = NaN, log(inf) = inf.
  double inf = INFINITY;
  res = m.Select(b.CreateFCmpOEQ(x, m.C(inf)), x, res);
  res = m.Select(b.CreateFCmpOLT(x, m.C(0.0)), m.C(NAN), res);
  res = m.Select(b.CreateFCmpOEQ(x, m.C(0.0)), m.C(-inf), res);
  return m.KeepNaN(x, res);
}

// log1p(x) = log(u) + (x - (u - 1)) / u with u = 1 + x rounded: the second term is the first
// order correction for the rounding of u (log(u + c) ~ log(u) + c/u). u == 1 means |x| is
// below half an ulp of 1 and log1p(x) = x.
llvm::Value* Log1pF32(MathBuilder& m, llvm::Value* x) {
  auto& b = m.b();
  llvm::Value* u = m.Add(x, m.C(1.0));
  llvm::Value* c = m.Sub(x, m.Sub(u, m.C(1.0)));
  llvm::Value* res = m.Add(LogF32(m, u), m.Div(c, u));
  res = m.Select(b.CreateFCmpOEQ(u, m.C(1.0)), x, res);
  res = m.Select(b.CreateFCmpOEQ(u, m.C(INFINITY)), u, res);
  res = m.Select(b.CreateFCmpOEQ(u, m.C(0.0)), m.C(-INFINITY), res);
  return m.KeepNaN(x, res);
}

// tanh(x): for |x| < 0.625, x + x^3 P(x^2), P a degree-5 Chebyshev fit of (tanh(x)/x - 1)/x^2
// (fit error 1.5e-10); above, sign(x) (1 - 2 / (e + 1)) with e = exp(2|x|) >= 3.49, where the
// subtraction loses less than one bit. |x| is clamped to 10, where tanh already rounds to 1.
llvm::Value* TanhF32(MathBuilder& m, llvm::Value* x) {
  auto& b = m.b();
  llvm::Value* a = m.Min(m.Abs(x), m.C(10.0));
  llvm::Value* z = m.Mul(x, x);
  llvm::Value* p = m.Horner(z, {0.0021274353634957097, -0.008157853372483882, 0.0216912653165213,
                                -0.053944584678163064, 0.13333181748509385, -0.3333332966292952});
  // copysign keeps tanh(-0) = -0 (the sum below rounds -0 + 0 to +0).
  llvm::Value* small = m.CopySign(m.Fma(m.Mul(x, z), p, x), x);
  llvm::Value* e = ExpF32(m, m.Add(a, a));
  llvm::Value* large = m.CopySign(m.Sub(m.C(1.0), m.Div(m.C(2.0), m.Add(e, m.C(1.0)))), x);
  llvm::Value* res = m.Select(b.CreateFCmpOLT(m.Abs(x), m.C(0.625)), small, large);
  return m.KeepNaN(x, res);
}

// sigmoid(x) = 1 / (1 + t) for x >= 0 and t / (1 + t) for x < 0, t = exp(-|x|): t never
// overflows, and results for very negative x keep their relative accuracy (down to the
// subnormals).
llvm::Value* SigmoidF32(MathBuilder& m, llvm::Value* x) {
  auto& b = m.b();
  llvm::Value* t = ExpF32(m, b.CreateFNeg(m.Abs(x)));
  llvm::Value* num = m.Select(b.CreateFCmpOGE(x, m.C(0.0)), m.C(1.0), t);
  return m.KeepNaN(x, m.Div(num, m.Add(t, m.C(1.0))));
}

// erf(x) for |x| < 1: x * P(x^2), P a degree-6 Chebyshev fit of erf(sqrt z)/sqrt z on [0, 1]
// (fit error 1.2e-9). For 1 <= |x| < 4: 1 - exp(-x^2) * Q(1/|x|), Q a degree-8 fit of
// erfc(x) exp(x^2) on 1/x in [1/4, 1] (fit error 2.3e-8, scaled by erfc(x) <= 0.16 in the
// result). Above 4, erf rounds to 1.
llvm::Value* ErfF32(MathBuilder& m, llvm::Value* x) {
  auto& b = m.b();
  llvm::Value* a = m.Abs(x);
  llvm::Value* z = m.Mul(a, a);
  // x + x*(P(z) - 1): the leading term is exact, so the rounding of P's constant term does
  // not reach the result.
  llvm::Value* small =
      m.Fma(a,
            m.Horner(z, {7.875875062685488e-05, -0.000801686428716587, 0.005189087423433974,
                         -0.026854212010626412, 0.11283594715160218, -0.37612626666720334,
                         1.1283791658483509 - 1.0}),
            a);
  llvm::Value* ac = m.Max(m.Min(a, m.C(4.0)), m.C(1.0));
  llvm::Value* u = m.Div(m.C(1.0), ac);
  llvm::Value* q = m.Horner(u, {-0.0059340224944551484, 0.010945133449111613, 0.06135414961306156,
                                -0.2865356076049416, 0.5290705746342271, -0.48593950757210147,
                                0.045837909138975154, 0.5584799204663452, 0.0003050177485519837});
  llvm::Value* large = m.Sub(m.C(1.0), m.Mul(ExpF32(m, b.CreateFNeg(m.Mul(ac, ac))), q));
  large = m.Min(large, m.C(1.0));
  llvm::Value* res = m.Select(b.CreateFCmpOLT(a, m.C(1.0)), small, large);
  return m.KeepNaN(x, m.CopySign(res, x));
}

// Calls the C library's scalar `name` on every lane (float64 functions and pow).
llvm::Value* LibmPerLane(llvm::IRBuilder<>& b, const char* name,
                         llvm::ArrayRef<llvm::Value*> args) {
  llvm::Type* type = args[0]->getType();
  llvm::Type* elem = type->getScalarType();
  llvm::Module* mod = b.GetInsertBlock()->getModule();
  std::vector<llvm::Type*> params(args.size(), elem);
  std::string fname = std::string(name) + (elem->isFloatTy() ? "f" : "");
  llvm::FunctionCallee fn =
      mod->getOrInsertFunction(fname, llvm::FunctionType::get(elem, params, false));
  auto* vt = llvm::dyn_cast<llvm::FixedVectorType>(type);
  if (!vt) return b.CreateCall(fn, args);
  llvm::Value* out = llvm::PoisonValue::get(type);
  for (unsigned i = 0; i < vt->getNumElements(); ++i) {
    std::vector<llvm::Value*> lane;
    for (llvm::Value* a : args) lane.push_back(b.CreateExtractElement(a, i));
    out = b.CreateInsertElement(out, b.CreateCall(fn, lane), i);
  }
  return out;
}

std::string TypeSuffix(llvm::Type* t) {
  auto* vt = llvm::dyn_cast<llvm::FixedVectorType>(t);
  std::string elem = t->getScalarType()->isFloatTy() ? "f32" : "f64";
  return vt ? "v" + std::to_string(vt->getNumElements()) + elem : elem;
}

}  // namespace

llvm::Value* EmitMath(llvm::IRBuilder<>& b, Intrinsic f, llvm::ArrayRef<llvm::Value*> args) {
  llvm::Type* type = args[0]->getType();
  bool f32 = type->getScalarType()->isFloatTy();
  KILN_INTERNAL_CHECK(f32 || type->getScalarType()->isDoubleTy(), "math on a non-float type");
  if (!f32 || f == Intrinsic::kPow) {
    switch (f) {
      case Intrinsic::kExp:
        return LibmPerLane(b, "exp", args);
      case Intrinsic::kLog:
        return LibmPerLane(b, "log", args);
      case Intrinsic::kTanh:
        return LibmPerLane(b, "tanh", args);
      case Intrinsic::kErf:
        return LibmPerLane(b, "erf", args);
      case Intrinsic::kExpm1:
        return LibmPerLane(b, "expm1", args);
      case Intrinsic::kLog1p:
        return LibmPerLane(b, "log1p", args);
      case Intrinsic::kPow:
        return LibmPerLane(b, "pow", args);
      case Intrinsic::kSigmoid: {
        llvm::Value* neg_abs = b.CreateFNeg(b.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, args[0]));
        llvm::Value* t = LibmPerLane(b, "exp", {neg_abs});
        llvm::Value* one = llvm::ConstantFP::get(type, 1.0);
        llvm::Value* num =
            b.CreateSelect(b.CreateFCmpOGE(args[0], llvm::ConstantFP::get(type, 0.0)), one, t);
        return b.CreateFDiv(num, b.CreateFAdd(t, one));
      }
      default:
        break;
    }
    throw InternalError(StrCat("EmitMath: no float64 form of ", IntrinsicName(f)));
  }

  // One internal function per (function, type), inlined into its callers by the optimiser.
  llvm::Function* caller = b.GetInsertBlock()->getParent();
  llvm::Module* mod = caller->getParent();
  std::string name = StrCat("kiln.", IntrinsicName(f), ".", TypeSuffix(type));
  llvm::Function* fn = mod->getFunction(name);
  if (!fn) {
    auto* fty = llvm::FunctionType::get(type, {type}, false);
    fn = llvm::Function::Create(fty, llvm::Function::InternalLinkage, name, mod);
    // Inlining requires the callee's target attributes to be compatible with the caller's.
    for (const char* attr :
         {"target-cpu", "target-features", "min-legal-vector-width", "prefer-vector-width"}) {
      if (caller->hasFnAttribute(attr)) fn->addFnAttr(caller->getFnAttribute(attr));
    }
    fn->addFnAttr(llvm::Attribute::AlwaysInline);
    fn->addFnAttr(llvm::Attribute::NoUnwind);
    llvm::IRBuilder<> fb(llvm::BasicBlock::Create(mod->getContext(), "entry", fn));
    MathBuilder m(fb, type);
    llvm::Value* x = fn->getArg(0);
    llvm::Value* r = nullptr;
    switch (f) {
      case Intrinsic::kExp:
        r = ExpF32(m, x);
        break;
      case Intrinsic::kExpm1:
        r = Expm1F32(m, x);
        break;
      case Intrinsic::kLog:
        r = LogF32(m, x);
        break;
      case Intrinsic::kLog1p:
        r = Log1pF32(m, x);
        break;
      case Intrinsic::kTanh:
        r = TanhF32(m, x);
        break;
      case Intrinsic::kSigmoid:
        r = SigmoidF32(m, x);
        break;
      case Intrinsic::kErf:
        r = ErfF32(m, x);
        break;
      default:
        throw InternalError(StrCat("EmitMath: ", IntrinsicName(f), " is not a vmath function"));
    }
    fb.CreateRet(r);
  }
  return b.CreateCall(fn, {args[0]});
}

}  // namespace kiln::codegen::llvm_backend
