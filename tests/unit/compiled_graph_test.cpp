// compiled_graph_test.cpp - CompileGraph's library calls (matrix products and convolutions with
// their epilogues), checked op by op against the reference interpreter; and what Report says.
//
// Tolerance: each output element within 1e-5 * sqrt(K) * (largest |reference| + 1), K the
// contraction length: float32 sums of K products of values in [-1, 1] against the
// interpreter's double sums. CTest runs this binary at 1 thread; each case also runs on a
// 2-thread pool.
#include <cmath>
#include <functional>

#include "kiln/codegen/compile.h"
#include "kiln/frontend/models.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/passes/gradient.h"
#include "kiln/passes/infer.h"
#include "test_util.h"

namespace kiln {
namespace {

// Compiles `text` (variables typed in the text), runs it on random inputs at 1 and 2 threads,
// and compares every output with the interpreter. Returns the compiled graph's report.
// Random float32 values in [-1, 1] for every variable of `g` (typed in its text), from `seed`
// on; their shapes go into `infer`.
std::map<std::string, Tensor> RandomVariables(const Graph& g, uint32_t seed, InferOptions& infer) {
  std::map<std::string, Tensor> vars;
  Graph typed = g;
  InferShapes(typed, {});
  for (uint32_t v : typed.VariableNodes()) {
    const Shape& s = typed.shape(Entry{v, 0});
    vars[typed.node(v).name] = Tensor::FromValues(
        s.dims(), DType::kFloat32, test::RandomValues(size_t(s.NumElements()), seed++));
    infer.shapes[typed.node(v).name] = s;
  }
  return vars;
}

std::string CompileAndCompare(const std::string& text, int64_t k) {
  Graph g = ParseGraph(text);
  codegen::CompileOptions o;
  std::map<std::string, Tensor> vars = RandomVariables(g, 7, o.infer);
  std::vector<Tensor> ref = Interpret(g, vars);
  auto cg = codegen::CompileGraph(g, o);
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    codegen::CompiledRun run(cg, &pool);
    for (const auto& [n, t] : vars) run.Bind(n, t);
    run.Run();
    for (size_t i = 0; i < ref.size(); ++i) {
      std::vector<double> want = ref[i].ToDoubles(), got = run.output(i).ToDoubles();
      double scale = 1;
      for (double w : want) scale = std::max(scale, std::abs(w) + 1);
      double tol = 1e-5 * std::sqrt(double(k)) * scale;
      for (size_t j = 0; j < want.size(); ++j)
        EXPECT_NEAR(want[j], got[j], tol)
            << "output " << i << " element " << j << ", " << threads << " thread(s)\n"
            << cg->Report();
    }
  }
  return cg->Report();
}

TEST(CompiledGraph, DotInEveryTranspositionIsALibraryCall) {
  for (const char* attrs :
       {"", "{transpose_a=True}", "{transpose_b=True}", "{transpose_a=True, transpose_b=True}"}) {
    SCOPED_TRACE(attrs);
    std::string ta =
        std::string(attrs).find("transpose_a") != std::string::npos ? "37, 5" : "5, 37";
    std::string tb =
        std::string(attrs).find("transpose_b") != std::string::npos ? "19, 37" : "37, 19";
    std::string report = CompileAndCompare(StrCat(R"(graph {
      %a = var : float32[)",
                                                  ta, R"(]
      %b = var : float32[)",
                                                  tb, R"(]
      %c = dot(%a, %b) )",
                                                  attrs, R"(
      %r = relu(%c)
      return %r
    })"),
                                           37);
    EXPECT_NE(report.find("1 runtime-library calls ("), std::string::npos) << report;
    EXPECT_NE(report.find("0 on reference kernels"), std::string::npos) << report;
  }
}

TEST(CompiledGraph, BatchDotWithTransposes) {
  std::string report = CompileAndCompare(R"(graph {
    %a = var : float32[3, 2, 17, 6]
    %b = var : float32[3, 2, 9, 17]
    %c = batch_dot(%a, %b) {transpose_a=True, transpose_b=True}
    return %c
  })",
                                         17);
  EXPECT_NE(report.find("1 runtime-library calls ("), std::string::npos) << report;
}

