// llvm_jit_test.cpp - kernel IR compiled by the LLVM backend and run, against plain C++ loops.
//
// Every kernel here is checked element by element against a loop written directly in C++.
// Float results must match exactly where both sides perform the same IEEE operations in the
// same order (no reassociation is allowed; a*b+c may be fused, so such tests use tolerances).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kiln/codegen/kernel_ir.h"
#include "kiln/codegen/llvm_jit.h"
#include "kiln/runtime/error.h"
#include "kiln/runtime/thread_pool.h"

namespace kiln::codegen {
namespace {

std::vector<float> RandomFloats(size_t n, uint32_t seed, float lo = -4, float hi = 4) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

// y[i] = x[i] * a + b over n elements, vectorized with `width` lanes (0 = native).
Kernel Axpb(const std::string& name, int64_t n, int width, ForKind kind = ForKind::kVectorize) {
  Buffer x = MakeBuffer("x", DType::kFloat32, {n});
  Buffer y = MakeBuffer("y", DType::kFloat32, {n});
  Var a = MakeVar("a", DType::kFloat32), b = MakeVar("b", DType::kFloat32), i = MakeVar("i");
  Stmt s = Store(y, {Ref(i)}, Load(x, {Ref(i)}) * Ref(a) + Ref(b));
  return Kernel{name, {x, y}, {a, b}, For(i, IntImm(0), IntImm(n), kind, s, width)};
}

TEST(LLVMJit, VectorizedLoopWithRemainderMatchesPlainLoop) {
  LLVMJit jit;
  // Lengths around multiples of the vector width: remainders of 0, 1 and width-1 lanes.
  const int64_t sizes[] = {0, 1, 15, 16, 17, 1000, 1007};
  std::vector<Kernel> kernels;
  for (int64_t n : sizes) {
    kernels.push_back(Axpb("axpb_native_" + std::to_string(n), n, 0));
    kernels.push_back(Axpb("axpb_w8_" + std::to_string(n), n, 8));
    kernels.push_back(Axpb("axpb_serial_" + std::to_string(n), n, 0, ForKind::kSerial));
  }
  std::vector<KernelFn> fns = jit.Compile(kernels);
  for (size_t k = 0; k < kernels.size(); ++k) {
    int64_t n = kernels[k].buffers[0]->shape[0];
    std::vector<float> x = RandomFloats(n, 7 + k);
    // One guard element past the end must stay untouched.
    std::vector<float> y(n + 1, -12345.0f);
    float a = 1.5f, b = -0.25f;
    void* args[] = {x.data(), y.data(), &a, &b};
    fns[k](args, 0, 1);
    for (int64_t i = 0; i < n; ++i) {
      float want = x[i] * a + b;
      // x*a+b may be one fused multiply-add: within one rounding of the unfused result.
      ASSERT_NEAR(y[i], want, std::abs(want) * 1.2e-7f + 1e-7f) << kernels[k].name << " i=" << i;
    }
    EXPECT_EQ(y[n], -12345.0f) << kernels[k].name << " wrote past the end";
  }
}

TEST(LLVMJit, ParallelLoopRunsExactlyTheTasksGiven) {
  // y[i, j] = x[i, j] + i: rows are tasks.
  const int64_t rows = 13, cols = 37;
  Buffer x = MakeBuffer("x", DType::kFloat32, {rows, cols});
  Buffer y = MakeBuffer("y", DType::kFloat32, {rows, cols});
  Var i = MakeVar("i"), j = MakeVar("j");
  Stmt inner =
      For(j, IntImm(0), IntImm(cols), ForKind::kVectorize,
          Store(y, {Ref(i), Ref(j)}, Load(x, {Ref(i), Ref(j)}) + Cast(DType::kFloat32, Ref(i))));
  Kernel k{"rows_plus_i", {x, y}, {}, For(i, IntImm(0), IntImm(rows), ForKind::kParallel, inner)};
  EXPECT_EQ(TaskCount(k), rows);
  LLVMJit jit;
  KernelFn fn = jit.Compile({k})[0];
  std::vector<float> xv = RandomFloats(rows * cols, 3);
  std::vector<float> yv(rows * cols, 0.0f);
  void* args[] = {xv.data(), yv.data()};
  fn(args, 3, 5);  // rows 3 and 4 only
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      float want = (r == 3 || r == 4) ? xv[r * cols + c] + float(r) : 0.0f;
      ASSERT_EQ(yv[r * cols + c], want) << r << "," << c;
    }
  }
  // Ranges beyond the loop are clipped; splitting into any tasks gives the whole result.
  std::fill(yv.begin(), yv.end(), 0.0f);
  fn(args, -5, 2);
  fn(args, 2, 9);
  fn(args, 9, 100);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(yv[r * cols + c], xv[r * cols + c] + float(r));
  }
}

