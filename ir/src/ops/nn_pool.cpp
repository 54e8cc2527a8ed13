// nn_pool.cpp - Pooling: max, avg, sum and Lp pooling over 1, 2 or 3 spatial axes.
//
// Output extent of a spatial axis (in, kernel k, stride s, pad p), as MXNet's:
//   valid  1 + floor((in + 2p - k) / s)
//   full   1 + ceil((in + 2p - k) / s)       (Caffe's convention; the last window may overhang)
//   same   ceil(in / s)                      (1-D only, pad must be 0)
//   global_pool: kernel = the whole spatial extent, output extent 1, pad 0.
// Windows, as MXNet's CPU kernels: a window starts at o*s - p; max pooling takes the maximum of
// the elements inside the input; avg divides the sum by the window's size clipped to the padded
// input (count_include_pad, the default) or to the input itself; sum and lp ignore padding; lp
// is (sum x^p)^(1/p) for p_value 1, 2 or 3 (x^p signed, as MXNet's a_pow_p).
// Layouts: channel-first (NCW, NCHW, NCDHW) and channel-last (NWC, NHWC, NDHWC).
// Gradient: _backward_Pooling (see PoolingBackwardKernel); max pooling sends each window's
// gradient to the first maximum in window order, as MXNet.
//
// Compute definitions (float32 and float64): forward, a reduction over the window with reads
// clamped into the data and selected by whether the position is inside it (none for lp with
// p_value 3: no cube root among the math functions); gradient, every pool type, a gather over
// the windows holding each element (PoolingBackwardCompute).
//
// Fusion: out-elementwise-fusable, as in TVM: an elementwise consumer (the relu gradient after
// the max-pool gradient of a training graph) becomes the kernel's epilogue. Producers are not
// fused into it: a window op reads each input several times.
#include <cmath>
#include <limits>
#include <optional>

#include "kiln/ir/grad.h"
#include "ops/nn_util.h"
#include "ops/register.h"

