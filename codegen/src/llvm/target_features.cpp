// target_features.cpp - the CPU features an artifact needs (target_features.h).
#include "llvm/target_features.h"

#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>

#include "kiln/runtime/cpu_features.h"
#include "kiln/runtime/error.h"

namespace kiln::codegen {

std::vector<std::string> TargetCpuFeatures(const CpuTarget& target) {
  std::string err;
  const llvm::Target* t = llvm::TargetRegistry::lookupTarget(target.triple, err);
  if (!t) throw RuntimeError("LLVM has no target for " + target.triple + ": " + err);
  std::unique_ptr<llvm::MCSubtargetInfo> sti(
      t->createMCSubtargetInfo(target.triple, target.cpu, target.features));
  std::vector<std::string> needed;
  for (const std::string& f : CheckableCpuFeatures())
    if (sti && sti->checkFeatures("+" + f)) needed.push_back(f);
  return needed;
}

}  // namespace kiln::codegen
