// tensor_util.h - helpers shared by the tensor op files (unary, binary, reduce, matmul, shape,
// slice, like): value conversion with defined results, index walks for broadcasting and strided
// copies, axis lists, and short forms for emitting nodes in gradient rules.
//
// Reference kernels here favour being obviously correct over speed: they walk every output
// index and compute the input offsets it reads, in the op's accumulation type.
#pragma once

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/ir/compute.h"
#include "kiln/ir/grad.h"
#include "ops/op_util.h"

namespace kiln::ops {

// The dtype names of kAllDTypes, for enum attributes (Cast's and one_hot's `dtype`).
std::vector<std::pair<std::string, DType>> DTypeEnumNames();

// Converts a value between element types with a defined result for every input:
// - to bool: nonzero is true (NaN is true, as in C++ and NumPy);
// - integer to integer: modulo 2^bits (C++20 and NumPy wrap the same way);
// - floating to integer: truncation toward zero, saturating at the type's limits, NaN -> 0
//   (C++ leaves these undefined; MXNet's static_cast inherits that);
// - to floating: round to nearest (float16/bfloat16 through float).
template <class D, class S>
D ConvertValue(S s) {
  if constexpr (std::is_same_v<D, bool>) {
    if constexpr (std::is_integral_v<S>)
      return s != 0;
    else
      return static_cast<double>(s) != 0.0;  // NaN != 0
  } else if constexpr (std::is_integral_v<S>) {
    if constexpr (std::is_integral_v<D>)
      return static_cast<D>(static_cast<int64_t>(s));
    else
      return static_cast<D>(static_cast<float>(static_cast<double>(s)));
  } else {
    double d;
    if constexpr (std::is_same_v<S, double>)
      d = s;
    else
      d = static_cast<double>(static_cast<float>(s));
    if constexpr (std::is_integral_v<D>) {
      if (std::isnan(d)) return D(0);
      d = std::trunc(d);
      // double(max) may round up (2^63 for int64), so >= catches every overflow.
      if (d >= static_cast<double>(std::numeric_limits<D>::max()))
        return std::numeric_limits<D>::max();
      if (d <= static_cast<double>(std::numeric_limits<D>::lowest()))
        return std::numeric_limits<D>::lowest();
      return static_cast<D>(d);
    } else if constexpr (std::is_same_v<D, double>) {
      return d;
    } else {
      return static_cast<D>(static_cast<float>(d));
    }
  }
}

// Reads an element into its accumulation type (double for floating types, int64 otherwise).
template <class T>
AccType<T> ToAcc(T v) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<int64_t>(v);
  else if constexpr (std::is_same_v<T, double>)
    return v;
  else
    return static_cast<double>(static_cast<float>(v));
}

// Wrapping integer arithmetic (two's complement), so that overflow of int64 is defined.
inline int64_t WrapAdd(int64_t a, int64_t b) {
  return int64_t(uint64_t(a) + uint64_t(b));
}
inline int64_t WrapSub(int64_t a, int64_t b) {
  return int64_t(uint64_t(a) - uint64_t(b));
}
inline int64_t WrapMul(int64_t a, int64_t b) {
  return int64_t(uint64_t(a) * uint64_t(b));
}

// --- Type rules. ---
// SameTypeInfer, then the common dtype must not be bool (negative: NumPy rejects -bool).
void NonBoolTypeInfer(TypeInferCtx& ctx);

// --- Shape helpers. ---
// Normalises each axis of `axes` from [-ndim, ndim) to [0, ndim); fails naming `attr` on an
// axis out of range or given twice. Keeps the given order.
std::vector<int> NormalizeAxisList(const ShapeInferCtx& ctx, const std::vector<int64_t>& axes,
                                   int ndim, const std::string& attr);
// Product of dims[begin, end); kUnknownDim if any of them is unknown.
int64_t DimProduct(const std::vector<int64_t>& dims, size_t begin, size_t end);
// "(2, 3)" for a list of dims (kUnknownDim prints as "?").
std::string DimsString(const std::vector<int64_t>& dims);

// --- Index walks for kernels. ---
// Strides with which an input of shape `in`, right-aligned against an output of rank
// `out_ndim` (NumPy broadcasting), is read: 0 along axes where the input has extent 1 or
// no axis at all.
std::vector<int64_t> BroadcastStrides(const std::vector<int64_t>& in, int out_ndim);

