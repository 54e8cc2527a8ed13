// reduce.cpp - reductions over axes: sum, mean, max, min, prod, and argmax.
//
// Shapes follow MXNet 1.x (ReduceAxesShapeImpl), which never makes a 0-d result: reducing every
// axis without keepdims gives shape (1,). `axis` None or () reduces every axis; `exclude`
// reduces the axes *not* listed; negative axes count from the end; a repeated axis is an error.
//
// Values: every dtype; accumulation in AccType (double, or int64 wrapping), the result in the
// input's dtype (so mean of integers truncates toward zero, and for bool sum/max are "any",
// prod/min "all"). Empty reductions: sum is 0, prod 1, mean nan (0/0; 0 for integers); max and
// min of an empty input are errors, as in MXNet (ReduceMinMaxAxesShape: "Reduction input's
// size should > 0"). max and min propagate nan.
//
// argmax: MXNet's ReduceAxisParam (axis None = over the flattened input; keepdims). As MXNet
// (MSHADOW_REAL_TYPE_SWITCH) it takes floating dtypes only and returns the index in the input's
// own dtype. Ties and nan: the first maximum wins, and nan counts as the maximum (NumPy). An
// empty search is an error, as MXNet's.
//
// Gradients: one backward op per reduction, with the forward's attributes, that broadcasts the
// output gradient dy back over the reduced axes (floating types):
//   sum  dy;  mean  dy / (number of elements reduced into each output);
//   max, min  dy at every position equal to the result, 0 elsewhere. Every tied position gets
//     the whole dy, as MXNet's _backward_max (ograd * (data == out)); a nan result matches
//     nothing, so its gradient is 0;
//   prod  dy * (product of the other elements of its group). MXNet computes dy * out / x,
//     which is nan where x = 0; kiln counts the zeros of each group instead, so that it is
//     exact there too (one zero: only the zero gets the product of the rest).
// argmax has no gradient: the gradient pass reports differentiating through it as an error.
//
// Compute definitions (kiln/ir/compute.h), float32 and float64: the reductions with TReduce in
// the data's type (the reference accumulates in double: sums and products of float32 differ by
// rounding); max and min propagate NaN as the reference (TReduceOp::kMax/kMin), and float64's
// result of an all -inf max is -DBL_MAX, the reference's initial value (float32 rounds it to
// -inf). Backward ops and argmax are covered too; integer types are not.
#include <cmath>

#include "kiln/ir/compute.h"

#include "kiln/ir/grad.h"
#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

struct ReduceAttrs {
  std::optional<std::vector<int64_t>> axis;
  bool keepdims = false;
  bool exclude = false;
  static void Describe(AttrSchema<ReduceAttrs>& s) {
    s.Field("axis", &ReduceAttrs::axis);
    s.Field("keepdims", &ReduceAttrs::keepdims);
    s.Field("exclude", &ReduceAttrs::exclude);
  }
};

enum class Reducer { kSum, kMean, kMax, kMin, kProd };

// Which input axes are reduced. `fail` reports a bad axis list.
template <class Fail>
std::vector<bool> ReducedAxes(const ReduceAttrs& a, int ndim, Fail fail) {
  if (!a.axis || a.axis->empty()) return std::vector<bool>(size_t(ndim), true);
  std::vector<bool> listed(size_t(ndim), false);
  for (int64_t ax : *a.axis) {
    if (ax < -ndim || ax >= ndim)
      fail(StrCat("axis = ", attr_text::Print(*a.axis), ": axis ", ax, " is out of range for rank ",
                  ndim));
    int n = int(ax < 0 ? ax + ndim : ax);
    if (listed[size_t(n)])
      fail(StrCat("axis = ", attr_text::Print(*a.axis), " names axis ", n, " twice"));
    listed[size_t(n)] = true;
  }
  if (a.exclude) listed.flip();
  return listed;
}

bool ReducesAll(const ReduceAttrs& a) {
  return !a.axis || a.axis->empty();
}

