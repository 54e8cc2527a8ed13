// kiln/runtime/library_ops.h - matrix products, convolutions and training BatchNorm as plan calls.
//
// The heavy ops of a compiled plan run on kiln's own GEMM and convolution library
// (kiln/runtime/gemm.h, conv.h; decision D34) rather than as JIT kernels. Each such op is
// described by plain numbers (LibraryOpDesc: a kind, integer sizes and flags, real attributes),
// so that the compiler builds it from a graph node (codegen/src/library_calls.cpp) and an
// artifact stores it and rebuilds it here with no compiler in reach (decision D39).
//
//   LibraryOpDesc d{LibraryOpKind::kFullyConnected, {m, n, k, has_bias}, {}};
//   std::unique_ptr<LibraryOp> op = MakeLibraryOp(d);   // RuntimeError for an invalid desc
//
// A plan calls one through LibraryCall with kiln's kernel calling convention and the arguments
//   {LibraryRunState*, LibraryCallNode*, inputs..., outputs..., workspace}.
//
// The ints of each kind (every size >= 0, flags 0 or 1):
//   kFullyConnected          m, n, k, bias                       in (x, w[, b]), out (y)
//   kFullyConnectedBackward  m, n, k, bias, data_grad            in (dy, x, w), out (dx, dw[, db])
//   kMatMul                  batch, m, n, k, trans_a, trans_b    in (a, b), out (c)
//   kConvolution, kConvolutionBackward, kDeconvolution, kDeconvolutionBackward:
//       the 16 fields of Conv2dShape (ConvShapeInts order), bias, data_grad
//   kBatchNormTrain          outer, channels, inner, fix_gamma   reals: eps, momentum
//   kBatchNormBackward       outer, channels, inner, fix_gamma, batch_stats   reals: eps, momentum
//   kRnn                     cell, direction, layout, seq, batch, input, hidden, has_clip,
//                            linear_before_reset, input_forget   reals: clip (RnnShape, rnn.h)
//                            in (x, W, R, B, initial_h[, initial_c, P]), out (Y, Y_h[, Y_c])
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/runtime/conv.h"
#include "kiln/runtime/plan.h"
#include "kiln/runtime/thread_pool.h"

namespace kiln {

enum class LibraryOpKind : uint32_t {
  kFullyConnected = 1,
  kFullyConnectedBackward = 2,
  kMatMul = 3,
  kConvolution = 4,
  kConvolutionBackward = 5,
  kDeconvolution = 6,
  kDeconvolutionBackward = 7,
  kBatchNormTrain = 8,
  kBatchNormBackward = 9,
  kRnn = 10,
};

// "FullyConnected", ... ; "unknown" for a value outside the enum.
const char* LibraryOpKindName(LibraryOpKind kind);

struct LibraryOpDesc {
  LibraryOpKind kind = LibraryOpKind::kFullyConnected;
  std::vector<int64_t> ints;
  std::vector<double> reals;
};

class LibraryOp {
 public:
  virtual ~LibraryOp() = default;
  // Scratch bytes Run needs (64-byte aligned), for `threads` threads.
  virtual int64_t WorkspaceBytes(int threads) const = 0;
  // in: the op's inputs, out: its outputs (as the op's reference kernel sees them).
  // `prepacked`: what Prepack returned for the same weights, or null.
  virtual void Run(const void* const* in, void* const* out, void* workspace, ThreadPool* pool,
                   const void* prepacked) const = 0;
  // Whether RunWithRowKernel runs a kernel on the output's row blocks (FullyConnected; the
  // forward Convolution, whose rows are (image, output channel) pairs).
  virtual bool SupportsRowKernel() const { return false; }
  // Run, and then `row_kernel(row_args, r0, r1)` for each block of rows [r0, r1) of output 0
  // as soon as the block is final (its bias added): on the thread that computed it for
  // products, in parallel over channel blocks once an image's convolution is done (conv.h);
  // null `row_kernel`: Run. InternalError where SupportsRowKernel is false.
  virtual void RunWithRowKernel(const void* const* in, void* const* out, void* workspace,
                                ThreadPool* pool, const void* prepacked, KernelFn row_kernel,
                                void* const* row_args) const;
  // The weights (input 1) packed once, for runs whose weights do not change; null when the op
  // packs nothing.
  virtual std::shared_ptr<void> Prepack(const void* const* in, ThreadPool* pool) const {
    (void)in, (void)pool;
    return nullptr;
  }
  // The bytes of each input Run reads and each output it writes.
  virtual void ArgBytes(std::vector<int64_t>& in, std::vector<int64_t>& out) const = 0;
  size_t num_inputs() const;
  size_t num_outputs() const;
};

// Builds the op `d` describes. RuntimeError naming the kind and the problem when the numbers
// are inconsistent (wrong count, negative size, invalid convolution shape): descriptions come
// from files too.
std::unique_ptr<LibraryOp> MakeLibraryOp(const LibraryOpDesc& d);

// The 16 Conv2dShape fields as a LibraryOpDesc stores them, and back.
std::vector<int64_t> ConvShapeInts(const Conv2dShape& s);
Conv2dShape ConvShapeFromInts(const int64_t* ints);

// --- Running library ops in a plan ---

// One library call of a plan: the op and the thread count its workspace was sized for.
struct LibraryCallNode {
  std::unique_ptr<LibraryOp> op;
  int threads = 1;
  // A compiled kernel whose parallel loop runs over the output's rows, run on each row block
  // from inside the product (CompileOptions::epilogue_in_gemm; an artifact call's `kernel`):
  // its arguments follow the workspace in the call's. Null: none.
  KernelFn row_kernel = nullptr;
};

// What every library call of one run reads (the plan's external the calls name first).
struct LibraryRunState {
  ThreadPool* pool = nullptr;
  // Weights packed once per call and kept: `shared` (filled before any run, read-only, e.g. a
  // loaded artifact's constant weights) is looked up first; with `frozen`, calls missing from
  // it pack into `prepacked` on their first run (CompiledRun::FreezeVariables).
  const std::map<const LibraryCallNode*, std::shared_ptr<void>>* shared = nullptr;
  bool frozen = false;
  std::map<const LibraryCallNode*, std::shared_ptr<void>> prepacked;
};

// The plan function of every library call: args = {LibraryRunState*, LibraryCallNode*,
// inputs..., outputs..., workspace[, the row kernel's arguments...]}.
void LibraryCall(void* const* args, int64_t task_begin, int64_t task_end);

}  // namespace kiln
