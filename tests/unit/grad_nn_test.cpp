// grad_nn_test.cpp - gradients of the dense, activation and normalisation layers against
// central finite differences (grad_check.h), and Dropout's dx = dy * mask.
//
// Convolution and pooling are in grad_nn_conv_test.cpp, the loss heads and a whole network in
// grad_nn_loss_test.cpp. Inputs are kept away from the kinks of piecewise functions (0 for the
// rectifiers), where a finite difference straddles two branches.
#include "grad_check.h"
#include "kiln/ir/text.h"

namespace kiln {
namespace {

// `n` values uniform in +-[0.1, 1.1): no value within 0.1 of a rectifier's kink at 0.
std::vector<double> AwayFromZero(size_t n, uint32_t seed) {
  std::vector<double> v = test::RandomValues(n, seed);
  for (double& x : v) x = x < 0 ? x - 0.1 : x + 0.1;
  return v;
}

// ----- Embedding -----

TEST(GradNN, EmbeddingWeightIsAScatterAddOverClippedIndices) {
  // Repeated ids (1 three times), ids past either end (clipped to rows 0 and 4), a fractional
  // id (truncated): each row's gradient sums the output rows that read it.
  std::vector<double> ids = {1, 3, 1, -3, 12, 1, 2.7, 0};
  test::CheckGradient({.op = "Embedding",
                       .attrs = {{"input_dim", "5"}, {"output_dim", "3"}, {"dtype", "float64"}},
                       .shapes = {{2, 4}, {5, 3}},
                       .values = {{0, ids}},
                       .no_grad = {0}});
  // The data gets no gradient: asking for it gives zeros.
  Graph g = test::OneOpGraph("Embedding", {{"input_dim", "4"}, {"output_dim", "2"}});
  GradientGraph gg = BuildGradient(g, {0, 1});
  std::map<std::string, Tensor> feeds = {{"data", test::F32({3}, {0, 3, 3})},
                                         {"weight", test::F32({4, 2}, {0, 0, 0, 0, 0, 0, 0, 0})},
                                         {"n_head_grad", test::F32({3, 2}, {1, 2, 3, 4, 5, 6})}};
  std::vector<Tensor> out = Interpret(gg.graph, feeds);
  test::ExpectTensorNear(out[1], {3}, {0, 0, 0});
  test::ExpectTensorNear(out[2], {4, 2}, {1, 2, 0, 0, 0, 0, 8, 10});
}

TEST(GradNN, FullyConnectedWithRandomShapes) {
  std::mt19937 gen(11);
  for (int trial = 0; trial < 3; ++trial) {
    int64_t n = 1 + gen() % 3, k = 1 + gen() % 4, h = 1 + gen() % 3;
    SCOPED_TRACE(StrCat("n ", n, " k ", k, " h ", h));
    test::CheckGradient({.op = "FullyConnected",
                         .attrs = {{"num_hidden", std::to_string(h)}},
                         .shapes = {{n, k}, {h, k}, {h}},
                         .seed = uint32_t(trial)});
  }
}

// ----- LeakyReLU -----

TEST(GradNN, LeakyReLUEveryKindAwayFromTheKink) {
  for (const char* kind : {"leaky", "elu", "selu", "gelu"}) {
    SCOPED_TRACE(kind);
    test::CheckGradient({.op = "LeakyReLU",
                         .attrs = {{"act_type", kind}, {"slope", "0.3"}},
                         .shapes = {{3, 4}},
                         .values = {{0, AwayFromZero(12, 5)}}});
  }
  // gelu is smooth everywhere: check it through 0 too.
  test::CheckGradient({.op = "LeakyReLU",
                       .attrs = {{"act_type", "gelu"}},
                       .shapes = {{5}},
                       .values = {{0, {-2, -0.5, 0, 0.5, 2}}}});
}

TEST(GradNN, PreluGradientReachesGammaPerChannelAndShared) {
  // gamma per channel of axis 1 (4-D and 2-D data), per element of axis 0 for 1-D data, and a
  // single gamma shared by every element.
  test::CheckGradient({.op = "LeakyReLU",
                       .attrs = {{"act_type", "prelu"}},
                       .shapes = {{2, 3, 2, 2}, {3}},
                       .values = {{0, AwayFromZero(24, 6)}}});
  test::CheckGradient({.op = "LeakyReLU",
                       .attrs = {{"act_type", "prelu"}},
                       .shapes = {{4, 3}, {3}},
                       .values = {{0, AwayFromZero(12, 7)}}});
  test::CheckGradient({.op = "LeakyReLU",
                       .attrs = {{"act_type", "prelu"}},
                       .shapes = {{5}, {5}},
                       .values = {{0, AwayFromZero(5, 8)}}});
  test::CheckGradient({.op = "LeakyReLU",
                       .attrs = {{"act_type", "prelu"}},
                       .shapes = {{2, 3, 2}, {1}},
                       .values = {{0, AwayFromZero(12, 9)}}});
}

TEST(GradNN, RreluUsesTheSlopesDrawnInTheForwardPass) {
  // In training each negative element has its own random slope (the mask output); the check
  // re-runs the forward pass with one seed, so the finite differences see the same slopes.
  test::CheckGradient({.op = "LeakyReLU",
                       .attrs = {{"act_type", "rrelu"}},
                       .shapes = {{3, 5}},
                       .values = {{0, AwayFromZero(15, 10)}},
                       .is_train = true});
  // In inference the slope is (lower + upper) / 2.
  test::CheckGradient(
      {.op = "LeakyReLU",
       .attrs = {{"act_type", "rrelu"}, {"lower_bound", "0.2"}, {"upper_bound", "0.4"}},
       .shapes = {{3, 5}},
       .values = {{0, AwayFromZero(15, 11)}}});
}

// ----- softmax, log_softmax -----

TEST(GradNN, SoftmaxAndLogSoftmaxOverEveryAxisWithTemperature) {
  for (const char* op : {"softmax", "log_softmax"})
    for (const char* axis : {"0", "1", "-1"})
      for (const char* temperature : {"1", "0.5", "3"}) {
        SCOPED_TRACE(StrCat(op, " axis ", axis, " temperature ", temperature));
        test::CheckGradient({.op = op,
                             .attrs = {{"axis", axis}, {"temperature", temperature}},
                             .shapes = {{2, 3, 4}},
                             .lo = -2,
                             .hi = 2});
      }
}

TEST(GradNN, SoftmaxWithLengthAndWithDtype) {
  // Rows of lengths 2, 4, 1, 3: elements past a row's length output 0 and get no gradient; the
  // length gets none either.
  for (const char* op : {"softmax", "log_softmax"}) {
    SCOPED_TRACE(op);
    test::CheckGradient({.op = op,
                         .attrs = {{"axis", "-1"}, {"use_length", "True"}},
                         .shapes = {{2, 2, 4}, {2, 2}},
                         .values = {{1, {2, 4, 1, 3}}},
                         .no_grad = {1}});
    // A dtype attribute makes the data an input of the backward op (for the gradient's dtype).
    test::CheckGradient({.op = op,
                         .attrs = {{"axis", "1"}, {"dtype", "float64"}, {"temperature", "2"}},
                         .shapes = {{3, 4}}});
  }
}

// ----- BatchNorm, LayerNorm -----

// moving_mean and moving_var for `c` channels (positive variances).
std::map<int, std::vector<double>> MovingStats(size_t c) {
  std::vector<double> mean = test::RandomValues(c, 21), var = test::RandomValues(c, 22, 0.5, 2);
  return {{3, mean}, {4, var}};
}

TEST(GradNN, BatchNormTrainingDifferentiatesThroughBatchStatistics) {
  for (const char* fix_gamma : {"False", "True"}) {
    SCOPED_TRACE(StrCat("fix_gamma ", fix_gamma));
    // Channels on axis 1 of 4-D data, on the last axis, and 2-D data.
    test::CheckGradient({.op = "BatchNorm",
                         .attrs = {{"fix_gamma", fix_gamma}, {"eps", "0.01"}},
                         .shapes = {{3, 2, 2, 2}, {2}, {2}, {2}, {2}},
                         .values = MovingStats(2),
                         .is_train = true});
    test::CheckGradient({.op = "BatchNorm",
                         .attrs = {{"fix_gamma", fix_gamma}, {"axis", "-1"}},
                         .shapes = {{2, 3, 3}, {3}, {3}, {3}, {3}},
                         .values = MovingStats(3),
                         .is_train = true});
    test::CheckGradient({.op = "BatchNorm",
                         .attrs = {{"fix_gamma", fix_gamma}},
                         .shapes = {{5, 3}, {3}, {3}, {3}, {3}},
                         .values = MovingStats(3),
                         .is_train = true});
  }
}

TEST(GradNN, BatchNormWithMovingStatisticsTreatsThemAsConstants) {
  // use_global_stats in training, and plain inference: the normalisation uses the moving
  // statistics, so d data is gamma * inv_std * dy.
  test::CheckGradient({.op = "BatchNorm",
                       .attrs = {{"fix_gamma", "False"}, {"use_global_stats", "True"}},
                       .shapes = {{3, 2, 2, 2}, {2}, {2}, {2}, {2}},
                       .values = MovingStats(2),
                       .is_train = true});
  test::CheckGradient({.op = "BatchNorm",
                       .attrs = {{"fix_gamma", "False"}},
                       .shapes = {{3, 2, 3}, {2}, {2}, {2}, {2}},
                       .values = MovingStats(2)});
}

TEST(GradNN, BatchNormFixGammaGivesGammaAZeroGradient) {
  Graph g = test::OneOpGraph("BatchNorm", {{"fix_gamma", "True"}});
  g.mutable_outputs().resize(1);
  GradientGraph gg = BuildGradient(g, {0, 1, 2});
  std::map<std::string, Tensor> feeds = {
      {"data", test::F32({4, 1}, {1, 2, 4, 7})}, {"gamma", test::F32({1}, {3})},
      {"beta", test::F32({1}, {0.5})},           {"moving_mean", test::F32({1}, {0})},
      {"moving_var", test::F32({1}, {1})},       {"n_head_grad", test::F32({4, 1}, {1, -1, 2, 0})}};
  InterpretOptions opt;
  opt.is_train = true;
  std::vector<Tensor> out = Interpret(gg.graph, feeds, opt);
  test::ExpectTensorNear(out[2], {1}, {0});  // gamma
  test::ExpectTensorNear(out[3], {1}, {2});  // beta: sum of dy
}

TEST(GradNN, LayerNormOverEveryAxis) {
  test::CheckGradient({.op = "LayerNorm", .attrs = {}, .shapes = {{2, 3, 4}, {4}, {4}}});
  test::CheckGradient({.op = "LayerNorm",
                       .attrs = {{"axis", "1"}, {"eps", "0.1"}},
                       .shapes = {{2, 3, 2}, {3}, {3}}});
  test::CheckGradient({.op = "LayerNorm", .attrs = {{"axis", "0"}}, .shapes = {{4, 2}, {4}, {4}}});
}

// ----- Dropout -----

TEST(GradNN, DropoutGradientIsTheOutputGradientTimesTheMask) {
  for (const char* axes : {"()", "(1,)"}) {
    SCOPED_TRACE(StrCat("axes ", axes));
    Graph g = test::OneOpGraph("Dropout", {{"p", "0.4"}, {"axes", axes}});  // outputs y, mask
    GradientGraph gg = BuildGradient(g, {0}, {g.outputs()[0]});
    std::vector<double> x = test::RandomValues(24, 3), h = test::RandomValues(24, 4);
    std::map<std::string, Tensor> feeds = {
        {"data", test::Values(DType::kFloat64, {4, 6}, x)},
        {"n_head_grad", test::Values(DType::kFloat64, {4, 6}, h)}};
    InterpretOptions opt;
    opt.is_train = true;
    opt.seed = 42;
    std::vector<Tensor> out = Interpret(gg.graph, feeds, opt);
    std::vector<double> mask = out[1].ToDoubles(), dx = out[2].ToDoubles();
    int64_t mask_cols = out[1].dim(1);
    int dropped = 0;
    for (size_t i = 0; i < 24; ++i) {
      double m = mask[mask_cols == 1 ? i / 6 : i];
      EXPECT_TRUE(m == 0 || std::fabs(m - 1 / 0.6) < 1e-12) << m;
      dropped += m == 0;
      EXPECT_NEAR(dx[i], h[i] * m, 1e-12) << i;
    }
    EXPECT_GT(dropped, 0);  // the seed drops some elements and keeps others
    EXPECT_LT(dropped, 24);
  }
  // The same mask on every run with one seed, so finite differences agree too.
  test::CheckGradient(
      {.op = "Dropout", .attrs = {{"p", "0.5"}}, .shapes = {{3, 4}}, .is_train = true});
  // Inactive (inference): identity.
  test::CheckGradient({.op = "Dropout", .attrs = {{"p", "0.5"}}, .shapes = {{3, 4}}});
}

// ----- A training graph through every layer -----

// conv -> BatchNorm -> prelu -> avg pool -> deconv -> LayerNorm -> Dropout -> FC -> log_softmax
// -> MakeLoss, in training mode. The backward ops' shape and type rules find every fact of the
// training graph from the data's shape alone (only the loss head's unused head gradient stays
// unknown), and since MakeLoss's gradient is grad_scale, every gradient is that of
// grad_scale * sum(log_softmax), which central differences check.
TEST(GradNN, TrainingGraphThroughEveryLayer) {
  Graph g = ParseGraph(R"IR(graph {
  %data = var
  %cw = var
  %cb = var
  %conv = Convolution(%data, %cw, %cb) {kernel="(3, 3)", num_filter=2, pad="(1, 1)"}
  %bn_gamma = var
  %bn_beta = var
  %bn_mean = var
  %bn_var = var
  %bn = BatchNorm(%conv, %bn_gamma, %bn_beta, %bn_mean, %bn_var) {fix_gamma=False}
  %slope = var
  %act = LeakyReLU(%bn, %slope) {act_type=prelu}
  %pool = Pooling(%act) {kernel="(2, 2)", pool_type=avg, stride="(2, 2)"}
  %dw = var
  %deconv = Deconvolution(%pool, %dw) {kernel="(2, 2)", num_filter=2, stride="(2, 2)"}
  %ln_gamma = var
  %ln_beta = var
  %ln = LayerNorm(%deconv, %ln_gamma, %ln_beta) {axis=1}
  %drop = Dropout(%ln) {p=0.3}
  %fw = var
  %fb = var
  %fc = FullyConnected(%drop, %fw, %fb) {num_hidden=3}
  %sm = log_softmax(%fc) {axis=-1}
  %loss = MakeLoss(%sm) {grad_scale=0.5}
  return %loss
})IR");
  std::vector<std::string> params = {"data", "cw",       "cb",      "bn_gamma", "bn_beta", "slope",
                                     "dw",   "ln_gamma", "ln_beta", "fw",       "fb"};
  std::vector<uint32_t> xs;
  for (const auto& p : params) xs.push_back(*g.FindNode(p));
  GradientGraph gg = BuildGradient(g, xs);

