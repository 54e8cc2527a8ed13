// conv_kernel_test.cpp - the runtime's NCHW convolution (kiln/runtime/conv.h) against direct
// double-precision loops: strides, asymmetric padding, dilations, groups, depthwise, 1x1 and
// 1-D, forward (with the epilogue), backward data and backward weight (with accumulation),
// 1 and 2 threads bit-identical, caller-provided workspaces.
//
// Tolerance per element: |got - want| <= 1e-5 * (sum of |terms| + |initial value|) + 1e-30.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <vector>

#include "kiln/runtime/conv.h"
#include "kiln/runtime/error.h"
#include "kiln/runtime/thread_pool.h"

namespace kiln {
namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// Calls f(n, o, oh, ow, c_in, ih, iw, w_index) for every term of the convolution.
template <class F>
void ForEachTerm(const Conv2dShape& s, F&& f) {
  int64_t cg = s.in_channels / s.groups, og = s.out_channels / s.groups;
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t o = 0; o < s.out_channels; ++o)
      for (int64_t oh = 0; oh < s.out_h(); ++oh)
        for (int64_t ow = 0; ow < s.out_w(); ++ow)
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t kh = 0; kh < s.kernel_h; ++kh)
              for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
                int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dilation_h;
                int64_t iw = ow * s.stride_w - s.pad_w + kw * s.dilation_w;
                if (ih < 0 || ih >= s.in_h || iw < 0 || iw >= s.in_w) continue;
                int64_t ci = o / og * cg + c;
                f(((n * s.out_channels + o) * s.out_h() + oh) * s.out_w() + ow,
                  ((n * s.in_channels + ci) * s.in_h + ih) * s.in_w + iw,
                  ((o * cg + c) * s.kernel_h + kh) * s.kernel_w + kw);
              }
}

void ExpectClose(const std::vector<float>& got, const std::vector<double>& want,
                 const std::vector<double>& mag, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i)
    if (!(std::fabs(got[i] - want[i]) <= 1e-5 * mag[i] + 1e-30)) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", want " << want[i];
      ++bad;
    }
}

// A bit of scratch aligned to 64 bytes.
struct Workspace {
  std::vector<char> mem;
  void* Get(int64_t bytes) {
    mem.assign(size_t(bytes) + 64, 0);
    return reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(mem.data()) + 63) & ~uintptr_t(63));
  }
};

struct Recorder {
  std::mutex mu;
  std::vector<int> seen;  // [n * O + o]
  float* y;
  int64_t channels, plane;
  static void Fn(void* ctx, int64_t n, int64_t o0, int64_t o1) {
    auto* r = static_cast<Recorder*>(ctx);
    std::lock_guard<std::mutex> lock(r->mu);
    for (int64_t o = o0; o < o1; ++o) {
      ++r->seen[size_t(n * r->channels + o)];
      for (int64_t i = 0; i < r->plane; ++i) r->y[(n * r->channels + o) * r->plane + i] += 1.0f;
    }
  }
};

