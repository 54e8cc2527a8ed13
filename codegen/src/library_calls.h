// library_calls.h - nodes whose heavy op runs in kiln's runtime library (internal to codegen).
//
// Matrix products and convolutions are not lowered to kernel IR: the runtime's packed GEMM and
// convolution (kiln/runtime/gemm.h, conv.h; decision D34) compute them, and the rest of a
// fused group (its epilogue: bias-free elementwise ops after the product) is lowered to one JIT
// kernel that reads the product's result. A LibraryOp is the product part: built at compile
// time from the anchor op's attributes and shapes, run by the plan through a context pointer.
//
// Covered: FullyConnected and _backward_FullyConnected (any flatten, with or without bias), dot
// (2-D) and batch_dot (equal batch dims) with either transposition,
// Convolution, Deconvolution (without target_shape) and their gradients with 1 or 2 spatial
// axes in NCHW (strides, pads,
// dilations, groups), and, in training graphs, BatchNorm and _backward_BatchNorm (any axis),
// all float32. Other dtypes, layouts and 3-D convolutions stay with the
// reference kernels. The anchor's attributes are read from their printed form (the strings MXNet
// JSON stores), so that codegen needs no op's private attribute struct.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/ir/graph.h"
#include "kiln/runtime/thread_pool.h"

namespace kiln::codegen {

class LibraryOp {
 public:
  virtual ~LibraryOp() = default;
  // Scratch bytes Run needs (64-byte aligned), for `threads` threads.
  virtual int64_t WorkspaceBytes(int threads) const = 0;
  // in: the op's inputs, out: its outputs (as the op's reference kernel sees them).
  // `prepacked`: what Prepack returned for the same weights, or null.
  virtual void Run(const void* const* in, void* const* out, void* workspace, ThreadPool* pool,
                   const void* prepacked) const = 0;
  // The weights packed once, for runs whose variables do not change (CompiledRun::
  // FreezeVariables); null when the op packs nothing.
  virtual std::shared_ptr<void> Prepack(const void* const* in, ThreadPool* pool) const {
    (void)in, (void)pool;
    return nullptr;
  }
};

// The library implementation of node `op` (an op node of `g`, shapes and dtypes inferred), or
// null when the library does not cover it. `is_train`: the graph is compiled for training
// (BatchNorm then normalises with batch statistics and updates its moving statistics).
std::unique_ptr<LibraryOp> MakeLibraryOp(const Graph& g, uint32_t op, bool is_train);

}  // namespace kiln::codegen
