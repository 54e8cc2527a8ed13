// layout.cpp - ops that rearrange elements with NumPy's rules: _np_reshape, tile, Pad, take.
//
// _np_reshape is MXNet's NumPy-compatible reshape: `newshape` may be empty (a 0-d result) and
// may hold one -1 (inferred); unlike Reshape it has no special codes (0, -2, -3, -4), so it
// expresses every ONNX Reshape/Flatten/Squeeze/Unsqueeze once the importer has resolved their
// shapes. tile repeats the input `reps` times along each axis (reps shorter than the rank is
// padded with leading 1s, a shorter rank with leading axes of extent 1, as NumPy and MXNet).
// Pad pads every axis by pad_width = (before0, after0, before1, after1, ...) with a constant,
// the edge value or the reflection (without repeating the edge, as NumPy's "reflect"); unlike
// MXNet's Pad (4-D and 5-D only) every rank is accepted, and reflect needs pads smaller than
// the axis. take gathers slices along `axis` at integer `indices` of any numeric dtype; the
// result's shape is a.shape[:axis] + indices.shape + a.shape[axis+1:]. Its mode is MXNet's:
// clip (out-of-range indices clamp), wrap (modulo) or raise (NumPy's: [-n, n) with negative
// indices counted from the end, anything else an error naming the index).
//
// Gradients: _np_reshape gives reshape_like(dy, data); Pad in constant mode slices the padding
// off dy (edge and reflect would scatter into the borders: no gradient, a UserError); tile sums
// dy over the repetitions (_backward_tile); take scatter-adds dy into zeros shaped like `a`
// (_backward_take, repeated indices accumulate; indices get no gradient). The backward ops read
// the forward input for its shape, since shapes are unknown when gradients are built.
#include <cmath>

#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

// --- _np_reshape ---

struct NpReshapeAttrs {
  std::vector<int64_t> newshape;
  static void Describe(AttrSchema<NpReshapeAttrs>& s) {
    s.Field("newshape", &NpReshapeAttrs::newshape).Min(-1);
    s.Check([](const NpReshapeAttrs& a) -> std::string {
      int infer = 0;
      for (int64_t d : a.newshape) infer += d == -1;
      if (infer > 1) return StrCat("newshape = ", attr_text::Print(a.newshape), " has two -1");
      return "";
    });
  }
};

void NpReshapeShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<NpReshapeAttrs>();
  std::vector<int64_t> dims = a.newshape;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1)
      infer = int(i);
    else
      known *= dims[i];
  }
  int64_t n = ctx.in(0).NumElements();
  if (infer >= 0) {
    if (n < 0) {
      ctx.SetOut(0, Shape(dims));
      return;
    }
    if (known == 0 || n % known != 0)
      ctx.Fail(StrCat("cannot reshape ", ctx.in(0).ToString(), " (", n, " elements) to ",
                      DimsString(a.newshape)));
    dims[size_t(infer)] = n / known;
  } else if (n >= 0 && n != known) {
    ctx.Fail(StrCat("cannot reshape ", ctx.in(0).ToString(), " (", n, " elements) to ",
                    DimsString(a.newshape), " (", known, " elements)"));
  }
  ctx.SetOut(0, Shape(dims));
}

// --- tile ---

struct TileAttrs {
  std::vector<int64_t> reps;
  static void Describe(AttrSchema<TileAttrs>& s) {
    s.Field("reps", &TileAttrs::reps).Required().Min(0);
  }
};

// The input's dims and the reps, both padded with leading 1s to the output's rank.
void TileGeometry(const std::vector<int64_t>& in, const std::vector<int64_t>& reps,
                  std::vector<int64_t>* din, std::vector<int64_t>* drep) {
  size_t n = std::max(in.size(), reps.size());
  din->assign(n - in.size(), 1);
  din->insert(din->end(), in.begin(), in.end());
  drep->assign(n - reps.size(), 1);
  drep->insert(drep->end(), reps.begin(), reps.end());
}

