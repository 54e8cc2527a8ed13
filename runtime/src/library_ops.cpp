// library_ops.cpp - the runtime library's heavy ops as plan calls (kiln/runtime/library_ops.h).
#include "kiln/runtime/library_ops.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "kiln/runtime/error.h"
#include "kiln/runtime/gemm.h"
#include "kiln/runtime/rnn.h"

namespace kiln {

namespace {

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

// The bias of rows [r0, r1) of batch entry `batch` (where there is one), then a plan kernel
// over those rows, numbered across the batch: tasks [batch * rows + r0, batch * rows + r1)
// (a convolution's (image, channel) rows; FullyConnected has one batch entry).
struct RowsThenKernel {
  RowBias* bias = nullptr;
  KernelFn kernel = nullptr;
  void* const* args = nullptr;
  int64_t rows = 0;  // per batch entry
  static void Apply(void* ctx, int64_t batch, int64_t r0, int64_t r1) {
    auto* e = static_cast<RowsThenKernel*>(ctx);
    if (e->bias) RowBias::Apply(e->bias, batch, r0, r1);
    e->kernel(e->args, batch * e->rows + r0, batch * e->rows + r1);
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
  void ArgBytes(std::vector<int64_t>& in, std::vector<int64_t>& out) const override {
    in = {4 * m_ * k_, 4 * n_ * k_};
    if (bias_) in.push_back(4 * n_);
    out = {4 * m_ * n_};
  }
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
    RunWithRowKernel(in, out, ws, pool, prepacked, nullptr, nullptr);
  }
  bool SupportsRowKernel() const override { return true; }
  void RunWithRowKernel(const void* const* in, void* const* out, void* ws, ThreadPool* pool,
                        const void* prepacked, KernelFn row_kernel,
                        void* const* row_args) const override {
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
    RowsThenKernel rk{bias_ ? &rb : nullptr, row_kernel, row_args, m_};
    if (row_kernel)
      g.epilogue = {&RowsThenKernel::Apply, &rk};
    else if (bias_)
      g.epilogue = {&RowBias::Apply, &rb};
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
  void ArgBytes(std::vector<int64_t>& in, std::vector<int64_t>& out) const override {
    in = {4 * batch_ * m_ * k_, 4 * batch_ * k_ * n_};
    out = {4 * batch_ * m_ * n_};
  }
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

// (ograd [M, N], data [M, K], weight [N, K]) -> data_grad = ograd W, weight_grad = ograd^T data,
// bias_grad = column sums of ograd.
class FullyConnectedBackwardOp final : public LibraryOp {
 public:
  void ArgBytes(std::vector<int64_t>& in, std::vector<int64_t>& out) const override {
    in = {4 * m_ * n_, 4 * m_ * k_, 4 * n_ * k_};
    out = {4 * m_ * k_, 4 * n_ * k_};
    if (bias_) out.push_back(4 * n_);
  }
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

// The argument bytes of a convolution `s` (float32), or of the deconvolution that is its
// transpose: forward (x, w[, b]) -> y, backward (dy, x, w) -> (dx, dw[, db]), where for the
// deconvolution x is the convolution's output and y its input.
void ConvArgBytes(const Conv2dShape& s, bool transposed, bool bias, bool backward,
                  std::vector<int64_t>& in, std::vector<int64_t>& out) {
  const int64_t conv_in = 4 * s.batch * s.in_channels * s.in_h * s.in_w;
  const int64_t conv_out = 4 * s.batch * s.out_channels * s.out_h() * s.out_w();
  const int64_t w = 4 * s.out_channels * (s.in_channels / s.groups) * s.kernel_h * s.kernel_w;
  const int64_t x = transposed ? conv_out : conv_in, y = transposed ? conv_in : conv_out;
  const int64_t b = 4 * (transposed ? s.in_channels : s.out_channels);
  if (!backward) {
    in = {x, w};
    if (bias) in.push_back(b);
    out = {y};
    return;
  }
  in = {y, x, w};
  out = {x, w};
  if (bias) out.push_back(b);
}

class ConvolutionOp final : public LibraryOp {
 public:
  void ArgBytes(std::vector<int64_t>& in, std::vector<int64_t>& out) const override {
    ConvArgBytes(s_, false, bias_, backward_, in, out);
  }
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
  bool SupportsRowKernel() const override { return !backward_; }
  // Forward: the row kernel's tasks are the output's (image, channel) rows, n * O + o.
  void RunWithRowKernel(const void* const* in, void* const* out, void* ws, ThreadPool* pool,
                        const void* prepacked, KernelFn row_kernel,
                        void* const* row_args) const override {
    if (backward_)
      return LibraryOp::RunWithRowKernel(in, out, ws, pool, prepacked, row_kernel, row_args);
    float* y = static_cast<float*>(out[0]);
    RowBias rb{y, bias_ ? static_cast<const float*>(in[2]) : nullptr, s_.out_channels,
               s_.out_h() * s_.out_w(), false};
    RowsThenKernel rk{bias_ ? &rb : nullptr, row_kernel, row_args, s_.out_channels};
    GemmEpilogue epilogue;
    if (row_kernel)
      epilogue = {&RowsThenKernel::Apply, &rk};
    else if (bias_)
      epilogue = {&RowBias::Apply, &rb};
    ConvForward(s_, static_cast<const float*>(in[0]), static_cast<const float*>(in[1]), y, epilogue,
                ws, pool, GemmIsa::kAuto, static_cast<const float*>(prepacked));
  }
  void Run(const void* const* in, void* const* out, void* ws, ThreadPool* pool,
           const void* prepacked) const override {
    const int64_t pixels = s_.out_h() * s_.out_w();
    if (!backward_) return RunWithRowKernel(in, out, ws, pool, prepacked, nullptr, nullptr);
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
  void ArgBytes(std::vector<int64_t>& in, std::vector<int64_t>& out) const override {
    ConvArgBytes(s_, true, bias_, backward_, in, out);
  }
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

// BatchNorm in training (batch statistics, moving statistics updated in place in inputs 3 and 4)
// and its gradient, over any axis, as the reference kernels compute them (sums in double), one
// task per channel: the reference's own algorithm in float32 storage, run on the thread pool.
struct NormView {
  int64_t outer = 1, channels = 1, inner = 1;
};

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
  void ArgBytes(std::vector<int64_t>& in, std::vector<int64_t>& out) const override {
    const int64_t data = 4 * v_.outer * v_.channels * v_.inner, c = 4 * v_.channels;
    in = {data, c, c, c, c};
    out = {data, c, c};
  }
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
  void ArgBytes(std::vector<int64_t>& in, std::vector<int64_t>& out) const override {
    const int64_t data = 4 * v_.outer * v_.channels * v_.inner, c = 4 * v_.channels;
    in = {data, data, c, c, c};
    out = {data, c, c};
  }
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

// LSTM, GRU and tanh RNN forward (kiln/runtime/rnn.h): its scratch is what RnnWorkspaceBytes
// says for the plan's thread count; Run hands over what the plan reserved, and rnn.cpp
// allocates whatever that falls short of (a run on a larger pool passes no workspace).
class RnnOp final : public LibraryOp {
 public:
  explicit RnnOp(const RnnShape& s) : s_(s) {}
  void ArgBytes(std::vector<int64_t>& in, std::vector<int64_t>& out) const override {
    RnnArgBytes(s_, in, out);
  }
  int64_t WorkspaceBytes(int threads) const override {
    workspace_ = RnnWorkspaceBytes(s_, threads);
    return workspace_;
  }
  void Run(const void* const* in, void* const* out, void* ws, ThreadPool* pool,
           const void*) const override {
    RnnForward(s_, in, out, ws, ws ? workspace_ : 0, pool);
  }

 private:
  RnnShape s_;
  mutable int64_t workspace_ = 0;  // what the plan reserved (WorkspaceBytes)
};

// Checks the numbers of a description; the message names the kind and the problem.
class DescReader {
 public:
  explicit DescReader(const LibraryOpDesc& d) : d_(d) {}
  void Expect(size_t ints, size_t reals) const {
    if (d_.ints.size() != ints || d_.reals.size() != reals)
      Fail(StrCat("has ", d_.ints.size(), " integers and ", d_.reals.size(), " reals; expected ",
                  ints, " and ", reals));
  }
  int64_t Size(size_t i) const {
    if (d_.ints[i] < 0 || d_.ints[i] > (int64_t(1) << 40))
      Fail(StrCat("integer ", i, " is ", d_.ints[i], ", not a size"));
    return d_.ints[i];
  }
  bool Flag(size_t i) const {
    if (d_.ints[i] != 0 && d_.ints[i] != 1)
      Fail(StrCat("integer ", i, " is ", d_.ints[i], ", not a flag (0 or 1)"));
    return d_.ints[i] == 1;
  }
  double Real(size_t i) const {
    if (!std::isfinite(d_.reals[i])) Fail(StrCat("real ", i, " is not finite"));
    return d_.reals[i];
  }
  Conv2dShape Conv() const {
    for (size_t i = 0; i < 16; ++i)
      if (d_.ints[i] < -1 || d_.ints[i] > (int64_t(1) << 40))
        Fail(StrCat("integer ", i, " is ", d_.ints[i], ", not a convolution size"));
    Conv2dShape s = ConvShapeFromInts(d_.ints.data());
    if (std::string problem = s.Problem(); !problem.empty()) Fail(problem);
    return s;
  }
  [[noreturn]] void Fail(const std::string& what) const {
    throw RuntimeError(StrCat("library op ", LibraryOpKindName(d_.kind), ": ", what));
  }

 private:
  const LibraryOpDesc& d_;
};

}  // namespace

const char* LibraryOpKindName(LibraryOpKind kind) {
  switch (kind) {
    case LibraryOpKind::kFullyConnected:
      return "FullyConnected";
    case LibraryOpKind::kFullyConnectedBackward:
      return "_backward_FullyConnected";
    case LibraryOpKind::kMatMul:
      return "MatMul";
    case LibraryOpKind::kConvolution:
      return "Convolution";
    case LibraryOpKind::kConvolutionBackward:
      return "_backward_Convolution";
    case LibraryOpKind::kDeconvolution:
      return "Deconvolution";
    case LibraryOpKind::kDeconvolutionBackward:
      return "_backward_Deconvolution";
    case LibraryOpKind::kBatchNormTrain:
      return "BatchNorm";
    case LibraryOpKind::kBatchNormBackward:
      return "_backward_BatchNorm";
    case LibraryOpKind::kRnn:
      return "RNN";
  }
  return "unknown";
}

size_t LibraryOp::num_inputs() const {
  std::vector<int64_t> in, out;
  ArgBytes(in, out);
  return in.size();
}

size_t LibraryOp::num_outputs() const {
  std::vector<int64_t> in, out;
  ArgBytes(in, out);
  return out.size();
}

std::vector<int64_t> ConvShapeInts(const Conv2dShape& s) {
  return {s.batch,     s.in_channels, s.in_h,       s.in_w,  s.out_channels, s.kernel_h,
          s.kernel_w,  s.stride_h,    s.stride_w,   s.pad_h, s.pad_w,        s.pad_h_end,
          s.pad_w_end, s.dilation_h,  s.dilation_w, s.groups};
}

Conv2dShape ConvShapeFromInts(const int64_t* v) {
  Conv2dShape s;
  s.batch = v[0], s.in_channels = v[1], s.in_h = v[2], s.in_w = v[3];
  s.out_channels = v[4], s.kernel_h = v[5], s.kernel_w = v[6];
  s.stride_h = v[7], s.stride_w = v[8], s.pad_h = v[9], s.pad_w = v[10];
  s.pad_h_end = v[11], s.pad_w_end = v[12], s.dilation_h = v[13], s.dilation_w = v[14];
  s.groups = v[15];
  return s;
}

std::unique_ptr<LibraryOp> MakeLibraryOp(const LibraryOpDesc& d) {
  DescReader r(d);
  // Every product of the sizes (buffer bytes included) stays far from overflowing int64.
  double product = 1;
  for (int64_t v : d.ints) product *= double(std::max<int64_t>(1, v));
  if (product > double(int64_t(1) << 56)) r.Fail("sizes too large");
  switch (d.kind) {
    case LibraryOpKind::kFullyConnected:
      r.Expect(4, 0);
      return std::make_unique<FullyConnectedOp>(r.Size(0), r.Size(1), r.Size(2), r.Flag(3));
    case LibraryOpKind::kFullyConnectedBackward:
      r.Expect(5, 0);
      return std::make_unique<FullyConnectedBackwardOp>(r.Size(0), r.Size(1), r.Size(2), r.Flag(3),
                                                        r.Flag(4));
    case LibraryOpKind::kMatMul:
      r.Expect(6, 0);
      return std::make_unique<MatMulOp>(r.Size(0), r.Size(1), r.Size(2), r.Size(3), r.Flag(4),
                                        r.Flag(5));
    case LibraryOpKind::kConvolution:
    case LibraryOpKind::kConvolutionBackward:
    case LibraryOpKind::kDeconvolution:
    case LibraryOpKind::kDeconvolutionBackward: {
      r.Expect(18, 0);
      const bool backward = d.kind == LibraryOpKind::kConvolutionBackward ||
                            d.kind == LibraryOpKind::kDeconvolutionBackward;
      if (d.kind == LibraryOpKind::kConvolution || d.kind == LibraryOpKind::kConvolutionBackward)
        return std::make_unique<ConvolutionOp>(r.Conv(), r.Flag(16), backward, r.Flag(17));
      return std::make_unique<DeconvolutionOp>(r.Conv(), r.Flag(16), backward, r.Flag(17));
    }
    case LibraryOpKind::kBatchNormTrain:
    case LibraryOpKind::kBatchNormBackward: {
      const bool backward = d.kind == LibraryOpKind::kBatchNormBackward;
      r.Expect(backward ? 5 : 4, 2);
      NormView v{r.Size(0), r.Size(1), r.Size(2)};
      NormAttrs a{r.Real(0), r.Real(1), r.Flag(3), false};
      if (backward) return std::make_unique<BatchNormBackwardOp>(v, a, r.Flag(4));
      return std::make_unique<BatchNormTrainOp>(v, a);
    }
    case LibraryOpKind::kRnn: {
      r.Expect(10, 1);
      RnnShape s;
      s.cell = RnnCell(d.ints[0]);
      s.direction = RnnDirection(d.ints[1]);
      s.layout = d.ints[2];
      s.seq = r.Size(3), s.batch = r.Size(4), s.input = r.Size(5), s.hidden = r.Size(6);
      s.has_clip = r.Flag(7), s.linear_before_reset = r.Flag(8), s.input_forget = r.Flag(9);
      const double clip = r.Real(0);
      if (clip < 0 || clip > 3e38) r.Fail(StrCat("clip ", clip, " is not in [0, 3e38]"));
      s.clip = float(clip);
      if (std::string problem = s.Problem(); !problem.empty()) r.Fail(problem);
      return std::make_unique<RnnOp>(s);
    }
  }
  r.Fail(StrCat("kind ", uint32_t(d.kind), " does not exist"));
}

void LibraryOp::RunWithRowKernel(const void* const* in, void* const* out, void* workspace,
                                 ThreadPool* pool, const void* prepacked, KernelFn row_kernel,
                                 void* const* row_args) const {
  KILN_INTERNAL_CHECK(!row_kernel, "this library op runs no kernel on its rows");
  (void)row_args;
  Run(in, out, workspace, pool, prepacked);
}

void LibraryCall(void* const* args, int64_t, int64_t) {
  auto* state = static_cast<LibraryRunState*>(args[0]);
  const auto* node = static_cast<const LibraryCallNode*>(args[1]);
  const LibraryOp& op = *node->op;
  const void* prepacked = nullptr;
  if (state->shared) {
    auto it = state->shared->find(node);
    if (it != state->shared->end()) prepacked = it->second.get();
  }
  if (!prepacked && state->frozen) {
    auto it = state->prepacked.find(node);
    if (it == state->prepacked.end())
      it = state->prepacked.emplace(node, op.Prepack(args + 2, state->pool)).first;
    prepacked = it->second.get();
  }
  // A run on a larger pool than the plan was made for: the library allocates its own scratch.
  const size_t ws_arg = 2 + op.num_inputs() + op.num_outputs();
  void* workspace = args[ws_arg];
  if (state->pool && state->pool->num_threads() > node->threads) workspace = nullptr;
  if (node->row_kernel)
    op.RunWithRowKernel(args + 2, args + 2 + op.num_inputs(), workspace, state->pool, prepacked,
                        node->row_kernel, args + ws_arg + 1);
  else
    op.Run(args + 2, args + 2 + op.num_inputs(), workspace, state->pool, prepacked);
}

}  // namespace kiln
