// nn_activation_compute.cpp - compute definitions (kiln/ir/compute.h) of Activation,
// LeakyReLU, softmax and log_softmax and their gradients: see nn_activation.cpp's header.
#include <cmath>
#include <optional>

#include "kiln/ir/grad.h"
#include "ops/nn_util.h"
#include "ops/register.h"

#include "ops/nn_activation.h"

namespace kiln::ops {

// The compute definition (kiln/ir/compute.h), term for term the reference's on float32 and
// float64: relu gives 0 for NaN (x > 0 is false), softrelu evaluates both branches and selects.
std::vector<TExpr> ActivationCompute(const ComputeCtx& c) {
  if (!IsComputeFloat(c.out_dtype(0))) return {};
  TExpr x = c.In(0);
  DType d = x->dtype;
  TExpr zero = TConst(0, d), one = TConst(1, d);
  switch (c.attrs<ActivationAttrs>().act_type) {
    case ActType::kRelu:
      return {TSelect(TBinary(TBinaryOp::kGT, x, zero), x, zero)};
    case ActType::kSigmoid:
      return {TCall(TMath::kSigmoid, {x})};
    case ActType::kTanh:
      return {TCall(TMath::kTanh, {x})};
    case ActType::kSoftrelu: {
      TExpr pos = x + TCall(TMath::kLog1p, {TCall(TMath::kExp, {zero - x})});
      TExpr neg = TCall(TMath::kLog1p, {TCall(TMath::kExp, {x})});
      return {TSelect(TBinary(TBinaryOp::kGT, x, zero), pos, neg)};
    }
    case ActType::kSoftsign:
      return {x / (one + TCall(TMath::kAbs, {x}))};
  }
  return {};
}

// ----- Compute definitions of the backward ops, LeakyReLU and softmax -----

// d data = d out * f'(y), the factor first computed alone as the reference does.
std::vector<TExpr> ActivationBackwardCompute(const ComputeCtx& c) {
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t) || c.in_dtype(0) != t || c.in_dtype(1) != t) return {};
  TExpr dy = c.In(0), y = c.In(1), zero = TConst(0, t), one = TConst(1, t);
  TExpr d;
  switch (c.attrs<ActivationAttrs>().act_type) {
    case ActType::kRelu:
      d = TSelect(TBinary(TBinaryOp::kGT, y, zero), one, zero);
      break;
    case ActType::kSigmoid:
      d = y * (one - y);
      break;
    case ActType::kTanh:
      d = one - y * y;
      break;
    case ActType::kSoftrelu:
      d = zero - TCall(TMath::kExpm1, {zero - y});
      break;
    case ActType::kSoftsign: {
      TExpr a = one - TCall(TMath::kAbs, {y});
      d = a * a;
      break;
    }
  }
  return {dy * d};
}

// prelu's gamma for the current element of a data-shaped output.
TExpr PreluGamma(const ComputeCtx& c, int gamma_input) {
  const Shape& g = c.in_shape(gamma_input);
  int rank = c.in_shape(0).ndim();
  if (g[0] == 1 || rank == 0) return c.Read(gamma_input, {TIndex(0)});
  return c.Read(gamma_input, {TAxis(PreluAxis(rank))});
}

// rrelu (outputs output, mask), in double as the reference: the slope m is lower + (upper -
// lower) u with u uniform in [0, 1) from the node's draw at the element's flat index when
// training (kiln/ir/random.h), the mean slope otherwise; output = x > 0 ? x : m x.
std::vector<TExpr> RreluCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<LeakyReLUAttrs>();
  const DType t = c.out_dtype(0), f64 = DType::kFloat64;
  if (c.out_dtype(1) != t) return {};
  TExpr m = TConst((a.lower_bound + a.upper_bound) / 2, f64);
  if (c.is_train()) {
    TExpr u = TCast(f64, c.RandomBits(TFlatIndex(c.out_shape(0)))) * TConst(0x1p-32, f64);
    m = TConst(a.lower_bound, f64) + TConst(a.upper_bound - a.lower_bound, f64) * u;
  }
  TExpr x = TCast(f64, c.In(0));
  TExpr y = TSelect(TBinary(TBinaryOp::kGT, x, TConst(0, f64)), x, m * x);
  return {TCast(t, y), TCast(t, m)};
}

