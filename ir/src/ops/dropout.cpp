// dropout.cpp - Dropout: its rules, reference kernel and compute definition.
//
// Dropout (MXNet 1.x semantics): output = data * mask, where mask is 0 with probability p and
//   1/(1-p) otherwise, drawn once per element of the mask; mask has the data's shape with
//   `axes` of extent 1 (one draw shared along them). Active only when training or mode =
//   always; otherwise output = data and mask = 1. p = 1 drops everything (mask 0).
// The draws: mask element i (row-major in the mask's shape) is kept when RandomBits(seed,
//   RandomStream(node name), i) >= KeepThreshold(p) (kiln/ir/random.h). The reference kernel and
//   the compute definition evaluate exactly that, so interpreter and compiled code give the same
//   mask bit for bit at any thread count (docs/decisions.md D50).
// Gradient: d data = d output * mask (broadcast along the shared axes); mask is 1 when inactive.
// Compute definition: float32 and float64, both modes (the definition sees the mode).
// Fusion: elementwise. The draws depend on the element's index alone, not on the order of
//   evaluation, so Dropout joins its neighbours' kernels (a FullyConnected's epilogue, a
//   relu); its mask is stored only where something reads it (the gradient, in training).
#include <optional>
#include <vector>

#include "kiln/ir/grad.h"
#include "kiln/ir/random.h"
#include "ops/nn_util.h"
#include "ops/register.h"

namespace kiln::ops {
namespace {

enum class DropoutMode { kTraining, kAlways };

struct DropoutAttrs {
  double p = 0.5;
  DropoutMode mode = DropoutMode::kTraining;
  std::vector<int64_t> axes;  // axes along which one draw is shared (variational dropout)
  std::optional<bool> cudnn_off = false;  // accepted and ignored
  static void Describe(AttrSchema<DropoutAttrs>& s) {
    s.Field("p", &DropoutAttrs::p).Min(0).Max(1);
    s.Enum("mode", &DropoutAttrs::mode,
           {{"training", DropoutMode::kTraining}, {"always", DropoutMode::kAlways}});
    s.Field("axes", &DropoutAttrs::axes);
    s.Field("cudnn_off", &DropoutAttrs::cudnn_off);
  }
};

void DropoutShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<DropoutAttrs>();
  Shape data = UnifyDataAndOutput(ctx);
  if (!data.rank_known() && ctx.out(1).rank_known()) data = Shape::UnknownDims(ctx.out(1).ndim());
  if (!data.rank_known()) return;
  Shape mask = data;
  std::vector<bool> shared(size_t(data.ndim()), false);
  for (int64_t axis : a.axes) {
    int ax = NormalizeAxis(ctx, axis, data.ndim(), "axes");
    mask[ax] = 1;
    shared[size_t(ax)] = true;
  }
  // The mask tells the data's extent on every axis it is not shared along.
  const Shape& m = ctx.out(1);
  if (m.rank_known() && m.ndim() == data.ndim())
    for (int i = 0; i < data.ndim(); ++i)
      if (!shared[size_t(i)] && !data.dim_known(i)) data[i] = mask[i] = m[i];
  ctx.SetIn(0, data);
  ctx.SetOut(0, data);
  ctx.SetOut(1, mask, "mask has the data's shape with axes of extent 1");
}

template <class T>
void DropoutKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<DropoutAttrs>();
  const Tensor &x = ctx.in[0], &y = ctx.out[0], &mask = ctx.out[1];
  T* mp = mask.data<T>();
  bool active = (ctx.is_train || a.mode == DropoutMode::kAlways) && a.p > 0;
  if (!active) {
    for (int64_t i = 0; i < mask.size(); ++i) mp[i] = static_cast<T>(1.0);
  } else {
    const uint64_t stream = RandomStream(ctx.node_name);
    const int64_t threshold = KeepThreshold(a.p);
    const T scale = static_cast<T>(a.p < 1 ? 1.0 / (1.0 - a.p) : 0.0);
    for (int64_t i = 0; i < mask.size(); ++i)
      mp[i] = RandomBits(ctx.seed, stream, uint64_t(i)) >= threshold ? scale : static_cast<T>(0.0);
  }
  // output[i] = data[i] * mask[i with the shared axes at 0].
  std::vector<int64_t> xs = Strides(x.shape()), ms = Strides(mask.shape());
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  for (int64_t i = 0; i < x.size(); ++i) {
    int64_t rest = i, mi = 0;
    for (int d = 0; d < x.ndim(); ++d) {
      int64_t coord = rest / xs[size_t(d)];
      rest %= xs[size_t(d)];
      if (mask.dim(d) != 1) mi += coord * ms[size_t(d)];
    }
    yp[i] = static_cast<T>(AccType<T>(xp[i]) * AccType<T>(mp[mi]));
  }
}

std::vector<TExpr> DropoutCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<DropoutAttrs>();
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t) || c.in_dtype(0) != t || c.out_dtype(1) != t) return {};
  TExpr x = c.In(0);
  if (!((c.is_train() || a.mode == DropoutMode::kAlways) && a.p > 0)) return {x, TConst(1, t)};
  TExpr keep =
      TBinary(TBinaryOp::kGE, c.RandomBits(TFlatIndex(c.out_shape(1))), TIndex(KeepThreshold(a.p)));
  TExpr mask = TSelect(keep, TConst(a.p < 1 ? 1.0 / (1.0 - a.p) : 0.0, t), TConst(0, t));
  return {x * mask, mask};
}

}  // namespace

void RegisterDropoutOps(OpRegistry& r) {
  r.Register("Dropout")
      .Describe(
          "output = data * mask, mask 0 with probability p and 1/(1-p) otherwise, when training "
          "or mode = always; identity otherwise")
      .SetAttrs<DropoutAttrs>()
      .Outputs({"output", "mask"})
      .VisibleOutputs([](const Attrs&) { return 1; })
      .InferShape(DropoutShape)
      .InferType(FloatTypeInfer)
      .Random([](const Attrs&) { return true; })
      .Inplace(InplaceIdentity)
      .Pattern(FusionPattern::kElemwise)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.in[0].dtype(), T, DropoutKernel<T>(ctx));
      })
      .Compute(DropoutCompute)
      // In inference (mode = training) the output is the data; the mask (all ones) has no
      // replacement, so the rewrite applies where nobody reads it.
      .InferenceForm([](GradCtx& g) -> GradList {
        if (g.attrs<DropoutAttrs>().mode == DropoutMode::kAlways)
          return {std::nullopt, std::nullopt};
        return {g.input(0), std::nullopt};
      })
      // d data = d output * mask; the mask has extent 1 along the shared axes, hence broadcast.
      .Gradient([](GradCtx& g) -> GradList {
        return {g.Emit1("broadcast_mul", {g.ograd(0), g.output(1)})};
      });
}

}  // namespace kiln::ops
