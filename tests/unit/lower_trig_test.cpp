// lower_trig_test.cpp - the trigonometric and hyperbolic ops (ir/src/ops/unary_trig.cpp) lowered
// alone through their compute definitions, JIT-compiled by LLVM and compared with the reference
// interpreter (C's double functions, rounded to the type), at 1 and 2 threads, serial and with
// the parallel loop forced, on odd shapes, size-1 dimensions, empty tensors and rank 0.
//
// Inputs cover each function's hard ranges: large |x| for sin/cos/tan (the wide argument
// reduction), values next to +-1 for arcsin/arccos/arctanh, tiny and subnormal values for the
// odd functions (relative accuracy near 0), values near the overflow threshold for sinh/cosh,
// huge values for arcsinh/arccosh, and NaN, infinities and out-of-domain inputs.
//
// Errors are relative, |got - want| <= rtol * max(|want|, smallest normal), because an absolute
// tolerance would hide a loss of relative accuracy near 0 (sinh(1e-30)). NaN must match NaN and
// infinities must match exactly. Tolerances, from docs/codegen.md's bounds:
//   float32 sin ... arctan: 2.4e-7 (2 ulp): vmath is within 0.501 ulp of the exact value and the
//     reference is the exact value rounded (0.5 ulp), so they differ by at most 1 ulp, and an
//     ulp is at most 2^-23 relative.
//   float32 sinh ... arctanh: 1e-6 (8.4 ulp): compositions of two or three vmath functions (each
//     within 2 ulp) with a few roundings; the measured maximum is printed.
//   float64: 4e-15 (18 ulp) for all: the C library's functions (within 1 ulp) and, for the
//     hyperbolic ones, the same compositions in double.
//   float16 / bfloat16: one ulp of the type (2^-10, 2^-7): computed in float32 and rounded to
//     the type, against the double result rounded once.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "kiln/codegen/lower.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/passes/infer.h"
#include "lower_util.h"
#include "test_util.h"

namespace kiln {
namespace {

const char* const kTrig[] = {"sin", "cos", "tan", "arcsin", "arccos", "arctan"};
const char* const kHyper[] = {"sinh", "cosh", "arcsinh", "arccosh", "arctanh"};

bool IsHyper(const std::string& op) {
  return op.back() == 'h';
}

// The values each op is tested on (cycled over the tensor), beyond a common set.
std::vector<double> InterestingInputs(const std::string& op) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> v = {0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -3.0, inf, -inf, nan};
  auto add = [&](std::initializer_list<double> xs) { v.insert(v.end(), xs); };
  if (op == "sin" || op == "cos" || op == "tan") {
    add({1.5707963705062866, 3.1415927410125732, 1e-20, -1e-38, 1e-44, 100.0, -1000.5, 1048575.9,
         1048576.0, 1e7, -1.6e9, 1e22, 7.7e28, 1.2e34, 3.0e38, -3.4e38});
  }
  if (op == "arcsin" || op == "arccos" || op == "arctanh") {
    for (int k : {1, 3, 7, 12, 18, 23, 24})
      add({1 - std::ldexp(1.0, -k), -1 + std::ldexp(1.0, -k)});
    add({1.0000001, -1.0000001, 1.5, -7.0, 1e-30, -1e-40, 0.49, 0.51});
  }
  if (op == "arctan") add({0.41, 0.42, 2.41, 2.42, 1e-30, 1e10, -1e30, 3e38, 1e-44});
  if (op == "sinh" || op == "arcsinh" || op == "cosh") {
    add({1e-30, -1e-30, 1e-10, -3e-6, 1e-44, 0.01, -0.1, 20.0, 79.9, 80.1, -88.0, 88.7, 89.0, -89.4,
         89.5, 90.0, 1000.0});
  }
  if (op == "arcsinh") add({4095.0, 4097.0, -1e5, 1e20, 1e30, -3e38});
  if (op == "arccosh") {
    for (int k : {1, 5, 10, 17, 23}) add({1 + std::ldexp(1.0, -k)});
    add({1.5, 4095.0, 4097.0, 1e5, 1e20, 3e38, 0.999, -2.0});
  }
  return v;
}

// One `op` node on a variable x of `dtype` and `dims`, typed.
Graph OneOp(const std::string& op, DType dtype, const std::vector<int64_t>& dims) {
  std::string shape = "[";
  for (size_t i = 0; i < dims.size(); ++i) shape += (i ? ", " : "") + std::to_string(dims[i]);
  shape += "]";
  Graph g = ParseGraph("graph {\n  %x = var : " + std::string(DTypeName(dtype)) + shape +
                       "\n  %y = " + op + "(%x)\n  return %y\n}");
  InferShapes(g);
  InferTypes(g);
  return g;
}

double RelTol(const std::string& op, DType t) {
  switch (t) {
    case DType::kFloat32:
      return IsHyper(op) ? 1e-6 : 2.4e-7;
    case DType::kFloat64:
      return 4e-15;
    case DType::kFloat16:
      return 0x1p-10;
    default:
      return 0x1p-7;  // bfloat16
  }
}

double SmallestNormal(DType t) {
  switch (t) {
    case DType::kFloat32:
      return std::numeric_limits<float>::min();
    case DType::kFloat64:
      return std::numeric_limits<double>::min();
    case DType::kFloat16:
      return 0x1p-14;
    default:
      return 0x1p-126;  // bfloat16
  }
}

// Lowers `op` on x : dtype[dims], runs it on the interesting inputs (then uniform ones in
// [-4, 4]) and compares with the interpreter; returns the largest relative error seen.
double LowerAndCompare(const std::string& op, DType dtype, const std::vector<int64_t>& dims,
                       bool forced_parallel) {
  Graph g = OneOp(op, dtype, dims);
  size_t n = 1;
  for (int64_t d : dims) n *= size_t(d);
  std::vector<double> special = InterestingInputs(op);
  std::vector<double> random = test::RandomValues(n, 7, -4.0, 4.0);
  std::vector<double> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = i < special.size() ? special[i] : random[i];
  std::map<std::string, Tensor> vars = {{"x", Tensor::FromValues(dims, dtype, x)}};
  codegen::LowerOptions opt;
  if (forced_parallel) {
    opt.parallel_min_elements = 0;
    opt.parallel_chunk = 8;
  }
  const double rtol = RelTol(op, dtype), tiny = SmallestNormal(dtype);
  double worst = 0;
  std::vector<double> in = vars.at("x").ToDoubles();
  int kernels = test::LowerRunAndCompare(
      g, InterpretAll(g, vars), opt, [](const Node&) { return true; },
      [&](const Tensor& got_t, const Tensor& want_t) {
        std::vector<double> got = got_t.ToDoubles(), want = want_t.ToDoubles();
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); ++i) {
          SCOPED_TRACE(op + "(" + std::to_string(in[i]) + ")");
          if (std::isnan(want[i])) {
            EXPECT_TRUE(std::isnan(got[i])) << got[i];
          } else if (std::isinf(want[i])) {
            EXPECT_EQ(got[i], want[i]);
          } else {
            double err = std::abs(got[i] - want[i]) / std::max(std::abs(want[i]), tiny);
            worst = std::max(worst, err);
            EXPECT_LE(err, rtol) << "got " << got[i] << ", want " << want[i];
          }
        }
      });
  EXPECT_EQ(kernels, 1);
  return worst;
}

