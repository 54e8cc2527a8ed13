// lower_heavy_grad_test.cpp - compute definitions of the heavy ops' gradients:
// _backward_FullyConnected, _backward_dot, _backward_Convolution and _backward_Deconvolution,
// each lowered alone with LowerNode (every output: data, weight and bias gradients), JIT-compiled
// and compared with the reference interpreter on random inputs at 1 and 2 threads, under the
// default schedule and with the parallel loop forced on small shapes: every attribute the
// definitions cover, odd sizes, size-1 dimensions, empty batches, groups, strides, dilations,
// padding, 1-D and 3-D, float32, float64, float16 and bfloat16. Then training graphs compiled
// whole with CompileGraph, float64 (which the runtime library does not take) and float32
// without the library (a bundle's self-contained code): no reference call is left.
//
// Tolerances (ExpectNearScale: |got - want| <= scale_rel * S + elem_rel * |want|, S the
// output's scale max(1, max |want|)), as lower_heavy_test.cpp's:
// - float32: scale_rel 1e-5. The kernels sum in float32, the reference in double; the sums here
//   have at most about 1200 terms of magnitude <= 4 (inputs in [-2, 2]), whose rounding errors
//   (random signs: growing as sqrt(n), about 35 * 6e-8 * 4 absolute) stay far below 1e-5 of the
//   largest output (a sum of that many random products is tens in magnitude).
// - float64: 1e-12 of the scale (the same sums in another order).
// - float16 / bfloat16: the float32 sum rounded once to the storage type, the reference's
//   double sum too: one ulp apart at most, elem_rel 2^-10 (float16) or 2^-7 (bfloat16), plus
//   1e-5 of the scale for the float32 summation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kiln/codegen/compile.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/passes/gradient.h"
#include "kiln/passes/infer.h"
#include "lower_util.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::ConvAttrs;
using test::ConvCase;
using test::DotAttrs;
using test::Var;

// Random inputs in [-2, 2] (test::RandomInputs; every variable here is floating).
constexpr uint32_t kSeed = 41;

const std::set<std::string> kGradOps = {"_backward_FullyConnected", "_backward_dot",
                                        "_backward_Convolution", "_backward_Deconvolution"};

bool IsGradOp(const Node& n) {
  return kGradOps.count(std::string(n.op_name())) > 0;
}

// Lowers the gradient node of `text`'s graph, runs it at 1 and 2 threads under the default
// schedule and with the parallel loop forced, and compares every output with the interpreter.
void Check(const std::string& text) {
  SCOPED_TRACE(text);
  Graph f = test::Typed(text);
  test::LowerBothSchedules(f, InterpretAll(f, test::RandomInputs(f, kSeed)), IsGradOp,
                           test::ExpectNearSum);
}

const char* const kFloatTypes[] = {"float32", "float64", "float16", "bfloat16"};

// ----- _backward_FullyConnected -----

TEST(LowerHeavyGrad, FullyConnected) {
  struct Case {
    std::vector<int64_t> data;
    int64_t hidden;
    bool flatten;
  };
  const Case cases[] = {
      {{5, 19}, 7, true},         {{4, 33}, 17, true},   {{3, 4, 5}, 7, true},
      {{2, 3, 1, 6}, 5, true},    {{3, 4, 5}, 7, false}, {{2, 3, 1, 17}, 3, false},
      {{19}, 6, false},           {{6}, 4, true},        {{1, 1}, 1, true},
      {{0, 19}, 7, true},         {{0, 3, 5}, 7, false}, {{3, 0}, 5, true},
      {{7, 19}, 7, true},  // d data and d weight share one shape: one nest, parallel
      {{16, 50, 4, 4}, 10, true},
  };
  for (const char* t : kFloatTypes)
    for (const Case& c : cases)
      for (bool no_bias : {false, true}) {
        // float16 and bfloat16 only round what float32 sums: every case with a bias suffices.
        bool half = std::string(t) == "float16" || std::string(t) == "bfloat16";
        if (half && no_bias) continue;
        // dy has the forward output's shape, the weight (hidden, features).
        std::vector<int64_t> dy = {c.data[0], c.hidden};
        int64_t features = NumElements(std::vector<int64_t>(c.data.begin() + 1, c.data.end()));
        if (!c.flatten) {
          dy = c.data;
          dy.back() = c.hidden;
          features = c.data.back();
        }
        std::string attrs = "num_hidden=" + std::to_string(c.hidden) +
                            ", flatten=" + (c.flatten ? "True" : "False") +
                            (no_bias ? ", no_bias=True" : "");
        Check(test::OneOp("_backward_FullyConnected", attrs,
                          {{"dy", dy}, {"x", c.data}, {"w", {c.hidden, features}}}, t));
      }
}

