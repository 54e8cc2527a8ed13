// nn_conv.cpp - Convolution and Deconvolution (1-D NCW, 2-D NCHW, 3-D NCDHW).
//
// Shapes, as MXNet's:
//   Convolution    data (N, C, X...), weight (num_filter, C / num_group, K...), bias (num_filter)
//                  out  (N, num_filter, (X + 2p - (d(K-1)+1)) / s + 1 ...)
//   Deconvolution  data (N, C, X...), weight (C, num_filter / num_group, K...), bias (num_filter)
//                  out  (N, num_filter, s(X-1) + d(K-1)+1 - 2p + adj ...), or target_shape
// Deconvolution is the adjoint (transpose) of Convolution with the same weight: for shapes that
// match, <conv(x, w), y> == <x, deconv(y, w)>. Its reference kernel scatters each input element
// through the kernel window, which is that adjoint written directly.
//
// Gradients (_backward_Convolution, _backward_Deconvolution; inputs d output, data, weight;
// outputs d data, d weight and, unless no_bias, d bias): each walks the forward loop nest once
// and accumulates, for every product x * w it added into y, dy * w into dx and dy * x into dw;
// d bias sums dy over the batch and spatial axes. Padding reads zeros, so it gets no gradient;
// with target_shape the effective pad and adj are the forward pass's.
//
// Both are out-elementwise-fusable: a following bias, activation or scale fuses into the
// epilogue of the convolution kernel. So are their backward ops, on output 0 (the data
// gradient): the relu gradient and the gradient sums of a training graph fuse into it.
//
// Compute definitions (nn_conv_compute.cpp, every floating dtype, forward and backward): sums
// over a filter's taps or over the batch and positions, written as gathers. CompileGraph runs
// float32 convolutions and their gradients on the runtime library (D34) unless told not to; the
// definitions make every convolution lowerable (other dtypes, self-contained code: bundles).
#include <algorithm>
#include <optional>

#include "kiln/ir/grad.h"
#include "ops/nn_conv_compute.h"
#include "ops/nn_util.h"
#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {

// Declared in nn_conv_compute.h.
DeconvPads DeconvPadAdj(const DeconvolutionAttrs& a, const ConvGeom& g,
                        const std::vector<int64_t>& in, const ShapeInferCtx* ctx) {
  size_t nd = a.kernel.size();
  DeconvPads p{g.pad, TupleOr(a.adj, nd, 0)};
  if (!HasTarget(a)) return p;
  for (size_t i = 0; i < nd; ++i) {
    int64_t full = g.stride[i] * (in[i] - 1) + DilatedKernel(g.kernel[i], g.dilate[i]);
    int64_t total = full - a.target_shape[i];
    if (total < 0) {
      std::string msg = StrCat("target_shape ", attr_text::Print(a.target_shape), " is ",
                               a.target_shape[i], " on spatial axis ", i, " but the input (extent ",
                               in[i], ") reaches at most ", full);
      if (ctx) ctx->Fail(msg);
      throw InternalError(msg);
    }
    p.pad[i] = (total + 1) / 2;
    p.adj[i] = total % 2;
  }
  return p;
}

