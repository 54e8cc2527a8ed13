// Target selection, the -O3 pipeline, ORC LLJIT compilation and the IR/assembly dumps
// (kiln/codegen/llvm_jit.h).
#include <algorithm>
#include <mutex>

#include <llvm/ADT/SmallString.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/Host.h>

#include "kiln/codegen/llvm_jit.h"
#include "kiln/runtime/error.h"
#include "llvm/emitter.h"
#include "llvm/pipeline.h"

namespace kiln::codegen {
namespace {

void InitLLVM() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
}

std::string ToString(llvm::Error err) {
  return llvm::toString(std::move(err));
}

using llvm_backend::MakeTargetMachine;
using llvm_backend::Optimize;

// Verifies the kernels, emits them, checks the LLVM module and optimises it.
std::unique_ptr<llvm::Module> BuildModule(llvm::LLVMContext& ctx,
                                          const std::vector<Kernel>& kernels,
                                          const CpuTarget& target, llvm::TargetMachine& tm,
                                          int opt_level, bool optimize) {
  for (const Kernel& k : kernels) VerifyKernel(k);
  std::unique_ptr<llvm::Module> m = llvm_backend::EmitKernels(ctx, kernels, target);
  m->setTargetTriple(target.triple);
  m->setDataLayout(tm.createDataLayout());
  std::string problems;
  llvm::raw_string_ostream os(problems);
  if (llvm::verifyModule(*m, &os)) {
    throw InternalError("the LLVM emitter produced an invalid module:\n" + problems);
  }
  if (optimize) Optimize(*m, tm, opt_level);
  return m;
}

}  // namespace

int64_t TaskCount(const Kernel& k) {
  const StmtNode* loop = k.ParallelLoop();
  if (!loop || !loop->b || loop->b->kind != ExprKind::kIntImm) return 1;
  return std::max<int64_t>(0, loop->b->int_value);
}

CpuTarget ResolveCpuTarget(const CpuOptions& options) {
  InitLLVM();
  CpuTarget t;
  t.triple = llvm::sys::getProcessTriple();
  if (options.cpu.empty()) {
    t.cpu = llvm::sys::getHostCPUName().str();
    // The host's own feature list: a VM may hide features its CPU model implies.
    std::vector<std::string> features;
    for (const auto& f : llvm::sys::getHostCPUFeatures()) {
      features.push_back((f.second ? "+" : "-") + f.first().str());
    }
    std::sort(features.begin(), features.end());
    for (const std::string& f : features) t.features += (t.features.empty() ? "" : ",") + f;
  } else {
    t.cpu = options.cpu;
  }
  std::string err;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(t.triple, err);
  if (!target) throw RuntimeError("LLVM has no target for " + t.triple + ": " + err);
  // Checked on a generic subtarget first: LLVM prints a warning for an unknown CPU name.
  std::unique_ptr<llvm::MCSubtargetInfo> generic(target->createMCSubtargetInfo(t.triple, "", ""));
  if (!generic || !generic->isCPUStringValid(t.cpu)) {
    throw UserError("unknown CPU '" + t.cpu + "' for " + t.triple +
                    " (an LLVM CPU name such as znver4, skylake-avx512, x86-64-v3)");
  }
  std::unique_ptr<llvm::MCSubtargetInfo> sti(
      target->createMCSubtargetInfo(t.triple, t.cpu, t.features));
  t.vector_bits = sti->checkFeatures("+avx512f") ? 512 : sti->checkFeatures("+avx") ? 256 : 128;
  return t;
}

struct LLVMJit::Impl {
  CpuOptions options;
  CpuTarget target;
  std::unique_ptr<llvm::TargetMachine> tm;  // for the optimiser's cost model
  std::unique_ptr<llvm::orc::LLJIT> jit;
};

LLVMJit::LLVMJit(CpuOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->target = ResolveCpuTarget(options);
  impl_->tm = MakeTargetMachine(impl_->target);
  llvm::orc::JITTargetMachineBuilder jtmb{llvm::Triple(impl_->target.triple)};
  jtmb.setCPU(impl_->target.cpu);
  if (!impl_->target.features.empty()) {
    llvm::SmallVector<llvm::StringRef, 64> features;
    llvm::StringRef(impl_->target.features).split(features, ',');
    std::vector<std::string> list(features.begin(), features.end());
    jtmb.addFeatures(list);
  }
  jtmb.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  // Process symbols (the C library's expf, tanh, ...) resolve by default.
  auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(jtmb)).create();
  if (!jit) throw RuntimeError("cannot start the LLVM JIT: " + ToString(jit.takeError()));
  impl_->jit = std::move(*jit);
}

