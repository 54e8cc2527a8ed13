// slice.cpp - joining and cutting along axes: Concat, SliceChannel, slice, slice_axis.
//
// slice follows Python's slicing on each axis given in begin/end (MXNet's GetIndexRange
// computes the same): None is the default end for the step's direction, negative indices
// count from the end, out-of-range indices clamp, step may be negative but not 0. Axes past
// len(begin) are kept whole. slice_axis is stricter, as MXNet's: begin and end (None = the
// end) must lie in the axis after adding its extent to negatives, and begin < end.
// Kernels move bytes, so every dtype is served.
//
// Gradients: Concat's inputs get their pieces of dy (_backward_Concat, which reads the inputs
// for their extents along dim); SliceChannel's input gets the Concat of its outputs' gradients
// (zeros for outputs no gradient reaches), with the split axis put back first when
// squeeze_axis removed it; slice and slice_axis scatter dy into zeros of the input's shape
// (_backward_slice, _backward_slice_axis).
#include <algorithm>
#include <cstring>

#include "kiln/ir/grad.h"
#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

const int64_t kU = Shape::kUnknownDim;
// Bound on Concat's inputs and SliceChannel's outputs, so that a hostile model cannot make
// the op's name lists allocate billions of strings.
const double kMaxVariadic = 65536;

// --- Concat ---

struct ConcatAttrs {
  int64_t num_args = 1;
  int64_t dim = 1;
  static void Describe(AttrSchema<ConcatAttrs>& s) {
    s.Field("num_args", &ConcatAttrs::num_args).Required().Min(1).Max(kMaxVariadic);
    s.Field("dim", &ConcatAttrs::dim);
  }
};

// Every input has the output's extents except along dim, where the output has their sum.
void ConcatShape(ShapeInferCtx& ctx) {
  const int n = ctx.num_in();
  int r = -1;
  for (int i = 0; i <= n; ++i) {
    const Shape& s = i < n ? ctx.in(i) : ctx.out(0);
    if (!s.rank_known()) continue;
    if (r >= 0 && s.ndim() != r) {
      std::string all;
      for (int j = 0; j < n; ++j)
        all += StrCat(j ? ", " : "", ctx.InName(j), " ", ctx.in(j).ToString());
      ctx.Fail(StrCat("inputs of different ranks: ", all));
    }
    r = s.ndim();
  }
  if (r < 0) return;
  if (r == 0) ctx.Fail("inputs are 0-d; Concat needs rank >= 1");
  int axis = NormalizeAxis(ctx, ctx.attrs<ConcatAttrs>().dim, r, "dim");
  auto dims = [&](const Shape& s) {
    return s.rank_known() ? s.dims() : std::vector<int64_t>(size_t(r), kU);
  };
  std::vector<int64_t> out = dims(ctx.out(0));
  std::vector<std::vector<int64_t>> ins;
  for (int i = 0; i < n; ++i) ins.push_back(dims(ctx.in(i)));
  // The other axes agree everywhere.
  for (int d = 0; d < r; ++d) {
    if (d == axis) continue;
    int64_t v = out[size_t(d)];
    int from = -1;
    for (int i = 0; i < n; ++i) {
      int64_t x = ins[size_t(i)][size_t(d)];
      if (x == kU) continue;
      if (v != kU && x != v)
        ctx.Fail(StrCat(ctx.InName(i), " ", ctx.in(i).ToString(), " has ", x, " elements on axis ",
                        d, " but ",
                        from >= 0 ? StrCat(ctx.InName(from), " ", ctx.in(from).ToString())
                                  : StrCat("the output ", ctx.out(0).ToString()),
                        " has ", v, " (only axis dim = ", axis, " may differ)"));
      v = x;
      from = i;
    }
    out[size_t(d)] = v;
    for (auto& in : ins) in[size_t(d)] = v;
  }
  // Along the axis: the sum, or one missing part from the total.
  int64_t sum = 0;
  int unknown = -1, n_unknown = 0;
  for (int i = 0; i < n; ++i) {
    int64_t x = ins[size_t(i)][size_t(axis)];
    if (x == kU) {
      unknown = i;
      ++n_unknown;
    } else {
      sum += x;
    }
  }
  int64_t total = out[size_t(axis)];
  if (n_unknown == 0) {
    if (total != kU && total != sum)
      ctx.Fail(StrCat("inputs sum to ", sum, " along dim = ", axis, " but the output ",
                      ctx.out(0).ToString(), " has ", total));
    out[size_t(axis)] = sum;
  } else if (n_unknown == 1 && total != kU) {
    if (total < sum)
      ctx.Fail(StrCat("the output ", ctx.out(0).ToString(), " has ", total, " along dim = ", axis,
                      " but the known inputs already have ", sum));
    ins[size_t(unknown)][size_t(axis)] = total - sum;
  }
  for (int i = 0; i < n; ++i) ctx.SetIn(i, Shape(ins[size_t(i)]));
  ctx.SetOut(0, Shape(out));
}

