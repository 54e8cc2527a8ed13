// kiln/ir/grad.h - what an op's gradient rule sees, and how it emits the backward nodes.
//
// The gradient pass (passes/gradient.h) walks the forward graph from the outputs back and, for
// each node on a path from a wanted argument to a differentiated output, calls the op's
// FGradient with a GradCtx. The rule returns, per input, the entry holding the gradient of the
// loss with respect to that input (or nullopt: no gradient, as for labels and indices), and
// builds whatever nodes it needs with Emit:
//
//   // y = exp(x): dx = dy * y
//   .Gradient([](GradCtx& g) -> GradList {
//     return {g.Emit1("elemwise_mul", {g.ograd(0), g.output(0)})};
//   })
//
//   // FullyConnected: one backward op computes all three gradients, reading the forward
//   // inputs and sharing the forward attributes.
//   .Gradient([](GradCtx& g) -> GradList {
//     auto d = g.EmitWithAttrs("_backward_FullyConnected", {g.ograd(0), g.input(0), g.input(1)});
//     return {d[0], d[1], d.size() > 2 ? std::optional<Entry>(d[2]) : std::nullopt};
//   })
//
// Rules may read forward inputs and outputs (they stay alive for the backward pass), must not
// assume shapes (shapes are inferred on the whole training graph afterwards), and may skip
// work for inputs whose gradient nobody wants (`wants(i)`).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/ir/graph.h"

namespace kiln {

using GradList = std::vector<std::optional<Entry>>;

class GradCtx {
 public:
  // `ograd(k)` supplies the summed gradient of output k, or nullopt when none flows into it.
  GradCtx(Graph& g, uint32_t node, std::function<std::optional<Entry>(int)> ograd,
          std::vector<bool> wanted, std::string name_suffix = "_backward");

  // The graph being built, for rules that need facts (inference forms read shapes; gradient
  // rules must not, since shapes are inferred on the whole training graph afterwards).
  const Graph& graph() const { return g_; }

  const Node& node() const { return g_.node(node_); }
  std::string_view name() const { return g_.node(node_).name; }
  template <class A>
  const A& attrs() const {
    return g_.node(node_).attrs.Get<A>();
  }
  int num_inputs() const { return int(g_.node(node_).inputs.size()); }
  int num_outputs() const { return g_.node(node_).num_outputs(); }
  // Forward input i and output i of the node.
  Entry input(int i) const { return g_.node(node_).inputs.at(size_t(i)); }
  Entry output(int i) const { return Entry{node_, uint32_t(i)}; }
  // The gradient of output i; zeros shaped like the output when nothing flows into it.
  Entry ograd(int i);
  // Whether any gradient flows into output i.
  bool has_ograd(int i) const { return ograd_(i).has_value(); }
  // Whether the gradient of input i is wanted.
  bool wants(int i) const { return wanted_.at(size_t(i)); }

  // Appends a node applying `op` (a registered name) to `inputs` with string attributes;
  // returns all its outputs. Nodes are named "<node>_backward", "<node>_backward1", ... (the
  // suffix given to the constructor).
  std::vector<Entry> Emit(std::string_view op, const std::vector<Entry>& inputs,
                          const AttrMap& attrs = {});
  Entry Emit1(std::string_view op, const std::vector<Entry>& inputs, const AttrMap& attrs = {}) {
    return Emit(op, inputs, attrs)[0];
  }
  // As Emit, giving the new node this node's own attributes: for backward ops declared with the
  // forward op's attribute struct.
  std::vector<Entry> EmitWithAttrs(std::string_view op, const std::vector<Entry>& inputs);

  // Throws UserError prefixed with `<Op> "<node>": `.
  [[noreturn]] void Fail(const std::string& message) const;

 private:
  Entry Append(const OpDef& op, Attrs attrs, const std::vector<Entry>& inputs);
  Graph& g_;
  uint32_t node_;
  std::function<std::optional<Entry>(int)> ograd_;
  std::vector<bool> wanted_;
  std::string suffix_;
  int emitted_ = 0;
};

}  // namespace kiln
