// shape.cpp - ops that move elements without computing: Flatten, Reshape, transpose,
// expand_dims, squeeze, broadcast_to, and one_hot (which writes on/off values by index).
//
// Flatten, Reshape, expand_dims and squeeze keep the row-major order of elements, so their
// output may share the input's storage (in-place (0, 0)); their kernels copy only when the
// buffers differ. Kernels move bytes and so serve every dtype.
//
// Reshape's `shape` takes MXNet's special values (documented on ReshapeDims below) and
// `reverse`; the deprecated `target_shape` / `keep_highest` are accepted so old MXNet JSON loads.
//
// Gradients: Flatten, Reshape, expand_dims and squeeze give reshape_like(dy, data) (the
// input's shape is known only after inference); transpose gives dy transposed by the inverse
// permutation; broadcast_to sums dy back with _reduce_sum_like(dy, data). one_hot has none: its
// input holds indices, and differentiating through it is reported as an error, as for argmax.
#include <algorithm>

#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

const int64_t kU = Shape::kUnknownDim;

// --- Flatten: (d0, d1, ..., dk) -> (d0, d1*...*dk). ---

void FlattenShape(ShapeInferCtx& ctx) {
  const Shape& in = ctx.in(0);
  if (in.rank_known()) {
    if (in.ndim() == 0) ctx.Fail("input () is 0-d; Flatten needs rank >= 1");
    ctx.SetOut(0, Shape{in[0], DimProduct(in.dims(), 1, size_t(in.ndim()))});
  } else {
    ctx.SetOut(0, Shape::UnknownDims(2));
  }
  const Shape& o = ctx.out(0);
  if (!in.rank_known()) return;
  // Backward: the first axis, and one unknown trailing extent from the product.
  std::vector<int64_t> dims = in.dims();
  if (dims[0] == kU) dims[0] = o[0];
  int unknown = -1, n_unknown = 0;
  int64_t known = 1;
  for (int i = 1; i < in.ndim(); ++i) {
    if (dims[size_t(i)] == kU) {
      unknown = i;
      ++n_unknown;
    } else {
      known *= dims[size_t(i)];
    }
  }
  if (n_unknown == 1 && o.dim_known(1) && known > 0 && o[1] % known == 0)
    dims[size_t(unknown)] = o[1] / known;
  ctx.SetIn(0, Shape(dims));
}

// --- Reshape ---

struct ReshapeAttrs {
  std::vector<int64_t> shape;
  bool reverse = false;
  std::vector<int64_t> target_shape;  // deprecated MXNet form: 0 marks the one inferred dim
  bool keep_highest = false;          // deprecated: keep the input's first dim
  static void Describe(AttrSchema<ReshapeAttrs>& s) {
    s.Field("shape", &ReshapeAttrs::shape).Min(-4);
    s.Field("reverse", &ReshapeAttrs::reverse);
    s.Field("target_shape", &ReshapeAttrs::target_shape).Min(0);
    s.Field("keep_highest", &ReshapeAttrs::keep_highest);
    s.Check([](const ReshapeAttrs& a) -> std::string {
      if (a.shape.empty() && a.target_shape.empty()) return "shape must be given";
      int infer = 0;
      for (size_t i = 0; i < a.shape.size(); ++i) {
        if (a.shape[i] == -4) {
          if (i + 2 >= a.shape.size())
            return StrCat("shape = ", attr_text::Print(a.shape), ": -4 at position ", i,
                          " must be followed by the two extents of the split");
          int64_t d1 = a.shape[i + 1], d2 = a.shape[i + 2];
          if (d1 < -1 || d2 < -1 || (d1 == -1 && d2 == -1))
            return StrCat("shape = ", attr_text::Print(a.shape), ": the split after -4 at ",
                          "position ", i, " is (", d1, ", ", d2,
                          "); each must be >= 0 or -1, and at most one -1");
          i += 2;
        } else if (a.shape[i] == -1 && ++infer > 1) {
          return StrCat("shape = ", attr_text::Print(a.shape), " has more than one -1");
        }
      }
      return "";
    });
  }
};