// Copies blocks: the output is `outer` rows, each the inputs' rows side by side.
void ConcatKernel(KernelCtx& ctx) {
  const Tensor& out = ctx.out[0];
  int r = out.ndim();
  int64_t d = ctx.Attr<ConcatAttrs>().dim;
  int axis = int(d < 0 ? d + r : d);
  size_t es = DTypeSize(out.dtype());
  int64_t outer =
      NumElements(std::vector<int64_t>(out.shape().begin(), out.shape().begin() + axis));
  int64_t inner =
      NumElements(std::vector<int64_t>(out.shape().begin() + axis + 1, out.shape().end()));
  size_t out_row = size_t(out.dim(axis) * inner) * es;
  char* dst = static_cast<char*>(out.raw_data());
  size_t at = 0;
  for (const Tensor& in : ctx.in) {
    size_t row = size_t(in.dim(axis) * inner) * es;
    const char* src = static_cast<const char*>(in.raw_data());
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(dst + size_t(o) * out_row + at, src + size_t(o) * row, row);
    at += row;
  }
}

// --- SliceChannel ---

struct SliceChannelAttrs {
  int64_t num_outputs = 1;
  int64_t axis = 1;
  bool squeeze_axis = false;
  static void Describe(AttrSchema<SliceChannelAttrs>& s) {
    s.Field("num_outputs", &SliceChannelAttrs::num_outputs).Required().Min(1).Max(kMaxVariadic);
    s.Field("axis", &SliceChannelAttrs::axis);
    s.Field("squeeze_axis", &SliceChannelAttrs::squeeze_axis);
  }
};

// The input's axis splits into num_outputs equal pieces (removed with squeeze_axis, where each
// piece must have extent 1; removing the only axis gives (1,), as MXNet 1.x has no 0-d).
void SliceChannelShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<SliceChannelAttrs>();
  const Shape& in = ctx.in(0);
  if (!in.rank_known()) {
    if (a.squeeze_axis) return;  // the input's rank is ambiguous for a (1,) output
    for (int k = 0; k < ctx.num_out(); ++k)
      if (ctx.out(k).rank_known()) {
        ctx.SetIn(0, Shape::UnknownDims(ctx.out(k).ndim()));
        break;
      }
    if (!ctx.in(0).rank_known()) return;
  }
  const Shape& x = ctx.in(0);
  if (x.ndim() == 0) ctx.Fail("input () is 0-d; SliceChannel needs rank >= 1");
  int axis = NormalizeAxis(ctx, a.axis, x.ndim(), "axis");
  int64_t n = a.num_outputs;
  std::vector<int64_t> dims = x.dims();
  int64_t piece = kU;
  if (dims[size_t(axis)] != kU) {
    if (dims[size_t(axis)] % n != 0)
      ctx.Fail(StrCat("input ", x.ToString(), " has ", dims[size_t(axis)], " elements on axis ",
                      axis, ", which do not split into num_outputs = ", n, " equal parts"));
    piece = dims[size_t(axis)] / n;
  }
  if (a.squeeze_axis) {
    if (piece != kU && piece != 1)
      ctx.Fail(StrCat("squeeze_axis needs pieces of extent 1 but input ", x.ToString(),
                      " splits into pieces of ", piece, " on axis ", axis));
    piece = 1;
  }
  // The outputs share a shape; merge what they know into it.
  std::vector<int64_t> out = dims;
  out[size_t(axis)] = piece;
  if (a.squeeze_axis) out.erase(out.begin() + axis);
  bool all_gone = out.empty();
  if (all_gone) out.push_back(1);
  Shape os(out);
  for (int k = 0; k < ctx.num_out(); ++k) ctx.SetOut(k, os);
  for (int k = 0; k < ctx.num_out(); ++k) os.Merge(ctx.out(k));
  for (int k = 0; k < ctx.num_out(); ++k) ctx.SetOut(k, os);
  // Backward into the input.
  if (!all_gone) {
    std::vector<int64_t> back = os.dims();
    if (a.squeeze_axis)
      back.insert(back.begin() + axis, n);
    else if (back[size_t(axis)] != kU)
      back[size_t(axis)] *= n;
    ctx.SetIn(0, Shape(back));
  } else {
    ctx.SetIn(0, Shape{n});
  }
}

