// nn_loss.cpp - SoftmaxOutput (alias Softmax), LinearRegressionOutput and MakeLoss.
//
// These are MXNet's loss heads: their forward pass is a plain function of the data (the label
// is read only by the gradient), and their gradient is defined directly rather than derived
// from the forward pass: it is the gradient of the loss the head stands for (cross-entropy,
// squared error, the data itself), and the head gradient flowing into the output is ignored
// (multiplied in only by SoftmaxOutput's out_grad), as in MXNet. Each attribute struct records
// its op's gradient; the backward ops _backward_SoftmaxOutput, _backward_LinearRegressionOutput
// and _backward_MakeLoss compute them. Labels get no gradient.
//
// Fusion: all opaque. The forward passes are cheap, but the gradient rules single these nodes
// out as the graph's heads, and keeping them whole keeps that correspondence simple.
//
// Compute definitions (float32, float64 data; labels of any numeric type): SoftmaxOutput and its
// gradient (the count of valid labels is a reduction over the label), LinearRegressionOutput,
// MakeLoss and their gradients but MakeLoss's with normalization valid. They compute in the
// data's type where the reference computes in double.
#include <cmath>

#include "kiln/ir/grad.h"
#include "ops/nn_util.h"
#include "ops/register.h"

namespace kiln::ops {
namespace {

enum class LossNormalization { kNull, kBatch, kValid };

template <class A>
void DescribeNormalization(AttrSchema<A>& s, LossNormalization A::*member) {
  s.Enum("normalization", member,
         {{"null", LossNormalization::kNull},
          {"batch", LossNormalization::kBatch},
          {"valid", LossNormalization::kValid}});
}

// SoftmaxOutput. Forward: softmax of data over
//   - axis 1 of (n, c, d...) with multi_output (label (n, d...), or (n, prod d), or (n, 1, d...)),
//   - the last axis with preserve_shape,
//   - otherwise the flattened trailing axes: data viewed as (n, prod(rest)) (the last axis for
//     2-D data); label has the data's shape without its last axis.
// Gradient, as MXNet's SoftmaxOutputOp::Backward, with p = output, label l = int(label) (C++
// truncation) and k classes on the softmax axis:
//   d data = scale * (p - t), t = onehot(l), or with label smoothing (smooth_alpha = a) 1 - a at
//   l and a / (k - 1) elsewhere; a label outside [0, k) subtracts nothing. With use_ignore,
//   positions whose l == int(ignore_label) get 0. With out_grad, the result is multiplied by the
//   incoming output gradient; otherwise that gradient is ignored.
//   Rows and labels: multi_output: data (n, k, d...) and label (n, prod d) in any accepted form;
//   otherwise rows are the forward pass's softmax rows and row r reads label element r of the
//   flattened label (for data (n, k) the label of row r; for data of rank > 2 without
//   preserve_shape MXNet's rows are n, reading the first n labels, and kiln does the same).
//   scale = grad_scale / norm, with cnt = the number of label elements with l != int(ignore_label)
//   (counted whether or not use_ignore is set; at least 1):
//                    null       batch                   valid
//     multi_output   prod d     n * prod d              cnt
//     otherwise      1          label.size (= n for 2-D) cnt
//   MXNet's multi_output divides by the spatial size prod d even under null and batch, so that
//   null averages over positions and batch over positions and examples; kiln keeps that rule.
struct SoftmaxOutputAttrs {
  double grad_scale = 1.0;
  double ignore_label = -1.0;
  bool multi_output = false;
  bool use_ignore = false;
  bool preserve_shape = false;
  LossNormalization normalization = LossNormalization::kNull;
  bool out_grad = false;
  double smooth_alpha = 0.0;
  static void Describe(AttrSchema<SoftmaxOutputAttrs>& s) {
    s.Field("grad_scale", &SoftmaxOutputAttrs::grad_scale);
    s.Field("ignore_label", &SoftmaxOutputAttrs::ignore_label);
    s.Field("multi_output", &SoftmaxOutputAttrs::multi_output);
    s.Field("use_ignore", &SoftmaxOutputAttrs::use_ignore);
    s.Field("preserve_shape", &SoftmaxOutputAttrs::preserve_shape);
    DescribeNormalization(s, &SoftmaxOutputAttrs::normalization);
    s.Field("out_grad", &SoftmaxOutputAttrs::out_grad);
    s.Field("smooth_alpha", &SoftmaxOutputAttrs::smooth_alpha).Min(0).Max(1);
  }
};

void SoftmaxOutputShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<SoftmaxOutputAttrs>();
  Shape data = UnifyDataAndOutput(ctx);
  const Shape& label = ctx.in(1);
  if (!data.rank_known()) {
    // The label tells the data's rank and leading extents (not with multi_output, whose label
    // has several accepted forms).
    if (a.multi_output || !label.rank_known()) return;
    std::vector<int64_t> dims = label.dims();
    dims.push_back(Shape::kUnknownDim);
    ctx.SetIn(0, Shape(dims));
    ctx.SetOut(0, Shape(dims));
    return;
  }
  int n = data.ndim();
  if (!a.multi_output) {
    if (n < 1) ctx.Fail(StrCat("data ", data.ToString(), " is a scalar"));
    std::vector<int64_t> dims(data.dims().begin(), data.dims().end() - 1);
    Shape want(dims);
    Shape merged = label;
    if (!merged.Merge(want))
      ctx.Fail(StrCat("label ", label.ToString(), " does not fit data ", data.ToString(),
                      ": label must be ", want.ToString(), " (data without its last axis)"));
    ctx.SetIn(1, merged);
    for (int i = 0; i + 1 < n; ++i)
      if (!data.dim_known(i) && merged.dim_known(i)) data[i] = merged[i];
    ctx.SetIn(0, data);
    ctx.SetOut(0, data);
    return;
  }
  if (n < 2)
    ctx.Fail(StrCat("data ", data.ToString(), " has rank ", n,
                    " but multi_output needs (batch, classes, ...)"));
  // The three label forms MXNet accepts: (n, d...), (n, prod d) and (n, 1, d...).
  std::vector<int64_t> rest(data.dims().begin() + 2, data.dims().end());
  std::vector<int64_t> by_axes = {data[0]};
  by_axes.insert(by_axes.end(), rest.begin(), rest.end());
  Shape rest_shape(rest);
  Shape flat{data[0], rest.empty() ? 1 : rest_shape.NumElements()};
  Shape keep = data;
  keep[1] = 1;
  Shape want(by_axes);
  if (label.rank_known()) {
    if (label.ndim() == n)
      want = keep;
    else if (label.ndim() == 2 && n != 3)
      want = flat;
    else if (label.ndim() != n - 1)
      ctx.Fail(StrCat("label ", label.ToString(), " does not fit data ", data.ToString(),
                      " with multi_output: label must be ", Shape(by_axes).ToString(), ", ",
                      flat.ToString(), " or ", keep.ToString()));
  }
  Shape merged = label;
  if (!merged.Merge(want))
    ctx.Fail(StrCat("label ", label.ToString(), " does not fit data ", data.ToString(),
                    " with multi_output: label must be ", Shape(by_axes).ToString(), ", ",
                    flat.ToString(), " or ", keep.ToString()));
  ctx.SetIn(1, merged);
  if (!data.dim_known(0) && merged.dim_known(0)) {
    data[0] = merged[0];
    ctx.SetIn(0, data);
    ctx.SetOut(0, data);
  }
}

// Data (and output) floating point; the label of any numeric type, by default the data's.
void LossWithLabelType(TypeInferCtx& ctx) {
  DType t = ctx.in(0) != DType::kUnknown ? ctx.in(0) : ctx.out(0);
  RequireFloat(ctx, t, "data");
  RequireNumeric(ctx, ctx.in(1), "label");
  if (t == DType::kUnknown) return;
  ctx.SetIn(0, t);
  ctx.SetOut(0, t, "output has the data's dtype");
  if (ctx.in(1) == DType::kUnknown) ctx.SetIn(1, t, "label defaults to the data's dtype");
}

template <class T>
void SoftmaxOutputKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<SoftmaxOutputAttrs>();
  const Tensor &x = ctx.in[0], &y = ctx.out[0];
  int64_t outer = 1, m = 1, inner = 1;
  if (a.multi_output) {
    outer = x.dim(0);
    m = x.dim(1);
    inner = x.size() / std::max<int64_t>(outer * m, 1);
  } else if (a.preserve_shape) {
    m = x.dim(x.ndim() - 1);
    outer = x.size() / std::max<int64_t>(m, 1);
  } else {
    outer = x.dim(0);
    m = x.size() / std::max<int64_t>(outer, 1);
  }
  StableSoftmax(x.data<T>(), y.data<T>(), outer, m, inner, false, 1.0);
}

