// op_util.cpp - helpers shared by the op definition files.
#include "ops/op_util.h"

namespace kiln::ops {

void RequireFloat(const TypeInferCtx& ctx, DType t, const std::string& what) {
  if (t != DType::kUnknown && !IsFloatingPoint(t))
    ctx.Fail(StrCat(what, " has dtype ", DTypeName(t), " but a floating-point type is required"));
}

void FloatTypeInfer(TypeInferCtx& ctx) {
  SameTypeInfer(ctx);
  for (int i = 0; i < ctx.num_in(); ++i) RequireFloat(ctx, ctx.in(i), ctx.InName(i));
}

void RequireRank(const ShapeInferCtx& ctx, const Shape& s, int ndim, const std::string& what) {
  if (s.rank_known() && s.ndim() != ndim)
    ctx.Fail(StrCat(what, " ", s.ToString(), " has rank ", s.ndim(), " but rank ", ndim,
                    " is required"));
}

int NormalizeAxis(const ShapeInferCtx& ctx, int64_t axis, int ndim, const std::string& attr) {
  if (axis < -ndim || axis >= ndim)
    ctx.Fail(StrCat(attr, " = ", axis, " is out of range for rank ", ndim));
  return int(axis < 0 ? axis + ndim : axis);
}

std::vector<int64_t> Strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int i = int(shape.size()) - 2; i >= 0; --i)
    s[size_t(i)] = s[size_t(i) + 1] * shape[size_t(i) + 1];
  return s;
}

}  // namespace kiln::ops
