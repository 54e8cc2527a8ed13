// kiln/frontend/model_graphs.h - a network as the graph a compiler sees, with values.
//
// For tests and benchmarks of the passes and backends: the inference graph or the training
// graph (forward and backward, from BuildGradient) of a Symbol at fixed input shapes, with
// shapes and dtypes inferred, and random values for every variable (parameters drawn from
// U(-scale, scale) with fan-in scaling, moving variances positive, labels valid class ids).
//
//   ModelGraph m = TrainingGraph(ResNet18(), {{"data", {32, 3, 224, 224}}}, 7);
//   PassContext ctx;  ctx.is_train = true;  ctx.forward_outputs = m.forward_outputs;
//   Graph opt = PassManager(OptPipeline(3)).Run(m.graph, ctx);
//   Interpret(opt, m.values, {.is_train = true});
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "kiln/frontend/symbol.h"
#include "kiln/ir/graph.h"
#include "kiln/passes/pass_manager.h"

namespace kiln {

struct ModelGraph {
  Graph graph;
  // Outputs [0, forward_outputs) are the network's; in a training graph the gradients of every
  // parameter follow.
  size_t forward_outputs = 0;
  // A value for every variable: inputs (the names given shapes), parameters, auxiliary states,
  // labels and head gradients (ones).
  std::map<std::string, Tensor> values;
  // The network's inputs (the names given shapes) and labels; every other variable is a
  // parameter or an auxiliary state.
  std::vector<std::string> inputs;
};

ModelGraph InferenceGraph(const Symbol& net, const std::map<std::string, Shape>& input_shapes,
                          uint32_t seed = 1);
// Gradients of every argument that is not an input nor a label ("*_label").
ModelGraph TrainingGraph(const Symbol& net, const std::map<std::string, Shape>& input_shapes,
                         uint32_t seed = 1);

// A PassContext for the graph: inference graphs get their parameters as constants (as a
// deployed model has them), training graphs is_train and forward_outputs.
PassContext ContextFor(const ModelGraph& m, bool training);

}  // namespace kiln
