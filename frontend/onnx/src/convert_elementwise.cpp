// convert_elementwise.cpp - ONNX elementwise operators: arithmetic, activations, comparisons,
// logic, Where, Cast, Identity and Dropout.
//
// Mapping choices:
// - Binary arithmetic is kiln's broadcast_* (NumPy broadcasting, as ONNX since opset 7). Pow
//   with an exponent of another dtype casts the exponent to the base's dtype first (ONNX's
//   result has the base's dtype).
// - Activations without a kiln op of their own are composed from ops that have one: Selu is
//   gamma * elu(x; alpha), HardSigmoid clip(alpha x + beta, 0, 1), HardSwish x * HardSigmoid(x;
//   1/6, 1/2), PRelu relu(x) + slope * min(x, 0) (slope broadcasts to x, which LeakyReLU's
//   per-channel prelu does not cover). Composed forms are exact in IEEE arithmetic up to the
//   rounding of each step, and every piece has a gradient.
// - Comparisons give 1/0 in the operands' dtype in kiln (MXNet's rule); ONNX wants bool, so a
//   Cast to bool follows (none for bool operands).
// - Variadic Min/Max/Sum/Mean fold left with the broadcast binary ops.
#include <cfloat>
#include <cmath>

#include "importer.h"

namespace kiln::onnx_import {
namespace {

Converter Binary(const char* op) {
  return [op](Importer& im) {
    V a = im.In(0), b = im.In(1);
    if (im.Type(a) != im.Type(b))
      im.Fail(StrCat("operands have dtypes ", DTypeName(im.Type(a)), " and ", DTypeName(im.Type(b)),
                     "; ONNX requires one dtype"));
    im.SetOut(0, im.Emit(op, {a, b}));
  };
}

Converter Unary(const char* op, const AttrMap& attrs = {}) {
  return [op, attrs](Importer& im) { im.SetOut(0, im.Emit(op, {im.In(0)}, attrs)); };
}

Converter Variadic(const char* op, bool mean) {
  return [op, mean](Importer& im) {
    V acc = im.In(0);
    for (int i = 1; i < im.NumIn(); ++i) acc = im.Emit(op, {acc, im.In(i)});
    if (mean) acc = im.ScalarOp("_div_scalar", acc, double(im.NumIn()));
    im.SetOut(0, acc);
  };
}

Converter Compare(const char* op) {
  return [op](Importer& im) {
    V a = im.In(0), b = im.In(1);
    if (im.Type(a) != im.Type(b))
      im.Fail(StrCat("operands have dtypes ", DTypeName(im.Type(a)), " and ", DTypeName(im.Type(b)),
                     "; ONNX requires one dtype"));
    im.SetOut(0, im.Cast(im.Emit(op, {a, b}), DType::kBool));
  };
}

V HardSigmoid(Importer& im, V x, double alpha, double beta) {
  V y = im.ScalarOp("_plus_scalar", im.ScalarOp("_mul_scalar", x, alpha), beta);
  return im.Emit("clip", {y}, {{"a_min", "0"}, {"a_max", "1"}});
}

void Clip(Importer& im) {
  V x = im.In(0);
  double lo = -DBL_MAX, hi = DBL_MAX;
  std::optional<V> lo_v, hi_v;
  if (im.opset() < 11) {
    lo = im.AttrFloat("min", -FLT_MAX);
    hi = im.AttrFloat("max", FLT_MAX);
  } else {
    for (int i = 1; i <= 2; ++i) {
      if (!im.HasIn(i)) continue;
      V b = im.In(i);
      if (im.IsConst(b)) {
        if (im.Shape(b).size() != 0 && !(im.Shape(b).size() == 1 && im.Shape(b)[0] == 1))
          im.Fail(StrCat(i == 1 ? "min" : "max", " must be a scalar"));
        (i == 1 ? lo : hi) = im.ConstDoubles(i, "the bound")[0];
      } else {
        (i == 1 ? lo_v : hi_v) = b;
      }
    }
  }
  if (lo_v || hi_v) {
    // Bounds computed at run time: max then min, as ONNX defines Clip.
    if (lo_v) x = im.Emit("broadcast_maximum", {x, im.Reshape(*lo_v, {})});
    if (hi_v) x = im.Emit("broadcast_minimum", {x, im.Reshape(*hi_v, {})});
    if (!lo_v && lo != -DBL_MAX) x = im.ScalarOp("_maximum_scalar", x, lo);
    if (!hi_v && hi != DBL_MAX) x = im.ScalarOp("_minimum_scalar", x, hi);
    im.SetOut(0, x);
    return;
  }
  // min > max gives max everywhere (NumPy's clip, which ONNX's reference follows).
  if (lo > hi) lo = hi;
  im.SetOut(
      0, im.Emit("clip", {x}, {{"a_min", attr_text::Print(lo)}, {"a_max", attr_text::Print(hi)}}));
}

void Where(Importer& im) {
  V c = im.In(0), x = im.In(1), y = im.In(2);
  auto s = BroadcastShapes(im.Shape(c), im.Shape(x));
  if (s) s = BroadcastShapes(*s, im.Shape(y));
  if (!s)
    im.Fail(StrCat("condition ", DimsText(im.Shape(c)), ", X ", DimsText(im.Shape(x)), " and Y ",
                   DimsText(im.Shape(y)), " cannot be broadcast together"));
  im.SetOut(
      0, im.Emit("where", {im.BroadcastTo(c, *s), im.BroadcastTo(x, *s), im.BroadcastTo(y, *s)}));
}

void Cast(Importer& im) {
  int64_t to = im.AttrInt("to", 0);
  std::optional<DType> t = DTypeFromOnnx(int32_t(to));
  if (!t)
    throw UnsupportedError(
        StrCat("Cast to ", OnnxTypeName(int32_t(to)), ", which kiln does not support"));
  V x = im.In(0);
  im.SetOut(0, im.Type(x) == *t ? x : im.Cast(x, *t));
}

void Dropout(Importer& im) {
  V x = im.In(0);
  double ratio = 0.5;
  bool training = false;
  if (im.opset() < 12) {
    ratio = im.AttrFloat("ratio", 0.5f);
    // Opsets before 7 had is_test; from 7 on Dropout in an inference graph is the identity.
  } else {
    if (im.HasIn(1)) ratio = im.ConstDoubles(1, "ratio")[0];
    if (im.HasIn(2)) training = im.ConstDoubles(2, "training_mode")[0] != 0;
  }
  if (training && ratio != 0)
    throw UnsupportedError(
        "Dropout in training mode draws random masks; kiln imports inference graphs (set "
        "training_mode to false)");
  im.SetOut(0, x);
  if (im.WantsOut(1)) {
    DType mask_type = im.opset() < 10 ? im.Type(x) : DType::kBool;
    std::vector<double> v(size_t(NumElements(im.Shape(x))), 1.0);
    im.SetOut(1, im.Const(Tensor::FromValues(im.Shape(x), mask_type, v)));
  }
}

}  // namespace

void AddElementwiseConverters(ConverterTable& t) {
  t["Add"] = Binary("broadcast_add");
  t["Sub"] = Binary("broadcast_sub");
  t["Mul"] = Binary("broadcast_mul");
  t["Div"] = Binary("broadcast_div");
  t["Pow"] = [](Importer& im) {
    V a = im.In(0), b = im.In(1);
    im.SetOut(0, im.Emit("broadcast_power", {a, im.Cast(b, im.Type(a))}));
  };
  t["Min"] = Variadic("broadcast_minimum", false);
  t["Max"] = Variadic("broadcast_maximum", false);
  t["Sum"] = Variadic("broadcast_add", false);
  t["Mean"] = Variadic("broadcast_add", true);

  t["Relu"] = Unary("relu");
  t["Sigmoid"] = Unary("sigmoid");
  t["Tanh"] = Unary("tanh");
  t["Exp"] = Unary("exp");
  t["Log"] = Unary("log");
  t["Sqrt"] = Unary("sqrt");
  t["Abs"] = Unary("abs");
  t["Neg"] = Unary("negative");
  t["Erf"] = Unary("erf");
  t["Sign"] = Unary("sign");
  t["Floor"] = Unary("floor");
  t["Ceil"] = Unary("ceil");
  t["Not"] = Unary("logical_not");
  t["Softplus"] = Unary("Activation", {{"act_type", "softrelu"}});
  t["Softsign"] = Unary("Activation", {{"act_type", "softsign"}});
  t["Reciprocal"] = [](Importer& im) { im.SetOut(0, im.ScalarOp("_rdiv_scalar", im.In(0), 1)); };
  t["LeakyRelu"] = [](Importer& im) {
    im.SetOut(0, im.Emit("LeakyReLU", {im.In(0)},
                         {{"act_type", "leaky"},
                          {"slope", attr_text::Print(double(im.AttrFloat("alpha", 0.01f)))}}));
  };
  t["Elu"] = [](Importer& im) {
    im.SetOut(0, im.Emit("LeakyReLU", {im.In(0)},
                         {{"act_type", "elu"},
                          {"slope", attr_text::Print(double(im.AttrFloat("alpha", 1.0f)))}}));
  };
  t["Selu"] = [](Importer& im) {
    double alpha = im.AttrFloat("alpha", 1.67326319217681884765625f);
    double gamma = im.AttrFloat("gamma", 1.05070102214813232421875f);
    V e =
        im.Emit("LeakyReLU", {im.In(0)}, {{"act_type", "elu"}, {"slope", attr_text::Print(alpha)}});
    im.SetOut(0, im.ScalarOp("_mul_scalar", e, gamma));
  };
  t["HardSigmoid"] = [](Importer& im) {
    im.SetOut(0,
              HardSigmoid(im, im.In(0), im.AttrFloat("alpha", 0.2f), im.AttrFloat("beta", 0.5f)));
  };
  t["HardSwish"] = [](Importer& im) {
    V x = im.In(0);
    im.SetOut(0, im.Emit("elemwise_mul", {x, HardSigmoid(im, x, 1.0 / 6, 0.5)}));
  };
  t["PRelu"] = [](Importer& im) {
    V x = im.In(0), slope = im.In(1);
    auto s = BroadcastShapes(im.Shape(x), im.Shape(slope));
    if (!s || *s != im.Shape(x))
      im.Fail(StrCat("slope ", DimsText(im.Shape(slope)), " does not broadcast to X ",
                     DimsText(im.Shape(x))));
    V neg = im.Emit("broadcast_mul", {im.ScalarOp("_minimum_scalar", x, 0), slope});
    im.SetOut(0, im.Emit("elemwise_add", {im.Emit("relu", {x}), neg}));
  };
  t["Clip"] = Clip;

  t["Equal"] = Compare("broadcast_equal");
  t["Less"] = Compare("broadcast_lesser");
  t["Greater"] = Compare("broadcast_greater");
  t["LessOrEqual"] = Compare("broadcast_lesser_equal");
  t["GreaterOrEqual"] = Compare("broadcast_greater_equal");
  t["And"] = Compare("broadcast_logical_and");
  t["Or"] = Compare("broadcast_logical_or");
  t["Xor"] = Compare("broadcast_logical_xor");
  t["Where"] = Where;

  t["Cast"] = Cast;
  t["Identity"] = [](Importer& im) { im.SetOut(0, im.In(0)); };
  t["Dropout"] = Dropout;
}

}  // namespace kiln::onnx_import
