// library_calls.cpp - matrix products and convolutions on the runtime library (library_calls.h).
#include "library_calls.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "kiln/ir/op.h"
#include "kiln/runtime/conv.h"
#include "kiln/runtime/error.h"
#include "kiln/runtime/gemm.h"

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

// Adds bias[row] to every element of rows [r0, r1) of one batch entry of a [rows, cols] block.
struct RowBias {
  float* c = nullptr;
  const float* bias = nullptr;
  int64_t rows = 0, cols = 0;  // per batch entry
  bool per_column = false;     // bias indexed by column instead (FullyConnected)
  static void Apply(void* ctx, int64_t batch, int64_t r0, int64_t r1) {
    auto* b = static_cast<RowBias*>(ctx);
    float* base = b->c + batch * b->rows * b->cols;
    for (int64_t r = r0; r < r1; ++r) {
      float* row = base + r * b->cols;
      if (b->per_column)
        for (int64_t j = 0; j < b->cols; ++j) row[j] += b->bias[j];
      else
        for (int64_t j = 0; j < b->cols; ++j) row[j] += b->bias[r];
    }
  }
};

// Per-channel sums of an NCHW tensor [batch, channels, pixels] (convolution bias gradients):
// each image's channel summed first, the images then added in order.
void ChannelSums(const float* a, int64_t batch, int64_t channels, int64_t pixels, float* out) {
  for (int64_t c = 0; c < channels; ++c) out[c] = 0;
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      const float* p = a + (n * channels + c) * pixels;
      float sum = 0;
      for (int64_t i = 0; i < pixels; ++i) sum += p[i];
      out[c] += sum;
    }
}

// Column sums of a [rows, cols] matrix (bias gradients), in a fixed order.
void SumRows(const float* a, int64_t rows, int64_t cols, float* out) {
  for (int64_t j = 0; j < cols; ++j) out[j] = 0;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) out[j] += a[i * cols + j];
}

class FullyConnectedOp final : public LibraryOp {
 public:
  FullyConnectedOp(int64_t m, int64_t n, int64_t k, bool bias) : m_(m), n_(n), k_(k), bias_(bias) {}
  int64_t WorkspaceBytes(int threads) const override {
    workspace_ = GemmWorkspaceBytes(Args(), threads);
    threads_ = threads;
    return workspace_;
  }
  std::shared_ptr<void> Prepack(const void* const* in, ThreadPool* pool) const override {
    if (n_ <= 0 || k_ <= 0) return nullptr;
    return std::make_shared<PackedB>(
        PackB(static_cast<const float*>(in[1]), k_, BLayout::kNK, n_, k_, pool));
  }
  void Run(const void* const* in, void* const* out, void* ws, ThreadPool* pool,
           const void* prepacked) const override {
    GemmArgs g = Args();
    g.a = static_cast<const float*>(in[0]);
    g.b = static_cast<const float*>(in[1]);
    g.packed_b = static_cast<const PackedB*>(prepacked);
    // A prepacked product takes another path, which may need more scratch than the plan
    // reserved for the unpacked one: then the library allocates its own.
    if (g.packed_b && GemmWorkspaceBytes(g, threads_) > workspace_) ws = nullptr;
    g.c = static_cast<float*>(out[0]);
    g.workspace = ws;
    RowBias rb{g.c, bias_ ? static_cast<const float*>(in[2]) : nullptr, m_, n_, true};
    if (bias_) g.epilogue = {&RowBias::Apply, &rb};
    Gemm(g, pool);
  }

 private:
  GemmArgs Args() const {
    GemmArgs g;
    g.m = m_, g.n = n_, g.k = k_;
    g.lda = k_, g.ldb = k_, g.ldc = n_;
    g.b_layout = BLayout::kNK;
    return g;
  }
  int64_t m_, n_, k_;
  bool bias_;
  mutable int64_t workspace_ = 0;  // what the plan reserved (WorkspaceBytes)
  mutable int threads_ = 1;
};

// dot (2-D) and batch_dot: C[b] = op(A[b]) op(B[b]) with MXNet's transpose_a / transpose_b.
class MatMulOp final : public LibraryOp {
 public:
  MatMulOp(int64_t batch, int64_t m, int64_t n, int64_t k, bool ta, bool tb)
      : batch_(batch), m_(m), n_(n), k_(k), ta_(ta), tb_(tb) {}
  int64_t WorkspaceBytes(int threads) const override { return GemmWorkspaceBytes(Args(), threads); }
  void Run(const void* const* in, void* const* out, void* ws, ThreadPool* pool,
           const void*) const override {
    GemmArgs g = Args();
    g.a = static_cast<const float*>(in[0]);
    g.b = static_cast<const float*>(in[1]);
    g.c = static_cast<float*>(out[0]);
    g.workspace = ws;
    Gemm(g, pool);
  }

