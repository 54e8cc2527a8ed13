// NCHW 2-D convolution on the GEMM (kiln/runtime/conv.h): im2col packed straight into GEMM
// panels for the forward pass, col2im for backward data, a direct loop for depthwise.
#include "kiln/runtime/conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "gemm_internal.h"
#include "kiln/runtime/error.h"

namespace kiln {
namespace {

using gemm_detail::kNR;
using gemm_detail::RoundUp;

// Sizes derived from a valid shape.
struct Dims {
  int64_t cg, og, kg, oh, ow, p, hw, ph_end, pw_end;
  bool pointwise;  // 1x1, stride 1, no padding: X itself is the im2col matrix
  bool depthwise;  // one input and one output channel per group
};

Dims Derive(const Conv2dShape& s) {
  Dims d;
  d.cg = s.in_channels / s.groups;
  d.og = s.out_channels / s.groups;
  d.kg = d.cg * s.kernel_h * s.kernel_w;
  d.oh = s.out_h(), d.ow = s.out_w();
  d.p = d.oh * d.ow;
  d.hw = s.in_h * s.in_w;
  d.ph_end = s.pad_h_end < 0 ? s.pad_h : s.pad_h_end;
  d.pw_end = s.pad_w_end < 0 ? s.pad_w : s.pad_w_end;
  d.pointwise = s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 &&
                s.pad_h == 0 && s.pad_w == 0 && d.ph_end == 0 && d.pw_end == 0;
  d.depthwise = d.cg == 1 && d.og == 1 && s.groups > 1;
  return d;
}

void CheckShape(const Conv2dShape& s, const char* fn) {
  std::string problem = s.Problem();
  if (!problem.empty()) throw UserError(StrCat(fn, ": ", problem));
}

int64_t Align64(int64_t bytes) {
  return RoundUp(bytes, 64);
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
// The caller's workspace, or one allocated for this call.
struct Scratch {
  std::unique_ptr<void, AlignedFree> owned;
  char* base;
  Scratch(void* given, int64_t bytes) {
    base = static_cast<char*>(given);
    if (!base && bytes > 0) {
      base = static_cast<char*>(std::aligned_alloc(64, size_t(Align64(bytes))));
      if (!base) throw RuntimeError(StrCat("conv: cannot allocate ", bytes, " bytes"));
      owned.reset(base);
    }
  }
};

template <class F>
void Parallel(ThreadPool* pool, int64_t n, F&& fn) {
  if (n <= 0) return;
  if (pool && pool->num_threads() > 1 && n > 1)
    pool->ParallelFor(n, fn);
  else
    fn(0, n);
}

// Rows [k0, k0 + kc) (row = (c, kh, kw)) x output pixels [j0, j0 + cols) of the im2col matrix
// of one image and group (x: its first channel), row kk at dst + kk * ld; columns
// [cols, zero_to) of each row are zeroed.
void Im2col(const Conv2dShape& s, const Dims& d, const float* x, int64_t k0, int64_t kc, int64_t j0,
            int64_t cols, float* dst, int64_t ld, int64_t zero_to) {
  // Divisions once per call, not per row (a panel row is only 32 values).
  const int64_t oh0 = j0 / d.ow, ow0 = j0 % d.ow;
  int64_t c = k0 / (s.kernel_h * s.kernel_w), kh = k0 / s.kernel_w % s.kernel_h,
          kw = k0 % s.kernel_w;
  for (int64_t kk = 0; kk < kc; ++kk) {
    if (kk > 0 && ++kw == s.kernel_w) {
      kw = 0;
      if (++kh == s.kernel_h) kh = 0, ++c;
    }
    const float* plane = x + c * d.hw;
    float* row = dst + kk * ld;
    float* out = row;
    int64_t p = j0, end = j0 + cols, oh = oh0, ow = ow0;
    int64_t woff = kw * s.dilation_w - s.pad_w;
    while (p < end) {
      int64_t seg = std::min(d.ow - ow, end - p);
      int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dilation_h;
      if (ih < 0 || ih >= s.in_h) {
        std::memset(out, 0, size_t(seg) * 4);
      } else {
        const float* in = plane + ih * s.in_w;
        if (s.stride_w == 1) {  // iw = ow + i + woff: one contiguous run between zeros
          int64_t lo = std::clamp<int64_t>(-woff - ow, 0, seg);
          int64_t hi = std::clamp<int64_t>(s.in_w - woff - ow, lo, seg);
          // Plain loops: the runs are short (a panel is 32 pixels), library calls cost more.
          const float* src = in + ow + woff;
          for (int64_t i = 0; i < lo; ++i) out[i] = 0.0f;
          for (int64_t i = lo; i < hi; ++i) out[i] = src[i];
          for (int64_t i = hi; i < seg; ++i) out[i] = 0.0f;
        } else {
          for (int64_t i = 0; i < seg; ++i) {
            int64_t iw = (ow + i) * s.stride_w + woff;
            out[i] = iw >= 0 && iw < s.in_w ? in[iw] : 0.0f;
          }
        }
      }
      out += seg, p += seg, ow = 0, ++oh;
    }
    for (int64_t j = cols; j < zero_to; ++j) row[j] = 0.0f;
  }
}

struct PanelCtx {
  const Conv2dShape* s;
  const Dims* d;
  const float* x;
  int64_t j_base;  // the first output pixel of the chunk being packed
  const gemm_detail::GemmKernels* kr;
  gemm_detail::Im2colGeometry geometry;  // of x, for kr->im2col
};
void Im2colPanel(const void* ctx, int64_t k0, int64_t kc, int64_t j0, int64_t cols, float* dst) {
  const PanelCtx& c = *static_cast<const PanelCtx*>(ctx);
  if (c.kr->im2col && c.s->stride_w < gemm_detail::kIm2colMaxStride)
    c.kr->im2col(&c.geometry, k0, kc, c.j_base + j0, cols, dst);  // vector loads, the ISA's own
  else
    Im2col(*c.s, *c.d, c.x, k0, kc, c.j_base + j0, cols, dst, kNR, kNR);
}
gemm_detail::Im2colGeometry GeometryOf(const Conv2dShape& s, const Dims& d, const float* x) {
  return {x,          s.in_h,     s.in_w,  d.ow,    s.kernel_h,   s.kernel_w,
          s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dilation_h, s.dilation_w};
}

// dx (one image and group) += col2im(dcol [Kg, P]); channels in parallel, each summed in a
// fixed order.
void Col2im(const Conv2dShape& s, const Dims& d, const float* dcol, float* dx, ThreadPool* pool) {
  Parallel(pool, d.cg, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t kh = 0; kh < s.kernel_h; ++kh)
        for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
          const float* src = dcol + ((c * s.kernel_h + kh) * s.kernel_w + kw) * d.p;
          int64_t woff = kw * s.dilation_w - s.pad_w;
          for (int64_t oh = 0; oh < d.oh; ++oh) {
            int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dilation_h;
            if (ih < 0 || ih >= s.in_h) continue;
            float* out = dx + c * d.hw + ih * s.in_w;
            const float* in = src + oh * d.ow;
            for (int64_t ow = 0; ow < d.ow; ++ow) {
              int64_t iw = ow * s.stride_w + woff;
              if (iw >= 0 && iw < s.in_w) out[iw] += in[ow];
            }
          }
        }
  });
}

