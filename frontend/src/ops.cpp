// ops.cpp - the typed op functions of ops.h, each one call of Symbol::Create.
#include "kiln/frontend/ops.h"

namespace kiln {

namespace {

// The op's attributes: the typed parameters, then `extra`; a key in both is a UserError (one of
// the two would be silently ignored otherwise).
AttrMap Attrs2(const char* op, const std::string& name, AttrMap typed, const AttrMap& extra) {
  for (const auto& [key, value] : extra) {
    auto [it, fresh] = typed.emplace(key, value);
    if (!fresh)
      throw UserError(StrCat(op, " \"", name, "\": attribute ", key,
                             " is given both as a parameter and in the extra attributes"));
  }
  return typed;
}

Symbol Make(const char* op, const std::vector<SymbolInput>& inputs, const std::string& name,
            AttrMap typed = {}, const AttrMap& extra = {}) {
  return Symbol::Create(op, inputs, Attrs2(op, name, std::move(typed), extra), name);
}

std::string Tuple(const Dims& d) {
  return attr_text::Print(d);
}

std::string Tuple(const OptDims& d) {
  std::string out = "(";
  for (size_t i = 0; i < d.size(); ++i)
    out += (i ? ", " : "") + (d[i] ? attr_text::Print(*d[i]) : std::string("None"));
  return out + (d.size() == 1 ? ",)" : ")");
}

std::string Num(double v) {
  return attr_text::Print(v);
}
std::string Num(int64_t v) {
  return attr_text::Print(v);
}

}  // namespace

// --- Layers ---

Symbol FullyConnected(const Symbol& data, int64_t num_hidden, const std::string& name,
                      const AttrMap& extra) {
  return Make("FullyConnected", {data}, name, {{"num_hidden", Num(num_hidden)}}, extra);
}

Symbol Convolution(const Symbol& data, int64_t num_filter, const Dims& kernel,
                   const std::string& name, const AttrMap& extra) {
  return Make("Convolution", {data}, name,
              {{"num_filter", Num(num_filter)}, {"kernel", Tuple(kernel)}}, extra);
}

Symbol Deconvolution(const Symbol& data, int64_t num_filter, const Dims& kernel,
                     const std::string& name, const AttrMap& extra) {
  return Make("Deconvolution", {data}, name,
              {{"num_filter", Num(num_filter)}, {"kernel", Tuple(kernel)}}, extra);
}

Symbol Pooling(const Symbol& data, const Dims& kernel, const std::string& pool_type,
               const std::string& name, const AttrMap& extra) {
  AttrMap typed{{"pool_type", pool_type}};
  if (!kernel.empty()) typed["kernel"] = Tuple(kernel);
  return Make("Pooling", {data}, name, std::move(typed), extra);
}

Symbol Activation(const Symbol& data, const std::string& act_type, const std::string& name,
                  const AttrMap& extra) {
  return Make("Activation", {data}, name, {{"act_type", act_type}}, extra);
}

Symbol LeakyReLU(const Symbol& data, const std::string& act_type, const std::string& name,
                 const AttrMap& extra) {
  return Make("LeakyReLU", {data}, name, {{"act_type", act_type}}, extra);
}

Symbol BatchNorm(const Symbol& data, const std::string& name, const AttrMap& extra) {
  return Make("BatchNorm", {data}, name, {}, extra);
}

Symbol LayerNorm(const Symbol& data, const std::string& name, const AttrMap& extra) {
  return Make("LayerNorm", {data}, name, {}, extra);
}

Symbol Dropout(const Symbol& data, double p, const std::string& name, const AttrMap& extra) {
  return Make("Dropout", {data}, name, {{"p", Num(p)}}, extra);
}

Symbol Embedding(const Symbol& data, int64_t input_dim, int64_t output_dim, const std::string& name,
                 const AttrMap& extra) {
  return Make("Embedding", {data}, name,
              {{"input_dim", Num(input_dim)}, {"output_dim", Num(output_dim)}}, extra);
}

// --- Losses ---

Symbol SoftmaxOutput(const Symbol& data, const std::string& name, const AttrMap& extra) {
  return Make("SoftmaxOutput", {data}, name, {}, extra);
}

Symbol SoftmaxOutput(const Symbol& data, const Symbol& label, const std::string& name,
                     const AttrMap& extra) {
  return Make("SoftmaxOutput", {data, label}, name, {}, extra);
}

Symbol LinearRegressionOutput(const Symbol& data, const std::string& name, const AttrMap& extra) {
  return Make("LinearRegressionOutput", {data}, name, {}, extra);
}

Symbol LinearRegressionOutput(const Symbol& data, const Symbol& label, const std::string& name,
                              const AttrMap& extra) {
  return Make("LinearRegressionOutput", {data, label}, name, {}, extra);
}

Symbol MakeLoss(const Symbol& data, const std::string& name, const AttrMap& extra) {
  return Make("MakeLoss", {data}, name, {}, extra);
}

// --- Shapes and layout ---

Symbol Flatten(const Symbol& data, const std::string& name) {
  return Make("Flatten", {data}, name);
}

Symbol Reshape(const Symbol& data, const Dims& shape, const std::string& name,
               const AttrMap& extra) {
  return Make("Reshape", {data}, name, {{"shape", Tuple(shape)}}, extra);
}

Symbol transpose(const Symbol& data, const Dims& axes, const std::string& name) {
  AttrMap typed;
  if (!axes.empty()) typed["axes"] = Tuple(axes);
  return Make("transpose", {data}, name, std::move(typed));
}

Symbol expand_dims(const Symbol& data, int64_t axis, const std::string& name) {
  return Make("expand_dims", {data}, name, {{"axis", Num(axis)}});
}

Symbol squeeze(const Symbol& data, const Dims& axis, const std::string& name) {
  AttrMap typed;
  if (!axis.empty()) typed["axis"] = Tuple(axis);
  return Make("squeeze", {data}, name, std::move(typed));
}

Symbol Concat(const std::vector<Symbol>& data, int64_t dim, const std::string& name) {
  std::vector<SymbolInput> inputs(data.begin(), data.end());
  return Make("Concat", inputs, name, {{"dim", Num(dim)}});
}

Symbol SliceChannel(const Symbol& data, int64_t num_outputs, const std::string& name,
                    const AttrMap& extra) {
  return Make("SliceChannel", {data}, name, {{"num_outputs", Num(num_outputs)}}, extra);
}

Symbol slice(const Symbol& data, const OptDims& begin, const OptDims& end, const std::string& name,
             const AttrMap& extra) {
  return Make("slice", {data}, name, {{"begin", Tuple(begin)}, {"end", Tuple(end)}}, extra);
}

Symbol slice_axis(const Symbol& data, int64_t axis, int64_t begin, std::optional<int64_t> end,
                  const std::string& name) {
  return Make(
      "slice_axis", {data}, name,
      {{"axis", Num(axis)}, {"begin", Num(begin)}, {"end", end ? Num(*end) : std::string("None")}});
}

Symbol broadcast_to(const Symbol& data, const Dims& shape, const std::string& name) {
  return Make("broadcast_to", {data}, name, {{"shape", Tuple(shape)}});
}

// --- Binary ---

#define KILN_BINARY_OP(OP)                                                   \
  Symbol OP(const Symbol& lhs, const Symbol& rhs, const std::string& name) { \
    return Make(#OP, {lhs, rhs}, name);                                      \
  }
KILN_BINARY_OP(elemwise_add)
KILN_BINARY_OP(elemwise_sub)
KILN_BINARY_OP(elemwise_mul)
KILN_BINARY_OP(elemwise_div)
KILN_BINARY_OP(_maximum)
KILN_BINARY_OP(_minimum)
KILN_BINARY_OP(_power)
KILN_BINARY_OP(broadcast_add)
KILN_BINARY_OP(broadcast_sub)
KILN_BINARY_OP(broadcast_mul)
KILN_BINARY_OP(broadcast_div)
KILN_BINARY_OP(broadcast_maximum)
KILN_BINARY_OP(broadcast_minimum)
KILN_BINARY_OP(broadcast_power)
#undef KILN_BINARY_OP

#define KILN_SCALAR_OP(OP)                                                \
  Symbol OP(const Symbol& data, double scalar, const std::string& name) { \
    return Make(#OP, {data}, name, {{"scalar", Num(scalar)}});            \
  }
KILN_SCALAR_OP(_plus_scalar)
KILN_SCALAR_OP(_minus_scalar)
KILN_SCALAR_OP(_rminus_scalar)
KILN_SCALAR_OP(_mul_scalar)
KILN_SCALAR_OP(_div_scalar)
KILN_SCALAR_OP(_rdiv_scalar)
KILN_SCALAR_OP(_maximum_scalar)
KILN_SCALAR_OP(_minimum_scalar)
KILN_SCALAR_OP(_power_scalar)
KILN_SCALAR_OP(_rpower_scalar)
#undef KILN_SCALAR_OP

// --- Unary ---

#define KILN_UNARY_OP(OP)                                  \
  Symbol OP(const Symbol& data, const std::string& name) { \
    return Make(#OP, {data}, name);                        \
  }
KILN_UNARY_OP(exp)
KILN_UNARY_OP(log)
KILN_UNARY_OP(sqrt)
KILN_UNARY_OP(rsqrt)
KILN_UNARY_OP(square)
KILN_UNARY_OP(abs)
KILN_UNARY_OP(negative)
KILN_UNARY_OP(sigmoid)
KILN_UNARY_OP(tanh)
KILN_UNARY_OP(relu)
KILN_UNARY_OP(erf)
KILN_UNARY_OP(zeros_like)
KILN_UNARY_OP(ones_like)
#undef KILN_UNARY_OP

Symbol clip(const Symbol& data, double a_min, double a_max, const std::string& name) {
  return Make("clip", {data}, name, {{"a_min", Num(a_min)}, {"a_max", Num(a_max)}});
}

// --- Reductions ---

#define KILN_REDUCE_OP(OP)                                                                \
  Symbol OP(const Symbol& data, const Dims& axis, bool keepdims, const std::string& name, \
            const AttrMap& extra) {                                                       \
    AttrMap typed;                                                                        \
    if (!axis.empty()) typed["axis"] = Tuple(axis);                                       \
    if (keepdims) typed["keepdims"] = "True";                                             \
    return Make(#OP, {data}, name, std::move(typed), extra);                              \
  }
KILN_REDUCE_OP(sum)
KILN_REDUCE_OP(mean)
KILN_REDUCE_OP(max)
KILN_REDUCE_OP(min)
KILN_REDUCE_OP(prod)
#undef KILN_REDUCE_OP

Symbol argmax(const Symbol& data, std::optional<int64_t> axis, bool keepdims,
              const std::string& name) {
  AttrMap typed;
  if (axis) typed["axis"] = Num(*axis);
  if (keepdims) typed["keepdims"] = "True";
  return Make("argmax", {data}, name, std::move(typed));
}

// --- Matrix products ---

Symbol dot(const Symbol& lhs, const Symbol& rhs, const std::string& name, const AttrMap& extra) {
  return Make("dot", {lhs, rhs}, name, {}, extra);
}

Symbol batch_dot(const Symbol& lhs, const Symbol& rhs, const std::string& name,
                 const AttrMap& extra) {
  return Make("batch_dot", {lhs, rhs}, name, {}, extra);
}

// --- Softmax ---

Symbol softmax(const Symbol& data, int64_t axis, const std::string& name, const AttrMap& extra) {
  return Make("softmax", {data}, name, {{"axis", Num(axis)}}, extra);
}

Symbol log_softmax(const Symbol& data, int64_t axis, const std::string& name,
                   const AttrMap& extra) {
  return Make("log_softmax", {data}, name, {{"axis", Num(axis)}}, extra);
}

// --- Selection, conversion, constants ---

Symbol where(const Symbol& condition, const Symbol& x, const Symbol& y, const std::string& name) {
  return Make("where", {condition, x, y}, name);
}

Symbol Cast(const Symbol& data, DType dtype, const std::string& name) {
  return Make("Cast", {data}, name, {{"dtype", std::string(DTypeName(dtype))}});
}

Symbol one_hot(const Symbol& indices, int64_t depth, const std::string& name,
               const AttrMap& extra) {
  return Make("one_hot", {indices}, name, {{"depth", Num(depth)}}, extra);
}

}  // namespace kiln
