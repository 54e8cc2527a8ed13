// gemm_prototype: evidence for issue 5's GEMM strategy. A packed, cache-blocked float32 GEMM
// with an AVX-512 register-tile micro-kernel written in C++ (the "C++ template compiled and
// specialised" option of DESIGN.md), checked against a double-precision loop and timed against
// OpenBLAS's cblas_sgemm in the same run, on the shapes.
//
//   OPENBLAS_NUM_THREADS=1 build/bench/kiln_gemm_prototype [--min-ms T]
//
// C[M,N] = A[M,K] * B[N,K]^T, row-major (FullyConnected's y = x W^T). Blocking (BLIS's loop
// order): NC columns of B per outer block, KC of K per packed panel, MC rows of A; the
// micro-kernel computes an MR x NR = 14 x 32 tile of C in 28 zmm accumulators, reading a packed
// A panel (MR values per k) and a packed B panel (NR values per k). Edges are handled by packing
// zeros and writing the valid part of the tile only. An epilogue (bias + relu) is applied when
// the tile is stored, as a fused FullyConnected would.
#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr int kMR = 14, kNR = 32;
constexpr int kKC = 384, kMC = 168, kNC = 3072;

struct Epilogue {
  const float* bias = nullptr;  // per column (output channel), or null
  bool relu = false;
};

// Packs rows [i0, i0+mc) x cols [k0, k0+kc) of A into panels of kMR rows, k-major within a panel
// (kMR consecutive values per k), padding missing rows with zeros.
void PackA(const float* a, int lda, int i0, int mc, int k0, int kc, float* out) {
  for (int ip = 0; ip < mc; ip += kMR) {
    int rows = std::min(kMR, mc - ip);
    for (int k = 0; k < kc; ++k) {
      const float* src = a + size_t(i0 + ip) * lda + k0 + k;
      for (int r = 0; r < rows; ++r) out[r] = src[size_t(r) * lda];
      for (int r = rows; r < kMR; ++r) out[r] = 0;
      out += kMR;
    }
  }
}

// Packs B^T's block: rows [j0, j0+nc) of B (columns of C) x [k0, k0+kc) into panels of kNR
// columns, kNR consecutive values per k.
void PackB(const float* b, int ldb, int j0, int nc, int k0, int kc, float* out) {
  for (int jp = 0; jp < nc; jp += kNR) {
    int cols = std::min(kNR, nc - jp);
    for (int k = 0; k < kc; ++k) {
      for (int c = 0; c < cols; ++c) out[c] = b[size_t(j0 + jp + c) * ldb + k0 + k];
      for (int c = cols; c < kNR; ++c) out[c] = 0;
      out += kNR;
    }
  }
}