// ----- _backward_dot -----

// dy is inferred from the operands (dot's output shape).
const Var kDy = {"dy", {}, false};

TEST(LowerHeavyGrad, DotMatrices) {
  for (const char* t : kFloatTypes)
    for (int64_t k : {1, 7, 16, 37})
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          std::vector<int64_t> a = ta ? std::vector<int64_t>{k, 5} : std::vector<int64_t>{5, k};
          std::vector<int64_t> b = tb ? std::vector<int64_t>{19, k} : std::vector<int64_t>{k, 19};
          Check(test::OneOp("_backward_dot", DotAttrs(ta, tb), {kDy, {"a", a}, {"b", b}}, t));
        }
}

TEST(LowerHeavyGrad, DotVectorsAndTensors) {
  struct Case {
    std::vector<int64_t> a, b;
    bool ta, tb;
  };
  const Case cases[] = {
      {{17}, {17}, false, false},            // (1,): both gradients are dy[0] times the other
      {{17}, {17, 5}, false, false},         // vector x matrix
      {{17}, {5, 17}, false, true},          //
      {{5, 17}, {17}, false, false},         // matrix x vector
      {{17, 5}, {17}, true, false},          //
      {{2, 3, 4}, {4, 5}, false, false},     // N-D: a's leading axes stay
      {{4, 2, 3}, {4, 5}, true, false},      // transpose_a on N-D: a's first axis contracts
      {{5, 4}, {3, 2, 4}, false, true},      // transpose_b on N-D: b's last axis contracts
      {{2, 3, 4}, {4, 1, 6}, false, false},  // both N-D, a size-1 axis
      {{3, 2, 5}, {6, 3}, true, true},       //
      {{0, 7}, {7, 5}, false, false},        // no rows: d b is an empty sum, zeros
      {{3, 0}, {0, 4}, false, false},        // nothing contracted: both gradients empty
      {{1, 1}, {1, 1}, false, false},
  };
  for (const char* t : {"float32", "float64", "float16"})
    for (const Case& c : cases)
      Check(test::OneOp("_backward_dot", DotAttrs(c.ta, c.tb), {kDy, {"a", c.a}, {"b", c.b}}, t));
}

// ----- _backward_Convolution and _backward_Deconvolution -----

const ConvCase kConvCases[] = {
    // 2-D
    {"kernel=\"(3, 3)\", pad=\"(1, 1)\"", {2, 3, 9, 11}, 5},                      // ResNet 3x3
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\"", {2, 4, 11, 13}, 6},  // downsample
    {"kernel=\"(1, 1)\"", {2, 5, 7, 19}, 4},                                      // 1x1
    {"kernel=\"(1, 1)\", stride=\"(2, 2)\"", {1, 5, 7, 9}, 3},  // projection: unread inputs
    {"kernel=\"(7, 7)\", stride=\"(2, 2)\", pad=\"(3, 3)\"", {1, 3, 21, 17}, 4},  // stem
    {"kernel=\"(5, 5)\"", {2, 1, 28, 28}, 3},                                     // LeNet
    {"kernel=\"(2, 3)\", stride=\"(2, 1)\", dilate=\"(2, 3)\", pad=\"(2, 1)\"", {2, 3, 10, 12}, 4},
    {"kernel=\"(3, 3)\", dilate=\"(2, 2)\"", {1, 2, 9, 9}, 3},
    {"kernel=\"(3, 3)\", pad=\"(1, 1)\", num_group=2", {2, 4, 7, 9}, 6},  // groups
    {"kernel=\"(3, 3)\", pad=\"(1, 1)\", stride=\"(2, 2)\", num_group=6", {1, 6, 9, 8}, 6},  // dw
    {"kernel=\"(3, 3)\", pad=\"(2, 2)\", layout=NCHW", {1, 2, 3, 4}, 3},        // pad > kernel / 2
    {"kernel=\"(3, 3)\", pad=\"(1, 1)\"", {0, 3, 9, 11}, 5},                    // no batch
    {"kernel=\"(1, 1)\"", {2, 1, 1, 1}, 1},                                     // size 1
    {"kernel=\"(3, 3)\", pad=\"(1, 1)\"", {1, 3, 1, 1}, 2},                     // only the center
    {"kernel=\"(3, 3)\", stride=\"(3, 2)\", pad=\"(1, 0)\"", {2, 2, 8, 8}, 3},  // rows unread
    // 1-D
    {"kernel=\"(3)\", stride=\"(2)\", pad=\"(1)\", dilate=\"(2)\"", {2, 3, 17}, 4},
    {"kernel=\"(5)\", layout=NCW, num_group=3", {1, 6, 23}, 9},
    // 3-D
    {"kernel=\"(2, 3, 2)\", stride=\"(1, 2, 1)\", pad=\"(1, 0, 1)\"", {1, 2, 4, 5, 6}, 3},
    {"kernel=\"(1, 1, 1)\"", {2, 3, 2, 3, 4}, 2},
    {"kernel=\"(2, 2, 2)\", stride=\"(2, 2, 2)\", num_group=2", {2, 4, 5, 4, 3}, 2},
};

