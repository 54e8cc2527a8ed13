// compiled_runner.cpp - compiled code behind the GraphRunner interface (graph_runner.h).
#include <cstdlib>
#include <optional>

#include "graph_runner.h"
#include "kiln/codegen/compile.h"
#include "kiln/passes/infer.h"
#include "kiln/runtime/error.h"

namespace kiln {

namespace {

class CompiledRunner final : public GraphRunner {
 public:
  CompiledRunner(GradientGraph graph, Graph forward, std::map<std::string, Tensor> bound,
                 size_t num_forward_outputs)
      : gg_(std::move(graph)),
        forward_(std::move(forward)),
        vars_(std::move(bound)),
        num_forward_outputs_(num_forward_outputs) {
    for (const auto& [name, t] : vars_) {
      infer_.shapes[name] = Shape(t.shape());
      infer_.dtypes[name] = t.dtype();
    }
    if (const char* cpu = std::getenv("KILN_CPU")) cpu_ = cpu;  // e.g. x86-64-v3 for AVX2
  }

  std::vector<Tensor> RunForward(bool is_train, uint64_t seed) override {
    codegen::CompiledRun& run = is_train ? Train() : Inference();
    run.RunCalls(0, run.graph().forward_calls(), is_train, seed);
    last_ = &run;
    std::vector<Tensor> out;
    for (size_t i = 0; i < num_forward_outputs_; ++i) out.push_back(run.output(i));
    return out;
  }

  void SetGradientArrays(const std::vector<Tensor>& arrays) override { gradient_arrays_ = arrays; }

  std::vector<Tensor> RunBackward(const std::vector<Tensor>& head_grads) override {
    KILN_INTERNAL_CHECK(last_ == &*train_, "RunBackward without a training RunForward");
    KILN_INTERNAL_CHECK(head_grads.size() == gg_.head_grads.size(), head_grads.size(),
                        " head gradients for ", gg_.head_grads.size(), " outputs");
    codegen::CompiledRun& run = *train_;
    for (size_t i = 0; i < head_grads.size(); ++i)
      if (head_grads[i].defined()) run.Bind(gg_.graph.node(gg_.head_grads[i]).name, head_grads[i]);
    run.RunCalls(run.graph().forward_calls(), run.graph().plan().calls.size(), true);
    std::vector<Tensor> grads;
    for (size_t k = 0; k < gg_.grads.size(); ++k)
      grads.push_back(run.output(num_forward_outputs_ + k));
    return grads;
  }

 private:
  codegen::CompiledRun& Train() {
    if (!train_) {
      codegen::CompileOptions o;
      o.infer = infer_;
      o.cpu.cpu = cpu_;
      o.is_train = true;
      o.forward_outputs = gg_.num_forward_nodes < gg_.graph.num_nodes() ? num_forward_outputs_ : 0;
      // The head gradients have their outputs' shapes and dtypes.
      Graph typed = forward_;
      InferShapes(typed, infer_);
      InferTypes(typed, infer_);
      for (size_t i = 0; i < gg_.head_grads.size(); ++i) {
        const std::string& name = gg_.graph.node(gg_.head_grads[i]).name;
        o.infer.shapes[name] = typed.shape(typed.outputs()[i]);
        o.infer.dtypes[name] = typed.dtype(typed.outputs()[i]);
      }
      train_.emplace(codegen::CompileGraphCached(gg_.graph, o));
      BindAll(*train_);
      for (size_t k = 0; k < gradient_arrays_.size(); ++k)
        if (gradient_arrays_[k].defined())
          train_->BindOutput(num_forward_outputs_ + k, gradient_arrays_[k]);
    }
    return *train_;
  }

  codegen::CompiledRun& Inference() {
    if (!inference_) {
      codegen::CompileOptions o;
      o.infer = infer_;
      o.cpu.cpu = cpu_;
      inference_.emplace(codegen::CompileGraphCached(forward_, o));
      BindAll(*inference_);
    }
    return *inference_;
  }

  void BindAll(codegen::CompiledRun& run) {
    for (const auto& [name, t] : vars_) run.Bind(name, t);
  }

  GradientGraph gg_;
  Graph forward_;
  std::map<std::string, Tensor> vars_;
  size_t num_forward_outputs_;
  InferOptions infer_;
  std::string cpu_;
  std::vector<Tensor> gradient_arrays_;  // the Executor's, where it writes (grad_req write)  // the
                                         // target CPU (KILN_CPU), empty: this machine's
  std::optional<codegen::CompiledRun> train_, inference_;
  codegen::CompiledRun* last_ = nullptr;
};

}  // namespace

std::unique_ptr<GraphRunner> MakeCompiledRunner(GradientGraph graph, Graph forward,
                                                std::map<std::string, Tensor> bound,
                                                size_t num_forward_outputs) {
  return std::make_unique<CompiledRunner>(std::move(graph), std::move(forward), std::move(bound),
                                          num_forward_outputs);
}

}  // namespace kiln
