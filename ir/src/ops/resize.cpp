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
#include <cmath>

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
      });
}

}  // namespace kiln::ops
