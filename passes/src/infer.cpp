// infer.cpp - fixpoint shape and type inference.
#include "kiln/passes/infer.h"

#include "kiln/ir/attrs.h"

namespace kiln {

namespace {

std::string Describe(const Shape& s) {
  return s.ToString();
}
std::string Describe(DType t) {
  return std::string(DTypeName(t));
}
bool Known(const Shape& s) {
  return s.IsFullyKnown();
}
bool Known(DType t) {
  return t != DType::kUnknown;
}
bool Merge(Shape& a, const Shape& b) {
  return a.Merge(b);
}
bool Merge(DType& a, DType b) {
  if (b == DType::kUnknown || a == b) return true;
  if (a != DType::kUnknown) return false;
  a = b;
  return true;
}

// Seeds a variable's fact; a conflict between two sources of the same fact is a user error.
template <class Fact>
void Seed(const Node& n, Fact& fact, const Fact& given, const char* source) {
  Fact merged = fact;
  if (!Merge(merged, given))
    throw UserError(StrCat("variable \"", n.name, "\": ", source, " gives ", Describe(given),
                           " but it is already known as ", Describe(fact)));
  fact = merged;
}

// Runs every node's rule until nothing changes; returns whether all facts are known.
template <class Fact, class RuleOf>
bool Fixpoint(const Graph& g, std::vector<Fact>& facts, RuleOf rule_of, const char* what,
              bool require_complete) {
  std::vector<Fact> in, out;
  auto visit = [&](uint32_t i) -> bool {
    const Node& n = g.node(i);
    if (n.is_variable()) return false;
    in.clear();
    out.clear();
    for (const Entry& e : n.inputs) in.push_back(facts[g.entry_id(e)]);
    for (int k = 0; k < n.num_outputs(); ++k) out.push_back(facts[g.entry_id(i, uint32_t(k))]);
    InferCtx<Fact> ctx(*n.op, n.name, n.attrs, in, out);
    rule_of(n)(ctx);
    bool changed = false;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      Fact& f = facts[g.entry_id(n.inputs[k])];
      // An entry read twice by one node gets both refinements; Merge keeps them consistent.
      if (!(f == in[k])) {
        if (!Merge(f, in[k])) ctx.Fail(StrCat(ctx.InName(int(k)), " has conflicting ", what));
        changed = true;
      }
    }
    for (size_t k = 0; k < out.size(); ++k) {
      Fact& f = facts[g.entry_id(i, uint32_t(k))];
      if (!(f == out[k])) {
        f = out[k];
        changed = true;
      }
    }
    return changed;
  };
  for (int round = 0; round < 1000; ++round) {
    bool changed = false;
    for (uint32_t i = 0; i < g.num_nodes(); ++i) changed |= visit(i);
    for (uint32_t i = g.num_nodes(); i-- > 0;) changed |= visit(i);
    if (!changed) break;
  }
  bool complete = true;
  std::string unknown_vars, unknown_entries;
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    const Node& n = g.node(i);
    for (int k = 0; k < n.num_outputs(); ++k) {
      const Fact& f = facts[g.entry_id(i, uint32_t(k))];
      if (Known(f)) continue;
      complete = false;
      std::string item = StrCat(n.name, " ", Describe(f));
      std::string& list = n.is_variable() ? unknown_vars : unknown_entries;
      list += (list.empty() ? "" : ", ") + item;
    }
  }
  if (!complete && require_complete) {
    if (!unknown_vars.empty())
      throw UserError(StrCat("cannot infer the ", what, " of variables: ", unknown_vars,
                             " (give them, e.g. with --shape NAME=D1xD2)"));
    throw UserError(StrCat("cannot infer the ", what, " of: ", unknown_entries));
  }
  return complete;
}

}  // namespace

bool InferShapes(Graph& g, const InferOptions& options) {
  if (!g.has_shapes()) g.shapes.assign(g.num_entries(), Shape());
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    const Node& n = g.node(i);
    if (!n.is_variable()) continue;
    Shape& s = g.shapes[g.entry_id(i, 0)];
    if (auto it = n.extra.find("__shape__"); it != n.extra.end()) {
      std::vector<int64_t> dims;
      if (!attr_text::Parse(it->second, &dims) && it->second != "()")
        throw UserError(StrCat("variable \"", n.name, "\": __shape__ \"", it->second,
                               "\" is not a tuple of integers"));
      // MXNet writes unknown dims as 0 (legacy) or -1.
      for (auto& d : dims)
        if (d <= 0) d = Shape::kUnknownDim;
      Seed(n, s, Shape(dims), "__shape__");
    }
    if (auto it = options.shapes.find(n.name); it != options.shapes.end())
      Seed(n, s, it->second, "the given shape");
  }
  for (const auto& [name, shape] : options.shapes) {
    auto id = g.FindNode(name);
    if (!id || !g.node(*id).is_variable())
      throw UserError(StrCat("a shape is given for \"", name, "\", which is not a variable"));
  }
  return Fixpoint(
      g, g.shapes, [](const Node& n) -> const FInferShape& { return n.op->infer_shape(); },
      "shapes", options.require_complete);
}

bool InferTypes(Graph& g, const InferOptions& options) {
  if (!g.has_dtypes()) g.dtypes.assign(g.num_entries(), DType::kUnknown);
  bool any_known = false;
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    const Node& n = g.node(i);
    if (!n.is_variable()) continue;
    DType& t = g.dtypes[g.entry_id(i, 0)];
    if (auto it = n.extra.find("__dtype__"); it != n.extra.end()) {
      int flag = -1;
      std::optional<DType> d = ParseDType(it->second);
      if (!d && attr_text::Parse(it->second, &flag)) d = DTypeFromMXNetTypeFlag(flag);
      if (!d)
        throw UserError(
            StrCat("variable \"", n.name, "\": __dtype__ \"", it->second, "\" is not a dtype"));
      Seed(n, t, *d, "__dtype__");
    }
    if (auto it = options.dtypes.find(n.name); it != options.dtypes.end())
      Seed(n, t, it->second, "the given dtype");
    any_known |= t != DType::kUnknown;
  }
  for (const auto& [name, dtype] : options.dtypes) {
    auto id = g.FindNode(name);
    if (!id || !g.node(*id).is_variable())
      throw UserError(StrCat("a dtype is given for \"", name, "\", which is not a variable"));
  }
  auto rule_of = [](const Node& n) -> const FInferType& { return n.op->infer_type(); };
  if (!any_known) {
    // MXNet's default: with no dtype given anywhere, the data is float32.
    for (uint32_t i : g.ArgumentNodes()) {
      g.dtypes[g.entry_id(i, 0)] = DType::kFloat32;
      break;
    }
  }
  Fixpoint(g, g.dtypes, rule_of, "dtypes", false);
  // Variables no rule constrains (labels of integer ops are constrained; weights follow data)
  // default to float32 too.
  for (uint32_t i : g.VariableNodes())
    if (g.dtypes[g.entry_id(i, 0)] == DType::kUnknown) g.dtypes[g.entry_id(i, 0)] = DType::kFloat32;
  return Fixpoint(g, g.dtypes, rule_of, "dtypes", options.require_complete);
}

}  // namespace kiln
