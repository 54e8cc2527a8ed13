// gemm_avx512.cpp - the AVX-512 GEMM kernels (compiled with -mavx512f -mavx512dq -mavx512vl
// -mfma; run only where the CPU has them). A 14 x 32 register tile in 28 zmm accumulators.
#include <immintrin.h>

#include "gemm_kernels.h"

namespace kiln::gemm_detail {
namespace {

// The 16 lanes' sum in _mm512_reduce_add_ps's order (halves, quarters, then pairs), written
// out with zero-masked extractions because GCC 12's intrinsics warn about the undefined register
// their unmasked forms pass.
inline float ReduceAdd(__m512 v) {
  __m512d d = _mm512_castps_pd(v);
  __m256 h = _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 1)),
                           _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 0)));
  __m128 q = _mm_add_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

inline int64_t Min(int64_t a, int64_t b) {
  return a < b ? a : b;
}
inline __mmask16 Mask(int64_t valid) {
  return valid >= 16 ? __mmask16(0xFFFF) : valid <= 0 ? __mmask16(0) : __mmask16((1u << valid) - 1);
}

// Packed A is one contiguous stream per row block (tile after tile, block of K after block).
// At batch 1 the weights come from memory on every call (ResNet-18's are 45 MB, more than the
// L3 cache) faster than the hardware prefetcher asks for them: every k requests the line
// kPrefetchA floats (about 36 k) ahead into L2. Measured on 512->512 7x7: 13% faster with cold
// weights, no change with hot ones.
constexpr int kPrefetchA = 512;
inline void PrefetchA(const float* ap) {
  _mm_prefetch(reinterpret_cast<const char*>(ap + kPrefetchA), _MM_HINT_T1);
}

// The R x 32 tile (R <= kMR valid rows) over kc: acc = Apanel * Bpanel, then C = acc or
// C += acc for the valid `cols`. kHalf: at most 16 valid columns, one vector per row.
// Partial sums per accumulator for R rows (see Tile).
template <int R>
constexpr int kUnroll = R >= 4 ? 1 : 2;

template <int R, bool kHalf>
void Tile(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int64_t cols,
          bool accumulate) {
  // Few rows leave few independent FMA chains, which the FMA latency (4 cycles) would bound:
  // U partial sums over interleaved k keep the pipes busy; they are added at the end.
  constexpr int U = kUnroll<R>;
  constexpr int H = kHalf ? 1 : 2;
  __m512 acc[U][R][2];
  for (int u = 0; u < U; ++u)
    for (int r = 0; r < R; ++r) acc[u][r][0] = acc[u][r][1] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + U <= kc; k += U) {
    PrefetchA(ap);
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) {
      __m512 b[2];
      for (int h = 0; h < H; ++h) b[h] = _mm512_loadu_ps(bp + 16 * h);
#pragma GCC unroll 14
      for (int r = 0; r < R; ++r) {
        __m512 a = _mm512_set1_ps(ap[r]);
        for (int h = 0; h < H; ++h) acc[u][r][h] = _mm512_fmadd_ps(a, b[h], acc[u][r][h]);
      }
      ap += kMR;
      bp += kNR;
    }
  }
  for (; k < kc; ++k) {
    __m512 b[2];
    for (int h = 0; h < H; ++h) b[h] = _mm512_loadu_ps(bp + 16 * h);
    for (int r = 0; r < R; ++r) {
      __m512 a = _mm512_set1_ps(ap[r]);
      for (int h = 0; h < H; ++h) acc[0][r][h] = _mm512_fmadd_ps(a, b[h], acc[0][r][h]);
    }
    ap += kMR;
    bp += kNR;
  }
  for (int u = 1; u < U; ++u)
    for (int r = 0; r < R; ++r)
      for (int h = 0; h < H; ++h) acc[0][r][h] = _mm512_add_ps(acc[0][r][h], acc[u][r][h]);
  __mmask16 m0 = Mask(cols), m1 = Mask(cols - 16);
  for (int r = 0; r < R; ++r) {
    float* row = c + r * ldc;
    __m512 v0 = acc[0][r][0];
    if (accumulate) v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
    _mm512_mask_storeu_ps(row, m0, v0);
    if (!kHalf) {
      __m512 v1 = acc[0][r][1];
      if (accumulate) v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
      _mm512_mask_storeu_ps(row + 16, m1, v1);
    }
  }
}

