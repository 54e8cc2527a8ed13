// Vectorised math functions for the LLVM backend: exp, log, tanh, sigmoid, erf, expm1, log1p,
// sin, cos, tan, asin, acos, atan.
//
// Each function is emitted once per (function, type) into the module as an internal,
// always-inlined LLVM function over float or <N x float>, built from a range reduction and a
// polynomial, branch-free (selects), so that it vectorises with the loop that calls it. The
// float64 forms and pow call the C library lane by lane (correct, not yet fast). Accuracy and
// special values are stated in docs/codegen.md and checked by tests/unit/vmath_test.cpp.
#pragma once

#include <llvm/ADT/ArrayRef.h>
#include <llvm/IR/IRBuilder.h>

#include "kiln/codegen/kernel_ir.h"

namespace kiln::codegen::llvm_backend {

// Emits f(args) at the builder's position. The arguments share one floating-point type,
// scalar or vector. Helper functions copy the target attributes of the function being built,
// so that they can be inlined into it.
llvm::Value* EmitMath(llvm::IRBuilder<>& b, Intrinsic f, llvm::ArrayRef<llvm::Value*> args);

}  // namespace kiln::codegen::llvm_backend
