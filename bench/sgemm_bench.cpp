// sgemm_bench: kiln's runtime GEMM and convolution (kiln/runtime/gemm.h, conv.h) against
// OpenBLAS's cblas_sgemm, measured in the same run (evidence for decision D34).
//
//   OPENBLAS_NUM_THREADS=1 build/bench/kiln_sgemm_bench [--min-ms T] [--threads N] [--conv]
//                                                       [--cold-weights]
//
// Squares: C = A B^T with B unpacked on both sides (kiln packs it on every call, as OpenBLAS
// does). MLP layers (784->512, 512->512, 512->10 at batch 1-256): relu(x W^T + bias), the
// weights prepacked once for kiln as a compiled model holds them, the bias and relu applied by
// kiln's epilogue and by one more pass after OpenBLAS. Conv: 3x3 64->64 on 56x56 (ResNet-18's
// first stage), kiln's ConvForward against im2col + cblas_sgemm. Every result is checked
// against OpenBLAS's. The two sides run alternately (kiln, OpenBLAS, kiln, ...) so that both
// see the same machine state; times are medians and minimums over the runs; the ratio is
// OpenBLAS / kiln on minimums (> 1: kiln faster).
//
// Then ResNet-18's convolutions (batch 1, 224x224; `--conv` runs only these): kiln's
// ConvForward with its weights prepacked (ConvPackWeights, as a compiled model with frozen
// weights runs them) against im2col + cblas_sgemm. The last line sums each side's minimums
// weighted by how often the layer occurs in the network. `--cold-weights`: each call of either
// side reads the next of enough copies of the weights (48 MiB, more than the L3 cache) that
// they come from memory, as in a whole network at batch 1 (ResNet-18's are 45 MB).
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kiln/runtime/conv.h"
#include "kiln/runtime/gemm.h"
#include "kiln/runtime/thread_pool.h"

namespace {

double NowMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Timing {
  double median_us, min_us;
};

// Times f and g alternately (f, g, f, g, ...) so that both see the same machine state (two
// builds sharing the two vCPUs, a stalled vCPU): at least 5 runs each and min_ms in all.
template <class F, class G>
std::pair<Timing, Timing> TimeBoth(F&& f, G&& g, double min_ms) {
  f(), g();
  std::vector<double> tf, tg;
  double start = NowMs();
  while (tf.size() < 5 || (NowMs() - start < min_ms && tf.size() < 100000)) {
    double t0 = NowMs();
    f();
    double t1 = NowMs();
    g();
    double t2 = NowMs();
    tf.push_back(t1 - t0), tg.push_back(t2 - t1);
  }
  auto stats = [](std::vector<double>& t) {
    std::sort(t.begin(), t.end());
    return Timing{t[t.size() / 2] * 1e3, t[0] * 1e3};
  };
  return {stats(tf), stats(tg)};
}

template <class F>
Timing Time(F&& f, double min_ms) {
  return TimeBoth(
             f, [] {}, min_ms)
      .first;
}

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

struct BiasRelu {
  const float* bias;
  float* y;
  int64_t n;
  static void Fn(void* ctx, int64_t, int64_t r0, int64_t r1) {
    auto* e = static_cast<BiasRelu*>(ctx);
    for (int64_t i = r0; i < r1; ++i) {
      float* row = e->y + i * e->n;
      for (int64_t j = 0; j < e->n; ++j) row[j] = std::max(row[j] + e->bias[j], 0.0f);
    }
  }
};

double MaxRelDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 1e-30, worst = 0;
  for (float x : b) scale = std::max(scale, double(std::fabs(x)));
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
  return worst / scale;
}

bool g_ok = true;

void Row(const char* name, const char* b_mode, int64_t m, int64_t n, int64_t k, Timing kiln,
         Timing blas, double pack_us, double err) {
  double flops = 2.0 * m * n * k;
  std::printf("| %s | %s | %lld | %lld | %lld | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f |",
              name, b_mode, (long long)m, (long long)n, (long long)k, kiln.median_us, kiln.min_us,
              blas.median_us, blas.min_us, flops / (kiln.min_us * 1e3), flops / (blas.min_us * 1e3),
              blas.min_us / kiln.min_us);
  if (pack_us >= 0)
    std::printf(" %.1f |", pack_us);
  else
    std::printf(" - |");
  std::printf(" %.1e |\n", err);
  if (err > 1e-4) {
    std::fprintf(stderr, "sgemm_bench: %s %lldx%lldx%lld differs from OpenBLAS by %.2e\n", name,
                 (long long)m, (long long)n, (long long)k, err);
    g_ok = false;
  }
}

