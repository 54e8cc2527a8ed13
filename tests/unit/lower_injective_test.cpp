// lower_injective_test.cpp - compute definitions of the injective ops (reshapes, transpose,
// slices, Concat, SliceChannel, tile, Pad, take, take_along_axis, one_hot, broadcast_to and the
// slice/concat gradients) and of the remaining elementwise ops (maximum/minimum, power,
// comparisons, logic, where, clip, sign, rounding, Cast, zeros_like/ones_like, add_n and the
// elementwise backward ops),
// lowered to one kernel per node, JIT-compiled by LLVM and compared with the reference
// interpreter at 1 and 2 threads, with the default schedule and with the parallel loop forced.
//
// Inputs: floats uniform in [-2, 2) with NaN, +-inf and -0 sprinkled in; integers in [-6, 6]
// (uint8 [0, 12]); bool 0/1; per-test ranges where an op needs others (indices, saturation).
// Tolerance 0 means bit for bit (NaN matches any NaN): every op here either moves elements or
// computes exactly what the reference computes, so almost every check is bit-exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <utility>
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

// Value ranges for named variables: [lo, hi], integers rounded; `specials` sprinkles NaN, inf
// and -0 into floating inputs.
struct Range {
  double lo, hi;
  bool specials = true;
};
using Ranges = std::map<std::string, Range>;

Tensor RandomTensor(const std::vector<int64_t>& dims, DType t, uint32_t seed, Range r) {
  size_t n = 1;
  for (int64_t d : dims) n *= size_t(d);
  std::vector<double> v = test::RandomValues(n, seed, r.lo, r.hi);
  const double inf = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < n; ++i) {
    if (!IsFloatingPoint(t)) {
      v[i] = std::round(v[i]);
      if (t == DType::kUInt8) v[i] = std::min(std::fabs(v[i]), 255.0);
      if (t == DType::kInt8) v[i] = std::clamp(v[i], -128.0, 127.0);
      if (t == DType::kBool) v[i] = std::fmod(std::fabs(v[i]), 2.0);
    } else if (r.specials) {
      if (i % 11 == 3) v[i] = std::nan("");
      if (i % 13 == 5) v[i] = -0.0;
      if (i % 17 == 7) v[i] = inf;
      if (i % 19 == 2) v[i] = -inf;
    }
  }
  return Tensor::FromValues(dims, t, v);
}

std::map<std::string, Tensor> Inputs(const Graph& g, const Ranges& ranges) {
  std::map<std::string, Tensor> vars;
  uint32_t seed = 7;
  for (uint32_t v : g.VariableNodes()) {
    const std::string& name = g.node(v).name;
    DType t = g.dtype(Entry{v, 0});
    Range r = t == DType::kBool ? Range{0, 1} : IsFloatingPoint(t) ? Range{-2, 2} : Range{-6, 6};
    if (auto it = ranges.find(name); it != ranges.end()) r = it->second;
    vars[name] = RandomTensor(g.shape(Entry{v, 0}).dims(), t, seed++, r);
  }
  return vars;
}

// Bit for bit (tol 0; any NaN matches any NaN) or within tol (absolute + relative).
void ExpectSame(const Tensor& got, const Tensor& want, double tol) {
  test::ScaleTol t;
  if (tol == 0)
    t.exact = true;
  else
    t.elem_rel = t.abs = tol;
  test::ExpectNearScale(got, want, t);
}

// Lowers every op node of `f`, runs it on the interpreter's values of its inputs and compares
// each output with the interpreter's. Returns the number of kernels.
int LowerAndCompare(const Graph& f, const Ranges& ranges, double tol, const LowerOptions& opt) {
  return test::LowerRunAndCompare(
      f, InterpretAll(f, Inputs(f, ranges)), opt, [](const Node&) { return true; },
      [&](const Tensor& got, const Tensor& want) { ExpectSame(got, want, tol); });
}

Graph Typed(const std::string& text, bool fuse) {
  Graph g = ParseGraph(text);
  InferShapes(g);
  InferTypes(g);
  return fuse ? Fuse(g, {}) : g;
}

// Both schedules: the default one and the parallel loop forced (rank 1 in chunks of 8).
void Check(const std::string& text, int want_kernels, const Ranges& ranges = {}, double tol = 0,
           bool fuse = true) {
  Graph f = Typed(text, fuse);
  LowerOptions forced;
  forced.parallel_min_elements = 0;
  forced.parallel_chunk = 8;
  EXPECT_EQ(LowerAndCompare(f, ranges, tol, {}), want_kernels);
  EXPECT_EQ(LowerAndCompare(f, ranges, tol, forced), want_kernels);
}

