// lower.cpp - a graph node's compute definitions to one kernel (kiln/codegen/lower.h).
#include "kiln/codegen/lower.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>
#include <memory>
#include <utility>

#include "kiln/ir/composite.h"
#include "kiln/ir/op.h"
#include "kiln/runtime/error.h"
#include "lower_reduce.h"

namespace kiln::codegen {
namespace {

// The ops a node runs: its body's op nodes for a composite, else itself (graph, node id).
struct Group {
  const Graph* g;              // the graph whose op nodes are inlined
  std::vector<uint32_t> ops;   // op nodes of *g to lower
  std::vector<Entry> inputs;   // entries of *g that are kernel inputs, in order
  std::vector<Entry> outputs;  // entries of *g that are kernel outputs, in order
};

Group GroupOf(const Graph& g, uint32_t node) {
  const Node& n = g.node(node);
  Group grp;
  if (IsComposite(n)) {
    const Graph& body = CompositeBody(n);
    grp.g = &body;
    for (uint32_t i = 0; i < body.num_nodes(); ++i)
      if (!body.node(i).is_variable()) grp.ops.push_back(i);
    for (uint32_t v : body.VariableNodes()) grp.inputs.push_back(Entry{v, 0});
    grp.outputs = body.outputs();
  } else {
    grp.g = &g;
    grp.ops = {node};
    grp.inputs = n.inputs;
    for (int k = 0; k < n.num_outputs(); ++k) grp.outputs.push_back(Entry{node, uint32_t(k)});
  }
  return grp;
}

// The definitions of one node's outputs, or none.
std::vector<TExpr> DefinitionsOf(const Graph& g, uint32_t id, bool is_train) {
  const Node& n = g.node(id);
  if (n.is_variable() || !n.op->compute()) return {};
  std::vector<Shape> in_shapes, out_shapes;
  std::vector<DType> in_dtypes, out_dtypes;
  for (const Entry& e : n.inputs) {
    in_shapes.push_back(g.shape(e));
    in_dtypes.push_back(g.dtype(e));
  }
  for (int k = 0; k < n.num_outputs(); ++k) {
    out_shapes.push_back(g.shape(Entry{id, uint32_t(k)}));
    out_dtypes.push_back(g.dtype(Entry{id, uint32_t(k)}));
  }
  ComputeCtx ctx(n.attrs, in_shapes, in_dtypes, out_shapes, out_dtypes, n.name, is_train);
  std::vector<TExpr> defs = n.op->compute()(ctx);
  if (int(defs.size()) != n.num_outputs()) return {};
  for (int k = 0; k < n.num_outputs(); ++k)
    if (!defs[size_t(k)] || defs[size_t(k)]->dtype != out_dtypes[size_t(k)]) return {};
  return defs;
}

std::string Identifier(std::string_view name) {
  std::string s;
  for (char c : name) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) s = "k_" + s;
  return s;
}

BinaryOp ToBinary(TBinaryOp op) {
  switch (op) {
    case TBinaryOp::kAdd:
      return BinaryOp::kAdd;
    case TBinaryOp::kSub:
      return BinaryOp::kSub;
    case TBinaryOp::kMul:
      return BinaryOp::kMul;
    case TBinaryOp::kDiv:
      return BinaryOp::kDiv;
    case TBinaryOp::kMod:
      return BinaryOp::kMod;
    case TBinaryOp::kMin:
      return BinaryOp::kMin;
    case TBinaryOp::kMax:
      return BinaryOp::kMax;
    case TBinaryOp::kEQ:
      return BinaryOp::kEQ;
    case TBinaryOp::kNE:
      return BinaryOp::kNE;
    case TBinaryOp::kLT:
      return BinaryOp::kLT;
    case TBinaryOp::kLE:
      return BinaryOp::kLE;
    case TBinaryOp::kGT:
      return BinaryOp::kGT;
    case TBinaryOp::kGE:
      return BinaryOp::kGE;
    case TBinaryOp::kAnd:
      return BinaryOp::kAnd;
    case TBinaryOp::kOr:
      return BinaryOp::kOr;
  }
  KILN_INTERNAL_CHECK(false, "lower: unknown binary op");
}

Intrinsic ToIntrinsic(TMath f) {
  switch (f) {
    case TMath::kExp:
      return Intrinsic::kExp;
    case TMath::kLog:
      return Intrinsic::kLog;
    case TMath::kTanh:
      return Intrinsic::kTanh;
    case TMath::kSigmoid:
      return Intrinsic::kSigmoid;
    case TMath::kErf:
      return Intrinsic::kErf;
    case TMath::kSqrt:
      return Intrinsic::kSqrt;
    case TMath::kRsqrt:
      return Intrinsic::kRsqrt;
    case TMath::kPow:
      return Intrinsic::kPow;
    case TMath::kAbs:
      return Intrinsic::kAbs;
    case TMath::kFloor:
      return Intrinsic::kFloor;
    case TMath::kCeil:
      return Intrinsic::kCeil;
    case TMath::kRound:
      return Intrinsic::kRound;
    case TMath::kExpm1:
      return Intrinsic::kExpm1;
    case TMath::kLog1p:
      return Intrinsic::kLog1p;
    case TMath::kSin:
      return Intrinsic::kSin;
    case TMath::kCos:
      return Intrinsic::kCos;
    case TMath::kTan:
      return Intrinsic::kTan;
    case TMath::kAsin:
      return Intrinsic::kAsin;
    case TMath::kAcos:
      return Intrinsic::kAcos;
    case TMath::kAtan:
      return Intrinsic::kAtan;
    case TMath::kRandomBits:
      return Intrinsic::kRandomBits;
  }
  KILN_INTERNAL_CHECK(false, "lower: unknown math function");
}

// Inlines definitions: the value of an entry of the group at given output indices.
class Inliner {
 public:
  Inliner(const Group& grp, std::map<uint32_t, Buffer> input_buffers, bool is_train)
      : grp_(grp), inputs_(std::move(input_buffers)), is_train_(is_train) {}