// MXNet's special values, applied left to right to the input's extents (or right to left with
// reverse):
//   d > 0  the extent d (consumes one input axis)
//   0      copy the input axis's extent
//   -1     inferred from the remaining size; at most one (consumes one input axis)
//   -2     copy all remaining input axes
//   -3     merge two input axes into their product
//   -4 a b split one input axis into (a, b); one of a, b may be -1
// Unknown input extents give unknown output extents. Returns the output dims.
std::vector<int64_t> ReshapeDims(const ShapeInferCtx& ctx, const ReshapeAttrs& a, const Shape& in) {
  struct Tok {
    int64_t code, d1, d2;
  };
  std::vector<Tok> toks;
  for (size_t i = 0; i < a.shape.size(); ++i) {
    if (a.shape[i] == -4) {
      toks.push_back({-4, a.shape[i + 1], a.shape[i + 2]});
      i += 2;
    } else {
      toks.push_back({a.shape[i], 0, 0});
    }
  }
  std::vector<int64_t> dims = in.dims();
  if (a.reverse) {
    // Reversing the token list keeps "-4 a b" as one token, with its halves swapped.
    std::reverse(dims.begin(), dims.end());
    std::reverse(toks.begin(), toks.end());
    for (Tok& t : toks)
      if (t.code == -4) std::swap(t.d1, t.d2);
  }
  const std::string spec = StrCat("shape = ", attr_text::Print(a.shape),
                                  a.reverse ? " with reverse" : "", " and input ", in.ToString());
  const size_t n = dims.size();
  size_t src = 0;
  int inferred = -1;
  std::vector<int64_t> out;
  for (const Tok& t : toks) {
    if (t.code > 0) {
      out.push_back(t.code);
      ++src;
    } else if (t.code == 0) {
      if (src >= n) ctx.Fail(StrCat(spec, ": 0 copies input axis ", src, ", which does not exist"));
      out.push_back(dims[src++]);
    } else if (t.code == -1) {
      inferred = int(out.size());
      out.push_back(kU);
      ++src;
    } else if (t.code == -2) {
      while (src < n) out.push_back(dims[src++]);
    } else if (t.code == -3) {
      if (src + 1 >= n)
        ctx.Fail(StrCat(spec, ": -3 merges input axes ", src, " and ", src + 1,
                        ", which do not both exist"));
      int64_t d1 = dims[src], d2 = dims[src + 1];
      out.push_back(d1 == kU || d2 == kU ? kU : d1 * d2);
      src += 2;
    } else {  // -4
      if (src >= n)
        ctx.Fail(StrCat(spec, ": -4 splits input axis ", src, ", which does not exist"));
      int64_t d0 = dims[src++], d1 = t.d1, d2 = t.d2;
      if (d0 != kU) {
        if (d1 == -1) {
          if (d2 == 0 || d0 % d2 != 0)
            ctx.Fail(StrCat(spec, ": cannot split ", d0, " into (-1, ", d2, ")"));
          d1 = d0 / d2;
        } else if (d2 == -1) {
          if (d1 == 0 || d0 % d1 != 0)
            ctx.Fail(StrCat(spec, ": cannot split ", d0, " into (", d1, ", -1)"));
          d2 = d0 / d1;
        } else if (d1 * d2 != d0) {
          ctx.Fail(StrCat(spec, ": split (", d1, ", ", d2, ") does not multiply to ", d0));
        }
      }
      out.push_back(d1 == -1 ? kU : d1);
      out.push_back(d2 == -1 ? kU : d2);
    }
  }
  if (inferred >= 0 && in.IsFullyKnown()) {
    int64_t rest = 1;
    bool rest_known = true;
    for (size_t i = 0; i < out.size(); ++i)
      if (int(i) != inferred) {
        if (out[i] == kU) rest_known = false;
        if (out[i] != kU) rest *= out[i];
      }
    if (rest_known) {
      int64_t size = in.NumElements();
      if (rest == 0 || size % rest != 0)
        ctx.Fail(StrCat(spec, ": cannot infer -1: ", size, " elements do not divide into parts of ",
                        rest));
      out[size_t(inferred)] = size / rest;
    }
  }
  if (a.reverse) std::reverse(out.begin(), out.end());
  return out;
}

