// kiln/passes/simplify.h - algebraic simplification of inference graphs.
//
// Rewrites, each keeping every value bit-exact (up to the sign of a zero for x + 0):
// - x * 1, x / 1, x + 0, x - 0 by the scalar ops become x;
// - Reshape(Reshape(x)) becomes one Reshape of x when the outer shape is fully explicit
//   (positive dims only, no reverse), since the result then does not depend on the inner one;
// - transpose(transpose(x)) becomes one transpose with the composed permutation, or x when
//   that is the identity;
// - Dropout (unless mode=always) becomes its input when its mask is unused.
// The last rewrite assumes an inference graph: this pass is for inference pipelines only, as
// Dropout in training is not the identity. Nodes left unused are then removed (dce), and facts
// are inferred again where the input graph had them.
#pragma once

#include "kiln/ir/graph.h"
#include "kiln/passes/pass_manager.h"

namespace kiln {

Graph Simplify(Graph g, const PassContext& ctx);

}  // namespace kiln