// `bytes` of 64-byte aligned scratch inside `buffer` (resized to hold them).
void* AlignedScratch(std::vector<char>& buffer, int64_t bytes) {
  buffer.resize(size_t(bytes) + 64);
  return reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(buffer.data()) + 63) &
                                 ~uintptr_t(63));
}

void Square(int64_t s, double min_ms, kiln::ThreadPool* pool) {
  std::vector<float> a = Random(size_t(s * s), 1), b = Random(size_t(s * s), 2);
  std::vector<float> c(size_t(s * s)), ref(size_t(s * s));
  kiln::GemmArgs g;
  g.m = g.n = g.k = s;
  g.a = a.data(), g.lda = s, g.b = b.data(), g.ldb = s, g.c = c.data(), g.ldc = s;
  int threads = pool ? pool->num_threads() : 1;
  std::vector<char> ws;
  g.workspace = AlignedScratch(ws, kiln::GemmWorkspaceBytes(g, threads));
  auto [kiln, blas] =
      TimeBoth([&] { kiln::Gemm(g, pool); },
               [&] {
                 cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(s), int(s), int(s), 1.0f,
                             a.data(), int(s), b.data(), int(s), 0.0f, ref.data(), int(s));
               },
               min_ms);
  Row("square", "per call", s, s, s, kiln, blas, -1, MaxRelDiff(c, ref));
}

void Mlp(const char* name, int64_t m, int64_t n, int64_t k, double min_ms, kiln::ThreadPool* pool) {
  std::vector<float> a = Random(size_t(m * k), 3), w = Random(size_t(n * k), 4);
  std::vector<float> bias = Random(size_t(n), 5), c(size_t(m * n)), ref(size_t(m * n));
  kiln::PackedB pw = kiln::PackB(w.data(), k, kiln::BLayout::kNK, n, k);
  Timing pack = Time([&] { pw = kiln::PackB(w.data(), k, kiln::BLayout::kNK, n, k); }, min_ms / 4);
  BiasRelu ep{bias.data(), c.data(), n};
  kiln::GemmArgs g;
  g.m = m, g.n = n, g.k = k;
  g.a = a.data(), g.lda = k, g.packed_b = &pw, g.c = c.data(), g.ldc = n;
  g.epilogue = {&BiasRelu::Fn, &ep};
  int threads = pool ? pool->num_threads() : 1;
  std::vector<char> ws;
  g.workspace = AlignedScratch(ws, kiln::GemmWorkspaceBytes(g, threads));
  auto [kiln, blas] =
      TimeBoth([&] { kiln::Gemm(g, pool); },
               [&] {
                 cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f,
                             a.data(), int(k), w.data(), int(k), 0.0f, ref.data(), int(n));
                 for (int64_t i = 0; i < m; ++i)
                   for (int64_t j = 0; j < n; ++j) {
                     float& y = ref[size_t(i * n + j)];
                     y = std::max(y + bias[size_t(j)], 0.0f);
                   }
               },
               min_ms);
  Row(name, "prepacked", m, n, k, kiln, blas, pack.min_us, MaxRelDiff(c, ref));
}

// The im2col matrix [C*KH*KW, OH*OW] of image 0 (groups = 1) into col, plain loops.
void Im2colInto(const kiln::Conv2dShape& s, const float* x, float* col) {
  int64_t oh = s.out_h(), ow = s.out_w(), p = oh * ow;
  for (int64_t c = 0; c < s.in_channels; ++c)
    for (int64_t kh = 0; kh < s.kernel_h; ++kh)
      for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
        float* row = col + ((c * s.kernel_h + kh) * s.kernel_w + kw) * p;
        for (int64_t i = 0; i < oh; ++i) {
          int64_t ih = i * s.stride_h - s.pad_h + kh * s.dilation_h;
          for (int64_t j = 0; j < ow; ++j) {
            int64_t iw = j * s.stride_w - s.pad_w + kw * s.dilation_w;
            bool in = ih >= 0 && ih < s.in_h && iw >= 0 && iw < s.in_w;
            row[i * ow + j] = in ? x[(c * s.in_h + ih) * s.in_w + iw] : 0.0f;
          }
        }
      }
}

