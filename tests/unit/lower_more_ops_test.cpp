// lower_more_ops_test.cpp - compute definitions of _reduce_sum_like, _backward_tile, cumsum,
// einsum, resize, _backward_take, _backward_take_along_axis and _backward_Embedding, each
// lowered alone with LowerNode, JIT-compiled and compared with the reference interpreter at 1
// and 2 threads, under the default schedule and with the parallel loop forced: every attribute
// form, odd sizes, size-1 and empty axes, every dtype the reference takes; the size rules beyond
// which the O(n^2) definitions are withheld; and an Embedding training graph compiled whole.
//
// Inputs: floats uniform in [-2, 2) with NaN, +-inf and -0 sprinkled in (the definitions must
// propagate them as the reference does, and skip what it skips); integers in [-6, 6] (uint8
// [0, 12]); bool 0/1; indices in per-test ranges.
//
// Tolerances (|got - want| <= scale_rel * S + elem_rel * |want|, S = max(1, max finite |want|);
// NaN must meet NaN and an infinity the same infinity):
// - Sums (every op here but resize): float32 scale_rel 1e-5. The kernels sum in float32, the
//   reference in double; the sums have at most 200 terms of magnitude <= 8 (einsum's products
//   of up to three operands), whose float32 rounding errors (about 6e-8 per addition, random
//   signs) stay far below 1e-5 of S. float64: 1e-12 of S (the same sums in another order).
//   float16 / bfloat16: the float32 sum rounded once to the storage type, as the reference's
//   double sum is: one ulp apart at most, elem_rel 2^-10 (float16) or 2^-7 (bfloat16), plus 1e-5
//   of S. Integers and bool: exact (both wrap modulo 2^bits).
// - resize: the reference's float64 operations, but GCC contracts some of them into fused
//   multiply-adds in the reference (-march=native), LLVM others in the kernel: the float64 sums
//   (at most 16 products of magnitude <= 2.6, cubic weights) agree to 1e-14 of S, which may turn
//   a sum near a midpoint of the output type either way: elem_rel 2^-23 (float32), 2^-10
//   (float16), 2^-7 (bfloat16) on top. Integers (linear, cubic) within 1: sums whose exact value
//   is a tie of nearbyint (.5) are common (weights 1/2, 1/4, 3/4 times integers) and the float64
//   noise of the other axes' weights decides which way each side rounds. Nearest is exact in
//   every dtype (it selects).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "kiln/codegen/compile.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/passes/gradient.h"
#include "kiln/passes/infer.h"
#include "kiln/runtime/error.h"
#include "lower_util.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::ScaleTol;

// test::FloatSumTol for floating types; integers and bool bit for bit.
ScaleTol SumTol(DType t) {
  ScaleTol f = test::FloatSumTol(t);
  f.exact = f.scale_rel == 0 && f.elem_rel == 0;
  return f;
}

const ScaleTol kBitExact = {0, 0, true};

ScaleTol ResizeTol(DType t) {
  switch (t) {
    case DType::kFloat32:
      return {1e-14, std::ldexp(1.0, -23)};
    case DType::kFloat64:
      return {1e-14, 0};
    case DType::kFloat16:
      return {1e-14, std::ldexp(1.0, -10)};
    case DType::kBFloat16:
      return {1e-14, std::ldexp(1.0, -7)};
    default:
      return {0, 0, false, 1};  // a float64 sum on a tie of nearbyint may round either way
  }
}

// Value range of a named variable; `specials` sprinkles NaN, +-inf and -0 into floats.
struct Range {
  double lo, hi;
  bool specials = true;
};
using Ranges = std::map<std::string, Range>;

