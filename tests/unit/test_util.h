// test_util.h - helpers for unit tests: build one-op graphs, run them, compare tensors.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kiln/ir/graph.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/op.h"
#include "kiln/passes/infer.h"

namespace kiln::test {

// A graph with one node of `op` (attributes as strings) whose inputs are variables named after
// the op's input names ("data", "weight", ...), and whose outputs are all the node's outputs.
inline Graph OneOpGraph(const std::string& op, const AttrMap& attrs, std::string name = "n") {
  const OpDef& def = OpRegistry::Global().Get(op);
  Node node;
  node.op = &def;
  node.name = std::move(name);
  node.attrs = def.attrs.parse(attrs);
  Graph g;
  for (const std::string& in : def.InputNames(node.attrs))
    node.inputs.push_back(Entry{g.AddVariable(in), 0});
  int outs = node.num_outputs();
  uint32_t id = g.AddNode(std::move(node));
  for (int k = 0; k < outs; ++k) g.AddOutput(Entry{id, uint32_t(k)});
  return g;
}

// Infers the shapes of a one-op graph (partially: unknowns stay unknown) from its input shapes
// (by position) and, when `out` has a known rank, its first output's shape (backward inference).
// The node is named `name`, so error messages can be checked. Throws UserError.
inline Graph InferOneOp(const std::string& op, const AttrMap& attrs, const std::vector<Shape>& in,
                        const std::string& name = "n", const Shape& out = Shape()) {
  Graph g = OneOpGraph(op, attrs, name);
  if (out.rank_known()) {
    g.shapes.assign(g.num_entries(), Shape());
    g.shapes[g.entry_id(g.outputs()[0])] = out;
  }
  InferOptions opt;
  opt.require_complete = false;
  auto vars = g.VariableNodes();
  for (size_t i = 0; i < in.size() && i < vars.size(); ++i)
    opt.shapes[g.node(vars[i]).name] = in[i];
  InferShapes(g, opt);
  return g;
}

// The output shapes of one op inferred from its input shapes (by position).
inline std::vector<Shape> InferOpShapes(const std::string& op, const AttrMap& attrs,
                                        const std::vector<Shape>& in) {
  Graph g = InferOneOp(op, attrs, in);
  std::vector<Shape> out;
  for (const Entry& e : g.outputs()) out.push_back(g.shape(e));
  return out;
}

// The first output shape of one op, printed: "(2, 3)".
inline std::string OutShape(const std::string& op, const AttrMap& attrs,
                            const std::vector<Shape>& in) {
  return InferOpShapes(op, attrs, in)[0].ToString();
}

// Every input's shape after inference (backward included), given some input shapes and
// optionally the output's shape.
inline std::vector<Shape> InferOpInputShapes(const std::string& op, const AttrMap& attrs,
                                             const std::vector<Shape>& in,
                                             const Shape& out = Shape()) {
  Graph g = InferOneOp(op, attrs, in, "n", out);
  std::vector<Shape> shapes;
  for (uint32_t v : g.VariableNodes()) shapes.push_back(g.shape(Entry{v, 0}));
  return shapes;
}

// Infers the output dtypes of one op from its input dtypes (by position).
inline std::vector<DType> InferOpTypes(const std::string& op, const AttrMap& attrs,
                                       const std::vector<DType>& in) {
  Graph g = OneOpGraph(op, attrs);
  InferOptions opt;
  opt.require_complete = false;
  auto vars = g.VariableNodes();
  for (size_t i = 0; i < in.size() && i < vars.size(); ++i)
    opt.dtypes[g.node(vars[i]).name] = in[i];
  InferTypes(g, opt);
  std::vector<DType> out;
  for (const Entry& e : g.outputs()) out.push_back(g.dtype(e));
  return out;
}

// Runs one op on the reference interpreter with the given inputs (by position).
inline std::vector<Tensor> RunOp(const std::string& op, const AttrMap& attrs,
                                 const std::vector<Tensor>& in, bool is_train = false,
                                 uint64_t seed = 0) {
  Graph g = OneOpGraph(op, attrs);
  std::map<std::string, Tensor> vars;
  auto ids = g.VariableNodes();
  EXPECT_EQ(ids.size(), in.size()) << op << " takes " << ids.size() << " inputs";
  for (size_t i = 0; i < in.size() && i < ids.size(); ++i) vars[g.node(ids[i]).name] = in[i];
  InterpretOptions options;
  options.is_train = is_train;
  options.seed = seed;
  return Interpret(g, vars, options);
}

// A float32 tensor from values.
inline Tensor F32(std::vector<int64_t> shape, std::vector<double> values) {
  return Tensor::FromValues(std::move(shape), DType::kFloat32, values);
}

// A tensor of any dtype from values (converted as static_cast from double).
inline Tensor Values(DType dtype, std::vector<int64_t> shape, std::vector<double> values) {
  return Tensor::FromValues(std::move(shape), dtype, values);
}

// `n` values uniform in [lo, hi), reproducible from `seed`.
inline std::vector<double> RandomValues(size_t n, uint32_t seed, double lo = -1, double hi = 1) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = u(gen);
  return v;
}

// Expects `t` to have `shape` and values within `tol` (absolute + relative) of `expected`.
inline void ExpectTensorNear(const Tensor& t, const std::vector<int64_t>& shape,
                             const std::vector<double>& expected, double tol = 1e-6) {
  ASSERT_EQ(ShapeString(t.shape()), ShapeString(shape));
  std::vector<double> got = t.ToDoubles();
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(expected[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << "element " << i;
      continue;
    }
    EXPECT_NEAR(got[i], expected[i], tol * (1 + std::fabs(expected[i]))) << "element " << i;
  }
}

// Expects `f` to throw UserError whose message contains every string of `parts`.
template <class F>
void ExpectUserError(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected a UserError";
  } catch (const UserError& e) {
    std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg;
  }
}

}  // namespace kiln::test
