// nn_conv_compute.h - what Convolution and Deconvolution's two files share (internal to ir/).
//
// nn_conv.cpp holds the ops' shape rules, reference kernels and registration; nn_conv_compute.cpp
// their compute definitions (kiln/ir/compute.h), forward and backward. Both need the attributes
// and the geometry with its defaults filled in, declared here.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kiln/ir/compute.h"
#include "ops/nn_util.h"

namespace kiln::ops {

inline const std::vector<std::string> kCudnnTunes = {"None", "off", "limited_workspace", "fastest"};
inline const std::vector<std::string> kLayouts = {"None", "NCW",  "NCHW", "NCDHW",
                                                  "NWC",  "NHWC", "NDHWC"};

// Checks shared by both ops' attributes (every check returns "" or an error).
template <class A>
std::string CheckConvAttrs(const A& a) {
  size_t nd = a.kernel.size();
  if (nd < 1 || nd > 3)
    return StrCat("kernel = ", attr_text::Print(a.kernel), " has ", nd,
                  " axes; 1, 2 or 3 are supported");
  for (auto [name, v] :
       {std::pair{"stride", &a.stride}, std::pair{"dilate", &a.dilate}, std::pair{"pad", &a.pad}}) {
    std::string err = CheckTupleLength(name, *v, nd);
    if (!err.empty()) return err;
  }
  if (a.num_filter % a.num_group != 0)
    return StrCat("num_filter ", a.num_filter, " is not divisible by num_group ", a.num_group);
  if (std::string err = CheckLayout(a.layout, nd); !err.empty()) return err;
  // MXNet runs channel-last convolutions only through cuDNN; kiln's kernels are channel-first.
  if (a.layout && IsChannelLast(*a.layout))
    return StrCat("layout ", *a.layout, " is not supported (use ", ChannelFirstLayout(nd), ")");
  return "";
}

struct ConvolutionAttrs {
  std::vector<int64_t> kernel;
  std::vector<int64_t> stride;  // default: 1 per axis
  std::vector<int64_t> dilate;  // default: 1 per axis
  std::vector<int64_t> pad;     // default: 0 per axis
  int64_t num_filter = 0;
  int64_t num_group = 1;
  int64_t workspace = 1024;  // MB of cuDNN scratch in MXNet; accepted and ignored
  bool no_bias = false;
  std::optional<std::string> cudnn_tune;  // accepted and ignored
  bool cudnn_off = false;                 // accepted and ignored
  std::optional<std::string> layout;
  static void Describe(AttrSchema<ConvolutionAttrs>& s) {
    s.Field("kernel", &ConvolutionAttrs::kernel).Required().Min(1);
    s.Field("stride", &ConvolutionAttrs::stride).Min(1);
    s.Field("dilate", &ConvolutionAttrs::dilate).Min(1);
    s.Field("pad", &ConvolutionAttrs::pad).Min(0);
    s.Field("num_filter", &ConvolutionAttrs::num_filter).Required().Min(1);
    s.Field("num_group", &ConvolutionAttrs::num_group).Min(1);
    s.Field("workspace", &ConvolutionAttrs::workspace).Min(0);
    s.Field("no_bias", &ConvolutionAttrs::no_bias);
    s.Field("cudnn_tune", &ConvolutionAttrs::cudnn_tune).OneOf(kCudnnTunes);
    s.Field("cudnn_off", &ConvolutionAttrs::cudnn_off);
    s.Field("layout", &ConvolutionAttrs::layout).OneOf(kLayouts);
    s.Check(CheckConvAttrs<ConvolutionAttrs>);
  }
};

struct DeconvolutionAttrs {
  std::vector<int64_t> kernel;
  std::vector<int64_t> stride;  // default: 1 per axis
  std::vector<int64_t> dilate;  // default: 1 per axis
  std::vector<int64_t> pad;     // default: 0 per axis
  // Extra output extent at the high end of each axis (default 0s).
  std::vector<int64_t> adj;
  // When given (any element non-zero), the output's spatial extent; pad and adj are then
  // derived from it (MXNet's InferPad) and the given ones are ignored.
  std::vector<int64_t> target_shape;
  int64_t num_filter = 0;
  int64_t num_group = 1;
  int64_t workspace = 512;  // accepted and ignored
  bool no_bias = true;      // MXNet's default for Deconvolution (unlike Convolution)
  std::optional<std::string> cudnn_tune;
  bool cudnn_off = false;
  std::optional<std::string> layout;
  static void Describe(AttrSchema<DeconvolutionAttrs>& s) {
    s.Field("kernel", &DeconvolutionAttrs::kernel).Required().Min(1);
    s.Field("stride", &DeconvolutionAttrs::stride).Min(1);
    s.Field("dilate", &DeconvolutionAttrs::dilate).Min(1);
    s.Field("pad", &DeconvolutionAttrs::pad).Min(0);
    s.Field("adj", &DeconvolutionAttrs::adj).Min(0);
    s.Field("target_shape", &DeconvolutionAttrs::target_shape).Min(0);
    s.Field("num_filter", &DeconvolutionAttrs::num_filter).Required().Min(1);
    s.Field("num_group", &DeconvolutionAttrs::num_group).Min(1);
    s.Field("workspace", &DeconvolutionAttrs::workspace).Min(0);
    s.Field("no_bias", &DeconvolutionAttrs::no_bias);
    s.Field("cudnn_tune", &DeconvolutionAttrs::cudnn_tune).OneOf(kCudnnTunes);
    s.Field("cudnn_off", &DeconvolutionAttrs::cudnn_off);
    s.Field("layout", &DeconvolutionAttrs::layout).OneOf(kLayouts);
    s.Check(CheckConvAttrs<DeconvolutionAttrs>);
    s.Check([](const DeconvolutionAttrs& a) -> std::string {
      size_t nd = a.kernel.size();
      if (std::string e = CheckTupleLength("adj", a.adj, nd); !e.empty()) return e;
      return CheckTupleLength("target_shape", a.target_shape, nd);
    });
  }
};

// Whether target_shape is given (any element non-zero).
inline bool HasTarget(const DeconvolutionAttrs& a) {
  for (int64_t t : a.target_shape)
    if (t != 0) return true;
  return false;
}

// The geometry of one node with defaults filled in.
struct ConvGeom {
  std::vector<int64_t> kernel, stride, dilate, pad;
};
template <class A>
ConvGeom Geom(const A& a) {
  size_t nd = a.kernel.size();
  return {a.kernel, TupleOr(a.stride, nd, 1), TupleOr(a.dilate, nd, 1), TupleOr(a.pad, nd, 0)};
}

// Deconvolution's effective pad and adj for an input of spatial extent `in` (MXNet's InferPad):
// with target_shape, total padding = s(in-1) + dk - target, split as pad = ceil(total/2) and
// adj = total % 2, so that the output is exactly target_shape. A target the input cannot reach
// fails through `ctx` (an InternalError without one: shapes were inferred before).
struct DeconvPads {
  std::vector<int64_t> pad, adj;
};
DeconvPads DeconvPadAdj(const DeconvolutionAttrs& a, const ConvGeom& g,
                        const std::vector<int64_t>& in, const ShapeInferCtx* ctx);

// ----- Compute definitions (nn_conv_compute.cpp) -----
// Every floating dtype, channel-first layouts, every operand of the output's dtype (no
// definition otherwise); float16 and bfloat16 sum in float32, rounded once at the end.

// Convolution: y (N, F, O...) from data, weight[, bias].
std::vector<TExpr> ConvolutionCompute(const ComputeCtx& c);
// Deconvolution: y (N, F, O...) from data, weight[, bias].
std::vector<TExpr> DeconvolutionCompute(const ComputeCtx& c);
// _backward_Convolution: (d data, d weight[, d bias]) from (d output, data, weight).
std::vector<TExpr> ConvolutionBackwardCompute(const ComputeCtx& c);
// _backward_Deconvolution: (d data, d weight[, d bias]) from (d output, data, weight).
std::vector<TExpr> DeconvolutionBackwardCompute(const ComputeCtx& c);

}  // namespace kiln::ops
