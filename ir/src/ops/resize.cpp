// resize.cpp - resize: nearest, linear and cubic interpolation of any axes (ONNX's Resize).
//
// The output has extent size[i] along axis i. Each output coordinate x maps back to an input
// coordinate by `coordinate_transformation_mode`, with scale[i] = scales[i] when given (else
// size[i] / in[i]):
//   half_pixel          (x + 0.5) / scale - 0.5
//   pytorch_half_pixel  the same, but -0.5 when the output extent is 1
//   align_corners       x * (in - 1) / (out - 1), 0 when out is 1 (out = scale * in)
//   asymmetric          x / scale
//   tf_half_pixel_for_nn (x + 0.5) / scale
//   tf_crop_and_resize  roi_start * (in - 1) + x * (roi_end - roi_start) * (in - 1) / (out - 1);
//                       outside [0, in - 1] the element is extrapolation_value
// and is interpolated from its neighbours: with L the neighbour at or left of the coordinate
// (L = x - 1 when x is an integer, so that the right-hand neighbour is x itself) and r = x - L
// in (0, 1], linear mixes L and L+1 by (1 - r, r); nearest takes L or L+1 by `nearest_mode`
// (round_prefer_floor, round_prefer_ceil, floor, ceil); cubic mixes L-1 .. L+2 with Keys'
// kernel of parameter cubic_coeff_a. Neighbours beyond the input repeat its edge, or, with
// exclude_outside, get weight 0 and the rest are renormalised. Axes are interpolated
// separably (the weights multiply), exactly as ONNX's reference does one axis at a time.
//
// No gradient yet (a UserError from the gradient pass).
//
// Compute definition (kiln/ir/compute.h), every mode and dtype the reference takes: each axis's
// coordinate, neighbours and weights are computed in the kernel in float64 from the output
// index with the reference's operations in its order, and the taps' products summed in its
// order (last axis fastest, zero weights skipped, so 0 * inf adds nothing). Results agree to
// rounding, not bit for bit: the reference is compiled for the build machine (ir/CMakeLists.txt,
// -march=native) and GCC contracts a*b+c into fused multiply-adds where it chooses, as the JIT
// may; a sum near a midpoint of the output type can then round either way (1 ulp). Nearest
// picks its neighbour from coordinates without such products (tf_crop_and_resize's offset
// aside) and so picks the reference's. nearbyint (ties to even), which the kernel IR lacks, is
// spelled with floor for the integer types. Axes that the transformation maps onto themselves
// (one tap of weight 1 at the same index for every output coordinate, as the batch and channel
// axes usually are) read directly: multiplying by 1 and skipping zero-weight taps leave the sum
// unchanged. At most kMaxResizeTaps tap combinations per element are spelled out, in an
// expression of at most kMaxResizeNodes nodes (what lowering and LLVM take time over).
#include <cmath>
#include <unordered_map>

#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