void SliceChannelKernel(KernelCtx& ctx) {
  const Tensor& in = ctx.in[0];
  int r = in.ndim();
  int64_t ax = ctx.Attr<SliceChannelAttrs>().axis;
  int axis = int(ax < 0 ? ax + r : ax);
  size_t es = DTypeSize(in.dtype());
  int64_t outer = NumElements(std::vector<int64_t>(in.shape().begin(), in.shape().begin() + axis));
  int64_t inner =
      NumElements(std::vector<int64_t>(in.shape().begin() + axis + 1, in.shape().end()));
  int64_t n = int64_t(ctx.out.size());
  size_t piece = size_t(in.dim(axis) / n * inner) * es;
  size_t in_row = size_t(in.dim(axis) * inner) * es;
  const char* src = static_cast<const char*>(in.raw_data());
  for (int64_t k = 0; k < n; ++k) {
    char* dst = static_cast<char*>(ctx.out[size_t(k)].raw_data());
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(dst + size_t(o) * piece, src + size_t(o) * in_row + size_t(k) * piece, piece);
  }
}

// --- slice ---

struct SliceAttrs {
  std::vector<std::optional<int64_t>> begin;
  std::vector<std::optional<int64_t>> end;
  std::vector<std::optional<int64_t>> step;
  static void Describe(AttrSchema<SliceAttrs>& s) {
    s.Field("begin", &SliceAttrs::begin).Required();
    s.Field("end", &SliceAttrs::end).Required();
    s.Field("step", &SliceAttrs::step);
    s.Check([](const SliceAttrs& a) -> std::string {
      if (a.begin.size() != a.end.size())
        return StrCat("begin = ", attr_text::Print(a.begin), " and end = ", attr_text::Print(a.end),
                      " have different lengths");
      if (!a.step.empty() && a.step.size() != a.begin.size())
        return StrCat("step = ", attr_text::Print(a.step),
                      " and begin = ", attr_text::Print(a.begin), " have different lengths");
      for (size_t i = 0; i < a.step.size(); ++i)
        if (a.step[i] && *a.step[i] == 0)
          return StrCat("step = ", attr_text::Print(a.step), ": step ", i, " is 0");
      return "";
    });
  }
};

// Python's slice(b, e, s).indices(len): the first index and the number of elements.
struct Range {
  int64_t start = 0, count = 0, step = 1;
};
Range SliceRange(std::optional<int64_t> b, std::optional<int64_t> e, int64_t s, int64_t len) {
  Range r;
  r.step = s;
  int64_t lo = s > 0 ? 0 : -1, hi = s > 0 ? len : len - 1;
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v < 0 ? *v + len : *v;
    return std::clamp(x, lo, hi);
  };
  int64_t start = clamp(b, s > 0 ? 0 : len - 1);
  int64_t stop = clamp(e, s > 0 ? len : -1);
  r.start = start;
  if (s > 0)
    r.count = stop > start ? (stop - start - 1) / s + 1 : 0;
  else
    r.count = start > stop ? (start - stop - 1) / (-s) + 1 : 0;
  return r;
}

int64_t StepAt(const SliceAttrs& a, size_t i) {
  return (i < a.step.size() && a.step[i]) ? *a.step[i] : 1;
}

void SliceShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<SliceAttrs>();
  const Shape& in = ctx.in(0);
  if (!in.rank_known()) return;
  if (a.begin.size() > size_t(in.ndim()))
    ctx.Fail(StrCat("begin = ", attr_text::Print(a.begin), " has ", a.begin.size(),
                    " entries but input ", in.ToString(), " has rank ", in.ndim()));
  std::vector<int64_t> out = in.dims();
  for (size_t i = 0; i < a.begin.size(); ++i)
    if (out[i] != kU) out[i] = SliceRange(a.begin[i], a.end[i], StepAt(a, i), out[i]).count;
  ctx.SetOut(0, Shape(out));
  // Backward: the axes not sliced.
  const Shape& o = ctx.out(0);
  std::vector<int64_t> dims = in.dims();
  for (size_t i = a.begin.size(); i < dims.size(); ++i) dims[i] = o[int(i)];
  ctx.SetIn(0, Shape(dims));
}

void SliceKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<SliceAttrs>();
  const Tensor& in = ctx.in[0];
  std::vector<int64_t> st = Strides(in.shape());
  int64_t base = 0;
  for (size_t i = 0; i < a.begin.size(); ++i) {
    Range r = SliceRange(a.begin[i], a.end[i], StepAt(a, i), in.dim(int(i)));
    base += r.start * st[i];
    st[i] *= r.step;
  }
  StridedCopy(in, ctx.out[0], base, st);
}

// --- slice_axis ---

struct SliceAxisAttrs {
  int64_t axis = 0;
  int64_t begin = 0;
  std::optional<int64_t> end;
  static void Describe(AttrSchema<SliceAxisAttrs>& s) {
    s.Field("axis", &SliceAxisAttrs::axis).Required();
    s.Field("begin", &SliceAxisAttrs::begin).Required();
    s.Field("end", &SliceAxisAttrs::end).Required();
  }
};

// begin and end in [0, len] after adding len to negatives; begin < end (MXNet's checks).
template <class Ctx>
std::pair<int64_t, int64_t> SliceAxisRange(const Ctx& ctx, const SliceAxisAttrs& a, int64_t len) {
  int64_t b = a.begin < 0 ? a.begin + len : a.begin;
  int64_t e = !a.end ? len : (*a.end < 0 ? *a.end + len : *a.end);
  if (b < 0 || e > len || e < 0 || b >= e)
    ctx.Fail(StrCat("begin = ", a.begin, ", end = ", attr_text::Print(a.end), " select [", b, ", ",
                    e, ") of axis ", a.axis, " with ", len,
                    " elements; slice_axis needs 0 <= begin < end <= ", len));
  return {b, e};
}

void SliceAxisShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<SliceAxisAttrs>();
  const Shape& in = ctx.in(0);
  if (!in.rank_known()) return;
  int axis = NormalizeAxis(ctx, a.axis, in.ndim(), "axis");
  std::vector<int64_t> out = in.dims();
  if (out[size_t(axis)] != kU) {
    auto [b, e] = SliceAxisRange(ctx, a, out[size_t(axis)]);
    out[size_t(axis)] = e - b;
  }
  ctx.SetOut(0, Shape(out));
  const Shape& o = ctx.out(0);
  std::vector<int64_t> dims = in.dims();
  for (int i = 0; i < in.ndim(); ++i)
    if (i != axis) dims[size_t(i)] = o[i];
  ctx.SetIn(0, Shape(dims));
}

void SliceAxisKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<SliceAxisAttrs>();
  const Tensor& in = ctx.in[0];
  int axis = int(a.axis < 0 ? a.axis + in.ndim() : a.axis);
  auto [b, e] = SliceAxisRange(ctx, a, in.dim(axis));
  std::vector<int64_t> st = Strides(in.shape());
  StridedCopy(in, ctx.out[0], b * st[size_t(axis)], st);
}

// --- Gradients ---

// _backward_Concat: (dy, arg0, ...) -> (d arg0, ...), each the piece of dy along dim that its
// input filled; the blocks of ConcatKernel copied the other way.
void ConcatBackwardKernel(KernelCtx& ctx) {
  const Tensor& dy = ctx.in[0];
  int r = dy.ndim();
  int64_t d = ctx.Attr<ConcatAttrs>().dim;
  int axis = int(d < 0 ? d + r : d);
  size_t es = DTypeSize(dy.dtype());
  int64_t outer = NumElements(std::vector<int64_t>(dy.shape().begin(), dy.shape().begin() + axis));
  int64_t inner =
      NumElements(std::vector<int64_t>(dy.shape().begin() + axis + 1, dy.shape().end()));
  size_t dy_row = size_t(dy.dim(axis) * inner) * es;
  const char* src = static_cast<const char*>(dy.raw_data());
  size_t at = 0;
  for (const Tensor& out : ctx.out) {
    size_t row = size_t(out.dim(axis) * inner) * es;
    char* dst = static_cast<char*>(out.raw_data());
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(dst + size_t(o) * row, src + size_t(o) * dy_row + at, row);
    at += row;
  }
}

