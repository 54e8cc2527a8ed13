// nn_activation.cpp - Activation, LeakyReLU, softmax and log_softmax.
//
// LeakyReLU (MXNet semantics), elementwise with slope a:
//   leaky  x > 0 ? x : slope * x
//   elu    x > 0 ? x : slope * (e^x - 1)
//   selu   lambda * (x > 0 ? x : alpha * (e^x - 1)), alpha 1.6732632..., lambda 1.0507009...
//   gelu   x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))      (the exact form, as MXNet's)
//   prelu  x > 0 ? x : gamma[c] * x, gamma (C) over channel axis 1 (axis 0 for 1-D data), or
//          gamma (1) for every element
//   rrelu  x > 0 ? x : m * x, with a second output "mask" holding m: when training m is drawn
//          uniformly from [lower_bound, upper_bound) per element (draw i: lower + (upper -
//          lower) RandomUnit(RandomBits(seed, RandomStream(name), i)), kiln/ir/random.h); in
//          inference m is their mean.
// softmax / log_softmax over `axis`, on x / temperature, stable (the row maximum is subtracted
// first). dtype, when given, is the output's dtype. With use_length, input "length" (the data's
// shape without `axis`) limits each row to its first length elements; the rest of the row
// outputs 0 (for log_softmax too), as MXNet.
//
// Gradients (backward ops _backward_LeakyReLU, _backward_softmax, _backward_log_softmax):
//   LeakyReLU  d data = d out * f'(x), from the data (exact in double, x <= 0 taking the negative
//              branch as MXNet's kernels do); prelu also d gamma[c] = sum over x <= 0 of d out * x
//              (over every element for a single gamma); rrelu's slope is its mask output, so the
//              gradient matches the slopes drawn in the forward pass.
//   softmax      d x = (d y - sum(d y * y)) * y / temperature        (sums over the row)
//   log_softmax  d x = (d y - exp(y) * sum(d y)) / temperature
//   With use_length, elements past a row's length output a constant 0 and get gradient 0; the
//   length gets none.
//
// Compute definitions (nn_activation_compute.cpp; float32, float64): Activation and its backward,
// LeakyReLU (rrelu in double, as the reference, its draws the same) and its backward (prelu's
// gamma gradient is a reduction), softmax, log_softmax and their backward ops (row maximum and
// row sums as reductions), all computed in the output's type where the reference computes in
// double.
#include <cmath>
#include <optional>

#include "kiln/ir/grad.h"
#include "kiln/ir/random.h"
#include "ops/nn_activation.h"
#include "ops/nn_util.h"
#include "ops/register.h"

