// kiln/passes/dce.h - dead-code elimination, and the graph rebuild other rewriting passes share.
//
// An op node is dead when no graph output depends on any of its outputs. Variables are always
// kept, even when unused: they are the graph's interface (executors bind them by name), and
// dropping one would change what a caller must supply. Kept nodes are renumbered densely in
// their old order, so the topological order holds.
#pragma once

#include <vector>

#include "kiln/ir/graph.h"
#include "kiln/passes/pass_manager.h"

namespace kiln {

// The `dce` pass: removes dead op nodes; the facts of kept entries are carried over unchanged.
Graph EliminateDeadCode(Graph g, const PassContext& ctx);

// Rebuilds `g` without its dead op nodes. Rewriting passes (cse, simplify) first redirect inputs
// and outputs in place and then call this. Facts of kept entries are carried over, except for
// the nodes marked in `stale` (indexed by old node, may be empty) whose attributes the caller
// changed; when `g` had shapes or dtypes, inference then runs again so every fact is valid.
Graph RemoveDeadNodes(const Graph& g, const std::vector<bool>& stale, const PassContext& ctx);

}  // namespace kiln
