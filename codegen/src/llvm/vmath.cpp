// Vectorised float32 transcendental functions emitted as LLVM IR (see vmath.h).
//
// All float32 functions follow one recipe: reduce the argument to a small interval where a
// short polynomial is accurate, evaluate it with multiply-adds, rebuild the result, and fix the
// special values (NaN, infinities, zeros, overflow) with selects at the end. Coefficients are
// either Taylor coefficients (exp, expm1, log: the reduced intervals are small enough) or
// Chebyshev fits made with mpmath's chebyfit for erf (the fitting script is in
// docs/codegen.md). sin, cos, tan, asin, acos and atan follow it in double precision inside
// (see their section). Measured errors are in docs/codegen.md and vmath_test.cpp.
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

// ---- Trigonometric functions: computed in double inside, rounded to float once. ----
//
// sin, cos, tan, asin, acos and atan convert the float lanes to double (exactly), reduce the
// argument and evaluate their polynomials in double, and round the result to float once: the
// error before that rounding is below 1e-11 relative, so results are within 0.5 ulp + 2^-12 ulp
// (correctly rounded except in rare near-halfway cases). This costs half the lanes per
// instruction, which is cheaper than the extra-precision float arithmetic (double-float
// reduction, compensated polynomials) that 1-ulp float code needs, and far simpler to prove.

// x = (4n + q) pi/2 + r with |r| <= pi/4 (a little more in the large path), q in {0, 1, 2, 3}
// as a double.
struct Reduced {
  llvm::Value* r;
  llvm::Value* q;
};

// Below this |x| the three-part Cody-Waite reduction is exact enough (see ReduceMedium).
constexpr double kTrigMediumLimit = 0x1p20;

// q = k mod 4 in {0, 1, 2, 3} for an integral double k (exact for |k| < 2^53).
llvm::Value* Mod4(MathBuilder& d, llvm::Value* k) {
  return d.Fma(d.Unary(llvm::Intrinsic::floor, d.Mul(k, d.C(0.25))), d.C(-4.0), k);
}

// |x| < 2^20: k = rint(x * 2/pi), r = ((x - k P1) - k P2) - k P3 with pi/2 = P1 + P2 + P3,
// P1 and P2 of 33 bits (fdlibm's pio2_1, pio2_2): k < 2^20, so k P1 and k P2 are exact, x - k P1
// is exact (both are multiples of 2^-32 and the difference is below 2), and the two later steps
// round relative to r (2^-53) while the constant's error, k 2^-120, is negligible. The closest
// a float comes to a multiple of pi/2 is about 2^-30 relative to 1, so r keeps about 50 bits.
Reduced ReduceMedium(MathBuilder& d, llvm::Value* x) {
  llvm::Value* k = d.Unary(llvm::Intrinsic::rint, d.Mul(x, d.C(0.6366197723675814)));
  llvm::Value* r = d.Fma(k, d.C(-1.5707963267341256), x);
  r = d.Fma(k, d.C(-6.077100506303966e-11), r);
  r = d.Fma(k, d.C(-2.0222662487959506e-21), r);
  return {r, Mod4(d, k)};
}

