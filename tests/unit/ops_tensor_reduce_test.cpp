// ops_tensor_reduce_test.cpp - reductions (sum, mean, max, min, prod, argmax) and matrix
// products (dot, batch_dot): shapes for attribute combinations, errors, and values by hand.
#include <cmath>

#include "test_util.h"

namespace kiln {
namespace {

using test::ExpectTensorNear;
using test::ExpectUserError;
using test::F32;
using test::RunOp;

const int64_t kU = Shape::kUnknownDim;

// Infers with a named node and, optionally, a known output shape; returns all input shapes.
std::vector<Shape> Infer(const std::string& op, const AttrMap& attrs, const std::vector<Shape>& in,
                         const Shape& out = Shape(), const std::string& name = "n") {
  Graph g = test::OneOpGraph(op, attrs, name);
  g.shapes.assign(g.num_entries(), Shape());
  g.shapes[g.entry_id(g.outputs()[0])] = out;
  InferOptions opt;
  opt.require_complete = false;
  auto vars = g.VariableNodes();
  for (size_t i = 0; i < in.size(); ++i) opt.shapes[g.node(vars[i]).name] = in[i];
  InferShapes(g, opt);
  std::vector<Shape> shapes;
  for (uint32_t v : vars) shapes.push_back(g.shape(Entry{v, 0}));
  shapes.push_back(g.shape(g.outputs()[0]));
  return shapes;
}

// --- Reductions. ---

TEST(Reduce, OutputShapesFollowMXNet) {
  const Shape x{2, 3, 4};
  EXPECT_EQ(test::OutShape("sum", {}, {x}), "(1)");  // MXNet 1.x: never 0-d
  EXPECT_EQ(test::OutShape("sum", {{"axis", "()"}}, {x}), "(1)");
  EXPECT_EQ(test::OutShape("sum", {{"keepdims", "True"}}, {x}), "(1, 1, 1)");
  EXPECT_EQ(test::OutShape("sum", {{"axis", "1"}}, {x}), "(2, 4)");
  EXPECT_EQ(test::OutShape("mean", {{"axis", "(0, 2)"}, {"keepdims", "1"}}, {x}), "(1, 3, 1)");
  EXPECT_EQ(test::OutShape("max", {{"axis", "-1"}}, {x}), "(2, 3)");
  EXPECT_EQ(test::OutShape("min", {{"axis", "(1,)"}, {"exclude", "True"}}, {x}), "(3)");
  EXPECT_EQ(test::OutShape("prod", {{"axis", "1"}, {"exclude", "True"}, {"keepdims", "True"}}, {x}),
            "(1, 3, 1)");
  EXPECT_EQ(test::OutShape("sum", {{"axis", "(0, 1, 2)"}}, {x}), "(1)");
  EXPECT_EQ(test::OutShape("sum_axis", {{"axis", "(2, 0)"}}, {x}), "(3)");
  EXPECT_EQ(test::OutShape("sum", {{"axis", "0"}}, {Shape{kU, 5}}), "(5)");
  EXPECT_EQ(test::OutShape("sum", {}, {Shape()}), "(1)");  // whatever the input
  // Backward: kept axes come from the output.
  auto in = Infer("sum", {{"axis", "1"}}, {Shape{kU, 3}}, Shape{5});
  EXPECT_EQ(in[0].ToString(), "(5, 3)");
}

TEST(Reduce, AxisErrorsNameTheOpNodeAndShape) {
  ExpectUserError(
      [] {
        test::InferOpShapes("sum", {{"axis", "3"}}, {Shape{2, 3, 4}});
      },
      {"sum \"n\"", "axis = (3,)", "out of range", "(2, 3, 4)"});
  ExpectUserError(
      [] {
        test::InferOpShapes("max", {{"axis", "(1, -2)"}}, {Shape{2, 3, 4}});
      },
      {"max \"n\"", "twice", "(2, 3, 4)"});
  ExpectUserError([] { test::OneOpGraph("sum", {{"axis", "x"}}); }, {"axis", "\"x\""});
}

TEST(Reduce, ValuesByHand) {
  auto x = F32({2, 3}, {1, 2, 3, 4, 5, 6});
  ExpectTensorNear(RunOp("sum", {{"axis", "0"}}, {x})[0], {3}, {5, 7, 9});
  ExpectTensorNear(RunOp("sum", {{"axis", "1"}}, {x})[0], {2}, {6, 15});
  ExpectTensorNear(RunOp("sum", {}, {x})[0], {1}, {21});
  ExpectTensorNear(RunOp("sum", {{"axis", "0"}, {"exclude", "True"}}, {x})[0], {2}, {6, 15});
  ExpectTensorNear(RunOp("mean", {{"axis", "1"}}, {x})[0], {2}, {2, 5});
  ExpectTensorNear(RunOp("mean", {{"axis", "0"}, {"keepdims", "True"}}, {x})[0], {1, 3},
                   {2.5, 3.5, 4.5});
  ExpectTensorNear(RunOp("max", {{"axis", "0"}}, {x})[0], {3}, {4, 5, 6});
  ExpectTensorNear(RunOp("min_axis", {{"axis", "1"}}, {x})[0], {2}, {1, 4});
  ExpectTensorNear(RunOp("prod", {}, {x})[0], {1}, {720});
  ExpectTensorNear(RunOp("prod", {{"axis", "-1"}}, {x})[0], {2}, {6, 120});
}

TEST(Reduce, SumOverAllAxesIsTheSumOfTheElements) {
  std::vector<double> v;
  double total = 0;
  for (int i = 0; i < 60; ++i) {
    v.push_back((i * 7) % 11 - 5);
    total += v.back();
  }
  auto x = test::Values(DType::kFloat64, {3, 4, 5}, v);
  ExpectTensorNear(RunOp("sum", {}, {x})[0], {1}, {total}, 0);
  ExpectTensorNear(RunOp("sum", {{"axis", "(0, 1, 2)"}}, {x})[0], {1}, {total}, 0);
  // Summing axis by axis gives the same.
  auto s0 = RunOp("sum", {{"axis", "0"}}, {x})[0];
  auto s01 = RunOp("sum", {{"axis", "0"}}, {s0})[0];
  ExpectTensorNear(RunOp("sum", {}, {s01})[0], {1}, {total}, 0);
  // mean * count = sum.
  EXPECT_DOUBLE_EQ(RunOp("mean", {}, {x})[0].At(0) * 60, total);
}

TEST(Reduce, IntegerAndBoolDtypes) {
  ExpectTensorNear(RunOp("sum", {}, {test::Values(DType::kInt8, {2}, {100, 100})})[0], {1},
                   {-56});  // wraps
  // mean of integers truncates toward zero: 3/2 -> 1, -3/2 -> -1.
  ExpectTensorNear(
      RunOp("mean", {{"axis", "1"}}, {test::Values(DType::kInt32, {2, 2}, {1, 2, -1, -2})})[0], {2},
      {1, -1});
  ExpectTensorNear(RunOp("max", {}, {test::Values(DType::kUInt8, {3}, {7, 255, 0})})[0], {1},
                   {255});
  ExpectTensorNear(RunOp("min", {}, {test::Values(DType::kInt64, {3}, {7, -9, 0})})[0], {1}, {-9});
  auto b = test::Values(DType::kBool, {2, 2}, {0, 0, 0, 1});
  ExpectTensorNear(RunOp("sum", {{"axis", "1"}}, {b})[0], {2}, {0, 1});   // any
  ExpectTensorNear(RunOp("max", {{"axis", "1"}}, {b})[0], {2}, {0, 1});   // any
  ExpectTensorNear(RunOp("prod", {{"axis", "0"}}, {b})[0], {2}, {0, 0});  // all
  ExpectTensorNear(RunOp("min", {}, {test::Values(DType::kBool, {2}, {1, 1})})[0], {1}, {1});
  for (DType t : kAllDTypes) EXPECT_EQ(test::InferOpTypes("prod", {}, {t})[0], t);
  // float16 sums in double: 2048 + 1 + 1 = 2050 (a float16 accumulator would stay at 2048).
  ExpectTensorNear(RunOp("sum", {}, {test::Values(DType::kFloat16, {3}, {2048, 1, 1})})[0], {1},
                   {2050}, 0);
}

TEST(Reduce, EmptyReductionsAndNan) {
  auto empty = F32({0, 3}, {});
  ExpectTensorNear(RunOp("sum", {{"axis", "0"}}, {empty})[0], {3}, {0, 0, 0});
  ExpectTensorNear(RunOp("prod", {{"axis", "0"}}, {empty})[0], {3}, {1, 1, 1});
  ExpectTensorNear(RunOp("mean", {{"axis", "0"}}, {empty})[0], {3}, {NAN, NAN, NAN});
  ExpectUserError(
      [] {
        test::InferOpShapes("max", {{"axis", "0"}}, {Shape{0, 3}});
      },
      {"max \"n\"", "(0, 3)", "empty"});
  ExpectUserError([] { test::InferOpShapes("min", {}, {Shape{2, 0}}); }, {"min \"n\"", "(2, 0)"});
  ExpectTensorNear(RunOp("max", {}, {F32({3}, {1, NAN, 3})})[0], {1}, {NAN});
  ExpectTensorNear(RunOp("min", {}, {F32({2}, {NAN, 1})})[0], {1}, {NAN});
  ExpectTensorNear(RunOp("sum", {}, {F32({2}, {1, NAN})})[0], {1}, {NAN});
  EXPECT_EQ(RunOp("max", {}, {F32({2}, {-INFINITY, -INFINITY})})[0].At(0), -INFINITY);
  EXPECT_EQ(RunOp("max", {}, {F32({2}, {INFINITY, 1})})[0].At(0), INFINITY);
  EXPECT_EQ(RunOp("min", {}, {F32({2}, {-INFINITY, 1})})[0].At(0), -INFINITY);
}

// --- argmax. ---

TEST(Argmax, ShapesAndValues) {
  EXPECT_EQ(test::OutShape("argmax", {{"axis", "-1"}}, {Shape{2, 3, 4}}), "(2, 3)");
  EXPECT_EQ(test::OutShape("argmax", {{"axis", "1"}, {"keepdims", "True"}}, {Shape{2, 3, 4}}),
            "(2, 1, 4)");
  EXPECT_EQ(test::OutShape("argmax", {}, {Shape{2, 3, 4}}), "(1)");
  EXPECT_EQ(test::OutShape("argmax", {{"keepdims", "True"}}, {Shape{2, 3, 4}}), "(1, 1, 1)");
  EXPECT_EQ(test::OutShape("argmax", {{"axis", "0"}}, {Shape{5}}), "(1)");
  auto x = F32({2, 3}, {1, 5, 3, 7, 2, 7});
  ExpectTensorNear(RunOp("argmax", {{"axis", "1"}}, {x})[0], {2}, {1, 0});  // first of ties
  ExpectTensorNear(RunOp("argmax", {{"axis", "0"}}, {x})[0], {3}, {1, 0, 1});
  ExpectTensorNear(RunOp("argmax", {}, {x})[0], {1}, {3});  // flattened
  ExpectTensorNear(RunOp("argmax", {{"axis", "1"}, {"keepdims", "True"}}, {x})[0], {2, 1}, {1, 0});
  ExpectTensorNear(RunOp("argmax", {{"axis", "0"}}, {F32({4}, {1, NAN, 5, NAN})})[0], {1}, {1});
  auto h = RunOp("argmax", {{"axis", "0"}}, {test::Values(DType::kFloat16, {3}, {0, 2, 1})})[0];
  EXPECT_EQ(h.dtype(), DType::kFloat16);  // MXNet: the index in the input's dtype
  EXPECT_EQ(h.At(0), 1);
}

TEST(Argmax, Errors) {
  ExpectUserError(
      [] {
        test::InferOpTypes("argmax", {{"axis", "0"}}, {DType::kInt32});
      },
      {"argmax \"n\"", "int32", "floating-point"});
  ExpectUserError(
      [] {
        test::InferOpShapes("argmax", {{"axis", "2"}}, {Shape{2, 3}});
      },
      {"argmax \"n\"", "axis = 2", "out of range"});
  ExpectUserError(
      [] {
        test::InferOpShapes("argmax", {{"axis", "1"}}, {Shape{2, 0}});
      },
      {"argmax \"n\"", "(2, 0)", "axis 1"});
}

// --- dot. ---

TEST(Dot, ShapesWithTransposesAndNDOperands) {
  auto dot = [](std::vector<Shape> in, AttrMap attrs = {}) {
    return test::OutShape("dot", attrs, in);
  };
  const AttrMap ta{{"transpose_a", "True"}}, tb{{"transpose_b", "True"}};
  const AttrMap both{{"transpose_a", "True"}, {"transpose_b", "True"}};
  EXPECT_EQ(dot({Shape{2, 3}, Shape{3, 4}}), "(2, 4)");
  EXPECT_EQ(dot({Shape{3, 2}, Shape{3, 4}}, ta), "(2, 4)");
  EXPECT_EQ(dot({Shape{2, 3}, Shape{4, 3}}, tb), "(2, 4)");
  EXPECT_EQ(dot({Shape{3, 2}, Shape{4, 3}}, both), "(2, 4)");
  EXPECT_EQ(dot({Shape{2, 3, 4}, Shape{4, 5}}), "(2, 3, 5)");
  EXPECT_EQ(dot({Shape{2, 3, 4}, Shape{4, 5, 6}}), "(2, 3, 5, 6)");
  EXPECT_EQ(dot({Shape{4, 2, 3}, Shape{4, 5}}, ta), "(2, 3, 5)");
  EXPECT_EQ(dot({Shape{2, 4}, Shape{5, 6, 4}}, tb), "(2, 5, 6)");
  EXPECT_EQ(dot({Shape{3}, Shape{3}}), "(1)");
  EXPECT_EQ(dot({Shape{3}, Shape{3, 4}}), "(4)");
  EXPECT_EQ(dot({Shape{2, 3}, Shape{3}}), "(2)");
  EXPECT_EQ(dot({Shape{kU, 3}, Shape{kU, 4}}), "(?, 4)");
  // Backward: b's rows are a's columns, b's columns the output's.
  auto in = Infer("dot", {}, {Shape{2, 3}, Shape::UnknownDims(2)}, Shape{2, 5});
  EXPECT_EQ(in[1].ToString(), "(3, 5)");
  auto in_t = Infer("dot", ta, {Shape::UnknownDims(2), Shape{3, 5}}, Shape{2, 5});
  EXPECT_EQ(in_t[0].ToString(), "(3, 2)");
}

TEST(Dot, ErrorsNameTheMismatch) {
  ExpectUserError(
      [] {
        Infer("dot", {}, {Shape{2, 3}, Shape{4, 5}}, Shape(), "d");
      },
      {"dot \"d\": a (2, 3) and b (4, 5) do not agree: a's last axis has 3 elements "
       "but b's first has 4"});
  ExpectUserError(
      [] {
        Infer("dot", {{"transpose_b", "True"}}, {Shape{2, 3}, Shape{4, 5}}, Shape(), "d");
      },
      {"dot \"d\"", "a's last axis has 3 elements but b's last (transpose_b) has 5"});
  ExpectUserError(
      [] {
        Infer("dot", {{"transpose_a", "True"}}, {Shape{3}, Shape{3}}, Shape(), "d");
      },
      {"dot \"d\"", "(3)", "vectors"});
  ExpectUserError(
      [] {
        test::OneOpGraph("dot", {{"forward_stype", "dense"}});
      },
      {"forward_stype", "not one of"});
  test::OneOpGraph("dot", {{"forward_stype", "default"}});  // accepted
}

TEST(Dot, ValuesByHand) {
  auto a = F32({2, 2}, {1, 2, 3, 4}), b = F32({2, 2}, {5, 6, 7, 8});
  ExpectTensorNear(RunOp("dot", {}, {a, b})[0], {2, 2}, {19, 22, 43, 50});
  // a^T b = [[1, 3], [2, 4]] [[5, 6], [7, 8]].
  ExpectTensorNear(RunOp("dot", {{"transpose_a", "True"}}, {a, b})[0], {2, 2}, {26, 30, 38, 44});
  // a b^T = [[1, 2], [3, 4]] [[5, 7], [6, 8]].
  ExpectTensorNear(RunOp("dot", {{"transpose_b", "True"}}, {a, b})[0], {2, 2}, {17, 23, 39, 53});
  ExpectTensorNear(RunOp("dot", {}, {F32({3}, {1, 2, 3}), F32({3}, {4, 5, 6})})[0], {1}, {32});
  ExpectTensorNear(RunOp("dot", {}, {F32({2, 1, 2}, {1, 2, 3, 4}), F32({2}, {1, 1})})[0], {2, 1},
                   {3, 7});
  ExpectTensorNear(RunOp("dot", {},
                         {test::Values(DType::kInt32, {1, 2}, {1, 2}),
                          test::Values(DType::kInt32, {2, 1}, {3, 4})})[0],
                   {1, 1}, {11});
  // K = 0: an empty sum.
  ExpectTensorNear(RunOp("dot", {}, {F32({2, 0}, {}), F32({0, 3}, {})})[0], {2, 3},
                   {0, 0, 0, 0, 0, 0});
}

// dot(a, b) with transposed storage equals dot of the explicitly transposed operands, and
// (a b)^T = b^T a^T.
TEST(Dot, TransposedOperandsAgree) {
  std::vector<double> av, bv;
  for (int i = 0; i < 12; ++i) av.push_back((i * 5) % 7 - 3);
  for (int i = 0; i < 20; ++i) bv.push_back((i * 3) % 8 - 4);
  auto a = test::Values(DType::kFloat64, {3, 4}, av), b = test::Values(DType::kFloat64, {4, 5}, bv);
  auto ab = RunOp("dot", {}, {a, b})[0];
  auto at = RunOp("transpose", {}, {a})[0];
  auto bt = RunOp("transpose", {}, {b})[0];
  ExpectTensorNear(RunOp("dot", {{"transpose_a", "True"}}, {at, b})[0], {3, 5}, ab.ToDoubles(), 0);
  ExpectTensorNear(RunOp("dot", {{"transpose_b", "True"}}, {a, bt})[0], {3, 5}, ab.ToDoubles(), 0);
  ExpectTensorNear(RunOp("dot", {{"transpose_a", "True"}, {"transpose_b", "True"}}, {at, bt})[0],
                   {3, 5}, ab.ToDoubles(), 0);
  auto bt_at = RunOp("dot", {}, {bt, at})[0];
  ExpectTensorNear(RunOp("transpose", {}, {bt_at})[0], {3, 5}, ab.ToDoubles(), 0);
  // One element by hand: row 0 of a times column 0 of b.
  double e = 0;
  for (int k = 0; k < 4; ++k) e += av[size_t(k)] * bv[size_t(k * 5)];
  EXPECT_EQ(ab.At(0), e);
}

// --- batch_dot. ---

TEST(BatchDot, ShapesAndErrors) {
  EXPECT_EQ(test::OutShape("batch_dot", {}, {Shape{5, 2, 3}, Shape{5, 3, 4}}), "(5, 2, 4)");
  EXPECT_EQ(
      test::OutShape("batch_dot", {{"transpose_a", "True"}}, {Shape{5, 3, 2}, Shape{5, 3, 4}}),
      "(5, 2, 4)");
  EXPECT_EQ(
      test::OutShape("batch_dot", {{"transpose_b", "True"}}, {Shape{5, 2, 3}, Shape{5, 4, 3}}),
      "(5, 2, 4)");
  EXPECT_EQ(test::OutShape("batch_dot", {}, {Shape{2, 5, 2, 3}, Shape{2, 5, 3, 4}}),
            "(2, 5, 2, 4)");
  EXPECT_EQ(test::OutShape("batch_dot", {}, {Shape{kU, 2, 3}, Shape{5, kU, 4}}), "(5, 2, 4)");
  auto in = Infer("batch_dot", {}, {Shape{5, 2, 3}, Shape()}, Shape{5, 2, 7});
  EXPECT_EQ(in[1].ToString(), "(5, 3, 7)");
  ExpectUserError(
      [] {
        test::InferOpShapes("batch_dot", {}, {Shape{5, 2, 3}, Shape{4, 3, 4}});
      },
      {"batch_dot \"n\"", "(5, 2, 3)", "(4, 3, 4)", "batch axis 0"});
  ExpectUserError(
      [] {
        test::InferOpShapes("batch_dot", {}, {Shape{5, 2, 3}, Shape{5, 2, 4}});
      },
      {"batch_dot \"n\"", "(5, 2, 3)", "(5, 2, 4)", "has 3 elements"});
  ExpectUserError(
      [] {
        test::InferOpShapes("batch_dot", {}, {Shape{2, 3}, Shape{3, 4}});
      },
      {"batch_dot \"n\"", "(2, 3)", "rank >= 3"});
}

TEST(BatchDot, EachBatchIsADot) {
  // a = [I, 2I], b = [B, B] -> [B, 2B].
  auto a = F32({2, 2, 2}, {1, 0, 0, 1, 2, 0, 0, 2});
  auto b = F32({2, 2, 3}, {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6});
  ExpectTensorNear(RunOp("batch_dot", {}, {a, b})[0], {2, 2, 3},
                   {1, 2, 3, 4, 5, 6, 2, 4, 6, 8, 10, 12});
  // transpose_b on random values: batch i equals dot(a_i, b_i, transpose_b).
  std::vector<double> av, bv;
  for (int i = 0; i < 12; ++i) av.push_back(i % 5 - 2);
  for (int i = 0; i < 18; ++i) bv.push_back(i % 4 - 1);
  auto bd =
      RunOp("batch_dot", {{"transpose_b", "True"}}, {F32({2, 2, 3}, av), F32({2, 3, 3}, bv)})[0];
  for (int i = 0; i < 2; ++i) {
    std::vector<double> ai(av.begin() + i * 6, av.begin() + i * 6 + 6);
    std::vector<double> bi(bv.begin() + i * 9, bv.begin() + i * 9 + 9);
    auto d = RunOp("dot", {{"transpose_b", "True"}}, {F32({2, 3}, ai), F32({3, 3}, bi)})[0];
    std::vector<double> got = bd.ToDoubles();
    ExpectTensorNear(F32({2, 3}, std::vector<double>(got.begin() + i * 6, got.begin() + i * 6 + 6)),
                     {2, 3}, d.ToDoubles(), 0);
  }
}

}  // namespace
}  // namespace kiln