Shape ReduceOutShape(const ShapeInferCtx& ctx, const Shape& in) {
  const auto& a = ctx.attrs<ReduceAttrs>();
  auto fail = [&](const std::string& m) { ctx.Fail(StrCat(m, " (input ", in.ToString(), ")")); };
  std::vector<bool> red = ReducedAxes(a, in.ndim(), fail);
  std::vector<int64_t> out;
  for (int i = 0; i < in.ndim(); ++i) {
    if (!red[size_t(i)])
      out.push_back(in[i]);
    else if (a.keepdims)
      out.push_back(1);
  }
  if (out.empty() && !(a.keepdims && in.ndim() == 0)) out.push_back(1);  // MXNet: never 0-d
  return Shape(out);
}

template <Reducer R>
void ReduceShape(ShapeInferCtx& ctx) {
  const Shape& in = ctx.in(0);
  const auto& a = ctx.attrs<ReduceAttrs>();
  if (!in.rank_known()) {
    // Reducing everything without keepdims gives (1,) whatever the input.
    if (ReducesAll(a) && !a.keepdims) ctx.SetOut(0, Shape{1});
    return;
  }
  if constexpr (R == Reducer::kMax || R == Reducer::kMin) {
    if (in.NumElements() == 0)
      ctx.Fail(StrCat("input ", in.ToString(),
                      " is empty: the maximum or minimum of nothing is undefined"));
  }
  ctx.SetOut(0, ReduceOutShape(ctx, in));
  // Backward: axes kept without keepdims map one-to-one onto the output's.
  const Shape& o = ctx.out(0);
  if (!o.rank_known()) return;
  std::vector<bool> red = ReducedAxes(a, in.ndim(), [](const std::string&) {});
  std::vector<int64_t> dims = in.dims();
  int k = 0;
  bool changed = false;
  for (int i = 0; i < in.ndim(); ++i) {
    if (red[size_t(i)] && !a.keepdims) continue;
    if (!red[size_t(i)] && k < o.ndim() && dims[size_t(i)] == Shape::kUnknownDim &&
        o.dim_known(k)) {
      dims[size_t(i)] = o[k];
      changed = true;
    }
    ++k;
  }
  if (changed) ctx.SetIn(0, Shape(dims));
}

// Strides mapping an input index to its output slot. The output in the input's rank with
// reduced axes of extent 1 has the same layout as the real output; its strides with 0 on
// reduced axes do the mapping.
std::vector<int64_t> OutputSlotStrides(const KernelCtx& ctx, const Tensor& in) {
  std::vector<bool> red =
      ReducedAxes(ctx.Attr<ReduceAttrs>(), in.ndim(), [&](const std::string& m) { ctx.Fail(m); });
  std::vector<int64_t> kept = in.shape();
  for (size_t i = 0; i < kept.size(); ++i)
    if (red[i]) kept[i] = 1;
  std::vector<int64_t> os = Strides(kept);
  for (size_t i = 0; i < kept.size(); ++i)
    if (red[i]) os[i] = 0;
  return os;
}

template <Reducer R, class T>
void ReduceKernel(const KernelCtx& ctx) {
  using A = AccType<T>;
  const Tensor& in = ctx.in[0];
  const Tensor& out = ctx.out[0];
  std::vector<int64_t> os = OutputSlotStrides(ctx, in);

  A init{};
  if constexpr (R == Reducer::kProd) init = A(1);
  if constexpr (R == Reducer::kMax) init = std::numeric_limits<A>::lowest();
  if constexpr (R == Reducer::kMin) init = std::numeric_limits<A>::max();
  std::vector<A> acc(size_t(out.size()), init);
  const T* x = in.data<T>();
  ForEachIndex<1>(in.shape(), {os}, [&](int64_t i, const std::array<int64_t, 1>& o) {
    A v = ToAcc(x[i]);
    A& s = acc[size_t(o[0])];
    if constexpr (R == Reducer::kSum || R == Reducer::kMean) {
      if constexpr (std::is_integral_v<A>)
        s = WrapAdd(s, v);
      else
        s += v;
    } else if constexpr (R == Reducer::kProd) {
      if constexpr (std::is_integral_v<A>)
        s = WrapMul(s, v);
      else
        s *= v;
    } else if constexpr (R == Reducer::kMax) {
      if constexpr (!std::is_integral_v<A>) {
        if (std::isnan(s)) return;
        if (std::isnan(v)) s = v;
      }
      if (v > s) s = v;
    } else {
      if constexpr (!std::is_integral_v<A>) {
        if (std::isnan(s)) return;
        if (std::isnan(v)) s = v;
      }
      if (v < s) s = v;
    }
  });
  T* y = out.data<T>();
  int64_t count = out.size() ? in.size() / out.size() : 0;
  for (size_t k = 0; k < acc.size(); ++k) {
    A v = acc[k];
    if constexpr (R == Reducer::kMean) {
      if constexpr (std::is_integral_v<A>)
        v = count ? v / count : 0;
      else
        v = v / double(count);  // 0 / 0 is nan for an empty mean
    }
    y[k] = ConvertValue<T>(v);
  }
}

