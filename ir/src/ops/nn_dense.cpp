// nn_dense.cpp - FullyConnected and Embedding.
//
// FullyConnected and its gradient have compute definitions for every floating dtype: sums over
// the features (FullyConnectedCompute), and over the hidden units or the rows
// (FullyConnectedBackwardCompute).
//
// Embedding (MXNet semantics): output[i..., :] = weight[clip(int(data[i...])), :], with data of
// any numeric dtype (indices are truncated toward zero, then clipped to [0, input_dim - 1], as
// MXNet's take in clip mode), weight (input_dim, output_dim) of the `dtype` attribute, and
// output (data..., output_dim) of that dtype. sparse_grad only changes the gradient's storage.
// Gradient: the weight's only (the indices have none), a scatter-add of the output gradient's
// rows into the rows the forward pass read (clipped ids, as MXNet's AddTakeGrad), so rows read
// several times sum their gradients and rows never read get 0. Embedding has a compute
// definition for every dtype; its gradient for floating types and at most 4 ids (a gather whose
// cost grows with the ids: EmbeddingBackwardCompute).
#include <algorithm>
#include <cmath>
#include <functional>

#include "kiln/ir/grad.h"
#include "ops/nn_util.h"
#include "ops/register.h"
#include "ops/tensor_util.h"

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
  // Backward: the weight's second dim is the data's feature count, which fills the data's
  // last dim when that one axis holds every feature (no flatten, or rank-2 data).
  if (features == Shape::kUnknownDim && weight.rank_known() && weight.dim_known(1) &&
      (!a.flatten || data.ndim() == 2)) {
    std::vector<int64_t> dims = data.dims();
    dims.back() = weight[1];
    ctx.SetIn(0, Shape(dims), "data's features are weight's columns");
  }
  const Shape& known_out = ctx.out(0);
  if (known_out.rank_known() && a.flatten && known_out.ndim() == 2 && known_out.dim_known(0)) {
    std::vector<int64_t> dims = data.dims();
    dims[0] = known_out[0];
    ctx.SetIn(0, Shape(dims), "data and output have one batch size");
  }
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
  // y[r, :] = bias + sum_i x[r, i] * W^T[i, :]: with W transposed once, every inner loop is a
  // contiguous multiply-add over the outputs of a row.
  std::vector<AccType<T>> wt(static_cast<size_t>(k * m)), row(static_cast<size_t>(m));
  for (int64_t j = 0; j < m; ++j)
    for (int64_t i = 0; i < k; ++i) wt[size_t(i * m + j)] = AccType<T>(wp[j * k + i]);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < m; ++j) row[size_t(j)] = bp ? AccType<T>(bp[j]) : AccType<T>(0);
    for (int64_t i = 0; i < k; ++i) {
      AccType<T> xv = AccType<T>(xp[r * k + i]);
      const AccType<T>* wrow = wt.data() + i * m;
      for (int64_t j = 0; j < m; ++j) row[size_t(j)] += xv * wrow[j];
    }
    for (int64_t j = 0; j < m; ++j) yp[r * m + j] = static_cast<T>(row[size_t(j)]);
  }
}

