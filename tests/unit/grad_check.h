// grad_check.h - checks an op's gradient against central finite differences in float64.
//
// For one op with given attributes and input shapes, the checker builds the one-op graph in
// float64, draws inputs (uniform in [lo, hi), or the values given), draws a random head gradient
// h for each visible output, and compares the gradient the gradient pass builds (run on the
// reference interpreter) with the central difference
//     (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),   f = sum_k sum(y_k * h_k),
// for every element of every input whose gradient is checked. Tolerance: |analytic - numeric|
// <= tol * (1 + |numeric|); with eps 1e-5 in float64 the truncation error of the central
// difference is O(eps^2 f''') and the rounding error O(1e-16 / eps), both far below the default
// tol of 1e-6 for smooth functions. Non-smooth points (relu at 0, max ties) are avoided by the
// caller's choice of inputs.
#pragma once

#include <gtest/gtest.h>

#include <set>

#include "kiln/passes/gradient.h"
#include "test_util.h"

namespace kiln::test {

struct GradCheck {
  std::string op;
  AttrMap attrs;
  std::vector<Shape> shapes;                  // input shapes by position (all must be given)
  std::map<int, std::vector<double>> values;  // explicit values for some inputs, by position
  std::set<int> no_grad;                      // inputs whose gradient is not checked (labels, aux)
  double lo = -1, hi = 1;                     // range of random inputs
  double eps = 1e-5, tol = 1e-6;
  bool is_train = false;
  uint32_t seed = 1;
};

inline void CheckGradient(const GradCheck& c) {
  SCOPED_TRACE(c.op);
  Graph g = OneOpGraph(c.op, c.attrs);
  const Node& node = g.node(g.num_nodes() - 1);
  int visible = node.op->NumVisibleOutputs(node.attrs);
  auto& outs = g.mutable_outputs();
  outs.resize(size_t(visible));
  std::vector<uint32_t> vars = g.VariableNodes();
  ASSERT_EQ(vars.size(), c.shapes.size()) << "give every input's shape";

  std::map<std::string, Tensor> feeds;
  for (size_t i = 0; i < vars.size(); ++i) {
    auto it = c.values.find(int(i));
    std::vector<double> v = it != c.values.end() ? it->second
                                                 : RandomValues(size_t(c.shapes[i].NumElements()),
                                                                c.seed + uint32_t(i), c.lo, c.hi);
    feeds[g.node(vars[i]).name] = Values(DType::kFloat64, c.shapes[i].dims(), v);
  }
  std::vector<uint32_t> xs;
  std::vector<bool> aux(vars.size(), false);
  for (int a : node.op->AuxInputs(node.attrs)) aux[size_t(a)] = true;
  for (size_t i = 0; i < vars.size(); ++i)
    if (!c.no_grad.count(int(i)) && !aux[i]) xs.push_back(vars[i]);

  GradientGraph gg = BuildGradient(g, xs);
  InterpretOptions opt;
  opt.is_train = c.is_train;
  opt.seed = 7;
  // Forward once for the output shapes, then random head gradients.
  std::vector<Tensor> fwd = Interpret(g, feeds, opt);
  std::vector<Tensor> heads;
  for (size_t k = 0; k < fwd.size(); ++k) {
    heads.push_back(Values(DType::kFloat64, fwd[k].shape(),
                           RandomValues(size_t(fwd[k].size()), 1000 + uint32_t(k))));
    feeds[gg.graph.node(gg.head_grads[k]).name] = heads.back();
  }
  // Auxiliary states may be updated in place when training: give each run fresh copies.
  auto fresh = [&](std::map<std::string, Tensor> f) {
    for (auto& [name, t] : f) t = t.Clone();
    return f;
  };
  std::vector<Tensor> all = Interpret(gg.graph, fresh(feeds), opt);
  auto objective = [&](const std::map<std::string, Tensor>& f) {
    std::vector<Tensor> ys = Interpret(g, fresh(f), opt);
    double sum = 0;
    for (size_t k = 0; k < ys.size(); ++k) {
      std::vector<double> y = ys[k].ToDoubles(), h = heads[k].ToDoubles();
      for (size_t i = 0; i < y.size(); ++i) sum += y[i] * h[i];
    }
    return sum;
  };
  size_t n_fwd_out = g.outputs().size();
  for (size_t xi = 0; xi < xs.size(); ++xi) {
    const std::string& name = g.node(xs[xi]).name;
    std::vector<double> analytic = all[n_fwd_out + xi].ToDoubles();
    Tensor& x = feeds[name];
    ASSERT_EQ(analytic.size(), size_t(x.size())) << name;
    double* p = x.data<double>();
    for (int64_t i = 0; i < x.size(); ++i) {
      double saved = p[i];
      p[i] = saved + c.eps;
      double up = objective(feeds);
      p[i] = saved - c.eps;
      double down = objective(feeds);
      p[i] = saved;
      double numeric = (up - down) / (2 * c.eps);
      EXPECT_NEAR(analytic[size_t(i)], numeric, c.tol * (1 + std::fabs(numeric)))
          << "d/d " << name << "[" << i << "]";
    }
  }
}

}  // namespace kiln::test
