// bundle_object.h - the object file of a bundle (kiln/codegen/bundle.h): the kernels of a
// compiled graph plus one driver function that calls them in order on two caller-owned regions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/codegen/kernel_ir.h"
#include "kiln/codegen/llvm_jit.h"

namespace kiln::codegen::llvm_backend {

// A pointer into one of the driver's two regions.
struct RegionRef {
  bool weights = false;  // the weight region (the driver's first argument), else the activations
  int64_t offset = 0;    // bytes from the region's start
};

// One step of the driver: a kernel call `kernels[kernel](args, 0, tasks)`, or (kernel < 0) a
// copy of `bytes` bytes from args[0] to args[1].
struct BundleStep {
  int64_t kernel = -1;
  std::vector<RegionRef> args;
  int64_t tasks = 1;
  int64_t bytes = 0;
};

// An ELF relocatable object (as KernelsToObject makes: verified, -O3 for the chosen CPU, PIC)
// holding the kernels and `void entry(const void* weights, void* activations)`, which runs
// `steps` in order. Only `entry` is a global symbol: every kernel and helper is local to the
// object, so several bundles link into one program. Kernel names must be unique C identifiers
// (the caller prefixes them); the only undefined symbols are the C library's memcpy, memset,
// memmove and libm's scalar functions.
std::string BundleToObject(const std::vector<Kernel>& kernels, const std::vector<BundleStep>& steps,
                           const std::string& entry, const CpuOptions& options);

}  // namespace kiln::codegen::llvm_backend