namespace {

// Convolution's output extent of one axis; fails if the dilated kernel exceeds the padded input.
int64_t ConvOutExtent(const ShapeInferCtx& ctx, const Shape& data, int axis, const ConvGeom& g,
                      size_t i) {
  int64_t padded = data[axis] + 2 * g.pad[i];
  int64_t dk = DilatedKernel(g.kernel[i], g.dilate[i]);
  if (padded < dk)
    ctx.Fail(StrCat("data ", data.ToString(), " is ", padded, " wide on axis ", axis,
                    " after padding ", g.pad[i], ", less than the dilated kernel ", dk, " (kernel ",
                    g.kernel[i], ", dilate ", g.dilate[i], ")"));
  return (padded - dk) / g.stride[i] + 1;
}

template <class A>
void ConvLikeShape(ShapeInferCtx& ctx, bool deconv) {
  const A& a = ctx.attrs<A>();
  ConvGeom g = Geom(a);
  size_t nd = a.kernel.size();
  int rank = int(nd) + 2;
  for (int i = 0; i < 2; ++i) {
    const Shape& s = ctx.in(i);
    if (s.rank_known() && s.ndim() != rank)
      ctx.Fail(StrCat(ctx.InName(i), " ", s.ToString(), " has rank ", s.ndim(), " but kernel ",
                      attr_text::Print(a.kernel), " needs rank ", rank,
                      i == 0 ? " (" + ChannelFirstLayout(nd) + ")" : std::string()));
  }
  if (!a.no_bias) ctx.SetIn(2, Shape{a.num_filter}, "bias has num_filter elements");

  // The data's channels, from the data or else from the weight; then the whole weight shape.
  Shape data = ctx.in(0);
  if (!data.rank_known()) data = Shape::UnknownDims(rank);
  const Shape& wk = ctx.in(1);
  int wc = deconv ? 0 : 1;  // the weight axis that counts input channels
  if (!data.dim_known(1) && wk.rank_known() && wk.dim_known(wc))
    data[1] = deconv ? wk[wc] : wk[wc] * a.num_group;
  if (data.dim_known(1) && data[1] % a.num_group != 0)
    ctx.Fail(StrCat("data ", data.ToString(), " has ", data[1], " channels, which num_group ",
                    a.num_group, " does not divide"));
  Shape w = Shape::UnknownDims(rank);
  int64_t c = data[1];
  if (deconv) {
    w[0] = c;
    w[1] = a.num_filter / a.num_group;
  } else {
    w[0] = a.num_filter;
    w[1] = c == Shape::kUnknownDim ? c : c / a.num_group;
  }
  for (size_t i = 0; i < nd; ++i) w[2 + int(i)] = a.kernel[i];
  ctx.SetIn(1, w,
            deconv ? "weight is (channels, num_filter / num_group, kernel...)"
                   : "weight is (num_filter, channels / num_group, kernel...)");
  const Shape& out_known = ctx.out(0);
  if (!data.dim_known(0) && out_known.rank_known() && out_known.ndim() == rank)
    data[0] = out_known[0];
  ctx.SetIn(0, data);

  // Output.
  Shape out = Shape::UnknownDims(rank);
  out[0] = data[0];
  out[1] = a.num_filter;
  bool spatial_known = true;
  std::vector<int64_t> in_sp(nd);
  for (size_t i = 0; i < nd; ++i) {
    spatial_known &= data.dim_known(2 + int(i));
    in_sp[i] = data[2 + int(i)];
  }
  for (size_t i = 0; i < nd; ++i) {
    int axis = 2 + int(i);
    if (!data.dim_known(axis)) continue;
    if (!deconv) {
      out[axis] = ConvOutExtent(ctx, data, axis, g, i);
      continue;
    }
    if (!spatial_known && HasTarget(ctx.attrs<DeconvolutionAttrs>())) continue;
    DeconvPads p = DeconvPadAdj(ctx.attrs<DeconvolutionAttrs>(), g, in_sp, &ctx);
    int64_t e = g.stride[i] * (data[axis] - 1) + DilatedKernel(g.kernel[i], g.dilate[i]) -
                2 * p.pad[i] + p.adj[i];
    if (e <= 0)
      ctx.Fail(StrCat("data ", data.ToString(), " gives an output extent of ", e, " on axis ", axis,
                      " (stride ", g.stride[i], ", kernel ", g.kernel[i], ", dilate ", g.dilate[i],
                      ", pad ", p.pad[i], ", adj ", p.adj[i], ")"));
    out[axis] = e;
  }
  ctx.SetOut(0, out);
}

// Index of element (n, c, z, y, x) of a (N, C, Window3 extents) tensor.
inline int64_t Idx5(int64_t n, int64_t c, int64_t z, int64_t y, int64_t x, int64_t C,
                    const std::array<int64_t, 3>& e) {
  return (((n * C + c) * e[0] + z) * e[1] + y) * e[2] + x;
}

// Convolution as a matrix product over unfolded patches, per image and group:
//   cols[k][p] = x[n, g*Cg + c, o*stride - pad + kk*dilate]  (0 in the padding)
//   y[n, g*Fg + f, p] = bias + sum_k w[g*Fg + f][k] * cols[k][p]
// with k = (c, kz, ky, kx) running over one filter's taps and p = (oz, oy, ox) over output
// positions. The patch map (which input element, if any, each cols entry reads) depends only on
// the geometry, so it is built once per call.
struct PatchMap {
  int64_t K = 0, P = 0;        // taps per filter (Cg * kernel), output positions
  std::vector<int64_t> index;  // K * P offsets into one image's group of channels, -1: padding
};

PatchMap MakePatchMap(const Window3& win, int64_t Cg) {
  PatchMap m;
  m.K = Cg * win.KernelSize();
  m.P = win.OutSize();
  m.index.resize(size_t(m.K * m.P));
  int64_t k = 0;
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t kz = 0; kz < win.kernel[0]; ++kz)
      for (int64_t ky = 0; ky < win.kernel[1]; ++ky)
        for (int64_t kx = 0; kx < win.kernel[2]; ++kx, ++k) {
          int64_t p = 0;
          for (int64_t oz = 0; oz < win.out[0]; ++oz)
            for (int64_t oy = 0; oy < win.out[1]; ++oy)
              for (int64_t ox = 0; ox < win.out[2]; ++ox, ++p) {
                int64_t iz = oz * win.stride[0] - win.pad[0] + kz * win.dilate[0];
                int64_t iy = oy * win.stride[1] - win.pad[1] + ky * win.dilate[1];
                int64_t ix = ox * win.stride[2] - win.pad[2] + kx * win.dilate[2];
                bool inside = iz >= 0 && iz < win.in[0] && iy >= 0 && iy < win.in[1] && ix >= 0 &&
                              ix < win.in[2];
                m.index[size_t(k * m.P + p)] =
                    inside ? ((c * win.in[0] + iz) * win.in[1] + iy) * win.in[2] + ix : -1;
              }
        }
  return m;
}

