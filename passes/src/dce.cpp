// dce.cpp - dead-code elimination (see kiln/passes/dce.h).
#include "kiln/passes/dce.h"

#include <cstdint>

#include "kiln/passes/infer.h"

namespace kiln {

Graph RemoveDeadNodes(const Graph& g, const std::vector<bool>& stale, const PassContext& ctx) {
  // Liveness flows backward from the outputs; one reverse sweep suffices because every input
  // of a node comes from a node with a smaller index.
  std::vector<bool> live(g.num_nodes(), false);
  for (const Entry& e : g.outputs()) live[e.node] = true;
  for (uint32_t i = g.num_nodes(); i-- > 0;) {
    const Node& n = g.node(i);
    if (n.is_variable()) live[i] = true;
    if (!live[i]) continue;
    for (const Entry& in : n.inputs) live[in.node] = true;
  }

  Graph out;
  std::vector<uint32_t> new_id(g.num_nodes(), UINT32_MAX);
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    if (!live[i]) continue;
    Node n = g.node(i);
    for (Entry& in : n.inputs) in.node = new_id[in.node];
    new_id[i] = out.AddNode(std::move(n));
  }
  for (const Entry& e : g.outputs()) out.AddOutput(Entry{new_id[e.node], e.index});

  // Facts of a kept entry do not depend on which other nodes exist, so they carry over as they
  // are; only nodes whose attributes changed lose theirs, to be inferred again below.
  auto carried = [&](uint32_t i) { return live[i] && !(i < stale.size() && stale[i]); };
  if (g.has_shapes()) out.shapes.assign(out.num_entries(), Shape());
  if (g.has_dtypes()) out.dtypes.assign(out.num_entries(), DType::kUnknown);
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    if (!carried(i)) continue;
    for (int k = 0; k < g.node(i).num_outputs(); ++k) {
      uint32_t from = g.entry_id(i, uint32_t(k));
      uint32_t to = out.entry_id(new_id[i], uint32_t(k));
      if (g.has_shapes()) out.shapes[to] = g.shapes[from];
      if (g.has_dtypes()) out.dtypes[to] = g.dtypes[from];
    }
  }
  // Inference refills what was reset; completeness is not required because the input graph
  // itself may have been only partly known, and a pass must not make that an error.
  InferOptions opt = ctx.infer;
  opt.require_complete = false;
  if (g.has_shapes()) InferShapes(out, opt);
  if (g.has_dtypes()) InferTypes(out, opt);
  return out;
}

Graph EliminateDeadCode(Graph g, const PassContext& ctx) {
  return RemoveDeadNodes(g, {}, ctx);
}

}  // namespace kiln