namespace kiln::ops {
namespace {

enum class PoolType { kMax, kAvg, kSum, kLp };
enum class PoolConvention { kValid, kFull, kSame };

struct PoolingAttrs {
  std::vector<int64_t> kernel;  // required unless global_pool
  PoolType pool_type = PoolType::kMax;
  bool global_pool = false;
  bool cudnn_off = false;  // accepted and ignored
  PoolConvention pooling_convention = PoolConvention::kValid;
  std::vector<int64_t> stride;            // default: 1 per axis
  std::vector<int64_t> pad;               // default: 0 per axis
  std::optional<int64_t> p_value;         // required for lp: 1, 2 or 3
  std::optional<bool> count_include_pad;  // None means True
  std::optional<std::string> layout;      // None: channel-first
  static void Describe(AttrSchema<PoolingAttrs>& s) {
    s.Field("kernel", &PoolingAttrs::kernel).Min(1);
    s.Enum("pool_type", &PoolingAttrs::pool_type,
           {{"max", PoolType::kMax},
            {"avg", PoolType::kAvg},
            {"sum", PoolType::kSum},
            {"lp", PoolType::kLp}});
    s.Field("global_pool", &PoolingAttrs::global_pool);
    s.Field("cudnn_off", &PoolingAttrs::cudnn_off);
    s.Enum("pooling_convention", &PoolingAttrs::pooling_convention,
           {{"valid", PoolConvention::kValid},
            {"full", PoolConvention::kFull},
            {"same", PoolConvention::kSame}});
    s.Field("stride", &PoolingAttrs::stride).Min(1);
    s.Field("pad", &PoolingAttrs::pad).Min(0);
    s.Field("p_value", &PoolingAttrs::p_value).Min(1).Max(3);
    s.Field("count_include_pad", &PoolingAttrs::count_include_pad);
    s.Field("layout", &PoolingAttrs::layout)
        .OneOf({"None", "NCW", "NCHW", "NCDHW", "NWC", "NHWC", "NDHWC"});
    s.Check([](const PoolingAttrs& a) -> std::string {
      size_t nd = a.kernel.size();
      if (!a.global_pool && (nd < 1 || nd > 3))
        return StrCat("kernel = ", attr_text::Print(a.kernel), " has ", nd,
                      " axes; 1, 2 or 3 are needed unless global_pool");
      if (nd > 0) {
        if (auto e = CheckTupleLength("stride", a.stride, nd); !e.empty()) return e;
        if (auto e = CheckTupleLength("pad", a.pad, nd); !e.empty()) return e;
        if (auto e = CheckLayout(a.layout, nd); !e.empty()) return e;
      }
      if (a.pool_type == PoolType::kLp && !a.p_value) return "pool_type lp needs p_value";
      if (a.pooling_convention == PoolConvention::kSame) {
        if (nd != 1) return "pooling_convention same supports 1-D pooling only";
        for (int64_t p : a.pad)
          if (p != 0) return "pooling_convention same does not take pad";
      }
      return "";
    });
  }
};

// Where the channel and spatial axes of the data are, once its rank is known.
struct PoolAxes {
  int channel = 1;
  int first_spatial = 2;
  int num_spatial = 0;
};
PoolAxes AxesOf(const PoolingAttrs& a, int rank) {
  PoolAxes ax;
  ax.num_spatial = rank - 2;
  if (a.layout && IsChannelLast(*a.layout)) {
    ax.channel = rank - 1;
    ax.first_spatial = 1;
  }
  return ax;
}

// Kernel, stride and pad of the spatial axes of data with these spatial extents.
struct PoolGeom {
  std::vector<int64_t> kernel, stride, pad;
};
PoolGeom Geom(const PoolingAttrs& a, const std::vector<int64_t>& spatial) {
  size_t nd = spatial.size();
  if (a.global_pool) return {spatial, std::vector<int64_t>(nd, 1), std::vector<int64_t>(nd, 0)};
  return {a.kernel, TupleOr(a.stride, nd, 1), TupleOr(a.pad, nd, 0)};
}

void PoolingShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<PoolingAttrs>();
  Shape data = ctx.in(0);
  const Shape& out_known = ctx.out(0);
  int rank = -1;
  if (data.rank_known())
    rank = data.ndim();
  else if (!a.global_pool)
    rank = int(a.kernel.size()) + 2;
  else if (a.layout)
    rank = int(a.layout->size());
  else if (out_known.rank_known())
    rank = out_known.ndim();
  if (rank < 0) return;
  if (rank < 3 || rank > 5)
    ctx.Fail(StrCat("data ", data.ToString(), " has rank ", rank,
                    " but Pooling takes 3-D, 4-D or 5-D data (batch, channel, spatial...)"));
  if (!a.global_pool && rank != int(a.kernel.size()) + 2)
    ctx.Fail(StrCat("data ", data.ToString(), " has rank ", rank, " but kernel ",
                    attr_text::Print(a.kernel), " needs rank ", a.kernel.size() + 2));
  if (a.layout && int(a.layout->size()) != rank)
    ctx.Fail(StrCat("data ", data.ToString(), " has rank ", rank, " but layout is ", *a.layout));
  if (!data.rank_known()) data = Shape::UnknownDims(rank);
  PoolAxes ax = AxesOf(a, rank);
  // Batch and channel pass through, both ways.
  if (out_known.rank_known() && out_known.ndim() == rank)
    for (int i : {0, ax.channel})
      if (!data.dim_known(i)) data[i] = out_known[i];
  ctx.SetIn(0, data);