// cols[k * P + p] = x_group[index] (0 for padding), in the accumulation type.
template <class T>
void Unfold(const PatchMap& m, const T* x_group, std::vector<AccType<T>>& cols) {
  cols.resize(m.index.size());
  for (size_t i = 0; i < cols.size(); ++i)
    cols[i] = m.index[i] < 0 ? AccType<T>(0) : AccType<T>(x_group[m.index[i]]);
}

// y[i] += a * x[i] over n elements: the one inner loop of the convolution kernels.
template <class Acc>
void Axpy(int64_t n, Acc a, const Acc* x, Acc* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

template <class T>
void ConvolutionKernel(const KernelCtx& ctx) {
  using Acc = AccType<T>;
  const auto& a = ctx.Attr<ConvolutionAttrs>();
  ConvGeom g = Geom(a);
  const Tensor &x = ctx.in[0], &wt = ctx.in[1], &y = ctx.out[0];
  Window3 win = MakeWindow3(x.shape(), y.shape(), g.kernel, g.stride, g.pad, g.dilate);
  int64_t N = x.dim(0), C = x.dim(1), F = a.num_filter, G = a.num_group;
  int64_t Cg = C / G, Fg = F / G;
  PatchMap m = MakePatchMap(win, Cg);
  const T* xp = x.data<T>();
  const T* wp = wt.data<T>();
  const T* bp = a.no_bias ? nullptr : ctx.in[2].data<T>();
  T* yp = y.data<T>();
  std::vector<Acc> cols, row(size_t(m.P));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t grp = 0; grp < G; ++grp) {
      Unfold(m, xp + (n * C + grp * Cg) * win.InSize(), cols);
      for (int64_t f = grp * Fg; f < (grp + 1) * Fg; ++f) {
        std::fill(row.begin(), row.end(), bp ? Acc(bp[f]) : Acc(0));
        int64_t k = 0;
        // Four taps per pass over the row: a quarter of the loads and stores of `row`.
        for (; k + 4 <= m.K; k += 4) {
          const T* w4 = wp + f * m.K + k;
          Acc w0 = Acc(w4[0]), w1 = Acc(w4[1]), w2 = Acc(w4[2]), w3 = Acc(w4[3]);
          const Acc* c = cols.data() + k * m.P;
          for (int64_t p = 0; p < m.P; ++p)
            row[size_t(p)] +=
                w0 * c[p] + w1 * c[m.P + p] + w2 * c[2 * m.P + p] + w3 * c[3 * m.P + p];
        }
        for (; k < m.K; ++k) Axpy(m.P, Acc(wp[f * m.K + k]), cols.data() + k * m.P, row.data());
        T* yrow = yp + (n * F + f) * m.P;
        for (int64_t p = 0; p < m.P; ++p) yrow[p] = static_cast<T>(row[size_t(p)]);
      }
    }
}

