// lower_reduce_test.cpp - lowering reductions (TReduce) and the ops defined with them: sum,
// mean, max, min, prod, argmax and their gradients, softmax and log_softmax and theirs,
// SoftmaxOutput, the activation gradients, LeakyReLU, Pooling; alone and in fused groups. Each
// kernel is JIT-compiled and compared with the reference interpreter on random inputs at 1 and
// 2 threads, under the default schedule and with the parallel loop forced on small shapes,
// with widths that are not multiples of 16, size-1 dimensions and empty tensors.
//
// Tolerances (ExpectTensorNear: absolute + relative, tol * (1 + |expected|)):
// - kExact (0): max, min, argmax, max-pool and the gradients that only select or copy values:
//   the same float operations as the reference, rounded once.
// - SumTol(n) = 1e-5 * sqrt(n) for a sum or mean of n float32 values: kiln accumulates in
//   float32 (in W = 16 partial sums or serially), the reference in double; each addition
//   rounds by at most half an ulp of the partial sum, and the errors of random-signed inputs
//   grow as sqrt(n).
// - kMath (2e-6) for elementwise math (vmath is within 2.5 ulp, docs/codegen.md); 1e-5 for
//   softmax and its gradient (exp, a row sum of values <= 1 and a division or log).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "kiln/codegen/llvm_jit.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/composite.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/passes/fuse.h"
#include "kiln/passes/infer.h"
#include "kiln/runtime/error.h"
#include "kiln/runtime/thread_pool.h"
#include "lower_util.h"
#include "test_util.h"

