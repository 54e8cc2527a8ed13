// matmul.cpp - dot and batch_dot (MXNet's semantics).
//
// dot(a, b) contracts a's last axis with b's first (transpose_a: a's first axis; transpose_b:
// b's last), as MXNet's DotShape: a is seen as a matrix (prod(leading), last), or with
// transpose_a as (first, prod(rest)) transposed. The result's axes are a's remaining axes then
// b's remaining axes: (2, 3, 4) . (4, 5) -> (2, 3, 5); with transpose_a, (4, 2, 3) . (4, 5) ->
// (2, 3, 5). Two 1-D operands give shape (1,) (MXNet 1.x has no 0-d) and cannot be transposed.
//
// batch_dot(a, b): (B..., M, K) x (B..., K, N) -> (B..., M, N), equal ranks >= 3, equal batch
// axes (no broadcasting); transpose_a reads a as (B..., K, M), transpose_b b as (B..., N, K).
//
// Both are defined for all nine dtypes, accumulating in AccType. forward_stype is accepted and
// ignored: kiln's tensors are dense. Both have compute definitions for all nine dtypes too (a
// sum over the contracted axis, ContractionSum), and _backward_dot for the floating dtypes it
// takes (DotBackwardCompute).
//
// Gradients. With op(a) the (M, K) matrix dot reads from a and op(b) the (K, N) one from b,
// d op(a) = dy op(b)^T and d op(b) = op(a)^T dy, stored back transposed where the operand was
// read transposed. dot uses one backward op, _backward_dot, because dy of N-D operands has
// a's and b's remaining axes, which only a flattening view (known after shape inference) turns
// into the (M, N) matrix; batch_dot composes batch_dot itself, since its last two axes are
// always the matrices:
//   (ta, tb) = (0, 0): da = dy b^T,     db = a^T dy
//              (1, 0): da = b dy^T,     db = a dy
//              (0, 1): da = dy b,       db = dy^T a
//              (1, 1): da = b^T dy^T,   db = dy^T a^T
#include <functional>
#include <utility>

#include "kiln/ir/grad.h"
#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

struct DotAttrs {
  bool transpose_a = false;
  bool transpose_b = false;
  std::optional<std::string> forward_stype;
  static void Describe(AttrSchema<DotAttrs>& s) {
    s.Field("transpose_a", &DotAttrs::transpose_a);
    s.Field("transpose_b", &DotAttrs::transpose_b);
    s.Field("forward_stype", &DotAttrs::forward_stype)
        .OneOf({"None", "default", "row_sparse", "csr"});
  }
};

// Where each axis of the operands goes: a contraction axis per operand, and for each output
// axis the operand (0 = a, 1 = b) and axis it comes from.
struct DotPlan {
  int ca = 0, cb = 0;
  std::vector<std::pair<int, int>> out;  // empty: the (1,) result of two vectors
};

DotPlan PlanDot(int ra, int rb, bool ta, bool tb) {
  DotPlan p;
  p.ca = ta ? 0 : ra - 1;
  p.cb = tb ? rb - 1 : 0;
  if (ra > 1)
    for (int i = 0; i < ra; ++i)
      if (i != p.ca) p.out.emplace_back(0, i);
  if (rb > 1)
    for (int i = 0; i < rb; ++i)
      if (i != p.cb) p.out.emplace_back(1, i);
  return p;
}

std::string AxisWord(int operand, bool transposed) {
  // a's contraction axis is its last unless transposed; b's its first unless transposed.
  if (operand == 0) return transposed ? "first axis (transpose_a)" : "last axis";
  return transposed ? "last (transpose_b)" : "first";
}