TEST(LLVMJit, ParallelKernelOnTheThreadPoolGivesTheSameBitsAtAnyThreadCount) {
  // A row-wise sum of tanh (a serial reduction per row) split over threads:
  // each row is computed by one task, so 1, 2 and 3 threads must agree bit for bit.
  const int64_t rows = 57, cols = 301;
  Buffer x = MakeBuffer("x", DType::kFloat32, {rows, cols});
  Buffer y = MakeBuffer("y", DType::kFloat32, {rows});
  Buffer acc = MakeBuffer("acc", DType::kFloat32, {});
  Var i = MakeVar("i"), k = MakeVar("k");
  Stmt body = Allocate(
      acc, Block({Store(acc, {}, FloatImm(0)),
                  For(k, IntImm(0), IntImm(cols), ForKind::kSerial,
                      Store(acc, {},
                            Load(acc, {}) + Call(Intrinsic::kTanh, {Load(x, {Ref(i), Ref(k)})}))),
                  Store(y, {Ref(i)}, Load(acc, {}))}));
  Kernel kern{
      "row_tanh_sum", {x, y}, {}, For(i, IntImm(0), IntImm(rows), ForKind::kParallel, body)};
  LLVMJit jit;
  KernelFn fn = jit.Compile({kern})[0];
  std::vector<float> xv = RandomFloats(rows * cols, 99);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<float> yv(rows, -1.0f);
    void* args[] = {xv.data(), yv.data()};
    pool.ParallelFor(TaskCount(kern), [&](int64_t b, int64_t e) { fn(args, b, e); });
    results.push_back(yv);
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
  for (int64_t r = 0; r < rows; ++r) {
    double want = 0;
    for (int64_t c = 0; c < cols; ++c) want += std::tanh(double(xv[r * cols + c]));
    // 301 float additions of values in (-1, 1): within 301 * 2^-24 * |partial sums| of exact.
    ASSERT_NEAR(results[0][r], want, 301 * 6e-8 * 301) << r;
  }
}

TEST(LLVMJit, StridedAndBroadcastAccessesInVectorLoops) {
  // Transpose with the vectorized loop over the strided dimension (gathers), a broadcast read
  // (the same element in every lane) and a scatter (strided store).
  const int64_t n = 19, m = 23;
  Buffer x = MakeBuffer("x", DType::kFloat32, {n, m});
  Buffer s = MakeBuffer("s", DType::kFloat32, {n});
  Buffer t = MakeBuffer("t", DType::kFloat32, {m, n});
  Buffer u = MakeBuffer("u", DType::kFloat32, {n, m});
  Var i = MakeVar("i"), j = MakeVar("j"), i2 = MakeVar("i2"), j2 = MakeVar("j2");
  // t[j, i] = x[i, j] * s[i]: vectorized over j, so t is written with stride n and s[i] is
  // one element broadcast.
  Stmt k1 = For(i, IntImm(0), IntImm(n), ForKind::kSerial,
                For(j, IntImm(0), IntImm(m), ForKind::kVectorize,
                    Store(t, {Ref(j), Ref(i)}, Load(x, {Ref(i), Ref(j)}) * Load(s, {Ref(i)}))));
  // u[i, j] = t[j, i] + x[i, (j * 7) % m]: vectorized over j, reads t with stride n and x
  // through a non-affine index (gather).
  Stmt k2 = For(i2, IntImm(0), IntImm(n), ForKind::kSerial,
                For(j2, IntImm(0), IntImm(m), ForKind::kVectorize,
                    Store(u, {Ref(i2), Ref(j2)},
                          Load(t, {Ref(j2), Ref(i2)}) +
                              Load(x, {Ref(i2), (Ref(j2) * IntImm(7)) % IntImm(m)}))));
  LLVMJit jit;
  auto fns = jit.Compile(
      {Kernel{"scale_transpose", {x, s, t}, {}, k1}, Kernel{"gather_add", {t, x, u}, {}, k2}});
  std::vector<float> xv = RandomFloats(n * m, 11), sv = RandomFloats(n, 12);
  std::vector<float> tv(m * n), uv(n * m);
  void* a1[] = {xv.data(), sv.data(), tv.data()};
  fns[0](a1, 0, 1);
  void* a2[] = {tv.data(), xv.data(), uv.data()};
  fns[1](a2, 0, 1);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < m; ++c) {
      float tt = xv[r * m + c] * sv[r];
      ASSERT_EQ(tv[c * n + r], tt);
      ASSERT_EQ(uv[r * m + c], tt + xv[r * m + (c * 7) % m]);
    }
  }
}

