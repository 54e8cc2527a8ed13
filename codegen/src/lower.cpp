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
std::vector<TExpr> DefinitionsOf(const Graph& g, uint32_t id) {
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
  ComputeCtx ctx(n.attrs, in_shapes, in_dtypes, out_shapes, out_dtypes);
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
  }
  KILN_INTERNAL_CHECK(false, "lower: unknown math function");
}

// Inlines definitions: the value of an entry of the group at given output indices.
class Inliner {
 public:
  Inliner(const Group& grp, std::map<uint32_t, Buffer> input_buffers)
      : grp_(grp), inputs_(std::move(input_buffers)) {}

  Expr Value(Entry e, const std::vector<Expr>& idx) {
    const Graph& g = *grp_.g;
    auto in = inputs_.find(g.entry_id(e));
    if (in != inputs_.end()) return Load(in->second, idx);
    auto [it, fresh] = defs_.try_emplace(e.node);
    if (fresh) it->second = DefinitionsOf(g, e.node);
    KILN_INTERNAL_CHECK(e.index < it->second.size(), "lower: node without a definition");
    return Translate(it->second[e.index], g.node(e.node), idx);
  }

 private:
  Expr Translate(const TExpr& t, const Node& n, const std::vector<Expr>& idx) {
    std::vector<Expr> ops;
    if (t->kind != TExprKind::kRead)
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
        return Call(ToIntrinsic(t->fn), ops);
    }
    KILN_INTERNAL_CHECK(false, "lower: unknown expression");
  }

  const Group& grp_;
  std::map<uint32_t, Buffer> inputs_;            // entry id -> kernel input
  std::map<uint32_t, std::vector<TExpr>> defs_;  // node id -> its outputs' definitions
};

// One loop nest over `dims` storing each output's value.
Stmt Nest(Inliner& inl, const std::vector<int64_t>& dims,
          const std::vector<std::pair<Buffer, Entry>>& outs, bool allow_parallel,
          const LowerOptions& opt) {
  int64_t total = 1;
  for (int64_t d : dims) total *= d;
  auto stores = [&](const std::vector<Expr>& idx) {
    std::vector<Stmt> s;
    for (const auto& [buf, e] : outs) s.push_back(Store(buf, idx, inl.Value(e, idx)));
    return s.size() == 1 ? s[0] : Block(s);
  };
  if (dims.empty()) return stores({});
  bool parallel = allow_parallel && total >= opt.parallel_min_elements && total > 0;
  size_t r = dims.size();
  if (r == 1 && parallel) {
    // Chunks of the one axis: the parallel loop needs a constant extent, the vector loop is
    // the chunk (the last one shorter).
    int64_t c = opt.parallel_chunk, n = dims[0];
    Var o = MakeVar("o"), i = MakeVar("i");
    Expr start = Ref(o) * IntImm(c);
    Stmt body = stores({start + Ref(i)});
    return For(o, IntImm(0), IntImm((n + c - 1) / c), ForKind::kParallel,
               For(i, IntImm(0), Min(IntImm(c), IntImm(n) - start), ForKind::kVectorize, body));
  }
  std::vector<Var> vars;
  std::vector<Expr> idx;
  for (size_t k = 0; k < r; ++k) {
    vars.push_back(MakeVar("i" + std::to_string(k)));
    idx.push_back(Ref(vars.back()));
  }
  Stmt s = stores(idx);
  for (size_t k = r; k-- > 0;) {
    ForKind kind = k + 1 == r           ? ForKind::kVectorize
                   : k == 0 && parallel ? ForKind::kParallel
                                        : ForKind::kSerial;
    s = For(vars[k], IntImm(0), IntImm(dims[k]), kind, s);
  }
  return s;
}

}  // namespace

std::vector<std::string> UnsupportedOps(const Graph& g, uint32_t node) {
  Group grp = GroupOf(g, node);
  std::vector<std::string> missing;
  for (uint32_t id : grp.ops)
    if (DefinitionsOf(*grp.g, id).empty())
      missing.push_back(
          StrCat(grp.g->node(id).op_name(), " (node \"", grp.g->node(id).name, "\")"));
  return missing;
}

Kernel LowerNode(const Graph& g, uint32_t node, const LowerOptions& options) {
  std::vector<std::string> missing = UnsupportedOps(g, node);
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
  Inliner inl(grp, std::move(inputs));
  std::vector<Stmt> stmts;
  for (const auto& [dims, outs] : nests)
    stmts.push_back(Nest(inl, dims, outs, nests.size() == 1, options));
  k.body = stmts.size() == 1 ? stmts[0] : Block(stmts);
  VerifyKernel(k);
  return k;
}

}  // namespace kiln::codegen