 private:
  GemmArgs Args() const {
    GemmArgs g;
    g.batch = batch_;
    g.m = m_, g.n = n_, g.k = k_;
    g.trans_a = ta_;
    g.lda = ta_ ? m_ : k_;
    g.b_layout = tb_ ? BLayout::kNK : BLayout::kKN;
    g.ldb = tb_ ? k_ : n_;
    g.ldc = n_;
    g.stride_a = m_ * k_, g.stride_b = k_ * n_, g.stride_c = m_ * n_;
    return g;
  }
  int64_t batch_, m_, n_, k_;
  bool ta_, tb_;
};

bool IsTrue(const std::string& text) {
  return text == "True" || text == "true" || text == "1";
}

// (ograd [M, N], data [M, K], weight [N, K]) -> data_grad = ograd W, weight_grad = ograd^T data,
// bias_grad = column sums of ograd.
class FullyConnectedBackwardOp final : public LibraryOp {
 public:
  FullyConnectedBackwardOp(int64_t m, int64_t n, int64_t k, bool bias, bool data_grad)
      : m_(m), n_(n), k_(k), bias_(bias), data_grad_(data_grad) {}
  int64_t WorkspaceBytes(int threads) const override {
    return std::max(GemmWorkspaceBytes(DataGrad(), threads),
                    GemmWorkspaceBytes(WeightGrad(), threads));
  }
  void Run(const void* const* in, void* const* out, void* ws, ThreadPool* pool,
           const void*) const override {
    const float* dy = static_cast<const float*>(in[0]);
    if (data_grad_) {
      GemmArgs d = DataGrad();
      d.a = dy, d.b = static_cast<const float*>(in[2]), d.c = static_cast<float*>(out[0]);
      d.workspace = ws;
      Gemm(d, pool);
    }
    GemmArgs w = WeightGrad();
    w.a = dy, w.b = static_cast<const float*>(in[1]), w.c = static_cast<float*>(out[1]);
    w.workspace = ws;
    Gemm(w, pool);
    if (bias_) SumRows(dy, m_, n_, static_cast<float*>(out[2]));
  }

 private:
  GemmArgs DataGrad() const {  // [M, K] = [M, N] x [N, K]
    GemmArgs g;
    g.m = m_, g.n = k_, g.k = n_;
    g.lda = n_, g.ldb = k_, g.ldc = k_;
    g.b_layout = BLayout::kKN;
    return g;
  }
  GemmArgs WeightGrad() const {  // [N, K] = [M, N]^T x [M, K]
    GemmArgs g;
    g.m = n_, g.n = k_, g.k = m_;
    g.trans_a = true;
    g.lda = n_, g.ldb = k_, g.ldc = k_;
    g.b_layout = BLayout::kKN;
    return g;
  }
  int64_t m_, n_, k_;
  bool bias_, data_grad_;
};

class ConvolutionOp final : public LibraryOp {
 public:
  ConvolutionOp(Conv2dShape s, bool bias, bool backward, bool data_grad)
      : s_(s), bias_(bias), backward_(backward), data_grad_(data_grad) {}
  int64_t WorkspaceBytes(int threads) const override {
    if (!backward_) return ConvForwardWorkspaceBytes(s_, threads);
    return std::max(ConvBackwardDataWorkspaceBytes(s_, threads),
                    ConvBackwardWeightWorkspaceBytes(s_, threads));
  }
  std::shared_ptr<void> Prepack(const void* const* in, ThreadPool*) const override {
    int64_t floats = backward_ ? 0 : ConvPackedWeightsFloats(s_);
    if (floats == 0) return nullptr;
    auto* mem = static_cast<float*>(std::aligned_alloc(64, size_t(floats) * 4));
    if (!mem) throw RuntimeError(StrCat("out of memory packing ", floats * 4, " bytes of weights"));
    ConvPackWeights(s_, static_cast<const float*>(in[1]), mem);
    return std::shared_ptr<void>(mem, [](void* p) { std::free(p); });
  }
  void Run(const void* const* in, void* const* out, void* ws, ThreadPool* pool,
           const void* prepacked) const override {
    const int64_t pixels = s_.out_h() * s_.out_w();
    if (!backward_) {
      float* y = static_cast<float*>(out[0]);
      RowBias rb{y, bias_ ? static_cast<const float*>(in[2]) : nullptr, s_.out_channels, pixels,
                 false};
      GemmEpilogue epilogue;
      if (bias_) epilogue = {&RowBias::Apply, &rb};
      ConvForward(s_, static_cast<const float*>(in[0]), static_cast<const float*>(in[1]), y,
                  epilogue, ws, pool, GemmIsa::kAuto, static_cast<const float*>(prepacked));
      return;
    }
    const float* dy = static_cast<const float*>(in[0]);
    if (data_grad_)
      ConvBackwardData(s_, dy, static_cast<const float*>(in[2]), static_cast<float*>(out[0]), false,
                       ws, pool);
    ConvBackwardWeight(s_, static_cast<const float*>(in[1]), dy, static_cast<float*>(out[1]), false,
                       ws, pool);
    if (!bias_) return;
    ChannelSums(dy, s_.batch, s_.out_channels, pixels, static_cast<float*>(out[2]));
  }

