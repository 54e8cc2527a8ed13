// gemm_kernel_test.cpp - the runtime's GEMM (kiln/runtime/gemm.h) against double-precision
// loops: every layout and transposition, packed and unpacked B, accumulation, batches, edge and
// empty sizes, the epilogue's row blocks, bit-identical results across thread counts, and each
// instruction set this machine can run.
//
// Tolerance per element: |C - C_ref| <= 1e-5 * (sum_k |a_ik b_kj| + |C_0 ij|) + 1e-30.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <vector>

#include "kiln/runtime/error.h"
#include "kiln/runtime/gemm.h"
#include "kiln/runtime/thread_pool.h"

namespace kiln {
namespace {

struct Case {
  int64_t m, n, k;
  bool trans_a = false;
  BLayout layout = BLayout::kNK;
  bool packed = false;
  bool accumulate = false;
  int64_t batch = 1;
  bool share_a = false, share_b = false;  // stride 0
  int64_t pad = 0;                        // extra leading-dimension elements
};

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// The operands of one case, laid out as GemmArgs says, and the reference result.
struct Problem {
  Case cs;
  int64_t lda, ldb, ldc, sa, sb, sc;
  std::vector<float> a, b, c0;
  std::vector<double> ref, mag;

  explicit Problem(const Case& k, uint32_t seed = 1) : cs(k) {
    lda = (k.trans_a ? k.m : k.k) + k.pad;
    ldb = (k.layout == BLayout::kNK ? k.k : k.n) + k.pad;
    ldc = k.n + k.pad;
    int64_t a_rows = k.trans_a ? k.k : k.m, b_rows = k.layout == BLayout::kNK ? k.n : k.k;
    sa = k.share_a ? 0 : a_rows * lda + 5;
    sb = k.share_b ? 0 : b_rows * ldb + 3;
    sc = k.m * ldc + 7;
    a = Random(size_t(std::max<int64_t>(1, sa * (k.batch - 1) + a_rows * lda)), seed);
    b = Random(size_t(std::max<int64_t>(1, sb * (k.batch - 1) + b_rows * ldb)), seed + 1);
    c0 = Random(size_t(std::max<int64_t>(1, sc * k.batch)), seed + 2);
    ref.assign(c0.size(), 0);
    mag.assign(c0.size(), 0);
    for (size_t i = 0; i < c0.size(); ++i) ref[i] = c0[i];
    for (int64_t bt = 0; bt < k.batch; ++bt)
      for (int64_t i = 0; i < k.m; ++i)
        for (int64_t j = 0; j < k.n; ++j) {
          double acc = 0, m = 0;
          for (int64_t kk = 0; kk < k.k; ++kk) {
            double x = k.trans_a ? a[bt * sa + kk * lda + i] : a[bt * sa + i * lda + kk];
            double y =
                k.layout == BLayout::kNK ? b[bt * sb + j * ldb + kk] : b[bt * sb + kk * ldb + j];
            acc += x * y;
            m += std::fabs(x * y);
          }
          size_t at = size_t(bt * sc + i * ldc + j);
          if (k.accumulate) {
            ref[at] += acc;
            m += std::fabs(c0[at]);
          } else {
            ref[at] = acc;
          }
          mag[at] = m;
        }
  }

  GemmArgs Args(std::vector<float>& c, const PackedB* pb, GemmIsa isa) const {
    GemmArgs g;
    g.m = cs.m, g.n = cs.n, g.k = cs.k, g.batch = cs.batch;
    g.a = a.data(), g.lda = lda, g.trans_a = cs.trans_a, g.stride_a = sa;
    g.b = b.data(), g.ldb = ldb, g.b_layout = cs.layout, g.stride_b = sb;
    g.packed_b = pb;
    g.c = c.data(), g.ldc = ldc, g.stride_c = sc, g.accumulate = cs.accumulate;
    g.isa = isa;
    return g;
  }

