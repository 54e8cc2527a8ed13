// kiln/ir/mxnet_json.h - graphs in MXNet 1.x's symbol JSON layout.
//
//   {"nodes": [{"op": "null", "name": "data", "inputs": []},
//              {"op": "FullyConnected", "name": "fc1", "attrs": {"num_hidden": "128"},
//               "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]}, ...],
//    "arg_nodes": [0, 1, 2], "node_row_ptr": [0, 1, 2, 3, 4],
//    "heads": [[3, 0, 0]], "attrs": {"mxnet_version": ["int", 10901]}}
//
// Loading accepts what MXNet versions wrote: attributes under "attrs", "attr" or "param";
// inputs and heads as [node, index] or [node, index, version]; op names by alias. Keys that
// begin and end with "__" are Node::extra; the others are parsed by the op's AttrCodec.
// Errors (malformed JSON with line and column, unknown ops, bad attributes, bad references)
// are UserErrors naming the source, the node and the problem.
#pragma once

#include <string>
#include <string_view>

#include "kiln/ir/graph.h"

namespace kiln {

std::string SaveMXNetJson(const Graph& g);
Graph LoadMXNetJson(std::string_view text, std::string_view source_name = "<input>");

}  // namespace kiln
