// ops_nn_norm_test.cpp - BatchNorm, LayerNorm and Dropout: shapes both ways, dtypes, errors,
// inference and training numerics (moving statistics), and Dropout's statistics.
#include <random>

#include "test_util.h"

namespace kiln {
namespace {

using test::ExpectTensorNear;
using test::ExpectUserError;
using test::F32;
using test::InferOpInputShapes;
using test::InferOpShapes;
using test::InferOpTypes;
using test::RunOp;

std::string S(const Shape& s) {
  return s.ToString();
}

// ----- BatchNorm -----

TEST(BatchNorm, ShapesBothWaysAuxAndVisibleOutputs) {
  auto outs = InferOpShapes("BatchNorm", {}, {Shape{2, 3, 4, 4}});
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_EQ(S(outs[0]), "(2, 3, 4, 4)");
  EXPECT_EQ(S(outs[1]), "(3)");
  EXPECT_EQ(S(outs[2]), "(3)");
  auto ins = InferOpInputShapes("BatchNorm", {{"axis", "-1"}}, {Shape{2, 3, 4, 5}});
  for (int i = 1; i < 5; ++i) EXPECT_EQ(S(ins[size_t(i)]), "(5)") << i;
  // Backward: the channel count comes from any parameter.
  ins = InferOpInputShapes("BatchNorm", {}, {Shape{2, -1, 8}, Shape(), Shape(), Shape(), Shape{5}});
  EXPECT_EQ(S(ins[0]), "(2, 5, 8)");
  EXPECT_EQ(S(ins[1]), "(5)");
  const OpDef& op = OpRegistry::Global().Get("BatchNorm");
  Attrs plain = op.attrs.parse({}), both = op.attrs.parse({{"output_mean_var", "True"}});
  EXPECT_EQ(op.NumOutputs(plain), 3);
  EXPECT_EQ(op.NumVisibleOutputs(plain), 1);
  EXPECT_EQ(op.NumVisibleOutputs(both), 3);
  EXPECT_EQ(op.AuxInputs(plain), (std::vector<int>{3, 4}));
  Graph g = test::OneOpGraph("BatchNorm", {}, "bn");
  EXPECT_EQ(g.AuxiliaryNodes().size(), 2u);
  EXPECT_EQ(g.ArgumentNodes().size(), 3u);
}

TEST(BatchNorm, ShapeAndAttributeErrors) {
  ExpectUserError(
      [] {
        test::InferOneOp("BatchNorm", {}, {Shape{2, 3, 5, 5}, Shape{4}}, "bn1");
      },
      {"BatchNorm \"bn1\": gamma has shape (4) but shape (3) was expected",
       "data (2, 3, 5, 5) has 3 channels on axis 1"});
  ExpectUserError(
      [] {
        test::InferOneOp("BatchNorm", {{"axis", "4"}}, {Shape{2, 3, 5, 5}}, "bn2");
      },
      {"BatchNorm \"bn2\": axis = 4 is out of range for rank 4"});
  const OpDef& op = OpRegistry::Global().Get("BatchNorm");
  ExpectUserError([&] { op.attrs.parse({{"eps", "-1"}}); }, {"eps", "below the minimum 0"});
  ExpectUserError(
      [&] {
        op.attrs.parse({{"momentum", "1.5"}});
      },
      {"momentum", "above the maximum 1"});
}

TEST(BatchNorm, TypesFollowMXNet) {
  // float16 data keeps float32 parameters and statistics.
  auto t = InferOpTypes("BatchNorm", {}, {DType::kFloat16});
  EXPECT_EQ(t[0], DType::kFloat16);
  EXPECT_EQ(t[1], DType::kFloat32);
  EXPECT_EQ(t[2], DType::kFloat32);
  t = InferOpTypes("BatchNorm", {}, {DType::kFloat64});
  EXPECT_EQ(t[1], DType::kFloat64);
  ExpectUserError([] { InferOpTypes("BatchNorm", {}, {DType::kInt32}); },
                  {"BatchNorm \"n\"", "int32", "floating-point"});
  ExpectUserError(
      [] {
        InferOpTypes("BatchNorm", {}, {DType::kFloat16, DType::kFloat16});
      },
      {"BatchNorm \"n\"", "gamma has dtype float16 but dtype float32 was expected"});
}

// data [[1, 2], [3, 4]] (2 examples, 2 channels); moving mean [1, 2], var [4, 9].
std::vector<Tensor> BnInputs(DType param = DType::kFloat32) {
  return {F32({2, 2}, {1, 2, 3, 4}), F32({2}, {2, 3}).CastTo(param),
          F32({2}, {0.5, -1}).CastTo(param), F32({2}, {1, 2}).CastTo(param),
          F32({2}, {4, 9}).CastTo(param)};
}

TEST(BatchNorm, InferenceUsesMovingStatistics) {
  auto in = BnInputs();
  auto out = RunOp("BatchNorm", {{"eps", "0"}, {"fix_gamma", "False"}}, in);
  // (x - mean) / sqrt(var) * gamma + beta
  ExpectTensorNear(out[0], {2, 2}, {0.5, -1, (3 - 1) / 2.0 * 2 + 0.5, (4 - 2) / 3.0 * 3 - 1});
  ExpectTensorNear(out[1], {2}, {1, 2});
  ExpectTensorNear(out[2], {2}, {1 / 2.0, 1 / 3.0});  // inverse std, as MXNet saves it
  // fix_gamma (the default): gamma read as 1. eps is added to the variance.
  out = RunOp("BatchNorm", {{"eps", "0.01"}}, BnInputs());
  ExpectTensorNear(out[0], {2, 2}, {0.5, -1, 2 / std::sqrt(4.01) + 0.5, 2 / std::sqrt(9.01) - 1});
  // Moving statistics untouched in inference.
  ExpectTensorNear(in[3], {2}, {1, 2});
  ExpectTensorNear(in[4], {2}, {4, 9});
}

TEST(BatchNorm, TrainingUsesBatchStatisticsAndUpdatesMovingOnes) {
  auto in = BnInputs();
  auto out = RunOp("BatchNorm", {{"eps", "0"}, {"fix_gamma", "False"}}, in, /*is_train=*/true);
  // Batch mean [2, 3], biased variance [1, 1].
  ExpectTensorNear(out[0], {2, 2}, {-2 + 0.5, -3 - 1, 2 + 0.5, 3 - 1});
  ExpectTensorNear(out[1], {2}, {2, 3});
  ExpectTensorNear(out[2], {2}, {1, 1});
  // moving = moving * 0.9 + batch * 0.1, in place in the caller's tensors.
  ExpectTensorNear(in[3], {2}, {0.9 * 1 + 0.1 * 2, 0.9 * 2 + 0.1 * 3});
  ExpectTensorNear(in[4], {2}, {0.9 * 4 + 0.1 * 1, 0.9 * 9 + 0.1 * 1});
  // use_global_stats: moving statistics even when training, and no update.
  in = BnInputs();
  out = RunOp("BatchNorm", {{"eps", "0"}, {"use_global_stats", "True"}, {"momentum", "0.5"}}, in,
              true);
  ExpectTensorNear(out[0], {2, 2}, {0.5, -1, 1.5, 2 / 3.0 - 1});
  ExpectTensorNear(in[3], {2}, {1, 2});
}

TEST(BatchNorm, TrainingNormalisesEachChannelOfLargerData) {
  const int64_t N = 4, C = 3, W = 5;
  std::vector<double> x = test::RandomValues(size_t(N * C * W), 7, -3, 5);
  std::vector<Tensor> in = {F32({N, C, W}, x), F32({C}, {1, 1, 1}), F32({C}, {0, 0, 0}),
                            F32({C}, {0, 0, 0}), F32({C}, {1, 1, 1})};
  auto out = RunOp("BatchNorm", {{"eps", "1e-8"}}, in, true);
  auto y = out[0].ToDoubles();
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, sq = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t w = 0; w < W; ++w) {
        double v = y[size_t((n * C + c) * W + w)];
        s += v;
        sq += v * v;
      }
    EXPECT_NEAR(s / (N * W), 0, 1e-6);
    EXPECT_NEAR(sq / (N * W), 1, 1e-5);
  }
}