// LinearRegressionOutput. Forward: output = data. Label: the data's shape, or (n) for data
// (n, 1), as MXNet; a given label must have the data's first extent and element count.
// Gradient, as MXNet's RegressionOutputOp: d data = grad_scale / num_output * (output - label),
// elementwise in flat order, where num_output = label.size / label.shape[0] (the element count
// of one example), so that the loss is the per-example mean of half squared errors summed over
// the batch. The head gradient is ignored; the label gets no gradient.
struct RegressionOutputAttrs {
  double grad_scale = 1.0;
  static void Describe(AttrSchema<RegressionOutputAttrs>& s) {
    s.Field("grad_scale", &RegressionOutputAttrs::grad_scale);
  }
};

void RegressionOutputShape(ShapeInferCtx& ctx) {
  Shape data = UnifyDataAndOutput(ctx);
  const Shape& label = ctx.in(1);
  if (!label.rank_known()) {
    if (!data.rank_known()) return;
    bool column = data.ndim() == 2 && data.dim_known(1) && data[1] == 1;
    ctx.SetIn(1, column ? Shape{data[0]} : data, "label has the data's shape");
    return;
  }
  if (!data.rank_known()) {
    // A 1-D label fits data (n) and data (n, 1); any other label is the data's shape.
    if (label.ndim() != 1) {
      ctx.SetIn(0, label);
      ctx.SetOut(0, label);
    }
    return;
  }
  Shape same = data;
  if (label.ndim() == data.ndim() && same.Merge(label)) {
    ctx.SetIn(0, same);
    ctx.SetOut(0, same);
    ctx.SetIn(1, same);
    return;
  }
  // Otherwise MXNet asks only for the same first extent and the same element count.
  bool bad =
      data.ndim() == 0 || label.ndim() == 0 ||
      (data.dim_known(0) && label.dim_known(0) && data[0] != label[0]) ||
      (data.IsFullyKnown() && label.IsFullyKnown() && data.NumElements() != label.NumElements());
  if (bad)
    ctx.Fail(StrCat("label ", label.ToString(), " does not fit data ", data.ToString(),
                    ": label must have the data's shape (or its first extent and size)"));
}