// The deprecated target_shape: explicit extents, one 0 inferred; keep_highest keeps dim 0.
std::vector<int64_t> TargetShapeDims(const ReshapeAttrs& a, const Shape& in) {
  std::vector<int64_t> out = a.target_shape;
  size_t start = 0;
  if (a.keep_highest) {
    out[0] = in.ndim() > 0 ? in[0] : kU;
    start = 1;
  }
  int zero = -1, zeros = 0;
  int64_t rest = 1;
  // The kept first extent counts in the product (MXNet divides by oshape.Size()).
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0 && i >= start) {
      zero = int(i);
      ++zeros;
    } else if (out[i] == kU) {
      rest = kU;
    } else if (rest != kU) {
      rest *= out[i];
    }
  }
  if (zeros == 1) {
    int64_t size = in.rank_known() ? in.NumElements() : -1;
    out[size_t(zero)] = (size < 0 || rest == kU || rest == 0) ? kU : size / rest;
  }
  return out;
}

void ReshapeShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<ReshapeAttrs>();
  const Shape& in = ctx.in(0);
  std::vector<int64_t> out;
  if (!a.shape.empty()) {
    if (in.rank_known()) {
      out = ReshapeDims(ctx, a, in);
    } else {
      // Without the input's rank only plain extents and -1 can be placed.
      for (int64_t d : a.shape) {
        if (d < -1) return;
        if (d == 0) return;
        out.push_back(d == -1 ? kU : d);
      }
    }
  } else {
    if (!in.rank_known() && a.keep_highest) return;
    out = TargetShapeDims(a, in);
  }
  int64_t in_size = in.rank_known() ? in.NumElements() : -1;
  Shape os(out);
  if (in_size >= 0 && os.IsFullyKnown() && os.NumElements() != in_size)
    ctx.Fail(StrCat("cannot reshape ", in.ToString(), " (", in_size, " elements) to ",
                    os.ToString(), " (", os.NumElements(), " elements) given shape = ",
                    attr_text::Print(a.shape.empty() ? a.target_shape : a.shape)));
  ctx.SetOut(0, os);
  // Backward: a fully known output fixes one unknown input extent.
  const Shape& o = ctx.out(0);
  if (!o.IsFullyKnown() || !in.rank_known()) return;
  std::vector<int64_t> dims = in.dims();
  int unknown = -1, n_unknown = 0;
  int64_t known = 1;
  for (int i = 0; i < in.ndim(); ++i) {
    if (dims[size_t(i)] == kU) {
      unknown = i;
      ++n_unknown;
    } else {
      known *= dims[size_t(i)];
    }
  }
  if (n_unknown != 1 || known == 0) return;
  if (o.NumElements() % known != 0)
    ctx.Fail(StrCat("output ", o.ToString(), " has ", o.NumElements(),
                    " elements, which no extent completes input ", in.ToString(), " to"));
  dims[size_t(unknown)] = o.NumElements() / known;
  ctx.SetIn(0, Shape(dims));
}

void CopyKernel(KernelCtx& ctx) {
  CopyAllBytes(ctx.in[0], ctx.out[0]);
}

// --- transpose ---

struct TransposeAttrs {
  std::vector<int64_t> axes;  // empty: reverse the axes
  static void Describe(AttrSchema<TransposeAttrs>& s) { s.Field("axes", &TransposeAttrs::axes); }
};

std::vector<int> Permutation(const ShapeInferCtx& ctx, int ndim) {
  const auto& axes = ctx.attrs<TransposeAttrs>().axes;
  if (axes.empty()) {
    std::vector<int> p;
    for (int i = ndim - 1; i >= 0; --i) p.push_back(i);
    return p;
  }
  if (int(axes.size()) != ndim)
    ctx.Fail(StrCat("axes = ", attr_text::Print(axes), " has ", axes.size(),
                    " entries but the input has rank ", ndim));
  return NormalizeAxisList(ctx, axes, ndim, "axes");
}