TEST(BatchNorm, Float16DataWithFloat32Parameters) {
  auto in = BnInputs();
  in[0] = in[0].CastTo(DType::kFloat16);
  auto out = RunOp("BatchNorm", {{"eps", "0"}, {"fix_gamma", "False"}}, in);
  EXPECT_EQ(out[0].dtype(), DType::kFloat16);
  EXPECT_EQ(out[1].dtype(), DType::kFloat32);
  ExpectTensorNear(out[0], {2, 2}, {0.5, -1, 2.5, 1}, 1e-3);
  in = BnInputs(DType::kFloat64);
  in[0] = in[0].CastTo(DType::kFloat64);
  out = RunOp("BatchNorm", {{"eps", "0"}, {"fix_gamma", "False"}}, in, true);
  EXPECT_EQ(out[0].dtype(), DType::kFloat64);
  ExpectTensorNear(in[4], {2}, {3.7, 8.2}, 1e-12);
}

// ----- LayerNorm -----

TEST(LayerNorm, Shapes) {
  auto outs = InferOpShapes("LayerNorm", {}, {Shape{2, 3, 5}});
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_EQ(S(outs[0]), "(2, 3, 5)");
  EXPECT_EQ(S(outs[1]), "(2, 3, 1)");
  EXPECT_EQ(S(outs[2]), "(2, 3, 1)");
  auto ins = InferOpInputShapes("LayerNorm", {{"axis", "1"}}, {Shape{2, 3, 5}});
  EXPECT_EQ(S(ins[1]), "(3)");
  EXPECT_EQ(S(ins[2]), "(3)");
  outs = InferOpShapes("LayerNorm", {{"axis", "1"}}, {Shape{2, 3, 5}});
  EXPECT_EQ(S(outs[1]), "(2, 1, 5)");
  ins = InferOpInputShapes("LayerNorm", {}, {Shape{4, -1}, Shape(), Shape{6}});
  EXPECT_EQ(S(ins[0]), "(4, 6)");
  const OpDef& op = OpRegistry::Global().Get("LayerNorm");
  EXPECT_EQ(op.NumVisibleOutputs(op.attrs.parse({})), 1);
  ExpectUserError(
      [] {
        test::InferOneOp("LayerNorm", {}, {Shape{2, 5}, Shape{4}}, "ln1");
      },
      {"LayerNorm \"ln1\": gamma has shape (4) but shape (5) was expected",
       "5 channels on axis 1"});
  ExpectUserError([] { InferOpTypes("LayerNorm", {}, {DType::kInt32}); },
                  {"LayerNorm \"n\"", "int32"});
}

