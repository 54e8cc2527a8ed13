// text_test.cpp - the text IR: printing, parsing, round trips and every parse error's position.
#include "kiln/ir/text.h"

#include <random>

#include "test_util.h"

namespace kiln {
namespace {

// The MLP of text.h's example, written with comments, odd spacing and quoted names.
constexpr const char* kMlp = R"(// a two-layer perceptron
graph {
  %data = var : float32[100, 784]   // the input
  %fc1_weight = var {__init__="xavier"}
  %fc1_bias = var
  %fc1 = FullyConnected(%data,%fc1_weight , %fc1_bias) {num_hidden = 128}
  %"relu 1" = Activation(%fc1) {act_type=relu} : float32[100, 128]
  %fc2 = FullyConnected(%"relu 1", %fc2_weight_not_yet) {num_hidden=10, no_bias=True}
  return %fc2
}
)";

// The same graph with %fc2_weight_not_yet defined, as the printer writes it.
constexpr const char* kMlpPrinted = R"(graph {
  %data = var : float32[100, 784]
  %fc1_weight = var {__init__=xavier}
  %fc1_bias = var
  %fc1 = FullyConnected(%data, %fc1_weight, %fc1_bias) {num_hidden=128}
  %"relu 1" = Activation(%fc1) {act_type=relu} : float32[100, 128]
  %w2 = var
  %fc2 = FullyConnected(%"relu 1", %w2) {num_hidden=10, no_bias=True}
  return %fc2
}
)";

// Expects ParseGraph(text) to fail with a message that starts with `position` ("t:3:5: ") and
// contains every string of `parts`.
void ExpectParseError(const std::string& text, const std::string& position,
                      const std::vector<std::string>& parts) {
  try {
    ParseGraph(text, "t");
    ADD_FAILURE() << "expected a parse error for:\n" << text;
  } catch (const UserError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.substr(0, position.size()), position) << "message: " << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg;
  }
}

TEST(TextIR, ParsesCommentsQuotedNamesAndSpacing) {
  std::string text = kMlp;
  // Undefined %fc2_weight_not_yet: define it first, then parse.
  text.replace(text.find("  %fc2 ="), 0, "  %fc2_weight_not_yet = var\n");
  Graph g = ParseGraph(text);
  ASSERT_EQ(g.num_nodes(), 7u);
  EXPECT_EQ(g.node(4).name, "relu 1");
  EXPECT_EQ(g.node(4).op_name(), "Activation");
  EXPECT_EQ(g.node(1).extra.at("__init__"), "xavier");
  EXPECT_EQ(g.node(6).inputs, (std::vector<Entry>{{4, 0}, {5, 0}}));
  EXPECT_EQ(g.outputs(), (std::vector<Entry>{{6, 0}}));
  ASSERT_TRUE(g.has_shapes());
  ASSERT_TRUE(g.has_dtypes());
  EXPECT_EQ(g.shape(Entry{0, 0}), (Shape{100, 784}));
  EXPECT_EQ(g.shape(Entry{4, 0}), (Shape{100, 128}));
  EXPECT_FALSE(g.shape(Entry{3, 0}).rank_known());
  EXPECT_EQ(g.dtype(Entry{3, 0}), DType::kUnknown);
  EXPECT_EQ(g.dtype(Entry{4, 0}), DType::kFloat32);
  const OpDef& fc = *g.node(6).op;
  auto printed = fc.attrs.print(g.node(6).attrs);
  ASSERT_EQ(printed.size(), 2u);
  EXPECT_EQ(printed[1].second, "True");
}

TEST(TextIR, PrintsCanonicalFormAndRoundTrips) {
  std::string text = kMlp;
  text.replace(text.find("  %fc2 ="), 0, "  %w2 = var\n");
  text.replace(text.find("%fc2_weight_not_yet"), std::string("%fc2_weight_not_yet").size(), "%w2");
  Graph g = ParseGraph(text);
  EXPECT_EQ(PrintGraph(g), kMlpPrinted);
  EXPECT_EQ(PrintGraph(ParseGraph(PrintGraph(g))), kMlpPrinted);
}