 private:
  Conv2dShape s_;
  bool bias_, backward_, data_grad_;
};

// Deconvolution is the transpose of the convolution `s` that maps its output back to its
// input: forward = that convolution's backward data, its data gradient = the convolution
// forward, its weight gradient = the convolution's weight gradient with the roles of input and
// output gradient swapped. s.in_* are the deconvolution's output, s.out_channels its input
// channels.
class DeconvolutionOp final : public LibraryOp {
 public:
  DeconvolutionOp(Conv2dShape s, bool bias, bool backward, bool data_grad)
      : s_(s), bias_(bias), backward_(backward), data_grad_(data_grad) {}
  int64_t WorkspaceBytes(int threads) const override {
    if (!backward_) return ConvBackwardDataWorkspaceBytes(s_, threads);
    return std::max(ConvForwardWorkspaceBytes(s_, threads),
                    ConvBackwardWeightWorkspaceBytes(s_, threads));
  }
  void Run(const void* const* in, void* const* out, void* ws, ThreadPool* pool,
           const void*) const override {
    const int64_t pixels = s_.in_h * s_.in_w;  // of the deconvolution's output
    if (!backward_) {
      float* y = static_cast<float*>(out[0]);
      ConvBackwardData(s_, static_cast<const float*>(in[0]), static_cast<const float*>(in[1]), y,
                       false, ws, pool);
      if (bias_) {
        RowBias rb{y, static_cast<const float*>(in[2]), s_.in_channels, pixels, false};
        for (int64_t n = 0; n < s_.batch; ++n) RowBias::Apply(&rb, n, 0, s_.in_channels);
      }
      return;
    }
    const float* dy = static_cast<const float*>(in[0]);
    if (data_grad_)
      ConvForward(s_, dy, static_cast<const float*>(in[2]), static_cast<float*>(out[0]), {}, ws,
                  pool);
    ConvBackwardWeight(s_, dy, static_cast<const float*>(in[1]), static_cast<float*>(out[1]), false,
                       ws, pool);
    if (!bias_) return;
    ChannelSums(dy, s_.batch, s_.in_channels, pixels, static_cast<float*>(out[2]));
  }

 private:
  Conv2dShape s_;
  bool bias_, backward_, data_grad_;
};

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

// BatchNorm in training (batch statistics, moving statistics updated in place in inputs 3 and 4)
// and its gradient, over any axis, as the reference kernels compute them (sums in double), one
// task per channel: the reference's own algorithm in float32 storage, run on the thread pool.
struct NormView {
  int64_t outer = 1, channels = 1, inner = 1;
};

NormView ViewAround(const Shape& s, int64_t axis) {
  int ax = int(axis < 0 ? axis + s.ndim() : axis);
  NormView v;
  for (int i = 0; i < s.ndim(); ++i) {
    if (i < ax) v.outer *= s[i];
    if (i == ax) v.channels = s[i];
    if (i > ax) v.inner *= s[i];
  }
  return v;
}

struct NormAttrs {
  double eps = 1e-3, momentum = 0.9;
  bool fix_gamma = true, use_global_stats = false;
};

template <class F>
void PerChannel(ThreadPool* pool, int64_t channels, F&& f) {
  if (pool && pool->num_threads() > 1 && channels > 1)
    pool->ParallelFor(channels, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) f(c);
    });
  else
    for (int64_t c = 0; c < channels; ++c) f(c);
}

