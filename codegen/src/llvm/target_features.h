// target_features.h - which runtime-checkable CPU features code for a target may use.
#pragma once

#include <string>
#include <vector>

#include "kiln/codegen/llvm_jit.h"

namespace kiln::codegen {

// The features of kiln/runtime/cpu_features.h's list that `target` (its CPU and explicit
// features) enables, in that list's order: what an artifact for it needs of a machine.
std::vector<std::string> TargetCpuFeatures(const CpuTarget& target);

}  // namespace kiln::codegen