void TileShape(ShapeInferCtx& ctx) {
  const Shape& in = ctx.in(0);
  if (!in.rank_known()) return;
  std::vector<int64_t> din, drep;
  TileGeometry(in.dims(), ctx.attrs<TileAttrs>().reps, &din, &drep);
  for (size_t i = 0; i < din.size(); ++i)
    if (din[i] != Shape::kUnknownDim) din[i] *= drep[i];
  ctx.SetOut(0, Shape(din), "tiling the input by reps");
}

void TileKernel(KernelCtx& ctx) {
  const Tensor& x = ctx.in[0];
  const Tensor& y = ctx.out[0];
  std::vector<int64_t> din, drep;
  TileGeometry(x.shape(), ctx.Attr<TileAttrs>().reps, &din, &drep);
  const size_t es = DTypeSize(x.dtype());
  const auto* src = static_cast<const char*>(x.raw_data());
  auto* dst = static_cast<char*>(y.raw_data());
  std::vector<int64_t> in_strides = Strides(din);
  const int nd = int(din.size());
  std::vector<int64_t> idx(size_t(nd), 0);
  for (int64_t flat = 0; flat < y.size(); ++flat) {
    int64_t off = 0;
    for (int d = 0; d < nd; ++d) off += (idx[size_t(d)] % din[size_t(d)]) * in_strides[size_t(d)];
    std::memcpy(dst + flat * es, src + off * es, es);
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[size_t(d)] < y.dim(d)) break;
      idx[size_t(d)] = 0;
    }
  }
}

// --- Pad ---

enum class PadMode { kConstant, kEdge, kReflect };

struct PadAttrs {
  PadMode mode = PadMode::kConstant;
  std::vector<int64_t> pad_width;
  double constant_value = 0;
  static void Describe(AttrSchema<PadAttrs>& s) {
    s.Enum("mode", &PadAttrs::mode,
           {{"constant", PadMode::kConstant},
            {"edge", PadMode::kEdge},
            {"reflect", PadMode::kReflect}});
    s.Field("pad_width", &PadAttrs::pad_width).Required().Min(0);
    s.Field("constant_value", &PadAttrs::constant_value);
    s.Check([](const PadAttrs& a) -> std::string {
      if (a.pad_width.size() % 2 != 0)
        return StrCat("pad_width = ", attr_text::Print(a.pad_width),
                      " must hold a (before, after) pair per axis");
      return "";
    });
  }
};

void PadShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<PadAttrs>();
  const Shape& in = ctx.in(0);
  if (!in.rank_known()) return;
  if (size_t(in.ndim()) * 2 != a.pad_width.size())
    ctx.Fail(StrCat("pad_width = ", attr_text::Print(a.pad_width), " has ", a.pad_width.size(),
                    " values but data ", in.ToString(), " needs ", 2 * in.ndim()));
  std::vector<int64_t> dims = in.dims();
  for (int i = 0; i < in.ndim(); ++i) {
    if (dims[size_t(i)] == Shape::kUnknownDim) continue;
    int64_t before = a.pad_width[size_t(2 * i)], after = a.pad_width[size_t(2 * i + 1)];
    if (a.mode == PadMode::kReflect && (before >= dims[size_t(i)] || after >= dims[size_t(i)]))
      ctx.Fail(StrCat("reflect padding of axis ", i, " by (", before, ", ", after,
                      ") needs pads smaller than its extent ", dims[size_t(i)]));
    if (a.mode == PadMode::kEdge && dims[size_t(i)] == 0 && before + after > 0)
      ctx.Fail(StrCat("edge padding of axis ", i, " needs a non-empty axis"));
    dims[size_t(i)] += before + after;
  }
  ctx.SetOut(0, Shape(dims), "padding the data by pad_width");
}

// The input coordinate that output coordinate `o` of an axis reads, or -1 for the constant.
int64_t PadSource(PadMode mode, int64_t o, int64_t before, int64_t n) {
  int64_t i = o - before;
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::kConstant:
      return -1;
    case PadMode::kEdge:
      return i < 0 ? 0 : n - 1;
    case PadMode::kReflect: {
      if (n == 1) return 0;
      int64_t period = 2 * (n - 1);
      int64_t m = ((i % period) + period) % period;
      return m < n ? m : period - m;
    }
  }
  return -1;
}

void PadKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<PadAttrs>();
  const Tensor& x = ctx.in[0];
  const Tensor& y = ctx.out[0];
  const size_t es = DTypeSize(x.dtype());
  // The constant in the element type, as bytes.
  Tensor fill = Tensor::FromValues({}, x.dtype(), {a.constant_value});
  const auto* src = static_cast<const char*>(x.raw_data());
  auto* dst = static_cast<char*>(y.raw_data());
  std::vector<int64_t> in_strides = Strides(x.shape());
  const int nd = x.ndim();
  std::vector<int64_t> idx(size_t(nd), 0);
  for (int64_t flat = 0; flat < y.size(); ++flat) {
    int64_t off = 0;
    bool constant = false;
    for (int d = 0; d < nd && !constant; ++d) {
      int64_t s = PadSource(a.mode, idx[size_t(d)], a.pad_width[size_t(2 * d)], x.dim(d));
      if (s < 0)
        constant = true;
      else
        off += s * in_strides[size_t(d)];
    }
    std::memcpy(dst + flat * es, constant ? fill.raw_data() : src + off * es, es);
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[size_t(d)] < y.dim(d)) break;
      idx[size_t(d)] = 0;
    }
  }
}

// --- take ---

enum class TakeMode { kClip, kWrap, kRaise };

struct TakeAttrs {
  int64_t axis = 0;
  TakeMode mode = TakeMode::kClip;
  static void Describe(AttrSchema<TakeAttrs>& s) {
    s.Field("axis", &TakeAttrs::axis);
    s.Enum("mode", &TakeAttrs::mode,
           {{"clip", TakeMode::kClip}, {"wrap", TakeMode::kWrap}, {"raise", TakeMode::kRaise}});
  }
};

void TakeShape(ShapeInferCtx& ctx) {
  const Shape& a = ctx.in(0);
  const Shape& idx = ctx.in(1);
  if (!a.rank_known() || !idx.rank_known()) return;
  if (a.ndim() == 0) ctx.Fail("a is 0-d; take needs an axis to gather along");
  int axis = NormalizeAxis(ctx, ctx.attrs<TakeAttrs>().axis, a.ndim(), "axis");
  std::vector<int64_t> dims(a.dims().begin(), a.dims().begin() + axis);
  dims.insert(dims.end(), idx.dims().begin(), idx.dims().end());
  dims.insert(dims.end(), a.dims().begin() + axis + 1, a.dims().end());
  ctx.SetOut(0, Shape(dims), "a's axes around axis, with the indices' axes in its place");
}

void TakeType(TypeInferCtx& ctx) {
  if (ctx.in(1) == DType::kBool) ctx.Fail("indices have dtype bool; integer indices are needed");
  if (ctx.in(0) != DType::kUnknown) ctx.SetOut(0, ctx.in(0), "the result has a's dtype");
  if (ctx.out(0) != DType::kUnknown) ctx.SetIn(0, ctx.out(0), "the result has a's dtype");
}

