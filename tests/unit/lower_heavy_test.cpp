// lower_heavy_test.cpp - compute definitions of the heavy ops: FullyConnected, dot, batch_dot,
// Convolution and Deconvolution (forward), each lowered alone with LowerNode (compile.cpp would
// send them to the runtime library) or fused with its epilogue, JIT-compiled and compared with
// the reference interpreter on random inputs at 1 and 2 threads, under the default schedule and
// with the parallel loop forced on small shapes: every attribute the definitions cover, odd
// sizes (not multiples of the vector width), size-1 dimensions, empty batches and empty sums,
// float32, float64, float16, bfloat16 and (dot, batch_dot) the integer types.
//
// Tolerances (ExpectNearScale: |got - want| <= scale_rel * S + elem_rel * |want|, S the
// output's scale max(1, max |want|)):
// - float32: scale_rel 1e-5. The kernels sum in float32 (16 partial sums or serially), the
//   reference in double; the sums here have at most 800 terms of magnitude <= 4, whose rounding
//   errors (random signs: growing as sqrt(n)) stay far below 1e-5 of the largest output.
// - float64: 1e-12 of the scale (the same sums in another order).
// - float16 / bfloat16: the float32 sum rounded once to the storage type, the reference's
//   double sum too: one ulp apart at most, elem_rel 2^-10 (float16) or 2^-7 (bfloat16), plus
//   1e-5 of the scale for the float32 summation.
// - Integers: exact. Sums wrap modulo 2^32 (int32, and int8, uint8, bool widened to int32) or
//   2^64 (int64), which is the reference's int64 sum converted to the type.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kiln/codegen/llvm_jit.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/composite.h"
#include "kiln/ir/interpreter.h"
#include "kiln/passes/fuse.h"
#include "kiln/runtime/thread_pool.h"
#include "lower_util.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::ConvAttrs;
using test::ConvCase;
using test::DotAttrs;
using test::Var;

// Random inputs (test::RandomInputs): floats in [-2, 2], integers in [-100, 100] (int8, int32:
// wrapping sums) or [-1e12, 1e12] (int64: products overflow).
constexpr uint32_t kSeed = 23;

const std::set<std::string> kHeavy = {"FullyConnected", "dot", "batch_dot", "Convolution",
                                      "Deconvolution"};

// The heavy nodes, and composites holding one.
bool IsHeavy(const Node& n) {
  return IsComposite(n) || kHeavy.count(std::string(n.op_name())) > 0;
}

// Lowers the heavy nodes of `f`, runs each at 1 and 2 threads and compares with the interpreter
// on `vars` under the default schedule. Returns the number of kernels.
int LowerAndCompare(const Graph& f, const std::map<std::string, Tensor>& vars) {
  return test::LowerRunAndCompare(f, InterpretAll(f, vars), {}, IsHeavy, test::ExpectNearSum);
}

// Under the default schedule and with the parallel loop forced. With `fuse`, the graph's
// output must be one composite: the heavy op with its epilogue.
void Check(const std::string& text, bool fuse = false, int want_kernels = 1) {
  SCOPED_TRACE(text);
  Graph f = fuse ? Fuse(test::Typed(text), {}) : test::Typed(text);
  if (fuse) {
    EXPECT_TRUE(IsComposite(f.node(f.outputs()[0].node)));
  }
  test::LowerBothSchedules(f, InterpretAll(f, test::RandomInputs(f, kSeed)), IsHeavy,
                           test::ExpectNearSum, want_kernels);
}

Var Data(std::vector<int64_t> dims) {
  return {"x", std::move(dims)};
}
const Var kWeight = {"w", {}, false};
const Var kBias = {"b", {}, false};

const char* const kFloatTypes[] = {"float32", "float64", "float16", "bfloat16"};

// ----- FullyConnected -----

TEST(LowerHeavy, FullyConnected) {
  struct Case {
    std::vector<int64_t> data;
    int64_t hidden;
    bool flatten;
  };
  const Case cases[] = {
      {{5, 19}, 7, true},         {{4, 33}, 17, true},   {{3, 4, 5}, 7, true},
      {{2, 3, 1, 6}, 5, true},    {{3, 4, 5}, 7, false}, {{2, 3, 1, 17}, 3, false},
      {{19}, 6, false},           {{6}, 4, true},        {{1, 1}, 1, true},
      {{0, 19}, 7, true},         {{0, 3, 5}, 7, false}, {{2, 300}, 10, true},
      {{16, 50, 4, 4}, 10, true},
  };
  for (const char* t : kFloatTypes)
    for (const Case& c : cases)
      for (bool no_bias : {false, true}) {
        std::string attrs = "num_hidden=" + std::to_string(c.hidden) +
                            ", flatten=" + (c.flatten ? "True" : "False") +
                            (no_bias ? ", no_bias=True" : "");
        std::vector<Var> vars = {Data(c.data), kWeight};
        if (!no_bias) vars.push_back(kBias);
        Check(test::OneOp("FullyConnected", attrs, vars, t));
      }
}

