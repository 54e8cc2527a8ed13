// kiln/ir/interpreter.h - the reference interpreter: the oracle for every backend.
//
// Runs a graph node by node with each op's plain reference kernel (OpDef::reference). Shapes
// and dtypes come from the tensors given for the variables, through each op's rules, so the
// graph needs no facts beforehand. Kernels are written to be obviously correct, not fast: they
// accumulate in double (or int64) and never reuse buffers. Auxiliary states (BatchNorm's moving
// statistics) are updated in place in the caller's tensors when `is_train` is set.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kiln/ir/graph.h"
#include "kiln/runtime/tensor.h"

namespace kiln {

struct InterpretOptions {
  bool is_train = false;  // training mode: BatchNorm batch statistics, Dropout active
  uint64_t seed = 0;      // the random ops' seed (Dropout, rrelu: kiln/ir/random.h)
};

// Runs `g` with the given values of its variables (by name; every variable needs one) and
// returns the value of every entry, indexed by entry id. UserError for a missing variable or
// for tensors the ops' rules reject (the message names the node).
std::vector<Tensor> InterpretAll(const Graph& g, const std::map<std::string, Tensor>& vars,
                                 const InterpretOptions& options = {});

// Runs nodes [begin, end) only, reading and writing `values` (one per entry id; resized to
// num_entries() if smaller). Variables in the range take their values from `vars`; entries of
// nodes before `begin` must already be in `values`. Executors run a training graph's forward
// part and its backward part in two calls.
void InterpretNodes(const Graph& g, const std::map<std::string, Tensor>& vars,
                    std::vector<Tensor>& values, uint32_t begin, uint32_t end,
                    const InterpretOptions& options = {});

// As InterpretAll, returning the graph's outputs only.
std::vector<Tensor> Interpret(const Graph& g, const std::map<std::string, Tensor>& vars,
                              const InterpretOptions& options = {});

}  // namespace kiln
