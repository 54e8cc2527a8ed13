// The GEMM driver (kiln/runtime/gemm.h): argument checks, ISA dispatch, packing, and the split
// of the work over the thread pool. The arithmetic is in gemm_{avx512,avx2,generic}.cpp.
//
// Paths, chosen from the shapes only (so that results do not depend on the thread count):
//   blocked  op(B) in 32-column panels (prepacked, or packed into the workspace once per call):
//            for each block of at most kMC rows, A packed for all of K, then for each block of
//            K the micro-kernel over every panel and tile. The rows' epilogue runs right after.
//   dot      N <= 16 (or M <= 4 with B stored [N, K]): dot products along K on B's rows; no
//            packing, no wasted lanes on a narrow N.
//   axpy     M <= 4 with B stored [K, N]: rows of C updated along K, streaming B once.
// Work units are (batch entry, row block, column block); column blocks exist only when there
// are fewer row blocks than threads. Row blocks depend on M alone and column blocks start at
// multiples of 32, so every element is computed by the same instructions for any thread count.
#include "kiln/runtime/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gemm_internal.h"
#include "kiln/runtime/error.h"

namespace kiln {
namespace gemm_detail {

static_assert(kGemmMC == kMC && kGemmMR == kMR && kGemmNR == kNR && kGemmKC == kKC &&
              kGemmDotMaxN == kDotMaxN && kMC % kMR == 0);

namespace {

bool CpuHasAvx512() {
  static const bool has = [] {
    __builtin_cpu_init();
    return kAvx512Kernels && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("fma");
  }();
  return has;
}
bool CpuHasAvx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return kAvx2Kernels && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}

// The ISA kAuto means: the best supported, lowered by KILN_GEMM_ISA.
GemmIsa AutoIsa() {
  static const GemmIsa isa = [] {
    GemmIsa best = CpuHasAvx512() ? GemmIsa::kAvx512
                   : CpuHasAvx2() ? GemmIsa::kAvx2
                                  : GemmIsa::kGeneric;
    const char* env = std::getenv("KILN_GEMM_ISA");
    if (!env || !*env) return best;
    std::string s = env;
    GemmIsa want = s == "avx512"    ? GemmIsa::kAvx512
                   : s == "avx2"    ? GemmIsa::kAvx2
                   : s == "generic" ? GemmIsa::kGeneric
                                    : GemmIsa::kAuto;
    if (want == GemmIsa::kAuto)
      throw UserError("KILN_GEMM_ISA='" + s + "': expected avx512, avx2 or generic");
    return std::min(want, best);
  }();
  return isa;
}

enum class Path { kBlocked, kDot, kAxpy };

// How one Gemm call is split: rows in blocks of `mb` (nmu of them), columns in blocks of `nb`
// (nnu of them), and the workspace it needs.
struct Schedule {
  Path path = Path::kBlocked;
  bool pack_b = false;  // blocked with an unpacked B: panels packed into the workspace
  int64_t mb = 0, nmu = 0, nb = 0, nnu = 0;
  int64_t b_floats = 0;             // packed panels of one B
  int64_t a_floats_per_thread = 0;  // packed A (blocked) or A^T rows (dot, axpy)
};

Schedule MakeSchedule(const GemmArgs& g, int threads, bool panels = false) {
  Schedule s;
  if (panels)
    s.path = Path::kBlocked;
  else if (g.packed_b)
    s.path = g.packed_b->dot_form() ? Path::kDot : Path::kBlocked;
  else if (g.b_layout == BLayout::kNK && (g.n <= kDotMaxN || g.m <= 4))
    s.path = Path::kDot;
  else if (g.b_layout == BLayout::kKN && g.m <= 4)
    s.path = Path::kAxpy;
  else
    s.path = Path::kBlocked;
  s.pack_b = s.path == Path::kBlocked && !g.packed_b && !panels;
  // Row blocks of nearly equal size, at most kMC rows, a multiple of the tile height.
  int64_t grain = s.path == Path::kBlocked ? kMR : 4;
  int64_t blocks = std::max<int64_t>(1, (g.m + kMC - 1) / kMC);
  s.mb = std::min<int64_t>(kMC, RoundUp((g.m + blocks - 1) / blocks, grain));
  s.nmu = std::max<int64_t>(1, (g.m + s.mb - 1) / s.mb);
  int64_t col_groups = std::max<int64_t>(1, (g.n + kNR - 1) / kNR);
  s.nnu = 1;
  if (g.batch * s.nmu < threads) s.nnu = std::min<int64_t>(col_groups, threads);
  s.nb = (col_groups + s.nnu - 1) / s.nnu * kNR;
  s.nnu = (g.n + s.nb - 1) / s.nb;
  if (s.pack_b) s.b_floats = RoundUp(g.n, kNR) * g.k;
  if (s.path == Path::kBlocked)
    s.a_floats_per_thread = RoundUp(s.mb, kMR) * g.k;
  else if (g.trans_a)
    s.a_floats_per_thread = s.mb * g.k;
  s.b_floats = RoundUp(s.b_floats, 16);
  s.a_floats_per_thread = RoundUp(s.a_floats_per_thread, 16);
  return s;
}

// Builds the message only on failure (these checks run on every call).
#define KILN_GEMM_CHECK(cond, ...)                               \
  do {                                                           \
    if (!(cond)) throw UserError(StrCat("gemm: ", __VA_ARGS__)); \
  } while (0)

void Validate(const GemmArgs& g) {
  KILN_GEMM_CHECK(
      g.m >= 0 && g.n >= 0 && g.k >= 0 && g.batch >= 0,
      StrCat("negative size (M=", g.m, ", N=", g.n, ", K=", g.k, ", batch=", g.batch, ")"));
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  KILN_GEMM_CHECK(g.c != nullptr, "C is null");
  KILN_GEMM_CHECK(g.ldc >= g.n, StrCat("ldc=", g.ldc, " is below N=", g.n));
  if (g.k == 0) return;
  KILN_GEMM_CHECK(g.a != nullptr, "A is null");
  KILN_GEMM_CHECK(g.lda >= (g.trans_a ? g.m : g.k),
                  StrCat("lda=", g.lda, " is below ", g.trans_a ? "M=" : "K=",
                         g.trans_a ? g.m : g.k, g.trans_a ? " (A transposed, stored [K, M])" : ""));
  if (g.packed_b) {
    KILN_GEMM_CHECK(g.packed_b->n() == g.n && g.packed_b->k() == g.k,
                    StrCat("the packed B is [K=", g.packed_b->k(), ", N=", g.packed_b->n(),
                           "], the product needs [K=", g.k, ", N=", g.n, "]"));
    KILN_GEMM_CHECK(g.packed_b->data() != nullptr, "the packed B holds no data");
  } else {
    KILN_GEMM_CHECK(g.b != nullptr, "B is null");
    bool nk = g.b_layout == BLayout::kNK;
    KILN_GEMM_CHECK(g.ldb >= (nk ? g.k : g.n),
                    StrCat("ldb=", g.ldb, " is below ", nk ? "K=" : "N=", nk ? g.k : g.n,
                           nk ? " (B stored [N, K])" : " (B stored [K, N])"));
  }
}

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
std::unique_ptr<float[], AlignedFree> AllocFloats(int64_t floats) {
  size_t bytes = size_t(RoundUp(std::max<int64_t>(floats, 16) * 4, 64));
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!p) throw RuntimeError(StrCat("gemm: cannot allocate ", bytes, " bytes of workspace"));
  return std::unique_ptr<float[], AlignedFree>(p);
}

// Runs fn(begin, end) over [0, n) on the pool, or inline.
template <class F>
void Parallel(ThreadPool* pool, int64_t n, F&& fn) {
  if (n <= 0) return;
  if (pool && pool->num_threads() > 1 && n > 1)
    pool->ParallelFor(n, fn);
  else
    fn(0, n);
}

// Packs rows [i0, i0 + rows) of A_b, all of K, as the blocked path reads them: block k0 at
// out + k0 * RoundUp(rows, kMR), tile t of it at + t * kc * kMR (kMR values per k).
void PackA(const GemmArgs& g, const float* a, int64_t i0, int64_t rows, float* out) {
  int64_t mpad = RoundUp(rows, kMR);
  for (int64_t k0 = 0; k0 < g.k; k0 += kKC) {
    int64_t kc = std::min<int64_t>(kKC, g.k - k0);
    for (int64_t t = 0; t * kMR < rows; ++t) {
      float* dst = out + k0 * mpad + t * kc * kMR;
      int64_t r0 = i0 + t * kMR, nr = std::min<int64_t>(kMR, rows - t * kMR);
      if (!g.trans_a) {
        for (int64_t r = 0; r < nr; ++r) {
          const float* src = a + (r0 + r) * g.lda + k0;
          for (int64_t k = 0; k < kc; ++k) dst[k * kMR + r] = src[k];
        }
      } else {
        for (int64_t k = 0; k < kc; ++k)
          std::memcpy(dst + k * kMR, a + (k0 + k) * g.lda + r0, size_t(nr) * 4);
      }
    }
  }
}

struct BSource {
  const GemmKernels* kr;
  const float* b;
  int64_t ldb;
  BLayout layout;
};
void PackPanelFromB(const void* ctx, int64_t k0, int64_t kc, int64_t j0, int64_t cols, float* dst) {
  const BSource& s = *static_cast<const BSource*>(ctx);
  if (s.layout == BLayout::kNK) {
    s.kr->pack_nk(s.b + j0 * s.ldb + k0, s.ldb, cols, kc, dst);
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {
    float* row = dst + k * kNR;
    std::memcpy(row, s.b + (k0 + k) * s.ldb + j0, size_t(cols) * 4);
    for (int64_t c = cols; c < kNR; ++c) row[c] = 0.0f;
  }
}

void CallEpilogues(const GemmArgs& g, const Schedule& s, ThreadPool* pool, int64_t b0, int64_t b1) {
  if (!g.epilogue.fn) return;
  Parallel(pool, (b1 - b0) * s.nmu, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      int64_t b = b0 + u / s.nmu, r0 = (u % s.nmu) * s.mb;
      g.epilogue.fn(g.epilogue.ctx, b, r0, std::min(g.m, r0 + s.mb));
    }
  });
}