enum class ResizeMode { kNearest, kLinear, kCubic };
enum class CoordMode {
  kHalfPixel,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixel,
  kTfCrop
};
enum class NearestMode { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

struct ResizeAttrs {
  std::vector<int64_t> size;
  std::vector<double> scales;  // empty: size / input extent
  ResizeMode mode = ResizeMode::kNearest;
  CoordMode coordinate_transformation_mode = CoordMode::kHalfPixel;
  NearestMode nearest_mode = NearestMode::kRoundPreferFloor;
  double cubic_coeff_a = -0.75;
  bool exclude_outside = false;
  double extrapolation_value = 0;
  std::vector<double> roi;  // tf_crop_and_resize: starts of every axis, then ends
  static void Describe(AttrSchema<ResizeAttrs>& s) {
    s.Field("size", &ResizeAttrs::size).Required().Min(0);
    s.Field("scales", &ResizeAttrs::scales);
    s.Enum("mode", &ResizeAttrs::mode,
           {{"nearest", ResizeMode::kNearest},
            {"linear", ResizeMode::kLinear},
            {"cubic", ResizeMode::kCubic}});
    s.Enum("coordinate_transformation_mode", &ResizeAttrs::coordinate_transformation_mode,
           {{"half_pixel", CoordMode::kHalfPixel},
            {"pytorch_half_pixel", CoordMode::kPytorchHalfPixel},
            {"align_corners", CoordMode::kAlignCorners},
            {"asymmetric", CoordMode::kAsymmetric},
            {"tf_half_pixel_for_nn", CoordMode::kTfHalfPixel},
            {"tf_crop_and_resize", CoordMode::kTfCrop}});
    s.Enum("nearest_mode", &ResizeAttrs::nearest_mode,
           {{"round_prefer_floor", NearestMode::kRoundPreferFloor},
            {"round_prefer_ceil", NearestMode::kRoundPreferCeil},
            {"floor", NearestMode::kFloor},
            {"ceil", NearestMode::kCeil}});
    s.Field("cubic_coeff_a", &ResizeAttrs::cubic_coeff_a);
    s.Field("exclude_outside", &ResizeAttrs::exclude_outside);
    s.Field("extrapolation_value", &ResizeAttrs::extrapolation_value);
    s.Field("roi", &ResizeAttrs::roi);
    s.Check([](const ResizeAttrs& a) -> std::string {
      if (!a.scales.empty() && a.scales.size() != a.size.size())
        return "scales and size have different lengths";
      if (a.coordinate_transformation_mode == CoordMode::kTfCrop &&
          a.roi.size() != 2 * a.size.size())
        return "tf_crop_and_resize needs roi with a start and an end per axis";
      for (double s : a.scales)
        if (!(s > 0)) return "scales must be positive";
      return "";
    });
  }
};

void ResizeShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<ResizeAttrs>();
  const Shape& in = ctx.in(0);
  if (in.rank_known() && size_t(in.ndim()) != a.size.size())
    ctx.Fail(
        StrCat("size ", DimsString(a.size), " does not have the rank of data ", in.ToString()));
  ctx.SetOut(0, Shape(a.size), "the size attribute");
}

// The taps (input index, weight) of output coordinate x along one axis; empty when the
// coordinate lies outside the input in tf_crop_and_resize (extrapolation).
struct Tap {
  int64_t index;
  double weight;
};