TEST(LowerTrig, EveryOpHasADefinitionForEveryFloatType) {
  for (const char* const* list : {kTrig, kHyper}) {
    for (int i = 0; i < (list == kTrig ? 6 : 5); ++i) {
      for (DType t : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}) {
        Graph g = OneOp(list[i], t, {4, 5});
        EXPECT_TRUE(codegen::UnsupportedOps(g, g.outputs()[0].node).empty())
            << list[i] << " on " << DTypeName(t);
      }
    }
  }
}

TEST(LowerTrig, Float32AndFloat64MatchTheReference) {
  std::vector<std::string> ops(std::begin(kTrig), std::end(kTrig));
  ops.insert(ops.end(), std::begin(kHyper), std::end(kHyper));
  for (const std::string& op : ops) {
    for (DType t : {DType::kFloat32, DType::kFloat64}) {
      SCOPED_TRACE(op + " " + std::string(DTypeName(t)));
      double worst = 0;
      for (bool forced : {false, true}) {
        worst = std::max(worst, LowerAndCompare(op, t, {3, 37}, forced));
        worst = std::max(worst, LowerAndCompare(op, t, {1, 45}, forced));
      }
      std::printf("%-8s %-8s max relative error %.3g (tolerance %.3g)\n", op.c_str(),
                  std::string(DTypeName(t)).c_str(), worst, RelTol(op, t));
    }
  }
}

TEST(LowerTrig, SizeOneEmptyAndRankZero) {
  for (const char* op : {"sin", "arccos", "sinh", "arccosh"}) {
    for (DType t : {DType::kFloat32, DType::kFloat64}) {
      SCOPED_TRACE(std::string(op) + " " + std::string(DTypeName(t)));
      LowerAndCompare(op, t, {37, 1}, false);
      LowerAndCompare(op, t, {0, 7}, false);
      LowerAndCompare(op, t, {}, false);
    }
  }
}

TEST(LowerTrig, HalfTypesComputeInFloat32) {
  std::vector<std::string> ops(std::begin(kTrig), std::end(kTrig));
  ops.insert(ops.end(), std::begin(kHyper), std::end(kHyper));
  for (const std::string& op : ops) {
    for (DType t : {DType::kFloat16, DType::kBFloat16}) {
      SCOPED_TRACE(op + " " + std::string(DTypeName(t)));
      LowerAndCompare(op, t, {3, 37}, false);
    }
  }
}

}  // namespace
}  // namespace kiln