// One op on one input of `type`, with attributes (text), as a one-kernel graph.
void CheckOp(const std::string& op, const std::string& attrs, const std::string& type,
             const Ranges& ranges = {}) {
  SCOPED_TRACE(op + " {" + attrs + "} on " + type);
  Check("graph {\n %x = var : " + type + "\n %y = " + op + "(%x) {" + attrs + "}\n return %y\n}", 1,
        ranges);
}

// --- Reshapes: every special code, size-1 axes, rank 0, empty tensors. ---

TEST(LowerInjective, ReshapeSpecialCodes) {
  for (const char* shape : {"(0, -1)", "(-1,)", "(-3, -2)", "(0, -4, 2, -1, -2)",
                            "(-4, -1, 2, 0, 0)", "(5, 2, 1, 12)", "(1, 120, 1)", "(8, 15)"})
    CheckOp("Reshape", StrCat("shape=\"", shape, "\""), "float32[4, 6, 5]");
  CheckOp("Reshape", "shape=\"(0, -1)\", reverse=true", "float32[4, 6, 5]");
  CheckOp("Reshape", "target_shape=\"(0, 10)\"", "float32[4, 6, 5]");
  CheckOp("Reshape", "shape=\"(1, 1)\"", "float32[]");
  CheckOp("Reshape", "shape=\"(0, 3, 2)\"", "float32[0, 6]");
}

TEST(LowerInjective, FlattenExpandSqueezeNpReshape) {
  CheckOp("Flatten", "", "float32[3, 1, 7, 5]");
  CheckOp("Flatten", "", "float32[19]");
  CheckOp("expand_dims", "axis=-1", "float32[3, 17]");
  CheckOp("expand_dims", "axis=1", "float32[3, 17]");
  CheckOp("expand_dims", "axis=0", "float32[]");
  CheckOp("squeeze", "", "float32[1, 3, 1, 17, 1]");
  CheckOp("squeeze", "axis=\"(-1, 0)\"", "float32[1, 3, 1, 17, 1]");
  CheckOp("squeeze", "", "float32[1, 1]");
  CheckOp("_np_reshape", "newshape=\"(17, -1)\"", "float32[3, 17]");
  CheckOp("_np_reshape", "newshape=\"()\"", "float32[1, 1]");
  Check(R"g(graph {
    %x = var : float32[6, 7]
    %l = var : float32[2, 3, 7]
    %y = reshape_like(%x, %l)
    return %y
  })g",
        1);
}

// --- transpose, broadcast_to, tile ---

TEST(LowerInjective, TransposeBroadcastTile) {
  CheckOp("transpose", "", "float32[3, 17, 5]");
  CheckOp("transpose", "axes=\"(1, 0, 2)\"", "float32[3, 17, 5]");
  CheckOp("transpose", "axes=\"(-1, 0, 1)\"", "float32[3, 17, 5]");
  CheckOp("transpose", "axes=\"(2, 3, 0, 1)\"", "float32[1, 5, 1, 3]");
  CheckOp("transpose", "axes=\"(1, 0)\"", "float32[0, 4]");
  CheckOp("transpose", "axes=\"(1, 0)\"", "float32[67, 129]");  // parallel by default
  CheckOp("broadcast_to", "shape=\"(3, 4, 17)\"", "float32[3, 1, 17]");
  CheckOp("broadcast_to", "shape=\"(0, 5, 0)\"", "float32[2, 1, 1]");
  CheckOp("tile", "reps=\"(2, 1, 3)\"", "float32[3, 5]");
  CheckOp("tile", "reps=\"(3,)\"", "float32[2, 1, 7]");
  CheckOp("tile", "reps=\"(2, 0)\"", "float32[2, 3]");
}

// --- slices ---

TEST(LowerInjective, SliceWithStepsNegativesAndNone) {
  const char* x = "float32[3, 7, 19]";
  CheckOp("slice", "begin=\"(None, -2, 1)\", end=\"(None, 0, None)\", step=\"(1, -1, 3)\"", x);
  CheckOp("slice", "begin=\"(1, 2)\", end=\"(3, 6)\"", x);
  CheckOp("slice", "begin=\"(None, None, -1)\", end=\"(None, None, None)\", step=\"(-1, -2, -4)\"",
          x);
  CheckOp("slice", "begin=\"(0,)\", end=\"(0,)\"", x);  // empty result
  CheckOp("slice_axis", "axis=-1, begin=2, end=-3", x);
  CheckOp("slice_axis", "axis=1, begin=-4, end=None", x);
}