namespace kiln {
namespace {

using codegen::Kernel;
using codegen::KernelFn;
using codegen::LowerNode;
using codegen::LowerOptions;
using test::kExact;
using test::kMath;
using test::SumTol;

constexpr double kSoftmax = 1e-5;

Graph Typed(const std::string& text, bool fuse) {
  Graph g = ParseGraph(text);
  InferShapes(g);
  InferTypes(g);
  return fuse ? Fuse(g, {}) : g;
}

// Random values in [-2, 2] for every variable but those given (labels, NaN cases).
std::map<std::string, Tensor> Inputs(const Graph& g, const std::map<std::string, Tensor>& given) {
  std::map<std::string, Tensor> vars = given;
  uint32_t seed = 7;
  for (uint32_t v : g.VariableNodes()) {
    const std::string& name = g.node(v).name;
    ++seed;
    if (vars.count(name)) continue;
    std::vector<int64_t> dims = g.shape(Entry{v, 0}).dims();
    size_t n = 1;
    for (int64_t d : dims) n *= size_t(d);
    vars[name] =
        Tensor::FromValues(dims, g.dtype(Entry{v, 0}), test::RandomValues(n, seed, -2.0, 2.0));
  }
  return vars;
}

// Lowers every op node of `f`, runs it on the interpreter's values of its inputs at 1 and 2
// threads and compares every output. Returns the number of kernels.
int LowerAndCompare(const Graph& f, double tol, const LowerOptions& opt,
                    const std::map<std::string, Tensor>& given) {
  return test::LowerRunAndCompare(f, InterpretAll(f, Inputs(f, given)), opt, tol);
}

void Check(const std::string& text, double tol, int want_kernels, bool fuse = true,
           const std::map<std::string, Tensor>& given = {}) {
  Graph f = Typed(text, fuse);
  LowerOptions forced;
  forced.parallel_min_elements = 0;
  forced.parallel_chunk = 8;
  EXPECT_EQ(LowerAndCompare(f, tol, {}, given), want_kernels);
  EXPECT_EQ(LowerAndCompare(f, tol, forced, given), want_kernels);
}

// One op on one input `x` of `shape` (float32).
std::string OneOp(const std::string& op, const std::string& attrs, const std::string& shape) {
  return "graph {\n  %x = var : float32[" + shape + "]\n  %y = " + op + "(%x)" +
         (attrs.empty() ? "" : " {" + attrs + "}") + "\n  return %y\n}";
}

TEST(LowerReduce, SumMeanOverAxisSets) {
  for (const char* op : {"sum", "mean"})
    for (const char* attrs :
         {"", "axis=\"(0)\"", "axis=\"(1)\"", "axis=\"(2)\"", "axis=\"(-1)\", keepdims=True",
          "axis=\"(0, 2)\"", "axis=\"(1)\", exclude=True", "axis=\"(0, 1, 2)\", keepdims=True"}) {
      SCOPED_TRACE(std::string(op) + " " + attrs);
      Check(OneOp(op, attrs, "3, 17, 5"), SumTol(255), 1);
    }
}

TEST(LowerReduce, MaxMinAreExactAndPropagateNaN) {
  for (const char* op : {"max", "min"})
    for (const char* attrs :
         {"", "axis=\"(0)\"", "axis=\"(1)\"", "axis=\"(2)\"", "axis=\"(0, 2)\""}) {
      SCOPED_TRACE(std::string(op) + " " + attrs);
      Check(OneOp(op, attrs, "3, 17, 5"), kExact, 1);
      // NaN at a few positions: the rows holding one give NaN.
      std::vector<double> v = test::RandomValues(255, 3, -2, 2);
      v[0] = v[40] = v[254] = NAN;
      Check(OneOp(op, attrs, "3, 17, 5"), kExact, 1, true, {{"x", test::F32({3, 17, 5}, v)}});
    }
  // All -inf: -inf (float32 rounds the reference's -DBL_MAX start to -inf).
  Graph g = Typed(OneOp("max", "axis=\"(1)\"", "2, 3"), false);
  Tensor x = test::F32({2, 3}, std::vector<double>(6, -INFINITY));
  Tensor want = Interpret(g, {{"x", x}})[0];
  Kernel k = LowerNode(g, g.outputs()[0].node);
  codegen::LLVMJit jit;
  KernelFn fn = jit.Compile({k})[0];
  Tensor got = Tensor::Zeros({2}, DType::kFloat32);
  void* args[] = {x.raw_data(), got.raw_data()};
  fn(args, 0, codegen::TaskCount(k));
  EXPECT_EQ(got.ToDoubles(), want.ToDoubles());
  EXPECT_EQ(got.ToDoubles(), std::vector<double>(2, -INFINITY));
}

TEST(LowerReduce, ProdAndArgmax) {
  // Products of at most 17 values in [-2, 2]: relative error about n ulp.
  for (const char* attrs : {"axis=\"(1)\"", "axis=\"(0, 2)\""})
    Check(OneOp("prod", attrs, "3, 17, 5"), 1e-5, 1);
  for (const char* attrs : {"", "axis=0", "axis=1", "axis=-1, keepdims=True"})
    Check(OneOp("argmax", attrs, "3, 17"), kExact, 1);
  std::vector<double> v = test::RandomValues(51, 5, -2, 2);
  v[20] = NAN;   // row 1: the NaN's index
  v[3] = v[10];  // row 0: a tie, the first wins
  Check(OneOp("argmax", "axis=1", "3, 17"), kExact, 1, true, {{"x", test::F32({3, 17}, v)}});
}

TEST(LowerReduce, LongRowsUsePartialSumsAndColumnsUseTiles) {
  // Rows of 1003 (partial sums over the contiguous axis, 16 lanes and a remainder), columns of
  // 37 x 33 (tiles of the innermost output axis), and a rank-1 output large enough to run in
  // parallel chunks.
  Check(OneOp("sum", "axis=\"(1)\"", "7, 1003"), SumTol(1003), 1);
  Check(OneOp("sum", "axis=\"(0)\"", "37, 33"), SumTol(37), 1);
  Check(OneOp("max", "axis=\"(0)\"", "37, 33"), kExact, 1);
  Check(OneOp("mean", "axis=\"(1)\"", "40000, 3"), SumTol(3), 1);
  Check(OneOp("sum", "axis=\"(0)\", keepdims=True", "3, 40000"), SumTol(3), 1);
}

TEST(LowerReduce, ScheduleOfRowsAndColumns) {
  // Over the last axis: 16 partial sums in a vectorized loop over the row. Over axis 0: the
  // output's columns in tiles of 16 lanes, the update vectorized over the tile. Either way the
  // whole chunks of 16 have the constant extent 16 and the last one (33 = 2 x 16 + 1) is a
  // vector loop of its own width, so no vector loop has a variable extent.
  for (const char* axis : {"1", "0"}) {
    Graph f = Typed(OneOp("sum", std::string("axis=") + axis, "37, 33"), false);
    std::string text = codegen::PrintKernel(LowerNode(f, f.outputs()[0].node));
    EXPECT_NE(text.find("acc0_lanes: float32[16]"), std::string::npos) << text;
    bool rows = std::string(axis) == "1";
    for (const char* want :
         {rows ? "for r0 in [c * 16, (c * 16) + 16) vectorize(16)"
               : "for l_1 in [c * 16, (c * 16) + 16) vectorize(16)",
          rows ? "acc0_lanes[r0 - (c * 16)] = acc0_lanes"
               : "acc0_lanes[l_1 - (c * 16)] = acc0_lanes",
          rows ? "for r0_1 in [32, 32 + 1) vectorize(1)" : "for l_4 in [32, 32 + 1) vectorize(1)"})
      EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
    EXPECT_EQ(text.find("min("), std::string::npos) << text;
  }
}

// Widths around multiples of 16 (whole tiles only, a last tile of 1 to 15 lanes, a single
// short tile), for both schedules and for the gradient that tiles with an index compare; the
// parallel rank-1 case has a variable extent and keeps a variable last tile.
TEST(LowerReduce, PartialLastChunks) {
  for (const char* width : {"1", "7", "15", "16", "17", "31", "32", "33", "100"}) {
    SCOPED_TRACE(width);
    std::string shape = std::string("9, ") + width;
    Check(OneOp("sum", "axis=\"(0)\"", shape), SumTol(9), 1);
    Check(OneOp("max", "axis=\"(0)\"", shape), kExact, 1);
    Check(OneOp("sum", "axis=\"(1)\"", shape), SumTol(100), 1);
    Check(OneOp("softmax", "axis=0", shape), kSoftmax, 1);
    Check("graph {\n  %dy = var : float32[3, " + std::string(width) +
              "]\n  %idx = var : float32[3]\n  %a = var : float32[5, " + width +
              "]\n  %g = _backward_take(%dy, %idx, %a) {axis=0}\n  return %g\n}",
          SumTol(3), 1, true, {{"idx", test::F32({3}, {4, 1, 4})}});
  }
  Check(OneOp("sum", "axis=\"(0)\"", "2, 40001"), SumTol(2), 1);
}

TEST(LowerReduce, SizeOneAndEmpty) {
  Check(OneOp("sum", "axis=\"(1)\"", "5, 1, 3"), kExact, 1);
  Check(OneOp("max", "", "1"), kExact, 1);
  Check(OneOp("sum", "axis=\"(1)\"", "4, 0"), kExact, 1);   // empty sums: 0
  Check(OneOp("mean", "axis=\"(1)\"", "4, 0"), kExact, 1);  // empty means: NaN
  Check(OneOp("sum", "axis=\"(1)\"", "0, 5"), kExact, 1);   // no outputs
  Check(OneOp("prod", "axis=\"(0)\"", "0, 3"), kExact, 1);  // empty products: 1
}

TEST(LowerReduce, FusedGroupEndingInAReduction) {
  // The elementwise producers fuse into the reduction: one kernel reading x and b.
  Check(R"g(graph {
    %x = var : float32[6, 35]
    %b = var : float32[35]
    %a = broadcast_mul(%x, %b)
    %e = exp(%a)
    %s = sum(%e) {axis="(1)"}
    return %s
  })g",
        SumTol(35) + kMath, 1);
  Check(R"g(graph {
    %x = var : float32[19, 6]
    %t = tanh(%x)
    %s = mean(%t) {axis="(0)"}
    return %s
  })g",
        SumTol(19) + kMath, 1);
}