template <class T>
void DeconvolutionKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<DeconvolutionAttrs>();
  ConvGeom g = Geom(a);
  const Tensor &x = ctx.in[0], &wt = ctx.in[1], &y = ctx.out[0];
  size_t nd = a.kernel.size();
  std::vector<int64_t> in_sp(x.shape().end() - int64_t(nd), x.shape().end());
  DeconvPads p = DeconvPadAdj(a, g, in_sp, nullptr);
  Window3 win = MakeWindow3(x.shape(), y.shape(), g.kernel, g.stride, p.pad, g.dilate);
  int64_t N = x.dim(0), C = x.dim(1), F = a.num_filter, G = a.num_group;
  int64_t Cg = C / G, Fg = F / G;
  const T* xp = x.data<T>();
  const T* wp = wt.data<T>();
  std::vector<AccType<T>> acc(size_t(y.size()), AccType<T>(0));
  // Each input element adds x * w to every output position its window reaches: the transpose
  // of Convolution's gather.
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      int64_t grp = c / Cg;
      for (int64_t iz = 0; iz < win.in[0]; ++iz)
        for (int64_t iy = 0; iy < win.in[1]; ++iy)
          for (int64_t ix = 0; ix < win.in[2]; ++ix) {
            AccType<T> xv = AccType<T>(xp[Idx5(n, c, iz, iy, ix, C, win.in)]);
            for (int64_t f = 0; f < Fg; ++f)
              for (int64_t kz = 0; kz < win.kernel[0]; ++kz)
                for (int64_t ky = 0; ky < win.kernel[1]; ++ky)
                  for (int64_t kx = 0; kx < win.kernel[2]; ++kx) {
                    int64_t oz = iz * win.stride[0] - win.pad[0] + kz * win.dilate[0];
                    int64_t oy = iy * win.stride[1] - win.pad[1] + ky * win.dilate[1];
                    int64_t ox = ix * win.stride[2] - win.pad[2] + kx * win.dilate[2];
                    if (oz < 0 || oz >= win.out[0] || oy < 0 || oy >= win.out[1] || ox < 0 ||
                        ox >= win.out[2])
                      continue;
                    acc[size_t(Idx5(n, grp * Fg + f, oz, oy, ox, F, win.out))] +=
                        xv * AccType<T>(wp[Idx5(c, f, kz, ky, kx, Fg, win.kernel)]);
                  }
          }
    }
  const T* bp = a.no_bias ? nullptr : ctx.in[2].data<T>();
  T* yp = y.data<T>();
  int64_t plane = win.OutSize();
  for (int64_t i = 0; i < y.size(); ++i) {
    AccType<T> v = acc[size_t(i)];
    if (bp) v += AccType<T>(bp[(i / plane) % F]);
    yp[i] = static_cast<T>(v);
  }
}

// ----- Gradients -----

