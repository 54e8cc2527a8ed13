// nn_norm.cpp - BatchNorm and LayerNorm (Dropout is in dropout.cpp).
//
// BatchNorm (MXNet 1.x semantics):
//   inputs data, gamma, beta, moving_mean, moving_var; the last two are auxiliary states.
//   outputs output, mean, var; only output is visible unless output_mean_var.
//   Statistics are per channel of `axis`, over every other axis.
//   Inference, or use_global_stats: normalise with moving_mean / moving_var.
//   Training (is_train && !use_global_stats): normalise with the batch mean and the biased batch
//   variance (divided by the element count, as MXNet), and update the auxiliary states in place:
//     moving = moving * momentum + batch * (1 - momentum).
//   fix_gamma: gamma is read as 1 (its value is ignored; its gradient will be 0).
//   Outputs mean and var are, as MXNet's CPU and cuDNN kernels save them, the mean used and the
//   *inverse standard deviation* 1 / sqrt(var + eps) used (0 when var and eps are both 0).
//   dtypes: float16 and bfloat16 data take float32 parameters and statistics; float32 and
//   float64 data take parameters of their own type (MXNet's AccReal).
// LayerNorm: per position of every axis but `axis`, normalise over `axis`:
//   output = (x - mean) / sqrt(var + eps) * gamma + beta; outputs mean and std (= sqrt(var +
//   eps)) have the data's shape with `axis` of extent 1.
//
// Gradients:
//   BatchNorm (_backward_BatchNorm, from d output, data, gamma and the saved mean and inv_std
//   outputs; the rule asks, as MXNet's kernels do, whether the backward pass runs in training):
//     training, batch statistics: d x = w inv_std (dy - mean(dy) - xhat mean(dy xhat)), the
//       gradient through the batch mean and variance, with xhat = (x - mean) inv_std;
//     use_global_stats or inference: d x = w inv_std dy, the moving statistics being constants;
//     d gamma = sum(dy xhat) (0 with fix_gamma), d beta = sum(dy); w = gamma (1 with fix_gamma).
//     The moving statistics (auxiliary states) get no gradient; gradients flowing into the mean
//     and var outputs (output_mean_var) are ignored, as MXNet ignores them.
//   LayerNorm (_backward_LayerNorm, from the saved mean and std): d x = (g - mean(g) - xhat
//     mean(g xhat)) / std with g = dy gamma, means over axis; d gamma = sum(dy xhat), d beta =
//     sum(dy) over every other axis. Gradients into the mean and std outputs are ignored.
//
// Compute definitions (float32 and float64 with parameters of the data's type): BatchNorm with
//   use_global_stats only (training with batch statistics updates its auxiliary inputs in
//   place, which definitions cannot express, and definitions do not see the mode);
//   _backward_BatchNorm as in a training pass, when no axis before `axis` has more than one
//   element in all (see BatchNormBackwardCompute); LayerNorm and _backward_LayerNorm.
//
// Fusion: BatchNorm is out-elementwise-fusable: it reduces (batch statistics) and then maps
// every element, so an elementwise epilogue (relu, a residual add) on its output 0 costs nothing
// (the fuse pass gives multi-output ops epilogues on output 0 only). LayerNorm is opaque for now.
#include <cmath>
#include <functional>
#include <optional>

#include "kiln/ir/grad.h"
#include "ops/nn_util.h"
#include "ops/register.h"