template <class T>
void IdentityKernel(const KernelCtx& ctx) {
  const T* x = ctx.in[0].data<T>();
  T* y = ctx.out[0].data<T>();
  for (int64_t i = 0; i < ctx.in[0].size(); ++i) y[i] = x[i];
}

// MakeLoss. Forward: output = data (the data is taken to be a loss already computed).
// Gradient, as MXNet's MakeLossOp: d data = grad_scale / norm everywhere, with norm 1 (null),
// data.shape[0] (batch), or the number of data elements > valid_thresh, at least 1 (valid). The
// head gradient is ignored.
struct MakeLossAttrs {
  double grad_scale = 1.0;
  double valid_thresh = 0.0;
  LossNormalization normalization = LossNormalization::kNull;
  static void Describe(AttrSchema<MakeLossAttrs>& s) {
    s.Field("grad_scale", &MakeLossAttrs::grad_scale);
    s.Field("valid_thresh", &MakeLossAttrs::valid_thresh);
    DescribeNormalization(s, &MakeLossAttrs::normalization);
  }
};

// ----- Compute definitions -----

bool IsLabelType(DType t) {
  return IsComputeFloat(t) || t == DType::kInt32 || t == DType::kInt64;
}

// The axes of one softmax row of SoftmaxOutput's data (see SoftmaxOutputAttrs).
std::vector<int> SoftmaxRowAxes(const SoftmaxOutputAttrs& a, int rank) {
  if (a.multi_output) return {1};
  if (a.preserve_shape) return {rank - 1};
  std::vector<int> axes;
  for (int d = 1; d < rank; ++d) axes.push_back(d);
  return axes;
}