TEST(TextIR, EmptyGraphAndNoAnnotationsAllocateNoFacts) {
  Graph empty = ParseGraph("graph { return }");
  EXPECT_EQ(empty.num_nodes(), 0u);
  EXPECT_EQ(PrintGraph(empty), "graph {\n  return\n}\n");
  Graph g =
      ParseGraph("graph {\n %x = var\n %y = Activation(%x) {act_type=tanh}\n return %y, %x\n}");
  EXPECT_FALSE(g.has_shapes());
  EXPECT_FALSE(g.has_dtypes());
  EXPECT_EQ(g.outputs(), (std::vector<Entry>{{1, 0}, {0, 0}}));
}

TEST(TextIR, AnnotationsWithUnknownRankDimsAndDTypes) {
  // Only dtypes known: shapes stay unallocated.
  Graph d = ParseGraph("graph {\n %x = var : int64[*]\n return %x\n}");
  EXPECT_FALSE(d.has_shapes());
  ASSERT_TRUE(d.has_dtypes());
  EXPECT_EQ(d.dtypes[0], DType::kInt64);
  // Only shapes known (dtype `?`): dtypes stay unallocated.
  Graph s = ParseGraph("graph {\n %x = var : ?[?, 3]\n %s = var : ?[]\n return %x\n}");
  EXPECT_FALSE(s.has_dtypes());
  ASSERT_TRUE(s.has_shapes());
  EXPECT_EQ(s.shapes[0], (Shape{Shape::kUnknownDim, 3}));
  EXPECT_EQ(s.shapes[1], Shape::Scalar());
  // Each form prints back as written.
  const char* all = R"(graph {
  %a = var : float32[2, 3]
  %b = var : ?[?, 3]
  %c = var : float16[*]
  %d = var : bfloat16[]
  %e = var
  %f = elemwise_add(%a, %b) : float32[2, 3]
  return %f
}
)";
  EXPECT_EQ(PrintGraph(ParseGraph(all)), all);
}

TEST(TextIR, MultiOutputReferencesAndTupleAnnotations) {
  const char* text = R"(graph {
  %x = var : float32[2, 4]
  %s = SliceChannel(%x) {num_outputs=2} : (float32[2, 2], ?[*])
  %y = elemwise_add(%s#1, %s)
  return %s#1, %y, %s
}
)";
  Graph g = ParseGraph(text);
  EXPECT_EQ(g.node(2).inputs, (std::vector<Entry>{{1, 1}, {1, 0}}));
  EXPECT_EQ(g.outputs(), (std::vector<Entry>{{1, 1}, {2, 0}, {1, 0}}));
  EXPECT_EQ(g.shape(Entry{1, 0}), (Shape{2, 2}));
  EXPECT_FALSE(g.shape(Entry{1, 1}).rank_known());
  EXPECT_EQ(PrintGraph(g), text);
  ExpectParseError(
      "graph {\n %x = var\n %s = SliceChannel(%x) {num_outputs=2} : float32[2, 2]\n return %s\n}",
      "t:3:42: ", {"the type annotation has 1 type but SliceChannel \"s\" has 2 outputs"});
  ExpectParseError("graph {\n %x = var\n %s = SliceChannel(%x) {num_outputs=2}\n return %s#2\n}",
                   "t:4:9: ", {"%s#2: SliceChannel \"s\" has 2 outputs"});
}

TEST(TextIR, ExtraAttributesAndQuotedValues) {
  Graph g = ParseGraph(R"kir(graph {
  %x = var {__shape__="(2, 3)", lr_mult=2.0, "odd key"="a \"b\" \\ c"}
  %y = FullyConnected(%x, %x, %x) {__ctx_group__=dev1, num_hidden=3}
  return %y
})kir");
  EXPECT_EQ(g.node(0).extra.at("__shape__"), "(2, 3)");
  EXPECT_EQ(g.node(0).extra.at("lr_mult"), "2.0");
  EXPECT_EQ(g.node(0).extra.at("odd key"), "a \"b\" \\ c");
  EXPECT_EQ(g.node(1).extra, (AttrMap{{"__ctx_group__", "dev1"}}));
  // Op attributes first (declaration order), then extra keys (sorted).
  EXPECT_EQ(PrintGraph(g), R"kir(graph {
  %x = var {__shape__="(2, 3)", lr_mult=2.0, "odd key"="a \"b\" \\ c"}
  %y = FullyConnected(%x, %x, %x) {num_hidden=3, __ctx_group__=dev1}
  return %y
}
)kir");
}

