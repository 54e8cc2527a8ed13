// convert_nn.cpp - ONNX network layers: Gemm, MatMul, Conv, ConvTranspose, BatchNormalization,
// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Softmax, LogSoftmax,
// LayerNormalization, InstanceNormalization.
//
// Mapping choices:
// - Gemm with B transposed, alpha = beta = 1 and a 1-D C is FullyConnected (PyTorch's Linear);
//   other forms are dot with transpose flags, scaled, plus C broadcast.
// - MatMul follows NumPy: 2-D x 2-D is dot; N-D x 2-D flattens the leading axes into one dot;
//   otherwise the batch axes broadcast and batch_dot runs on (batch, n, k) x (batch, k, m).
//   1-D operands are promoted and the promoted axis dropped again.
// - Conv, ConvTranspose and pooling resolve auto_pad and asymmetric pads at import: symmetric
//   pads go to kiln's op (Convolution, Deconvolution, Pooling); asymmetric ones become an
//   explicit Pad before it (or a crop after a transposed convolution). Average pooling whose
//   divisor is not kiln's (asymmetric pads, ceil mode) is a sum pooling divided by the count of
//   elements each window covers, which is a constant evaluated during import.
// - Normalizations with extra outputs or several axes are composed from reductions (the formula
//   ONNX's function definitions use); LayerNormalization over the last axis with only Y wanted
//   is kiln's LayerNorm.
#include <cfloat>

#include "importer.h"