// The kernel above as a compute definition, for every floating dtype: a sum over the features,
//   out[r..., j] = bias[j] + sum_i data[r..., i] * weight[j, i],
// with the row's features read through the flattened trailing axes of data when flatten (one
// reduction axis over all features: the weight's rows are read contiguously). float16 and
// bfloat16 are widened to float32 and the sum rounded once at the end; the reference sums in
// double, so float32 results differ from it by the summation order and precision only.
std::vector<TExpr> FullyConnectedCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<FullyConnectedAttrs>();
  DType t = c.out_dtype(0);
  if (!IsFloatingPoint(t)) return {};
  for (int j = 0; j < c.num_in(); ++j)
    if (c.in_dtype(j) != t) return {};
  const std::vector<int64_t>& data = c.in_shape(0).dims();
  const int64_t k = c.in_shape(1)[1];
  std::vector<TExpr> axes = c.Axes();
  const TExpr j = axes.back();
  // The data index of feature i of the current output row.
  auto data_index = [&](const TExpr& i) {
    std::vector<TExpr> idx;
    if (a.flatten) {
      idx.push_back(axes[0]);
      std::vector<TExpr> rest =
          ReshapeIndex(std::vector<int64_t>(data.begin() + 1, data.end()), {k}, {i});
      idx.insert(idx.end(), rest.begin(), rest.end());
    } else {
      idx.assign(axes.begin(), axes.end() - 1);
      idx.push_back(i);
    }
    return idx;
  };
  TExpr y = TReduce(TReduceOp::kSum, {k}, [&](const std::vector<TExpr>& r) {
    return Widen(c.Read(0, data_index(r[0]))) * Widen(c.Read(1, {j, r[0]}));
  });
  if (!a.no_bias) y = Widen(c.Read(2, {j})) + y;
  return {y->dtype == t ? y : TCast(t, y)};
}

struct EmbeddingAttrs {
  int64_t input_dim = 0;
  int64_t output_dim = 0;
  std::string dtype = "float32";  // of weight and output
  bool sparse_grad = false;       // a row-sparse weight gradient (later issue); no effect here
  static void Describe(AttrSchema<EmbeddingAttrs>& s) {
    s.Field("input_dim", &EmbeddingAttrs::input_dim).Required().Min(1);
    s.Field("output_dim", &EmbeddingAttrs::output_dim).Required().Min(1);
    s.Field("dtype", &EmbeddingAttrs::dtype)
        .OneOf({"float32", "float64", "float16", "bfloat16", "uint8", "int8", "int32", "int64"});
    s.Field("sparse_grad", &EmbeddingAttrs::sparse_grad);
  }
};

// data (d...) -> output (d..., output_dim); weight (input_dim, output_dim).
void EmbeddingShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<EmbeddingAttrs>();
  ctx.SetIn(1, Shape{a.input_dim, a.output_dim}, "weight is (input_dim, output_dim)");
  Shape data = ctx.in(0);
  const Shape& out = ctx.out(0);
  if (out.rank_known()) {
    if (out.ndim() < 1) ctx.Fail(StrCat("output ", out.ToString(), " is a scalar"));
    std::vector<int64_t> dims(out.dims().begin(), out.dims().end() - 1);
    if (!data.Merge(Shape(dims)))
      ctx.Fail(StrCat("data ", data.ToString(), " does not match output ", out.ToString()));
    ctx.SetIn(0, data);
  }
  if (!data.rank_known()) return;
  std::vector<int64_t> dims = data.dims();
  dims.push_back(a.output_dim);
  ctx.SetOut(0, Shape(dims), "output is (data..., output_dim)");
}

void EmbeddingType(TypeInferCtx& ctx) {
  const auto& a = ctx.attrs<EmbeddingAttrs>();
  DType t = *ParseDType(a.dtype);
  RequireNumeric(ctx, ctx.in(0), "data");
  ctx.SetIn(1, t, "weight has the dtype attribute's type");
  ctx.SetOut(0, t, "output has the dtype attribute's type");
}

template <class T>
void EmbeddingKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<EmbeddingAttrs>();
  std::vector<double> ids = ReadDoubles(ctx.in[0]);
  const T* wp = ctx.in[1].data<T>();
  T* yp = ctx.out[0].data<T>();
  int64_t d = a.output_dim;
  for (size_t i = 0; i < ids.size(); ++i) {
    double id = std::isnan(ids[i]) ? 0.0 : std::trunc(ids[i]);
    int64_t row = id <= 0 ? 0 : id >= double(a.input_dim - 1) ? a.input_dim - 1 : int64_t(id);
    for (int64_t j = 0; j < d; ++j) yp[int64_t(i) * d + j] = wp[row * d + j];
  }
}