  Shape out = data;
  std::vector<int64_t> spatial(size_t(ax.num_spatial));
  for (int i = 0; i < ax.num_spatial; ++i) spatial[size_t(i)] = data[ax.first_spatial + i];
  PoolGeom g = Geom(a, spatial);
  for (int i = 0; i < ax.num_spatial; ++i) {
    int axis = ax.first_spatial + i;
    if (a.global_pool) {
      out[axis] = 1;
      continue;
    }
    if (!data.dim_known(axis)) continue;
    int64_t padded = data[axis] + 2 * g.pad[size_t(i)];
    int64_t k = g.kernel[size_t(i)], s = g.stride[size_t(i)];
    if (k > padded)
      ctx.Fail(StrCat("kernel ", attr_text::Print(a.kernel), " is ", k, " on axis ", axis,
                      " but data ", data.ToString(), " is only ", padded, " there after padding ",
                      g.pad[size_t(i)]));
    switch (a.pooling_convention) {
      case PoolConvention::kValid:
        out[axis] = 1 + (padded - k) / s;
        break;
      case PoolConvention::kFull:
        out[axis] = 1 + (padded - k + s - 1) / s;
        break;
      case PoolConvention::kSame:
        out[axis] = (padded + s - 1) / s;
        break;
    }
  }
  ctx.SetOut(0, out);
}

// Visits every output position of a pooling of data shaped `x_shape` into `y_shape` as
// f(out, in, padded_size): `out` the output's flat index, `in` the flat indices of the window's
// elements inside the data (row-major window order), `padded_size` the window's size clipped to
// the padded data. The forward kernel and the gradient share this walk, so they agree on every
// window.
template <class F>
void ForEachPoolWindow(const PoolingAttrs& a, const std::vector<int64_t>& x_shape,
                       const std::vector<int64_t>& y_shape, F&& f) {
  int rank = int(x_shape.size());
  PoolAxes ax = AxesOf(a, rank);
  std::vector<int64_t> spatial(x_shape.begin() + ax.first_spatial,
                               x_shape.begin() + ax.first_spatial + ax.num_spatial);
  PoolGeom g = Geom(a, spatial);
  Window3 win =
      MakeWindow3(spatial,
                  std::vector<int64_t>(y_shape.begin() + ax.first_spatial,
                                       y_shape.begin() + ax.first_spatial + ax.num_spatial),
                  g.kernel, g.stride, g.pad, std::vector<int64_t>(spatial.size(), 1));
  int64_t N = x_shape[0], C = x_shape[size_t(ax.channel)];
  bool last = ax.channel == rank - 1;
  // Flat index of (n, c, z, y, x) in a tensor with spatial extents e, in either layout.
  auto index = [&](int64_t n, int64_t c, int64_t z, int64_t yy, int64_t xx,
                   const std::array<int64_t, 3>& e) {
    if (last) return (((n * e[0] + z) * e[1] + yy) * e[2] + xx) * C + c;
    return (((n * C + c) * e[0] + z) * e[1] + yy) * e[2] + xx;
  };
  std::vector<int64_t> in;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oz = 0; oz < win.out[0]; ++oz)
        for (int64_t oy = 0; oy < win.out[1]; ++oy)
          for (int64_t ox = 0; ox < win.out[2]; ++ox) {
            std::array<int64_t, 3> o{oz, oy, ox}, lo{}, hi{};
            int64_t padded_size = 1;
            for (int d = 0; d < 3; ++d) {
              int64_t start = o[d] * win.stride[d] - win.pad[d];
              int64_t end = std::min(start + win.kernel[d], win.in[d] + win.pad[d]);
              padded_size *= std::max<int64_t>(end - start, 0);
              lo[d] = std::max<int64_t>(start, 0);
              hi[d] = std::min(end, win.in[d]);
            }
            in.clear();
            for (int64_t iz = lo[0]; iz < hi[0]; ++iz)
              for (int64_t iy = lo[1]; iy < hi[1]; ++iy)
                for (int64_t ix = lo[2]; ix < hi[2]; ++ix)
                  in.push_back(index(n, c, iz, iy, ix, win.in));
            f(index(n, c, oz, oy, ox, win.out), in, padded_size);
          }
}

template <class T>
void PoolingKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<PoolingAttrs>();
  const Tensor &x = ctx.in[0], &y = ctx.out[0];
  bool include_pad = a.count_include_pad.value_or(true);
  int p = int(a.p_value.value_or(1));
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  ForEachPoolWindow(
      a, x.shape(), y.shape(),
      [&](int64_t out, const std::vector<int64_t>& in, int64_t padded_size) {
        AccType<T> acc = a.pool_type == PoolType::kMax ? std::numeric_limits<AccType<T>>::lowest()
                                                       : AccType<T>(0);
        for (int64_t i : in) {
          AccType<T> v = AccType<T>(xp[i]);
          if (a.pool_type == PoolType::kMax)
            acc = std::max(acc, v);
          else if (a.pool_type == PoolType::kLp)
            acc += p == 1 ? v : p == 2 ? v * v : v * v * v;
          else
            acc += v;
        }
        if (a.pool_type == PoolType::kAvg) {
          int64_t size = include_pad ? padded_size : int64_t(in.size());
          acc = size > 0 ? acc / AccType<T>(size) : std::numeric_limits<AccType<T>>::quiet_NaN();
        } else if (a.pool_type == PoolType::kLp) {
          acc = p == 1 ? acc : p == 2 ? std::sqrt(acc) : std::cbrt(acc);
        }
        yp[out] = static_cast<T>(acc);
      });
}

