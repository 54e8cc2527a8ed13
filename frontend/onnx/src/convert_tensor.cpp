// convert_tensor.cpp - ONNX operators that move, select or describe elements: Reshape, Flatten,
// Squeeze, Unsqueeze, Transpose, Concat, Split, Slice, Gather, Pad, Expand, Tile, Shape, Size,
// Constant, ConstantOfShape.
//
// Every shape is static during import, so the converters resolve ONNX's shape conventions
// (Reshape's 0 and -1, negative axes, Slice's clamping) themselves and emit kiln ops with exact
// extents: Reshape, Flatten, Squeeze and Unsqueeze all become _np_reshape to the final shape.
// Shape and Size become constants; with constants flowing through Emit, the usual Shape ->
// Gather -> Concat -> Reshape chains are evaluated during import and leave no node behind.
#include <limits>

#include "importer.h"

namespace kiln::onnx_import {
namespace {

// Axes from the attribute (before `input_since`) or from input `index` (from it on).
std::vector<int64_t> AxesArg(Importer& im, int input_since, int index) {
  if (im.opset() < input_since) return im.AttrInts("axes");
  if (!im.HasIn(index)) return {};
  return im.ConstInts(index, "axes");
}

void Reshape(Importer& im) {
  V x = im.In(0);
  std::vector<int64_t> want = im.ConstInts(1, "the shape");
  const auto& in = im.Shape(x);
  bool allowzero = im.AttrInt("allowzero", 0) != 0;
  int64_t known = 1, total = NumElements(in);
  int infer = -1;
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == 0 && !allowzero) {
      if (i >= in.size())
        im.Fail(StrCat("shape ", DimsText(want), " copies dim ", i, " (0) of a rank-", in.size(),
                       " input"));
      want[i] = in[i];
    }
    if (want[i] == -1) {
      if (infer >= 0) im.Fail(StrCat("shape ", DimsText(want), " has two -1"));
      infer = int(i);
    } else if (want[i] < 0) {
      im.Fail(StrCat("shape ", DimsText(want), " has a negative extent"));
    } else {
      known *= want[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || total % known != 0)
      im.Fail(StrCat("cannot reshape ", DimsText(in), " to ", DimsText(want)));
    want[size_t(infer)] = total / known;
  } else if (known != total) {
    im.Fail(StrCat("cannot reshape ", DimsText(in), " (", total, " elements) to ", DimsText(want)));
  }
  im.SetOut(0, im.Reshape(x, want));
}

void Flatten(Importer& im) {
  V x = im.In(0);
  const auto& in = im.Shape(x);
  int rank = int(in.size());
  int64_t axis = im.AttrInt("axis", 1);
  if (axis < -rank || axis > rank)
    im.Fail(StrCat("axis ", axis, " is out of range for rank ", rank));
  if (axis < 0) axis += rank;
  int64_t outer = NumElements({in.begin(), in.begin() + axis});
  int64_t inner = NumElements({in.begin() + axis, in.end()});
  im.SetOut(0, im.Reshape(x, {outer, inner}));
}

void Squeeze(Importer& im) {
  V x = im.In(0);
  const auto& in = im.Shape(x);
  std::vector<int64_t> axes = AxesArg(im, 13, 1);
  std::vector<bool> drop(in.size(), false);
  if (axes.empty()) {
    for (size_t i = 0; i < in.size(); ++i) drop[i] = in[i] == 1;
  } else {
    for (int64_t a : axes) {
      int k = NormAxis(im, a, int(in.size()), "axis");
      if (in[size_t(k)] != 1)
        im.Fail(StrCat("cannot squeeze axis ", a, " of extent ", in[size_t(k)]));
      drop[size_t(k)] = true;
    }
  }
  std::vector<int64_t> out;
  for (size_t i = 0; i < in.size(); ++i)
    if (!drop[i]) out.push_back(in[i]);
  im.SetOut(0, im.Reshape(x, out));
}

void Unsqueeze(Importer& im) {
  V x = im.In(0);
  const auto& in = im.Shape(x);
  std::vector<int64_t> axes = AxesArg(im, 13, 1);
  int rank = int(in.size() + axes.size());
  std::vector<bool> added(size_t(rank), false);
  for (int64_t a : axes) {
    int k = NormAxis(im, a, rank, "axis");
    if (added[size_t(k)]) im.Fail(StrCat("axis ", a, " is given twice"));
    added[size_t(k)] = true;
  }
  std::vector<int64_t> out;
  size_t j = 0;
  for (int i = 0; i < rank; ++i) out.push_back(added[size_t(i)] ? 1 : in[j++]);
  im.SetOut(0, im.Reshape(x, out));
}

void Transpose(Importer& im) {
  V x = im.In(0);
  int rank = im.Rank(x);
  std::vector<int64_t> perm = im.AttrInts("perm");
  if (perm.empty())
    for (int i = rank - 1; i >= 0; --i) perm.push_back(i);
  if (int(perm.size()) != rank)
    im.Fail(StrCat("perm ", DimsText(perm), " does not have rank ", rank));
  bool identity = true;
  for (int i = 0; i < rank; ++i) identity = identity && perm[size_t(i)] == i;
  if (identity) {
    im.SetOut(0, x);
    return;
  }
  im.SetOut(0, im.Emit("transpose", {x}, {{"axes", attr_text::Print(perm)}}));
}

void Concat(Importer& im) {
  std::vector<V> in;
  for (int i = 0; i < im.NumIn(); ++i) in.push_back(im.In(i));
  int rank = im.Rank(in[0]);
  int axis = NormAxis(im, im.AttrInt("axis", 0), rank, "axis");
  im.SetOut(0, im.Emit("Concat", in,
                       {{"num_args", std::to_string(in.size())}, {"dim", std::to_string(axis)}}));
}

void Split(Importer& im) {
  V x = im.In(0);
  int rank = im.Rank(x);
  int axis = NormAxis(im, im.AttrInt("axis", 0), rank, "axis");
  int64_t extent = im.Shape(x)[size_t(axis)];
  std::vector<int64_t> sizes;
  if (im.opset() < 13)
    sizes = im.AttrInts("split");
  else if (im.HasIn(1))
    sizes = im.ConstInts(1, "split");
  int n = im.NumOut();
  if (sizes.empty()) {
    if (extent % n != 0)
      im.Fail(
          StrCat("axis ", axis, " of extent ", extent, " does not split into ", n, " equal parts"));
    sizes.assign(size_t(n), extent / n);
  }
  if (int(sizes.size()) != n)
    im.Fail(StrCat("split ", DimsText(sizes), " has ", sizes.size(), " parts for ", n, " outputs"));
  int64_t begin = 0;
  for (int k = 0; k < n; ++k) {
    int64_t end = begin + sizes[size_t(k)];
    if (end > extent) im.Fail(StrCat("split ", DimsText(sizes), " exceeds the extent ", extent));
    // slice (not slice_axis, whose range checks reject empty parts) along `axis`.
    std::vector<std::optional<int64_t>> b(static_cast<size_t>(rank)), e = b;
    b[size_t(axis)] = begin;
    e[size_t(axis)] = end;
    im.SetOut(
        k, im.Emit("slice", {x}, {{"begin", attr_text::Print(b)}, {"end", attr_text::Print(e)}}));
    begin = end;
  }
}

void Slice(Importer& im) {
  V x = im.In(0);
  const auto& in = im.Shape(x);
  int rank = int(in.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (im.opset() < 10) {
    starts = im.AttrInts("starts");
    ends = im.AttrInts("ends");
    axes = im.AttrInts("axes");
  } else {
    starts = im.ConstInts(1, "starts");
    ends = im.ConstInts(2, "ends");
    if (im.HasIn(3)) axes = im.ConstInts(3, "axes");
    if (im.HasIn(4)) steps = im.ConstInts(4, "steps");
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(int64_t(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    im.Fail("starts, ends, axes and steps differ in length");
  std::vector<std::optional<int64_t>> b(static_cast<size_t>(rank)), e = b, s = b;
  for (size_t i = 0; i < starts.size(); ++i) {
    int a = NormAxis(im, axes[i], rank, "axis");
    int64_t dim = in[size_t(a)], step = steps[i];
    if (step == 0) im.Fail("a step is 0");
    // ONNX's clamping: starts to [0, dim] ([0, dim-1] stepping back), ends to [0, dim]
    // ([-1, dim-1] stepping back, where -1 means "past the first element").
    auto norm = [&](int64_t v) {
      if (v < 0) v = (v < std::numeric_limits<int64_t>::min() / 2) ? -1 - dim : v + dim;
      return v;
    };
    int64_t st = norm(starts[i]), en = norm(ends[i]);
    if (step > 0) {
      st = std::clamp<int64_t>(st, 0, dim);
      en = std::clamp<int64_t>(en, 0, dim);
    } else {
      st = std::clamp<int64_t>(st, 0, dim - 1);
      en = std::clamp<int64_t>(en, -1, dim - 1);
    }
    b[size_t(a)] = st;
    e[size_t(a)] = (step < 0 && en < 0) ? std::nullopt : std::optional<int64_t>(en);
    s[size_t(a)] = step;
    if (step > 0 && en <= st) b[size_t(a)] = e[size_t(a)] = st;  // empty
  }
  im.SetOut(0, im.Emit("slice", {x},
                       {{"begin", attr_text::Print(b)},
                        {"end", attr_text::Print(e)},
                        {"step", attr_text::Print(s)}}));
}

void Gather(Importer& im) {
  V data = im.In(0), idx = im.In(1);
  int axis = NormAxis(im, im.AttrInt("axis", 0), im.Rank(data), "axis");
  im.SetOut(0, im.Emit("take", {data, idx}, {{"axis", std::to_string(axis)}, {"mode", "raise"}}));
}

void Pad(Importer& im) {
  V x = im.In(0);
  int rank = im.Rank(x);
  std::string mode = im.AttrString("mode", "constant");
  std::vector<int64_t> pads;
  double value = 0;
  if (im.opset() < 11) {
    pads = im.AttrInts("pads");
    value = im.AttrFloat("value", 0.f);
  } else {
    pads = im.ConstInts(1, "pads");
    if (im.HasIn(2)) value = im.ConstDoubles(2, "constant_value")[0];
  }
  if (int(pads.size()) != 2 * rank)
    im.Fail(StrCat("pads ", DimsText(pads), " needs ", 2 * rank, " values"));
  if (mode != "constant" && mode != "edge" && mode != "reflect")
    im.Fail(StrCat("mode \"", mode, "\" is not constant, edge or reflect"));
  std::vector<int64_t> width(size_t(2 * rank));
  bool crop = false;
  for (int i = 0; i < rank; ++i) {
    width[size_t(2 * i)] = std::max<int64_t>(pads[size_t(i)], 0);
    width[size_t(2 * i + 1)] = std::max<int64_t>(pads[size_t(i + rank)], 0);
    crop = crop || pads[size_t(i)] < 0 || pads[size_t(i + rank)] < 0;
  }
  V y = im.Emit("Pad", {x},
                {{"mode", mode},
                 {"pad_width", attr_text::Print(width)},
                 {"constant_value", attr_text::Print(value)}});
  if (crop) {
    // Negative pads remove elements: slice them off after padding the positive ones.
    std::vector<std::optional<int64_t>> b, e;
    for (int i = 0; i < rank; ++i) {
      int64_t dim = im.Shape(y)[size_t(i)];
      b.push_back(std::max<int64_t>(-pads[size_t(i)], 0));
      e.push_back(dim - std::max<int64_t>(-pads[size_t(i + rank)], 0));
    }
    y = im.Emit("slice", {y}, {{"begin", attr_text::Print(b)}, {"end", attr_text::Print(e)}});
  }
  im.SetOut(0, y);
}

void Expand(Importer& im) {
  V x = im.In(0);
  std::vector<int64_t> shape = im.ConstInts(1, "the shape");
  auto out = BroadcastShapes(im.Shape(x), shape);
  if (!out)
    im.Fail(StrCat("input ", DimsText(im.Shape(x)), " cannot be expanded to ", DimsText(shape)));
  im.SetOut(0, im.BroadcastTo(x, *out));
}

void Tile(Importer& im) {
  V x = im.In(0);
  std::vector<int64_t> reps = im.ConstInts(1, "repeats");
  if (int(reps.size()) != im.Rank(x))
    im.Fail(StrCat("repeats ", DimsText(reps), " does not have the input's rank ", im.Rank(x)));
  for (int64_t r : reps)
    if (r < 0) im.Fail(StrCat("repeats ", DimsText(reps), " has a negative count"));
  im.SetOut(0, im.Emit("tile", {x}, {{"reps", attr_text::Print(reps)}}));
}

void ShapeOp(Importer& im) {
  const auto& in = im.Shape(im.In(0));
  int64_t rank = int64_t(in.size());
  int64_t start = im.AttrInt("start", 0), end = im.AttrInt("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, start, rank);
  std::vector<int64_t> dims(in.begin() + start, in.begin() + end);
  im.SetOut(0, im.Const(Tensor::FromVector<int64_t>({int64_t(dims.size())}, dims)));
}

void Constant(Importer& im) {
  Tensor t;
  if (im.HasAttr("value")) {
    t = im.AttrTensor("value");
  } else if (im.HasAttr("value_float")) {
    t = Tensor::FromVector<float>({}, {im.AttrFloat("value_float", 0)});
  } else if (im.HasAttr("value_floats")) {
    auto v = im.AttrFloats("value_floats");
    t = Tensor::FromVector<float>({int64_t(v.size())}, v);
  } else if (im.HasAttr("value_int")) {
    t = Tensor::FromVector<int64_t>({}, {im.AttrInt("value_int", 0)});
  } else if (im.HasAttr("value_ints")) {
    auto v = im.AttrInts("value_ints");
    t = Tensor::FromVector<int64_t>({int64_t(v.size())}, v);
  } else {
    throw UnsupportedError(
        "only tensor, float and int Constant values are supported (not "
        "strings or sparse tensors)");
  }
  V v = im.Const(t);
  im.SetOut(0, v);
}

void ConstantOfShape(Importer& im) {
  std::vector<int64_t> shape = im.ConstInts(0, "the shape");
  for (int64_t d : shape)
    if (d < 0) im.Fail(StrCat("shape ", DimsText(shape), " has a negative extent"));
  Tensor value =
      im.HasAttr("value") ? im.AttrTensor("value") : Tensor::FromVector<float>({1}, {0.f});
  if (value.size() != 1) im.Fail("value must hold one element");
  std::vector<double> fill(size_t(NumElements(shape)), value.At(0));
  im.SetOut(0, im.Const(Tensor::FromValues(shape, value.dtype(), fill)));
}

}  // namespace

void AddTensorConverters(ConverterTable& t) {
  t["Reshape"] = Reshape;
  t["Flatten"] = Flatten;
  t["Squeeze"] = Squeeze;
  t["Unsqueeze"] = Unsqueeze;
  t["Transpose"] = Transpose;
  t["Concat"] = Concat;
  t["Split"] = Split;
  t["Slice"] = Slice;
  t["Gather"] = Gather;
  t["Pad"] = Pad;
  t["Expand"] = Expand;
  t["Tile"] = Tile;
  t["Shape"] = ShapeOp;
  t["Size"] = [](Importer& im) {
    im.SetOut(0, im.Const(Tensor::FromVector<int64_t>({}, {NumElements(im.Shape(im.In(0)))})));
  };
  t["Constant"] = Constant;
  t["ConstantOfShape"] = ConstantOfShape;
}

}  // namespace kiln::onnx_import