// Batch entries [b0, b1): every unit (entry, row block, column block) on the pool. `panels`:
// op(B) in panel layout (blocked) or [N, K] rows (dot form of a PackedB), shared by the entries.
void RunUnits(const GemmArgs& g, const Schedule& s, const GemmKernels& kr, const float* panels,
              const float* packed_a, float* ws_a, ThreadPool* pool, int64_t b0, int64_t b1) {
  int64_t units = (b1 - b0) * s.nmu * s.nnu;
  int64_t npad = RoundUp(g.n, kNR);
  int threads = pool ? pool->num_threads() : 1;
  auto run = [&](int64_t u0, int64_t u1) {
    // Which thread this is: the static split gives range t to [units*t/T, units*(t+1)/T).
    int t = 0;
    while (t + 1 < threads && ThreadPool::RangeBegin(units, t + 1, threads) <= u0) ++t;
    float* const mine = ws_a + t * s.a_floats_per_thread;  // this thread's scratch
    const float* apack = mine;                             // A as the kernels read it
    int64_t packed_for = -1;  // the (entry, row block) whose A is in apack
    for (int64_t u = u0; u < u1; ++u) {
      int64_t b = b0 + u / (s.nmu * s.nnu), mu = u / s.nnu % s.nmu, nu = u % s.nnu;
      int64_t i0 = mu * s.mb, rows = std::min(s.mb, g.m - i0);
      int64_t j0 = nu * s.nb, cols = std::min(s.nb, g.n - j0);
      const float* a = g.a + b * g.stride_a;
      float* c = g.c + b * g.stride_c + i0 * g.ldc + j0;
      bool acc = g.accumulate;
      if (s.path == Path::kBlocked) {
        if (packed_a) {  // every row block packed by the caller (batch 1)
          apack = packed_a + mu * RoundUp(s.mb, kMR) * g.k;
          packed_for = b * s.nmu + mu;
        } else if (packed_for != b * s.nmu + mu) {
          PackA(g, a, i0, rows, mine);
          packed_for = b * s.nmu + mu;
        }
        int64_t mpad = RoundUp(rows, kMR);
        for (int64_t k0 = 0; k0 < g.k; k0 += kKC) {
          int64_t kc = std::min<int64_t>(kKC, g.k - k0);
          kr.block(rows, cols, kc, apack + k0 * mpad, panels + k0 * npad + j0 * kc, c, g.ldc,
                   acc || k0 > 0);
        }
      } else {
        const float* arows = a + i0 * g.lda;
        int64_t lda = g.lda;
        if (g.trans_a) {
          if (packed_for != b * s.nmu + mu) {
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t k = 0; k < g.k; ++k) mine[r * g.k + k] = a[k * g.lda + i0 + r];
            packed_for = b * s.nmu + mu;
          }
          arows = apack, lda = g.k;
        }
        if (s.path == Path::kDot) {
          const float* bb = panels ? panels : g.b + b * g.stride_b;
          int64_t ldb = panels ? g.k : g.ldb;
          kr.dot(rows, cols, g.k, arows, lda, bb + j0 * ldb, ldb, c, g.ldc, acc);
        } else {
          kr.axpy(rows, cols, g.k, arows, lda, g.b + b * g.stride_b + j0, g.ldb, c, g.ldc, acc);
        }
      }
      if (s.nnu == 1 && g.epilogue.fn) g.epilogue.fn(g.epilogue.ctx, b, i0, i0 + rows);
    }
  };
  Parallel(pool, units, run);
  if (s.nnu > 1) CallEpilogues(g, s, pool, b0, b1);
}

