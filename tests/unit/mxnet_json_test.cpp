// mxnet_json_test.cpp - MXNet symbol JSON: a real-layout fixture, legacy files, saving, round
// trips with facts, and a UserError naming the node for every kind of malformed file.
#include "kiln/ir/mxnet_json.h"

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "kiln/ir/text.h"
#include "test_util.h"

namespace kiln {
namespace {

std::string ReadTestData(const std::string& name) {
  // CTest sets KILN_TEST_DATA; run by hand, the data sits next to this file's folder.
  const char* dir = std::getenv("KILN_TEST_DATA");
  std::string here = __FILE__;
  std::string path =
      (dir ? std::string(dir) : here.substr(0, here.rfind('/')) + "/../data") + "/" + name;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Names(const Graph& g, const std::vector<uint32_t>& ids) {
  std::vector<std::string> out;
  for (uint32_t i : ids) out.push_back(g.node(i).name);
  return out;
}

TEST(MXNetJson, LoadsTheMlpFixtureAsMXNetWroteIt) {
  Graph g = LoadMXNetJson(ReadTestData("mxnet_mlp-symbol.json"), "mxnet_mlp-symbol.json");
  ASSERT_EQ(g.num_nodes(), 14u);
  EXPECT_EQ(Names(g, g.ArgumentNodes()),
            (std::vector<std::string>{"data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias",
                                      "fc3_weight", "fc3_bias", "softmax_label"}));
  EXPECT_TRUE(g.AuxiliaryNodes().empty());
  EXPECT_EQ(g.outputs(), (std::vector<Entry>{{13, 0}}));
  EXPECT_EQ(g.node(13).op_name(), "SoftmaxOutput");
  EXPECT_EQ(g.node(3).op_name(), "FullyConnected");
  EXPECT_EQ(g.node(3).inputs, (std::vector<Entry>{{0, 0}, {1, 0}, {2, 0}}));
  EXPECT_EQ(g.node(3).op->attrs.print(g.node(3).attrs), (AttrList{{"num_hidden", "128"}}));
  EXPECT_EQ(g.node(8).op->attrs.print(g.node(8).attrs), (AttrList{{"act_type", "relu"}}));
  // MXNet copies an op's attributes onto the variables it creates; on a variable they are extra.
  EXPECT_EQ(g.node(5).extra, (AttrMap{{"num_hidden", "64"}}));
  // The file is complete enough to infer every shape from the data's.
  InferOptions opt;
  opt.shapes["data"] = Shape{100, 784};
  opt.shapes["softmax_label"] = Shape{100};
  EXPECT_TRUE(InferShapes(g, opt));
  EXPECT_EQ(g.shape(Entry{13, 0}), (Shape{100, 10}));
  EXPECT_EQ(g.shape(Entry{9, 0}), (Shape{10, 64}));
}

// An MXNet 0.8-era file: "param" and "attr", two-element inputs, bare hidden keys, and
// "weight_lr_mult" on an op node meaning "lr_mult of my weight input".
constexpr const char* kLegacy = R"({
  "nodes": [
    {"op": "null", "param": {}, "name": "data", "inputs": [], "backward_source_id": -1,
     "attr": {"ctx_group": "stage1", "lr_mult": "0.2"}},
    {"op": "null", "param": {}, "name": "w", "inputs": [], "backward_source_id": -1},
    {"op": "null", "param": {}, "name": "b", "inputs": [], "backward_source_id": -1},
    {"op": "FullyConnected", "param": {"no_bias": "False", "num_hidden": "16"}, "name": "fc",
     "inputs": [[0, 0], [1, 0], [2, 0]], "backward_source_id": -1,
     "attr": {"ctx_group": "stage1", "wd_mult": "0.3", "weight_lr_mult": "1.2"}},
    {"op": "Activation", "param": {"act_type": "relu"}, "name": "act", "inputs": [[3, 0]],
     "backward_source_id": -1}
  ],
  "arg_nodes": [0, 1, 2],
  "heads": [[4, 0]]
})";

TEST(MXNetJson, LoadsLegacyParamAttrAndTwoElementInputs) {
  Graph g = LoadMXNetJson(kLegacy, "legacy.json");
  ASSERT_EQ(g.num_nodes(), 5u);
  EXPECT_EQ(g.node(3).inputs, (std::vector<Entry>{{0, 0}, {1, 0}, {2, 0}}));
  EXPECT_EQ(g.outputs(), (std::vector<Entry>{{4, 0}}));
  EXPECT_EQ(g.node(3).op->attrs.print(g.node(3).attrs), (AttrList{{"num_hidden", "16"}}));
  EXPECT_EQ(g.node(0).extra, (AttrMap{{"__ctx_group__", "stage1"}, {"__lr_mult__", "0.2"}}));
  EXPECT_EQ(g.node(3).extra, (AttrMap{{"__ctx_group__", "stage1"}, {"__wd_mult__", "0.3"}}));
  EXPECT_EQ(g.node(1).extra, (AttrMap{{"__lr_mult__", "1.2"}}));
  EXPECT_TRUE(g.node(2).extra.empty());
  // What was loaded prints as text and parses back.
  std::string text = PrintGraph(g);
  EXPECT_EQ(PrintGraph(ParseGraph(text)), text);
}

TEST(MXNetJson, LegacyFilesGainTheAuxiliaryStatesMXNet08LeftImplicit) {
  const char* text = R"({"nodes": [
    {"op": "null", "param": {}, "name": "x", "inputs": []},
    {"op": "null", "param": {}, "name": "bn_gamma", "inputs": []},
    {"op": "null", "param": {}, "name": "bn_beta", "inputs": []},
    {"op": "BatchNorm", "param": {"eps": "0.001"}, "name": "bn",
     "inputs": [[0, 0], [1, 0], [2, 0]]}],
    "arg_nodes": [0, 1, 2], "heads": [[3, 0]]})";
  Graph g = LoadMXNetJson(text, "bn08.json");
  EXPECT_EQ(Names(g, g.ArgumentNodes()), (std::vector<std::string>{"x", "bn_gamma", "bn_beta"}));
  EXPECT_EQ(Names(g, g.AuxiliaryNodes()),
            (std::vector<std::string>{"bn_moving_mean", "bn_moving_var"}));
  EXPECT_EQ(g.outputs(), (std::vector<Entry>{{5, 0}}));
}

