// sgemm_bench: the matrix-product peer of issue 5, OpenBLAS's cblas_sgemm, on the shapes the
// issue names: squares 64 to 2048 and the MLP 784-512-512-10's layers at batch 1, 16, 64, 256
// (C[M,N] = A[M,K] * B[N,K]^T, row-major, as FullyConnected computes y = x W^T).
//
//   OPENBLAS_NUM_THREADS=1 build/bench/kiln_sgemm_bench [--min-ms T]
//
// Prints per shape the median and minimum time and GFLOP/s (2 M N K flops per product), each
// shape repeated until T ms (default 300) have passed. kiln's own generated GEMM joins this
// table as a second column, with the ratio, when the LLVM backend provides it.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

struct Shape {
  std::string name;
  int m, n, k;
};

double NowMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  double min_ms = 300;
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--min-ms") && i + 1 < argc) min_ms = std::atof(argv[++i]);
  const char* threads = std::getenv("OPENBLAS_NUM_THREADS");
  std::printf("# OPENBLAS_NUM_THREADS=%s; C[M,N] = A[M,K] B[N,K]^T, float32, row-major\n",
              threads ? threads : "(unset: OpenBLAS uses every core)");
  std::vector<Shape> shapes;
  for (int s : {64, 128, 256, 512, 1024, 2048}) shapes.push_back({"square", s, s, s});
  for (int b : {1, 16, 64, 256}) {
    shapes.push_back({"mlp fc1", b, 512, 784});
    shapes.push_back({"mlp fc2", b, 512, 512});
    shapes.push_back({"mlp fc3", b, 10, 512});
  }
  std::printf("| shape | M | N | K | OpenBLAS median us | min us | GFLOP/s (min) |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  for (const Shape& s : shapes) {
    std::vector<float> a(size_t(s.m) * s.k), b(size_t(s.n) * s.k), c(size_t(s.m) * s.n);
    for (float& x : a) x = u(rng);
    for (float& x : b) x = u(rng);
    auto run = [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.m, s.n, s.k, 1.0f, a.data(), s.k,
                  b.data(), s.k, 0.0f, c.data(), s.n);
    };
    run();
    std::vector<double> times;
    double start = NowMs();
    while (times.size() < 5 || (NowMs() - start < min_ms && times.size() < 100000)) {
      double t0 = NowMs();
      run();
      times.push_back(NowMs() - t0);
    }
    std::sort(times.begin(), times.end());
    double median = times[times.size() / 2], best = times[0];
    double gflops = 2.0 * s.m * s.n * s.k / (best * 1e6);
    std::printf("| %s | %d | %d | %d | %.2f | %.2f | %.1f |\n", s.name.c_str(), s.m, s.n, s.k,
                median * 1e3, best * 1e3, gflops);
  }
  return 0;
}
