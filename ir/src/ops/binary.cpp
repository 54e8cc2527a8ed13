// binary.cpp - (to be written: see register.h for the ops this file defines).
#include "ops/op_util.h"
#include "ops/register.h"

namespace kiln::ops {

void RegisterBinaryOps(OpRegistry& r) {}

}  // namespace kiln::ops