// Calls the user's epilogue for image n with rows shifted to the group's output channels.
struct EpilogueShift {
  GemmEpilogue user;
  int64_t image, channel0;
  static void Fn(void* ctx, int64_t, int64_t r0, int64_t r1) {
    auto* e = static_cast<EpilogueShift*>(ctx);
    e->user.fn(e->user.ctx, e->image, e->channel0 + r0, e->channel0 + r1);
  }
};

// Depthwise forward, directly: each output plane is a sum of shifted, scaled input rows.
void DepthwiseForward(const Conv2dShape& s, const Dims& d, const float* x, const float* w, float* y,
                      GemmEpilogue ep, ThreadPool* pool) {
  const int64_t C = s.out_channels, units = s.batch * C;
  Parallel(pool, units, [&](int64_t u0, int64_t u1) {
    int64_t block0 = u0;  // first unit not yet handed to the epilogue
    for (int64_t u = u0; u < u1; ++u) {
      int64_t n = u / C, c = u % C;
      const float* plane = x + u * d.hw;
      const float* wc = w + c * s.kernel_h * s.kernel_w;
      float* out = y + u * d.p;
      for (int64_t oh = 0; oh < d.oh; ++oh) {
        float* yrow = out + oh * d.ow;
        std::fill(yrow, yrow + d.ow, 0.0f);
        for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
          int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dilation_h;
          if (ih < 0 || ih >= s.in_h) continue;
          const float* xrow = plane + ih * s.in_w;
          for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
            float wv = wc[kh * s.kernel_w + kw];
            int64_t off = kw * s.dilation_w - s.pad_w;
            // Valid ow: 0 <= ow * stride + off < W.
            int64_t lo = off >= 0 ? 0 : (-off + s.stride_w - 1) / s.stride_w;
            int64_t hi = s.in_w - off <= 0 ? 0 : (s.in_w - off - 1) / s.stride_w + 1;
            hi = std::min(hi, d.ow);
            if (s.stride_w == 1) {
              const float* xs = xrow + off;
              for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * xs[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * xrow[ow * s.stride_w + off];
            }
          }
        }
      }
      // Hand finished channels to the epilogue: at the end of an image or of kGemmMC channels.
      bool last = u + 1 == u1 || (u + 1) % C == 0 || u + 1 - block0 == kGemmMC;
      if (ep.fn && last) {
        ep.fn(ep.ctx, n, block0 % C, c + 1);
        block0 = u + 1;
      } else if (last) {
        block0 = u + 1;
      }
    }
  });
}