TEST(LLVMJit, VectorLoopWithLetsSelectAndStorageTypes) {
  // out[i] = mask[i] ? v * 2 : -v with v = float(h[i]) (float16 storage), and
  // flag[i] = v > 0.5 (bool storage), vectorized over 37 elements (a remainder included).
  const int64_t n = 37;
  Buffer h = MakeBuffer("h", DType::kFloat16, {n});
  Buffer mask = MakeBuffer("mask", DType::kBool, {n});
  Buffer out = MakeBuffer("out", DType::kFloat32, {n});
  Buffer flag = MakeBuffer("flag", DType::kBool, {n});
  Var i = MakeVar("i"), v = MakeVar("v", DType::kFloat32);
  Stmt body =
      Let(v, Cast(DType::kFloat32, Load(h, {Ref(i)})),
          Block({Store(out, {Ref(i)}, Select(Load(mask, {Ref(i)}), Ref(v) * 2.0, 0.0 - Ref(v))),
                 Store(flag, {Ref(i)}, GT(Ref(v), FloatImm(0.5)))}));
  Kernel k{
      "mixed", {h, mask, out, flag}, {}, For(i, IntImm(0), IntImm(n), ForKind::kVectorize, body)};
  LLVMJit jit;
  KernelFn fn = jit.Compile({k})[0];
  std::vector<float16> hv(n);
  std::vector<uint8_t> mv(n), fv(n, 7);
  std::vector<float> ov(n);
  std::vector<float> src = RandomFloats(n, 21, -2, 2);
  for (int64_t e = 0; e < n; ++e) {
    hv[e] = float16(src[e]);
    mv[e] = e % 3 == 0;
  }
  void* args[] = {hv.data(), mv.data(), ov.data(), fv.data()};
  fn(args, 0, 1);
  for (int64_t e = 0; e < n; ++e) {
    float x = float(hv[e]);
    EXPECT_EQ(ov[e], mv[e] ? x * 2 : -x) << e;
    EXPECT_EQ(fv[e], x > 0.5f ? 1 : 0) << e;
  }
}

TEST(LLVMJit, ReductionWithLocalAccumulatorLetAndIf) {
  // y[i] = sum over k of max(x[i, k], 0), with the k loop unrolled, and z[i] = the count of
  // positive elements, through an if.
  const int64_t rows = 5, cols = 9;
  Buffer x = MakeBuffer("x", DType::kFloat64, {rows, cols});
  Buffer y = MakeBuffer("y", DType::kFloat64, {rows});
  Buffer z = MakeBuffer("z", DType::kInt32, {rows});
  Buffer acc = MakeBuffer("acc", DType::kFloat64, {});
  Buffer cnt = MakeBuffer("cnt", DType::kInt32, {});
  Var i = MakeVar("i"), k = MakeVar("k"), v = MakeVar("v", DType::kFloat64);
  Stmt body = Block({
      Store(acc, {}, FloatImm(0, DType::kFloat64)),
      Store(cnt, {}, IntImm(0, DType::kInt32)),
      For(k, IntImm(0), IntImm(cols), ForKind::kUnroll,
          Let(v, Load(x, {Ref(i), Ref(k)}),
              Block({Store(acc, {}, Load(acc, {}) + Max(Ref(v), FloatImm(0, DType::kFloat64))),
                     If(GT(Ref(v), FloatImm(0, DType::kFloat64)),
                        Store(cnt, {}, Load(cnt, {}) + IntImm(1, DType::kInt32)))}))),
      Store(y, {Ref(i)}, Load(acc, {})),
      Store(z, {Ref(i)}, Load(cnt, {})),
  });
  Kernel kern{
      "relu_row_sum",
      {x, y, z},
      {},
      For(i, IntImm(0), IntImm(rows), ForKind::kParallel, Allocate(acc, Allocate(cnt, body)))};
  LLVMJit jit;
  KernelFn fn = jit.Compile({kern})[0];
  std::mt19937 gen(5);
  std::normal_distribution<double> d;
  std::vector<double> xv(rows * cols), yv(rows);
  std::vector<int32_t> zv(rows);
  for (double& e : xv) e = d(gen);
  void* args[] = {xv.data(), yv.data(), zv.data()};
  fn(args, 0, rows);
  for (int64_t r = 0; r < rows; ++r) {
    double want = 0;
    int32_t count = 0;
    for (int64_t c = 0; c < cols; ++c) {
      want += std::max(xv[r * cols + c], 0.0);
      count += xv[r * cols + c] > 0;
    }
    EXPECT_EQ(yv[r], want);  // same additions in the same order
    EXPECT_EQ(zv[r], count);
  }
}