std::vector<TExpr> SoftmaxOutputCompute(const ComputeCtx& c) {
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t) || c.in_dtype(0) != t) return {};
  const Shape& s = c.in_shape(0);
  std::vector<int> axes = SoftmaxRowAxes(c.attrs<SoftmaxOutputAttrs>(), s.ndim());
  std::vector<int64_t> extents;
  for (int d : axes) extents.push_back(s[d]);
  auto x = [&](const std::vector<TExpr>& r) {
    std::vector<TExpr> idx;
    for (int d = 0; d < s.ndim(); ++d) idx.push_back(TAxis(d));
    for (size_t k = 0; k < axes.size(); ++k) idx[size_t(axes[k])] = r[k];
    return c.Read(0, idx);
  };
  TExpr mx = TReduce(TReduceOp::kMaxNum, extents, x);
  TExpr sum = TReduce(TReduceOp::kSum, extents,
                      [&](const std::vector<TExpr>& r) { return TCall(TMath::kExp, {x(r) - mx}); });
  return {TCall(TMath::kExp, {c.In(0) - mx}) / sum};
}

// The row-major flat index of `idx` over `dims`.
TExpr Flat(const std::vector<TExpr>& idx, const std::vector<int64_t>& dims) {
  TExpr f = TIndex(0);
  for (size_t d = 0; d < idx.size(); ++d) f = f * TIndex(dims[d]) + idx[d];
  return f;
}

// Input j read at flat position `pos` (in range).
TExpr ReadFlat(const ComputeCtx& c, int j, TExpr pos) {
  const Shape& s = c.in_shape(j);
  std::vector<TExpr> idx(size_t(s.ndim()));
  for (int d = s.ndim(); d-- > 0;) {
    idx[size_t(d)] = d == 0 ? pos : pos % TIndex(s[d]);
    pos = pos / TIndex(s[d]);
  }
  return c.Read(j, idx);
}

std::vector<TExpr> SoftmaxOutputBackwardCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<SoftmaxOutputAttrs>();
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t) || c.in_dtype(0) != t || !IsLabelType(c.in_dtype(1))) return {};
  if (a.out_grad && c.in_dtype(2) != t) return {};
  const Shape& s = c.in_shape(0);
  const Shape& label = c.in_shape(1);
  int rank = s.ndim();
  std::vector<TExpr> axes;
  for (int d = 0; d < rank; ++d) axes.push_back(TAxis(d));
  auto span = [&](int b, int e) { return std::vector<TExpr>(axes.begin() + b, axes.begin() + e); };
  auto dims = [&](int b, int e) {
    return std::vector<int64_t>(s.dims().begin() + b, s.dims().begin() + e);
  };
  // The class j of the current element and its label's flat position.
  TExpr j, pos;
  int64_t outer = 1, k = 1, inner = 1;
  if (a.multi_output) {
    j = TAxis(1);
    inner = Shape(dims(2, rank)).NumElements();
    pos = TAxis(0) * TIndex(inner) + Flat(span(2, rank), dims(2, rank));
    outer = s[0];
    k = s[1];
  } else if (a.preserve_shape) {
    j = TAxis(rank - 1);
    pos = Flat(span(0, rank - 1), dims(0, rank - 1));
    k = s[rank - 1];
  } else {
    j = Flat(span(1, rank), dims(1, rank));
    pos = TAxis(0);
    k = Shape(dims(1, rank)).NumElements();
  }
  int64_t label_size = label.NumElements();
  auto label_int = [&](TExpr v) { return v->dtype == DType::kInt64 ? v : TCast(DType::kInt64, v); };
  TExpr l = label_int(ReadFlat(c, 1, TMin(pos, TIndex(std::max<int64_t>(label_size - 1, 0)))));
  l = TSelect(TBinary(TBinaryOp::kLT, pos, TIndex(label_size)), l, TIndex(-1));
  double ig = a.ignore_label;
  TExpr ignore = TIndex(std::isnan(ig) ? 0 : int64_t(std::trunc(ig)));
  TExpr scale;
  switch (a.normalization) {
    case LossNormalization::kNull:
      scale = TConst(a.grad_scale / (a.multi_output ? double(inner) : 1.0), t);
      break;
    case LossNormalization::kBatch:
      scale =
          TConst(a.grad_scale / (a.multi_output ? double(outer * inner) : double(label_size)), t);
      break;
    case LossNormalization::kValid: {
      TExpr valid = TReduce(TReduceOp::kSum, label.dims(), [&](const std::vector<TExpr>& r) {
        return TSelect(TBinary(TBinaryOp::kNE, label_int(c.Read(1, r)), ignore), TIndex(1),
                       TIndex(0));
      });
      scale = TConst(a.grad_scale, t) / TCast(t, TMax(valid, TIndex(1)));
      break;
    }
  }
  double on = 1 - a.smooth_alpha, off = k > 1 ? a.smooth_alpha / double(k - 1) : 0.0;
  TExpr target = TSelect(TBinary(TBinaryOp::kEQ, j, l), TConst(on, t), TConst(off, t));
  TExpr g = (c.In(0) - target) * scale;
  if (a.use_ignore) g = TSelect(TBinary(TBinaryOp::kEQ, l, ignore), TConst(0, t), g);
  if (a.out_grad) g = g * c.In(2);
  return {g};
}

