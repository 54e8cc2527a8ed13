// kiln/passes/simplify.h - algebraic simplification.
//
// Rewrites, each keeping every value bit-exact (up to the sign of a zero for x + 0):
// - an op the registry says is the identity for its attributes (OpDef::IsIdentity: x * 1, x / 1,
//   x + 0, x - 0 by the scalar ops) becomes its input;
// - Reshape(Reshape(x)) becomes one Reshape of x when the outer shape is fully explicit
//   (positive dims only, no reverse), since the result then does not depend on the inner one;
// - transpose(transpose(x)) becomes one transpose with the composed permutation, or x when
//   that is the identity;
// Every rewrite holds in training and inference alike (Dropout, which is the identity only in
// inference, is simplify-inference's). Nodes left unused are then removed (dce), and facts are
// inferred again where the input graph had them. The Reshape and transpose rules still name their
// ops (decision D19): the registry has no property for "composes with itself" yet.
#pragma once

#include "kiln/ir/graph.h"
#include "kiln/passes/pass_manager.h"

namespace kiln {

Graph Simplify(Graph g, const PassContext& ctx);

}  // namespace kiln