TEST(LowerHeavy, FullyConnectedWithoutFeatures) {
  // data (3, 0): an empty sum, the output is the bias.
  Check(test::OneOp("FullyConnected", "num_hidden=5", {Data({3, 0}), kWeight, kBias}));
  Check(test::OneOp("FullyConnected", "num_hidden=5, no_bias=True", {Data({3, 0}), kWeight}));
}

// ----- dot and batch_dot -----

TEST(LowerHeavy, DotMatrices) {
  // (M, K) x (K, N) in every transposition, with K below, at and above a vector's width.
  for (const char* t : kFloatTypes)
    for (int64_t k : {1, 7, 16, 37})
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          std::vector<int64_t> a = ta ? std::vector<int64_t>{k, 5} : std::vector<int64_t>{5, k};
          std::vector<int64_t> b = tb ? std::vector<int64_t>{19, k} : std::vector<int64_t>{k, 19};
          Check(test::OneOp("dot", DotAttrs(ta, tb), {{"a", a}, {"b", b}}, t));
        }
}

TEST(LowerHeavy, DotVectorsAndTensors) {
  struct Case {
    std::vector<int64_t> a, b;
    bool ta, tb;
  };
  const Case cases[] = {
      {{17}, {17}, false, false},            // (1,)
      {{17}, {17, 5}, false, false},         // vector x matrix
      {{17}, {5, 17}, false, true},          //
      {{5, 17}, {17}, false, false},         // matrix x vector
      {{17, 5}, {17}, true, false},          //
      {{2, 3, 4}, {4, 5}, false, false},     // N-D: a's leading axes stay
      {{4, 2, 3}, {4, 5}, true, false},      // transpose_a on N-D: a's first axis contracts
      {{5, 4}, {3, 2, 4}, false, true},      // transpose_b on N-D: b's last axis contracts
      {{2, 3, 4}, {4, 1, 6}, false, false},  // both N-D, a size-1 axis
      {{3, 2, 5}, {6, 3}, true, true},       //
      {{0, 7}, {7, 5}, false, false},        // no rows
      {{3, 0}, {0, 4}, false, false},        // an empty sum: zeros
      {{1, 1}, {1, 1}, false, false},
  };
  for (const char* t : {"float32", "float64"})
    for (const Case& c : cases)
      Check(test::OneOp("dot", DotAttrs(c.ta, c.tb), {{"a", c.a}, {"b", c.b}}, t));
}

TEST(LowerHeavy, DotIntegersWrapAsTheReference) {
  for (const char* t : {"int32", "int64", "int8", "uint8", "bool"}) {
    Check(test::OneOp("dot", DotAttrs(false, false), {{"a", {5, 19}}, {"b", {19, 7}}}, t));
    Check(test::OneOp("dot", DotAttrs(true, true), {{"a", {40, 3}}, {"b", {6, 40}}}, t));
    Check(test::OneOp("dot", "", {{"a", {33}}, {"b", {33}}}, t));
  }
}

TEST(LowerHeavy, BatchDot) {
  for (const char* t : kFloatTypes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        auto op = [&](int64_t b, int64_t m, int64_t k, bool tr) {
          return tr ? std::vector<int64_t>{b, k, m} : std::vector<int64_t>{b, m, k};
        };
        Check(test::OneOp("batch_dot", DotAttrs(ta, tb),
                          {{"a", op(3, 5, 19, ta)}, {"b", op(3, 19, 7, tb)}}, t));
      }
  // Rank 4, size-1 axes, an empty batch, an empty sum, integers.
  Check(test::OneOp("batch_dot", "", {{"a", {2, 3, 4, 5}}, {"b", {2, 3, 5, 6}}}));
  Check(test::OneOp("batch_dot", DotAttrs(true, false), {{"a", {1, 1, 1}}, {"b", {1, 1, 1}}}));
  Check(test::OneOp("batch_dot", "", {{"a", {0, 3, 4}}, {"b", {0, 4, 5}}}));
  Check(test::OneOp("batch_dot", "", {{"a", {2, 3, 0}}, {"b", {2, 0, 5}}}));
  Check(test::OneOp("batch_dot", DotAttrs(false, true), {{"a", {2, 3, 33}}, {"b", {2, 17, 33}}},
                    "float64"));
  Check(test::OneOp("batch_dot", DotAttrs(true, true), {{"a", {2, 20, 3}}, {"b", {2, 4, 20}}},
                    "int32"));
  Check(test::OneOp("batch_dot", "", {{"a", {2, 3, 20}}, {"b", {2, 20, 4}}}, "int64"));
}

