// grad_nn_loss_test.cpp - the loss heads' defined gradients, and a small LeNet-like network
// differentiated end to end against finite differences of its cross-entropy loss.
//
// SoftmaxOutput, LinearRegressionOutput and MakeLoss ignore their head gradient and return the
// gradient of the loss they stand for, so they are checked against hand-computed values of
// their formulas (MXNet's), not against d(sum(y * h)).
#include "grad_check.h"
#include "kiln/ir/text.h"

namespace kiln {
namespace {

// d data of a one-op loss head (inputs data[, label]) with head gradient `head`.
std::vector<double> HeadGrad(const std::string& op, const AttrMap& attrs, const Tensor& data,
                             const Tensor* label, const std::vector<double>& head) {
  Graph g = test::OneOpGraph(op, attrs);
  GradientGraph gg = BuildGradient(g, {0});
  std::map<std::string, Tensor> feeds = {{"data", data}};
  if (label) feeds["label"] = *label;
  feeds["n_head_grad"] = test::Values(DType::kFloat64, data.shape(), head);
  return Interpret(gg.graph, feeds)[1].ToDoubles();
}

// softmax over the middle axis of an (outer, k, inner) view of `x`.
std::vector<double> Softmax(const std::vector<double>& x, int64_t outer, int64_t k, int64_t inner) {
  std::vector<double> p(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < k; ++j) mx = std::max(mx, x[size_t((o * k + j) * inner + i)]);
      for (int64_t j = 0; j < k; ++j) sum += std::exp(x[size_t((o * k + j) * inner + i)] - mx);
      for (int64_t j = 0; j < k; ++j) {
        size_t at = size_t((o * k + j) * inner + i);
        p[at] = std::exp(x[at] - mx) / sum;
      }
    }
  return p;
}

// The expected SoftmaxOutput gradient, written out: for each (o, i) position with label l,
// (p - t) * scale where t is 1 - alpha at l and alpha / (k - 1) elsewhere; 0 for `ignored`
// positions.
std::vector<double> ExpectedSoftmaxGrad(const std::vector<double>& x,
                                        const std::vector<double>& label, int64_t outer, int64_t k,
                                        int64_t inner, double scale, double alpha = 0,
                                        double ignored = NAN) {
  std::vector<double> p = Softmax(x, outer, k, inner), g(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double l = label[size_t(o * inner + i)];
      for (int64_t j = 0; j < k; ++j) {
        size_t at = size_t((o * k + j) * inner + i);
        double t = j == int64_t(l) ? 1 - alpha : alpha / double(k - 1);
        g[at] = l == ignored ? 0.0 : (p[at] - t) * scale;
      }
    }
  return g;
}

void ExpectNear(const std::vector<double>& got, const std::vector<double>& want,
                double tol = 1e-12) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

Tensor F64(std::vector<int64_t> shape, std::vector<double> v) {
  return test::Values(DType::kFloat64, std::move(shape), std::move(v));
}

// ----- SoftmaxOutput -----

TEST(GradNNLoss, SoftmaxOutputIsSoftmaxMinusOneHotAndIgnoresTheHeadGradient) {
  std::vector<double> x = test::RandomValues(12, 1, -2, 2), label = {0, 2, 3};
  Tensor data = F64({3, 4}, x), lab = F64({3}, label);
  std::vector<double> want = ExpectedSoftmaxGrad(x, label, 3, 4, 1, 0.5);
  AttrMap attrs = {{"grad_scale", "0.5"}};
  ExpectNear(HeadGrad("SoftmaxOutput", attrs, data, &lab, test::RandomValues(12, 2)), want);
  ExpectNear(HeadGrad("SoftmaxOutput", attrs, data, &lab, std::vector<double>(12, 0.0)), want);
  // With out_grad the head gradient multiplies the result.
  std::vector<double> head = test::RandomValues(12, 3);
  std::vector<double> scaled = want;
  for (size_t i = 0; i < 12; ++i) scaled[i] *= head[i];
  ExpectNear(
      HeadGrad("SoftmaxOutput", {{"grad_scale", "0.5"}, {"out_grad", "True"}}, data, &lab, head),
      scaled);
  // The label gets no gradient: asking for it gives zeros.
  Graph g = test::OneOpGraph("SoftmaxOutput", {});
  GradientGraph gg = BuildGradient(g, {0, 1});
  std::vector<Tensor> out =
      Interpret(gg.graph, {{"data", data}, {"label", lab}, {"n_head_grad", F64({3, 4}, x)}});
  test::ExpectTensorNear(out[2], {3}, {0, 0, 0});
}

TEST(GradNNLoss, SoftmaxOutputNormalizationAndIgnoredLabels) {
  std::vector<double> x = test::RandomValues(16, 4, -2, 2), label = {1, 2, 0, 2};
  Tensor data = F64({4, 4}, x), lab = F64({4}, label);
  std::vector<double> head = test::RandomValues(16, 5);
  auto grad = [&](AttrMap attrs) { return HeadGrad("SoftmaxOutput", attrs, data, &lab, head); };
  // batch: divided by the batch size.
  ExpectNear(grad({{"normalization", "batch"}, {"grad_scale", "2"}}),
             ExpectedSoftmaxGrad(x, label, 4, 4, 1, 2.0 / 4));
  // use_ignore: rows labelled 2 get 0; null divides by 1, valid by the 2 other rows.
  AttrMap ignore = {{"use_ignore", "True"}, {"ignore_label", "2"}};
  ExpectNear(grad(ignore), ExpectedSoftmaxGrad(x, label, 4, 4, 1, 1.0, 0, 2));
  ignore["normalization"] = "valid";
  ExpectNear(grad(ignore), ExpectedSoftmaxGrad(x, label, 4, 4, 1, 1.0 / 2, 0, 2));
  // valid counts labels != ignore_label even without use_ignore, as MXNet; rows keep their
  // gradient then.
  ExpectNear(grad({{"normalization", "valid"}, {"ignore_label", "2"}}),
             ExpectedSoftmaxGrad(x, label, 4, 4, 1, 1.0 / 2));
  // Every label ignored: valid divides by 1, not 0.
  Tensor all_ignored = F64({4}, {2, 2, 2, 2});
  std::vector<double> zero = HeadGrad("SoftmaxOutput", ignore, data, &all_ignored, head);
  ExpectNear(zero, std::vector<double>(16, 0.0));
}

TEST(GradNNLoss, SoftmaxOutputLabelSmoothing) {
  std::vector<double> x = test::RandomValues(8, 6), label = {3, 1};
  Tensor data = F64({2, 4}, x), lab = F64({2}, label);
  // On the label 1 - 0.3, elsewhere 0.3 / 3.
  ExpectNear(
      HeadGrad("SoftmaxOutput", {{"smooth_alpha", "0.3"}}, data, &lab, std::vector<double>(8, 1.0)),
      ExpectedSoftmaxGrad(x, label, 2, 4, 1, 1.0, 0.3));
}

TEST(GradNNLoss, SoftmaxOutputMultiOutputNormalizesByPositions) {
  // data (2, 3, 2, 2): 3 classes at 4 positions per example; label (2, 2, 2) or (2, 4).
  std::vector<double> x = test::RandomValues(24, 7, -2, 2);
  std::vector<double> label = {0, 1, 2, 1, 2, 2, 0, 1};
  Tensor data = F64({2, 3, 2, 2}, x);
  std::vector<double> head = test::RandomValues(24, 8);
  for (std::vector<int64_t> label_shape :
       {std::vector<int64_t>{2, 2, 2}, std::vector<int64_t>{2, 4}}) {
    Tensor lab = F64(label_shape, label);
    auto grad = [&](AttrMap attrs) {
      attrs["multi_output"] = "True";
      return HeadGrad("SoftmaxOutput", attrs, data, &lab, head);
    };
    // MXNet's rule: null divides by the positions per example (4), batch by positions times
    // the batch (8), valid by the count of labels != ignore_label.
    ExpectNear(grad({}), ExpectedSoftmaxGrad(x, label, 2, 3, 4, 1.0 / 4));
    ExpectNear(grad({{"normalization", "batch"}, {"grad_scale", "3"}}),
               ExpectedSoftmaxGrad(x, label, 2, 3, 4, 3.0 / 8));
    ExpectNear(grad({{"normalization", "valid"}, {"use_ignore", "True"}, {"ignore_label", "1"}}),
               ExpectedSoftmaxGrad(x, label, 2, 3, 4, 1.0 / 5, 0, 1));
    ExpectNear(grad({{"smooth_alpha", "0.2"}}), ExpectedSoftmaxGrad(x, label, 2, 3, 4, 0.25, 0.2));
  }
}

TEST(GradNNLoss, SoftmaxOutputPreserveShapeHasARowPerPosition) {
  // data (2, 3, 4): softmax over the last axis for 6 rows, one label each; batch divides by the
  // label count, 6 (MXNet flattens the label to 1-D and takes its extent).
  std::vector<double> x = test::RandomValues(24, 9), label = {0, 3, 1, 2, 2, 0};
  Tensor data = F64({2, 3, 4}, x), lab = F64({2, 3}, label);
  ExpectNear(HeadGrad("SoftmaxOutput", {{"preserve_shape", "True"}, {"normalization", "batch"}},
                      data, &lab, std::vector<double>(24, 1.0)),
             ExpectedSoftmaxGrad(x, label, 6, 4, 1, 1.0 / 6));
}

TEST(GradNNLoss, SoftmaxOutputGradientIsTheCrossEntropyGradient) {
  // For every normalization, d data equals the finite-difference gradient of
  //   L = grad_scale / norm * sum over non-ignored positions of -log p[label].
  std::vector<double> x = test::RandomValues(24, 10, -2, 2);
  std::vector<double> label = {0, 1, 2, 1, 2, 2, 0, 1};
  struct Case {
    AttrMap attrs;
    double norm;
    double ignored;
  };
  for (const Case& c :
       {Case{{}, 4, NAN}, Case{{{"normalization", "batch"}}, 8, NAN},
        Case{{{"normalization", "valid"}, {"use_ignore", "True"}, {"ignore_label", "2"}}, 5, 2}}) {
    AttrMap attrs = c.attrs;
    attrs["multi_output"] = "True";
    attrs["grad_scale"] = "0.7";
    Tensor lab = F64({2, 4}, label);
    std::vector<double> analytic =
        HeadGrad("SoftmaxOutput", attrs, F64({2, 3, 4}, x), &lab, std::vector<double>(24, 1.0));
    auto loss = [&](const std::vector<double>& v) {
      std::vector<double> p = Softmax(v, 2, 3, 4);
      double sum = 0;
      for (int64_t o = 0; o < 2; ++o)
        for (int64_t i = 0; i < 4; ++i) {
          double l = label[size_t(o * 4 + i)];
          if (l != c.ignored) sum -= std::log(p[size_t((o * 3 + int64_t(l)) * 4 + i)]);
        }
      return 0.7 / c.norm * sum;
    };
    for (size_t i = 0; i < x.size(); ++i) {
      std::vector<double> up = x, down = x;
      up[i] += 1e-5;
      down[i] -= 1e-5;
      EXPECT_NEAR(analytic[i], (loss(up) - loss(down)) / 2e-5, 1e-8) << i;
    }
  }
}

// ----- LinearRegressionOutput, MakeLoss -----

TEST(GradNNLoss, LinearRegressionOutputDividesByTheOutputsPerExample) {
  std::vector<double> x = {1, 2, 3, 4, 5, 6}, l = {0.5, 2, 1, 5, 5, 3};
  Tensor lab = F64({3, 2}, l);
  // num_output = 6 / 3 = 2: (y - label) * 4 / 2; the head gradient is ignored.
  ExpectNear(HeadGrad("LinearRegressionOutput", {{"grad_scale", "4"}}, F64({3, 2}, x), &lab,
                      test::RandomValues(6, 1)),
             {1, 0, 4, -2, 0, 6});
  // data (3, 1) with label (3): num_output 1.
  Tensor col = F64({3}, {1, 1, 1});
  ExpectNear(HeadGrad("LinearRegressionOutput", {}, F64({3, 1}, {2, 0, 1}), &col, {9, 9, 9}),
             {1, -1, 0});
}

TEST(GradNNLoss, MakeLossGradientIsTheScaleOverTheNormalization) {
  Tensor data = F64({2, 3}, {0.1, 0.5, -1, 0.3, 0.2, 2});
  std::vector<double> head = test::RandomValues(6, 2);
  ExpectNear(HeadGrad("MakeLoss", {{"grad_scale", "2"}}, data, nullptr, head),
             std::vector<double>(6, 2.0));
  ExpectNear(
      HeadGrad("MakeLoss", {{"grad_scale", "2"}, {"normalization", "batch"}}, data, nullptr, head),
      std::vector<double>(6, 1.0));
  // valid: 3 elements above 0.2 (0.5, 0.3, 2; 0.2 itself is not above).
  ExpectNear(HeadGrad("MakeLoss",
                      {{"grad_scale", "3"}, {"normalization", "valid"}, {"valid_thresh", "0.2"}},
                      data, nullptr, head),
             std::vector<double>(6, 1.0));
  // None above: divided by 1.
  ExpectNear(HeadGrad("MakeLoss", {{"normalization", "valid"}, {"valid_thresh", "5"}}, data,
                      nullptr, head),
             std::vector<double>(6, 1.0));
}

// ----- A whole network -----

// conv -> tanh -> max pool -> FC -> SoftmaxOutput; the weights' gradients from the gradient pass
// must be the finite-difference gradients of the cross-entropy loss the head stands for.
TEST(GradNNLoss, LeNetLikeNetworkMatchesTheCrossEntropyLoss) {
  struct Case {
    std::string head_attrs;
    double scale, norm, ignored;
  };
  std::vector<double> labels = {2, 0, 3};
  for (const Case& c :
       {Case{"grad_scale=0.7, normalization=batch", 0.7, 3, NAN},
        Case{"grad_scale=1.5, normalization=valid, use_ignore=True, ignore_label=0", 1.5, 2, 0}}) {
    SCOPED_TRACE(c.head_attrs);
    Graph g = ParseGraph(R"IR(graph {
  %data = var
  %conv_weight = var
  %conv_bias = var
  %conv = Convolution(%data, %conv_weight, %conv_bias) {kernel="(3, 3)", num_filter=2, pad="(1, 1)"}
  %act = Activation(%conv) {act_type=tanh}
  %pool = Pooling(%act) {kernel="(2, 2)", pool_type=max, stride="(2, 2)"}
  %fc_weight = var
  %fc_bias = var
  %fc = FullyConnected(%pool, %fc_weight, %fc_bias) {num_hidden=4}
  %label = var
  %softmax = SoftmaxOutput(%fc, %label) {)IR" +
                         c.head_attrs + R"IR(}
  return %softmax
})IR");
    std::map<std::string, std::vector<int64_t>> shapes = {{"data", {3, 1, 4, 4}},
                                                          {"conv_weight", {2, 1, 3, 3}},
                                                          {"conv_bias", {2}},
                                                          {"fc_weight", {4, 8}},
                                                          {"fc_bias", {4}}};
    std::map<std::string, Tensor> feeds;
    uint32_t seed = 1;
    for (const auto& [name, shape] : shapes)
      feeds[name] = F64(shape, test::RandomValues(size_t(NumElements(shape)), seed++));
    feeds["label"] = F64({3}, labels);
    std::vector<std::string> params = {"conv_weight", "conv_bias", "fc_weight", "fc_bias"};
    std::vector<uint32_t> xs;
    for (const auto& p : params) xs.push_back(*g.FindNode(p));
    GradientGraph gg = BuildGradient(g, xs);
    std::map<std::string, Tensor> all = feeds;
    all["softmax_head_grad"] = F64({3, 4}, test::RandomValues(12, 99));  // ignored
    std::vector<Tensor> out = Interpret(gg.graph, all);

    auto loss = [&]() {
      std::vector<double> p = Interpret(g, feeds)[0].ToDoubles();
      double sum = 0;
      for (size_t r = 0; r < labels.size(); ++r)
        if (labels[r] != c.ignored) sum -= std::log(p[r * 4 + size_t(labels[r])]);
      return c.scale / c.norm * sum;
    };
    for (size_t k = 0; k < params.size(); ++k) {
      std::vector<double> analytic = out[1 + k].ToDoubles();
      Tensor& w = feeds[params[k]];
      ASSERT_EQ(analytic.size(), size_t(w.size()));
      double* pw = w.data<double>();
      for (int64_t i = 0; i < w.size(); ++i) {
        double saved = pw[i];
        pw[i] = saved + 1e-5;
        double up = loss();
        pw[i] = saved - 1e-5;
        double down = loss();
        pw[i] = saved;
        double numeric = (up - down) / 2e-5;
        EXPECT_NEAR(analytic[size_t(i)], numeric, 1e-7 * (1 + std::fabs(numeric)))
            << params[k] << "[" << i << "]";
      }
    }
  }
}

}  // namespace
}  // namespace kiln