namespace kiln::ops {
namespace {

// softrelu(x) = log(1 + exp(x)), computed without overflow for large x.
double SoftRelu(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

template <class T>
void ActivationKernel(const KernelCtx& ctx) {
  switch (ctx.Attr<ActivationAttrs>().act_type) {
    case ActType::kRelu:
      MapUnary<T>(ctx.in[0], ctx.out[0], [](double x) { return x > 0 ? x : 0.0; });
      break;
    case ActType::kSigmoid:
      MapUnary<T>(ctx.in[0], ctx.out[0], [](double x) { return 1 / (1 + std::exp(-x)); });
      break;
    case ActType::kTanh:
      MapUnary<T>(ctx.in[0], ctx.out[0], [](double x) { return std::tanh(x); });
      break;
    case ActType::kSoftrelu:
      MapUnary<T>(ctx.in[0], ctx.out[0], SoftRelu);
      break;
    case ActType::kSoftsign:
      MapUnary<T>(ctx.in[0], ctx.out[0], [](double x) { return x / (1 + std::fabs(x)); });
      break;
  }
}

// ----- LeakyReLU -----

void LeakyReLUShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<LeakyReLUAttrs>();
  Shape data;
  for (int k = 0; k < ctx.num_out(); ++k) data = UnifyDataAndOutput(ctx, k);
  if (ctx.num_out() == 2) ctx.SetOut(0, data);  // rrelu: what the mask told the data
  if (a.act_type != LeakyType::kPrelu) return;
  const Shape& gamma = ctx.in(1);
  RequireRank(ctx, gamma, 1, "gamma");
  if (!data.rank_known() || data.ndim() == 0) return;
  int ax = PreluAxis(data.ndim());
  if (!data.dim_known(ax)) return;
  int64_t c = data[ax];
  if (!gamma.rank_known() || !gamma.dim_known(0)) {
    ctx.SetIn(1, Shape{c}, "gamma has one value per channel");
  } else if (gamma[0] != c && gamma[0] != 1) {
    ctx.Fail(StrCat("gamma ", gamma.ToString(), " has ", gamma[0], " values but data ",
                    data.ToString(), " has ", c, " channels on axis ", ax,
                    " (gamma needs one value per channel, or a single value)"));
  }
}

template <class T>
void LeakyReLUKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<LeakyReLUAttrs>();
  const Tensor &x = ctx.in[0], &y = ctx.out[0];
  double slope = a.slope;
  switch (a.act_type) {
    case LeakyType::kLeaky:
      MapUnary<T>(x, y, [slope](double v) { return v > 0 ? v : slope * v; });
      return;
    case LeakyType::kElu:
      MapUnary<T>(x, y, [slope](double v) { return v > 0 ? v : slope * std::expm1(v); });
      return;
    case LeakyType::kSelu:
      MapUnary<T>(x, y,
                  [](double v) { return kSeluLambda * (v > 0 ? v : kSeluAlpha * std::expm1(v)); });
      return;
    case LeakyType::kGelu:
      MapUnary<T>(x, y, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); });
      return;
    case LeakyType::kPrelu: {
      std::vector<double> gamma = ReadDoubles(ctx.in[1]);
      int ax = PreluAxis(x.ndim());
      int64_t channels = x.ndim() == 0 ? 1 : x.dim(ax);
      int64_t inner = 1;
      for (int d = ax + 1; d < x.ndim(); ++d) inner *= x.dim(d);
      const T* xp = x.data<T>();
      T* yp = y.data<T>();
      for (int64_t i = 0; i < x.size(); ++i) {
        double g = gamma.size() == 1 ? gamma[0] : gamma[size_t((i / inner) % channels)];
        AccType<T> v = AccType<T>(xp[i]);
        yp[i] = static_cast<T>(v > 0 ? v : g * v);
      }
      return;
    }
    case LeakyType::kRrelu: {
      const Tensor& mask = ctx.out[1];
      const T* xp = x.data<T>();
      T* yp = y.data<T>();
      T* mp = mask.data<T>();
      const double mean_slope = (a.lower_bound + a.upper_bound) / 2;
      const double width = a.upper_bound - a.lower_bound;
      const uint64_t stream = RandomStream(ctx.node_name);
      for (int64_t i = 0; i < x.size(); ++i) {
        double m = ctx.is_train ? a.lower_bound +
                                      width * RandomUnit(RandomBits(ctx.seed, stream, uint64_t(i)))
                                : mean_slope;
        AccType<T> v = AccType<T>(xp[i]);
        mp[i] = static_cast<T>(m);
        yp[i] = static_cast<T>(v > 0 ? v : m * v);
      }
      return;
    }
  }
}

// ----- softmax, log_softmax -----

void SoftmaxShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<SoftmaxAttrs>();
  UnifyDataAndOutput(ctx);
  const Shape& data = ctx.in(0);
  if (!data.rank_known()) return;
  int ax = NormalizeAxis(ctx, a.axis, data.ndim(), "axis");
  if (!a.use_length) return;
  std::vector<int64_t> dims = data.dims();
  dims.erase(dims.begin() + ax);
  ctx.SetIn(1, Shape(dims), "length has the data's shape without axis");
}

void SoftmaxType(TypeInferCtx& ctx) {
  const auto& a = ctx.attrs<SoftmaxAttrs>();
  RequireFloat(ctx, ctx.in(0), "data");
  if (a.use_length) RequireNumeric(ctx, ctx.in(1), "length");
  if (a.dtype) {
    ctx.SetOut(0, *ParseDType(*a.dtype), "the dtype attribute");
    return;
  }
  if (ctx.in(0) != DType::kUnknown) ctx.SetOut(0, ctx.in(0), "output has the data's dtype");
  if (ctx.out(0) != DType::kUnknown) ctx.SetIn(0, ctx.out(0), "output has the data's dtype");
  RequireFloat(ctx, ctx.in(0), "data");
}

