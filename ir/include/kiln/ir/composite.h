// kiln/ir/composite.h - composite nodes: a node whose computation is a graph of its own.
//
// The fusion pass turns each fused group into one `fused` node whose body is the group's
// subgraph. The body is an ordinary Graph: its variables, in order, are the composite's inputs
// (one per input, same shape and dtype), and its outputs are the composite's outputs. Every
// kernel a backend emits is one node of the outer graph, so a fused graph's op nodes are its
// kernels.
//
// In the text IR a composite prints its body in braces after the node's type:
//
//   %fc1_relu = fused(%data, %fc1_weight, %fc1_bias) {anchor=FullyConnected} : float32[1, 128] {
//     %data = var : float32[1, 784]
//     %fc1_weight = var : float32[128, 784]
//     %fc1_bias = var : float32[128]
//     %fc1 = FullyConnected(%data, %fc1_weight, %fc1_bias) {num_hidden=128} : float32[1, 128]
//     %relu1 = Activation(%fc1) {act_type=relu} : float32[1, 128]
//     return %relu1
//   }
//
// `anchor` names the group's heaviest op (the matrix product, convolution or reduction the
// others fuse into), for readers and kernel names; nothing depends on it. The reference
// interpreter runs a composite by interpreting its body; shape and type rules read the body's
// facts. Composites are made after autodiff, so they have no gradient.
#pragma once

#include <memory>
#include <string>

#include "kiln/ir/graph.h"

namespace kiln {

struct CompositeAttrs {
  std::string anchor;                 // the op the group is built around (printed)
  std::shared_ptr<const Graph> body;  // not an attribute string: the text IR prints it
  static void Describe(AttrSchema<CompositeAttrs>& s) {
    s.Field("anchor", &CompositeAttrs::anchor);
  }
};

// The registered op of composite nodes ("fused").
const OpDef& CompositeOp();
bool IsComposite(const Node& n);
// The body of a composite node (InternalError if it has none).
const Graph& CompositeBody(const Node& n);
// A composite node applying `body` to `inputs` (one per body variable, in order).
Node MakeComposite(std::string name, std::string anchor, std::shared_ptr<const Graph> body,
                   std::vector<Entry> inputs);
// A copy of `attrs` (CompositeAttrs) with `body` set: the parser reads the attribute strings
// first and the body after them.
Attrs WithCompositeBody(const Attrs& attrs, std::shared_ptr<const Graph> body);

}  // namespace kiln