TEST(TextIR, PrinterQuotesAndDeduplicatesNames) {
  Graph g;
  uint32_t x = g.AddVariable("x:0");
  uint32_t w = g.AddVariable("a//b");
  const OpDef& act = OpRegistry::Global().Get("Activation");
  for (int i = 0; i < 3; ++i) {
    Node n;
    n.op = &act;
    n.name = i == 2 ? "act_1" : "act";  // "act" twice, and "act_1" taken
    n.attrs = act.attrs.parse({{"act_type", "relu"}});
    n.inputs = {Entry{i == 0 ? x : w, 0}};
    g.AddNode(std::move(n));
  }
  g.AddOutput(Entry{2, 0});
  g.AddOutput(Entry{3, 0});
  std::string text = PrintGraph(g);
  EXPECT_EQ(text, R"(graph {
  %"x:0" = var
  %"a//b" = var
  %act = Activation(%"x:0") {act_type=relu}
  %act_2 = Activation(%"a//b") {act_type=relu}
  %act_1 = Activation(%"a//b") {act_type=relu}
  return %act, %act_2
}
)");
  EXPECT_EQ(PrintGraph(ParseGraph(text)), text);
}

TEST(TextIR, NamesStopBeforeComments) {
  Graph g = ParseGraph("graph {\n  %a/b = var// note\n  return %a/b// done\n}");
  EXPECT_EQ(g.node(0).name, "a/b");
}

TEST(TextIR, AliasesResolveToTheCanonicalName) {
  const OpDef* with_alias = nullptr;
  for (const OpDef* op : OpRegistry::Global().List())
    if (!op->aliases().empty() && op->attrs.field_names.empty()) with_alias = op;
  ASSERT_NE(with_alias, nullptr) << "no attribute-free op with an alias";
  Attrs none = with_alias->attrs.parse({});
  std::string args;
  std::string vars;
  for (int i = 0; i < with_alias->NumInputs(none); ++i) {
    vars += StrCat("  %v", i, " = var\n");
    args += StrCat(i ? ", " : "", "%v", i);
  }
  Graph g = ParseGraph(StrCat("graph {\n", vars, "  %y = ", with_alias->aliases()[0], "(", args,
                              ")\n  return %y\n}"));
  EXPECT_EQ(g.node(g.num_nodes() - 1).op, with_alias);
  EXPECT_NE(PrintGraph(g).find(StrCat("= ", with_alias->name(), "(")), std::string::npos);
}

TEST(TextIRErrors, MeaningErrorsPointAtTheirToken) {
  ExpectParseError("graph {\n  %x = var\n  %y = Foo(%x)\n  return %y\n}",
                   "t:3:8: ", {"unknown op \"Foo\""});
  ExpectParseError(
      "graph {\n  %x = var\n  %y = FullyConnected(%x, %x, %x) {no_bias=False, "
      "num_hidden=abc}\n  return %y\n}",
      "t:3:51: ", {"FullyConnected \"y\": attribute num_hidden: expected an integer, got \"abc\""});
  ExpectParseError(
      "graph {\n  %x = var\n  %y = FullyConnected(%x, %x, %x) {bogus=1}\n  return %y\n}",
      "t:3:36: ", {"FullyConnected \"y\": unknown attribute \"bogus\""});
  ExpectParseError("graph {\n  %x = var\n  %y = FullyConnected(%x, %x, %x)\n  return %y\n}",
                   "t:3:8: ", {"FullyConnected \"y\": missing required attribute num_hidden"});
  ExpectParseError(
      "graph {\n  %x = var\n  %y = FullyConnected(%x, %x) {num_hidden=2}\n  return %y\n}",
      "t:3:8: ", {"FullyConnected \"y\": takes 3 inputs (data, weight, bias) but 2 were given"});
  ExpectParseError("graph {\n  %x = var\n  %y = Activation(%z) {act_type=relu}\n  return %y\n}",
                   "t:3:19: ", {"undefined value %z"});
  // A use before the definition is undefined too: the text is in topological order.
  ExpectParseError("graph {\n  %y = Activation(%x) {act_type=relu}\n  %x = var\n  return %y\n}",
                   "t:2:19: ", {"undefined value %x"});
  ExpectParseError("graph {\n  %x = var\n  %\"x\" = var\n  return %x\n}",
                   "t:3:3: ", {"duplicate name %\"x\" (first defined at 2:3)"});
  ExpectParseError("graph {\n  %x = var\n  return %x#1\n}",
                   "t:3:10: ", {"%x#1: var \"x\" has 1 output"});
  ExpectParseError("graph {\n  %x = var : (float32[1], float32[2])\n  return %x\n}",
                   "t:2:14: ", {"the type annotation has 2 types but var \"x\" has 1 output"});
  ExpectParseError("graph {\n  %x = var : flaot32[1]\n  return %x\n}",
                   "t:2:14: ", {"unknown dtype \"flaot32\""});
}