TEST(LowerReduce, ReductionFeedingElementwiseInOneComposite) {
  // Written by hand (fuse does not continue after a reduction): the row sum is hoisted out of
  // the column loop, and the same reduction node read twice is computed once.
  Graph f = Typed(R"g(graph {
    %x = var : float32[5, 21]
    %f = fused(%x) {anchor=sum} : float32[5, 21] {
      %x = var : float32[5, 21]
      %s = sum(%x) {axis="(1)", keepdims=True} : float32[5, 1]
      %d = broadcast_div(%x, %s) : float32[5, 21]
      %m = broadcast_mul(%d, %s) : float32[5, 21]
      return %m
    }
    return %f
  })g",
                  false);
  uint32_t id = f.outputs()[0].node;
  Kernel k = LowerNode(f, id);
  std::string text = codegen::PrintKernel(k);
  size_t locals = 0;
  for (size_t p = text.find("local acc"); p != std::string::npos; p = text.find("local acc", p + 1))
    locals += text.compare(text.find(':', p) - 6, 6, "_lanes") != 0;
  EXPECT_EQ(locals, 1u) << text;
  EXPECT_EQ(LowerAndCompare(f, SumTol(21), {}, {}), 1);
}

const char* kSoftmaxWidths[] = {"1", "7", "17", "1000"};