TEST(MXNetJson, BatchNormMovingStatisticsAreAuxiliaryStates) {
  const char* text = R"({"nodes": [
    {"op": "null", "name": "x", "inputs": []},
    {"op": "null", "name": "bn_gamma", "inputs": []},
    {"op": "null", "name": "bn_beta", "inputs": []},
    {"op": "null", "name": "bn_moving_mean", "attrs": {"__init__": "[\"zero\", {}]"}, "inputs": []},
    {"op": "null", "name": "bn_moving_var", "attrs": {"__init__": "[\"one\", {}]"}, "inputs": []},
    {"op": "BatchNorm", "name": "bn", "attrs": {"fix_gamma": "False"},
     "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 1], [4, 0, 1]]}],
    "arg_nodes": [0, 1, 2, 3, 4], "node_row_ptr": [0, 1, 2, 3, 4, 5, 8],
    "heads": [[5, 0, 0]], "attrs": {"mxnet_version": ["int", 10901]}})";
  Graph g = LoadMXNetJson(text, "bn.json");
  EXPECT_EQ(Names(g, g.ArgumentNodes()), (std::vector<std::string>{"x", "bn_gamma", "bn_beta"}));
  EXPECT_EQ(Names(g, g.AuxiliaryNodes()),
            (std::vector<std::string>{"bn_moving_mean", "bn_moving_var"}));
  EXPECT_EQ(g.node(3).extra.at("__init__"), "[\"zero\", {}]");
  std::string saved = SaveMXNetJson(g);
  EXPECT_EQ(SaveMXNetJson(LoadMXNetJson(saved)), saved);
}

