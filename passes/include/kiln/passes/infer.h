// kiln/passes/infer.h - shape and type inference over a whole graph.
//
// Both analyses run every node's rule (OpDef::infer_shape / infer_type) forward in topological
// order and then backward, repeatedly, until no fact changes. Rules work in both directions,
// so a weight's shape is found from the data it meets (FullyConnected) and a variable's dtype
// from its consumers. A contradiction is a UserError from the rule, naming the node, the op and
// the facts involved. What cannot be inferred stays unknown unless completeness is required.
//
// Starting facts: those already in g.shapes / g.dtypes (from the text IR), the `__shape__` and
// `__dtype__` attributes of variables (MXNet JSON), and the maps given here by variable name.
// When no dtype is known anywhere, variables default to float32 (MXNet's rule).
#pragma once

#include <map>
#include <string>

#include "kiln/ir/graph.h"

namespace kiln {

struct InferOptions {
  std::map<std::string, Shape> shapes;  // by variable name
  std::map<std::string, DType> dtypes;  // by variable name
  // Throw a UserError naming every variable (and, if none, every entry) left unknown.
  bool require_complete = true;
};

// Fills g.shapes. Returns true when every entry's shape is fully known.
bool InferShapes(Graph& g, const InferOptions& options = {});
// Fills g.dtypes. Returns true when every entry's dtype is known.
bool InferTypes(Graph& g, const InferOptions& options = {});

}  // namespace kiln