std::map<std::string, Tensor> Inputs(const Graph& g, const Ranges& ranges) {
  std::map<std::string, Tensor> vars;
  uint32_t seed = 11;
  const double inf = std::numeric_limits<double>::infinity();
  for (uint32_t id : g.VariableNodes()) {
    const std::string& name = g.node(id).name;
    DType t = g.dtype(Entry{id, 0});
    Range r = t == DType::kBool ? Range{0, 1} : IsFloatingPoint(t) ? Range{-2, 2} : Range{-6, 6};
    if (t == DType::kUInt8) r = {0, 12};
    if (auto it = ranges.find(name); it != ranges.end()) r = it->second;
    std::vector<int64_t> dims = g.shape(Entry{id, 0}).dims();
    size_t n = size_t(NumElements(dims));
    std::vector<double> v = test::RandomValues(n, ++seed, r.lo, r.hi);
    for (size_t i = 0; i < n; ++i) {
      if (!IsFloatingPoint(t)) {
        v[i] = std::round(v[i]);
      } else if (r.specials) {
        if (i % 11 == 3) v[i] = std::nan("");
        if (i % 13 == 5) v[i] = -0.0;
        if (i % 17 == 7) v[i] = inf;
        if (i % 19 == 2) v[i] = -inf;
      }
    }
    vars[name] = Tensor::FromValues(dims, t, v);
  }
  return vars;
}

// Lowers the graph's one op node under both schedules and compares with the interpreter.
// `fixed` gives named variables these values instead of random ones.
void Check(const std::string& text, ScaleTol tol, const Ranges& ranges = {},
           const std::map<std::string, std::vector<double>>& fixed = {}) {
  SCOPED_TRACE(text);
  Graph f = test::Typed(text);
  std::map<std::string, Tensor> vars = Inputs(f, ranges);
  for (const auto& [name, v] : fixed)
    vars[name] = Tensor::FromValues(vars.at(name).shape(), vars.at(name).dtype(), v);
  test::LowerBothSchedules(
      f, InterpretAll(f, vars), [](const Node&) { return true; },
      [&](const Tensor& got, const Tensor& want) { test::ExpectNearScale(got, want, tol); });
}

// The graph's one op node has no definition: LowerNode reports it as unsupported.
void ExpectNoDefinition(const std::string& text) {
  SCOPED_TRACE(text);
  Graph f = test::Typed(text);
  EXPECT_THROW(codegen::LowerNode(f, f.outputs()[0].node, {}), UnsupportedError);
}

// A variable of its own dtype or the op's (heavy-op tests' test::Var has no dtype).
struct Var {
  std::string name;
  std::vector<int64_t> dims;
  std::string dtype;  // empty: the op's dtype
};

// graph { vars; %y = op(vars...) {attrs}; return %y }.
std::string OneOp(const std::string& op, const std::string& attrs, const std::vector<Var>& vars,
                  const std::string& t) {
  std::string s = "graph {\n";
  std::string args;
  for (const Var& v : vars) {
    s += "  %" + v.name + " = var : " + (v.dtype.empty() ? t : v.dtype) + "[" + test::Dims(v.dims) +
         "]\n";
    args += (args.empty() ? "%" : ", %") + v.name;
  }
  s += "  %y = " + op + "(" + args + ")" + (attrs.empty() ? "" : " {" + attrs + "}") + "\n";
  return s + "  return %y\n}";
}

DType ParseDType(const std::string& t) {
  for (const auto& [name, d] :
       std::vector<std::pair<std::string, DType>>{{"float32", DType::kFloat32},
                                                  {"float64", DType::kFloat64},
                                                  {"float16", DType::kFloat16},
                                                  {"bfloat16", DType::kBFloat16},
                                                  {"int8", DType::kInt8},
                                                  {"uint8", DType::kUInt8},
                                                  {"int32", DType::kInt32},
                                                  {"int64", DType::kInt64},
                                                  {"bool", DType::kBool}})
    if (name == t) return d;
  return DType::kUnknown;
}

const char* const kFloatTypes[] = {"float32", "float64", "float16", "bfloat16"};
const char* const kNumericTypes[] = {"float32", "float64", "float16", "bfloat16",
                                     "int8",    "uint8",   "int32",   "int64"};

// ----- _reduce_sum_like -----