namespace kiln::ops {
namespace {

// ----- BatchNorm -----

struct BatchNormAttrs {
  double eps = 1e-3;
  double momentum = 0.9;
  bool fix_gamma = true;
  bool use_global_stats = false;
  bool output_mean_var = false;
  int64_t axis = 1;
  bool cudnn_off = false;                 // accepted and ignored
  std::optional<double> min_calib_range;  // quantisation ranges: accepted and ignored
  std::optional<double> max_calib_range;
  static void Describe(AttrSchema<BatchNormAttrs>& s) {
    s.Field("eps", &BatchNormAttrs::eps).Min(0);
    s.Field("momentum", &BatchNormAttrs::momentum).Min(0).Max(1);
    s.Field("fix_gamma", &BatchNormAttrs::fix_gamma);
    s.Field("use_global_stats", &BatchNormAttrs::use_global_stats);
    s.Field("output_mean_var", &BatchNormAttrs::output_mean_var);
    s.Field("axis", &BatchNormAttrs::axis);
    s.Field("cudnn_off", &BatchNormAttrs::cudnn_off);
    s.Field("min_calib_range", &BatchNormAttrs::min_calib_range);
    s.Field("max_calib_range", &BatchNormAttrs::max_calib_range);
  }
};

// Shared by BatchNorm and LayerNorm: `data` and output 0 have one shape; inputs `params` are
// vectors of data[axis] elements. Returns data's shape (partial) and the normalised axis (or -1
// while data's rank is unknown).
std::pair<Shape, int> NormDataAndParams(ShapeInferCtx& ctx, int64_t axis,
                                        const std::vector<int>& params) {
  Shape data = UnifyDataAndOutput(ctx);
  int ax = data.rank_known() ? NormalizeAxis(ctx, axis, data.ndim(), "axis") : -1;
  // The channel count: from the data, else from any parameter already known.
  int64_t c = ax >= 0 ? data[ax] : Shape::kUnknownDim;
  std::string why;
  if (c != Shape::kUnknownDim) {
    why = StrCat("data ", data.ToString(), " has ", c, " channels on axis ", ax);
  } else {
    for (int i : params) {
      const Shape& p = ctx.in(i);
      if (p.rank_known() && p.ndim() == 1 && p.dim_known(0)) {
        c = p[0];
        why = StrCat(ctx.InName(i), " has ", c, " elements");
        break;
      }
    }
  }
  for (int i : params) ctx.SetIn(i, Shape{c}, why);
  if (ax >= 0 && c != Shape::kUnknownDim) data[ax] = c;
  ctx.SetIn(0, data);
  ctx.SetOut(0, data);
  return {data, ax};
}

void BatchNormShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<BatchNormAttrs>();
  NormDataAndParams(ctx, a.axis, {1, 2, 3, 4});
  ctx.SetOut(1, ctx.in(1));
  ctx.SetOut(2, ctx.in(1));
}

// The parameter dtype for data of dtype `t` (MXNet's AccReal).
DType BatchNormParamType(DType t) {
  return t == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
}

void BatchNormType(TypeInferCtx& ctx) {
  DType d = ctx.in(0) != DType::kUnknown ? ctx.in(0) : ctx.out(0);
  for (int i = 0; i < ctx.num_in(); ++i) RequireFloat(ctx, ctx.in(i), ctx.InName(i));
  if (d == DType::kUnknown) {
    // float64 parameters mean float64 data; float32 ones fit three data types.
    for (int i = 1; i < ctx.num_in(); ++i)
      if (ctx.in(i) == DType::kFloat64) d = DType::kFloat64;
    if (d == DType::kUnknown) return;
  }
  RequireFloat(ctx, d, "data");
  DType p = BatchNormParamType(d);
  std::string why =
      StrCat("BatchNorm's parameters are ", DTypeName(p), " for ", DTypeName(d), " data");
  ctx.SetIn(0, d);
  ctx.SetOut(0, d);
  for (int i = 1; i < ctx.num_in(); ++i) ctx.SetIn(i, p, why);
  for (int i = 1; i < ctx.num_out(); ++i) ctx.SetOut(i, p, why);
}

// (outer, channels, inner): the data viewed around `axis`.
struct AxisView {
  int64_t outer = 1, channels = 1, inner = 1;
};
AxisView ViewAround(const Tensor& t, int64_t axis) {
  int ax = int(axis < 0 ? axis + t.ndim() : axis);
  AxisView v;
  for (int i = 0; i < t.ndim(); ++i) {
    if (i < ax) v.outer *= t.dim(i);
    if (i == ax) v.channels = t.dim(i);
    if (i > ax) v.inner *= t.dim(i);
  }
  return v;
}

template <class T>
void BatchNormKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<BatchNormAttrs>();
  const Tensor& x = ctx.in[0];
  AxisView v = ViewAround(x, a.axis);
  std::vector<double> gamma = ReadDoubles(ctx.in[1]), beta = ReadDoubles(ctx.in[2]);
  std::vector<double> moving_mean = ReadDoubles(ctx.in[3]), moving_var = ReadDoubles(ctx.in[4]);
  const bool batch_stats = ctx.is_train && !a.use_global_stats;
  const T* xp = x.data<T>();
  auto at = [&](int64_t o, int64_t c, int64_t i) { return (o * v.channels + c) * v.inner + i; };
  std::vector<double> mean(size_t(v.channels)), var(size_t(v.channels));
  if (batch_stats) {
    double count = double(v.outer * v.inner);
    for (int64_t c = 0; c < v.channels; ++c) {
      AccType<T> sum = 0;
      for (int64_t o = 0; o < v.outer; ++o)
        for (int64_t i = 0; i < v.inner; ++i) sum += AccType<T>(xp[at(o, c, i)]);
      double m = count > 0 ? sum / count : 0.0;
      AccType<T> sq = 0;
      for (int64_t o = 0; o < v.outer; ++o)
        for (int64_t i = 0; i < v.inner; ++i) {
          AccType<T> d = AccType<T>(xp[at(o, c, i)]) - m;
          sq += d * d;
        }
      mean[size_t(c)] = m;
      var[size_t(c)] = count > 0 ? sq / count : 0.0;
    }
  } else {
    mean = moving_mean;
    var = moving_var;
  }
  std::vector<double> inv_std(size_t(v.channels));
  for (size_t c = 0; c < inv_std.size(); ++c)
    inv_std[c] = (var[c] == 0 && a.eps == 0) ? 0.0 : 1.0 / std::sqrt(var[c] + a.eps);
  T* yp = ctx.out[0].data<T>();
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t c = 0; c < v.channels; ++c) {
      double g = a.fix_gamma ? 1.0 : gamma[size_t(c)];
      for (int64_t i = 0; i < v.inner; ++i) {
        int64_t k = at(o, c, i);
        double xhat = (AccType<T>(xp[k]) - mean[size_t(c)]) * inv_std[size_t(c)];
        yp[k] = static_cast<T>(xhat * g + beta[size_t(c)]);
      }
    }
  WriteDoubles(ctx.out[1], mean);
  WriteDoubles(ctx.out[2], inv_std);
  if (batch_stats) {
    for (size_t c = 0; c < mean.size(); ++c) {
      moving_mean[c] = moving_mean[c] * a.momentum + mean[c] * (1 - a.momentum);
      moving_var[c] = moving_var[c] * a.momentum + var[c] * (1 - a.momentum);
    }
    WriteDoubles(ctx.in[3], moving_mean);
    WriteDoubles(ctx.in[4], moving_var);
  }
}

