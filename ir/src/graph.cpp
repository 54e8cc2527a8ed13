// graph.cpp - building and querying graphs.
#include "kiln/ir/graph.h"

#include <algorithm>

namespace kiln {

uint32_t Graph::AddNode(Node node) {
  uint32_t id = num_nodes();
  for (const Entry& in : node.inputs) {
    KILN_INTERNAL_CHECK(in.node < id, "node ", node.name, " reads node ", in.node,
                        " which does not precede it");
    KILN_INTERNAL_CHECK(int(in.index) < nodes_[in.node].num_outputs(), "node ", node.name,
                        " reads output ", in.index, " of ", nodes_[in.node].name);
  }
  int outs = node.num_outputs();
  entry_offset_.push_back(num_entries_);
  num_entries_ += uint32_t(outs);
  nodes_.push_back(std::move(node));
  if (has_shapes()) shapes.resize(num_entries_);
  if (has_dtypes()) dtypes.resize(num_entries_, DType::kUnknown);
  if (has_devices()) devices.resize(nodes_.size());
  return id;
}

uint32_t Graph::AddVariable(std::string name, AttrMap extra) {
  Node n;
  n.name = std::move(name);
  n.extra = std::move(extra);
  return AddNode(std::move(n));
}

void Graph::AddOutput(Entry e) {
  KILN_INTERNAL_CHECK(e.node < num_nodes() && int(e.index) < nodes_[e.node].num_outputs(),
                      "graph output (", e.node, ", ", e.index, ") does not exist");
  outputs_.push_back(e);
}

Entry Graph::entry(uint32_t id) const {
  KILN_INTERNAL_CHECK(id < num_entries_, "entry ", id, " out of range");
  auto it = std::upper_bound(entry_offset_.begin(), entry_offset_.end(), id);
  uint32_t node = uint32_t(it - entry_offset_.begin()) - 1;
  return Entry{node, id - entry_offset_[node]};
}

std::vector<uint32_t> Graph::VariableNodes() const {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < num_nodes(); ++i)
    if (nodes_[i].is_variable()) out.push_back(i);
  return out;
}

namespace {
std::vector<bool> AuxMask(const Graph& g) {
  std::vector<bool> aux(g.num_nodes(), false);
  for (const Node& n : g.nodes()) {
    if (n.is_variable()) continue;
    for (int i : n.op->AuxInputs(n.attrs)) {
      const Entry& in = n.inputs.at(size_t(i));
      if (g.node(in.node).is_variable()) aux[in.node] = true;
    }
  }
  return aux;
}
}  // namespace

std::vector<uint32_t> Graph::ArgumentNodes() const {
  std::vector<bool> aux = AuxMask(*this);
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < num_nodes(); ++i)
    if (nodes_[i].is_variable() && !aux[i]) out.push_back(i);
  return out;
}

std::vector<uint32_t> Graph::AuxiliaryNodes() const {
  std::vector<bool> aux = AuxMask(*this);
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < num_nodes(); ++i)
    if (aux[i]) out.push_back(i);
  return out;
}

std::optional<uint32_t> Graph::FindNode(std::string_view name) const {
  for (uint32_t i = 0; i < num_nodes(); ++i)
    if (nodes_[i].name == name) return i;
  return std::nullopt;
}

std::vector<uint32_t> Graph::EntryUseCounts() const {
  std::vector<uint32_t> uses(num_entries_, 0);
  for (const Node& n : nodes_)
    for (const Entry& in : n.inputs) ++uses[entry_id(in)];
  for (const Entry& e : outputs_) ++uses[entry_id(e)];
  return uses;
}

}  // namespace kiln