using TileFn = void (*)(int64_t, const float*, const float*, float*, int64_t, int64_t, bool);
#define KILN_TILES(H)                                                                          \
  {                                                                                            \
    &Tile<1, H>, &Tile<2, H>, &Tile<3, H>, &Tile<4, H>, &Tile<5, H>, &Tile<6, H>, &Tile<7, H>, \
        &Tile<8, H>, &Tile<9, H>, &Tile<10, H>, &Tile<11, H>, &Tile<12, H>, &Tile<13, H>,      \
        &Tile<14, H>                                                                           \
  }
const TileFn kTiles[2][kMR] = {KILN_TILES(false), KILN_TILES(true)};
#undef KILN_TILES

// A full-height tile (kMR rows) of a panel whose valid columns are 16 H + C (C < 16): the first
// 16 H columns one vector per row as Tile computes them, the last C as vectors along the rows
// (the packed A holds the kMR rows of each k contiguously; B's value broadcast). kMR H + C FMAs
// per k instead of kMR (H + 1): the narrow last panel of N = 49 or 196 (7x7 and 14x14 output
// planes) no longer costs a full tile. Every element is the same FMAs in the same order as in
// Tile<kMR, ...> (one accumulator, k ascending; a * b + c is exact before its one rounding in
// either operand order), so results are bit-identical to it.
template <int H, int C>
void TileCols(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
              bool accumulate) {
  static_assert(kUnroll<kMR> == 1 && H <= 1 && C >= 1 && C < 16);
  constexpr __mmask16 kRows = __mmask16((1u << kMR) - 1);
  // Fully unrolled loops over the accumulators, so that GCC keeps them in registers.
  __m512 acc[kMR], col[C];
#pragma GCC unroll 14
  for (int r = 0; r < kMR; ++r) acc[r] = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int j = 0; j < C; ++j) col[j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k, ap += kMR, bp += kNR) {
    PrefetchA(ap);
    if (H) {
      __m512 b = _mm512_loadu_ps(bp);
#pragma GCC unroll 14
      for (int r = 0; r < kMR; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(ap[r]), b, acc[r]);
    }
    __m512 a = _mm512_maskz_loadu_ps(kRows, ap);
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) col[j] = _mm512_fmadd_ps(a, _mm512_set1_ps(bp[16 * H + j]), col[j]);
  }
  if (H) {
#pragma GCC unroll 14
    for (int r = 0; r < kMR; ++r) {
      __m512 v = acc[r];
      if (accumulate) v = _mm512_add_ps(v, _mm512_loadu_ps(c + r * ldc));
      _mm512_storeu_ps(c + r * ldc, v);
    }
  }
  alignas(64) float t[C][16];
#pragma GCC unroll 16
  for (int j = 0; j < C; ++j) _mm512_store_ps(t[j], col[j]);
  for (int r = 0; r < kMR; ++r) {
    float* out = c + r * ldc + 16 * H;
    for (int j = 0; j < C; ++j) out[j] = accumulate ? out[j] + t[j][r] : t[j][r];
  }
}

// TileCols<H, C> for C = 1..kColsMax: where its FMAs per k (at least 4: the latency of one
// chain) beat Tile's kMR (H + 1).
constexpr int kColsMax = 8;
using TileColsFn = void (*)(int64_t, const float*, const float*, float*, int64_t, bool);
#define KILN_TILE_COLS(H)                                                                \
  {                                                                                      \
    &TileCols<H, 1>, &TileCols<H, 2>, &TileCols<H, 3>, &TileCols<H, 4>, &TileCols<H, 5>, \
        &TileCols<H, 6>, &TileCols<H, 7>, &TileCols<H, 8>                                \
  }
const TileColsFn kTileCols[2][kColsMax] = {KILN_TILE_COLS(0), KILN_TILE_COLS(1)};
#undef KILN_TILE_COLS