TEST(CompiledGraph, FullyConnectedFormsAndEpilogues) {
  CompileAndCompare(R"(graph {
    %x = var : float32[7, 3, 11]
    %w = var : float32[13, 33]
    %b = var : float32[13]
    %y = var : float32[7, 13]
    %fc = FullyConnected(%x, %w, %b) {num_hidden=13}
    %s = elemwise_add(%fc, %y)
    %t = Activation(%s) {act_type=tanh}
    return %t, %fc
  })",
                    33);
  CompileAndCompare(R"(graph {
    %x = var : float32[2, 5, 11]
    %w = var : float32[4, 11]
    %fc = FullyConnected(%x, %w) {num_hidden=4, no_bias=True, flatten=False}
    return %fc
  })",
                    11);
}

// `text` compiled with its group's epilogue inside the library call (one plan call, a library
// call running `ops`) and as a separate kernel (two calls): equal bit for bit at 1 and 2 threads.
void ExpectFusedEqualsSeparate(const std::string& text, const std::string& ops) {
  Graph g = ParseGraph(text);
  codegen::CompileOptions fused, apart;
  std::map<std::string, Tensor> vars = RandomVariables(g, 3, fused.infer);
  apart.infer = fused.infer;
  apart.epilogue_in_gemm = false;
  auto one = codegen::CompileGraph(g, fused), two = codegen::CompileGraph(g, apart);
  ASSERT_EQ(one->plan().calls.size(), 1u) << one->Report();
  EXPECT_TRUE(one->epilogues_in_gemm());
  EXPECT_EQ(one->calls()[0].kind, codegen::CompiledCall::Kind::kLibrary);
  EXPECT_EQ(one->calls()[0].ops, ops);
  EXPECT_EQ(two->plan().calls.size(), 2u) << two->Report();
  EXPECT_FALSE(two->epilogues_in_gemm());
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    codegen::CompiledRun a(one, &pool), b(two, &pool);
    for (const auto& [n, t] : vars) a.Bind(n, t), b.Bind(n, t);
    a.Run();
    b.Run();
    std::vector<double> got = a.output(0).ToDoubles(), want = b.output(0).ToDoubles();
    ASSERT_EQ(got.size(), want.size());
    for (size_t j = 0; j < got.size(); ++j)
      ASSERT_EQ(got[j], want[j]) << "element " << j << ", " << threads << " thread(s)";
  }
}

// With epilogue_in_gemm (the default), a FullyConnected group whose epilogue runs over the
// product's rows is one plan call: the product runs the epilogue kernel on each row block. Its
// outputs are those of the interpreter, and bit for bit those of the unfused plan.
TEST(CompiledGraph, FullyConnectedEpilogueRunsInsideTheProduct) {
  const std::string text = R"(graph {
    %x = var : float32[300, 64]
    %w = var : float32[200, 64]
    %b = var : float32[200]
    %y = var : float32[300, 200]
    %fc = FullyConnected(%x, %w, %b) {num_hidden=200}
    %s = elemwise_add(%fc, %y)
    %t = Activation(%s) {act_type=relu}
    return %t
  })";
  std::string report = CompileAndCompare(text, 64);
  EXPECT_EQ(report.rfind("1 calls for", 0), 0u) << report;
  EXPECT_NE(report.find("0 compiled kernels, 1 runtime-library calls"), std::string::npos)
      << report;
  // No bias; a row count that is no multiple of the row blocks.
  report = CompileAndCompare(R"(graph {
    %x = var : float32[37, 15]
    %w = var : float32[21, 15]
    %fc = FullyConnected(%x, %w) {num_hidden=21, no_bias=True}
    %t = Activation(%fc) {act_type=tanh}
    return %t
  })",
                             15);
  EXPECT_EQ(report.rfind("1 calls for", 0), 0u) << report;

  ExpectFusedEqualsSeparate(text, "FullyConnected+elemwise_add+Activation");
}

