// gemm_avx2.cpp - the AVX2 + FMA GEMM kernels (compiled with -mavx2 -mfma; run only where the
// CPU has them): the 14 x 32 packed tile computed as 6 x 16 sub-tiles in 12 ymm accumulators.
#include <immintrin.h>

#include "gemm_kernels.h"

namespace kiln::gemm_detail {
namespace {

inline int64_t Min(int64_t a, int64_t b) {
  return a < b ? a : b;
}

#include "gemm_portable.inc"

inline __m256i Mask8(int64_t valid) {
  int v = valid < 0 ? 0 : valid > 8 ? 8 : int(valid);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// R rows (<= 6) x 8 V columns of the packed tile, starting at row offset ap and column offset
// bp (the panels keep their kMR / kNR strides).
template <int R, int V>
void SubTile(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int64_t cols,
             bool accumulate) {
  __m256 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k, ap += kMR, bp += kNR) {
    __m256 b[V];
    for (int v = 0; v < V; ++v) b[v] = _mm256_loadu_ps(bp + 8 * v);
    for (int r = 0; r < R; ++r) {
      __m256 a = _mm256_broadcast_ss(ap + r);
      for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
  for (int v = 0; v < V; ++v) {
    int64_t valid = cols - 8 * v;
    if (valid >= 8) {
      for (int r = 0; r < R; ++r) {
        float* out = c + r * ldc + 8 * v;
        __m256 x = acc[r][v];
        if (accumulate) x = _mm256_add_ps(x, _mm256_loadu_ps(out));
        _mm256_storeu_ps(out, x);
      }
    } else {
      __m256i mask = Mask8(valid);
      for (int r = 0; r < R; ++r) {
        float* out = c + r * ldc + 8 * v;
        __m256 x = acc[r][v];
        if (accumulate) x = _mm256_add_ps(x, _mm256_maskload_ps(out, mask));
        _mm256_maskstore_ps(out, mask, x);
      }
    }
  }
}

using SubTileFn = void (*)(int64_t, const float*, const float*, float*, int64_t, int64_t, bool);
const SubTileFn kSubTiles[2][6] = {{&SubTile<1, 1>, &SubTile<2, 1>, &SubTile<3, 1>, &SubTile<4, 1>,
                                    &SubTile<5, 1>, &SubTile<6, 1>},
                                   {&SubTile<1, 2>, &SubTile<2, 2>, &SubTile<3, 2>, &SubTile<4, 2>,
                                    &SubTile<5, 2>, &SubTile<6, 2>}};

void Block(int64_t m, int64_t n, int64_t kc, const float* ap, const float* bp, float* c,
           int64_t ldc, bool accumulate) {
  for (int64_t j = 0; j < n; j += kNR) {
    const float* panel = bp + (j / kNR) * kc * kNR;
    for (int64_t i = 0; i < m; i += kMR) {
      const float* tile = ap + (i / kMR) * kc * kMR;
      int64_t rows = Min(kMR, m - i);
      for (int64_t r = 0; r < rows; r += 6)
        for (int64_t h = 0; h < kNR && j + h < n; h += 16) {
          int64_t cols = Min(16, n - j - h);
          kSubTiles[cols > 8][Min(6, rows - r) - 1](
              kc, tile + r, panel + h, c + (i + r) * ldc + j + h, ldc, cols, accumulate);
        }
    }
  }
}

}  // namespace

static const GemmKernels kAvx2 = {"avx2",        &Block,          &PortableDot,
                                  &PortableAxpy, &PortablePackNK, nullptr};
const GemmKernels* const kAvx2Kernels = &kAvx2;

}  // namespace kiln::gemm_detail