// Tile<R> for P panels at once (R <= 4 rows: bandwidth-bound, batch 1): P streams of B in
// flight instead of one. The same arithmetic per element as Tile<R, false>. The first P - 1
// panels are full; the last has `last_cols` valid columns. bp: the first panel; the others
// follow every `stride` floats.
template <int R, int P>
void TileP(int64_t kc, const float* ap, const float* bp, int64_t stride, float* c, int64_t ldc,
           int64_t last_cols, bool accumulate) {
  constexpr int U = kUnroll<R>;
  __m512 acc[U][R][2 * P];
  for (int u = 0; u < U; ++u)
    for (int r = 0; r < R; ++r)
      for (int h = 0; h < 2 * P; ++h) acc[u][r][h] = _mm512_setzero_ps();
  auto step = [&](int u) {
    __m512 b[2 * P];
    for (int p = 0; p < P; ++p) {
      b[2 * p] = _mm512_loadu_ps(bp + p * stride);
      b[2 * p + 1] = _mm512_loadu_ps(bp + p * stride + 16);
    }
    for (int r = 0; r < R; ++r) {
      __m512 a = _mm512_set1_ps(ap[r]);
      for (int h = 0; h < 2 * P; ++h) acc[u][r][h] = _mm512_fmadd_ps(a, b[h], acc[u][r][h]);
    }
    ap += kMR, bp += kNR;
  };
  int64_t k = 0;
  for (; k + U <= kc; k += U)
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) step(u);
  for (; k < kc; ++k) step(0);
  for (int u = 1; u < U; ++u)
    for (int r = 0; r < R; ++r)
      for (int h = 0; h < 2 * P; ++h) acc[0][r][h] = _mm512_add_ps(acc[0][r][h], acc[u][r][h]);
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < 2 * P; ++h) {
      __mmask16 mask = h < 2 * P - 2 ? __mmask16(0xFFFF) : Mask(last_cols - 16 * (h - 2 * P + 2));
      float* out = c + r * ldc + 16 * h;
      __m512 v = acc[0][r][h];
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, out));
      _mm512_mask_storeu_ps(out, mask, v);
    }
}

using TilePFn = void (*)(int64_t, const float*, const float*, int64_t, float*, int64_t, int64_t,
                         bool);
// Panels per call for R = 1..4 rows: as many as the registers hold (U * R * 2P accumulators).
constexpr int kPanels[4] = {4, 2, 2, 2};
const TilePFn kTilesP[4] = {&TileP<1, 4>, &TileP<2, 2>, &TileP<3, 2>, &TileP<4, 2>};

void Block(int64_t m, int64_t n, int64_t kc, const float* ap, const float* bp, float* c,
           int64_t ldc, bool accumulate) {
  if (m <= 4) {  // one short tile: several panels at a time while the last is wider than 16
    const int64_t group = kPanels[m - 1] * kNR;
    int64_t j = 0;
    for (; j + group - 16 < n; j += group)
      kTilesP[m - 1](kc, ap, bp + (j / kNR) * kc * kNR, kc * kNR, c + j, ldc,
                     Min(kNR, n - j - group + kNR), accumulate);
    if (m == 1)  // then pairs: one panel alone has too few independent FMA chains
      for (; j + kNR + 16 < n; j += 2 * kNR)
        TileP<1, 2>(kc, ap, bp + (j / kNR) * kc * kNR, kc * kNR, c + j, ldc, Min(kNR, n - j - kNR),
                    accumulate);
    for (; j < n; j += kNR) {
      int64_t cols = Min(kNR, n - j);
      kTiles[cols <= 16][m - 1](kc, ap, bp + (j / kNR) * kc * kNR, c + j, ldc, cols, accumulate);
    }
    return;
  }
  for (int64_t j = 0; j < n; j += kNR) {
    int64_t cols = Min(kNR, n - j);
    const float* panel = bp + (j / kNR) * kc * kNR;
    const int64_t narrow = cols % 16;  // columns past the last full vector
    for (int64_t i = 0; i < m; i += kMR) {
      int64_t rows = Min(kMR, m - i);
      const float* tile = ap + (i / kMR) * kc * kMR;
      if (rows == kMR && narrow >= 1 && narrow <= kColsMax)
        kTileCols[cols / 16][narrow - 1](kc, tile, panel, c + i * ldc + j, ldc, accumulate);
      else
        kTiles[cols <= 16][rows - 1](kc, tile, panel, c + i * ldc + j, ldc, cols, accumulate);
    }
  }
}