// --- Compute definitions. ---

// The reduced axes of input 0 with the output index of each kept axis: out_axis[d] is the output
// axis of input axis d (-1: reduced), extents the reduced extents in input order.
struct ReduceMap {
  std::vector<bool> reduced;
  std::vector<int> out_axis;
  std::vector<int64_t> extents;
  int64_t count = 1;  // elements reduced into each output
};

ReduceMap MapReduce(const ReduceAttrs& a, const Shape& in) {
  ReduceMap m;
  m.reduced = ReducedAxes(a, in.ndim(), [](const std::string& msg) {
    throw InternalError(StrCat("reduce: ", msg, " after shape inference"));
  });
  int k = 0;
  for (int d = 0; d < in.ndim(); ++d) {
    if (m.reduced[size_t(d)]) {
      m.out_axis.push_back(a.keepdims ? k++ : -1);
      m.extents.push_back(in[d]);
      m.count *= in[d];
    } else {
      m.out_axis.push_back(k++);
    }
  }
  return m;
}

// x's index at reduction point r for the current output element.
std::vector<TExpr> ReducedIndex(const ReduceMap& m, const std::vector<TExpr>& r) {
  std::vector<TExpr> idx;
  size_t j = 0;
  for (size_t d = 0; d < m.reduced.size(); ++d)
    idx.push_back(m.reduced[d] ? r[j++] : TAxis(m.out_axis[d]));
  return idx;
}

// The output slot of the current element of an input-shaped result (the backward ops).
std::vector<TExpr> SlotIndex(const ReduceMap& m, const ReduceAttrs& a, const Shape& out) {
  std::vector<TExpr> idx;
  for (size_t d = 0; d < m.reduced.size(); ++d) {
    if (!m.reduced[d])
      idx.push_back(TAxis(int(d)));
    else if (a.keepdims)
      idx.push_back(TIndex(0));
  }
  while (int(idx.size()) < out.ndim()) idx.push_back(TIndex(0));  // all reduced: (1,)
  return idx;
}

// The input-shaped index of the elements of the current output slot at reduction point r
// (the backward ops: dx's axes on kept dimensions, r on reduced ones).
std::vector<TExpr> GroupIndex(const ReduceMap& m, const std::vector<TExpr>& r) {
  std::vector<TExpr> idx;
  size_t j = 0;
  for (size_t d = 0; d < m.reduced.size(); ++d)
    idx.push_back(m.reduced[d] ? r[j++] : TAxis(int(d)));
  return idx;
}

TExpr IsNaN(const TExpr& x) {
  return TBinary(TBinaryOp::kNE, x, x);
}

template <Reducer R>
std::vector<TExpr> ReduceCompute(const ComputeCtx& c) {
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t) || c.in_dtype(0) != t) return {};
  ReduceMap m = MapReduce(c.attrs<ReduceAttrs>(), c.in_shape(0));
  auto read = [&](const std::vector<TExpr>& r) { return c.Read(0, ReducedIndex(m, r)); };
  switch (R) {
    case Reducer::kSum:
      return {TReduce(TReduceOp::kSum, m.extents, read)};
    case Reducer::kMean:
      return {TReduce(TReduceOp::kSum, m.extents, read) / TConst(double(m.count), t)};
    case Reducer::kProd:
      return {TReduce(TReduceOp::kProd, m.extents, read)};
    case Reducer::kMax:
    case Reducer::kMin: {
      bool max = R == Reducer::kMax;
      TExpr v = TReduce(max ? TReduceOp::kMax : TReduceOp::kMin, m.extents, read);
      if (t != DType::kFloat64) return {v};
      // The reference starts from +-DBL_MAX, not +-inf.
      TExpr bound = TConst(
          max ? std::numeric_limits<double>::lowest() : std::numeric_limits<double>::max(), t);
      return {TSelect(TBinary(max ? TBinaryOp::kLT : TBinaryOp::kGT, v, bound), bound, v)};
    }
  }
  return {};
}