// Unifies facts both ways: the contraction extents of a and b, and each output axis with the
// operand axis it comes from.
void DotShape(ShapeInferCtx& ctx) {
  const auto& at = ctx.attrs<DotAttrs>();
  const Shape& a = ctx.in(0);
  const Shape& b = ctx.in(1);
  if (!a.rank_known() || !b.rank_known()) return;
  if (a.ndim() == 0 || b.ndim() == 0)
    ctx.Fail(
        StrCat("a ", a.ToString(), " and b ", b.ToString(), ": dot needs operands of rank >= 1"));
  if (a.ndim() == 1 && b.ndim() == 1 && (at.transpose_a || at.transpose_b))
    ctx.Fail(StrCat("a ", a.ToString(), " and b ", b.ToString(),
                    " are vectors, which transpose_a / transpose_b cannot transpose"));
  DotPlan p = PlanDot(a.ndim(), b.ndim(), at.transpose_a, at.transpose_b);
  std::vector<int64_t> A = a.dims(), B = b.dims();
  const int64_t kU = Shape::kUnknownDim;
  if (A[size_t(p.ca)] != kU && B[size_t(p.cb)] != kU && A[size_t(p.ca)] != B[size_t(p.cb)])
    ctx.Fail(StrCat("a ", a.ToString(), " and b ", b.ToString(), " do not agree: a's ",
                    AxisWord(0, at.transpose_a), " has ", A[size_t(p.ca)], " elements but b's ",
                    AxisWord(1, at.transpose_b), " has ", B[size_t(p.cb)]));
  int64_t k = A[size_t(p.ca)] != kU ? A[size_t(p.ca)] : B[size_t(p.cb)];
  A[size_t(p.ca)] = B[size_t(p.cb)] = k;
  if (p.out.empty()) {
    ctx.SetOut(0, Shape{1});
  } else {
    const Shape& o = ctx.out(0);
    std::vector<int64_t> O(p.out.size(), kU);
    bool o_usable = o.rank_known() && o.ndim() == int(O.size());
    for (size_t j = 0; j < p.out.size(); ++j) {
      auto [which, axis] = p.out[j];
      int64_t& src = which == 0 ? A[size_t(axis)] : B[size_t(axis)];
      if (src == kU && o_usable) src = o[int(j)];
      O[j] = src;
    }
    ctx.SetOut(0, Shape(O));
  }
  ctx.SetIn(0, Shape(A));
  ctx.SetIn(1, Shape(B));
}

// Element (r, c) of a row-major matrix of `cols` columns, read transposed when `t`.
template <class T>
AccType<T> MatAt(const T* m, bool t, int64_t rows_or_cols, int64_t r, int64_t c) {
  // Untransposed: m is (R, C) with C = rows_or_cols; transposed: m is (C, R) with R =
  // rows_or_cols, so element (r, c) of the logical matrix is m[c][r].
  return t ? ToAcc(m[c * rows_or_cols + r]) : ToAcc(m[r * rows_or_cols + c]);
}

// C (M x N) = op(A) (M x K) * op(B) (K x N), each stored row-major.
template <class T>
void Gemm(const T* a, const T* b, T* c, int64_t m, int64_t n, int64_t k, bool ta, bool tb) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      AccType<T> acc{};
      for (int64_t l = 0; l < k; ++l) {
        AccType<T> x = MatAt(a, ta, ta ? m : k, i, l);
        AccType<T> y = MatAt(b, tb, tb ? k : n, l, j);
        if constexpr (std::is_integral_v<AccType<T>>)
          acc = WrapAdd(acc, WrapMul(x, y));
        else
          acc += x * y;
      }
      c[i * n + j] = ConvertValue<T>(acc);
    }
}

template <class T>
void DotKernel(const KernelCtx& ctx) {
  const auto& at = ctx.Attr<DotAttrs>();
  const Tensor& a = ctx.in[0];
  const Tensor& b = ctx.in[1];
  DotPlan p = PlanDot(a.ndim(), b.ndim(), at.transpose_a, at.transpose_b);
  int64_t k = a.dim(p.ca);
  int64_t m = 1, n = 1;
  for (int i = 0; i < a.ndim(); ++i)
    if (i != p.ca) m *= a.dim(i);
  for (int i = 0; i < b.ndim(); ++i)
    if (i != p.cb) n *= b.dim(i);
  Gemm(a.data<T>(), b.data<T>(), ctx.out[0].data<T>(), m, n, k, at.transpose_a, at.transpose_b);
}

// --- batch_dot ---

