// The object file of a bundle (bundle_object.h): the kernels as the emitter makes them, one
// driver function that calls them in order, then -O3 and the target's object emitter.
//
// The target machine and the pass pipeline are set up as the JIT sets them up (jit.cpp), so a
// bundle's kernels are the code the JIT would run. Two things differ: every symbol but the
// driver is made internal (several bundles may link into one program, and the linker may drop
// nothing the driver needs), and the kernels are kept out of line (noinline), so that the driver
// stays a short list of calls and each kernel is optimised exactly as on its own.
#include "llvm/bundle_object.h"

#include <algorithm>

#include <llvm/ADT/SmallString.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include "kiln/runtime/error.h"
#include "llvm/emitter.h"
#include "llvm/pipeline.h"

namespace kiln::codegen::llvm_backend {
namespace {

// Adds `void entry(ptr weights, ptr activations)` running `steps`.
void AddDriver(llvm::Module& m, const std::vector<Kernel>& kernels,
               const std::vector<BundleStep>& steps, const std::string& entry,
               const CpuTarget& target) {
  llvm::LLVMContext& ctx = m.getContext();
  llvm::IRBuilder<> b(ctx);
  llvm::Type* ptr = b.getPtrTy();
  llvm::Type* i64 = b.getInt64Ty();
  if (m.getNamedValue(entry))
    throw InternalError("bundle: the entry point " + entry + " clashes with a kernel's name");
  auto* fty = llvm::FunctionType::get(b.getVoidTy(), {ptr, ptr}, false);
  llvm::Function* fn = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, entry, m);
  fn->addFnAttr("target-cpu", target.cpu);
  if (!target.features.empty()) fn->addFnAttr("target-features", target.features);
  fn->addFnAttr(llvm::Attribute::NoUnwind);
  llvm::Argument* weights = fn->getArg(0);
  llvm::Argument* activations = fn->getArg(1);
  weights->setName("weights");
  activations->setName("activations");
  fn->addParamAttr(0, llvm::Attribute::ReadOnly);
  b.SetInsertPoint(llvm::BasicBlock::Create(ctx, "entry", fn));

  size_t max_args = 1;
  for (const BundleStep& s : steps) max_args = std::max(max_args, s.args.size());
  llvm::Value* args = b.CreateAlloca(llvm::ArrayType::get(ptr, max_args), nullptr, "args");
  auto address = [&](const RegionRef& r) {
    return b.CreateConstInBoundsGEP1_64(b.getInt8Ty(), r.weights ? weights : activations,
                                        uint64_t(r.offset));
  };
  auto* kernel_ty = llvm::FunctionType::get(b.getVoidTy(), {ptr, i64, i64}, false);
  for (const BundleStep& s : steps) {
    if (s.kernel < 0) {
      KILN_INTERNAL_CHECK(s.args.size() == 2, "bundle copy step with ", s.args.size(), " args");
      if (s.bytes > 0)
        b.CreateMemCpy(address(s.args[1]), llvm::MaybeAlign(1), address(s.args[0]),
                       llvm::MaybeAlign(1), uint64_t(s.bytes));
      continue;
    }
    KILN_INTERNAL_CHECK(size_t(s.kernel) < kernels.size(), "bundle step names kernel ", s.kernel,
                        " of ", kernels.size());
    const Kernel& k = kernels[size_t(s.kernel)];
    KILN_INTERNAL_CHECK(s.args.size() == k.buffers.size() + k.scalars.size(), "bundle: kernel ",
                        k.name, " takes ", k.buffers.size() + k.scalars.size(), " args, given ",
                        s.args.size());
    llvm::Function* kernel = m.getFunction(k.name);
    KILN_INTERNAL_CHECK(kernel, "bundle: the emitter made no function ", k.name);
    for (size_t i = 0; i < s.args.size(); ++i)
      b.CreateStore(address(s.args[i]), b.CreateConstInBoundsGEP1_64(ptr, args, i));
    b.CreateCall(kernel_ty, kernel, {args, b.getInt64(0), b.getInt64(uint64_t(s.tasks))});
  }
  b.CreateRetVoid();

  // Everything but the entry point is local to the object; the kernels stay out of line.
  for (llvm::Function& f : m.functions()) {
    if (f.isDeclaration() || &f == fn) continue;
    f.setLinkage(llvm::GlobalValue::InternalLinkage);
  }
  for (const Kernel& k : kernels) {
    llvm::Function* f = m.getFunction(k.name);
    f->removeFnAttr(llvm::Attribute::AlwaysInline);
    f->addFnAttr(llvm::Attribute::NoInline);
  }
  for (llvm::GlobalVariable& g : m.globals())
    if (!g.isDeclaration()) g.setLinkage(llvm::GlobalValue::InternalLinkage);
}

struct BuiltModule {
  std::unique_ptr<llvm::LLVMContext> ctx;
  std::unique_ptr<llvm::TargetMachine> tm;
  std::unique_ptr<llvm::Module> m;
};

BuiltModule Build(const std::vector<Kernel>& kernels, const std::vector<BundleStep>& steps,
                  const std::string& entry, const CpuOptions& options) {
  CpuTarget target = ResolveCpuTarget(options);  // also initialises LLVM's native target
  BuiltModule out;
  out.ctx = std::make_unique<llvm::LLVMContext>();
  out.tm = MakeTargetMachine(target);
  for (const Kernel& k : kernels) VerifyKernel(k);
  out.m = EmitKernels(*out.ctx, kernels, target);
  out.m->setModuleIdentifier(entry);
  out.m->setTargetTriple(target.triple);
  out.m->setDataLayout(out.tm->createDataLayout());
  AddDriver(*out.m, kernels, steps, entry, target);
  std::string problems;
  llvm::raw_string_ostream os(problems);
  if (llvm::verifyModule(*out.m, &os))
    throw InternalError("the bundle's LLVM module is invalid:\n" + problems);
  Optimize(*out.m, *out.tm, options.opt_level);
  return out;
}

}  // namespace

std::string BundleToObject(const std::vector<Kernel>& kernels, const std::vector<BundleStep>& steps,
                           const std::string& entry, const CpuOptions& options) {
  BuiltModule built = Build(kernels, steps, entry, options);
  return EmitMachineCode(*built.m, *built.tm, true);
}

}  // namespace kiln::codegen::llvm_backend
