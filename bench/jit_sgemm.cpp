// jit_sgemm - can plain kernel IR express a decent matrix product? An experiment for issue 5.
//
// C = A B (row-major float32, M x K times K x N) written as kernel IR with register blocking
// only: an MR x NR block of C lives in a local buffer that LLVM promotes to vector registers
// (NR/16 zmm per row), the k loop streams a row of A (broadcast) and a row segment of B;
// no packing, no cache blocking. Compared with OpenBLAS's cblas_sgemm at one thread in the
// same run; prints GFLOP/s and the ratio. Sizes must be multiples of the blocks.
//
//   OPENBLAS_NUM_THREADS=1 build-cg/bench/kiln-bench-sgemm [runs]
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include "kiln/codegen/kernel_ir.h"
#include "kiln/codegen/llvm_jit.h"

using namespace kiln;
using namespace kiln::codegen;

namespace {

constexpr int64_t kMR = 8;  // rows of C per block
constexpr int64_t kNV = 2;  // 16-float vectors per block row
constexpr int64_t kNR = 16 * kNV;

Kernel Sgemm(const std::string& name, int64_t m, int64_t n, int64_t k) {
  Buffer a = MakeBuffer("a", DType::kFloat32, {m, k});
  Buffer b = MakeBuffer("b", DType::kFloat32, {k, n});
  Buffer c = MakeBuffer("c", DType::kFloat32, {m, n});
  Buffer acc = MakeBuffer("acc", DType::kFloat32, {kMR, kNR});
  Var io = MakeVar("io"), jo = MakeVar("jo"), kk = MakeVar("k");
  // Block loops over (ii, jv, jl): ii and jv unrolled, jl one vector of 16 lanes. Each use
  // needs its own variables (kernel IR binds every Var once).
  auto block = [&](const std::string& tag, const std::function<Stmt(Expr, Expr)>& body) {
    Var ii = MakeVar("ii" + tag), jv = MakeVar("jv" + tag), jl = MakeVar("jl" + tag);
    Expr col = Ref(jv) * IntImm(16) + Ref(jl);
    return For(ii, IntImm(0), IntImm(kMR), ForKind::kUnroll,
               For(jv, IntImm(0), IntImm(kNV), ForKind::kUnroll,
                   For(jl, IntImm(0), IntImm(16), ForKind::kVectorize, body(Ref(ii), col), 16)));
  };
  Expr row0 = Ref(io) * IntImm(kMR), col0 = Ref(jo) * IntImm(kNR);
  Stmt zero = block("z", [&](Expr ii, Expr col) { return Store(acc, {ii, col}, FloatImm(0)); });
  Stmt update = For(kk, IntImm(0), IntImm(k), ForKind::kSerial, block("u", [&](Expr ii, Expr col) {
                      return Store(acc, {ii, col},
                                   Load(acc, {ii, col}) + Load(a, {row0 + ii, Ref(kk)}) *
                                                              Load(b, {Ref(kk), col0 + col}));
                    }));
  Stmt write = block("w", [&](Expr ii, Expr col) {
    return Store(c, {row0 + ii, col0 + col}, Load(acc, {ii, col}));
  });
  Stmt tile = For(jo, IntImm(0), IntImm(n / kNR), ForKind::kSerial,
                  Allocate(acc, Block({zero, update, write})));
  return Kernel{name, {a, b, c}, {}, For(io, IntImm(0), IntImm(m / kMR), ForKind::kParallel, tile)};
}

double MedianUs(int runs, const std::function<void()>& fn) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < runs; ++r) {
    auto s = std::chrono::steady_clock::now();
    fn();
    t.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 10;
  openblas_set_num_threads(1);
  std::printf("%6s %12s %12s %8s  (GFLOP/s, medians of %d runs, 1 thread)\n", "size", "kiln IR",
              "OpenBLAS", "ratio", runs);
  for (int64_t s : {64, 128, 256, 512, 1024}) {
    std::vector<float> a(s * s), b(s * s), c(s * s), ref(s * s);
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> d(-1, 1);
    for (float& x : a) x = d(gen);
    for (float& x : b) x = d(gen);
    LLVMJit jit;
    Kernel k = Sgemm("sgemm", s, s, s);
    KernelFn fn = jit.Compile({k})[0];
    void* args[] = {a.data(), b.data(), c.data()};
    int64_t tasks = TaskCount(k);
    double kiln_us = MedianUs(runs, [&] { fn(args, 0, tasks); });
    double blas_us = MedianUs(runs, [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s, s, s, 1.0f, a.data(), s, b.data(),
                  s, 0.0f, ref.data(), s);
    });
    double worst = 0;
    for (int64_t i = 0; i < s * s; ++i) worst = std::max(worst, double(std::abs(c[i] - ref[i])));
    double flop = 2.0 * s * s * s;
    std::printf("%6lld %12.1f %12.1f %8.2f  (max abs diff %.1e)\n", (long long)s,
                flop / kiln_us / 1e3, flop / blas_us / 1e3, blas_us / kiln_us, worst);
  }
  return 0;
}