// (dy, data, weight): dy and the weight inferred from the data as the forward op's shape rule
// gives them.
std::vector<Var> GradVars(const ConvCase& c) {
  return {kDy, {"x", c.data}, {"w", {}, false}};
}

TEST(LowerHeavyGrad, Convolution) {
  for (const ConvCase& c : kConvCases)
    for (bool no_bias : {false, true})
      Check(test::OneOp("_backward_Convolution", ConvAttrs(c, no_bias), GradVars(c)));
}

TEST(LowerHeavyGrad, ConvolutionOtherTypes) {
  for (const char* t : {"float64", "float16", "bfloat16"})
    for (size_t i : {0, 1, 8, 11, 15, 17, 19}) {
      const ConvCase& c = kConvCases[i];
      Check(test::OneOp("_backward_Convolution", ConvAttrs(c, false), GradVars(c), t));
    }
}

TEST(LowerHeavyGrad, ConvolutionWithoutChannels) {
  // data (2, 0, 5, 5): the data and weight gradients are empty, the bias gradient sums dy.
  for (const char* groups : {"", ", num_group=2"})
    Check(test::OneOp("_backward_Convolution",
                      std::string("kernel=\"(3, 3)\", pad=\"(1, 1)\", num_filter=4") + groups,
                      GradVars({"", {2, 0, 5, 5}, 4})));
}

const ConvCase kDeconvCases[] = {
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", adj=\"(1, 1)\"", {2, 3, 5, 6}, 4},
    {"kernel=\"(3, 3)\", pad=\"(1, 1)\"", {1, 4, 7, 5}, 3},
    {"kernel=\"(4, 4)\", stride=\"(2, 2)\", pad=\"(1, 1)\"", {1, 2, 4, 5}, 2},  // upsampling x2
    {"kernel=\"(3, 2)\", stride=\"(3, 2)\", dilate=\"(2, 3)\", pad=\"(2, 1)\"", {2, 2, 4, 3}, 3},
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", num_group=2", {1, 4, 3, 4}, 6},
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", target_shape=\"(8, 10)\"", {1, 2, 4, 5}, 3},
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", target_shape=\"(7, 9)\"", {2, 3, 4, 5}, 2},
    {"kernel=\"(1, 1)\"", {2, 3, 4, 5}, 2},
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\"", {0, 2, 3, 3}, 2},  // no batch
    {"kernel=\"(2, 2)\", num_group=3", {2, 3, 1, 1}, 3},        // size 1, depthwise
    {"kernel=\"(4)\", stride=\"(2)\", pad=\"(1)\"", {2, 3, 9}, 2},
    {"kernel=\"(3)\", stride=\"(3)\", dilate=\"(2)\", adj=\"(2)\"", {1, 2, 6}, 5},
    {"kernel=\"(2, 2, 3)\", stride=\"(2, 1, 2)\", pad=\"(0, 1, 1)\"", {1, 2, 3, 4, 3}, 2},
};

TEST(LowerHeavyGrad, Deconvolution) {
  for (const ConvCase& c : kDeconvCases)
    for (bool no_bias : {false, true})
      Check(test::OneOp("_backward_Deconvolution", ConvAttrs(c, no_bias), GradVars(c)));
  for (const char* t : {"float64", "float16", "bfloat16"})
    for (size_t i : {0, 4, 6, 12}) {
      const ConvCase& c = kDeconvCases[i];
      Check(test::OneOp("_backward_Deconvolution", ConvAttrs(c, false), GradVars(c), t));
    }
}

TEST(LowerHeavyGrad, InfinitiesGiveTheReferencesNaNAndInfinity) {
  // An infinite weight and an infinite dy element. The reference folds back only the terms of
  // positions inside the data (the data gradients are Selects on the product), but multiplies
  // dy by Convolution's zero-filled padding in the weight gradient (0 * inf = NaN there).
  for (const char* op : {"_backward_Convolution", "_backward_Deconvolution"}) {
    SCOPED_TRACE(op);
    Graph f = test::Typed(test::OneOp(op,
                                      "kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", "
                                      "num_filter=2, no_bias=False",
                                      GradVars({"", {1, 2, 5, 6}, 2})));
    std::map<std::string, Tensor> vars = test::RandomInputs(f, kSeed);
    for (const char* name : {"w", "dy"}) {
      std::vector<double> v = vars[name].ToDoubles();
      v[0] = INFINITY;
      v[v.size() - 1] = -INFINITY;
      vars[name] = Tensor::FromValues(vars[name].shape(), DType::kFloat32, v);
    }
    EXPECT_EQ(test::LowerRunAndCompare(f, InterpretAll(f, vars), {}, IsGradOp, test::ExpectNearSum),
              1);
  }
}