void TakeKernel(KernelCtx& ctx) {
  const auto& attrs = ctx.Attr<TakeAttrs>();
  const Tensor& a = ctx.in[0];
  const Tensor& y = ctx.out[0];
  const int axis = int(attrs.axis < 0 ? attrs.axis + a.ndim() : attrs.axis);
  const int64_t n = a.dim(axis);
  const int64_t outer = NumElements({a.shape().begin(), a.shape().begin() + axis});
  const int64_t inner = NumElements({a.shape().begin() + axis + 1, a.shape().end()});
  const int64_t count = ctx.in[1].size();
  std::vector<int64_t> rows(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) {
    double v = ctx.in[1].At(k);
    int64_t i = std::isfinite(v) ? int64_t(v) : 0;
    switch (attrs.mode) {
      case TakeMode::kClip:
        i = std::clamp<int64_t>(i, 0, std::max<int64_t>(n - 1, 0));
        break;
      case TakeMode::kWrap:
        i = n == 0 ? 0 : ((i % n) + n) % n;
        break;
      case TakeMode::kRaise:
        if (i < -n || i >= n || !std::isfinite(v))
          ctx.Fail(StrCat("index ", v, " at position ", k, " is out of range for axis ", axis,
                          " of extent ", n));
        if (i < 0) i += n;
        break;
    }
    if (n == 0 && count > 0 && inner * outer > 0)
      ctx.Fail(StrCat("cannot take from axis ", axis, " of extent 0"));
    rows[size_t(k)] = i;
  }
  const size_t es = DTypeSize(a.dtype());
  const size_t block = size_t(inner) * es;
  const auto* src = static_cast<const char*>(a.raw_data());
  auto* dst = static_cast<char*>(y.raw_data());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < count; ++k)
      std::memcpy(dst + size_t(o * count + k) * block,
                  src + size_t(o * n + rows[size_t(k)]) * block, block);
}

// d data of tile: every element of dy added into the input element it repeats.
template <class T>
void TileBackwardKernel(KernelCtx& ctx) {
  const Tensor& dy = ctx.in[0];
  const Tensor& dx = ctx.out[0];
  std::vector<int64_t> din, drep;
  TileGeometry(dx.shape(), ctx.Attr<TileAttrs>().reps, &din, &drep);
  std::vector<AccType<T>> acc(static_cast<size_t>(dx.size()), 0);
  std::vector<int64_t> in_strides = Strides(din);
  const int nd = int(din.size());
  std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
  const T* g = dy.data<T>();
  for (int64_t flat = 0; flat < dy.size(); ++flat) {
    int64_t off = 0;
    for (int d = 0; d < nd; ++d) off += (idx[size_t(d)] % din[size_t(d)]) * in_strides[size_t(d)];
    acc[size_t(off)] += ToAcc(g[flat]);
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[size_t(d)] < dy.dim(d)) break;
      idx[size_t(d)] = 0;
    }
  }
  T* out = dx.data<T>();
  for (size_t i = 0; i < acc.size(); ++i) out[i] = ConvertValue<T>(acc[i]);
}

// d a of take: dy's slices added at the rows the indices chose (the forward's index rules).
template <class T>
void TakeBackwardKernel(KernelCtx& ctx) {
  const auto& attrs = ctx.Attr<TakeAttrs>();
  const Tensor& dy = ctx.in[0];
  const Tensor& indices = ctx.in[1];
  const Tensor& da = ctx.out[0];
  const int axis = int(attrs.axis < 0 ? attrs.axis + da.ndim() : attrs.axis);
  const int64_t n = da.dim(axis);
  const int64_t outer = NumElements({da.shape().begin(), da.shape().begin() + axis});
  const int64_t inner = NumElements({da.shape().begin() + axis + 1, da.shape().end()});
  const int64_t count = indices.size();
  std::vector<AccType<T>> acc(static_cast<size_t>(da.size()), 0);
  const T* g = dy.data<T>();
  for (int64_t k = 0; k < count; ++k) {
    double v = indices.At(k);
    int64_t i = std::isfinite(v) ? int64_t(v) : 0;
    if (attrs.mode == TakeMode::kWrap)
      i = n == 0 ? 0 : ((i % n) + n) % n;
    else if (attrs.mode == TakeMode::kRaise && i < 0)
      i += n;
    i = std::clamp<int64_t>(i, 0, std::max<int64_t>(n - 1, 0));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < inner; ++j)
        acc[size_t((o * n + i) * inner + j)] += ToAcc(g[(o * count + k) * inner + j]);
  }
  T* out = da.data<T>();
  for (size_t i = 0; i < acc.size(); ++i) out[i] = ConvertValue<T>(acc[i]);
}

// --- Compute definitions (kiln/ir/compute.h): every dtype, bit for bit. ---
// Select evaluates both of its values in the kernel IR, so every read is clamped into its
// input even where the constant is selected.

