// graph_runner.cpp - the reference interpreter behind the GraphRunner interface.
#include "graph_runner.h"

#include "kiln/ir/interpreter.h"

namespace kiln {

namespace {

class InterpreterRunner final : public GraphRunner {
 public:
  InterpreterRunner(GradientGraph graph, std::map<std::string, Tensor> bound,
                    size_t num_forward_outputs)
      : gg_(std::move(graph)), vars_(std::move(bound)), num_forward_outputs_(num_forward_outputs) {
    const Graph& g = gg_.graph;
    first_backward_entry_ = gg_.num_forward_nodes < g.num_nodes()
                                ? g.entry_id(gg_.num_forward_nodes, 0)
                                : g.num_entries();
  }

  std::vector<Tensor> RunForward(bool is_train, uint64_t seed) override {
    const Graph& g = gg_.graph;
    options_.is_train = is_train;
    options_.seed = seed;
    InterpretNodes(g, vars_, values_, 0, gg_.num_forward_nodes, options_);
    std::vector<Tensor> out;
    for (size_t i = 0; i < num_forward_outputs_; ++i)
      out.push_back(values_[g.entry_id(g.outputs()[i])]);
    return out;
  }

  std::vector<Tensor> RunBackward(const std::vector<Tensor>& head_grads) override {
    const Graph& g = gg_.graph;
    KILN_INTERNAL_CHECK(head_grads.size() == gg_.head_grads.size(), head_grads.size(),
                        " head gradients for ", gg_.head_grads.size(), " outputs");
    for (size_t i = 0; i < head_grads.size(); ++i)
      vars_[g.node(gg_.head_grads[i]).name] = head_grads[i];
    // Same options (and seed) as the forward run, so a backward range could redraw a mask.
    InterpretNodes(g, vars_, values_, gg_.num_forward_nodes, g.num_nodes(), options_);
    std::vector<Tensor> grads;
    for (const Entry& e : gg_.grads) grads.push_back(values_[g.entry_id(e)]);
    // The backward values are dead now; the forward ones stay for another Backward call.
    for (size_t i = first_backward_entry_; i < values_.size(); ++i) values_[i] = Tensor();
    for (uint32_t v : gg_.head_grads) vars_.erase(g.node(v).name);
    return grads;
  }

 private:
  GradientGraph gg_;
  std::map<std::string, Tensor> vars_;
  size_t num_forward_outputs_;
  size_t first_backward_entry_ = 0;
  std::vector<Tensor> values_;
  InterpretOptions options_;
};

}  // namespace

std::unique_ptr<GraphRunner> MakeInterpreterRunner(GradientGraph graph,
                                                   std::map<std::string, Tensor> bound,
                                                   size_t num_forward_outputs) {
  return std::make_unique<InterpreterRunner>(std::move(graph), std::move(bound),
                                             num_forward_outputs);
}

}  // namespace kiln
