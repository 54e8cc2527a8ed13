// nn_util.h - helpers shared by the neural-network op files (nn_*.cpp; internal to ir/).
//
// Spatial ops (Convolution, Deconvolution, Pooling) take 1, 2 or 3 spatial axes. Their
// reference kernels view every case as 3-D by prepending spatial axes of extent 1 (kernel 1,
// stride 1, pad 0, dilate 1), so one loop nest serves NCW, NCHW and NCDHW.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "ops/op_util.h"

namespace kiln::ops {

// The spatial tuple `v` (stride, dilate, pad, ...), or `n` copies of `def` when `v` is empty:
// MXNet's default for an omitted tuple.
std::vector<int64_t> TupleOr(const std::vector<int64_t>& v, size_t n, int64_t def);

// "" when `v` is empty or has `n` elements; otherwise an error naming `name`.
std::string CheckTupleLength(const char* name, const std::vector<int64_t>& v, size_t n);

// MXNet's layout names for data with `spatial` spatial axes: "NCW", "NCHW", "NCDHW".
std::string ChannelFirstLayout(size_t spatial);
// Whether `layout` (a MXNet layout name) puts the channel axis last ("NWC", "NHWC", "NDHWC").
bool IsChannelLast(const std::string& layout);
// "" if `layout` (when given) is a layout of data with `spatial` spatial axes.
std::string CheckLayout(const std::optional<std::string>& layout, size_t spatial);

// Extent of a dilated kernel: dilate * (kernel - 1) + 1.
inline int64_t DilatedKernel(int64_t k, int64_t d) {
  return d * (k - 1) + 1;
}

// A spatial op's geometry, widened to 3 spatial axes (leading axes of extent 1).
struct Window3 {
  std::array<int64_t, 3> in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1}, stride{1, 1, 1}, pad{0, 0, 0},
      dilate{1, 1, 1};
  int64_t InSize() const { return in[0] * in[1] * in[2]; }
  int64_t OutSize() const { return out[0] * out[1] * out[2]; }
  int64_t KernelSize() const { return kernel[0] * kernel[1] * kernel[2]; }
};
// Builds a Window3 from the trailing `kernel.size()` axes of `in_shape` and `out_shape`.
Window3 MakeWindow3(const std::vector<int64_t>& in_shape, const std::vector<int64_t>& out_shape,
                    const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                    const std::vector<int64_t>& pad, const std::vector<int64_t>& dilate);

// Input 0 ("data") and output `out` have one shape: merges what each knows into both and
// returns it; a conflict fails naming both shapes.
Shape UnifyDataAndOutput(ShapeInferCtx& ctx, int out = 0);

// Runs forward op `fwd_op`'s shape rule on a view of a backward node, so that backward ops infer
// both ways exactly as their forward op does: forward input i is this node's input fwd_in[i],
// forward output k its input fwd_out[k] (-1: not among this node's inputs, left unknown).
// What the rule learns is written back. Errors name the forward op and this node.
void InferShapesAsForward(ShapeInferCtx& ctx, std::string_view fwd_op,
                          const std::vector<int>& fwd_in, const std::vector<int>& fwd_out);

// --- Kernels. ---
// Every element of `t` (any dtype) as a double: for small parameter vectors, labels, indices.
std::vector<double> ReadDoubles(const Tensor& t);
// Stores `v` into `t` (any dtype), converting each value as static_cast does.
void WriteDoubles(const Tensor& t, const std::vector<double>& v);

// softmax (or log_softmax) of x / temperature along the middle axis of an (outer, m, inner)
// view, stable: the row maximum is subtracted before exponentiating. With `lengths` (outer *
// inner values), row r uses its first lengths[r] elements and outputs 0 elsewhere.
template <class TI, class TO>
void StableSoftmax(const TI* x, TO* y, int64_t outer, int64_t m, int64_t inner, bool log,
                   double temperature, const std::vector<double>* lengths = nullptr) {
  std::vector<double> row(static_cast<size_t>(m));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) { return (o * m + j) * inner + i; };
      int64_t len = m;
      if (lengths) len = std::clamp<int64_t>(int64_t((*lengths)[size_t(o * inner + i)]), 0, m);
      double mx = -INFINITY;
      for (int64_t j = 0; j < len; ++j) {
        row[size_t(j)] = double(x[at(j)]) / temperature;
        mx = std::max(mx, row[size_t(j)]);
      }
      double sum = 0;
      for (int64_t j = 0; j < len; ++j) sum += std::exp(row[size_t(j)] - mx);
      for (int64_t j = 0; j < m; ++j) {
        double v = 0;
        if (j < len)
          v = log ? row[size_t(j)] - mx - std::log(sum) : std::exp(row[size_t(j)] - mx) / sum;
        y[at(j)] = static_cast<TO>(v);
      }
    }
}

// Fails unless `t` is unknown or a numeric type (any but bool); `what` names the operand.
void RequireNumeric(const TypeInferCtx& ctx, DType t, const std::string& what);

}  // namespace kiln::ops