  std::vector<float> Run(GemmIsa isa, ThreadPool* pool, GemmEpilogue ep = {}) const {
    std::vector<float> c = c0;
    PackedB pb;
    if (cs.packed) pb = PackB(b.data(), ldb, cs.layout, cs.n, cs.k, pool);
    GemmArgs g = Args(c, cs.packed ? &pb : nullptr, isa);
    g.epilogue = ep;
    Gemm(g, pool);
    return c;
  }

  // Checks C against the reference; elements outside C (padding, gaps) must be untouched.
  void Check(const std::vector<float>& c, const char* what) const {
    std::vector<bool> inside(c.size(), false);
    for (int64_t bt = 0; bt < cs.batch; ++bt)
      for (int64_t i = 0; i < cs.m; ++i)
        for (int64_t j = 0; j < cs.n; ++j) inside[size_t(bt * sc + i * ldc + j)] = true;
    int bad = 0;
    for (size_t i = 0; i < c.size() && bad < 5; ++i) {
      double want = inside[i] ? ref[i] : c0[i];
      double tol = inside[i] ? 1e-5 * mag[i] + 1e-30 : 0;
      if (!(std::fabs(c[i] - want) <= tol)) {
        ADD_FAILURE() << what << ": M=" << cs.m << " N=" << cs.n << " K=" << cs.k
                      << " trans_a=" << cs.trans_a << " layout=" << int(cs.layout)
                      << " packed=" << cs.packed << " acc=" << cs.accumulate
                      << " batch=" << cs.batch << " pad=" << cs.pad << ": element " << i
                      << (inside[i] ? "" : " (outside C)") << " is " << c[i] << ", want " << want
                      << " (tolerance " << tol << ")";
        ++bad;
      }
    }
  }
};

std::vector<GemmIsa> Isas() {
  std::vector<GemmIsa> out;
  for (GemmIsa isa : {GemmIsa::kGeneric, GemmIsa::kAvx2, GemmIsa::kAvx512})
    if (GemmIsaSupported(isa)) out.push_back(isa);
  return out;
}

const std::vector<std::array<int64_t, 3>> kShapes = {
    {0, 5, 3},     {3, 0, 4},     {4, 5, 0},     {1, 1, 1},     {1, 37, 19},   {2, 100, 384},
    {3, 17, 5},    {4, 16, 33},   {5, 10, 512},  {13, 31, 385}, {14, 32, 384}, {15, 33, 769},
    {29, 65, 100}, {170, 70, 50}, {200, 48, 30}, {1, 520, 77},  {6, 9, 17},    {31, 200, 3}};

TEST(Gemm, EveryLayoutAndIsaMatchesTheReference) {
  for (GemmIsa isa : Isas())
    for (auto [m, n, k] : kShapes)
      for (int opts = 0; opts < 16; ++opts) {
        Case cs{m, n, k};
        cs.trans_a = opts & 1;
        cs.layout = opts & 2 ? BLayout::kKN : BLayout::kNK;
        cs.packed = opts & 4;
        cs.accumulate = opts & 8;
        cs.pad = (m + n + k + opts) % 3;
        Problem p(cs, uint32_t(m * 7 + n * 3 + k + opts));
        p.Check(p.Run(isa, nullptr), GemmIsaName(isa));
      }
}

TEST(Gemm, BatchesWithStridesAndSharedOperands) {
  for (GemmIsa isa : Isas())
    for (auto [m, n, k] : std::vector<std::array<int64_t, 3>>{
             {3, 40, 20}, {20, 12, 70}, {33, 70, 400}, {2, 5, 3}, {0, 4, 4}})
      for (int opts = 0; opts < 32; ++opts) {
        Case cs{m, n, k};
        cs.batch = 3;
        cs.trans_a = opts & 1;
        cs.layout = opts & 2 ? BLayout::kKN : BLayout::kNK;
        cs.share_b = opts & 4;
        cs.packed = cs.share_b && (opts & 8);
        cs.share_a = opts & 16;
        cs.accumulate = opts & 8;
        Problem p(cs, uint32_t(opts + m));
        p.Check(p.Run(isa, nullptr), GemmIsaName(isa));
      }
}

TEST(Gemm, KZeroGivesZerosOrLeavesC) {
  for (bool acc : {false, true}) {
    Case cs{5, 7, 0};
    cs.accumulate = acc;
    Problem p(cs);
    std::vector<float> c = p.Run(GemmIsa::kAuto, nullptr);
    for (int64_t i = 0; i < 5; ++i)
      for (int64_t j = 0; j < 7; ++j)
        EXPECT_EQ(c[size_t(i * p.ldc + j)], acc ? p.c0[size_t(i * p.ldc + j)] : 0.0f);
  }
}

// The epilogue records its calls and adds 1 to its rows, which must therefore be final.
struct Recorder {
  std::mutex mu;
  std::vector<std::array<int64_t, 3>> calls;
  float* c;
  int64_t n, ldc, sc;
  static void Fn(void* ctx, int64_t batch, int64_t r0, int64_t r1) {
    auto* r = static_cast<Recorder*>(ctx);
    {
      std::lock_guard<std::mutex> lock(r->mu);
      r->calls.push_back({batch, r0, r1});
    }
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t j = 0; j < r->n; ++j) r->c[batch * r->sc + i * r->ldc + j] += 1.0f;
  }
};

TEST(Gemm, EpilogueRunsOnceOnEveryFinishedRow) {
  ThreadPool pool2(2), pool3(3);
  for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool2, &pool3})
    for (auto [m, n, k] : std::vector<std::array<int64_t, 3>>{{1, 600, 30},
                                                              {3, 10, 40},
                                                              {40, 10, 800},
                                                              {400, 70, 400},
                                                              {20, 300, 20},
                                                              {169, 33, 5},
                                                              {7, 7, 0}})
      for (int opts = 0; opts < 8; ++opts) {
        Case cs{m, n, k};
        cs.layout = opts & 1 ? BLayout::kKN : BLayout::kNK;
        cs.packed = opts & 2;
        cs.batch = opts & 4 ? 2 : 1;
        cs.share_b = cs.packed;  // a PackedB serves every batch entry
        cs.accumulate = opts & 4;
        Problem p(cs);
        std::vector<float> c = p.c0;
        Recorder rec;
        rec.c = c.data(), rec.n = n, rec.ldc = p.ldc, rec.sc = p.sc;
        PackedB pb;
        if (cs.packed) pb = PackB(p.b.data(), p.ldb, cs.layout, n, k);
        GemmArgs g = p.Args(c, cs.packed ? &pb : nullptr, GemmIsa::kAuto);
        g.epilogue = {&Recorder::Fn, &rec};
        Gemm(g, pool);
        std::vector<int> seen(size_t(m * cs.batch), 0);
        for (auto [b, r0, r1] : rec.calls) {
          ASSERT_TRUE(b >= 0 && b < cs.batch && r0 >= 0 && r0 < r1 && r1 <= m);
          EXPECT_LE(r1 - r0, kGemmMC);
          for (int64_t i = r0; i < r1; ++i) ++seen[size_t(b * m + i)];
        }
        for (int s : seen) ASSERT_EQ(s, 1) << "M=" << m << " N=" << n << " K=" << k;
        for (double& x : p.ref) x += 1;  // (Check compares the outside of C with c0)
        p.Check(c, "epilogue");
      }
}