// The weight row that the id data[at] chooses, as EmbeddingKernel picks it: the id truncated
// toward zero and clamped to [0, hi], NaN choosing row 0 (and +-inf the last or the first).
// Floats are compared before converting, in float64 when hi has no exact float32 value (above
// 2^24), so that a float id between hi's float32 neighbours is clamped as the reference's double
// comparison clamps it; integers (int64 read through double, as Tensor::At reads them) clamp.
TExpr EmbeddingRow(const ComputeCtx& c, int input, const std::vector<TExpr>& at, int64_t hi) {
  TExpr id = Widen(c.Read(input, at));
  if (!IsComputeFloat(id->dtype)) return ClampIndex(IndexValue(c.Read(input, at)), 0, hi);
  if (id->dtype == DType::kFloat32 && double(float(hi)) != double(hi))
    id = TCast(DType::kFloat64, id);
  TExpr low = TBinary(TBinaryOp::kOr, IsNan(id), TBinary(TBinaryOp::kLE, id, TConst(0, id->dtype)));
  TExpr high = TBinary(TBinaryOp::kGE, id, TConst(double(hi), id->dtype));
  return TSelect(low, TIndex(0), TSelect(high, TIndex(hi), TCast(DType::kInt64, id)));
}

// The kernel above as a compute definition (every dtype: it only moves data).
std::vector<TExpr> EmbeddingCompute(const ComputeCtx& c) {
  const int64_t hi = c.attrs<EmbeddingAttrs>().input_dim - 1;
  if (hi < 0) return {};
  std::vector<TExpr> axes = c.Axes();
  TExpr row = EmbeddingRow(c, 0, std::vector<TExpr>(axes.begin(), axes.end() - 1), hi);
  return {c.Read(1, {row, axes.back()})};
}

// Gradients of FullyConnected, with rows and features as in the forward kernel:
//   d data[r, i] = sum_j dy[r, j] * w[j, i],  d w[j, i] = sum_r dy[r, j] * x[r, i],
//   d bias[j] = sum_r dy[r, j].
template <class T>
void FullyConnectedBackwardKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<FullyConnectedAttrs>();
  const T* dy = ctx.in[0].data<T>();
  const T* x = ctx.in[1].data<T>();
  const T* w = ctx.in[2].data<T>();
  int64_t k = ctx.in[2].dim(1), m = a.num_hidden;
  int64_t rows = ctx.in[0].size() / m;
  T* dx = ctx.out[0].data<T>();
  T* dw = ctx.out[1].data<T>();
  // Row by row, so that every inner loop walks memory contiguously.
  std::vector<AccType<T>> row(static_cast<size_t>(k));
  std::vector<AccType<T>> dw_acc(static_cast<size_t>(m * k), AccType<T>(0));
  for (int64_t r = 0; r < rows; ++r) {
    std::fill(row.begin(), row.end(), AccType<T>(0));
    for (int64_t j = 0; j < m; ++j) {
      AccType<T> g = AccType<T>(dy[r * m + j]);
      for (int64_t i = 0; i < k; ++i) {
        row[size_t(i)] += g * AccType<T>(w[j * k + i]);
        dw_acc[size_t(j * k + i)] += g * AccType<T>(x[r * k + i]);
      }
    }
    for (int64_t i = 0; i < k; ++i) dx[r * k + i] = static_cast<T>(row[size_t(i)]);
  }
  for (int64_t i = 0; i < m * k; ++i) dw[i] = static_cast<T>(dw_acc[size_t(i)]);
  if (a.no_bias) return;
  T* db = ctx.out[2].data<T>();
  for (int64_t j = 0; j < m; ++j) {
    AccType<T> acc = 0;
    for (int64_t r = 0; r < rows; ++r) acc += AccType<T>(dy[r * m + j]);
    db[j] = static_cast<T>(acc);
  }
}

// Outputs have the shapes of data, weight and bias.
void FullyConnectedBackwardShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<FullyConnectedAttrs>();
  ctx.SetOut(0, ctx.in(1));
  ctx.SetIn(1, ctx.out(0));
  ctx.SetOut(1, ctx.in(2));
  ctx.SetIn(2, ctx.out(1));
  if (!a.no_bias) ctx.SetOut(2, Shape{a.num_hidden});
}