template <class TI, class TO>
void SoftmaxKernel(const KernelCtx& ctx, bool log) {
  const auto& a = ctx.Attr<SoftmaxAttrs>();
  const Tensor &x = ctx.in[0], &y = ctx.out[0];
  int ax = int(a.axis < 0 ? a.axis + x.ndim() : a.axis);
  int64_t outer = 1, m = x.dim(ax), inner = 1;
  for (int d = 0; d < ax; ++d) outer *= x.dim(d);
  for (int d = ax + 1; d < x.ndim(); ++d) inner *= x.dim(d);
  std::vector<double> lengths;
  if (a.use_length) lengths = ReadDoubles(ctx.in[1]);
  StableSoftmax(x.data<TI>(), y.data<TO>(), outer, m, inner, log, a.temperature.value_or(1.0),
                a.use_length ? &lengths : nullptr);
}

void SoftmaxReference(KernelCtx& ctx, bool log) {
  KILN_FLOAT_DTYPE_SWITCH(ctx.in[0].dtype(), TI, {
    KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), TO, SoftmaxKernel<TI, TO>(ctx, log));
  });
}

void RegisterSoftmax(OpRegistry& r, const char* name, bool log) {
  r.Register(name)
      .Describe(log ? "log(softmax(data / temperature)) over axis, computed stably"
                    : "exp(x - max) / sum(exp(x - max)) of data / temperature over axis")
      .SetAttrs<SoftmaxAttrs>()
      .Inputs([](const Attrs& a) {
        return a.Get<SoftmaxAttrs>().use_length ? std::vector<std::string>{"data", "length"}
                                                : std::vector<std::string>{"data"};
      })
      .InferShape(SoftmaxShape)
      .InferType(SoftmaxType)
      // Only when the output keeps the data's dtype (and so its element size).
      .Inplace([](const Attrs& a) {
        return a.Get<SoftmaxAttrs>().dtype ? std::vector<std::pair<int, int>>{}
                                           : std::vector<std::pair<int, int>>{{0, 0}};
      })
      // A reduction (max, sum) then a map over the same row: opaque.
      .Pattern(FusionPattern::kOpaque)
      .Reference([log](KernelCtx& ctx) { SoftmaxReference(ctx, log); })
      .Compute([log](const ComputeCtx& c) { return SoftmaxCompute(c, log); })
      .Gradient([log](GradCtx& g) -> GradList {
        const auto& a = g.attrs<SoftmaxAttrs>();
        std::vector<Entry> in = {g.ograd(0), g.output(0)};
        if (a.use_length) in.push_back(g.input(1));
        if (a.dtype) in.push_back(g.input(0));
        Entry dx = g.EmitWithAttrs(log ? "_backward_log_softmax" : "_backward_softmax", in)[0];
        GradList grads = {dx};
        if (a.use_length) grads.push_back(std::nullopt);
        return grads;
      });
}

// d data = d out * f'(x), with f' written through the output y = f(x), as MXNet does:
// relu 1[y > 0], sigmoid y (1 - y), tanh 1 - y^2, softrelu 1 - e^-y (= sigmoid(x)),
// softsign (1 - |y|)^2 (= 1 / (1 + |x|)^2).
template <class T>
void ActivationBackwardKernel(const KernelCtx& ctx) {
  const T* dy = ctx.in[0].data<T>();
  const T* y = ctx.in[1].data<T>();
  T* dx = ctx.out[0].data<T>();
  ActType act = ctx.Attr<ActivationAttrs>().act_type;
  for (int64_t i = 0; i < ctx.out[0].size(); ++i) {
    double o = double(y[i]), d = 0;
    switch (act) {
      case ActType::kRelu:
        d = o > 0 ? 1 : 0;
        break;
      case ActType::kSigmoid:
        d = o * (1 - o);
        break;
      case ActType::kTanh:
        d = 1 - o * o;
        break;
      case ActType::kSoftrelu:
        d = -std::expm1(-o);
        break;
      case ActType::kSoftsign:
        d = (1 - std::fabs(o)) * (1 - std::fabs(o));
        break;
    }
    dx[i] = static_cast<T>(double(dy[i]) * d);
  }
}

// ----- Gradients of LeakyReLU and softmax -----

