// nn_conv_compute.cpp - compute definitions of Convolution, Deconvolution and their gradients.
//
// Each is a sum per output element (kiln/ir/compute.h), the reference kernels of nn_conv.cpp
// written as gathers (one spatial axis shown; g is the element's group, q = i + p - k d):
//   Convolution     y[n, f, o]  = sum_{c, k} x[n, g Cg + c, o s - p + k d] w[f, c, k]
//   Deconvolution   y[n, f, o]  = sum_{c, k} x[n, g Cg + c, (o + p - k d) / s]
//                                            w[g Cg + c, f % Fg, k]
//   _backward_Convolution
//                   dx[n, c, i] = sum_{f, k} dy[n, g Fg + f, q / s] w[g Fg + f, c % Cg, k]
//                   dw[f, c, k] = sum_{n, o} dy[n, f, o] x[n, g Cg + c, o s - p + k d]
//   _backward_Deconvolution
//                   dx[n, c, i] = sum_{f, k} dy[n, g Fg + f, i s - p + k d] w[c, f, k]
//                   dw[c, f, k] = sum_{n, i} dy[n, g Fg + f, i s - p + k d] x[n, c, i]
//   both            db[f]       = sum_{n, o} dy[n, f, o]
// Every sum runs over all spatial axes. A term whose position falls outside its tensor (padding,
// or a division by the stride that is not exact) is selected away, its read clamped into the
// tensor, since Select evaluates both sides. Where the reference multiplies such a term by a zero
// (Convolution's zero-filled patches: the forward output and the weight gradient) the Select gives
// the read 0 and the product stays, so that an infinity meets the reference's 0 * inf = NaN; where
// the reference skips the term (Deconvolution, the data gradients) the Select is on the product.
//
// Every floating dtype with every operand of the output's dtype, channel-first layouts (the
// only ones the ops accept); float16 and bfloat16 are widened to float32 and each sum rounded
// once to the storage type at the end; the reference sums in double. Every attribute the ops
// accept (1-3 spatial axes, stride, pad, dilate, num_group, no_bias, Deconvolution's adj and
// target_shape) is covered.
//
// The outputs of a backward op have different shapes, so lowering gives each its own serial
// loop nest (kiln/codegen/lower.h); CompileGraph sends float32 instances to the runtime library
// (D34) unless use_library is off.
#include <vector>

#include "ops/nn_conv_compute.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

// The type a definition computes floating dtype t in: float16 and bfloat16 widen to float32.
DType ComputeType(DType t) {
  return IsComputeFloat(t) ? t : DType::kFloat32;
}

// The definitions cover channel-first layouts with every operand of the output's floating type.
template <class Layout>
bool DefinedFor(const ComputeCtx& c, const Layout& layout) {
  DType t = c.out_dtype(0);
  if (!IsFloatingPoint(t) || (layout && IsChannelLast(*layout))) return false;
  for (int j = 0; j < c.num_in(); ++j)
    if (c.in_dtype(j) != t) return false;
  return true;
}

// y rounded to dtype t (float16, bfloat16: from the float32 sum).
TExpr RoundTo(TExpr y, DType t) {
  return y->dtype == t ? y : TCast(t, std::move(y));
}

// y + bias[f] (unless no_bias), rounded to dtype t.
TExpr AddBiasAndRound(const ComputeCtx& c, bool no_bias, TExpr y, DType t) {
  if (!no_bias) y = Widen(c.Read(2, {TAxis(1)})) + y;
  return RoundTo(std::move(y), t);
}

// a && b, where a null operand is true.
TExpr AndAlso(const TExpr& a, TExpr b) {
  if (!a || !b) return a ? a : b;
  return TBinary(TBinaryOp::kAnd, a, std::move(b));
}

// i * k, leaving out multiplications by 1.
TExpr Scaled(const TExpr& i, int64_t k) {
  return k == 1 ? i : i * TIndex(k);
}

// lo <= i < hi as a bool, each side left out where `check_lo` / `check_hi` is false (known to
// hold from the geometry); null when both are.
TExpr InRange(const TExpr& i, bool check_lo, int64_t hi, bool check_hi) {
  TExpr r;
  if (check_lo) r = TBinary(TBinaryOp::kGE, i, TIndex(0));
  if (check_hi) r = AndAlso(r, TBinary(TBinaryOp::kLT, i, TIndex(hi)));
  return r;
}

}  // namespace