// Output axis d of the (leading-1-padded) input reads idx % din[d].
std::vector<TExpr> TileCompute(const ComputeCtx& c) {
  const std::vector<int64_t>& in = c.in_shape(0).dims();
  std::vector<int64_t> din, drep;
  TileGeometry(in, c.attrs<TileAttrs>().reps, &din, &drep);
  size_t lead = din.size() - in.size();
  std::vector<TExpr> idx;
  for (size_t d = lead; d < din.size(); ++d) {
    TExpr o = TAxis(int(d));
    if (din[d] == 0 || din[d] == 1)
      idx.push_back(TIndex(0));  // extent 0: nothing is read
    else
      idx.push_back(drep[d] == 1 ? o : o % TIndex(din[d]));
  }
  return {c.Read(0, idx)};
}

std::vector<TExpr> PadCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<PadAttrs>();
  const Shape& in = c.in_shape(0);
  TExpr fill = ConstOf(a.constant_value, c.out_dtype(0));
  if (in.NumElements() == 0) return {fill};  // only padding (constant mode) or empty
  std::vector<TExpr> idx;
  TExpr inside;
  for (int d = 0; d < in.ndim(); ++d) {
    int64_t before = a.pad_width[size_t(2 * d)], after = a.pad_width[size_t(2 * d + 1)];
    int64_t n = in[d];
    TExpr o = TAxis(d);
    if (before == 0 && after == 0) {
      idx.push_back(o);
      continue;
    }
    TExpr i = before == 0 ? o : o - TIndex(before);
    switch (a.mode) {
      case PadMode::kConstant: {
        TExpr ok = TBinary(TBinaryOp::kAnd, TBinary(TBinaryOp::kGE, i, TIndex(0)),
                           TBinary(TBinaryOp::kLT, i, TIndex(n)));
        inside = inside ? TBinary(TBinaryOp::kAnd, inside, ok) : ok;
        idx.push_back(ClampIndex(i, 0, n - 1));
        break;
      }
      case PadMode::kEdge:
        idx.push_back(ClampIndex(i, 0, n - 1));
        break;
      case PadMode::kReflect: {
        // Pads are smaller than n, so i lies in (-n, 2n - 1): one reflection on either side
        // (PadSource's periodic form gives the same there).
        TExpr r = TSelect(TBinary(TBinaryOp::kLT, i, TIndex(0)), TIndex(0) - i, i);
        idx.push_back(TSelect(TBinary(TBinaryOp::kGE, r, TIndex(n)), TIndex(2 * (n - 1)) - r, r));
        break;
      }
    }
  }
  TExpr v = c.Read(0, idx);
  return {inside ? TSelect(inside, v, fill) : v};
}

// The row of an axis of extent n that index value i (int64) chooses: clip clamps, wrap takes i
// modulo n, raise counts negatives from the end and clamps the rest (the reference's backward
// rule; its forward reports them instead, which a kernel cannot).
TExpr TakeRow(TakeMode mode, TExpr i, int64_t n) {
  if (n <= 1) return TIndex(0);
  if (mode == TakeMode::kWrap) return ((i % TIndex(n)) + TIndex(n)) % TIndex(n);
  if (mode == TakeMode::kRaise)
    i = TSelect(TBinary(TBinaryOp::kLT, i, TIndex(0)), i + TIndex(n), i);
  return ClampIndex(i, 0, n - 1);
}

// a read along axis at the row the index chose: clip clamps, wrap takes the index modulo n,
// raise counts negatives from the end. An index that raise rejects (outside [-n, n)) cannot be
// reported by a kernel: it is clamped, so memory stays safe.
std::vector<TExpr> TakeCompute(const ComputeCtx& c) {
  const auto& attrs = c.attrs<TakeAttrs>();
  const Shape& a = c.in_shape(0);
  const Shape& indices = c.in_shape(1);
  int axis = int(attrs.axis < 0 ? attrs.axis + a.ndim() : attrs.axis);
  int64_t n = a[axis];
  if (n == 0 && c.out_shape(0).NumElements() > 0) return {};  // the reference fails
  std::vector<TExpr> out = c.Axes(), at, idx;
  for (int d = 0; d < indices.ndim(); ++d) at.push_back(out[size_t(axis + d)]);
  TExpr row = TakeRow(attrs.mode, IndexValue(c.Read(1, at)), n);
  for (int d = 0; d < axis; ++d) idx.push_back(out[size_t(d)]);
  idx.push_back(row);
  for (int d = axis + 1; d < a.ndim(); ++d) idx.push_back(out[size_t(d - 1 + indices.ndim())]);
  return {c.Read(0, idx)};
}