// An epilogue whose rows are not the product's (FullyConnected without flatten: a 3-D output)
// stays a kernel of its own.
TEST(CompiledGraph, EpilogueOverOtherRowsIsItsOwnCall) {
  std::string report = CompileAndCompare(R"(graph {
    %x = var : float32[2, 5, 11]
    %w = var : float32[4, 11]
    %fc = FullyConnected(%x, %w) {num_hidden=4, no_bias=True, flatten=False}
    %t = Activation(%fc) {act_type=relu}
    return %t
  })",
                                         11);
  EXPECT_EQ(report.rfind("2 calls for", 0), 0u) << report;
}

TEST(CompiledGraph, ConvolutionAttributes) {
  for (const char* attrs :
       {"{kernel=\"(3, 3)\", num_filter=6, pad=\"(1, 1)\"}",
        "{kernel=\"(3, 2)\", num_filter=6, stride=\"(2, 1)\", dilate=\"(1, 2)\", pad=\"(2, 0)\"}",
        "{kernel=\"(1, 1)\", num_filter=6, no_bias=True}",
        "{kernel=\"(3, 3)\", num_filter=6, num_group=2, pad=\"(1, 1)\"}"}) {
    SCOPED_TRACE(attrs);
    bool no_bias = std::string(attrs).find("no_bias") != std::string::npos;
    bool groups = std::string(attrs).find("num_group") != std::string::npos;
    std::string k = std::string(attrs).find("(3, 2)") != std::string::npos          ? "3, 2"
                    : std::string(attrs).find("(1, 1)\", num") != std::string::npos ? "1, 1"
                                                                                    : "3, 3";
    std::string weight = StrCat("float32[6, ", groups ? 2 : 4, ", ", k, "]");
    std::string report = CompileAndCompare(
        StrCat("graph {\n  %x = var : float32[2, 4, 9, 10]\n  %w = var : ", weight, "\n",
               no_bias ? "" : "  %b = var : float32[6]\n", "  %c = Convolution(%x, %w",
               no_bias ? "" : ", %b", ") ", attrs, "\n  %r = relu(%c)\n  return %r\n}"),
        36);
    EXPECT_NE(report.find("0 on reference kernels"), std::string::npos) << report;
  }
}

// A convolution's epilogue (bias, a residual add, relu) runs inside the convolution on blocks
// of (image, channel) rows: one plan call, equal to the interpreter and bit for bit to the
// unfused plan, on each of the library's paths (im2col, 1x1 on the GEMM, depthwise, grouped,
// a 1-D convolution).
TEST(CompiledGraph, ConvolutionEpilogueRunsInsideTheConvolution) {
  struct Case {
    const char* attrs;
    const char* x;
    const char* w;
    const char* out;
    int64_t filters, k;
  };
  const Case cases[] = {
      {"{kernel=\"(3, 3)\", num_filter=6, pad=\"(1, 1)\"}", "[3, 4, 9, 10]", "[6, 4, 3, 3]",
       "[3, 6, 9, 10]", 6, 36},
      {"{kernel=\"(1, 1)\", num_filter=6}", "[3, 4, 9, 10]", "[6, 4, 1, 1]", "[3, 6, 9, 10]", 6, 4},
      {"{kernel=\"(3, 3)\", num_filter=4, num_group=4, pad=\"(1, 1)\"}", "[3, 4, 9, 10]",
       "[4, 1, 3, 3]", "[3, 4, 9, 10]", 4, 9},
      {"{kernel=\"(3, 3)\", num_filter=6, num_group=2, stride=\"(2, 2)\"}", "[3, 4, 9, 10]",
       "[6, 2, 3, 3]", "[3, 6, 4, 4]", 6, 18},
      {"{kernel=\"(3,)\", num_filter=6}", "[3, 4, 17]", "[6, 4, 3]", "[3, 6, 15]", 6, 12},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.attrs);
    const std::string text =
        StrCat("graph {\n  %x = var : float32", c.x, "\n  %w = var : float32", c.w,
               "\n  %b = var : float32[", c.filters, "]\n  %y = var : float32", c.out,
               "\n  %c = Convolution(%x, %w, %b) ", c.attrs,
               "\n  %s = elemwise_add(%c, %y)\n  %r = relu(%s)\n  return %r\n}");
    std::string report = CompileAndCompare(text, c.k);
    EXPECT_EQ(report.rfind("1 calls for", 0), 0u) << report;
    ExpectFusedEqualsSeparate(text, "Convolution+elemwise_add+relu");
  }
}