// The backward kernel above as a compute definition, every floating dtype (float16 and
// bfloat16 summed in float32, rounded once), every output: with rows r (dy's leading axes: the
// batch with flatten, else every axis of data but the last) and features i (data's flattened
// trailing axes with flatten, else its last),
//   d data[r, i]   = sum_j dy[r, j] * w[j, i]       (data's own axes: flatten reads w at i's
//                                                     flat offset)
//   d weight[j, i] = sum_r dy[r, j] * data[r, i]    (a sum over every row axis; none for 1-D
//                                                     data without flatten: one product)
//   d bias[j]      = sum_r dy[r, j]
std::vector<TExpr> FullyConnectedBackwardCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<FullyConnectedAttrs>();
  DType t = c.out_dtype(0);
  if (!IsFloatingPoint(t)) return {};
  for (int j = 0; j < c.num_in(); ++j)
    if (c.in_dtype(j) != t) return {};
  const std::vector<int64_t>& data = c.in_shape(1).dims();
  const std::vector<int64_t>& dy = c.in_shape(0).dims();
  const int64_t k = c.in_shape(2)[1], m = a.num_hidden;
  const std::vector<int64_t> rows(dy.begin(), dy.end() - 1);
  const std::vector<int64_t> features(data.begin() + (a.flatten ? 1 : int64_t(data.size()) - 1),
                                      data.end());
  auto round = [&](TExpr y) { return y->dtype == t ? y : TCast(t, y); };
  // The sum of body(r) over the rows; body({}) itself when there are no row axes.
  auto over_rows = [&](const std::function<TExpr(const std::vector<TExpr>&)>& body) {
    return rows.empty() ? body({}) : TReduce(TReduceOp::kSum, rows, body);
  };

  // d data, over data's axes: the row axes lead, the feature axes follow.
  std::vector<TExpr> axes = c.Axes();
  const size_t nrow = rows.size();
  std::vector<TExpr> row(axes.begin(), axes.begin() + int64_t(nrow));
  std::vector<TExpr> feature_axes(axes.begin() + int64_t(nrow), axes.end());
  TExpr feature = ReshapeIndex({k}, features, feature_axes)[0];
  TExpr dx = TReduce(TReduceOp::kSum, {m}, [&](const std::vector<TExpr>& r) {
    std::vector<TExpr> dyi = row;
    dyi.push_back(r[0]);
    return Widen(c.Read(0, dyi)) * Widen(c.Read(2, {r[0], feature}));
  });

  // d weight (num_hidden, k): output axes (j, i); data read at feature i unflattened.
  TExpr j = TAxis(0);
  std::vector<TExpr> feature_index = ReshapeIndex(features, {k}, {TAxis(1)});
  TExpr dw = over_rows([&](const std::vector<TExpr>& r) {
    std::vector<TExpr> dyi = r, xi = r;
    dyi.push_back(j);
    xi.insert(xi.end(), feature_index.begin(), feature_index.end());
    return Widen(c.Read(0, dyi)) * Widen(c.Read(1, xi));
  });

  std::vector<TExpr> out = {round(dx), round(dw)};
  if (!a.no_bias) {
    out.push_back(round(over_rows([&](const std::vector<TExpr>& r) {
      std::vector<TExpr> dyi = r;
      dyi.push_back(TAxis(0));
      return Widen(c.Read(0, dyi));
    })));
  }
  return out;
}

