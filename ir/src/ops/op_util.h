// op_util.h - helpers shared by the op definition files (internal to ir/).
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "kiln/ir/op.h"
#include "kiln/runtime/tensor.h"

namespace kiln::ops {

// --- Type rules. ---
// SameTypeInfer, then the common dtype must be floating point.
void FloatTypeInfer(TypeInferCtx& ctx);
// Fails unless `t` is unknown or floating point; `what` names the operand.
void RequireFloat(const TypeInferCtx& ctx, DType t, const std::string& what);

// --- Shape rules. ---
// Fails unless `s` has rank `ndim` (when its rank is known).
void RequireRank(const ShapeInferCtx& ctx, const Shape& s, int ndim, const std::string& what);
// Normalises an axis in [-ndim, ndim) to [0, ndim); fails with the attribute name otherwise.
int NormalizeAxis(const ShapeInferCtx& ctx, int64_t axis, int ndim, const std::string& attr);

// --- Kernels. ---
// Row-major strides of a shape.
std::vector<int64_t> Strides(const std::vector<int64_t>& shape);

// out[i] = f(in[i]) for every element, computed in AccType<T> for floating T.
template <class T, class F>
void MapUnary(const Tensor& in, const Tensor& out, F f) {
  const T* x = in.data<T>();
  T* y = out.data<T>();
  int64_t n = in.size();
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(f(static_cast<AccType<T>>(x[i])));
}

}  // namespace kiln::ops