int Threads(ThreadPool* pool) {
  return pool ? pool->num_threads() : 1;
}

}  // namespace

const GemmKernels& SelectKernels(GemmIsa isa) {
  if (isa == GemmIsa::kAuto) isa = AutoIsa();
  if (!GemmIsaSupported(isa))
    throw UserError(StrCat("gemm: this CPU cannot run the ", GemmIsaName(isa), " kernels"));
  switch (isa) {
    case GemmIsa::kAvx512:
      return *kAvx512Kernels;
    case GemmIsa::kAvx2:
      return *kAvx2Kernels;
    default:
      return kGenericKernels;
  }
}

void PackPanels(const PanelSource& src, int64_t n, int64_t k, float* out, ThreadPool* pool) {
  int64_t npanels = (n + kNR - 1) / kNR, nkb = (k + kKC - 1) / kKC;
  int64_t npad = npanels * kNR;
  Parallel(pool, npanels * nkb, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      int64_t k0 = (u / npanels) * kKC, p = u % npanels;
      int64_t kc = std::min<int64_t>(kKC, k - k0);
      src.pack(src.ctx, k0, kc, p * kNR, std::min<int64_t>(kNR, n - p * kNR),
               out + k0 * npad + p * kc * kNR);
    }
  });
}

int64_t GemmOnPanelsWorkspaceBytes(const GemmArgs& g, int num_threads) {
  if (g.m <= 0 || g.n <= 0 || g.k <= 0) return 0;
  Schedule s = MakeSchedule(g, std::max(1, num_threads), /*panels=*/true);
  return std::max(1, num_threads) * s.a_floats_per_thread * 4;
}