GemmArgs ForwardArgs(const Conv2dShape& s, const Dims& d, GemmIsa isa) {
  GemmArgs g;
  g.m = d.og, g.n = d.p, g.k = d.kg;
  g.lda = d.kg;
  g.ldb = d.hw, g.b_layout = BLayout::kKN;
  g.ldc = d.p;
  g.isa = isa;
  return g;
}
GemmArgs BackwardDataArgs(const Dims& d, GemmIsa isa) {
  GemmArgs g;
  g.m = d.kg, g.n = d.p, g.k = d.og;
  g.lda = d.kg, g.trans_a = true;
  g.ldb = d.p, g.b_layout = BLayout::kKN;
  g.ldc = d.p;
  g.isa = isa;
  return g;
}
GemmArgs BackwardWeightArgs(const Dims& d, GemmIsa isa) {
  GemmArgs g;
  g.m = d.og, g.n = d.kg, g.k = d.p;
  g.lda = d.p;
  g.ldb = d.p, g.b_layout = BLayout::kNK;
  g.ldc = d.kg;
  g.isa = isa;
  return g;
}

// The forward pass works on chunks of output pixels whose im2col panels (Kg x chunk floats)
// stay in the L2 cache: each thread packs a chunk, then multiplies it, then takes the next.
// The chunks split the kNR-column panels nearly evenly, in a multiple of the thread count
// (they start at multiples of kNR, so every element is the same arithmetic for any split).
constexpr int64_t kL2Floats = 128 * 1024;  // 512 KiB of panels
struct Chunks {
  int64_t p, panels, count;
  int64_t Begin(int64_t c) const { return std::min(p, panels * c / count * kNR); }
};
Chunks ChunksOf(const Dims& d, int threads) {
  int64_t panels = (d.p + kNR - 1) / kNR;
  int64_t most = std::max<int64_t>(1, kL2Floats / std::max<int64_t>(1, d.kg) / kNR);
  int64_t count = RoundUp((panels + most - 1) / most, std::max(1, threads));
  return {d.p, panels, std::min(count, panels)};
}
// The most columns in a chunk (with any thread count).
int64_t ChunkCols(const Dims& d) {
  int64_t most = std::max<int64_t>(1, kL2Floats / std::max<int64_t>(1, d.kg) / kNR);
  return std::min(most * kNR, RoundUp(d.p, kNR));
}
int64_t ChunkPanelBytes(const Dims& d) {
  return Align64(ChunkCols(d) * d.kg * 4);
}
// One thread's scratch in the forward pass: its chunk's panels and its packed A.
int64_t ChunkScratchBytes(const Dims& d, const GemmArgs& g) {
  GemmArgs chunk = g;
  chunk.n = ChunkCols(d);
  return ChunkPanelBytes(d) + Align64(gemm_detail::GemmOnPanelsWorkspaceBytes(chunk, 1));
}
// Too few panels for the threads (7x7 planes: 49 = 32 + 17 columns): all panels are packed
// first, by all threads, and the product's row blocks (output channels) shared out instead.
// Only where those panels are small.
int64_t SharedPanelBytes(const Dims& d) {
  return Align64(RoundUp(d.p, kNR) * d.kg * 4);
}
constexpr int64_t kSharedPanelsMax = 2 << 20;
__attribute__((always_inline)) inline bool SharedPanels(const Dims& d, int threads) {
  if (threads <= 1 || SharedPanelBytes(d) > kSharedPanelsMax) return false;
  // The most columns a thread gets in chunks against an even share.
  Chunks ch = ChunksOf(d, threads);
  int64_t most = 0;
  for (int t = 0; t < threads; ++t)
    most = std::max(most, ch.Begin(ThreadPool::RangeBegin(ch.count, t + 1, threads)) -
                              ch.Begin(ThreadPool::RangeBegin(ch.count, t, threads)));
  return most * threads > d.p * 11 / 10;
}
// The index of the pool thread that runs range [begin, ...) of ParallelFor(n).
int ThreadOf(int64_t begin, int64_t n, int threads) {
  int t = 0;
  while (t + 1 < threads && ThreadPool::RangeBegin(n, t + 1, threads) <= begin) ++t;
  return t;
}
int64_t ColBytes(const Dims& d) {
  return d.pointwise ? 0 : Align64(d.kg * d.p * 4);
}

}  // namespace