void CheckShapeAllWays(const Conv2dShape& s, const std::string& name) {
  SCOPED_TRACE(name);
  ASSERT_EQ(s.Problem(), "");
  size_t nx = size_t(s.batch * s.in_channels * s.in_h * s.in_w);
  size_t nw = size_t(s.out_channels * (s.in_channels / s.groups) * s.kernel_h * s.kernel_w);
  size_t ny = size_t(s.batch * s.out_channels * s.out_h() * s.out_w());
  std::vector<float> x = Random(nx, 1), w = Random(nw, 2), dy = Random(ny, 3);
  std::vector<float> dx0 = Random(nx, 4), dw0 = Random(nw, 5);
  std::vector<double> y_ref(ny), y_mag(ny), dx_ref(nx), dx_mag(nx), dw_ref(nw), dw_mag(nw);
  ForEachTerm(s, [&](int64_t yi, int64_t xi, int64_t wi) {
    y_ref[size_t(yi)] += double(x[size_t(xi)]) * w[size_t(wi)];
    y_mag[size_t(yi)] += std::fabs(double(x[size_t(xi)]) * w[size_t(wi)]);
    dx_ref[size_t(xi)] += double(dy[size_t(yi)]) * w[size_t(wi)];
    dx_mag[size_t(xi)] += std::fabs(double(dy[size_t(yi)]) * w[size_t(wi)]);
    dw_ref[size_t(wi)] += double(dy[size_t(yi)]) * x[size_t(xi)];
    dw_mag[size_t(wi)] += std::fabs(double(dy[size_t(yi)]) * x[size_t(xi)]);
  });
  ThreadPool pool(2);
  std::vector<float> first_y, first_dx, first_dw;
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    int threads = p ? p->num_threads() : 1;
    Workspace ws;
    // Forward, with an epilogue adding 1 to each finished channel.
    std::vector<float> y(ny, 7.0f);
    Recorder rec;
    rec.seen.assign(size_t(s.batch * s.out_channels), 0);
    rec.y = y.data(), rec.channels = s.out_channels, rec.plane = s.out_h() * s.out_w();
    ConvForward(s, x.data(), w.data(), y.data(), {&Recorder::Fn, &rec},
                ws.Get(ConvForwardWorkspaceBytes(s, threads)), p);
    for (int v : rec.seen) ASSERT_EQ(v, 1) << "epilogue calls per channel";
    std::vector<double> y_want = y_ref;
    for (double& v : y_want) v += 1;
    ExpectClose(y, y_want, y_mag, "forward");
    // Backward data, overwriting and accumulating.
    for (bool acc : {false, true}) {
      std::vector<float> dx = dx0;
      ConvBackwardData(s, dy.data(), w.data(), dx.data(), acc,
                       ws.Get(ConvBackwardDataWorkspaceBytes(s, threads)), p);
      std::vector<double> want = dx_ref, mag = dx_mag;
      if (acc)
        for (size_t i = 0; i < nx; ++i) want[i] += dx0[i], mag[i] += std::fabs(dx0[i]);
      ExpectClose(dx, want, mag, acc ? "backward data (accumulate)" : "backward data");
      if (!acc && !p) first_dx = dx;
      if (!acc && p) {
        EXPECT_EQ(0, std::memcmp(dx.data(), first_dx.data(), nx * 4));
      }
    }
    for (bool acc : {false, true}) {
      std::vector<float> dw = dw0;
      ConvBackwardWeight(s, x.data(), dy.data(), dw.data(), acc, nullptr, p);
      std::vector<double> want = dw_ref, mag = dw_mag;
      if (acc)
        for (size_t i = 0; i < nw; ++i) want[i] += dw0[i], mag[i] += std::fabs(dw0[i]);
      ExpectClose(dw, want, mag, acc ? "backward weight (accumulate)" : "backward weight");
      if (!acc && !p) first_dw = dw;
      if (!acc && p) {
        EXPECT_EQ(0, std::memcmp(dw.data(), first_dw.data(), nw * 4));
      }
    }
    if (!p) first_y = y;
    if (p) {
      EXPECT_EQ(0, std::memcmp(y.data(), first_y.data(), ny * 4)) << "1 vs 2 threads";
    }
  }
}

Conv2dShape Make(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t k) {
  Conv2dShape s;
  s.batch = n, s.in_channels = c, s.in_h = h, s.in_w = w;
  s.out_channels = o, s.kernel_h = s.kernel_w = k;
  return s;
}

TEST(Conv, Basic3x3Padded) {
  Conv2dShape s = Make(2, 3, 7, 9, 5, 3);
  s.pad_h = s.pad_w = 1;
  CheckShapeAllWays(s, "3x3 pad 1");
}

