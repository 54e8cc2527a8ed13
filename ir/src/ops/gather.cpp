// gather.cpp - take_along_axis: per-element gathering along one axis (NumPy's
// take_along_axis, ONNX's GatherElements).
//
// out[i0, .., ik, ..] = a[i0, .., indices[i0, .., ik, ..], ..] with the index replacing the
// coordinate along `axis`. indices has a's rank and, along every other axis, an extent no
// larger than a's; the result has indices' shape. Indices may have any numeric dtype; negative ones
// count from the end; anything outside [-n, n) is a UserError naming the index and its position.
//
// Gradient: `_backward_take_along_axis` adds dy into zeros shaped like `a` at the gathered
// positions (repeated positions accumulate); indices get none.
#include <algorithm>
#include <cmath>

#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

struct TakeAlongAxisAttrs {
  int64_t axis = 0;
  static void Describe(AttrSchema<TakeAlongAxisAttrs>& s) {
    s.Field("axis", &TakeAlongAxisAttrs::axis).Required();
  }
};

void TakeAlongAxisShape(ShapeInferCtx& ctx) {
  const Shape& a = ctx.in(0);
  const Shape& idx = ctx.in(1);
  if (!a.rank_known() || !idx.rank_known()) return;
  if (a.ndim() != idx.ndim())
    ctx.Fail(StrCat("indices ", idx.ToString(), " must have the rank of a ", a.ToString()));
  int axis = NormalizeAxis(ctx, ctx.attrs<TakeAlongAxisAttrs>().axis, a.ndim(), "axis");
  for (int i = 0; i < a.ndim(); ++i)
    if (i != axis && a.dim_known(i) && idx.dim_known(i) && idx[i] > a[i])
      ctx.Fail(StrCat("indices ", idx.ToString(), " exceed a ", a.ToString(), " along axis ", i));
  ctx.SetOut(0, idx, "the result has the indices' shape");
}

void TakeAlongAxisType(TypeInferCtx& ctx) {
  if (ctx.in(1) == DType::kBool) ctx.Fail("indices have dtype bool; integer indices are needed");
  if (ctx.in(0) != DType::kUnknown) ctx.SetOut(0, ctx.in(0), "the result has a's dtype");
  if (ctx.out(0) != DType::kUnknown) ctx.SetIn(0, ctx.out(0), "the result has a's dtype");
}

// Calls f(out_flat, a_flat) for every element of the index tensor.
template <class F>
void WalkAlongAxis(const KernelCtx& ctx, const std::vector<int64_t>& a_shape, const Tensor& idx,
                   F f) {
  const int nd = idx.ndim();
  const int axis =
      int(ctx.Attr<TakeAlongAxisAttrs>().axis < 0 ? ctx.Attr<TakeAlongAxisAttrs>().axis + nd
                                                  : ctx.Attr<TakeAlongAxisAttrs>().axis);
  const int64_t n = a_shape[size_t(axis)];
  std::vector<int64_t> st = Strides(a_shape);
  std::vector<int64_t> pos(static_cast<size_t>(nd), 0);
  for (int64_t flat = 0; flat < idx.size(); ++flat) {
    double v = idx.At(flat);
    int64_t i = std::isfinite(v) ? int64_t(v) : n;
    if (i < -n || i >= n)
      ctx.Fail(StrCat("index ", v, " at position ", flat, " is out of range for axis ", axis,
                      " of extent ", n));
    if (i < 0) i += n;
    int64_t off = 0;
    for (int d = 0; d < nd; ++d) off += (d == axis ? i : pos[size_t(d)]) * st[size_t(d)];
    f(flat, off);
    for (int d = nd - 1; d >= 0; --d) {
      if (++pos[size_t(d)] < idx.dim(d)) break;
      pos[size_t(d)] = 0;
    }
  }
}

void TakeAlongAxisKernel(KernelCtx& ctx) {
  const size_t es = DTypeSize(ctx.in[0].dtype());
  const auto* src = static_cast<const char*>(ctx.in[0].raw_data());
  auto* dst = static_cast<char*>(ctx.out[0].raw_data());
  WalkAlongAxis(ctx, ctx.in[0].shape(), ctx.in[1], [&](int64_t o, int64_t a) {
    std::memcpy(dst + size_t(o) * es, src + size_t(a) * es, es);
  });
}

template <class T>
void TakeAlongAxisBackwardKernel(KernelCtx& ctx) {
  const Tensor& da = ctx.out[0];
  std::vector<AccType<T>> acc(static_cast<size_t>(da.size()), 0);
  const T* g = ctx.in[0].data<T>();
  WalkAlongAxis(ctx, da.shape(), ctx.in[1],
                [&](int64_t o, int64_t a) { acc[size_t(a)] += ToAcc(g[o]); });
  T* out = da.data<T>();
  for (size_t i = 0; i < acc.size(); ++i) out[i] = ConvertValue<T>(acc[i]);
}

// Compute definition (kiln/ir/compute.h), every dtype of a: a read at the index, negatives
// counted from the end. An index the reference rejects (outside [-n, n), or not finite) cannot
// be reported by a kernel: it is clamped into the axis, so memory stays safe.
std::vector<TExpr> TakeAlongAxisCompute(const ComputeCtx& c) {
  const Shape& a = c.in_shape(0);
  int64_t ax = c.attrs<TakeAlongAxisAttrs>().axis;
  int axis = int(ax < 0 ? ax + a.ndim() : ax);
  int64_t n = a[axis];
  if (n == 0 && c.out_shape(0).NumElements() > 0) return {};  // the reference fails
  TExpr i = IndexValue(c.In(1));
  i = TSelect(TBinary(TBinaryOp::kLT, i, TIndex(0)), i + TIndex(n), i);
  std::vector<TExpr> idx = c.Axes();
  idx[size_t(axis)] = ClampIndex(i, 0, std::max<int64_t>(n - 1, 0));
  return {c.Read(0, idx)};
}