TEST(LowerInjective, SliceGradientsScatterIntoZeros) {
  Check(R"g(graph {
    %dy = var : float32[3, 5, 5]
    %x = var : float32[3, 7, 19]
    %g = _backward_slice(%dy, %x) {begin="(None, -2, 1)", end="(None, 0, None)", step="(1, -1, 4)"}
    return %g
  })g",
        1);
  Check(R"g(graph {
    %dy = var : float32[3, 4, 19]
    %x = var : float32[3, 7, 19]
    %g = _backward_slice_axis(%dy, %x) {axis=-2, begin=2, end=6}
    return %g
  })g",
        1);
}

TEST(LowerInjective, ConcatAlongEveryAxisWithAnEmptyInput) {
  Check(R"g(graph {
    %a = var : float32[4, 3]
    %b = var : float32[4, 0]
    %c = var : float32[4, 17]
    %d = var : float32[4, 1]
    %y = Concat(%a, %b, %c, %d) {num_args=4, dim=-1}
    return %y
  })g",
        1);
  Check(R"g(graph {
    %a = var : float32[2, 3]
    %b = var : float32[5, 3]
    %y = Concat(%a, %b) {num_args=2, dim=0}
    return %y
  })g",
        1);
  Check(R"g(graph {
    %a = var : float32[0, 3]
    %y = Concat(%a, %a) {num_args=2, dim=1}
    return %y
  })g",
        1);
}

TEST(LowerInjective, SplitAndConcatGradientHaveSeveralOutputs) {
  Check(R"g(graph {
    %x = var : float32[2, 9, 5]
    %s = SliceChannel(%x) {num_outputs=3, axis=1}
    return %s#0, %s#1, %s#2
  })g",
        1);
  Check(R"g(graph {
    %x = var : float32[2, 3, 5]
    %s = SliceChannel(%x) {num_outputs=3, axis=-2, squeeze_axis=true}
    return %s#0, %s#1, %s#2
  })g",
        1);
  Check(R"g(graph {
    %x = var : float32[3]
    %s = SliceChannel(%x) {num_outputs=3, axis=0, squeeze_axis=true}
    return %s#0, %s#1, %s#2
  })g",
        1);
  // Outputs of different shapes: one nest each.
  Check(R"g(graph {
    %dy = var : float32[4, 21]
    %a = var : float32[4, 3]
    %b = var : float32[4, 17]
    %c = var : float32[4, 1]
    %g = _backward_Concat(%dy, %a, %b, %c) {num_args=3, dim=1}
    return %g#0, %g#1, %g#2
  })g",
        1);
}

// --- Pad ---

TEST(LowerInjective, PadConstantEdgeReflect) {
  const char* pads = "pad_width=\"(0, 0, 1, 2, 3, 0, 2, 2)\"";
  for (const char* mode : {"constant", "edge", "reflect"})
    CheckOp("Pad", StrCat("mode=", mode, ", ", pads, ", constant_value=1.5"),
            "float32[2, 3, 5, 7]");
  CheckOp("Pad", "mode=reflect, pad_width=\"(1, 1)\"", "float32[2]");
  CheckOp("Pad", "mode=constant, pad_width=\"(1, 2, 0, 0)\", constant_value=-3", "float32[0, 4]");
  CheckOp("Pad", "mode=edge, pad_width=\"(4, 3)\"", "float32[1]");
}

// --- take and one_hot: indices from float and integer tensors ---