TEST(LowerReduce, SoftmaxOddWidths) {
  for (const char* w : kSoftmaxWidths)
    for (const char* op : {"softmax", "log_softmax"}) {
      SCOPED_TRACE(std::string(op) + " width " + w);
      Check(OneOp(op, "", std::string("3, ") + w), kSoftmax, 1);
    }
  Check(OneOp("softmax", "axis=1", "2, 5, 7"), kSoftmax, 1);
  Check(OneOp("log_softmax", "axis=0, temperature=2.5", "9, 3"), kSoftmax, 1);
  Check(OneOp("softmax", "", "1"), kSoftmax, 1);
  Check(OneOp("softmax", "", "0, 5"), kSoftmax, 1);
}

TEST(LowerReduce, SoftmaxComputesRowStatisticsOncePerRow) {
  Graph f = Typed(OneOp("softmax", "", "4, 100"), false);
  Kernel k = LowerNode(f, f.outputs()[0].node);
  std::string text = codegen::PrintKernel(k);
  // Two accumulators (row max, row sum), both outside the vectorized column loop.
  size_t locals = 0;
  for (size_t p = text.find("local acc"); p != std::string::npos; p = text.find("local acc", p + 1))
    locals += text.compare(text.find(':', p) - 6, 6, "_lanes") != 0;
  EXPECT_EQ(locals, 2u) << text;
  EXPECT_NE(text.find("vectorize"), std::string::npos) << text;
}

TEST(LowerReduce, SoftmaxWithLengthAndNaN) {
  Check(R"g(graph {
    %x = var : float32[4, 9]
    %l = var : float32[4]
    %y = softmax(%x, %l) {use_length=True}
    return %y
  })g",
        kSoftmax, 1, true, {{"l", test::F32({4}, {0, 3, 9, 12})}});
  std::vector<double> v = test::RandomValues(27, 9, -2, 2);
  v[4] = NAN;
  Check(OneOp("softmax", "", "3, 9"), kSoftmax, 1, true, {{"x", test::F32({3, 9}, v)}});
}