std::vector<Tap> AxisTaps(const ResizeAttrs& a, int axis, int64_t in, int64_t out, int64_t x) {
  double scale = a.scales.empty() ? double(out) / double(in) : a.scales[size_t(axis)];
  double out_w = scale * double(in);
  double xo = 0;
  switch (a.coordinate_transformation_mode) {
    case CoordMode::kHalfPixel:
      xo = (double(x) + 0.5) / scale - 0.5;
      break;
    case CoordMode::kPytorchHalfPixel:
      xo = out_w == 1 ? -0.5 : (double(x) + 0.5) / scale - 0.5;
      break;
    case CoordMode::kAlignCorners:
      xo = out_w == 1 ? 0 : double(x) * double(in - 1) / (out_w - 1);
      break;
    case CoordMode::kAsymmetric:
      xo = double(x) / scale;
      break;
    case CoordMode::kTfHalfPixel:
      xo = (double(x) + 0.5) / scale;
      break;
    case CoordMode::kTfCrop: {
      size_t nd = a.size.size();
      double s = a.roi[size_t(axis)], e = a.roi[nd + size_t(axis)];
      xo = out_w == 1 ? (e - s) * double(in - 1) / 2
                      : double(x) * (e - s) * double(in - 1) / (out_w - 1);
      xo += s * double(in - 1);
      if (xo < 0 || xo > double(in - 1)) return {};
      break;
    }
  }
  double left = std::floor(xo);
  if (left == xo) left -= 1;  // an exact hit is the right-hand neighbour, with ratio 1
  double r = xo - left;
  int64_t L = int64_t(left);
  std::vector<Tap> taps;
  switch (a.mode) {
    case ResizeMode::kNearest: {
      bool right = false;
      if (r == 1) {
        right = true;
      } else {
        switch (a.nearest_mode) {
          case NearestMode::kRoundPreferFloor:
            right = r > 0.5;
            break;
          case NearestMode::kRoundPreferCeil:
            right = r >= 0.5;
            break;
          case NearestMode::kFloor:
            right = false;
            break;
          case NearestMode::kCeil:
            right = true;
            break;
        }
      }
      taps.push_back({right ? L + 1 : L, 1.0});
      break;
    }
    case ResizeMode::kLinear:
      taps = {{L, 1 - r}, {L + 1, r}};
      break;
    case ResizeMode::kCubic: {
      double A = a.cubic_coeff_a;
      auto far = [A](double t) { return ((A * t - 5 * A) * t + 8 * A) * t - 4 * A; };  // 1 <= t < 2
      auto near = [A](double t) { return ((A + 2) * t - (A + 3)) * t * t + 1; };       // t < 1
      taps = {{L - 1, far(r + 1)}, {L, near(r)}, {L + 1, near(1 - r)}, {L + 2, far(2 - r)}};
      break;
    }
  }
  if (a.exclude_outside && a.mode != ResizeMode::kNearest) {
    double sum = 0;
    for (Tap& t : taps) {
      if (t.index < 0 || t.index >= in) t.weight = 0;
      sum += t.weight;
    }
    if (sum != 0)
      for (Tap& t : taps) t.weight /= sum;
  }
  for (Tap& t : taps) t.index = std::clamp<int64_t>(t.index, 0, in - 1);
  return taps;
}

template <class T>
void ResizeKernel(KernelCtx& ctx) {
  const auto& a = ctx.Attr<ResizeAttrs>();
  const Tensor& x = ctx.in[0];
  const Tensor& y = ctx.out[0];
  const int nd = x.ndim();
  if (y.size() == 0) return;
  if (x.size() == 0) ctx.Fail("cannot resize an empty tensor");
  // Per axis and output coordinate, its taps.
  std::vector<std::vector<std::vector<Tap>>> taps(static_cast<size_t>(nd));
  for (int d = 0; d < nd; ++d)
    for (int64_t o = 0; o < y.dim(d); ++o)
      taps[size_t(d)].push_back(AxisTaps(a, d, x.dim(d), y.dim(d), o));
  std::vector<int64_t> st = Strides(x.shape());
  const T* src = x.data<T>();
  T* dst = y.data<T>();
  std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
  std::vector<size_t> pick(static_cast<size_t>(nd), 0);
  for (int64_t flat = 0; flat < y.size(); ++flat) {
    bool outside = false;
    for (int d = 0; d < nd; ++d)
      outside = outside || taps[size_t(d)][size_t(idx[size_t(d)])].empty();
    double acc = 0;
    if (outside) {
      acc = a.extrapolation_value;
    } else {
      // Every combination of one tap per axis.
      std::fill(pick.begin(), pick.end(), 0);
      while (true) {
        double w = 1;
        int64_t off = 0;
        for (int d = 0; d < nd; ++d) {
          const Tap& t = taps[size_t(d)][size_t(idx[size_t(d)])][pick[size_t(d)]];
          w *= t.weight;
          off += t.index * st[size_t(d)];
        }
        if (w != 0) acc += w * double(ToAcc(src[off]));
        int d = nd - 1;
        for (; d >= 0; --d) {
          if (++pick[size_t(d)] < taps[size_t(d)][size_t(idx[size_t(d)])].size()) break;
          pick[size_t(d)] = 0;
        }
        if (d < 0) break;
      }
    }
    if constexpr (std::is_integral_v<T>)
      dst[flat] = ConvertValue<T>(std::nearbyint(acc));
    else
      dst[flat] = ConvertValue<T>(acc);
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[size_t(d)] < y.dim(d)) break;
      idx[size_t(d)] = 0;
    }
  }
}

