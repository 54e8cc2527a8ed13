// scan.cpp - cumsum: running sums along one axis (NumPy's cumsum; ONNX's CumSum).
//
// y[.., i, ..] = sum of x[.., j, ..] for j <= i along `axis`; `exclusive` leaves out x[i]
// itself (the first sum is 0), `reverse` runs from the end (j >= i). Sums accumulate in double
// or int64 (integers wrap modulo 2^bits on the way back to their type).
//
// Gradient: the gradient of a running sum is the running sum of dy in the opposite direction,
// with the same exclusivity: cumsum(dy, reverse = !reverse).
//
// Compute definition (kiln/ir/compute.h): a definition gives each output element on its own,
// so a running sum becomes a sum over the whole axis that selects the elements before the
// current one: O(n^2) along an axis of extent n where the reference's serial scan is O(n). It
// is given only for n <= kMaxCumsumAxis = 8, every dtype but bool: floating types sum in
// float32 (float16, bfloat16) or their own type (the reference in double: rounding differs),
// integers in int32 or int64, wrapping as the reference's int64 sum does modulo 2^bits.
// The bound was measured (float32, 1 thread, JIT kernel against the reference call): at n = 8
// the kernel is 3-17x faster along the last axis (256x8: 0.3 vs 5.5 us), a middle one (64x8x4:
// 1.3 vs 3.5 us) and the first (8x4096: 12 vs 38 us); at n = 16 it already loses along the last
// axis (256x16: 24 vs 10 us) and along a middle axis of inner extent 4 (14 vs 5.6 us).
#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

struct CumsumAttrs {
  int64_t axis = 0;
  bool exclusive = false;
  bool reverse = false;
  static void Describe(AttrSchema<CumsumAttrs>& s) {
    s.Field("axis", &CumsumAttrs::axis).Required();
    s.Field("exclusive", &CumsumAttrs::exclusive);
    s.Field("reverse", &CumsumAttrs::reverse);
  }
};

void CumsumShape(ShapeInferCtx& ctx) {
  const Shape& in = ctx.in(0);
  if (in.rank_known()) {
    if (in.ndim() == 0) ctx.Fail("data is 0-d; cumsum needs an axis");
    NormalizeAxis(ctx, ctx.attrs<CumsumAttrs>().axis, in.ndim(), "axis");
  }
  SameShapeInfer(ctx);
}

template <class T>
void CumsumKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<CumsumAttrs>();
  const Tensor& x = ctx.in[0];
  const int axis = int(a.axis < 0 ? a.axis + x.ndim() : a.axis);
  const int64_t n = x.dim(axis);
  const int64_t outer = NumElements({x.shape().begin(), x.shape().begin() + axis});
  const int64_t inner = NumElements({x.shape().begin() + axis + 1, x.shape().end()});
  const T* src = x.data<T>();
  T* dst = ctx.out[0].data<T>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      AccType<T> acc = 0;
      for (int64_t step = 0; step < n; ++step) {
        int64_t j = a.reverse ? n - 1 - step : step;
        int64_t at = (o * n + j) * inner + i;
        AccType<T> v = ToAcc(src[at]);
        if constexpr (std::is_integral_v<T>) {
          if (!a.exclusive) acc = WrapAdd(acc, v);
          dst[at] = ConvertValue<T>(acc);
          if (a.exclusive) acc = WrapAdd(acc, v);
        } else {
          if (!a.exclusive) acc += v;
          dst[at] = ConvertValue<T>(acc);
          if (a.exclusive) acc += v;
        }
      }
    }
}

// Longest axis the definition covers: see the header comment.
constexpr int64_t kMaxCumsumAxis = 8;

std::vector<TExpr> CumsumCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<CumsumAttrs>();
  DType t = c.out_dtype(0);
  if (t == DType::kBool || c.in_dtype(0) != t) return {};
  const Shape& x = c.in_shape(0);
  const int axis = int(a.axis < 0 ? a.axis + x.ndim() : a.axis);
  const int64_t n = x[axis];
  if (n > kMaxCumsumAxis) return {};
  DType st = IsFloatingPoint(t) ? (IsComputeFloat(t) ? t : DType::kFloat32)
                                : (t == DType::kInt64 ? t : DType::kInt32);
  TExpr i = TAxis(axis);
  // Element j is summed into i when j <= i (reverse: j >= i); exclusive leaves j == i out.
  TBinaryOp take = a.reverse ? (a.exclusive ? TBinaryOp::kGT : TBinaryOp::kGE)
                             : (a.exclusive ? TBinaryOp::kLT : TBinaryOp::kLE);
  TExpr sum = TReduce(TReduceOp::kSum, {n}, [&](const std::vector<TExpr>& r) {
    std::vector<TExpr> idx = c.Axes();
    idx[size_t(axis)] = r[0];
    TExpr v = Widen(c.Read(0, idx));
    if (v->dtype != st) v = TCast(st, v);
    return TSelect(TBinary(take, r[0], i), v, TConst(0, st));
  });
  return {ConvertExpr(sum, t)};
}

}  // namespace

void RegisterScanOps(OpRegistry& r) {
  r.Register("cumsum")
      .Alias("_np_cumsum")
      .Describe("running sums along axis (exclusive: without the element itself; reverse)")
      .SetAttrs<CumsumAttrs>()
      .InferShape(CumsumShape)
      .InferType(NonBoolTypeInfer)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, {
          if constexpr (std::is_same_v<T, bool>)
            ctx.Fail("cumsum does not take bool data");
          else
            CumsumKernel<T>(ctx);
        });
      })
      .Compute(CumsumCompute)
      .Gradient([](GradCtx& g) -> GradList {
        const auto& a = g.attrs<CumsumAttrs>();
        return {g.Emit1("cumsum", {g.ograd(0)},
                        {{"axis", std::to_string(a.axis)},
                         {"exclusive", a.exclusive ? "True" : "False"},
                         {"reverse", a.reverse ? "False" : "True"}})};
      });
}

}  // namespace kiln::ops
