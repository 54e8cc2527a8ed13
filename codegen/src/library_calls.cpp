// library_calls.cpp - matrix products and convolutions on the runtime library (library_calls.h).
#include "library_calls.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "kiln/ir/op.h"
#include "kiln/runtime/conv.h"
#include "kiln/runtime/error.h"
#include "kiln/runtime/rnn.h"

namespace kiln::codegen {

namespace {

// The printed value of attribute `name` of `n`, or "" when it has its default.
std::string AttrText(const Node& n, const std::string& name) {
  for (const auto& [k, v] : n.op->attrs.print(n.attrs))
    if (k == name) return v;
  return "";
}

// "(2, 2)" or "2" -> {2, 2}; "" or "None" -> {} (the default).
std::vector<int64_t> ParseTuple(const std::string& text) {
  std::vector<int64_t> out;
  std::string digits;
  for (char c : text + ",") {
    if (c >= '0' && c <= '9') {
      digits += c;
    } else if (!digits.empty()) {
      out.push_back(std::stoll(digits));
      digits.clear();
    }
  }
  return out;
}

int64_t Pick(const std::vector<int64_t>& v, size_t i, int64_t fallback) {
  return i < v.size() ? v[i] : fallback;
}

bool IsTrue(const std::string& text) {
  return text == "True" || text == "true" || text == "1";
}

// The spatial part of a convolution over `in` ([N, C, (H,) W], one spatial axis as H = 1) with
// `weight` ([F, C/g, (kh,) kw]): extents, kernel, stride, pad and dilation from the node's
// attributes. False for other layouts and ranks.
bool ReadConvWindow(const Node& n, const Shape& in, const Shape& weight, Conv2dShape& s) {
  std::string layout = AttrText(n, "layout");
  if (!layout.empty() && layout != "None" && layout != "NCHW" && layout != "NCW") return false;
  const int spatial = in.ndim() - 2;
  if (spatial < 1 || spatial > 2 || weight.ndim() != in.ndim()) return false;
  std::vector<int64_t> stride = ParseTuple(AttrText(n, "stride"));
  std::vector<int64_t> pad = ParseTuple(AttrText(n, "pad"));
  std::vector<int64_t> dilate = ParseTuple(AttrText(n, "dilate"));
  s.in_h = spatial == 2 ? in[2] : 1;
  s.in_w = in[in.ndim() - 1];
  s.kernel_h = spatial == 2 ? weight[2] : 1;
  s.kernel_w = weight[weight.ndim() - 1];
  if (spatial == 2) {
    s.stride_h = Pick(stride, 0, 1), s.pad_h = Pick(pad, 0, 0), s.dilation_h = Pick(dilate, 0, 1);
  }
  const size_t w = spatial == 2 ? 1 : 0;
  s.stride_w = Pick(stride, w, 1), s.pad_w = Pick(pad, w, 0), s.dilation_w = Pick(dilate, w, 1);
  return true;
}

// Convolution's shape from the node: data [N, C, (H,) W], weight [F, C/g, (kh,) kw].
std::optional<Conv2dShape> ConvShape(const Node& n, const Shape& data, const Shape& weight) {
  Conv2dShape s;
  if (!ReadConvWindow(n, data, weight, s)) return {};
  s.batch = data[0];
  s.in_channels = data[1];
  s.out_channels = weight[0];
  s.groups = weight[1] > 0 ? data[1] / weight[1] : 1;
  if (!s.Problem().empty()) return {};
  return s;
}

// The convolution whose transpose is the Deconvolution node `n` (data [N, Cin, (H,) W], weight
// [Cin, Cout/g, (kh,) kw], output [N, Cout, (Ho,) Wo]); none for target_shape, other layouts,
// or adj beyond pad.
std::optional<Conv2dShape> DeconvShape(const Node& n, const Shape& data, const Shape& weight,
                                       const Shape& out) {
  for (int64_t t : ParseTuple(AttrText(n, "target_shape")))
    if (t != 0) return {};
  Conv2dShape s;
  if (out.ndim() != data.ndim() || weight[1] <= 0 || !ReadConvWindow(n, out, weight, s)) return {};
  s.batch = data[0];
  s.in_channels = out[1];
  s.out_channels = data[1];
  s.groups = out[1] / weight[1];
  std::vector<int64_t> adj = ParseTuple(AttrText(n, "adj"));
  const bool two = data.ndim() == 4;
  s.pad_h_end = two ? s.pad_h - Pick(adj, 0, 0) : 0;
  s.pad_w_end = s.pad_w - Pick(adj, two ? 1 : 0, 0);
  if (s.pad_h_end < 0 || s.pad_w_end < 0 || !s.Problem().empty()) return {};
  if (s.out_h() != (two ? data[2] : 1) || s.out_w() != data[data.ndim() - 1]) return {};
  return s;
}

// The [outer, channels, inner] view of a BatchNorm's data around its channel axis.
std::vector<int64_t> ViewAround(const Shape& s, int64_t axis) {
  int ax = int(axis < 0 ? axis + s.ndim() : axis);
  std::vector<int64_t> v{1, 1, 1};
  for (int i = 0; i < s.ndim(); ++i) v[i < ax ? 0 : i == ax ? 1 : 2] *= s[i];
  return v;
}

struct NormAttrs {
  double eps = 1e-3, momentum = 0.9;
  bool fix_gamma = true, use_global_stats = false;
};

NormAttrs ReadNormAttrs(const Node& n) {
  NormAttrs a;
  if (std::string t = AttrText(n, "eps"); !t.empty()) a.eps = std::stod(t);
  if (std::string t = AttrText(n, "momentum"); !t.empty()) a.momentum = std::stod(t);
  if (std::string t = AttrText(n, "fix_gamma"); !t.empty()) a.fix_gamma = IsTrue(t);
  if (std::string t = AttrText(n, "use_global_stats"); !t.empty()) a.use_global_stats = IsTrue(t);
  return a;
}

int64_t NormAxis(const Node& n) {
  std::string t = AttrText(n, "axis");
  return t.empty() ? 1 : std::stoll(t);
}

// LSTM, GRU and RNN_tanh (ir/src/ops/rnn.cpp) as the runtime's RnnShape: sizes from the data
// and W shapes, the rest from the attributes; none for another op.
std::optional<LibraryOpDesc> DescribeRnn(const Graph& g, const Node& n) {
  const std::string& op = n.op->name();
  RnnShape s;
  if (op == "LSTM")
    s.cell = RnnCell::kLstm;
  else if (op == "GRU")
    s.cell = RnnCell::kGru;
  else if (op == "RNN_tanh")
    s.cell = RnnCell::kTanh;
  else
    return {};
  const Shape& x = g.shape(n.inputs[0]);
  const Shape& w = g.shape(n.inputs[1]);  // (D, G*H, I)
  if (x.ndim() != 3 || w.ndim() != 3) return {};
  const std::string direction = AttrText(n, "direction");
  if (direction == "reverse")
    s.direction = RnnDirection::kReverse;
  else if (direction == "bidirectional")
    s.direction = RnnDirection::kBidirectional;
  else if (!direction.empty() && direction != "forward")
    return {};
  const std::string layout = AttrText(n, "layout");
  s.layout = layout.empty() ? 0 : std::stoll(layout);
  s.seq = s.layout ? x[1] : x[0], s.batch = s.layout ? x[0] : x[1], s.input = x[2];
  s.hidden = w[1] / s.gates();
  if (w[0] != s.directions() || w[1] != s.gates() * s.hidden || w[2] != s.input) return {};
  // No clip, or an infinite one, clamps nothing; one beyond float32's range stays with the
  // reference (its clamp is in double).
  const std::string clip = AttrText(n, "clip");
  const double clip_value = clip.empty() || clip == "None" ? HUGE_VAL : std::stod(clip);
  if (std::isfinite(clip_value)) {
    if (clip_value > 3e38) return {};
    s.has_clip = true, s.clip = float(clip_value);
  }
  s.linear_before_reset = s.cell == RnnCell::kGru && IsTrue(AttrText(n, "linear_before_reset"));
  s.input_forget = s.cell == RnnCell::kLstm && IsTrue(AttrText(n, "input_forget"));
  if (!s.Problem().empty()) return {};
  return LibraryOpDesc{LibraryOpKind::kRnn,
                       {int64_t(s.cell), int64_t(s.direction), s.layout, s.seq, s.batch, s.input,
                        s.hidden, s.has_clip, s.linear_before_reset, s.input_forget},
                       {double(s.clip)}};
}

}  // namespace

std::optional<LibraryOpDesc> DescribeLibraryOp(const Graph& g, uint32_t id, bool is_train) {
  const Node& n = g.node(id);
  if (n.is_variable()) return {};
  // A gradient with respect to data that nothing reads (the first layer's) is not computed.
  auto data_grad_read = [&]() -> int64_t {
    Entry first{id, 0};
    bool read = g.EntryUseCounts()[g.entry_id(first)] > 0;
    for (const Entry& e : g.outputs()) read = read || e == first;
    return read;
  };
  for (const Entry& e : n.inputs)
    if (g.dtype(e) != DType::kFloat32) return {};
  for (uint32_t k = 0; k < uint32_t(n.num_outputs()); ++k)
    if (g.dtype(Entry{id, k}) != DType::kFloat32) return {};
  const std::string& op = n.op->name();
  if (std::optional<LibraryOpDesc> rnn = DescribeRnn(g, n)) return rnn;
  if (op == "FullyConnected") {
    const Shape& w = g.shape(n.inputs[1]);
    int64_t out = g.shape(Entry{id, 0}).NumElements();
    if (w[0] == 0) return {};
    return LibraryOpDesc{
        LibraryOpKind::kFullyConnected, {out / w[0], w[0], w[1], n.inputs.size() > 2}, {}};
  }
  if (op == "_backward_FullyConnected") {
    const Shape& w = g.shape(n.inputs[2]);
    int64_t dy = g.shape(n.inputs[0]).NumElements();
    if (w[0] == 0) return {};
    return LibraryOpDesc{LibraryOpKind::kFullyConnectedBackward,
                         {dy / w[0], w[0], w[1], n.num_outputs() > 2, data_grad_read()},
                         {}};
  }
  if ((op == "BatchNorm" || op == "_backward_BatchNorm") && is_train && n.num_outputs() == 3) {
    NormAttrs a = ReadNormAttrs(n);
    std::vector<int64_t> ints =
        ViewAround(g.shape(n.inputs[op == "BatchNorm" ? 0 : 1]), NormAxis(n));
    ints.push_back(a.fix_gamma);
    if (op == "_backward_BatchNorm") {
      ints.push_back(!a.use_global_stats);
      return LibraryOpDesc{LibraryOpKind::kBatchNormBackward, ints, {a.eps, a.momentum}};
    }
    if (a.use_global_stats) return {};  // the same in both modes: a compute definition
    return LibraryOpDesc{LibraryOpKind::kBatchNormTrain, ints, {a.eps, a.momentum}};
  }
  auto conv_desc = [&](LibraryOpKind kind, const Conv2dShape& s, bool backward) {
    std::vector<int64_t> ints = ConvShapeInts(s);
    ints.push_back(backward ? n.num_outputs() > 2 : n.inputs.size() > 2);  // bias
    ints.push_back(backward ? data_grad_read() : 0);
    return LibraryOpDesc{kind, ints, {}};
  };
  if (op == "Deconvolution" || op == "_backward_Deconvolution") {
    const bool backward = op == "_backward_Deconvolution";
    const Shape& data = g.shape(n.inputs[backward ? 1 : 0]);
    const Shape& out = backward ? g.shape(n.inputs[0]) : g.shape(Entry{id, 0});
    std::optional<Conv2dShape> s = DeconvShape(n, data, g.shape(n.inputs[backward ? 2 : 1]), out);
    if (!s) return {};
    return conv_desc(
        backward ? LibraryOpKind::kDeconvolutionBackward : LibraryOpKind::kDeconvolution, *s,
        backward);
  }
  if (op == "dot" || op == "batch_dot") {
    const Shape& a = g.shape(n.inputs[0]);
    const Shape& b = g.shape(n.inputs[1]);
    const bool ta = IsTrue(AttrText(n, "transpose_a")), tb = IsTrue(AttrText(n, "transpose_b"));
    const int rank = op == "dot" ? 2 : a.ndim();
    if (a.ndim() != rank || b.ndim() != rank || rank < 2) return {};
    int64_t batch = 1;
    for (int i = 0; i + 2 < rank; ++i) {
      if (a[i] != b[i]) return {};  // broadcast batch dims stay with the reference
      batch *= a[i];
    }
    const int64_t m = ta ? a[rank - 1] : a[rank - 2], k = ta ? a[rank - 2] : a[rank - 1];
    const int64_t n2 = tb ? b[rank - 2] : b[rank - 1], k2 = tb ? b[rank - 1] : b[rank - 2];
    if (k != k2) return {};
    return LibraryOpDesc{LibraryOpKind::kMatMul, {batch, m, n2, k, ta, tb}, {}};
  }
  if (op == "Convolution" || op == "_backward_Convolution") {
    const bool backward = op == "_backward_Convolution";
    std::optional<Conv2dShape> s =
        ConvShape(n, g.shape(n.inputs[backward ? 1 : 0]), g.shape(n.inputs[backward ? 2 : 1]));
    if (!s) return {};
    return conv_desc(backward ? LibraryOpKind::kConvolutionBackward : LibraryOpKind::kConvolution,
                     *s, backward);
  }
  return {};
}

}  // namespace kiln::codegen
