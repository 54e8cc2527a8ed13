// kiln/frontend/symbol.h - MXNet's Symbol API in C++: build graphs by composing operators.
//
// A Symbol is a list of outputs of nodes. Nodes are shared and immutable: composing symbols
// builds a DAG without copying, and a symbol used twice is one node read twice. ToGraph() turns
// a symbol into kiln's Graph by a depth-first post-order walk from the outputs, visiting inputs
// in order, so variables come out in the order MXNet's list_arguments gives them.
//
//   Symbol data = Symbol::Variable("data");
//   Symbol fc1 = FullyConnected(data, 128, "fc1");       // makes fc1_weight, fc1_bias
//   Symbol act = Activation(fc1, "relu", "relu1");
//   Symbol net = SoftmaxOutput(FullyConnected(act, 10, "fc2"), "softmax");  // softmax_label
//   net.ListArguments();  // data, fc1_weight, fc1_bias, fc2_weight, fc2_bias, softmax_label
//   auto shapes = net.InferShape({{"data", {100, 784}}});
//   shapes.arguments.at("fc1_weight");  // (128, 784)
//   shapes.outputs.at("softmax_output");  // (100, 10)
//
// MXNet's rules, kept exactly:
// - An input not given to an op becomes a new variable named `<node name>_<input name>`
//   (fc1_weight, softmax_label, bn_moving_mean).
// - A node without a name gets the lower-case op name (or the operator's MXNet hint, e.g.
//   `_plus` for `a + b`) and a counter: fullyconnected0, fullyconnected1, _plus0. Counters are
//   per thread; a NameScope starts fresh ones (MXNet's `with mx.name.NameManager()`).
// - An op with a variable number of inputs (Concat) gets its count attribute (num_args) from
//   the number of inputs given.
// - A symbol shows an op's visible outputs only (BatchNorm shows 1 of its 3).
// - Output names are `<node>_output` for a node with one output, `<node>_<output name>`
//   otherwise (split_output0), and the variable's own name for a variable.
// - Variables that an op takes as auxiliary states (BatchNorm's moving_mean, moving_var) are
//   listed by ListAuxiliaryStates, not ListArguments.
//
// Every error that is the caller's fault is a UserError naming the node and op: an unknown op,
// a bad attribute, too many inputs, an unknown input name, conflicting shapes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/frontend/bind_args.h"
#include "kiln/ir/attrs.h"
#include "kiln/ir/graph.h"
#include "kiln/ir/shape.h"
#include "kiln/runtime/dtype.h"

namespace kiln {

class Executor;  // kiln/frontend/executor.h
class Symbol;
struct SymbolInput;

namespace symbol_detail {
struct SymNode;
struct Access;
// One output of one node.
struct SymOutput {
  std::shared_ptr<const SymNode> node;
  uint32_t index = 0;
};
}  // namespace symbol_detail

// Facts found by inference, by name, in list order (arguments as ListArguments gives them).
template <class Fact>
class NamedFacts {
 public:
  using Item = std::pair<std::string, Fact>;
  // The fact of `name`; UserError naming the known names if there is none.
  const Fact& at(std::string_view name) const;
  bool contains(std::string_view name) const;
  const Item& operator[](size_t i) const { return items_[i]; }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  // For building a result.
  std::vector<Item>& items() { return items_; }

 private:
  std::vector<Item> items_;
};

template <class Fact>
struct InferResult {
  NamedFacts<Fact> arguments;   // in ListArguments order
  NamedFacts<Fact> outputs;     // in ListOutputs order
  NamedFacts<Fact> aux_states;  // in ListAuxiliaryStates order
  bool complete = false;        // every fact known
};
using ShapeResult = InferResult<Shape>;
using TypeResult = InferResult<DType>;

class Symbol {
 public:
  // An empty symbol: no outputs. Composing it is a UserError.
  Symbol() = default;

  // A variable (an argument, parameter or auxiliary state). `extra` holds MXNet's
  // free-form attributes: {"__shape__", "(0, 784)"}, {"__dtype__", "float16"}, {"lr_mult", ...}.
  static Symbol Variable(const std::string& name, AttrMap extra = {});

  // Applies op `op` (a name or alias in the op registry) to `inputs`. `attrs` are the op's
  // attributes as strings (MXNet's spelling), plus any `__key__` extra attributes. An empty
  // `name` asks for an automatic one. Missing inputs become variables `<name>_<input>`.
  static Symbol Create(std::string_view op, const std::vector<SymbolInput>& inputs,
                       const AttrMap& attrs = {}, const std::string& name = "");
  // As Create, with `hint` instead of the op name as the base of an automatic name (what
  // MXNet's operators do: `a + b` is elemwise_add named _plus0).
  static Symbol CreateWithHint(std::string_view op, std::string_view hint,
                               const std::vector<SymbolInput>& inputs, const AttrMap& attrs,
                               const std::string& name);