// acc[R x NR] (+)= Apanel * Bpanel over kc (R <= MR valid rows, so a short edge panel or a
// batch-1 product does no wasted FMAs); then the C tile = acc (+ C if accumulate), with the
// epilogue on the last K block.
template <int R, bool kHalf>
void MicroKernel(int kc, const float* ap, const float* bp, float* c, int ldc, int cols,
                 bool accumulate, const Epilogue* ep, int col0) {
  // Few rows leave few independent FMA chains, which the FMA latency (4 cycles) would bound:
  // U partial sums over interleaved k keep the pipes busy; they are added at the end.
  constexpr int U = R >= 4 ? 1 : (R == 1 ? 4 : 2);
  constexpr int H = kHalf ? 1 : 2;  // a panel with at most 16 valid columns needs one vector
  __m512 acc[U][R][2];
  for (int u = 0; u < U; ++u)
    for (int r = 0; r < R; ++r) acc[u][r][0] = acc[u][r][1] = _mm512_setzero_ps();
  int k = 0;
  for (; k + U <= kc; k += U) {
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) {
      __m512 b[2];
      for (int h = 0; h < H; ++h) b[h] = _mm512_loadu_ps(bp + 16 * h);
#pragma GCC unroll 14
      for (int r = 0; r < R; ++r) {
        __m512 a = _mm512_set1_ps(ap[r]);
        for (int h = 0; h < H; ++h) acc[u][r][h] = _mm512_fmadd_ps(a, b[h], acc[u][r][h]);
      }
      ap += kMR;
      bp += kNR;
    }
  }
  for (; k < kc; ++k) {
    __m512 b[2];
    for (int h = 0; h < H; ++h) b[h] = _mm512_loadu_ps(bp + 16 * h);
    for (int r = 0; r < R; ++r) {
      __m512 a = _mm512_set1_ps(ap[r]);
      for (int h = 0; h < H; ++h) acc[0][r][h] = _mm512_fmadd_ps(a, b[h], acc[0][r][h]);
    }
    ap += kMR;
    bp += kNR;
  }
  for (int u = 1; u < U; ++u)
    for (int r = 0; r < R; ++r)
      for (int h = 0; h < H; ++h) acc[0][r][h] = _mm512_add_ps(acc[0][r][h], acc[u][r][h]);
  __mmask16 m0 = cols >= 16 ? 0xFFFF : __mmask16((1u << cols) - 1);
  __mmask16 m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : __mmask16((1u << (cols - 16)) - 1);
  __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
  if (ep && ep->bias) {
    bias0 = _mm512_maskz_loadu_ps(m0, ep->bias + col0);
    bias1 = _mm512_maskz_loadu_ps(m1, ep->bias + col0 + 16);
  }
  for (int r = 0; r < R; ++r) {
    float* row = c + size_t(r) * ldc;
    __m512 v0 = acc[0][r][0], v1 = kHalf ? _mm512_setzero_ps() : acc[0][r][1];
    if (accumulate) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
    }
    if (ep) {
      v0 = _mm512_add_ps(v0, bias0);
      v1 = _mm512_add_ps(v1, bias1);
      if (ep->relu) {
        v0 = _mm512_max_ps(v0, _mm512_setzero_ps());
        v1 = _mm512_max_ps(v1, _mm512_setzero_ps());
      }
    }
    _mm512_mask_storeu_ps(row, m0, v0);
    _mm512_mask_storeu_ps(row + 16, m1, v1);
  }
}

using Kernel = void (*)(int, const float*, const float*, float*, int, int, bool, const Epilogue*,
                        int);
template <bool kHalf, int... R>
constexpr std::array<Kernel, sizeof...(R)> MakeKernels(std::integer_sequence<int, R...>) {
  return {&MicroKernel<R + 1, kHalf>...};
}
// [half][rows - 1]
constexpr std::array<std::array<Kernel, kMR>, 2> kKernels = {
    MakeKernels<false>(std::make_integer_sequence<int, kMR>()),
    MakeKernels<true>(std::make_integer_sequence<int, kMR>())};

struct Workspace {
  std::vector<float> a;
  Workspace() : a(size_t(kMC + kMR) * kKC) {}
};

// B packed once for all its K blocks and column panels (weights are constants at inference, and
// packed once per step in training): panel (k0 block, jp) at offset k0 * n_padded + jp * kc.
struct PackedB {
  int n = 0, k = 0, n_padded = 0;
  std::vector<float> data;
};
PackedB PackAllB(const float* b, int n, int k) {
  PackedB p;
  p.n = n, p.k = k, p.n_padded = (n + kNR - 1) / kNR * kNR;
  p.data.resize(size_t(p.n_padded) * k);
  for (int k0 = 0; k0 < k; k0 += kKC) {
    int kc = std::min(kKC, k - k0);
    PackB(b, k, 0, n, k0, kc, p.data.data() + size_t(k0) * p.n_padded);
  }
  return p;
}