// Runs a one-element kernel out[0] = f(in[0]) for each input and returns the outputs.
template <class In, class Out>
std::vector<Out> RunScalar(DType in_t, DType out_t, const std::vector<In>& inputs,
                           const std::function<Expr(Expr)>& f) {
  int64_t n = inputs.size();
  Buffer in = MakeBuffer("in", in_t, {n});
  Buffer out = MakeBuffer("out", out_t, {n});
  Var i = MakeVar("i");
  Kernel k{"scalar_fn",
           {in, out},
           {},
           For(i, IntImm(0), IntImm(n), ForKind::kVectorize,
               Store(out, {Ref(i)}, f(Load(in, {Ref(i)}))), 4)};
  LLVMJit jit;
  KernelFn fn = jit.Compile({k})[0];
  std::vector<In> x = inputs;
  std::vector<Out> y(n);
  void* args[] = {x.data(), y.data()};
  fn(args, 0, 1);
  return y;
}

TEST(LLVMJit, CastsSaturateAndBoolsAreBytes) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> in = {1.7f, -1.7f, 3e9f, -3e9f, NAN, inf, 255.5f, -0.0f};
  auto to_i32 = RunScalar<float, int32_t>(DType::kFloat32, DType::kInt32, in,
                                          [](Expr e) { return Cast(DType::kInt32, e); });
  std::vector<int32_t> want_i32 = {1, -1, INT32_MAX, INT32_MIN, 0, INT32_MAX, 255, 0};
  EXPECT_EQ(to_i32, want_i32);
  auto to_u8 = RunScalar<float, uint8_t>(DType::kFloat32, DType::kUInt8, in,
                                         [](Expr e) { return Cast(DType::kUInt8, e); });
  std::vector<uint8_t> want_u8 = {1, 0, 255, 0, 0, 255, 255, 0};
  EXPECT_EQ(to_u8, want_u8);
  // Bool buffers hold 0 or 1 bytes; NaN != 0 is true.
  auto to_bool = RunScalar<float, uint8_t>(DType::kFloat32, DType::kBool, in,
                                           [](Expr e) { return Cast(DType::kBool, e); });
  std::vector<uint8_t> want_bool = {1, 1, 1, 1, 1, 1, 1, 0};
  EXPECT_EQ(to_bool, want_bool);
  // uint8 widens without sign; float16 rounds to nearest even.
  auto u8_to_f = RunScalar<uint8_t, float>(DType::kUInt8, DType::kFloat32, {0, 200, 255, 7},
                                           [](Expr e) { return Cast(DType::kFloat32, e); });
  EXPECT_EQ(u8_to_f, (std::vector<float>{0, 200, 255, 7}));
  auto to_f16 = RunScalar<float, uint16_t>(DType::kFloat32, DType::kFloat16,
                                           {1.0f, 1.0f + 1.0f / 4096, 65520.0f, -2.5f},
                                           [](Expr e) { return Cast(DType::kFloat16, e); });
  for (size_t i = 0; i < to_f16.size(); ++i) {
    float src[] = {1.0f, 1.0f + 1.0f / 4096, 65520.0f, -2.5f};
    EXPECT_EQ(to_f16[i], float16::FromFloat(src[i])) << i;
  }
}

