// kiln/codegen/llvm_jit.h - compiling kernel IR for the CPU with LLVM and running it (ORC).
//
// Every kernel becomes one C function with the same signature (KernelFn):
//
//   void name(void* const* args, int64_t task_begin, int64_t task_end);
//
// args[i] points at buffer i's first element for each of the kernel's buffers, in order, then
// at the value of each scalar parameter. A kernel with a parallel loop (Kernel::ParallelLoop)
// runs the iterations begin + t of that loop for task_begin <= t < task_end, clipped to
// [0, extent): a runtime splits [0, TaskCount(k)) over threads, calling the same function with
// disjoint ranges. A kernel without a parallel loop runs whole for any non-empty range
// (call it with 0, 1). Nothing else differs between kernels, so a plan can hold bare function
// pointers and the thread pool needs no knowledge of kernels.
//
// Vectorized loops become explicit LLVM vector code of the loop's width (the target's natural
// width, 512 bits on AVX-512, when the IR says 0) plus a scalar remainder loop; the module is
// optimised with LLVM's -O3 pipeline for the chosen CPU.
//
// LLVM types never appear in this header: layers above codegen compile without LLVM.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/codegen/kernel_ir.h"

namespace kiln::codegen {

using KernelFn = void (*)(void* const* args, int64_t task_begin, int64_t task_end);

// The number of tasks a kernel's iterations split into: its parallel loop's extent, or 1.
int64_t TaskCount(const Kernel& k);

struct CpuOptions {
  // An LLVM CPU name ("znver4", "skylake-avx512", "x86-64-v3"); empty: the host CPU with the
  // features the host reports. A named CPU gets that CPU's features.
  std::string cpu;
  int opt_level = 3;  // 0-3, LLVM's pipelines
};

// What code is generated for: the CPU, its features, and the natural vector width.
struct CpuTarget {
  std::string triple;
  std::string cpu;
  std::string features;   // "+avx512f,+fma,..." as LLVM spells them
  int vector_bits = 128;  // 512 with AVX-512F, 256 with AVX, else 128
};
CpuTarget ResolveCpuTarget(const CpuOptions& options);

// Compiles modules of kernels with ORC's LLJIT and keeps the machine code alive as long as
// the object lives. Thread-compatible: use one object from one thread at a time; the
// returned functions may be called from any thread.
class LLVMJit {
 public:
  explicit LLVMJit(CpuOptions options = {});
  ~LLVMJit();
  LLVMJit(const LLVMJit&) = delete;
  LLVMJit& operator=(const LLVMJit&) = delete;

  // Verifies, emits, optimises and JIT-compiles the kernels as one module; returns their
  // entry points in order. Kernel names must be unique across everything this object
  // compiles (an InternalError otherwise).
  std::vector<KernelFn> Compile(const std::vector<Kernel>& kernels);

  const CpuTarget& target() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The LLVM IR of a module of kernels, after optimisation (or before, for debugging the
// emitter), and the target's assembly: kiln-dump --llvm / --asm print these.
std::string KernelsToLLVMIR(const std::vector<Kernel>& kernels, const CpuOptions& options = {},
                            bool optimized = true);
std::string KernelsToAssembly(const std::vector<Kernel>& kernels, const CpuOptions& options = {});

// The same module (verified, emitted, -O3 for the chosen CPU) as the bytes of an ELF64
// relocatable object for x86-64, position-independent, small code model: every kernel's entry
// point is a global function symbol named Kernel::name; the only external references are the C
// library's memcpy/memset/memmove, libm's scalar functions and the compiler runtime's float16
// (and bfloat16) conversions. The functions are nounwind without uwtable, so no .eh_frame is
// emitted. kiln/runtime/object_loader.h maps such an object without LLVM.
std::string KernelsToObject(const std::vector<Kernel>& kernels, const CpuOptions& options = {});

}  // namespace kiln::codegen