// --- Compute definition ---

// The taps of one axis as expressions of its output index: indices (clamped), weights (null:
// 1, for nearest and identity axes), for each weight a smaller expression that is zero exactly
// when it is (the weight before exclude_outside's division: dividing by a nonzero sum keeps a
// weight nonzero, barring underflow) and, for tf_crop_and_resize, whether the coordinate lies
// outside the input.
struct AxisExprs {
  std::vector<TExpr> index;
  std::vector<TExpr> weight;
  std::vector<TExpr> zero_test;
  TExpr outside;
};

TExpr F64(double v) {
  return TConst(v, DType::kFloat64);
}
TExpr Cmp(TBinaryOp op, TExpr a, TExpr b) {
  return TBinary(op, std::move(a), std::move(b));
}

// True when every output coordinate of the axis has one tap of weight 1 at its own index.
bool IsIdentityAxis(const ResizeAttrs& a, int axis, int64_t in, int64_t out) {
  if (in != out) return false;
  for (int64_t x = 0; x < out; ++x) {
    std::vector<Tap> taps = AxisTaps(a, axis, in, out, x);
    int ones = 0;
    for (const Tap& t : taps) {
      if (t.weight == 0) continue;
      if (t.weight != 1 || t.index != x) return false;
      ++ones;
    }
    if (ones != 1) return false;
  }
  return true;
}

// AxisTaps with the output coordinate an expression.
AxisExprs AxisTapExprs(const ResizeAttrs& a, int axis, int64_t in, int64_t out) {
  AxisExprs e;
  if (IsIdentityAxis(a, axis, in, out)) {
    e.index = {TAxis(axis)};
    e.weight = {nullptr};
    e.zero_test = {nullptr};
    return e;
  }
  double scale = a.scales.empty() ? double(out) / double(in) : a.scales[size_t(axis)];
  double out_w = scale * double(in);
  TExpr x = TCast(DType::kFloat64, TAxis(axis));
  TExpr xo;
  switch (a.coordinate_transformation_mode) {
    case CoordMode::kHalfPixel:
      xo = (x + F64(0.5)) / F64(scale) - F64(0.5);
      break;
    case CoordMode::kPytorchHalfPixel:
      xo = out_w == 1 ? F64(-0.5) : (x + F64(0.5)) / F64(scale) - F64(0.5);
      break;
    case CoordMode::kAlignCorners:
      xo = out_w == 1 ? F64(0) : x * F64(double(in - 1)) / F64(out_w - 1);
      break;
    case CoordMode::kAsymmetric:
      xo = x / F64(scale);
      break;
    case CoordMode::kTfHalfPixel:
      xo = (x + F64(0.5)) / F64(scale);
      break;
    case CoordMode::kTfCrop: {
      size_t nd = a.size.size();
      double s = a.roi[size_t(axis)], end = a.roi[nd + size_t(axis)];
      xo = out_w == 1 ? F64((end - s) * double(in - 1) / 2)
                      : x * F64(end - s) * F64(double(in - 1)) / F64(out_w - 1);
      xo = xo + F64(s * double(in - 1));
      e.outside = Cmp(TBinaryOp::kOr, Cmp(TBinaryOp::kLT, xo, F64(0)),
                      Cmp(TBinaryOp::kGT, xo, F64(double(in - 1))));
      break;
    }
  }
  TExpr left = TCall(TMath::kFloor, {xo});
  left = TSelect(Cmp(TBinaryOp::kEQ, left, xo), left - F64(1), left);
  TExpr r = xo - left;
  TExpr L = TCast(DType::kInt64, left);
  std::vector<TExpr> idx, w;
  switch (a.mode) {
    case ResizeMode::kNearest: {
      TExpr right;
      switch (a.nearest_mode) {
        case NearestMode::kRoundPreferFloor:
          right = Cmp(TBinaryOp::kGT, r, F64(0.5));
          break;
        case NearestMode::kRoundPreferCeil:
          right = Cmp(TBinaryOp::kGE, r, F64(0.5));
          break;
        case NearestMode::kFloor:
          right = Cmp(TBinaryOp::kEQ, r, F64(1));
          break;
        case NearestMode::kCeil:
          right = nullptr;
          break;
      }
      idx = {right ? TSelect(right, L + TIndex(1), L) : L + TIndex(1)};
      w = {nullptr};
      break;
    }
    case ResizeMode::kLinear:
      idx = {L, L + TIndex(1)};
      w = {F64(1) - r, r};
      break;
    case ResizeMode::kCubic: {
      double A = a.cubic_coeff_a;
      auto far = [&](TExpr t) {
        return ((F64(A) * t - F64(5 * A)) * t + F64(8 * A)) * t - F64(4 * A);
      };
      auto near = [&](TExpr t) { return (F64(A + 2) * t - F64(A + 3)) * t * t + F64(1); };
      idx = {L - TIndex(1), L, L + TIndex(1), L + TIndex(2)};
      w = {far(r + F64(1)), near(r), near(F64(1) - r), far(F64(2) - r)};
      break;
    }
  }
  std::vector<TExpr> zero_test = w;
  if (a.exclude_outside && a.mode != ResizeMode::kNearest) {
    TExpr sum = F64(0);
    for (size_t k = 0; k < idx.size(); ++k) {
      TExpr in_range = Cmp(TBinaryOp::kAnd, Cmp(TBinaryOp::kGE, idx[k], TIndex(0)),
                           Cmp(TBinaryOp::kLT, idx[k], TIndex(in)));
      w[k] = TSelect(in_range, w[k], F64(0));
      sum = sum + w[k];
    }
    zero_test = w;
    // w / sum where the sum is nonzero, else w (w / 1, exactly): each weight holds the sum,
    // whose size is that of all the axis's weights, once rather than twice.
    TExpr divisor = TSelect(Cmp(TBinaryOp::kNE, sum, F64(0)), sum, F64(1));
    for (TExpr& wk : w) wk = wk / divisor;
  }
  for (TExpr& i : idx) i = ClampIndex(i, 0, in - 1);
  e.index = std::move(idx);
  e.weight = std::move(w);
  e.zero_test = std::move(zero_test);
  return e;
}

