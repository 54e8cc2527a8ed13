// rnn.cpp - float32 LSTM, GRU and tanh RNN forward passes on kiln's GEMM (kiln/runtime/rnn.h).
//
// Per run: one GEMM projects the inputs of every step for both directions (the biases added in
// its epilogue); then, per direction, the recurrent weights are packed once and every step is
// one GEMM (two for a GRU without linear_before_reset, whose candidate multiplies r.h, known
// only after the r gate) followed by the gates, row by row of the batch.
//
// The gates use the float32 Exp below (Cephes' expf: range reduction by ln 2 in two parts, a
// degree-7 polynomial, the exponent placed by integer arithmetic), written without branches or
// library calls so that the loops vectorise. Sigmoid is 1 / (1 + Exp(-x)); tanh is
// (1 - e) / (1 + e) with e = Exp(-2|x|), the sign restored, and x itself for |x| < 2^-12 (1 - e
// cancels for small |x|: relative accuracy is lost there, absolute accuracy is not). Against
// libm in double over every 97th float32: Exp within 8.1e-8 relative, Sigmoid and Tanh within
// 9e-8 absolute; NaN in, NaN out. The layers against the reference kernel:
// tests/unit/rnn_kernel_test.cpp.
#include "kiln/runtime/rnn.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

#include "kiln/runtime/error.h"
#include "kiln/runtime/gemm.h"

