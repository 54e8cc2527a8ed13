// kiln/frontend/ops.h - one typed function per op, for building symbols in natural C++.
//
//   Symbol data = Symbol::Variable("data");
//   Symbol conv = Convolution(data, 64, {3, 3}, "conv1", {{"stride", "(2,2)"}, {"pad", "(1,1)"}});
//   Symbol bn = BatchNorm(conv, "bn1", {{"fix_gamma", "False"}});
//   Symbol act = Activation(bn, "relu", "relu1");
//   Symbol pool = Pooling(act, {2, 2}, "max", "pool1", {{"stride", "(2,2)"}});
//   Symbol out = SoftmaxOutput(FullyConnected(Flatten(pool), 10, "fc"), "softmax");
//
// Conventions (why: the op's attribute struct in ir/src/ops is the one place that knows an
// attribute's type, default and valid range; repeating every optional attribute here as a C++
// parameter would copy those defaults into a second place that drifts):
// - The attributes MXNet requires are typed parameters, in MXNet's order (num_hidden;
//   num_filter and kernel; kernel and pool_type; ...). Tuples are `Dims` ({3, 3}).
// - Then `name` ("" asks for an automatic name such as fullyconnected0).
// - Then `extra`: every optional attribute, by MXNet's name and string form, plus MXNet's
//   `__key__` attributes. They are checked when the symbol is built: an unknown name or a bad
//   value is a UserError naming the node, the op and the attributes it has, so a typo fails at
//   once, not at run time. Giving an attribute both as a parameter and in `extra` is an error.
// - Inputs the function does not take (weights, biases, labels, BatchNorm's gamma, beta and
//   moving statistics) become variables `<name>_<input>`, as in MXNet. To pass one explicitly,
//   use the generic form: Symbol::Create("FullyConnected", {data, {"weight", w}},
//   {{"num_hidden", "10"}}, "fc").
// - Names are MXNet's, including the lower-case and underscore ones (transpose, _maximum,
//   _plus_scalar), so MXNet code translates line by line. They live in namespace kiln and are
//   found by argument-dependent lookup from a Symbol argument.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/frontend/symbol.h"