// ----- LayerNorm -----

struct LayerNormAttrs {
  int64_t axis = -1;
  double eps = 1e-5;
  bool output_mean_var = false;
  static void Describe(AttrSchema<LayerNormAttrs>& s) {
    s.Field("axis", &LayerNormAttrs::axis);
    s.Field("eps", &LayerNormAttrs::eps).Min(0);
    s.Field("output_mean_var", &LayerNormAttrs::output_mean_var);
  }
};

void LayerNormShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<LayerNormAttrs>();
  auto [data, ax] = NormDataAndParams(ctx, a.axis, {1, 2});
  if (ax < 0) return;
  Shape stats = data;
  stats[ax] = 1;
  ctx.SetOut(1, stats, "mean and std have the data's shape with axis of extent 1");
  ctx.SetOut(2, stats, "mean and std have the data's shape with axis of extent 1");
}

template <class T>
void LayerNormKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<LayerNormAttrs>();
  const Tensor& x = ctx.in[0];
  AxisView v = ViewAround(x, a.axis);
  const T* xp = x.data<T>();
  const T* gp = ctx.in[1].data<T>();
  const T* bp = ctx.in[2].data<T>();
  T* yp = ctx.out[0].data<T>();
  T* mp = ctx.out[1].data<T>();
  T* sp = ctx.out[2].data<T>();
  auto at = [&](int64_t o, int64_t c, int64_t i) { return (o * v.channels + c) * v.inner + i; };
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t i = 0; i < v.inner; ++i) {
      AccType<T> sum = 0;
      for (int64_t c = 0; c < v.channels; ++c) sum += AccType<T>(xp[at(o, c, i)]);
      AccType<T> mean = sum / AccType<T>(v.channels);
      AccType<T> sq = 0;
      for (int64_t c = 0; c < v.channels; ++c) {
        AccType<T> d = AccType<T>(xp[at(o, c, i)]) - mean;
        sq += d * d;
      }
      AccType<T> std = std::sqrt(sq / AccType<T>(v.channels) + a.eps);
      for (int64_t c = 0; c < v.channels; ++c) {
        AccType<T> xhat = (AccType<T>(xp[at(o, c, i)]) - mean) / std;
        yp[at(o, c, i)] = static_cast<T>(xhat * AccType<T>(gp[c]) + AccType<T>(bp[c]));
      }
      mp[o * v.inner + i] = static_cast<T>(mean);
      sp[o * v.inner + i] = static_cast<T>(std);
    }
}

