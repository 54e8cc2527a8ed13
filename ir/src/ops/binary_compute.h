// binary_compute.h - the compute definitions of binary.cpp's ops (binary_compute.cpp), kept
// apart so that binary.cpp stays one screenful of rules per op.
#pragma once

#include <functional>

#include "kiln/ir/compute.h"

namespace kiln::ops {

enum class BinOp { kAdd, kSub, kMul, kDiv, kMax, kMin, kPow };

// The `scalar` attribute of a scalar op's node.
using ScalarOf = std::function<double(const ComputeCtx&)>;

// lhs OP rhs, each read with broadcasting (the identity for same-shaped operands).
FCompute BinaryCompute(BinOp op);
// data OP scalar (scalar OP data with `reversed`), the scalar converted to the data's dtype.
FCompute ScalarCompute(BinOp op, bool reversed, ScalarOf scalar);
// _backward_maximum / _backward_minimum / _backward_power: (dy, lhs, rhs) -> (d lhs, d rhs),
// when lhs and rhs have dy's shape (with broadcasting the gradients are sums: no definition).
FCompute BinaryBackwardCompute(BinOp op);
// _backward_maximum_scalar / _backward_minimum_scalar: (dy, data) -> dy where data >= scalar
// (<= for minimum), else 0.
FCompute ExtremumScalarBackwardCompute(bool max, ScalarOf scalar);
// where(condition, x, y) and add_n(x0, x1, ...).
FCompute WhereCompute();
FCompute AddNCompute();

}  // namespace kiln::ops