// Convolution as a sum over a filter's taps (channel of its group, then kernel positions):
//   y[n, f, o...] = bias[f] + sum_{c, k...} x[n, g Cg + c, o s - p + k d ...] w[f, c, k...]
// with g = f / Fg the filter's group. A tap in the padding contributes 0 through a Select whose
// read is clamped into the data (Select evaluates both sides); axes without padding are always
// inside and read directly. Every floating dtype: float16 and bfloat16 sum in float32, rounded
// once at the end; the reference sums in double.
std::vector<TExpr> ConvolutionCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<ConvolutionAttrs>();
  DType t = c.out_dtype(0);
  if (!DefinedFor(c, a.layout)) return {};
  DType ct = ComputeType(t);
  const std::vector<int64_t>& x = c.in_shape(0).dims();
  // No data (no batch, no channels or an empty spatial axis): only the bias, nothing to read.
  if (NumElements(x) == 0) return {AddBiasAndRound(c, a.no_bias, TConst(0, ct), t)};
  ConvGeom g = Geom(a);
  size_t nd = g.kernel.size();
  int64_t Cg = x[1] / a.num_group, Fg = a.num_filter / a.num_group;
  std::vector<int64_t> extents = {Cg};
  extents.insert(extents.end(), g.kernel.begin(), g.kernel.end());
  TExpr f = TAxis(1);
  TExpr y = TReduce(TReduceOp::kSum, extents, [&](const std::vector<TExpr>& r) {
    TExpr channel = a.num_group == 1 ? r[0] : Scaled(f / TIndex(Fg), Cg) + r[0];
    std::vector<TExpr> xi = {TAxis(0), channel}, wi = {f, r[0]};
    TExpr inside;
    for (size_t i = 0; i < nd; ++i) {
      int64_t extent = x[2 + i];
      TExpr pos = Scaled(TAxis(2 + int(i)), g.stride[i]) + Scaled(r[1 + i], g.dilate[i]);
      if (g.pad[i] > 0) {
        pos = pos - TIndex(g.pad[i]);
        inside = AndAlso(inside, TBinary(TBinaryOp::kAnd, TBinary(TBinaryOp::kGE, pos, TIndex(0)),
                                         TBinary(TBinaryOp::kLT, pos, TIndex(extent))));
        pos = ClampIndex(pos, 0, extent - 1);
      }
      xi.push_back(pos);
      wi.push_back(r[1 + i]);
    }
    TExpr v = Widen(c.Read(0, xi));
    if (inside) v = TSelect(inside, v, TConst(0, ct));
    return v * Widen(c.Read(1, wi));
  });
  return {AddBiasAndRound(c, a.no_bias, y, t)};
}

// Deconvolution as a gather (the transpose of Convolution's sum): output position o of a
// spatial axis receives x[i] w[k] from every input position i and tap k with i s - p + k d = o,
// i.e. q = o + p - k d divisible by s and i = q / s inside the data:
//   y[n, f, o...] = bias[f] + sum_{c, k...} [valid] x[n, g Cg + c, i...] w[g Cg + c, f % Fg, k...]
// with g = f / Fg. The sum runs over every tap (with stride s only one in s per axis is valid);
// invalid taps contribute 0 through a Select with clamped reads. The Select is on the product:
// the reference skips invalid taps, so an infinite weight there must not give 0 * inf = NaN
// (Convolution's padding, in contrast, multiplies the weight by 0 as the reference does).
// Pad and adj are the forward pass's (target_shape resolved as the shape rule does).
std::vector<TExpr> DeconvolutionCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<DeconvolutionAttrs>();
  DType t = c.out_dtype(0);
  if (!DefinedFor(c, a.layout)) return {};
  DType ct = ComputeType(t);
  const std::vector<int64_t>& x = c.in_shape(0).dims();
  if (NumElements(x) == 0) return {AddBiasAndRound(c, a.no_bias, TConst(0, ct), t)};
  ConvGeom g = Geom(a);
  size_t nd = g.kernel.size();
  DeconvPads pads =
      DeconvPadAdj(a, g, std::vector<int64_t>(x.end() - int64_t(nd), x.end()), nullptr);
  int64_t Cg = x[1] / a.num_group, Fg = a.num_filter / a.num_group;
  std::vector<int64_t> extents = {Cg};
  extents.insert(extents.end(), g.kernel.begin(), g.kernel.end());
  TExpr f = TAxis(1);
  TExpr y = TReduce(TReduceOp::kSum, extents, [&](const std::vector<TExpr>& r) {
    TExpr channel = a.num_group == 1 ? r[0] : Scaled(f / TIndex(Fg), Cg) + r[0];
    std::vector<TExpr> xi = {TAxis(0), channel};
    std::vector<TExpr> wi = {channel, a.num_group == 1 ? f : f % TIndex(Fg)};
    TExpr valid;
    for (size_t i = 0; i < nd; ++i) {
      int64_t extent = x[2 + i], s = g.stride[i];
      TExpr q = TAxis(2 + int(i)) - Scaled(r[1 + i], g.dilate[i]);
      if (pads.pad[i] > 0) q = q + TIndex(pads.pad[i]);
      TExpr pos = s == 1 ? q : q / TIndex(s);
      TExpr ok = TBinary(TBinaryOp::kAnd, TBinary(TBinaryOp::kGE, q, TIndex(0)),
                         TBinary(TBinaryOp::kLT, pos, TIndex(extent)));
      if (s > 1)
        ok = TBinary(TBinaryOp::kAnd, ok, TBinary(TBinaryOp::kEQ, q % TIndex(s), TIndex(0)));
      valid = AndAlso(valid, ok);
      xi.push_back(ClampIndex(pos, 0, extent - 1));
      wi.push_back(r[1 + i]);
    }
    return TSelect(valid, Widen(c.Read(0, xi)) * Widen(c.Read(1, wi)), TConst(0, ct));
  });
  return {AddBiasAndRound(c, a.no_bias, y, t)};
}