// A convolution epilogue that mixes channels (a softmax over axis 1) is not row by row: it stays
// a kernel of its own.
TEST(CompiledGraph, ConvolutionEpilogueAcrossChannelsIsItsOwnCall) {
  std::string report = CompileAndCompare(R"g(graph {
    %x = var : float32[2, 4, 9, 10]
    %w = var : float32[6, 4, 3, 3]
    %c = Convolution(%x, %w) {kernel="(3, 3)", num_filter=6, no_bias=True}
    %s = softmax(%c) {axis=1}
    return %s
  })g",
                                         36);
  EXPECT_EQ(report.rfind("2 calls for", 0), 0u) << report;
}

// The gradients (data, weight, bias) of both heavy ops, as the gradient pass emits them.
TEST(CompiledGraph, BackwardOpsAreLibraryCalls) {
  std::string report = CompileAndCompare(R"g(graph {
    %dy = var : float32[2, 6, 5, 5]
    %x = var : float32[2, 4, 9, 10]
    %w = var : float32[6, 4, 3, 3]
    %g = _backward_Convolution(%dy, %x, %w) {kernel="(3, 3)", num_filter=6, stride="(2, 2)", pad="(1, 1)"}
    return %g, %g#1, %g#2
  })g",
                                         50);
  EXPECT_NE(report.find("0 on reference kernels"), std::string::npos) << report;
  report = CompileAndCompare(R"g(graph {
    %dy = var : float32[7, 13]
    %x = var : float32[7, 33]
    %w = var : float32[13, 33]
    %g = _backward_FullyConnected(%dy, %x, %w) {num_hidden=13}
    return %g, %g#1, %g#2
  })g",
                             33);
  EXPECT_NE(report.find("0 on reference kernels"), std::string::npos) << report;
}

// Deconvolution, forward and backward, as the transpose of a convolution: strides, pads, adj,
// dilation, groups, with and without bias.
TEST(CompiledGraph, DeconvolutionIsALibraryCall) {
  const std::string strided =
      "{kernel=\"(3, 3)\", num_filter=6, stride=\"(2, 2)\", pad=\"(1, 1)\", adj=\"(1, 1)\", "
      "no_bias=False}";
  const std::string grouped =
      "{kernel=\"(3, 2)\", num_filter=6, stride=\"(1, 2)\", dilate=\"(2, 1)\", num_group=2}";
  for (const std::string& attrs : {strided, grouped}) {
    SCOPED_TRACE(attrs);
    bool bias = attrs == strided, groups = attrs == grouped;
    std::string weight = StrCat("float32[4, ", groups ? 3 : 6, ", ", groups ? "3, 2" : "3, 3", "]");
    std::string report = CompileAndCompare(
        StrCat("graph {\n  %x = var : float32[2, 4, 5, 6]\n  %w = var : ", weight, "\n",
               bias ? "  %b = var : float32[6]\n" : "", "  %d = Deconvolution(%x, %w",
               bias ? ", %b" : "", ") ", attrs, "\n  %r = relu(%d)\n  return %r\n}"),
        36);
    EXPECT_NE(report.find("0 on reference kernels"), std::string::npos) << report;
  }
  std::string report = CompileAndCompare(
      StrCat("graph {\n  %dy = var : float32[2, 6, 10, 12]\n  %x = var : float32[2, 4, 5, 6]\n"
             "  %w = var : float32[4, 6, 3, 3]\n  %g = _backward_Deconvolution(%dy, %x, %w) ",
             strided, "\n  return %g, %g#1, %g#2\n}"),
      240);
  EXPECT_NE(report.find("0 on reference kernels"), std::string::npos) << report;
}