// The type a sum of floating dtype t runs in: float16 and bfloat16 widen to float32.
DType SumFloatType(DType t) {
  return IsComputeFloat(t) ? t : DType::kFloat32;
}

// d data of tile, floating types: each input element sums dy over its repetitions,
//   dx[i] = sum over r of dy[r * din + i]   (per axis; the leading axes tile added are summed)
// with the domain in dy's axis order, so the reads run along dy's innermost axis as the output's
// innermost axis advances (vectorised, lower_reduce.h). Sums run in float32 (float16, bfloat16)
// or the type itself; the reference's in double: results differ by rounding.
std::vector<TExpr> TileBackwardCompute(const ComputeCtx& c) {
  DType t = c.out_dtype(0);
  if (!IsFloatingPoint(t) || c.in_dtype(0) != t) return {};
  const std::vector<int64_t>& in = c.out_shape(0).dims();
  std::vector<int64_t> din, drep;
  TileGeometry(in, c.attrs<TileAttrs>().reps, &din, &drep);
  size_t lead = din.size() - in.size();
  std::vector<int64_t> tiled(din.size());
  for (size_t d = 0; d < din.size(); ++d) tiled[d] = din[d] * drep[d];
  if (c.in_shape(0).dims() != tiled) return {};  // dy's shape is not checked by inference
  std::vector<int64_t> extents;
  for (size_t d = 0; d < din.size(); ++d)
    if (drep[d] != 1) extents.push_back(drep[d]);
  auto index = [&](const std::vector<TExpr>& r) {
    std::vector<TExpr> idx;
    size_t j = 0;
    for (size_t d = 0; d < din.size(); ++d) {
      TExpr i = d < lead ? TIndex(0) : TAxis(int(d - lead));
      if (drep[d] == 1) {
        idx.push_back(i);
        continue;
      }
      TExpr rep = din[d] == 1 ? r[j] : r[j] * TIndex(din[d]);
      idx.push_back(d < lead || din[d] == 1 ? rep : rep + i);
      ++j;
    }
    return idx;
  };
  if (extents.empty()) return {c.Read(0, index({}))};  // reps of 1: a copy
  DType st = SumFloatType(t);
  TExpr sum = TReduce(TReduceOp::kSum, extents, [&](const std::vector<TExpr>& r) {
    TExpr v = Widen(c.Read(0, index(r)));
    return v->dtype == st ? v : TCast(st, v);
  });
  return {sum->dtype == t ? sum : TCast(t, sum)};
}

// d a of take as a gather, floating types: each row j of a sums the slices of dy whose index
// chose it,
//   da[o, j, i] = sum over index positions k of (row(indices[k]) == j ? dy[o, k, i] : 0)
// which costs (number of indices) operations per element of a, where the reference's scatter
// costs one per element of dy plus one per element of a (to clear and convert). The definition
// is given for at most kMaxTakeBackwardIndices indices, or when the whole sum is at most
// kMaxTakeBackwardWork operations (a few microseconds: below the reference call's own cost).
// Measured (float32, 1 thread, JIT kernel against the reference call), an embedding-like table
// a = (1000, 64): 5 indices 6 vs 24 us, 7 indices 9 vs 24 us, but 8 indices 44 vs 24 us and 16
// indices 88 vs 24 us (`kiln_lowered_bench --cases definitions`): up to 7 LLVM unrolls the
// index loop and hoists each index's conversion out of the row loop, from 8 it converts every
// index again for every row and vector of columns. Where that switch falls depends on the
// loop body, so the rule keeps a margin: at most 4 indices. A small table (10, 8): the kernel
// wins up to 256 indices (4.9 vs 5.8 us; 80 x 256 = 20480 operations).
constexpr int64_t kMaxTakeBackwardIndices = 4;
constexpr int64_t kMaxTakeBackwardWork = 65536;