// out[i] = in[axes[i]], both ways.
void TransposeShape(ShapeInferCtx& ctx) {
  const auto& axes = ctx.attrs<TransposeAttrs>().axes;
  int r = ctx.in(0).rank_known()    ? ctx.in(0).ndim()
          : ctx.out(0).rank_known() ? ctx.out(0).ndim()
          : !axes.empty()           ? int(axes.size())
                                    : -1;
  if (r < 0) return;
  std::vector<int> p = Permutation(ctx, r);
  std::vector<int64_t> in =
      ctx.in(0).rank_known() ? ctx.in(0).dims() : std::vector<int64_t>(size_t(r), kU);
  std::vector<int64_t> out(size_t(r), kU);
  const Shape& o = ctx.out(0);
  for (int i = 0; i < r; ++i) {
    out[size_t(i)] = in[size_t(p[size_t(i)])];
    if (out[size_t(i)] == kU && o.rank_known() && o.ndim() == r) out[size_t(i)] = o[i];
    in[size_t(p[size_t(i)])] = out[size_t(i)];
  }
  ctx.SetIn(0, Shape(in));
  ctx.SetOut(0, Shape(out));
}

void TransposeKernel(KernelCtx& ctx) {
  const Tensor& in = ctx.in[0];
  const auto& axes = ctx.Attr<TransposeAttrs>().axes;
  int r = in.ndim();
  std::vector<int64_t> is = Strides(in.shape());
  std::vector<int64_t> s(static_cast<size_t>(r));
  for (int i = 0; i < r; ++i) {
    int64_t ax = axes.empty() ? r - 1 - i : axes[size_t(i)];
    if (ax < 0) ax += r;
    s[size_t(i)] = is[size_t(ax)];
  }
  StridedCopy(in, ctx.out[0], 0, s);
}

// --- expand_dims ---

struct ExpandDimsAttrs {
  int64_t axis = 0;
  static void Describe(AttrSchema<ExpandDimsAttrs>& s) {
    s.Field("axis", &ExpandDimsAttrs::axis).Required();
  }
};

// A new axis of extent 1 at `axis` in [-ndim-1, ndim] (negative counts from the output's end).
void ExpandDimsShape(ShapeInferCtx& ctx) {
  int64_t axis = ctx.attrs<ExpandDimsAttrs>().axis;
  const Shape& in = ctx.in(0);
  const Shape& o = ctx.out(0);
  int n = in.rank_known() ? in.ndim() : o.rank_known() ? o.ndim() - 1 : -1;
  if (n < 0) return;
  if (axis < -n - 1 || axis > n)
    ctx.Fail(StrCat("axis = ", axis, " is out of range for input ", in.ToString(), " (rank ", n,
                    "; allowed ", -n - 1, " to ", n, ")"));
  size_t at = size_t(axis < 0 ? axis + n + 1 : axis);
  std::vector<int64_t> dims = in.rank_known() ? in.dims() : std::vector<int64_t>(size_t(n), kU);
  std::vector<int64_t> out = dims;
  out.insert(out.begin() + long(at), 1);
  ctx.SetOut(0, Shape(out));
  const Shape& ob = ctx.out(0);
  std::vector<int64_t> back = ob.dims();
  back.erase(back.begin() + long(at));
  ctx.SetIn(0, Shape(back));
}

// --- squeeze ---

struct SqueezeAttrs {
  std::optional<std::vector<int64_t>> axis;  // None: every axis of extent 1
  static void Describe(AttrSchema<SqueezeAttrs>& s) { s.Field("axis", &SqueezeAttrs::axis); }
};