TEST(LowerInjective, TakeClipsWrapsAndCountsNegativesBack) {
  for (const char* mode : {"clip", "wrap", "raise"}) {
    SCOPED_TRACE(mode);
    for (const char* itype : {"float32", "int32", "int64", "float64", "uint8"}) {
      SCOPED_TRACE(itype);
      // raise: indices in [-n, n) only (the reference fails on others).
      Range r = std::string(mode) == "raise" ? Range{-5, 4.4, false} : Range{-13.5, 13.5};
      if (std::string(itype) == "uint8") r = Range{0, std::string(mode) == "raise" ? 4.0 : 12.0};
      Check(StrCat(R"g(graph {
        %a = var : float32[3, 5, 4]
        %i = var : )g",
                   itype, R"g([2, 7]
        %y = take(%a, %i) {axis=1, mode=)g",
                   mode, R"g(}
        return %y
      })g"),
            1, {{"i", r}});
    }
  }
  Check(R"g(graph {
    %a = var : int64[6, 3]
    %i = var : float32[]
    %y = take(%a, %i) {axis=0, mode=wrap}
    return %y
  })g",
        1, {{"i", {-20, 20}}});
  Check(R"g(graph {
    %a = var : float16[4, 9]
    %i = var : int32[5]
    %y = take(%a, %i) {axis=-1, mode=clip}
    return %y
  })g",
        1, {{"i", {-12, 12}}});
}

// Embedding: indices truncated and clamped into [0, input_dim - 1] (below, inside and above
// the table), as float, integer and half-precision ids.
TEST(LowerInjective, EmbeddingClampsItsIndices) {
  for (const char* itype : {"float32", "float64", "int32", "int64", "float16"}) {
    SCOPED_TRACE(itype);
    Check(StrCat("graph {\n %i = var : ", itype,
                 "[3, 7]\n %w = var : float32[10, 5]\n %y = Embedding(%i, %w) {input_dim=10, "
                 "output_dim=5}\n return %y\n}"),
          1, {{"i", Range{-3.5, 13.5}}});
  }
}

TEST(LowerInjective, TakeAlongAxisCountsNegativesBack) {
  for (const char* itype : {"float32", "int32", "int64"}) {
    SCOPED_TRACE(itype);
    // Indices in [-n, n) (the reference fails on others); extents up to a's.
    Check(StrCat("graph {\n %a = var : float32[3, 5, 4]\n %i = var : ", itype,
                 "[2, 7, 4]\n %y = take_along_axis(%a, %i) {axis=-2}\n return %y\n}"),
          1, {{"i", {-5, 4.4, false}}});
  }
  Check(R"g(graph {
    %a = var : int8[6, 3]
    %i = var : int32[6, 1]
    %y = take_along_axis(%a, %i) {axis=1}
    return %y
  })g",
        1, {{"i", {-3, 2.4}}});
}

TEST(LowerInjective, OneHotTruncatesIndices) {
  for (const char* itype : {"float32", "int32", "float64"})
    Check(StrCat("graph {\n %i = var : ", itype,
                 "[3, 7]\n %y = one_hot(%i) {depth=5, on_value=2.5, off_value=-1, "
                 "dtype=float32}\n return %y\n}"),
          1, {{"i", {-2.5, 6.5}}});
  Check(R"g(graph {
    %i = var : float32[11]
    %y = one_hot(%i) {depth=4, dtype=int32}
    return %y
  })g",
        1, {{"i", {-1.5, 5}}});
}

// --- Every dtype moves bit for bit. ---

TEST(LowerInjective, EveryDtypeMovesExactly) {
  for (const char* t :
       {"float64", "float16", "bfloat16", "int8", "uint8", "int32", "int64", "bool"}) {
    SCOPED_TRACE(t);
    Check(StrCat(R"g(graph {
      %x = var : )g",
                 t, R"g([3, 5, 7]
      %y = var : )g",
                 t, R"g([3, 2, 7]
      %a = transpose(%x) {axes="(0, 2, 1)"}
      %b = slice(%a) {begin="(None, None, 1)", end="(None, None, None)", step="(1, 1, 2)"}
      %c = transpose(%y) {axes="(0, 2, 1)"}
      %d = Concat(%b, %c) {num_args=2, dim=-1}
      %e = Pad(%d) {mode=constant, pad_width="(0, 0, 1, 1, 2, 0)", constant_value=1}
      %f = Reshape(%e) {shape="(0, -1)"}
      return %f
    })g"),
          1);
  }
}

// --- maximum and minimum propagate NaN; -0 and +0 as the reference orders them. ---