// d weight[row, :] = sum of d output[i..., :] over the positions i whose clipped id is row.
template <class T>
void EmbeddingBackwardKernel(const KernelCtx& ctx) {
  const auto& a = ctx.Attr<EmbeddingAttrs>();
  std::vector<double> ids = ReadDoubles(ctx.in[1]);
  const T* dy = ctx.in[0].data<T>();
  int64_t d = a.output_dim;
  std::vector<AccType<T>> acc(size_t(a.input_dim * d), AccType<T>(0));
  for (size_t i = 0; i < ids.size(); ++i) {
    double id = std::isnan(ids[i]) ? 0.0 : std::trunc(ids[i]);
    int64_t row = id <= 0 ? 0 : id >= double(a.input_dim - 1) ? a.input_dim - 1 : int64_t(id);
    for (int64_t j = 0; j < d; ++j) acc[size_t(row * d + j)] += AccType<T>(dy[int64_t(i) * d + j]);
  }
  T* dw = ctx.out[0].data<T>();
  for (size_t k = 0; k < acc.size(); ++k) dw[k] = static_cast<T>(acc[k]);
}

// The backward kernel above as a gather, floating types: each weight row sums the output
// gradient's rows whose id chose it (EmbeddingRow, the forward's rule),
//   d weight[r, j] = 0 + sum over positions k of data (row(data[k]) == r ? dy[k..., j] : 0)
// in the ids' order, in float32 (float16, bfloat16) or the type itself, where the reference sums
// in double: results differ by rounding. A term the reference does not add (another row's) is
// selected away, so a NaN or infinity in dy reaches only its own row.
// Each element of the weight costs one term per id, where the reference's scatter costs one
// addition per element of dy plus a pass over the weight (to clear and convert): so the
// definition is given only for at most kMaxEmbeddingBackwardIds ids, and spelled out as a sum of
// that many selects rather than as a TReduce. Measured (float32, 1 thread, JIT kernel against
// the reference call, one-off timings, decisions.md D51): 4 ids were 1.6-12x faster than the
// reference for tables of 100, 1000 and 30000 rows and 1 to 128 columns, but for 3 columns (up
// to 1.5x slower, under 50 us); from 5 or 6 ids, several widths under 32 columns were up to 15x
// slower (1000 x 8, 5 ids: 38 vs 3.1 us). A TReduce (_backward_take's form, layout.cpp) was
// often 3-12x slower whenever the columns were not a multiple of 16, even with 1 id (300 x 33:
// 14 vs 3.8 us).
constexpr int64_t kMaxEmbeddingBackwardIds = 4;

std::vector<TExpr> EmbeddingBackwardCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<EmbeddingAttrs>();
  DType t = c.out_dtype(0);
  if (!IsFloatingPoint(t) || c.in_dtype(0) != t) return {};
  const std::vector<int64_t>& data = c.in_shape(1).dims();
  const int64_t ids = NumElements(data);
  if (ids > kMaxEmbeddingBackwardIds) return {};
  // Shape inference ties dy to data, but a caller may bypass it: define the consistent case.
  std::vector<int64_t> dy = data;
  dy.push_back(a.output_dim);
  if (c.in_shape(0).dims() != dy) return {};
  const DType st = IsComputeFloat(t) ? t : DType::kFloat32;
  // The sum starts from 0, as the reference's does (a lone -0 gives +0).
  TExpr sum = TConst(0, st);
  const std::vector<int64_t> strides = Strides(data);
  for (int64_t k = 0; k < ids; ++k) {
    std::vector<TExpr> at;  // position k of data, row-major
    for (size_t d = 0; d < data.size(); ++d) at.push_back(TIndex(k / strides[d] % data[d]));
    std::vector<TExpr> g = at;
    g.push_back(TAxis(1));
    TExpr v = Widen(c.Read(0, g));
    if (v->dtype != st) v = TCast(st, v);
    TExpr row = EmbeddingRow(c, 1, at, a.input_dim - 1);
    sum = sum + TSelect(TBinary(TBinaryOp::kEQ, row, TAxis(0)), v, TConst(0, st));
  }
  return {sum->dtype == t ? sum : TCast(t, sum)};
}