// Visits every index of `shape` in row-major order as f(flat, offsets), where offsets[k] is
// sum_d index[d] * strides[k][d]. Each strides[k] has shape.size() entries.
template <size_t N, class F>
void ForEachIndex(const std::vector<int64_t>& shape,
                  const std::array<std::vector<int64_t>, N>& strides, F&& f) {
  int64_t total = NumElements(shape);
  if (total == 0) return;
  const int nd = int(shape.size());
  std::vector<int64_t> index(size_t(nd), 0);
  std::array<int64_t, N> off{};
  for (int64_t flat = 0; flat < total; ++flat) {
    f(flat, off);
    // Odometer increment: bump the last axis, carry into earlier ones.
    for (int d = nd - 1; d >= 0; --d) {
      ++index[size_t(d)];
      for (size_t k = 0; k < N; ++k) off[k] += strides[k][size_t(d)];
      if (index[size_t(d)] < shape[size_t(d)]) break;
      for (size_t k = 0; k < N; ++k) off[k] -= strides[k][size_t(d)] * shape[size_t(d)];
      index[size_t(d)] = 0;
    }
  }
}

// out[flat] = in[base + offset] for every output index, where the offset walks `in_strides`
// (in elements) over the output's shape. Copies bytes, so it serves every dtype.
void StridedCopy(const Tensor& in, const Tensor& out, int64_t base,
                 const std::vector<int64_t>& in_strides);

// Copies all of `in` into `out` (same number of elements), unless they share storage.
void CopyAllBytes(const Tensor& in, const Tensor& out);

// --- Gradient rules (kiln/ir/grad.h): one emitted node each. ---
// op(x) for an attribute-less one-input op ("negative", "sign", "exp").
Entry EmitUnary(GradCtx& g, std::string_view op, Entry x);
// op(a, b) for an attribute-less two-input op ("elemwise_mul", "broadcast_div").
Entry EmitBinary(GradCtx& g, std::string_view op, Entry a, Entry b);
// A scalar op ("_mul_scalar", "_power_scalar") with `scalar` printed exactly.
Entry EmitScalar(GradCtx& g, std::string_view op, Entry x, double scalar);

// --- Compute definitions (kiln/ir/compute.h; tensor_util_compute.cpp). ---
// Ops that only move elements (reshapes, transposes, slices, Concat, Pad, ...) have
// definitions for every dtype: their expressions only read, select and store, which the kernel
// IR does for every storage type, so the result is the reference's, bit for bit. Ops that
// compute cover the dtypes for which the kernel IR's arithmetic gives the reference's result.

// `value` converted to dtype `t` as the reference kernels convert attribute values
// (ConvertValue): float32 rounds; integers truncate and saturate; bool is value != 0.
// float16/bfloat16/int8/uint8 constants are built in float32/int32 and cast (exactly).
TExpr ConstOf(double value, DType t);
// x in the type the kernel IR computes with: int8, uint8 and bool widen to int32, float16 and
// bfloat16 to float32 (exactly); float32, float64, int32 and int64 stay.
TExpr Widen(TExpr x);
// x converted to dtype `to` with ConvertValue's rules, step for step (so integers reach a
// floating type through double and then float, as ConvertValue does).
TExpr ConvertExpr(TExpr x, DType to);
// int32 or int64 (the integer types the kernel IR computes on).
bool IsComputeInt(DType t);
// x != 0 (NaN is nonzero), as a bool; x of any dtype.
TExpr NonZero(TExpr x);
// x != x (true for NaN only); x float32 or float64.
TExpr IsNan(TExpr x);
// max(lo, min(hi, i)) on an int64 index; lo <= hi.
TExpr ClampIndex(TExpr i, int64_t lo, int64_t hi);
// An index of any numeric dtype as the reference reads it (Tensor::At: a double, then
// truncated toward zero, non-finite values 0): an int64 expression.
TExpr IndexValue(TExpr x);
// The input index, over input dims `in`, of the element at the same row-major position as
// output index `out_idx` over output dims `out` (both with the same number of elements).
// Size-1 axes are read at 0; runs of axes with equal products map without division.
std::vector<TExpr> ReshapeIndex(const std::vector<int64_t>& in, const std::vector<int64_t>& out,
                                const std::vector<TExpr>& out_idx);
// out = in(0)'s elements in row-major order (Flatten, Reshape, expand_dims, squeeze, ...).
FCompute ReshapeCompute();

}  // namespace kiln::ops