std::vector<std::string> BatchNormOutputs(const Attrs&) {
  return {"output", "mean", "var"};
}

// ----- Gradients of BatchNorm and LayerNorm -----

// Inputs ograd, data, gamma, mean, inv_std (the forward outputs 1 and 2); outputs data_grad,
// gamma_grad, beta_grad. See the file comment for the formulas.
template <class T>
void BatchNormBackwardKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<BatchNormAttrs>();
  const Tensor &dy = ctx.in[0], &x = ctx.in[1];
  AxisView v = ViewAround(x, a.axis);
  std::vector<double> gamma = ReadDoubles(ctx.in[2]), mean = ReadDoubles(ctx.in[3]),
                      inv_std = ReadDoubles(ctx.in[4]);
  const bool batch_stats = ctx.is_train && !a.use_global_stats;
  const T* dyp = dy.data<T>();
  const T* xp = x.data<T>();
  T* dxp = ctx.out[0].data<T>();
  std::vector<double> dgamma(size_t(v.channels)), dbeta(size_t(v.channels));
  auto at = [&](int64_t o, int64_t c, int64_t i) { return (o * v.channels + c) * v.inner + i; };
  double count = double(v.outer * v.inner);
  for (int64_t c = 0; c < v.channels; ++c) {
    double m = mean[size_t(c)], s = inv_std[size_t(c)];
    double sum_dy = 0, dot = 0;  // sum(dy), sum(dy (x - mean))
    for (int64_t o = 0; o < v.outer; ++o)
      for (int64_t i = 0; i < v.inner; ++i) {
        int64_t k = at(o, c, i);
        sum_dy += double(dyp[k]);
        dot += double(dyp[k]) * (double(xp[k]) - m);
      }
    double w = a.fix_gamma ? 1.0 : gamma[size_t(c)];
    double mean_dy = count > 0 ? sum_dy / count : 0.0;
    double k_proj = count > 0 ? dot * s * s / count : 0.0;  // mean(dy xhat) * inv_std
    for (int64_t o = 0; o < v.outer; ++o)
      for (int64_t i = 0; i < v.inner; ++i) {
        int64_t k = at(o, c, i);
        double g = double(dyp[k]);
        if (batch_stats) g = g - mean_dy - (double(xp[k]) - m) * k_proj;
        dxp[k] = static_cast<T>(g * s * w);
      }
    dgamma[size_t(c)] = a.fix_gamma ? 0.0 : dot * s;
    dbeta[size_t(c)] = sum_dy;
  }
  WriteDoubles(ctx.out[1], dgamma);
  WriteDoubles(ctx.out[2], dbeta);
}

// Shapes as the forward op's (ograd is its output, mean and inv_std its outputs 1 and 2); the
// gradients have the shapes of data, gamma and beta (= gamma's).
void NormBackwardShape(ShapeInferCtx& ctx, const char* fwd_op, std::vector<int> fwd_in) {
  ctx.SetIn(1, ctx.out(0));
  ctx.SetIn(2, ctx.out(1));
  ctx.SetIn(2, ctx.out(2));
  InferShapesAsForward(ctx, fwd_op, fwd_in, {0, 3, 4});
  ctx.SetOut(0, ctx.in(1));
  ctx.SetOut(1, ctx.in(2));
  ctx.SetOut(2, ctx.in(2));
}

// ograd, data and data_grad have the data's dtype; the rest BatchNorm's parameter dtype.
void BatchNormBackwardType(TypeInferCtx& ctx) {
  for (int i = 0; i < ctx.num_in(); ++i) RequireFloat(ctx, ctx.in(i), ctx.InName(i));
  DType d = DType::kUnknown;
  for (DType t : {ctx.in(1), ctx.in(0), ctx.out(0)})
    if (d == DType::kUnknown) d = t;
  if (d == DType::kUnknown) return;
  RequireFloat(ctx, d, "data");
  ctx.SetIn(0, d, "ograd has the data's dtype");
  ctx.SetIn(1, d);
  ctx.SetOut(0, d, "data_grad has the data's dtype");
  DType p = BatchNormParamType(d);
  std::string why =
      StrCat("BatchNorm's parameters are ", DTypeName(p), " for ", DTypeName(d), " data");
  for (int i = 2; i < ctx.num_in(); ++i) ctx.SetIn(i, p, why);
  for (int i = 1; i < ctx.num_out(); ++i) ctx.SetOut(i, p, why);
}