std::vector<TExpr> TakeBackwardCompute(const ComputeCtx& c) {
  const auto& attrs = c.attrs<TakeAttrs>();
  DType t = c.out_dtype(0);
  if (!IsFloatingPoint(t) || c.in_dtype(0) != t) return {};
  const Shape& a = c.out_shape(0);
  const Shape& indices = c.in_shape(1);
  const int64_t count = indices.NumElements();
  if (count > kMaxTakeBackwardIndices && a.NumElements() * count > kMaxTakeBackwardWork) return {};
  int axis = int(attrs.axis < 0 ? attrs.axis + a.ndim() : attrs.axis);
  int64_t n = a[axis];
  // Shape inference does not tie dy's shape to the others: define only the consistent case.
  std::vector<int64_t> dy(a.dims().begin(), a.dims().begin() + axis);
  dy.insert(dy.end(), indices.dims().begin(), indices.dims().end());
  dy.insert(dy.end(), a.dims().begin() + axis + 1, a.dims().end());
  if (c.in_shape(0).dims() != dy) return {};
  DType st = SumFloatType(t);
  TExpr j = TAxis(axis);
  auto term = [&](const std::vector<TExpr>& k) {
    std::vector<TExpr> g;
    for (int d = 0; d < axis; ++d) g.push_back(TAxis(d));
    g.insert(g.end(), k.begin(), k.end());
    for (int d = axis + 1; d < a.ndim(); ++d) g.push_back(TAxis(d));
    TExpr v = Widen(c.Read(0, g));
    if (v->dtype != st) v = TCast(st, v);
    TExpr row = TakeRow(attrs.mode, IndexValue(c.Read(1, k)), n);
    return TSelect(TBinary(TBinaryOp::kEQ, row, j), v, TConst(0, st));
  };
  // 0-d indices: one slice, no sum.
  TExpr sum = indices.ndim() == 0 ? term({}) : TReduce(TReduceOp::kSum, indices.dims(), term);
  return {sum->dtype == t ? sum : TCast(t, sum)};
}

// Backward ops: input 0 is the output gradient; the gradient has the shape and dtype of the
// forward input `like` (the last input).
void LikeLastInputShape(ShapeInferCtx& ctx) {
  int last = ctx.num_in() - 1;
  ctx.SetOut(0, ctx.in(last), "the gradient has the forward input's shape");
  ctx.SetIn(last, ctx.out(0), "the gradient has the forward input's shape");
}

// _backward_tile: dy has the tiled shape of data.
void TileBackwardShape(ShapeInferCtx& ctx) {
  LikeLastInputShape(ctx);
  const Shape& x = ctx.in(1);
  if (!x.IsFullyKnown()) return;
  std::vector<int64_t> din, drep;
  TileGeometry(x.dims(), ctx.attrs<TileAttrs>().reps, &din, &drep);
  for (size_t d = 0; d < din.size(); ++d) din[d] *= drep[d];
  ctx.SetIn(0, Shape(din), "the output gradient has tile's output shape");
}

// _backward_take: dy has take's output shape, a.shape[:axis] + indices.shape + a.shape[axis+1:].
void TakeBackwardShape(ShapeInferCtx& ctx) {
  LikeLastInputShape(ctx);
  const Shape& a = ctx.in(2);
  const Shape& idx = ctx.in(1);
  if (!a.IsFullyKnown() || !idx.IsFullyKnown() || a.ndim() == 0) return;
  int axis = NormalizeAxis(ctx, ctx.attrs<TakeAttrs>().axis, a.ndim(), "axis");
  std::vector<int64_t> dy(a.dims().begin(), a.dims().begin() + axis);
  dy.insert(dy.end(), idx.dims().begin(), idx.dims().end());
  dy.insert(dy.end(), a.dims().begin() + axis + 1, a.dims().end());
  ctx.SetIn(0, Shape(dy), "the output gradient has take's output shape");
}