// bfloat16 rounds as the runtime does (bfloat16::FromFloat, which the reference kernels use):
// nearest even, NaN quieted, and subnormals kept, which AVX512-BF16's conversion instruction
// would flush; from float64 and int32 through float32, as static_cast<bfloat16> does. 4 lanes
// and a remainder.
TEST(LLVMJit, BFloat16RoundsLikeTheRuntimeAndKeepsSubnormals) {
  const float inf = std::numeric_limits<float>::infinity();
  const float tiny = std::numeric_limits<float>::denorm_min();
  std::vector<float> in = {1.0f,  1.00390625f, 1.01171875f, -3.3f,          tiny,
                           -tiny, 1e-39f,      -2.5e-40f,   1.1754942e-38f, inf,
                           -inf,  NAN,         3.3895e38f,  -0.0f,          65504.5f};
  auto got = RunScalar<float, uint16_t>(DType::kFloat32, DType::kBFloat16, in,
                                        [](Expr e) { return Cast(DType::kBFloat16, e); });
  for (size_t i = 0; i < in.size(); ++i)
    EXPECT_EQ(got[i], bfloat16::FromFloat(in[i])) << "element " << i << " = " << in[i];
  EXPECT_NE(got[6], 0) << "a subnormal float32 flushed to zero";
  std::vector<double> d = {1e-39, 1.00390625 + 1e-12, -7e-41, 3.0e38};
  auto from_f64 = RunScalar<double, uint16_t>(DType::kFloat64, DType::kBFloat16, d,
                                              [](Expr e) { return Cast(DType::kBFloat16, e); });
  for (size_t i = 0; i < d.size(); ++i)
    EXPECT_EQ(from_f64[i], bfloat16::FromFloat(float(d[i]))) << "element " << i;
  std::vector<int32_t> n = {16777217, -257, 0, 2147483647, 129};
  auto from_i32 = RunScalar<int32_t, uint16_t>(DType::kInt32, DType::kBFloat16, n,
                                               [](Expr e) { return Cast(DType::kBFloat16, e); });
  for (size_t i = 0; i < n.size(); ++i)
    EXPECT_EQ(from_i32[i], bfloat16::FromFloat(float(n[i]))) << "element " << i;
}

TEST(LLVMJit, IntegerDivisionTruncatesAndMinMaxIgnoreNaN) {
  std::vector<int64_t> in = {7, -7, 6, -6, 0};
  auto div = RunScalar<int64_t, int64_t>(DType::kInt64, DType::kInt64, in,
                                         [](Expr e) { return e / IntImm(4); });
  auto mod = RunScalar<int64_t, int64_t>(DType::kInt64, DType::kInt64, in,
                                         [](Expr e) { return e % IntImm(4); });
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(div[i], in[i] / 4) << in[i];  // C semantics: truncation
    EXPECT_EQ(mod[i], in[i] % 4) << in[i];
  }
  std::vector<float> fin = {NAN, 1.0f, -3.0f};
  auto mx = RunScalar<float, float>(DType::kFloat32, DType::kFloat32, fin,
                                    [](Expr e) { return Max(e, FloatImm(0)); });
  EXPECT_EQ(mx, (std::vector<float>{0.0f, 1.0f, 0.0f}));
  // Comparisons with NaN: only != is true.
  auto ne = RunScalar<float, uint8_t>(DType::kFloat32, DType::kBool, {NAN},
                                      [](Expr e) { return NE(e, e); });
  auto eq = RunScalar<float, uint8_t>(DType::kFloat32, DType::kBool, {NAN},
                                      [](Expr e) { return EQ(e, e); });
  auto lt = RunScalar<float, uint8_t>(DType::kFloat32, DType::kBool, {NAN},
                                      [](Expr e) { return LT(e, FloatImm(1)); });
  EXPECT_EQ(ne[0], 1);
  EXPECT_EQ(eq[0], 0);
  EXPECT_EQ(lt[0], 0);
}

TEST(LLVMJit, NativeWidthUsesTheTargetsVectorRegisters) {
  CpuTarget host = ResolveCpuTarget({});
  Kernel k = Axpb("axpb", 64, 0);
  std::string ir = KernelsToLLVMIR({k});
  std::string asm_text = KernelsToAssembly({k});
  int lanes = host.vector_bits / 32;
  EXPECT_NE(ir.find("<" + std::to_string(lanes) + " x float>"), std::string::npos) << ir;
  if (host.vector_bits == 512) {
    EXPECT_NE(asm_text.find("zmm"), std::string::npos) << asm_text;
  }
  // The unoptimised IR shows the calling convention: the entry and the inlinable body.
  std::string raw = KernelsToLLVMIR({k}, {}, /*optimized=*/false);
  EXPECT_NE(raw.find("define void @axpb(ptr %args, i64 %task_begin, i64 %task_end)"),
            std::string::npos)
      << raw;
  EXPECT_NE(raw.find("define internal void @axpb.body(ptr noalias"), std::string::npos) << raw;
}