// Empty batches and size-1 dimensions through the library calls and their epilogues.
TEST(CompiledGraph, EmptyAndSizeOneShapes) {
  CompileAndCompare(R"g(graph {
    %x = var : float32[0, 33]
    %w = var : float32[13, 33]
    %b = var : float32[13]
    %fc = FullyConnected(%x, %w, %b) {num_hidden=13}
    %r = relu(%fc)
    return %r
  })g",
                    33);
  CompileAndCompare(R"g(graph {
    %x = var : float32[0, 4, 9, 10]
    %w = var : float32[6, 4, 3, 3]
    %c = Convolution(%x, %w) {kernel="(3, 3)", num_filter=6, no_bias=True}
    %r = relu(%c)
    return %r
  })g",
                    36);
  CompileAndCompare(R"g(graph {
    %x = var : float32[1, 1, 1, 1]
    %w = var : float32[1, 1, 1, 1]
    %b = var : float32[1]
    %c = Convolution(%x, %w, %b) {kernel="(1, 1)", num_filter=1}
    %t = tanh(%c)
    return %t
  })g",
                    1);
  CompileAndCompare(R"g(graph {
    %a = var : float32[1, 1]
    %b = var : float32[1, 17]
    %c = dot(%a, %b)
    return %c
  })g",
                    1);
}

// BatchNorm in a training graph: batch statistics, the moving statistics updated in place, and
// the gradient, against the interpreter in training mode (each side on its own copies).
TEST(CompiledGraph, BatchNormTrainingIsALibraryCall) {
  const std::string text = R"g(graph {
    %x = var : float32[3, 5, 4, 7]
    %gamma = var : float32[5]
    %beta = var : float32[5]
    %mm = var : float32[5]
    %mv = var : float32[5]
    %dy = var : float32[3, 5, 4, 7]
    %bn = BatchNorm(%x, %gamma, %beta, %mm, %mv) {fix_gamma=False, eps=0.001, momentum=0.8}
    %g = _backward_BatchNorm(%dy, %x, %gamma, %bn#1, %bn#2) {fix_gamma=False, eps=0.001, momentum=0.8}
    return %bn, %bn#1, %bn#2, %g, %g#1, %g#2
  })g";
  Graph g = ParseGraph(text);
  Graph typed = g;
  InferShapes(typed, {});
  std::map<std::string, Tensor> ref_vars, vars;
  codegen::CompileOptions o;
  o.is_train = true;
  uint32_t seed = 3;
  for (uint32_t v : typed.VariableNodes()) {
    const std::string& name = typed.node(v).name;
    const Shape& s = typed.shape(Entry{v, 0});
    std::vector<double> values = test::RandomValues(size_t(s.NumElements()), seed++);
    if (name == "mv")
      for (double& x : values) x = std::abs(x) + 0.5;
    ref_vars[name] = Tensor::FromValues(s.dims(), DType::kFloat32, values);
    vars[name] = ref_vars[name].Clone();
    o.infer.shapes[name] = s;
  }
  InterpretOptions train;
  train.is_train = true;
  std::vector<Tensor> ref = Interpret(g, ref_vars, train);
  auto cg = codegen::CompileGraph(g, o);
  EXPECT_NE(cg->Report().find("0 on reference kernels"), std::string::npos) << cg->Report();
  ThreadPool pool(2);
  codegen::CompiledRun run(cg, &pool);
  for (const auto& [n, t] : vars) run.Bind(n, t);
  run.Run(true);
  for (size_t i = 0; i < ref.size(); ++i)
    test::ExpectTensorNear(run.output(i), ref[i].shape(), ref[i].ToDoubles(), 1e-5);
  for (const char* name : {"mm", "mv"})
    test::ExpectTensorNear(vars[name], ref_vars[name].shape(), ref_vars[name].ToDoubles(), 1e-6);
}

