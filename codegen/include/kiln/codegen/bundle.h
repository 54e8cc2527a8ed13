// kiln/codegen/bundle.h - a compiled graph as a self-contained object file and C header.
//
// kiln-compile --emit-bundle DIR writes, for a model NAME:
//   DIR/NAME.o            the kernels and one entry point, an ELF relocatable object that needs
//                         nothing of kiln (only the C library's memcpy/memset and libm)
//   DIR/NAME.h            the entry point and, as constants, the sizes and alignments of the
//                         weight and activation regions and the offset, size, dtype and shape
//                         of every input and output within the activation region
//   DIR/NAME.weights.bin  the weight region's contents (the parameters at their offsets)
// The caller provides both regions and calls
//   void NAME_run(const void* weights, void* activations);
// on one thread. Everything is lowered to kernel IR (CompileOptions::use_library = false), so
// matrix products and convolutions run as JIT-quality loop nests rather than on the runtime's
// GEMM library.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "kiln/codegen/compile.h"
#include "kiln/runtime/tensor.h"

namespace kiln::codegen {

// Compiles `g` with `options` (use_library, allow_reference and jit are overridden) and writes
// the three files into `dir` (created if missing; each file written whole or not at all).
// `params` as for SerializeArtifact; `output_names` names the graph's outputs; `name` (a C
// identifier) prefixes every symbol and file. UnsupportedError for ops that do not lower.
void EmitBundle(const Graph& g, const CompileOptions& options,
                const std::map<std::string, Tensor>& params,
                const std::vector<std::string>& output_names, const std::string& dir,
                const std::string& name);

}  // namespace kiln::codegen