// Gradient k has the shape of input k (input 0 is dy).
void ShapesOfForwardInputs(ShapeInferCtx& ctx) {
  for (int k = 0; k < ctx.num_out(); ++k) {
    ctx.SetOut(k, ctx.in(k + 1));
    ctx.SetIn(k + 1, ctx.out(k));
  }
}

// _backward_Concat: each input has dy's extents but along dim, where dy has their sum. Checked,
// since the kernel copies blocks sized by dy and the inputs.
void ConcatBackwardShape(ShapeInferCtx& ctx) {
  ShapesOfForwardInputs(ctx);
  const Shape& dy = ctx.in(0);
  if (!dy.rank_known()) return;
  if (dy.ndim() == 0) ctx.Fail("d output is 0-d; Concat's output has rank >= 1");
  int axis = NormalizeAxis(ctx, ctx.attrs<ConcatAttrs>().dim, dy.ndim(), "dim");
  int64_t sum = 0;
  for (int k = 1; k < ctx.num_in(); ++k) {
    std::vector<int64_t> dims = dy.dims();
    const Shape& in = ctx.in(k);
    dims[size_t(axis)] = in.rank_known() && in.ndim() == dy.ndim() ? in[axis] : kU;
    ctx.SetIn(k, Shape(dims), "inputs have d output's extents but along dim");
    const Shape& merged = ctx.in(k);
    sum = (sum == kU || !merged.dim_known(axis)) ? kU : sum + merged[axis];
    ctx.SetOut(k - 1, merged);
  }
  std::vector<int64_t> dims = dy.dims();
  dims[size_t(axis)] = sum;
  ctx.SetIn(0, Shape(dims), "d output's extent along dim is the inputs' sum");
}

// _backward_slice / _backward_slice_axis: dy has the slice's shape, computed by the forward
// rule on data. Checked, since the kernel scatters dy by data's strides.
void SliceBackwardShape(ShapeInferCtx& ctx, void (*forward)(ShapeInferCtx&)) {
  ShapesOfForwardInputs(ctx);
  std::vector<Shape> in = {ctx.in(1)}, out = {Shape()};
  ShapeInferCtx fwd(ctx.op(), ctx.node_name(), ctx.raw_attrs(), in, out);
  forward(fwd);
  ctx.SetIn(0, out[0], "d output has the slice's shape");
}

// dy and the gradients have one dtype; the forward inputs lend only their shapes.
void OgradTypeInfer(TypeInferCtx& ctx) {
  DType t = ctx.in(0);
  for (int k = 0; k < ctx.num_out() && t == DType::kUnknown; ++k) t = ctx.out(k);
  if (t == DType::kUnknown) return;
  ctx.SetIn(0, t);
  for (int k = 0; k < ctx.num_out(); ++k) ctx.SetOut(k, t);
}

// out = zeros of data's shape, then dy written at base + (dy's index walked with `strides`).
void ScatterIntoZeros(const Tensor& dy, const Tensor& out, int64_t base,
                      const std::vector<int64_t>& strides) {
  std::memset(out.raw_data(), 0, out.nbytes());  // all-zero bytes are 0 in every dtype
  const size_t es = DTypeSize(dy.dtype());
  const char* src = static_cast<const char*>(dy.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  ForEachIndex<1>(dy.shape(), {strides}, [&](int64_t flat, const std::array<int64_t, 1>& o) {
    std::memcpy(dst + size_t(base + o[0]) * es, src + size_t(flat) * es, es);
  });
}

void SliceBackwardKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<SliceAttrs>();
  const Tensor& data = ctx.out[0];
  std::vector<int64_t> st = Strides(data.shape());
  int64_t base = 0;
  for (size_t i = 0; i < a.begin.size(); ++i) {
    Range r = SliceRange(a.begin[i], a.end[i], StepAt(a, i), data.dim(int(i)));
    base += r.start * st[i];
    st[i] *= r.step;
  }
  ScatterIntoZeros(ctx.in[0], data, base, st);
}

void SliceAxisBackwardKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<SliceAxisAttrs>();
  const Tensor& data = ctx.out[0];
  int axis = int(a.axis < 0 ? a.axis + data.ndim() : a.axis);
  auto [b, e] = SliceAxisRange(ctx, a, data.dim(axis));
  std::vector<int64_t> st = Strides(data.shape());
  ScatterIntoZeros(ctx.in[0], data, b * st[size_t(axis)], st);
}

// --- Compute definitions (kiln/ir/compute.h): every dtype, bit for bit. ---
// Select evaluates both of its values in the kernel IR, so every read is clamped into its
// input even where another input's value is selected.

int AxisOf(int64_t axis, int rank) {
  return int(axis < 0 ? axis + rank : axis);
}

// slice_axis's [begin, end) on an axis of extent len (shape inference has checked it).
std::pair<int64_t, int64_t> SliceAxisBounds(const SliceAxisAttrs& a, int64_t len) {
  int64_t b = a.begin < 0 ? a.begin + len : a.begin;
  int64_t e = !a.end ? len : (*a.end < 0 ? *a.end + len : *a.end);
  return {b, e};
}

// The output's value along `axis` from inputs laid end to end (first_input, first_input + 1,
// ...): a chain of selects on the output axis, each input read at the offset into it.
TExpr JoinAlong(const ComputeCtx& c, int axis, int first_input) {
  std::vector<TExpr> idx = c.Axes();
  TExpr o = idx[size_t(axis)];
  std::vector<std::pair<int64_t, int>> parts;  // (offset, input), inputs of extent 0 skipped
  int64_t at = 0;
  for (int j = first_input; j < c.num_in(); ++j) {
    int64_t n = c.in_shape(j).dims()[size_t(axis)];
    if (n > 0) parts.push_back({at, j});
    at += n;
  }
  if (parts.empty()) return c.Read(first_input, idx);  // an empty output reads nothing
  TExpr value;
  for (size_t k = parts.size(); k-- > 0;) {
    auto [off, j] = parts[k];
    int64_t n = c.in_shape(j).dims()[size_t(axis)];
    idx[size_t(axis)] = ClampIndex(off == 0 ? o : o - TIndex(off), 0, n - 1);
    TExpr v = c.Read(j, idx);
    value = value ? TSelect(TBinary(TBinaryOp::kLT, o, TIndex(off + n)), v, value) : v;
  }
  return value;
}

std::vector<TExpr> ConcatCompute(const ComputeCtx& c) {
  return {JoinAlong(c, AxisOf(c.attrs<ConcatAttrs>().dim, c.out_shape(0).ndim()), 0)};
}

// Output k reads piece k of the input along axis (re-inserting the axis with squeeze_axis).
std::vector<TExpr> SliceChannelCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<SliceChannelAttrs>();
  const Shape& in = c.in_shape(0);
  int axis = AxisOf(a.axis, in.ndim());
  int64_t piece = in[axis] / a.num_outputs;
  std::vector<TExpr> outs;
  for (int64_t k = 0; k < a.num_outputs; ++k) {
    std::vector<TExpr> idx;
    if (!a.squeeze_axis) {
      idx = c.Axes();
      idx[size_t(axis)] = idx[size_t(axis)] + TIndex(k * piece);
    } else {
      for (int d = 0, o = 0; d < in.ndim(); ++d) idx.push_back(d == axis ? TIndex(k) : TAxis(o++));
    }
    outs.push_back(c.Read(0, idx));
  }
  return outs;
}

std::vector<TExpr> SliceCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<SliceAttrs>();
  std::vector<TExpr> idx = c.Axes();
  for (size_t i = 0; i < a.begin.size(); ++i) {
    Range r = SliceRange(a.begin[i], a.end[i], StepAt(a, i), c.in_shape(0)[int(i)]);
    TExpr e = r.step == 1 ? idx[i] : idx[i] * TIndex(r.step);
    idx[i] = r.start == 0 ? e : e + TIndex(r.start);
  }
  return {c.Read(0, idx)};
}

std::vector<TExpr> SliceAxisCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<SliceAxisAttrs>();
  int axis = AxisOf(a.axis, c.in_shape(0).ndim());
  int64_t b = SliceAxisBounds(a, c.in_shape(0)[axis]).first;
  std::vector<TExpr> idx = c.Axes();
  if (b != 0) idx[size_t(axis)] = idx[size_t(axis)] + TIndex(b);
  return {c.Read(0, idx)};
}