std::vector<TExpr> IdentityCompute(const ComputeCtx& c) {
  if (!IsComputeFloat(c.out_dtype(0)) || c.in_dtype(0) != c.out_dtype(0)) return {};
  return {c.In(0)};
}

std::vector<TExpr> RegressionOutputBackwardCompute(const ComputeCtx& c) {
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t) || c.in_dtype(0) != t || !IsLabelType(c.in_dtype(1))) return {};
  const Shape& label = c.in_shape(1);
  double num_output =
      label.ndim() > 0 && label[0] > 0 ? double(label.NumElements()) / double(label[0]) : 1.0;
  std::vector<TExpr> axes = c.Axes();
  TExpr l = ReadFlat(c, 1, Flat(axes, c.out_shape(0).dims()));
  if (l->dtype != t) l = TCast(t, l);
  return {(c.In(0) - l) * TConst(c.attrs<RegressionOutputAttrs>().grad_scale / num_output, t)};
}

std::vector<TExpr> MakeLossBackwardCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<MakeLossAttrs>();
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t) || a.normalization == LossNormalization::kValid) return {};
  const Shape& x = c.in_shape(0);
  double norm = a.normalization == LossNormalization::kBatch && x.ndim() > 0 ? double(x[0]) : 1;
  return {TConst(a.grad_scale / norm, t)};
}

// ----- Gradients -----

// Inputs output, label and (out_grad) ograd; output data_grad. See SoftmaxOutputAttrs.
template <class T>
void SoftmaxOutputBackwardKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<SoftmaxOutputAttrs>();
  const Tensor &y = ctx.in[0], &dx = ctx.out[0];
  std::vector<double> label = ReadDoubles(ctx.in[1]);
  // The softmax view (outer, k, inner) and, per (outer, inner) position, its label index.
  int64_t outer = 1, k = 1, inner = 1;
  if (a.multi_output) {
    outer = y.dim(0);
    k = y.dim(1);
    inner = y.size() / std::max<int64_t>(outer * k, 1);
  } else if (a.preserve_shape) {
    k = y.dim(y.ndim() - 1);
    outer = y.size() / std::max<int64_t>(k, 1);
  } else {
    outer = y.dim(0);
    k = y.size() / std::max<int64_t>(outer, 1);
  }
  auto label_int = [](double v) { return std::isnan(v) ? int64_t(0) : int64_t(std::trunc(v)); };
  const int64_t ignore = label_int(a.ignore_label);
  int64_t valid = 0;
  for (double l : label) valid += label_int(l) != ignore;
  double norm = 1;
  switch (a.normalization) {
    case LossNormalization::kNull:
      norm = a.multi_output ? double(inner) : 1.0;
      break;
    case LossNormalization::kBatch:
      norm = a.multi_output ? double(outer * inner) : double(label.size());
      break;
    case LossNormalization::kValid:
      norm = double(std::max<int64_t>(valid, 1));
      break;
  }
  double scale = a.grad_scale / norm;
  double on = 1 - a.smooth_alpha, off = k > 1 ? a.smooth_alpha / double(k - 1) : 0.0;
  const T* yp = y.data<T>();
  const T* gp = a.out_grad ? ctx.in[2].data<T>() : nullptr;
  T* dxp = dx.data<T>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      size_t pos = size_t(o * inner + i);
      int64_t l = pos < label.size() ? label_int(label[pos]) : -1;
      bool ignored = a.use_ignore && l == ignore;
      for (int64_t j = 0; j < k; ++j) {
        int64_t at = (o * k + j) * inner + i;
        double t = j == l ? on : off;
        double g = ignored ? 0.0 : (double(yp[at]) - t) * scale;
        if (gp) g *= double(gp[at]);
        dxp[at] = static_cast<T>(g);
      }
    }
}

