// jit_elementwise - a JIT-compiled vectorized elementwise kernel against plain C++ loops.
//
// y = f(a*x + b) over 1M floats (2^20), x = 3 sin(0.001 i) in [-3, 3]: the kernel IR compiled by
// the LLVM backend (native vector width, kiln's own vectorised math), against the same loop in
// C++ calling the C library (std::tanh, sinf, ...: glibc's scalar functions) compiled with -O3
// -march=native, measured in the same run, one thread. The functions: tanh, exp, sigmoid and erf
// (a = 1.25, b = 0.5: arguments in [-3.25, 4.25]), then float32 sin, tan (the same arguments),
// asin, acos (a = 1/3, b = 0: [-1, 1]) and atan (a = 3, b = 0: [-9, 9]) (decision D47). Also the
// parallel form of the kernel on the runtime's thread pool at 1 and 2 threads, and the JIT's
// compile time at each optimisation level.
// Prints medians and minimums over the runs and the ratios (C++ / kiln: above 1, kiln is faster).
//
//   build/bench/kiln-bench-jit [runs]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "kiln/codegen/kernel_ir.h"
#include "kiln/codegen/llvm_jit.h"
#include "kiln/runtime/thread_pool.h"

using namespace kiln;
using namespace kiln::codegen;

namespace {

constexpr int64_t kN = 1 << 20;
constexpr int64_t kChunks = 64;  // tasks of the parallel form

struct Timing {
  double median_us, min_us;
};

Timing Time(int runs, const std::function<void()>& fn) {
  fn();  // warm up: page faults, caches, lazy JIT work
  std::vector<double> t;
  for (int r = 0; r < runs; ++r) {
    auto start = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                    .count());
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t[0]};
}

