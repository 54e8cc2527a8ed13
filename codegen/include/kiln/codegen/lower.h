// kiln/codegen/lower.h - lowering a graph node (one op or a fused composite) to one kernel.
//
// Every op of the node needs a compute definition (kiln/ir/compute.h). Lowering starts from
// each output's definition and substitutes the definitions of the producers inside the group
// for their reads (Halide's compute_inline: a producer read by two consumers is recomputed in
// both, which is cheap for the elementwise and broadcast ops covered so far), so that the
// kernel reads only the node's inputs and writes only its outputs: no intermediate buffer.
//
// The schedule: one loop nest over the outputs' shape (all outputs share it in one nest;
// outputs of different shapes get one serial nest each), the innermost loop vectorized at the
// target's width, the outermost loop parallel when the nest has at least
// `parallel_min_elements` elements. A rank-1 nest that is parallel is split into chunks of
// `parallel_chunk` elements (an outer parallel loop, an inner vectorized one). With
// `parallel_rows` = k > 1 (a nest of rank > k), the first k axes are one parallel loop over
// the product of their extents whose variable r gives the indices by division (for k = 2:
// i0 = r / d1, i1 = r % d1): a convolution's epilogue runs on blocks of (image, channel) rows.
//
//   Graph f = Fuse(g, ctx);                    // shapes and dtypes inferred
//   Kernel k = LowerNode(f, node_id);          // buffers: inputs in order, then outputs
//   KernelFn fn = jit.Compile({k})[0];
//
// A node with ops that have no definition (or whose definition does not cover the node's
// dtypes) is an UnsupportedError naming every such op and node at once.
//
// Random draws (ComputeCtx::RandomBits: Dropout, rrelu) read the run's seed: the kernel then
// has one scalar parameter, the int64 "seed", after its buffers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/codegen/kernel_ir.h"
#include "kiln/ir/graph.h"

namespace kiln::codegen {

struct LowerOptions {
  int64_t parallel_min_elements = int64_t(1) << 15;
  int64_t parallel_chunk = 4096;
  int parallel_rows = 1;    // leading axes merged into the parallel loop (see above)
  std::string kernel_name;  // empty: the node's name, made a C identifier
  bool is_train = false;    // the mode the definitions see (Dropout and rrelu draw when training)
};

// "op (node "name")" for every op node of `node` (its body for a composite) that cannot be
// lowered in this mode; empty when LowerNode will succeed.
std::vector<std::string> UnsupportedOps(const Graph& g, uint32_t node, bool is_train = false);

// The kernel computing `node` of `g` (shapes and dtypes inferred). Its buffers are the node's
// inputs, in order, then its outputs.
Kernel LowerNode(const Graph& g, uint32_t node, const LowerOptions& options = {});

}  // namespace kiln::codegen