TEST(LowerMoreOps, ReduceSumLikeEveryBroadcastForm) {
  struct Case {
    std::vector<int64_t> data, like;
  };
  const Case cases[] = {
      {{5, 19}, {19}},          // bias gradient: leading axis summed, vectorised along 19
      {{5, 19}, {5, 1}},        // the last axis summed (contiguous)
      {{3, 4, 17}, {1, 4, 1}},  // first and last axes
      {{2, 3, 5}, {2, 3, 5}},   // nothing broadcast: a copy
      {{2, 1, 6}, {1, 6}},      // a size-1 axis in both
      {{3, 1, 4}, {1, 1}},      // lower rank with 1s
      {{7}, {1}},
      {{4, 5}, {}},  // everything into one element; a 0-d like
      {{1}, {1}},
      {{0, 5}, {5}},     // an empty sum: zeros
      {{4, 0}, {1, 0}},  // an empty output
      {{2, 3, 4, 5}, {3, 1, 1}},
      {{200}, {1}},  // 200 terms: the tolerance's bound
  };
  for (const char* t :
       {"float32", "float64", "float16", "bfloat16", "int8", "uint8", "int32", "int64", "bool"})
    for (const Case& c : cases)
      Check(OneOp("_reduce_sum_like", "", {{"d", c.data}, {"l", c.like}}, t),
            SumTol(ParseDType(t)));
}

TEST(LowerMoreOps, ReduceSumLikeWrapsIntegersAsTheReference) {
  // 200 values in [-100, 100]: int8 sums leave [-128, 127] and wrap.
  for (const char* t : {"int8", "uint8", "int32"})
    Check(OneOp("_reduce_sum_like", "", {{"d", {3, 200}}, {"l", {3, 1}}}, t), kBitExact,
          {{"d", {-100, 100}}});
}

// ----- _backward_tile -----

TEST(LowerMoreOps, BackwardTileSumsTheRepetitions) {
  struct Case {
    std::vector<int64_t> data;
    std::string reps;
    std::vector<int64_t> dy;
  };
  const Case cases[] = {
      {{3, 5}, "(2, 3)", {6, 15}},         {{4}, "(2, 3)", {2, 12}},  // reps add an axis
      {{2, 3, 5}, "(2,)", {2, 3, 10}},                                // reps padded with leading 1s
      {{2, 1, 7}, "(1, 4, 1)", {2, 4, 7}}, {{5, 17}, "(3, 1)", {15, 17}},
      {{3, 4}, "(1, 1)", {3, 4}},  // a copy
      {{3, 2}, "(0, 2)", {0, 4}},  // no repetitions: zeros
      {{0, 3}, "(2, 2)", {0, 6}},  // an empty gradient
      {{1, 1}, "(7, 9)", {7, 9}},          {{2, 3}, "(2, 2, 2)", {2, 4, 6}},
  };
  for (const char* t : kFloatTypes)
    for (const Case& c : cases)
      Check(OneOp("_backward_tile", "reps=\"" + c.reps + "\"", {{"dy", c.dy}, {"x", c.data}}, t),
            SumTol(ParseDType(t)));
}

// ----- cumsum -----

TEST(LowerMoreOps, CumsumEveryDirection) {
  struct Case {
    std::vector<int64_t> dims;
    int axis;
  };
  // Axes up to the definition's bound of 8 (scan.cpp), first, middle and last.
  const Case cases[] = {{{5, 7}, 1}, {{5, 7}, 0}, {{8, 19}, 0}, {{3, 1, 7}, 1}, {{2, 8}, -1},
                        {{0, 4}, 0}, {{4, 0}, 1}, {{7}, 0},     {{2, 3, 9}, 1}, {{6, 5, 3}, 1}};
  for (const char* t : kNumericTypes)
    for (const Case& c : cases)
      for (bool exclusive : {false, true})
        for (bool reverse : {false, true}) {
          std::string attrs = "axis=" + std::to_string(c.axis) +
                              ", exclusive=" + (exclusive ? "True" : "False") +
                              ", reverse=" + (reverse ? "True" : "False");
          Check(OneOp("cumsum", attrs, {{"x", c.dims}}, t), SumTol(ParseDType(t)));
        }
}

