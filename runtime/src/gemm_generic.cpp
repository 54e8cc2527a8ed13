// gemm_generic.cpp - the GEMM kernels in plain C++ for any CPU (the baseline target's
// vectors, SSE2 on x86-64).
#include "gemm_kernels.h"

namespace kiln::gemm_detail {
namespace {

inline int64_t Min(int64_t a, int64_t b) {
  return a < b ? a : b;
}

#include "gemm_portable.inc"

void Block(int64_t m, int64_t n, int64_t kc, const float* ap, const float* bp, float* c,
           int64_t ldc, bool accumulate) {
  for (int64_t j = 0; j < n; j += kNR)
    for (int64_t i = 0; i < m; i += kMR)
      PortableTile(Min(kMR, m - i), Min(kNR, n - j), kc, ap + (i / kMR) * kc * kMR,
                   bp + (j / kNR) * kc * kNR, c + i * ldc + j, ldc, accumulate);
}

}  // namespace

const GemmKernels kGenericKernels = {"generic",     &Block,          &PortableDot,
                                     &PortableAxpy, &PortablePackNK, nullptr};

}  // namespace kiln::gemm_detail