std::vector<TExpr> PoolingCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<PoolingAttrs>();
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t) || c.in_dtype(0) != t) return {};
  if (a.pool_type == PoolType::kLp && a.p_value.value_or(1) == 3) return {};
  const Shape& in = c.in_shape(0);
  int rank = in.ndim();
  PoolAxes ax = AxesOf(a, rank);
  std::vector<int64_t> spatial;
  for (int i = 0; i < ax.num_spatial; ++i) spatial.push_back(in[ax.first_spatial + i]);
  for (int64_t e : spatial)
    if (e == 0) return {};
  PoolGeom g = Geom(a, spatial);
  TExpr zero = TIndex(0);
  // Per spatial axis: the window's first position and its size clipped to the padded data
  // and to the data.
  std::vector<TExpr> start(spatial.size());
  TExpr padded_size = TIndex(1), inside_size = TIndex(1);
  for (size_t i = 0; i < spatial.size(); ++i) {
    TExpr o = TAxis(ax.first_spatial + int(i));
    start[i] = o * TIndex(g.stride[i]) - TIndex(g.pad[i]);
    TExpr end = TMin(start[i] + TIndex(g.kernel[i]), TIndex(spatial[i] + g.pad[i]));
    padded_size = padded_size * TMax(end - start[i], zero);
    TExpr lo = TMax(start[i], zero), hi = TMin(end, TIndex(spatial[i]));
    inside_size = inside_size * TMax(hi - lo, zero);
  }
  auto value = [&](const std::vector<TExpr>& r, TExpr outside) {
    std::vector<TExpr> idx;
    for (int d = 0; d < rank; ++d) idx.push_back(TAxis(d));
    TExpr inside;
    for (size_t i = 0; i < spatial.size(); ++i) {
      TExpr p = start[i] + r[i];
      TExpr ok = TBinary(TBinaryOp::kAnd, TBinary(TBinaryOp::kGE, p, zero),
                         TBinary(TBinaryOp::kLT, p, TIndex(spatial[i])));
      inside = inside ? TBinary(TBinaryOp::kAnd, inside, ok) : ok;
      idx[size_t(ax.first_spatial) + i] = TMin(TMax(p, zero), TIndex(spatial[i] - 1));
    }
    TExpr x = c.Read(0, idx);
    if (a.pool_type == PoolType::kLp && a.p_value.value_or(1) == 2) x = x * x;
    return inside ? TSelect(inside, x, outside) : x;
  };
  if (a.pool_type == PoolType::kMax) {
    // std::max(acc, x) from the lowest value: NaN is skipped; float64's empty window gives
    // -DBL_MAX (float32 rounds it to -inf).
    TExpr m = TReduce(TReduceOp::kMaxNum, g.kernel,
                      [&](const std::vector<TExpr>& r) { return value(r, TConst(-INFINITY, t)); });
    if (t != DType::kFloat64) return {m};
    TExpr lowest = TConst(std::numeric_limits<double>::lowest(), t);
    return {TSelect(TBinary(TBinaryOp::kLT, m, lowest), lowest, m)};
  }
  TExpr sum = TReduce(TReduceOp::kSum, g.kernel,
                      [&](const std::vector<TExpr>& r) { return value(r, TConst(0, t)); });
  switch (a.pool_type) {
    case PoolType::kAvg:
      return {sum / TCast(t, a.count_include_pad.value_or(true) ? padded_size : inside_size)};
    case PoolType::kLp:
      return {a.p_value.value_or(1) == 2 ? TCall(TMath::kSqrt, {sum}) : sum};
    default:
      return {sum};
  }
}