namespace kiln::onnx_import {
namespace {

std::string Tuple(const std::vector<int64_t>& v) {
  return attr_text::Print(v);
}

// --- Gemm and MatMul ---

void Gemm(Importer& im) {
  V a = im.In(0), b = im.In(1);
  double alpha = im.AttrFloat("alpha", 1.f), beta = im.AttrFloat("beta", 1.f);
  bool ta = im.AttrInt("transA", 0) != 0, tb = im.AttrInt("transB", 0) != 0;
  if (im.Rank(a) != 2 || im.Rank(b) != 2)
    im.Fail(StrCat("A ", DimsText(im.Shape(a)), " and B ", DimsText(im.Shape(b)), " must be 2-D"));
  int64_t n = im.Shape(b)[tb ? 0 : 1];
  if (im.HasIn(2) && !ta && tb && alpha == 1 && beta == 1 &&
      im.Shape(im.In(2)) == std::vector<int64_t>{n}) {
    im.SetOut(0, im.Emit("FullyConnected", {a, b, im.In(2)},
                         {{"num_hidden", std::to_string(n)}, {"flatten", "False"}}));
    return;
  }
  V y = im.Emit("dot", {a, b},
                {{"transpose_a", ta ? "True" : "False"}, {"transpose_b", tb ? "True" : "False"}});
  y = im.ScalarOp("_mul_scalar", y, alpha);
  if (im.HasIn(2) && beta != 0) {
    V c = im.ScalarOp("_mul_scalar", im.In(2), beta);
    y = im.Emit("broadcast_add", {y, c});
  }
  im.SetOut(0, y);
}

void MatMul(Importer& im) {
  V a = im.In(0), b = im.In(1);
  std::vector<int64_t> sa = im.Shape(a), sb = im.Shape(b);
  if (sa.empty() || sb.empty()) im.Fail("MatMul operands must not be 0-d");
  bool drop_n = sa.size() == 1, drop_m = sb.size() == 1;
  if (drop_n) sa.insert(sa.begin(), 1);
  if (drop_m) sb.push_back(1);
  a = im.Reshape(a, sa);
  b = im.Reshape(b, sb);
  int64_t n = sa[sa.size() - 2], k = sa.back(), k2 = sb[sb.size() - 2], m = sb.back();
  if (k != k2)
    im.Fail(StrCat("A ", DimsText(im.Shape(im.In(0))), " and B ", DimsText(im.Shape(im.In(1))),
                   " do not match: ", k, " != ", k2));
  std::vector<int64_t> ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  auto batch = BroadcastShapes(ba, bb);
  if (!batch)
    im.Fail(StrCat("batch axes ", DimsText(ba), " and ", DimsText(bb), " do not broadcast"));
  V y;
  if (bb.empty()) {
    int64_t rows = NumElements(ba) * n;
    y = im.Emit("dot", {im.Reshape(a, {rows, k}), b});
  } else {
    int64_t nb = NumElements(*batch);
    std::vector<int64_t> fa = *batch, fb = *batch;
    fa.insert(fa.end(), {n, k});
    fb.insert(fb.end(), {k, m});
    V a3 = im.Reshape(im.BroadcastTo(a, fa), {nb, n, k});
    V b3 = im.Reshape(im.BroadcastTo(b, fb), {nb, k, m});
    y = im.Emit("batch_dot", {a3, b3});
  }
  std::vector<int64_t> out = *batch;
  if (!drop_n) out.push_back(n);
  if (!drop_m) out.push_back(m);
  im.SetOut(0, im.Reshape(y, out));
}

// --- Padding geometry shared by convolution and pooling ---

struct Geometry {
  std::vector<int64_t> kernel, stride, dilate, pad_begin, pad_end;
  bool Symmetric() const { return pad_begin == pad_end; }
};

// Kernel, strides, dilations and explicit begin/end pads of a spatial op on `in` (spatial dims
// only), resolving auto_pad as ONNX defines it.
Geometry SpatialGeometry(Importer& im, const std::vector<int64_t>& in,
                         const std::vector<int64_t>& kernel) {
  size_t nd = in.size();
  Geometry g;
  g.kernel = kernel;
  g.stride = im.AttrInts("strides", std::vector<int64_t>(nd, 1));
  g.dilate = im.AttrInts("dilations", std::vector<int64_t>(nd, 1));
  std::vector<int64_t> pads = im.AttrInts("pads", std::vector<int64_t>(2 * nd, 0));
  if (g.kernel.size() != nd || g.stride.size() != nd || g.dilate.size() != nd ||
      pads.size() != 2 * nd)
    im.Fail(StrCat("kernel_shape, strides, dilations and pads do not match the ", nd,
                   " spatial axes of the input"));
  g.pad_begin.assign(pads.begin(), pads.begin() + long(nd));
  g.pad_end.assign(pads.begin() + long(nd), pads.end());
  std::string auto_pad = im.AttrString("auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (size_t i = 0; i < nd; ++i) {
      int64_t out = (in[i] + g.stride[i] - 1) / g.stride[i];
      int64_t dk = g.dilate[i] * (g.kernel[i] - 1) + 1;
      int64_t total = std::max<int64_t>(0, (out - 1) * g.stride[i] + dk - in[i]);
      int64_t small = total / 2, large = total - small;
      g.pad_begin[i] = auto_pad == "SAME_UPPER" ? small : large;
      g.pad_end[i] = auto_pad == "SAME_UPPER" ? large : small;
    }
  } else if (auto_pad == "VALID") {
    std::fill(g.pad_begin.begin(), g.pad_begin.end(), 0);
    std::fill(g.pad_end.begin(), g.pad_end.end(), 0);
  } else if (auto_pad != "NOTSET") {
    im.Fail(StrCat("auto_pad \"", auto_pad, "\" is not NOTSET, SAME_UPPER, SAME_LOWER or VALID"));
  }
  return g;
}

// Pads the spatial axes of x (N, C, spatial...) by the given begin/end pads with `value`.
V PadSpatial(Importer& im, V x, const std::vector<int64_t>& begin, const std::vector<int64_t>& end,
             double value) {
  std::vector<int64_t> width = {0, 0, 0, 0};
  for (size_t i = 0; i < begin.size(); ++i) {
    width.push_back(begin[i]);
    width.push_back(end[i]);
  }
  return im.Emit("Pad", {x},
                 {{"mode", "constant"},
                  {"pad_width", Tuple(width)},
                  {"constant_value", attr_text::Print(value)}});
}

std::vector<int64_t> Spatial(const std::vector<int64_t>& s) {
  return std::vector<int64_t>(s.begin() + 2, s.end());
}

// --- Conv and ConvTranspose ---

void Conv(Importer& im) {
  V x = im.In(0), w = im.In(1);
  if (im.Rank(x) < 3 || im.Rank(x) > 5 || im.Rank(w) != im.Rank(x))
    im.Fail(StrCat("X ", DimsText(im.Shape(x)), " and W ", DimsText(im.Shape(w)),
                   " must both be 3-D, 4-D or 5-D"));
  std::vector<int64_t> kernel = im.AttrInts("kernel_shape", Spatial(im.Shape(w)));
  Geometry g = SpatialGeometry(im, Spatial(im.Shape(x)), kernel);
  std::vector<int64_t> pad = g.pad_begin;
  if (!g.Symmetric()) {
    x = PadSpatial(im, x, g.pad_begin, g.pad_end, 0);
    pad.assign(pad.size(), 0);
  }
  std::vector<V> in = {x, w};
  if (im.HasIn(2)) in.push_back(im.In(2));
  AttrMap attrs = {{"kernel", Tuple(g.kernel)},
                   {"stride", Tuple(g.stride)},
                   {"dilate", Tuple(g.dilate)},
                   {"pad", Tuple(pad)},
                   {"num_filter", std::to_string(im.Shape(w)[0])},
                   {"num_group", std::to_string(im.AttrInt("group", 1))},
                   {"no_bias", im.HasIn(2) ? "False" : "True"}};
  im.SetOut(0, im.Emit("Convolution", in, attrs));
}

void ConvTranspose(Importer& im) {
  V x = im.In(0), w = im.In(1);
  if (im.Rank(x) < 3 || im.Rank(x) > 5 || im.Rank(w) != im.Rank(x))
    im.Fail(StrCat("X ", DimsText(im.Shape(x)), " and W ", DimsText(im.Shape(w)),
                   " must both be 3-D, 4-D or 5-D"));
  std::vector<int64_t> in = Spatial(im.Shape(x));
  size_t nd = in.size();
  int64_t group = im.AttrInt("group", 1);
  int64_t out_channels = im.Shape(w)[1] * group;
  std::vector<int64_t> kernel = im.AttrInts("kernel_shape", Spatial(im.Shape(w)));
  std::vector<int64_t> stride = im.AttrInts("strides", std::vector<int64_t>(nd, 1));
  std::vector<int64_t> dilate = im.AttrInts("dilations", std::vector<int64_t>(nd, 1));
  std::vector<int64_t> out_pad = im.AttrInts("output_padding", std::vector<int64_t>(nd, 0));
  std::vector<int64_t> pads = im.AttrInts("pads", std::vector<int64_t>(2 * nd, 0));
  std::vector<int64_t> out_shape = im.AttrInts("output_shape");
  std::string auto_pad = im.AttrString("auto_pad", "NOTSET");
  if (kernel.size() != nd || stride.size() != nd || dilate.size() != nd || out_pad.size() != nd ||
      pads.size() != 2 * nd)
    im.Fail("kernel_shape, strides, dilations, output_padding and pads do not match the input");
  std::vector<int64_t> begin(pads.begin(), pads.begin() + long(nd)),
      end(pads.begin() + long(nd), pads.end());
  if (out_shape.size() > nd) out_shape.erase(out_shape.begin(), out_shape.end() - long(nd));
  std::vector<int64_t> full(nd);
  for (size_t i = 0; i < nd; ++i)
    full[i] = stride[i] * (in[i] - 1) + dilate[i] * (kernel[i] - 1) + 1;
  if (!out_shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (size_t i = 0; i < nd; ++i) {
      int64_t want = out_shape.empty() ? in[i] * stride[i] : out_shape[i];
      // A negative total (output_shape beyond what the kernel covers) pads with zeros.
      int64_t total = full[i] + out_pad[i] - want;
      int64_t small = total >= 0 ? total / 2 : -((-total + 1) / 2), large = total - small;
      bool upper = auto_pad == "SAME_UPPER";
      begin[i] = upper ? small : large;
      end[i] = upper ? large : small;
    }
  }
  bool simple = begin == end;
  for (size_t i = 0; i < nd; ++i)
    simple = simple && begin[i] >= 0 && out_pad[i] < std::max(stride[i], dilate[i]);
  std::vector<V> ins = {x, w};
  if (simple && im.HasIn(2)) ins.push_back(im.In(2));
  AttrMap attrs = {{"kernel", Tuple(kernel)},
                   {"stride", Tuple(stride)},
                   {"dilate", Tuple(dilate)},
                   {"pad", Tuple(simple ? begin : std::vector<int64_t>(nd, 0))},
                   {"adj", Tuple(simple ? out_pad : std::vector<int64_t>(nd, 0))},
                   {"num_filter", std::to_string(out_channels)},
                   {"num_group", std::to_string(group)},
                   {"no_bias", simple && im.HasIn(2) ? "False" : "True"}};
  V y = im.Emit("Deconvolution", ins, attrs);
  if (simple) {
    im.SetOut(0, y);
    return;
  }
  // General pads: the window [begin, full + output_padding - end) of the full result, where
  // positions outside it (output_padding, negative pads) are zeros before the bias.
  std::vector<int64_t> pre(nd), post(nd);
  bool extend = false;
  for (size_t i = 0; i < nd; ++i) {
    pre[i] = std::max<int64_t>(0, -begin[i]);
    post[i] = std::max<int64_t>(0, out_pad[i] - end[i]);
    extend = extend || pre[i] > 0 || post[i] > 0;
  }
  if (extend) y = PadSpatial(im, y, pre, post, 0);
  std::vector<std::optional<int64_t>> b = {std::nullopt, std::nullopt}, e = b;
  for (size_t i = 0; i < nd; ++i) {
    b.push_back(begin[i] + pre[i]);
    e.push_back(full[i] + out_pad[i] - end[i] + pre[i]);
  }
  y = im.Emit("slice", {y}, {{"begin", attr_text::Print(b)}, {"end", attr_text::Print(e)}});
  if (im.HasIn(2)) {
    std::vector<int64_t> bshape = {out_channels};
    bshape.resize(nd + 1, 1);
    y = im.Emit("broadcast_add", {y, im.Reshape(im.In(2), bshape)});
  }
  im.SetOut(0, y);
}

// --- Pooling ---

// Max pooling as the maximum of strided slices, one per kernel offset: covers dilations and the
// Indices output (flat indices into X, the first maximum of each window), which kiln's Pooling
// lacks. x is floating point here.
void MaxPoolBySlices(Importer& im, V x, const Geometry& g, bool ceil) {
  std::vector<int64_t> shape = im.Shape(x);
  std::vector<int64_t> in = Spatial(shape);
  size_t nd = in.size();
  std::vector<int64_t> out(nd), end = g.pad_end;
  for (size_t i = 0; i < nd; ++i) {
    int64_t dk = g.dilate[i] * (g.kernel[i] - 1) + 1;
    int64_t span = in[i] + g.pad_begin[i] + g.pad_end[i] - dk;
    out[i] = (ceil ? (span + g.stride[i] - 1) / g.stride[i] : span / g.stride[i]) + 1;
    end[i] += std::max<int64_t>(
        0, (out[i] - 1) * g.stride[i] + dk - (in[i] + g.pad_begin[i] + g.pad_end[i]));
  }
  V px = PadSpatial(im, x, g.pad_begin, end, -FLT_MAX);
  std::optional<V> pidx;
  if (im.WantsOut(1)) {
    // Flat indices into X; with storage_order 1 the spatial axes count column-major.
    bool column_major = im.AttrInt("storage_order", 0) != 0;
    int64_t plane = NumElements(in);
    std::vector<double> iota(size_t(NumElements(shape)));
    for (size_t k = 0; k < iota.size(); ++k) {
      int64_t rest = int64_t(k) % plane, off = 0, mul = 1;
      for (size_t i = 0; i < nd; ++i) {  // spatial index i, recovered row-major
        int64_t inner = NumElements({in.begin() + long(i) + 1, in.end()});
        off += column_major ? ((rest / inner) % in[i]) * mul : 0;
        mul *= in[i];
      }
      iota[k] = double(column_major ? int64_t(k) - rest + off : int64_t(k));
    }
    pidx = PadSpatial(im, im.Const(Tensor::FromValues(shape, DType::kInt64, iota)), g.pad_begin,
                      end, -1);
  }
  std::optional<V> best, best_idx;
  std::vector<int64_t> offset(nd, 0);
  while (true) {
    std::vector<std::optional<int64_t>> b = {std::nullopt, std::nullopt}, e = b, st = b;
    for (size_t i = 0; i < nd; ++i) {
      int64_t start = offset[i] * g.dilate[i];
      b.push_back(start);
      e.push_back(start + (out[i] - 1) * g.stride[i] + 1);
      st.push_back(g.stride[i]);
    }
    AttrMap sl = {{"begin", attr_text::Print(b)},
                  {"end", attr_text::Print(e)},
                  {"step", attr_text::Print(st)}};
    V sx = im.Emit("slice", {px}, sl);
    if (!best) {
      best = sx;
      if (pidx) best_idx = im.Emit("slice", {*pidx}, sl);
    } else if (pidx) {
      V gt = im.Cast(im.Emit("broadcast_greater", {sx, *best}), DType::kBool);
      best = im.Emit("where", {gt, sx, *best});
      best_idx = im.Emit("where", {gt, im.Emit("slice", {*pidx}, sl), *best_idx});
    } else {
      best = im.Emit("_maximum", {sx, *best});
    }
    size_t i = nd;
    while (i-- > 0) {
      if (++offset[i] < g.kernel[i]) break;
      offset[i] = 0;
    }
    if (i == size_t(-1)) break;
  }
  im.SetOut(0, *best);
  if (best_idx) im.SetOut(1, *best_idx);
}

Converter Pool(const char* type) {
  return [type](Importer& im) {
    V x = im.In(0);
    const bool is_max = std::string(type) == "max";
    if (im.Rank(x) < 3 || im.Rank(x) > 5)
      im.Fail(StrCat("X ", DimsText(im.Shape(x)), " must be 3-D, 4-D or 5-D"));
    std::vector<int64_t> in = Spatial(im.Shape(x));
    size_t nd = in.size();
    Geometry g = SpatialGeometry(im, in, im.AttrInts("kernel_shape"));
    bool dilated = false;
    for (int64_t d : g.dilate) dilated = dilated || d != 1;
    bool ceil = im.AttrInt("ceil_mode", 0) != 0;
    if (is_max && (dilated || im.WantsOut(1))) {
      if (!IsFloatingPoint(im.Type(x)))
        throw UnsupportedError("MaxPool with dilations or Indices on integer data");
      MaxPoolBySlices(im, x, g, ceil);
      return;
    }
    if (dilated) throw UnsupportedError("average pooling with dilations is not supported");
    bool include_pad = im.AttrInt("count_include_pad", 0) != 0;
    // ONNX's output extent, and the extra end padding that makes floor division reach it.
    std::vector<int64_t> extra(nd, 0);
    bool has_extra = false;
    for (size_t i = 0; i < nd; ++i) {
      int64_t span = in[i] + g.pad_begin[i] + g.pad_end[i] - g.kernel[i];
      int64_t out = (ceil ? (span + g.stride[i] - 1) / g.stride[i] : span / g.stride[i]) + 1;
      extra[i] = std::max<int64_t>(
          0, (out - 1) * g.stride[i] + g.kernel[i] - (in[i] + g.pad_begin[i] + g.pad_end[i]));
      has_extra = has_extra || extra[i] > 0;
    }
    DType t = im.Type(x);
    if (!IsFloatingPoint(t)) x = im.Cast(x, DType::kFloat32);  // exact for 8-bit integers
    AttrMap attrs = {{"kernel", Tuple(g.kernel)}, {"stride", Tuple(g.stride)}, {"pool_type", type}};
    V y;
    if (g.Symmetric() && !has_extra) {
      attrs["pad"] = Tuple(g.pad_begin);
      if (!is_max) attrs["count_include_pad"] = include_pad ? "True" : "False";
      y = im.Emit("Pooling", {x}, attrs);
    } else {
      std::vector<int64_t> end = g.pad_end;
      for (size_t i = 0; i < nd; ++i) end[i] += extra[i];
      V padded = PadSpatial(im, x, g.pad_begin, end, is_max ? -FLT_MAX : 0.0);
      if (is_max) {
        y = im.Emit("Pooling", {padded}, attrs);
      } else {
        attrs["pool_type"] = "sum";
        y = im.Emit("Pooling", {padded}, attrs);
        // Divisor: the elements each window covers (real ones, plus the explicit pads when
        // count_include_pad), from a constant mask pooled the same way.
        std::vector<int64_t> ms = {1, 1};
        ms.insert(ms.end(), in.begin(), in.end());
        V mask = im.Const(
            Tensor::FromValues(ms, im.Type(x), std::vector<double>(size_t(NumElements(ms)), 1.0)));
        V mpad = include_pad ? PadSpatial(im, mask, g.pad_begin, g.pad_end, 1.0) : mask;
        std::vector<int64_t> mb = include_pad ? std::vector<int64_t>(nd, 0) : g.pad_begin;
        std::vector<int64_t> me = include_pad ? extra : end;
        V count = im.Emit("Pooling", {PadSpatial(im, mpad, mb, me, 0.0)}, attrs);
        y = im.Emit("broadcast_div", {y, count});
      }
    }
    im.SetOut(0, im.Cast(y, t));
  };
}

Converter GlobalPool(const char* type) {
  return [type](Importer& im) {
    V x = im.In(0);
    DType t = im.Type(x);
    if (!IsFloatingPoint(t)) x = im.Cast(x, DType::kFloat32);
    V y =
        im.Emit("Pooling", {x}, {{"global_pool", "True"}, {"pool_type", type}, {"kernel", "(1,)"}});
    im.SetOut(0, im.Cast(y, t));
  };
}

// --- Softmax ---

Converter Softmax(const char* op) {
  return [op](Importer& im) {
    V x = im.In(0);
    const auto& in = im.Shape(x);
    int rank = int(in.size());
    if (im.opset() >= 13) {
      int axis = NormAxis(im, im.AttrInt("axis", -1), rank, "axis");
      im.SetOut(0, im.Emit(op, {x}, {{"axis", std::to_string(axis)}}));
      return;
    }
    // Before opset 13: softmax over the flattened axes from `axis` on.
    int axis = NormAxis(im, im.AttrInt("axis", 1), rank, "axis");
    int64_t outer = NumElements({in.begin(), in.begin() + axis});
    V y = im.Emit(op, {im.Reshape(x, {outer, NumElements(in) / std::max<int64_t>(outer, 1)})},
                  {{"axis", "-1"}});
    im.SetOut(0, im.Reshape(y, in));
  };
}

// --- Normalization ---

// Training mode (opset 14 on): batch statistics normalise, and the outputs are the updated
// running statistics, mean * momentum + batch_mean * (1 - momentum) (variance likewise, with
// the biased batch variance), composed from reductions as ONNX's reference does.
void BatchNormTraining(Importer& im) {
  V x = im.In(0);
  int rank = im.Rank(x);
  std::vector<int64_t> axes = {0};
  for (int i = 2; i < rank; ++i) axes.push_back(i);
  double eps = im.AttrFloat("epsilon", 1e-5f), momentum = im.AttrFloat("momentum", 0.9f);
  AttrMap r = {{"axis", attr_text::Print(axes)}, {"keepdims", "True"}};
  V mean = im.Emit("mean", {x}, r);
  V d = im.Emit("broadcast_sub", {x, mean});
  V var = im.Emit("mean", {im.Emit("square", {d})}, r);
  V norm = im.Emit("broadcast_mul", {d, im.Emit("rsqrt", {im.ScalarOp("_plus_scalar", var, eps)})});
  int64_t c = im.Shape(x)[1];
  std::vector<int64_t> cshape = {c};
  cshape.resize(size_t(rank - 1), 1);
  V y = im.Emit("broadcast_mul", {norm, im.Reshape(im.In(1), cshape)});
  im.SetOut(0, im.Emit("broadcast_add", {y, im.Reshape(im.In(2), cshape)}));
  auto running = [&](V old, V batch) {
    V a = im.ScalarOp("_mul_scalar", old, momentum);
    V b = im.ScalarOp("_mul_scalar", im.Reshape(batch, {c}), 1 - momentum);
    return im.Emit("elemwise_add", {a, b});
  };
  im.SetOut(1, running(im.In(3), mean));
  im.SetOut(2, running(im.In(4), var));
}

void BatchNormalization(Importer& im) {
  if (im.AttrInt("training_mode", 0) != 0) {
    BatchNormTraining(im);
    return;
  }
  if (im.NumOut() > 1 && im.opset() < 14)
    throw UnsupportedError(
        "BatchNormalization's training outputs (opsets before 14) are not supported");
  double eps = im.AttrFloat("epsilon", 1e-5f);
  std::vector<V> in = {im.In(0), im.In(1), im.In(2), im.In(3), im.In(4)};
  im.SetOut(0, im.Emit("BatchNorm", in,
                       {{"eps", attr_text::Print(eps)},
                        {"fix_gamma", "False"},
                        {"use_global_stats", "True"},
                        {"axis", "1"}}));
}

// (x - mean) / sqrt(var + eps) over `axes` (kept), returning the normalized value and, when
// wanted, the mean and 1/sqrt(var + eps).
struct Normalized {
  V y, mean, inv_std;
};
Normalized Normalize(Importer& im, V x, const std::vector<int64_t>& axes, double eps) {
  AttrMap r = {{"axis", Tuple(axes)}, {"keepdims", "True"}};
  V mean = im.Emit("mean", {x}, r);
  V d = im.Emit("broadcast_sub", {x, mean});
  V var = im.Emit("mean", {im.Emit("square", {d})}, r);
  V inv = im.Emit("rsqrt", {im.ScalarOp("_plus_scalar", var, eps)});
  return {im.Emit("broadcast_mul", {d, inv}), mean, inv};
}

void LayerNormalization(Importer& im) {
  V x = im.In(0);
  int rank = im.Rank(x);
  int axis = NormAxis(im, im.AttrInt("axis", -1), rank, "axis");
  double eps = im.AttrFloat("epsilon", 1e-5f);
  DType t = im.Type(x);
  V scale = im.In(1);
  if (axis == rank - 1 && !im.WantsOut(1) && !im.WantsOut(2) && im.Rank(scale) == 1) {
    V bias = im.HasIn(2) ? im.In(2) : im.Const(Tensor::Zeros(im.Shape(scale), t));
    im.SetOut(0, im.Emit("LayerNorm", {x, scale, bias},
                         {{"axis", "-1"}, {"eps", attr_text::Print(eps)}}));
    return;
  }
  std::vector<int64_t> axes;
  for (int i = axis; i < rank; ++i) axes.push_back(i);
  bool widen = t == DType::kFloat16 || t == DType::kBFloat16;
  V xs = widen ? im.Cast(x, DType::kFloat32) : x;
  Normalized n = Normalize(im, xs, axes, eps);
  V y = im.Cast(n.y, t);
  y = im.Emit("broadcast_mul", {y, scale});
  if (im.HasIn(2)) y = im.Emit("broadcast_add", {y, im.In(2)});
  im.SetOut(0, y);
  im.SetOut(1, n.mean);
  im.SetOut(2, n.inv_std);
}

void InstanceNormalization(Importer& im) {
  V x = im.In(0);
  int rank = im.Rank(x);
  if (rank < 3) im.Fail(StrCat("input ", DimsText(im.Shape(x)), " needs spatial axes"));
  std::vector<int64_t> axes;
  for (int i = 2; i < rank; ++i) axes.push_back(i);
  Normalized n = Normalize(im, x, axes, im.AttrFloat("epsilon", 1e-5f));
  std::vector<int64_t> cshape = {im.Shape(x)[1]};
  cshape.resize(size_t(rank - 1), 1);
  V y = im.Emit("broadcast_mul", {n.y, im.Reshape(im.In(1), cshape)});
  im.SetOut(0, im.Emit("broadcast_add", {y, im.Reshape(im.In(2), cshape)}));
}

}  // namespace

void AddNNConverters(ConverterTable& t) {
  t["Gemm"] = Gemm;
  t["MatMul"] = MatMul;
  t["Conv"] = Conv;
  t["ConvTranspose"] = ConvTranspose;
  t["MaxPool"] = Pool("max");
  t["AveragePool"] = Pool("avg");
  t["GlobalMaxPool"] = GlobalPool("max");
  t["GlobalAveragePool"] = GlobalPool("avg");
  t["Softmax"] = Softmax("softmax");
  t["LogSoftmax"] = Softmax("log_softmax");
  t["BatchNormalization"] = BatchNormalization;
  t["LayerNormalization"] = LayerNormalization;
  t["InstanceNormalization"] = InstanceNormalization;
}

}  // namespace kiln::onnx_import