// Inputs ograd, data, gamma, mean, std (the forward outputs 1 and 2); outputs data_grad,
// gamma_grad, beta_grad.
template <class T>
void LayerNormBackwardKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<LayerNormAttrs>();
  const Tensor& x = ctx.in[1];
  AxisView v = ViewAround(x, a.axis);
  const T* dyp = ctx.in[0].data<T>();
  const T* xp = x.data<T>();
  const T* gp = ctx.in[2].data<T>();
  const T* mp = ctx.in[3].data<T>();
  const T* sp = ctx.in[4].data<T>();
  T* dxp = ctx.out[0].data<T>();
  std::vector<double> dgamma(size_t(v.channels), 0.0), dbeta(size_t(v.channels), 0.0);
  std::vector<double> xhat(size_t(v.channels)), g(size_t(v.channels));
  auto at = [&](int64_t o, int64_t c, int64_t i) { return (o * v.channels + c) * v.inner + i; };
  double n = double(v.channels);
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t i = 0; i < v.inner; ++i) {
      double mean = double(mp[o * v.inner + i]), std = double(sp[o * v.inner + i]);
      double mean_g = 0, mean_gx = 0;
      for (int64_t c = 0; c < v.channels; ++c) {
        double dy = double(dyp[at(o, c, i)]);
        xhat[size_t(c)] = (double(xp[at(o, c, i)]) - mean) / std;
        g[size_t(c)] = dy * double(gp[c]);
        dgamma[size_t(c)] += dy * xhat[size_t(c)];
        dbeta[size_t(c)] += dy;
        mean_g += g[size_t(c)] / n;
        mean_gx += g[size_t(c)] * xhat[size_t(c)] / n;
      }
      for (int64_t c = 0; c < v.channels; ++c)
        dxp[at(o, c, i)] =
            static_cast<T>((g[size_t(c)] - mean_g - xhat[size_t(c)] * mean_gx) / std);
    }
  WriteDoubles(ctx.out[1], dgamma);
  WriteDoubles(ctx.out[2], dbeta);
}

// The gradient of BatchNorm or LayerNorm: one backward op reading the saved statistics; no
// gradient for BatchNorm's moving statistics.
GradList NormGradient(GradCtx& g, const char* backward_op) {
  auto d =
      g.EmitWithAttrs(backward_op, {g.ograd(0), g.input(0), g.input(1), g.output(1), g.output(2)});
  GradList grads = {d[0], d[1], d[2]};
  grads.resize(size_t(g.num_inputs()));
  return grads;
}

// BatchNorm in inference (moving statistics) as a per-channel scale and shift:
//   inv_std = 1 / sqrt(moving_var + eps), scale = gamma * inv_std (inv_std with fix_gamma),
//   output = data * scale + (beta - moving_mean * scale),
// with scale and shift reshaped to broadcast along `axis`; outputs mean and var are
// moving_mean and inv_std, as the kernel reports them. Needs the data's rank, and parameters of
// the data's dtype (float16 data with float32 parameters keeps its BatchNorm).
GradList BatchNormInferenceForm(GradCtx& g) {
  const BatchNormAttrs& a = g.attrs<BatchNormAttrs>();
  const Graph& graph = g.graph();
  GradList none(3, std::nullopt);
  if (!graph.has_shapes() || !graph.has_dtypes()) return none;
  const Shape& data = graph.shape(g.input(0));
  const Shape& gamma = graph.shape(g.input(1));
  if (!data.rank_known() || !gamma.IsFullyKnown() || gamma.ndim() != 1) return none;
  DType t = graph.dtype(g.input(0));
  for (int i = 1; i < 5; ++i)
    if (graph.dtype(g.input(i)) != t) return none;
  int64_t axis = a.axis < 0 ? a.axis + data.ndim() : a.axis;
  std::vector<int64_t> dims(size_t(data.ndim()), 1);
  dims[size_t(axis)] = gamma[0];
  AttrMap to_axis{{"shape", attr_text::Print(dims)}};
  Entry inv_std = g.Emit1(
      "rsqrt", {g.Emit1("_plus_scalar", {g.input(4)}, {{"scalar", attr_text::Print(a.eps)}})});
  Entry scale = a.fix_gamma ? inv_std : g.Emit1("elemwise_mul", {g.input(1), inv_std});
  Entry shift = g.Emit1("elemwise_sub", {g.input(2), g.Emit1("elemwise_mul", {g.input(3), scale})});
  Entry y = g.Emit1("broadcast_mul", {g.input(0), g.Emit1("Reshape", {scale}, to_axis)});
  y = g.Emit1("broadcast_add", {y, g.Emit1("Reshape", {shift}, to_axis)});
  return {y, g.input(3), inv_std};
}