// nearbyint under the default rounding (ties to even), on float64.
TExpr RoundHalfEven(TExpr v) {
  TExpr f = TCall(TMath::kFloor, {v});
  TExpr d = v - f;
  TExpr odd = Cmp(TBinaryOp::kNE, f - F64(2) * TCall(TMath::kFloor, {f * F64(0.5)}), F64(0));
  TExpr up = Cmp(TBinaryOp::kOr, Cmp(TBinaryOp::kGT, d, F64(0.5)),
                 Cmp(TBinaryOp::kAnd, Cmp(TBinaryOp::kEQ, d, F64(0.5)), odd));
  return TSelect(up, f + F64(1), f);
}

// Most tap combinations per element the definition spells out: linear in up to 6 axes, cubic in
// up to 3 (bicubic on images with identity batch and channel axes: 16). Beyond that the
// expression, and LLVM's time to compile it, grows fast (cubic in 4 axes: 256 products).
constexpr int64_t kMaxResizeTaps = 64;

// Largest definition, in expression nodes counted as lowering expands them: a subexpression
// used twice (an axis's weight read by each tap combination, exclude_outside's sum by each of its
// weights) is lowered, and compiled by LLVM, twice. Each took 3-8 us per node here (one-off
// timings, decisions.md D51: 96000 nodes 0.45 s of LLVM, 160000 0.7-0.9 s, 400000 3 s), so
// 200000 nodes keep a kernel under about 2 s of LLVM and as much of lowering. The tap limit alone
// let exclude_outside (whose weights hold their axis's sum) reach 1.1 million nodes: 9-15 s of
// LLVM and 8-12 s of lowering.
constexpr int64_t kMaxResizeNodes = 200000;