// C[R rows, J columns] (+)= A B^T as dot products along K: each of the R x J accumulators is a
// 16-wide partial sum reduced at the end. J is a template parameter so that the accumulators
// stay in registers.
template <int R, int J>
void DotBlock(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
              int64_t ldc, bool accumulate) {
  __m512 acc[R][J];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < J; ++j) acc[r][j] = _mm512_setzero_ps();
  int64_t kk = 0;
  for (; kk + 16 <= k; kk += 16) {
    __m512 x[R];
    for (int r = 0; r < R; ++r) x[r] = _mm512_loadu_ps(a + r * lda + kk);
    for (int j = 0; j < J; ++j) {
      __m512 w = _mm512_loadu_ps(b + j * ldb + kk);
      for (int r = 0; r < R; ++r) acc[r][j] = _mm512_fmadd_ps(x[r], w, acc[r][j]);
    }
  }
  if (kk < k) {
    __mmask16 tail = Mask(k - kk);
    __m512 x[R];
    for (int r = 0; r < R; ++r) x[r] = _mm512_maskz_loadu_ps(tail, a + r * lda + kk);
    for (int j = 0; j < J; ++j) {
      __m512 w = _mm512_maskz_loadu_ps(tail, b + j * ldb + kk);
      for (int r = 0; r < R; ++r) acc[r][j] = _mm512_fmadd_ps(x[r], w, acc[r][j]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < J; ++j) {
      float v = ReduceAdd(acc[r][j]);
      float* out = c + r * ldc + j;
      *out = accumulate ? *out + v : v;
    }
}

template <int R>
void DotRows(int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
             float* c, int64_t ldc, bool accumulate) {
  using Fn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, bool);
  static constexpr Fn kBlocks[8] = {&DotBlock<R, 1>, &DotBlock<R, 2>, &DotBlock<R, 3>,
                                    &DotBlock<R, 4>, &DotBlock<R, 5>, &DotBlock<R, 6>,
                                    &DotBlock<R, 7>, &DotBlock<R, 8>};
  constexpr int64_t kMaxJ = R == 4 ? 6 : 8;  // R * J accumulators + R + 1 <= 32 registers
  for (int64_t j0 = 0; j0 < n; j0 += kMaxJ)
    kBlocks[Min(kMaxJ, n - j0) - 1](k, a, lda, b + j0 * ldb, ldb, c + j0, ldc, accumulate);
}

void Dot(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
         float* c, int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < m; i += 4) {
    const float* ai = a + i * lda;
    float* ci = c + i * ldc;
    switch (Min(4, m - i)) {
      case 1:
        DotRows<1>(n, k, ai, lda, b, ldb, ci, ldc, accumulate);
        break;
      case 2:
        DotRows<2>(n, k, ai, lda, b, ldb, ci, ldc, accumulate);
        break;
      case 3:
        DotRows<3>(n, k, ai, lda, b, ldb, ci, ldc, accumulate);
        break;
      default:
        DotRows<4>(n, k, ai, lda, b, ldb, ci, ldc, accumulate);
    }
  }
}

// C[R rows, 16 W columns at a time] (+)= sum_k A[r, k] B[k, :], streaming rows of B.
template <int R, int W>
void AxpyRows(int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
              float* c, int64_t ldc, bool accumulate) {
  for (int64_t j0 = 0; j0 < n; j0 += 16 * W) {
    __mmask16 mask[W];
    for (int w = 0; w < W; ++w) mask[w] = Mask(n - j0 - 16 * w);
    __m512 acc[R][W];
    for (int r = 0; r < R; ++r)
      for (int w = 0; w < W; ++w) acc[r][w] = _mm512_setzero_ps();
    const float* bk = b + j0;
    for (int64_t kk = 0; kk < k; ++kk, bk += ldb) {
      __m512 bv[W];
      for (int w = 0; w < W; ++w) bv[w] = _mm512_maskz_loadu_ps(mask[w], bk + 16 * w);
      for (int r = 0; r < R; ++r) {
        __m512 av = _mm512_set1_ps(a[r * lda + kk]);
        for (int w = 0; w < W; ++w) acc[r][w] = _mm512_fmadd_ps(av, bv[w], acc[r][w]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int w = 0; w < W; ++w) {
        float* out = c + r * ldc + j0 + 16 * w;
        __m512 v = acc[r][w];
        if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask[w], out));
        _mm512_mask_storeu_ps(out, mask[w], v);
      }
  }
}