  // Several symbols' outputs as one symbol, in order (MXNet's Group).
  static Symbol Group(const std::vector<Symbol>& symbols);

  // Output i alone; UserError if out of range.
  Symbol operator[](size_t i) const;
  size_t num_outputs() const { return outputs_.size(); }
  // The node's name, for a symbol with one output (MXNet's `sym.name`); UserError otherwise.
  const std::string& name() const;
  // Every output of every node, variables included, in graph order (MXNet's get_internals()).
  Symbol GetInternals() const;
  // The output of GetInternals() named `output_name` ("fc1_output"); UserError listing the
  // names when there is none.
  Symbol GetInternal(std::string_view output_name) const;

  // MXNet's listings.
  std::vector<std::string> ListArguments() const;
  std::vector<std::string> ListOutputs() const;
  std::vector<std::string> ListAuxiliaryStates() const;
  std::vector<std::string> ListInputs() const;  // arguments and auxiliary states, in graph order

  // Shapes from the shapes of some variables. The full forms throw a UserError naming every
  // variable (and output) left unknown; the partial forms return what they found and throw
  // only on a contradiction (naming the node and op).
  ShapeResult InferShape(const std::map<std::string, Shape>& known) const;
  ShapeResult InferShapePartial(const std::map<std::string, Shape>& known) const;
  TypeResult InferType(const std::map<std::string, DType>& known = {}) const;
  TypeResult InferTypePartial(const std::map<std::string, DType>& known = {}) const;

  // kiln's graph of this symbol; UserError if two distinct variables share a name.
  Graph ToGraph() const;
  // The symbol of a graph's outputs (facts are not kept: symbols carry none).
  static Symbol FromGraph(const Graph& g);

  // MXNet symbol JSON (ir/mxnet_json.h) and kiln text IR (ir/text.h).
  std::string ToJSON() const;
  static Symbol FromJSON(std::string_view json);
  std::string ToText() const;
  // Files; RuntimeError when a file cannot be read or written.
  void Save(const std::string& path) const;
  static Symbol Load(const std::string& path);

  // Executors (kiln/frontend/executor.h, which defines these and says what they mean; include
  // it to call them). Bind takes every array from the caller, by name or by position;
  // SimpleBind allocates them from the given shapes, sharing same-named arrays of the same
  // shape and dtype with `shared_exec` when one is given.
  Executor Bind(Device device, const BindArrays& args, const BindArrays& args_grad = {},
                const GradReqs& grad_req = GradReq::kWrite,
                const BindArrays& aux_states = {}) const;
  Executor SimpleBind(Device device, const std::map<std::string, Shape>& shapes,
                      const GradReqs& grad_req = GradReq::kWrite,
                      const std::map<std::string, DType>& dtypes = {},
                      const Executor* shared_exec = nullptr) const;

 private:
  friend struct symbol_detail::Access;
  std::vector<symbol_detail::SymOutput> outputs_;
};

// One input of Symbol::Create: a symbol given by position (`data`) or by the op's input name
// (`{"weight", w}`). A list may mix both: positional ones fill the inputs in order, named ones
// fill the named inputs.
struct SymbolInput {
  SymbolInput(const Symbol& s);  // NOLINT: implicit, so `{data, {"weight", w}}` reads naturally
  SymbolInput(std::string input_name, const Symbol& s);
  std::string name;  // empty: by position
  Symbol symbol;
};

// While alive, automatic names on this thread count from zero again; the previous counters come
// back when it ends. Scopes nest.
class NameScope {
 public:
  NameScope();
  ~NameScope();
  NameScope(const NameScope&) = delete;
  NameScope& operator=(const NameScope&) = delete;
};

// Arithmetic, as MXNet's Symbol operators: symbol with symbol is elemwise_add, elemwise_sub,
// elemwise_mul, elemwise_div (same shapes; auto-named _plus0, _minus0, _mul0, _div0); with a
// scalar on either side _plus_scalar, _minus_scalar / _rminus_scalar, _mul_scalar,
// _div_scalar / _rdiv_scalar; unary minus is `x * -1` as in MXNet.
Symbol operator+(const Symbol& lhs, const Symbol& rhs);
Symbol operator-(const Symbol& lhs, const Symbol& rhs);
Symbol operator*(const Symbol& lhs, const Symbol& rhs);
Symbol operator/(const Symbol& lhs, const Symbol& rhs);
Symbol operator+(const Symbol& lhs, double rhs);
Symbol operator-(const Symbol& lhs, double rhs);
Symbol operator*(const Symbol& lhs, double rhs);
Symbol operator/(const Symbol& lhs, double rhs);
Symbol operator+(double lhs, const Symbol& rhs);
Symbol operator-(double lhs, const Symbol& rhs);
Symbol operator*(double lhs, const Symbol& rhs);
Symbol operator/(double lhs, const Symbol& rhs);
Symbol operator-(const Symbol& x);

}  // namespace kiln
