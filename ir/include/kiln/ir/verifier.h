// kiln/ir/verifier.h - structural and typing checks of a graph.
//
// The verifier checks what every pass may assume:
// - topological order: every input of node i is an output of an earlier node (so acyclic);
// - arities: an op node has exactly the op's number of inputs for its attributes; a variable
//   has none; every graph output exists;
// - variables have non-empty, unique names;
// - facts: `shapes` and `dtypes` are empty or one per entry; where the facts of a node's
//   inputs and outputs are known, the op's shape and type rules accept them (re-running a
//   rule on them finds no contradiction).
#pragma once

#include <string>
#include <vector>

#include "kiln/ir/graph.h"

namespace kiln {

// Every problem found, one message each (naming the node and op); empty if the graph is valid.
std::vector<std::string> VerifyGraph(const Graph& g);

// Throws InternalError listing every problem, prefixed by `context` (e.g. "after pass fuse").
void VerifyGraphOrThrow(const Graph& g, const std::string& context);

}  // namespace kiln
