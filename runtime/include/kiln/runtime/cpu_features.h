// kiln/runtime/cpu_features.h - which x86 instruction-set features this machine has.
//
// An artifact records the CPU features its machine code needs, spelled as LLVM spells them
// ("avx2", "avx512f", "fma", ...); the loader refuses it on a machine without one of them
// instead of dying of an illegal instruction. Detection reads CPUID and, for the AVX and
// AVX-512 register states, XGETBV (the operating system must save those registers too).
#pragma once

#include <string>
#include <vector>

namespace kiln {

// The features this runtime can check, in a fixed order.
const std::vector<std::string>& CheckableCpuFeatures();
// True when `feature` (one of CheckableCpuFeatures) is usable on this machine; false for a
// feature this runtime cannot check.
bool HostHasCpuFeature(const std::string& feature);

}  // namespace kiln