  // The run's seed, when some definition draws random numbers (the kernel's scalar).
  const Var& seed() const { return seed_; }

  // The reductions of the nest being built: set before translating its values.
  void SetReductions(detail::Reductions* reds) { reds_ = reds; }

  Expr Value(Entry e, const std::vector<Expr>& idx) {
    const Graph& g = *grp_.g;
    auto in = inputs_.find(g.entry_id(e));
    if (in != inputs_.end()) return Load(in->second, idx);
    auto [it, fresh] = defs_.try_emplace(e.node);
    if (fresh) it->second = DefinitionsOf(g, e.node, is_train_);
    KILN_INTERNAL_CHECK(e.index < it->second.size(), "lower: node without a definition");
    return Translate(it->second[e.index], g.node(e.node), idx);
  }

 private:
  Expr Translate(const TExpr& t, const Node& n, const std::vector<Expr>& idx) {
    std::vector<Expr> ops;
    if (t->kind != TExprKind::kRead && t->kind != TExprKind::kReduce)
      for (const TExpr& o : t->operands) ops.push_back(Translate(o, n, idx));
    switch (t->kind) {
      case TExprKind::kAxis:
        KILN_INTERNAL_CHECK(size_t(t->index) < idx.size(), "lower: axis out of range");
        return idx[size_t(t->index)];
      case TExprKind::kConst:
        return t->dtype == DType::kBool ? BoolImm(t->value != 0) : Imm(t->value, t->dtype);
      case TExprKind::kRead: {
        std::vector<Expr> at;
        for (const TExpr& o : t->operands) at.push_back(Translate(o, n, idx));
        return Value(n.inputs.at(size_t(t->index)), at);
      }
      case TExprKind::kBinary:
        return Binary(ToBinary(t->op), ops[0], ops[1]);
      case TExprKind::kSelect:
        return Select(ops[0], ops[1], ops[2]);
      case TExprKind::kCast:
        return Cast(t->dtype, ops[0]);
      case TExprKind::kCall:
        if (t->fn == TMath::kRandomBits) {
          if (!seed_) seed_ = MakeVar("seed", DType::kInt64);
          ops.insert(ops.begin(), Ref(seed_));
        }
        return Call(ToIntrinsic(t->fn), ops);
      case TExprKind::kReduceAxis: {
        auto it = domain_vars_.find(t->domain.get());
        KILN_INTERNAL_CHECK(it != domain_vars_.end(),
                            "lower: reduction axis outside its reduction");
        return Ref(it->second.at(size_t(t->index)));
      }
      case TExprKind::kReduce:
        return Reduce(t, n, idx);
    }
    KILN_INTERNAL_CHECK(false, "lower: unknown expression");
  }

