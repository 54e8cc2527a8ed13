// kiln/ir/op.h - the operator registry: every op declared once, with all its rules.
//
// An op is registered once, in one file under ir/src/ops/, with everything a pass, a backend or
// the interpreter needs to know about it. Passes ask the registry; no pass names an operator.
//
//   void RegisterMyOps(OpRegistry& r) {
//     r.Register("FullyConnected")
//         .Describe("y = x * W^T + b over the last axis (or the flattened trailing axes)")
//         .SetAttrs<FullyConnectedAttrs>()
//         .Inputs([](const Attrs& a) {
//           return a.Get<FullyConnectedAttrs>().no_bias
//                      ? std::vector<std::string>{"data", "weight"}
//                      : std::vector<std::string>{"data", "weight", "bias"};
//         })
//         .InferShape(FullyConnectedShape)   // void(ShapeInferCtx&)
//         .InferType(SameTypeInfer)          // void(TypeInferCtx&)
//         .Pattern(FusionPattern::kOutElemwiseFusable)
//         .Reference(FullyConnectedKernel);  // void(KernelCtx&)
//   }
//
//   const OpDef& fc = OpRegistry::Global().Get("FullyConnected");
//   Attrs attrs = fc.attrs.parse({{"num_hidden", "128"}});
//   fc.InputNames(attrs);  // {"data", "weight", "bias"}
//
// Rules are functions of the node's typed attributes. Shape and type rules work both ways
// (forward from inputs to outputs, backward to fill unknown inputs such as weights) and are
// called repeatedly until nothing changes, so they must accept partial knowledge and fail only
// on a contradiction. An op's gradient (FGradient, see kiln/ir/grad.h) builds the nodes that
// compute its inputs' gradients from its outputs' gradients. Its compute definition (FCompute,
// kiln/ir/compute.h) says what it computes as a tensor expression, for code generation.
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/ir/attrs.h"
#include "kiln/ir/compute.h"
#include "kiln/ir/entry.h"
#include "kiln/ir/shape.h"
#include "kiln/runtime/dtype.h"
#include "kiln/runtime/tensor.h"

namespace kiln {

class OpDef;

// How an op may fuse with its neighbours (TVM's pattern kinds, from most to least fusable).
enum class FusionPattern : uint8_t {
  kElemwise,            // out[i] = f(in[i]) over same-shaped tensors
  kBroadcast,           // elementwise after broadcasting inputs
  kInjective,           // each output element reads one input element (reshape, transpose)
  kCommReduce,          // a commutative reduction over some axes
  kOutElemwiseFusable,  // a heavy op whose output can take an elementwise epilogue (dot, conv)
  kOpaque,              // fuses with nothing
};
std::string_view FusionPatternName(FusionPattern p);

// What shape and type rules see of one node: its op, name and attributes, and the facts known
// so far about its inputs and outputs, which the rule refines.
template <class Fact>
class InferCtx {
 public:
  InferCtx(const OpDef& op, std::string_view node_name, const Attrs& attrs, std::vector<Fact>& in,
           std::vector<Fact>& out)
      : op_(op), node_name_(node_name), attrs_(attrs), in_(in), out_(out) {}

  const OpDef& op() const { return op_; }
  std::string_view node_name() const { return node_name_; }
  template <class A>
  const A& attrs() const {
    return attrs_.Get<A>();
  }
  const Attrs& raw_attrs() const { return attrs_; }
  int num_in() const { return int(in_.size()); }
  int num_out() const { return int(out_.size()); }
  const Fact& in(int i) const { return in_.at(size_t(i)); }
  const Fact& out(int i) const { return out_.at(size_t(i)); }
  // The op's name for input or output i ("weight", "output").
  std::string InName(int i) const;
  std::string OutName(int i) const;

  // Refine input i / output i with `fact`. A contradiction with what is known is a UserError:
  //   <Op> "<node>": <input name> has <known> but <fact> was expected[: why]
  void SetIn(int i, const Fact& fact, std::string_view why = {});
  void SetOut(int i, const Fact& fact, std::string_view why = {});

  // Throws UserError prefixed with `<Op> "<node>": `.
  [[noreturn]] void Fail(const std::string& message) const;

 private:
  void Set(std::vector<Fact>& v, int i, const Fact& fact, const std::string& what,
           std::string_view why);
  const OpDef& op_;
  std::string_view node_name_;
  const Attrs& attrs_;
  std::vector<Fact>& in_;
  std::vector<Fact>& out_;
};
using ShapeInferCtx = InferCtx<Shape>;
using TypeInferCtx = InferCtx<DType>;
using FInferShape = std::function<void(ShapeInferCtx&)>;
using FInferType = std::function<void(TypeInferCtx&)>;

// What a reference kernel sees: the node's attributes and tensors. Outputs are allocated by
// the interpreter with the inferred shapes and types; the kernel fills them. Inputs listed by
// OpDef::aux_inputs (auxiliary states) may be updated in place when training.
struct KernelCtx {
  const OpDef& op;
  std::string_view node_name;
  const Attrs& attrs;
  std::vector<Tensor> in;
  std::vector<Tensor> out;
  bool is_train = false;
  uint64_t seed = 0;  // the run's seed: random ops draw from it (kiln/ir/random.h)

