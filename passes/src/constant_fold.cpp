// constant_fold.cpp - evaluates the constant part of a graph once (see constant_fold.h).
#include "kiln/passes/constant_fold.h"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/ir/interpreter.h"
#include "kiln/passes/dce.h"

namespace kiln {

namespace {

// A name not used by any node of `g` nor by any constant, starting from `base`: the new
// variable's value is bound by name, so a clash would bind the wrong tensor.
std::string UniqueName(const std::string& base, const std::set<std::string>& taken) {
  if (!taken.count(base)) return base;
  for (int n = 1;; ++n) {
    std::string name = base + "_" + std::to_string(n);
    if (!taken.count(name)) return name;
  }
}

}  // namespace

Graph ConstantFold(Graph g, const PassContext& ctx) {
  if (ctx.is_train) return g;  // BatchNorm would fold with its inference statistics
  // constant[i]: every output of node i is known at compile time. Inputs come before their
  // consumers, so one forward sweep sees every input's status first.
  std::vector<bool> constant(g.num_nodes(), false);
  bool any_op = false;
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    const Node& n = g.node(i);
    if (n.is_variable()) {
      auto it = ctx.constants.find(n.name);
      constant[i] = it != ctx.constants.end() && it->second.defined();
      continue;
    }
    // A node without inputs (none exist today) may be a generator: left alone.
    if (n.inputs.empty() || n.op->IsRandom(n.attrs)) continue;
    bool all = true;
    for (const Entry& in : n.inputs) all = all && constant[in.node];
    constant[i] = all;
    any_op = any_op || all;
  }
  if (!any_op) return g;

  // Evaluate the constant nodes one at a time, so the non-constant nodes in between (whose
  // inputs have no values) are never run. Inference mode: see the header about BatchNorm.
  std::vector<Tensor> values(g.num_entries());
  for (uint32_t i = 0; i < g.num_nodes(); ++i)
    if (constant[i]) InterpretNodes(g, ctx.constants, values, i, i + 1);

  // The folded entries still needed: read by a non-constant node or a graph output.
  std::vector<bool> read_by_live(g.num_entries(), false);
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    const Node& n = g.node(i);
    if (n.is_variable() || constant[i]) continue;
    for (const Entry& in : n.inputs) read_by_live[g.entry_id(in)] = true;
  }
  for (const Entry& e : g.outputs()) read_by_live[g.entry_id(e)] = true;

  std::set<std::string> taken;
  for (const Node& n : g.nodes()) taken.insert(n.name);
  for (const auto& [name, value] : ctx.constants) taken.insert(name);

  // Rebuild in order, adding each new variable right after the node it replaces so the
  // topological order holds; the folded nodes stay for now and dce drops them below.
  Graph out;
  std::vector<Entry> remap(g.num_entries());
  std::vector<Shape> shapes;
  std::vector<DType> dtypes;
  InferOptions infer = ctx.infer;
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    Node n = g.node(i);
    for (Entry& in : n.inputs) in = remap[g.entry_id(in)];
    int outs = n.num_outputs();
    uint32_t id = out.AddNode(std::move(n));
    for (int k = 0; k < outs; ++k) {
      uint32_t from = g.entry_id(i, uint32_t(k));
      remap[from] = Entry{id, uint32_t(k)};
      shapes.push_back(g.has_shapes() ? g.shapes[from] : Shape());
      dtypes.push_back(g.has_dtypes() ? g.dtypes[from] : DType::kUnknown);
    }
    const Node& node = g.node(i);
    if (node.is_variable() || !constant[i]) continue;
    for (int k = 0; k < outs; ++k) {
      uint32_t from = g.entry_id(i, uint32_t(k));
      if (!read_by_live[from]) continue;
      std::string base = node.name + "_folded" + (outs > 1 ? std::to_string(k) : "");
      std::string name = UniqueName(base, taken);
      taken.insert(name);
      const Tensor& t = values[from];
      ctx.constants[name] = t;
      infer.shapes[name] = Shape(t.shape());
      infer.dtypes[name] = t.dtype();
      remap[from] = Entry{out.AddVariable(name), 0};
      shapes.push_back(Shape(t.shape()));
      dtypes.push_back(t.dtype());
    }
  }
  for (const Entry& e : g.outputs()) out.AddOutput(remap[g.entry_id(e)]);
  if (g.has_shapes()) out.shapes = std::move(shapes);
  if (g.has_dtypes()) out.dtypes = std::move(dtypes);

  // The new variables' facts are given to inference too, so it can re-derive their consumers.
  PassContext dce_ctx;
  dce_ctx.infer = std::move(infer);
  return RemoveDeadNodes(out, {}, dce_ctx);
}

}  // namespace kiln