void GemmPacked(int m, const float* a, const PackedB& pb, float* c, const Epilogue& ep,
                Workspace& ws) {
  int n = pb.n, k = pb.k;
  for (int k0 = 0; k0 < k; k0 += kKC) {
    int kc = std::min(kKC, k - k0);
    bool last = k0 + kc >= k;
    const float* bblock = pb.data.data() + size_t(k0) * pb.n_padded;
    for (int i0 = 0; i0 < m; i0 += kMC) {
      int mc = std::min(kMC, m - i0);
      PackA(a, k, i0, mc, k0, kc, ws.a.data());
      for (int jp = 0; jp < n; jp += kNR)
        for (int ip = 0; ip < mc; ip += kMR)
          kKernels[n - jp <= 16][size_t(std::min(kMR, mc - ip) - 1)](
              kc, ws.a.data() + size_t(ip) * kc, bblock + size_t(jp) * kc,
              c + size_t(i0 + ip) * n + jp, n, std::min(kNR, n - jp), k0 > 0, last ? &ep : nullptr,
              jp);
    }
  }
}

// C = A B^T for R rows of A as dot products along K, reading B (row-major [N, K]) directly, 8
// rows of B at a time, with no packing. Each of the R x 8 accumulators is a 16-wide partial dot
// product reduced at the end.
template <int R>
void GemvRows(int n, int k, const float* a, const float* b, float* c, const Epilogue& ep) {
  constexpr int kRows = 8;
  __mmask16 tail = __mmask16((1u << (k % 16)) - 1);
  for (int j0 = 0; j0 < n; j0 += kRows) {
    int rows = std::min(kRows, n - j0);
    __m512 acc[R][kRows];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < kRows; ++j) acc[r][j] = _mm512_setzero_ps();
    auto step = [&](int kk, __mmask16 mask) {
      __m512 x[R];
      for (int r = 0; r < R; ++r) x[r] = _mm512_maskz_loadu_ps(mask, a + size_t(r) * k + kk);
      for (int j = 0; j < kRows; ++j) {
        if (j >= rows) break;
        __m512 w = _mm512_maskz_loadu_ps(mask, b + size_t(j0 + j) * k + kk);
        for (int r = 0; r < R; ++r) acc[r][j] = _mm512_fmadd_ps(x[r], w, acc[r][j]);
      }
    };
    int kk = 0;
    for (; kk + 16 <= k; kk += 16) step(kk, 0xFFFF);
    if (kk < k) step(kk, tail);
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < rows; ++j) {
        float v = _mm512_reduce_add_ps(acc[r][j]);
        if (ep.bias) v += ep.bias[j0 + j];
        if (ep.relu) v = std::max(v, 0.0f);
        c[size_t(r) * n + j0 + j] = v;
      }
  }
}

// Few output columns (N <= 16: a classifier's last layer): each A element is used at most 16
// times, so packing costs more than it saves; dot products along K, 4 rows of A at a time.
// Otherwise the packed micro-kernels, whose 1-13-row forms also serve batch 1.
void Gemm(int m, const float* a, const float* b_raw, const PackedB& pb, float* c,
          const Epilogue& ep, Workspace& ws) {
  int n = pb.n, k = pb.k;
  if (n > 16) return GemmPacked(m, a, pb, c, ep, ws);
  for (int r0 = 0; r0 < m; r0 += 4) {
    const float* ar = a + size_t(r0) * k;
    float* cr = c + size_t(r0) * n;
    switch (std::min(4, m - r0)) {
      case 1:
        GemvRows<1>(n, k, ar, b_raw, cr, ep);
        break;
      case 2:
        GemvRows<2>(n, k, ar, b_raw, cr, ep);
        break;
      case 3:
        GemvRows<3>(n, k, ar, b_raw, cr, ep);
        break;
      default:
        GemvRows<4>(n, k, ar, b_raw, cr, ep);
    }
  }
}

double NowMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <class F>
std::pair<double, double> Time(F&& f, double min_ms) {
  f();
  std::vector<double> t;
  double start = NowMs();
  while (t.size() < 5 || (NowMs() - start < min_ms && t.size() < 100000)) {
    double t0 = NowMs();
    f();
    t.push_back(NowMs() - t0);
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t[0]};
}

