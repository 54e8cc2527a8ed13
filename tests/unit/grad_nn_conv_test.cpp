// grad_nn_conv_test.cpp - gradients of Convolution, Deconvolution and Pooling against central
// finite differences (grad_check.h), over strides, padding, dilation, groups, adj and
// target_shape, every pooling type and convention, both layouts and global pooling.
#include <algorithm>

#include "grad_check.h"

namespace kiln {
namespace {

// `n` distinct values 0.05 apart, shuffled: max pooling's windows have no ties (a tie would make
// the maximum non-differentiable), and no two values are within a finite-difference step.
std::vector<double> DistinctValues(size_t n, uint32_t seed) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (double(i) - double(n) / 2) * 0.05;
  std::shuffle(v.begin(), v.end(), std::mt19937(seed));
  return v;
}

// ----- Convolution -----

TEST(GradNNConv, Convolution1D) {
  test::CheckGradient({.op = "Convolution",
                       .attrs = {{"kernel", "(3,)"}, {"num_filter", "2"}},
                       .shapes = {{2, 3, 7}, {2, 3, 3}, {2}}});
  // Strided, padded and dilated; no bias.
  test::CheckGradient({.op = "Convolution",
                       .attrs = {{"kernel", "(3,)"},
                                 {"num_filter", "3"},
                                 {"stride", "(2,)"},
                                 {"pad", "(2,)"},
                                 {"dilate", "(2,)"},
                                 {"no_bias", "True"}},
                       .shapes = {{2, 2, 9}, {3, 2, 3}}});
  // Grouped: 4 channels in 2 groups, 6 filters.
  test::CheckGradient({.op = "Convolution",
                       .attrs = {{"kernel", "(2,)"}, {"num_filter", "6"}, {"num_group", "2"}},
                       .shapes = {{1, 4, 5}, {6, 2, 2}, {6}}});
}

TEST(GradNNConv, Convolution2D) {
  test::CheckGradient({.op = "Convolution",
                       .attrs = {{"kernel", "(3, 3)"}, {"num_filter", "2"}, {"pad", "(1, 1)"}},
                       .shapes = {{2, 2, 4, 4}, {2, 2, 3, 3}, {2}}});
  // Different stride, pad and dilation per axis; a stride that skips the last column.
  test::CheckGradient({.op = "Convolution",
                       .attrs = {{"kernel", "(2, 3)"},
                                 {"num_filter", "2"},
                                 {"stride", "(2, 3)"},
                                 {"pad", "(1, 0)"},
                                 {"dilate", "(1, 2)"}},
                       .shapes = {{1, 2, 5, 8}, {2, 2, 2, 3}, {2}}});
  // Depthwise: one channel per group.
  test::CheckGradient({.op = "Convolution",
                       .attrs = {{"kernel", "(2, 2)"}, {"num_filter", "3"}, {"num_group", "3"}},
                       .shapes = {{2, 3, 3, 3}, {3, 1, 2, 2}, {3}}});
}

TEST(GradNNConv, Convolution3D) {
  test::CheckGradient(
      {.op = "Convolution",
       .attrs = {{"kernel", "(2, 2, 2)"}, {"num_filter", "2"}, {"pad", "(0, 1, 0)"}},
       .shapes = {{1, 2, 3, 3, 3}, {2, 2, 2, 2, 2}, {2}}});
}

TEST(GradNNConv, RandomConvolutionGeometries) {
  std::mt19937 gen(5);
  for (int trial = 0; trial < 4; ++trial) {
    int64_t groups = 1 + gen() % 2, c = groups * (1 + gen() % 2), f = groups * (1 + gen() % 2);
    int64_t k = 1 + gen() % 3, s = 1 + gen() % 2, d = 1 + gen() % 2, p = gen() % 2;
    int64_t w = d * (k - 1) + 1 + gen() % 4;  // at least the dilated kernel
    SCOPED_TRACE(StrCat("c ", c, " f ", f, " groups ", groups, " k ", k, " s ", s, " d ", d, " p ",
                        p, " w ", w));
    test::CheckGradient({.op = "Convolution",
                         .attrs = {{"kernel", StrCat("(", k, ", ", k, ")")},
                                   {"num_filter", std::to_string(f)},
                                   {"num_group", std::to_string(groups)},
                                   {"stride", StrCat("(", s, ", ", s, ")")},
                                   {"dilate", StrCat("(", d, ", ", d, ")")},
                                   {"pad", StrCat("(", p, ", ", p, ")")}},
                         .shapes = {{1, c, w, w}, {f, c / groups, k, k}, {f}},
                         .seed = uint32_t(trial)});
  }
}

// ----- Deconvolution -----

TEST(GradNNConv, Deconvolution1DAnd2D) {
  test::CheckGradient({.op = "Deconvolution",
                       .attrs = {{"kernel", "(3,)"}, {"num_filter", "2"}, {"stride", "(2,)"}},
                       .shapes = {{2, 3, 4}, {3, 2, 3}}});
  test::CheckGradient({.op = "Deconvolution",
                       .attrs = {{"kernel", "(3, 2)"},
                                 {"num_filter", "2"},
                                 {"stride", "(2, 1)"},
                                 {"pad", "(1, 0)"},
                                 {"dilate", "(1, 2)"},
                                 {"no_bias", "False"}},
                       .shapes = {{1, 2, 3, 3}, {2, 2, 3, 2}, {2}}});
}

TEST(GradNNConv, DeconvolutionGroupsAdjAndTargetShape) {
  // 4 input channels in 2 groups, 4 filters: weight (4, 2, k).
  test::CheckGradient({.op = "Deconvolution",
                       .attrs = {{"kernel", "(2, 2)"},
                                 {"num_filter", "4"},
                                 {"num_group", "2"},
                                 {"stride", "(2, 2)"},
                                 {"adj", "(1, 0)"},
                                 {"no_bias", "False"}},
                       .shapes = {{1, 4, 2, 3}, {4, 2, 2, 2}, {4}}});
  // target_shape fixes the output extent; pad and adj are derived (odd total padding).
  test::CheckGradient({.op = "Deconvolution",
                       .attrs = {{"kernel", "(3, 3)"},
                                 {"num_filter", "2"},
                                 {"stride", "(2, 2)"},
                                 {"target_shape", "(6, 5)"}},
                       .shapes = {{2, 1, 3, 3}, {1, 2, 3, 3}}});
}

// ----- Pooling -----

struct PoolCase {
  AttrMap attrs;
  std::vector<int64_t> shape;
};

void CheckPool(const PoolCase& c, double lo = -1, double hi = 1) {
  AttrMap attrs = c.attrs;
  SCOPED_TRACE(
      StrCat(attrs.count("pool_type") ? attrs.at("pool_type") : "max",
             attrs.count("kernel") ? " kernel " + attrs.at("kernel") : "",
             attrs.count("pooling_convention") ? " " + attrs.at("pooling_convention") : ""));
  Shape s(c.shape);
  test::GradCheck check{.op = "Pooling", .attrs = attrs, .shapes = {s}, .lo = lo, .hi = hi};
  if (!attrs.count("pool_type") || attrs.at("pool_type") == "max")
    check.values[0] = DistinctValues(size_t(s.NumElements()), 3);
  test::CheckGradient(check);
}

TEST(GradNNConv, PoolingEveryTypeWithPaddingAndStride) {
  for (const char* type : {"max", "avg", "sum"}) {
    CheckPool({{{"pool_type", type}, {"kernel", "(3,)"}, {"stride", "(2,)"}, {"pad", "(1,)"}},
               {2, 2, 7}});
    CheckPool({{{"pool_type", type}, {"kernel", "(2, 3)"}, {"stride", "(1, 2)"}, {"pad", "(1, 1)"}},
               {1, 2, 4, 5}});
    CheckPool(
        {{{"pool_type", type}, {"kernel", "(2, 2, 2)"}, {"stride", "(1, 2, 1)"}}, {1, 1, 3, 4, 3}});
  }
  // Overlapping max windows: an element that is the maximum of two windows gets both gradients.
  CheckPool({{{"pool_type", "max"}, {"kernel", "(3, 3)"}, {"stride", "(1, 1)"}}, {1, 2, 5, 5}});
}

TEST(GradNNConv, PoolingAverageCountsPaddingBothWays) {
  for (const char* include : {"True", "False"}) {
    SCOPED_TRACE(StrCat("count_include_pad ", include));
    CheckPool({{{"pool_type", "avg"},
                {"kernel", "(3, 3)"},
                {"stride", "(2, 2)"},
                {"pad", "(1, 1)"},
                {"count_include_pad", include}},
               {2, 1, 5, 4}});
    // full convention: the last window overhangs the padded data.
    CheckPool({{{"pool_type", "avg"},
                {"kernel", "(2, 2)"},
                {"stride", "(2, 2)"},
                {"pad", "(1, 0)"},
                {"pooling_convention", "full"},
                {"count_include_pad", include}},
               {1, 2, 4, 5}});
  }
}

TEST(GradNNConv, PoolingConventions) {
  for (const char* type : {"max", "avg", "sum"}) {
    CheckPool({{{"pool_type", type},
                {"kernel", "(3, 2)"},
                {"stride", "(2, 2)"},
                {"pooling_convention", "full"}},
               {1, 2, 6, 5}});
    CheckPool({{{"pool_type", type},
                {"kernel", "(3,)"},
                {"stride", "(2,)"},
                {"pooling_convention", "same"}},
               {2, 2, 7}});
    CheckPool({{{"pool_type", type},
                {"kernel", "(3, 2)"},
                {"stride", "(2, 2)"},
                {"pooling_convention", "valid"}},
               {1, 2, 6, 5}});
  }
}

TEST(GradNNConv, PoolingLp) {
  // Positive data keeps (sum x^p)^(1/p) away from 0, where its derivative is unbounded.
  for (const char* p : {"1", "2", "3"}) {
    SCOPED_TRACE(StrCat("p_value ", p));
    CheckPool({{{"pool_type", "lp"}, {"p_value", p}, {"kernel", "(2, 2)"}, {"stride", "(1, 2)"}},
               {1, 2, 3, 4}},
              0.2, 1.2);
    CheckPool(
        {{{"pool_type", "lp"}, {"p_value", p}, {"kernel", "(3,)"}, {"pad", "(1,)"}}, {2, 1, 5}},
        0.2, 1.2);
  }
}

TEST(GradNNConv, PoolingGlobalAndChannelLast) {
  for (const char* type : {"max", "avg", "sum"}) {
    CheckPool({{{"pool_type", type}, {"global_pool", "True"}}, {2, 3, 3, 2}});
    CheckPool({{{"pool_type", type}, {"global_pool", "True"}, {"kernel", "(1,)"}}, {2, 2, 5}});
    CheckPool({{{"pool_type", type},
                {"kernel", "(2, 2)"},
                {"stride", "(2, 1)"},
                {"pad", "(0, 1)"},
                {"layout", "NHWC"}},
               {1, 4, 3, 2}});
  }
  CheckPool({{{"pool_type", "lp"}, {"p_value", "2"}, {"global_pool", "True"}}, {1, 2, 2, 3}}, 0.2,
            1.2);
}

TEST(GradNNConv, MaxPoolingSendsATiedWindowsGradientToItsFirstMaximum) {
  // Window [3, 3] (a tie): MXNet gives the whole gradient to the first 3.
  Graph g = test::OneOpGraph("Pooling", {{"kernel", "(2,)"}, {"stride", "(2,)"}});
  GradientGraph gg = BuildGradient(g, {0});
  std::map<std::string, Tensor> feeds = {{"data", test::F32({1, 1, 4}, {3, 3, 1, 5})},
                                         {"n_head_grad", test::F32({1, 1, 2}, {2, 7})}};
  test::ExpectTensorNear(Interpret(gg.graph, feeds)[1], {1, 1, 4}, {2, 0, 0, 7});
}

}  // namespace
}  // namespace kiln
