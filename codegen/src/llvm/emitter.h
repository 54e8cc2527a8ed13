// Kernel IR to LLVM IR: one LLVM function per kernel with the KernelFn calling convention.
#pragma once

#include <memory>
#include <vector>

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include "kiln/codegen/kernel_ir.h"
#include "kiln/codegen/llvm_jit.h"

namespace kiln::codegen::llvm_backend {

// Emits the (verified) kernels into a new module. The caller sets the module's triple and data
// layout and optimises it; the functions carry the target's CPU and features as attributes.
std::unique_ptr<llvm::Module> EmitKernels(llvm::LLVMContext& ctx,
                                          const std::vector<Kernel>& kernels,
                                          const CpuTarget& target);

}  // namespace kiln::codegen::llvm_backend