class BatchNormTrainOp final : public LibraryOp {
 public:
  BatchNormTrainOp(NormView v, NormAttrs a) : v_(v), a_(a) {}
  int64_t WorkspaceBytes(int) const override { return 0; }
  void Run(const void* const* in, void* const* out, void*, ThreadPool* pool,
           const void*) const override {
    const float* x = static_cast<const float*>(in[0]);
    const float* gamma = static_cast<const float*>(in[1]);
    const float* beta = static_cast<const float*>(in[2]);
    auto* moving_mean = static_cast<float*>(const_cast<void*>(in[3]));
    auto* moving_var = static_cast<float*>(const_cast<void*>(in[4]));
    float* y = static_cast<float*>(out[0]);
    float* mean_out = static_cast<float*>(out[1]);
    float* inv_std_out = static_cast<float*>(out[2]);
    const double count = double(v_.outer * v_.inner);
    PerChannel(pool, v_.channels, [&](int64_t c) {
      auto at = [&](int64_t o) { return (o * v_.channels + c) * v_.inner; };
      double sum = 0;
      for (int64_t o = 0; o < v_.outer; ++o)
        for (int64_t i = 0; i < v_.inner; ++i) sum += double(x[at(o) + i]);
      const double m = count > 0 ? sum / count : 0.0;
      double sq = 0;
      for (int64_t o = 0; o < v_.outer; ++o)
        for (int64_t i = 0; i < v_.inner; ++i) {
          double d = double(x[at(o) + i]) - m;
          sq += d * d;
        }
      const double var = count > 0 ? sq / count : 0.0;
      const double inv_std = (var == 0 && a_.eps == 0) ? 0.0 : 1.0 / std::sqrt(var + a_.eps);
      const double g = a_.fix_gamma ? 1.0 : double(gamma[c]), b = double(beta[c]);
      for (int64_t o = 0; o < v_.outer; ++o)
        for (int64_t i = 0; i < v_.inner; ++i)
          y[at(o) + i] = float((double(x[at(o) + i]) - m) * inv_std * g + b);
      mean_out[c] = float(m);
      inv_std_out[c] = float(inv_std);
      moving_mean[c] = float(double(moving_mean[c]) * a_.momentum + m * (1 - a_.momentum));
      moving_var[c] = float(double(moving_var[c]) * a_.momentum + var * (1 - a_.momentum));
    });
  }

 private:
  NormView v_;
  NormAttrs a_;
};

// (ograd, data, gamma, mean, inv_std) -> (data_grad, gamma_grad, beta_grad).
class BatchNormBackwardOp final : public LibraryOp {
 public:
  BatchNormBackwardOp(NormView v, NormAttrs a, bool batch_stats)
      : v_(v), a_(a), batch_stats_(batch_stats) {}
  int64_t WorkspaceBytes(int) const override { return 0; }
  void Run(const void* const* in, void* const* out, void*, ThreadPool* pool,
           const void*) const override {
    const float* dy = static_cast<const float*>(in[0]);
    const float* x = static_cast<const float*>(in[1]);
    const float* gamma = static_cast<const float*>(in[2]);
    const float* mean = static_cast<const float*>(in[3]);
    const float* inv_std = static_cast<const float*>(in[4]);
    float* dx = static_cast<float*>(out[0]);
    float* dgamma = static_cast<float*>(out[1]);
    float* dbeta = static_cast<float*>(out[2]);
    const double count = double(v_.outer * v_.inner);
    PerChannel(pool, v_.channels, [&](int64_t c) {
      auto at = [&](int64_t o) { return (o * v_.channels + c) * v_.inner; };
      const double m = mean[c], s = inv_std[c];
      double sum_dy = 0, dot = 0;
      for (int64_t o = 0; o < v_.outer; ++o)
        for (int64_t i = 0; i < v_.inner; ++i) {
          double g = dy[at(o) + i];
          sum_dy += g;
          dot += g * (double(x[at(o) + i]) - m);
        }
      const double w = a_.fix_gamma ? 1.0 : double(gamma[c]);
      const double mean_dy = count > 0 ? sum_dy / count : 0.0;
      const double proj = count > 0 ? dot * s * s / count : 0.0;
      for (int64_t o = 0; o < v_.outer; ++o)
        for (int64_t i = 0; i < v_.inner; ++i) {
          double g = dy[at(o) + i];
          if (batch_stats_) g = g - mean_dy - (double(x[at(o) + i]) - m) * proj;
          dx[at(o) + i] = float(g * s * w);
        }
      dgamma[c] = a_.fix_gamma ? 0.0f : float(dot * s);
      dbeta[c] = float(sum_dy);
    });
  }

 private:
  NormView v_;
  NormAttrs a_;
  bool batch_stats_;
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

}  // namespace