void BatchDotShape(ShapeInferCtx& ctx) {
  const auto& at = ctx.attrs<DotAttrs>();
  int r = -1;
  for (const Shape* s : {&ctx.in(0), &ctx.in(1), &ctx.out(0)})
    if (s->rank_known()) {
      if (s->ndim() < 3)
        ctx.Fail(StrCat("a ", ctx.in(0).ToString(), ", b ", ctx.in(1).ToString(),
                        ": batch_dot needs operands of rank >= 3 (batch..., rows, columns)"));
      if (r >= 0 && s->ndim() != r)
        ctx.Fail(StrCat("a ", ctx.in(0).ToString(), ", b ", ctx.in(1).ToString(), ", output ",
                        ctx.out(0).ToString(), ": batch_dot needs operands of one rank"));
      r = s->ndim();
    }
  if (r < 0) return;
  auto dims = [&](const Shape& s) {
    return s.rank_known() ? s.dims() : std::vector<int64_t>(size_t(r), Shape::kUnknownDim);
  };
  std::vector<int64_t> A = dims(ctx.in(0)), B = dims(ctx.in(1)), O = dims(ctx.out(0));
  const int64_t kU = Shape::kUnknownDim;
  // Unifies the extents at the given slots; fails with `what` on a conflict.
  auto unify = [&](std::vector<int64_t*> slots, const std::string& what) {
    int64_t v = kU;
    for (int64_t* s : slots) {
      if (*s == kU) continue;
      if (v != kU && *s != v)
        ctx.Fail(StrCat("a ", ctx.in(0).ToString(), " and b ", ctx.in(1).ToString(),
                        " do not agree: ", what));
      v = *s;
    }
    for (int64_t* s : slots) *s = v;
  };
  for (int i = 0; i < r - 2; ++i)
    unify({&A[size_t(i)], &B[size_t(i)], &O[size_t(i)]},
          StrCat("batch axis ", i, " differs (batch_dot does not broadcast)"));
  size_t am = size_t(at.transpose_a ? r - 1 : r - 2), ak = size_t(at.transpose_a ? r - 2 : r - 1);
  size_t bk = size_t(at.transpose_b ? r - 1 : r - 2), bn = size_t(at.transpose_b ? r - 2 : r - 1);
  if (A[ak] != kU && B[bk] != kU && A[ak] != B[bk])
    ctx.Fail(StrCat("a ", ctx.in(0).ToString(), " and b ", ctx.in(1).ToString(),
                    " do not agree: a's reduction axis ", ak, " has ", A[ak],
                    " elements but b's reduction axis ", bk, " has ", B[bk]));
  unify({&A[ak], &B[bk]}, "reduction axes differ");
  unify({&A[am], &O[size_t(r - 2)]}, "a's rows and the output's differ");
  unify({&B[bn], &O[size_t(r - 1)]}, "b's columns and the output's differ");
  ctx.SetIn(0, Shape(A));
  ctx.SetIn(1, Shape(B));
  ctx.SetOut(0, Shape(O));
}

template <class T>
void BatchDotKernel(const KernelCtx& ctx) {
  const auto& at = ctx.Attr<DotAttrs>();
  const Tensor& a = ctx.in[0];
  const Tensor& b = ctx.in[1];
  const Tensor& c = ctx.out[0];
  int r = a.ndim();
  int64_t m = c.dim(r - 2), n = c.dim(r - 1);
  int64_t k = at.transpose_a ? a.dim(r - 2) : a.dim(r - 1);
  int64_t batch = NumElements(std::vector<int64_t>(c.shape().begin(), c.shape().end() - 2));
  const T* ap = a.data<T>();
  const T* bp = b.data<T>();
  T* cp = c.data<T>();
  for (int64_t i = 0; i < batch; ++i)
    Gemm(ap + i * m * k, bp + i * k * n, cp + i * m * n, m, n, k, at.transpose_a, at.transpose_b);
}

// --- Compute definitions ---

// sum over r in [0, k) of lhs(r) * rhs(r), the two reads widened to the kernel IR's arithmetic
// types (int8, uint8, bool: int32; float16, bfloat16: float32), then converted to t as the
// reference converts its accumulator (ConvertValue). Integers wrap: a sum of int32 (or int64)
// products modulo 2^32 (2^64) is the reference's int64 sum modulo that, so integer results are
// the reference's bit for bit; float32 sums in float32 where the reference sums in double.
TExpr ContractionSum(DType t, int64_t k,
                     const std::function<std::pair<TExpr, TExpr>(const TExpr& r)>& reads) {
  TExpr y = TReduce(TReduceOp::kSum, {k}, [&](const std::vector<TExpr>& r) {
    auto [lhs, rhs] = reads(r[0]);
    return Widen(lhs) * Widen(rhs);
  });
  return ConvertExpr(y, t);
}

// out[o...] = sum_r a[...] * b[...], each operand read at r on its contraction axis and at the
// output axes it contributes (PlanDot) elsewhere.
std::vector<TExpr> DotCompute(const ComputeCtx& c) {
  const auto& at = c.attrs<DotAttrs>();
  DType t = c.out_dtype(0);
  if (c.in_dtype(0) != t || c.in_dtype(1) != t) return {};
  const Shape &a = c.in_shape(0), &b = c.in_shape(1);
  DotPlan p = PlanDot(a.ndim(), b.ndim(), at.transpose_a, at.transpose_b);
  std::vector<TExpr> ia(size_t(a.ndim())), ib(size_t(b.ndim()));
  for (size_t o = 0; o < p.out.size(); ++o) {
    auto [which, axis] = p.out[o];
    (which == 0 ? ia : ib)[size_t(axis)] = TAxis(int(o));
  }
  return {ContractionSum(t, a[p.ca], [&](const TExpr& r) {
    ia[size_t(p.ca)] = ib[size_t(p.cb)] = r;
    return std::pair{c.Read(0, ia), c.Read(1, ib)};
  })};
}

