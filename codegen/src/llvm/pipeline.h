// pipeline.h - the LLVM target machine, -O pipeline and machine-code emission every user of
// the CPU backend shares (the JIT, object files for artifacts, bundles, the dumps).
#pragma once

#include <memory>
#include <string>

#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

#include "kiln/codegen/llvm_jit.h"

namespace kiln::codegen::llvm_backend {

// A PIC target machine for `t` at -O3 code generation.
std::unique_ptr<llvm::TargetMachine> MakeTargetMachine(const CpuTarget& t);
// LLVM's module pipeline at `level` (0-3).
void Optimize(llvm::Module& m, llvm::TargetMachine& tm, int level);
// `m` as an ELF relocatable object (`object`) or as assembly text.
std::string EmitMachineCode(llvm::Module& m, llvm::TargetMachine& tm, bool object);

}  // namespace kiln::codegen::llvm_backend
