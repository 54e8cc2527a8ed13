// tensor_util.cpp - helpers shared by the tensor op files.
#include "ops/tensor_util.h"

namespace kiln::ops {

std::vector<std::pair<std::string, DType>> DTypeEnumNames() {
  std::vector<std::pair<std::string, DType>> names;
  for (DType t : kAllDTypes) names.emplace_back(std::string(DTypeName(t)), t);
  return names;
}

void NonBoolTypeInfer(TypeInferCtx& ctx) {
  SameTypeInfer(ctx);
  for (int i = 0; i < ctx.num_in(); ++i)
    if (ctx.in(i) == DType::kBool)
      ctx.Fail(StrCat(ctx.InName(i), " has dtype bool, which ", ctx.op().name(),
                      " does not take (as NumPy's negative)"));
}

std::vector<int> NormalizeAxisList(const ShapeInferCtx& ctx, const std::vector<int64_t>& axes,
                                   int ndim, const std::string& attr) {
  std::vector<int> out;
  std::vector<bool> seen(size_t(ndim), false);
  for (int64_t a : axes) {
    if (a < -ndim || a >= ndim)
      ctx.Fail(StrCat(attr, " = ", attr_text::Print(axes), ": axis ", a,
                      " is out of range for rank ", ndim));
    int n = int(a < 0 ? a + ndim : a);
    if (seen[size_t(n)])
      ctx.Fail(StrCat(attr, " = ", attr_text::Print(axes), " names axis ", n, " twice"));
    seen[size_t(n)] = true;
    out.push_back(n);
  }
  return out;
}

int64_t DimProduct(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) {
    if (dims[i] == Shape::kUnknownDim) return Shape::kUnknownDim;
    p *= dims[i];
  }
  return p;
}

std::string DimsString(const std::vector<int64_t>& dims) {
  return Shape(dims).ToString();
}

std::vector<int64_t> BroadcastStrides(const std::vector<int64_t>& in, int out_ndim) {
  std::vector<int64_t> s(size_t(out_ndim), 0);
  std::vector<int64_t> own = Strides(in);
  int lead = out_ndim - int(in.size());
  for (size_t i = 0; i < in.size(); ++i) s[size_t(lead) + i] = in[i] == 1 ? 0 : own[i];
  return s;
}

void StridedCopy(const Tensor& in, const Tensor& out, int64_t base,
                 const std::vector<int64_t>& in_strides) {
  const size_t es = DTypeSize(in.dtype());
  const char* src = static_cast<const char*>(in.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  ForEachIndex<1>(out.shape(), {in_strides}, [&](int64_t flat, const std::array<int64_t, 1>& o) {
    std::memcpy(dst + size_t(flat) * es, src + size_t(base + o[0]) * es, es);
  });
}

void CopyAllBytes(const Tensor& in, const Tensor& out) {
  if (in.raw_data() == out.raw_data()) return;
  std::memcpy(out.raw_data(), in.raw_data(), in.nbytes());
}

Entry EmitUnary(GradCtx& g, std::string_view op, Entry x) {
  return g.Emit1(op, {x});
}

Entry EmitBinary(GradCtx& g, std::string_view op, Entry a, Entry b) {
  return g.Emit1(op, {a, b});
}

Entry EmitScalar(GradCtx& g, std::string_view op, Entry x, double scalar) {
  // Print gives the shortest text that parses back to the same double.
  return g.Emit1(op, {x}, {{"scalar", attr_text::Print(scalar)}});
}

}  // namespace kiln::ops
