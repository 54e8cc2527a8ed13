// artifact_writer.cpp - CompiledGraph -> .kiln bytes (kiln/codegen/artifact.h).
#include <cstring>

#include "kiln/codegen/artifact.h"
#include "kiln/runtime/artifact.h"
#include "kiln/runtime/artifact_generated.h"
#include "kiln/runtime/error.h"
#include "llvm/target_features.h"

#ifndef KILN_VERSION_STRING
#define KILN_VERSION_STRING "unknown"
#endif

namespace kiln::codegen {

namespace {

std::string DefaultOutputName(const Graph& g, const Entry& e) {
  const Node& n = g.node(e.node);
  if (n.is_variable()) return n.name;
  return n.num_outputs() > 1 ? StrCat(n.name, "_output", e.index) : n.name + "_output";
}

int64_t RoundUp(int64_t n, int64_t to) {
  return (n + to - 1) / to * to;
}

}  // namespace

std::vector<PlacedParam> PlaceParams(const CompiledGraph& cg,
                                     const std::map<std::string, Tensor>& params, int64_t alignment,
                                     int64_t* total) {
  const Graph& g = cg.graph();
  const std::vector<uint32_t>& vars = cg.variable_nodes();
  std::vector<PlacedParam> placed;
  int64_t bytes = 0;
  for (size_t v = 0; v < vars.size(); ++v) {
    const std::string& name = g.node(vars[v]).name;
    auto it = params.find(name);
    if (it == params.end()) continue;
    const Entry e{vars[v], 0};
    const Tensor& t = it->second;
    if (!t.defined() || Shape(t.shape()) != g.shape(e) || t.dtype() != g.dtype(e))
      throw UserError(StrCat("parameter \"", name, "\" is ",
                             t.defined() ? t.TypeString() : "undefined", " but the graph needs ",
                             DTypeName(g.dtype(e)), g.shape(e).ToString()));
    placed.push_back({v, &t, bytes});
    bytes = RoundUp(bytes + int64_t(t.nbytes()), alignment);
  }
  *total = bytes;
  return placed;
}

std::string SerializeArtifact(const CompiledGraph& cg, const std::map<std::string, Tensor>& params,
                              const CpuOptions& cpu, const std::vector<std::string>& output_names) {
  const Graph& g = cg.graph();
  std::string reference;
  for (const CompiledCall& c : cg.calls())
    if (c.kind == CompiledCall::Kind::kReference)
      reference +=
          StrCat(reference.empty() ? "" : ", ", c.ops, " (node \"", g.node(c.node).name, "\")");
  if (!reference.empty())
    throw UnsupportedError("these nodes have no compiled kernel and cannot go into an artifact: " +
                           reference);
  if (std::string random = cg.RandomCalls(); !random.empty())
    throw UnsupportedError("these nodes draw random numbers, and an artifact carries no seed: " +
                           random);
  const std::vector<ExternalSlot>& slots = cg.externals();
  const std::vector<uint32_t>& vars = cg.variable_nodes();
  if (!output_names.empty() && output_names.size() != g.outputs().size())
    throw UserError(
        StrCat(output_names.size(), " output names for ", g.outputs().size(), " outputs"));

  // Parameter values, each at a 64-byte aligned offset.
  struct Param {
    size_t variable;
    int64_t external, offset, bytes;
    const Tensor* value;
  };
  std::vector<Param> param_list;
  std::vector<int64_t> variable_external(vars.size(), -1);
  int64_t library_state = -1;
  std::vector<int64_t> library_external(cg.library_ops().size(), -1);
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].kind == ExternalSlot::Kind::kVariable)
      variable_external[size_t(slots[i].index)] = int64_t(i);
    if (slots[i].kind == ExternalSlot::Kind::kLibraryState) library_state = int64_t(i);
    if (slots[i].kind == ExternalSlot::Kind::kLibraryNode)
      library_external[size_t(slots[i].index)] = int64_t(i);
  }
  int64_t param_bytes = 0;
  for (const PlacedParam& p : PlaceParams(cg, params, kArtifactParamAlignment, &param_bytes))
    param_list.push_back(
        {p.variable, variable_external[p.variable], p.offset, int64_t(p.value->nbytes()), p.value});
  if (param_bytes > (int64_t(1) << 31) - (int64_t(1) << 26))
    throw UnsupportedError(StrCat("the parameters take ", param_bytes,
                                  " bytes; artifacts hold up to 2 GB (flatbuffers' limit)"));

  std::string object;
  if (!cg.kernels().empty()) object = KernelsToObject(cg.kernels(), cpu);

  flatbuffers::FlatBufferBuilder fbb(size_t(param_bytes) + object.size() + (1 << 20));
  // The parameters first (the builder writes back to front, so they end up last in the file).
  uint8_t* param_data = nullptr;
  fbb.ForceVectorAlignment(size_t(param_bytes), 1, size_t(kArtifactParamAlignment));
  auto param_vec = fbb.CreateUninitializedVector(size_t(param_bytes), 1, &param_data);
  std::memset(param_data, 0, size_t(param_bytes));
  for (const Param& p : param_list)
    if (p.bytes > 0) std::memcpy(param_data + p.offset, p.value->raw_data(), size_t(p.bytes));
  auto object_vec =
      fbb.CreateVector(reinterpret_cast<const uint8_t*>(object.data()), object.size());

  auto tensor = [&](const std::string& name, const Entry& e, int64_t external, int64_t offset,
                    int64_t bytes) {
    std::vector<int64_t> dims = g.shape(e).dims();
    return fb::CreateTensor(fbb, fbb.CreateString(name), uint8_t(g.dtype(e)),
                            fbb.CreateVector(dims), external, uint64_t(offset), uint64_t(bytes));
  };
  std::vector<flatbuffers::Offset<fb::Tensor>> inputs, outputs, params_fb;
  for (const Param& p : param_list)
    params_fb.push_back(tensor(g.node(vars[p.variable]).name, {vars[p.variable], 0}, p.external,
                               p.offset, p.bytes));
  // Inputs: the variables without a value that the code reads (or that are outputs). An unread
  // one (SoftmaxOutput's label in inference) is no input of the model.
  std::vector<bool> used(size_t(cg.plan().num_externals), false);
  for (const PlanCall& c : cg.plan().calls)
    for (const PlanArg& a : c.args)
      if (a.kind == PlanArg::Kind::kExternal) used[size_t(a.index)] = true;
  for (size_t k = 0; k < g.outputs().size(); ++k)
    if (cg.output_variable(k) >= 0)
      used[size_t(variable_external[size_t(cg.output_variable(k))])] = true;
  for (size_t v = 0; v < vars.size(); ++v) {
    const std::string& name = g.node(vars[v]).name;
    if (!params.count(name) && used[size_t(variable_external[v])])
      inputs.push_back(tensor(name, {vars[v], 0}, variable_external[v], 0, 0));
  }
  for (size_t k = 0; k < g.outputs().size(); ++k) {
    const Entry& e = g.outputs()[k];
    int64_t external = cg.output_external(k);
    if (external < 0) external = variable_external[size_t(cg.output_variable(k))];
    std::string name = output_names.empty() ? DefaultOutputName(g, e) : output_names[k];
    outputs.push_back(tensor(name, e, external, 0, 0));
  }

  std::vector<flatbuffers::Offset<fb::LibraryOp>> library;
  for (size_t l = 0; l < cg.library_ops().size(); ++l) {
    const LibraryOpDesc& d = cg.library_ops()[l];
    library.push_back(fb::CreateLibraryOp(fbb, uint32_t(d.kind), fbb.CreateVector(d.ints),
                                          fbb.CreateVector(d.reals), cg.library_threads(),
                                          library_external[l]));
  }
  std::vector<flatbuffers::Offset<fb::Call>> calls;
  const Plan& plan = cg.plan();
  for (size_t i = 0; i < plan.calls.size(); ++i) {
    const PlanCall& pc = plan.calls[i];
    const CompiledCall& cc = cg.calls()[i];
    std::vector<fb::Arg> args;
    for (const PlanArg& a : pc.args)
      args.emplace_back(a.kind == PlanArg::Kind::kExternal ? 1 : 0, a.written ? 1 : 0, a.offset,
                        a.index, a.bytes);
    // A kernel call names its kernel; a library call its op, and its row kernel if it has one.
    const bool jit = cc.kind == CompiledCall::Kind::kJit;
    calls.push_back(fb::CreateCall(fbb, fbb.CreateString(pc.name), fbb.CreateString(cc.kernel),
                                   jit ? -1 : int32_t(cc.library), fbb.CreateVectorOfStructs(args),
                                   pc.tasks));
  }
  std::vector<std::string> features = TargetCpuFeatures(cg.target());
  const CpuTarget& target = cg.target();
  auto model = fb::CreateModel(
      fbb, kArtifactFormatVersion, fbb.CreateString(KILN_VERSION_STRING),
      fbb.CreateString(target.triple), fbb.CreateString(target.cpu),
      fbb.CreateVectorOfStrings(features), plan.arena_size, plan.arena_alignment,
      plan.num_externals, library_state, fbb.CreateVector(inputs), fbb.CreateVector(outputs),
      fbb.CreateVector(params_fb), fbb.CreateVector(calls), fbb.CreateVector(library), object_vec,
      ArtifactObjectChecksum(object.data(), object.size()), param_vec);
  fbb.Finish(model, fb::ModelIdentifier());
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

}  // namespace kiln::codegen