TEST(LowerMoreOps, CumsumWrapsIntegersAndStopsAtItsAxisBound) {
  // 8 values in [-100, 100]: int8 and uint8 running sums leave their range and wrap.
  for (const char* t : {"int8", "uint8", "int32", "int64"})
    Check(OneOp("cumsum", "axis=1", {{"x", {3, 8}}}, t), kBitExact, {{"x", {-100, 100}}});
  // The definition is O(n^2) along the axis: withheld beyond 8 (scan.cpp).
  ExpectNoDefinition(OneOp("cumsum", "axis=1", {{"x", {2, 9}}}, "float32"));
  ExpectNoDefinition(OneOp("cumsum", "axis=0", {{"x", {300}}}, "float32"));
}

// ----- einsum -----

TEST(LowerMoreOps, EinsumEverySubscriptForm) {
  struct Case {
    std::string subscripts;
    std::vector<std::vector<int64_t>> shapes;
  };
  const Case cases[] = {
      {"ij,jk->ik", {{5, 7}, {7, 19}}},          // matrix product
      {"ij,kj->ik", {{5, 17}, {6, 17}}},         // contiguous contraction
      {"bij,bjk->bik", {{2, 3, 5}, {2, 5, 4}}},  // batched
      {"ij,jk", {{3, 4}, {4, 5}}},               // implicit output "ik"
      {"ji", {{3, 5}}},                          // implicit: alphabetical, a transpose
      {"ij->ji", {{4, 6}}},
      {"ii->i", {{5, 5}}},  // diagonal
      {"ii", {{6, 6}}},     // trace: a 0-d output
      {"iij->ji", {{3, 3, 4}}},
      {"i,i", {{17}, {17}}},    // inner product
      {"i,j->ij", {{4}, {7}}},  // outer product
      {"ijk->", {{2, 3, 4}}},   // everything summed
      {"ij->j", {{9, 5}}},
      {"ij,jk,kl->il", {{2, 3}, {3, 4}, {4, 5}}},         // three operands
      {"...ij,...jk->...ik", {{2, 1, 3, 4}, {5, 4, 6}}},  // broadcast "..."
      {"...ij,...jk", {{2, 3, 4}, {2, 4, 5}}},            // implicit with "...": "...ik"
      {"i...->...", {{4, 2, 3}}},
      {"a b, b c -> a c", {{3, 2}, {2, 3}}},  // spaces
      {"ij,jk->ik", {{3, 0}, {0, 4}}},        // an empty sum: zeros
      {"ij,jk->ik", {{0, 3}, {3, 4}}},        // an empty output
      {"ij,jk->ik", {{1, 1}, {1, 1}}},
  };
  for (const char* t : {"float32", "float64", "float16", "bfloat16"})
    for (const Case& c : cases) {
      std::vector<Var> vars;
      for (size_t k = 0; k < c.shapes.size(); ++k)
        vars.push_back({"a" + std::to_string(k), c.shapes[k]});
      Check(OneOp("einsum",
                  "subscripts=\"" + c.subscripts + "\", num_args=" + std::to_string(vars.size()),
                  vars, t),
            SumTol(ParseDType(t)));
    }
}

TEST(LowerMoreOps, EinsumIntegersWrapAsTheReference) {
  for (const char* t : {"int8", "uint8", "int32", "int64"}) {
    Check(OneOp("einsum", "subscripts=\"ij,jk->ik\", num_args=2", {{"a", {4, 30}}, {"b", {30, 5}}},
                t),
          kBitExact, {{"a", {-100, 100}}, {"b", {-100, 100}}});
    Check(OneOp("einsum", "subscripts=\"ii->\", num_args=1", {{"a", {7, 7}}}, t), kBitExact);
  }
}

// ----- resize -----

std::string ResizeAttrs(const std::string& size, const std::string& mode, const std::string& coord,
                        const std::string& extra) {
  return "size=\"" + size + "\", mode=" + mode + ", coordinate_transformation_mode=" + coord +
         (extra.empty() ? "" : ", " + extra);
}

