// onnx_import_test.cpp - the ONNX importer's behaviour beyond single operators (which the
// conformance suite covers): shape subgraphs folded at import, initializers, dynamic dims,
// external data, unsupported operators listed at once, and MXNet JSON export of the result.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "kiln/frontend/onnx.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/mxnet_json.h"
#include "kiln/ir/text.h"
#include "onnx/onnx_pb.h"

namespace kiln {
namespace {

// A small ModelProto builder.
struct ModelBuilder {
  ::onnx::ModelProto m;
  explicit ModelBuilder(int64_t opset = 13) {
    m.set_ir_version(8);
    auto* op = m.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
  }
  ::onnx::GraphProto* g() { return m.mutable_graph(); }
  void Input(const std::string& name, std::vector<int64_t> dims,
             int type = ::onnx::TensorProto::FLOAT, const std::string& sym = "") {
    auto* v = g()->add_input();
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(type);
    auto* s = t->mutable_shape();
    for (int64_t d : dims) {
      auto* dim = s->add_dim();
      if (d < 0)
        dim->set_dim_param(sym);
      else
        dim->set_dim_value(d);
    }
  }
  void Output(const std::string& name) {
    auto* v = g()->add_output();
    v->set_name(name);
    v->mutable_type()->mutable_tensor_type()->set_elem_type(::onnx::TensorProto::FLOAT);
  }
  ::onnx::NodeProto* Node(const std::string& op, std::vector<std::string> in,
                          std::vector<std::string> out, const std::string& name = "") {
    auto* n = g()->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (auto& s : in) n->add_input(s);
    for (auto& s : out) n->add_output(s);
    return n;
  }
  ::onnx::TensorProto* Init(const std::string& name, std::vector<int64_t> dims,
                            std::vector<float> values) {
    auto* t = g()->add_initializer();
    t->set_name(name);
    t->set_data_type(::onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float v : values) t->add_float_data(v);
    return t;
  }
  void InitInts(const std::string& name, std::vector<int64_t> values) {
    auto* t = g()->add_initializer();
    t->set_name(name);
    t->set_data_type(::onnx::TensorProto::INT64);
    t->add_dims(int64_t(values.size()));
    for (int64_t v : values) t->add_int64_data(v);
  }
  std::string Bytes() const { return m.SerializeAsString(); }
};

void SetInt(::onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::INT);
  a->set_i(v);
}

void SetString(::onnx::NodeProto* n, const std::string& name, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::STRING);
  a->set_s(v);
}

