// interpreter.cpp - runs a graph with the ops' reference kernels.
#include "kiln/ir/interpreter.h"

namespace kiln {

void InterpretNodes(const Graph& g, const std::map<std::string, Tensor>& vars,
                    std::vector<Tensor>& values, uint32_t begin, uint32_t end,
                    const InterpretOptions& options) {
  if (values.size() < g.num_entries()) values.resize(g.num_entries());
  for (uint32_t i = begin; i < end && i < g.num_nodes(); ++i) {
    const Node& n = g.node(i);
    if (n.is_variable()) {
      auto it = vars.find(n.name);
      if (it == vars.end() || !it->second.defined())
        throw UserError(StrCat("variable \"", n.name, "\" has no value"));
      values[g.entry_id(i, 0)] = it->second;
      continue;
    }
    KernelCtx ctx{*n.op, n.name, n.attrs, {}, {}, options.is_train, options.seed};
    std::vector<Shape> in_shapes, out_shapes(size_t(n.num_outputs()));
    std::vector<DType> in_types, out_types(size_t(n.num_outputs()), DType::kUnknown);
    for (const Entry& e : n.inputs) {
      const Tensor& t = values[g.entry_id(e)];
      KILN_INTERNAL_CHECK(t.defined(), n.op->name(), " \"", n.name, "\" reads entry (", e.node,
                          ", ", e.index, "), which has no value yet");
      ctx.in.push_back(t);
      in_shapes.push_back(Shape(t.shape()));
      in_types.push_back(t.dtype());
    }
    ShapeInferCtx sctx(*n.op, n.name, n.attrs, in_shapes, out_shapes);
    n.op->infer_shape()(sctx);
    TypeInferCtx tctx(*n.op, n.name, n.attrs, in_types, out_types);
    n.op->infer_type()(tctx);
    for (size_t k = 0; k < out_shapes.size(); ++k) {
      // The inputs are concrete, so a rule that leaves an output open is a bug in the rule.
      KILN_INTERNAL_CHECK(out_shapes[k].IsFullyKnown() && out_types[k] != DType::kUnknown,
                          n.op->name(), " \"", n.name, "\": output ", k,
                          " not inferred from concrete inputs: ", out_shapes[k].ToString(), " ",
                          DTypeName(out_types[k]));
      ctx.out.push_back(Tensor::Empty(out_shapes[k].dims(), out_types[k]));
    }
    n.op->reference()(ctx);
    for (size_t k = 0; k < ctx.out.size(); ++k) values[g.entry_id(i, uint32_t(k))] = ctx.out[k];
  }
}

std::vector<Tensor> InterpretAll(const Graph& g, const std::map<std::string, Tensor>& vars,
                                 const InterpretOptions& options) {
  std::vector<Tensor> values(g.num_entries());
  InterpretNodes(g, vars, values, 0, g.num_nodes(), options);
  return values;
}

std::vector<Tensor> Interpret(const Graph& g, const std::map<std::string, Tensor>& vars,
                              const InterpretOptions& options) {
  std::vector<Tensor> all = InterpretAll(g, vars, options);
  std::vector<Tensor> out;
  for (const Entry& e : g.outputs()) out.push_back(all[g.entry_id(e)]);
  return out;
}

}  // namespace kiln
