// importer.h - the state of one ONNX import and what operator converters see (internal).
//
// Converters (convert_*.cpp) turn one ONNX node into kiln ops through an Importer: they read
// the node's inputs as Values (shape, dtype and, when known at import time, the value), its
// attributes, and emit kiln ops with Emit. Shapes are static throughout the import, so every
// Value's shape is known. Emit evaluates an op at once with its reference kernel when all its
// inputs are constants, so shape arithmetic never reaches the graph; otherwise it appends a
// node and infers its outputs' shapes and dtypes with the op's own rules.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/frontend/onnx.h"
#include "kiln/ir/graph.h"
#include "onnx/onnx_pb.h"

namespace kiln::onnx_import {

// One ONNX value (or an intermediate the converters create).
struct Value {
  std::vector<int64_t> shape;
  DType dtype = DType::kUnknown;
  std::optional<Entry> entry;  // its entry, once it is in the graph
  Tensor constant;             // defined when the value is known at import time
  bool overridable = false;    // an initializer also listed as a graph input: a default only
  std::string name;            // the variable name a constant gets when it enters the graph
};
using V = int;  // index of a Value in Importer::values

class Importer;
using Converter = std::function<void(Importer&)>;
using ConverterTable = std::map<std::string, Converter>;

// The converter tables, by concern.
void AddElementwiseConverters(ConverterTable& t);
void AddTensorConverters(ConverterTable& t);
void AddNNConverters(ConverterTable& t);
void AddReduceConverters(ConverterTable& t);
void AddMiscConverters(ConverterTable& t);
void AddExtraConverters(ConverterTable& t);
const ConverterTable& Converters();

// ONNX element types to kiln's; nullopt for types kiln lacks.
std::optional<DType> DTypeFromOnnx(int32_t onnx_type);
const char* OnnxTypeName(int32_t onnx_type);
// A TensorProto's value; external data is read relative to `base_dir`.
Tensor TensorFromProto(const ::onnx::TensorProto& t, const std::string& base_dir);

class Importer {
 public:
  Importer(const OnnxImportOptions& options, std::string source, std::string base_dir)
      : options_(options), source_(std::move(source)), base_dir_(std::move(base_dir)) {}

  OnnxModel Run(const ::onnx::ModelProto& model);

  // --- What converters see of the current node. ---
  const ::onnx::NodeProto& node() const { return *node_; }
  int64_t opset() const { return opset_; }
  int NumIn() const { return node_->input_size(); }
  // Whether optional input i is given (present and not named "").
  bool HasIn(int i) const { return i < node_->input_size() && !node_->input(i).empty(); }
  V In(int i);
  int NumOut() const { return node_->output_size(); }
  bool WantsOut(int i) const { return i < node_->output_size() && !node_->output(i).empty(); }
  void SetOut(int i, V v);

  // By value: Emit may grow the value table, so references into it would dangle.
  std::vector<int64_t> Shape(V v) const { return values_.at(size_t(v)).shape; }
  int Rank(V v) const { return int(Shape(v).size()); }
  DType Type(V v) const { return values_.at(size_t(v)).dtype; }
  // Known at import time and not overridable: ops on it are evaluated now.
  bool IsConst(V v) const;
  // The value of input i, which must be known at import time (an overridable initializer's
  // default counts); UserError naming `what` otherwise.
  Tensor ConstIn(int i, const char* what);
  std::vector<int64_t> ConstInts(int i, const char* what);
  std::vector<double> ConstDoubles(int i, const char* what);

  bool HasAttr(const char* name) const { return FindAttr(name) != nullptr; }
  const ::onnx::AttributeProto* FindAttr(const char* name) const;
  int64_t AttrInt(const char* name, int64_t def) const;
  float AttrFloat(const char* name, float def) const;
  std::string AttrString(const char* name, const std::string& def) const;
  std::vector<int64_t> AttrInts(const char* name, std::vector<int64_t> def = {}) const;
  std::vector<float> AttrFloats(const char* name) const;
  Tensor AttrTensor(const char* name) const;

  // Appends kiln op `op` with string attributes; returns its first / every output.
  V Emit(const std::string& op, const std::vector<V>& in, const AttrMap& attrs = {});
  std::vector<V> EmitAll(const std::string& op, const std::vector<V>& in,
                         const AttrMap& attrs = {});
  // A constant value.
  V Const(Tensor t);
  V ScalarConst(double v, DType t) { return Const(Tensor::FromValues({}, t, {v})); }

  // Short forms used by many converters.
  V Reshape(V v, const std::vector<int64_t>& dims);
  V Cast(V v, DType t);
  // v broadcast (NumPy rules) to `dims`.
  V BroadcastTo(V v, const std::vector<int64_t>& dims);
  // Applies a scalar op (_mul_scalar, ...) unless it is the identity.
  V ScalarOp(const std::string& op, V v, double s);

  [[noreturn]] void Fail(const std::string& message) const;

 private:
  Entry Materialize(V v);
  std::string UniqueVarName(const std::string& want);
  V NewValue(Value v);
  void AddInputs(const ::onnx::GraphProto& graph);
  void CheckSupported(const ::onnx::GraphProto& graph);

  const OnnxImportOptions& options_;
  std::string source_, base_dir_;
  Graph g_;
  std::map<std::string, Tensor> params_;
  std::vector<Value> values_;
  std::unordered_map<std::string, V> by_name_;
  std::set<std::string> var_names_;
  const ::onnx::NodeProto* node_ = nullptr;
  std::string node_label_;  // the kiln name of the node's first emitted op
  int emitted_ = 0;
  int64_t opset_ = 0;
};

// NumPy broadcasting of two shapes; nullopt when they do not broadcast.
std::optional<std::vector<int64_t>> BroadcastShapes(const std::vector<int64_t>& a,
                                                    const std::vector<int64_t>& b);
// Normalises an ONNX axis (negative counts from the end) for rank `rank`; fails naming `what`.
int NormAxis(const Importer& im, int64_t axis, int rank, const char* what);
// "(2, 3)".
std::string DimsText(const std::vector<int64_t>& dims);

}  // namespace kiln::onnx_import