const char* const kCoordModes[] = {"half_pixel", "pytorch_half_pixel",   "align_corners",
                                   "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};

// Shapes of NCHW images (batch and channels kept: identity axes) and of a 1-D and a 3-D
// resize, up and down, with output extents of 1 and an input extent of 1.
struct ResizeCase {
  std::vector<int64_t> in;
  std::string size, scales, roi;
};
const ResizeCase kResizeCases[] = {
    {{1, 2, 5, 7}, "(1, 2, 9, 4)", "", "(0, 0, 0.1, 0.2, 1, 1, 0.8, 1.1)"},
    {{2, 1, 4, 4}, "(2, 1, 8, 8)", "(1, 1, 2, 2)", "(0, 0, 0, 0, 1, 1, 1, 1)"},
    {{1, 2, 5, 7}, "(1, 2, 9, 4)", "(1, 1, 1.8, 0.6)", "(0, 0, -0.2, 0.3, 1, 1, 1.2, 0.9)"},
    {{11}, "(5,)", "", "(0.25, 0.75)"},
    {{2, 3, 4}, "(3, 5, 2)", "", "(0, 0, 0, 1, 1, 1)"},
    {{3, 1, 6}, "(1, 4, 1)", "", "(0.2, 0, 0.5, 0.9, 1, 0.5)"},
};

std::string ResizeExtra(const ResizeCase& c, const std::string& coord) {
  std::string s;
  if (!c.scales.empty()) s += "scales=\"" + c.scales + "\"";
  if (coord == "tf_crop_and_resize")
    s += std::string(s.empty() ? "" : ", ") + "roi=\"" + c.roi + "\", extrapolation_value=-3.5";
  return s;
}

// Every case, transformation and rounding in float32; the other dtypes on fewer.
TEST(LowerMoreOps, ResizeNearestEveryRoundingAndTransformation) {
  const char* const roundings[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  auto check = [&](const ResizeCase& c, const char* coord, const char* nearest, const char* t) {
    std::string extra = ResizeExtra(c, coord);
    extra += std::string(extra.empty() ? "" : ", ") + "nearest_mode=" + nearest;
    Check(OneOp("resize", ResizeAttrs(c.size, "nearest", coord, extra), {{"x", c.in}}, t),
          kBitExact);
  };
  for (const ResizeCase& c : kResizeCases)
    for (const char* coord : kCoordModes)
      for (const char* nearest : roundings) check(c, coord, nearest, "float32");
  for (const char* t : {"float64", "float16", "int8", "int64"})
    for (const ResizeCase* c : {&kResizeCases[0], &kResizeCases[3]})
      for (const char* coord : {"half_pixel", "tf_crop_and_resize"})
        for (const char* nearest : {"round_prefer_floor", "ceil"}) check(*c, coord, nearest, t);
}

TEST(LowerMoreOps, ResizeLinearAndCubicEveryTransformation) {
  const char* const cubics[] = {"cubic_coeff_a=-0.75", "cubic_coeff_a=-0.5, exclude_outside=True"};
  auto check = [&](const ResizeCase& c, const char* coord, const std::string& mode, const char* t) {
    std::string extra = ResizeExtra(c, coord);
    if (!mode.empty() && mode != "linear") extra += (extra.empty() ? "" : ", ") + mode;
    std::string text =
        OneOp("resize", ResizeAttrs(c.size, mode == "linear" ? "linear" : "cubic", coord, extra),
              {{"x", c.in}}, t);
    // tf_half_pixel_for_nn moves every axis, so cubic on a 4-D tensor has 4^4 = 256 tap
    // combinations per element: more than the definition spells out (resize.cpp).
    if (mode == cubics[0] && c.in.size() == 4 && std::string(coord) == "tf_half_pixel_for_nn")
      ExpectNoDefinition(text);
    else
      Check(text, ResizeTol(ParseDType(t)));
  };
  // Cubic (a = -0.75) in every coordinate mode on the first image case and the 1-D case, and on
  // the image cases given by scales in one mode (the coordinate mapping they change is linear's
  // too, tested in every mode); exclude_outside (a = -0.5, which renormalises the weights) in
  // half_pixel on the first image and in every mode on the 1-D case; no cubic on the 3-D case
  // (3 moving axes compile slowly: 64 products; LLVM takes 0.3 s for an exclude_outside image
  // kernel), so the cases are chosen to reach every code path once.
  for (const ResizeCase& c : kResizeCases)
    for (const char* coord : kCoordModes) {
      check(c, coord, "linear", "float32");
      if (c.in.size() == 3) continue;
      const std::string mode = coord;
      const bool every_mode = &c == &kResizeCases[0] || c.in.size() == 1;
      if (every_mode || mode == "half_pixel") check(c, coord, cubics[0], "float32");
      if (c.in.size() == 1 || (&c == &kResizeCases[0] && mode == "half_pixel"))
        check(c, coord, cubics[1], "float32");
    }
  // The other types: how values are widened and rounded back is linear's and cubic's alike, so
  // cubic runs in one mode and on the types with their own arithmetic (float64) or rounding
  // (uint8: ties to even).
  for (const char* t : {"float64", "bfloat16", "uint8", "int32"})
    for (const char* coord : {"half_pixel", "align_corners", "tf_crop_and_resize"}) {
      check(kResizeCases[0], coord, "linear", t);
      check(kResizeCases[4], coord, "linear", t);
      const bool own_rounding = std::string(t) == "float64" || std::string(t) == "uint8";
      if (own_rounding && std::string(coord) == "half_pixel")
        check(kResizeCases[0], coord, cubics[0], t);
    }
}

TEST(LowerMoreOps, ResizeRoundsIntegerTiesToEven) {
  // uint8 upsampled 2x: weights 1/4 and 3/4 put many sums exactly on .5; ints up to 255.
  for (const char* mode : {"linear", "cubic"})
    Check(OneOp("resize", ResizeAttrs("(1, 1, 10, 14)", mode, "half_pixel", ""),
                {{"x", {1, 1, 5, 7}}}, "uint8"),
          ResizeTol(DType::kUInt8), {{"x", {0, 255}}});
  // An empty output needs no input.
  Check(OneOp("resize", ResizeAttrs("(0, 3)", "linear", "half_pixel", ""), {{"x", {2, 3}}},
              "float32"),
        kBitExact);
}

TEST(LowerMoreOps, ResizeWithholdsDefinitionsTooLargeToCompile) {
  // Within the 64-tap rule but beyond kMaxResizeNodes (resize.cpp): exclude_outside's weights
  // hold their axis's sum, so cubic on 3 moving axes (390000-490000 nodes) and linear on 6
  // (210000-400000) are withheld; without it, cubic on 3 axes (44000-84000 nodes) is defined.
  for (const char* coord : {"half_pixel", "asymmetric", "tf_half_pixel_for_nn"}) {
    ExpectNoDefinition(OneOp("resize",
                             ResizeAttrs("(3, 5, 2)", "cubic", coord, "exclude_outside=True"),
                             {{"x", {2, 3, 4}}}, "float32"));
    ExpectNoDefinition(
        OneOp("resize", ResizeAttrs("(3, 2, 3, 2, 3, 2)", "linear", coord, "exclude_outside=True"),
              {{"x", {2, 3, 2, 3, 2, 3}}}, "float32"));
    Graph f = test::Typed(OneOp("resize", ResizeAttrs("(3, 5, 2)", "cubic", coord, ""),
                                {{"x", {2, 3, 4}}}, "float32"));
    EXPECT_TRUE(codegen::UnsupportedOps(f, f.outputs()[0].node).empty()) << coord;
  }
  // tf_half_pixel_for_nn moves an image's channel axis: cubic with exclude_outside on 3 axes.
  ExpectNoDefinition(
      OneOp("resize",
            ResizeAttrs("(1, 2, 9, 4)", "cubic", "tf_half_pixel_for_nn", "exclude_outside=True"),
            {{"x", {1, 2, 5, 7}}}, "float32"));
}

// ----- _backward_take_along_axis and _backward_take -----

TEST(LowerMoreOps, BackwardTakeAlongAxisAccumulatesRepeats) {
  struct Case {
    std::vector<int64_t> a, idx;
    int axis;
  };
  // Indices narrower than a on other axes (those elements get 0); repeats accumulate.
  const Case cases[] = {{{3, 5, 4}, {2, 7, 4}, -2}, {{6, 3}, {6, 1}, 1}, {{5, 6}, {9, 6}, 0},
                        {{4, 5}, {4, 64}, 1},       {{3, 4}, {3, 0}, 1}, {{1}, {3}, 0},
                        {{2, 9, 3}, {1, 9, 2}, 1}};
  for (const char* t : kFloatTypes)
    for (const char* itype : {"float32", "int32", "int64"})
      for (const Case& c : cases) {
        double n = double(c.a[size_t(c.axis < 0 ? c.axis + int(c.a.size()) : c.axis)]);
        Check(OneOp("_backward_take_along_axis", "axis=" + std::to_string(c.axis),
                    {{"dy", c.idx}, {"i", c.idx, itype}, {"a", c.a}}, t),
              SumTol(ParseDType(t)), {{"i", {-n, n - 0.6, false}}});
      }
  ExpectNoDefinition(OneOp("_backward_take_along_axis", "axis=1",
                           {{"dy", {2, 65}}, {"i", {2, 65}, "int32"}, {"a", {2, 5}}}, "float32"));
}

TEST(LowerMoreOps, BackwardTakeEveryMode) {
  struct Case {
    std::vector<int64_t> a, idx;
    int axis;
  };
  const Case cases[] = {{{5, 6}, {2, 3}, 0}, {{5, 6}, {2, 3}, 1},  {{3, 5, 4}, {7}, -2},
                        {{4, 5}, {}, 1},     {{1, 3}, {4}, 0},     {{3, 4}, {0}, 0},
                        {{40, 17}, {64}, 0}, {{300, 8}, {4, 4}, 0}};
  for (const char* t : kFloatTypes)
    for (const char* mode : {"clip", "wrap", "raise"})
      for (const char* itype : {"float32", "int32", "int64"})
        for (const Case& c : cases) {
          size_t ax = size_t(c.axis < 0 ? c.axis + int(c.a.size()) : c.axis);
          std::vector<int64_t> dy(c.a.begin(), c.a.begin() + long(ax));
          dy.insert(dy.end(), c.idx.begin(), c.idx.end());
          dy.insert(dy.end(), c.a.begin() + long(ax) + 1, c.a.end());
          double n = double(c.a[ax]);
          Range r = std::string(mode) == "raise" ? Range{-n, n - 0.6, false}
                                                 : Range{-3 * n, 3 * n, false};
          Check(OneOp("_backward_take", "axis=" + std::to_string(c.axis) + ", mode=" + mode,
                      {{"dy", dy}, {"i", c.idx, itype}, {"a", c.a}}, t),
                SumTol(ParseDType(t)), {{"i", r}});
        }
  // More than 4 indices and more than 65536 operations: withheld (layout.cpp's rule).
  ExpectNoDefinition(OneOp("_backward_take", "axis=0",
                           {{"dy", {17, 8}}, {"i", {17}, "int32"}, {"a", {1000, 8}}}, "float32"));
}

// ----- _backward_Embedding -----

TEST(LowerMoreOps, BackwardEmbeddingSumsRowsByClippedId) {
  struct Case {
    std::vector<int64_t> data;
    int64_t input_dim, output_dim;
  };
  // Ids in [-1.5 n, 1.5 n]: below 0, above input_dim - 1 (both clipped) and repeated; floats
  // truncated toward zero, with NaN and +-inf among them (rows 0, the last and 0). At most 4 ids:
  // the definition's bound (nn_dense.cpp).
  const Case cases[] = {
      {{2, 2}, 5, 7},  {{3}, 1, 3},     {{}, 4, 3},  // one row; 0-d data: one id, no sum
      {{0}, 4, 5},     {{3, 0}, 2, 17},              // no ids: zeros
      {{1, 4}, 3, 19}, {{4}, 6, 1},     {{2, 1, 2}, 11, 33},
      {{4}, 300, 17},  // a larger table: 4 ids whatever its size
  };
  for (const char* t : kFloatTypes)
    for (const char* itype : {"float32", "int32", "int64", "float16", "uint8", "float64"})
      for (const Case& c : cases) {
        const bool few = std::string(t) != "float32";
        if (few && std::string(itype) != "float32" && std::string(itype) != "int64") continue;
        std::vector<int64_t> dy = c.data;
        dy.push_back(c.output_dim);
        double n = double(c.input_dim);
        std::string attrs = "input_dim=" + std::to_string(c.input_dim) +
                            ", output_dim=" + std::to_string(c.output_dim) + ", dtype=" + t;
        Check(OneOp("_backward_Embedding", attrs, {{"dy", dy}, {"i", c.data, itype}}, t),
              SumTol(ParseDType(t)), {{"i", {-1.5 * n, 1.5 * n}}});
      }
  // Ids the reference clips before converting: +-inf, NaN, beyond int64, just below the last
  // row; int64 ids beyond 2^53 (read through double).
  const double inf = std::numeric_limits<double>::infinity();
  for (const char* itype : {"float32", "float16", "float64"})
    for (const std::vector<double>& ids :
         {std::vector<double>{inf, -inf, std::nan(""), 4.99}, {-0.7, 0.7, 1e30, -1e30}})
      Check(OneOp("_backward_Embedding", "input_dim=5, output_dim=17",
                  {{"dy", {4, 17}}, {"i", {4}, itype}}, "float32"),
            SumTol(DType::kFloat32), {}, {{"i", ids}});
  Check(OneOp("_backward_Embedding", "input_dim=5, output_dim=3",
              {{"dy", {4, 3}}, {"i", {4}, "int64"}}, "float32"),
        SumTol(DType::kFloat32), {}, {{"i", {9.3e18, -9.3e18, 4, 5}}});
  // More than 4 ids: withheld however small the table (nn_dense.cpp's rule).
  ExpectNoDefinition(OneOp("_backward_Embedding", "input_dim=2, output_dim=3",
                           {{"dy", {5, 3}}, {"i", {5}, "int32"}}, "float32"));
  ExpectNoDefinition(OneOp("_backward_Embedding", "input_dim=1000, output_dim=64, dtype=float64",
                           {{"dy", {2, 3, 64}}, {"i", {2, 3}, "float32"}}, "float64"));
}

// A small Embedding training graph compiled whole: the forward gather and the weight gradient
// both lowered, no reference call; every output against the interpreter at 1 and 2 threads.
TEST(LowerMoreOps, EmbeddingTrainingGraphHasNoReferenceCalls) {
  for (const char* t : {"float32", "float64"}) {
    SCOPED_TRACE(t);
    std::string text = R"g(graph {
  %ids = var : int32[2, 2]
  %w = var : T[12, 6]
  %e = Embedding(%ids, %w) {input_dim=12, output_dim=6, dtype=T}
  %y = tanh(%e)
  return %y
})g";
    for (const char* with : {" T[", "=T}"})
      for (size_t at; (at = text.find(with)) != std::string::npos;) text.replace(at + 1, 1, t);
    Graph g = ParseGraph(text);
    uint32_t w = 0;
    for (uint32_t v : g.VariableNodes())
      if (g.node(v).name == "w") w = v;
    GradientGraph gg = BuildGradient(g, {w});
    codegen::CompileOptions o;
    o.forward_outputs = g.outputs().size();
    o.infer.shapes["ids"] = Shape({2, 2});
    o.infer.dtypes["ids"] = DType::kInt32;
    o.infer.shapes["w"] = Shape({12, 6});
    o.infer.dtypes["w"] = ParseDType(t);
    for (uint32_t h : gg.head_grads) {
      o.infer.shapes[gg.graph.node(h).name] = Shape({2, 2, 6});
      o.infer.dtypes[gg.graph.node(h).name] = ParseDType(t);
    }
    Graph typed = gg.graph;
    InferShapes(typed, o.infer);
    InferTypes(typed, o.infer);
    test::CompileTrainingAndCompare(gg.graph, o, Inputs(typed, {{"ids", {-3, 14}}}),
                                    {"Embedding", "_backward_Embedding"},
                                    [&](const Tensor& got, const Tensor& want) {
                                      test::ExpectNearScale(got, want, SumTol(ParseDType(t)));
                                    });
  }
}

}  // namespace
}  // namespace kiln
