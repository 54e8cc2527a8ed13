// gemm_kernels.h - the per-instruction-set kernels behind kiln/runtime/gemm.h (internal).
//
// Each of gemm_avx512.cpp, gemm_avx2.cpp and gemm_generic.cpp is compiled with its own target
// options and fills one GemmKernels table; gemm.cpp picks a table at run time
// (__builtin_cpu_supports), so the library runs on any x86-64. The ISA files include nothing
// but this header, <immintrin.h> and C headers: an inline function of the C++ library
// instantiated there with AVX-512 enabled could be the copy the linker keeps for everyone.
#pragma once

#include <stdint.h>

namespace kiln::gemm_detail {

constexpr int kMR = 14;   // rows of the register tile (packed A panels)
constexpr int kNR = 32;   // columns of the register tile (packed B panels)
constexpr int kKC = 384;  // K per packed block
constexpr int kMC = 168;  // rows per A block (a multiple of kMR)
constexpr int kDotMaxN = 16;
constexpr int64_t kIm2colMaxStride = int64_t(1) << 26;  // (kNR - 1) * stride: a 32-bit index

// One image's (and group's) im2col matrix for GemmKernels::im2col: row (c, kh, kw), column the
// output pixel oh * out_w + ow, value x[c][oh * stride_h - pad_h + kh * dilation_h][ow *
// stride_w - pad_w + kw * dilation_w] (zero outside the in_h x in_w image).
struct Im2colGeometry {
  const float* x;  // [channels, in_h, in_w]
  int64_t in_h, in_w, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
};

struct GemmKernels {
  const char* name;
  // One block of K (length kc) for rows [0, m) x columns [0, n): packed A tile t (kMR rows, kMR
  // values per k) at ap + t * kc * kMR, packed B panel p (kNR values per k) at
  // bp + p * kc * kNR; C(i, j) at c[i * ldc + j]. C = A B, or C += A B with `accumulate`.
  // Per-element summation order depends only on the tile's row count min(kMR, m - 14 t).
  void (*block)(int64_t m, int64_t n, int64_t kc, const float* ap, const float* bp, float* c,
                int64_t ldc, bool accumulate);
  // C[m, n] (+)= A[m, k] * B[n, k]^T, rows of A and B contiguous along K (dot products).
  void (*dot)(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
              int64_t ldb, float* c, int64_t ldc, bool accumulate);
  // C[m, n] (+)= A[m, k] * B[k, n] (rows of C updated along K: for few rows of A).
  void (*axpy)(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
               int64_t ldb, float* c, int64_t ldc, bool accumulate);
  // Packs one block of K of a B stored [N, K] (b points at column k0 of row 0): columns
  // [0, n) of op(B) (rows of B) x kc values into panels of kNR (zero-padded), panel p at
  // out + p * kc * kNR. (A blocked transpose.)
  void (*pack_nk)(const float* b, int64_t ldb, int64_t n, int64_t kc, float* out);
  // One B panel straight from the image: rows [k0, k0 + kc) x columns [j0, j0 + cols)
  // (cols <= kNR) of the im2col matrix as kc rows of kNR floats (columns cols..kNR zero) at
  // dst. Null where the ISA has no kernel of its own (the caller's plain loops run instead);
  // only for stride_w < kIm2colMaxStride (the caller's loops run for larger strides).
  void (*im2col)(const Im2colGeometry* g, int64_t k0, int64_t kc, int64_t j0, int64_t cols,
                 float* dst);
};

extern const GemmKernels kGenericKernels;
// Null when the build's compiler cannot target the ISA.
extern const GemmKernels* const kAvx2Kernels;
extern const GemmKernels* const kAvx512Kernels;

}  // namespace kiln::gemm_detail