// The number of nodes of e with every shared subexpression counted at each use; `sizes`
// memoises the shared ones, so the count costs one visit per distinct node.
int64_t ExpandedSize(const TExpr& e, std::unordered_map<const TExprNode*, int64_t>& sizes) {
  auto it = sizes.find(e.get());
  if (it != sizes.end()) return it->second;
  int64_t n = 1;
  for (const TExpr& o : e->operands) n += ExpandedSize(o, sizes);
  sizes.emplace(e.get(), n);
  return n;
}

std::vector<TExpr> ResizeCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<ResizeAttrs>();
  DType t = c.out_dtype(0);
  if (t == DType::kBool || c.in_dtype(0) != t) return {};
  const Shape& x = c.in_shape(0);
  const Shape& y = c.out_shape(0);
  if (y.NumElements() == 0) return {ConstOf(0, t)};  // nothing is computed
  if (x.NumElements() == 0) return {};               // the reference fails
  const int nd = x.ndim();
  std::vector<AxisExprs> axes;
  int64_t combos = 1;
  TExpr outside;
  for (int d = 0; d < nd; ++d) {
    axes.push_back(AxisTapExprs(a, d, x[d], y[d]));
    combos *= int64_t(axes.back().index.size());
    if (TExpr o = axes.back().outside) outside = outside ? Cmp(TBinaryOp::kOr, outside, o) : o;
  }
  if (combos > kMaxResizeTaps) return {};
  // Every combination of one tap per axis, the last axis fastest, as the reference sums them.
  TExpr acc = F64(0);
  std::vector<size_t> pick(size_t(nd), 0);
  while (true) {
    // The product of the axes' weights, and whether it is nonzero (the reference skips zero
    // products: 0 * inf adds nothing) tested on each axis's smaller zero_test.
    TExpr w, nonzero;
    std::vector<TExpr> idx;
    for (int d = 0; d < nd; ++d) {
      const AxisExprs& e = axes[size_t(d)];
      const size_t k = pick[size_t(d)];
      idx.push_back(e.index[k]);
      if (TExpr wd = e.weight[k]) {
        w = w ? w * wd : wd;
        TExpr nz = Cmp(TBinaryOp::kNE, e.zero_test[k], F64(0));
        nonzero = nonzero ? Cmp(TBinaryOp::kAnd, nonzero, nz) : nz;
      }
    }
    TExpr v = Widen(c.Read(0, idx));
    v = v->dtype == DType::kFloat64 ? v : TCast(DType::kFloat64, v);
    acc = acc + (w ? TSelect(nonzero, w * v, F64(0)) : v);
    int d = nd - 1;
    for (; d >= 0; --d) {
      if (++pick[size_t(d)] < axes[size_t(d)].index.size()) break;
      pick[size_t(d)] = 0;
    }
    if (d < 0) break;
  }
  if (outside) acc = TSelect(outside, F64(a.extrapolation_value), acc);
  if (!IsFloatingPoint(t)) acc = RoundHalfEven(acc);
  TExpr out = ConvertExpr(acc, t);
  std::unordered_map<const TExprNode*, int64_t> sizes;
  if (ExpandedSize(out, sizes) > kMaxResizeNodes) return {};
  return {out};
}

}  // namespace

void RegisterResizeOps(OpRegistry& r) {
  r.Register("resize")
      .Describe("nearest, linear or cubic interpolation to `size` (ONNX Resize's modes)")
      .SetAttrs<ResizeAttrs>()
      .InferShape(ResizeShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, {
          if constexpr (std::is_same_v<T, bool>)
            ctx.Fail("resize does not take bool data");
          else
            ResizeKernel<T>(ctx);
        });
      })
      .Compute(ResizeCompute);
}

}  // namespace kiln::ops