// ----- Compute definitions (float32 and float64; parameters of the data's type) -----

// Indices of an input for the current output element, with `axis` replaced by `at`.
std::vector<TExpr> WithAxis(std::vector<TExpr> idx, int axis, TExpr at) {
  idx[size_t(axis)] = std::move(at);
  return idx;
}

// The reduction over every axis of `shape` but `axis`: body(idx) gets the input indices, with
// `axis` at `at`.
TExpr SumAllBut(const Shape& shape, int axis, const TExpr& at,
                const std::function<TExpr(const std::vector<TExpr>&)>& body) {
  std::vector<int64_t> ext;
  for (int d = 0; d < shape.ndim(); ++d)
    if (d != axis) ext.push_back(shape[d]);
  return TReduce(TReduceOp::kSum, ext, [&](const std::vector<TExpr>& r) {
    std::vector<TExpr> idx;
    size_t k = 0;
    for (int d = 0; d < shape.ndim(); ++d) idx.push_back(d == axis ? at : r[k++]);
    return body(idx);
  });
}

bool AllOfType(const ComputeCtx& c, DType t) {
  for (int j = 0; j < c.num_in(); ++j)
    if (c.in_dtype(j) != t) return false;
  return IsComputeFloat(t);
}

// BatchNorm: only with use_global_stats, where both modes normalise with the moving statistics
// and update nothing. Training with batch statistics updates the auxiliary inputs in place,
// which a definition (outputs only) cannot express, and a definition does not know the mode.
std::vector<TExpr> BatchNormCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<BatchNormAttrs>();
  DType t = c.out_dtype(0);
  if (!a.use_global_stats || !AllOfType(c, t)) return {};
  int rank = c.in_shape(0).ndim();
  int ax = int(a.axis < 0 ? a.axis + rank : a.axis);
  auto inv_std = [&](TExpr ch) {
    TExpr v = c.Read(4, {ch});
    TExpr is = TConst(1, t) / TCall(TMath::kSqrt, {v + TConst(a.eps, t)});
    if (a.eps != 0) return is;
    return TSelect(TBinary(TBinaryOp::kEQ, v, TConst(0, t)), TConst(0, t), is);
  };
  TExpr ch = TAxis(ax);
  TExpr y = (c.In(0) - c.Read(3, {ch})) * inv_std(ch);
  if (!a.fix_gamma) y = y * c.Read(1, {ch});
  y = y + c.Read(2, {ch});
  return {y, c.Read(3, {TAxis(0)}), inv_std(TAxis(0))};
}