// Gradient k of Concat: dy read at the offset of input k along dim.
std::vector<TExpr> ConcatBackwardCompute(const ComputeCtx& c) {
  int axis = AxisOf(c.attrs<ConcatAttrs>().dim, c.in_shape(0).ndim());
  std::vector<TExpr> outs;
  int64_t at = 0;
  for (int k = 0; k < c.num_in() - 1; ++k) {
    std::vector<TExpr> idx;
    for (int d = 0; d < c.out_shape(k).ndim(); ++d) idx.push_back(TAxis(d));
    if (at != 0) idx[size_t(axis)] = idx[size_t(axis)] + TIndex(at);
    outs.push_back(c.Read(0, idx));
    at += c.out_shape(k)[axis];
  }
  return outs;
}

// dy scattered into zeros, written as a gather: data's index i along a sliced axis holds
// dy[(i - start) / step] when i - start is a multiple of step in [0, count * step).
std::vector<TExpr> ScatterCompute(const ComputeCtx& c, const std::vector<Range>& ranges) {
  const Shape& dy = c.in_shape(0);
  TExpr zero = ConstOf(0, c.out_dtype(0));
  if (dy.NumElements() == 0) return {zero};
  std::vector<TExpr> idx = c.Axes();
  TExpr inside;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const Range& r = ranges[i];
    if (r.start == 0 && r.step == 1 && r.count == c.out_shape(0)[int(i)]) continue;
    TExpr rel = idx[i] - TIndex(r.start);
    TExpr q = r.step == 1 ? rel : rel / TIndex(r.step);
    TExpr ok = TBinary(TBinaryOp::kAnd, TBinary(TBinaryOp::kGE, q, TIndex(0)),
                       TBinary(TBinaryOp::kLT, q, TIndex(r.count)));
    // Truncating division: q * step == rel exactly for multiples, negatives included.
    if (r.step != 1 && r.step != -1)
      ok = TBinary(TBinaryOp::kAnd, ok, TBinary(TBinaryOp::kEQ, q * TIndex(r.step), rel));
    inside = inside ? TBinary(TBinaryOp::kAnd, inside, ok) : ok;
    idx[i] = ClampIndex(q, 0, r.count - 1);
  }
  TExpr v = c.Read(0, idx);
  return {inside ? TSelect(inside, v, zero) : v};
}

std::vector<TExpr> SliceBackwardCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<SliceAttrs>();
  std::vector<Range> ranges;
  for (size_t i = 0; i < a.begin.size(); ++i)
    ranges.push_back(SliceRange(a.begin[i], a.end[i], StepAt(a, i), c.out_shape(0)[int(i)]));
  return ScatterCompute(c, ranges);
}

std::vector<TExpr> SliceAxisBackwardCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<SliceAxisAttrs>();
  const Shape& data = c.out_shape(0);
  int axis = AxisOf(a.axis, data.ndim());
  auto [b, e] = SliceAxisBounds(a, data[axis]);
  std::vector<Range> ranges;
  for (int i = 0; i <= axis; ++i) ranges.push_back(Range{0, data[i], 1});
  ranges[size_t(axis)] = Range{b, e - b, 1};
  return ScatterCompute(c, ranges);
}

GradList ConcatGrad(GradCtx& g) {
  std::vector<Entry> in = {g.ograd(0)};
  for (int i = 0; i < g.num_inputs(); ++i) in.push_back(g.input(i));
  std::vector<Entry> d = g.EmitWithAttrs("_backward_Concat", in);
  return GradList(d.begin(), d.end());
}

GradList SliceChannelGrad(GradCtx& g) {
  const auto& a = g.attrs<SliceChannelAttrs>();
  std::vector<Entry> parts;
  for (int k = 0; k < g.num_outputs(); ++k) {
    Entry dy = g.ograd(k);
    // expand_dims counts a negative axis from its output's end, which is the input's rank.
    if (a.squeeze_axis) dy = g.Emit1("expand_dims", {dy}, {{"axis", attr_text::Print(a.axis)}});
    parts.push_back(dy);
  }
  Entry joined = g.Emit1(
      "Concat", parts,
      {{"num_args", attr_text::Print(int64_t(parts.size()))}, {"dim", attr_text::Print(a.axis)}});
  // A 1-D input split with squeeze_axis has outputs (1,), not (): the joined (n, 1) or (1, n)
  // needs the input's shape back. Otherwise this is the identity.
  if (a.squeeze_axis) joined = g.Emit1("reshape_like", {joined, g.input(0)});
  return {joined};
}