TEST(LayerNorm, RowsHaveMeanZeroAndVarianceOne) {
  // Row [1, 2, 3, 4]: mean 2.5, variance 1.25.
  double sd = std::sqrt(1.25 + 1e-5);
  auto out = RunOp(
      "LayerNorm", {},
      {F32({2, 4}, {1, 2, 3, 4, -1, -1, 3, 3}), F32({4}, {1, 1, 1, 1}), F32({4}, {0, 0, 0, 0})});
  ExpectTensorNear(out[0], {2, 4},
                   {-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd, -2 / std::sqrt(4 + 1e-5),
                    -2 / std::sqrt(4 + 1e-5), 2 / std::sqrt(4 + 1e-5), 2 / std::sqrt(4 + 1e-5)});
  ExpectTensorNear(out[1], {2, 1}, {2.5, 1});
  ExpectTensorNear(out[2], {2, 1}, {sd, std::sqrt(4 + 1e-5)});
  // gamma scales and beta shifts per position of the axis; axis 0 normalises columns.
  out = RunOp("LayerNorm", {{"axis", "0"}, {"eps", "0"}},
              {F32({2, 3}, {1, 5, 0, 3, 1, 4}), F32({2}, {2, 3}), F32({2}, {10, 20})});
  // Columns (1, 3), (5, 1), (0, 4): normalised to (-1, 1), (1, -1), (-1, 1).
  ExpectTensorNear(out[0], {2, 3}, {8, 12, 8, 23, 17, 23});
  // Random float64 rows: mean 0, variance 1 (up to eps).
  std::vector<double> x = test::RandomValues(60, 3, -4, 9);
  out = RunOp("LayerNorm", {{"eps", "1e-12"}},
              {Tensor::FromValues({6, 10}, DType::kFloat64, x),
               Tensor::FromValues({10}, DType::kFloat64, std::vector<double>(10, 1)),
               Tensor::FromValues({10}, DType::kFloat64, std::vector<double>(10, 0))});
  auto y = out[0].ToDoubles();
  for (int r = 0; r < 6; ++r) {
    double s = 0, sq = 0;
    for (int j = 0; j < 10; ++j) {
      s += y[size_t(r * 10 + j)];
      sq += y[size_t(r * 10 + j)] * y[size_t(r * 10 + j)];
    }
    EXPECT_NEAR(s / 10, 0, 1e-12);
    EXPECT_NEAR(sq / 10, 1, 1e-9);
  }
}

// ----- Dropout -----