std::vector<TExpr> LeakyReLUCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<LeakyReLUAttrs>();
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t)) return {};
  for (int j = 0; j < c.num_in(); ++j)
    if (c.in_dtype(j) != t) return {};
  if (a.act_type == LeakyType::kRrelu) return RreluCompute(c);
  TExpr x = c.In(0), zero = TConst(0, t), one = TConst(1, t);
  TExpr pos = TBinary(TBinaryOp::kGT, x, zero);
  TExpr slope = TConst(a.slope, t);
  switch (a.act_type) {
    case LeakyType::kLeaky:
      return {TSelect(pos, x, slope * x)};
    case LeakyType::kElu:
      return {TSelect(pos, x, slope * TCall(TMath::kExpm1, {x}))};
    case LeakyType::kSelu:
      return {TConst(kSeluLambda, t) *
              TSelect(pos, x, TConst(kSeluAlpha, t) * TCall(TMath::kExpm1, {x}))};
    case LeakyType::kGelu:
      return {TConst(0.5, t) * x * (one + TCall(TMath::kErf, {x / TConst(std::sqrt(2.0), t)}))};
    case LeakyType::kPrelu:
      return {TSelect(pos, x, PreluGamma(c, 1) * x)};
    case LeakyType::kRrelu:
      break;
  }
  return {};
}

// Inputs (ograd, data[, gamma | mask]); outputs data_grad[, gamma_grad].
std::vector<TExpr> LeakyReLUBackwardCompute(const ComputeCtx& c) {
  const auto& a = c.attrs<LeakyReLUAttrs>();
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t)) return {};
  for (int j = 0; j < c.num_in(); ++j)
    if (c.in_dtype(j) != t) return {};
  TExpr dy = c.In(0), x = c.In(1), zero = TConst(0, t), one = TConst(1, t);
  TExpr pos = TBinary(TBinaryOp::kGT, x, zero);
  TExpr slope = TConst(a.slope, t);
  TExpr d;
  switch (a.act_type) {
    case LeakyType::kLeaky:
      d = TSelect(pos, one, slope);
      break;
    case LeakyType::kPrelu:
      d = TSelect(pos, one, PreluGamma(c, 2));
      break;
    case LeakyType::kRrelu:
      d = TSelect(pos, one, c.In(2));
      break;
    case LeakyType::kElu:
      d = TSelect(pos, one, slope * TCall(TMath::kExp, {x}));
      break;
    case LeakyType::kSelu:
      d = TConst(kSeluLambda, t) *
          TSelect(pos, one, TConst(kSeluAlpha, t) * TCall(TMath::kExp, {x}));
      break;
    case LeakyType::kGelu: {
      constexpr double kInvSqrt2Pi = 0.39894228040143267794;
      d = TConst(0.5, t) * (one + TCall(TMath::kErf, {x / TConst(std::sqrt(2.0), t)})) +
          x * TConst(kInvSqrt2Pi, t) * TCall(TMath::kExp, {TConst(-0.5, t) * x * x});
      break;
    }
  }
  if (a.act_type != LeakyType::kPrelu) return {dy * d};
  // d gamma[c] = sum over x <= 0 of dy * x: over every element for one gamma, else over every
  // axis but the channel's.
  const Shape& data = c.in_shape(1);
  int rank = data.ndim();
  bool single = c.in_shape(2)[0] == 1 || rank == 0;
  int ch = single ? -1 : PreluAxis(rank);
  std::vector<int64_t> extents;
  for (int k = 0; k < rank; ++k)
    if (k != ch) extents.push_back(data[k]);
  TExpr dgamma = TReduce(TReduceOp::kSum, extents, [&](const std::vector<TExpr>& r) {
    std::vector<TExpr> idx;
    size_t j = 0;
    for (int k = 0; k < rank; ++k) idx.push_back(k == ch ? TAxis(0) : r[j++]);
    TExpr xv = c.Read(1, idx);
    return TSelect(TBinary(TBinaryOp::kLE, xv, zero), c.Read(0, idx) * xv, zero);
  });
  return {dy * d, dgamma};
}

// The softmax axis of a definition's output 0, and the index of its current row at position r.
struct SoftmaxRow {
  int axis = 0;
  int64_t m = 0;
  std::vector<TExpr> At(TExpr r) const {
    std::vector<TExpr> idx;
    for (int d = 0; d < rank; ++d) idx.push_back(d == axis ? r : TAxis(d));
    return idx;
  }
  int rank = 0;
};

