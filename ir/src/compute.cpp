// compute.cpp - the tensor-expression constructors and ComputeCtx (kiln/ir/compute.h).
#include "kiln/ir/compute.h"

#include <limits>
#include <utility>

#include "kiln/ir/random.h"
#include "kiln/runtime/error.h"

namespace kiln {
namespace {

TExpr Make(TExprNode n) {
  return std::make_shared<const TExprNode>(std::move(n));
}

bool IsComparison(TBinaryOp op) {
  return op >= TBinaryOp::kEQ && op <= TBinaryOp::kGE;
}
bool IsLogical(TBinaryOp op) {
  return op == TBinaryOp::kAnd || op == TBinaryOp::kOr;
}

}  // namespace

bool IsComputeFloat(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64;
}

TExpr TAxis(int k) {
  TExprNode n{TExprKind::kAxis, DType::kInt64};
  n.index = k;
  return Make(std::move(n));
}

TExpr TConst(double value, DType dtype) {
  TExprNode n{TExprKind::kConst, dtype};
  // Rounded to the type now, as the reference kernels convert attribute values (MXNet's
  // DType(scalar)), so that every backend sees the same constant.
  n.value = dtype == DType::kFloat32 ? double(float(value)) : value;
  return Make(std::move(n));
}

TExpr TIndex(int64_t value) {
  // Constants are held as doubles: an index beyond 2^53 would silently change.
  KILN_INTERNAL_CHECK(value >= -(int64_t(1) << 53) && value <= (int64_t(1) << 53),
                      "compute: index constant ", value, " is not exact as a double");
  return TConst(double(value), DType::kInt64);
}

TExpr TBinary(TBinaryOp op, TExpr a, TExpr b) {
  KILN_INTERNAL_CHECK(a && b && a->dtype == b->dtype,
                      "compute: operands of a binary op differ in "
                      "dtype");
  KILN_INTERNAL_CHECK(op != TBinaryOp::kMod || !IsComputeFloat(a->dtype),
                      "compute: % is for integers");
  TExprNode n{TExprKind::kBinary, IsComparison(op) || IsLogical(op) ? DType::kBool : a->dtype};
  n.op = op;
  n.operands = {std::move(a), std::move(b)};
  return Make(std::move(n));
}

TExpr TSelect(TExpr cond, TExpr t, TExpr f) {
  KILN_INTERNAL_CHECK(cond && t && f && cond->dtype == DType::kBool && t->dtype == f->dtype,
                      "compute: Select needs a bool condition and two values of one dtype");
  TExprNode n{TExprKind::kSelect, t->dtype};
  n.operands = {std::move(cond), std::move(t), std::move(f)};
  return Make(std::move(n));
}

TExpr TCast(DType dtype, TExpr a) {
  TExprNode n{TExprKind::kCast, dtype};
  n.operands = {std::move(a)};
  return Make(std::move(n));
}

TExpr TCall(TMath fn, std::vector<TExpr> args) {
  KILN_INTERNAL_CHECK(!args.empty(), "compute: a math call needs arguments");
  TExprNode n{TExprKind::kCall, args[0]->dtype};
  n.fn = fn;
  n.operands = std::move(args);
  return Make(std::move(n));
}

TExpr operator+(TExpr a, TExpr b) {
  return TBinary(TBinaryOp::kAdd, std::move(a), std::move(b));
}
TExpr operator-(TExpr a, TExpr b) {
  return TBinary(TBinaryOp::kSub, std::move(a), std::move(b));
}
TExpr operator*(TExpr a, TExpr b) {
  return TBinary(TBinaryOp::kMul, std::move(a), std::move(b));
}
TExpr operator/(TExpr a, TExpr b) {
  return TBinary(TBinaryOp::kDiv, std::move(a), std::move(b));
}

TExpr operator%(TExpr a, TExpr b) {
  return TBinary(TBinaryOp::kMod, std::move(a), std::move(b));
}
TExpr TMin(TExpr a, TExpr b) {
  return TBinary(TBinaryOp::kMin, std::move(a), std::move(b));
}
TExpr TMax(TExpr a, TExpr b) {
  return TBinary(TBinaryOp::kMax, std::move(a), std::move(b));
}

TExpr TReduce(TReduceOp op, std::vector<int64_t> extents,
              const std::function<TExpr(const std::vector<TExpr>& r)>& body) {
  for (int64_t e : extents) KILN_INTERNAL_CHECK(e >= 0, "compute: negative reduction extent");
  auto domain = std::make_shared<TReduceDomain>();
  domain->extents = std::move(extents);
  std::vector<TExpr> axes;
  for (size_t k = 0; k < domain->extents.size(); ++k) {
    TExprNode a{TExprKind::kReduceAxis, DType::kInt64};
    a.index = int(k);
    a.domain = domain;
    axes.push_back(Make(std::move(a)));
  }
  TExpr b = body(axes);
  KILN_INTERNAL_CHECK(
      b && (IsComputeFloat(b->dtype) || b->dtype == DType::kInt32 || b->dtype == DType::kInt64),
      "compute: a reduction's body must be float32, float64, int32 or int64");
  TExprNode n{TExprKind::kReduce, b->dtype};
  n.reduce_op = op;
  n.domain = std::move(domain);
  n.operands = {std::move(b)};
  return Make(std::move(n));
}

TExpr TFlatIndex(const Shape& shape) {
  TExpr flat;
  for (int d = 0; d < shape.ndim(); ++d) {
    if (flat) flat = flat * TIndex(shape[d]);
    if (shape[d] != 1) flat = flat ? flat + TAxis(d) : TAxis(d);
  }
  return flat ? flat : TIndex(0);
}

TExpr TReduceIdentity(TReduceOp op, DType dtype) {
  bool is_float = IsComputeFloat(dtype);
  double lowest = is_float                 ? -std::numeric_limits<double>::infinity()
                  : dtype == DType::kInt32 ? double(std::numeric_limits<int32_t>::lowest())
                                           : double(std::numeric_limits<int64_t>::lowest());
  double highest = is_float ? std::numeric_limits<double>::infinity()
                   : dtype == DType::kInt32
                       ? double(std::numeric_limits<int32_t>::max())
                       : 9223372036854774784.0;  // the largest double below 2^63
  switch (op) {
    case TReduceOp::kSum:
      return TConst(0, dtype);
    case TReduceOp::kProd:
      return TConst(1, dtype);
    case TReduceOp::kMax:
    case TReduceOp::kMaxNum:
      return TConst(lowest, dtype);
    case TReduceOp::kMin:
    case TReduceOp::kMinNum:
      return TConst(highest, dtype);
  }
  KILN_INTERNAL_CHECK(false, "compute: unknown reduction");
}

ComputeCtx::ComputeCtx(const Attrs& attrs, std::vector<Shape> in_shapes,
                       std::vector<DType> in_dtypes, std::vector<Shape> out_shapes,
                       std::vector<DType> out_dtypes, std::string node_name, bool is_train)
    : attrs_(attrs),
      in_shapes_(std::move(in_shapes)),
      in_dtypes_(std::move(in_dtypes)),
      out_shapes_(std::move(out_shapes)),
      out_dtypes_(std::move(out_dtypes)),
      node_name_(std::move(node_name)),
      is_train_(is_train) {}

TExpr ComputeCtx::RandomBits(TExpr counter) const {
  KILN_INTERNAL_CHECK(counter && counter->dtype == DType::kInt64,
                      "compute: a random draw is numbered by an int64");
  return TCall(TMath::kRandomBits, {TIndex(int64_t(RandomStream(node_name_))), std::move(counter)});
}

TExpr ComputeCtx::Read(int j, std::vector<TExpr> indices) const {
  KILN_INTERNAL_CHECK(int(indices.size()) == in_shape(j).ndim(), "compute: input ", j,
                      " read with ", indices.size(), " indices");
  TExprNode n{TExprKind::kRead, in_dtype(j)};
  n.index = j;
  n.operands = std::move(indices);
  return Make(std::move(n));
}

std::vector<TExpr> ComputeCtx::Axes() const {
  std::vector<TExpr> axes;
  for (int k = 0; k < out_shape(0).ndim(); ++k) axes.push_back(TAxis(k));
  return axes;
}

std::vector<TExpr> ComputeCtx::BroadcastIndex(int j) const {
  const Shape& in = in_shape(j);
  int offset = out_shape(0).ndim() - in.ndim();
  KILN_INTERNAL_CHECK(offset >= 0, "compute: input ", j, " has a higher rank than the output");
  std::vector<TExpr> idx;
  for (int d = 0; d < in.ndim(); ++d)
    idx.push_back(in[d] == 1 && out_shape(0)[d + offset] != 1 ? TIndex(0) : TAxis(d + offset));
  return idx;
}

FCompute UnaryFloatCompute(std::function<TExpr(TExpr x)> f) {
  return [f = std::move(f)](const ComputeCtx& c) -> std::vector<TExpr> {
    if (!IsComputeFloat(c.out_dtype(0)) || c.in_dtype(0) != c.out_dtype(0)) return {};
    return {f(c.In(0))};
  };
}

}  // namespace kiln