struct Shape {
  std::string name;
  int m, n, k;
};

}  // namespace

int main(int argc, char** argv) {
  double min_ms = 300;
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--min-ms") && i + 1 < argc) min_ms = std::atof(argv[++i]);
  const char* threads = std::getenv("OPENBLAS_NUM_THREADS");
  std::printf("# OPENBLAS_NUM_THREADS=%s; C = A B^T + bias, relu (both sides); 1 thread\n",
              threads ? threads : "(unset)");
  std::vector<Shape> shapes;
  for (int s : {64, 128, 256, 512, 1024, 2048}) shapes.push_back({"square", s, s, s});
  for (int bsz : {1, 16, 64, 256}) {
    shapes.push_back({"mlp fc1", bsz, 512, 784});
    shapes.push_back({"mlp fc2", bsz, 512, 512});
    shapes.push_back({"mlp fc3", bsz, 10, 512});
  }
  std::printf(
      "| shape | M | N | K | kiln median us | kiln min us | OpenBLAS median us | OpenBLAS min us "
      "| kiln GFLOP/s | OpenBLAS GFLOP/s | OpenBLAS/kiln (min) | packing B us | max rel err |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  Workspace ws;
  for (const Shape& s : shapes) {
    std::vector<float> a(size_t(s.m) * s.k), b(size_t(s.n) * s.k), bias(size_t(s.n));
    std::vector<float> c(size_t(s.m) * s.n), ref(size_t(s.m) * s.n);
    for (float& x : a) x = u(rng);
    for (float& x : b) x = u(rng);
    for (float& x : bias) x = u(rng);
    Epilogue ep{bias.data(), true};
    PackedB pb = PackAllB(b.data(), s.n, s.k);
    auto kiln = Time([&] { Gemm(s.m, a.data(), b.data(), pb, c.data(), ep, ws); }, min_ms);
    auto pack = Time([&] { pb = PackAllB(b.data(), s.n, s.k); }, min_ms / 4);
    // The peer does the same work: sgemm, then bias and relu in one more pass.
    auto blas = Time(
        [&] {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.m, s.n, s.k, 1.0f, a.data(), s.k,
                      b.data(), s.k, 0.0f, ref.data(), s.n);
          for (int i = 0; i < s.m; ++i)
            for (int j = 0; j < s.n; ++j) {
              float& y = ref[size_t(i) * s.n + j];
              y = std::max(y + bias[size_t(j)], 0.0f);
            }
        },
        min_ms);
    // Correctness against a double-precision loop (on a sample of rows for the big squares).
    double worst = 0;
    int step = s.m > 256 ? 37 : 1;
    for (int i = 0; i < s.m; i += step)
      for (int j = 0; j < s.n; ++j) {
        double acc = 0, mag = 0;
        for (int kk = 0; kk < s.k; ++kk) {
          double p = double(a[size_t(i) * s.k + kk]) * b[size_t(j) * s.k + kk];
          acc += p;
          mag += std::fabs(p);
        }
        double want = std::max(acc + bias[size_t(j)], 0.0);
        worst = std::max(worst, std::fabs(c[size_t(i) * s.n + j] - want) / (mag + 1));
      }
    double flops = 2.0 * s.m * s.n * s.k;
    std::printf(
        "| %s | %d | %d | %d | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f | %.2f | %.1f | %.1e |\n",
        s.name.c_str(), s.m, s.n, s.k, kiln.first * 1e3, kiln.second * 1e3, blas.first * 1e3,
        blas.second * 1e3, flops / (kiln.second * 1e6), flops / (blas.second * 1e6),
        blas.second / kiln.second, pack.second * 1e3, worst);
    if (worst > 1e-5) {
      std::fprintf(stderr, "gemm_prototype: %s %dx%dx%d wrong (relative error %.2e)\n",
                   s.name.c_str(), s.m, s.n, s.k, worst);
      return 1;
    }
  }
  return 0;
}