// Inputs output, label; output data_grad. See RegressionOutputAttrs.
template <class T>
void RegressionOutputBackwardKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<RegressionOutputAttrs>();
  const Tensor &y = ctx.in[0], &label = ctx.in[1];
  std::vector<double> l = ReadDoubles(label);
  double num_output =
      label.ndim() > 0 && label.dim(0) > 0 ? double(label.size()) / double(label.dim(0)) : 1.0;
  const T* yp = y.data<T>();
  T* dxp = ctx.out[0].data<T>();
  for (int64_t i = 0; i < y.size(); ++i)
    dxp[i] = static_cast<T>((double(yp[i]) - l[size_t(i)]) * a.grad_scale / num_output);
}

// Input data; output data_grad. See MakeLossAttrs.
template <class T>
void MakeLossBackwardKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<MakeLossAttrs>();
  const Tensor& x = ctx.in[0];
  const T* xp = x.data<T>();
  double norm = 1;
  if (a.normalization == LossNormalization::kBatch && x.ndim() > 0) norm = double(x.dim(0));
  if (a.normalization == LossNormalization::kValid) {
    int64_t valid = 0;
    for (int64_t i = 0; i < x.size(); ++i) valid += double(xp[i]) > a.valid_thresh;
    norm = double(std::max<int64_t>(valid, 1));
  }
  T* dxp = ctx.out[0].data<T>();
  for (int64_t i = 0; i < x.size(); ++i) dxp[i] = static_cast<T>(a.grad_scale / norm);
}

// The head's output (and ograd) relate to the label as the forward op's output does; data_grad
// has the output's shape.
void LossBackwardShape(ShapeInferCtx& ctx, const char* fwd_op) {
  for (int i = 2; i < ctx.num_in(); ++i) {  // SoftmaxOutput's ograd
    Shape s = ctx.in(0);
    if (!s.Merge(ctx.in(i)))
      ctx.Fail(StrCat("output ", ctx.in(0).ToString(), " and ograd ", ctx.in(i).ToString(),
                      " differ but must have one shape"));
    ctx.SetIn(0, s);
    ctx.SetIn(i, s);
  }
  ctx.SetIn(0, ctx.out(0));
  InferShapesAsForward(ctx, fwd_op, {-1, 1}, {0});
  ctx.SetOut(0, ctx.in(0));
  for (int i = 2; i < ctx.num_in(); ++i) ctx.SetIn(i, ctx.in(0));
}

// Every input but the label, and the gradient, have the data's dtype.
void LossBackwardType(TypeInferCtx& ctx) {
  RequireNumeric(ctx, ctx.in(1), "label");
  DType t = ctx.in(0) != DType::kUnknown ? ctx.in(0) : ctx.out(0);
  for (int i = 2; i < ctx.num_in() && t == DType::kUnknown; ++i) t = ctx.in(i);
  if (t == DType::kUnknown) return;
  RequireFloat(ctx, t, "output");
  ctx.SetIn(0, t);
  for (int i = 2; i < ctx.num_in(); ++i) ctx.SetIn(i, t, "ograd has the output's dtype");
  ctx.SetOut(0, t, "data_grad has the data's dtype");
}

}  // namespace

// In inference the label is not read: SoftmaxOutput is a softmax over the axis its attributes
// choose, so that a deployed model does not ask for labels.
GradList SoftmaxOutputInferenceForm(GradCtx& g) {
  const SoftmaxOutputAttrs& a = g.attrs<SoftmaxOutputAttrs>();
  const Graph& graph = g.graph();
  if (!graph.has_shapes()) return {std::nullopt};
  const Shape& d = graph.shape(g.input(0));
  if (!d.IsFullyKnown()) return {std::nullopt};
  if (a.multi_output && d.ndim() >= 2) return {g.Emit1("softmax", {g.input(0)}, {{"axis", "1"}})};
  if (a.multi_output || a.preserve_shape || d.ndim() <= 2)
    return {g.Emit1("softmax", {g.input(0)}, {{"axis", "-1"}})};
  Entry rows = g.Emit1("Reshape", {g.input(0)}, {{"shape", "(0, -1)"}});
  Entry p = g.Emit1("softmax", {rows}, {{"axis", "-1"}});
  return {g.Emit1("Reshape", {p}, {{"shape", attr_text::Print(d.dims())}})};
}