void Axpy(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float* c, int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < m; i += 4) {
    const float* ai = a + i * lda;
    float* ci = c + i * ldc;
    switch (Min(4, m - i)) {
      case 1:
        AxpyRows<1, 8>(n, k, ai, lda, b, ldb, ci, ldc, accumulate);
        break;
      case 2:
        AxpyRows<2, 8>(n, k, ai, lda, b, ldb, ci, ldc, accumulate);
        break;
      case 3:
        AxpyRows<3, 4>(n, k, ai, lda, b, ldb, ci, ldc, accumulate);
        break;
      default:
        AxpyRows<4, 4>(n, k, ai, lda, b, ldb, ci, ldc, accumulate);
    }
  }
}

// out[8 x 8] = the transpose of 8 rows of 8 floats (rows `ld` apart), out rows kNR apart.
__attribute__((always_inline)) inline void Transpose8(const float* in, int64_t ld, float* out) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(in + i * ld);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  // r0..r3 hold rows 0-3's transposed quads, r4..r7 rows 4-7's: join the 128-bit halves.
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(out + i * kNR, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(out + (i + 4) * kNR, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

void PackNK(const float* b, int64_t ldb, int64_t n, int64_t kc, float* out) {
  for (int64_t j0 = 0; j0 < n; j0 += kNR, out += kc * kNR) {
    for (int64_t g = 0; g < kNR; g += 8) {
      int64_t valid = Min(8, n - j0 - g);
      const float* src = b + (j0 + g) * ldb;
      int64_t k = 0;
      if (valid == 8)
        for (; k + 8 <= kc; k += 8) Transpose8(src + k, ldb, out + k * kNR + g);
      for (; k < kc; ++k)
        for (int64_t c = 0; c < 8; ++c) out[k * kNR + g + c] = c < valid ? src[c * ldb + k] : 0.0f;
    }
  }
}

// im2col panels straight from the image. A panel row (kNR output pixels) is made of runs of
// pixels in one output row each; within a run, panel column L reads input column
// ofs + L * stride_w of one input row, so a run is one or two masked loads (stride 1), masked
// loads and an even-element permute (stride 2) or a masked gather (other strides below 2^26,
// and panels whose program, below, would be too large), with the lanes outside the image
// (padding) or outside the run left alone. A row starts at zero. Masked lanes are never read
// (nor fault), so a load's address may lie outside the image.
struct Im2colRun {
  int64_t ih0;    // input row of the run's pixels for kh = 0: oh * stride_h - pad_h
  int64_t first;  // input column of the run's first pixel for kw = 0: ow * stride_w - pad_w
  int64_t off;    // its first panel column
  int64_t len;    // pixels in the run
};
// What one run reads for one kw.
struct Im2colCols {
  int64_t ofs;         // the input column panel column 0 would read (may be outside the row)
  __mmask16 lanes[2];  // the panel columns it fills, per half of 16
  __mmask16 in[4];     // stride 2: the input floats loaded, per vector of 16 (two per half)
};

// Bit i of the low byte to bit 2 i.
inline __mmask16 SpreadEven(unsigned byte) {
  unsigned x = byte & 0xFFu;
  x = (x | (x << 4)) & 0x0F0Fu;
  x = (x | (x << 2)) & 0x3333u;
  x = (x | (x << 1)) & 0x5555u;
  return __mmask16(x);
}

Im2colCols ColsFor(const Im2colGeometry& g, const Im2colRun& r, int64_t kw) {
  const int64_t s = g.stride_w, first = r.first + kw * g.dilation_w;
  // Pixels t of the run with 0 <= first + t * s < in_w.
  int64_t lo = first >= 0 ? 0 : (-first + s - 1) / s;
  int64_t hi = g.in_w - first <= 0 ? 0 : (g.in_w - first - 1) / s + 1;
  lo = Min(lo, r.len), hi = Min(hi, r.len);
  if (hi < lo) hi = lo;
  uint64_t bits = ((uint64_t(1) << hi) - (uint64_t(1) << lo)) << r.off;
  Im2colCols c;
  c.ofs = first - r.off * s;
  for (int h = 0; h < 2; ++h) {
    c.lanes[h] = __mmask16((bits >> (16 * h)) & 0xFFFFu);
    c.in[2 * h] = SpreadEven(c.lanes[h] & 0xFFu);
    c.in[2 * h + 1] = SpreadEven(unsigned(c.lanes[h]) >> 8);
  }
  return c;
}

// Rows by masked gathers (any stride below 2^26: (kNR - 1) * stride_w fits a 32-bit index).
void Im2colRows(const Im2colGeometry& g, const Im2colRun* runs, int nruns, const Im2colCols* table,
                int64_t k0, int64_t kc, float* dst) {
  const int64_t hw = g.in_h * g.in_w, khw = g.kernel_h * g.kernel_w;
  int64_t c = k0 / khw, kh = k0 / g.kernel_w % g.kernel_h, kw = k0 % g.kernel_w;
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(int(g.stride_w));
  const __m512i idx[2] = {_mm512_mullo_epi32(iota, step),
                          _mm512_mullo_epi32(_mm512_add_epi32(iota, _mm512_set1_epi32(16)), step)};
  for (int64_t kk = 0; kk < kc; ++kk, dst += kNR) {
    if (kk > 0 && ++kw == g.kernel_w) {
      kw = 0;
      if (++kh == g.kernel_h) kh = 0, ++c;
    }
    const float* plane = g.x + c * hw;
    const int64_t dh = kh * g.dilation_h;
    __m512 v[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int r = 0; r < nruns; ++r) {
      const int64_t ih = runs[r].ih0 + dh;
      if (uint64_t(ih) >= uint64_t(g.in_h)) continue;  // a padding row: zeros
      const Im2colCols cc = table ? table[kw * nruns + r] : ColsFor(g, runs[r], kw);
      const float* row = plane + ih * g.in_w + cc.ofs;
      for (int h = 0; h < 2; ++h)
        if (cc.lanes[h]) v[h] = _mm512_mask_i32gather_ps(v[h], cc.lanes[h], idx[h], row, 4);
    }
    _mm512_storeu_ps(dst, v[0]);
    _mm512_storeu_ps(dst + 16, v[1]);
  }
}

// Stride 1 and 2: the panel's rows as a program. For each (kh, kw), one entry per run: where
// the run's pixels start relative to the channel's plane and which lanes they fill, with no
// lanes where the run's input row is padding. A row (c, kh, kw) is then the same fixed number
// of masked loads from plane c for every row of the panel: no branches (which, per row, cost
// more than the loads: about 20 cycles per row before, on ResNet-18's 3x3 and 7x7 layers).
struct Im2colEntry {
  int64_t off;         // from the plane's first float to the float panel column 0 would read
  __mmask16 lanes[2];  // the panel columns filled, per half
  __mmask16 in[4];     // stride 2: the input floats loaded, per vector of 16
};
constexpr int kProgramMax = 256;  // entries: kernel_h * kernel_w * runs

template <int kStride>
__attribute__((always_inline)) inline void ProgramRow(const Im2colEntry* e, int runs,
                                                      const float* plane, float* dst) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  __m512 v[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int r = 0; r < runs; ++r, ++e) {
    const float* row = plane + e->off;
    for (int h = 0; h < 2; ++h) {
      if (kStride == 1) {
        v[h] = _mm512_mask_loadu_ps(v[h], e->lanes[h], row + 16 * h);
      } else {
        __m512 a = _mm512_maskz_loadu_ps(e->in[2 * h], row + 32 * h);
        __m512 b = _mm512_maskz_loadu_ps(e->in[2 * h + 1], row + 32 * h + 16);
        v[h] = _mm512_mask_mov_ps(v[h], e->lanes[h], _mm512_permutex2var_ps(a, even, b));
      }
    }
  }
  _mm512_storeu_ps(dst, v[0]);
  _mm512_storeu_ps(dst + 16, v[1]);
}

template <int kStride>
void ProgramRows(const Im2colGeometry& g, const Im2colEntry* program, int runs, int64_t k0,
                 int64_t kc, float* dst) {
  const int64_t hw = g.in_h * g.in_w, khw = g.kernel_h * g.kernel_w;
  const float* plane = g.x + k0 / khw * hw;
  int64_t pi = k0 % khw;  // (kh, kw) of the row
  for (int64_t kk = 0; kk < kc; ++kk, dst += kNR) {
    ProgramRow<kStride>(program + pi * runs, runs, plane, dst);
    if (++pi == khw) pi = 0, plane += hw;
  }
}

// Returns false (and does nothing) where the program would not fit.
bool Im2colProgram(const Im2colGeometry& g, const Im2colRun* runs, int nruns, int64_t k0,
                   int64_t kc, float* dst) {
  if (g.kernel_h * g.kernel_w * nruns > kProgramMax || g.kernel_w * nruns > kProgramMax)
    return false;
  Im2colCols cols[kProgramMax];  // per (kw, run)
  for (int64_t kw = 0; kw < g.kernel_w; ++kw)
    for (int r = 0; r < nruns; ++r) cols[kw * nruns + r] = ColsFor(g, runs[r], kw);
  Im2colEntry program[kProgramMax];
  Im2colEntry* e = program;
  for (int64_t kh = 0; kh < g.kernel_h; ++kh)
    for (int64_t kw = 0; kw < g.kernel_w; ++kw)
      for (int r = 0; r < nruns; ++r, ++e) {
        const Im2colCols& cc = cols[kw * nruns + r];
        const int64_t ih = runs[r].ih0 + kh * g.dilation_h;
        *e = {};
        if (uint64_t(ih) >= uint64_t(g.in_h)) continue;  // a padding row: loads nothing
        e->off = ih * g.in_w + cc.ofs;
        for (int i = 0; i < 2; ++i) e->lanes[i] = cc.lanes[i];
        for (int i = 0; i < 4; ++i) e->in[i] = cc.in[i];
      }
  if (g.stride_w == 1)
    ProgramRows<1>(g, program, nruns, k0, kc, dst);
  else
    ProgramRows<2>(g, program, nruns, k0, kc, dst);
  return true;
}

void Im2colPanel(const Im2colGeometry* gp, int64_t k0, int64_t kc, int64_t j0, int64_t cols,
                 float* dst) {
  const Im2colGeometry& g = *gp;
  Im2colRun runs[kNR];
  int nruns = 0;
  int64_t oh = j0 / g.out_w, ow = j0 % g.out_w;
  for (int64_t p = 0; p < cols; ++oh, ow = 0) {
    int64_t len = Min(g.out_w - ow, cols - p);
    runs[nruns++] = {oh * g.stride_h - g.pad_h, ow * g.stride_w - g.pad_w, p, len};
    p += len;
  }
  if ((g.stride_w == 1 || g.stride_w == 2) && Im2colProgram(g, runs, nruns, k0, kc, dst)) return;
  // The columns each (kw, run) reads, once per panel (computed per row for very wide kernels).
  constexpr int64_t kTable = 256;
  Im2colCols table[kTable];
  const bool tabled = g.kernel_w * nruns <= kTable;
  if (tabled)
    for (int64_t kw = 0; kw < g.kernel_w; ++kw)
      for (int r = 0; r < nruns; ++r) table[kw * nruns + r] = ColsFor(g, runs[r], kw);
  const Im2colCols* t = tabled ? table : nullptr;
  // Other strides, and programs too large: a masked gather per run and half.
  Im2colRows(g, runs, nruns, t, k0, kc, dst);
}

}  // namespace

static const GemmKernels kAvx512 = {"avx512", &Block, &Dot, &Axpy, &PackNK, &Im2colPanel};
const GemmKernels* const kAvx512Kernels = &kAvx512;

}  // namespace kiln::gemm_detail
