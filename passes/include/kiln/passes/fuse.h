// kiln/passes/fuse.h - operator fusion: groups of ops become composite nodes, one kernel each.
//
// The rules are TVM's (DESIGN.md decision 5), driven by each op's FusionPattern in the
// registry; no operator is named here.
// - The post-dominator tree of the op nodes is built (graph outputs are a virtual sink): node
//   d post-dominates node n if every path from n to the sink passes through d. A node is fused
//   with its immediate post-dominator together with everything on the paths between them, so a
//   diamond of elementwise ops (x -> a, x -> b, a + b) becomes one group, and a group never has
//   a path that leaves it and comes back (it can run as one kernel).
// - Phase 0: an out-elementwise-fusable op (FullyConnected, Convolution, dot) takes the
//   elementwise and broadcast ops up to its post-dominator as its epilogue (bias, activation,
//   residual add), when its output is read elementwise (same shape) along every path.
// - Every phase: an elementwise or broadcast op fuses forward into injective ops, into further
//   elementwise ops and into a reduction at the post-dominator (a reduction with a prologue).
//   Reductions end a group: nothing after a reduction joins it.
// - Phase 1: injective ops (reshape, transpose, slice, concat) fuse with injective successors.
// - An out-elementwise-fusable op with several outputs (BatchNorm with batch statistics, the
//   data-gradient ops of convolution, FullyConnected and pooling) takes its epilogue on output
//   0, unless a path through another output would come back into the group.
// - Opaque ops (softmax, losses, Dropout, the BatchNorm gradient) stay alone. So do elementwise
//   producers of heavy ops: kiln's matrix-product and convolution kernels take epilogues, not
//   prologues.
// - A group holds at most PassContext::max_fused_ops ops; groups never span devices (where the
//   graph is placed) or the forward and backward phases of a training graph
//   (PassContext::forward_outputs), and the forward phase's nodes come first in the result.
//
// Every group of two or more ops becomes a `fused` composite node (kiln/ir/composite.h) named
// after the group's last node, with the group's inputs as its inputs and, as outputs, every
// entry of the group that is read outside it or is a graph output. Single ops stay as they are.
// The graph needs inferred shapes and dtypes (UserError otherwise); the result keeps them.
#pragma once

#include <cstdint>
#include <string>

#include "kiln/ir/graph.h"
#include "kiln/passes/pass_manager.h"

namespace kiln {

Graph Fuse(Graph g, const PassContext& ctx);

// What a backend runs: one kernel per op node (a composite counts once).
struct KernelCount {
  int kernels = 0;           // op nodes
  int fused = 0;             // of which composite nodes
  int ops = 0;               // ops inside them all (a composite counts its body's op nodes)
  int lone_elementwise = 0;  // kernels that are a single elementwise or broadcast op
};
KernelCount CountKernels(const Graph& g);

// How many leading nodes of `g` an executor runs in Forward: one past the last node that
// outputs [0, forward_outputs) need (0 when forward_outputs is 0). After fuse, these are exactly
// the forward phase's nodes.
uint32_t ForwardPrefix(const Graph& g, size_t forward_outputs);

}  // namespace kiln
