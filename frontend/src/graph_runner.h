// graph_runner.h - what runs an executor's graph: the seam between the Executor and a backend.
//
// The Executor (kiln/frontend/executor.h) owns the arrays and MXNet's semantics (grad_req,
// head gradients, seeds, checks); a GraphRunner only runs the bound training graph. Today's
// runner is the reference interpreter; a compiled runner (the LLVM backend) implements the same
// two calls, so swapping it in changes nothing the Executor's users see.
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
};

// The reference interpreter as a runner. `bound` holds the executor's argument and auxiliary
// arrays by variable name; they are read (and BatchNorm's moving statistics updated) in place.
// `num_forward_outputs` of graph.graph's outputs are the forward graph's.
std::unique_ptr<GraphRunner> MakeInterpreterRunner(GradientGraph graph,
                                                   std::map<std::string, Tensor> bound,
                                                   size_t num_forward_outputs);

}  // namespace kiln
