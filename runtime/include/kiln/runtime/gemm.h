// kiln/runtime/gemm.h - float32 matrix products: kiln's own packed GEMM (decision D34).
//
// Computes, for every b in [0, batch),
//
//   C_b[M, N] = A_b * op(B_b)          (or C_b += A_b * op(B_b) with `accumulate`)
//
// all row-major with leading dimensions (the distance between two rows, in elements):
//   A_b(i, k) = a[b * stride_a + i * lda + k]        (trans_a: a[b * stride_a + k * lda + i])
//   op(B)(k, j) = b[b * stride_b + j * ldb + k]       (BLayout::kNK: B stored [N, K], C = A B^T,
//                                                      FullyConnected's y = x W^T)
//               = b[b * stride_b + k * ldb + j]       (BLayout::kKN: B stored [K, N], C = A B)
//   C_b(i, j) = c[b * stride_c + i * ldc + j]
// A transposed serves weight gradients (dW = dY^T X: A = dY stored [K, M]). A stride of 0
// shares one matrix across the batch (batch_dot against one weight).
//
// Semantics: K = 0 gives C = 0 (or leaves C as it is when accumulating); M = 0 or N = 0 does
// nothing (and calls no epilogue). Summation along K runs in a fixed order that depends on
// M, N, K and the path only, never on the thread count: results are bit-identical for any
// number of threads. Different ISA paths (AVX-512, AVX2+FMA, plain C++) round differently.
//
// Weights are packed once: PackB lays op(B) out as the micro-kernel reads it (panels of 32
// columns per block of K, or rows along K when N <= 16), and GemmArgs::packed_b then replaces b.
// A plan holds the PackedB (or packs into memory it owns with PackBInto) and reuses it on
// every call.
//
// Epilogue: after rows [r0, r1) of C_b (all N columns, all of K, accumulation included) are
// final, the library calls epilogue.fn(epilogue.ctx, b, r0, r1) once, so that a compiled
// elementwise kernel (bias, activation, residual add) runs on them. The row blocks are disjoint,
// cover [0, M) exactly once per b, and hold at most kGemmMC rows (blocks of M's rows split
// nearly evenly, multiples of kGemmMR). When there are at least as many (b, row block) pairs as
// threads, each block's epilogue runs on the thread that computed it right after its last
// micro-kernel (the rows are hot in its cache); otherwise (few rows: the columns are split over
// the threads) the epilogues run after the product, one block per task. Calls for different
// blocks may run concurrently.
//
//   std::vector<float> x(64 * 784), w(512 * 784), y(64 * 512);
//   kiln::PackedB pw = kiln::PackB(w.data(), 784, kiln::BLayout::kNK, 512, 784);  // once
//   kiln::GemmArgs g;
//   g.m = 64, g.n = 512, g.k = 784;
//   g.a = x.data(), g.lda = 784;
//   g.packed_b = &pw;
//   g.c = y.data(), g.ldc = 512;
//   g.epilogue = {&AddBiasRelu, &bias_ctx};  // optional
//   kiln::Gemm(g, &kiln::ThreadPool::Global());  // or nullptr: the calling thread only
//
// Scratch memory: GemmWorkspaceBytes(args, threads) bytes (64-byte aligned) passed as
// args.workspace; with no workspace the library allocates one per call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "kiln/runtime/thread_pool.h"

namespace kiln {

// Rows per epilogue block (at most), rows and columns of the register tile, K per packed block.
constexpr int64_t kGemmMC = 168;
constexpr int64_t kGemmMR = 14;
constexpr int64_t kGemmNR = 32;
constexpr int64_t kGemmKC = 384;
// N at most this: products use dot products along K (no panels; a classifier's last layer).
constexpr int64_t kGemmDotMaxN = 16;

// The instruction set a GEMM runs with. kAuto: the best the CPU supports (KILN_GEMM_ISA=
// avx512|avx2|generic in the environment lowers it, for testing).
enum class GemmIsa : uint8_t { kAuto, kGeneric, kAvx2, kAvx512 };
const char* GemmIsaName(GemmIsa isa);
// Whether this CPU (and build) can run `isa`; kAuto and kGeneric always can.
bool GemmIsaSupported(GemmIsa isa);
// What kAuto resolves to on this machine.
GemmIsa GemmBestIsa();

enum class BLayout : uint8_t {
  kNK,  // B stored [N, K]: C = A B^T
  kKN,  // B stored [K, N]: C = A B
};

// op(B) [K, N] packed for the micro-kernels. Owns its memory, or views memory the caller owns
// (PackBInto), so a plan can place it in its own buffer. Read-only once packed: any number of
// concurrent Gemm calls may share it.
class PackedB {
 public:
  PackedB() = default;
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  const float* data() const { return data_; }
  // Dot form (N <= kGemmDotMaxN): op(B)^T as [N, K] rows; otherwise panels.
  bool dot_form() const { return n_ <= kGemmDotMaxN; }

 private:
  friend PackedB PackB(const float*, int64_t, BLayout, int64_t, int64_t, ThreadPool*);
  friend PackedB PackBInto(const float*, int64_t, BLayout, int64_t, int64_t, float*, ThreadPool*);
  int64_t n_ = 0, k_ = 0;
  const float* data_ = nullptr;
  std::shared_ptr<float[]> owned_;
};

// Floats PackB needs for op(B) of [K, N]: K * N for N <= kGemmDotMaxN, else K * round_up(N, 32).
int64_t PackedBFloats(int64_t n, int64_t k);
// Packs op(B) (layout and ldb as in GemmArgs) into memory the PackedB owns / into `out`
// (PackedBFloats(n, k) floats, 64-byte aligned; it must outlive the PackedB).
PackedB PackB(const float* b, int64_t ldb, BLayout layout, int64_t n, int64_t k,
              ThreadPool* pool = nullptr);
PackedB PackBInto(const float* b, int64_t ldb, BLayout layout, int64_t n, int64_t k, float* out,
                  ThreadPool* pool = nullptr);

struct GemmEpilogue {
  void (*fn)(void* ctx, int64_t batch, int64_t r0, int64_t r1) = nullptr;
  void* ctx = nullptr;
};

struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  int64_t batch = 1;

  const float* a = nullptr;
  int64_t lda = 0;
  bool trans_a = false;
  int64_t stride_a = 0;

  const float* b = nullptr;  // ignored when packed_b is set
  int64_t ldb = 0;
  BLayout b_layout = BLayout::kNK;
  int64_t stride_b = 0;
  const PackedB* packed_b = nullptr;  // shared by every batch entry; its n, k must match

  float* c = nullptr;
  int64_t ldc = 0;
  int64_t stride_c = 0;
  bool accumulate = false;

  GemmEpilogue epilogue;
  GemmIsa isa = GemmIsa::kAuto;
  void* workspace = nullptr;  // GemmWorkspaceBytes bytes, 64-byte aligned; null: allocated
};

// Scratch bytes Gemm(args) needs when run with `num_threads` threads (a pool of that size).
int64_t GemmWorkspaceBytes(const GemmArgs& args, int num_threads);

// Runs the product; `pool` (may be null) splits the work. Throws UserError on inconsistent
// arguments (negative sizes, leading dimensions too small, a PackedB of another shape).
void Gemm(const GemmArgs& args, ThreadPool* pool = nullptr);

}  // namespace kiln