TEST(LowerReduce, SoftmaxGradients) {
  for (const char* op : {"_backward_softmax", "_backward_log_softmax"})
    for (const char* w : kSoftmaxWidths) {
      SCOPED_TRACE(std::string(op) + " width " + w);
      std::string s = std::string("3, ") + w;
      Check("graph {\n %dy = var : float32[" + s + "]\n %y = var : float32[" + s +
                "]\n %g = " + op + "(%dy, %y) {temperature=1.5}\n return %g\n}",
            kSoftmax * std::sqrt(std::atof(w)), 1);
    }
}

TEST(LowerReduce, ActivationGradientsAndLeakyReLU) {
  for (const char* act : {"relu", "sigmoid", "tanh", "softrelu", "softsign"})
    Check(std::string("graph {\n %dy = var : float32[3, 19]\n %y = var : float32[3, 19]\n") +
              " %g = _backward_Activation(%dy, %y) {act_type=" + act + "}\n return %g\n}",
          kMath, 1);
  for (const char* act : {"leaky", "elu", "selu", "gelu"}) {
    Check(OneOp("LeakyReLU", std::string("act_type=") + act + ", slope=0.3", "3, 19"), kMath, 1);
    Check(std::string("graph {\n %dy = var : float32[3, 19]\n %x = var : float32[3, 19]\n") +
              " %g = _backward_LeakyReLU(%dy, %x) {act_type=" + act + ", slope=0.3}\n return %g\n}",
          kMath, 1);
  }
  for (const char* gamma : {"4", "1"}) {
    std::string g = gamma;
    Check("graph {\n %x = var : float32[2, 4, 5]\n %a = var : float32[" + g +
              "]\n %y = LeakyReLU(%x, %a) {act_type=prelu}\n return %y\n}",
          kExact, 1);
    // Two outputs of different shapes (d data, d gamma: a sum over 10 or 40 values).
    Check(
        "graph {\n %dy = var : float32[2, 4, 5]\n %x = var : float32[2, 4, 5]\n %a = var : "
        "float32[" +
            g + "]\n %g = _backward_LeakyReLU(%dy, %x, %a) {act_type=prelu}\n return %g#0, %g#1\n}",
        SumTol(40), 1);
  }
}

TEST(LowerReduce, ReductionGradients) {
  // (attributes, dy's shape) for x (3, 7, 5).
  const std::pair<std::string, std::string> cases[] = {
      {"axis=\"(1)\"", "3, 5"}, {"axis=\"(0, 2)\", keepdims=True", "1, 7, 1"}, {"", "1"}};
  for (const char* op : {"sum", "mean", "prod"})
    for (const auto& [a, dy] : cases) {
      SCOPED_TRACE(std::string(op) + " " + a);
      Check("graph {\n %dy = var : float32[" + dy +
                "]\n %x = var : float32[3, 7, 5]\n %g = _backward_" + op + "(%dy, %x)" +
                (a.empty() ? "" : " {" + a + "}") + "\n return %g\n}",
            std::string(op) == "prod" ? 1e-5 : kExact, 1);
    }
  // max and min: the gradient goes to every element equal to the result.
  Check(R"g(graph {
    %x = var : float32[3, 7, 5]
    %m = max(%x) {axis="(1)"}
    %dy = var : float32[3, 5]
    %g = _backward_max(%dy, %x, %m) {axis="(1)"}
    return %g
  })g",
        kExact, 2, false);
}

// Class labels 0..k-1 with a few -1 (the default ignore_label) and one out of range.
Tensor Labels(std::vector<int64_t> shape, int64_t k) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<double> v(static_cast<size_t>(n), 0.0);
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = double((i * 7 + 3) % (k + 2)) - 1.0;
  return test::F32(std::move(shape), v);
}

