// lower_reduce.cpp - loop nests with hoisted reductions (lower_reduce.h).
#include "lower_reduce.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "kiln/runtime/error.h"

namespace kiln::codegen::detail {
namespace {

// Lanes of partial sums and of output tiles: one 512-bit vector of the element type. The
// kernel IR is target-neutral; a narrower target splits the vector loop.
constexpr int kVectorBytes = 64;

int LanesOf(DType t) {
  return std::max(1, kVectorBytes / int(DTypeSize(t)));
}

Expr Identity(TReduceOp op, DType t) {
  return Imm(TReduceIdentity(op, t)->value, t);
}

Expr Combine(TReduceOp op, const Expr& acc, const Expr& v) {
  bool is_float = acc->dtype == DType::kFloat32 || acc->dtype == DType::kFloat64;
  switch (op) {
    case TReduceOp::kSum:
      return acc + v;
    case TReduceOp::kProd:
      return acc * v;
    case TReduceOp::kMaxNum:
      return Max(acc, v);
    case TReduceOp::kMinNum:
      return Min(acc, v);
    case TReduceOp::kMax:
      // A NaN value is taken and a NaN accumulator kept (v > NaN is false): NaN propagates.
      return is_float ? Select(Or(GT(v, acc), NE(v, v)), v, acc) : Max(acc, v);
    case TReduceOp::kMin:
      return is_float ? Select(Or(LT(v, acc), NE(v, v)), v, acc) : Min(acc, v);
  }
  KILN_INTERNAL_CHECK(false, "lower: unknown reduction");
}

// Variables and buffers an expression reads.
void Collect(const Expr& e, std::set<const VarNode*>& vars, std::set<const BufferNode*>& bufs,
             std::set<const ExprNode*>& seen) {
  if (!seen.insert(e.get()).second) return;
  if (e->kind == ExprKind::kVar) vars.insert(e->var.get());
  if (e->kind == ExprKind::kLoad) bufs.insert(e->buffer.get());
  for (const Expr& o : e->operands) Collect(o, vars, bufs, seen);
}

// Replaces variables and rank-0 loads of buffers.
struct Subst {
  std::map<const VarNode*, Expr> vars;
  std::map<const BufferNode*, Expr> loads;
};

Expr Rewrite(const Expr& e, const Subst& s, std::map<const ExprNode*, Expr>& memo) {
  auto m = memo.find(e.get());
  if (m != memo.end()) return m->second;
  Expr out = e;
  if (e->kind == ExprKind::kVar) {
    auto it = s.vars.find(e->var.get());
    if (it != s.vars.end()) out = it->second;
  } else if (e->kind == ExprKind::kLoad && e->operands.empty() && s.loads.count(e->buffer.get())) {
    out = s.loads.at(e->buffer.get());
  } else if (!e->operands.empty()) {
    std::vector<Expr> ops;
    bool changed = false;
    for (const Expr& o : e->operands) {
      ops.push_back(Rewrite(o, s, memo));
      changed |= ops.back() != o;
    }
    if (changed) {
      auto n = std::make_shared<ExprNode>(*e);
      n->operands = std::move(ops);
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

Expr CeilDiv(const Expr& n, int64_t d) {
  if (n->kind == ExprKind::kIntImm) return IntImm((n->int_value + d - 1) / d);
  return (n + IntImm(d - 1)) / IntImm(d);
}

struct Loop {
  Var var;
  Expr extent;  // begins at 0
};

// Where a reduction runs: inside `level` loops of its owner (the innermost enclosing
// reduction whose variables it uses) or, without one, of the output nest.
struct Place {
  int owner = -1;
  size_t level = 0;
};

class NestBuilder {
 public:
  NestBuilder(const std::vector<int64_t>& dims, const std::vector<Buffer>& outs,
              const NestValue& value, const LowerOptions& opt)
      : dims_(dims), outs_(outs), value_(value), opt_(opt) {}

  Stmt Build(bool parallel) {
    Translate(parallel);
    Analyse();
    if (parallel && !placed_.empty() && !placed_[0].empty()) {
      // A reduction over everything would run in every task: no parallel loop.
      parallel = false;
      Translate(parallel);
      Analyse();
    }
    parallel_ = parallel;
    return Emit();
  }

 private:
  void Translate(bool parallel) {
    reds_ = Reductions();
    loops_.clear();
    idx_.clear();
    values_.clear();
    size_t r = dims_.size();
    if (r == 1 && parallel) {
      // Chunks of the one axis: the parallel loop needs a constant extent.
      int64_t c = opt_.parallel_chunk, n = dims_[0];
      Var o = MakeVar("o"), i = MakeVar("i");
      Expr start = Ref(o) * IntImm(c);
      loops_.push_back({o, IntImm((n + c - 1) / c)});
      loops_.push_back({i, Min(IntImm(c), IntImm(n) - start)});
      idx_.push_back(start + Ref(i));
    } else if (parallel && opt_.parallel_rows > 1 && size_t(opt_.parallel_rows) < r) {
      // The leading axes as one loop over their product; indices by division, outermost
      // first: i_{k-1} = v % d_{k-1}, i_{k-2} = (v / d_{k-1}) % d_{k-2}, ...
      size_t lead = size_t(opt_.parallel_rows);
      int64_t rows = 1;
      for (size_t k = 0; k < lead; ++k) rows *= dims_[k];
      Var v = MakeVar("row");
      loops_.push_back({v, IntImm(rows)});
      std::vector<Expr> lead_idx(lead);
      Expr rest = Ref(v);
      for (size_t k = lead; k-- > 1;) {
        lead_idx[k] = rest % IntImm(dims_[k]);
        rest = rest / IntImm(dims_[k]);
      }
      lead_idx[0] = rest;
      idx_ = lead_idx;
      for (size_t k = lead; k < r; ++k) {
        loops_.push_back({MakeVar("i" + std::to_string(k)), IntImm(dims_[k])});
        idx_.push_back(Ref(loops_.back().var));
      }
    } else {
      for (size_t k = 0; k < r; ++k) {
        loops_.push_back({MakeVar("i" + std::to_string(k)), IntImm(dims_[k])});
        idx_.push_back(Ref(loops_.back().var));
      }
    }
    for (size_t j = 0; j < outs_.size(); ++j) values_.push_back(value_(j, idx_, reds_));
  }

  // Dependencies, owners, levels and vectorization of every reduction.
  void Analyse() {
    const std::vector<Reduction>& list = reds_.list;
    size_t n = list.size();
    deps_.assign(n, {});
    place_.assign(n, {});
    std::map<const BufferNode*, size_t> acc_of;
    std::map<const VarNode*, std::pair<size_t, size_t>> var_of;  // -> (reduction, axis)
    for (size_t i = 0; i < n; ++i) {
      acc_of[list[i].acc.get()] = i;
      for (size_t k = 0; k < list[i].vars.size(); ++k) var_of[list[i].vars[k].get()] = {i, k};
    }
    std::map<const VarNode*, size_t> loop_level;
    for (size_t k = 0; k < loops_.size(); ++k) loop_level[loops_[k].var.get()] = k + 1;
    for (size_t i = 0; i < n; ++i) {
      std::set<const VarNode*> vars;
      std::set<const BufferNode*> bufs;
      std::set<const ExprNode*> seen;
      Collect(list[i].body, vars, bufs, seen);
      for (const BufferNode* b : bufs) {
        auto it = acc_of.find(b);
        if (it != acc_of.end()) vars.insert(deps_[it->second].begin(), deps_[it->second].end());
      }
      for (const Var& v : list[i].vars) vars.erase(v.get());
      deps_[i] = vars;
      Place p;
      for (const VarNode* v : vars) {
        auto it = var_of.find(v);
        if (it != var_of.end() && (p.owner < 0 || it->second.first < size_t(p.owner)))
          p.owner = int(it->second.first);
      }
      for (const VarNode* v : vars) {
        if (p.owner >= 0) {
          auto it = var_of.find(v);
          if (it != var_of.end() && it->second.first == size_t(p.owner))
            p.level = std::max(p.level, it->second.second + 1);
        } else {
          KILN_INTERNAL_CHECK(loop_level.count(v), "lower: a reduction uses an unbound variable");
          p.level = std::max(p.level, loop_level.at(v));
        }
      }
      place_[i] = p;
    }
    placed_.assign(loops_.size() + 1, {});
    owned_.assign(n, {});
    for (size_t i = 0; i < n; ++i) {
      if (place_[i].owner < 0) {
        placed_[place_[i].level].push_back(i);
      } else {
        auto& o = owned_[size_t(place_[i].owner)];
        if (o.size() <= place_[i].level) o.resize(place_[i].level + 1);
        o[place_[i].level].push_back(i);
      }
    }
    // Partial sums: the innermost axis reads memory contiguously, is long enough to fill a
    // vector, and no nested reduction runs inside it.
    rowwise_.assign(n, false);
    for (size_t i = 0; i < n; ++i) {
      const Reduction& red = list[i];
      size_t m = red.vars.size();
      if (m == 0 || red.extents.back() < LanesOf(red.acc->dtype)) continue;
      if (owned_[i].size() > m && !owned_[i][m].empty()) continue;
      std::set<const ExprNode*> seen;
      rowwise_[i] = HasUnitStrideLoad(red.body, red.vars.back().get(), seen);
    }
    // The innermost output loop: vectorized, tiled or serial.
    mode_ = Mode::kVector;
    if (loops_.empty()) return;
    const std::vector<size_t>& inner = placed_.back();
    if (inner.empty()) return;
    const VarNode* last = loops_.back().var.get();
    bool tile =
        !(loops_.back().extent->kind == ExprKind::kIntImm && loops_.back().extent->int_value <= 1);
    // A reduction whose reads all run along the output's innermost axis (contiguous) or not at
    // all (invariant) tiles that axis rather than its own, whose reads would then be gathers: a
    // matrix product A[i, k] B[k, j] vectorises over j (B's rows, A broadcast), not over k.
    if (tile)
      for (size_t i : inner)
        if (rowwise_[i] && LoadsVectorAlong(list[i].body, last)) rowwise_[i] = false;
    for (size_t i : inner) tile = tile && !rowwise_[i];
    // Nested reductions of a tiled one must not depend on the tiled axis.
    for (size_t x = 0; x < n && tile; ++x) {
      size_t top = x;
      while (place_[top].owner >= 0) top = size_t(place_[top].owner);
      if (top != x && std::count(inner.begin(), inner.end(), top) && deps_[x].count(last))
        tile = false;
    }
    mode_ = tile ? Mode::kTile : Mode::kSerial;
  }

  // `inner` preceded by the given reductions, each with its accumulator in scope after it.
  Stmt Wrap(const std::vector<size_t>& reds, Stmt inner) {
    for (size_t k = reds.size(); k-- > 0;) {
      size_t i = reds[k];
      inner = Allocate(reds_.list[i].acc, Block({Reduce(i), inner}));
    }
    return inner;
  }

  std::vector<size_t> Owned(size_t i, size_t level) const {
    return level < owned_[i].size() ? owned_[i][level] : std::vector<size_t>{};
  }

  // The loops of reduction i around `update` (run at the innermost point), with its nested
  // reductions at their levels. `last` replaces the innermost loop when given.
  Stmt ReductionLoops(size_t i, Stmt update, std::function<Stmt(Stmt)> last = nullptr) {
    const Reduction& red = reds_.list[i];
    size_t m = red.vars.size();
    Stmt s = Wrap(Owned(i, m), update);
    for (size_t k = m; k-- > 0;) {
      s = k + 1 == m && last
              ? last(s)
              : For(red.vars[k], IntImm(0), IntImm(red.extents[k]), ForKind::kSerial, s);
      s = Wrap(Owned(i, k), s);
    }
    return s;
  }

  // Computes reduction i into its (rank-0) accumulator.
  Stmt Reduce(size_t i) {
    const Reduction& red = reds_.list[i];
    DType t = red.acc->dtype;
    Expr acc = Load(red.acc, {});
    if (!rowwise_[i]) {
      Stmt update = Store(red.acc, {}, Combine(red.op, acc, red.body));
      return Block({Store(red.acc, {}, Identity(red.op, t)), ReductionLoops(i, update)});
    }
    // W partial results, lane l taking the elements l, l + W, ... of the innermost axis (the
    // last chunk shorter), then combined in lane order.
    int w = LanesOf(t);
    Buffer lanes = MakeBuffer(red.acc->name + "_lanes", t, {w});
    Var c = MakeVar("c"), r = red.vars.back(), l0 = MakeVar("l"), l1 = MakeVar("l");
    int64_t e = red.extents.back();
    Expr base = Ref(c) * IntImm(w);
    Expr lane = Ref(r) - base;
    Stmt update = Store(lanes, {lane}, Combine(red.op, Load(lanes, {lane}), red.body));
    auto chunks = [&](Stmt body) {
      return For(c, IntImm(0), IntImm((e + w - 1) / w), ForKind::kSerial,
                 For(r, base, Min(IntImm(w), IntImm(e) - base), ForKind::kVectorize, body, w));
    };
    Stmt init = For(l0, IntImm(0), IntImm(w), ForKind::kVectorize,
                    Store(lanes, {Ref(l0)}, Identity(red.op, t)), w);
    Stmt fold = Block({Store(red.acc, {}, Load(lanes, {IntImm(0)})),
                       For(l1, IntImm(1), IntImm(w - 1), ForKind::kUnroll,
                           Store(red.acc, {}, Combine(red.op, acc, Load(lanes, {Ref(l1)}))))});
    return Allocate(lanes, Block({init, ReductionLoops(i, update, chunks), fold}));
  }

  Stmt Stores(const std::vector<Expr>& idx, const std::vector<Expr>& values) {
    std::vector<Stmt> s;
    for (size_t j = 0; j < outs_.size(); ++j) s.push_back(Store(outs_[j], idx, values[j]));
    return s.size() == 1 ? s[0] : Block(s);
  }

  // The innermost output loop split into tiles of W lanes: the reductions that depend on it
  // accumulate W outputs at once, in a vectorized loop inside their own loops.
  Stmt Tile() {
    const Loop& inner = loops_.back();
    const std::vector<size_t>& reds = placed_.back();
    size_t widest = 1;
    for (const Buffer& b : outs_) widest = std::max(widest, DTypeSize(b->dtype));
    for (size_t i : reds) widest = std::max(widest, DTypeSize(reds_.list[i].acc->dtype));
    int w = std::max(1, kVectorBytes / int(widest));
    Var c = MakeVar("c");
    Expr base = Ref(c) * IntImm(w);
    Expr extent = Min(IntImm(w), inner.extent - base);
    std::vector<Buffer> lanes;
    for (size_t i : reds) {
      const Buffer& acc = reds_.list[i].acc;
      lanes.push_back(MakeBuffer(acc->name + "_lanes", acc->dtype, {w}));
    }
    // The substitution for a vector loop over `v`: the output axis and the lanes.
    auto subst = [&](const Var& v) {
      Subst s;
      s.vars[inner.var.get()] = Ref(v);
      for (size_t k = 0; k < reds.size(); ++k)
        s.loads[reds_.list[reds[k]].acc.get()] = Load(lanes[k], {Ref(v) - base});
      return s;
    };
    std::vector<Stmt> body;
    Var v0 = MakeVar("l");
    std::vector<Stmt> init;
    for (size_t k = 0; k < reds.size(); ++k) {
      const Reduction& red = reds_.list[reds[k]];
      init.push_back(Store(lanes[k], {Ref(v0) - base}, Identity(red.op, red.acc->dtype)));
    }
    body.push_back(For(v0, base, extent, ForKind::kVectorize, Block(init), w));
    for (size_t k = 0; k < reds.size(); ++k) {
      const Reduction& red = reds_.list[reds[k]];
      Var v = MakeVar("l");
      Subst s = subst(v);
      Expr slot = Ref(v) - base;
      Stmt update = For(
          v, base, extent, ForKind::kVectorize,
          Store(lanes[k], {slot}, Combine(red.op, Load(lanes[k], {slot}), Rewrite(red.body, s))),
          w);
      body.push_back(ReductionLoops(reds[k], update));
    }
    Var vf = MakeVar("l");
    Subst s = subst(vf);
    std::vector<Expr> idx, values;
    for (const Expr& e : idx_) idx.push_back(Rewrite(e, s));
    for (const Expr& e : values_) values.push_back(Rewrite(e, s));
    body.push_back(For(vf, base, extent, ForKind::kVectorize, Stores(idx, values), w));
    Stmt tile = Block(body);
    for (size_t k = lanes.size(); k-- > 0;) tile = Allocate(lanes[k], tile);
    return For(c, IntImm(0), CeilDiv(inner.extent, w), ForKind::kSerial, tile);
  }

  Stmt Emit() {
    size_t depth = loops_.size();
    if (depth == 0) return Wrap(placed_[0], Stores(idx_, values_));
    const Loop& inner = loops_.back();
    Stmt s;
    switch (mode_) {
      case Mode::kVector:
        s = For(inner.var, IntImm(0), inner.extent, ForKind::kVectorize, Stores(idx_, values_));
        break;
      case Mode::kSerial:
        s = For(inner.var, IntImm(0), inner.extent, ForKind::kSerial,
                Wrap(placed_[depth], Stores(idx_, values_)));
        break;
      case Mode::kTile:
        s = Tile();
        break;
    }
    s = Wrap(placed_[depth - 1], s);
    for (size_t k = depth - 1; k-- > 0;) {
      ForKind kind = k == 0 && parallel_ ? ForKind::kParallel : ForKind::kSerial;
      s = Wrap(placed_[k], For(loops_[k].var, IntImm(0), loops_[k].extent, kind, s));
    }
    return s;
  }

  enum class Mode { kVector, kSerial, kTile };

  const std::vector<int64_t>& dims_;
  const std::vector<Buffer>& outs_;
  const NestValue& value_;
  const LowerOptions& opt_;
  Reductions reds_;
  std::vector<Loop> loops_;
  std::vector<Expr> idx_, values_;
  std::vector<std::set<const VarNode*>> deps_;
  std::vector<Place> place_;
  std::vector<std::vector<size_t>> placed_;              // output level -> reductions
  std::vector<std::vector<std::vector<size_t>>> owned_;  // reduction -> level -> nested
  std::vector<bool> rowwise_;
  Mode mode_ = Mode::kVector;
  bool parallel_ = false;
};

}  // namespace

namespace {

void AppendKey(const Expr& e, std::string& out) {
  out += std::to_string(int(e->kind)) + ':' + std::to_string(int(e->dtype)) + ':';
  switch (e->kind) {
    case ExprKind::kIntImm:
      out += std::to_string(e->int_value);
      break;
    case ExprKind::kFloatImm: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%a", e->float_value);
      out += buf;
      break;
    }
    case ExprKind::kVar:
      out += std::to_string(reinterpret_cast<uintptr_t>(e->var.get()));
      break;
    case ExprKind::kLoad:
      out += std::to_string(reinterpret_cast<uintptr_t>(e->buffer.get()));
      break;
    default:
      out += std::to_string(int(e->binary_op)) + ',' + std::to_string(int(e->intrinsic));
  }
  out += '(';
  for (const Expr& o : e->operands) {
    AppendKey(o, out);
    out += ',';
  }
  out += ')';
}

}  // namespace

std::string StructuralKey(const std::vector<Expr>& exprs) {
  std::string key;
  for (const Expr& e : exprs) {
    AppendKey(e, key);
    key += ';';
  }
  return key;
}

Expr Reductions::Add(TReduceOp op, std::vector<Var> vars, std::vector<int64_t> extents, Expr body) {
  Buffer acc = MakeBuffer("acc" + std::to_string(list.size()), body->dtype, {});
  list.push_back({acc, op, std::move(vars), std::move(extents), std::move(body)});
  return Load(acc, {});
}

Stmt BuildNest(const std::vector<int64_t>& dims, const std::vector<Buffer>& outs,
               const NestValue& value, bool allow_parallel, const LowerOptions& opt) {
  int64_t total = 1;
  for (int64_t d : dims) total *= d;
  bool parallel =
      allow_parallel && !dims.empty() && total >= opt.parallel_min_elements && total > 0;
  return NestBuilder(dims, outs, value, opt).Build(parallel);
}

}  // namespace kiln::codegen::detail