namespace kiln {

namespace {

// e^x in float32 for x in [-87, 88] (clamped outside; e^-87 is still a normal float).
inline float Exp(float x) {
  // x clamped keeping a NaN (std::max(NaN, lo) is NaN), so that NaN comes out; and clamped with
  // NaN replaced (std::max(lo, NaN) is lo), so that the integer conversion below is defined.
  const float xs = std::min(88.0f, std::max(-87.0f, x));
  x = std::min(std::max(x, -87.0f), 88.0f);
  // n = round(x / ln 2) by the 1.5 * 2^23 trick (exact in round-to-nearest, no libm call).
  constexpr float kMagic = 12582912.0f;
  const float n = (xs * 1.44269504088896341f + kMagic) - kMagic;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n: n in [-126, 127], so the biased exponent is a normal one.
  const float scale = std::bit_cast<float>((int32_t(n) + 127) << 23);
  return p * scale;
}

inline float Sigmoid(float x) {
  return 1.0f / (1.0f + Exp(-x));
}

inline float Tanh(float x) {
  const float a = std::abs(x);
  const float e = Exp(-2.0f * a);
  const float t = (1.0f - e) / (1.0f + e);
  const float s = x < 0 ? -t : t;
  return a < 0x1p-12f ? x : s;
}

// Clamps to [lo, hi]; NaN stays NaN (so does the reference's std::clamp).
inline float Clamp(float v, float lo, float hi) {
  return std::min(std::max(v, lo), hi);
}

// The gate loops are compiled for AVX2+FMA (x86-64-v3) as well as the baseline, the better
// chosen when the library loads (GCC's target_clones: an ifunc). An x86-64-v4 clone as well made
// the gates about 1.4x faster but a 32-step LSTM (N=16, H=256) only about 3% faster (perf's
// sample shares; GEMM dominates), for 20 KB more code in libkiln_rt: left out.
#define KILN_RNN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))

// One batch row of each cell's gates. xg: the step's input projection with biases (gate-major,
// G*H), hg: h R' (G*H, or 2*H for the two-product GRU), c and h updated in place.
template <bool kInputForget>
__attribute__((always_inline)) inline void LstmRowBody(const float* __restrict xg,
                                                       const float* __restrict hg,
                                                       const float* __restrict p,
                                                       float* __restrict c, float* __restrict h,
                                                       int64_t H, float lo, float hi) {
  for (int64_t k = 0; k < H; ++k) {
    const float cp = c[k];
    const float ig = Sigmoid(Clamp(xg[k] + hg[k] + p[k] * cp, lo, hi));
    float fg = Sigmoid(Clamp(xg[2 * H + k] + hg[2 * H + k] + p[2 * H + k] * cp, lo, hi));
    if (kInputForget) fg = 1.0f - ig;
    const float cg = Tanh(Clamp(xg[3 * H + k] + hg[3 * H + k], lo, hi));
    const float cn = fg * cp + ig * cg;
    const float og = Sigmoid(Clamp(xg[H + k] + hg[H + k] + p[H + k] * cn, lo, hi));
    c[k] = cn;
    h[k] = og * Tanh(cn);
  }
}

KILN_RNN_CLONES void LstmRow(const float* xg, const float* hg, const float* p, float* c, float* h,
                             int64_t H, float lo, float hi, bool input_forget) {
  if (input_forget)
    LstmRowBody<true>(xg, hg, p, c, h, H, lo, hi);
  else
    LstmRowBody<false>(xg, hg, p, c, h, H, lo, hi);
}

KILN_RNN_CLONES void TanhRow(const float* __restrict xg, const float* __restrict hg,
                             float* __restrict h, int64_t H, float lo, float hi) {
  for (int64_t k = 0; k < H; ++k) h[k] = Tanh(Clamp(xg[k] + hg[k], lo, hi));
}

// linear_before_reset: h~ = tanh(x Wh' + Wbh + r.(h Rh' + Rbh)); rbh is Rbh.
KILN_RNN_CLONES void GruLinearRow(const float* __restrict xg, const float* __restrict hg,
                                  const float* __restrict rbh, float* __restrict h, int64_t H,
                                  float lo, float hi) {
  for (int64_t k = 0; k < H; ++k) {
    const float z = Sigmoid(Clamp(xg[k] + hg[k], lo, hi));
    const float r = Sigmoid(Clamp(xg[H + k] + hg[H + k], lo, hi));
    const float hh = Tanh(Clamp(xg[2 * H + k] + r * (hg[2 * H + k] + rbh[k]), lo, hi));
    h[k] = (1.0f - z) * hh + z * h[k];
  }
}

// Without linear_before_reset, first z (kept in hg's z row) and r.h (into rh)...
KILN_RNN_CLONES void GruResetRow(const float* __restrict xg, float* __restrict hg,
                                 const float* __restrict h, float* __restrict rh, int64_t H,
                                 float lo, float hi) {
  for (int64_t k = 0; k < H; ++k) {
    const float z = Sigmoid(Clamp(xg[k] + hg[k], lo, hi));
    const float r = Sigmoid(Clamp(xg[H + k] + hg[H + k], lo, hi));
    hg[k] = z;
    rh[k] = r * h[k];
  }
}

// ... then, with hg's h row = (r.h) Rh': h~ = tanh(x Wh' + Wbh + Rbh + (r.h) Rh').
KILN_RNN_CLONES void GruUpdateRow(const float* __restrict xg, const float* __restrict hg,
                                  float* __restrict h, int64_t H, float lo, float hi) {
  for (int64_t k = 0; k < H; ++k) {
    const float z = hg[k];
    const float hh = Tanh(Clamp(xg[2 * H + k] + hg[2 * H + k], lo, hi));
    h[k] = (1.0f - z) * hh + z * h[k];
  }
}

int64_t Floats16(int64_t floats) {
  return (floats + 15) / 16 * 16;
}

bool TwoProductGru(const RnnShape& s) {
  return s.cell == RnnCell::kGru && !s.linear_before_reset;
}

// Where each scratch array lies, in floats from the workspace's start; `gemm` the GEMMs' scratch.
struct Layout {
  int64_t xw = 0, bias = 0, packed = 0, packed2 = 0, hr = 0, h = 0, c = 0, rh = 0, gemm = 0;
  explicit Layout(const RnnShape& s) {
    const int64_t gh = s.gates() * s.hidden, n = s.batch, hid = s.hidden;
    int64_t at = 0;
    auto take = [&](int64_t floats) {
      int64_t here = at;
      at += Floats16(floats);
      return here;
    };
    xw = take(s.seq * n * s.directions() * gh);
    bias = take(s.directions() * gh);
    if (TwoProductGru(s)) {
      packed = take(hid > 0 ? PackedBFloats(2 * hid, hid) : 0);
      packed2 = take(hid > 0 ? PackedBFloats(hid, hid) : 0);
    } else {
      packed = take(hid > 0 ? PackedBFloats(gh, hid) : 0);
    }
    hr = take(n * gh);
    h = take(n * hid);
    c = take(s.cell == RnnCell::kLstm ? n * hid : 0);
    rh = take(TwoProductGru(s) ? n * hid : 0);
    gemm = at;
  }
};

// The input projection of every step and direction: XW = x W' over [S*N, I] x [D*G*H, I]'.
GemmArgs ProjectionArgs(const RnnShape& s) {
  GemmArgs g;
  g.m = s.seq * s.batch, g.n = s.directions() * s.gates() * s.hidden, g.k = s.input;
  g.lda = s.input, g.ldb = s.input, g.ldc = g.n;
  g.b_layout = BLayout::kNK;
  return g;
}

// Scratch of a step's product h R' on packed weights: at most one A block per thread (the
// blocked path: at most kGemmMC rows, a multiple of kGemmMR, times K floats, padded to 16).
// RnnForward checks this bound against the GEMM's own count and allocates if it falls short.
int64_t StepGemmBytes(const RnnShape& s, int threads) {
  const int64_t rows = std::min(kGemmMC, (s.batch + kGemmMR - 1) / kGemmMR * kGemmMR);
  return int64_t(std::max(1, threads)) * Floats16(rows * s.hidden) * 4;
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

std::unique_ptr<void, FreeDeleter> AllocAligned(int64_t bytes) {
  void* p = std::aligned_alloc(64, size_t((std::max<int64_t>(bytes, 64) + 63) / 64 * 64));
  if (!p) throw RuntimeError(StrCat("rnn: out of memory allocating ", bytes, " bytes of scratch"));
  return std::unique_ptr<void, FreeDeleter>(p);
}

// Adds bias[j] to columns j of rows [r0, r1) of the projection.
struct AddBias {
  float* c = nullptr;
  const float* bias = nullptr;
  int64_t cols = 0;
  static void Apply(void* ctx, int64_t, int64_t r0, int64_t r1) {
    auto* a = static_cast<AddBias*>(ctx);
    for (int64_t r = r0; r < r1; ++r) {
      float* __restrict row = a->c + r * a->cols;
      const float* __restrict b = a->bias;
      for (int64_t j = 0; j < a->cols; ++j) row[j] += b[j];
    }
  }
};

}  // namespace

std::string RnnShape::Problem() const {
  if (cell != RnnCell::kTanh && cell != RnnCell::kLstm && cell != RnnCell::kGru)
    return StrCat("cell ", int64_t(cell), " is not 0 (tanh), 1 (LSTM) or 2 (GRU)");
  if (direction != RnnDirection::kForward && direction != RnnDirection::kReverse &&
      direction != RnnDirection::kBidirectional)
    return StrCat("direction ", int64_t(direction),
                  " is not 0 (forward), 1 (reverse) or 2 (bidirectional)");
  if (layout != 0 && layout != 1) return StrCat("layout ", layout, " is not 0 or 1");
  constexpr int64_t kMaxSize = int64_t(1) << 40;
  for (auto [name, v] : {std::pair{"sequence length", seq}, std::pair{"batch", batch},
                         std::pair{"input size", input}, std::pair{"hidden size", hidden}})
    if (v < 0 || v > kMaxSize) return StrCat(name, " ", v, " is not a size");
  if (!(clip >= 0) || !std::isfinite(clip)) return StrCat("clip ", clip, " is not finite and >= 0");
  if (linear_before_reset && cell != RnnCell::kGru) return "linear_before_reset on a non-GRU cell";
  if (input_forget && cell != RnnCell::kLstm) return "input_forget on a non-LSTM cell";
  // Every buffer's bytes (and the scratch's) far below int64's range: sizes come from files.
  const double d = double(directions()), g = double(gates()), s = double(seq), n = double(batch),
               i = double(input), h = double(hidden);
  const double largest = 4 * std::max({s * n * i, d * g * h * i, d * g * h * (h + 32),
                                       s * d * n * h, s * n * d * g * h, n * g * h});
  if (largest > double(int64_t(1) << 50)) return "sizes too large (buffers beyond 2^50 bytes)";
  return "";
}

void RnnArgBytes(const RnnShape& s, std::vector<int64_t>& in, std::vector<int64_t>& out) {
  const int64_t d = s.directions(), g = s.gates(), h = s.hidden;
  const int64_t state = 4 * d * s.batch * h;
  in = {4 * s.seq * s.batch * s.input, 4 * d * g * h * s.input, 4 * d * g * h * h,
        4 * d * 2 * g * h, state};
  out = {4 * s.seq * d * s.batch * h, state};
  if (s.cell == RnnCell::kLstm) {
    in.push_back(state);
    in.push_back(4 * d * 3 * h);
    out.push_back(state);
  }
}

int64_t RnnWorkspaceBytes(const RnnShape& s, int threads) {
  const int64_t gemm =
      std::max(GemmWorkspaceBytes(ProjectionArgs(s), threads), StepGemmBytes(s, threads));
  return Layout(s).gemm * 4 + gemm;
}

void RnnForward(const RnnShape& s, const void* const* in, void* const* out, void* workspace,
                int64_t workspace_bytes, ThreadPool* pool) {
  const int64_t S = s.seq, N = s.batch, H = s.hidden, D = s.directions();
  const int64_t G = s.gates(), GH = G * H;
  const bool lstm = s.cell == RnnCell::kLstm, two_products = TwoProductGru(s);
  const auto* x = static_cast<const float*>(in[0]);
  const auto* W = static_cast<const float*>(in[1]);
  const auto* R = static_cast<const float*>(in[2]);
  const auto* B = static_cast<const float*>(in[3]);
  const auto* h0 = static_cast<const float*>(in[4]);
  const auto* c0 = lstm ? static_cast<const float*>(in[5]) : nullptr;
  const auto* P = lstm ? static_cast<const float*>(in[6]) : nullptr;
  auto* Y = static_cast<float*>(out[0]);
  auto* Yh = static_cast<float*>(out[1]);
  auto* Yc = lstm ? static_cast<float*>(out[2]) : nullptr;
  // Offset of (d, n, 0) in a state tensor: (D, N, H), or (N, D, H) with layout 1.
  auto state_at = [&](int64_t d, int64_t n) {
    return s.layout ? (n * D + d) * H : (d * N + n) * H;
  };
  if (N == 0 || H == 0) return;  // every output is empty
  if (S == 0) {                  // no step: the final states are the initial ones
    std::memcpy(Yh, h0, size_t(D * N * H) * 4);
    if (lstm) std::memcpy(Yc, c0, size_t(D * N * H) * 4);
    return;
  }

  const int threads = pool ? pool->num_threads() : 1;
  const Layout lay(s);
  std::unique_ptr<void, FreeDeleter> owned;
  if (!workspace || workspace_bytes < lay.gemm * 4) {
    workspace_bytes = RnnWorkspaceBytes(s, threads);
    owned = AllocAligned(workspace_bytes);
    workspace = owned.get();
  }
  float* ws = static_cast<float*>(workspace);
  float* xw = ws + lay.xw;
  float* bias = ws + lay.bias;
  float* hr = ws + lay.hr;
  float* h = ws + lay.h;
  float* c = ws + lay.c;
  float* rh = ws + lay.rh;
  void* gemm_ws = ws + lay.gemm;
  int64_t gemm_bytes = workspace_bytes - lay.gemm * 4;
  // Gets `bytes` of GEMM scratch: the workspace's, or (should the bound fall short) allocated.
  std::unique_ptr<void, FreeDeleter> gemm_owned;
  auto gemm_scratch = [&](int64_t bytes) {
    if (bytes > gemm_bytes) {
      gemm_owned = AllocAligned(bytes);
      gemm_ws = gemm_owned.get(), gemm_bytes = bytes;
    }
    return gemm_ws;
  };

  // 1. XW = x W' + the biases that do not multiply a gate: Wb + Rb, except a linear-before-reset
  // GRU's Rbh, which the reset gate multiplies.
  for (int64_t d = 0; d < D; ++d)
    for (int64_t j = 0; j < GH; ++j) {
      const float* wb = B + d * 2 * GH;
      const bool keep_rb = s.cell == RnnCell::kGru && s.linear_before_reset && j >= 2 * H;
      bias[d * GH + j] = keep_rb ? wb[j] : wb[j] + wb[GH + j];
    }
  {
    GemmArgs g = ProjectionArgs(s);
    g.a = x, g.b = W, g.c = xw;
    AddBias add{xw, bias, g.n};
    g.epilogue = {&AddBias::Apply, &add};
    g.workspace = gemm_scratch(GemmWorkspaceBytes(g, threads));
    Gemm(g, pool);
  }

  // 2. The recurrence, per direction.
  for (int64_t d = 0; d < D; ++d) {
    const bool reverse = s.direction == RnnDirection::kReverse || d == 1;
    const float* Rd = R + d * GH * H;
    const float* rbh = B + d * 2 * GH + GH + 2 * H;  // GRU's Rbh
    const float* Pd = lstm ? P + d * 3 * H : nullptr;
    // h R' on R packed once: for the two-product GRU, R's z and r rows, then its h rows apart.
    PackedB packed =
        PackBInto(Rd, H, BLayout::kNK, two_products ? 2 * H : GH, H, ws + lay.packed, pool);
    PackedB packed_h;
    if (two_products)
      packed_h = PackBInto(Rd + 2 * H * H, H, BLayout::kNK, H, H, ws + lay.packed2, pool);
    GemmArgs step;
    step.m = N, step.n = packed.n(), step.k = H;
    step.a = h, step.lda = H;
    step.packed_b = &packed;
    step.c = hr, step.ldc = GH;
    step.workspace = gemm_scratch(GemmWorkspaceBytes(step, threads));
    GemmArgs reset = step;  // (r.h) Rh' into hr's h rows
    if (two_products) {
      reset.n = H, reset.a = rh, reset.packed_b = &packed_h, reset.c = hr + 2 * H;
      reset.workspace = gemm_scratch(GemmWorkspaceBytes(reset, threads));
      step.workspace = reset.workspace;  // the larger of the two, reallocated or not
    }
    for (int64_t n = 0; n < N; ++n) {
      std::memcpy(h + n * H, h0 + state_at(d, n), size_t(H) * 4);
      if (lstm) std::memcpy(c + n * H, c0 + state_at(d, n), size_t(H) * 4);
    }
    const float inf = std::numeric_limits<float>::infinity();
    const float lo = s.has_clip ? -s.clip : -inf, hi = s.has_clip ? s.clip : inf;
    for (int64_t i = 0; i < S; ++i) {
      const int64_t t = reverse ? S - 1 - i : i;
      Gemm(step, pool);
      auto xg = [&](int64_t n) {
        return xw + (s.layout ? n * S + t : t * N + n) * D * GH + d * GH;
      };
      for (int64_t n = 0; n < N; ++n) {
        float* hn = h + n * H;
        const float* hg = hr + n * GH;
        switch (s.cell) {
          case RnnCell::kLstm:
            LstmRow(xg(n), hg, Pd, c + n * H, hn, H, lo, hi, s.input_forget);
            break;
          case RnnCell::kTanh:
            TanhRow(xg(n), hg, hn, H, lo, hi);
            break;
          case RnnCell::kGru:
            if (two_products)
              GruResetRow(xg(n), hr + n * GH, hn, rh + n * H, H, lo, hi);
            else
              GruLinearRow(xg(n), hg, rbh, hn, H, lo, hi);
            break;
        }
      }
      if (two_products) {
        Gemm(reset, pool);
        for (int64_t n = 0; n < N; ++n) GruUpdateRow(xg(n), hr + n * GH, h + n * H, H, lo, hi);
      }
      for (int64_t n = 0; n < N; ++n) {
        const int64_t y = s.layout ? ((n * S + t) * D + d) * H : ((t * D + d) * N + n) * H;
        std::memcpy(Y + y, h + n * H, size_t(H) * 4);
      }
    }
    for (int64_t n = 0; n < N; ++n) {
      std::memcpy(Yh + state_at(d, n), h + n * H, size_t(H) * 4);
      if (lstm) std::memcpy(Yc + state_at(d, n), c + n * H, size_t(H) * 4);
    }
  }
}

}  // namespace kiln