// out[B..., i, j] = sum_r op(a)[B..., i, r] * op(b)[B..., r, j].
std::vector<TExpr> BatchDotCompute(const ComputeCtx& c) {
  const auto& at = c.attrs<DotAttrs>();
  DType t = c.out_dtype(0);
  if (c.in_dtype(0) != t || c.in_dtype(1) != t) return {};
  const Shape& a = c.in_shape(0);
  int rank = a.ndim();
  int64_t k = at.transpose_a ? a[rank - 2] : a[rank - 1];
  std::vector<TExpr> axes = c.Axes();
  TExpr i = axes[size_t(rank - 2)], j = axes[size_t(rank - 1)];
  return {ContractionSum(t, k, [&](const TExpr& r) {
    std::vector<TExpr> ia(axes.begin(), axes.end() - 2), ib = ia;
    ia.push_back(at.transpose_a ? r : i);
    ia.push_back(at.transpose_a ? i : r);
    ib.push_back(at.transpose_b ? j : r);
    ib.push_back(at.transpose_b ? r : j);
    return std::pair{c.Read(0, ia), c.Read(1, ib)};
  })};
}

// --- Gradients ---

// (dy, a, b) -> (da, db) for dot, with M, K, N as the forward kernel sees them.
template <class T>
void DotBackwardKernel(const KernelCtx& ctx) {
  const auto& at = ctx.Attr<DotAttrs>();
  const bool ta = at.transpose_a, tb = at.transpose_b;
  const Tensor& a = ctx.in[1];
  const Tensor& b = ctx.in[2];
  DotPlan p = PlanDot(a.ndim(), b.ndim(), ta, tb);
  int64_t k = a.dim(p.ca);
  int64_t m = k ? a.size() / k : 0, n = k ? b.size() / k : 0;
  if (k == 0) {
    // Nothing is contracted: both gradients are empty or zero-sized along K.
    return;
  }
  const T* dy = ctx.in[0].data<T>();
  // Gemm(A, B, C, rows, cols, inner, transpose A, transpose B): C = op(A) op(B).
  if (!ta)
    Gemm(dy, b.data<T>(), ctx.out[0].data<T>(), m, k, n, false, !tb);  // (M,N)(N,K)
  else
    Gemm(b.data<T>(), dy, ctx.out[0].data<T>(), k, m, n, tb, true);  // (K,N)(N,M)
  if (!tb)
    Gemm(a.data<T>(), dy, ctx.out[1].data<T>(), k, n, m, !ta, false);  // (K,M)(M,N)
  else
    Gemm(dy, a.data<T>(), ctx.out[1].data<T>(), n, k, m, true, ta);  // (N,M)(M,K)
}

// The backward kernel above as a compute definition, for the floating dtypes it runs on
// (float16 and bfloat16 summed in float32, rounded once). Each gradient has its operand's shape;
// at an index of operand `self`, with kk its value on self's contraction axis and s its other
// axes, the gradient sums over the other operand's kept axes r (none when that operand is a
// vector: one product):
//   d self[s, kk] = sum_r dy[s, r] * other[r, kk]
// with dy read at the output position dot gave (self's kept axes, the other's, in PlanDot's
// order; (0) for two vectors) and `other` at kk on its contraction axis. Transposition only
// changes which axis contracts, so this covers every transpose_a / transpose_b and rank.
std::vector<TExpr> DotBackwardCompute(const ComputeCtx& c) {
  const auto& at = c.attrs<DotAttrs>();
  DType t = c.out_dtype(0);
  if (!IsFloatingPoint(t)) return {};
  for (int j = 0; j < c.num_in(); ++j)
    if (c.in_dtype(j) != t) return {};
  const Shape &a = c.in_shape(1), &b = c.in_shape(2);
  DotPlan p = PlanDot(a.ndim(), b.ndim(), at.transpose_a, at.transpose_b);
  auto grad = [&](int self) {
    const Shape& other = self == 0 ? b : a;
    int cs = self == 0 ? p.ca : p.cb, co = self == 0 ? p.cb : p.ca;
    std::vector<int64_t> kept;  // the other operand's axes in dy, in order
    if (other.ndim() > 1)
      for (int i = 0; i < other.ndim(); ++i)
        if (i != co) kept.push_back(other[i]);
    auto body = [&](const std::vector<TExpr>& r) {
      std::vector<TExpr> dyi, oi;
      size_t next = 0;
      for (auto [which, axis] : p.out) dyi.push_back(which == self ? TAxis(axis) : r[next++]);
      if (p.out.empty()) dyi.push_back(TIndex(0));
      next = 0;
      for (int i = 0; i < other.ndim(); ++i) oi.push_back(i == co ? TAxis(cs) : r[next++]);
      return Widen(c.Read(0, dyi)) * Widen(c.Read(self == 0 ? 2 : 1, oi));
    };
    TExpr y = kept.empty() ? body({}) : TReduce(TReduceOp::kSum, kept, body);
    return ConvertExpr(y, t);
  };
  return {grad(0), grad(1)};
}