TEST(LowerReduce, SoftmaxOutputForwardAndGradient) {
  struct Case {
    std::string attrs, data, label;
    std::vector<int64_t> label_dims;
    int64_t k;
  };
  const Case cases[] = {
      {"", "5, 10", "5", {5}, 10},
      {"", "3, 1", "3", {3}, 1},
      {"", "4, 3, 7", "4, 3", {4, 3}, 21},
      {"preserve_shape=True", "2, 3, 17", "2, 3", {2, 3}, 17},
      {"multi_output=True", "2, 5, 3, 3", "2, 3, 3", {2, 3, 3}, 5},
      {"multi_output=True, normalization=valid, use_ignore=True", "2, 5, 7", "2, 7", {2, 7}, 5},
      {"normalization=batch, grad_scale=0.5, smooth_alpha=0.1", "6, 9", "6", {6}, 9},
      {"normalization=valid, use_ignore=True, ignore_label=2", "6, 9", "6", {6}, 9},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.attrs + " data " + c.data);
    std::string attrs = c.attrs.empty() ? "" : " {" + c.attrs + "}";
    std::map<std::string, Tensor> given = {{"l", Labels(c.label_dims, c.k)}};
    Check("graph {\n %x = var : float32[" + c.data + "]\n %l = var : float32[" + c.label +
              "]\n %y = SoftmaxOutput(%x, %l)" + attrs + "\n return %y\n}",
          kSoftmax, 1, true, given);
    Check("graph {\n %y = var : float32[" + c.data + "]\n %l = var : float32[" + c.label +
              "]\n %g = _backward_SoftmaxOutput(%y, %l)" + attrs + "\n return %g\n}",
          kMath, 1, true, given);
  }
  Check(R"g(graph {
    %y = var : float32[4, 6]
    %l = var : float32[4]
    %dy = var : float32[4, 6]
    %g = _backward_SoftmaxOutput(%y, %l, %dy) {out_grad=True}
    return %g
  })g",
        kMath, 1, true, {{"l", Labels({4}, 6)}});
}

TEST(LowerReduce, RegressionAndMakeLoss) {
  Check(R"g(graph {
    %x = var : float32[5, 3]
    %l = var : float32[5, 3]
    %y = LinearRegressionOutput(%x, %l) {grad_scale=2}
    %g = _backward_LinearRegressionOutput(%y, %l) {grad_scale=2}
    %m = MakeLoss(%x)
    %h = _backward_MakeLoss(%x) {normalization=batch, grad_scale=3}
    return %y, %g, %m, %h
  })g",
        kMath, 4, false);
}

TEST(LowerReduce, PoolingForward) {
  // (attributes, data shape); sums of at most 49 values.
  const std::pair<std::string, std::string> cases[] = {
      {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=max", "2, 3, 11, 13"},
      {"kernel=\"(2, 2)\", stride=\"(2, 2)\", pool_type=max", "1, 2, 8, 8"},
      {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pool_type=max, pooling_convention=full",
       "1, 2, 10, 7"},
      {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=avg", "2, 3, 11, 13"},
      {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=avg, "
       "count_include_pad=False",
       "2, 3, 11, 13"},
      {"kernel=\"(2, 3)\", stride=\"(1, 2)\", pool_type=sum, pooling_convention=full",
       "1, 4, 5, 9"},
      {"kernel=\"(1, 1)\", global_pool=True, pool_type=avg", "2, 5, 7, 7"},
      {"kernel=\"(1, 1)\", global_pool=True, pool_type=max", "2, 5, 3, 1"},
      {"kernel=\"(3)\", stride=\"(2)\", pool_type=max", "2, 3, 17"},
      {"kernel=\"(2, 2, 2)\", pool_type=avg", "1, 2, 3, 4, 5"},
      {"kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=max, layout=NHWC",
       "2, 9, 7, 5"},
      {"kernel=\"(2, 2)\", pool_type=lp, p_value=2", "1, 2, 6, 5"},
  };
  for (const auto& [attrs, shape] : cases) {
    SCOPED_TRACE(attrs);
    bool max = attrs.find("max") != std::string::npos;
    Check(OneOp("Pooling", attrs, shape), max ? kExact : SumTol(49) + kMath, 1);
  }
}

}  // namespace
}  // namespace kiln
