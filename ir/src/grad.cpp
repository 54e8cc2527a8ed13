// grad.cpp - GradCtx: emitting backward nodes.
#include "kiln/ir/grad.h"

namespace kiln {

GradCtx::GradCtx(Graph& g, uint32_t node, std::function<std::optional<Entry>(int)> ograd,
                 std::vector<bool> wanted, std::string name_suffix)
    : g_(g),
      node_(node),
      ograd_(std::move(ograd)),
      wanted_(std::move(wanted)),
      suffix_(std::move(name_suffix)) {}

Entry GradCtx::ograd(int i) {
  if (std::optional<Entry> e = ograd_(i)) return *e;
  return Emit1("zeros_like", {output(i)});
}

Entry GradCtx::Append(const OpDef& op, Attrs attrs, const std::vector<Entry>& inputs) {
  Node n;
  n.op = &op;
  n.attrs = std::move(attrs);
  n.inputs = inputs;
  n.name = StrCat(g_.node(node_).name, suffix_, emitted_ ? std::to_string(emitted_) : "");
  ++emitted_;
  KILN_INTERNAL_CHECK(int(inputs.size()) == op.NumInputs(n.attrs), "gradient of ",
                      g_.node(node_).op_name(), " emits ", op.name(), " with ", inputs.size(),
                      " inputs; it takes ", op.NumInputs(n.attrs));
  // Forward entries of multi-output nodes keep their facts; the pass re-infers afterwards.
  uint32_t id = g_.AddNode(std::move(n));
  return Entry{id, 0};
}

std::vector<Entry> GradCtx::Emit(std::string_view op_name, const std::vector<Entry>& inputs,
                                 const AttrMap& attrs) {
  const OpDef& op = OpRegistry::Global().Get(op_name);
  Attrs parsed;
  try {
    parsed = op.attrs.parse(attrs);
  } catch (const UserError& e) {
    throw InternalError(StrCat("gradient of ", g_.node(node_).op_name(), " emits ", op.name(),
                               " with bad attributes: ", e.what()));
  }
  Entry first = Append(op, std::move(parsed), inputs);
  std::vector<Entry> outs;
  for (int k = 0; k < g_.node(first.node).num_outputs(); ++k)
    outs.push_back(Entry{first.node, uint32_t(k)});
  return outs;
}

std::vector<Entry> GradCtx::EmitWithAttrs(std::string_view op_name,
                                          const std::vector<Entry>& inputs) {
  const OpDef& op = OpRegistry::Global().Get(op_name);
  Entry first = Append(op, g_.node(node_).attrs, inputs);
  std::vector<Entry> outs;
  for (int k = 0; k < g_.node(first.node).num_outputs(); ++k)
    outs.push_back(Entry{first.node, uint32_t(k)});
  return outs;
}

void GradCtx::Fail(const std::string& message) const {
  throw UserError(StrCat(g_.node(node_).op_name(), " \"", name(), "\": ", message));
}

}  // namespace kiln