TEST(Conv, StridesAndAsymmetricPadding) {
  Conv2dShape s = Make(2, 4, 11, 10, 6, 3);
  s.stride_h = 2, s.stride_w = 3, s.pad_h = 1, s.pad_w = 2, s.pad_h_end = 0, s.pad_w_end = 1;
  CheckShapeAllWays(s, "stride 2x3, pads 1,2 / 0,1");
  Conv2dShape t = Make(1, 3, 9, 9, 4, 5);
  t.kernel_w = 2, t.stride_h = t.stride_w = 2, t.pad_h = 2;
  CheckShapeAllWays(t, "5x2 stride 2");
}

TEST(Conv, Dilation) {
  Conv2dShape s = Make(2, 3, 12, 13, 4, 3);
  s.dilation_h = 2, s.dilation_w = 3, s.pad_h = 2, s.pad_w = 1;
  CheckShapeAllWays(s, "dilation 2x3");
}

TEST(Conv, GroupsAndDepthwise) {
  Conv2dShape s = Make(2, 4, 8, 8, 6, 3);
  s.groups = 2, s.pad_h = s.pad_w = 1;
  CheckShapeAllWays(s, "groups 2");
  Conv2dShape d = Make(2, 6, 9, 10, 6, 3);
  d.groups = 6, d.pad_h = d.pad_w = 1, d.stride_h = d.stride_w = 2;
  CheckShapeAllWays(d, "depthwise stride 2");
  d.stride_h = d.stride_w = 1, d.dilation_h = 2;
  CheckShapeAllWays(d, "depthwise dilation 2");
  Conv2dShape m = Make(1, 3, 6, 6, 6, 3);
  m.groups = 3;
  CheckShapeAllWays(m, "depthwise multiplier 2");
}

TEST(Conv, PointwiseAndOneD) {
  CheckShapeAllWays(Make(2, 20, 6, 7, 33, 1), "1x1");
  Conv2dShape s = Make(1, 8, 5, 5, 3, 1);
  s.stride_h = s.stride_w = 2;
  CheckShapeAllWays(s, "1x1 stride 2");
  Conv2dShape g = Make(2, 8, 5, 6, 12, 1);
  g.groups = 4;
  CheckShapeAllWays(g, "1x1 groups 4");
  Conv2dShape d1 = Make(2, 5, 1, 40, 7, 1);
  d1.kernel_w = 5, d1.pad_w = 2, d1.stride_w = 2;
  CheckShapeAllWays(d1, "1-D");
}

TEST(Conv, TilesEdgesAndLongK) {
  Conv2dShape s = Make(2, 16, 15, 15, 40, 3);
  s.pad_h = s.pad_w = 1;
  CheckShapeAllWays(s, "16->40 15x15");
  Conv2dShape k = Make(1, 64, 6, 5, 20, 3);
  CheckShapeAllWays(k, "K = 576");
  Conv2dShape chunks = Make(2, 64, 21, 20, 15, 3);  // chunks of 224 output pixels
  chunks.pad_h = chunks.pad_w = 1;
  CheckShapeAllWays(chunks, "chunks");
}