void RegisterLossOps(OpRegistry& r) {
  r.Register("SoftmaxOutput")
      .Alias("Softmax")
      .Describe(
          "softmax head of a classifier: forward softmax (over axis 1 with multi_output, the "
          "last axis with preserve_shape, else the flattened trailing axes); gradient "
          "softmax - onehot(label)")
      .SetAttrs<SoftmaxOutputAttrs>()
      .Inputs({"data", "label"})
      .InferShape(SoftmaxOutputShape)
      .InferType(LossWithLabelType)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, SoftmaxOutputKernel<T>(ctx));
      })
      .Compute(SoftmaxOutputCompute)
      .InferenceForm(SoftmaxOutputInferenceForm)
      .Gradient([](GradCtx& g) -> GradList {
        std::vector<Entry> in = {g.output(0), g.input(1)};
        if (g.attrs<SoftmaxOutputAttrs>().out_grad) in.push_back(g.ograd(0));
        return {g.EmitWithAttrs("_backward_SoftmaxOutput", in)[0], std::nullopt};
      });

  r.Register("_backward_SoftmaxOutput")
      .Describe(
          "gradient of SoftmaxOutput: d data = (softmax - onehot(label)) * grad_scale / "
          "normalization from (output, label[, d output with out_grad])")
      .SetAttrs<SoftmaxOutputAttrs>()
      .Inputs([](const Attrs& a) {
        return a.Get<SoftmaxOutputAttrs>().out_grad
                   ? std::vector<std::string>{"output", "label", "ograd"}
                   : std::vector<std::string>{"output", "label"};
      })
      .Outputs({"data_grad"})
      .InferShape([](ShapeInferCtx& ctx) { LossBackwardShape(ctx, "SoftmaxOutput"); })
      .InferType(LossBackwardType)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, SoftmaxOutputBackwardKernel<T>(ctx));
      })
      .Compute(SoftmaxOutputBackwardCompute);

  r.Register("LinearRegressionOutput")
      .Describe("least-squares head: forward identity; gradient output - label")
      .SetAttrs<RegressionOutputAttrs>()
      .Inputs({"data", "label"})
      .InferShape(RegressionOutputShape)
      .InferType(LossWithLabelType)
      .Inplace(InplaceIdentity)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, IdentityKernel<T>(ctx));
      })
      .Compute(IdentityCompute)
      .Gradient([](GradCtx& g) -> GradList {
        return {g.EmitWithAttrs("_backward_LinearRegressionOutput", {g.output(0), g.input(1)})[0],
                std::nullopt};
      });

  r.Register("_backward_LinearRegressionOutput")
      .Describe(
          "gradient of LinearRegressionOutput: d data = (output - label) * grad_scale / "
          "num_output from (output, label)")
      .SetAttrs<RegressionOutputAttrs>()
      .Inputs({"output", "label"})
      .Outputs({"data_grad"})
      .InferShape([](ShapeInferCtx& ctx) { LossBackwardShape(ctx, "LinearRegressionOutput"); })
      .InferType(LossBackwardType)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, RegressionOutputBackwardKernel<T>(ctx));
      })
      .Compute(RegressionOutputBackwardCompute);

  r.Register("MakeLoss")
      .Describe("marks data as a loss: forward identity; gradient grad_scale / normalisation")
      .SetAttrs<MakeLossAttrs>()
      .InferShape(SameShapeInfer)
      .InferType(FloatTypeInfer)
      .Inplace(InplaceIdentity)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, IdentityKernel<T>(ctx));
      })
      .Compute(IdentityCompute)
      .Gradient([](GradCtx& g) -> GradList {
        return {g.EmitWithAttrs("_backward_MakeLoss", {g.input(0)})[0]};
      });

  r.Register("_backward_MakeLoss")
      .Describe("gradient of MakeLoss: d data = grad_scale / normalization, from data")
      .SetAttrs<MakeLossAttrs>()
      .Outputs({"data_grad"})
      .InferShape(SameShapeInfer)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, MakeLossBackwardKernel<T>(ctx));
      })
      .Compute(MakeLossBackwardCompute);
}

}  // namespace kiln::ops