TEST(LowerElementwise, MaximumMinimumKeepNan) {
  for (const char* t : {"float32", "float64", "int32", "int8", "bool"}) {
    SCOPED_TRACE(t);
    Check(StrCat(R"g(graph {
      %x = var : )g",
                 t, R"g([5, 19]
      %y = var : )g",
                 t, R"g([5, 19]
      %b = var : )g",
                 t, R"g([19]
      %a = _maximum(%x, %y)
      %c = _minimum(%a, %y)
      %d = broadcast_maximum(%c, %b)
      %e = broadcast_minimum(%b, %d)
      %f = _maximum_scalar(%e) {scalar=0.5}
      %g = _minimum_scalar(%f) {scalar=1}
      return %g
    })g"),
          1);
  }
  // Zeros of both signs against each other: max(-0, +0) = +0, max(+0, -0) = -0.
  Graph g = Typed(R"g(graph {
    %x = var : float32[4]
    %y = var : float32[4]
    %a = _maximum(%x, %y)
    return %a
  })g",
                  false);
  std::map<std::string, Tensor> vars = {{"x", test::F32({4}, {-0.0, 0.0, -0.0, std::nan("")})},
                                        {"y", test::F32({4}, {0.0, -0.0, -0.0, 1.0})}};
  std::vector<Tensor> want = Interpret(g, vars);
  Kernel k = LowerNode(g, g.outputs()[0].node);
  codegen::LLVMJit jit;
  KernelFn fn = jit.Compile({k})[0];
  Tensor out = Tensor::Zeros({4}, DType::kFloat32);
  std::vector<void*> args = {vars["x"].raw_data(), vars["y"].raw_data(), out.raw_data()};
  fn(args.data(), 0, 1);
  ExpectSame(out, want[0], 0);
  EXPECT_FALSE(std::signbit(out.data<float>()[0]));
  EXPECT_TRUE(std::signbit(out.data<float>()[1]));
}

TEST(LowerElementwise, PowerIsBitExact) {
  for (const char* t : {"float32", "float64"}) {
    SCOPED_TRACE(t);
    Check(StrCat(R"g(graph {
      %x = var : )g",
                 t, R"g([3, 17]
      %y = var : )g",
                 t, R"g([3, 17]
      %b = var : )g",
                 t, R"g([17]
      %a = _power(%x, %y)
      %c = broadcast_power(%b, %a)
      %d = _power_scalar(%c) {scalar=1.7}
      %e = _rpower_scalar(%d) {scalar=0.3}
      return %e
    })g"),
          1, {{"x", {0, 3}}, {"y", {-2, 2}}, {"b", {-2, 2}}});
  }
}

// --- comparisons, logic, where: 1 or 0 in the operands' dtype ---

TEST(LowerElementwise, ComparisonsAndLogicGiveOneOrZero) {
  for (const char* t : {"float32", "float64", "int32", "int64", "uint8", "bool", "float16"}) {
    SCOPED_TRACE(t);
    std::string text = StrCat("graph {\n %x = var : ", t, "[4, 1, 9]\n %y = var : ", t, "[3, 9]\n");
    std::string outs;
    int n = 0;
    for (const char* op :
         {"broadcast_equal", "broadcast_not_equal", "broadcast_greater", "broadcast_greater_equal",
          "broadcast_lesser", "broadcast_lesser_equal", "broadcast_logical_and",
          "broadcast_logical_or", "broadcast_logical_xor"}) {
      text += StrCat(" %c", n, " = ", op, "(%x, %y)\n");
      outs += StrCat(n ? ", " : "", "%c", n);
      ++n;
    }
    text += StrCat(" %n = logical_not(%x)\n return ", outs, ", %n\n}");
    // One kernel per output: fuse does not continue past a graph output.
    Check(text, n + 1, {{"x", {-2, 2}}, {"y", {-2, 2}}});
  }
}

TEST(LowerElementwise, WhereSelectsByAnyConditionDtype) {
  for (const char* ct : {"float32", "int32", "bool"}) {
    SCOPED_TRACE(ct);
    Check(StrCat("graph {\n %c = var : ", ct,
                 "[4, 9]\n %x = var : float32[4, 9]\n %y = var : float32[4, 9]\n"
                 " %w = where(%c, %x, %y)\n return %w\n}"),
          1);
  }
  Check(R"g(graph {
    %c = var : float32[4]
    %x = var : int8[4, 9]
    %y = var : int8[4, 9]
    %w = where(%c, %x, %y)
    return %w
  })g",
        1);
}

// --- clip, sign, rounding ---