// ResNet-18's 3x3 64->64 convolution on 56x56, batch 1, against im2col + OpenBLAS.
void Conv(double min_ms, kiln::ThreadPool* pool) {
  kiln::Conv2dShape s;
  s.batch = 1, s.in_channels = 64, s.in_h = s.in_w = 56;
  s.out_channels = 64, s.kernel_h = s.kernel_w = 3, s.pad_h = s.pad_w = 1;
  int64_t p = s.out_h() * s.out_w(), kg = 64 * 9;
  std::vector<float> x = Random(size_t(64 * 56 * 56), 6), w = Random(size_t(64 * kg), 7);
  std::vector<float> y(size_t(64 * p)), ref(size_t(64 * p)), col(size_t(kg * p));
  int threads = pool ? pool->num_threads() : 1;
  std::vector<char> ws;
  void* wsp = AlignedScratch(ws, kiln::ConvForwardWorkspaceBytes(s, threads));
  auto [kiln, blas] =
      TimeBoth([&] { kiln::ConvForward(s, x.data(), w.data(), y.data(), {}, wsp, pool); },
               [&] {
                 for (int64_t c = 0; c < 64; ++c)
                   for (int64_t kh = 0; kh < 3; ++kh)
                     for (int64_t kw = 0; kw < 3; ++kw) {
                       float* row = col.data() + ((c * 3 + kh) * 3 + kw) * p;
                       for (int64_t oh = 0; oh < 56; ++oh) {  // one row: zeros, a copy, zeros
                         float* out = row + oh * 56;
                         int64_t ih = oh - 1 + kh;
                         std::fill(out, out + 56, 0.0f);
                         if (ih < 0 || ih >= 56) continue;
                         int64_t lo = kw == 0 ? 1 : 0, hi = kw == 2 ? 55 : 56;
                         std::memcpy(out + lo, &x[size_t((c * 56 + ih) * 56 + lo - 1 + kw)],
                                     size_t(hi - lo) * 4);
                       }
                     }
                 cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 64, int(p), int(kg), 1.0f,
                             w.data(), int(kg), col.data(), int(p), 0.0f, ref.data(), int(p));
               },
               min_ms);
  Row("conv 3x3 64->64 56x56", "im2col", 64, p, kg, kiln, blas, -1, MaxRelDiff(y, ref));
}

bool g_cold_weights = false;  // --cold-weights

struct ConvTotals {
  double kiln_us = 0, blas_us = 0;
};

// One of ResNet-18's convolutions (`count`: how often it occurs; padding k / 2): kiln with
// prepacked weights against im2col + OpenBLAS.
void ResNetConv(const char* name, int64_t count, int64_t c, int64_t hw, int64_t o, int64_t k,
                int64_t stride, double min_ms, kiln::ThreadPool* pool, ConvTotals& totals) {
  kiln::Conv2dShape s;
  s.batch = 1, s.in_channels = c, s.in_h = s.in_w = hw;
  s.out_channels = o, s.kernel_h = s.kernel_w = k;
  s.stride_h = s.stride_w = stride, s.pad_h = s.pad_w = k / 2;
  int64_t p = s.out_h() * s.out_w(), kg = c * k * k;
  std::vector<float> x = Random(size_t(c * hw * hw), 6), w = Random(size_t(o * kg), 7);
  std::vector<float> y(size_t(o * p)), ref(size_t(o * p)), col(size_t(kg * p));
  int threads = pool ? pool->num_threads() : 1;
  std::vector<char> ws;
  void* wsp = AlignedScratch(ws, kiln::ConvForwardWorkspaceBytes(s, threads));
  // Copies of the weights (one unless --cold-weights), each side cycling through its own.
  const int64_t copies = g_cold_weights ? (int64_t(48) << 20) / (o * kg * 4) + 2 : 1;
  const int64_t packed_floats = kiln::ConvPackedWeightsFloats(s), step = packed_floats + 16;
  std::vector<float> packed(size_t(copies * step) + 16), ws_copies(size_t((copies - 1) * o * kg));
  float* pw =
      reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(packed.data()) + 63) & ~uintptr_t(63));
  for (int64_t i = 0; i < copies; ++i) kiln::ConvPackWeights(s, w.data(), pw + i * step);
  for (int64_t i = 0; i + 1 < copies; ++i)
    std::copy(w.begin(), w.end(), ws_copies.begin() + i * o * kg);
  int64_t kiln_call = 0, blas_call = 0;
  auto [kiln, blas] = TimeBoth(
      [&] {
        int64_t i = kiln_call++ % copies;
        kiln::ConvForward(s, x.data(), w.data(), y.data(), {}, wsp, pool, kiln::GemmIsa::kAuto,
                          packed_floats ? pw + i * step : nullptr);
      },
      [&] {
        int64_t i = blas_call++ % copies;
        const float* wi = i == 0 ? w.data() : ws_copies.data() + (i - 1) * o * kg;
        Im2colInto(s, x.data(), col.data());
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(o), int(p), int(kg), 1.0f, wi,
                    int(kg), col.data(), int(p), 0.0f, ref.data(), int(p));
      },
      min_ms);
  double flops = 2.0 * o * p * kg, err = MaxRelDiff(y, ref);
  std::printf(
      "| %s | %lld | %lld | %lld | %lld | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.1e "
      "|\n",
      name, (long long)count, (long long)o, (long long)p, (long long)kg, kiln.median_us,
      kiln.min_us, blas.median_us, blas.min_us, flops / (kiln.min_us * 1e3),
      flops / (blas.min_us * 1e3), blas.min_us / kiln.min_us, err);
  totals.kiln_us += double(count) * kiln.min_us;
  totals.blas_us += double(count) * blas.min_us;
  if (err > 1e-4) {
    std::fprintf(stderr, "sgemm_bench: %s differs from OpenBLAS by %.2e\n", name, err);
    g_ok = false;
  }
}