Tensor Iota(std::vector<int64_t> shape) {
  std::vector<double> v(size_t(NumElements(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(i) * 0.5 - 3;
  return Tensor::FromValues(shape, DType::kFloat32, v);
}

TEST(OnnxImport, ShapeSubgraphFoldsToAConstantReshape) {
  // y = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])): PyTorch's flatten pattern.
  ModelBuilder b;
  b.Input("x", {2, 3, 4});
  b.InitInts("zero", {0});
  b.InitInts("minus_one", {-1});
  b.Node("Shape", {"x"}, {"s"});
  SetInt(b.Node("Gather", {"s", "zero"}, {"n"}), "axis", 0);
  SetInt(b.Node("Concat", {"n", "minus_one"}, {"target"}), "axis", 0);
  b.Node("Reshape", {"x", "target"}, {"y"}, "flatten");
  b.Output("y");
  OnnxModel m = ImportOnnx(b.Bytes());
  // Only the data variable and one reshape remain: the shape arithmetic ran at import.
  ASSERT_EQ(m.graph.num_nodes(), 2u) << PrintGraph(m.graph);
  EXPECT_EQ(m.graph.node(1).op_name(), "_np_reshape");
  Tensor x = Iota({2, 3, 4});
  std::vector<Tensor> y = Interpret(m.graph, {{"x", x}});
  EXPECT_EQ(y[0].shape(), (std::vector<int64_t>{2, 12}));
  EXPECT_EQ(y[0].ToDoubles(), x.ToDoubles());
}

TEST(OnnxImport, UnsupportedOperatorsAreListedAtOnce) {
  ModelBuilder b(11);
  b.Input("x", {2, 3});
  b.Node("Relu", {"x"}, {"a"});
  b.Node("FancyOp", {"a"}, {"b"}, "first");
  b.Node("GridSample", {"b", "b"}, {"c"}, "second");
  b.Node("Relu", {"c"}, {"y"});
  b.Output("y");
  try {
    ImportOnnx(b.Bytes(), {}, "m.onnx");
    FAIL() << "no error";
  } catch (const UnsupportedError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("2 node(s)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("node \"first\": FancyOp (opset 11)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("node \"second\": GridSample (opset 11)"), std::string::npos) << msg;
  }
}

TEST(OnnxImport, DynamicDimsNeedAShape) {
  ModelBuilder b;
  b.Input("data", {-1, 3}, ::onnx::TensorProto::FLOAT, "batch");
  b.Node("Relu", {"data"}, {"y"});
  b.Output("y");
  try {
    ImportOnnx(b.Bytes(), {}, "m.onnx");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("input \"data\" has a dynamic dim 0 (\"batch\")"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("--shape data="), std::string::npos) << e.what();
  }
  OnnxImportOptions opt;
  opt.input_shapes["data"] = {5, 3};
  OnnxModel m = ImportOnnx(b.Bytes(), opt);
  EXPECT_EQ(m.graph.node(0).extra.at("__shape__"), "(5, 3)");
  // A given shape that contradicts a static dim is an error too.
  opt.input_shapes["data"] = {5, 4};
  EXPECT_THROW(ImportOnnx(b.Bytes(), opt), UserError);
  // So is a shape for something that is not an input.
  opt.input_shapes = {{"nope", {1}}};
  EXPECT_THROW(ImportOnnx(b.Bytes(), opt), UserError);
}

TEST(OnnxImport, InitializersAreParametersAndInputsMayOverrideThem) {
  ModelBuilder b;
  b.Input("x", {2, 2});
  b.Input("w", {2, 2});  // also an initializer: a default the caller may replace
  b.Init("w", {2, 2}, {1, 2, 3, 4});
  b.Init("c", {2}, {10, 20});
  b.Node("MatMul", {"x", "w"}, {"xw"});
  b.Node("Add", {"xw", "c"}, {"y"});
  b.Output("y");
  OnnxModel m = ImportOnnx(b.Bytes());
  EXPECT_EQ(m.input_names, std::vector<std::string>{"x"});
  ASSERT_TRUE(m.params.count("w"));
  ASSERT_TRUE(m.params.count("c"));
  std::map<std::string, Tensor> vars = m.params;
  vars["x"] = Tensor::FromValues({2, 2}, DType::kFloat32, {1, 0, 0, 1});
  EXPECT_EQ(Interpret(m.graph, vars)[0].ToDoubles(), (std::vector<double>{11, 22, 13, 24}));
  vars["w"] = Tensor::FromValues({2, 2}, DType::kFloat32, {0, 0, 0, 0});
  EXPECT_EQ(Interpret(m.graph, vars)[0].ToDoubles(), (std::vector<double>{10, 20, 10, 20}));
}

TEST(OnnxImport, ExternalDataIsReadBesideTheModel) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / "kiln_onnx_external_test";
  fs::create_directories(dir);
  std::vector<float> w = {0.5f, -1.f, 2.f, 4.f};
  {
    std::ofstream f(dir / "weights.bin", std::ios::binary);
    f.write("PAD!", 4);  // the tensor starts at offset 4
    f.write(reinterpret_cast<const char*>(w.data()), std::streamsize(w.size() * 4));
  }
  ModelBuilder b;
  b.Input("x", {4});
  auto* t = b.g()->add_initializer();
  t->set_name("w");
  t->set_data_type(::onnx::TensorProto::FLOAT);
  t->add_dims(4);
  t->set_data_location(::onnx::TensorProto::EXTERNAL);
  for (auto [k, v] : {std::pair{"location", "weights.bin"}, {"offset", "4"}, {"length", "16"}}) {
    auto* kv = t->add_external_data();
    kv->set_key(k);
    kv->set_value(v);
  }
  b.Node("Mul", {"x", "w"}, {"y"});
  b.Output("y");
  {
    std::ofstream f(dir / "model.onnx", std::ios::binary);
    f << b.Bytes();
  }
  OnnxModel m = ImportOnnxFile((dir / "model.onnx").string());
  std::map<std::string, Tensor> vars = m.params;
  vars["x"] = Tensor::FromValues({4}, DType::kFloat32, {1, 1, 1, 1});
  EXPECT_EQ(Interpret(m.graph, vars)[0].ToDoubles(), (std::vector<double>{0.5, -1, 2, 4}));
  // A location outside the model's directory is refused.
  t->mutable_external_data(0)->set_value("../escape.bin");
  EXPECT_THROW(ImportOnnx(b.Bytes(), {}, "m.onnx"), UserError);
  fs::remove_all(dir);
}

TEST(OnnxImport, BadBytesAndBadOpsetsAreErrors) {
  EXPECT_THROW(ImportOnnx("not a model at all \x01\x02", {}, "junk.onnx"), UserError);
  ModelBuilder b(5);
  b.Input("x", {1});
  b.Node("Relu", {"x"}, {"y"});
  b.Output("y");
  EXPECT_THROW(ImportOnnx(b.Bytes()), UnsupportedError);
}

TEST(OnnxImport, ErrorsNameTheOnnxNode) {
  ModelBuilder b;
  b.Input("x", {2, 3});
  b.InitInts("shape", {4, 4});
  b.Node("Reshape", {"x", "shape"}, {"y"}, "bad_reshape");
  b.Output("y");
  try {
    ImportOnnx(b.Bytes(), {}, "m.onnx");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("m.onnx: ONNX node \"bad_reshape\" (Reshape): cannot "
                                         "reshape (2, 3) (6 elements) to (4, 4)"),
              std::string::npos)
        << e.what();
  }
}

