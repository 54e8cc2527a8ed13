// kiln/passes/constant_fold.h - constant folding of inference graphs.
//
// The compile-time constants are the variables with a value in PassContext::constants. An op
// node is foldable when it has inputs, all of them constant (variables with a value, or outputs
// of foldable nodes), and it is not random (Dropout, LeakyReLU with act_type=rrelu). Foldable
// nodes are evaluated once with the reference interpreter in inference mode, and each of their
// outputs still read by a non-foldable node or a graph output becomes a new variable
// "<node>_folded" ("<node>_folded<k>" for output k of a node with several outputs; a suffix
// "_<n>" is added if that name is taken) whose value is added to ctx.constants. The folded nodes
// are then removed (dce) and facts are inferred again where the input graph had them.
//
// The pass is for inference graphs only: BatchNorm is folded with its moving statistics (as in
// inference), which is wrong for a training graph where it uses and updates batch statistics.
#pragma once

#include "kiln/ir/graph.h"
#include "kiln/passes/pass_manager.h"

namespace kiln {

// The `constant-fold` pass. Adds the values of the variables it creates to ctx.constants (which
// is mutable for this reason); a graph without constants is returned unchanged.
Graph ConstantFold(Graph g, const PassContext& ctx);

}  // namespace kiln
