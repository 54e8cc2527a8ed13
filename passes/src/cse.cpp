// cse.cpp - common-subexpression elimination (see kiln/passes/cse.h).
#include "kiln/passes/cse.h"

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "kiln/passes/dce.h"

namespace kiln {

namespace {

// Everything that determines a node's outputs: op, printed attributes, extra attributes, inputs.
using Key = std::tuple<std::string, AttrList, AttrMap, std::vector<std::pair<uint32_t, uint32_t>>>;

}  // namespace

Graph EliminateCommonSubexpressions(Graph g, const PassContext& ctx) {
  // replace[entry id] is the entry now computing that value; nodes are visited in topological
  // order, so the inputs of a node are already redirected when its key is formed, and chains of
  // duplicates (f(a) twice, then g(f(a)) twice) collapse in one sweep.
  std::vector<Entry> replace(g.num_entries());
  for (uint32_t id = 0; id < g.num_entries(); ++id) replace[id] = g.entry(id);
  std::map<Key, uint32_t> seen;
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    Node& n = g.mutable_node(i);
    for (Entry& in : n.inputs) in = replace[g.entry_id(in)];
    if (n.is_variable() || n.op->IsRandom(n.attrs) || !n.op->AuxInputs(n.attrs).empty()) continue;
    Key key{n.op->name(), n.op->attrs.print(n.attrs), n.extra, {}};
    for (const Entry& in : n.inputs) std::get<3>(key).emplace_back(in.node, in.index);
    auto [it, inserted] = seen.emplace(std::move(key), i);
    if (inserted) continue;
    for (int k = 0; k < n.num_outputs(); ++k)
      replace[g.entry_id(i, uint32_t(k))] = Entry{it->second, uint32_t(k)};
  }
  for (Entry& e : g.mutable_outputs()) e = replace[g.entry_id(e)];
  return RemoveDeadNodes(g, {}, ctx);
}

}  // namespace kiln