// The gradients have the operands' shapes, and dy dot's output shape: checked, since the
// kernel reads dy as the (M, N) matrix.
void DotBackwardShape(ShapeInferCtx& ctx) {
  const auto& at = ctx.attrs<DotAttrs>();
  for (int k = 0; k < 2; ++k) {
    ctx.SetOut(k, ctx.in(k + 1));
    ctx.SetIn(k + 1, ctx.out(k));
  }
  const Shape& a = ctx.in(1);
  const Shape& b = ctx.in(2);
  if (!a.rank_known() || !b.rank_known() || a.ndim() == 0 || b.ndim() == 0) return;
  DotPlan p = PlanDot(a.ndim(), b.ndim(), at.transpose_a, at.transpose_b);
  if (a.dim_known(p.ca) && b.dim_known(p.cb) && a[p.ca] != b[p.cb])
    ctx.Fail(StrCat("lhs ", a.ToString(), " and rhs ", b.ToString(),
                    " do not agree on the contracted axis"));
  std::vector<int64_t> dy;
  for (auto [which, axis] : p.out) dy.push_back(which == 0 ? a[axis] : b[axis]);
  if (p.out.empty()) dy.push_back(1);
  ctx.SetIn(0, Shape(dy), "d output has dot's output shape");
}

GradList DotGrad(GradCtx& g) {
  std::vector<Entry> d = g.EmitWithAttrs("_backward_dot", {g.ograd(0), g.input(0), g.input(1)});
  return {d[0], d[1]};
}

GradList BatchDotGrad(GradCtx& g) {
  const auto& at = g.attrs<DotAttrs>();
  const bool ta = at.transpose_a, tb = at.transpose_b;
  Entry dy = g.ograd(0), a = g.input(0), b = g.input(1);
  auto bd = [&](Entry x, Entry y, bool tx, bool ty) {
    return g.Emit1("batch_dot", {x, y},
                   {{"transpose_a", attr_text::Print(tx)}, {"transpose_b", attr_text::Print(ty)}});
  };
  GradList d(2);
  if (g.wants(0)) d[0] = ta ? bd(b, dy, tb, true) : bd(dy, b, false, !tb);
  if (g.wants(1)) d[1] = tb ? bd(dy, a, true, ta) : bd(a, dy, !ta, false);
  return d;
}

}  // namespace

void RegisterMatmulOps(OpRegistry& r) {
  r.Register("dot")
      .Describe(
          "matrix product contracting a's last axis (first with transpose_a) with b's first "
          "(last with transpose_b); N-D operands keep their other axes")
      .SetAttrs<DotAttrs>()
      .Inputs({"lhs", "rhs"})
      .InferShape(DotShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kOutElemwiseFusable)
      .Reference(
          [](KernelCtx& ctx) { KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, DotKernel<T>(ctx)); })
      .Compute(DotCompute)
      .Gradient(DotGrad);

  r.Register("_backward_dot")
      .Describe("gradient of dot: (d lhs, d rhs) from (d output, lhs, rhs)")
      .SetAttrs<DotAttrs>()
      .Inputs({"ograd", "lhs", "rhs"})
      .Outputs({"lhs_grad", "rhs_grad"})
      .InferShape(DotBackwardShape)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, DotBackwardKernel<T>(ctx));
      })
      .Compute(DotBackwardCompute);

  r.Register("batch_dot")
      .Describe("batched matrix product (B..., M, K) x (B..., K, N) -> (B..., M, N)")
      .SetAttrs<DotAttrs>()
      .Inputs({"lhs", "rhs"})
      .InferShape(BatchDotShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kOutElemwiseFusable)
      .Reference(
          [](KernelCtx& ctx) { KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, BatchDotKernel<T>(ctx)); })
      .Compute(BatchDotCompute)
      .Gradient(BatchDotGrad);
}

}  // namespace kiln::ops