TEST(LowerElementwise, ClipSignAndRounding) {
  for (const char* t : {"float32", "float64", "int32", "int8", "uint8", "int64"}) {
    SCOPED_TRACE(t);
    CheckOp("clip", "a_min=-1.3, a_max=0.7", StrCat(t, "[5, 17]"), {{"x", {-3, 3}}});
    CheckOp("sign", "", StrCat(t, "[5, 17]"));
    CheckOp("abs", "", StrCat(t, "[5, 17]"));
    CheckOp("relu", "", StrCat(t, "[5, 17]"));
    CheckOp("square", "", StrCat(t, "[5, 17]"), {{"x", {-100, 100}}});
  }
  // Halves, the places where the rounding modes differ; beyond 2^23 every float is whole.
  std::vector<double> halves;
  for (int i = -40; i <= 40; ++i) halves.push_back(i * 0.25);
  for (double v : {8388607.5, 8388608.0, 16777216.0, 1e30, -4503599627370495.5, 0.49999997})
    halves.push_back(v);
  halves.push_back(-0.0);
  halves.push_back(std::nan(""));
  for (const char* op : {"floor", "ceil", "round", "trunc", "rint"}) {
    for (DType t : {DType::kFloat32, DType::kFloat64}) {
      SCOPED_TRACE(StrCat(op, " ", DTypeName(t)));
      Graph g = Typed(StrCat("graph {\n %x = var : ", DTypeName(t), "[", halves.size(),
                             "]\n %y = ", op, "(%x)\n return %y\n}"),
                      false);
      std::map<std::string, Tensor> vars = {
          {"x", Tensor::FromValues({int64_t(halves.size())}, t, halves)}};
      std::vector<Tensor> want = Interpret(g, vars);
      Kernel k = LowerNode(g, g.outputs()[0].node);
      codegen::LLVMJit jit;
      KernelFn fn = jit.Compile({k})[0];
      Tensor out = Tensor::Zeros({int64_t(halves.size())}, t);
      std::vector<void*> args = {vars["x"].raw_data(), out.raw_data()};
      fn(args.data(), 0, 1);
      ExpectSame(out, want[0], 0);
    }
    CheckOp(op, "", "float32[3, 19]", {{"x", {-6, 6}}});
    CheckOp(op, "", "int32[3, 19]");
  }
}

// --- Cast: ConvertValue's rules, pair by pair ---

TEST(LowerElementwise, CastBetweenEveryPairOfDtypes) {
  const char* types[] = {"float32", "float64", "float16", "bfloat16", "int8",
                         "uint8",   "int32",   "int64",   "bool"};
  for (const char* from : types) {
    for (const char* to : types) {
      SCOPED_TRACE(StrCat(from, " -> ", to));
      // Wide enough to saturate every integer type (float16 saturates at 65504 itself).
      CheckOp("Cast", StrCat("dtype=", to), StrCat(from, "[3, 19]"), {{"x", {-3e5, 3e5}}});
      CheckOp("Cast", StrCat("dtype=", to), StrCat(from, "[3, 19]"), {{"x", {-3, 3}}});
    }
  }
  // int64 beyond 2^53 reaches float32 through double, as the reference.
  Graph g = Typed(R"g(graph {
    %x = var : int64[4]
    %y = Cast(%x) {dtype=float32}
    %z = Cast(%x) {dtype=float64}
    return %y, %z
  })g",
                  false);
  std::vector<int64_t> big = {(int64_t(1) << 60) + (int64_t(1) << 36) + 1, -(int64_t(1) << 55) - 3,
                              int64_t(16777217), std::numeric_limits<int64_t>::min()};
  std::map<std::string, Tensor> vars = {{"x", Tensor::FromVector<int64_t>({4}, big)}};
  std::vector<Tensor> want = Interpret(g, vars);
  for (size_t o = 0; o < 2; ++o) {
    Kernel k = LowerNode(g, g.outputs()[o].node);
    codegen::LLVMJit jit;
    KernelFn fn = jit.Compile({k})[0];
    Tensor out = Tensor::Zeros({4}, g.dtype(g.outputs()[o]));
    std::vector<void*> args = {vars["x"].raw_data(), out.raw_data()};
    fn(args.data(), 0, 1);
    ExpectSame(out, want[o], 0);
  }
}

// --- zeros_like, ones_like, add_n ---

