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
#include "lower_rewrite.h"

namespace kiln::codegen::detail {
namespace {

// Lanes of partial sums and of output tiles: one 512-bit vector of the element type. The
// kernel IR is target-neutral; a narrower target splits the vector loop.
constexpr int kVectorBytes = 64;

// Values of a blocked output loop run at once (ChooseBlock): accumulators of one vector each.
constexpr int64_t kBlock = 8;

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
    block_ = -1;
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
    ChooseBlock();
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
    // W partial results, lane l taking the elements l, l + W, ... of the innermost axis, then
    // combined in lane order. The whole chunks of W come first; the last, shorter one is a
    // vector loop of its own constant width: with every extent a constant, LLVM keeps the
    // lanes in registers (a variable extent left them in memory, with a scalar remainder loop
    // and memset/memcpy calls in every chunk).
    int w = LanesOf(t);
    Buffer lanes = MakeBuffer(red.acc->name + "_lanes", t, {w});
    Var c = MakeVar("c"), r = red.vars.back(), l0 = MakeVar("l"), l1 = MakeVar("l");
    int64_t e = red.extents.back(), whole = e / w, rest = e % w;
    Expr lane = Ref(r) - Ref(c) * IntImm(w);
    Stmt update = Store(lanes, {lane}, Combine(red.op, Load(lanes, {lane}), red.body));
    auto chunks = [&](Stmt body) {
      Stmt s = For(c, IntImm(0), IntImm(whole), ForKind::kSerial,
                   For(r, Ref(c) * IntImm(w), IntImm(w), ForKind::kVectorize, body, w));
      if (rest == 0) return s;
      Subst last;
      last.vars[c.get()] = IntImm(whole);
      Var r1 = MakeVar(r->name, r->dtype);
      last.vars[r.get()] = Ref(r1);
      Stmt tail = For(r1, IntImm(whole * w), IntImm(rest), ForKind::kVectorize, Freshen(body, last),
                      int(rest));
      return Block({s, tail});
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

  // Register blocking: when every tiled reduction is a contraction over an outer output loop
  // (a convolution's output channels with its input, a matrix product's rows with B's rows),
  // that loop runs kBlock of its values at once inside the tile, so that each vector read
  // serves kBlock accumulators. Reductions placed between the two loops, nested reductions
  // that use the loop's variable and variable extents rule it out.
  void ChooseBlock() {
    block_ = -1;
    if (mode_ != Mode::kTile || loops_.size() < 2) return;
    for (const Loop& l : loops_)
      if (l.extent->kind != ExprKind::kIntImm) return;
    const std::vector<size_t>& inner = placed_.back();
    const VarNode* last = loops_.back().var.get();
    for (size_t k = loops_.size() - 1; k-- > 0;) {
      if (!placed_[k + 1].empty()) return;
      const VarNode* var = loops_[k].var.get();
      if (loops_[k].extent->int_value < 2) continue;
      bool uses = true;
      for (size_t i : inner) uses = uses && Contraction(reds_.list[i], last, var);
      for (size_t x = 0; x < reds_.list.size(); ++x) {
        size_t top = x;
        while (place_[top].owner >= 0) top = size_t(place_[top].owner);
        if (top != x && std::count(inner.begin(), inner.end(), top) && deps_[x].count(var))
          uses = false;
      }
      if (uses) {
        block_ = int(k);
        return;
      }
    }
  }

  // Whether `red` sums products of a factor that uses `var` and one that does not but reads a
  // buffer along `last` (each such read then serves every blocked value). Other bodies are
  // left alone: blocking a masked sum (a gradient's index compare) made LLVM branch on every
  // compare, slower than the unblocked loop.
  static bool Contraction(const Reduction& red, const VarNode* last, const VarNode* var) {
    const Expr& e = red.body;
    if (red.op != TReduceOp::kSum || e->kind != ExprKind::kBinary || e->binary_op != BinaryOp::kMul)
      return false;
    auto uses = [&](const Expr& x) {
      std::set<const VarNode*> vars;
      std::set<const BufferNode*> bufs;
      std::set<const ExprNode*> seen;
      Collect(x, vars, bufs, seen);
      return vars.count(var) > 0;
    };
    for (int k = 0; k < 2; ++k)
      if (uses(e->operands[k]) && !uses(e->operands[1 - k]) &&
          SharedVectorRead(e->operands[1 - k], last, var))
        return true;
    return false;
  }

  // Whether `e` reads a buffer at an index that moves with `last` but does not use `var`.
  static bool SharedVectorRead(const Expr& e, const VarNode* last, const VarNode* var) {
    std::set<const ExprNode*> seen;
    std::function<bool(const Expr&)> walk = [&](const Expr& x) {
      if (!seen.insert(x.get()).second) return false;
      if (x->kind == ExprKind::kLoad && !x->operands.empty() && LoadStride(x, last) != 0) {
        std::set<const VarNode*> vars;
        std::set<const BufferNode*> bufs;
        std::set<const ExprNode*> inner_seen;
        for (const Expr& o : x->operands) Collect(o, vars, bufs, inner_seen);
        if (!vars.count(var)) return true;
      }
      for (const Expr& o : x->operands)
        if (walk(o)) return true;
      return false;
    };
    return walk(e);
  }

  // The innermost output loop split into tiles of W lanes: the reductions that depend on it
  // accumulate W outputs at once, in a vectorized loop inside their own loops. The whole tiles
  // come first, then the last, shorter one as a tile of its own constant width (or, when the
  // extent is not a constant, of a variable extent under W): with constant extents LLVM keeps
  // the lanes in registers, and a partial tile no longer runs a scalar remainder loop inside
  // every iteration of the reduction's loops. `rows` values of the blocked loop from `row0`.
  Stmt Tile(const Expr& row0, int64_t rows) {
    const Loop& inner = loops_.back();
    const std::vector<size_t>& reds = placed_.back();
    size_t widest = 1;
    for (const Buffer& b : outs_) widest = std::max(widest, DTypeSize(b->dtype));
    for (size_t i : reds) widest = std::max(widest, DTypeSize(reds_.list[i].acc->dtype));
    int w = std::max(1, kVectorBytes / int(widest));
    const Expr& n = inner.extent;
    Var c = MakeVar("c");
    Expr whole = n->kind == ExprKind::kIntImm ? IntImm(n->int_value / w) : n / IntImm(w);
    Stmt tiles = For(c, IntImm(0), whole, ForKind::kSerial,
                     TileAt(Ref(c) * IntImm(w), IntImm(w), w, row0, rows));
    Subst none;
    if (n->kind != ExprKind::kIntImm) {
      Expr base = whole * IntImm(w);
      Stmt last = Freshen(TileAt(base, n - base, w, row0, rows), none);
      return Block({tiles, If(LT(base, n), last)});
    }
    int64_t rest = n->int_value % w;
    if (rest == 0) return tiles;
    Stmt last =
        Freshen(TileAt(IntImm(n->int_value - rest), IntImm(rest), int(rest), row0, rows), none);
    return n->int_value < w ? last : Block({tiles, last});
  }

  // The tile of the innermost output loop's `extent` (at most `w`) outputs from `base`, with
  // vector loops of width `w`; with blocking, for `rows` values of the blocked loop from `row0`.
  Stmt TileAt(const Expr& base, const Expr& extent, int w, const Expr& row0, int64_t rows) {
    const Loop& inner = loops_.back();
    const std::vector<size_t>& reds = placed_.back();
    const VarNode* row = block_ >= 0 ? loops_[size_t(block_)].var.get() : nullptr;
    std::vector<Buffer> lanes;
    for (size_t i : reds) {
      const Buffer& acc = reds_.list[i].acc;
      std::vector<int64_t> shape = row ? std::vector<int64_t>{rows, w} : std::vector<int64_t>{w};
      lanes.push_back(MakeBuffer(acc->name + "_lanes", acc->dtype, shape));
    }
    auto slot = [&](const Var& v, int64_t b) {
      std::vector<Expr> s = {Ref(v) - base};
      if (row) s.insert(s.begin(), IntImm(b));
      return s;
    };
    // The substitution for block row b of a vector loop over `v`: the blocked and the output
    // axis, and the lanes.
    auto subst = [&](const Var& v, int64_t b) {
      Subst s;
      s.vars[inner.var.get()] = Ref(v);
      if (row) s.vars[row] = row0 + IntImm(b);
      for (size_t k = 0; k < reds.size(); ++k)
        s.loads[reds_.list[reds[k]].acc.get()] = Load(lanes[k], slot(v, b));
      return s;
    };
    std::vector<Stmt> body, init;
    Var v0 = MakeVar("l");
    for (size_t k = 0; k < reds.size(); ++k) {
      const Reduction& red = reds_.list[reds[k]];
      for (int64_t b = 0; b < rows; ++b)
        init.push_back(Store(lanes[k], slot(v0, b), Identity(red.op, red.acc->dtype)));
    }
    body.push_back(For(v0, base, extent, ForKind::kVectorize, Block(init), w));
    std::set<const BufferNode*> tiled;
    for (size_t i : reds) tiled.insert(reds_.list[i].acc.get());
    for (size_t k = 0; k < reds.size(); ++k) {
      const Reduction& red = reds_.list[reds[k]];
      // The update of every block row: what does not depend on the row is computed once.
      auto update = [&](const Var& v, const Expr& value) {
        Sharing sharing{row, tiled, {}, {}, {}};
        Expr shared = row ? sharing.Share(value) : value;
        const std::vector<std::pair<Var, Expr>>& lets = sharing.lets;
        std::vector<Stmt> stores;
        for (int64_t b = 0; b < rows; ++b) {
          Expr lane = Load(lanes[k], slot(v, b));
          stores.push_back(
              Store(lanes[k], slot(v, b), Combine(red.op, lane, Rewrite(shared, subst(v, b)))));
        }
        Stmt s = stores.size() == 1 ? stores[0] : Block(stores);
        for (size_t j = lets.size(); j-- > 0;) s = Let(lets[j].first, lets[j].second, s);
        return For(v, base, extent, ForKind::kVectorize, s, w);
      };
      Var v = MakeVar("l");
      Subst at;
      at.vars[inner.var.get()] = Ref(v);
      body.push_back(
          ReductionLoops(reds[k], WithInterior(v, Rewrite(red.body, at), base, extent, update)));
    }
    Var vf = MakeVar("l");
    std::vector<Stmt> stores;
    for (int64_t b = 0; b < rows; ++b) {
      Subst s = subst(vf, b);
      std::vector<Expr> idx, values;
      for (const Expr& e : idx_) idx.push_back(Rewrite(e, s));
      for (const Expr& e : values_) values.push_back(Rewrite(e, s));
      stores.push_back(Stores(idx, values));
    }
    body.push_back(For(vf, base, extent, ForKind::kVectorize,
                       stores.size() == 1 ? stores[0] : Block(stores), w));
    Stmt tile = Block(body);
    for (size_t k = lanes.size(); k-- > 0;) tile = Allocate(lanes[k], tile);
    return tile;
  }

  // `e` with its largest parts that use neither `row` nor a load of `tiled` (and are not bare
  // variables or constants) bound to new variables, appended to `lets` in dependency order.
  struct Sharing {
    const VarNode* row;
    const std::set<const BufferNode*>& tiled;
    std::vector<std::pair<Var, Expr>> lets;
    std::map<const ExprNode*, bool> per_row;
    std::map<const ExprNode*, Expr> memo;

    bool PerRow(const Expr& e) {
      auto m = per_row.find(e.get());
      if (m != per_row.end()) return m->second;
      bool r = (e->kind == ExprKind::kVar && e->var.get() == row) ||
               (e->kind == ExprKind::kLoad && tiled.count(e->buffer.get()));
      for (const Expr& o : e->operands) r = PerRow(o) || r;
      return per_row[e.get()] = r;
    }

    Expr Share(const Expr& e) {
      auto m = memo.find(e.get());
      if (m != memo.end()) return m->second;
      Expr out = e;
      if (!PerRow(e)) {
        if (e->kind != ExprKind::kVar && e->kind != ExprKind::kIntImm &&
            e->kind != ExprKind::kFloatImm) {
          Var t = MakeVar("t", e->dtype);
          lets.push_back({t, e});
          out = Ref(t);
        }
      } else if (!e->operands.empty()) {
        auto n = std::make_shared<ExprNode>(*e);
        for (Expr& o : n->operands) o = Share(o);
        out = n;
      }
      return memo[e.get()] = out;
    }
  };

  // `make(v, value)`: a vectorized loop over [begin, begin + extent) storing `value`. When the
  // value reads through clamps whose argument moves with v (a padded convolution's input), a
  // copy without those clamps and without the padding tests they imply runs instead whenever
  // every lane's argument lies within its clamp's bounds: contiguous loads instead of gathers,
  // and no selects, away from the edges. The values are the same either way.
  Stmt WithInterior(const Var& v, const Expr& value, const Expr& begin, const Expr& extent,
                    const std::function<Stmt(const Var&, const Expr&)>& make) {
    std::vector<Clamp> clamps;
    std::set<const ExprNode*> seen;
    VaryingClamps(value, v.get(), clamps, seen);
    if (clamps.empty()) return make(v, value);
    Var v1 = MakeVar(v->name);
    Subst interior, first, last;
    interior.vars[v.get()] = Ref(v1);
    first.vars[v.get()] = begin;
    last.vars[v.get()] = begin + extent - IntImm(1);
    std::map<std::string, std::pair<int64_t, int64_t>> range;
    Expr cond;
    for (const Clamp& c : clamps) {
      interior.nodes[c.node] = c.arg;
      auto [it, added] = range.emplace(StructuralKey({c.arg}), std::make_pair(c.lo, c.hi));
      if (!added)
        it->second = {std::max(it->second.first, c.lo), std::min(it->second.second, c.hi)};
      Expr a = Rewrite(c.arg, first), b = Rewrite(c.arg, last);
      if (c.step < 0) std::swap(a, b);
      Expr inside = And(GE(a, IntImm(c.lo)), LE(b, IntImm(c.hi)));
      cond = cond ? And(cond, inside) : inside;
    }
    seen.clear();
    ImpliedTests(value, range, interior, seen);
    return If(cond, make(v1, Rewrite(value, interior)), make(v, value));
  }

  // The output loops from level `from` inward, for `rows` values of the blocked loop from
  // `row0` (when there is one).
  Stmt Inner(size_t from, const Expr& row0, int64_t rows) {
    size_t depth = loops_.size();
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
        s = Tile(row0, rows);
        break;
    }
    s = Wrap(placed_[depth - 1], s);
    for (size_t k = depth - 1; k-- > from;) {
      ForKind kind = k == 0 && parallel_ ? ForKind::kParallel : ForKind::kSerial;
      s = Wrap(placed_[k], For(loops_[k].var, IntImm(0), loops_[k].extent, kind, s));
    }
    return s;
  }

