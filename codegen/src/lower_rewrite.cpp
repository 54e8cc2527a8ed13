// lower_rewrite.cpp - expression analysis and rewriting for the loop nests (lower_rewrite.h).
#include "lower_rewrite.h"

#include <functional>

#include "kiln/runtime/error.h"
#include "lower_reduce.h"

namespace kiln::codegen::detail {

// Variables and buffers an expression reads.
void Collect(const Expr& e, std::set<const VarNode*>& vars, std::set<const BufferNode*>& bufs,
             std::set<const ExprNode*>& seen) {
  if (!seen.insert(e.get()).second) return;
  if (e->kind == ExprKind::kVar) vars.insert(e->var.get());
  if (e->kind == ExprKind::kLoad) bufs.insert(e->buffer.get());
  for (const Expr& o : e->operands) Collect(o, vars, bufs, seen);
}

Expr Rewrite(const Expr& e, const Subst& s, std::map<const ExprNode*, Expr>& memo) {
  auto m = memo.find(e.get());
  if (m != memo.end()) return m->second;
  Expr out = e;
  auto node = s.nodes.find(e.get());
  if (node != s.nodes.end()) {
    out = Rewrite(node->second, s, memo);
  } else if (e->kind == ExprKind::kVar) {
    auto it = s.vars.find(e->var.get());
    if (it != s.vars.end()) out = it->second;
  } else if (e->kind == ExprKind::kLoad && e->operands.empty() && s.loads.count(e->buffer.get())) {
    out = s.loads.at(e->buffer.get());
  } else {
    auto buf = e->kind == ExprKind::kLoad ? s.bufs.find(e->buffer.get()) : s.bufs.end();
    std::vector<Expr> ops;
    bool changed = buf != s.bufs.end();
    for (const Expr& o : e->operands) {
      ops.push_back(Rewrite(o, s, memo));
      changed |= ops.back() != o;
    }
    if (changed) {
      auto n = std::make_shared<ExprNode>(*e);
      n->operands = std::move(ops);
      if (buf != s.bufs.end()) n->buffer = buf->second;
      out = n;
    }
  }
  memo[e.get()] = out;
  return out;
}

Expr Rewrite(const Expr& e, const Subst& s) {
  std::map<const ExprNode*, Expr> memo;
  return Rewrite(e, s, memo);
}

// A copy of `st` with `s` applied, in which every variable it binds and every buffer it
// allocates is a new one, so that the copy can sit beside `st` in one kernel (a variable is
// bound once). Adds those renamings to `s`.
Stmt Freshen(const Stmt& st, Subst& s) {
  auto body = [&](size_t k) { return Freshen(st->body[k], s); };
  auto rebind = [&](const Var& v) {
    Var fresh = MakeVar(v->name, v->dtype);
    s.vars[v.get()] = Ref(fresh);
    return fresh;
  };
  switch (st->kind) {
    case StmtKind::kFor: {
      Expr begin = Rewrite(st->a, s), extent = Rewrite(st->b, s);
      Var v = rebind(st->var);
      return For(v, begin, extent, st->for_kind, body(0), st->vector_width);
    }
    case StmtKind::kLet: {
      Expr value = Rewrite(st->a, s);
      Var v = rebind(st->var);
      return Let(v, value, body(0));
    }
    case StmtKind::kStore: {
      std::vector<Expr> idx;
      for (const Expr& e : st->indices) idx.push_back(Rewrite(e, s));
      auto b = s.bufs.find(st->buffer.get());
      return Store(b == s.bufs.end() ? st->buffer : b->second, idx, Rewrite(st->a, s));
    }
    case StmtKind::kIf:
      return If(Rewrite(st->a, s), body(0), st->body.size() > 1 ? body(1) : nullptr);
    case StmtKind::kBlock: {
      std::vector<Stmt> list;
      for (size_t k = 0; k < st->body.size(); ++k) list.push_back(body(k));
      return Block(list);
    }
    case StmtKind::kAllocate: {
      const BufferNode& b = *st->buffer;
      Buffer fresh = MakeBuffer(b.name, b.dtype, b.shape, b.may_alias);
      s.bufs[&b] = fresh;
      return Allocate(fresh, body(0));
    }
  }
  KILN_INTERNAL_CHECK(false, "lower: unknown statement");
}

// How `e` changes when `v` grows by one, or nullopt when not affine in v (as the emitter's).
std::optional<int64_t> Coef(const Expr& e, const VarNode* v) {
  switch (e->kind) {
    case ExprKind::kIntImm:
    case ExprKind::kFloatImm:
      return 0;
    case ExprKind::kVar:
      return e->var.get() == v ? 1 : 0;
    case ExprKind::kBinary: {
      auto a = Coef(e->operands[0], v), b = Coef(e->operands[1], v);
      if (!a || !b) return std::nullopt;
      switch (e->binary_op) {
        case BinaryOp::kAdd:
          return *a + *b;
        case BinaryOp::kSub:
          return *a - *b;
        case BinaryOp::kMul:
          if (*a == 0 && *b == 0) return 0;
          if (*a == 0 && e->operands[0]->kind == ExprKind::kIntImm)
            return e->operands[0]->int_value * *b;
          if (*b == 0 && e->operands[1]->kind == ExprKind::kIntImm)
            return *a * e->operands[1]->int_value;
          return std::nullopt;
        default:
          return *a == 0 && *b == 0 ? std::optional<int64_t>(0) : std::nullopt;
      }
    }
    default:
      for (const Expr& o : e->operands) {
        auto c = Coef(o, v);
        if (!c || *c != 0) return std::nullopt;
      }
      return 0;
  }
}

// How many elements the load `e` (of a buffer, not a rank-0 local) moves when `v` grows by one,
// or nullopt when that is not a constant.
std::optional<int64_t> LoadStride(const Expr& e, const VarNode* v) {
  const std::vector<int64_t>& shape = e->buffer->shape;
  int64_t stride = 1, flat = 0;
  for (size_t d = shape.size(); d-- > 0;) {
    auto c = Coef(e->operands[d], v);
    if (!c) return std::nullopt;
    flat += *c * stride;
    stride *= shape[d];
  }
  return flat;
}

// Whether some load of a buffer (not a rank-0 local) in `e` walks memory contiguously in `v`.
bool HasUnitStrideLoad(const Expr& e, const VarNode* v, std::set<const ExprNode*>& seen) {
  if (!seen.insert(e.get()).second) return false;
  if (e->kind == ExprKind::kLoad && !e->operands.empty() && LoadStride(e, v) == 1) return true;
  for (const Expr& o : e->operands)
    if (HasUnitStrideLoad(o, v, seen)) return true;
  return false;
}

// Whether every buffer load in `e` is contiguous (stride 1) or invariant (stride 0) in `v`, and
// at least one is contiguous: vectors along `v` need no gathers.
bool LoadsVectorAlong(const Expr& e, const VarNode* v) {
  bool contiguous = false, ok = true;
  std::set<const ExprNode*> seen;
  std::function<void(const Expr&)> walk = [&](const Expr& x) {
    if (!ok || !seen.insert(x.get()).second) return;
    if (x->kind == ExprKind::kLoad && !x->operands.empty()) {
      std::optional<int64_t> s = LoadStride(x, v);
      if (!s || (*s != 0 && *s != 1)) ok = false;
      contiguous |= s == 1;
    }
    for (const Expr& o : x->operands) walk(o);
  };
  walk(e);
  return ok && contiguous;
}

std::optional<Clamp> AsClamp(const Expr& e, const VarNode* v) {
  auto bound = [](const Expr& x, BinaryOp op) {
    return x->kind == ExprKind::kBinary && x->binary_op == op &&
           x->operands[1]->kind == ExprKind::kIntImm;
  };
  bool max_min = bound(e, BinaryOp::kMax) && bound(e->operands[0], BinaryOp::kMin);
  bool min_max = bound(e, BinaryOp::kMin) && bound(e->operands[0], BinaryOp::kMax);
  if (!max_min && !min_max) return std::nullopt;
  const Expr& inner = e->operands[0];
  Expr arg = inner->operands[0];
  int64_t a = e->operands[1]->int_value, b = inner->operands[1]->int_value;
  std::optional<int64_t> step = Coef(arg, v);
  if (!step || *step == 0) return std::nullopt;
  return Clamp{e.get(), arg, max_min ? a : b, max_min ? b : a, *step};
}

// The clamps in `e` whose argument moves with `v`: they turn contiguous reads into gathers.
void VaryingClamps(const Expr& e, const VarNode* v, std::vector<Clamp>& out,
                   std::set<const ExprNode*>& seen) {
  if (!seen.insert(e.get()).second) return;
  if (std::optional<Clamp> c = AsClamp(e, v)) {
    out.push_back(*c);
    return;
  }
  for (const Expr& o : e->operands) VaryingClamps(o, v, out, seen);
}

// Comparisons of a clamp's argument with a constant that every unclamped value satisfies
// (the padding tests beside a clamped read), collected as true in `s.nodes`.
void ImpliedTests(const Expr& e, const std::map<std::string, std::pair<int64_t, int64_t>>& range,
                  Subst& s, std::set<const ExprNode*>& seen) {
  if (!seen.insert(e.get()).second) return;
  if (e->kind == ExprKind::kBinary && e->operands[1]->kind == ExprKind::kIntImm &&
      e->operands[0]->dtype == DType::kInt64) {
    auto r = range.find(StructuralKey({e->operands[0]}));
    if (r != range.end()) {
      int64_t c = e->operands[1]->int_value, lo = r->second.first, hi = r->second.second;
      bool holds =
          (e->binary_op == BinaryOp::kGE && c <= lo) || (e->binary_op == BinaryOp::kGT && c < lo) ||
          (e->binary_op == BinaryOp::kLT && c > hi) || (e->binary_op == BinaryOp::kLE && c >= hi);
      if (holds) {
        s.nodes[e.get()] = BoolImm(true);
        return;
      }
    }
  }
  for (const Expr& o : e->operands) ImpliedTests(o, range, s, seen);
}

}  // namespace kiln::codegen::detail