TEST(LowerElementwise, FillsAndAddN) {
  for (const char* t : {"float32", "float64", "int32", "uint8", "bool", "float16"}) {
    SCOPED_TRACE(t);
    Check(StrCat("graph {\n %x = var : ", t, "[3, 17]\n %y = var : ", t, "[3, 17]\n",
                 " %z = var : ", t, "[3, 17]\n %a = add_n(%x, %y, %z) {num_args=3}\n",
                 " %o = ones_like(%x)\n %n = zeros_like(%y)\n return %a, %o, %n\n}"),
          3, {{"x", {-1e3, 1e3}}, {"y", {-2, 2}}, {"z", {-1e-3, 1e-3}}});
  }
}

// --- Elementwise backward ops ---

TEST(LowerElementwise, BackwardOps) {
  for (const char* t : {"float32", "float64"}) {
    SCOPED_TRACE(t);
    Check(
        StrCat("graph {\n %dy = var : ", t, "[4, 13]\n %x = var : ", t, "[4, 13]\n %y = var : ", t,
               "[4, 13]\n"
               " %a = _backward_maximum(%dy, %x, %y)\n"
               " %b = _backward_minimum(%dy, %x, %y)\n"
               " %c = _backward_power(%dy, %x, %y)\n"
               " %d = _backward_maximum_scalar(%dy, %x) {scalar=0.3}\n"
               " %e = _backward_minimum_scalar(%dy, %x) {scalar=0.3}\n"
               " %f = _backward_clip(%dy, %x) {a_min=-0.1, a_max=0.7}\n"
               " %g = _backward_Cast(%dy, %x)\n"
               " return %a#0, %a#1, %b#0, %b#1, %c#0, %c#1, %d, %e, %f, %g\n}"),
        7);
  }
  // dy of one dtype cast back to the input's.
  Check(R"g(graph {
    %dy = var : float64[4, 13]
    %x = var : float32[4, 13]
    %g = _backward_Cast(%dy, %x)
    return %g
  })g",
        1);
}

// --- Fused chains mixing injective and elementwise ops ---

TEST(LowerFused, InjectiveAndElementwiseChainIsOneKernel) {
  // (6, 5, 7) -exp-> -transpose-> (5, 6, 7) -Reshape-> (5, 42) -slice-> (5, 13) -Concat-> (5, 17)
  // -max-> -Pad-> (8, 20) -broadcast_mul-> (8, 20).
  const char* text = R"g(graph {
    %x = var : float32[6, 5, 7]
    %y = var : float32[5, 4]
    %b = var : float32[20]
    %a = exp(%x)
    %t = transpose(%a) {axes="(1, 0, 2)"}
    %r = Reshape(%t) {shape="(0, -1)"}
    %s = slice(%r) {begin="(None, 1)", end="(None, -2)", step="(1, 3)"}
    %c = Concat(%s, %y) {num_args=2, dim=1}
    %m = _maximum_scalar(%c) {scalar=0.25}
    %p = Pad(%m) {mode=reflect, pad_width="(1, 2, 0, 3)"}
    %q = broadcast_mul(%p, %b)
    return %q
  })g";
  Graph f = Typed(text, true);
  EXPECT_EQ(f.shape(f.outputs()[0]).ToString(), "(8, 20)");
  uint32_t id = f.outputs()[0].node;
  ASSERT_TRUE(IsComposite(f.node(id)));
  Kernel k = LowerNode(f, id);
  EXPECT_EQ(k.buffers.size(), 4u);  // x, y, b and the output: no intermediate buffer
  Check(text, 1, {}, 2e-6);         // exp: vmath's, within 1 ulp
}

TEST(LowerFused, ChainsOnEmptySizeOneAndIntegerTensors) {
  Check(R"g(graph {
    %x = var : float32[0, 5]
    %a = transpose(%x) {axes="(1, 0)"}
    %b = Pad(%a) {mode=constant, pad_width="(0, 0, 2, 1)", constant_value=4}
    %c = _maximum_scalar(%b) {scalar=1}
    return %c
  })g",
        1);
  Check(R"g(graph {
    %x = var : int32[1, 7, 1]
    %i = var : float32[3]
    %a = squeeze(%x)
    %b = take(%a, %i) {axis=0, mode=wrap}
    %c = expand_dims(%b) {axis=-1}
    %d = broadcast_to(%c) {shape="(3, 4)"}
    %e = clip(%d) {a_min=-2, a_max=3}
    %f = Cast(%e) {dtype=float32}
    %z = var : float32[4]
    %g = broadcast_greater(%f, %z)
    return %g
  })g",
        1, {{"i", {-9, 9}}});
}

}  // namespace
}  // namespace kiln