// Any |x| (Payne-Hanek style, without a table): 2/pi = sum of eight 28-bit pieces P_j (224
// bits; the tail times the largest float is 2^-96). x has 24 bits, so each t_j = x P_j is exact
// in double, and so is s_j = t_j mod 4 = t_j - 4 rint(t_j / 4), in [-2, 2]. The s_j are summed
// mod 4 in double-double (TwoSum; the high part reduced mod 4 after each step, exactly), which
// gives x * 2/pi mod 4 = n + f with an absolute error near 2^-100, and r = f pi/2.
Reduced ReduceLarge(MathBuilder& d, llvm::Value* x) {
  static const double kPieces[] = {
      0.6366197690367699,     3.3308114738561656e-09, 2.276010047810136e-18, 2.5268260189002822e-26,
      1.6682867657019525e-34, 1.158871328288855e-43,  7.053959174404295e-52, 8.910067885731021e-60};
  auto mod4 = [&](llvm::Value* v) {
    llvm::Value* n = d.Unary(llvm::Intrinsic::rint, d.Mul(v, d.C(0.25)));
    return d.Sub(v, d.Mul(n, d.C(4.0)));
  };
  llvm::Value* hi = d.C(0.0);
  llvm::Value* lo = d.C(0.0);
  for (double p : kPieces) {
    llvm::Value* s = mod4(d.Mul(x, d.C(p)));
    // TwoSum: sum + err = hi + s exactly.
    llvm::Value* sum = d.Add(hi, s);
    llvm::Value* bv = d.Sub(sum, hi);
    llvm::Value* err = d.Add(d.Sub(hi, d.Sub(sum, bv)), d.Sub(s, bv));
    lo = d.Add(lo, err);
    hi = mod4(sum);
  }
  llvm::Value* n = d.Unary(llvm::Intrinsic::rint, hi);
  llvm::Value* f = d.Add(d.Sub(hi, n), lo);
  return {d.Mul(f, d.C(1.5707963267948966)), Mod4(d, n)};
}

// sin(r) and cos(r) for |r| <= pi/4 + a little, by their Taylor polynomials to degree 13 and 14
// (truncation below r^15/15! = 3e-14 and r^16/16! = 1e-15 relative).
llvm::Value* SinPoly(MathBuilder& d, llvm::Value* r) {
  llvm::Value* z = d.Mul(r, r);
  llvm::Value* p = d.Horner(
      z, {1.0 / 6227020800, -1.0 / 39916800, 1.0 / 362880, -1.0 / 5040, 1.0 / 120, -1.0 / 6});
  return d.Fma(d.Mul(r, z), p, r);
}
llvm::Value* CosPoly(MathBuilder& d, llvm::Value* r) {
  llvm::Value* z = d.Mul(r, r);
  return d.Horner(z, {-1.0 / 87178291200, 1.0 / 479001600, -1.0 / 3628800, 1.0 / 40320, -1.0 / 720,
                      1.0 / 24, -0.5, 1.0});
}

enum class Trig { kSin, kCos, kTan };

// f(x) from the reduced argument: sin(x) is sin r, cos r, -sin r, -cos r for q = 0..3; cos(x)
// is sin(x + pi/2), i.e. q + 1; tan(x) is sin r / cos r for even q, -cos r / sin r for odd q.
llvm::Value* TrigFromReduced(MathBuilder& d, Trig fn, const Reduced& red) {
  auto& b = d.b();
  llvm::Value* s = SinPoly(d, red.r);
  llvm::Value* c = CosPoly(d, red.r);
  llvm::Value* q = fn == Trig::kCos ? Mod4(d, d.Add(red.q, d.C(1.0))) : red.q;
  llvm::Value* odd = b.CreateOr(b.CreateFCmpOEQ(q, d.C(1.0)), b.CreateFCmpOEQ(q, d.C(3.0)));
  if (fn == Trig::kTan) {
    return d.Select(odd, b.CreateFNeg(d.Div(c, s)), d.Div(s, c));
  }
  llvm::Value* v = d.Select(odd, c, s);
  return d.Select(b.CreateFCmpOGE(q, d.C(2.0)), b.CreateFNeg(v), v);
}

llvm::Type* DoubleLike(llvm::IRBuilder<>& b, llvm::Type* t) {
  auto* vt = llvm::dyn_cast<llvm::FixedVectorType>(t);
  return vt ? static_cast<llvm::Type*>(
                  llvm::FixedVectorType::get(b.getDoubleTy(), vt->getNumElements()))
            : b.getDoubleTy();
}