TEST(MXNetJson, SavesMXNet1xLayout) {
  Graph g = ParseGraph(R"kir(graph {
  %data = var {__shape__="(1, 8)"}
  %w = var
  %fc = FullyConnected(%data, %w) {num_hidden=4, no_bias=True, __lr_mult__=2}
  %act = Activation(%fc) {act_type=relu}
  return %act, %fc
})kir");
  EXPECT_EQ(SaveMXNetJson(g), R"json({
  "nodes": [
    {
      "op": "null",
      "name": "data",
      "attrs": {
        "__shape__": "(1, 8)"
      },
      "inputs": []
    },
    {
      "op": "null",
      "name": "w",
      "inputs": []
    },
    {
      "op": "FullyConnected",
      "name": "fc",
      "attrs": {
        "num_hidden": "4",
        "no_bias": "True",
        "__lr_mult__": "2"
      },
      "inputs": [[0, 0, 0], [1, 0, 0]]
    },
    {
      "op": "Activation",
      "name": "act",
      "attrs": {
        "act_type": "relu"
      },
      "inputs": [[2, 0, 0]]
    }
  ],
  "arg_nodes": [0, 1],
  "node_row_ptr": [0, 1, 2, 3, 4],
  "heads": [[3, 0, 0], [2, 0, 0]],
  "attrs": {
    "mxnet_version": ["int", 10901]
  }
}
)json");
}

TEST(MXNetJson, FactsRoundTripIncludingUnknowns) {
  Graph g = ParseGraph(R"(graph {
  %a = var : float32[2, 3]
  %b = var : ?[?, 3]
  %c = var : int32[*]
  %d = var
  %y = Activation(%a) {act_type=sigmoid} : float16[]
  return %y, %b, %c, %d
})");
  std::string json = SaveMXNetJson(g);
  EXPECT_NE(json.find(R"("shape": ["list_shape", [[2, 3], [-1, 3], null, null, []]])"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("dtype": ["list_int", [0, -1, 4, -1, 2]])"), std::string::npos) << json;
  Graph back = LoadMXNetJson(json);
  EXPECT_EQ(back.shapes, g.shapes);
  EXPECT_EQ(back.dtypes, g.dtypes);
  EXPECT_EQ(PrintGraph(back), PrintGraph(g));
  EXPECT_EQ(SaveMXNetJson(back), json);
}

TEST(MXNetJson, RepeatedOpNamesLoadAndPrintUniquely) {
  const char* text = R"({"nodes": [
    {"op": "null", "name": "x", "inputs": []},
    {"op": "Activation", "name": "a", "attrs": {"act_type": "relu"}, "inputs": [[0, 0, 0]]},
    {"op": "Activation", "name": "a", "attrs": {"act_type": "tanh"}, "inputs": [[1, 0, 0]]}],
    "heads": [[2, 0, 0]], "attrs": {"mxnet_version": ["int", 10901]}})";
  Graph g = LoadMXNetJson(text);
  std::string printed = PrintGraph(g);
  EXPECT_NE(printed.find("%a_1 = Activation(%a) {act_type=tanh}"), std::string::npos) << printed;
  EXPECT_EQ(PrintGraph(ParseGraph(printed)), printed);
}

// A one-variable, one-FC file whose FC node is `fc_node` (JSON text) and heads `heads`.
std::string WithNode(const std::string& fc_node, const std::string& heads = "[[3, 0, 0]]") {
  return StrCat(R"({"nodes": [
    {"op": "null", "name": "x", "inputs": []},
    {"op": "null", "name": "w", "inputs": []},
    {"op": "null", "name": "b", "inputs": []},
    )",
                fc_node, R"(], "heads": )", heads,
                R"(, "attrs": {"mxnet_version": ["int", 10901]}})");
}