  // A reduction becomes loops around a local accumulator (lower_reduce.h); its value here is
  // the accumulator's Load. The same definition node at equal index expressions is one
  // reduction (a producer read twice by consumers at the same indices too). (A reduction using an
  // enclosing one's axes is only met while that one is translated, and that one is translated once
  // per key, so the key needs no more.)
  Expr Reduce(const TExpr& t, const Node& n, const std::vector<Expr>& idx) {
    KILN_INTERNAL_CHECK(reds_ != nullptr, "lower: a reduction outside a nest");
    std::pair<const void*, std::string> key = {t.get(), detail::StructuralKey(idx)};
    auto hit = reds_->cache.find(key);
    if (hit != reds_->cache.end()) return hit->second;
    const TReduceDomain* dom = t->domain.get();
    std::vector<Var> vars;
    for (size_t k = 0; k < dom->extents.size(); ++k)
      vars.push_back(MakeVar("r" + std::to_string(k)));
    domain_vars_[dom] = vars;
    Expr body = Translate(t->operands[0], n, idx);
    domain_vars_.erase(dom);
    Expr result = reds_->Add(t->reduce_op, std::move(vars), dom->extents, std::move(body));
    reds_->cache[key] = result;
    return result;
  }

  const Group& grp_;
  detail::Reductions* reds_ = nullptr;
  std::map<const TReduceDomain*, std::vector<Var>> domain_vars_;  // reductions being translated
  std::map<uint32_t, Buffer> inputs_;                             // entry id -> kernel input
  std::map<uint32_t, std::vector<TExpr>> defs_;  // node id -> its outputs' definitions
  bool is_train_;
  Var seed_;
};

// One loop nest over `dims` storing each output's value (lower_reduce.h).
Stmt Nest(Inliner& inl, const std::vector<int64_t>& dims,
          const std::vector<std::pair<Buffer, Entry>>& outs, bool allow_parallel,
          const LowerOptions& opt) {
  std::vector<Buffer> bufs;
  for (const auto& o : outs) bufs.push_back(o.first);
  detail::NestValue value = [&](size_t j, const std::vector<Expr>& idx, detail::Reductions& reds) {
    inl.SetReductions(&reds);
    Expr v = inl.Value(outs[j].second, idx);
    inl.SetReductions(nullptr);
    return v;
  };
  return detail::BuildNest(dims, bufs, value, allow_parallel, opt);
}

}  // namespace

std::vector<std::string> UnsupportedOps(const Graph& g, uint32_t node, bool is_train) {
  Group grp = GroupOf(g, node);
  std::vector<std::string> missing;
  for (uint32_t id : grp.ops)
    if (DefinitionsOf(*grp.g, id, is_train).empty())
      missing.push_back(
          StrCat(grp.g->node(id).op_name(), " (node \"", grp.g->node(id).name, "\")"));
  return missing;
}

Kernel LowerNode(const Graph& g, uint32_t node, const LowerOptions& options) {
  std::vector<std::string> missing = UnsupportedOps(g, node, options.is_train);
  if (!missing.empty()) {
    std::string list;
    for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
    throw UnsupportedError(StrCat("codegen: no compute definition for ", list));
  }
  Group grp = GroupOf(g, node);
  const Graph& b = *grp.g;
  Kernel k;
  k.name = Identifier(options.kernel_name.empty() ? g.node(node).name : options.kernel_name);
  std::map<uint32_t, Buffer> inputs;
  for (size_t i = 0; i < grp.inputs.size(); ++i) {
    Entry e = grp.inputs[i];
    Buffer buf = MakeBuffer(Identifier(b.node(e.node).name), b.dtype(e), b.shape(e).dims());
    k.buffers.push_back(buf);
    inputs.emplace(b.entry_id(e), buf);  // an entry read twice keeps its first buffer
  }
  // Outputs grouped by shape, in order of first appearance; the last output's shape first.
  std::vector<std::pair<std::vector<int64_t>, std::vector<std::pair<Buffer, Entry>>>> nests;
  for (size_t i = 0; i < grp.outputs.size(); ++i) {
    Entry e = grp.outputs[i];
    Buffer buf = MakeBuffer("out" + std::to_string(i), b.dtype(e), b.shape(e).dims());
    k.buffers.push_back(buf);
    const std::vector<int64_t>& dims = b.shape(e).dims();
    auto it = std::find_if(nests.begin(), nests.end(), [&](auto& n) { return n.first == dims; });
    if (it == nests.end()) {
      nests.push_back({dims, {}});
      it = std::prev(nests.end());
    }
    it->second.push_back({buf, e});
  }
  Inliner inl(grp, std::move(inputs), options.is_train);
  std::vector<Stmt> stmts;
  for (const auto& [dims, outs] : nests)
    stmts.push_back(Nest(inl, dims, outs, nests.size() == 1, options));
  k.body = stmts.size() == 1 ? stmts[0] : Block(stmts);
  if (inl.seed()) k.scalars.push_back(inl.seed());
  VerifyKernel(k);
  return k;
}

}  // namespace kiln::codegen
