// like.cpp - ops whose output takes its shape from a second operand: reshape_like and
// _reduce_sum_like.
//
// Gradient rules are built before shapes are inferred, so they cannot write a target shape
// into an attribute. These ops read it from a tensor instead: the gradient of Reshape is
// reshape_like(d output, data), and the gradient of a broadcasting op sums the output gradient
// back to each operand's shape with _reduce_sum_like(d output, operand).
//
// reshape_like (MXNet 1.6+): output = lhs's elements with shape
//   lhs[:lhs_begin] + rhs[rhs_begin:rhs_end] + lhs[lhs_end:]
// where the begin/end attributes default to the whole shape (so by default rhs's shape) and
// negative values count from the end; lhs[lhs_begin:lhs_end] and rhs[rhs_begin:rhs_end] must hold
// the same number of elements. The output has lhs's dtype; rhs's values are never read.
//
// _reduce_sum_like(data, like): data summed over the axes along which `like` was broadcast to
// data's shape (NumPy rules, right-aligned: like's missing leading axes and its axes of extent
// 1), giving like's shape and data's dtype. Integer sums wrap, as sum's do. It has no gradient
// of its own (kiln differentiates once; second derivatives are not supported).
//
// Compute definitions (kiln/ir/compute.h): reshape_like a reshape; _reduce_sum_like a TReduce
// over the broadcast axes, every dtype: floating types sum in float32 (float16, bfloat16) or
// their own type (the reference sums in double, so results differ by rounding), integer types
// in int32 or int64 with wrapping (the reference's int64 sum converted to the type: the same
// value modulo 2^bits), bool as "any" (a nonzero count).
#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

const int64_t kU = Shape::kUnknownDim;

// --- reshape_like ---

struct ReshapeLikeAttrs {
  std::optional<int64_t> lhs_begin, lhs_end, rhs_begin, rhs_end;
  static void Describe(AttrSchema<ReshapeLikeAttrs>& s) {
    s.Field("lhs_begin", &ReshapeLikeAttrs::lhs_begin);
    s.Field("lhs_end", &ReshapeLikeAttrs::lhs_end);
    s.Field("rhs_begin", &ReshapeLikeAttrs::rhs_begin);
    s.Field("rhs_end", &ReshapeLikeAttrs::rhs_end);
  }
};

// [begin, end) of a rank-n shape from optional bounds (None: 0 and n; negatives count back).
std::pair<int, int> AxisRange(const ShapeInferCtx& ctx, std::optional<int64_t> b,
                              std::optional<int64_t> e, int n, const char* side) {
  int64_t lo = b ? (*b < 0 ? *b + n : *b) : 0;
  int64_t hi = e ? (*e < 0 ? *e + n : *e) : n;
  if (lo < 0 || hi > n || lo > hi)
    ctx.Fail(StrCat(side, "_begin = ", attr_text::Print(b), ", ", side,
                    "_end = ", attr_text::Print(e), " select axes [", lo, ", ", hi, ") of a rank-",
                    n, " ", side, "; need 0 <= begin <= end <= ", n));
  return {int(lo), int(hi)};
}

void ReshapeLikeShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<ReshapeLikeAttrs>();
  const Shape& lhs = ctx.in(0);
  const Shape& rhs = ctx.in(1);
  if (!lhs.rank_known() || !rhs.rank_known()) return;
  auto [lb, le] = AxisRange(ctx, a.lhs_begin, a.lhs_end, lhs.ndim(), "lhs");
  auto [rb, re] = AxisRange(ctx, a.rhs_begin, a.rhs_end, rhs.ndim(), "rhs");
  const std::vector<int64_t>& L = lhs.dims();
  const std::vector<int64_t>& R = rhs.dims();
  int64_t from = DimProduct(L, size_t(lb), size_t(le)), to = DimProduct(R, size_t(rb), size_t(re));
  if (from != kU && to != kU && from != to)
    ctx.Fail(StrCat("lhs ", lhs.ToString(), " axes [", lb, ", ", le, ") hold ", from,
                    " elements but rhs ", rhs.ToString(), " axes [", rb, ", ", re, ") hold ", to));
  // The output is three runs of axes, each taken from one operand; unify both ways.
  std::vector<int64_t> lo(L), ro(R);
  std::vector<int64_t> out;
  out.insert(out.end(), L.begin(), L.begin() + lb);
  out.insert(out.end(), R.begin() + rb, R.begin() + re);
  out.insert(out.end(), L.begin() + le, L.end());
  ctx.SetOut(0, Shape(out));
  const Shape& o = ctx.out(0);
  int k = 0;
  for (int i = 0; i < lb; ++i) lo[size_t(i)] = o[k++];
  for (int i = rb; i < re; ++i) ro[size_t(i)] = o[k++];
  for (int i = le; i < lhs.ndim(); ++i) lo[size_t(i)] = o[k++];
  ctx.SetIn(0, Shape(lo));
  ctx.SetIn(1, Shape(ro));
}

// The output has the first input's dtype; the second lends only its shape.
void FirstInputTypeInfer(TypeInferCtx& ctx) {
  ctx.SetOut(0, ctx.in(0));
  ctx.SetIn(0, ctx.out(0));
}

void CopyKernel(KernelCtx& ctx) {
  CopyAllBytes(ctx.in[0], ctx.out[0]);
}

// --- _reduce_sum_like ---