void ExpectLoadError(const std::string& text, const std::vector<std::string>& parts) {
  test::ExpectUserError([&] { LoadMXNetJson(text, "bad.json"); }, parts);
}

TEST(MXNetJsonErrors, MalformedFilesNameTheNodeAndTheProblem) {
  const std::string ok = R"({"op": "FullyConnected", "name": "fc", "attrs": {"num_hidden": "4"},
      "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]})";
  ASSERT_NO_THROW(LoadMXNetJson(WithNode(ok)));

  ExpectLoadError("{\"nodes\": [}", {"bad.json:1:12: ", "expected a JSON value"});
  ExpectLoadError("[]", {"bad.json: expected a JSON object at the top level, got an array"});
  ExpectLoadError("{\"heads\": []}", {"bad.json: missing \"nodes\""});
  ExpectLoadError("{\"nodes\": {}, \"heads\": []}",
                  {"bad.json: \"nodes\" must be an array, not an object"});
  ExpectLoadError("{\"nodes\": [], \"attrs\": 3}", {"\"attrs\" must be an object"});
  ExpectLoadError("{\"nodes\": []}", {"bad.json: missing \"heads\""});
  ExpectLoadError(WithNode("7"), {"bad.json: node 3: expected an object, got an integer"});
  ExpectLoadError(WithNode(R"({"op": "FullyConnected", "inputs": []})"),
                  {"node 3: missing \"name\""});
  ExpectLoadError(WithNode(R"({"name": "fc", "inputs": []})"), {"node 3 \"fc\": missing \"op\""});
  ExpectLoadError(WithNode(R"({"op": 5, "name": "fc", "inputs": []})"),
                  {"node 3 \"fc\": \"op\" must be a string, not an integer"});
  ExpectLoadError(WithNode(R"({"op": "FullyConnected", "name": "fc"})"),
                  {"node 3 \"fc\": missing \"inputs\""});
  ExpectLoadError(WithNode(R"({"op": "Bogus", "name": "fc", "inputs": []})"),
                  {"node 3 \"fc\": unknown op \"Bogus\""});
  ExpectLoadError(
      WithNode(R"({"op": "FullyConnected", "name": "fc", "attrs": {"num_hidden": "abc"},
      "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]})"),
      {"node 3 \"fc\" (FullyConnected): attribute num_hidden: expected an integer, got \"abc\""});
  ExpectLoadError(WithNode(R"({"op": "FullyConnected", "name": "fc", "attrs": {"num_hidden": 4},
      "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]})"),
                  {"node 3 \"fc\": attribute \"num_hidden\" must be a string, not an integer"});
  ExpectLoadError(WithNode(R"({"op": "FullyConnected", "name": "fc", "attrs": [],
      "inputs": []})"),
                  {"node 3 \"fc\": \"attrs\" must be an object, not an array"});
  ExpectLoadError(WithNode(R"({"op": "FullyConnected", "name": "fc", "attrs": {"num_hidden": "4"},
      "inputs": [[0, 0, 0], [1, 0, 0]]})"),
                  {"node 3 \"fc\" (FullyConnected): has 2 inputs but the op takes 3 "
                   "(data, weight, bias)"});
  ExpectLoadError(WithNode(R"({"op": "FullyConnected", "name": "fc", "attrs": {"num_hidden": "4"},
      "inputs": [[0, 0, 0], [1, 0, 0], [3, 0, 0]]})"),
                  {"node 3 \"fc\" (FullyConnected): inputs[2]: refers to node 3, which does not "
                   "precede this node"});
  ExpectLoadError(WithNode(R"({"op": "FullyConnected", "name": "fc", "attrs": {"num_hidden": "4"},
      "inputs": [[0, 0, 0], [-1, 0, 0], [2, 0, 0]]})"),
                  {"node 3 \"fc\" (FullyConnected): inputs[1]: refers to node -1"});
  ExpectLoadError(WithNode(R"({"op": "FullyConnected", "name": "fc", "attrs": {"num_hidden": "4"},
      "inputs": [[0, 1, 0], [1, 0, 0], [2, 0, 0]]})"),
                  {"node 3 \"fc\" (FullyConnected): inputs[0]: refers to output 1 of node 0 "
                   "\"x\", which has 1 output"});
  ExpectLoadError(WithNode(R"({"op": "FullyConnected", "name": "fc", "attrs": {"num_hidden": "4"},
      "inputs": [[0, 0, 0, 0], [1, 0, 0], [2, 0, 0]]})"),
                  {"node 3 \"fc\" (FullyConnected): inputs[0]: expected [node, output] or "
                   "[node, output, version], got an array of 4"});
  ExpectLoadError(WithNode(R"({"op": "FullyConnected", "name": "fc", "attrs": {"num_hidden": "4"},
      "inputs": [[0, "0"], [1, 0, 0], [2, 0, 0]]})"),
                  {"node 3 \"fc\" (FullyConnected): inputs[0]: expected integers"});
  ExpectLoadError(WithNode(R"({"op": "null", "name": "v", "inputs": [[0, 0, 0]]})", "[[0, 0]]"),
                  {"node 3 \"v\": a variable (op \"null\") has 1 inputs"});
  ExpectLoadError(WithNode(ok, "[[4, 0, 0]]"),
                  {"bad.json: heads[0]: refers to node 4, which does not exist (the file has 4 "
                   "nodes)"});
  ExpectLoadError(WithNode(ok, "[[3, 2]]"),
                  {"heads[0]: refers to output 2 of node 3 \"fc\", which has 1 output"});
  ExpectLoadError(WithNode(ok, "7"), {"bad.json: \"heads\" must be an array, not an integer"});
  ExpectLoadError(R"({"nodes": [{"op": "null", "name": "x", "inputs": []}], "heads": [[0, 0]],
      "attrs": {"shape": ["list_shape", [[1], [2]]]}})",
                  {"attrs \"shape\" has 2 entries but the graph has 1"});
  ExpectLoadError(R"({"nodes": [{"op": "null", "name": "x", "inputs": []}], "heads": [[0, 0]],
      "attrs": {"dtype": ["list_int", [99]]}})",
                  {"attrs \"dtype\"[0] is not an MXNet type flag"});
  ExpectLoadError(R"({"nodes": [], "heads": [], "attrs": {"mxnet_version": 10901}})",
                  {"\"mxnet_version\" must be [\"int\", VERSION]"});
}