// _backward_BatchNorm, for the training pass (batch statistics unless use_global_stats): a
// definition does not know the mode, and gradient nodes run only in training passes
// (Executor::Backward needs Forward(is_train=true); compiled runs pass is_train=true).
// Per channel, sum_dy = sum(dy) and dot = sum(dy (x - mean)) over every other axis.
// Not covered when axes precede `axis` with more than one element in all (NCHW with N > 1):
// the output nest loops over them outside the channel axis, so the channel sums would be
// recomputed for each of their positions.
std::vector<TExpr> BatchNormBackwardCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<BatchNormAttrs>();
  DType t = c.out_dtype(0);
  if (!AllOfType(c, t)) return {};
  const Shape& xs = c.in_shape(1);
  int rank = xs.ndim();
  int ax = int(a.axis < 0 ? a.axis + rank : a.axis);
  int64_t outer = 1, count = 1;
  for (int d = 0; d < rank; ++d) {
    if (d < ax) outer *= xs[d];
    if (d != ax) count *= xs[d];
  }
  if (outer > 1) return {};
  auto stats = [&](TExpr ch) {
    TExpr m = c.Read(3, {ch});
    TExpr sum_dy = SumAllBut(xs, ax, ch, [&](const std::vector<TExpr>& i) { return c.Read(0, i); });
    TExpr dot = SumAllBut(
        xs, ax, ch, [&](const std::vector<TExpr>& i) { return c.Read(0, i) * (c.Read(1, i) - m); });
    return std::make_pair(sum_dy, dot);
  };
  TExpr ch = TAxis(ax);
  TExpr s = c.Read(4, {ch});
  TExpr g = c.In(0);
  if (!a.use_global_stats && count > 0) {
    auto [sum_dy, dot] = stats(ch);
    TExpr n = TConst(double(count), t);
    TExpr k_proj = dot * s * s / n;
    g = g - sum_dy / n - (c.In(1) - c.Read(3, {ch})) * k_proj;
  }
  TExpr dx = g * s;
  if (!a.fix_gamma) dx = dx * c.Read(2, {ch});
  auto [sum_dy, dot] = stats(TAxis(0));
  TExpr dgamma = a.fix_gamma ? TConst(0, t) : dot * c.Read(4, {TAxis(0)});
  return {dx, dgamma, sum_dy};
}

// LayerNorm: mean = sum(x) / n, var = sum((x - mean)^2) / n over `axis`, std = sqrt(var + eps),
// output = (x - mean) / std * gamma + beta.
std::vector<TExpr> LayerNormCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<LayerNormAttrs>();
  DType t = c.out_dtype(0);
  if (!AllOfType(c, t)) return {};
  const Shape& xs = c.in_shape(0);
  int rank = xs.ndim();
  int ax = int(a.axis < 0 ? a.axis + rank : a.axis);
  int64_t n = xs[ax];
  TExpr nt = TConst(double(n), t);
  // mean and std at the position `axes` (of any output: the axis index is ignored).
  auto moments = [&](const std::vector<TExpr>& axes) {
    TExpr mean =
        TReduce(TReduceOp::kSum, {n},
                [&](const std::vector<TExpr>& r) { return c.Read(0, WithAxis(axes, ax, r[0])); }) /
        nt;
    TExpr sq = TReduce(TReduceOp::kSum, {n}, [&](const std::vector<TExpr>& r) {
      TExpr d = c.Read(0, WithAxis(axes, ax, r[0])) - mean;
      return d * d;
    });
    return std::make_pair(mean, TCall(TMath::kSqrt, {sq / nt + TConst(a.eps, t)}));
  };
  auto [mean, std] = moments(c.Axes());
  TExpr ch = TAxis(ax);
  TExpr y = (c.In(0) - mean) / std * c.Read(1, {ch}) + c.Read(2, {ch});
  std::vector<TExpr> stat_axes;
  for (int d = 0; d < rank; ++d) stat_axes.push_back(TAxis(d));
  auto [mean1, std1] = moments(stat_axes);
  return {y, mean1, std1};
}

// _backward_LayerNorm: d x = (g - mean(g) - xhat mean(g xhat)) / std with g = dy gamma,
// xhat = (x - mean) / std, means over `axis`; d gamma = sum(dy xhat), d beta = sum(dy) over
// every other axis.
std::vector<TExpr> LayerNormBackwardCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<LayerNormAttrs>();
  DType t = c.out_dtype(0);
  if (!AllOfType(c, t)) return {};
  const Shape& xs = c.in_shape(1);
  int rank = xs.ndim();
  int ax = int(a.axis < 0 ? a.axis + rank : a.axis);
  int64_t n = xs[ax];
  TExpr nt = TConst(double(n), t);
  auto xhat = [&](const std::vector<TExpr>& idx) {
    std::vector<TExpr> st = WithAxis(idx, ax, TIndex(0));
    return (c.Read(1, idx) - c.Read(3, st)) / c.Read(4, st);
  };
  auto grad = [&](const std::vector<TExpr>& idx) {
    return c.Read(0, idx) * c.Read(2, {idx[size_t(ax)]});
  };
  std::vector<TExpr> axes = c.Axes();
  TExpr mean_g =
      TReduce(TReduceOp::kSum, {n},
              [&](const std::vector<TExpr>& r) { return grad(WithAxis(axes, ax, r[0])); }) /
      nt;
  TExpr mean_gx = TReduce(TReduceOp::kSum, {n},
                          [&](const std::vector<TExpr>& r) {
                            std::vector<TExpr> idx = WithAxis(axes, ax, r[0]);
                            return grad(idx) * xhat(idx);
                          }) /
                  nt;
  TExpr std = c.Read(4, WithAxis(axes, ax, TIndex(0)));
  TExpr dx = (grad(axes) - mean_g - xhat(axes) * mean_gx) / std;
  TExpr dgamma = SumAllBut(xs, ax, TAxis(0),
                           [&](const std::vector<TExpr>& i) { return c.Read(0, i) * xhat(i); });
  TExpr dbeta =
      SumAllBut(xs, ax, TAxis(0), [&](const std::vector<TExpr>& i) { return c.Read(0, i); });
  return {dx, dgamma, dbeta};
}

}  // namespace