// Longest axis of a and of indices the backward definition covers (see below).
constexpr int64_t kMaxGatheredAxis = 64;

// d a of take_along_axis as a gather, floating types: each element of a sums the output
// gradients whose index chose it, along its own row of the axis,
//   da[.., j, ..] = sum over p < m of (pos(indices[.., p, ..]) == j ? dy[.., p, ..] : 0)
// where m is indices' extent along the axis; elements beyond indices' extent on another axis
// get 0. A row of a costs n * m operations where the reference's scatter costs m (plus n to
// clear and convert), so the definition is given only when both n and m are at most
// kMaxGatheredAxis. Measured (float32, 1 thread, JIT kernel against the reference call):
// 64 rows of n = m = 16: 6 vs 17 us; n = m = 64: 36 vs 63 us; n = m = 128: 118 vs 122 us; but
// n = 2000 with m = 32: 757 vs 65 us, so a long axis of a is left to the reference. Sums run in
// float32 (float16, bfloat16) or the type itself, the reference's in double: results differ by
// rounding. Indices the reference rejects are clamped as the forward definition clamps them.
std::vector<TExpr> TakeAlongAxisBackwardCompute(const ComputeCtx& c) {
  DType t = c.out_dtype(0);
  if (!IsFloatingPoint(t) || c.in_dtype(0) != t) return {};
  const Shape& a = c.out_shape(0);
  const Shape& idx = c.in_shape(1);
  int64_t ax = c.attrs<TakeAlongAxisAttrs>().axis;
  int axis = int(ax < 0 ? ax + a.ndim() : ax);
  int64_t n = a[axis], m = idx[axis];
  if (m > kMaxGatheredAxis || n > kMaxGatheredAxis) return {};
  if (c.in_shape(0) != idx) return {};  // dy's shape is not checked by inference
  DType st = IsComputeFloat(t) ? t : DType::kFloat32;
  TExpr zero = TConst(0, st);
  if (m == 0 || idx.NumElements() == 0) return {ConvertExpr(zero, t)};  // nothing gathered
  // Inside indices' extent on every other axis; reads are clamped so that they stay in range.
  TExpr inside;
  std::vector<TExpr> at = c.Axes();
  for (int d = 0; d < a.ndim(); ++d) {
    if (d == axis || idx[d] == a[d]) continue;
    TExpr ok = TBinary(TBinaryOp::kLT, TAxis(d), TIndex(idx[d]));
    inside = inside ? TBinary(TBinaryOp::kAnd, inside, ok) : ok;
    at[size_t(d)] = ClampIndex(TAxis(d), 0, idx[d] - 1);
  }
  TExpr sum = TReduce(TReduceOp::kSum, {m}, [&](const std::vector<TExpr>& r) {
    std::vector<TExpr> p = at;
    p[size_t(axis)] = r[0];
    TExpr i = IndexValue(c.Read(1, p));
    i = TSelect(TBinary(TBinaryOp::kLT, i, TIndex(0)), i + TIndex(n), i);
    TExpr pos = ClampIndex(i, 0, std::max<int64_t>(n - 1, 0));
    TExpr g = Widen(c.Read(0, p));
    if (g->dtype != st) g = TCast(st, g);
    return TSelect(TBinary(TBinaryOp::kEQ, pos, TAxis(axis)), g, zero);
  });
  if (inside) sum = TSelect(inside, sum, zero);
  return {ConvertExpr(sum, t)};
}

}  // namespace

void RegisterGatherOps(OpRegistry& r) {
  r.Register("take_along_axis")
      .Alias("_npi_take_along_axis")
      .Describe("elements of a at per-element indices along axis (NumPy's take_along_axis)")
      .SetAttrs<TakeAlongAxisAttrs>()
      .Inputs({"a", "indices"})
      .InferShape(TakeAlongAxisShape)
      .InferType(TakeAlongAxisType)
      .Pattern(FusionPattern::kInjective)
      .Reference(TakeAlongAxisKernel)
      .Compute(TakeAlongAxisCompute)
      .Gradient([](GradCtx& g) -> GradList {
        return {
            g.EmitWithAttrs("_backward_take_along_axis", {g.ograd(0), g.input(1), g.input(0)})[0],
            std::nullopt};
      });

  r.Register("_backward_take_along_axis")
      .Describe("gradient of take_along_axis: d output added into zeros shaped like a")
      .SetAttrs<TakeAlongAxisAttrs>()
      .Inputs({"ograd", "indices", "a"})
      .InferShape([](ShapeInferCtx& ctx) {
        ctx.SetOut(0, ctx.in(2), "the gradient has a's shape");
        ctx.SetIn(2, ctx.out(0), "the gradient has a's shape");
        ctx.SetIn(0, ctx.in(1), "the output gradient has the indices' shape");
        ctx.SetIn(1, ctx.in(0), "the output gradient has the indices' shape");
      })
      .InferType([](TypeInferCtx& ctx) {
        ctx.SetOut(0, ctx.in(0), "the gradient has the output gradient's dtype");
        ctx.SetIn(2, ctx.out(0), "the gradient has a's dtype");
      })
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, TakeAlongAxisBackwardKernel<T>(ctx));
      })
      .Compute(TakeAlongAxisBackwardCompute);
}

}  // namespace kiln::ops