int64_t PackedAFloats(const GemmArgs& g) {
  Schedule s = MakeSchedule(g, 1, /*panels=*/true);
  return s.nmu * RoundUp(s.mb, kMR) * g.k;
}

void PackAForPanels(const GemmArgs& g, float* out) {
  Schedule s = MakeSchedule(g, 1, /*panels=*/true);
  for (int64_t mu = 0; mu < s.nmu; ++mu)
    PackA(g, g.a, mu * s.mb, std::min(s.mb, g.m - mu * s.mb), out + mu * RoundUp(s.mb, kMR) * g.k);
}

void GemmOnPanels(const GemmArgs& g, const float* panels, ThreadPool* pool, const float* packed_a) {
  if (g.m == 0 || g.n == 0 || g.k == 0) return Gemm(g, pool);
  const GemmKernels& kr = SelectKernels(g.isa);
  Schedule s = MakeSchedule(g, Threads(pool), /*panels=*/true);
  RunUnits(g, s, kr, panels, packed_a, static_cast<float*>(g.workspace), pool, 0, 1);
}

}  // namespace gemm_detail

using namespace gemm_detail;

const char* GemmIsaName(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::kAuto:
      return "auto";
    case GemmIsa::kGeneric:
      return "generic";
    case GemmIsa::kAvx2:
      return "avx2";
    case GemmIsa::kAvx512:
      return "avx512";
  }
  return "?";
}

bool GemmIsaSupported(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::kAvx512:
      return CpuHasAvx512();
    case GemmIsa::kAvx2:
      return CpuHasAvx2();
    default:
      return true;
  }
}

GemmIsa GemmBestIsa() {
  return AutoIsa();
}

int64_t PackedBFloats(int64_t n, int64_t k) {
  return n <= kDotMaxN ? n * k : RoundUp(n, kNR) * k;
}