// Removes axes of extent 1; removing every axis gives (1,), as MXNet.
void SqueezeShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<SqueezeAttrs>();
  const Shape& in = ctx.in(0);
  if (!in.rank_known()) return;
  std::vector<bool> drop(size_t(in.ndim()), false);
  std::vector<int64_t> dims = in.dims();
  if (!a.axis) {
    for (int i = 0; i < in.ndim(); ++i) {
      if (dims[size_t(i)] == kU) return;  // cannot tell whether it is 1
      drop[size_t(i)] = dims[size_t(i)] == 1;
    }
  } else {
    for (int ax : NormalizeAxisList(ctx, *a.axis, in.ndim(), "axis")) {
      if (dims[size_t(ax)] != kU && dims[size_t(ax)] != 1)
        ctx.Fail(StrCat("axis ", ax, " of input ", in.ToString(), " has ", dims[size_t(ax)],
                        " elements; only axes of extent 1 can be squeezed"));
      dims[size_t(ax)] = 1;
      drop[size_t(ax)] = true;
    }
  }
  std::vector<int64_t> out;
  for (int i = 0; i < in.ndim(); ++i)
    if (!drop[size_t(i)]) out.push_back(dims[size_t(i)]);
  bool all = out.empty();
  if (all) out.push_back(1);
  ctx.SetOut(0, Shape(out));
  if (all) {
    ctx.SetIn(0, Shape(dims));
    return;
  }
  const Shape& o = ctx.out(0);
  for (int i = 0, k = 0; i < in.ndim(); ++i)
    if (!drop[size_t(i)]) dims[size_t(i)] = o[k++];
  ctx.SetIn(0, Shape(dims));
}

// --- broadcast_to ---

struct BroadcastToAttrs {
  std::vector<int64_t> shape;
  static void Describe(AttrSchema<BroadcastToAttrs>& s) {
    s.Field("shape", &BroadcastToAttrs::shape).Required().Min(0);
  }
};

// Same rank as the input (MXNet); each input extent is 1 or the target; 0 keeps the input's.
void BroadcastToShape(ShapeInferCtx& ctx) {
  const auto& target = ctx.attrs<BroadcastToAttrs>().shape;
  const int n = int(target.size());
  const Shape& in = ctx.in(0);
  if (in.rank_known() && in.ndim() != n)
    ctx.Fail(StrCat("input ", in.ToString(), " has rank ", in.ndim(), " but shape = ",
                    attr_text::Print(target), " has rank ", n, "; broadcast_to keeps the rank"));
  std::vector<int64_t> dims = in.rank_known() ? in.dims() : std::vector<int64_t>(size_t(n), kU);
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    int64_t t = target[size_t(i)];
    if (t == 0) {
      out[size_t(i)] = dims[size_t(i)];
    } else {
      if (dims[size_t(i)] != kU && dims[size_t(i)] != 1 && dims[size_t(i)] != t)
        ctx.Fail(StrCat("input ", in.ToString(),
                        " cannot be broadcast to shape = ", attr_text::Print(target), ": axis ", i,
                        " has ", dims[size_t(i)], " elements, not 1 or ", t));
      out[size_t(i)] = t;
    }
  }
  ctx.SetOut(0, Shape(out));
  const Shape& o = ctx.out(0);
  for (int i = 0; i < n; ++i)
    if (target[size_t(i)] == 0) dims[size_t(i)] = o[i];
  ctx.SetIn(0, Shape(dims));
}

void BroadcastToKernel(KernelCtx& ctx) {
  StridedCopy(ctx.in[0], ctx.out[0], 0, BroadcastStrides(ctx.in[0].shape(), ctx.out[0].ndim()));
}

// --- one_hot ---

struct OneHotAttrs {
  int64_t depth = 0;
  double on_value = 1;
  double off_value = 0;
  DType dtype = DType::kFloat32;
  static void Describe(AttrSchema<OneHotAttrs>& s) {
    s.Field("depth", &OneHotAttrs::depth).Required().Min(1);
    s.Field("on_value", &OneHotAttrs::on_value);
    s.Field("off_value", &OneHotAttrs::off_value);
    s.Enum("dtype", &OneHotAttrs::dtype, DTypeEnumNames());
  }
};

