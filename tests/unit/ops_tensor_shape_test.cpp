// ops_tensor_shape_test.cpp - ops that move elements: Flatten, Reshape (every special value),
// transpose, expand_dims, squeeze, broadcast_to, one_hot, Concat, SliceChannel, slice and
// slice_axis; and the None-tuple attribute form they use.
#include "test_util.h"

namespace kiln {
namespace {

using test::ExpectTensorNear;
using test::ExpectUserError;
using test::F32;
using test::RunOp;

const int64_t kU = Shape::kUnknownDim;

// 0, 1, ..., n-1 as float32 of the given shape.
Tensor Iota(std::vector<int64_t> shape) {
  std::vector<double> v;
  for (int64_t i = 0; i < NumElements(shape); ++i) v.push_back(double(i));
  return F32(std::move(shape), v);
}

std::string Reshape(const std::string& shape, const Shape& in, bool reverse = false) {
  AttrMap a{{"shape", shape}};
  if (reverse) a["reverse"] = "True";
  return test::OutShape("Reshape", a, {in});
}

TEST(AttrText, TuplesWithNone) {
  std::vector<std::optional<int64_t>> v;
  EXPECT_TRUE(attr_text::Parse("(None, 1, -2)", &v));
  ASSERT_EQ(v.size(), 3u);
  EXPECT_FALSE(v[0].has_value());
  EXPECT_EQ(v[1], 1);
  EXPECT_EQ(v[2], -2);
  EXPECT_EQ(attr_text::Print(v), "(None, 1, -2)");
  EXPECT_TRUE(attr_text::Parse("[0,None]", &v));
  EXPECT_EQ(attr_text::Print(v), "(0, None)");
  EXPECT_TRUE(attr_text::Parse("(None,)", &v));
  EXPECT_EQ(attr_text::Print(v), "(None,)");
  EXPECT_TRUE(attr_text::Parse("()", &v));
  EXPECT_TRUE(v.empty());
  EXPECT_FALSE(attr_text::Parse("(1,,2)", &v));
  EXPECT_FALSE(attr_text::Parse("(1, x)", &v));
  // Through an op's codec: printing what was parsed gives it back.
  const OpDef& slice = OpRegistry::Global().Get("slice");
  Attrs a = slice.attrs.parse({{"begin", "(None, -1)"}, {"end", "(2, None)"}});
  AttrList printed = slice.attrs.print(a);
  ASSERT_EQ(printed.size(), 2u);
  EXPECT_EQ(printed[0].second, "(None, -1)");
  EXPECT_EQ(printed[1].second, "(2, None)");
  ExpectUserError(
      [&] {
        slice.attrs.parse({{"begin", "(a,)"}, {"end", "(1,)"}});
      },
      {"begin", "a tuple of integers or None"});
}

// --- Flatten. ---

TEST(Flatten, Shapes) {
  EXPECT_EQ(test::OutShape("Flatten", {}, {Shape{2, 3, 4}}), "(2, 12)");
  EXPECT_EQ(test::OutShape("flatten", {}, {Shape{5}}), "(5, 1)");
  EXPECT_EQ(test::OutShape("Flatten", {}, {Shape{2, kU, 4}}), "(2, ?)");
  EXPECT_EQ(test::InferOpInputShapes("Flatten", {}, {Shape{kU, 3, kU}}, Shape{2, 12})[0].ToString(),
            "(2, 3, 4)");
  ExpectUserError([] { test::InferOpShapes("Flatten", {}, {Shape::Scalar()}); },
                  {"Flatten \"n\"", "()", "rank >= 1"});
  ExpectUserError(
      [] {
        test::InferOpInputShapes("Flatten", {}, {Shape{2, 3, 4}}, Shape{2, 10});
      },
      {"Flatten \"n\"", "(2, 10)", "(2, 12)"});
  ExpectTensorNear(RunOp("Flatten", {}, {Iota({2, 1, 2})})[0], {2, 2}, {0, 1, 2, 3});
}

// --- Reshape: every special value, from MXNet's documentation and by hand. ---

TEST(Reshape, SpecialValues) {
  const Shape x{2, 3, 4};
  EXPECT_EQ(Reshape("(4, 0, 2)", x), "(4, 3, 2)");  // 0 copies
  EXPECT_EQ(Reshape("(2, 0, 0)", x), "(2, 3, 4)");
  EXPECT_EQ(Reshape("(6, 1, -1)", x), "(6, 1, 4)");  // -1 infers
  EXPECT_EQ(Reshape("(3, -1, 8)", x), "(3, 1, 8)");
  EXPECT_EQ(Reshape("(-1,)", x), "(24)");
  EXPECT_EQ(Reshape("(-2,)", x), "(2, 3, 4)");  // -2 copies the rest
  EXPECT_EQ(Reshape("(2, -2)", x), "(2, 3, 4)");
  EXPECT_EQ(Reshape("(-2, 1, 1)", x), "(2, 3, 4, 1, 1)");
  EXPECT_EQ(Reshape("(-3, 4)", x), "(6, 4)");  // -3 merges two
  EXPECT_EQ(Reshape("(-3, -3)", Shape{2, 3, 4, 5}), "(6, 20)");
  EXPECT_EQ(Reshape("(0, -3)", x), "(2, 12)");
  EXPECT_EQ(Reshape("(-3, -2)", x), "(6, 4)");
  EXPECT_EQ(Reshape("(-4, 1, 2, -2)", x), "(1, 2, 3, 4)");  // -4 splits one
  EXPECT_EQ(Reshape("(2, -4, -1, 3, -2)", x), "(2, 1, 3, 4)");
  EXPECT_EQ(Reshape("(-4, 2, -1, 0, 0)", x), "(2, 1, 3, 4)");
}

TEST(Reshape, Reverse) {
  // MXNet's example: (10, 5, 4) with (-1, 0) is (40, 5), reversed (50, 4).
  EXPECT_EQ(Reshape("(-1, 0)", Shape{10, 5, 4}), "(40, 5)");
  EXPECT_EQ(Reshape("(-1, 0)", Shape{10, 5, 4}, true), "(50, 4)");
  EXPECT_EQ(Reshape("(-1, 0)", Shape{2, 3, 4}, true), "(6, 4)");
  // -4 keeps its (a, b) order when applied from the right: 6 splits into (2, 3), 0 copies 5.
  EXPECT_EQ(Reshape("(-4, 2, -1, 0)", Shape{6, 5}, true), "(2, 3, 5)");
  // From the right, -2 copies the leading axes: 0 takes 4, -2 the rest.
  EXPECT_EQ(Reshape("(-2, 0)", Shape{2, 3, 4}, true), "(2, 3, 4)");
}

TEST(Reshape, PartialKnowledgeAndBackward) {
  EXPECT_EQ(Reshape("(0, -1)", Shape{2, kU, 4}), "(2, ?)");
  EXPECT_EQ(Reshape("(-3, 0)", Shape{kU, 3, 4}), "(?, 4)");
  EXPECT_EQ(Reshape("(2, -1)", Shape()), "(2, ?)");  // plain extents need no input rank
  EXPECT_EQ(
      test::InferOpInputShapes("Reshape", {{"shape", "(6, 4)"}}, {Shape{2, kU, 4}}, Shape{6, 4})[0]
          .ToString(),
      "(2, 3, 4)");
  // The deprecated target_shape: 0 is the inferred extent; keep_highest keeps the first.
  EXPECT_EQ(test::OutShape("Reshape", {{"target_shape", "(0, 4)"}}, {Shape{2, 3, 4}}), "(6, 4)");
  EXPECT_EQ(test::OutShape("Reshape", {{"target_shape", "(1, 0, 4)"}, {"keep_highest", "True"}},
                           {Shape{2, 3, 4}}),
            "(2, 3, 4)");
}

TEST(Reshape, Errors) {
  ExpectUserError(
      [] {
        test::InferOpShapes("Reshape", {{"shape", "(5, 5)"}}, {Shape{2, 3, 4}});
      },
      {"Reshape \"n\"", "(2, 3, 4)", "(5, 5)", "24", "25"});
  ExpectUserError(
      [] {
        test::InferOpShapes("Reshape", {{"shape", "(-1, 5)"}}, {Shape{2, 3, 4}});
      },
      {"Reshape \"n\"", "(2, 3, 4)", "cannot infer -1"});
  ExpectUserError(
      [] {
        test::InferOpShapes("Reshape", {{"shape", "(0, 0, 0)"}}, {Shape{2, 3}});
      },
      {"Reshape \"n\"", "0 copies input axis 2", "(2, 3)"});
  ExpectUserError(
      [] {
        test::InferOpShapes("Reshape", {{"shape", "(-4, 2, 2)"}}, {Shape{6}});
      },
      {"Reshape \"n\"", "(2, 2)", "6"});
  ExpectUserError(
      [] {
        test::OneOpGraph("Reshape", {{"shape", "(-1, -1)"}});
      },
      {"more than one -1"});
  ExpectUserError(
      [] {
        test::OneOpGraph("Reshape", {{"shape", "(2, -4, 2)"}});
      },
      {"-4 at position 1"});
  ExpectUserError([] { test::OneOpGraph("Reshape", {{"shape", "(-5,)"}}); }, {"below the minimum"});
  ExpectUserError([] { test::OneOpGraph("Reshape", {}); }, {"shape must be given"});
}

TEST(Reshape, KeepsElementOrderForEveryDtype) {
  ExpectTensorNear(RunOp("Reshape", {{"shape", "(3, -1)"}}, {Iota({2, 3})})[0], {3, 2},
                   {0, 1, 2, 3, 4, 5});
  for (DType t : kAllDTypes) {
    auto x = test::Values(t, {2, 2}, {1, 0, 1, 1});
    auto y = RunOp("reshape", {{"shape", "(-1,)"}}, {x})[0];
    EXPECT_EQ(y.dtype(), t);
    ExpectTensorNear(y, {4}, {1, 0, 1, 1});
    EXPECT_EQ(test::InferOpTypes("Reshape", {{"shape", "(-1,)"}}, {t})[0], t);
  }
}

// --- transpose. ---

TEST(Transpose, ShapesAndErrors) {
  EXPECT_EQ(test::OutShape("transpose", {}, {Shape{2, 3, 4}}), "(4, 3, 2)");
  EXPECT_EQ(test::OutShape("transpose", {{"axes", "(1, 0, 2)"}}, {Shape{2, 3, 4}}), "(3, 2, 4)");
  EXPECT_EQ(test::OutShape("transpose", {{"axes", "(-1, 0, 1)"}}, {Shape{2, 3, 4}}), "(4, 2, 3)");
  EXPECT_EQ(test::InferOpInputShapes("transpose", {{"axes", "(1, 2, 0)"}}, {}, Shape{3, 4, 2})[0]
                .ToString(),
            "(2, 3, 4)");
  ExpectUserError(
      [] {
        test::InferOpShapes("transpose", {{"axes", "(0, 0, 1)"}}, {Shape{2, 3, 4}});
      },
      {"transpose \"n\"", "axes = (0, 0, 1)", "twice"});
  ExpectUserError(
      [] {
        test::InferOpShapes("transpose", {{"axes", "(0, 1)"}}, {Shape{2, 3, 4}});
      },
      {"transpose \"n\"", "axes = (0, 1)", "rank 3"});
  ExpectUserError(
      [] {
        test::InferOpShapes("transpose", {{"axes", "(0, 3, 1)"}}, {Shape{2, 3, 4}});
      },
      {"transpose \"n\"", "out of range"});
}

TEST(Transpose, ValuesAndInverse) {
  ExpectTensorNear(RunOp("transpose", {}, {Iota({2, 3})})[0], {3, 2}, {0, 3, 1, 4, 2, 5});
  // axes (1, 2, 0): out[j, k, i] = in[i, j, k] = 12 i + 4 j + k.
  auto y = RunOp("transpose", {{"axes", "(1, 2, 0)"}}, {Iota({2, 3, 4})})[0];
  ASSERT_EQ(ShapeString(y.shape()), "(3, 4, 2)");
  EXPECT_EQ(y.At(2 * 8 + 3 * 2 + 1), 12 * 1 + 4 * 2 + 3);
  EXPECT_EQ(y.At(1 * 8 + 0 * 2 + 1), 12 * 1 + 4 * 1 + 0);
  // The inverse permutation of (1, 2, 0) is (2, 0, 1): applying both is the identity.
  auto back = RunOp("transpose", {{"axes", "(2, 0, 1)"}}, {y})[0];
  ExpectTensorNear(back, {2, 3, 4}, Iota({2, 3, 4}).ToDoubles(), 0);
  // 8-byte and 1-byte elements move whole.
  auto i64 = RunOp("transpose", {}, {test::Values(DType::kInt64, {2, 2}, {1e15, 2, 3, -4e15})})[0];
  ExpectTensorNear(i64, {2, 2}, {1e15, 3, 2, -4e15}, 0);
  auto b = RunOp("transpose", {}, {test::Values(DType::kBool, {1, 3}, {1, 0, 1})})[0];
  ExpectTensorNear(b, {3, 1}, {1, 0, 1});
}

// --- expand_dims and squeeze. ---

TEST(ExpandDimsSqueeze, Shapes) {
  EXPECT_EQ(test::OutShape("expand_dims", {{"axis", "0"}}, {Shape{2, 3}}), "(1, 2, 3)");
  EXPECT_EQ(test::OutShape("expand_dims", {{"axis", "2"}}, {Shape{2, 3}}), "(2, 3, 1)");
  EXPECT_EQ(test::OutShape("expand_dims", {{"axis", "-1"}}, {Shape{2, 3}}), "(2, 3, 1)");
  EXPECT_EQ(test::OutShape("expand_dims", {{"axis", "-3"}}, {Shape{2, 3}}), "(1, 2, 3)");
  EXPECT_EQ(
      test::InferOpInputShapes("expand_dims", {{"axis", "1"}}, {}, Shape{2, 1, 3})[0].ToString(),
      "(2, 3)");
  ExpectUserError(
      [] {
        test::InferOpShapes("expand_dims", {{"axis", "3"}}, {Shape{2, 3}});
      },
      {"expand_dims \"n\"", "axis = 3", "(2, 3)"});
  ExpectUserError([] { test::OneOpGraph("expand_dims", {}); }, {"missing required attribute axis"});

  EXPECT_EQ(test::OutShape("squeeze", {}, {Shape{1, 3, 1}}), "(3)");
  EXPECT_EQ(test::OutShape("squeeze", {{"axis", "(0,)"}}, {Shape{1, 3, 1}}), "(3, 1)");
  EXPECT_EQ(test::OutShape("squeeze", {{"axis", "-1"}}, {Shape{1, 3, 1}}), "(1, 3)");
  EXPECT_EQ(test::OutShape("squeeze", {}, {Shape{1, 1}}), "(1)");  // MXNet: never 0-d
  EXPECT_EQ(test::OutShape("squeeze", {}, {Shape{1, kU}}), "?");   // unknown extent may be 1
  EXPECT_EQ(test::OutShape("squeeze", {{"axis", "0"}}, {Shape{1, kU}}), "(?)");
  EXPECT_EQ(
      test::InferOpInputShapes("squeeze", {{"axis", "1"}}, {Shape{kU, kU}}, Shape{4})[0].ToString(),
      "(4, 1)");
  ExpectUserError(
      [] {
        test::InferOpShapes("squeeze", {{"axis", "1"}}, {Shape{1, 3, 1}});
      },
      {"squeeze \"n\"", "axis 1", "(1, 3, 1)", "has 3 elements"});
  ExpectTensorNear(RunOp("squeeze", {}, {Iota({1, 3})})[0], {3}, {0, 1, 2});
  ExpectTensorNear(RunOp("expand_dims", {{"axis", "1"}}, {Iota({2})})[0], {2, 1}, {0, 1});
}

// --- broadcast_to. ---

TEST(BroadcastTo, ShapesValuesErrors) {
  EXPECT_EQ(test::OutShape("broadcast_to", {{"shape", "(2, 3)"}}, {Shape{1, 3}}), "(2, 3)");
  EXPECT_EQ(test::OutShape("broadcast_to", {{"shape", "(0, 4)"}}, {Shape{2, 1}}), "(2, 4)");
  EXPECT_EQ(test::OutShape("broadcast_to", {{"shape", "(2, 0)"}}, {Shape()}), "(2, ?)");
  ExpectTensorNear(RunOp("broadcast_to", {{"shape", "(2, 3)"}}, {F32({2, 1}, {1, 2})})[0], {2, 3},
                   {1, 1, 1, 2, 2, 2});
  ExpectTensorNear(RunOp("broadcast_to", {{"shape", "(2, 2)"}}, {F32({1, 2}, {5, 6})})[0], {2, 2},
                   {5, 6, 5, 6});
  ExpectUserError(
      [] {
        test::InferOpShapes("broadcast_to", {{"shape", "(4, 3)"}}, {Shape{2, 3}});
      },
      {"broadcast_to \"n\"", "(2, 3)", "(4, 3)", "axis 0"});
  ExpectUserError(
      [] {
        test::InferOpShapes("broadcast_to", {{"shape", "(2, 3)"}}, {Shape{3}});
      },
      {"broadcast_to \"n\"", "(3)", "rank 1", "(2, 3)"});
  // broadcast_to equals broadcast_add with zeros of the target shape.
  auto x = F32({3, 1}, {1, 2, 3});
  auto a = RunOp("broadcast_to", {{"shape", "(3, 4)"}}, {x})[0];
  auto b = RunOp("broadcast_add", {}, {x, F32({3, 4}, std::vector<double>(12, 0))})[0];
  ExpectTensorNear(a, {3, 4}, b.ToDoubles(), 0);
}

// --- one_hot. ---

TEST(OneHot, RowsShapesTypes) {
  // Out-of-range (3, -1) give rows of off_value; 2.7 truncates to 2.
  ExpectTensorNear(RunOp("one_hot", {{"depth", "3"}}, {F32({5}, {1, 0, 3, -1, 2.7})})[0], {5, 3},
                   {0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  auto y =
      RunOp("one_hot", {{"depth", "2"}, {"on_value", "5"}, {"off_value", "-1"}, {"dtype", "int32"}},
            {test::Values(DType::kInt64, {2}, {1, 0})})[0];
  EXPECT_EQ(y.dtype(), DType::kInt32);
  ExpectTensorNear(y, {2, 2}, {-1, 5, 5, -1});
  EXPECT_EQ(test::OutShape("one_hot", {{"depth", "4"}}, {Shape{2, 3}}), "(2, 3, 4)");
  EXPECT_EQ(test::InferOpTypes("one_hot", {{"depth", "4"}}, {DType::kInt32})[0], DType::kFloat32);
  EXPECT_EQ(
      test::InferOpTypes("one_hot", {{"depth", "4"}, {"dtype", "int64"}}, {DType::kFloat32})[0],
      DType::kInt64);
  EXPECT_EQ(test::InferOpInputShapes("one_hot", {{"depth", "4"}}, {}, Shape{7, 4})[0].ToString(),
            "(7)");
  ExpectUserError(
      [] {
        test::InferOpInputShapes("one_hot", {{"depth", "4"}}, {Shape{7}}, Shape{7, 5});
      },
      {"one_hot \"n\"", "(7, 5)", "depth = 4"});
  ExpectUserError([] { test::OneOpGraph("one_hot", {{"depth", "0"}}); }, {"below the minimum 1"});
}

// --- Concat and SliceChannel. ---

TEST(Concat, ShapesBothWaysAndErrors) {
  EXPECT_EQ(test::OutShape("Concat", {{"num_args", "2"}}, {Shape{2, 3}, Shape{2, 4}}), "(2, 7)");
  EXPECT_EQ(test::OutShape("concat", {{"num_args", "2"}, {"dim", "0"}}, {Shape{2, 3}, Shape{5, 3}}),
            "(7, 3)");
  EXPECT_EQ(test::OutShape("Concat", {{"num_args", "3"}, {"dim", "-1"}},
                           {Shape{2, 1}, Shape{2, 2}, Shape{2, 3}}),
            "(2, 6)");
  EXPECT_EQ(test::OutShape("Concat", {{"num_args", "2"}}, {Shape{2, kU}, Shape{kU, 4}}), "(2, ?)");
  auto in = test::InferOpInputShapes("Concat", {{"num_args", "2"}}, {Shape{2, 3}}, Shape{2, 7});
  EXPECT_EQ(in[1].ToString(), "(2, 4)");
  const OpDef& c = OpRegistry::Global().Get("Concat");
  Attrs a = c.attrs.parse({{"num_args", "3"}});
  EXPECT_EQ(c.InputNames(a), (std::vector<std::string>{"arg0", "arg1", "arg2"}));
  EXPECT_EQ(c.var_inputs_attr(), "num_args");
  ExpectUserError(
      [] {
        test::InferOpShapes("Concat", {{"num_args", "2"}}, {Shape{2, 3}, Shape{3, 4}});
      },
      {"Concat \"n\"", "arg1 (3, 4)", "axis 0", "(2, 3)"});
  ExpectUserError(
      [] {
        test::InferOpShapes("Concat", {{"num_args", "2"}}, {Shape{2, 3}, Shape{2, 3, 1}});
      },
      {"Concat \"n\"", "different ranks", "(2, 3, 1)"});
  ExpectUserError(
      [] {
        test::InferOpShapes("Concat", {{"num_args", "2"}, {"dim", "2"}}, {Shape{2}, Shape{2}});
      },
      {"Concat \"n\"", "dim = 2", "out of range"});
  ExpectUserError([] { test::OneOpGraph("Concat", {}); }, {"missing required attribute num_args"});
}

TEST(Concat, Values) {
  ExpectTensorNear(
      RunOp("Concat", {{"num_args", "2"}}, {F32({2, 2}, {1, 2, 3, 4}), F32({2, 1}, {5, 6})})[0],
      {2, 3}, {1, 2, 5, 3, 4, 6});
  ExpectTensorNear(RunOp("Concat", {{"num_args", "2"}, {"dim", "0"}},
                         {test::Values(DType::kInt8, {1, 2}, {1, 2}),
                          test::Values(DType::kInt8, {1, 2}, {3, 4})})[0],
                   {2, 2}, {1, 2, 3, 4});
}

TEST(SliceChannel, ShapesAndErrors) {
  auto outs = test::InferOpShapes("SliceChannel", {{"num_outputs", "3"}}, {Shape{2, 6}});
  ASSERT_EQ(outs.size(), 3u);
  for (const Shape& s : outs) EXPECT_EQ(s.ToString(), "(2, 2)");
  EXPECT_EQ(test::OutShape("split", {{"num_outputs", "2"}, {"axis", "0"}}, {Shape{4, 3}}),
            "(2, 3)");
  EXPECT_EQ(test::OutShape("SliceChannel", {{"num_outputs", "3"}, {"squeeze_axis", "True"}},
                           {Shape{2, 3}}),
            "(2)");
  EXPECT_EQ(test::OutShape("SliceChannel", {{"num_outputs", "2"}, {"axis", "-1"}}, {Shape{kU, 4}}),
            "(?, 2)");
  const OpDef& sc = OpRegistry::Global().Get("SliceChannel");
  EXPECT_EQ(sc.OutputNames(sc.attrs.parse({{"num_outputs", "3"}})),
            (std::vector<std::string>{"output0", "output1", "output2"}));
  ExpectUserError(
      [] {
        test::InferOpShapes("SliceChannel", {{"num_outputs", "3"}}, {Shape{2, 5}});
      },
      {"SliceChannel \"n\"", "(2, 5)", "num_outputs = 3"});
  ExpectUserError(
      [] {
        test::InferOpShapes("SliceChannel", {{"num_outputs", "2"}, {"squeeze_axis", "1"}},
                            {Shape{2, 4}});
      },
      {"SliceChannel \"n\"", "(2, 4)", "squeeze_axis"});
}

TEST(SliceChannel, ConcatThenSplitReturnsThePieces) {
  auto p0 = F32({2, 1}, {1, 2}), p1 = F32({2, 1}, {3, 4}), p2 = F32({2, 1}, {5, 6});
  auto joined = RunOp("Concat", {{"num_args", "3"}}, {p0, p1, p2})[0];
  ExpectTensorNear(joined, {2, 3}, {1, 3, 5, 2, 4, 6});
  auto pieces = RunOp("SliceChannel", {{"num_outputs", "3"}}, {joined});
  ASSERT_EQ(pieces.size(), 3u);
  ExpectTensorNear(pieces[0], {2, 1}, {1, 2});
  ExpectTensorNear(pieces[1], {2, 1}, {3, 4});
  ExpectTensorNear(pieces[2], {2, 1}, {5, 6});
  // And split then concat returns the input, on axis 0 with squeeze_axis undone by Reshape.
  auto x = Iota({4, 3});
  auto halves = RunOp("SliceChannel", {{"num_outputs", "2"}, {"axis", "0"}}, {x});
  ExpectTensorNear(halves[1], {2, 3}, {6, 7, 8, 9, 10, 11});
  auto again = RunOp("Concat", {{"num_args", "2"}, {"dim", "0"}}, {halves[0], halves[1]})[0];
  ExpectTensorNear(again, {4, 3}, x.ToDoubles(), 0);
  auto rows =
      RunOp("SliceChannel", {{"num_outputs", "3"}, {"squeeze_axis", "True"}}, {Iota({2, 3})});
  ExpectTensorNear(rows[2], {2}, {2, 5});
}

// --- slice and slice_axis. ---

TEST(Slice, ShapesWithNegativesNoneAndSteps) {
  auto s = [](const std::string& b, const std::string& e, const std::string& st = "") {
    AttrMap a{{"begin", b}, {"end", e}};
    if (!st.empty()) a["step"] = st;
    return test::OutShape("slice", a, {Shape{5, 6}});
  };
  EXPECT_EQ(s("(1, 2)", "(4, 5)"), "(3, 3)");
  EXPECT_EQ(s("(None,)", "(None,)", "(-1,)"), "(5, 6)");
  EXPECT_EQ(s("(-2,)", "(None,)"), "(2, 6)");
  EXPECT_EQ(s("(0, None)", "(5, None)", "(2, -2)"), "(3, 3)");  // rows 0 2 4; cols 5 3 1
  EXPECT_EQ(s("(10,)", "(20,)"), "(0, 6)");                     // clamps to empty
  EXPECT_EQ(s("(-10,)", "(2,)"), "(2, 6)");                     // clamps to 0
  EXPECT_EQ(s("(3,)", "(0,)", "(-1,)"), "(3, 6)");              // 3 2 1
  EXPECT_EQ(s("(None,)", "(-10,)", "(-1,)"), "(5, 6)");         // 4 .. 0
  EXPECT_EQ(s("(1,)", "(5,)", "(3,)"), "(2, 6)");               // 1 4
  EXPECT_EQ(s("(4,)", "(1,)"), "(0, 6)");
  EXPECT_EQ(test::OutShape("slice", {{"begin", "(1,)"}, {"end", "(3,)"}}, {Shape{kU, 7}}),
            "(?, 7)");
  EXPECT_EQ(test::InferOpInputShapes("slice", {{"begin", "(1,)"}, {"end", "(3,)"}}, {Shape{4, kU}},
                                     Shape{2, 7})[0]
                .ToString(),
            "(4, 7)");
  ExpectUserError(
      [] {
        test::InferOpShapes("slice", {{"begin", "(0, 0, 0)"}, {"end", "(1, 1, 1)"}}, {Shape{5, 6}});
      },
      {"slice \"n\"", "begin = (0, 0, 0)", "(5, 6)"});
  ExpectUserError(
      [] {
        test::OneOpGraph("slice", {{"begin", "(0,)"}, {"end", "(1,)"}, {"step", "(0,)"}});
      },
      {"step 0 is 0"});
  ExpectUserError(
      [] {
        test::OneOpGraph("slice", {{"begin", "(0, 1)"}, {"end", "(1,)"}});
      },
      {"different lengths"});
}

TEST(Slice, ValuesByHand) {
  auto x = Iota({3, 4});  // [[0 1 2 3] [4 5 6 7] [8 9 10 11]]
  ExpectTensorNear(
      RunOp("slice", {{"begin", "(None, 1)"}, {"end", "(None, None)"}, {"step", "(2, 2)"}}, {x})[0],
      {2, 2}, {1, 3, 9, 11});
  ExpectTensorNear(
      RunOp("slice", {{"begin", "(2, -1)"}, {"end", "(None, None)"}, {"step", "(-1, -2)"}}, {x})[0],
      {3, 2}, {11, 9, 7, 5, 3, 1});
  ExpectTensorNear(RunOp("slice", {{"begin", "(1,)"}, {"end", "(2,)"}}, {x})[0], {1, 4},
                   {4, 5, 6, 7});
  ExpectTensorNear(RunOp("slice", {{"begin", "(1,)"}, {"end", "(1,)"}}, {x})[0], {0, 4}, {});
}

TEST(SliceAxis, ShapesValuesErrors) {
  auto s = [](const std::string& axis, const std::string& b, const std::string& e) {
    return test::OutShape("slice_axis", {{"axis", axis}, {"begin", b}, {"end", e}}, {Shape{5, 6}});
  };
  EXPECT_EQ(s("1", "1", "4"), "(5, 3)");
  EXPECT_EQ(s("1", "1", "None"), "(5, 5)");
  EXPECT_EQ(s("1", "-2", "None"), "(5, 2)");
  EXPECT_EQ(s("-1", "0", "-1"), "(5, 5)");
  EXPECT_EQ(s("0", "0", "5"), "(5, 6)");
  ExpectTensorNear(
      RunOp("slice_axis", {{"axis", "1"}, {"begin", "1"}, {"end", "None"}}, {Iota({2, 3})})[0],
      {2, 2}, {1, 2, 4, 5});
  ExpectTensorNear(
      RunOp("slice_axis", {{"axis", "0"}, {"begin", "-1"}, {"end", "None"}}, {Iota({2, 3})})[0],
      {1, 3}, {3, 4, 5});
  ExpectUserError(
      [] {
        test::InferOpShapes("slice_axis", {{"axis", "1"}, {"begin", "4"}, {"end", "2"}},
                            {Shape{5, 6}});
      },
      {"slice_axis \"n\"", "begin = 4", "end = 2", "6 elements"});
  ExpectUserError(
      [] {
        test::InferOpShapes("slice_axis", {{"axis", "1"}, {"begin", "0"}, {"end", "10"}},
                            {Shape{5, 6}});
      },
      {"slice_axis \"n\"", "end = 10"});
  ExpectUserError(
      [] {
        test::InferOpShapes("slice_axis", {{"axis", "2"}, {"begin", "0"}, {"end", "1"}},
                            {Shape{5, 6}});
      },
      {"slice_axis \"n\"", "axis = 2", "out of range"});
  ExpectUserError(
      [] {
        test::OneOpGraph("slice_axis", {{"axis", "1"}, {"begin", "0"}});
      },
      {"missing required attribute end"});
}

TEST(ShapeOps, TypeRulesForEveryDtype) {
  for (DType t : kAllDTypes) {
    EXPECT_EQ(test::InferOpTypes("transpose", {}, {t})[0], t);
    EXPECT_EQ(test::InferOpTypes("Flatten", {}, {t})[0], t);
    EXPECT_EQ(test::InferOpTypes("Concat", {{"num_args", "2"}}, {t})[0], t);
    EXPECT_EQ(
        test::InferOpTypes("slice_axis", {{"axis", "0"}, {"begin", "0"}, {"end", "1"}}, {t})[0], t);
  }
  ExpectUserError(
      [] {
        test::InferOpTypes("Concat", {{"num_args", "2"}}, {DType::kInt8, DType::kFloat32});
      },
      {"Concat \"n\"", "int8", "float32"});
}

}  // namespace
}  // namespace kiln