std::unique_ptr<LibraryOp> MakeLibraryOp(const Graph& g, uint32_t id, bool is_train) {
  const Node& n = g.node(id);
  if (n.is_variable()) return nullptr;
  // A gradient with respect to data that nothing reads (the first layer's) is not computed.
  auto data_grad_read = [&] {
    Entry first{id, 0};
    bool read = g.EntryUseCounts()[g.entry_id(first)] > 0;
    for (const Entry& e : g.outputs()) read = read || e == first;
    return read;
  };
  for (const Entry& e : n.inputs)
    if (g.dtype(e) != DType::kFloat32) return nullptr;
  for (uint32_t k = 0; k < uint32_t(n.num_outputs()); ++k)
    if (g.dtype(Entry{id, k}) != DType::kFloat32) return nullptr;
  const std::string& op = n.op->name();
  if (op == "FullyConnected") {
    const Shape& w = g.shape(n.inputs[1]);
    int64_t out = g.shape(Entry{id, 0}).NumElements();
    if (w[0] == 0) return nullptr;
    return std::make_unique<FullyConnectedOp>(out / w[0], w[0], w[1], n.inputs.size() > 2);
  }
  if (op == "_backward_FullyConnected") {
    const Shape& w = g.shape(n.inputs[2]);
    int64_t dy = g.shape(n.inputs[0]).NumElements();
    if (w[0] == 0) return nullptr;
    return std::make_unique<FullyConnectedBackwardOp>(dy / w[0], w[0], w[1], n.num_outputs() > 2,
                                                      data_grad_read());
  }
  if ((op == "BatchNorm" || op == "_backward_BatchNorm") && is_train && n.num_outputs() == 3) {
    NormAttrs a = ReadNormAttrs(n);
    NormView v = ViewAround(g.shape(n.inputs[op == "BatchNorm" ? 0 : 1]), NormAxis(n));
    if (op == "_backward_BatchNorm")
      return std::make_unique<BatchNormBackwardOp>(v, a, !a.use_global_stats);
    if (a.use_global_stats) return nullptr;  // the same in both modes: a compute definition
    return std::make_unique<BatchNormTrainOp>(v, a);
  }
  if (op == "Deconvolution" || op == "_backward_Deconvolution") {
    const bool backward = op == "_backward_Deconvolution";
    const Shape& data = g.shape(n.inputs[backward ? 1 : 0]);
    const Shape& out = backward ? g.shape(n.inputs[0]) : g.shape(Entry{id, 0});
    std::optional<Conv2dShape> s = DeconvShape(n, data, g.shape(n.inputs[backward ? 2 : 1]), out);
    if (!s) return nullptr;
    bool bias = backward ? n.num_outputs() > 2 : n.inputs.size() > 2;
    return std::make_unique<DeconvolutionOp>(*s, bias, backward, backward && data_grad_read());
  }
  if (op == "dot" || op == "batch_dot") {
    const Shape& a = g.shape(n.inputs[0]);
    const Shape& b = g.shape(n.inputs[1]);
    const bool ta = IsTrue(AttrText(n, "transpose_a")), tb = IsTrue(AttrText(n, "transpose_b"));
    const int rank = op == "dot" ? 2 : a.ndim();
    if (a.ndim() != rank || b.ndim() != rank || rank < 2) return nullptr;
    int64_t batch = 1;
    for (int i = 0; i + 2 < rank; ++i) {
      if (a[i] != b[i]) return nullptr;  // broadcast batch dims stay with the reference
      batch *= a[i];
    }
    const int64_t m = ta ? a[rank - 1] : a[rank - 2], k = ta ? a[rank - 2] : a[rank - 1];
    const int64_t n2 = tb ? b[rank - 2] : b[rank - 1], k2 = tb ? b[rank - 1] : b[rank - 2];
    if (k != k2) return nullptr;
    return std::make_unique<MatMulOp>(batch, m, n2, k, ta, tb);
  }
  if (op == "Convolution" || op == "_backward_Convolution") {
    const bool backward = op == "_backward_Convolution";
    std::optional<Conv2dShape> s =
        ConvShape(n, g.shape(n.inputs[backward ? 1 : 0]), g.shape(n.inputs[backward ? 2 : 1]));
    if (!s) return nullptr;
    bool bias = backward ? n.num_outputs() > 2 : n.inputs.size() > 2;
    return std::make_unique<ConvolutionOp>(*s, bias, backward, backward && data_grad_read());
  }
  return nullptr;
}

}  // namespace kiln::codegen