// The derivative of a LeakyReLU kind at x, given the slope that applies to x (slope attribute,
// prelu's gamma or rrelu's mask).
double LeakyDerivative(LeakyType t, double x, double slope) {
  constexpr double kInvSqrt2Pi = 0.39894228040143267794;
  switch (t) {
    case LeakyType::kLeaky:
    case LeakyType::kPrelu:
    case LeakyType::kRrelu:
      return x > 0 ? 1.0 : slope;
    case LeakyType::kElu:
      return x > 0 ? 1.0 : slope * std::exp(x);
    case LeakyType::kSelu:
      return kSeluLambda * (x > 0 ? 1.0 : kSeluAlpha * std::exp(x));
    case LeakyType::kGelu:
      return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * kInvSqrt2Pi * std::exp(-0.5 * x * x);
  }
  return 0;
}

// Inputs: ograd, data, then gamma (prelu) or mask (rrelu). Outputs: data_grad, gamma_grad (prelu).
template <class T>
void LeakyReLUBackwardKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<LeakyReLUAttrs>();
  const Tensor& x = ctx.in[1];
  const T* dy = ctx.in[0].data<T>();
  const T* xp = x.data<T>();
  T* dx = ctx.out[0].data<T>();
  std::vector<double> gamma, dgamma;
  int64_t channels = 1, inner = 1;
  if (a.act_type == LeakyType::kPrelu) {
    gamma = ReadDoubles(ctx.in[2]);
    dgamma.assign(gamma.size(), 0.0);
    int ax = PreluAxis(x.ndim());
    channels = x.ndim() == 0 ? 1 : x.dim(ax);
    for (int d = ax + 1; d < x.ndim(); ++d) inner *= x.dim(d);
  }
  const T* mask = a.act_type == LeakyType::kRrelu ? ctx.in[2].data<T>() : nullptr;
  for (int64_t i = 0; i < x.size(); ++i) {
    double v = double(xp[i]), g = double(dy[i]), slope = a.slope;
    size_t c = 0;
    if (a.act_type == LeakyType::kPrelu) {
      c = gamma.size() == 1 ? 0 : size_t((i / inner) % channels);
      slope = gamma[c];
      if (v <= 0) dgamma[c] += g * v;
    } else if (mask) {
      slope = double(mask[i]);
    }
    dx[i] = static_cast<T>(g * LeakyDerivative(a.act_type, v, slope));
  }
  if (a.act_type == LeakyType::kPrelu) WriteDoubles(ctx.out[1], dgamma);
}

void LeakyReLUBackwardShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<LeakyReLUAttrs>();
  // ograd, data and (rrelu) mask have one shape, as do data and its gradient.
  Shape s = ctx.in(0);
  for (int i : {1, 2})
    if (i < ctx.num_in() && (i == 1 || a.act_type == LeakyType::kRrelu) && !s.Merge(ctx.in(i)))
      ctx.Fail(StrCat("ograd ", ctx.in(0).ToString(), " and ", ctx.InName(i), " ",
                      ctx.in(i).ToString(), " differ but must have one shape"));
  if (!s.Merge(ctx.out(0)))
    ctx.Fail(StrCat("data_grad ", ctx.out(0).ToString(), " does not match data ", s.ToString()));
  ctx.SetIn(0, s);
  ctx.SetIn(1, s);
  if (a.act_type == LeakyType::kRrelu) ctx.SetIn(2, s);
  ctx.SetOut(0, s);
  if (a.act_type == LeakyType::kPrelu) {
    ctx.SetOut(1, ctx.in(2), "gamma_grad has gamma's shape");
    ctx.SetIn(2, ctx.out(1), "gamma_grad has gamma's shape");
  }
}

// Inputs: ograd, output, length (use_length), data (when dtype is given: only for its dtype,
// which the gradient takes). Output: data_grad.
template <class TO, class TI>
void SoftmaxBackwardKernel(const KernelCtx& ctx, bool log) {
  const auto& a = ctx.Attr<SoftmaxAttrs>();
  const Tensor &dy = ctx.in[0], &y = ctx.in[1];
  int ax = int(a.axis < 0 ? a.axis + y.ndim() : a.axis);
  int64_t outer = 1, m = y.dim(ax), inner = 1;
  for (int d = 0; d < ax; ++d) outer *= y.dim(d);
  for (int d = ax + 1; d < y.ndim(); ++d) inner *= y.dim(d);
  std::vector<double> lengths;
  if (a.use_length) lengths = ReadDoubles(ctx.in[2]);
  double t = a.temperature.value_or(1.0);
  const TO* dyp = dy.data<TO>();
  const TO* yp = y.data<TO>();
  TI* dx = ctx.out[0].data<TI>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) { return (o * m + j) * inner + i; };
      int64_t len = m;
      if (a.use_length) len = std::clamp<int64_t>(int64_t(lengths[size_t(o * inner + i)]), 0, m);
      double sum = 0;
      for (int64_t j = 0; j < len; ++j)
        sum += log ? double(dyp[at(j)]) : double(dyp[at(j)]) * double(yp[at(j)]);
      for (int64_t j = 0; j < m; ++j) {
        double g = 0;
        if (j < len) {
          double yj = double(yp[at(j)]), dj = double(dyp[at(j)]);
          g = log ? (dj - std::exp(yj) * sum) / t : (dj - sum) * yj / t;
        }
        dx[at(j)] = static_cast<TI>(g);
      }
    }
}

void SoftmaxBackwardShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<SoftmaxAttrs>();
  Shape s = ctx.in(0);
  for (int i = 1; i < ctx.num_in(); ++i) {
    if (a.use_length && i == 2) continue;
    if (!s.Merge(ctx.in(i)))
      ctx.Fail(StrCat("ograd ", ctx.in(0).ToString(), " and ", ctx.InName(i), " ",
                      ctx.in(i).ToString(), " differ but must have one shape"));
  }
  if (!s.Merge(ctx.out(0)))
    ctx.Fail(StrCat("data_grad ", ctx.out(0).ToString(), " does not match output ", s.ToString()));
  for (int i = 0; i < ctx.num_in(); ++i)
    if (!(a.use_length && i == 2)) ctx.SetIn(i, s);
  ctx.SetOut(0, s);
  if (!a.use_length || !s.rank_known()) return;
  int ax = NormalizeAxis(ctx, a.axis, s.ndim(), "axis");
  std::vector<int64_t> dims = s.dims();
  dims.erase(dims.begin() + ax);
  ctx.SetIn(2, Shape(dims), "length has the data's shape without axis");
}

// ograd and output have the forward output's dtype; the gradient has the data's: the same
// unless dtype is given, in which case the data is an input and tells it.
void SoftmaxBackwardType(TypeInferCtx& ctx) {
  const auto& a = ctx.attrs<SoftmaxAttrs>();
  if (a.use_length) RequireNumeric(ctx, ctx.in(2), "length");
  // The forward output's dtype (ograd, output) and the data's (data_grad, data).
  std::vector<int> out_side = {0, 1}, in_side = {-1};
  if (a.dtype) {
    in_side.push_back(ctx.num_in() - 1);
  } else {
    in_side.insert(in_side.end(), out_side.begin(), out_side.end());
    out_side.clear();
  }
  auto get = [&](int i) { return i < 0 ? ctx.out(0) : ctx.in(i); };
  auto set = [&](int i, DType t, const char* why) {
    if (i < 0)
      ctx.SetOut(0, t, why);
    else
      ctx.SetIn(i, t, why);
  };
  if (a.dtype) {
    DType t = *ParseDType(*a.dtype);
    for (int i : out_side) set(i, t, "ograd and output have the dtype attribute's type");
  }
  DType t = DType::kUnknown;
  for (int i : in_side)
    if (t == DType::kUnknown) t = get(i);
  if (t == DType::kUnknown) return;
  RequireFloat(ctx, t, "data");
  for (int i : in_side) set(i, t, "data_grad has the data's dtype");
}

}  // namespace