  template <class A>
  const A& Attr() const {
    return attrs.Get<A>();
  }
  // Throws UserError prefixed with `<Op> "<node>": ` (bad input values, e.g. out-of-range ids).
  [[noreturn]] void Fail(const std::string& message) const;
};
using FReference = std::function<void(KernelCtx&)>;

using FNames = std::function<std::vector<std::string>(const Attrs&)>;

class GradCtx;
// Builds the gradient of one node: for each input, the entry holding d(loss)/d(input), or
// nullopt where the input has no gradient (labels, indices, auxiliary states). See grad.h.
using FGradient = std::function<std::vector<std::optional<Entry>>(GradCtx&)>;

// For ops linear in one weight input whose slices along `weight_axis` make the output channels
// along `out_axis` (FullyConnected, Convolution): a per-channel factor on the output can be
// folded into the weight and bias (simplify-inference folds BatchNorm this way).
struct ChannelScaling {
  int weight_input = 1;
  int weight_axis = 0;
  int bias_input = -1;  // -1: the op has no bias now
  int out_axis = 1;     // of the output, counted from 0
  Attrs with_bias;      // the same attributes with a bias input (bias_input is then 2)
};
using FChannelScaling = std::function<std::optional<ChannelScaling>(const Attrs&, int out_rank)>;

// The arithmetic an elementwise or broadcast binary op (or its scalar form) computes, for
// rewrites that fold constants into neighbours.
enum class ArithKind : uint8_t { kNone, kAdd, kMul };

// Everything kiln knows about one operator.
class OpDef {
 public:
  explicit OpDef(std::string name) : name_(std::move(name)) {}

  const std::string& name() const { return name_; }
  const std::vector<std::string>& aliases() const { return aliases_; }
  const std::string& description() const { return description_; }

  // Attributes.
  AttrCodec attrs;
  // Input and output names, given the attributes; their counts are the op's arities.
  std::vector<std::string> InputNames(const Attrs& a) const { return input_names_(a); }
  std::vector<std::string> OutputNames(const Attrs& a) const { return output_names_(a); }
  int NumInputs(const Attrs& a) const { return int(input_names_(a).size()); }
  int NumOutputs(const Attrs& a) const { return int(output_names_(a).size()); }
  // Outputs a Symbol shows (MXNet's NumVisibleOutputs): BatchNorm and Dropout compute more
  // outputs than they show.
  int NumVisibleOutputs(const Attrs& a) const {
    return visible_outputs_ ? visible_outputs_(a) : NumOutputs(a);
  }
  // Inputs that are auxiliary states (not arguments) which the op updates: BatchNorm's moving
  // statistics.
  std::vector<int> AuxInputs(const Attrs& a) const {
    return aux_inputs_ ? aux_inputs_(a) : std::vector<int>{};
  }
  // For ops with a variable number of inputs: the attribute that holds the count ("num_args").
  const std::string& var_inputs_attr() const { return var_inputs_attr_; }
  // Pairs (input, output) that may share storage.
  std::vector<std::pair<int, int>> InplacePairs(const Attrs& a) const {
    return inplace_ ? inplace_(a) : std::vector<std::pair<int, int>>{};
  }
  FusionPattern pattern() const { return pattern_; }
  const FInferShape& infer_shape() const { return infer_shape_; }
  const FInferType& infer_type() const { return infer_type_; }
  const FReference& reference() const { return reference_; }
  // Null for ops without a mathematical gradient (argmax, one_hot, ...).
  const FGradient& gradient() const { return gradient_; }
  // The op's inference form (simplify-inference): built with a GradCtx like a gradient, it
  // returns a replacement for each output (nullopt: none; the rewrite then applies only when
  // that output is unused). Null for ops that are the same in training and inference.
  const FGradient& inference_form() const { return inference_form_; }
  const FChannelScaling& channel_scaling() const { return channel_scaling_; }
  // The op's tensor-expression definition for code generation; null when it has none yet.
  const FCompute& compute() const { return compute_; }
  ArithKind arith() const { return arith_; }
  // Whether the op's outputs depend on a random draw (Dropout, rrelu): such nodes are never
  // merged (cse) nor evaluated at compile time (constant-fold).
  bool IsRandom(const Attrs& a) const { return random_ && random_(a); }
  // Whether output 0 equals input 0 for these attributes (x * 1, x + 0): simplify removes it.
  bool IsIdentity(const Attrs& a) const { return identity_ && identity_(a); }

