// kiln/codegen/artifact.h - a compiled graph written as a .kiln artifact for the runtime.
//
// kiln-compile's last step: the plan of a CompiledGraph (compiled with CompileOptions::jit =
// false, allow_reference = false), its kernels as an ELF relocatable object (KernelsToObject),
// its runtime-library ops by description, and the values of its parameters, in the flatbuffers
// container of runtime/schema/artifact.fbs (docs/artifacts.md). kiln::Artifact
// (kiln/runtime/artifact.h) loads the result with no compiler.
//
//   std::string bytes = SerializeArtifact(*cg, params, options.cpu, {"softmax_output"});
//   WriteFileAtomically("mlp.kiln", bytes);              // kiln/runtime/npy.h
#pragma once

#include <map>
#include <string>
#include <vector>

#include "kiln/codegen/compile.h"
#include "kiln/runtime/tensor.h"

namespace kiln::codegen {

// Each variable of cg.graph() with a value in `params` (its compiled shape and dtype, a
// UserError naming it otherwise) is stored as a parameter; every other variable is an input of
// the model. `cpu` must be the options `cg` was compiled with. `output_names` names the graph's
// outputs (empty: "<node>_output", with the output's index for nodes of several). UserError for
// a graph with reference calls (they are not serialisable: the message lists them).
std::string SerializeArtifact(const CompiledGraph& cg, const std::map<std::string, Tensor>& params,
                              const CpuOptions& cpu,
                              const std::vector<std::string>& output_names = {});

// Where each parameter goes in a weight region (artifacts and bundles): the variables of
// cg.graph() (variable_nodes() order) with a value in `params`, each at a multiple of
// `alignment`. UserError naming a value of the wrong shape or dtype. `*total`: the region's size.
struct PlacedParam {
  size_t variable = 0;  // index in cg.variable_nodes()
  const Tensor* value = nullptr;
  int64_t offset = 0;
};
std::vector<PlacedParam> PlaceParams(const CompiledGraph& cg,
                                     const std::map<std::string, Tensor>& params, int64_t alignment,
                                     int64_t* total);

}  // namespace kiln::codegen
