// kiln/frontend/onnx.h - ONNX models as kiln graphs.
//
//   OnnxImportOptions opt;
//   opt.input_shapes["data"] = {1, 3, 224, 224};   // fixes the dynamic dims of "data"
//   OnnxModel m = ImportOnnxFile("resnet18.onnx", opt);
//   std::map<std::string, Tensor> vars = m.params;  // initializers and folded constants
//   vars["data"] = image;
//   std::vector<Tensor> out = Interpret(m.graph, vars);  // in the order of m.output_names
//
// What the importer does (docs/onnx.md has the operator table and the choices):
// - Reads a ModelProto (ONNX IR 3 and later, default-domain opsets 7 to 17). Tensors stored in
//   external data files are read relative to the model's directory (or `base_dir`).
// - Shapes are static: every graph input's shape must be known once `input_shapes` has fixed
//   its dynamic dims; a dim left unknown is a UserError naming the input and the dim. Because
//   every shape is known, shape computations (Shape, Gather, Concat feeding Reshape; Size;
//   ConstantOfShape; anything computed from constants only) are evaluated during import with
//   the reference kernels and never reach the graph.
// - Initializers become parameters: variables whose values are in `params`. An initializer that
//   is also listed as a graph input is, as ONNX says, a default the caller may override: it is
//   a parameter as well, and ops that need a value at import time (Reshape's shape) use the
//   default. Runtime inputs are the graph inputs without an initializer (`input_names`).
// - Each ONNX node becomes one or more kiln ops; variables carry `__shape__` and `__dtype__`,
//   so the graph can be inferred and printed without the parameters.
// - A model with operators kiln cannot import lists every one of them (node name, op type,
//   opset) in one UnsupportedError; other problems are UserErrors naming the node.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/ir/graph.h"
#include "kiln/runtime/tensor.h"

namespace kiln {

struct OnnxImportOptions {
  // Shapes of graph inputs by name; a -1 (or absent entry) keeps the model's dim. Needed for
  // inputs whose dims are symbolic or missing in the model.
  std::map<std::string, std::vector<int64_t>> input_shapes;
  // Values fixed at import for some runtime inputs: they become constants (and leave
  // OnnxModel::input_names), so that values the importer needs statically (Reshape's shape,
  // Slice's starts) may come from graph inputs, as in the ONNX node tests.
  std::map<std::string, Tensor> input_values;
  // Directory that external data paths are relative to; default: the model file's directory
  // (ImportOnnxFile) or the current directory (ImportOnnx).
  std::string base_dir;
};

struct OnnxModel {
  Graph graph;                           // outputs in the order of output_names
  std::map<std::string, Tensor> params;  // values of the parameter variables
  std::vector<std::string> input_names;  // variables the caller must bind, in ONNX order
  std::vector<std::string> output_names;
  int64_t opset = 0;  // the default domain's opset
  int64_t ir_version = 0;
};

// Imports a serialized ModelProto; `source` names it in messages.
OnnxModel ImportOnnx(std::string_view bytes, const OnnxImportOptions& options = {},
                     std::string_view source = "<onnx>");
// Reads and imports a .onnx file (RuntimeError if it cannot be read).
OnnxModel ImportOnnxFile(const std::string& path, const OnnxImportOptions& options = {});

// Reads a serialized TensorProto (the conformance suite's input_N.pb / output_N.pb files).
// `name` receives the tensor's name when not null. UnsupportedError for element types kiln
// lacks (string, complex, 16-bit and unsigned 32/64-bit integers).
Tensor ReadOnnxTensorFile(const std::string& path, std::string* name = nullptr);

// The ONNX operator types (default domain) the importer converts, sorted.
std::vector<std::string> OnnxSupportedOps();

}  // namespace kiln
