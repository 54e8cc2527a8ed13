// grad_tensor_util.h - runs the gradient of one op on given values, for the tensor-op gradient
// tests that check exact values (ties, boundaries, dtypes) rather than finite differences.
#pragma once

#include "grad_check.h"

namespace kiln::test {

// The gradients of sum_k sum(y_k * heads[k]) with respect to every input of a one-op graph,
// in input order. `ys` picks the differentiated outputs (default: all); `heads` has one tensor
// per differentiated output.
inline std::vector<Tensor> OpGradients(const std::string& op, const AttrMap& attrs,
                                       const std::vector<Tensor>& inputs,
                                       const std::vector<Tensor>& heads,
                                       std::vector<uint32_t> ys = {}) {
  Graph g = OneOpGraph(op, attrs);
  uint32_t node = g.num_nodes() - 1;
  std::vector<Entry> y_entries;
  for (uint32_t k : ys) y_entries.push_back(Entry{node, k});
  std::vector<uint32_t> vars = g.VariableNodes();
  GradientGraph gg = BuildGradient(g, vars, y_entries);
  std::map<std::string, Tensor> feeds;
  for (size_t i = 0; i < vars.size(); ++i) feeds[g.node(vars[i]).name] = inputs.at(i);
  for (size_t k = 0; k < gg.head_grads.size(); ++k)
    feeds[gg.graph.node(gg.head_grads[k]).name] = heads.at(k);
  std::vector<Tensor> all = Interpret(gg.graph, feeds);
  return std::vector<Tensor>(all.end() - long(vars.size()), all.end());
}

// A float64 tensor from values.
inline Tensor F64(std::vector<int64_t> shape, std::vector<double> values) {
  return Tensor::FromValues(std::move(shape), DType::kFloat64, values);
}

}  // namespace kiln::test
