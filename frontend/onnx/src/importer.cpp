// importer.cpp - ONNX ModelProto to kiln Graph: values, emission with import-time evaluation,
// the checks of the model as a whole, and the public entry points.
#include "importer.h"

#include <fstream>
#include <sstream>

#include "kiln/ir/op.h"

namespace kiln::onnx_import {

std::optional<std::vector<int64_t>> BroadcastShapes(const std::vector<int64_t>& a,
                                                    const std::vector<int64_t>& b) {
  size_t n = std::max(a.size(), b.size());
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i + a.size() < n ? 1 : a[i + a.size() - n];
    int64_t db = i + b.size() < n ? 1 : b[i + b.size() - n];
    if (da != db && da != 1 && db != 1) return std::nullopt;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int NormAxis(const Importer& im, int64_t axis, int rank, const char* what) {
  if (axis < -rank || axis >= std::max(rank, 1))
    im.Fail(StrCat(what, " ", axis, " is out of range for rank ", rank));
  return int(axis < 0 ? axis + rank : axis);
}

std::string DimsText(const std::vector<int64_t>& dims) {
  return ShapeString(dims);
}

const ConverterTable& Converters() {
  static const ConverterTable table = [] {
    ConverterTable t;
    AddElementwiseConverters(t);
    AddTensorConverters(t);
    AddNNConverters(t);
    AddReduceConverters(t);
    AddMiscConverters(t);
    AddExtraConverters(t);
    return t;
  }();
  return table;
}

// --- Values. ---

V Importer::NewValue(Value v) {
  values_.push_back(std::move(v));
  return V(values_.size() - 1);
}

bool Importer::IsConst(V v) const {
  const Value& x = values_.at(size_t(v));
  return x.constant.defined() && !x.overridable;
}

V Importer::In(int i) {
  if (!HasIn(i)) Fail(StrCat("input ", i, " is missing"));
  auto it = by_name_.find(node_->input(i));
  if (it == by_name_.end())
    Fail(StrCat("input ", i, " \"", node_->input(i),
                "\" is not produced by an earlier node, an initializer or a graph input"));
  return it->second;
}

void Importer::SetOut(int i, V v) {
  if (!WantsOut(i)) return;
  by_name_[node_->output(i)] = v;
  Value& x = values_[size_t(v)];
  if (x.name.empty() || !x.entry) x.name = node_->output(i);
}

Tensor Importer::ConstIn(int i, const char* what) {
  V v = In(i);
  const Value& x = values_[size_t(v)];
  if (!x.constant.defined())
    Fail(StrCat(what, " (input ", i, " \"", node_->input(i),
                "\") must be known when the model is imported: kiln needs static shapes, and "
                "this value is computed from the graph's runtime inputs"));
  return x.constant;
}

std::vector<int64_t> Importer::ConstInts(int i, const char* what) {
  Tensor t = ConstIn(i, what);
  if (IsFloatingPoint(t.dtype()))
    Fail(StrCat(what, " (input ", i, ") has dtype ", DTypeName(t.dtype()),
                " but integers are expected"));
  std::vector<int64_t> out(size_t(t.size()));
  if (t.dtype() == DType::kInt64) {
    std::memcpy(out.data(), t.raw_data(), out.size() * 8);
  } else {
    for (size_t k = 0; k < out.size(); ++k) out[k] = int64_t(t.At(int64_t(k)));
  }
  return out;
}

std::vector<double> Importer::ConstDoubles(int i, const char* what) {
  return ConstIn(i, what).ToDoubles();
}

V Importer::Const(Tensor t) {
  Value v;
  v.shape = t.shape();
  v.dtype = t.dtype();
  v.constant = std::move(t);
  return NewValue(std::move(v));
}

// --- Attributes. ---

const ::onnx::AttributeProto* Importer::FindAttr(const char* name) const {
  for (const auto& a : node_->attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int64_t Importer::AttrInt(const char* name, int64_t def) const {
  const auto* a = FindAttr(name);
  if (!a) return def;
  if (a->type() != ::onnx::AttributeProto::INT && !a->has_i())
    Fail(StrCat("attribute ", name, " is not an integer"));
  return a->i();
}

float Importer::AttrFloat(const char* name, float def) const {
  const auto* a = FindAttr(name);
  if (!a) return def;
  if (a->type() == ::onnx::AttributeProto::INT) return float(a->i());
  return a->f();
}

std::string Importer::AttrString(const char* name, const std::string& def) const {
  const auto* a = FindAttr(name);
  return a ? a->s() : def;
}

std::vector<int64_t> Importer::AttrInts(const char* name, std::vector<int64_t> def) const {
  const auto* a = FindAttr(name);
  if (!a) return def;
  return std::vector<int64_t>(a->ints().begin(), a->ints().end());
}

std::vector<float> Importer::AttrFloats(const char* name) const {
  const auto* a = FindAttr(name);
  if (!a) return {};
  return std::vector<float>(a->floats().begin(), a->floats().end());
}

Tensor Importer::AttrTensor(const char* name) const {
  const auto* a = FindAttr(name);
  if (!a || !a->has_t()) Fail(StrCat("attribute ", name, " (a tensor) is missing"));
  return TensorFromProto(a->t(), base_dir_);
}

void Importer::Fail(const std::string& message) const {
  std::string who =
      node_ ? StrCat("ONNX node \"", node_label_, "\" (", node_->op_type(), "): ") : std::string();
  throw UserError(StrCat(source_, ": ", who, message));
}

// --- Emission. ---

std::string Importer::UniqueVarName(const std::string& want) {
  std::string name = want.empty() ? "const" : want;
  for (int k = 1; var_names_.count(name); ++k) name = StrCat(want, "_", k);
  var_names_.insert(name);
  return name;
}

Entry Importer::Materialize(V v) {
  Value& x = values_[size_t(v)];
  if (x.entry) return *x.entry;
  KILN_INTERNAL_CHECK(x.constant.defined(), "value without entry or constant");
  std::string want = x.name.empty() ? StrCat(node_label_, "_const") : x.name;
  std::string name = UniqueVarName(want);
  AttrMap extra{{"__shape__", attr_text::Print(x.shape)},
                {"__dtype__", std::string(DTypeName(x.dtype))}};
  if (x.shape.empty()) extra["__shape__"] = "()";
  uint32_t id = g_.AddVariable(name, std::move(extra));
  params_[name] = x.constant;
  x.entry = Entry{id, 0};
  return *x.entry;
}

std::vector<V> Importer::EmitAll(const std::string& op_name, const std::vector<V>& in,
                                 const AttrMap& attrs) {
  const OpDef& op = OpRegistry::Global().Get(op_name);
  std::string name = emitted_ == 0 ? node_label_ : StrCat(node_label_, "_", emitted_);
  ++emitted_;
  Attrs parsed;
  try {
    parsed = op.attrs.parse(attrs);
  } catch (const UserError& e) {
    Fail(StrCat("kiln op ", op_name, ": ", e.what()));
  }
  std::vector<kiln::Shape> in_shapes;
  std::vector<DType> in_types;
  bool all_const = true;
  for (V v : in) {
    in_shapes.emplace_back(Shape(v));
    in_types.push_back(Type(v));
    all_const = all_const && IsConst(v);
  }
  const int n_out = op.NumOutputs(parsed);
  KILN_INTERNAL_CHECK(int(in.size()) == op.NumInputs(parsed), op_name, " emitted with ", in.size(),
                      " inputs");
  std::vector<kiln::Shape> out_shapes(static_cast<size_t>(n_out));
  std::vector<DType> out_types(size_t(n_out), DType::kUnknown);
  ShapeInferCtx sctx(op, name, parsed, in_shapes, out_shapes);
  op.infer_shape()(sctx);
  TypeInferCtx tctx(op, name, parsed, in_types, out_types);
  op.infer_type()(tctx);
  for (int k = 0; k < n_out; ++k)
    KILN_INTERNAL_CHECK(
        out_shapes[size_t(k)].IsFullyKnown() && out_types[size_t(k)] != DType::kUnknown, op_name,
        " \"", name, "\": output ", k, " not inferred");
  std::vector<V> outs;
  if (all_const && !in.empty()) {
    // Evaluate now: the result is a constant, and the op never reaches the graph.
    KernelCtx kctx{op, name, parsed, {}, {}, false, 0};
    for (V v : in) kctx.in.push_back(values_[size_t(v)].constant);
    for (int k = 0; k < n_out; ++k)
      kctx.out.push_back(Tensor::Empty(out_shapes[size_t(k)].dims(), out_types[size_t(k)]));
    op.reference()(kctx);
    for (int k = 0; k < n_out; ++k) outs.push_back(Const(kctx.out[size_t(k)]));
    return outs;
  }
  Node n;
  n.op = &op;
  n.name = name;
  n.attrs = parsed;
  for (V v : in) n.inputs.push_back(Materialize(v));
  uint32_t id = g_.AddNode(std::move(n));
  for (int k = 0; k < n_out; ++k) {
    Value x;
    x.shape = out_shapes[size_t(k)].dims();
    x.dtype = out_types[size_t(k)];
    x.entry = Entry{id, uint32_t(k)};
    outs.push_back(NewValue(std::move(x)));
  }
  return outs;
}

V Importer::Emit(const std::string& op, const std::vector<V>& in, const AttrMap& attrs) {
  return EmitAll(op, in, attrs)[0];
}

V Importer::Reshape(V v, const std::vector<int64_t>& dims) {
  if (Shape(v) == dims) return v;
  return Emit("_np_reshape", {v}, {{"newshape", attr_text::Print(dims)}});
}

V Importer::Cast(V v, DType t) {
  if (Type(v) == t) return v;
  return Emit("Cast", {v}, {{"dtype", std::string(DTypeName(t))}});
}

V Importer::BroadcastTo(V v, const std::vector<int64_t>& dims) {
  if (Shape(v) == dims) return v;
  std::vector<int64_t> in = Shape(v);
  std::vector<int64_t> padded(dims.size() - in.size(), 1);
  padded.insert(padded.end(), in.begin(), in.end());
  V r = Reshape(v, padded);
  if (padded == dims) return r;
  return Emit("broadcast_to", {r}, {{"shape", attr_text::Print(dims)}});
}

V Importer::ScalarOp(const std::string& op, V v, double s) {
  if ((op == "_mul_scalar" || op == "_div_scalar") && s == 1) return v;
  if ((op == "_plus_scalar" || op == "_minus_scalar") && s == 0) return v;
  return Emit(op, {v}, {{"scalar", attr_text::Print(s)}});
}

// --- The model. ---

void Importer::AddInputs(const ::onnx::GraphProto& graph) {
  std::set<std::string> initializers;
  for (const auto& t : graph.initializer()) initializers.insert(t.name());
  std::set<std::string> inputs;
  for (const auto& in : graph.input()) inputs.insert(in.name());
  for (const auto& [name, dims] : options_.input_shapes)
    if (!inputs.count(name) || initializers.count(name))
      throw UserError(StrCat(source_, ": a shape is given for \"", name,
                             "\", which is not a runtime input of the model"));
  for (const auto& [name, value] : options_.input_values)
    if (!inputs.count(name) || initializers.count(name))
      throw UserError(StrCat(source_, ": a value is given for \"", name,
                             "\", which is not a runtime input of the model"));
  // Initializers: constants, or overridable parameters when also graph inputs.
  for (const auto& t : graph.initializer()) {
    Value v;
    v.constant = TensorFromProto(t, base_dir_);
    v.shape = v.constant.shape();
    v.dtype = v.constant.dtype();
    v.name = t.name();
    v.overridable = inputs.count(t.name()) > 0;
    V id = NewValue(std::move(v));
    by_name_[t.name()] = id;
    if (values_[size_t(id)].overridable) Materialize(id);
  }
  for (const auto& in : graph.input()) {
    if (initializers.count(in.name())) continue;
    if (!in.type().has_tensor_type())
      throw UnsupportedError(StrCat(source_, ": input \"", in.name(),
                                    "\" is not a tensor (sequences, maps and optionals are not "
                                    "supported)"));
    const auto& tt = in.type().tensor_type();
    std::optional<DType> dt = DTypeFromOnnx(tt.elem_type());
    if (!dt)
      throw UnsupportedError(StrCat(source_, ": input \"", in.name(), "\" has element type ",
                                    OnnxTypeName(tt.elem_type()), ", which kiln does not support"));
    if (auto fixed = options_.input_values.find(in.name()); fixed != options_.input_values.end()) {
      const Tensor& t = fixed->second;
      bool ok = t.dtype() == *dt;
      if (tt.has_shape()) {
        ok = ok && t.ndim() == tt.shape().dim_size();
        for (int k = 0; ok && k < t.ndim(); ++k)
          ok = !tt.shape().dim(k).has_dim_value() || tt.shape().dim(k).dim_value() == t.dim(k);
      }
      if (!ok)
        throw UserError(StrCat(source_, ": the value given for input \"", in.name(), "\" is ",
                               t.TypeString(), ", which the model's declaration does not accept"));
      Value v;
      v.shape = t.shape();
      v.dtype = t.dtype();
      v.name = in.name();
      v.constant = t;
      by_name_[in.name()] = NewValue(std::move(v));
      continue;
    }
    auto given = options_.input_shapes.find(in.name());
    if (!tt.has_shape() && given == options_.input_shapes.end())
      throw UserError(StrCat(source_, ": input \"", in.name(),
                             "\" has no shape in the model; give one with --shape ", in.name(),
                             "=D1xD2..."));
    std::vector<int64_t> dims;
    if (tt.has_shape())
      for (const auto& d : tt.shape().dim()) dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    if (given != options_.input_shapes.end()) {
      const auto& g = given->second;
      if (tt.has_shape() && g.size() != dims.size())
        throw UserError(StrCat(source_, ": the shape given for input \"", in.name(), "\" ",
                               DimsText(g), " has rank ", g.size(), " but the model's has rank ",
                               dims.size()));
      dims.resize(g.size(), -1);
      for (size_t k = 0; k < g.size(); ++k) {
        if (g[k] < 0) continue;
        if (dims[k] >= 0 && dims[k] != g[k])
          throw UserError(StrCat(source_, ": the shape given for input \"", in.name(), "\" ",
                                 DimsText(g), " has ", g[k], " at dim ", k,
                                 " but the model fixes it to ", dims[k]));
        dims[k] = g[k];
      }
    }
    for (size_t k = 0; k < dims.size(); ++k)
      if (dims[k] < 0) {
        std::string sym;
        if (tt.has_shape() && int(k) < tt.shape().dim_size() &&
            tt.shape().dim(int(k)).has_dim_param())
          sym = StrCat(" (\"", tt.shape().dim(int(k)).dim_param(), "\")");
        throw UserError(StrCat(source_, ": input \"", in.name(), "\" has a dynamic dim ", k, sym,
                               "; kiln needs static shapes: fix it with --shape ", in.name(),
                               "=D1xD2... (the API's OnnxImportOptions::input_shapes)"));
      }
    Value v;
    v.shape = dims;
    v.dtype = *dt;
    v.name = in.name();
    std::string var = UniqueVarName(in.name());
    if (var != in.name())
      throw UserError(StrCat(source_, ": graph input \"", in.name(), "\" is listed twice"));
    AttrMap extra{{"__shape__", dims.empty() ? "()" : attr_text::Print(dims)},
                  {"__dtype__", std::string(DTypeName(*dt))}};
    v.entry = Entry{g_.AddVariable(var, std::move(extra)), 0};
    by_name_[in.name()] = NewValue(std::move(v));
  }
}

// Operators whose semantics are the same from the given opset (below 7) through 17, so that
// models of those old opsets import too (kiln's range is 7 to 17).
const std::map<std::string, int64_t> kStableBefore7 = {{"Abs", 6},
                                                       {"Ceil", 6},
                                                       {"Concat", 4},
                                                       {"Elu", 6},
                                                       {"Exp", 6},
                                                       {"Floor", 6},
                                                       {"GlobalAveragePool", 1},
                                                       {"GlobalMaxPool", 1},
                                                       {"HardSigmoid", 6},
                                                       {"Identity", 1},
                                                       {"InstanceNormalization", 6},
                                                       {"LeakyRelu", 6},
                                                       {"Log", 6},
                                                       {"Neg", 6},
                                                       {"Not", 1},
                                                       {"Reciprocal", 6},
                                                       {"Relu", 6},
                                                       {"Selu", 6},
                                                       {"Shape", 1},
                                                       {"Sigmoid", 6},
                                                       {"Size", 1},
                                                       {"Softplus", 1},
                                                       {"Softsign", 1},
                                                       {"Sqrt", 6},
                                                       {"Tanh", 6},
                                                       {"Tile", 6},
                                                       {"Transpose", 1}};

void Importer::CheckSupported(const ::onnx::GraphProto& graph) {
  const ConverterTable& table = Converters();
  std::vector<std::string> missing;
  for (int i = 0; i < graph.node_size(); ++i) {
    const auto& n = graph.node(i);
    bool default_domain = n.domain().empty() || n.domain() == "ai.onnx";
    bool old_ok = true;
    if (opset_ < 7) {
      // Below opset 7 only operators whose definition has not changed since are accepted.
      auto it = kStableBefore7.find(n.op_type());
      old_ok = it != kStableBefore7.end() && opset_ >= it->second;
    }
    if (default_domain && table.count(n.op_type()) && old_ok) continue;
    std::string label = !n.name().empty()     ? StrCat("\"", n.name(), "\"")
                        : n.output_size() > 0 ? StrCat("#", i, " (output \"", n.output(0), "\")")
                                              : StrCat("#", i);
    missing.push_back(StrCat("  node ", label, ": ", n.domain().empty() ? "" : n.domain() + ".",
                             n.op_type(), " (opset ", opset_, ")"));
  }
  if (missing.empty()) return;
  std::string list;
  for (const auto& m : missing) list += "\n" + m;
  throw UnsupportedError(
      StrCat(source_, ": ", missing.size(), " node(s) use operators kiln cannot import:", list));
}

OnnxModel Importer::Run(const ::onnx::ModelProto& model) {
  for (const auto& op : model.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") opset_ = op.version();
  if (opset_ == 0 && model.opset_import_size() == 0) opset_ = 1;
  if (opset_ < 1 || opset_ > 17)
    throw UnsupportedError(StrCat(source_, ": the model uses opset ", opset_,
                                  " of the default domain; kiln imports opsets 7 to 17"));
  const auto& graph = model.graph();
  CheckSupported(graph);
  AddInputs(graph);
  const ConverterTable& table = Converters();
  for (int i = 0; i < graph.node_size(); ++i) {
    node_ = &graph.node(i);
    node_label_ = !node_->name().empty()                                  ? node_->name()
                  : node_->output_size() > 0 && !node_->output(0).empty() ? node_->output(0)
                                                                          : StrCat("node", i);
    emitted_ = 0;
    try {
      table.at(node_->op_type())(*this);
    } catch (const UserError& e) {
      std::string msg = e.what();
      if (msg.starts_with(source_ + ": ")) throw;
      Fail(msg);
    } catch (const UnsupportedError& e) {
      std::string msg = e.what();
      if (msg.starts_with(source_ + ": ")) throw;
      throw UnsupportedError(
          StrCat(source_, ": ONNX node \"", node_label_, "\" (", node_->op_type(), "): ", msg));
    }
    for (int k = 0; k < node_->output_size(); ++k)
      if (!node_->output(k).empty() && !by_name_.count(node_->output(k)))
        Fail(StrCat("output ", k, " (\"", node_->output(k), "\") is not supported by kiln"));
  }
  node_ = nullptr;
  OnnxModel m;
  for (const auto& out : graph.output()) {
    auto it = by_name_.find(out.name());
    if (it == by_name_.end())
      throw UserError(StrCat(source_, ": graph output \"", out.name(), "\" is never computed"));
    g_.AddOutput(Materialize(it->second));
    m.output_names.push_back(out.name());
  }
  std::set<std::string> initializers;
  for (const auto& t : graph.initializer()) initializers.insert(t.name());
  for (const auto& in : graph.input())
    if (!initializers.count(in.name()) && !options_.input_values.count(in.name()))
      m.input_names.push_back(in.name());
  m.graph = std::move(g_);
  m.params = std::move(params_);
  m.opset = opset_;
  m.ir_version = model.ir_version();
  return m;
}

}  // namespace kiln::onnx_import

namespace kiln {

OnnxModel ImportOnnx(std::string_view bytes, const OnnxImportOptions& options,
                     std::string_view source) {
  ::onnx::ModelProto model;
  if (bytes.size() > size_t(INT32_MAX) || !model.ParseFromArray(bytes.data(), int(bytes.size())))
    throw UserError(StrCat(source, ": not a serialized ONNX ModelProto"));
  onnx_import::Importer im(options, std::string(source), options.base_dir);
  return im.Run(model);
}

OnnxModel ImportOnnxFile(const std::string& path, const OnnxImportOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RuntimeError(StrCat("cannot open \"", path, "\""));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  OnnxImportOptions opt = options;
  if (opt.base_dir.empty()) {
    size_t slash = path.find_last_of('/');
    opt.base_dir = slash == std::string::npos ? "." : path.substr(0, slash);
  }
  return ImportOnnx(bytes.str(), opt, path);
}

std::vector<std::string> OnnxSupportedOps() {
  std::vector<std::string> out;
  for (const auto& [name, fn] : onnx_import::Converters()) out.push_back(name);
  return out;
}

}  // namespace kiln