// ----- Convolution and Deconvolution -----

const ConvCase kConvCases[] = {
    // 2-D
    {"kernel=\"(3, 3)\", pad=\"(1, 1)\"", {2, 3, 9, 11}, 5},                      // ResNet 3x3
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\"", {2, 4, 11, 13}, 6},  // downsample
    {"kernel=\"(1, 1)\"", {2, 5, 7, 19}, 4},                                      // 1x1
    {"kernel=\"(1, 1)\", stride=\"(2, 2)\"", {1, 5, 7, 9}, 3},                    // projection
    {"kernel=\"(7, 7)\", stride=\"(2, 2)\", pad=\"(3, 3)\"", {1, 3, 21, 17}, 4},  // stem
    {"kernel=\"(5, 5)\"", {2, 1, 28, 28}, 3},                                     // LeNet
    {"kernel=\"(2, 3)\", stride=\"(2, 1)\", dilate=\"(2, 3)\", pad=\"(2, 1)\"", {2, 3, 10, 12}, 4},
    {"kernel=\"(3, 3)\", dilate=\"(2, 2)\"", {1, 2, 9, 9}, 3},
    {"kernel=\"(3, 3)\", pad=\"(1, 1)\", num_group=2", {2, 4, 7, 9}, 6},  // groups
    {"kernel=\"(3, 3)\", pad=\"(1, 1)\", stride=\"(2, 2)\", num_group=6", {1, 6, 9, 8}, 6},  // dw
    {"kernel=\"(3, 3)\", pad=\"(2, 2)\", layout=NCHW", {1, 2, 3, 4}, 3},  // pad > kernel / 2
    {"kernel=\"(3, 3)\", pad=\"(1, 1)\"", {0, 3, 9, 11}, 5},              // no batch
    {"kernel=\"(1, 1)\"", {2, 1, 1, 1}, 1},                               // size 1
    {"kernel=\"(3, 3)\", pad=\"(1, 1)\"", {1, 3, 1, 1}, 2},               // only the center
    {"kernel=\"(17, 17)\"", {1, 2, 19, 20}, 2},                           // wide kernel rows
    // 1-D
    {"kernel=\"(3)\", stride=\"(2)\", pad=\"(1)\", dilate=\"(2)\"", {2, 3, 17}, 4},
    {"kernel=\"(5)\", layout=NCW, num_group=3", {1, 6, 23}, 9},
    // 3-D
    {"kernel=\"(2, 3, 2)\", stride=\"(1, 2, 1)\", pad=\"(1, 0, 1)\"", {1, 2, 4, 5, 6}, 3},
    {"kernel=\"(1, 1, 1)\"", {2, 3, 2, 3, 4}, 2},
};

TEST(LowerHeavy, Convolution) {
  for (const ConvCase& c : kConvCases)
    for (bool no_bias : {false, true}) {
      std::vector<Var> vars = {Data(c.data), kWeight};
      if (!no_bias) vars.push_back(kBias);
      Check(test::OneOp("Convolution", ConvAttrs(c, no_bias), vars));
    }
}

TEST(LowerHeavy, ConvolutionOtherTypes) {
  for (const char* t : {"float64", "float16", "bfloat16"})
    for (size_t i : {0, 1, 8, 15, 17}) {
      const ConvCase& c = kConvCases[i];
      Check(test::OneOp("Convolution", ConvAttrs(c, false), {Data(c.data), kWeight, kBias}, t));
    }
}

TEST(LowerHeavy, ConvolutionWithoutChannels) {
  // data (2, 0, 5, 5): every sum is empty, the output is the bias.
  Check(test::OneOp("Convolution", "kernel=\"(3, 3)\", pad=\"(1, 1)\", num_filter=3",
                    {Data({2, 0, 5, 5}), kWeight, kBias}));
}