// Inputs (dy, data[, output]); the same formulas as ReduceBackwardKernel.
template <Reducer R>
std::vector<TExpr> ReduceBackwardCompute(const ComputeCtx& c) {
  DType t = c.out_dtype(0);
  for (int j = 0; j < c.num_in(); ++j)
    if (c.in_dtype(j) != t) return {};
  if (!IsComputeFloat(t)) return {};
  const auto& a = c.attrs<ReduceAttrs>();
  ReduceMap m = MapReduce(a, c.in_shape(1));
  std::vector<TExpr> slot = SlotIndex(m, a, c.in_shape(0));
  TExpr g = c.Read(0, slot), x = c.In(1);
  TExpr zero = TConst(0, t), one = TConst(1, t);
  switch (R) {
    case Reducer::kSum:
      return {g};
    case Reducer::kMean:
      return {g / TConst(m.count ? double(m.count) : 1.0, t)};
    case Reducer::kMax:
    case Reducer::kMin:
      return {TSelect(TBinary(TBinaryOp::kEQ, x, c.Read(2, slot)), g, zero)};
    case Reducer::kProd: {
      // The number of zeros of the group and the product of its other elements.
      auto at = [&](const std::vector<TExpr>& r) { return c.Read(1, GroupIndex(m, r)); };
      TExpr zeros = TReduce(TReduceOp::kSum, m.extents, [&](const std::vector<TExpr>& r) {
        return TSelect(TBinary(TBinaryOp::kEQ, at(r), zero), one, zero);
      });
      TExpr prod = TReduce(TReduceOp::kProd, m.extents, [&](const std::vector<TExpr>& r) {
        TExpr v = at(r);
        return TSelect(TBinary(TBinaryOp::kEQ, v, zero), one, v);
      });
      TExpr is_zero = TBinary(TBinaryOp::kEQ, x, zero);
      TExpr others =
          TSelect(TBinary(TBinaryOp::kEQ, zeros, zero), prod / x,
                  TSelect(TBinary(TBinaryOp::kAnd, TBinary(TBinaryOp::kEQ, zeros, one), is_zero),
                          prod, zero));
      return {g * others};
    }
  }
  return {};
}

// --- Backward of the reductions: (dy, data[, output]) -> d data. ---

template <Reducer R, class T>
void ReduceBackwardKernel(const KernelCtx& ctx) {
  const Tensor& x = ctx.in[1];
  const T* dy = ctx.in[0].data<T>();
  const T* xp = x.data<T>();
  T* dx = ctx.out[0].data<T>();
  std::vector<int64_t> os = OutputSlotStrides(ctx, x);
  // prod: per output slot, the number of zeros and the product of the other elements.
  std::vector<int64_t> zeros;
  std::vector<double> nonzero_prod;
  if constexpr (R == Reducer::kProd) {
    zeros.assign(size_t(ctx.in[0].size()), 0);
    nonzero_prod.assign(size_t(ctx.in[0].size()), 1.0);
    ForEachIndex<1>(x.shape(), {os}, [&](int64_t i, const std::array<int64_t, 1>& o) {
      double v = ToAcc(xp[i]);
      if (v == 0)
        ++zeros[size_t(o[0])];
      else
        nonzero_prod[size_t(o[0])] *= v;
    });
  }
  const double count = ctx.in[0].size() ? double(x.size()) / double(ctx.in[0].size()) : 1.0;
  ForEachIndex<1>(x.shape(), {os}, [&](int64_t i, const std::array<int64_t, 1>& o) {
    double g = ToAcc(dy[o[0]]), v = ToAcc(xp[i]), d = 0;
    if constexpr (R == Reducer::kSum) {
      d = g;
    } else if constexpr (R == Reducer::kMean) {
      d = g / count;
    } else if constexpr (R == Reducer::kProd) {
      int64_t z = zeros[size_t(o[0])];
      double p = nonzero_prod[size_t(o[0])];
      double others = z == 0 ? p / v : (z == 1 && v == 0 ? p : 0.0);
      d = g * others;
    } else {
      d = v == ToAcc(ctx.in[2].data<T>()[o[0]]) ? g : 0.0;
    }
    dx[i] = ConvertValue<T>(d);
  });
}