// indices (d...) -> (d..., depth).
void OneHotShape(ShapeInferCtx& ctx) {
  int64_t depth = ctx.attrs<OneHotAttrs>().depth;
  const Shape& in = ctx.in(0);
  if (in.rank_known()) {
    std::vector<int64_t> out = in.dims();
    out.push_back(depth);
    ctx.SetOut(0, Shape(out), StrCat("indices ", in.ToString(), " then depth = ", depth));
  }
  const Shape& o = ctx.out(0);
  if (o.rank_known()) {
    if (o.ndim() == 0 || (o.dim_known(o.ndim() - 1) && o[o.ndim() - 1] != depth))
      ctx.Fail(StrCat("output ", o.ToString(), " must end in depth = ", depth));
    ctx.SetIn(0, Shape(std::vector<int64_t>(o.dims().begin(), o.dims().end() - 1)));
  }
}

void OneHotType(TypeInferCtx& ctx) {
  ctx.SetOut(0, ctx.attrs<OneHotAttrs>().dtype, "one_hot's dtype attribute");
}

// Indices of any dtype, truncated toward zero; an index outside [0, depth) (or nan) gives a
// row of off_value, as MXNet.
void OneHotKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<OneHotAttrs>();
  std::vector<double> idx = ctx.in[0].ToDoubles();
  KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, {
    T* y = ctx.out[0].data<T>();
    const T on = ConvertValue<T>(a.on_value), off = ConvertValue<T>(a.off_value);
    for (size_t i = 0; i < idx.size(); ++i) {
      double t = std::trunc(idx[i]);
      for (int64_t d = 0; d < a.depth; ++d)
        y[int64_t(i) * a.depth + d] = (t >= 0 && t < double(a.depth) && int64_t(t) == d) ? on : off;
    }
  });
}

// --- Compute definitions (kiln/ir/compute.h): every dtype, bit for bit. ---

// Output axis i reads input axis axes[i].
std::vector<TExpr> TransposeCompute(const ComputeCtx& c) {
  const auto& axes = c.attrs<TransposeAttrs>().axes;
  int r = c.in_shape(0).ndim();
  std::vector<TExpr> idx(static_cast<size_t>(r));
  for (int i = 0; i < r; ++i) {
    int64_t ax = axes.empty() ? r - 1 - i : axes[size_t(i)];
    idx[size_t(ax < 0 ? ax + r : ax)] = TAxis(i);
  }
  return {c.Read(0, idx)};
}

// on_value where trunc(index) equals the last output axis, off_value elsewhere (an index
// outside [0, depth), NaN included, matches no position).
std::vector<TExpr> OneHotCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<OneHotAttrs>();
  std::vector<TExpr> axes = c.Axes();
  TExpr pos = axes.back();
  axes.pop_back();
  TExpr x = Widen(c.Read(0, axes));
  TExpr hit;
  if (IsComputeInt(x->dtype)) {
    // Indices compare exactly: only values in [0, depth) can equal an axis position.
    hit = TBinary(TBinaryOp::kEQ, TCast(DType::kInt64, x), pos);
  } else {
    // trunc(v) lies in [0, depth) exactly when -1 < v < depth; then the saturating cast is
    // trunc(v). Compared in float64 so that depth is exact.
    TExpr v = TCast(DType::kFloat64, x);
    TExpr in_range = TBinary(TBinaryOp::kAnd, TBinary(TBinaryOp::kGT, v, TConst(-1, v->dtype)),
                             TBinary(TBinaryOp::kLT, v, TConst(double(a.depth), v->dtype)));
    hit = TBinary(TBinaryOp::kAnd, in_range, TBinary(TBinaryOp::kEQ, TCast(DType::kInt64, v), pos));
  }
  DType t = c.out_dtype(0);
  return {TSelect(hit, ConstOf(a.on_value, t), ConstOf(a.off_value, t))};
}

// --- Gradients ---

// Elements keep their order, so dy only takes the input's shape back.
GradList ReshapeLikeGrad(GradCtx& g) {
  return {g.Emit1("reshape_like", {g.ograd(0), g.input(0)})};
}