PackedB PackBInto(const float* b, int64_t ldb, BLayout layout, int64_t n, int64_t k, float* out,
                  ThreadPool* pool) {
  KILN_GEMM_CHECK(n >= 0 && k >= 0, StrCat("PackB: negative size (N=", n, ", K=", k, ")"));
  bool nk = layout == BLayout::kNK;
  if (n * k > 0) {
    KILN_GEMM_CHECK(b && out, "PackB: null pointer");
    KILN_GEMM_CHECK(ldb >= (nk ? k : n),
                    StrCat("PackB: ldb=", ldb, " is below ", nk ? "K=" : "N=", nk ? k : n));
  }
  PackedB p;
  p.n_ = n, p.k_ = k, p.data_ = out;
  if (n * k == 0) return p;
  if (n <= kDotMaxN) {  // dot form: op(B)^T rows [N, K]
    for (int64_t j = 0; j < n; ++j)
      for (int64_t kk = 0; kk < k; ++kk) out[j * k + kk] = nk ? b[j * ldb + kk] : b[kk * ldb + j];
    return p;
  }
  BSource src{&SelectKernels(GemmIsa::kAuto), b, ldb, layout};
  PackPanels(PanelSource{&PackPanelFromB, &src}, n, k, out, pool);
  return p;
}

PackedB PackB(const float* b, int64_t ldb, BLayout layout, int64_t n, int64_t k, ThreadPool* pool) {
  int64_t floats = PackedBFloats(n, k);
  auto mem = AllocFloats(floats);
  PackedB p = PackBInto(b, ldb, layout, n, k, mem.get(), pool);
  p.owned_ = std::shared_ptr<float[]>(mem.release(), AlignedFree());
  return p;
}

int64_t GemmWorkspaceBytes(const GemmArgs& g, int num_threads) {
  if (g.m <= 0 || g.n <= 0 || g.k <= 0 || g.batch <= 0) return 0;
  Schedule s = MakeSchedule(g, std::max(1, num_threads));
  return (s.b_floats + std::max(1, num_threads) * s.a_floats_per_thread) * 4;
}

void Gemm(const GemmArgs& g, ThreadPool* pool) {
  Validate(g);
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  if (g.k == 0) {  // C = 0 (or left as it is), then the epilogues
    if (!g.accumulate)
      for (int64_t b = 0; b < g.batch; ++b)
        for (int64_t i = 0; i < g.m; ++i)
          std::memset(g.c + b * g.stride_c + i * g.ldc, 0, size_t(g.n) * 4);
    Schedule s;
    s.mb = kMC, s.nmu = (g.m + kMC - 1) / kMC;
    CallEpilogues(g, s, pool, 0, g.batch);
    return;
  }
  const GemmKernels& kr = SelectKernels(g.isa);
  // Below about 5 us of work, waking a second thread costs more than it saves.
  constexpr double kMinParallelMacs = 1 << 18;
  if (double(g.m) * double(g.n) * double(g.k) * double(g.batch) < kMinParallelMacs) pool = nullptr;
  int threads = Threads(pool);
  Schedule s = MakeSchedule(g, threads);
  std::unique_ptr<float[], AlignedFree> owned;
  float* ws = static_cast<float*>(g.workspace);
  if (!ws && s.b_floats + s.a_floats_per_thread > 0) {
    owned = AllocFloats(s.b_floats + threads * s.a_floats_per_thread);
    ws = owned.get();
  }
  float* ws_a = ws + s.b_floats;
  if (g.packed_b) {
    RunUnits(g, s, kr, g.packed_b->data(), nullptr, ws_a, pool, 0, g.batch);
  } else if (!s.pack_b) {
    RunUnits(g, s, kr, nullptr, nullptr, ws_a, pool, 0, g.batch);
  } else {
    // B packed into the workspace: once when the entries share it, else once per entry.
    int64_t step = g.stride_b == 0 ? g.batch : 1;
    for (int64_t b0 = 0; b0 < g.batch; b0 += step) {
      BSource src{&kr, g.b + b0 * g.stride_b, g.ldb, g.b_layout};
      PackPanels(PanelSource{&PackPanelFromB, &src}, g.n, g.k, ws, pool);
      RunUnits(g, s, kr, ws, nullptr, ws_a, pool, b0, b0 + step);
    }
  }
}

}  // namespace kiln