LLVMJit::~LLVMJit() = default;

const CpuTarget& LLVMJit::target() const {
  return impl_->target;
}

std::vector<KernelFn> LLVMJit::Compile(const std::vector<Kernel>& kernels) {
  auto ctx = std::make_unique<llvm::LLVMContext>();
  std::unique_ptr<llvm::Module> m =
      BuildModule(*ctx, kernels, impl_->target, *impl_->tm, impl_->options.opt_level, true);
  m->setDataLayout(impl_->jit->getDataLayout());
  if (llvm::Error err =
          impl_->jit->addIRModule(llvm::orc::ThreadSafeModule(std::move(m), std::move(ctx)))) {
    throw InternalError("cannot add kernels to the JIT: " + ToString(std::move(err)));
  }
  std::vector<KernelFn> fns;
  for (const Kernel& k : kernels) {
    auto sym = impl_->jit->lookup(k.name);
    if (!sym)
      throw InternalError("JIT lookup of kernel " + k.name + ": " + ToString(sym.takeError()));
    fns.push_back(sym->toPtr<KernelFn>());
  }
  return fns;
}

std::string KernelsToLLVMIR(const std::vector<Kernel>& kernels, const CpuOptions& options,
                            bool optimized) {
  CpuTarget target = ResolveCpuTarget(options);
  auto tm = MakeTargetMachine(target);
  llvm::LLVMContext ctx;
  auto m = BuildModule(ctx, kernels, target, *tm, options.opt_level, optimized);
  std::string text;
  llvm::raw_string_ostream os(text);
  m->print(os, nullptr);
  return text;
}

std::string KernelsToAssembly(const std::vector<Kernel>& kernels, const CpuOptions& options) {
  CpuTarget target = ResolveCpuTarget(options);
  auto tm = MakeTargetMachine(target);
  llvm::LLVMContext ctx;
  auto m = BuildModule(ctx, kernels, target, *tm, options.opt_level, true);
  return llvm_backend::EmitMachineCode(*m, *tm, false);
}

std::string KernelsToObject(const std::vector<Kernel>& kernels, const CpuOptions& options) {
  CpuTarget target = ResolveCpuTarget(options);
  auto tm = MakeTargetMachine(target);
  llvm::LLVMContext ctx;
  auto m = BuildModule(ctx, kernels, target, *tm, options.opt_level, true);
  return llvm_backend::EmitMachineCode(*m, *tm, true);
}

}  // namespace kiln::codegen

namespace kiln::codegen::llvm_backend {

std::unique_ptr<llvm::TargetMachine> MakeTargetMachine(const CpuTarget& t) {
  std::string err;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(t.triple, err);
  if (!target) throw RuntimeError("LLVM has no target for " + t.triple + ": " + err);
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> tm(
      target->createTargetMachine(t.triple, t.cpu, t.features, options, llvm::Reloc::PIC_,
                                  std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!tm) throw RuntimeError("LLVM cannot create a target machine for " + t.cpu);
  return tm;
}

void Optimize(llvm::Module& m, llvm::TargetMachine& tm, int level) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::OptimizationLevel opt = level <= 0   ? llvm::OptimizationLevel::O0
                                : level == 1 ? llvm::OptimizationLevel::O1
                                : level == 2 ? llvm::OptimizationLevel::O2
                                             : llvm::OptimizationLevel::O3;
  llvm::ModulePassManager mpm =
      level <= 0 ? pb.buildO0DefaultPipeline(opt) : pb.buildPerModuleDefaultPipeline(opt);
  mpm.run(m, mam);
}

std::string EmitMachineCode(llvm::Module& m, llvm::TargetMachine& tm, bool object) {
  llvm::SmallString<0> buffer;
  llvm::raw_svector_ostream os(buffer);
  llvm::legacy::PassManager pm;
  auto type = object ? llvm::CodeGenFileType::ObjectFile : llvm::CodeGenFileType::AssemblyFile;
  if (tm.addPassesToEmitFile(pm, os, nullptr, type))
    throw UnsupportedError(StrCat("LLVM cannot emit ", object ? "an object file" : "assembly",
                                  " for ", tm.getTargetCPU().str()));
  pm.run(m);
  return std::string(buffer.str());
}

}  // namespace kiln::codegen::llvm_backend