// ----- Gradients -----

namespace {

// (N, spatial...) of a (N, C, spatial...) shape: the axes a weight or bias gradient sums over.
std::vector<int64_t> BatchAndSpatial(const std::vector<int64_t>& dims) {
  std::vector<int64_t> e = {dims[0]};
  e.insert(e.end(), dims.begin() + 2, dims.end());
  return e;
}

// d bias[f] = sum_{n, o...} dy[n, f, o...], as output `out` of a backward op (dy is input 0).
TExpr BiasGrad(const ComputeCtx& c, int out) {
  const std::vector<int64_t>& dy = c.in_shape(0).dims();
  TExpr y = TReduce(TReduceOp::kSum, BatchAndSpatial(dy), [&](const std::vector<TExpr>& r) {
    std::vector<TExpr> i = {r[0], TAxis(0)};
    i.insert(i.end(), r.begin() + 1, r.end());
    return Widen(c.Read(0, i));
  });
  return RoundTo(y, c.out_dtype(out));
}

// The data gradient of Convolution: the transposed convolution of dy with the weight, a gather
// over the filters of the element's group and the taps. Input position i of a spatial axis was
// read by output position o through tap k when o s - p + k d = i: q = i + p - k d divisible by
// s, o = q / s inside dy. The reference folds only such terms back (its patch map skips the
// padding), so the Select is on the product.
TExpr ConvDataGrad(const ComputeCtx& c, const ConvolutionAttrs& a, const ConvGeom& g, DType ct) {
  const std::vector<int64_t>& dy = c.in_shape(0).dims();
  const std::vector<int64_t>& x = c.in_shape(1).dims();
  size_t nd = g.kernel.size();
  int64_t Cg = x[1] / a.num_group, Fg = a.num_filter / a.num_group;
  std::vector<int64_t> extents = {Fg};
  extents.insert(extents.end(), g.kernel.begin(), g.kernel.end());
  TExpr ch = TAxis(1);
  return TReduce(TReduceOp::kSum, extents, [&](const std::vector<TExpr>& r) {
    TExpr f = a.num_group == 1 ? r[0] : Scaled(ch / TIndex(Cg), Fg) + r[0];
    std::vector<TExpr> dyi = {TAxis(0), f};
    std::vector<TExpr> wi = {f, a.num_group == 1 ? ch : ch % TIndex(Cg)};
    TExpr valid;
    for (size_t i = 0; i < nd; ++i) {
      int64_t s = g.stride[i], out = dy[2 + i];
      TExpr q = TAxis(2 + int(i)) - Scaled(r[1 + i], g.dilate[i]);
      if (g.pad[i] > 0) q = q + TIndex(g.pad[i]);
      TExpr o = s == 1 ? q : q / TIndex(s);
      // q < 0 only where a tap reaches further back than the padding; o >= out only where
      // the input's end (plus padding) lies past the last window's start.
      bool check_lo = (g.kernel[i] - 1) * g.dilate[i] > g.pad[i];
      bool check_hi = (x[2 + i] - 1 + g.pad[i]) / s >= out;
      valid = AndAlso(valid, InRange(q, check_lo, 0, false));
      valid = AndAlso(valid, InRange(o, false, out, check_hi));
      if (s > 1) valid = AndAlso(valid, TBinary(TBinaryOp::kEQ, q % TIndex(s), TIndex(0)));
      dyi.push_back(check_lo || check_hi ? ClampIndex(o, 0, out - 1) : o);
      wi.push_back(r[1 + i]);
    }
    TExpr v = Widen(c.Read(0, dyi)) * Widen(c.Read(2, wi));
    return valid ? TSelect(valid, v, TConst(0, ct)) : v;
  });
}

// The weight gradient of Convolution: for each tap, the sum over the batch and the output
// positions of dy times the data element that tap read (0 in the padding, multiplied as the
// reference's zero-filled patches are).
TExpr ConvWeightGrad(const ComputeCtx& c, const ConvolutionAttrs& a, const ConvGeom& g, DType ct) {
  const std::vector<int64_t>& dy = c.in_shape(0).dims();
  const std::vector<int64_t>& x = c.in_shape(1).dims();
  size_t nd = g.kernel.size();
  int64_t Cg = x[1] / a.num_group, Fg = a.num_filter / a.num_group;
  bool no_data = NumElements(x) == 0;  // every tap reads padding (or nothing is summed)
  TExpr f = TAxis(0);
  TExpr channel = a.num_group == 1 ? TAxis(1) : Scaled(f / TIndex(Fg), Cg) + TAxis(1);
  return TReduce(TReduceOp::kSum, BatchAndSpatial(dy), [&](const std::vector<TExpr>& r) {
    std::vector<TExpr> dyi = {r[0], f}, xi = {r[0], channel};
    TExpr inside;
    for (size_t i = 0; i < nd; ++i) {
      dyi.push_back(r[1 + i]);
      if (no_data) continue;
      int64_t extent = x[2 + i];
      TExpr pos = Scaled(r[1 + i], g.stride[i]) + Scaled(TAxis(2 + int(i)), g.dilate[i]);
      if (g.pad[i] > 0) {
        pos = pos - TIndex(g.pad[i]);
        inside = AndAlso(inside, InRange(pos, true, extent, true));
        pos = ClampIndex(pos, 0, extent - 1);
      }
      xi.push_back(pos);
    }
    TExpr v = TConst(0, ct);
    if (!no_data) {
      v = Widen(c.Read(1, xi));
      if (inside) v = TSelect(inside, v, TConst(0, ct));
    }
    return Widen(c.Read(0, dyi)) * v;
  });
}

// The data gradient of Deconvolution: a convolution of dy with the weight. Input position i
// reached output position o = i s - p + k d through tap k; the reference skips positions
// outside the output, so the Select is on the product. The lower bound needs a check only with
// padding, the upper one only where the last input and tap reach past the output (pad greater
// than adj: the output is s(x-1) + d(k-1)+1 - 2p + adj wide, the reach s(x-1) + d(k-1) - p).
TExpr DeconvDataGrad(const ComputeCtx& c, const DeconvolutionAttrs& a, const ConvGeom& g,
                     const DeconvPads& pads, DType ct) {
  const std::vector<int64_t>& dy = c.in_shape(0).dims();
  const std::vector<int64_t>& x = c.in_shape(1).dims();
  size_t nd = g.kernel.size();
  int64_t Cg = x[1] / a.num_group, Fg = a.num_filter / a.num_group;
  std::vector<int64_t> extents = {Fg};
  extents.insert(extents.end(), g.kernel.begin(), g.kernel.end());
  TExpr ch = TAxis(1);
  return TReduce(TReduceOp::kSum, extents, [&](const std::vector<TExpr>& r) {
    TExpr f = a.num_group == 1 ? r[0] : Scaled(ch / TIndex(Cg), Fg) + r[0];
    std::vector<TExpr> dyi = {TAxis(0), f}, wi = {ch, r[0]};
    TExpr valid;
    for (size_t i = 0; i < nd; ++i) {
      int64_t out = dy[2 + i], p = pads.pad[i];
      int64_t reach = (x[2 + i] - 1) * g.stride[i] + (g.kernel[i] - 1) * g.dilate[i] - p;
      TExpr o = Scaled(TAxis(2 + int(i)), g.stride[i]) + Scaled(r[1 + i], g.dilate[i]);
      if (p > 0) o = o - TIndex(p);
      valid = AndAlso(valid, InRange(o, p > 0, out, reach >= out));
      dyi.push_back(p > 0 || reach >= out ? ClampIndex(o, 0, out - 1) : o);
      wi.push_back(r[1 + i]);
    }
    TExpr v = Widen(c.Read(0, dyi)) * Widen(c.Read(2, wi));
    return valid ? TSelect(valid, v, TConst(0, ct)) : v;
  });
}

// The weight gradient of Deconvolution: for each tap, the sum over the batch and the input
// positions of x times dy where that input and tap reached (terms outside the output skipped).
TExpr DeconvWeightGrad(const ComputeCtx& c, const DeconvolutionAttrs& a, const ConvGeom& g,
                       const DeconvPads& pads, DType ct) {
  const std::vector<int64_t>& dy = c.in_shape(0).dims();
  const std::vector<int64_t>& x = c.in_shape(1).dims();
  size_t nd = g.kernel.size();
  int64_t Cg = x[1] / a.num_group, Fg = a.num_filter / a.num_group;
  TExpr ch = TAxis(0);
  TExpr f = a.num_group == 1 ? TAxis(1) : Scaled(ch / TIndex(Cg), Fg) + TAxis(1);
  return TReduce(TReduceOp::kSum, BatchAndSpatial(x), [&](const std::vector<TExpr>& r) {
    std::vector<TExpr> dyi = {r[0], f}, xi = {r[0], ch};
    TExpr valid;
    for (size_t i = 0; i < nd; ++i) {
      int64_t out = dy[2 + i], p = pads.pad[i];
      int64_t reach = (x[2 + i] - 1) * g.stride[i] + (g.kernel[i] - 1) * g.dilate[i] - p;
      TExpr o = Scaled(r[1 + i], g.stride[i]) + Scaled(TAxis(2 + int(i)), g.dilate[i]);
      if (p > 0) o = o - TIndex(p);
      valid = AndAlso(valid, InRange(o, p > 0, out, reach >= out));
      dyi.push_back(p > 0 || reach >= out ? ClampIndex(o, 0, out - 1) : o);
      xi.push_back(r[1 + i]);
    }
    TExpr v = Widen(c.Read(0, dyi)) * Widen(c.Read(1, xi));
    return valid ? TSelect(valid, v, TConst(0, ct)) : v;
  });
}

}  // namespace