// Inputs d output, data, output; output d data. Per window, as MXNet's CPU kernels:
//   max  all of dy to the first element (in window order) holding the maximum;
//   avg  dy / size to each element inside the data (size as in the forward pass);
//   sum  dy to each element;
//   lp   dy * (x / y)^(p-1) to each element (dy for p = 1), and 0 where y = 0, where MXNet's
//        division would give NaN: with y = 0 every x is 0 (p = 2) or the signed cubes cancel.
template <class T>
void PoolingBackwardKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<PoolingAttrs>();
  const Tensor &dy = ctx.in[0], &x = ctx.in[1];
  bool include_pad = a.count_include_pad.value_or(true);
  int p = int(a.p_value.value_or(1));
  const T* dyp = dy.data<T>();
  const T* xp = x.data<T>();
  const T* yp = ctx.in[2].data<T>();
  std::vector<AccType<T>> dx(size_t(x.size()), AccType<T>(0));
  ForEachPoolWindow(a, x.shape(), dy.shape(),
                    [&](int64_t out, const std::vector<int64_t>& in, int64_t padded) {
                      AccType<T> g = AccType<T>(dyp[out]);
                      switch (a.pool_type) {
                        case PoolType::kMax: {
                          int64_t arg = -1;
                          for (int64_t i : in)
                            if (arg < 0 || AccType<T>(xp[i]) > AccType<T>(xp[arg])) arg = i;
                          if (arg >= 0) dx[size_t(arg)] += g;
                          break;
                        }
                        case PoolType::kAvg: {
                          int64_t size = include_pad ? padded : int64_t(in.size());
                          if (size > 0)
                            for (int64_t i : in) dx[size_t(i)] += g / AccType<T>(size);
                          break;
                        }
                        case PoolType::kSum:
                          for (int64_t i : in) dx[size_t(i)] += g;
                          break;
                        case PoolType::kLp: {
                          AccType<T> y = AccType<T>(yp[out]);
                          for (int64_t i : in) {
                            AccType<T> r = p == 1 ? 1 : y == 0 ? 0 : AccType<T>(xp[i]) / y;
                            dx[size_t(i)] += g * (p == 3 ? r * r : r);
                          }
                          break;
                        }
                      }
                    });
  T* dxp = ctx.out[0].data<T>();
  for (size_t i = 0; i < dx.size(); ++i) dxp[i] = static_cast<T>(dx[i]);
}