void RegisterActivationOps(OpRegistry& r) {
  r.Register("Activation")
      .Describe(
          "elementwise activation: relu, sigmoid, tanh, softrelu (log(1+e^x)), softsign "
          "(x/(1+|x|))")
      .SetAttrs<ActivationAttrs>()
      .InferShape(SameShapeInfer)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, ActivationKernel<T>(ctx));
      })
      .Compute(ActivationCompute)
      .Gradient([](GradCtx& g) -> GradList {
        return {g.EmitWithAttrs("_backward_Activation", {g.ograd(0), g.output(0)})[0]};
      });

  r.Register("_backward_Activation")
      .Describe("gradient of Activation: d data from (d output, output)")
      .SetAttrs<ActivationAttrs>()
      .Inputs({"ograd", "output"})
      .InferShape(SameShapeInfer)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, ActivationBackwardKernel<T>(ctx));
      })
      .Compute(ActivationBackwardCompute);

  r.Register("LeakyReLU")
      .Describe(
          "leaky, elu, selu, gelu, prelu (learned slope gamma per channel) or rrelu (random "
          "slope when training) rectifiers")
      .SetAttrs<LeakyReLUAttrs>()
      .Inputs([](const Attrs& a) {
        return a.Get<LeakyReLUAttrs>().act_type == LeakyType::kPrelu
                   ? std::vector<std::string>{"data", "gamma"}
                   : std::vector<std::string>{"data"};
      })
      .Outputs([](const Attrs& a) {
        return a.Get<LeakyReLUAttrs>().act_type == LeakyType::kRrelu
                   ? std::vector<std::string>{"output", "mask"}
                   : std::vector<std::string>{"output"};
      })
      .VisibleOutputs([](const Attrs&) { return 1; })
      .InferShape(LeakyReLUShape)
      .InferType(FloatTypeInfer)
      .Inplace(InplaceIdentity)
      // Elementwise for every act_type but prelu, whose gamma is broadcast along the channel
      // axis. The pattern is one per op, so it is the looser kBroadcast; fusion treats both
      // alike (either may join an elementwise group or a convolution's epilogue).
      .Random([](const Attrs& a) { return a.Get<LeakyReLUAttrs>().act_type == LeakyType::kRrelu; })
      .Pattern(FusionPattern::kBroadcast)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, LeakyReLUKernel<T>(ctx));
      })
      .Compute(LeakyReLUCompute)
      .Gradient([](GradCtx& g) -> GradList {
        LeakyType t = g.attrs<LeakyReLUAttrs>().act_type;
        std::vector<Entry> in = {g.ograd(0), g.input(0)};
        if (t == LeakyType::kPrelu) in.push_back(g.input(1));
        if (t == LeakyType::kRrelu) in.push_back(g.output(1));  // the slopes drawn
        auto d = g.EmitWithAttrs("_backward_LeakyReLU", in);
        GradList grads = {d[0]};
        if (t == LeakyType::kPrelu) grads.push_back(d[1]);
        return grads;
      });

  r.Register("_backward_LeakyReLU")
      .Describe(
          "gradient of LeakyReLU: d data (and d gamma for prelu) from (d output, data[, gamma "
          "| mask])")
      .SetAttrs<LeakyReLUAttrs>()
      .Inputs([](const Attrs& a) {
        switch (a.Get<LeakyReLUAttrs>().act_type) {
          case LeakyType::kPrelu:
            return std::vector<std::string>{"ograd", "data", "gamma"};
          case LeakyType::kRrelu:
            return std::vector<std::string>{"ograd", "data", "mask"};
          default:
            return std::vector<std::string>{"ograd", "data"};
        }
      })
      .Outputs([](const Attrs& a) {
        return a.Get<LeakyReLUAttrs>().act_type == LeakyType::kPrelu
                   ? std::vector<std::string>{"data_grad", "gamma_grad"}
                   : std::vector<std::string>{"data_grad"};
      })
      .InferShape(LeakyReLUBackwardShape)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, LeakyReLUBackwardKernel<T>(ctx));
      })
      .Compute(LeakyReLUBackwardCompute);

  RegisterSoftmax(r, "softmax", false);
  RegisterSoftmax(r, "log_softmax", true);
  for (bool log : {false, true})
    r.Register(log ? "_backward_log_softmax" : "_backward_softmax")
        .Describe(log ? "gradient of log_softmax: d data from (d output, output)"
                      : "gradient of softmax: d data from (d output, output)")
        .SetAttrs<SoftmaxAttrs>()
        .Inputs([](const Attrs& attrs) {
          const auto& a = attrs.Get<SoftmaxAttrs>();
          std::vector<std::string> names = {"ograd", "output"};
          if (a.use_length) names.push_back("length");
          if (a.dtype) names.push_back("data");
          return names;
        })
        .Outputs({"data_grad"})
        .InferShape(SoftmaxBackwardShape)
        .InferType(SoftmaxBackwardType)
        .Pattern(FusionPattern::kOpaque)
        .Reference([log](KernelCtx& ctx) {
          KILN_FLOAT_DTYPE_SWITCH(ctx.in[0].dtype(), TO, {
            KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), TI,
                                    (SoftmaxBackwardKernel<TO, TI>(ctx, log)));
          });
        })
        .Compute([log](const ComputeCtx& c) { return SoftmaxBackwardCompute(c, log); });
}

}  // namespace kiln::ops