TEST(Dropout, ShapesTypesAndAttributes) {
  auto outs = InferOpShapes("Dropout", {}, {Shape{2, 3, 4}});
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_EQ(S(outs[0]), "(2, 3, 4)");
  EXPECT_EQ(S(outs[1]), "(2, 3, 4)");
  outs = InferOpShapes("Dropout", {{"axes", "(1,)"}}, {Shape{2, 3, 4}});
  EXPECT_EQ(S(outs[1]), "(2, 1, 4)");
  const OpDef& op = OpRegistry::Global().Get("Dropout");
  EXPECT_EQ(op.NumVisibleOutputs(op.attrs.parse({})), 1);
  EXPECT_EQ(op.InplacePairs(op.attrs.parse({})), (std::vector<std::pair<int, int>>{{0, 0}}));
  ExpectUserError([&] { op.attrs.parse({{"p", "1.5"}}); }, {"p", "above the maximum 1"});
  ExpectUserError([&] { op.attrs.parse({{"mode", "sometimes"}}); }, {"mode", "not one of"});
  ExpectUserError(
      [] {
        test::InferOneOp("Dropout", {{"axes", "(3,)"}}, {Shape{2, 3, 4}}, "d1");
      },
      {"Dropout \"d1\": axes = 3 is out of range for rank 3"});
  ExpectUserError([] { InferOpTypes("Dropout", {}, {DType::kInt32}); }, {"Dropout \"n\"", "int32"});
  EXPECT_EQ(InferOpTypes("Dropout", {}, {DType::kFloat16})[1], DType::kFloat16);
}

TEST(Dropout, InferenceIsIdentity) {
  std::vector<double> x = test::RandomValues(100, 1);
  auto out = RunOp("Dropout", {{"p", "0.7"}}, {F32({10, 10}, x)});
  ExpectTensorNear(out[0], {10, 10}, x);
  ExpectTensorNear(out[1], {10, 10}, std::vector<double>(100, 1));
}

TEST(Dropout, TrainingKeepsAboutOneMinusPScaledAndIsDeterministicPerSeed) {
  const int n = 20000;
  const double p = 0.3;
  std::vector<double> x(size_t(n), 2.0);
  auto out = RunOp("Dropout", {{"p", "0.3"}}, {F32({n}, x)}, true, 42);
  auto y = out[0].ToDoubles(), m = out[1].ToDoubles();
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    if (y[size_t(i)] != 0) {
      ++kept;
      EXPECT_NEAR(y[size_t(i)], 2.0 / (1 - p), 1e-5);
      EXPECT_NEAR(m[size_t(i)], 1 / (1 - p), 1e-6);
    } else {
      EXPECT_EQ(m[size_t(i)], 0);
    }
  }
  // Binomial: standard deviation sqrt(0.21 / 20000) ~ 0.0032; allow 5 of them.
  EXPECT_NEAR(double(kept) / n, 1 - p, 0.016);
  auto again = RunOp("Dropout", {{"p", "0.3"}}, {F32({n}, x)}, true, 42);
  EXPECT_EQ(again[0].ToDoubles(), y);
  auto other = RunOp("Dropout", {{"p", "0.3"}}, {F32({n}, x)}, true, 43);
  EXPECT_NE(other[0].ToDoubles(), y);
  // mode always drops in inference too.
  auto always = RunOp("Dropout", {{"p", "0.5"}, {"mode", "always"}}, {F32({n}, x)}, false, 1);
  int zeros = 0;
  for (double v : always[0].ToDoubles()) zeros += v == 0;
  EXPECT_NEAR(double(zeros) / n, 0.5, 0.02);
}

TEST(Dropout, AxesShareOneDrawAlongThem) {
  // (50, 40): axes (1,) draws one mask value per row.
  std::vector<double> x = test::RandomValues(2000, 5, 1, 2);  // never 0
  auto out = RunOp("Dropout", {{"p", "0.5"}, {"axes", "(1,)"}}, {F32({50, 40}, x)}, true, 9);
  ASSERT_EQ(ShapeString(out[1].shape()), "(50, 1)");
  auto y = out[0].ToDoubles(), m = out[1].ToDoubles();
  int dropped_rows = 0;
  for (int r = 0; r < 50; ++r) {
    dropped_rows += m[size_t(r)] == 0;
    for (int c = 0; c < 40; ++c)
      EXPECT_NEAR(y[size_t(r * 40 + c)], float(x[size_t(r * 40 + c)]) * m[size_t(r)], 1e-5);
  }
  EXPECT_GT(dropped_rows, 5);
  EXPECT_LT(dropped_rows, 45);
}

}  // namespace
}  // namespace kiln