// Compute definition of the gradient (float32 and float64): a gather. Element x of the data
// collects dy from every window containing it. Per spatial axis (extent n, output extent m,
// kernel k, stride s, pad p) with q = x + p, the windows are o = q / s - j for j in
// [0, ceil(k / s)), or o in [0, m) when m is smaller; window o holds x when o is in [0, m) and
// its offset r = q - o s is in [0, k). The candidates form a reduction over j (no reduction on
// an axis with one candidate: non-overlapping windows give a plain expression); invalid ones
// contribute 0 through a Select, so every read is clamped into its tensor (Select evaluates
// both sides). Max pooling re-reads the data as the reference does: x receives dy[o] when it
// is the reference's argmax of window o, a running `x[i] > x[arg]` scan in window order from
// the window's first element inside the data, i.e. when, for every other element u inside the
// window, u before x: x > u, or u is NaN and not the first; u after x: !(u > x). That is one
// nested reduction over the window (a 0/1 failure flag), so no forward output is needed and
// ties, NaN and -inf give the reference's element. Sums accumulate in the data's type.
std::vector<TExpr> PoolingBackwardCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<PoolingAttrs>();
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t)) return {};
  for (int j = 0; j < 3; ++j)
    if (c.in_dtype(j) != t) return {};
  const Shape& in = c.in_shape(1);
  const Shape& out = c.in_shape(0);
  int rank = in.ndim();
  PoolAxes ax = AxesOf(a, rank);
  size_t nd = size_t(ax.num_spatial);
  std::vector<int64_t> spatial, ospatial;
  for (size_t i = 0; i < nd; ++i) {
    spatial.push_back(in[ax.first_spatial + int(i)]);
    ospatial.push_back(out[ax.first_spatial + int(i)]);
  }
  PoolGeom g = Geom(a, spatial);
  int p = int(a.p_value.value_or(1));
  TExpr zero = TIndex(0);
  auto And = [](TExpr x, TExpr y) { return x ? TBinary(TBinaryOp::kAnd, x, y) : y; };
  auto clamp = [&](TExpr e, int64_t n) {
    return TMin(TMax(e, zero), TIndex(std::max<int64_t>(n - 1, 0)));
  };
  // Candidate windows per axis: extent and whether o is enumerated directly.
  std::vector<int64_t> cand(nd);
  std::vector<bool> direct(nd);
  std::vector<int64_t> red_extents;
  std::vector<int> red_axis(nd, -1);
  for (size_t i = 0; i < nd; ++i) {
    int64_t per = (g.kernel[i] + g.stride[i] - 1) / g.stride[i];
    direct[i] = ospatial[i] <= per;
    cand[i] = direct[i] ? ospatial[i] : per;
    if (cand[i] != 1) {
      red_axis[i] = int(red_extents.size());
      red_extents.push_back(cand[i]);
    }
  }
  TExpr xq = c.Read(1, c.Axes());
  // The contribution of candidate j (one index expression per axis).
  auto term = [&](const std::vector<TExpr>& j) -> TExpr {
    std::vector<TExpr> o(nd), r(nd), oc(nd);
    TExpr valid;
    for (size_t i = 0; i < nd; ++i) {
      TExpr q = TAxis(ax.first_spatial + int(i)) + TIndex(g.pad[i]);
      TExpr s = TIndex(g.stride[i]), k = TIndex(g.kernel[i]);
      if (direct[i]) {
        o[i] = j[i];
        r[i] = q - o[i] * s;
        valid = And(valid, TBinary(TBinaryOp::kGE, r[i], zero));
      } else {
        o[i] = q / s - j[i];
        r[i] = q - o[i] * s;
        if (cand[i] > 1) valid = And(valid, TBinary(TBinaryOp::kGE, o[i], zero));
        valid = And(valid, TBinary(TBinaryOp::kLT, o[i], TIndex(ospatial[i])));
      }
      valid = And(valid, TBinary(TBinaryOp::kLT, r[i], k));
      oc[i] = clamp(o[i], ospatial[i]);
    }
    std::vector<TExpr> oidx = c.Axes();
    for (size_t i = 0; i < nd; ++i) oidx[size_t(ax.first_spatial) + i] = oc[i];
    TExpr dy = c.Read(0, oidx);
    TExpr v;
    switch (a.pool_type) {
      case PoolType::kSum:
        v = dy;
        break;
      case PoolType::kAvg: {
        TExpr size = TIndex(1);
        bool include_pad = a.count_include_pad.value_or(true);
        for (size_t i = 0; i < nd; ++i) {
          TExpr start = oc[i] * TIndex(g.stride[i]) - TIndex(g.pad[i]);
          TExpr end = TMin(start + TIndex(g.kernel[i]), TIndex(spatial[i] + g.pad[i]));
          TExpr len = include_pad ? end - start : TMin(end, TIndex(spatial[i])) - TMax(start, zero);
          size = size * TMax(len, TIndex(1));
        }
        v = dy / TCast(t, size);
        break;
      }
      case PoolType::kLp: {
        if (p == 1) {
          v = dy;
          break;
        }
        TExpr y = c.Read(2, oidx);
        TExpr ratio = TSelect(TBinary(TBinaryOp::kEQ, y, TConst(0, t)), TConst(0, t), xq / y);
        v = dy * (p == 3 ? ratio * ratio : ratio);
        break;
      }
      case PoolType::kMax: {
        std::vector<TExpr> start(nd), lo(nd);
        TExpr flat_r = zero;
        for (size_t i = 0; i < nd; ++i) {
          start[i] = oc[i] * TIndex(g.stride[i]) - TIndex(g.pad[i]);
          lo[i] = TMax(start[i], zero);
          flat_r = flat_r * TIndex(g.kernel[i]) + r[i];
        }
        auto Or = [](TExpr x, TExpr y) { return x ? TBinary(TBinaryOp::kOr, x, y) : y; };
        TExpr xq_nan = TBinary(TBinaryOp::kNE, xq, xq);
        TExpr fail = TReduce(TReduceOp::kMaxNum, g.kernel, [&](const std::vector<TExpr>& u) {
          std::vector<TExpr> idx = c.Axes();
          TExpr outside, not_first, flat_u = zero;
          for (size_t i = 0; i < nd; ++i) {
            TExpr pos = start[i] + u[i];
            outside = Or(outside, Or(TBinary(TBinaryOp::kLT, pos, zero),
                                     TBinary(TBinaryOp::kGE, pos, TIndex(spatial[i]))));
            not_first = Or(not_first, TBinary(TBinaryOp::kNE, pos, lo[i]));
            flat_u = flat_u * TIndex(g.kernel[i]) + u[i];
            idx[size_t(ax.first_spatial) + i] = clamp(pos, spatial[i]);
          }
          TExpr xu = c.Read(1, idx);
          TExpr xu_nan = TBinary(TBinaryOp::kNE, xu, xu);
          // Before x: x > u, or u is a NaN other than the first; after (or x itself): !(u > x).
          TExpr beats_earlier = Or(TBinary(TBinaryOp::kGT, xq, xu), And(xu_nan, not_first));
          TExpr not_beaten = Or(Or(TBinary(TBinaryOp::kLE, xu, xq), xu_nan), xq_nan);
          TExpr ok = Or(And(TBinary(TBinaryOp::kLT, flat_u, flat_r), beats_earlier),
                        And(TBinary(TBinaryOp::kGE, flat_u, flat_r), not_beaten));
          return TSelect(Or(outside, ok), TConst(0, t), TConst(1, t));
        });
        v = TSelect(TBinary(TBinaryOp::kLT, fail, TConst(0.5, t)), dy, TConst(0, t));
        break;
      }
    }
    return valid ? TSelect(valid, v, TConst(0, t)) : v;
  };
  if (red_extents.empty()) return {term(std::vector<TExpr>(nd, zero))};
  return {TReduce(TReduceOp::kSum, red_extents, [&](const std::vector<TExpr>& rr) {
    std::vector<TExpr> j(nd);
    for (size_t i = 0; i < nd; ++i) j[i] = red_axis[i] >= 0 ? rr[size_t(red_axis[i])] : zero;
    return term(j);
  })};
}

