// kiln/ir/text.h - kiln's text IR: a printer and a parser that round-trip.
//
// The format (one statement per line, `//` comments; nodes in topological order):
//
//   graph {
//     %data = var : float32[100, 784]
//     %fc1_weight = var {__init__="xavier"} : float32[128, 784]
//     %fc1_bias = var
//     %fc1 = FullyConnected(%data, %fc1_weight, %fc1_bias) {num_hidden=128} : float32[100, 128]
//     %bn = BatchNorm(%fc1, %g, %b, %mm, %mv) {eps=0.001} : (float32[100, 128], float32[128], float32[128])
//     %y = elemwise_add(%bn, %bn#0)
//     return %y, %bn#1
//   }
//
// - `%name` is output 0 of the node named `name`; `%name#k` is its output k. Names that are not
//   identifiers ([A-Za-z_][A-Za-z0-9_.\-/]*) are quoted: %"my node". Node names are unique.
// - Attributes are `{key=value, ...}`: values are bare when they are made of [A-Za-z0-9_.+-]
//   only, otherwise double-quoted with \" and \\ escapes. Keys that begin and end with "__"
//   (MXNet's "__shape__", "__ctx_group__", ...) are Node::extra; on a variable every key is
//   extra; on an op node the other keys are the op's attributes, printed by its AttrCodec.
// - The optional `: type` gives the facts of the node's outputs: `float32[100, 784]`, `?` for an
//   unknown dim (`float32[?, 784]`), `[*]` for unknown rank, `?` for an unknown dtype
//   (`?[100, 784]`), a tuple `(t0, t1)` for several outputs. Printed only where g.shapes or
//   g.dtypes hold something known; parsed into g.shapes / g.dtypes.
//
// Parse errors are UserErrors "SOURCE:LINE:COL: message", for syntax and for meaning alike
// (unknown op, bad attribute, undefined value, wrong number of inputs, duplicate name).
#pragma once

#include <string>
#include <string_view>

#include "kiln/ir/graph.h"

namespace kiln {

std::string PrintGraph(const Graph& g);
Graph ParseGraph(std::string_view text, std::string_view source_name = "<input>");

}  // namespace kiln