  Stmt Emit() {
    size_t depth = loops_.size();
    if (depth == 0) return Wrap(placed_[0], Stores(idx_, values_));
    if (block_ < 0) return Inner(0, nullptr, 1);
    // The blocked loop: whole blocks, then the rest as one block of its own size (inside the
    // parallel loop, the last task's).
    size_t k = size_t(block_);
    int64_t n = loops_[k].extent->int_value, b = std::min(kBlock, n), whole = n / b;
    int64_t rest = n % b;
    Var o = MakeVar(loops_[k].var->name + "b");
    Stmt blocks = Inner(k + 1, Ref(o) * IntImm(b), b);
    Subst none;
    Stmt last = rest ? Freshen(Inner(k + 1, IntImm(whole * b), rest), none) : nullptr;
    Stmt s;
    if (k == 0 && parallel_) {
      s = For(o, IntImm(0), IntImm(whole + (rest ? 1 : 0)), ForKind::kParallel,
              rest ? If(LT(Ref(o), IntImm(whole)), blocks, last) : blocks);
    } else {
      s = For(o, IntImm(0), IntImm(whole), ForKind::kSerial, blocks);
      if (rest) s = Block({s, last});
    }
    s = Wrap(placed_[k], s);
    for (size_t j = k; j-- > 0;) {
      ForKind kind = j == 0 && parallel_ ? ForKind::kParallel : ForKind::kSerial;
      s = Wrap(placed_[j], For(loops_[j].var, IntImm(0), loops_[j].extent, kind, s));
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
  int block_ = -1;  // the blocked output loop, or -1
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