// Gelu as exporters write it (x * 0.5 * (1 + erf(x / sqrt(2)))) imports op by op and computes
// the Gauss error function form.
TEST(OnnxImport, GeluSubgraphComputesGelu) {
  ModelBuilder b;
  b.Input("x", {5});
  b.Init("sqrt2", {}, {1.41421356f});
  b.Init("one", {}, {1.f});
  b.Init("half", {}, {0.5f});
  b.Node("Div", {"x", "sqrt2"}, {"a"});
  b.Node("Erf", {"a"}, {"e"});
  b.Node("Add", {"e", "one"}, {"p"});
  b.Node("Mul", {"x", "p"}, {"m"});
  b.Node("Mul", {"m", "half"}, {"y"});
  b.Output("y");
  OnnxModel m = ImportOnnx(b.Bytes());
  std::map<std::string, Tensor> vars = m.params;
  std::vector<double> xs = {-2, -0.5, 0, 0.7, 3};
  vars["x"] = Tensor::FromValues({5}, DType::kFloat32, xs);
  std::vector<double> y = Interpret(m.graph, vars)[0].ToDoubles();
  for (size_t i = 0; i < xs.size(); ++i)
    EXPECT_NEAR(y[i], 0.5 * xs[i] * (1 + std::erf(xs[i] / std::sqrt(2.0))), 1e-6) << xs[i];
}

// Hostile input: random byte changes to a valid model give a model or a kiln::Error (bad_alloc
// allowed for absurd sizes), never a crash or another exception.
TEST(OnnxImport, MutatedModelsGiveErrorsNotCrashes) {
  ModelBuilder b;
  b.Input("x", {1, 2, 5, 5});
  b.Init("w", {3, 2, 3, 3}, std::vector<float>(54, 0.5f));
  auto* conv = b.Node("Conv", {"x", "w"}, {"c"}, "conv");
  SetInt(conv, "group", 1);
  b.InitInts("shape", {1, -1});
  b.Node("Relu", {"c"}, {"r"});
  b.Node("Reshape", {"r", "shape"}, {"y"});
  b.Output("y");
  const std::string good = b.Bytes();
  ASSERT_NO_THROW(ImportOnnx(good));
  std::mt19937 gen(7);
  int imported = 0, errors = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bad = good;
    int flips = 1 + int(gen() % 4);
    for (int k = 0; k < flips; ++k) bad[gen() % bad.size()] = char(gen() & 0xff);
    try {
      OnnxModel m = ImportOnnx(bad, {}, "mutated.onnx");
      ++imported;
    } catch (const Error&) {
      ++errors;
    } catch (const std::bad_alloc&) {
      ++errors;
    }
  }
  EXPECT_EQ(imported + errors, 2000);
  EXPECT_GT(errors, 0);
}

// MXNet interchange: an imported graph (new ops included) saved as MXNet symbol JSON loads back
// to a graph that prints the same and computes the same.
TEST(OnnxImport, ImportedGraphsRoundTripThroughMXNetJson) {
  ModelBuilder b;
  b.Input("x", {2, 3, 4});
  b.Init("p", {1, 3, 1}, {0.5, 1, 2});
  b.InitInts("pads", {0, 1, 0, 0, 1, 2});
  b.InitInts("reps", {1, 1, 2});
  b.InitInts("idx", {1, 0, -1});
  b.Node("PRelu", {"x", "p"}, {"a"});
  SetString(b.Node("Pad", {"a", "pads"}, {"b"}), "mode", "reflect");
  b.Node("Tile", {"b", "reps"}, {"c"});
  b.Node("Gather", {"c", "idx"}, {"d"});
  b.Node("Greater", {"d", "d"}, {"e"});
  b.Node("Where", {"e", "d", "d"}, {"f"});
  b.Node("ReduceMax", {"f"}, {"y"});
  b.Output("y");
  OnnxModel m = ImportOnnx(b.Bytes());
  std::string json = SaveMXNetJson(m.graph);
  Graph back = LoadMXNetJson(json, "roundtrip.json");
  EXPECT_EQ(PrintGraph(back), PrintGraph(m.graph));
  EXPECT_EQ(SaveMXNetJson(back), json);
  std::map<std::string, Tensor> vars = m.params;
  vars["x"] = Iota({2, 3, 4});
  Tensor want = Interpret(m.graph, vars)[0];
  Tensor got = Interpret(back, vars)[0];
  EXPECT_EQ(got.shape(), want.shape());
  EXPECT_EQ(got.ToDoubles(), want.ToDoubles());
}

}  // namespace
}  // namespace kiln