void ResNetConvs(double min_ms, kiln::ThreadPool* pool) {
  std::printf(
      "\n| ResNet-18 conv | count | M | N | K | kiln median us | kiln min us | im2col+OpenBLAS "
      "median us | im2col+OpenBLAS min us | kiln GFLOP/s | im2col+OpenBLAS GFLOP/s | "
      "OpenBLAS/kiln (min) | rel diff |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  ConvTotals t;
  ResNetConv("7x7/2 3->64 224", 1, 3, 224, 64, 7, 2, min_ms, pool, t);
  ResNetConv("3x3 64->64 56", 4, 64, 56, 64, 3, 1, min_ms, pool, t);
  ResNetConv("3x3/2 64->128 56", 1, 64, 56, 128, 3, 2, min_ms, pool, t);
  ResNetConv("1x1/2 64->128 56", 1, 64, 56, 128, 1, 2, min_ms, pool, t);
  ResNetConv("3x3 128->128 28", 3, 128, 28, 128, 3, 1, min_ms, pool, t);
  ResNetConv("3x3/2 128->256 28", 1, 128, 28, 256, 3, 2, min_ms, pool, t);
  ResNetConv("1x1/2 128->256 28", 1, 128, 28, 256, 1, 2, min_ms, pool, t);
  ResNetConv("3x3 256->256 14", 3, 256, 14, 256, 3, 1, min_ms, pool, t);
  ResNetConv("3x3/2 256->512 14", 1, 256, 14, 512, 3, 2, min_ms, pool, t);
  ResNetConv("1x1/2 256->512 14", 1, 256, 14, 512, 1, 2, min_ms, pool, t);
  ResNetConv("3x3 512->512 7", 3, 512, 7, 512, 3, 1, min_ms, pool, t);
  std::printf("| all 20 (sum of count x min) | | | | | | %.1f | | %.1f | | | %.2f | |\n", t.kiln_us,
              t.blas_us, t.blas_us / t.kiln_us);
}

}  // namespace

int main(int argc, char** argv) {
  double min_ms = 300;
  int threads = 1;
  bool conv_only = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--min-ms") && i + 1 < argc) {
      min_ms = std::atof(argv[++i]);
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--conv")) {
      conv_only = true;
    } else if (!std::strcmp(argv[i], "--cold-weights")) {
      g_cold_weights = true;
    } else {
      std::printf(
          "usage: kiln_sgemm_bench [--min-ms T] [--threads N] [--conv] [--cold-weights]\n"
          "  --min-ms T        time each case for at least T ms (default 300)\n"
          "  --threads N       kiln's thread pool size (OpenBLAS: OPENBLAS_NUM_THREADS)\n"
          "  --conv            only ResNet-18's convolutions\n"
          "  --cold-weights    the convolutions' weights read from memory on every call\n");
      return std::strcmp(argv[i], "--help") ? 2 : 0;
    }
  }
  std::unique_ptr<kiln::ThreadPool> pool;
  if (threads > 1) pool = std::make_unique<kiln::ThreadPool>(threads);
  const char* env = std::getenv("OPENBLAS_NUM_THREADS");
  std::printf("# kiln %d thread(s), ISA %s; OPENBLAS_NUM_THREADS=%s%s\n", threads,
              kiln::GemmIsaName(kiln::GemmBestIsa()), env ? env : "(unset)",
              g_cold_weights ? "; convolution weights cold" : "");
  if (!conv_only) {
    std::printf(
        "| shape | B | M | N | K | kiln median us | kiln min us | OpenBLAS median us | OpenBLAS "
        "min us | kiln GFLOP/s | OpenBLAS GFLOP/s | OpenBLAS/kiln (min) | pack B us | rel diff "
        "|\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int64_t s : {64, 128, 256, 512, 1024, 2048}) Square(s, min_ms, pool.get());
    for (int64_t bsz : {1, 16, 64, 256}) {
      Mlp("mlp fc1", bsz, 512, 784, min_ms, pool.get());
      Mlp("mlp fc2", bsz, 512, 512, min_ms, pool.get());
      Mlp("mlp fc3", bsz, 10, 512, min_ms, pool.get());
    }
    Conv(min_ms, pool.get());
  }
  ResNetConvs(min_ms, pool.get());
  return g_ok ? 0 : 1;
}