// Forward with small integers in X and W, so that every sum is exact whatever its order: the
// output equals the reference exactly on every ISA (any value packed wrongly shows), with 1 and
// 2 threads.
void CheckForwardExact(const Conv2dShape& s, const std::string& name) {
  SCOPED_TRACE(name + " (exact)");
  size_t nx = size_t(s.batch * s.in_channels * s.in_h * s.in_w);
  size_t nw = size_t(s.out_channels * (s.in_channels / s.groups) * s.kernel_h * s.kernel_w);
  size_t ny = size_t(s.batch * s.out_channels * s.out_h() * s.out_w());
  std::vector<float> x(nx), w(nw);
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> u(-8, 8);
  for (float& v : x) v = float(u(rng));
  for (float& v : w) v = float(u(rng));
  std::vector<double> want(ny);
  ForEachTerm(s, [&](int64_t yi, int64_t xi, int64_t wi) {
    want[size_t(yi)] += double(x[size_t(xi)]) * w[size_t(wi)];
  });
  ThreadPool pool(2);
  for (GemmIsa isa : {GemmIsa::kGeneric, GemmIsa::kAvx2, GemmIsa::kAvx512}) {
    if (!GemmIsaSupported(isa)) continue;
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      std::vector<float> y(ny, 5.0f);
      ConvForward(s, x.data(), w.data(), y.data(), {}, nullptr, p, isa);
      int bad = 0;
      for (size_t i = 0; i < ny && bad < 5; ++i)
        if (double(y[i]) != want[i]) {
          ADD_FAILURE() << GemmIsaName(isa) << (p ? ", 2 threads" : ", 1 thread") << ": element "
                        << i << " is " << y[i] << ", want " << want[i];
          ++bad;
        }
    }
  }
}

// The forward pass packs the GEMM's panels straight from the image (per ISA: masked loads for
// stride 1, loads and a permute for stride 2, gathers for other strides, plain loops for huge
// ones): a panel row of 32 output pixels spans one or many output rows, and padding, dilation,
// asymmetric pads and pads wider than the kernel leave zeros anywhere in it.
TEST(Conv, PanelsStraightFromTheImage) {
  auto Check = [](const Conv2dShape& s, const std::string& name) {
    CheckShapeAllWays(s, name);
    CheckForwardExact(s, name);
  };
  Conv2dShape s = Make(2, 3, 13, 37, 5, 3);
  s.stride_h = s.stride_w = 2, s.pad_h = s.pad_w = 1;
  Check(s, "3x3 stride 2, 19 pixels a row");
  Conv2dShape a = Make(1, 2, 11, 45, 4, 4);
  a.kernel_w = 5, a.stride_w = 2, a.dilation_w = 2, a.pad_w = 2, a.pad_w_end = 0, a.pad_h = 1;
  Check(a, "4x5 stride 1x2, dilation 1x2, pads 1,2 / 1,0");
  Conv2dShape g3 = Make(1, 3, 10, 50, 4, 3);
  g3.stride_h = g3.stride_w = 3, g3.pad_h = g3.pad_w = 1;
  Check(g3, "stride 3");
  Conv2dShape g4 = Make(1, 2, 7, 70, 3, 3);
  g4.kernel_h = 1, g4.stride_w = 4, g4.dilation_w = 2, g4.pad_w = 3, g4.pad_w_end = 2;
  Check(g4, "1x3 stride 1x4, dilation 2");
  Conv2dShape huge = Make(1, 3, 6, 7, 4, 3);
  huge.pad_h = huge.pad_w = 1, huge.stride_w = int64_t(1) << 26;
  Check(huge, "stride 2^26");
  Check(Make(1, 3, 5, 34, 4, 3), "32 pixels a row");
  Check(Make(1, 3, 5, 35, 4, 3), "33 pixels a row");
  Check(Make(2, 4, 40, 3, 5, 3), "1 pixel a row");
  Conv2dShape wide = Make(1, 2, 40, 31, 3, 1);
  wide.kernel_w = 30;
  Check(wide, "kernel 1x30, 2 pixels a row");
  Conv2dShape pads = Make(1, 3, 5, 6, 4, 3);
  pads.pad_h = pads.pad_w = 4, pads.pad_w_end = 5;
  Check(pads, "pads wider than the kernel");
  Conv2dShape one_d = Make(2, 4, 1, 100, 6, 1);
  one_d.kernel_w = 7, one_d.stride_w = 2, one_d.dilation_w = 3, one_d.pad_w = 5;
  Check(one_d, "1-D stride 2, dilation 3");
  Conv2dShape one_d1 = Make(1, 5, 1, 77, 4, 1);
  one_d1.kernel_w = 3, one_d1.pad_w = 1;
  Check(one_d1, "1-D stride 1");
  Conv2dShape groups = Make(2, 6, 9, 40, 9, 3);
  groups.groups = 3, groups.stride_h = groups.stride_w = 2, groups.pad_h = groups.pad_w = 1;
  Check(groups, "groups 3, stride 2");
  Conv2dShape chunks = Make(1, 64, 40, 61, 3, 3);  // chunks of 224 pixels, rows of 31
  chunks.stride_h = chunks.stride_w = 2, chunks.pad_h = chunks.pad_w = 1;
  Check(chunks, "chunks, stride 2");
  // Stride 1 and 2 pack a panel by a program of kernel_h x kernel_w x runs entries, up to 256;
  // larger ones take the per-row loop.
  Conv2dShape big1 = Make(1, 2, 12, 12, 3, 9);  // 4 pixels a row: 81 x 8 entries
  Check(big1, "9x9 on 12x12, a program too large");
  Conv2dShape big2 = Make(1, 2, 40, 7, 3, 7);  // stride 2, 2 pixels a row: 49 x 16 entries
  big2.stride_h = big2.stride_w = 2, big2.pad_h = big2.pad_w = 1;
  Check(big2, "7x7 stride 2 on 40x7, a program too large");
}