// Output is like's shape; like must broadcast to data's shape.
void ReduceSumLikeShape(ShapeInferCtx& ctx) {
  ctx.SetOut(0, ctx.in(1));
  ctx.SetIn(1, ctx.out(0));
  const Shape& data = ctx.in(0);
  const Shape& like = ctx.in(1);
  if (!data.rank_known() || !like.rank_known()) return;
  const int n = data.ndim(), lead = n - like.ndim();
  if (lead < 0)
    ctx.Fail(StrCat("like ", like.ToString(), " has a higher rank than data ", data.ToString(),
                    ", so it cannot have been broadcast to it"));
  std::vector<int64_t> dims = data.dims();
  for (int j = 0; j < like.ndim(); ++j) {
    int64_t l = like[j], &d = dims[size_t(lead + j)];
    if (l == kU || l == 1) continue;
    if (d != kU && d != l)
      ctx.Fail(StrCat("like ", like.ToString(), " does not broadcast to data ", data.ToString(),
                      ": axis ", j, " of like has ", l, " elements, data's has ", d));
    d = l;  // an extent other than 1 is kept, so data has it too
  }
  ctx.SetIn(0, Shape(dims));
}

template <class T>
void ReduceSumLikeKernel(const KernelCtx& ctx) {
  using A = AccType<T>;
  const Tensor& data = ctx.in[0];
  const Tensor& out = ctx.out[0];
  std::vector<A> acc(size_t(out.size()), A(0));
  const T* x = data.data<T>();
  // Reading the output broadcast over data's shape visits each output slot once per element
  // summed into it.
  ForEachIndex<1>(data.shape(), {BroadcastStrides(out.shape(), data.ndim())},
                  [&](int64_t i, const std::array<int64_t, 1>& o) {
                    A& s = acc[size_t(o[0])];
                    if constexpr (std::is_integral_v<A>)
                      s = WrapAdd(s, ToAcc(x[i]));
                    else
                      s += ToAcc(x[i]);
                  });
  T* y = out.data<T>();
  for (size_t k = 0; k < acc.size(); ++k) y[k] = ConvertValue<T>(acc[k]);
}

// The type a sum of dtype t runs in: float32 for float16 and bfloat16, int32 for int8, uint8
// and bool (wrapping modulo 2^32 agrees with the reference modulo 2^8), else t itself.
DType SumType(DType t) {
  if (IsFloatingPoint(t)) return IsComputeFloat(t) ? t : DType::kFloat32;
  return t == DType::kInt64 ? t : DType::kInt32;
}

// out[like index] = sum over the reduced axes of data. Reduced are data's leading axes that
// like lacks and the axes where like has extent 1 but data does not (both 1: read at 0). The
// domain keeps data's axis order, so a sum over the last axis reads memory contiguously and a
// sum over leading axes vectorises along the kept innermost axis (lower_reduce.h).
std::vector<TExpr> ReduceSumLikeCompute(const ComputeCtx& c) {
  DType t = c.out_dtype(0);
  if (c.in_dtype(0) != t) return {};
  const Shape& data = c.in_shape(0);
  const Shape& like = c.in_shape(1);
  const int lead = data.ndim() - like.ndim();
  std::vector<int64_t> extents;
  std::vector<int> reduce_slot(size_t(data.ndim()), -1);  // domain axis of each data axis
  for (int d = 0; d < data.ndim(); ++d)
    if (d < lead || (like[d - lead] == 1 && data[d] != 1)) {
      reduce_slot[size_t(d)] = int(extents.size());
      extents.push_back(data[d]);
    }
  auto index = [&](const std::vector<TExpr>& r) {
    std::vector<TExpr> idx;
    for (int d = 0; d < data.ndim(); ++d) {
      if (reduce_slot[size_t(d)] >= 0)
        idx.push_back(r[size_t(reduce_slot[size_t(d)])]);
      else
        idx.push_back(data[d] == 1 ? TIndex(0) : TAxis(d - lead));
    }
    return idx;
  };
  DType st = SumType(t);
  if (extents.empty()) return {c.Read(0, index({}))};  // nothing is summed: a copy
  TExpr sum = TReduce(TReduceOp::kSum, extents, [&](const std::vector<TExpr>& r) {
    TExpr v = Widen(c.Read(0, index(r)));
    return v->dtype == st ? v : TCast(st, v);
  });
  return {ConvertExpr(sum, t)};
}

}  // namespace

void RegisterLikeOps(OpRegistry& r) {
  r.Register("reshape_like")
      .Describe(
          "lhs's elements in the shape lhs[:lhs_begin] + rhs[rhs_begin:rhs_end] + lhs[lhs_end:] "
          "(by default rhs's shape)")
      .SetAttrs<ReshapeLikeAttrs>()
      .Inputs({"lhs", "rhs"})
      .InferShape(ReshapeLikeShape)
      .InferType(FirstInputTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Inplace(InplaceIdentity)
      .Reference(CopyKernel)
      .Compute(ReshapeCompute())  // lhs's elements; rhs is not read
      // lhs gets dy in its own shape; rhs lends only its shape, so it gets nothing.
      .Gradient([](GradCtx& g) -> GradList {
        return {g.Emit1("reshape_like", {g.ograd(0), g.input(0)}), std::nullopt};
      });

  r.Register("_reduce_sum_like")
      .Describe("data summed over the axes along which `like` broadcasts to it: like's shape")
      .SetAttrs<NoAttrs>()
      .Inputs({"data", "like"})
      .InferShape(ReduceSumLikeShape)
      .InferType(FirstInputTypeInfer)
      .Pattern(FusionPattern::kCommReduce)
      .Reference([](KernelCtx& ctx) {
        KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, ReduceSumLikeKernel<T>(ctx));
      })
      .Compute(ReduceSumLikeCompute);
}

}  // namespace kiln::ops
