// nn_dense.cpp - FullyConnected and Embedding.
#include "ops/op_util.h"
#include "ops/register.h"

namespace kiln::ops {
namespace {

struct FullyConnectedAttrs {
  int64_t num_hidden = 0;
  bool no_bias = false;
  bool flatten = true;
  static void Describe(AttrSchema<FullyConnectedAttrs>& s) {
    s.Field("num_hidden", &FullyConnectedAttrs::num_hidden).Required().Min(1);
    s.Field("no_bias", &FullyConnectedAttrs::no_bias);
    s.Field("flatten", &FullyConnectedAttrs::flatten);
  }
};

// data (N, d1, ..., dk): with flatten, rows are N and features d1*...*dk; without, rows are
// every leading axis and features dk. weight is (num_hidden, features), bias (num_hidden).
void FullyConnectedShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<FullyConnectedAttrs>();
  const Shape& data = ctx.in(0);
  const Shape& weight = ctx.in(1);
  if (!a.no_bias) ctx.SetIn(2, Shape{a.num_hidden}, "bias has num_hidden elements");
  if (weight.rank_known()) {
    RequireRank(ctx, weight, 2, "weight");
    if (weight.dim_known(0) && weight[0] != a.num_hidden)
      ctx.Fail(StrCat("weight ", weight.ToString(), " has ", weight[0], " rows but num_hidden is ",
                      a.num_hidden));
  }
  if (!data.rank_known()) {
    ctx.SetIn(1, Shape{a.num_hidden, Shape::kUnknownDim});
    return;
  }
  if (data.ndim() < 1) ctx.Fail("data is a scalar; FullyConnected needs rank >= 1");
  int64_t features = Shape::kUnknownDim;
  Shape out;
  if (a.flatten) {
    Shape rest(std::vector<int64_t>(data.dims().begin() + 1, data.dims().end()));
    features = rest.NumElements();  // -1 while unknown
    out = Shape{data[0], a.num_hidden};
  } else {
    features = data[data.ndim() - 1];
    std::vector<int64_t> dims = data.dims();
    dims.back() = a.num_hidden;
    out = Shape(dims);
  }
  if (features != Shape::kUnknownDim && weight.rank_known() && weight.dim_known(1) &&
      weight[1] != features)
    ctx.Fail(StrCat("input ", data.ToString(), " has ", features, " features but weight ",
                    weight.ToString(), " expects ", weight[1]));
  ctx.SetIn(1, Shape{a.num_hidden, features});
  ctx.SetOut(0, out);
}

template <class T>
void FullyConnectedKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<FullyConnectedAttrs>();
  const Tensor& x = ctx.in[0];
  const Tensor& w = ctx.in[1];
  int64_t k = w.dim(1), m = a.num_hidden;
  int64_t rows = ctx.out[0].size() / m;  // num_hidden >= 1
  const T* xp = x.data<T>();
  const T* wp = w.data<T>();
  const T* bp = a.no_bias ? nullptr : ctx.in[2].data<T>();
  T* yp = ctx.out[0].data<T>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < m; ++j) {
      AccType<T> acc = bp ? AccType<T>(bp[j]) : AccType<T>(0);
      for (int64_t i = 0; i < k; ++i) acc += AccType<T>(xp[r * k + i]) * AccType<T>(wp[j * k + i]);
      yp[r * m + j] = static_cast<T>(acc);
    }
}

}  // namespace

void RegisterDenseOps(OpRegistry& r) {
  r.Register("FullyConnected")
      .Describe(
          "output = data * weight^T + bias, over the flattened trailing axes of data "
          "(flatten) or its last axis")
      .SetAttrs<FullyConnectedAttrs>()
      .Inputs([](const Attrs& a) {
        return a.Get<FullyConnectedAttrs>().no_bias
                   ? std::vector<std::string>{"data", "weight"}
                   : std::vector<std::string>{"data", "weight", "bias"};
      })
      .InferShape(FullyConnectedShape)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOutElemwiseFusable)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, FullyConnectedKernel<T>(ctx));
      });
}

}  // namespace kiln::ops
