// gradient.cpp - reverse-mode differentiation (see gradient.h).
#include "kiln/passes/gradient.h"

#include <algorithm>
#include <map>

#include "kiln/ir/grad.h"

namespace kiln {

namespace {

// A copy of `g`'s nodes and outputs without facts.
Graph CopyStructure(const Graph& g) {
  Graph out;
  for (const Node& n : g.nodes()) out.AddNode(n);
  for (const Entry& e : g.outputs()) out.AddOutput(e);
  return out;
}

// Sums the contributions to one entry; a single one is used as it is.
Entry Sum(Graph& g, const std::vector<Entry>& parts, const std::string& name) {
  if (parts.size() == 1) return parts[0];
  const OpDef& add_n = OpRegistry::Global().Get("add_n");
  Node n;
  n.op = &add_n;
  n.name = name;
  n.attrs = add_n.attrs.parse({{"num_args", std::to_string(parts.size())}});
  n.inputs = parts;
  return Entry{g.AddNode(std::move(n)), 0};
}

// Keeps forward nodes, variables and whatever the outputs read; renumbers the rest.
GradientGraph Prune(GradientGraph in) {
  const Graph& g = in.graph;
  std::vector<bool> keep(g.num_nodes(), false);
  for (uint32_t i = 0; i < in.num_forward_nodes; ++i) keep[i] = true;
  for (uint32_t v : in.head_grads) keep[v] = true;
  for (const Entry& e : g.outputs()) keep[e.node] = true;
  for (uint32_t i = g.num_nodes(); i-- > 0;)
    if (keep[i])
      for (const Entry& e : g.node(i).inputs) keep[e.node] = true;
  std::vector<uint32_t> remap(g.num_nodes(), UINT32_MAX);
  GradientGraph out;
  out.num_forward_nodes = in.num_forward_nodes;
  auto map = [&](Entry e) { return Entry{remap[e.node], e.index}; };
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    if (!keep[i]) continue;
    Node n = g.node(i);
    for (Entry& e : n.inputs) e = map(e);
    remap[i] = out.graph.AddNode(std::move(n));
  }
  for (const Entry& e : g.outputs()) out.graph.AddOutput(map(e));
  for (uint32_t v : in.head_grads) out.head_grads.push_back(remap[v]);
  for (const Entry& e : in.ys) out.ys.push_back(map(e));
  for (const Entry& e : in.grads) out.grads.push_back(map(e));
  return out;
}

}  // namespace

GradientGraph BuildGradient(const Graph& forward, const std::vector<uint32_t>& xs,
                            std::vector<Entry> ys) {
  if (ys.empty()) ys = forward.outputs();
  GradientGraph result;
  result.graph = CopyStructure(forward);
  result.num_forward_nodes = forward.num_nodes();
  result.ys = ys;
  Graph& g = result.graph;
  const uint32_t n_fwd = forward.num_nodes();

  // Which nodes depend on some x, and which some y depends on.
  std::vector<bool> from_x(n_fwd, false), to_y(n_fwd, false);
  for (uint32_t x : xs) {
    if (x >= n_fwd || !forward.node(x).is_variable())
      throw UserError(StrCat("gradient requested for node ", x, ", which is not a variable"));
    from_x[x] = true;
  }
  for (uint32_t i = 0; i < n_fwd; ++i)
    for (const Entry& e : forward.node(i).inputs) from_x[i] = from_x[i] || from_x[e.node];
  for (const Entry& y : ys) to_y[y.node] = true;
  for (uint32_t i = n_fwd; i-- > 0;)
    if (to_y[i])
      for (const Entry& e : forward.node(i).inputs) to_y[e.node] = true;

  // Contributions to the gradient of each forward entry, by entry id.
  std::vector<std::vector<Entry>> contrib(forward.num_entries());
  for (const Entry& y : ys) {
    std::string name = StrCat(forward.node(y.node).name, "_head_grad",
                              y.index ? StrCat("_", y.index) : std::string());
    uint32_t v = g.AddVariable(name);
    result.head_grads.push_back(v);
    contrib[forward.entry_id(y)].push_back(Entry{v, 0});
  }

  std::vector<std::string> no_gradient;
  for (uint32_t i = n_fwd; i-- > 0;) {
    const Node& n = forward.node(i);
    if (n.is_variable() || !from_x[i] || !to_y[i]) continue;
    bool any_flow = false;
    for (int k = 0; k < n.num_outputs(); ++k)
      any_flow |= !contrib[forward.entry_id(i, uint32_t(k))].empty();
    if (!any_flow) continue;
    if (!n.op->gradient()) {
      no_gradient.push_back(StrCat(n.op->name(), " \"", n.name, "\""));
      continue;
    }
    std::vector<std::optional<Entry>> summed(size_t(n.num_outputs()));
    for (int k = 0; k < n.num_outputs(); ++k) {
      auto& parts = contrib[forward.entry_id(i, uint32_t(k))];
      if (!parts.empty())
        summed[size_t(k)] = Sum(g, parts, StrCat(n.name, "_grad_sum", k ? std::to_string(k) : ""));
    }
    std::vector<bool> wanted;
    for (const Entry& e : n.inputs) wanted.push_back(from_x[e.node]);
    GradCtx ctx(
        g, i, [&summed](int k) { return summed.at(size_t(k)); }, wanted);
    GradList grads = n.op->gradient()(ctx);
    KILN_INTERNAL_CHECK(grads.size() == n.inputs.size(), "gradient of ", n.op->name(), " returned ",
                        grads.size(), " entries for ", n.inputs.size(), " inputs");
    for (size_t k = 0; k < grads.size(); ++k)
      if (wanted[k] && grads[k]) contrib[forward.entry_id(n.inputs[k])].push_back(*grads[k]);
  }
  if (!no_gradient.empty()) {
    std::string list;
    for (const auto& s : no_gradient) list += (list.empty() ? "" : ", ") + s;
    throw UserError(StrCat("cannot differentiate through ", list, ": the op has no gradient"));
  }

  const OpDef& zeros_like = OpRegistry::Global().Get("zeros_like");
  for (uint32_t x : xs) {
    auto& parts = contrib[forward.entry_id(x, 0)];
    Entry grad;
    if (parts.empty()) {
      Node z;
      z.op = &zeros_like;
      z.name = StrCat(forward.node(x).name, "_zero_grad");
      z.attrs = zeros_like.attrs.parse({});
      z.inputs = {Entry{x, 0}};
      grad = Entry{g.AddNode(std::move(z)), 0};
    } else {
      grad = Sum(g, parts, StrCat(forward.node(x).name, "_grad"));
    }
    result.grads.push_back(grad);
    g.AddOutput(grad);
  }
  return Prune(std::move(result));
}

}  // namespace kiln