// y[c, j] = f(x[c, j] * a + b): rows are the parallel tasks when `parallel`.
Kernel Elementwise(const std::string& name, Intrinsic f, bool parallel) {
  Buffer x = MakeBuffer("x", DType::kFloat32, {kChunks, kN / kChunks});
  Buffer y = MakeBuffer("y", DType::kFloat32, {kChunks, kN / kChunks});
  Var a = MakeVar("a", DType::kFloat32), b = MakeVar("b", DType::kFloat32);
  Var c = MakeVar("c"), j = MakeVar("j");
  Stmt store = Store(y, {Ref(c), Ref(j)}, Call(f, {Load(x, {Ref(c), Ref(j)}) * Ref(a) + Ref(b)}));
  Stmt inner = For(j, IntImm(0), IntImm(kN / kChunks), ForKind::kVectorize, store);
  return Kernel{
      name,
      {x, y},
      {a, b},
      For(c, IntImm(0), IntImm(kChunks), parallel ? ForKind::kParallel : ForKind::kSerial, inner)};
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 50;
  std::vector<float> x(kN), y(kN);
  for (int64_t i = 0; i < kN; ++i) x[i] = std::sin(0.001f * i) * 3.0f;

  auto compile_start = std::chrono::steady_clock::now();
  LLVMJit jit;
  struct Fn {
    const char* name;
    Intrinsic f;
    float (*libm)(float);
    float a, b;  // the argument is a*x + b
  };
  const Fn fns[] = {
      {"tanh", Intrinsic::kTanh, [](float v) { return std::tanh(v); }, 1.25f, 0.5f},
      {"exp", Intrinsic::kExp, [](float v) { return std::exp(v); }, 1.25f, 0.5f},
      {"sigmoid", Intrinsic::kSigmoid, [](float v) { return 1.0f / (1.0f + std::exp(-v)); }, 1.25f,
       0.5f},
      {"erf", Intrinsic::kErf, [](float v) { return std::erf(v); }, 1.25f, 0.5f},
      {"sin", Intrinsic::kSin, [](float v) { return ::sinf(v); }, 1.25f, 0.5f},
      {"tan", Intrinsic::kTan, [](float v) { return ::tanf(v); }, 1.25f, 0.5f},
      {"asin", Intrinsic::kAsin, [](float v) { return ::asinf(v); }, 1.0f / 3, 0.0f},
      {"acos", Intrinsic::kAcos, [](float v) { return ::acosf(v); }, 1.0f / 3, 0.0f},
      {"atan", Intrinsic::kAtan, [](float v) { return ::atanf(v); }, 3.0f, 0.0f},
  };
  std::vector<Kernel> kernels;
  for (const Fn& f : fns)
    kernels.push_back(Elementwise(std::string(f.name) + "_serial", f.f, false));
  kernels.push_back(Elementwise("tanh_parallel", Intrinsic::kTanh, true));
  std::vector<KernelFn> compiled = jit.Compile(kernels);
  double compile_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - compile_start)
          .count();
  std::printf("target: %s, %d-bit vectors; JIT compile of %zu kernels: %.1f ms\n",
              jit.target().cpu.c_str(), jit.target().vector_bits, kernels.size(), compile_ms);
  std::printf("y = f(a*x + b) over %lld floats, 1 thread, %d runs (microseconds)\n", (long long)kN,
              runs);
  // Ratios of medians and of minimums: on a busy machine the minimums are the steadier.
  std::printf("%-8s %10s %10s %10s %10s %9s %9s\n", "f", "kiln med", "kiln min", "C++ med",
              "C++ min", "ratio med", "ratio min");
  float a = 0, b = 0;
  void* args[] = {x.data(), y.data(), &a, &b};
  for (size_t k = 0; k < std::size(fns); ++k) {
    a = fns[k].a, b = fns[k].b;
    Timing jt = Time(runs, [&] { compiled[k](args, 0, 1); });
    std::vector<float> check = y;
    Timing ct = Time(runs, [&] {
      for (int64_t i = 0; i < kN; ++i) y[i] = fns[k].libm(x[i] * a + b);
    });
    // Keep both results honest: the largest relative difference between them.
    double worst = 0;
    for (int64_t i = 0; i < kN; ++i) {
      worst = std::max(worst,
                       std::abs(double(check[i]) - y[i]) / std::max(1e-30, std::abs(double(y[i]))));
    }
    std::printf("%-8s %10.1f %10.1f %10.1f %10.1f %9.2f %9.2f  (max rel diff %.1e)\n", fns[k].name,
                jt.median_us, jt.min_us, ct.median_us, ct.min_us, ct.median_us / jt.median_us,
                ct.min_us / jt.min_us, worst);
  }
  // The parallel form on the thread pool.
  a = 1.25f, b = 0.5f;
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    int64_t tasks = TaskCount(kernels.back());
    KernelFn fn = compiled.back();
    Timing pt = Time(runs, [&] {
      pool.ParallelFor(tasks, [&](int64_t begin, int64_t end) { fn(args, begin, end); });
    });
    std::printf("tanh parallel, %d thread(s): median %.1f us, min %.1f us\n", threads, pt.median_us,
                pt.min_us);
  }
  // JIT compile time by optimisation level: 20 kernels (10 tanh, 10 sqrt) in one module.
  for (int level = 0; level <= 3; ++level) {
    std::vector<Kernel> batch;
    for (int k = 0; k < 20; ++k) {
      std::string name = "k";  // (not "k" + ...: GCC 12 warns falsely at -O3)
      name += std::to_string(k);
      batch.push_back(Elementwise(name, k % 2 ? Intrinsic::kTanh : Intrinsic::kSqrt, true));
    }
    auto start = std::chrono::steady_clock::now();
    LLVMJit level_jit({.cpu = "", .opt_level = level});
    level_jit.Compile(batch);
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf("JIT compile, -O%d: 20 kernels in %.1f ms (%.1f ms per kernel)\n", level, ms,
                ms / 20);
  }
  return 0;
}