// d output and output have the forward output's shape, data and d data the data's.
void PoolingBackwardShape(ShapeInferCtx& ctx) {
  Shape s = ctx.in(0);
  if (!s.Merge(ctx.in(2)))
    ctx.Fail(StrCat("ograd ", ctx.in(0).ToString(), " and output ", ctx.in(2).ToString(),
                    " differ but must have one shape"));
  ctx.SetIn(0, s);
  ctx.SetIn(2, s);
  ctx.SetIn(1, ctx.out(0));
  InferShapesAsForward(ctx, "Pooling", {1}, {0});
  ctx.SetIn(2, ctx.in(0));
  ctx.SetOut(0, ctx.in(1));
}

}  // namespace

void RegisterPoolOps(OpRegistry& r) {
  r.Register("Pooling")
      .Describe(
          "max / avg / sum / lp pooling over 1-3 spatial axes, with valid, full or same "
          "output conventions, or over the whole extent (global_pool)")
      .SetAttrs<PoolingAttrs>()
      .InferShape(PoolingShape)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOutElemwiseFusable)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, PoolingKernel<T>(ctx));
      })
      .Compute(PoolingCompute)
      .Gradient([](GradCtx& g) -> GradList {
        return {g.EmitWithAttrs("_backward_Pooling", {g.ograd(0), g.input(0), g.output(0)})[0]};
      });

  r.Register("_backward_Pooling")
      .Describe("gradient of Pooling: d data from (d output, data, output)")
      .SetAttrs<PoolingAttrs>()
      .Inputs({"ograd", "data", "output"})
      .Outputs({"data_grad"})
      .InferShape(PoolingBackwardShape)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOutElemwiseFusable)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, PoolingBackwardKernel<T>(ctx));
      })
      .Compute(PoolingBackwardCompute);
}

}  // namespace kiln::ops
