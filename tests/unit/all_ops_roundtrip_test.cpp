// all_ops_roundtrip_test.cpp - one graph using every registered op survives both formats.
//
// The table below gives each op (by MXNet name) sample attributes (MXNet attribute names) and
// the shapes of its leading inputs; the rest (weights) come from backward shape inference. The
// test fails naming every registered op the table lacks, so an op cannot be added without
// being checked here, and naming every table entry whose attributes or shapes an op rejects.
#include <iostream>
#include <map>

#include "kiln/ir/composite.h"
#include "kiln/ir/mxnet_json.h"
#include "kiln/ir/text.h"
#include "kiln/ir/verifier.h"
#include "test_util.h"

namespace kiln {
namespace {

struct OpSample {
  AttrMap attrs;
  std::vector<Shape> inputs;  // shapes of the leading inputs, by position
};

const std::map<std::string, OpSample>& Samples() {
  static const std::map<std::string, OpSample> table = [] {
    const Shape m{2, 3};
    const Shape row{1, 3};
    const Shape img{1, 2, 4, 4};
    std::map<std::string, OpSample> t;
    // Neural-network layers.
    t["FullyConnected"] = {{{"num_hidden", "4"}}, {m}};
    t["Convolution"] = {{{"kernel", "(3, 3)"}, {"num_filter", "4"}, {"pad", "(1, 1)"}}, {img}};
    t["Deconvolution"] = {{{"kernel", "(2, 2)"}, {"num_filter", "3"}, {"stride", "(2, 2)"}}, {img}};
    t["Pooling"] = {{{"kernel", "(2, 2)"}, {"pool_type", "max"}, {"stride", "(2, 2)"}}, {img}};
    t["Activation"] = {{{"act_type", "tanh"}}, {m}};
    t["LeakyReLU"] = {{{"act_type", "leaky"}, {"slope", "0.1"}}, {m}};
    t["BatchNorm"] = {{{"eps", "0.001"}, {"fix_gamma", "False"}}, {img}};
    t["LayerNorm"] = {{{"axis", "-1"}, {"eps", "1e-05"}}, {m}};
    t["Dropout"] = {{{"p", "0.25"}}, {m}};
    t["Embedding"] = {{{"input_dim", "10"}, {"output_dim", "4"}}, {m}};
    t["softmax"] = {{{"axis", "-1"}}, {m}};
    t["log_softmax"] = {{{"axis", "1"}}, {m}};
    t["SoftmaxOutput"] = {{{"grad_scale", "0.5"}}, {Shape{2, 5}, Shape{2}}};
    t["LinearRegressionOutput"] = {{}, {Shape{2, 1}, Shape{2, 1}}};
    t["MakeLoss"] = {{}, {m}};
    // Their backward ops (inputs: the output gradient first, then what the op reads).
    t["_backward_FullyConnected"] = {{{"num_hidden", "4"}}, {Shape{2, 4}, m, Shape{4, 3}}};
    t["_backward_Activation"] = {{{"act_type", "tanh"}}, {m, m}};
    t["_backward_Embedding"] = {{{"input_dim", "10"}, {"output_dim", "4"}}, {Shape{2, 3, 4}, m}};
    t["_backward_LeakyReLU"] = {{{"act_type", "prelu"}}, {m, m, Shape{3}}};
    t["_backward_softmax"] = {{{"axis", "-1"}}, {m, m}};
    t["_backward_log_softmax"] = {{{"axis", "1"}}, {m, m}};
    t["_backward_Convolution"] = {{{"kernel", "(3, 3)"}, {"num_filter", "4"}, {"pad", "(1, 1)"}},
                                  {Shape{1, 4, 4, 4}, img}};
    t["_backward_Deconvolution"] = {
        {{"kernel", "(2, 2)"}, {"num_filter", "3"}, {"stride", "(2, 2)"}},
        {Shape{1, 3, 8, 8}, img}};
    t["_backward_Pooling"] = {{{"kernel", "(2, 2)"}, {"pool_type", "max"}, {"stride", "(2, 2)"}},
                              {Shape{1, 2, 2, 2}, img}};
    t["_backward_BatchNorm"] = {{{"eps", "0.001"}, {"fix_gamma", "False"}}, {img, img}};
    t["_backward_LayerNorm"] = {{{"axis", "-1"}, {"eps", "1e-05"}}, {m, m}};
    t["_backward_SoftmaxOutput"] = {{{"grad_scale", "0.5"}}, {Shape{2, 5}, Shape{2}}};
    t["_backward_LinearRegressionOutput"] = {{}, {Shape{2, 1}, Shape{2, 1}}};
    t["_backward_MakeLoss"] = {{}, {m}};
    // Shapes and slices.
    t["Flatten"] = {{}, {Shape{2, 3, 4}}};
    t["Reshape"] = {{{"shape", "(0, -1)"}}, {Shape{2, 3, 4}}};
    t["transpose"] = {{{"axes", "(1, 0)"}}, {m}};
    t["expand_dims"] = {{{"axis", "1"}}, {m}};
    t["squeeze"] = {{{"axis", "(1,)"}}, {Shape{2, 1, 3}}};
    t["broadcast_to"] = {{{"shape", "(4, 3)"}}, {row}};
    t["Concat"] = {{{"num_args", "3"}, {"dim", "1"}}, {m, Shape{2, 4}, Shape{2, 5}}};
    t["SliceChannel"] = {{{"num_outputs", "2"}, {"axis", "1"}}, {Shape{2, 4}}};
    t["slice"] = {{{"begin", "(0, 1)"}, {"end", "(2, 3)"}}, {Shape{2, 4}}};
    t["slice_axis"] = {{{"axis", "1"}, {"begin", "0"}, {"end", "2"}}, {Shape{2, 4}}};
    t["one_hot"] = {{{"depth", "5"}}, {m}};
    // Elementwise and broadcast arithmetic.
    for (const char* op : {"elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div",
                           "_maximum", "_minimum", "_power"})
      t[op] = {{}, {m, m}};
    for (const char* op : {"broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div",
                           "broadcast_maximum", "broadcast_minimum", "broadcast_power"})
      t[op] = {{}, {m, row}};
    for (const char* op :
         {"_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar",
          "_rdiv_scalar", "_maximum_scalar", "_minimum_scalar", "_power_scalar", "_rpower_scalar"})
      t[op] = {{{"scalar", "2.5"}}, {m}};
    for (const char* op : {"exp", "log", "sqrt", "rsqrt", "square", "abs", "negative", "sigmoid",
                           "tanh", "relu", "erf", "zeros_like", "ones_like"})
      t[op] = {{}, {m}};
    t["where"] = {{}, {m, m, m}};
    t["Cast"] = {{{"dtype", "float16"}}, {m}};
    t["clip"] = {{{"a_min", "-1"}, {"a_max", "1"}}, {m}};
    // Reductions and products.
    t["sum"] = {{{"axis", "(1,)"}}, {m}};
    t["mean"] = {{{"axis", "(0,)"}, {"keepdims", "True"}}, {m}};
    t["max"] = {{{"axis", "(1,)"}}, {m}};
    t["min"] = {{}, {m}};
    t["prod"] = {{{"axis", "(1,)"}, {"keepdims", "True"}}, {m}};
    t["argmax"] = {{{"axis", "1"}}, {m}};
    t["dot"] = {{{"transpose_b", "True"}}, {m, Shape{4, 3}}};
    t["batch_dot"] = {{}, {Shape{2, 3, 4}, Shape{2, 4, 5}}};
    // Tensor-op gradients and their helpers.
    t["sign"] = {{}, {m}};
    t["reshape_like"] = {{{"lhs_begin", "1"}, {"rhs_begin", "-2"}}, {Shape{2, 6}, Shape{4, 2, 3}}};
    t["add_n"] = {{{"num_args", "3"}}, {m, m, m}};
    t["_reduce_sum_like"] = {{}, {m, row}};
    t["_CrossDeviceCopy"] = {{}, {m}};
    t["_backward_clip"] = {{{"a_min", "-1"}, {"a_max", "1"}}, {m, m}};
    t["_backward_Cast"] = {{}, {m, m}};
    for (const char* op : {"_backward_maximum", "_backward_minimum", "_backward_power"})
      t[op] = {{}, {m, m, row}};
    for (const char* op : {"_backward_maximum_scalar", "_backward_minimum_scalar"})
      t[op] = {{{"scalar", "0.5"}}, {m, m}};
    for (const char* op : {"_backward_sum", "_backward_mean", "_backward_prod"})
      t[op] = {{{"axis", "(1,)"}}, {Shape{2}, m}};
    t["_backward_max"] = {{{"axis", "(0,)"}, {"keepdims", "True"}}, {row, m, row}};
    t["_backward_min"] = {{{"axis", "(1,)"}, {"exclude", "True"}}, {Shape{3}, m, Shape{3}}};
    t["_backward_dot"] = {{{"transpose_b", "True"}}, {Shape{2, 4}, m, Shape{4, 3}}};
    t["_backward_Concat"] = {{{"num_args", "2"}, {"dim", "1"}}, {Shape{2, 7}, m, Shape{2, 4}}};
    t["_backward_slice"] = {{{"begin", "(0, 1)"}, {"end", "(2, 3)"}}, {Shape{2, 2}, Shape{2, 4}}};
    t["_backward_slice_axis"] = {{{"axis", "1"}, {"begin", "0"}, {"end", "2"}},
                                 {Shape{2, 2}, Shape{2, 4}}};
    // Comparisons, logic, rounding and NumPy-style layout ops (logic.cpp, layout.cpp).
    for (const char* op :
         {"broadcast_equal", "broadcast_not_equal", "broadcast_greater", "broadcast_greater_equal",
          "broadcast_lesser", "broadcast_lesser_equal", "broadcast_logical_and",
          "broadcast_logical_or", "broadcast_logical_xor"})
      t[op] = {{}, {m, row}};
    for (const char* op : {"logical_not", "floor", "ceil", "round", "trunc", "rint"})
      t[op] = {{}, {m}};
    t["_np_reshape"] = {{{"newshape", "(3, -1)"}}, {m}};
    t["tile"] = {{{"reps", "(2, 1)"}}, {m}};
    t["Pad"] = {{{"mode", "edge"}, {"pad_width", "(1, 0, 0, 2)"}}, {m}};
    t["take"] = {{{"axis", "1"}}, {m, Shape{4}}};
    t["_backward_tile"] = {{{"reps", "(2, 1)"}}, {Shape{4, 3}, m}};
    t["_backward_take"] = {{{"axis", "1"}}, {Shape{2, 4}, Shape{4}, m}};
    t["take_along_axis"] = {{{"axis", "1"}}, {m, Shape{2, 2}}};
    t["cumsum"] = {{{"axis", "1"}, {"reverse", "True"}}, {m}};
    t["_backward_take_along_axis"] = {{{"axis", "1"}}, {Shape{2, 2}, Shape{2, 2}, m}};
    t["einsum"] = {{{"subscripts", "ij,jk->ik"}, {"num_args", "2"}}, {m, Shape{3, 4}}};
    t["resize"] = {{{"size", "(1, 2, 8, 6)"}, {"mode", "linear"}}, {img}};
    for (const char* op : {"sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh",
                           "arcsinh", "arccosh", "arctanh"})
      t[op] = {{}, {m}};
    t["LSTM"] = {{{"hidden_size", "4"}}, {Shape{5, 2, 3}}};
    t["GRU"] = {{{"hidden_size", "4"}, {"direction", "bidirectional"}}, {Shape{5, 2, 3}}};
    t["RNN_tanh"] = {{{"hidden_size", "4"}, {"direction", "reverse"}}, {Shape{5, 2, 3}}};
    return t;
  }();
  return table;
}

// Appends the nodes of `part` (a one-op graph with inferred facts) to `g`, prefixing variable
// names with `prefix`, and makes every output of its op node an output of `g`. The facts of the
// new entries go to `shapes` / `dtypes` (indexed by g's entry ids).
void Append(Graph& g, const Graph& part, const std::string& prefix, std::vector<Shape>* shapes,
            std::vector<DType>* dtypes) {
  uint32_t base = g.num_nodes();
  for (const Node& n : part.nodes()) {
    Node copy = n;
    if (copy.is_variable()) copy.name = prefix + "_" + copy.name;
    for (Entry& e : copy.inputs) e.node += base;
    uint32_t id = g.AddNode(std::move(copy));
    for (int k = 0; k < g.node(id).num_outputs(); ++k) {
      shapes->push_back(part.shape(Entry{id - base, uint32_t(k)}));
      dtypes->push_back(part.dtype(Entry{id - base, uint32_t(k)}));
    }
  }
  for (const Entry& e : part.outputs()) g.AddOutput(Entry{e.node + base, e.index});
}

// Every registered op in one graph, facts inferred where the op's rules allow. Registered ops
// without a sample go to `missing`; samples an op rejects go to `problems`.
Graph AllOpsGraph(std::vector<std::string>* missing, std::vector<std::string>* problems) {
  Graph g;
  std::vector<Shape> shapes;
  std::vector<DType> dtypes;
  for (const OpDef* op : OpRegistry::Global().List()) {
    // Composite nodes carry a body graph, not string attributes; fuse_test round-trips them.
    if (op == &CompositeOp()) continue;
    auto it = Samples().find(op->name());
    if (it == Samples().end()) {
      missing->push_back(op->name());
      continue;
    }
    try {
      Graph part = test::OneOpGraph(op->name(), it->second.attrs, "op_" + op->name());
      InferOptions opt;
      opt.require_complete = false;
      auto vars = part.VariableNodes();
      for (size_t i = 0; i < it->second.inputs.size() && i < vars.size(); ++i)
        opt.shapes[part.node(vars[i]).name] = it->second.inputs[i];
      InferShapes(part, opt);
      InferTypes(part, opt);
      Append(g, part, op->name(), &shapes, &dtypes);
    } catch (const Error& e) {
      problems->push_back(StrCat(op->name(), ": ", e.what()));
    }
  }
  if (g.num_entries() > 0) {
    g.shapes = std::move(shapes);
    g.dtypes = std::move(dtypes);
  }
  return g;
}

TEST(AllOps, EveryRegisteredOpHasASample) {
  std::vector<std::string> missing, problems;
  AllOpsGraph(&missing, &problems);
  std::string list;
  for (const auto& m : missing) list += " " + m;
  EXPECT_TRUE(missing.empty()) << "ops missing from the sample table:" << list;
}

TEST(AllOps, SamplesAreAcceptedByTheirOps) {
  std::vector<std::string> missing, problems;
  AllOpsGraph(&missing, &problems);
  std::string list;
  for (const auto& p : problems) list += "\n  " + p;
  EXPECT_TRUE(problems.empty()) << "sample attributes or shapes rejected:" << list;
  // The sample table is written for MXNet's full op list; report which are not yet registered.
  std::vector<std::string> unregistered;
  for (const auto& [name, sample] : Samples())
    if (!OpRegistry::Global().Find(name)) unregistered.push_back(name);
  if (!unregistered.empty()) {
    std::string names;
    for (const auto& n : unregistered) names += " " + n;
    std::cout << "[ note ] sample ops not registered yet:" << names << "\n";
  }
}

TEST(AllOps, TextAndMXNetJsonRoundTrip) {
  std::vector<std::string> missing, problems;
  Graph g = AllOpsGraph(&missing, &problems);
  ASSERT_GT(g.num_nodes(), 0u);
  ASSERT_TRUE(g.has_shapes());
  EXPECT_TRUE(VerifyGraph(g).empty());
  // The samples give enough shapes for every output to be inferred, so the text below carries
  // a full annotation on every op node.
  std::string unknown;
  for (uint32_t i = 0; i < g.num_nodes(); ++i)
    for (int k = 0; k < g.node(i).num_outputs(); ++k) {
      Entry e{i, uint32_t(k)};
      if (!g.shape(e).IsFullyKnown() || g.dtype(e) == DType::kUnknown)
        unknown += StrCat(" ", g.node(i).name, "#", k);
    }
  EXPECT_TRUE(unknown.empty()) << "facts not inferred for:" << unknown;

  std::string text = PrintGraph(g);
  Graph parsed = ParseGraph(text, "all_ops.kir");
  EXPECT_EQ(PrintGraph(parsed), text);
  EXPECT_TRUE(VerifyGraph(parsed).empty());
  EXPECT_EQ(parsed.shapes, g.shapes);
  EXPECT_EQ(parsed.dtypes, g.dtypes);

  std::string json = SaveMXNetJson(g);
  Graph loaded = LoadMXNetJson(json, "all_ops.json");
  EXPECT_EQ(SaveMXNetJson(loaded), json);
  EXPECT_EQ(PrintGraph(loaded), text);
  EXPECT_EQ(SaveMXNetJson(parsed), json);
}

}  // namespace
}  // namespace kiln
