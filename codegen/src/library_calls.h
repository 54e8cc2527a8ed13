// library_calls.h - nodes whose heavy op runs in kiln's runtime library (internal to codegen).
//
// Matrix products and convolutions are not lowered to kernel IR: the runtime's packed GEMM and
// convolution (kiln/runtime/gemm.h, conv.h; decision D34) compute them, and the rest of a
// fused group (its epilogue: bias-free elementwise ops after the product) is lowered to one JIT
// kernel that reads the product's result. The product part is a runtime LibraryOp
// (kiln/runtime/library_ops.h), described here by numbers from the anchor op's attributes and
// shapes, so that artifacts can store the description and the runtime rebuild it.
//
// Covered: FullyConnected and _backward_FullyConnected (any flatten, with or without bias), dot
// (2-D) and batch_dot (equal batch dims) with either transposition,
// Convolution, Deconvolution (without target_shape) and their gradients with 1 or 2 spatial
// axes in NCHW (strides, pads,
// dilations, groups), and, in training graphs, BatchNorm and _backward_BatchNorm (any axis);
// LSTM, GRU and RNN_tanh with every attribute (kiln/runtime/rnn.h); all float32. Other dtypes,
// layouts and 3-D convolutions stay with the reference kernels. The anchor's attributes are read
// from their printed form (the strings MXNet JSON stores), so that codegen needs no op's private
// attribute struct.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/ir/graph.h"
#include "kiln/runtime/library_ops.h"

namespace kiln::codegen {

// The library op computing node `op` (an op node of `g`, shapes and dtypes inferred), or none
// when the library does not cover it. `is_train`: the graph is compiled for training (BatchNorm
// then normalises with batch statistics and updates its moving statistics).
std::optional<LibraryOpDesc> DescribeLibraryOp(const Graph& g, uint32_t op, bool is_train);

}  // namespace kiln::codegen