// ograd is (data..., output_dim); the weight gradient is (input_dim, output_dim).
void EmbeddingBackwardShape(ShapeInferCtx& ctx) {
  const auto& a = ctx.attrs<EmbeddingAttrs>();
  ctx.SetOut(0, Shape{a.input_dim, a.output_dim}, "weight is (input_dim, output_dim)");
  const Shape& data = ctx.in(1);
  if (!data.rank_known()) return;
  std::vector<int64_t> dims = data.dims();
  dims.push_back(a.output_dim);
  ctx.SetIn(0, Shape(dims), "ograd is (data..., output_dim)");
}

void EmbeddingBackwardType(TypeInferCtx& ctx) {
  const auto& a = ctx.attrs<EmbeddingAttrs>();
  DType t = *ParseDType(a.dtype);
  RequireFloat(ctx, t, "the weight (dtype attribute)");
  RequireNumeric(ctx, ctx.in(1), "data");
  ctx.SetIn(0, t, "ograd has the dtype attribute's type");
  ctx.SetOut(0, t, "the weight gradient has the dtype attribute's type");
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
      .ChannelScalable([](const Attrs& a, int out_rank) -> std::optional<ChannelScaling> {
        FullyConnectedAttrs with = a.Get<FullyConnectedAttrs>();
        ChannelScaling c{.weight_input = 1,
                         .weight_axis = 0,
                         .bias_input = with.no_bias ? -1 : 2,
                         .out_axis = out_rank - 1};
        with.no_bias = false;
        c.with_bias = Attrs::Make(with);
        return c;
      })
      .Pattern(FusionPattern::kOutElemwiseFusable)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, FullyConnectedKernel<T>(ctx));
      })
      .Compute(FullyConnectedCompute)
      .Gradient([](GradCtx& g) -> GradList {
        auto d = g.EmitWithAttrs("_backward_FullyConnected", {g.ograd(0), g.input(0), g.input(1)});
        GradList grads = {d[0], d[1]};
        if (d.size() > 2) grads.push_back(d[2]);
        return grads;
      });

  r.Register("_backward_FullyConnected")
      .Describe(
          "gradients of FullyConnected: (d data, d weight[, d bias]) from (d output, data, "
          "weight)")
      .SetAttrs<FullyConnectedAttrs>()
      .Inputs({"ograd", "data", "weight"})
      .Outputs([](const Attrs& a) {
        return a.Get<FullyConnectedAttrs>().no_bias
                   ? std::vector<std::string>{"data_grad", "weight_grad"}
                   : std::vector<std::string>{"data_grad", "weight_grad", "bias_grad"};
      })
      .InferShape(FullyConnectedBackwardShape)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOutElemwiseFusable)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, FullyConnectedBackwardKernel<T>(ctx));
      })
      .Compute(FullyConnectedBackwardCompute);

  r.Register("Embedding")
      .Describe("output[i..., :] = weight[clip(data[i...], 0, input_dim - 1), :]")
      .SetAttrs<EmbeddingAttrs>()
      .Inputs({"data", "weight"})
      .InferShape(EmbeddingShape)
      .InferType(EmbeddingType)
      // A gather: each output row reads a row chosen at run time. Opaque.
      .Pattern(FusionPattern::kOpaque)
      .Reference(
          [](KernelCtx& ctx) { KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, EmbeddingKernel<T>(ctx)); })
      .Compute(EmbeddingCompute)
      .Gradient([](GradCtx& g) -> GradList {
        if (!g.wants(1)) return {std::nullopt, std::nullopt};
        return {std::nullopt, g.EmitWithAttrs("_backward_Embedding", {g.ograd(0), g.input(0)})[0]};
      });

  r.Register("_backward_Embedding")
      .Describe("gradient of Embedding's weight: scatter-add of d output's rows by index")
      .SetAttrs<EmbeddingAttrs>()
      .Inputs({"ograd", "data"})
      .Outputs({"weight_grad"})
      .InferShape(EmbeddingBackwardShape)
      .InferType(EmbeddingBackwardType)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, EmbeddingBackwardKernel<T>(ctx));
      })
      .Compute(EmbeddingBackwardCompute);
}

}  // namespace kiln::ops