TEST(MXNetJsonErrors, TruncatedAndMutatedFilesAreUserErrorsOrGraphs) {
  std::vector<std::string> docs = {kLegacy};
  if (OpRegistry::Global().Find("SoftmaxOutput"))
    docs.push_back(ReadTestData("mxnet_mlp-symbol.json"));
  std::mt19937 rng(5);
  const char chars[] = "{}[]\",:0123456789-nul \\";
  for (const std::string& doc : docs) {
    for (size_t n = 0; n + 1 < doc.size(); n += 7)
      EXPECT_THROW(LoadMXNetJson(doc.substr(0, n)), UserError) << "prefix of " << n;
    int errors = 0;
    for (int iter = 0; iter < 2000; ++iter) {
      std::string s = doc;
      int edits = 1 + int(rng() % 3);
      for (int k = 0; k < edits; ++k) s[rng() % s.size()] = chars[rng() % (sizeof(chars) - 1)];
      try {
        Graph g = LoadMXNetJson(s);
        // Whatever loads saves and loads back to the same file.
        std::string saved = SaveMXNetJson(g);
        EXPECT_EQ(SaveMXNetJson(LoadMXNetJson(saved)), saved);
      } catch (const UserError&) {
        ++errors;
      }
    }
    EXPECT_GT(errors, 500);
  }
}

}  // namespace
}  // namespace kiln
