// tensor_util_compute.cpp - helpers for the ops' compute definitions (declared in
// tensor_util.h): constants converted as the reference converts attributes, widening to the
// kernel IR's arithmetic types, index clamps, index values read from tensors, and the index
// map of a reshape.
#include <cmath>

#include "ops/tensor_util.h"

namespace kiln::ops {

TExpr ConstOf(double value, DType t) {
  switch (t) {
    case DType::kBool:
      return TConst(ConvertValue<bool>(value) ? 1 : 0, DType::kBool);
    case DType::kFloat16:
    case DType::kBFloat16: {
      double v = 0;
      KILN_DTYPE_SWITCH(t, T, { v = ToAcc(ConvertValue<T>(value)); });
      return TCast(t, TConst(v, DType::kFloat32));  // v is a float16/bfloat16 value: exact
    }
    case DType::kInt8:
      return TCast(t, TConst(double(ConvertValue<int8_t>(value)), DType::kInt32));
    case DType::kUInt8:
      return TCast(t, TConst(double(ConvertValue<uint8_t>(value)), DType::kInt32));
    case DType::kInt32:
      return TConst(double(ConvertValue<int32_t>(value)), t);
    case DType::kInt64: {
      int64_t v = ConvertValue<int64_t>(value);
      if (v >= -(int64_t(1) << 53) && v <= (int64_t(1) << 53)) return TConst(double(v), t);
      // A double constant cannot hold every int64: hi * 2^32 + lo, each part exact.
      int64_t hi = v >> 32, lo = v & 0xffffffff;
      return TConst(double(hi), t) * TConst(4294967296.0, t) + TConst(double(lo), t);
    }
    default:
      return TConst(value, t);  // float32 (rounded by TConst) and float64
  }
}

TExpr Widen(TExpr x) {
  switch (x->dtype) {
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kBool:
      return TCast(DType::kInt32, std::move(x));
    case DType::kFloat16:
    case DType::kBFloat16:
      return TCast(DType::kFloat32, std::move(x));
    default:
      return x;
  }
}

TExpr ConvertExpr(TExpr x, DType to) {
  DType from = x->dtype;
  if (from == to) return x;
  if (to == DType::kBool) return NonZero(std::move(x));
  if (IsFloatingPoint(from)) {
    TExpr w = Widen(std::move(x));  // float32 or float64, exactly
    if (to == DType::kFloat64 || !IsFloatingPoint(to)) return TCast(to, w);  // saturating
    TExpr f = TCast(DType::kFloat32, w);
    return to == DType::kFloat32 ? f : TCast(to, f);
  }
  if (!IsFloatingPoint(to)) return TCast(to, std::move(x));  // through int64: wraps
  // static_cast<D>(static_cast<float>(static_cast<double>(s))), for float64 too.
  TExpr f = TCast(DType::kFloat32, TCast(DType::kFloat64, std::move(x)));
  return to == DType::kFloat32 ? f : TCast(to, f);
}

bool IsComputeInt(DType t) {
  return t == DType::kInt32 || t == DType::kInt64;
}

TExpr NonZero(TExpr x) {
  if (x->dtype == DType::kBool) return x;
  TExpr w = Widen(std::move(x));
  return TBinary(TBinaryOp::kNE, w, TConst(0, w->dtype));
}

TExpr IsNan(TExpr x) {
  return TBinary(TBinaryOp::kNE, x, x);
}

TExpr ClampIndex(TExpr i, int64_t lo, int64_t hi) {
  return TMax(TMin(std::move(i), TIndex(hi)), TIndex(lo));
}

TExpr IndexValue(TExpr x) {
  DType t = x->dtype;
  if (t == DType::kInt64) {
    // Tensor::At reads an int64 as a double (rounding beyond 2^53), then truncates back.
    return TCast(DType::kInt64, TCast(DType::kFloat64, std::move(x)));
  }
  TExpr w = Widen(std::move(x));
  if (IsComputeInt(w->dtype)) return TCast(DType::kInt64, w);
  // Finite exactly when x - x is 0 (inf - inf and NaN give NaN): non-finite reads as 0.
  TExpr finite = TBinary(TBinaryOp::kEQ, w - w, TConst(0, w->dtype));
  return TSelect(finite, TCast(DType::kInt64, w), TIndex(0));
}

std::vector<TExpr> ReshapeIndex(const std::vector<int64_t>& in, const std::vector<int64_t>& out,
                                const std::vector<TExpr>& out_idx) {
  std::vector<TExpr> idx(in.size(), TIndex(0));
  if (NumElements(in) == 0 || NumElements(out) == 0) return idx;  // nothing is read
  // The axes of extent > 1, matched in runs whose products agree: within a run, the output
  // axes give a flat offset that the input axes take apart.
  std::vector<size_t> ia, oa;
  for (size_t d = 0; d < in.size(); ++d)
    if (in[d] != 1) ia.push_back(d);
  for (size_t d = 0; d < out.size(); ++d)
    if (out[d] != 1) oa.push_back(d);
  size_t i = 0, o = 0;
  while (i < ia.size() && o < oa.size()) {
    size_t i0 = i, o0 = o;
    int64_t pi = in[ia[i++]], po = out[oa[o++]];
    while (pi != po) {
      if (pi < po)
        pi *= in[ia[i++]];
      else
        po *= out[oa[o++]];
    }
    if (i - i0 == 1 && o - o0 == 1) {
      idx[ia[i0]] = out_idx[oa[o0]];
      continue;
    }
    TExpr flat;
    int64_t stride = 1;
    for (size_t k = o; k-- > o0;) {
      TExpr term = stride == 1 ? out_idx[oa[k]] : out_idx[oa[k]] * TIndex(stride);
      flat = flat ? term + flat : term;
      stride *= out[oa[k]];
    }
    stride = 1;
    for (size_t k = i; k-- > i0;) {
      TExpr v = stride == 1 ? flat : flat / TIndex(stride);
      idx[ia[k]] = k == i0 ? v : v % TIndex(in[ia[k]]);
      stride *= in[ia[k]];
    }
  }
  return idx;
}

FCompute ReshapeCompute() {
  return [](const ComputeCtx& c) -> std::vector<TExpr> {
    return {c.Read(0, ReshapeIndex(c.in_shape(0).dims(), c.out_shape(0).dims(), c.Axes()))};
  };
}

}  // namespace kiln::ops