namespace kiln {

using Dims = std::vector<int64_t>;
// Tuple elements that may be None (slice's begin and end).
using OptDims = std::vector<std::optional<int64_t>>;

// --- Layers ---
// extra: no_bias, flatten.
Symbol FullyConnected(const Symbol& data, int64_t num_hidden, const std::string& name = "",
                      const AttrMap& extra = {});
// extra: stride, dilate, pad, num_group, no_bias, layout.
Symbol Convolution(const Symbol& data, int64_t num_filter, const Dims& kernel,
                   const std::string& name = "", const AttrMap& extra = {});
// extra: stride, dilate, pad, adj, target_shape, num_group, no_bias, layout.
Symbol Deconvolution(const Symbol& data, int64_t num_filter, const Dims& kernel,
                     const std::string& name = "", const AttrMap& extra = {});
// pool_type: "max", "avg", "sum". An empty kernel leaves it unset (with global_pool).
// extra: stride, pad, global_pool, pooling_convention, count_include_pad.
Symbol Pooling(const Symbol& data, const Dims& kernel, const std::string& pool_type,
               const std::string& name = "", const AttrMap& extra = {});
// act_type: "relu", "sigmoid", "tanh", "softrelu", "softsign".
Symbol Activation(const Symbol& data, const std::string& act_type, const std::string& name = "",
                  const AttrMap& extra = {});
// act_type: "leaky", "elu", "prelu" (takes a gamma input), ...; extra: slope.
Symbol LeakyReLU(const Symbol& data, const std::string& act_type, const std::string& name = "",
                 const AttrMap& extra = {});
// Inputs gamma, beta; auxiliary states moving_mean, moving_var.
// extra: eps, momentum, fix_gamma, use_global_stats, output_mean_var, axis.
Symbol BatchNorm(const Symbol& data, const std::string& name = "", const AttrMap& extra = {});
// Inputs gamma, beta. extra: axis, eps, output_mean_var.
Symbol LayerNorm(const Symbol& data, const std::string& name = "", const AttrMap& extra = {});
// extra: mode, axes.
Symbol Dropout(const Symbol& data, double p, const std::string& name = "",
               const AttrMap& extra = {});
// Input weight (input_dim, output_dim). extra: dtype.
Symbol Embedding(const Symbol& data, int64_t input_dim, int64_t output_dim,
                 const std::string& name = "", const AttrMap& extra = {});

// --- Losses (label inputs become `<name>_label` unless given) ---
// extra: grad_scale, ignore_label, use_ignore, multi_output, normalization, ...
Symbol SoftmaxOutput(const Symbol& data, const std::string& name = "", const AttrMap& extra = {});
Symbol SoftmaxOutput(const Symbol& data, const Symbol& label, const std::string& name = "",
                     const AttrMap& extra = {});
// extra: grad_scale.
Symbol LinearRegressionOutput(const Symbol& data, const std::string& name = "",
                              const AttrMap& extra = {});
Symbol LinearRegressionOutput(const Symbol& data, const Symbol& label, const std::string& name = "",
                              const AttrMap& extra = {});
// extra: grad_scale, normalization, valid_thresh.
Symbol MakeLoss(const Symbol& data, const std::string& name = "", const AttrMap& extra = {});

// --- Shapes and layout ---
Symbol Flatten(const Symbol& data, const std::string& name = "");
// MXNet's special values 0, -1, -2, -3, -4 apply. extra: reverse.
Symbol Reshape(const Symbol& data, const Dims& shape, const std::string& name = "",
               const AttrMap& extra = {});
// Empty axes: reverse the axes.
Symbol transpose(const Symbol& data, const Dims& axes = {}, const std::string& name = "");
Symbol expand_dims(const Symbol& data, int64_t axis, const std::string& name = "");
// Empty axis: every axis of extent 1.
Symbol squeeze(const Symbol& data, const Dims& axis = {}, const std::string& name = "");
// num_args is set from data.size().
Symbol Concat(const std::vector<Symbol>& data, int64_t dim = 1, const std::string& name = "");
// A symbol with num_outputs outputs. extra: axis, squeeze_axis.
Symbol SliceChannel(const Symbol& data, int64_t num_outputs, const std::string& name = "",
                    const AttrMap& extra = {});
// std::nullopt elements are MXNet's None. extra: step.
Symbol slice(const Symbol& data, const OptDims& begin, const OptDims& end,
             const std::string& name = "", const AttrMap& extra = {});
Symbol slice_axis(const Symbol& data, int64_t axis, int64_t begin, std::optional<int64_t> end,
                  const std::string& name = "");
Symbol broadcast_to(const Symbol& data, const Dims& shape, const std::string& name = "");

// --- Elementwise binary (same shapes) and broadcasting binary ---
Symbol elemwise_add(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");
Symbol elemwise_sub(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");
Symbol elemwise_mul(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");
Symbol elemwise_div(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");
Symbol _maximum(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");
Symbol _minimum(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");
Symbol _power(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");
Symbol broadcast_add(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");
Symbol broadcast_sub(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");
Symbol broadcast_mul(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");
Symbol broadcast_div(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");
Symbol broadcast_maximum(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");
Symbol broadcast_minimum(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");
Symbol broadcast_power(const Symbol& lhs, const Symbol& rhs, const std::string& name = "");

// --- With a scalar: data op scalar, or scalar op data for the _r forms ---
Symbol _plus_scalar(const Symbol& data, double scalar, const std::string& name = "");
Symbol _minus_scalar(const Symbol& data, double scalar, const std::string& name = "");
Symbol _rminus_scalar(const Symbol& data, double scalar, const std::string& name = "");
Symbol _mul_scalar(const Symbol& data, double scalar, const std::string& name = "");
Symbol _div_scalar(const Symbol& data, double scalar, const std::string& name = "");
Symbol _rdiv_scalar(const Symbol& data, double scalar, const std::string& name = "");
Symbol _maximum_scalar(const Symbol& data, double scalar, const std::string& name = "");
Symbol _minimum_scalar(const Symbol& data, double scalar, const std::string& name = "");
Symbol _power_scalar(const Symbol& data, double scalar, const std::string& name = "");
Symbol _rpower_scalar(const Symbol& data, double scalar, const std::string& name = "");

// --- Elementwise unary ---
Symbol exp(const Symbol& data, const std::string& name = "");
Symbol log(const Symbol& data, const std::string& name = "");
Symbol sqrt(const Symbol& data, const std::string& name = "");
Symbol rsqrt(const Symbol& data, const std::string& name = "");
Symbol square(const Symbol& data, const std::string& name = "");
Symbol abs(const Symbol& data, const std::string& name = "");
Symbol negative(const Symbol& data, const std::string& name = "");
Symbol sigmoid(const Symbol& data, const std::string& name = "");
Symbol tanh(const Symbol& data, const std::string& name = "");
Symbol relu(const Symbol& data, const std::string& name = "");
Symbol erf(const Symbol& data, const std::string& name = "");
// a_min <= x <= a_max.
Symbol clip(const Symbol& data, double a_min, double a_max, const std::string& name = "");

// --- Reductions: empty axis reduces every axis. extra: exclude ---
Symbol sum(const Symbol& data, const Dims& axis = {}, bool keepdims = false,
           const std::string& name = "", const AttrMap& extra = {});
Symbol mean(const Symbol& data, const Dims& axis = {}, bool keepdims = false,
            const std::string& name = "", const AttrMap& extra = {});
Symbol max(const Symbol& data, const Dims& axis = {}, bool keepdims = false,
           const std::string& name = "", const AttrMap& extra = {});
Symbol min(const Symbol& data, const Dims& axis = {}, bool keepdims = false,
           const std::string& name = "", const AttrMap& extra = {});
Symbol prod(const Symbol& data, const Dims& axis = {}, bool keepdims = false,
            const std::string& name = "", const AttrMap& extra = {});
// No axis: the index into the flattened data.
Symbol argmax(const Symbol& data, std::optional<int64_t> axis = std::nullopt, bool keepdims = false,
              const std::string& name = "");

// --- Matrix products. extra: transpose_a, transpose_b ---
Symbol dot(const Symbol& lhs, const Symbol& rhs, const std::string& name = "",
           const AttrMap& extra = {});
Symbol batch_dot(const Symbol& lhs, const Symbol& rhs, const std::string& name = "",
                 const AttrMap& extra = {});

// --- Softmax along an axis. extra: temperature ---
Symbol softmax(const Symbol& data, int64_t axis = -1, const std::string& name = "",
               const AttrMap& extra = {});
Symbol log_softmax(const Symbol& data, int64_t axis = -1, const std::string& name = "",
                   const AttrMap& extra = {});

// --- Selection, conversion, constants ---
Symbol where(const Symbol& condition, const Symbol& x, const Symbol& y,
             const std::string& name = "");
Symbol Cast(const Symbol& data, DType dtype, const std::string& name = "");
Symbol zeros_like(const Symbol& data, const std::string& name = "");
Symbol ones_like(const Symbol& data, const std::string& name = "");
// extra: on_value, off_value, dtype.
Symbol one_hot(const Symbol& indices, int64_t depth, const std::string& name = "",
               const AttrMap& extra = {});

}  // namespace kiln