  // --- Registration (builder style). ---
  OpDef& Describe(std::string text) {
    description_ = std::move(text);
    return *this;
  }
  OpDef& Alias(std::string name) {
    aliases_.push_back(std::move(name));
    return *this;
  }
  template <class A>
  OpDef& SetAttrs() {
    attrs = AttrCodec::For<A>();
    return *this;
  }
  OpDef& Inputs(std::vector<std::string> names) {
    input_names_ = [names](const Attrs&) { return names; };
    return *this;
  }
  OpDef& Inputs(FNames f) {
    input_names_ = std::move(f);
    return *this;
  }
  // Inputs named arg0, arg1, ... counted by the integer attribute `count_attr`.
  OpDef& VariadicInputs(std::string count_attr, std::function<int(const Attrs&)> count);
  OpDef& Outputs(std::vector<std::string> names) {
    output_names_ = [names](const Attrs&) { return names; };
    return *this;
  }
  OpDef& Outputs(FNames f) {
    output_names_ = std::move(f);
    return *this;
  }
  OpDef& VisibleOutputs(std::function<int(const Attrs&)> f) {
    visible_outputs_ = std::move(f);
    return *this;
  }
  OpDef& AuxInputs(std::function<std::vector<int>(const Attrs&)> f) {
    aux_inputs_ = std::move(f);
    return *this;
  }
  OpDef& Inplace(std::function<std::vector<std::pair<int, int>>(const Attrs&)> f) {
    inplace_ = std::move(f);
    return *this;
  }
  OpDef& Pattern(FusionPattern p) {
    pattern_ = p;
    return *this;
  }
  OpDef& InferShape(FInferShape f) {
    infer_shape_ = std::move(f);
    return *this;
  }
  OpDef& InferType(FInferType f) {
    infer_type_ = std::move(f);
    return *this;
  }
  OpDef& Gradient(FGradient f) {
    gradient_ = std::move(f);
    return *this;
  }
  OpDef& Reference(FReference f) {
    reference_ = std::move(f);
    return *this;
  }
  OpDef& InferenceForm(FGradient f) {
    inference_form_ = std::move(f);
    return *this;
  }
  OpDef& ChannelScalable(FChannelScaling f) {
    channel_scaling_ = std::move(f);
    return *this;
  }
  OpDef& Compute(FCompute f) {
    compute_ = std::move(f);
    return *this;
  }
  OpDef& Arith(ArithKind k) {
    arith_ = k;
    return *this;
  }
  OpDef& Random(std::function<bool(const Attrs&)> f) {
    random_ = std::move(f);
    return *this;
  }
  OpDef& IdentityWhen(std::function<bool(const Attrs&)> f) {
    identity_ = std::move(f);
    return *this;
  }

 private:
  std::string name_;
  std::vector<std::string> aliases_;
  std::string description_;
  FNames input_names_ = [](const Attrs&) { return std::vector<std::string>{"data"}; };
  FNames output_names_ = [](const Attrs&) { return std::vector<std::string>{"output"}; };
  std::function<int(const Attrs&)> visible_outputs_;
  std::function<std::vector<int>(const Attrs&)> aux_inputs_;
  std::string var_inputs_attr_;
  std::function<std::vector<std::pair<int, int>>(const Attrs&)> inplace_;
  FusionPattern pattern_ = FusionPattern::kOpaque;
  FInferShape infer_shape_;
  FInferType infer_type_;
  FReference reference_;
  FGradient gradient_;
  FGradient inference_form_;
  FChannelScaling channel_scaling_;
  FCompute compute_;
  ArithKind arith_ = ArithKind::kNone;
  std::function<bool(const Attrs&)> random_;
  std::function<bool(const Attrs&)> identity_;
};

class OpRegistry {
 public:
  // Every kiln op, registered on first use (thread-safe).
  static const OpRegistry& Global();

  // The op with this name or alias, or nullptr.
  const OpDef* Find(std::string_view name) const;
  // The op with this name or alias; UserError `unknown op "X"` otherwise.
  const OpDef& Get(std::string_view name) const;
  // All ops, sorted by name.
  std::vector<const OpDef*> List() const;

  // Adds an op; InternalError if the name or an alias is taken. Aliases are indexed by Finish.
  OpDef& Register(std::string name);
  // Indexes aliases and checks that every op has its rules.
  void Finish();

 private:
  std::deque<OpDef> ops_;
  std::unordered_map<std::string, const OpDef*> index_;
};

// Ready-made rules shared by many ops.
// Every input and output has the same shape (elementwise ops).
void SameShapeInfer(ShapeInferCtx& ctx);
// Every input and output has the same dtype.
void SameTypeInfer(TypeInferCtx& ctx);
// Input 0 may share storage with output 0.
std::vector<std::pair<int, int>> InplaceIdentity(const Attrs&);

}  // namespace kiln