// The output pixels are split into chunks of nearly equal panels, a multiple of the thread count;
// too few pixels for the threads (7x7 planes): all the panels are packed first and the row
// blocks of output channels shared out. Results are the same bits with 1, 2 and 3 threads, and
// each channel's epilogue runs once.
TEST(Conv, ChunksAndRowBlocksOverThreads) {
  Conv2dShape s = Make(1, 48, 7, 7, 340, 3);  // K = 432, 3 row blocks, 49 = 32 + 17 pixels
  s.pad_h = s.pad_w = 1;
  CheckShapeAllWays(s, "7x7, 48->340");
  Conv2dShape p = Make(2, 40, 14, 14, 200, 1);
  p.stride_h = p.stride_w = 2;
  CheckShapeAllWays(p, "1x1 stride 2, 40->200");
  Conv2dShape chunks = Make(1, 64, 30, 30, 20, 3);  // 29 panels in chunks of at most 7
  chunks.pad_h = chunks.pad_w = 1;
  for (const Conv2dShape& shape : {s, p, chunks}) {
    size_t nx = size_t(shape.batch * shape.in_channels * shape.in_h * shape.in_w);
    size_t nw = size_t(shape.out_channels * shape.in_channels * shape.kernel_h * shape.kernel_w);
    size_t ny = size_t(shape.batch * shape.out_channels * shape.out_h() * shape.out_w());
    std::vector<float> x = Random(nx, 8), w = Random(nw, 9), first;
    for (int threads : {1, 2, 3}) {
      SCOPED_TRACE(threads);
      ThreadPool pool(threads);
      std::vector<float> y(ny, 3.0f);
      Recorder rec;
      rec.seen.assign(size_t(shape.batch * shape.out_channels), 0);
      rec.y = y.data(), rec.channels = shape.out_channels;
      rec.plane = shape.out_h() * shape.out_w();
      Workspace ws;
      ConvForward(shape, x.data(), w.data(), y.data(), {&Recorder::Fn, &rec},
                  ws.Get(ConvForwardWorkspaceBytes(shape, threads)), &pool);
      for (int v : rec.seen) ASSERT_EQ(v, 1) << "epilogue calls per channel";
      if (first.empty()) first = y;
      EXPECT_EQ(0, std::memcmp(y.data(), first.data(), ny * 4)) << threads << " threads";
    }
  }
}