TEST(Gemm, ThreadCountsGiveBitIdenticalResults) {
  ThreadPool pool2(2), pool3(3);
  for (GemmIsa isa : Isas())
    for (auto [m, n, k] : std::vector<std::array<int64_t, 3>>{{1, 700, 50},
                                                              {3, 300, 400},
                                                              {4, 10, 600},
                                                              {17, 9, 100},
                                                              {64, 512, 784},
                                                              {300, 100, 100},
                                                              {50, 1000, 30}})
      for (int opts = 0; opts < 8; ++opts) {
        Case cs{m, n, k};
        cs.trans_a = opts & 1;
        cs.layout = opts & 2 ? BLayout::kKN : BLayout::kNK;
        cs.packed = opts & 4;
        Problem p(cs);
        std::vector<float> c1 = p.Run(isa, nullptr);
        std::vector<float> c2 = p.Run(isa, &pool2);
        std::vector<float> c3 = p.Run(isa, &pool3);
        ASSERT_EQ(0, std::memcmp(c1.data(), c2.data(), c1.size() * 4))
            << GemmIsaName(isa) << " M=" << m << " N=" << n << " K=" << k << " opts=" << opts;
        ASSERT_EQ(0, std::memcmp(c1.data(), c3.data(), c1.size() * 4))
            << GemmIsaName(isa) << " M=" << m << " N=" << n << " K=" << k << " opts=" << opts;
        p.Check(c2, "2 threads");
      }
}