void RegisterNormOps(OpRegistry& r) {
  r.Register("BatchNorm")
      .Describe(
          "batch normalisation per channel of axis; batch statistics when training (updating "
          "the moving statistics in place), moving statistics otherwise")
      .SetAttrs<BatchNormAttrs>()
      .Inputs({"data", "gamma", "beta", "moving_mean", "moving_var"})
      .Outputs(BatchNormOutputs)
      .VisibleOutputs(
          [](const Attrs& a) { return a.Get<BatchNormAttrs>().output_mean_var ? 3 : 1; })
      .AuxInputs([](const Attrs&) {
        return std::vector<int>{3, 4};
      })
      .InferShape(BatchNormShape)
      .InferType(BatchNormType)
      .Pattern(FusionPattern::kOutElemwiseFusable)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.in[0].dtype(), T, BatchNormKernel<T>(ctx));
      })
      .Compute(BatchNormCompute)
      .Gradient([](GradCtx& g) { return NormGradient(g, "_backward_BatchNorm"); })
      .InferenceForm(BatchNormInferenceForm);

  r.Register("_backward_BatchNorm")
      .Describe(
          "gradients of BatchNorm: (d data, d gamma, d beta) from (d output, data, gamma, "
          "saved mean, saved inv_std); through the batch statistics when training")
      .SetAttrs<BatchNormAttrs>()
      .Inputs({"ograd", "data", "gamma", "mean", "inv_std"})
      .Outputs({"data_grad", "gamma_grad", "beta_grad"})
      .InferShape([](ShapeInferCtx& ctx) {
        NormBackwardShape(ctx, "BatchNorm", {1, 2, -1, -1, -1});
      })
      .InferType(BatchNormBackwardType)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.in[1].dtype(), T, BatchNormBackwardKernel<T>(ctx));
      })
      .Compute(BatchNormBackwardCompute);

  r.Register("LayerNorm")
      .Describe("layer normalisation over axis: (x - mean) / sqrt(var + eps) * gamma + beta")
      .SetAttrs<LayerNormAttrs>()
      .Inputs({"data", "gamma", "beta"})
      .Outputs({"output", "mean", "std"})
      .VisibleOutputs(
          [](const Attrs& a) { return a.Get<LayerNormAttrs>().output_mean_var ? 3 : 1; })
      .InferShape(LayerNormShape)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.in[0].dtype(), T, LayerNormKernel<T>(ctx));
      })
      .Compute(LayerNormCompute)
      .Gradient([](GradCtx& g) { return NormGradient(g, "_backward_LayerNorm"); });

  r.Register("_backward_LayerNorm")
      .Describe(
          "gradients of LayerNorm: (d data, d gamma, d beta) from (d output, data, gamma, "
          "saved mean, saved std)")
      .SetAttrs<LayerNormAttrs>()
      .Inputs({"ograd", "data", "gamma", "mean", "std"})
      .Outputs({"data_grad", "gamma_grad", "beta_grad"})
      .InferShape([](ShapeInferCtx& ctx) {
        NormBackwardShape(ctx, "LayerNorm", {1, 2, -1});
      })
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.in[1].dtype(), T, LayerNormBackwardKernel<T>(ctx));
      })
      .Compute(LayerNormBackwardCompute);
}

}  // namespace kiln::ops
