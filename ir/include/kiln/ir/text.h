// kiln/ir/text.h - kiln's text IR: a printer and a parser that round-trip.
//
// The format (nodes in topological order, one statement per line by convention, `//` comments):
//
//   graph {
//     %data = var : float32[100, 784]
//     %fc1_weight = var {__init__="xavier"}
//     %fc1_bias = var
//     %fc1 = FullyConnected(%data, %fc1_weight, %fc1_bias) {num_hidden=128} : float32[100, 128]
//     %bn = BatchNorm(%fc1, %g, %b, %m, %v) : (float32[100, 128], float32[128], float32[128])
//     %y = elemwise_add(%bn, %bn#0)
//     return %y, %bn#1
//   }
//
// - `%name` is output 0 of the node named `name`; `%name#k` is its output k. Names that are not
//   identifiers ([A-Za-z_][A-Za-z0-9_.\-/]*, not containing "//", which starts a comment) are
//   quoted: %"my node". Node names are unique, and a value is defined before it is used.
//   A Graph may repeat op node names (MXNet allows it): the printer then writes the later ones
//   with the first free suffix "_1", "_2", ..., so that its output always parses.
// - `name = var` is a variable; `name = Op(inputs)` applies the op of that name or alias (printed
//   by its canonical name); the number of inputs must be the op's for its attributes.
// - Attributes are `{key=value, ...}` (omitted when there are none): keys and values are bare
//   when they are made of [A-Za-z0-9_.+-] only, otherwise double-quoted with \" \\ \n \r \t
//   escapes. Keys that begin and end with "__" and have something between (MXNet's
//   "__shape__", "__ctx_group__", ...) are Node::extra; on a variable every key is extra; on an
//   op node the other keys are the op's attributes, parsed and printed by its AttrCodec (so
//   defaults are dropped and values take their canonical spelling). The printer writes the op's
//   attributes first, in declaration order, then the extra keys in sorted order. (Node::extra
//   of an op node holds only "__x__" keys; another key there would print but not parse back.)
// - The optional `: type` gives the facts of the node's outputs: `float32[100, 784]`, `?` for an
//   unknown dim (`float32[?, 784]`), `[*]` for unknown rank, `[]` for a scalar, `?` for an
//   unknown dtype (`?[100, 784]`), a tuple `(t0, t1)` with one type per output for several
//   outputs. Printed only where g.shapes or g.dtypes hold something known about some output of
//   the node. Parsing fills g.shapes only if some annotation has a known rank, and g.dtypes
//   only if some annotation has a known dtype; other entries stay unknown.
// - `return` lists the graph outputs (possibly none) and ends the graph.
//
// print(parse(print(g))) == print(g) for every graph. Parse errors are UserErrors
// "SOURCE:LINE:COL: message" (columns count characters), for syntax and for meaning alike:
// unknown op, bad attribute (`Op "node": ` and the AttrCodec's message, at the attribute's key
// when the message names one, else at the op), undefined value, output index out of range,
// wrong number of inputs (listing the input names), annotation arity, duplicate name.

#pragma once

#include <string>
#include <string_view>

#include "kiln/ir/graph.h"

namespace kiln {

std::string PrintGraph(const Graph& g);
Graph ParseGraph(std::string_view text, std::string_view source_name = "<input>");

}  // namespace kiln
