// nn_loss.cpp - SoftmaxOutput (alias Softmax), LinearRegressionOutput and MakeLoss.
//
// These are MXNet's loss heads: their forward pass is a plain function of the data (the label
// is read only by the gradient), and their gradient is defined directly rather than derived
// from the forward pass. The gradients come with the gradient issue; their semantics are
// recorded in each attribute struct so that they are fixed here, next to the attributes.
//
// Fusion: all opaque. The forward passes are cheap, but the gradient rules single these nodes
// out as the graph's heads, and keeping them whole keeps that correspondence simple.
#include <cmath>

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
// Gradient (later issue), with p = output and one-hot(label) over the softmax axis:
//   d data = grad_scale * (p - onehot(label)) / norm, where label smoothing (smooth_alpha = a)
//   replaces onehot by (1 - a) at the label and a / (k - 1) elsewhere; with use_ignore,
//   positions whose label == ignore_label get gradient 0; norm is 1 (null), the batch size
//   (batch) or the number of non-ignored labels (valid; at least 1). With out_grad, the
//   incoming output gradient multiplies the result. The label gets no gradient.
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
// Gradient (later issue): d data = grad_scale / num_output * (output - label), where num_output
// is the element count of one example (label size / batch); the label gets no gradient.
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
// Gradient (later issue): d data = grad_scale / norm, where norm is 1 (null), the batch size
// (batch) or the number of data elements above valid_thresh (valid; at least 1).
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

}  // namespace

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
      });

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
      });

  r.Register("MakeLoss")
      .Describe("marks data as a loss: forward identity; gradient grad_scale / normalisation")
      .SetAttrs<MakeLossAttrs>()
      .InferShape(SameShapeInfer)
      .InferType(FloatTypeInfer)
      .Inplace(InplaceIdentity)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, IdentityKernel<T>(ctx));
      });
}

}  // namespace kiln::ops