// sin, cos, tan of float lanes. The medium reduction serves |x| < 2^20; when any lane is
// larger (or infinite) the large reduction runs too, behind a branch, and those lanes take its
// result: the common case pays nothing for it, and every lane's result depends only on its own
// input, so vector and scalar code agree bit for bit.
llvm::Value* TrigF32(MathBuilder& m, Trig fn, llvm::Value* x) {
  auto& b = m.b();
  MathBuilder d(b, DoubleLike(b, x->getType()));
  llvm::Value* xd = b.CreateFPExt(x, DoubleLike(b, x->getType()));
  llvm::Value* fast = TrigFromReduced(d, fn, ReduceMedium(d, xd));
  llvm::Value* large = b.CreateFCmpOGE(d.Abs(xd), d.C(kTrigMediumLimit));
  llvm::Value* any = large->getType()->isVectorTy() ? b.CreateOrReduce(large) : large;
  llvm::BasicBlock* entry = b.GetInsertBlock();
  llvm::Function* f = entry->getParent();
  auto* slow_bb = llvm::BasicBlock::Create(b.getContext(), "large", f);
  auto* done_bb = llvm::BasicBlock::Create(b.getContext(), "done", f);
  b.CreateCondBr(any, slow_bb, done_bb);
  b.SetInsertPoint(slow_bb);
  llvm::Value* slow = d.Select(large, TrigFromReduced(d, fn, ReduceLarge(d, xd)), fast);
  b.CreateBr(done_bb);
  b.SetInsertPoint(done_bb);
  llvm::PHINode* phi = b.CreatePHI(fast->getType(), 2);
  phi->addIncoming(fast, entry);
  phi->addIncoming(slow, slow_bb);
  llvm::Value* res = b.CreateFPTrunc(phi, x->getType());
  // sin(+-inf), cos(+-inf), tan(+-inf) are NaN (the large path gives NaN already: inf - inf);
  // sin and tan keep the sign of zero (the reduction turns -0 into +0).
  res = m.Select(b.CreateFCmpOEQ(m.Abs(x), m.C(INFINITY)), m.C(NAN), res);
  if (fn != Trig::kCos) res = m.Select(b.CreateFCmpOEQ(x, m.C(0.0)), x, res);
  return m.KeepNaN(x, res);
}

// atan(x) = y0 + atan(t) with a = |x|: t = a, y0 = 0 for a <= tan(pi/8); t = (a - 1)/(a + 1),
// y0 = pi/4 up to tan(3pi/8); t = -1/a, y0 = pi/2 above (atan(inf) = pi/2 falls out). On
// |t| <= tan(pi/8), atan(t) = t + t z P(z), z = t^2, P a degree-6 fit (relative error 3.1e-12
// on atan; docs/codegen.md has the script). The sign of x is copied back (atan(-0) = -0).
llvm::Value* AtanF32(MathBuilder& m, llvm::Value* x) {
  auto& b = m.b();
  MathBuilder d(b, DoubleLike(b, x->getType()));
  llvm::Value* xd = b.CreateFPExt(x, DoubleLike(b, x->getType()));
  llvm::Value* a = d.Abs(xd);
  llvm::Value* big = b.CreateFCmpOGT(a, d.C(2.414213562373095));
  llvm::Value* mid = b.CreateFCmpOGT(a, d.C(0.41421356237309503));
  llvm::Value* t = d.Select(big, d.Div(d.C(-1.0), a),
                            d.Select(mid, d.Div(d.Sub(a, d.C(1.0)), d.Add(a, d.C(1.0))), a));
  llvm::Value* y0 =
      d.Select(big, d.C(1.5707963267948966), d.Select(mid, d.C(0.7853981633974483), d.C(0.0)));
  llvm::Value* z = d.Mul(t, t);
  llvm::Value* p = d.Horner(
      z, {-0.04048241699266148, 0.07137915112904482, -0.09029485250384778, 0.1110753997864444,
          -0.1428561432536799, 0.1999999894417944, -0.3333333333150555});
  llvm::Value* res = d.CopySign(d.Add(y0, d.Fma(d.Mul(t, z), p, t)), xd);
  return m.KeepNaN(x, b.CreateFPTrunc(res, x->getType()));
}