SoftmaxRow RowOf(const SoftmaxAttrs& a, const Shape& s) {
  SoftmaxRow row;
  row.rank = s.ndim();
  row.axis = int(a.axis < 0 ? a.axis + s.ndim() : a.axis);
  row.m = s[row.axis];
  return row;
}

// With use_length, whether position `j` is inside the current row's length (input `len`).
TExpr InsideLength(const ComputeCtx& c, const SoftmaxRow& row, int len, TExpr j) {
  std::vector<TExpr> idx;
  for (int d = 0; d < row.rank; ++d)
    if (d != row.axis) idx.push_back(TAxis(d));
  TExpr l = c.Read(len, idx);
  if (l->dtype != DType::kInt64) l = TCast(DType::kInt64, l);
  return TBinary(TBinaryOp::kLT, j, l);
}

// Data in any float type computes in the output's type (float32, float64).
std::vector<TExpr> SoftmaxCompute(const ComputeCtx& c, bool log) {
  const auto& a = c.attrs<SoftmaxAttrs>();
  DType t = c.out_dtype(0);
  if (!IsComputeFloat(t) || !IsComputeFloat(c.in_dtype(0))) return {};
  if (a.use_length && !IsComputeFloat(c.in_dtype(1)) && c.in_dtype(1) != DType::kInt32 &&
      c.in_dtype(1) != DType::kInt64)
    return {};
  SoftmaxRow row = RowOf(a, c.in_shape(0));
  TExpr temp = TConst(a.temperature.value_or(1.0), t);
  auto x = [&](TExpr j) {
    TExpr v = c.Read(0, row.At(j));
    if (v->dtype != t) v = TCast(t, v);
    return a.temperature && *a.temperature != 1.0 ? v / temp : v;
  };
  auto inside = [&](TExpr j) -> TExpr {
    return a.use_length ? InsideLength(c, row, 1, j) : nullptr;
  };
  auto mask = [&](TExpr j, TExpr v, TExpr outside) {
    TExpr in = inside(j);
    return in ? TSelect(in, v, outside) : v;
  };
  // The reference's running max skips NaN (std::max(mx, v)); a NaN still makes the sum NaN.
  TExpr mx = TReduce(TReduceOp::kMaxNum, {row.m}, [&](const std::vector<TExpr>& r) {
    return mask(r[0], x(r[0]), TConst(-INFINITY, t));
  });
  TExpr sum = TReduce(TReduceOp::kSum, {row.m}, [&](const std::vector<TExpr>& r) {
    return mask(r[0], TCall(TMath::kExp, {x(r[0]) - mx}), TConst(0, t));
  });
  TExpr j = TAxis(row.axis);
  TExpr v = log ? x(j) - mx - TCall(TMath::kLog, {sum}) : TCall(TMath::kExp, {x(j) - mx}) / sum;
  return {mask(j, v, TConst(0, t))};
}

// Inputs (ograd, output[, length][, data]); the reference's formulas in the ograd's type, the
// result cast to the data's.
std::vector<TExpr> SoftmaxBackwardCompute(const ComputeCtx& c, bool log) {
  const auto& a = c.attrs<SoftmaxAttrs>();
  DType to = c.in_dtype(0), ti = c.out_dtype(0);
  if (!IsComputeFloat(to) || !IsComputeFloat(ti) || c.in_dtype(1) != to) return {};
  if (a.use_length && !IsComputeFloat(c.in_dtype(2)) && c.in_dtype(2) != DType::kInt32 &&
      c.in_dtype(2) != DType::kInt64)
    return {};
  SoftmaxRow row = RowOf(a, c.in_shape(0));
  TExpr temp = TConst(a.temperature.value_or(1.0), to), zero = TConst(0, to);
  auto mask = [&](TExpr j, TExpr v) {
    return a.use_length ? TSelect(InsideLength(c, row, 2, j), v, zero) : v;
  };
  TExpr sum = TReduce(TReduceOp::kSum, {row.m}, [&](const std::vector<TExpr>& r) {
    TExpr dy = c.Read(0, row.At(r[0]));
    return mask(r[0], log ? dy : dy * c.Read(1, row.At(r[0])));
  });
  TExpr dy = c.In(0), y = c.In(1);
  TExpr g = log ? (dy - TCall(TMath::kExp, {y}) * sum) / temp : (dy - sum) * y / temp;
  g = mask(TAxis(row.axis), g);
  return {ti == to ? g : TCast(ti, g)};
}

}  // namespace kiln::ops