  Graph facts = gg.graph;
  InferOptions io;
  io.shapes["data"] = Shape{2, 2, 4, 4};
  io.dtypes["data"] = DType::kFloat64;
  io.require_complete = false;
  InferShapes(facts, io);
  InferTypes(facts, io);
  std::string unknown;
  for (uint32_t i = 0; i < facts.num_nodes(); ++i)
    for (int k = 0; k < facts.node(i).num_outputs(); ++k) {
      Entry e{i, uint32_t(k)};
      if (!facts.shape(e).IsFullyKnown() || facts.dtype(e) == DType::kUnknown)
        unknown += " " + facts.node(i).name;
    }
  EXPECT_EQ(unknown, " loss_head_grad");

  std::map<std::string, Tensor> feeds;
  uint32_t seed = 30;
  for (uint32_t v : g.VariableNodes()) {
    const Shape& s = facts.shape(Entry{v, 0});
    const std::string& name = g.node(v).name;
    double lo = name == "bn_var" ? 0.5 : -1, hi = name == "bn_var" ? 2 : 1;
    feeds[name] = test::Values(DType::kFloat64, s.dims(),
                               test::RandomValues(size_t(s.NumElements()), seed++, lo, hi));
  }
  InterpretOptions opt;
  opt.is_train = true;
  opt.seed = 3;
  auto fresh = [&](std::map<std::string, Tensor> f) {
    for (auto& [name, t] : f) t = t.Clone();
    return f;
  };
  std::map<std::string, Tensor> all = fresh(feeds);
  all["loss_head_grad"] = test::Values(DType::kFloat64, {2, 3}, test::RandomValues(6, 9));
  std::vector<Tensor> out = Interpret(gg.graph, all, opt);
  auto objective = [&] {
    double sum = 0;
    for (double y : Interpret(g, fresh(feeds), opt)[0].ToDoubles()) sum += 0.5 * y;
    return sum;
  };
  for (size_t k = 0; k < params.size(); ++k) {
    std::vector<double> analytic = out[1 + k].ToDoubles();
    Tensor& x = feeds[params[k]];
    double* p = x.data<double>();
    for (int64_t i = 0; i < x.size(); ++i) {
      double saved = p[i];
      p[i] = saved + 1e-5;
      double up = objective();
      p[i] = saved - 1e-5;
      double down = objective();
      p[i] = saved;
      double numeric = (up - down) / 2e-5;
      EXPECT_NEAR(analytic[size_t(i)], numeric, 1e-6 * (1 + std::fabs(numeric)))
          << params[k] << "[" << i << "]";
    }
  }
}

}  // namespace
}  // namespace kiln