// d data has data's shape; dy (and the output, for max/min) the reduced shape.
void ReduceBackwardShape(ShapeInferCtx& ctx) {
  ctx.SetOut(0, ctx.in(1));
  ctx.SetIn(1, ctx.out(0));
  const Shape& data = ctx.in(1);
  if (!data.rank_known()) return;
  Shape reduced = ReduceOutShape(ctx, data);
  ctx.SetIn(0, reduced);
  if (ctx.num_in() > 2) ctx.SetIn(2, reduced);
}

template <Reducer R>
void RegisterReduce(OpRegistry& r, const char* name, const char* alias, const char* doc) {
  constexpr bool kUsesOutput = R == Reducer::kMax || R == Reducer::kMin;
  const std::string backward = StrCat("_backward_", name);
  OpDef& op = r.Register(name);
  if (alias) op.Alias(alias);
  op.Describe(doc)
      .SetAttrs<ReduceAttrs>()
      .InferShape(ReduceShape<R>)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kCommReduce)
      .Reference([](KernelCtx& ctx) {
        KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, (ReduceKernel<R, T>(ctx)));
      })
      .Compute(ReduceCompute<R>)
      .Gradient([backward](GradCtx& g) -> GradList {
        std::vector<Entry> in = {g.ograd(0), g.input(0)};
        if (kUsesOutput) in.push_back(g.output(0));
        return {g.EmitWithAttrs(backward, in)[0]};
      });

  r.Register(backward)
      .Describe(StrCat("gradient of ", name, ": d data from (d output, data",
                       kUsesOutput ? ", output)" : ")"))
      .SetAttrs<ReduceAttrs>()
      .Inputs(kUsesOutput ? std::vector<std::string>{"ograd", "data", "output"}
                          : std::vector<std::string>{"ograd", "data"})
      .InferShape(ReduceBackwardShape)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kBroadcast)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, (ReduceBackwardKernel<R, T>(ctx)));
      })
      .Compute(ReduceBackwardCompute<R>);
}

// --- argmax ---

struct ArgmaxAttrs {
  std::optional<int64_t> axis;
  bool keepdims = false;
  static void Describe(AttrSchema<ArgmaxAttrs>& s) {
    s.Field("axis", &ArgmaxAttrs::axis);
    s.Field("keepdims", &ArgmaxAttrs::keepdims);
  }
};

void ArgmaxShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<ArgmaxAttrs>();
  const Shape& in = ctx.in(0);
  if (!a.axis && !a.keepdims) {
    ctx.SetOut(0, Shape{1});
  }
  if (!in.rank_known()) return;
  if (in.ndim() == 0) ctx.Fail("input is 0-d; argmax needs rank >= 1");
  if (!a.axis) {
    if (in.NumElements() == 0)
      ctx.Fail(StrCat("input ", in.ToString(), " is empty: argmax of nothing is undefined"));
    ctx.SetOut(0, a.keepdims ? Shape(std::vector<int64_t>(size_t(in.ndim()), 1)) : Shape{1});
    return;
  }
  int axis = NormalizeAxis(ctx, *a.axis, in.ndim(), "axis");
  if (in.dim_known(axis) && in[axis] == 0)
    ctx.Fail(StrCat("input ", in.ToString(), " has no elements along axis ", axis,
                    ": argmax of nothing is undefined"));
  std::vector<int64_t> out;
  for (int i = 0; i < in.ndim(); ++i) {
    if (i != axis)
      out.push_back(in[i]);
    else if (a.keepdims)
      out.push_back(1);
  }
  if (out.empty()) out.push_back(1);  // MXNet 1.x: a 1-D input gives (1,)
  ctx.SetOut(0, Shape(out));
  // Backward: the kept axes.
  const Shape& o = ctx.out(0);
  if (in.ndim() == 1 || !o.rank_known()) return;
  std::vector<int64_t> dims = in.dims();
  for (int i = 0, k = 0; i < in.ndim(); ++i) {
    if (i == axis && !a.keepdims) continue;
    if (i != axis && dims[size_t(i)] == Shape::kUnknownDim) dims[size_t(i)] = o[k];
    ++k;
  }
  ctx.SetIn(0, Shape(dims));
}

