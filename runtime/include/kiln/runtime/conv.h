// kiln/runtime/conv.h - float32 2-D convolution in NCHW on kiln's GEMM (kiln/runtime/gemm.h).
//
// Shapes: X [N, C, H, W], W [O, C / groups, KH, KW], Y [N, O, OH, OW] with
//   OH = (H + pad_h + pad_h_end - dilation_h * (KH - 1) - 1) / stride_h + 1   (OW likewise)
//   Y[n, o, oh, ow] = sum_{c, kh, kw} W[o, c, kh, kw] *
//                     X[n, g * C/groups + c, oh * stride_h - pad_h + kh * dilation_h, ...]
// where g = o / (O / groups) and X is zero outside the image. A 1-D convolution is H = KH = 1.
//
// Strategy: per image and group, Y_g [O/g, OH*OW] = W_g [O/g, C/g*KH*KW] * col [.., OH*OW].
// The im2col matrix is never materialised in the forward pass: chunks of output pixels (whose
// packed panels fit in the L2 cache, about 512 KiB) are packed straight from X into the GEMM's
// panel layout (with AVX-512 by masked vector loads, zeros for padding) and multiplied, one
// chunk per task (with few output pixels and several threads: all panels first, then the
// output channels shared out); a 1x1, stride-1, unpadded convolution uses X itself as the
// right operand.
// Depthwise convolutions (one input and one output channel per group) run a direct loop
// instead. Backward data is W_g^T dY_g followed by col2im; backward weight is dY_g col^T summed
// over the images (in image order, so results do not depend on the thread count).
//
// Epilogue (forward): rows are output channels of one image: fn(ctx, n, o0, o1) is called once
// for every block of channels [o0, o1) of image n after they are final (blocks of at most
// kGemmMC channels, never straddling a group). For im2col convolutions it runs after all the
// image's chunks (the image's output, not one tile, is what is recent in cache), the blocks
// spread over the threads; for 1x1 ones, and for im2col ones whose few output pixels make too
// few chunks for the threads (their row blocks are then shared out instead), as
// GemmArgs::epilogue describes; for depthwise ones per block of channels a thread finished.
//
// Scratch: each function takes a workspace of the size its *WorkspaceBytes function reports
// (64-byte aligned), or null to allocate one per call.
//
//   kiln::Conv2dShape s;
//   s.batch = 1, s.in_channels = 64, s.in_h = s.in_w = 56;
//   s.out_channels = 64, s.kernel_h = s.kernel_w = 3, s.pad_h = s.pad_w = 1;
//   std::vector<char> ws(kiln::ConvForwardWorkspaceBytes(s, 1) + 64);  // align it to 64
//   kiln::ConvForward(s, x, w, y, {}, aligned_ws, nullptr);
#pragma once

#include <cstdint>
#include <string>

#include "kiln/runtime/gemm.h"
#include "kiln/runtime/thread_pool.h"

namespace kiln {

struct Conv2dShape {
  int64_t batch = 1, in_channels = 0, in_h = 1, in_w = 1;
  int64_t out_channels = 0, kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;            // before the first row / column
  int64_t pad_h_end = -1, pad_w_end = -1;  // after the last; -1: the same as pad_h / pad_w
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;

  int64_t out_h() const;
  int64_t out_w() const;
  // Empty when the shape is valid; otherwise what is wrong (channels not divisible by groups,
  // a non-positive stride or dilation, a kernel larger than the padded input, ...).
  std::string Problem() const;
};

int64_t ConvForwardWorkspaceBytes(const Conv2dShape& s, int num_threads);
// Y = conv(X, W); then the epilogue. Throws UserError when s.Problem() is not empty.
// `packed_w` (may be null): W packed beforehand by ConvPackWeights, for weights that do not
// change between calls (inference); the call then skips packing them (the im2col path only).
void ConvForward(const Conv2dShape& s, const float* x, const float* w, float* y,
                 GemmEpilogue epilogue, void* workspace, ThreadPool* pool,
                 GemmIsa isa = GemmIsa::kAuto, const float* packed_w = nullptr);
// Floats of W packed for ConvForward (0 when the shape's path packs no weights), and the
// packing itself (`out` 64-byte aligned).
int64_t ConvPackedWeightsFloats(const Conv2dShape& s);
void ConvPackWeights(const Conv2dShape& s, const float* w, float* out);

int64_t ConvBackwardDataWorkspaceBytes(const Conv2dShape& s, int num_threads);
// dX = the gradient of conv with respect to X (dX += with `accumulate`).
void ConvBackwardData(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                      bool accumulate, void* workspace, ThreadPool* pool,
                      GemmIsa isa = GemmIsa::kAuto);

int64_t ConvBackwardWeightWorkspaceBytes(const Conv2dShape& s, int num_threads);
// dW = the gradient with respect to W, summed over the batch (dW += with `accumulate`).
void ConvBackwardWeight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                        bool accumulate, void* workspace, ThreadPool* pool,
                        GemmIsa isa = GemmIsa::kAuto);

}  // namespace kiln
