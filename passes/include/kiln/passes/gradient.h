// kiln/passes/gradient.h - reverse-mode differentiation of a graph.
//
// BuildGradient appends to a copy of the forward graph the nodes that compute the gradients of
// the chosen outputs (ys) with respect to the chosen variables (xs), NNVM-style:
// - each differentiated output y gets a head-gradient variable "<y's node>_head_grad" (with
//   "_<k>" for output k > 0); the gradient computed is that of sum(y * head_grad). Loss heads
//   (SoftmaxOutput, LinearRegressionOutput, MakeLoss) ignore their head gradient, as in MXNet;
// - nodes are visited in reverse topological order; each node that lies on a path from some x
//   to some y asks its op's FGradient (kiln/ir/grad.h) for its inputs' gradients;
// - gradients of an entry used several times are summed (add_n);
// - nothing is computed that the requested gradients do not need: only nodes on an x-to-y path
//   are differentiated, rules are told which inputs are wanted, and backward nodes that no
//   requested gradient reads are removed;
// - an x that no y depends on gets zeros_like(x).
// Differentiating through an op without a gradient is a UserError naming every such node.
//
// The result keeps the forward nodes first with their indices unchanged, so a runtime can run
// the forward part alone, then the rest. Facts (shapes, dtypes) are not carried: infer them on
// the result.
#pragma once

#include <vector>

#include "kiln/ir/graph.h"

namespace kiln {

struct GradientGraph {
  Graph graph;                       // forward nodes, head-gradient variables, backward nodes
  uint32_t num_forward_nodes = 0;    // nodes [0, num_forward_nodes) are the forward graph's
  std::vector<uint32_t> head_grads;  // one variable node per y, in the order of ys
  std::vector<Entry> ys;             // the differentiated outputs
  std::vector<Entry> grads;          // one gradient entry per x, in the order of xs
};

// `xs` are variable nodes of `forward`; `ys` default to all of forward's outputs. The result's
// outputs are forward's outputs followed by the gradients, in the order of xs.
GradientGraph BuildGradient(const Graph& forward, const std::vector<uint32_t>& xs,
                            std::vector<Entry> ys = {});

}  // namespace kiln