// Output axis i is input axis p[i], so dy's axis j goes back to position p[j]: transposing dy
// by q with q[p[i]] = i. The reversal (empty axes) is its own inverse.
GradList TransposeGrad(GradCtx& g) {
  const auto& axes = g.attrs<TransposeAttrs>().axes;
  const int64_t n = int64_t(axes.size());
  std::vector<int64_t> inverse(axes.size(), -1);
  for (int64_t i = 0; i < n; ++i) {
    int64_t ax = axes[size_t(i)] < 0 ? axes[size_t(i)] + n : axes[size_t(i)];
    if (ax < 0 || ax >= n || inverse[size_t(ax)] >= 0)
      g.Fail(StrCat("axes = ", attr_text::Print(axes), " is not a permutation"));
    inverse[size_t(ax)] = i;
  }
  return {g.Emit1("transpose", {g.ograd(0)}, {{"axes", attr_text::Print(inverse)}})};
}

}  // namespace

void RegisterShapeOps(OpRegistry& r) {
  r.Register("Flatten")
      .Alias("flatten")
      .Describe("(d0, d1, ..., dk) -> (d0, d1*...*dk); a 1-D input becomes (d0, 1)")
      .SetAttrs<NoAttrs>()
      .InferShape(FlattenShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Inplace(InplaceIdentity)
      .Reference(CopyKernel)
      .Compute(ReshapeCompute())
      .Gradient(ReshapeLikeGrad);

  r.Register("Reshape")
      .Alias("reshape")
      .Describe(
          "same elements, new shape; shape takes MXNet's special values 0 (copy), -1 (infer), "
          "-2 (copy the rest), -3 (merge two), -4 a b (split one); reverse applies them from "
          "the right")
      .SetAttrs<ReshapeAttrs>()
      .InferShape(ReshapeShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Inplace(InplaceIdentity)
      .Reference(CopyKernel)
      .Compute(ReshapeCompute())
      .Gradient(ReshapeLikeGrad);

  r.Register("transpose")
      .Describe("permutes axes: output axis i is input axis axes[i]; empty axes reverse them")
      .SetAttrs<TransposeAttrs>()
      .InferShape(TransposeShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Reference(TransposeKernel)
      .Compute(TransposeCompute)
      .Gradient(TransposeGrad);

  r.Register("expand_dims")
      .Describe("inserts an axis of extent 1 at axis")
      .SetAttrs<ExpandDimsAttrs>()
      .InferShape(ExpandDimsShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Inplace(InplaceIdentity)
      .Reference(CopyKernel)
      .Compute(ReshapeCompute())
      .Gradient(ReshapeLikeGrad);

  r.Register("squeeze")
      .Describe("removes axes of extent 1 (the listed ones, or all); all removed gives (1,)")
      .SetAttrs<SqueezeAttrs>()
      .InferShape(SqueezeShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Inplace(InplaceIdentity)
      .Reference(CopyKernel)
      .Compute(ReshapeCompute())
      .Gradient(ReshapeLikeGrad);

  r.Register("broadcast_to")
      .Describe("repeats axes of extent 1 to the target shape (same rank; 0 keeps an extent)")
      .SetAttrs<BroadcastToAttrs>()
      .InferShape(BroadcastToShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kBroadcast)
      .Reference(BroadcastToKernel)
      .Compute([](const ComputeCtx& c) -> std::vector<TExpr> {
        return {c.Read(0, c.BroadcastIndex(0))};
      })
      .Gradient([](GradCtx& g) -> GradList {
        return {g.Emit1("_reduce_sum_like", {g.ograd(0), g.input(0)})};
      });

  r.Register("one_hot")
      .Describe(
          "indices (d...) -> (d..., depth): on_value at the index, off_value elsewhere (a row "
          "of off_value for an index outside [0, depth))")
      .SetAttrs<OneHotAttrs>()
      .Inputs({"indices"})
      .InferShape(OneHotShape)
      .InferType(OneHotType)
      .Pattern(FusionPattern::kInjective)
      .Reference(OneHotKernel)
      .Compute(OneHotCompute);
}

}  // namespace kiln::ops