// Where the backward kernels write, in the accumulation type; stored at the end.
template <class T>
struct ConvGrads {
  std::vector<AccType<T>> dx, dw;
  explicit ConvGrads(const KernelCtx& ctx)
      : dx(size_t(ctx.in[1].size()), AccType<T>(0)), dw(size_t(ctx.in[2].size()), AccType<T>(0)) {}
  // Stores dx, dw and (when there is a bias) db, the sum of dy over all but axis 1.
  void Store(const KernelCtx& ctx, bool no_bias) const {
    T* dxp = ctx.out[0].data<T>();
    for (size_t i = 0; i < dx.size(); ++i) dxp[i] = static_cast<T>(dx[i]);
    T* dwp = ctx.out[1].data<T>();
    for (size_t i = 0; i < dw.size(); ++i) dwp[i] = static_cast<T>(dw[i]);
    if (no_bias) return;
    const Tensor& dy = ctx.in[0];
    int64_t F = dy.dim(1), plane = dy.size() / std::max<int64_t>(dy.dim(0) * F, 1);
    std::vector<AccType<T>> db(size_t(F), AccType<T>(0));
    const T* dyp = dy.data<T>();
    for (int64_t i = 0; i < dy.size(); ++i) db[size_t((i / plane) % F)] += AccType<T>(dyp[i]);
    T* dbp = ctx.out[2].data<T>();
    for (int64_t f = 0; f < F; ++f) dbp[f] = static_cast<T>(db[size_t(f)]);
  }
};

// The transpose of the forward product, per image and group, with the same patch map:
//   dcols[k][p] = sum_f w[f][k] * dy[f][p], folded back (scatter-added) into dx;
//   dw[f][k] += sum_p dy[f][p] * cols[k][p], computed as rows of colsT (p-major) so that the
//   inner loop runs over k contiguously.
template <class T>
void ConvolutionBackwardKernel(const KernelCtx& ctx) {
  using Acc = AccType<T>;
  const auto& a = ctx.Attr<ConvolutionAttrs>();
  ConvGeom g = Geom(a);
  const Tensor &dy = ctx.in[0], &x = ctx.in[1], &wt = ctx.in[2];
  Window3 win = MakeWindow3(x.shape(), dy.shape(), g.kernel, g.stride, g.pad, g.dilate);
  int64_t N = x.dim(0), C = x.dim(1), F = a.num_filter, G = a.num_group;
  int64_t Cg = C / G, Fg = F / G;
  PatchMap m = MakePatchMap(win, Cg);
  const T* dyp = dy.data<T>();
  const T* xp = x.data<T>();
  const T* wp = wt.data<T>();
  ConvGrads<T> d(ctx);
  std::vector<Acc> cols, cols_t(size_t(m.K * m.P)), dcols(size_t(m.K * m.P)), dyrow(size_t(m.P));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t grp = 0; grp < G; ++grp) {
      int64_t group_offset = (n * C + grp * Cg) * win.InSize();
      Unfold(m, xp + group_offset, cols);
      for (int64_t k = 0; k < m.K; ++k)
        for (int64_t p = 0; p < m.P; ++p) cols_t[size_t(p * m.K + k)] = cols[size_t(k * m.P + p)];
      std::fill(dcols.begin(), dcols.end(), Acc(0));
      for (int64_t f = grp * Fg; f < (grp + 1) * Fg; ++f) {
        const T* dyf = dyp + (n * F + f) * m.P;
        for (int64_t p = 0; p < m.P; ++p) dyrow[size_t(p)] = Acc(dyf[p]);
        for (int64_t k = 0; k < m.K; ++k)
          Axpy(m.P, Acc(wp[f * m.K + k]), dyrow.data(), dcols.data() + k * m.P);
        for (int64_t p = 0; p < m.P; ++p)
          Axpy(m.K, dyrow[size_t(p)], cols_t.data() + p * m.K, d.dw.data() + f * m.K);
      }
      for (size_t i = 0; i < dcols.size(); ++i)
        if (m.index[i] >= 0) d.dx[size_t(group_offset + m.index[i])] += dcols[i];
    }
  d.Store(ctx, a.no_bias);
}

