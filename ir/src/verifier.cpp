// verifier.cpp - graph invariants.
#include "kiln/ir/verifier.h"

#include <set>

#include "kiln/ir/composite.h"

namespace kiln {

namespace {
std::string Where(const Node& n, uint32_t i) {
  return StrCat("node ", i, " ", n.op_name(), " \"", n.name, "\"");
}

// Re-runs one rule on copies of the node's facts; a contradiction comes back as a message.
template <class Fact, class Rule>
void CheckRule(const Graph& g, uint32_t i, const std::vector<Fact>& facts, const Rule& rule,
               std::vector<std::string>* problems) {
  const Node& n = g.node(i);
  std::vector<Fact> in, out;
  for (const Entry& e : n.inputs) in.push_back(facts[g.entry_id(e)]);
  for (int k = 0; k < n.num_outputs(); ++k) out.push_back(facts[g.entry_id(i, uint32_t(k))]);
  InferCtx<Fact> ctx(*n.op, n.name, n.attrs, in, out);
  try {
    rule(ctx);
  } catch (const UserError& e) {
    problems->push_back(StrCat(Where(n, i), ": ", e.what()));
  }
}
}  // namespace

std::vector<std::string> VerifyGraph(const Graph& g) {
  std::vector<std::string> problems;
  std::set<std::string> var_names;
  bool structure_ok = true;
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    const Node& n = g.node(i);
    for (const Entry& e : n.inputs) {
      if (e.node >= i) {
        problems.push_back(StrCat(Where(n, i), " reads node ", e.node,
                                  ", which does not precede it (cycle or bad order)"));
        structure_ok = false;
      } else if (int(e.index) >= g.node(e.node).num_outputs()) {
        problems.push_back(StrCat(Where(n, i), " reads output ", e.index, " of \"",
                                  g.node(e.node).name, "\", which has ",
                                  g.node(e.node).num_outputs(), " outputs"));
        structure_ok = false;
      }
    }
    if (n.is_variable()) {
      if (!n.inputs.empty()) problems.push_back(StrCat(Where(n, i), ": a variable has inputs"));
      if (n.name.empty()) problems.push_back(StrCat(Where(n, i), ": a variable has no name"));
      if (!var_names.insert(n.name).second)
        problems.push_back(StrCat(Where(n, i), ": variable name used twice"));
      continue;
    }
    if (IsComposite(n)) {
      // A body is a graph of its own: verified with the same rules, its problems prefixed by
      // the composite that holds it.
      if (!n.attrs.Get<CompositeAttrs>().body) {
        problems.push_back(StrCat(Where(n, i), ": a fused node without a body"));
        structure_ok = false;
        continue;
      }
      for (const std::string& p : VerifyGraph(CompositeBody(n)))
        problems.push_back(StrCat(Where(n, i), " body: ", p));
    }
    int want = n.op->NumInputs(n.attrs);
    if (int(n.inputs.size()) != want) {
      problems.push_back(
          StrCat(Where(n, i), " has ", n.inputs.size(), " inputs but the op takes ", want));
      structure_ok = false;
    }
  }
  for (const Entry& e : g.outputs())
    if (e.node >= g.num_nodes() || int(e.index) >= g.node(e.node).num_outputs())
      problems.push_back(StrCat("graph output (", e.node, ", ", e.index, ") does not exist"));
  if (g.has_shapes() && g.shapes.size() != g.num_entries())
    problems.push_back(
        StrCat("shapes has ", g.shapes.size(), " facts for ", g.num_entries(), " entries"));
  if (g.has_dtypes() && g.dtypes.size() != g.num_entries())
    problems.push_back(
        StrCat("dtypes has ", g.dtypes.size(), " facts for ", g.num_entries(), " entries"));
  if (!structure_ok || !problems.empty()) return problems;

  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    const Node& n = g.node(i);
    if (n.is_variable()) continue;
    if (g.has_shapes()) CheckRule(g, i, g.shapes, n.op->infer_shape(), &problems);
    if (g.has_dtypes()) CheckRule(g, i, g.dtypes, n.op->infer_type(), &problems);
  }
  return problems;
}

void VerifyGraphOrThrow(const Graph& g, const std::string& context) {
  std::vector<std::string> problems = VerifyGraph(g);
  if (problems.empty()) return;
  std::string msg = StrCat("invalid graph ", context, ":");
  for (const auto& p : problems) msg += "\n  " + p;
  throw InternalError(msg);
}

}  // namespace kiln
