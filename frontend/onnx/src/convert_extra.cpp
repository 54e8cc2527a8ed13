// convert_extra.cpp - ONNX operators beyond issue 7's list that compose cheaply from kiln ops:
// trigonometric functions, Round, IsNaN, IsInf, ThresholdedRelu, Celu, Shrink, Mod,
// DepthToSpace, SpaceToDepth, Hardmax, MeanVarianceNormalization, Trilu, OneHot, Range, EyeLike,
// GatherElements, CumSum, NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
//
// Each follows ONNX's definition (its function body where it has one). Masks and index tables
// that depend only on shapes are constants built here, so Trilu, OneHot's table and EyeLike cost
// nothing at run time beyond one elementwise op.
#include <cmath>

#include "importer.h"

namespace kiln::onnx_import {
namespace {

Converter Unary(const char* op) {
  return [op](Importer& im) { im.SetOut(0, im.Emit(op, {im.In(0)})); };
}

// A scalar constant of v's dtype.
V Scalar(Importer& im, V like, double value) {
  return im.ScalarConst(value, im.Type(like));
}

void IsNaN(Importer& im) {
  V x = im.In(0);
  im.SetOut(0, im.Cast(im.Emit("broadcast_not_equal", {x, x}), DType::kBool));
}

void IsInf(Importer& im) {
  V x = im.In(0);
  bool pos = im.AttrInt("detect_positive", 1) != 0, neg = im.AttrInt("detect_negative", 1) != 0;
  std::optional<V> r;
  if (pos) r = im.Emit("broadcast_equal", {x, Scalar(im, x, INFINITY)});
  if (neg) {
    V n = im.Emit("broadcast_equal", {x, Scalar(im, x, -INFINITY)});
    r = r ? im.Emit("broadcast_logical_or", {*r, n}) : n;
  }
  if (!r) r = im.Emit("broadcast_equal", {x, Scalar(im, x, NAN)});  // all false
  im.SetOut(0, im.Cast(*r, DType::kBool));
}

void ThresholdedRelu(Importer& im) {
  V x = im.In(0);
  V above = im.Emit("broadcast_greater", {x, Scalar(im, x, im.AttrFloat("alpha", 1.f))});
  im.SetOut(0, im.Emit("elemwise_mul", {x, above}));
}

void Celu(Importer& im) {
  V x = im.In(0);
  double alpha = im.AttrFloat("alpha", 1.f);
  V e = im.ScalarOp("_minus_scalar", im.Emit("exp", {im.ScalarOp("_div_scalar", x, alpha)}), 1);
  V neg = im.ScalarOp("_minimum_scalar", im.ScalarOp("_mul_scalar", e, alpha), 0);
  im.SetOut(0, im.Emit("elemwise_add", {im.Emit("relu", {x}), neg}));
}

void Shrink(Importer& im) {
  V x = im.In(0);
  double bias = im.AttrFloat("bias", 0.f), lambd = im.AttrFloat("lambd", 0.5f);
  V lo = im.Emit("broadcast_lesser", {x, Scalar(im, x, -lambd)});
  V hi = im.Emit("broadcast_greater", {x, Scalar(im, x, lambd)});
  V a = im.Emit("elemwise_mul", {lo, im.ScalarOp("_plus_scalar", x, bias)});
  V b = im.Emit("elemwise_mul", {hi, im.ScalarOp("_minus_scalar", x, bias)});
  im.SetOut(0, im.Emit("elemwise_add", {a, b}));
}

// fmod = 1: a - b trunc(a / b) (C's fmod, the dividend's sign). fmod = 0 (integers): the
// remainder takes the divisor's sign (Python's %): the truncated remainder plus b where the
// signs differ.
void Mod(Importer& im) {
  V a = im.In(0), b = im.In(1);
  bool fmod = im.AttrInt("fmod", 0) != 0;
  DType t = im.Type(a);
  if (IsFloatingPoint(t) && !fmod) im.Fail("fmod must be 1 for floating-point operands");
  V q = im.Emit("broadcast_div", {a, b});
  if (IsFloatingPoint(t)) q = im.Emit("trunc", {q});
  V r = im.Emit("broadcast_sub", {a, im.Emit("broadcast_mul", {b, q})});
  if (!fmod) {
    V zero = Scalar(im, a, 0);
    V differ = im.Emit("broadcast_logical_xor", {im.Emit("broadcast_lesser", {r, zero}),
                                                 im.Emit("broadcast_lesser", {b, zero})});
    V fix = im.Emit("broadcast_logical_and", {differ, im.Emit("broadcast_not_equal", {r, zero})});
    r = im.Emit("broadcast_add", {r, im.Emit("broadcast_mul", {fix, b})});
  }
  im.SetOut(0, r);
}

void DepthToSpace(Importer& im) {
  V x = im.In(0);
  auto s = im.Shape(x);
  int64_t b = im.AttrInt("blocksize", 0);
  if (s.size() != 4 || b <= 0 || s[1] % (b * b) != 0)
    im.Fail(StrCat("input ", DimsText(s), " and blocksize ", b, " do not fit"));
  int64_t n = s[0], c = s[1] / (b * b), h = s[2], w = s[3];
  bool crd = im.AttrString("mode", "DCR") == "CRD";
  V r = crd ? im.Reshape(x, {n, c, b, b, h, w}) : im.Reshape(x, {n, b, b, c, h, w});
  std::string perm = crd ? "(0, 1, 4, 2, 5, 3)" : "(0, 3, 4, 1, 5, 2)";
  V t = im.Emit("transpose", {r}, {{"axes", perm}});
  im.SetOut(0, im.Reshape(t, {n, c, h * b, w * b}));
}

void SpaceToDepth(Importer& im) {
  V x = im.In(0);
  auto s = im.Shape(x);
  int64_t b = im.AttrInt("blocksize", 0);
  if (s.size() != 4 || b <= 0 || s[2] % b != 0 || s[3] % b != 0)
    im.Fail(StrCat("input ", DimsText(s), " and blocksize ", b, " do not fit"));
  int64_t n = s[0], c = s[1], h = s[2] / b, w = s[3] / b;
  V t = im.Emit("transpose", {im.Reshape(x, {n, c, h, b, w, b})}, {{"axes", "(0, 3, 5, 1, 2, 4)"}});
  im.SetOut(0, im.Reshape(t, {n, c * b * b, h, w}));
}

// One-hot of the first maximum along the axis: argmax compared with a constant index table.
void Hardmax(Importer& im) {
  V x = im.In(0);
  auto in = im.Shape(x);
  int rank = int(in.size());
  V v = x;
  int axis;
  if (im.opset() < 13) {
    axis = NormAxis(im, im.AttrInt("axis", 1), rank, "axis");
    int64_t outer = NumElements({in.begin(), in.begin() + axis});
    v = im.Reshape(x, {outer, NumElements(in) / std::max<int64_t>(outer, 1)});
    axis = 1;
  } else {
    axis = NormAxis(im, im.AttrInt("axis", -1), rank, "axis");
  }
  auto vs = im.Shape(v);
  int64_t n = vs[size_t(axis)];
  V idx = im.Emit("argmax", {v}, {{"axis", std::to_string(axis)}, {"keepdims", "True"}});
  std::vector<int64_t> table_shape(vs.size(), 1);
  table_shape[size_t(axis)] = n;
  std::vector<double> iota(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) iota[size_t(i)] = double(i);
  V table = im.Const(Tensor::FromValues(table_shape, im.Type(idx), iota));
  V y = im.Emit("broadcast_equal", {table, idx});
  im.SetOut(0, im.Reshape(im.BroadcastTo(y, vs), in));
}

void MeanVarianceNormalization(Importer& im) {
  V x = im.In(0);
  std::vector<int64_t> axes = im.AttrInts("axes", {0, 2, 3});
  for (auto& a : axes) a = NormAxis(im, a, im.Rank(x), "axis");
  AttrMap r = {{"axis", attr_text::Print(axes)}, {"keepdims", "True"}};
  V d = im.Emit("broadcast_sub", {x, im.Emit("mean", {x}, r)});
  V sd = im.Emit("sqrt", {im.Emit("mean", {im.Emit("square", {d})}, r)});
  im.SetOut(0, im.Emit("broadcast_div", {d, im.ScalarOp("_plus_scalar", sd, 1e-9)}));
}

// Zero outside the band: upper keeps j - i >= k, lower keeps j - i <= k, over the last two axes.
void Trilu(Importer& im) {
  V x = im.In(0);
  auto s = im.Shape(x);
  if (s.size() < 2) im.Fail(StrCat("input ", DimsText(s), " needs two axes"));
  int64_t k = im.HasIn(1) ? im.ConstInts(1, "k").at(0) : 0;
  bool upper = im.AttrInt("upper", 1) != 0;
  int64_t rows = s[s.size() - 2], cols = s.back();
  std::vector<double> mask(size_t(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) mask[size_t(i * cols + j)] = upper ? j - i >= k : j - i <= k;
  V m = im.BroadcastTo(im.Const(Tensor::FromValues({rows, cols}, DType::kBool, mask)), s);
  V zeros = im.Const(Tensor::Zeros(s, im.Type(x)));
  im.SetOut(0, im.Emit("where", {m, x, zeros}));
}

void OneHot(Importer& im) {
  V idx = im.In(0);
  int64_t depth = int64_t(im.ConstDoubles(1, "depth").at(0));
  Tensor values = im.ConstIn(2, "values");
  if (values.size() != 2) im.Fail("values must hold [off_value, on_value]");
  auto in = im.Shape(idx);
  int rank = int(in.size()) + 1;
  int axis = NormAxis(im, im.AttrInt("axis", -1), rank, "axis");
  // Indices as float64 (exact here), negative ones counted from the end.
  V f = im.Cast(idx, DType::kFloat64);
  V neg = im.Emit("broadcast_lesser", {f, im.ScalarConst(0, DType::kFloat64)});
  f = im.Emit("broadcast_add", {f, im.ScalarOp("_mul_scalar", neg, double(depth))});
  std::vector<int64_t> ishape = in, tshape(size_t(rank), 1);
  ishape.insert(ishape.begin() + axis, 1);
  tshape[size_t(axis)] = depth;
  std::vector<double> iota(static_cast<size_t>(depth));
  for (int64_t i = 0; i < depth; ++i) iota[size_t(i)] = double(i);
  V table = im.Const(Tensor::FromValues(tshape, DType::kFloat64, iota));
  V hot = im.Emit("broadcast_equal", {im.Reshape(f, ishape), table});
  double off = values.At(0), on = values.At(1);
  V y = im.ScalarOp("_plus_scalar", im.ScalarOp("_mul_scalar", hot, on - off), off);
  im.SetOut(0, im.Cast(y, values.dtype()));
}

void Range(Importer& im) {
  Tensor start = im.ConstIn(0, "start"), limit = im.ConstIn(1, "limit"),
         delta = im.ConstIn(2, "delta");
  double s = start.At(0), l = limit.At(0), d = delta.At(0);
  if (d == 0) im.Fail("delta is 0");
  int64_t n = std::max<int64_t>(int64_t(std::ceil((l - s) / d)), 0);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = s + double(i) * d;
  im.SetOut(0, im.Const(Tensor::FromValues({n}, start.dtype(), v)));
}

void EyeLike(Importer& im) {
  V x = im.In(0);
  auto s = im.Shape(x);
  if (s.size() != 2) im.Fail(StrCat("input ", DimsText(s), " must be 2-D"));
  DType t = im.Type(x);
  if (im.HasAttr("dtype")) {
    auto d = DTypeFromOnnx(int32_t(im.AttrInt("dtype", 1)));
    if (!d) throw UnsupportedError("EyeLike to an element type kiln lacks");
    t = *d;
  }
  int64_t k = im.AttrInt("k", 0);
  std::vector<double> v(size_t(s[0] * s[1]));
  for (int64_t i = 0; i < s[0]; ++i)
    for (int64_t j = 0; j < s[1]; ++j) v[size_t(i * s[1] + j)] = j - i == k;
  im.SetOut(0, im.Const(Tensor::FromValues(s, t, v)));
}

void GatherElements(Importer& im) {
  V data = im.In(0);
  int axis = NormAxis(im, im.AttrInt("axis", 0), im.Rank(data), "axis");
  im.SetOut(0, im.Emit("take_along_axis", {data, im.In(1)}, {{"axis", std::to_string(axis)}}));
}

// NegativeLogLikelihoodLoss on log-probabilities x (N, C, d...) and targets t (N, d...):
// loss = -x[n, t, d...] * weight[t], zero where t == ignore_index; reduced by none, sum, or mean
// (divided by the sum of the weights used), as ONNX's function body defines it.
V NllLoss(Importer& im, V x, V target, std::optional<V> weight) {
  auto ts = im.Shape(target);
  DType t = im.Type(x);
  std::string reduction = im.AttrString("reduction", "mean");
  if (reduction != "none" && reduction != "sum" && reduction != "mean")
    im.Fail(StrCat("reduction \"", reduction, "\" is not none, sum or mean"));
  V safe = target;
  V w = im.Const(Tensor::FromValues(ts, t, std::vector<double>(size_t(NumElements(ts)), 1.0)));
  if (im.HasAttr("ignore_index")) {
    V ignore = im.ScalarConst(double(im.AttrInt("ignore_index", 0)), im.Type(target));
    V keep = im.Emit("broadcast_not_equal", {target, ignore});
    safe = im.Emit("where", {keep, target, im.Const(Tensor::Zeros(ts, im.Type(target)))});
    w = im.Cast(keep, t);
  }
  if (weight)
    w = im.Emit("elemwise_mul", {w, im.Emit("take", {*weight, safe}, {{"mode", "raise"}})});
  std::vector<int64_t> is = ts;
  is.insert(is.begin() + 1, 1);
  V picked = im.Reshape(im.Emit("take_along_axis", {x, im.Reshape(safe, is)}, {{"axis", "1"}}), ts);
  V loss = im.Emit("negative", {im.Emit("elemwise_mul", {picked, w})});
  if (reduction == "none") return loss;
  V total = im.Reshape(im.Emit("sum", {loss}), {});
  if (reduction == "sum") return total;
  return im.Emit("broadcast_div", {total, im.Reshape(im.Emit("sum", {w}), {})});
}

void NegativeLogLikelihoodLoss(Importer& im) {
  std::optional<V> weight;
  if (im.HasIn(2)) weight = im.In(2);
  im.SetOut(0, NllLoss(im, im.In(0), im.In(1), weight));
}

void SoftmaxCrossEntropyLoss(Importer& im) {
  V log_prob = im.Emit("log_softmax", {im.In(0)}, {{"axis", "1"}});
  std::optional<V> weight;
  if (im.HasIn(2)) weight = im.In(2);
  im.SetOut(0, NllLoss(im, log_prob, im.In(1), weight));
  im.SetOut(1, log_prob);
}

void CumSum(Importer& im) {
  V x = im.In(0);
  int axis = NormAxis(im, im.ConstInts(1, "axis").at(0), im.Rank(x), "axis");
  im.SetOut(0, im.Emit("cumsum", {x},
                       {{"axis", std::to_string(axis)},
                        {"exclusive", im.AttrInt("exclusive", 0) ? "True" : "False"},
                        {"reverse", im.AttrInt("reverse", 0) ? "True" : "False"}}));
}

}  // namespace

void AddExtraConverters(ConverterTable& t) {
  t["Sin"] = Unary("sin");
  t["Cos"] = Unary("cos");
  t["Tan"] = Unary("tan");
  t["Asin"] = Unary("arcsin");
  t["Acos"] = Unary("arccos");
  t["Atan"] = Unary("arctan");
  t["Sinh"] = Unary("sinh");
  t["Cosh"] = Unary("cosh");
  t["Asinh"] = Unary("arcsinh");
  t["Acosh"] = Unary("arccosh");
  t["Atanh"] = Unary("arctanh");
  t["Round"] = Unary("rint");  // halves to even, as ONNX (and NumPy) round
  t["IsNaN"] = IsNaN;
  t["IsInf"] = IsInf;
  t["ThresholdedRelu"] = ThresholdedRelu;
  t["Celu"] = Celu;
  t["Shrink"] = Shrink;
  t["Mod"] = Mod;
  t["DepthToSpace"] = DepthToSpace;
  t["SpaceToDepth"] = SpaceToDepth;
  t["Hardmax"] = Hardmax;
  t["MeanVarianceNormalization"] = MeanVarianceNormalization;
  t["Trilu"] = Trilu;
  t["OneHot"] = OneHot;
  t["Range"] = Range;
  t["EyeLike"] = EyeLike;
  t["GatherElements"] = GatherElements;
  t["CumSum"] = CumSum;
  t["NegativeLogLikelihoodLoss"] = NegativeLogLikelihoodLoss;
  t["SoftmaxCrossEntropyLoss"] = SoftmaxCrossEntropyLoss;
}

}  // namespace kiln::onnx_import
