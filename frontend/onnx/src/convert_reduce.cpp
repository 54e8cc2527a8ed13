// convert_reduce.cpp - ONNX reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin,
// ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp, ArgMax and
// ArgMin.
//
// kiln's reductions follow MXNet 1.x, which never produces a 0-d result; the converters compute
// ONNX's result shape themselves and reshape to it. The L1/L2/log forms compose the reduction
// with elementwise ops exactly as ONNX defines them (ReduceLogSumExp = log(sum(exp(x))), which
// is ONNX's reference formula). ArgMax/ArgMin: kiln's argmax takes floating types and returns
// indices in that type, so integers are cast to float64 (exact up to 2^53) and the indices cast
// to int64; ArgMin is argmax of -x; select_last_index reverses the axis first.
#include "importer.h"

namespace kiln::onnx_import {
namespace {

enum class Pre { kNone, kAbs, kSquare, kExp };
enum class Post { kNone, kSqrt, kLog };

Converter Reduce(const char* op, Pre pre, Post post) {
  return [op, pre, post](Importer& im) {
    V x = im.In(0);
    const auto& in = im.Shape(x);
    int rank = int(in.size());
    std::vector<int64_t> axes;
    bool axes_from_input = std::string(im.node().op_type()) == "ReduceSum" && im.opset() >= 13;
    if (axes_from_input) {
      if (im.HasIn(1)) axes = im.ConstInts(1, "axes");
    } else {
      axes = im.AttrInts("axes");
    }
    bool keepdims = im.AttrInt("keepdims", 1) != 0;
    if (axes.empty() && axes_from_input && im.AttrInt("noop_with_empty_axes", 0) != 0) {
      im.SetOut(0, x);
      return;
    }
    std::vector<bool> reduced(size_t(rank), axes.empty());
    for (int64_t a : axes) reduced[size_t(NormAxis(im, a, rank, "axis"))] = true;
    std::vector<int64_t> kiln_axes, out_shape;
    for (int i = 0; i < rank; ++i) {
      if (reduced[size_t(i)]) kiln_axes.push_back(i);
      if (!reduced[size_t(i)])
        out_shape.push_back(in[size_t(i)]);
      else if (keepdims)
        out_shape.push_back(1);
    }
    if (pre == Pre::kAbs) x = im.Emit("abs", {x});
    if (pre == Pre::kSquare) x = im.Emit("square", {x});
    if (pre == Pre::kExp) x = im.Emit("exp", {x});
    V y = x;
    if (rank > 0 && !kiln_axes.empty())
      y = im.Emit(op, {x}, {{"axis", attr_text::Print(kiln_axes)}, {"keepdims", "True"}});
    if (post == Post::kSqrt) y = im.Emit("sqrt", {y});
    if (post == Post::kLog) y = im.Emit("log", {y});
    im.SetOut(0, im.Reshape(y, out_shape));
  };
}

Converter Arg(bool is_min) {
  return [is_min](Importer& im) {
    V x = im.In(0);
    const auto& in = im.Shape(x);
    int rank = int(in.size());
    int axis = NormAxis(im, im.AttrInt("axis", 0), rank, "axis");
    bool keepdims = im.AttrInt("keepdims", 1) != 0;
    bool last = im.AttrInt("select_last_index", 0) != 0;
    if (!IsFloatingPoint(im.Type(x))) x = im.Cast(x, DType::kFloat64);
    if (is_min) x = im.Emit("negative", {x});
    if (last) {
      std::vector<std::optional<int64_t>> b(static_cast<size_t>(rank)), e = b, s = b;
      s[size_t(axis)] = -1;
      x = im.Emit("slice", {x},
                  {{"begin", attr_text::Print(b)},
                   {"end", attr_text::Print(e)},
                   {"step", attr_text::Print(s)}});
    }
    V idx = im.Emit("argmax", {x}, {{"axis", std::to_string(axis)}, {"keepdims", "True"}});
    if (last) idx = im.ScalarOp("_rminus_scalar", idx, double(in[size_t(axis)] - 1));
    idx = im.Cast(idx, DType::kInt64);
    std::vector<int64_t> out_shape;
    for (int i = 0; i < rank; ++i) {
      if (i != axis)
        out_shape.push_back(in[size_t(i)]);
      else if (keepdims)
        out_shape.push_back(1);
    }
    im.SetOut(0, im.Reshape(idx, out_shape));
  };
}

}  // namespace

void AddReduceConverters(ConverterTable& t) {
  t["ReduceSum"] = Reduce("sum", Pre::kNone, Post::kNone);
  t["ReduceMean"] = Reduce("mean", Pre::kNone, Post::kNone);
  t["ReduceMax"] = Reduce("max", Pre::kNone, Post::kNone);
  t["ReduceMin"] = Reduce("min", Pre::kNone, Post::kNone);
  t["ReduceProd"] = Reduce("prod", Pre::kNone, Post::kNone);
  t["ReduceL1"] = Reduce("sum", Pre::kAbs, Post::kNone);
  t["ReduceL2"] = Reduce("sum", Pre::kSquare, Post::kSqrt);
  t["ReduceSumSquare"] = Reduce("sum", Pre::kSquare, Post::kNone);
  t["ReduceLogSum"] = Reduce("sum", Pre::kNone, Post::kLog);
  t["ReduceLogSumExp"] = Reduce("sum", Pre::kExp, Post::kLog);
  t["ArgMax"] = Arg(false);
  t["ArgMin"] = Arg(true);
}

}  // namespace kiln::onnx_import