TEST(Gemm, CallerWorkspaceAndPackBInto) {
  ThreadPool pool(2);
  Case cs{50, 100, 500};
  cs.layout = BLayout::kKN;
  Problem p(cs);
  std::vector<float> c = p.c0;
  GemmArgs g = p.Args(c, nullptr, GemmIsa::kAuto);
  int64_t bytes = GemmWorkspaceBytes(g, 2);
  EXPECT_GT(bytes, 0);
  std::vector<float> ws(size_t(bytes / 4 + 16));
  g.workspace =
      reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(ws.data()) + 63) & ~uintptr_t(63));
  Gemm(g, &pool);
  p.Check(c, "caller workspace");

  std::vector<float> mem(size_t(PackedBFloats(cs.n, cs.k)) + 16);
  float* aligned =
      reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(mem.data()) + 63) & ~uintptr_t(63));
  PackedB pb = PackBInto(p.b.data(), p.ldb, cs.layout, cs.n, cs.k, aligned);
  EXPECT_EQ(pb.data(), aligned);
  c = p.c0;
  g = p.Args(c, &pb, GemmIsa::kAuto);
  Gemm(g, nullptr);
  p.Check(c, "PackBInto");
}

TEST(Gemm, BadArgumentsAreUserErrors) {
  std::vector<float> a(100), b(100), c(100);
  GemmArgs g;
  g.m = 4, g.n = 5, g.k = 6;
  g.a = a.data(), g.lda = 6, g.b = b.data(), g.ldb = 6, g.c = c.data(), g.ldc = 4;
  EXPECT_THROW(Gemm(g), UserError);  // ldc < N
  g.ldc = 5, g.lda = 5;
  EXPECT_THROW(Gemm(g), UserError);  // lda < K
  g.lda = 6;
  PackedB pb = PackB(b.data(), 6, BLayout::kNK, 6, 6);
  g.packed_b = &pb;
  EXPECT_THROW(Gemm(g), UserError);  // packed [6, 6] for N=5
  g.packed_b = nullptr, g.m = -1;
  EXPECT_THROW(Gemm(g), UserError);
}

TEST(Gemm, DispatchNamesAndBestIsa) {
  EXPECT_TRUE(GemmIsaSupported(GemmIsa::kGeneric));
  EXPECT_TRUE(GemmIsaSupported(GemmBestIsa()));
  EXPECT_STREQ(GemmIsaName(GemmIsa::kAvx512), "avx512");
  bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("avx512vl");
  EXPECT_EQ(GemmIsaSupported(GemmIsa::kAvx512), avx512);
  std::printf("gemm ISAs on this machine: best %s; tested:", GemmIsaName(GemmBestIsa()));
  for (GemmIsa isa : Isas()) std::printf(" %s", GemmIsaName(isa));
  std::printf("\n");
}

}  // namespace
}  // namespace kiln
