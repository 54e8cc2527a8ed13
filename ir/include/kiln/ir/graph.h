// kiln/ir/graph.h - the dataflow graph: nodes, entries, and per-entry facts.
//
// Semantics.
// - A Graph is a DAG of Nodes kept in topological order: every input of node i is an output of
//   a node with a smaller index. Indices are dense (0 .. num_nodes()-1), so facts about nodes
//   and entries live in flat vectors indexed by them, never in maps keyed by strings.
// - A Node is either a variable (op == nullptr: a graph input, a parameter or an auxiliary
//   state, with exactly one output) or an application of a registered op to its inputs, with
//   the op's typed attributes.
// - An Entry names one output of one node: (node, index). Entries are numbered densely too:
//   entry_id(e) = first entry of e.node + e.index; all outputs of a node are contiguous.
// - A variable is an *auxiliary state* if some op takes it in an input position the op lists
//   as auxiliary (BatchNorm's moving_mean); every other variable is an *argument*.
// - `outputs` are the entries the graph computes, in order; an entry may appear twice.
// - Facts: `shapes` and `dtypes` are per-entry vectors, either empty (not inferred) or of size
//   num_entries(); an individual fact may still be unknown (unknown rank, DType::kUnknown).
// - `extra` holds attributes that belong to no op (MXNet's "__shape__", "__dtype__",
//   "ctx_group", "lr_mult", "__init__", ...): they are kept, printed and saved, but no op rule
//   reads them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/ir/attrs.h"
#include "kiln/ir/entry.h"
#include "kiln/ir/op.h"
#include "kiln/ir/shape.h"
#include "kiln/runtime/dtype.h"
#include "kiln/runtime/tensor.h"

namespace kiln {

struct Node {
  const OpDef* op = nullptr;  // nullptr: a variable
  std::string name;
  Attrs attrs;  // the op's typed attributes; empty for variables
  std::vector<Entry> inputs;
  AttrMap extra;

  bool is_variable() const { return op == nullptr; }
  int num_outputs() const { return op ? op->NumOutputs(attrs) : 1; }
  // "FullyConnected" or "var".
  std::string_view op_name() const { return op ? std::string_view(op->name()) : "var"; }
};

class Graph {
 public:
  // Appends a node and returns its index. Its inputs must name existing entries (InternalError
  // otherwise: loaders check user input before building). Facts are resized, unknown.
  uint32_t AddNode(Node node);
  // A variable node named `name`.
  uint32_t AddVariable(std::string name, AttrMap extra = {});
  void AddOutput(Entry e);

  uint32_t num_nodes() const { return uint32_t(nodes_.size()); }
  uint32_t num_entries() const { return num_entries_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const Node& node(uint32_t i) const { return nodes_.at(i); }
  // Mutable access for in-place edits that keep the node's arity and its number of outputs.
  Node& mutable_node(uint32_t i) { return nodes_.at(i); }
  const std::vector<Entry>& outputs() const { return outputs_; }
  std::vector<Entry>& mutable_outputs() { return outputs_; }

  uint32_t entry_id(Entry e) const { return entry_offset_.at(e.node) + e.index; }
  uint32_t entry_id(uint32_t node, uint32_t index) const { return entry_id(Entry{node, index}); }
  // The entry with this id (inverse of entry_id).
  Entry entry(uint32_t id) const;

  // Per-entry facts: empty, or of size num_entries().
  std::vector<Shape> shapes;
  std::vector<DType> dtypes;
  bool has_shapes() const { return !shapes.empty(); }
  bool has_dtypes() const { return !dtypes.empty(); }
  const Shape& shape(Entry e) const { return shapes.at(entry_id(e)); }
  DType dtype(Entry e) const { return dtypes.at(entry_id(e)); }

  // Per-node fact: the device each node runs on (its outputs live there), set by the
  // place-devices pass. Empty (not placed), or of size num_nodes(); a node's facts live in a
  // flat vector indexed by node, like the entries' facts above. AddNode appends Device::CPU()
  // for a new node, which a pass that adds nodes to a placed graph must overwrite.
  std::vector<Device> devices;
  bool has_devices() const { return !devices.empty(); }

  // Variable nodes, in order; split into arguments and auxiliary states (see above).
  std::vector<uint32_t> VariableNodes() const;
  std::vector<uint32_t> ArgumentNodes() const;
  std::vector<uint32_t> AuxiliaryNodes() const;
  // The first node with this name, if any.
  std::optional<uint32_t> FindNode(std::string_view name) const;
  // How many times each entry is read (by nodes and by graph outputs).
  std::vector<uint32_t> EntryUseCounts() const;

 private:
  std::vector<Node> nodes_;
  std::vector<Entry> outputs_;
  std::vector<uint32_t> entry_offset_;
  uint32_t num_entries_ = 0;
};

}  // namespace kiln