TEST(TextIRErrors, SyntaxErrorsPointAtTheirToken) {
  ExpectParseError("", "t:1:1: ", {"expected 'graph', got the end of the input"});
  ExpectParseError("grap {}", "t:1:1: ", {"expected 'graph', got 'grap'"});
  ExpectParseError("graph {\n  %x = var\n}",
                   "t:3:1: ", {"expected a node definition (%name = ...) or 'return', got '}'"});
  ExpectParseError("graph {\n  %x = var\n  return %x\n}\nextra",
                   "t:5:1: ", {"unexpected 'extra' after the graph"});
  ExpectParseError("graph {\n  %x = var\n  %y = Activation(%x {act_type=relu}\n  return %y\n}",
                   "t:3:22: ", {"expected ')', got '{'"});
  ExpectParseError("graph {\n  %\"x = var\n  return %x\n}", "t:2:4: ", {"unterminated string"});
  ExpectParseError("graph {\n  %x = var {a=\"\\q\"}\n  return %x\n}",
                   "t:2:16: ", {"invalid escape"});
  ExpectParseError("graph {\n  %x = var {a=1, a=2}\n  return %x\n}",
                   "t:2:18: ", {"attribute a given twice"});
  ExpectParseError("graph {\n  %x = var {a=}\n  return %x\n}",
                   "t:2:15: ", {"expected an attribute value, got '}'"});
  ExpectParseError("graph {\n  %x = var : float32[-1]\n  return %x\n}",
                   "t:2:22: ", {"expected a dimension (a number or ?), got '-'"});
  ExpectParseError("graph {\n  %x = var : float32[99999999999999999999]\n  return %x\n}",
                   "t:2:22: ", {"a dimension (a number or ?) is too large"});
  ExpectParseError("graph {\n  %x = var : float32\n  return %x\n}",
                   "t:3:3: ", {"expected '[', got 'return'"});
  ExpectParseError("graph {\n  % = var\n  return\n}", "t:2:4: ", {"expected a name after '%'"});
  ExpectParseError("graph {\n  %\"a\xff\" = var\n  return\n}",
                   "t:2:6: ", {"invalid UTF-8 in a string"});
  // Columns count characters, not bytes.
  ExpectParseError("graph {\n  %\"é\" = vr\n  return\n}", "t:2:10: ", {"unknown op \"vr\""});
}

TEST(TextIRErrors, TruncatedAndMutatedTextIsAUserErrorOrAGraph) {
  const std::string text = kMlpPrinted;
  for (size_t n = 0; n + 1 < text.size(); ++n)
    EXPECT_THROW(ParseGraph(text.substr(0, n)), UserError) << "prefix of " << n;
  std::mt19937 rng(11);
  const char chars[] = "%#{}()[]=,:?*\"\\/ \n0123456789abz_.-\x80\xff";
  int errors = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s = text;
    int edits = 1 + int(rng() % 3);
    for (int k = 0; k < edits; ++k) s[rng() % s.size()] = chars[rng() % (sizeof(chars) - 1)];
    try {
      Graph g = ParseGraph(s);
      // Whatever parses prints and parses back to the same text.
      EXPECT_EQ(PrintGraph(ParseGraph(PrintGraph(g))), PrintGraph(g));
    } catch (const UserError&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 1000);
}

}  // namespace
}  // namespace kiln