// The forward loop nest of DeconvolutionKernel, with y += x * w turned around.
template <class T>
void DeconvolutionBackwardKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<DeconvolutionAttrs>();
  ConvGeom g = Geom(a);
  const Tensor &dy = ctx.in[0], &x = ctx.in[1], &wt = ctx.in[2];
  size_t nd = a.kernel.size();
  std::vector<int64_t> in_sp(x.shape().end() - int64_t(nd), x.shape().end());
  DeconvPads p = DeconvPadAdj(a, g, in_sp, nullptr);
  Window3 win = MakeWindow3(x.shape(), dy.shape(), g.kernel, g.stride, p.pad, g.dilate);
  int64_t N = x.dim(0), C = x.dim(1), F = a.num_filter, G = a.num_group;
  int64_t Cg = C / G, Fg = F / G;
  const T* dyp = dy.data<T>();
  const T* xp = x.data<T>();
  const T* wp = wt.data<T>();
  ConvGrads<T> d(ctx);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      int64_t grp = c / Cg;
      for (int64_t iz = 0; iz < win.in[0]; ++iz)
        for (int64_t iy = 0; iy < win.in[1]; ++iy)
          for (int64_t ix = 0; ix < win.in[2]; ++ix) {
            int64_t xi = Idx5(n, c, iz, iy, ix, C, win.in);
            AccType<T> xv = AccType<T>(xp[xi]), gx = 0;
            for (int64_t f = 0; f < Fg; ++f)
              for (int64_t kz = 0; kz < win.kernel[0]; ++kz)
                for (int64_t ky = 0; ky < win.kernel[1]; ++ky)
                  for (int64_t kx = 0; kx < win.kernel[2]; ++kx) {
                    int64_t oz = iz * win.stride[0] - win.pad[0] + kz * win.dilate[0];
                    int64_t oy = iy * win.stride[1] - win.pad[1] + ky * win.dilate[1];
                    int64_t ox = ix * win.stride[2] - win.pad[2] + kx * win.dilate[2];
                    if (oz < 0 || oz >= win.out[0] || oy < 0 || oy >= win.out[1] || ox < 0 ||
                        ox >= win.out[2])
                      continue;
                    AccType<T> go = AccType<T>(dyp[Idx5(n, grp * Fg + f, oz, oy, ox, F, win.out)]);
                    int64_t wi = Idx5(c, f, kz, ky, kx, Fg, win.kernel);
                    gx += go * AccType<T>(wp[wi]);
                    d.dw[size_t(wi)] += go * xv;
                  }
            d.dx[size_t(xi)] = gx;
          }
    }
  d.Store(ctx, a.no_bias);
}

// ograd, data and weight relate as the forward op's output and inputs; the gradients have the
// shapes of data, weight and bias.
template <class A>
void ConvBackwardShape(ShapeInferCtx& ctx, const char* fwd_op) {
  const A& a = ctx.attrs<A>();
  for (int i = 0; i < 2; ++i) ctx.SetIn(i + 1, ctx.out(i));
  InferShapesAsForward(ctx, fwd_op, a.no_bias ? std::vector<int>{1, 2} : std::vector<int>{1, 2, -1},
                       {0});
  for (int i = 0; i < 2; ++i) ctx.SetOut(i, ctx.in(i + 1));
  if (!a.no_bias) ctx.SetOut(2, Shape{a.num_filter}, "bias has num_filter elements");
}

template <class A>
GradList ConvGradient(GradCtx& g, const char* backward_op) {
  auto d = g.EmitWithAttrs(backward_op, {g.ograd(0), g.input(0), g.input(1)});
  GradList grads = {d[0], d[1]};
  if (!g.attrs<A>().no_bias) grads.push_back(d[2]);
  return grads;
}

template <class A>
std::vector<std::string> ConvBackwardOutputs(const Attrs& a) {
  return a.Get<A>().no_bias ? std::vector<std::string>{"data_grad", "weight_grad"}
                            : std::vector<std::string>{"data_grad", "weight_grad", "bias_grad"};
}

}  // namespace