// asin and acos share asin(s) = s + s z Q(z) on s in [0, 1/2], z = s^2, Q a degree-7 fit
// (relative error 3.4e-12 on asin). For a = |x| <= 1/2, s = a; above, the identity
// asin(a) = pi/2 - 2 asin(s) with s = sqrt((1 - a)/2) (1 - a is exact in double) keeps the
// accuracy near 1, where the derivative is unbounded. acos(x) = pi/2 - asin(x) for |x| <= 1/2,
// 2 asin(s) for x > 1/2 and pi - 2 asin(s) for x < -1/2. |x| > 1 gives NaN.
llvm::Value* AsinAcosF32(MathBuilder& m, llvm::Value* x, bool acos) {
  auto& b = m.b();
  MathBuilder d(b, DoubleLike(b, x->getType()));
  llvm::Value* xd = b.CreateFPExt(x, DoubleLike(b, x->getType()));
  llvm::Value* a = d.Abs(xd);
  llvm::Value* near1 = b.CreateFCmpOGT(a, d.C(0.5));
  llvm::Value* z = d.Select(near1, d.Mul(d.Sub(d.C(1.0), a), d.C(0.5)), d.Mul(a, a));
  llvm::Value* s = d.Select(near1, d.Unary(llvm::Intrinsic::sqrt, z), a);
  llvm::Value* q = d.Horner(
      z, {0.029414683052775857, 0.005347849176458663, 0.019338860806620662, 0.0221269215403696,
          0.030398113653463434, 0.04464233869182483, 0.07500000629389018, 0.1666666666541833});
  llvm::Value* p = d.Fma(d.Mul(s, z), q, s);  // asin(s)
  llvm::Value* two_p = d.Add(p, p);
  llvm::Value* res;
  if (!acos) {
    res = d.CopySign(d.Select(near1, d.Sub(d.C(1.5707963267948966), two_p), p), xd);
  } else {
    llvm::Value* neg = b.CreateFCmpOLT(xd, d.C(0.0));
    llvm::Value* far = d.Select(neg, d.Sub(d.C(3.141592653589793), two_p), two_p);
    res = d.Select(near1, far, d.Sub(d.C(1.5707963267948966), d.CopySign(p, xd)));
  }
  res = b.CreateFPTrunc(res, x->getType());
  res = m.Select(b.CreateFCmpOGT(m.Abs(x), m.C(1.0)), m.C(NAN), res);
  return m.KeepNaN(x, res);
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
      case Intrinsic::kSin:
        return LibmPerLane(b, "sin", args);
      case Intrinsic::kCos:
        return LibmPerLane(b, "cos", args);
      case Intrinsic::kTan:
        return LibmPerLane(b, "tan", args);
      case Intrinsic::kAsin:
        return LibmPerLane(b, "asin", args);
      case Intrinsic::kAcos:
        return LibmPerLane(b, "acos", args);
      case Intrinsic::kAtan:
        return LibmPerLane(b, "atan", args);
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
      case Intrinsic::kSin:
        r = TrigF32(m, Trig::kSin, x);
        break;
      case Intrinsic::kCos:
        r = TrigF32(m, Trig::kCos, x);
        break;
      case Intrinsic::kTan:
        r = TrigF32(m, Trig::kTan, x);
        break;
      case Intrinsic::kAsin:
        r = AsinAcosF32(m, x, /*acos=*/false);
        break;
      case Intrinsic::kAcos:
        r = AsinAcosF32(m, x, /*acos=*/true);
        break;
      case Intrinsic::kAtan:
        r = AtanF32(m, x);
        break;
      default:
        throw InternalError(StrCat("EmitMath: ", IntrinsicName(f), " is not a vmath function"));
    }
    fb.CreateRet(r);
  }
  return b.CreateCall(fn, {args[0]});
}

}  // namespace kiln::codegen::llvm_backend