// Output planes whose last 32-pixel panel is narrow (7x7: 49 = 32 + 17, 14x14: 196 = 6 * 32 + 4,
// 5x5: 25), with full 14-row tiles of output channels and K over several blocks of 384: the
// AVX-512 GEMM computes such panels' last columns as vectors along the rows.
TEST(Conv, NarrowLastPanels) {
  for (int64_t side : {7, 14, 5}) {
    Conv2dShape s = Make(1, 50, side, side, 30, 3);
    s.pad_h = s.pad_w = 1;
    std::string name = StrCat(side, "x", side, ", 50->30");
    CheckShapeAllWays(s, name);
    CheckForwardExact(s, name);
  }
  Conv2dShape t = Make(2, 8, 9, 9, 42, 3);  // 81 = 2 * 32 + 17
  t.pad_h = t.pad_w = 1;
  CheckShapeAllWays(t, "9x9, 8->42");
  CheckForwardExact(t, "9x9, 8->42");
}

// Forward, backward data and backward weight on each instruction set this machine runs.
void CheckEveryIsa(int64_t stride) {
  Conv2dShape s = Make(2, 5, 9, 38, 18, 3);
  s.pad_h = 1, s.pad_w = 2, s.stride_w = stride;
  size_t nx = size_t(2 * 5 * 9 * 38), nw = size_t(18 * 5 * 9);
  size_t ny = size_t(2 * 18 * s.out_h() * s.out_w());
  std::vector<float> x = Random(nx, 1), w = Random(nw, 2), dy = Random(ny, 3);
  std::vector<double> y_ref(ny), y_mag(ny), dx_ref(nx), dx_mag(nx), dw_ref(nw), dw_mag(nw);
  ForEachTerm(s, [&](int64_t yi, int64_t xi, int64_t wi) {
    y_ref[size_t(yi)] += double(x[size_t(xi)]) * w[size_t(wi)];
    y_mag[size_t(yi)] += std::fabs(double(x[size_t(xi)]) * w[size_t(wi)]);
    dx_ref[size_t(xi)] += double(dy[size_t(yi)]) * w[size_t(wi)];
    dx_mag[size_t(xi)] += std::fabs(double(dy[size_t(yi)]) * w[size_t(wi)]);
    dw_ref[size_t(wi)] += double(dy[size_t(yi)]) * x[size_t(xi)];
    dw_mag[size_t(wi)] += std::fabs(double(dy[size_t(yi)]) * x[size_t(xi)]);
  });
  for (GemmIsa isa : {GemmIsa::kGeneric, GemmIsa::kAvx2, GemmIsa::kAvx512}) {
    if (!GemmIsaSupported(isa)) continue;
    SCOPED_TRACE(GemmIsaName(isa));
    std::vector<float> y(ny), dx(nx), dw(nw);
    ConvForward(s, x.data(), w.data(), y.data(), {}, nullptr, nullptr, isa);
    ExpectClose(y, y_ref, y_mag, "forward");
    ConvBackwardData(s, dy.data(), w.data(), dx.data(), false, nullptr, nullptr, isa);
    ExpectClose(dx, dx_ref, dx_mag, "backward data");
    ConvBackwardWeight(s, x.data(), dy.data(), dw.data(), false, nullptr, nullptr, isa);
    ExpectClose(dw, dw_ref, dw_mag, "backward weight");
  }
}

TEST(Conv, EveryIsaMatchesTheReference) {
  for (int64_t stride : {1, 2, 3}) {
    SCOPED_TRACE(stride);
    CheckEveryIsa(stride);
  }
}

TEST(Conv, BadShapesAreUserErrors) {
  Conv2dShape s = Make(1, 3, 5, 5, 4, 3);
  s.groups = 2;
  EXPECT_NE(s.Problem(), "");
  std::vector<float> buf(1000);
  EXPECT_THROW(ConvForward(s, buf.data(), buf.data(), buf.data(), {}, nullptr, nullptr), UserError);
  Conv2dShape big = Make(1, 3, 2, 2, 4, 3);
  EXPECT_THROW(ConvBackwardData(big, buf.data(), buf.data(), buf.data(), false, nullptr, nullptr),
               UserError);
}

}  // namespace
}  // namespace kiln