TEST(LLVMJit, MayAliasBuffersDropNoaliasAndRunInPlace) {
  // x[i] = x[i] * 2 + y[i] through two parameters that are the same array (an in-place pair):
  // marked may_alias, the body's parameters carry no noalias and the result is right.
  const int64_t n = 41;
  Buffer in = MakeBuffer("in", DType::kFloat32, {n}, /*may_alias=*/true);
  Buffer out = MakeBuffer("out", DType::kFloat32, {n}, /*may_alias=*/true);
  Buffer y = MakeBuffer("y", DType::kFloat32, {n});
  Var i = MakeVar("i");
  Kernel k{"in_place",
           {in, y, out},
           {},
           For(i, IntImm(0), IntImm(n), ForKind::kVectorize,
               Store(out, {Ref(i)}, Load(in, {Ref(i)}) * 2.0 + Load(y, {Ref(i)})))};
  std::string raw = KernelsToLLVMIR({k}, {}, /*optimized=*/false);
  EXPECT_NE(raw.find("define internal void @in_place.body(ptr nocapture %0, ptr noalias nocapture "
                     "%1, ptr nocapture %2"),
            std::string::npos)
      << raw;
  LLVMJit jit;
  KernelFn fn = jit.Compile({k})[0];
  std::vector<float> x = RandomFloats(n, 4), yv = RandomFloats(n, 5), want(n);
  for (int64_t e = 0; e < n; ++e) want[e] = x[e] * 2 + yv[e];
  void* args[] = {x.data(), yv.data(), x.data()};
  fn(args, 0, 1);
  for (int64_t e = 0; e < n; ++e) ASSERT_NEAR(x[e], want[e], 1e-6f * (1 + std::abs(want[e]))) << e;
}

TEST(LLVMJit, CpuOverride) {
  CpuTarget avx2 = ResolveCpuTarget({.cpu = "x86-64-v3"});
  EXPECT_EQ(avx2.cpu, "x86-64-v3");
  EXPECT_EQ(avx2.vector_bits, 256);
  CpuTarget avx512 = ResolveCpuTarget({.cpu = "skylake-avx512"});
  EXPECT_EQ(avx512.vector_bits, 512);
  std::string asm_text = KernelsToAssembly({Axpb("axpb", 64, 0)}, {.cpu = "x86-64-v3"});
  EXPECT_EQ(asm_text.find("zmm"), std::string::npos);
  EXPECT_NE(asm_text.find("ymm"), std::string::npos);
  // Code for an AVX2 CPU runs here too and gives the same results.
  LLVMJit jit({.cpu = "x86-64-v3"});
  KernelFn fn = jit.Compile({Axpb("axpb", 100, 0)})[0];
  std::vector<float> x = RandomFloats(100, 1), y(100);
  float a = 2, b = 1;
  void* args[] = {x.data(), y.data(), &a, &b};
  fn(args, 0, 1);
  for (int i = 0; i < 100; ++i) ASSERT_NEAR(y[i], x[i] * 2 + 1, 1e-6f);
  EXPECT_THROW(ResolveCpuTarget({.cpu = "no-such-cpu"}), UserError);
}

TEST(LLVMJit, MalformedKernelsAreRejectedBeforeEmission) {
  Buffer x = MakeBuffer("x", DType::kFloat32, {4});
  Var i = MakeVar("i");
  Kernel bad{
      "bad", {x}, {}, For(i, IntImm(0), IntImm(4), ForKind::kSerial, Store(x, {Ref(i)}, Ref(i)))};
  LLVMJit jit;
  EXPECT_THROW(jit.Compile({bad}), InternalError);
  // Names are unique per JIT.
  jit.Compile({Axpb("twice", 4, 0)});
  EXPECT_THROW(jit.Compile({Axpb("twice", 4, 0)}), InternalError);
}

}  // namespace
}  // namespace kiln::codegen
