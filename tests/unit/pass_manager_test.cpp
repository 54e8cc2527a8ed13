// pass_manager_test.cpp - the pass registry and the pass manager: names, verification after
// each pass, IR dumps and timings.
#include "kiln/passes/pass_manager.h"

#include <sstream>

#include "kiln/ir/text.h"
#include "test_util.h"

namespace kiln {
namespace {

constexpr const char* kNet = R"(graph {
  %data = var
  %fc_weight = var
  %fc_bias = var
  %fc = FullyConnected(%data, %fc_weight, %fc_bias) {num_hidden=8}
  %relu = Activation(%fc) {act_type=relu}
  return %relu
})";

PassContext DataShape() {
  PassContext ctx;
  ctx.infer.shapes["data"] = Shape{4, 3};
  return ctx;
}

TEST(PassRegistry, HasTheBuiltinPasses) {
  const PassRegistry& r = PassRegistry::Global();
  for (const char* name : {"infer-shape", "infer-type", "verify"}) {
    ASSERT_NE(r.Find(name), nullptr) << name;
    EXPECT_FALSE(r.Get(name).description.empty());
  }
  EXPECT_NE(r.Describe().find("infer-shape"), std::string::npos);
}

TEST(PassRegistry, UnknownPassListsTheKnownOnes) {
  test::ExpectUserError(
      [] {
        PassManager pm({"infer-shape", "infer-shap"});
      },
      {"unknown pass \"infer-shap\"", "infer-shape, infer-type, ", "verify)"});
  PassRegistry r;
  test::ExpectUserError([&] { r.Get("x"); }, {"unknown pass \"x\" (passes: none)"});
  r.Register("a", "does a", [](Graph g, const PassContext&) { return g; });
  EXPECT_THROW(r.Register("a", "again", [](Graph g, const PassContext&) { return g; }),
               InternalError);
}

TEST(PassManager, RunsThePipelineInOrder) {
  PassManager pm({"infer-shape", "infer-type", "verify"});
  Graph g = pm.Run(ParseGraph(kNet), DataShape());
  ASSERT_TRUE(g.has_shapes() && g.has_dtypes());
  EXPECT_EQ(g.shape(g.outputs()[0]), (Shape{4, 8}));
  EXPECT_EQ(g.dtype(g.outputs()[0]), DType::kFloat32);
  // The inference passes report what they cannot find, naming the variable.
  test::ExpectUserError([&] { pm.Run(ParseGraph(kNet)); }, {"data"});
}

// A pass that breaks the graph: the FullyConnected node loses its bias input.
Graph DropAnInput(Graph g, const PassContext&) {
  for (uint32_t i = 0; i < g.num_nodes(); ++i)
    if (!g.node(i).is_variable() && g.node(i).inputs.size() == 3)
      g.mutable_node(i).inputs.pop_back();
  return g;
}

TEST(PassManager, VerifyEachCatchesAPassThatBreaksTheGraph) {
  PassRegistry r;
  RegisterBuiltinPasses(r);
  r.Register("break", "drops an input", DropAnInput);
  PassManager pm({"infer-shape", "break", "infer-type"}, r);
  pm.options().verify_each = true;
  try {
    pm.Run(ParseGraph(kNet), DataShape());
    ADD_FAILURE() << "expected an InternalError";
  } catch (const InternalError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("after pass break"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fc"), std::string::npos) << msg;
  }
  // Without verification the broken graph goes on (and is the next pass's problem).
  pm.options().verify_each = false;
  EXPECT_NO_THROW(pm.Run(ParseGraph(kNet), DataShape()));
  // The explicit verify pass reports the same problems as the user's.
  PassManager check({"break", "verify"}, r);
  check.options().verify_each = false;
  test::ExpectUserError([&] { check.Run(ParseGraph(kNet)); }, {"the graph is invalid", "fc"});
}

TEST(PassManager, PrintsTheIRAfterTheNamedPasses) {
  PassManager pm({"infer-shape", "infer-type"});
  std::ostringstream dump;
  pm.options().dump = &dump;
  pm.options().print_after = {"infer-shape"};
  pm.Run(ParseGraph(kNet), DataShape());
  std::string text = dump.str();
  EXPECT_EQ(text.find("// *** IR after infer-shape ***\n"), 0u) << text;
  EXPECT_EQ(text.find("IR after infer-type"), std::string::npos) << text;
  EXPECT_NE(text.find("[4, 8]"), std::string::npos) << text;
  // The dump is text IR: it parses back.
  EXPECT_NO_THROW(ParseGraph(text));

  dump.str("");
  pm.options().print_after.clear();
  pm.options().print_after_all = true;
  pm.Run(ParseGraph(kNet), DataShape());
  text = dump.str();
  size_t first = text.find("IR after infer-shape"), second = text.find("IR after infer-type");
  EXPECT_NE(first, std::string::npos);
  EXPECT_NE(second, std::string::npos);
  EXPECT_LT(first, second);
  EXPECT_NE(text.find("float32[4, 8]"), std::string::npos) << text;

  pm.options().print_after = {"simplify"};
  test::ExpectUserError([&] { pm.Run(ParseGraph(kNet), DataShape()); },
                        {"print-after", "\"simplify\"", "infer-shape, infer-type"});
}

TEST(PassManager, TimesEveryPass) {
  PassManager pm({"infer-shape", "infer-type", "verify", "verify"});
  pm.Run(ParseGraph(kNet), DataShape());
  ASSERT_EQ(pm.timings().size(), 4u);
  EXPECT_EQ(pm.timings()[0].pass, "infer-shape");
  EXPECT_EQ(pm.timings()[3].pass, "verify");
  for (const PassTiming& t : pm.timings()) EXPECT_GE(t.time.count(), 0);
  std::string report = pm.TimingReport();
  EXPECT_NE(report.find("kiln pass timing"), std::string::npos) << report;
  EXPECT_NE(report.find("infer-type"), std::string::npos) << report;
  EXPECT_NE(report.find("total (4 passes)"), std::string::npos) << report;
  EXPECT_NE(report.find("%"), std::string::npos) << report;
}

TEST(PassManager, EmptyPipelineReturnsTheGraph) {
  PassManager pm({});
  Graph g = pm.Run(ParseGraph(kNet));
  EXPECT_EQ(g.num_nodes(), 5u);
  EXPECT_TRUE(pm.timings().empty());
  EXPECT_NE(pm.TimingReport().find("total (0 passes)"), std::string::npos);
}

TEST(SplitPipeline, SplitsOnCommas) {
  EXPECT_EQ(SplitPipeline("infer-shape, infer-type,verify"),
            (std::vector<std::string>{"infer-shape", "infer-type", "verify"}));
  test::ExpectUserError([] { SplitPipeline("a,,b"); }, {"empty pass name"});
}

}  // namespace
}  // namespace kiln
