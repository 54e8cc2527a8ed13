// simplify.cpp - algebraic rewrites (see kiln/passes/simplify.h).
#include "kiln/passes/simplify.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/passes/dce.h"

namespace kiln {

namespace {

// The op attributes are private structs of their op files, so rewrites read them through the
// op's printed attributes (canonical text): a value absent from the list is the default.
std::optional<std::string> PrintedAttr(const Node& n, std::string_view key) {
  for (const auto& [k, v] : n.op->attrs.print(n.attrs))
    if (k == key) return v;
  return std::nullopt;
}

// Reshape's attributes when only an explicit positive shape is given (so the output's shape is
// that shape whatever the input's): then the input may be any tensor of as many elements.
bool IsExplicitReshape(const Node& n) {
  if (n.op_name() != "Reshape") return false;
  AttrList attrs = n.op->attrs.print(n.attrs);
  if (attrs.size() != 1 || attrs[0].first != "shape") return false;
  std::vector<int64_t> shape;
  if (!attr_text::Parse(attrs[0].second, &shape) || shape.empty()) return false;
  for (int64_t d : shape)
    if (d <= 0) return false;
  return true;
}

// A transpose's permutation, with its rank taken from the axes, or from `rank` (the input's,
// -1 if unknown) when the axes are empty (reverse). Empty when it cannot be known.
std::vector<int64_t> Permutation(const Node& n, int64_t rank) {
  std::vector<int64_t> axes;
  std::optional<std::string> text = PrintedAttr(n, "axes");
  if (text && !attr_text::Parse(*text, &axes)) return {};
  if (axes.empty()) {
    for (int64_t i = rank - 1; i >= 0; --i) axes.push_back(i);
    return axes;
  }
  int64_t r = int64_t(axes.size());
  for (int64_t& a : axes) {
    if (a < 0) a += r;
    if (a < 0 || a >= r) return {};
  }
  return axes;
}

}  // namespace

Graph Simplify(Graph g, const PassContext& ctx) {
  std::vector<uint32_t> uses = g.EntryUseCounts();
  // replace[entry id]: the entry now holding that value (see cse.cpp: one topological sweep).
  std::vector<Entry> replace(g.num_entries());
  for (uint32_t id = 0; id < g.num_entries(); ++id) replace[id] = g.entry(id);
  std::vector<bool> stale(g.num_nodes(), false);
  const std::string_view transpose_name = "transpose";

  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    Node& n = g.mutable_node(i);
    for (Entry& in : n.inputs) in = replace[g.entry_id(in)];
    if (n.is_variable()) continue;
    Entry self{i, 0};
    if (n.op->IsIdentity(n.attrs)) {
      replace[g.entry_id(self)] = n.inputs[0];
      continue;
    }
    const Node& producer = g.node(n.inputs.empty() ? i : n.inputs[0].node);
    if (IsExplicitReshape(n) && producer.op_name() == "Reshape") {
      // The outer shape is explicit, so skipping the inner Reshape changes nothing; the output
      // facts stay valid.
      n.inputs[0] = producer.inputs[0];
      continue;
    }
    if (n.op_name() == transpose_name && producer.op_name() == transpose_name) {
      Entry x = producer.inputs[0];
      int64_t rank = -1;
      if (g.has_shapes() && g.shape(x).rank_known()) rank = int64_t(g.shape(x).ndim());
      std::vector<int64_t> inner = Permutation(producer, rank);
      std::vector<int64_t> outer = Permutation(n, int64_t(inner.size()));
      if (inner.empty() || inner.size() != outer.size()) continue;
      // Output axis i of the outer is axis outer[i] of the inner's output, which is axis
      // inner[outer[i]] of x.
      std::vector<int64_t> composed;
      bool identity = true;
      for (size_t k = 0; k < outer.size(); ++k) {
        composed.push_back(inner[size_t(outer[k])]);
        identity = identity && composed.back() == int64_t(k);
      }
      if (identity) {
        replace[g.entry_id(self)] = x;
      } else {
        n.inputs[0] = x;
        n.attrs = n.op->attrs.parse({{"axes", attr_text::Print(composed)}});
        stale[i] = true;
      }
    }
  }
  for (Entry& e : g.mutable_outputs()) e = replace[g.entry_id(e)];
  return RemoveDeadNodes(g, stale, ctx);
}

}  // namespace kiln