int64_t Conv2dShape::out_h() const {
  int64_t end = pad_h_end < 0 ? pad_h : pad_h_end;
  return (in_h + pad_h + end - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
}
int64_t Conv2dShape::out_w() const {
  int64_t end = pad_w_end < 0 ? pad_w : pad_w_end;
  return (in_w + pad_w + end - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
}

std::string Conv2dShape::Problem() const {
  if (batch < 0 || in_channels < 0 || out_channels < 0 || in_h < 1 || in_w < 1)
    return StrCat("bad sizes: batch ", batch, ", channels ", in_channels, " -> ", out_channels,
                  ", input ", in_h, "x", in_w, " (input sides must be >= 1)");
  if (kernel_h < 1 || kernel_w < 1) return StrCat("bad kernel ", kernel_h, "x", kernel_w);
  if (stride_h < 1 || stride_w < 1) return StrCat("bad stride ", stride_h, "x", stride_w);
  if (dilation_h < 1 || dilation_w < 1) return StrCat("bad dilation ", dilation_h, "x", dilation_w);
  if (pad_h < 0 || pad_w < 0 || pad_h_end < -1 || pad_w_end < -1)
    return StrCat("negative padding (", pad_h, ", ", pad_w, ", ", pad_h_end, ", ", pad_w_end, ")");
  if (groups < 1 || in_channels % groups || out_channels % groups)
    return StrCat("groups=", groups, " must divide in_channels=", in_channels,
                  " and out_channels=", out_channels);
  int64_t eh = pad_h_end < 0 ? pad_h : pad_h_end, ew = pad_w_end < 0 ? pad_w : pad_w_end;
  if (in_h + pad_h + eh < dilation_h * (kernel_h - 1) + 1 ||
      in_w + pad_w + ew < dilation_w * (kernel_w - 1) + 1)
    return StrCat("the kernel ", kernel_h, "x", kernel_w, " (dilation ", dilation_h, "x",
                  dilation_w, ") is larger than the padded input ", in_h + pad_h + eh, "x",
                  in_w + pad_w + ew);
  return "";
}

int64_t ConvForwardWorkspaceBytes(const Conv2dShape& s, int num_threads) {
  CheckShape(s, "ConvForwardWorkspaceBytes");
  Dims d = Derive(s);
  if (d.depthwise || d.og == 0 || d.p == 0) return 0;
  GemmArgs g = ForwardArgs(s, d, GemmIsa::kAuto);
  if (d.pointwise) return Align64(GemmWorkspaceBytes(g, num_threads));
  const int threads = std::max(1, num_threads);
  // Room for shared panels where a run with up to `threads` threads may use them (exactly
  // for 2 threads, the panels' size allows with more).
  const bool may_share =
      threads > 2 ? SharedPanelBytes(d) <= kSharedPanelsMax : SharedPanels(d, threads);
  const int64_t shared = may_share ? SharedPanelBytes(d) : 0;
  return Align64(gemm_detail::PackedAFloats(g) * 4) +
         std::max(threads * ChunkScratchBytes(d, g), shared);
}

int64_t ConvPackedWeightsFloats(const Conv2dShape& s) {
  CheckShape(s, "ConvPackedWeightsFloats");
  Dims d = Derive(s);
  if (d.depthwise || d.pointwise || d.og == 0 || d.p == 0) return 0;
  return s.groups * Align64(gemm_detail::PackedAFloats(ForwardArgs(s, d, GemmIsa::kAuto)) * 4) / 4;
}

void ConvPackWeights(const Conv2dShape& s, const float* w, float* out) {
  Dims d = Derive(s);
  if (ConvPackedWeightsFloats(s) == 0) return;
  GemmArgs g = ForwardArgs(s, d, GemmIsa::kAuto);
  const int64_t per_group = Align64(gemm_detail::PackedAFloats(g) * 4) / 4;
  for (int64_t grp = 0; grp < s.groups; ++grp) {
    g.a = w + grp * d.og * d.kg;
    gemm_detail::PackAForPanels(g, out + grp * per_group);
  }
}

void ConvForward(const Conv2dShape& s, const float* x, const float* w, float* y,
                 GemmEpilogue epilogue, void* workspace, ThreadPool* pool, GemmIsa isa,
                 const float* packed_w) {
  CheckShape(s, "ConvForward");
  Dims d = Derive(s);
  if (s.batch == 0 || s.out_channels == 0) return;
  if (d.depthwise) return DepthwiseForward(s, d, x, w, y, epilogue, pool);
  int threads = pool ? pool->num_threads() : 1;
  Scratch ws(workspace, ConvForwardWorkspaceBytes(s, threads));
  const gemm_detail::GemmKernels& kr = gemm_detail::SelectKernels(isa);
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t grp = 0; grp < s.groups; ++grp) {
      GemmArgs g = ForwardArgs(s, d, isa);
      const float* xg = x + (n * s.in_channels + grp * d.cg) * d.hw;
      g.a = w + grp * d.og * d.kg;
      g.c = y + (n * s.out_channels + grp * d.og) * d.p;
      EpilogueShift shift{epilogue, n, grp * d.og};
      if (epilogue.fn) g.epilogue = {&EpilogueShift::Fn, &shift};
      if (d.pointwise) {
        g.b = xg;
        g.workspace = ws.base;
        Gemm(g, pool);
        continue;
      }
      // The group's weights packed once for all its chunks (or given packed).
      auto* packed_a = reinterpret_cast<float*>(ws.base);
      if (packed_w)
        packed_a =
            const_cast<float*>(packed_w) + grp * (Align64(gemm_detail::PackedAFloats(g) * 4) / 4);
      else
        gemm_detail::PackAForPanels(g, packed_a);
      char* chunk_scratch = ws.base + Align64(gemm_detail::PackedAFloats(g) * 4);
      if (SharedPanels(d, threads)) {
        // All panels by all threads, then row blocks over the threads, each block's epilogue
        // on the thread that computed it.
        auto* panels = reinterpret_cast<float*>(chunk_scratch);
        PanelCtx ctx{&s, &d, xg, 0, &kr, GeometryOf(s, d, xg)};
        gemm_detail::PackPanels({&Im2colPanel, &ctx}, d.p, d.kg, panels, pool);
        g.workspace = chunk_scratch;  // unused: A is packed
        gemm_detail::GemmOnPanels(g, panels, pool, packed_a);
        continue;
      }
      // Chunks of output pixels over the threads; the epilogue once the image's rows are done.
      const Chunks chunks = ChunksOf(d, threads);
      int64_t scratch = ChunkScratchBytes(d, g);
      Parallel(pool, chunks.count, [&](int64_t c0, int64_t c1) {
        char* mine = chunk_scratch + ThreadOf(c0, chunks.count, threads) * scratch;
        auto* panels = reinterpret_cast<float*>(mine);
        for (int64_t ch = c0; ch < c1; ++ch) {
          int64_t j0 = chunks.Begin(ch), cols = chunks.Begin(ch + 1) - j0;
          PanelCtx ctx{&s, &d, xg, j0, &kr, GeometryOf(s, d, xg)};
          gemm_detail::PackPanels({&Im2colPanel, &ctx}, cols, d.kg, panels, nullptr);
          GemmArgs gc = g;
          gc.n = cols, gc.c = g.c + j0, gc.epilogue = {};
          gc.workspace = mine + ChunkPanelBytes(d);
          gemm_detail::GemmOnPanels(gc, panels, nullptr, packed_a);
        }
      });
      if (epilogue.fn) {
        // Blocks of channels over the threads (about four per thread, at most kGemmMC).
        int64_t rows = threads == 1 ? kGemmMC
                                    : std::clamp<int64_t>((d.og + 4 * threads - 1) / (4 * threads),
                                                          1, kGemmMC);
        Parallel(pool, (d.og + rows - 1) / rows, [&](int64_t b0, int64_t b1) {
          for (int64_t b = b0; b < b1; ++b)
            epilogue.fn(epilogue.ctx, n, grp * d.og + b * rows,
                        grp * d.og + std::min(d.og, (b + 1) * rows));
        });
      }
    }
}

int64_t ConvBackwardDataWorkspaceBytes(const Conv2dShape& s, int num_threads) {
  CheckShape(s, "ConvBackwardDataWorkspaceBytes");
  Dims d = Derive(s);
  return ColBytes(d) +
         Align64(GemmWorkspaceBytes(BackwardDataArgs(d, GemmIsa::kAuto), num_threads));
}

void ConvBackwardData(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                      bool accumulate, void* workspace, ThreadPool* pool, GemmIsa isa) {
  CheckShape(s, "ConvBackwardData");
  Dims d = Derive(s);
  if (s.batch == 0 || s.in_channels == 0) return;
  Scratch ws(workspace, ConvBackwardDataWorkspaceBytes(s, pool ? pool->num_threads() : 1));
  auto* dcol = reinterpret_cast<float*>(ws.base);
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t grp = 0; grp < s.groups; ++grp) {
      float* dxg = dx + (n * s.in_channels + grp * d.cg) * d.hw;
      GemmArgs g = BackwardDataArgs(d, isa);
      g.a = w + grp * d.og * d.kg;
      g.b = dy + (n * s.out_channels + grp * d.og) * d.p;
      g.workspace = ws.base + ColBytes(d);
      if (d.pointwise) {  // dX_g = W_g^T dY_g straight into dX
        g.c = dxg, g.accumulate = accumulate;
        Gemm(g, pool);
        continue;
      }
      g.c = dcol;
      Gemm(g, pool);
      if (!accumulate) std::memset(dxg, 0, size_t(d.cg * d.hw) * 4);
      Col2im(s, d, dcol, dxg, pool);
    }
}