void LikeOgradType(TypeInferCtx& ctx) {
  int last = ctx.num_in() - 1;
  ctx.SetOut(0, ctx.in(0), "the gradient has the output gradient's dtype");
  ctx.SetIn(last, ctx.out(0), "the gradient has the forward input's dtype");
}

}  // namespace

void RegisterLayoutOps(OpRegistry& r) {
  r.Register("_np_reshape")
      .Describe("the data with shape `newshape` (NumPy's reshape: one -1 inferred; () is 0-d)")
      .SetAttrs<NpReshapeAttrs>()
      .InferShape(NpReshapeShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Inplace(InplaceIdentity)
      .Reference([](KernelCtx& ctx) { CopyAllBytes(ctx.in[0], ctx.out[0]); })
      .Compute(ReshapeCompute())
      .Gradient([](GradCtx& g) -> GradList {
        return {g.Emit1("reshape_like", {g.ograd(0), g.input(0)})};
      });

  r.Register("tile")
      .Describe("the data repeated reps[i] times along axis i (NumPy's tile)")
      .SetAttrs<TileAttrs>()
      .InferShape(TileShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Reference(TileKernel)
      .Compute(TileCompute)
      .Gradient([](GradCtx& g) -> GradList {
        return {g.EmitWithAttrs("_backward_tile", {g.ograd(0), g.input(0)})[0]};
      });

  r.Register("_backward_tile")
      .Describe("gradient of tile: d output summed over the repetitions")
      .SetAttrs<TileAttrs>()
      .Inputs({"ograd", "data"})
      .InferShape(TileBackwardShape)
      .InferType(LikeOgradType)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, TileBackwardKernel<T>(ctx));
      })
      .Compute(TileBackwardCompute);

  r.Register("Pad")
      .Alias("pad")
      .Describe("the data padded by pad_width with a constant, the edge value or a reflection")
      .SetAttrs<PadAttrs>()
      .InferShape(PadShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kInjective)
      .Reference(PadKernel)
      .Compute(PadCompute)
      .Gradient([](GradCtx& g) -> GradList {
        const auto& a = g.attrs<PadAttrs>();
        if (a.mode != PadMode::kConstant)
          g.Fail(
              "Pad has a gradient in constant mode only (edge and reflect fold the border "
              "gradient back into the data, which kiln does not implement)");
        // Slice the padding off: [before, -after) per axis (an end of None when after is 0).
        std::vector<std::optional<int64_t>> begin, end;
        for (size_t i = 0; i + 1 < a.pad_width.size(); i += 2) {
          begin.push_back(a.pad_width[i]);
          end.push_back(a.pad_width[i + 1] > 0 ? std::optional<int64_t>(-a.pad_width[i + 1])
                                               : std::nullopt);
        }
        return {g.Emit1("slice", {g.ograd(0)},
                        {{"begin", attr_text::Print(begin)}, {"end", attr_text::Print(end)}})};
      });

  r.Register("take")
      .Describe("slices of a along axis at the given indices (modes clip, wrap, raise)")
      .SetAttrs<TakeAttrs>()
      .Inputs({"a", "indices"})
      .InferShape(TakeShape)
      .InferType(TakeType)
      .Pattern(FusionPattern::kInjective)
      .Reference(TakeKernel)
      .Compute(TakeCompute)
      .Gradient([](GradCtx& g) -> GradList {
        return {g.EmitWithAttrs("_backward_take", {g.ograd(0), g.input(1), g.input(0)})[0],
                std::nullopt};
      });

  r.Register("_backward_take")
      .Describe("gradient of take: d output added into zeros shaped like a at the indices")
      .SetAttrs<TakeAttrs>()
      .Inputs({"ograd", "indices", "a"})
      .InferShape(TakeBackwardShape)
      .InferType(LikeOgradType)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, TakeBackwardKernel<T>(ctx));
      })
      .Compute(TakeBackwardCompute);
}

}  // namespace kiln::ops