// The data gradient has no terms when the data is empty (no batch, no channels or an empty
// spatial axis): a constant that is never stored. So has the weight gradient of a
// Deconvolution without channels (its weight is empty).
std::vector<TExpr> ConvolutionBackwardCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<ConvolutionAttrs>();
  DType t = c.out_dtype(0);
  if (!DefinedFor(c, a.layout)) return {};
  DType ct = ComputeType(t);
  ConvGeom g = Geom(a);
  bool no_data = NumElements(c.in_shape(1).dims()) == 0;
  std::vector<TExpr> out = {
      RoundTo(no_data ? TConst(0, ct) : ConvDataGrad(c, a, g, ct), t),
      RoundTo(ConvWeightGrad(c, a, g, ct), t),
  };
  if (!a.no_bias) out.push_back(BiasGrad(c, 2));
  return out;
}

std::vector<TExpr> DeconvolutionBackwardCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<DeconvolutionAttrs>();
  DType t = c.out_dtype(0);
  if (!DefinedFor(c, a.layout)) return {};
  DType ct = ComputeType(t);
  ConvGeom g = Geom(a);
  const std::vector<int64_t>& x = c.in_shape(1).dims();
  size_t nd = g.kernel.size();
  DeconvPads pads =
      DeconvPadAdj(a, g, std::vector<int64_t>(x.end() - int64_t(nd), x.end()), nullptr);
  bool no_data = NumElements(x) == 0, no_weight = NumElements(c.in_shape(2).dims()) == 0;
  std::vector<TExpr> out = {
      RoundTo(no_data ? TConst(0, ct) : DeconvDataGrad(c, a, g, pads, ct), t),
      RoundTo(no_weight ? TConst(0, ct) : DeconvWeightGrad(c, a, g, pads, ct), t),
  };
  if (!a.no_bias) out.push_back(BiasGrad(c, 2));
  return out;
}

}  // namespace kiln::ops
