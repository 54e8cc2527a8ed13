// kiln/passes/cse.h - common-subexpression elimination.
//
// Two op nodes with the same op, equal attributes (compared in their printed, canonical form,
// extra attributes such as ctx_group included) and the same inputs compute the same values, so
// the later one is replaced by the earlier one and dead-code elimination removes it. Random ops
// (two Dropouts draw different masks) and ops that update auxiliary states in place (BatchNorm's
// moving statistics, updated once per node when training) are never merged.
#pragma once

#include "kiln/ir/graph.h"
#include "kiln/passes/pass_manager.h"

namespace kiln {

Graph EliminateCommonSubexpressions(Graph g, const PassContext& ctx);

}  // namespace kiln