template <class T>
void ArgmaxKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<ArgmaxAttrs>();
  const Tensor& in = ctx.in[0];
  int64_t outer = 1, len = in.size(), inner = 1;
  if (a.axis) {
    int nd = in.ndim();
    int axis = int(*a.axis < 0 ? *a.axis + nd : *a.axis);
    outer = NumElements(std::vector<int64_t>(in.shape().begin(), in.shape().begin() + axis));
    len = in.dim(axis);
    inner = NumElements(std::vector<int64_t>(in.shape().begin() + axis + 1, in.shape().end()));
  }
  const T* x = in.data<T>();
  T* y = ctx.out[0].data<T>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      double bv = ToAcc(x[o * len * inner + i]);
      for (int64_t k = 1; k < len && !std::isnan(bv); ++k) {
        double v = ToAcc(x[(o * len + k) * inner + i]);
        if (std::isnan(v) || v > bv) {
          bv = v;
          best = k;
        }
      }
      y[o * inner + i] = ConvertValue<T>(double(best));
    }
}

// The first maximum's index (a NaN counts as the maximum): the smallest flat position holding
// the NaN-propagating maximum, or a NaN.
std::vector<TExpr> ArgmaxCompute(const ComputeCtx& c) {
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t) || c.in_dtype(0) != t) return {};
  const auto& a = c.attrs<ArgmaxAttrs>();
  const Shape& in = c.in_shape(0);
  int nd = in.ndim();
  std::vector<int64_t> extents;
  int axis = -1;
  if (a.axis) {
    axis = int(*a.axis < 0 ? *a.axis + nd : *a.axis);
    extents = {in[axis]};
  } else {
    extents = in.dims();
  }
  auto index = [&](const std::vector<TExpr>& r) {
    if (!a.axis) return r;
    std::vector<TExpr> idx;
    int k = 0;
    for (int d = 0; d < nd; ++d) {
      if (d == axis) {
        idx.push_back(r[0]);
        if (a.keepdims) ++k;
      } else {
        idx.push_back(TAxis(k++));
      }
    }
    return idx;
  };
  auto flat = [&](const std::vector<TExpr>& r) {
    TExpr f = TIndex(0);
    for (size_t d = 0; d < r.size(); ++d) f = f * TIndex(extents[d]) + r[d];
    return f;
  };
  int64_t len = 1;
  for (int64_t e : extents) len *= e;
  TExpr max = TReduce(TReduceOp::kMax, extents,
                      [&](const std::vector<TExpr>& r) { return c.Read(0, index(r)); });
  TExpr arg = TReduce(TReduceOp::kMin, extents, [&](const std::vector<TExpr>& r) {
    TExpr v = c.Read(0, index(r));
    return TSelect(TBinary(TBinaryOp::kOr, TBinary(TBinaryOp::kEQ, v, max), IsNaN(v)), flat(r),
                   TIndex(len));
  });
  return {TCast(t, arg)};
}

}  // namespace

void RegisterReduceOps(OpRegistry& r) {
  RegisterReduce<Reducer::kSum>(r, "sum", "sum_axis", "sum over axes (empty sum: 0)");
  RegisterReduce<Reducer::kMean>(r, "mean", nullptr, "mean over axes (empty mean: nan)");
  RegisterReduce<Reducer::kMax>(r, "max", "max_axis",
                                "maximum over axes (nan propagates; empty input: error)");
  RegisterReduce<Reducer::kMin>(r, "min", "min_axis",
                                "minimum over axes (nan propagates; empty input: error)");
  RegisterReduce<Reducer::kProd>(r, "prod", nullptr, "product over axes (empty product: 1)");

  r.Register("argmax")
      .Describe(
          "index of the maximum along axis (None: of the flattened input), in the input's "
          "floating dtype; first maximum wins, nan counts as the maximum")
      .SetAttrs<ArgmaxAttrs>()
      .InferShape(ArgmaxShape)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kCommReduce)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, ArgmaxKernel<T>(ctx));
      })
      .Compute(ArgmaxCompute);
}

}  // namespace kiln::ops
