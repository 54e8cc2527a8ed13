// kiln/ir/mxnet_json.h - graphs in MXNet 1.x's symbol JSON layout.
//
//   {"nodes": [{"op": "null", "name": "data", "inputs": []},
//              {"op": "FullyConnected", "name": "fc1", "attrs": {"num_hidden": "128"},
//               "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]}, ...],
//    "arg_nodes": [0, 1, 2], "node_row_ptr": [0, 1, 2, 3, 4],
//    "heads": [[3, 0, 0]], "attrs": {"mxnet_version": ["int", 10901]}}
//
// Saving writes that layout: variables as op "null" with their extra attributes; op nodes with
// their attributes as AttrCodec prints them (defaults dropped) followed by their extra keys;
// "arg_nodes" lists every variable (MXNet's arg_nodes include auxiliary states). Facts the
// graph holds are saved as nnvm saves graph attributes, one per entry: "shape": ["list_shape",
// [[dims], ...]] (-1 for an unknown dim, null for an unknown rank) and "dtype": ["list_int",
// [MXNet type flag or -1 for unknown, ...]]. SaveMXNetJson(LoadMXNetJson(s)) is stable.
//
// Loading accepts what MXNet versions wrote: attributes under "attrs", "attr" or "param";
// inputs and heads as [node, index] or [node, index, version]; op names by alias. Keys that
// begin and end with "__" are Node::extra (every key of a variable is); the others are parsed
// by the op's AttrCodec. Like MXNet's own loader it upgrades older files: bare hidden keys
// ("ctx_group", "lr_mult", "wd_mult", "force_mirroring", "mirror_stage") become "__key__", and
// "<input>_lr_mult" on an op node moves to that input variable as "__lr_mult__"; a file without
// "mxnet_version" is MXNet 0.8, which left auxiliary states out of the inputs, so missing
// trailing inputs become new variables "<node>_<input name>" (BatchNorm's moving_mean).
// "arg_nodes" and "node_row_ptr" are derived data and are not read.
// Errors are UserErrors naming the source and the problem: malformed JSON as
// "SOURCE:LINE:COL: message"; everything else as "SOURCE: node I \"NAME\" (Op): message"
// (missing fields, wrong JSON types, unknown ops, bad attributes, references to nodes that do
// not precede the reader or to outputs they lack, wrong numbers of inputs), or
// "SOURCE: heads[K]: ..." for outputs.

#pragma once

#include <string>
#include <string_view>

#include "kiln/ir/graph.h"

namespace kiln {

std::string SaveMXNetJson(const Graph& g);
Graph LoadMXNetJson(std::string_view text, std::string_view source_name = "<input>");

}  // namespace kiln