void RegisterConvOps(OpRegistry& r) {
  r.Register("Convolution")
      .Describe(
          "N-d convolution (1-D NCW, 2-D NCHW, 3-D NCDHW) with stride, dilation, zero padding "
          "and groups; weight (num_filter, channels / num_group, kernel...)")
      .SetAttrs<ConvolutionAttrs>()
      .Inputs([](const Attrs& a) {
        return a.Get<ConvolutionAttrs>().no_bias
                   ? std::vector<std::string>{"data", "weight"}
                   : std::vector<std::string>{"data", "weight", "bias"};
      })
      .InferShape([](ShapeInferCtx& ctx) { ConvLikeShape<ConvolutionAttrs>(ctx, false); })
      .InferType(FloatTypeInfer)
      .ChannelScalable([](const Attrs& a, int out_rank) -> std::optional<ChannelScaling> {
        ConvolutionAttrs with = a.Get<ConvolutionAttrs>();
        // Output channels are axis 1 (NCW, NCHW, NCDHW) or last (NWC, NHWC, NDHWC); the
        // weight's output channels are its axis 0 in every layout.
        bool channels_last = with.layout && with.layout->back() == 'C';
        ChannelScaling c{.weight_input = 1,
                         .weight_axis = 0,
                         .bias_input = with.no_bias ? -1 : 2,
                         .out_axis = channels_last ? out_rank - 1 : 1};
        with.no_bias = false;
        c.with_bias = Attrs::Make(with);
        return c;
      })
      .Pattern(FusionPattern::kOutElemwiseFusable)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, ConvolutionKernel<T>(ctx));
      })
      .Compute(ConvolutionCompute)
      .Gradient(
          [](GradCtx& g) { return ConvGradient<ConvolutionAttrs>(g, "_backward_Convolution"); });

  r.Register("_backward_Convolution")
      .Describe(
          "gradients of Convolution: (d data, d weight[, d bias]) from (d output, data, weight)")
      .SetAttrs<ConvolutionAttrs>()
      .Inputs({"ograd", "data", "weight"})
      .Outputs(ConvBackwardOutputs<ConvolutionAttrs>)
      .InferShape(
          [](ShapeInferCtx& ctx) { ConvBackwardShape<ConvolutionAttrs>(ctx, "Convolution"); })
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOutElemwiseFusable)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, ConvolutionBackwardKernel<T>(ctx));
      })
      .Compute(ConvolutionBackwardCompute);

  r.Register("Deconvolution")
      .Describe(
          "transposed convolution, the adjoint of Convolution with the same weight (channels, "
          "num_filter / num_group, kernel...); output extent s(x-1) + d(k-1)+1 - 2p + adj, or "
          "target_shape")
      .SetAttrs<DeconvolutionAttrs>()
      .Inputs([](const Attrs& a) {
        return a.Get<DeconvolutionAttrs>().no_bias
                   ? std::vector<std::string>{"data", "weight"}
                   : std::vector<std::string>{"data", "weight", "bias"};
      })
      .InferShape([](ShapeInferCtx& ctx) { ConvLikeShape<DeconvolutionAttrs>(ctx, true); })
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOutElemwiseFusable)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, DeconvolutionKernel<T>(ctx));
      })
      .Compute(DeconvolutionCompute)
      .Gradient([](GradCtx& g) {
        return ConvGradient<DeconvolutionAttrs>(g, "_backward_Deconvolution");
      });

  r.Register("_backward_Deconvolution")
      .Describe(
          "gradients of Deconvolution: (d data, d weight[, d bias]) from (d output, data, "
          "weight)")
      .SetAttrs<DeconvolutionAttrs>()
      .Inputs({"ograd", "data", "weight"})
      .Outputs(ConvBackwardOutputs<DeconvolutionAttrs>)
      .InferShape(
          [](ShapeInferCtx& ctx) { ConvBackwardShape<DeconvolutionAttrs>(ctx, "Deconvolution"); })
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOutElemwiseFusable)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, DeconvolutionBackwardKernel<T>(ctx));
      })
      .Compute(DeconvolutionBackwardCompute);
}

}  // namespace kiln::ops