const ConvCase kDeconvCases[] = {
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", adj=\"(1, 1)\"", {2, 3, 5, 6}, 4},
    {"kernel=\"(3, 3)\", pad=\"(1, 1)\"", {1, 4, 7, 5}, 3},
    {"kernel=\"(4, 4)\", stride=\"(2, 2)\", pad=\"(1, 1)\"", {1, 2, 4, 5}, 2},  // upsampling x2
    {"kernel=\"(3, 2)\", stride=\"(3, 2)\", dilate=\"(2, 3)\", pad=\"(2, 1)\"", {2, 2, 4, 3}, 3},
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", num_group=2", {1, 4, 3, 4}, 6},
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\", target_shape=\"(8, 10)\"", {1, 2, 4, 5}, 3},
    {"kernel=\"(1, 1)\"", {2, 3, 4, 5}, 2},
    {"kernel=\"(3, 3)\", stride=\"(2, 2)\"", {0, 2, 3, 3}, 2},  // no batch
    {"kernel=\"(4)\", stride=\"(2)\", pad=\"(1)\"", {2, 3, 9}, 2},
    {"kernel=\"(2, 2, 3)\", stride=\"(2, 1, 2)\", pad=\"(0, 1, 1)\"", {1, 2, 3, 4, 3}, 2},
};

TEST(LowerHeavy, Deconvolution) {
  for (const ConvCase& c : kDeconvCases)
    for (bool no_bias : {false, true}) {
      std::vector<Var> vars = {Data(c.data), kWeight};
      if (!no_bias) vars.push_back(kBias);
      Check(test::OneOp("Deconvolution", ConvAttrs(c, no_bias), vars));
    }
  for (const char* t : {"float64", "float16"}) {
    const ConvCase& c = kDeconvCases[0];
    Check(test::OneOp("Deconvolution", ConvAttrs(c, false), {Data(c.data), kWeight, kBias}, t));
  }
}

TEST(LowerHeavy, InfiniteWeightsGiveTheReferencesNaNAndInfinity) {
  // Convolution multiplies a padded tap's weight by 0 (the reference's zero-filled patches:
  // inf * 0 = NaN); Deconvolution skips taps that reach no input, as its reference does.
  for (const char* op : {"Convolution", "Deconvolution"}) {
    SCOPED_TRACE(op);
    Graph f = test::Typed(test::OneOp(
        op, "kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", num_filter=2, no_bias=False",
        {Data({1, 2, 5, 6}), kWeight, kBias}));
    std::map<std::string, Tensor> vars = test::RandomInputs(f, kSeed);
    std::vector<double> w = vars["w"].ToDoubles();
    w[0] = INFINITY;
    w[w.size() - 1] = -INFINITY;
    vars["w"] = Tensor::FromValues(vars["w"].shape(), DType::kFloat32, w);
    EXPECT_EQ(LowerAndCompare(f, vars), 1);
  }
}

// ----- Fused groups: the heavy op with its epilogue as one kernel -----

TEST(LowerHeavy, FusedEpilogues) {
  Check(R"g(graph {
    %x = var : float32[5, 33]
    %w = var : float32[19, 33]
    %b = var : float32[19]
    %fc = FullyConnected(%x, %w, %b) {num_hidden=19}
    %y = Activation(%fc) {act_type=relu}
    return %y
  })g",
        true);
  Check(R"g(graph {
    %x = var : float32[2, 3, 9, 11]
    %w = var : float32[4, 3, 3, 3]
    %s = var : float32[1, 4, 1, 1]
    %c = Convolution(%x, %w) {kernel="(3, 3)", pad="(1, 1)", num_filter=4, no_bias=True}
    %m = broadcast_mul(%c, %s)
    %y = Activation(%m) {act_type=relu}
    return %y
  })g",
        true);
  Check(R"g(graph {
    %a = var : float64[2, 5, 7]
    %b = var : float64[2, 7, 3]
    %d = batch_dot(%a, %b)
    %y = tanh(%d)
    return %y
  })g",
        true);
}

// ----- Results do not depend on the thread count -----

TEST(LowerHeavy, ThreadCountDoesNotChangeResults) {
  const std::string texts[] = {
      test::OneOp("FullyConnected", "num_hidden=37", {Data({9, 70}), kWeight, kBias}),
      test::OneOp("Convolution", "kernel=\"(3, 3)\", pad=\"(1, 1)\", num_filter=5",
                  {Data({2, 3, 9, 40}), kWeight, kBias}),
      test::OneOp("dot", "", {{"a", {7, 45}}, {"b", {45, 33}}}),
  };
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    Graph f = test::Typed(text);
    std::vector<Tensor> values = InterpretAll(f, test::RandomInputs(f, kSeed));
    test::ExpectSameBitsAtThreadCounts(f, values, f.outputs()[0].node);
  }
}

}  // namespace
}  // namespace kiln
