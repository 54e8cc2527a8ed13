// model_graphs.cpp - networks as graphs with random values (see model_graphs.h).
#include "kiln/frontend/model_graphs.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "kiln/passes/gradient.h"
#include "kiln/passes/infer.h"

namespace kiln {

namespace {

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void Infer(Graph& g, const std::map<std::string, Shape>& input_shapes) {
  InferOptions opt;
  opt.shapes = input_shapes;
  InferShapes(g, opt);
  InferTypes(g, opt);
}

// Values for every variable of m.graph, by the role its name gives it.
void FillValues(ModelGraph& m, const std::map<std::string, Shape>& input_shapes, uint32_t seed) {
  std::mt19937 rng(seed);
  const Graph& g = m.graph;
  const Shape& out = g.shape(g.outputs()[0]);
  int64_t classes = out.ndim() > 0 ? out[out.ndim() - 1] : 1;
  for (uint32_t v : g.VariableNodes()) {
    const std::string& name = g.node(v).name;
    std::vector<int64_t> dims = g.shape(Entry{v, 0}).dims();
    size_t n = 1;
    for (int64_t d : dims) n *= size_t(d);
    int64_t fan_in = 1;
    for (size_t d = 1; d < dims.size(); ++d) fan_in *= dims[d];
    double lo = -1, hi = 1;
    bool integer = false;
    if (EndsWith(name, "_head_grad")) {
      m.inputs.push_back(name);
      lo = hi = 1;
    } else if (input_shapes.count(name)) {
      m.inputs.push_back(name);
    } else if (EndsWith(name, "_label")) {
      m.inputs.push_back(name);
      lo = 0, hi = double(classes), integer = true;
    } else if (EndsWith(name, "moving_var") || EndsWith(name, "gamma")) {
      lo = 0.5, hi = 1.5;
    } else if (EndsWith(name, "moving_mean") || EndsWith(name, "beta") || dims.size() == 1) {
      lo = -0.1, hi = 0.1;
    } else {
      hi = 1.0 / std::sqrt(double(fan_in)), lo = -hi;
    }
    std::uniform_real_distribution<double> u(lo, hi);
    std::vector<double> values(n);
    for (double& x : values) x = integer ? std::floor(u(rng)) : (lo == hi ? lo : u(rng));
    m.values[name] = Tensor::FromValues(dims, g.dtype(Entry{v, 0}), values);
  }
}

}  // namespace

ModelGraph InferenceGraph(const Symbol& net, const std::map<std::string, Shape>& input_shapes,
                          uint32_t seed) {
  ModelGraph m;
  m.graph = net.ToGraph();
  Infer(m.graph, input_shapes);
  m.forward_outputs = m.graph.outputs().size();
  FillValues(m, input_shapes, seed);
  return m;
}

ModelGraph TrainingGraph(const Symbol& net, const std::map<std::string, Shape>& input_shapes,
                         uint32_t seed) {
  Graph forward = net.ToGraph();
  std::vector<uint32_t> xs;
  for (uint32_t v : forward.ArgumentNodes()) {
    const std::string& name = forward.node(v).name;
    if (!input_shapes.count(name) && !EndsWith(name, "_label")) xs.push_back(v);
  }
  ModelGraph m;
  m.forward_outputs = forward.outputs().size();
  GradientGraph gg = BuildGradient(forward, xs);
  m.graph = std::move(gg.graph);
  // Head gradients have their outputs' shapes (loss heads ignore them, so no rule says so).
  Infer(forward, input_shapes);
  std::map<std::string, Shape> shapes = input_shapes;
  for (size_t k = 0; k < gg.head_grads.size(); ++k)
    shapes[m.graph.node(gg.head_grads[k]).name] = forward.shape(gg.ys[k]);
  Infer(m.graph, shapes);
  FillValues(m, shapes, seed);
  return m;
}

PassContext ContextFor(const ModelGraph& m, bool training) {
  PassContext ctx;
  for (const std::string& name : m.inputs)
    ctx.infer.shapes[name] = Shape(m.values.at(name).shape());
  if (training) {
    ctx.is_train = true;
    ctx.forward_outputs = m.forward_outputs;
    return ctx;
  }
  for (const auto& [name, value] : m.values)
    if (std::find(m.inputs.begin(), m.inputs.end(), name) == m.inputs.end())
      ctx.constants[name] = value;
  return ctx;
}

}  // namespace kiln