template <class A>
void RegisterSliceBackward(OpRegistry& r, const char* name, const char* forward,
                           void (*forward_shape)(ShapeInferCtx&), FReference kernel,
                           FCompute compute) {
  r.Register(name)
      .Describe(StrCat("gradient of ", forward, ": d output scattered into zeros of data's shape"))
      .SetAttrs<A>()
      .Inputs({"ograd", "data"})
      .InferShape([forward_shape](ShapeInferCtx& ctx) { SliceBackwardShape(ctx, forward_shape); })
      .InferType(OgradTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Reference(std::move(kernel))
      .Compute(std::move(compute));
}

}  // namespace

void RegisterSliceOps(OpRegistry& r) {
  r.Register("Concat")
      .Alias("concat")
      .Describe("joins num_args inputs along dim; the other axes must agree")
      .SetAttrs<ConcatAttrs>()
      .VariadicInputs("num_args", [](const Attrs& a) { return int(a.Get<ConcatAttrs>().num_args); })
      .InferShape(ConcatShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Reference(ConcatKernel)
      .Compute(ConcatCompute)
      .Gradient(ConcatGrad);

  r.Register("SliceChannel")
      .Alias("split")
      .Describe(
          "splits axis into num_outputs equal pieces (output0, output1, ...); squeeze_axis "
          "removes the axis when the pieces have extent 1")
      .SetAttrs<SliceChannelAttrs>()
      .Outputs([](const Attrs& a) {
        std::vector<std::string> names;
        for (int64_t i = 0; i < a.Get<SliceChannelAttrs>().num_outputs; ++i)
          names.push_back(StrCat("output", i));
        return names;
      })
      .InferShape(SliceChannelShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Reference(SliceChannelKernel)
      .Compute(SliceChannelCompute)
      .Gradient(SliceChannelGrad);

  r.Register("slice")
      .Describe(
          "Python slicing per axis: begin, end, step tuples whose entries may be None; "
          "negative indices count from the end; trailing axes are kept whole")
      .SetAttrs<SliceAttrs>()
      .InferShape(SliceShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Reference(SliceKernel)
      .Compute(SliceCompute)
      .Gradient([](GradCtx& g) -> GradList {
        return {g.EmitWithAttrs("_backward_slice", {g.ograd(0), g.input(0)})[0]};
      });

  r.Register("slice_axis")
      .Describe("elements [begin, end) of one axis (end None: to the end; negatives count back)")
      .SetAttrs<SliceAxisAttrs>()
      .InferShape(SliceAxisShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Reference(SliceAxisKernel)
      .Compute(SliceAxisCompute)
      .Gradient([](GradCtx& g) -> GradList {
        return {g.EmitWithAttrs("_backward_slice_axis", {g.ograd(0), g.input(0)})[0]};
      });

  r.Register("_backward_Concat")
      .Describe("gradient of Concat: (d arg0, ...) from (d output, arg0, ...), split along dim")
      .SetAttrs<ConcatAttrs>()
      .Inputs([](const Attrs& a) {
        std::vector<std::string> names = {"ograd"};
        for (int64_t i = 0; i < a.Get<ConcatAttrs>().num_args; ++i)
          names.push_back(StrCat("arg", i));
        return names;
      })
      .Outputs([](const Attrs& a) {
        std::vector<std::string> names;
        for (int64_t i = 0; i < a.Get<ConcatAttrs>().num_args; ++i)
          names.push_back(StrCat("arg", i, "_grad"));
        return names;
      })
      .InferShape(ConcatBackwardShape)
      .InferType(OgradTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Reference(ConcatBackwardKernel)
      .Compute(ConcatBackwardCompute);

  RegisterSliceBackward<SliceAttrs>(r, "_backward_slice", "slice", SliceShape, SliceBackwardKernel,
                                    SliceBackwardCompute);
  RegisterSliceBackward<SliceAxisAttrs>(r, "_backward_slice_axis", "slice_axis", SliceAxisShape,
                                        SliceAxisBackwardKernel, SliceAxisBackwardCompute);
}

}  // namespace kiln::ops