int64_t ConvBackwardWeightWorkspaceBytes(const Conv2dShape& s, int num_threads) {
  CheckShape(s, "ConvBackwardWeightWorkspaceBytes");
  Dims d = Derive(s);
  return ColBytes(d) +
         Align64(GemmWorkspaceBytes(BackwardWeightArgs(d, GemmIsa::kAuto), num_threads));
}

void ConvBackwardWeight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                        bool accumulate, void* workspace, ThreadPool* pool, GemmIsa isa) {
  CheckShape(s, "ConvBackwardWeight");
  Dims d = Derive(s);
  if (s.out_channels == 0 || d.kg == 0) return;
  if (s.batch == 0) {
    if (!accumulate) std::memset(dw, 0, size_t(s.out_channels * d.kg) * 4);
    return;
  }
  Scratch ws(workspace, ConvBackwardWeightWorkspaceBytes(s, pool ? pool->num_threads() : 1));
  auto* col = reinterpret_cast<float*>(ws.base);
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t grp = 0; grp < s.groups; ++grp) {
      const float* xg = x + (n * s.in_channels + grp * d.cg) * d.hw;
      GemmArgs g = BackwardWeightArgs(d, isa);
      g.a = dy + (n * s.out_channels + grp * d.og) * d.p;
      g.c = dw + grp * d.og * d.kg;
      g.accumulate = accumulate || n > 0;
      g.workspace = ws.base + ColBytes(d);
      if (d.pointwise) {
        g.b = xg;
      } else {
        Parallel(pool, d.kg, [&](int64_t r0, int64_t r1) {
          Im2col(s, d, xg, r0, r1 - r0, 0, d.p, col + r0 * d.p, d.p, d.p);
        });
        g.b = col;
      }
      Gemm(g, pool);
    }
}

}  // namespace kiln
