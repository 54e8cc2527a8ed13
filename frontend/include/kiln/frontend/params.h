// kiln/frontend/params.h - parameter files in MXNet's NDArray-list format (".params").
//
//   ParamFile p = LoadParams("model-0010.params");   // MXNet's or kiln's
//   SetExecutorParams(exec, p, {"data", "softmax_label"});
//   SaveParams("model-0011.params", ExecutorParams(exec, {"data", "softmax_label"}));
//
// The format is what MXNet's mx.nd.save / Module.save_checkpoint / Gluon's save_parameters
// write (docs/formats.md has the byte layout): a list header, the arrays, then their names.
// Names "arg:NAME" and "aux:NAME" (Module checkpoints) go to `arg` and `aux` without the prefix;
// a name without either prefix (Gluon) goes to `arg` whole; a list saved without names (mx.nd.save
// of a list) gives arg names "0", "1", ...
// Reading takes every NDArray version MXNet has written: the legacy one without a magic number,
// V1 (0xF993FAC8), V2 (0xF993FAC9, with storage type) and V3 (0xF993FACA, NumPy shape
// semantics); dense storage only (row_sparse and csr are UserErrors), every dtype kiln has
// (MXNet's int16, uint16, uint32 and uint64 are UserErrors). The context an array was saved from
// is ignored: arrays load on the CPU.
// Writing uses V2 with context cpu(0), like MXNet outside NumPy mode. V2 cannot hold a 0-d
// array (its ndim 0 means "no array"), so a file holding any 0-d tensor is written all in V3,
// which MXNet loads in NumPy shape mode only (mx.npx.set_np()), as it does its own such files.
// Every key is saved with its prefix, so arg["w"] is saved as "arg:w" (Module's convention).
// Malformed files are UserErrors naming the file, the array (index, and name where known) and
// the problem; files are written atomically (a temporary file renamed over the path).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "kiln/runtime/tensor.h"

namespace kiln {

class Executor;

struct ParamFile {
  std::map<std::string, Tensor> arg, aux;
};

ParamFile LoadParams(const std::string& path);
// Parses the bytes of a .params file; `what` names it in messages.
ParamFile ParseParams(const void* data, size_t size, const std::string& what);

// Every tensor must be defined and on the CPU (else a UserError naming it).
void SaveParams(const std::string& path, const ParamFile& params);
std::string ParamsBytes(const ParamFile& params);

// The executor's parameters: its arguments other than `input_names`, and its auxiliary states.
// The tensors share the executor's arrays (Clone them to keep a snapshot).
ParamFile ExecutorParams(const Executor& exec, const std::vector<std::string>& input_names);

// Copies `params` into the executor's arrays by name: arg into arguments, aux into auxiliary
// states. Shapes and dtypes must match exactly. Unless `allow_missing`, every argument other
// than `input_names` and every auxiliary state must be in `params`; unless `allow_extra`, every
// name in `params` must be one of the executor's. Violations are UserErrors naming the array.
void SetExecutorParams(const Executor& exec, const ParamFile& params,
                       const std::vector<std::string>& input_names, bool allow_missing = false,
                       bool allow_extra = false);

}  // namespace kiln
