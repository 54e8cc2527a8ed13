// graph_runner.h - what runs an executor's graph: the seam between the Executor and a backend.
//
// The Executor (kiln/frontend/executor.h) owns the arrays and MXNet's semantics (grad_req,
// head gradients, seeds, checks); a GraphRunner only runs the bound training graph. Two
// runners exist, compiled code (the LLVM backend, the default) and the reference interpreter;
// both implement the same two calls, so the choice changes nothing the Executor's users see
// (KILN_EXECUTOR=interpreter, or SetExecutorBackend in executor.h, picks the interpreter).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/passes/gradient.h"
#include "kiln/runtime/tensor.h"

namespace kiln {

class GraphRunner {
 public:
  virtual ~GraphRunner() = default;
  // Runs the forward nodes and returns the forward outputs' values, in order. The caller copies
  // them out: they may be the runner's own buffers. Training mode keeps what Backward needs.
  virtual std::vector<Tensor> RunForward(bool is_train, uint64_t seed) = 0;
  // Runs the backward nodes after RunForward(true). `head_grads`: one per differentiated output
  // (GradientGraph::ys), defined wherever a backward node reads it. Returns one gradient per
  // GradientGraph::grads entry, for the caller to write or add into its gradient arrays.
  virtual std::vector<Tensor> RunBackward(const std::vector<Tensor>& head_grads) = 0;
  // Where the caller will copy each gradient (one per GradientGraph::grads entry; undefined
  // where it adds instead): a runner may compute them there directly, returning those same
  // tensors from RunBackward (the copy then costs nothing).
  virtual void SetGradientArrays(const std::vector<Tensor>& arrays) { (void)arrays; }
};

// The reference interpreter as a runner. `bound` holds the executor's argument and auxiliary
// arrays by variable name; they are read (and BatchNorm's moving statistics updated) in place.
// `num_forward_outputs` of graph.graph's outputs are the forward graph's.
std::unique_ptr<GraphRunner> MakeInterpreterRunner(GradientGraph graph,
                                                   std::map<std::string, Tensor> bound,
                                                   size_t num_forward_outputs);

// Compiled code (kiln/codegen/compile.h) as a runner, with the same arguments plus the forward
// graph alone (`forward`, whose outputs are the first num_forward_outputs of graph.graph's):
// Forward(true) and Backward run the training graph compiled with both phases, Forward(false)
// runs the forward graph compiled for inference (BatchNorm on its moving statistics, Dropout
// gone). Each is compiled on its first use, through the compile cache.
std::unique_ptr<GraphRunner> MakeCompiledRunner(GradientGraph graph, Graph forward,
                                                std::map<std::string, Tensor> bound,
                                                size_t num_forward_outputs);

}  // namespace kiln