TEST(LowerHeavyGrad, EveryGradientOpHasADefinition) {
  // The four gradient ops lower for every floating dtype; batch_dot's gradient is batch_dot.
  for (const char* t : kFloatTypes) {
    for (const std::string& text :
         {test::OneOp("_backward_FullyConnected", "num_hidden=3",
                      {{"dy", {2, 3}}, {"x", {2, 4}}, {"w", {3, 4}}}, t),
          test::OneOp("_backward_dot", "", {kDy, {"a", {2, 4}}, {"b", {4, 3}}}, t),
          test::OneOp("_backward_Convolution", "kernel=\"(3, 3)\", num_filter=4",
                      GradVars({"", {1, 2, 5, 5}, 4}), t),
          test::OneOp("_backward_Deconvolution", "kernel=\"(3, 3)\", num_filter=4",
                      GradVars({"", {1, 2, 5, 5}, 4}), t)}) {
      Graph f = test::Typed(text);
      EXPECT_TRUE(codegen::UnsupportedOps(f, f.outputs()[0].node).empty()) << text;
    }
  }
}

// ----- Training graphs compiled whole: no reference call left -----

// A small network with every heavy op: Convolution, Deconvolution, FullyConnected and dot,
// with relu between them; its gradient graph with respect to every parameter and the data.
const char* const kNet = R"g(graph {
  %x = var : T[2, 3, 9, 8]
  %w1 = var : T[4, 3, 3, 3]
  %b1 = var : T[4]
  %c = Convolution(%x, %w1, %b1) {kernel="(3, 3)", stride="(2, 2)", pad="(1, 1)", num_filter=4}
  %r = Activation(%c) {act_type=relu}
  %w2 = var : T[4, 2, 2, 2]
  %d = Deconvolution(%r, %w2) {kernel="(2, 2)", stride="(2, 2)", num_filter=4, num_group=2}
  %s = Activation(%d) {act_type=tanh}
  %w3 = var : T[6, 320]
  %b3 = var : T[6]
  %fc = FullyConnected(%s, %w3, %b3) {num_hidden=6}
  %m = var : T[6, 5]
  %y = dot(%fc, %m)
  return %y
})g";

// Compiles the gradient graph of kNet in dtype `t` and compares every output (the forward
// output, then the gradients) with the interpreter at 1 and 2 threads.
void CompileTrainingGraph(const std::string& t, bool use_library) {
  SCOPED_TRACE(t + (use_library ? " with the library" : " without the library"));
  std::string text = kNet;
  for (size_t at; (at = text.find(" T[")) != std::string::npos;) text.replace(at, 3, " " + t + "[");
  Graph g = ParseGraph(text);
  GradientGraph gg = BuildGradient(g, g.VariableNodes());
  codegen::CompileOptions o;
  o.forward_outputs = g.outputs().size();
  o.use_library = use_library;
  DType dt = *ParseDType(t);
  // The variables' shapes and dtypes (the gradient graph does not carry the text's), and the
  // head gradient's: dot's output.
  Graph forward = g;
  InferShapes(forward);
  for (uint32_t v : forward.VariableNodes()) {
    o.infer.shapes[forward.node(v).name] = forward.shape(Entry{v, 0});
    o.infer.dtypes[forward.node(v).name] = dt;
  }
  for (uint32_t h : gg.head_grads) {
    o.infer.shapes[gg.graph.node(h).name] = Shape({2, 5});
    o.infer.dtypes[gg.graph.node(h).name] = dt;
  }
  Graph typed = gg.graph;
  InferShapes(typed, o.infer);
  InferTypes(typed, o.infer);
  test::CompileTrainingAndCompare(gg.graph, o, test::RandomInputs(typed, kSeed), kGradOps,
                                  test::ExpectNearSum);
}

TEST(LowerHeavyGrad, Float64TrainingGraphHasNoReferenceCalls) {
  CompileTrainingGraph("float64", true);  // the library takes float32 only: all lowered
}

TEST(LowerHeavyGrad, SelfContainedFloat32TrainingGraph) {
  CompileTrainingGraph("float32", false);  // as a bundle compiles: no library
}

}  // namespace
}  // namespace kiln
