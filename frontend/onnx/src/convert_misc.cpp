// convert_misc.cpp - ONNX Resize, Upsample, Einsum, LSTM, GRU and RNN.
//
// Resize and Upsample become kiln's resize with the output size resolved at import (from
// `sizes`, or floor(extent * scale) from `scales`). Upsample (opsets 7 and 9) and Resize at
// opset 10 have no coordinate_transformation_mode; their nearest mode repeats elements, which
// is the asymmetric transform with nearest_mode floor. Einsum is kiln's einsum.
#include <cmath>

#include "importer.h"

namespace kiln::onnx_import {
namespace {

AttrMap ResizeAttrs(Importer& im, V x, std::vector<double> scales, std::vector<int64_t> sizes,
                    bool legacy) {
  const auto& in = im.Shape(x);
  if (sizes.empty()) {
    if (scales.size() != in.size())
      im.Fail(StrCat("scales has ", scales.size(), " values for an input of rank ", in.size()));
    for (size_t i = 0; i < in.size(); ++i) {
      if (!(scales[i] > 0)) im.Fail("scales must be positive");
      sizes.push_back(int64_t(std::floor(double(in[i]) * scales[i])));
    }
  } else {
    if (sizes.size() != in.size())
      im.Fail(StrCat("sizes ", DimsText(sizes), " does not have the input's rank ", in.size()));
    scales.clear();
  }
  std::string mode = im.AttrString("mode", "nearest");
  if (mode != "nearest" && mode != "linear" && mode != "cubic" && mode != "bilinear")
    im.Fail(StrCat("mode \"", mode, "\" is not nearest, linear or cubic"));
  if (mode == "bilinear") mode = "linear";
  AttrMap a = {{"size", attr_text::Print(sizes)}, {"mode", mode}};
  if (!scales.empty()) a["scales"] = attr_text::Print(scales);
  if (legacy) {
    a["coordinate_transformation_mode"] = "asymmetric";
    a["nearest_mode"] = "floor";
    return a;
  }
  a["coordinate_transformation_mode"] =
      im.AttrString("coordinate_transformation_mode", "half_pixel");
  a["nearest_mode"] = im.AttrString("nearest_mode", "round_prefer_floor");
  a["cubic_coeff_a"] = attr_text::Print(double(im.AttrFloat("cubic_coeff_a", -0.75f)));
  a["exclude_outside"] = im.AttrInt("exclude_outside", 0) ? "True" : "False";
  a["extrapolation_value"] = attr_text::Print(double(im.AttrFloat("extrapolation_value", 0.f)));
  return a;
}

// An optional input given as a non-empty constant.
bool HasValues(Importer& im, int i) {
  return im.HasIn(i) && NumElements(im.Shape(im.In(i))) > 0;
}

void Resize(Importer& im) {
  V x = im.In(0);
  std::vector<double> scales;
  std::vector<int64_t> sizes;
  AttrMap a;
  if (im.opset() < 11) {
    scales = im.ConstDoubles(1, "scales");
    a = ResizeAttrs(im, x, scales, {}, true);
  } else {
    if (HasValues(im, 2)) scales = im.ConstDoubles(2, "scales");
    if (HasValues(im, 3)) sizes = im.ConstInts(3, "sizes");
    if (scales.empty() && sizes.empty()) im.Fail("neither scales nor sizes is given");
    a = ResizeAttrs(im, x, scales, sizes, false);
    if (a["coordinate_transformation_mode"] == "tf_crop_and_resize") {
      if (!HasValues(im, 1)) im.Fail("tf_crop_and_resize needs roi");
      a["roi"] = attr_text::Print(im.ConstDoubles(1, "roi"));
    }
  }
  im.SetOut(0, im.Emit("resize", {x}, a));
}

void Upsample(Importer& im) {
  V x = im.In(0);
  std::vector<double> scales;
  if (im.opset() < 9) {
    for (float f : im.AttrFloats("scales")) scales.push_back(f);
  } else {
    scales = im.ConstDoubles(1, "scales");
  }
  im.SetOut(0, im.Emit("resize", {x}, ResizeAttrs(im, x, scales, {}, true)));
}

void Einsum(Importer& im) {
  std::vector<V> in;
  for (int i = 0; i < im.NumIn(); ++i) in.push_back(im.In(i));
  std::string eq = im.AttrString("equation", "");
  if (eq.empty()) im.Fail("equation is missing");
  im.SetOut(0,
            im.Emit("einsum", in, {{"subscripts", eq}, {"num_args", std::to_string(in.size())}}));
}

// LSTM, GRU and RNN: kiln's LSTM, GRU and RNN_tanh take every input, so omitted optional ones
// become zeros. Only the default activations are supported, and sequence_lens only when every
// sequence has the full length.
Converter Recurrent(int gates) {
  return [gates](Importer& im) {
    const bool lstm = gates == 4;
    V x = im.In(0), w = im.In(1), r = im.In(2);
    std::string dir = im.AttrString("direction", "forward");
    int64_t d = dir == "bidirectional" ? 2 : 1;
    int64_t h = im.AttrInt("hidden_size", im.Shape(r).size() == 3 ? im.Shape(r)[2] : 0);
    int64_t layout = im.AttrInt("layout", 0);
    if (im.Rank(x) != 3) im.Fail(StrCat("X ", DimsText(im.Shape(x)), " must be 3-D"));
    int64_t s = im.Shape(x)[layout ? 1 : 0], n = im.Shape(x)[layout ? 0 : 1];
    const auto* acts = im.FindAttr("activations");
    if (acts) {
      std::vector<std::string> want = lstm ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                      : gates == 3 ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                   : std::vector<std::string>{"Tanh"};
      for (int i = 0; i < acts->strings_size(); ++i)
        if (acts->strings(i) != want[size_t(i) % want.size()])
          throw UnsupportedError(StrCat("activation ", acts->strings(i),
                                        " (only the default activations are supported)"));
    }
    if (im.HasIn(4)) {
      for (int64_t len : im.ConstInts(4, "sequence_lens"))
        if (len != s)
          throw UnsupportedError("sequence_lens shorter than the sequence is not supported");
    }
    DType t = im.Type(x);
    auto zeros = [&](std::vector<int64_t> shape) { return im.Const(Tensor::Zeros(shape, t)); };
    std::vector<int64_t> state =
        layout ? std::vector<int64_t>{n, d, h} : std::vector<int64_t>{d, n, h};
    std::vector<V> in = {x, w, r, im.HasIn(3) ? im.In(3) : zeros({d, 2 * gates * h}),
                         im.HasIn(5) ? im.In(5) : zeros(state)};
    if (lstm) {
      in.push_back(im.HasIn(6) ? im.In(6) : zeros(state));
      in.push_back(im.HasIn(7) ? im.In(7) : zeros({d, 3 * h}));
    }
    AttrMap a = {
        {"hidden_size", std::to_string(h)}, {"direction", dir}, {"layout", std::to_string(layout)}};
    if (im.HasAttr("clip")) a["clip"] = attr_text::Print(double(im.AttrFloat("clip", 0)));
    if (lstm) a["input_forget"] = im.AttrInt("input_forget", 0) ? "True" : "False";
    if (gates == 3)
      a["linear_before_reset"] = im.AttrInt("linear_before_reset", 0) ? "True" : "False";
    std::vector<V> out = im.EmitAll(lstm ? "LSTM" : gates == 3 ? "GRU" : "RNN_tanh", in, a);
    for (size_t k = 0; k < out.size(); ++k) im.SetOut(int(k), out[k]);
  };
}

}  // namespace

void AddMiscConverters(ConverterTable& t) {
  t["Resize"] = Resize;
  t["Upsample"] = Upsample;
  t["Einsum"] = Einsum;
  t["LSTM"] = Recurrent(4);
  t["GRU"] = Recurrent(3);
  t["RNN"] = Recurrent(1);
}

}  // namespace kiln::onnx_import