// The three models of issue 5 compile, for inference and for a training step, with no
// reference call left: every node is a JIT kernel or a runtime-library call.
TEST(CompiledGraph, TheModelsCompileWithoutReferenceCalls) {
  struct Model {
    const char* name;
    Symbol net;
    Shape data;
  };
  for (const Model& m : {Model{"mlp", models::Mlp({512, 512}, 10), Shape({8, 784})},
                         Model{"lenet", models::LeNet(10, "relu"), Shape({4, 1, 28, 28})},
                         Model{"resnet18", models::ResNet18(10), Shape({2, 3, 32, 32})}}) {
    SCOPED_TRACE(m.name);
    Graph g = m.net.ToGraph();
    codegen::CompileOptions o;
    o.allow_reference = false;  // an UnsupportedError names any reference call
    o.infer.shapes = {{"data", m.data}, {"softmax_label", Shape({m.data[0]})}};
    EXPECT_NO_THROW(codegen::CompileGraph(g, o));
    std::vector<uint32_t> xs;
    for (uint32_t v : g.ArgumentNodes())
      if (g.node(v).name != "data" && g.node(v).name != "softmax_label") xs.push_back(v);
    GradientGraph gg = BuildGradient(g, xs);
    o.is_train = true;
    o.forward_outputs = g.outputs().size();
    for (uint32_t h : gg.head_grads)  // the softmax output's shape (read by nothing: a loss)
      o.infer.shapes[gg.graph.node(h).name] = Shape({m.data[0], 10});
    EXPECT_NO_THROW(codegen::CompileGraph(gg.graph, o));
  }
}

// Bad bindings are UserErrors that name the variable; nothing runs with a variable unbound.
TEST(CompiledGraph, BindingErrorsNameTheVariable) {
  codegen::CompileOptions o;
  o.infer.shapes = {{"x", Shape({2, 3})}, {"w", Shape({4, 3})}, {"unused", Shape({5})}};
  auto cg = codegen::CompileGraph(ParseGraph(R"g(graph {
    %x = var : float32[2, 3]
    %w = var : float32[4, 3]
    %unused = var : float32[5]
    %y = FullyConnected(%x, %w) {num_hidden=4, no_bias=True}
    return %y
  })g"),
                                  o);
  codegen::CompiledRun run(cg);
  auto expect_error = [](const std::function<void()>& f, const std::string& part) {
    try {
      f();
      ADD_FAILURE() << "no error; expected one containing: " << part;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_error([&] { run.Run(); }, "variable \"x\" has no value");
  expect_error(
      [&] {
        run.Bind("x", Tensor::Zeros({3, 2}, DType::kFloat32));
      },
      "variable \"x\" bound to float32(3, 2)");
  expect_error([&] { run.Bind("x", Tensor::Zeros({2, 3}, DType::kFloat64)); }, "\"x\"");
  expect_error([&] { run.Bind("nope", Tensor::Zeros({1}, DType::kFloat32)); },
               "no variable \"nope\"");
  run.Bind("unused", Tensor::Zeros({5}, DType::kFloat32));  // dead code eliminated: accepted
  run.Bind("x", Tensor::Zeros({2, 3}, DType::kFloat32));
  run.Bind("w", Tensor::Zeros({4, 3}, DType::kFloat32));
  run.Run();
  EXPECT_EQ(run.output(0).ToDoubles(), std::vector<double>(8, 0.0));
}

TEST(CompiledGraph, ReportNamesReferenceCalls) {
  // exp has no compute definition for float16 (unary.cpp) and no library call: a reference
  // call, named. %h is a graph output, so fusion leaves %s a group of its own.
  const std::string text = R"g(graph {
    %x = var : float32[4, 3]
    %h = Cast(%x) {dtype=float16}
    %s = exp(%h)
    return %h, %s
  })g";
  std::string report = CompileAndCompare(text, 1);
  EXPECT_NE(report.find("reference: exp (node \"s\")"), std::string::npos) << report;
  codegen::CompileOptions strict;
  strict.allow_reference = false;
  strict.infer.shapes = {{"x", Shape({4, 3})}};
  try {
    codegen::CompileGraph(ParseGraph(text), strict);
    ADD_FAILURE() << "compiled a graph with a reference call under allow_reference = false";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("exp (node \"s\")"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln
