// compile.cpp - a whole graph to a plan of JIT kernels (see kiln/codegen/compile.h).
#include "kiln/codegen/compile.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

#include "kiln/ir/composite.h"
#include "kiln/ir/op.h"
#include "kiln/ir/text.h"
#include "kiln/passes/fuse.h"
#include "kiln/passes/memory_plan.h"
#include "kiln/passes/pass_manager.h"
#include "kiln/runtime/error.h"
#include "library_calls.h"

namespace kiln::codegen {

// What a reference call needs besides its buffers: the node (in the compiled graph, which
// outlives the plan) and the facts of its inputs and outputs.
struct CompiledGraph::ReferenceNode {
  const Node* node = nullptr;
  std::vector<std::vector<int64_t>> in_shapes, out_shapes;
  std::vector<DType> in_dtypes, out_dtypes;
};

// What every reference call of one run reads: external 0.
struct CompiledRun::State {
  bool is_train = false;
  uint64_t seed = 0;        // also the kernels' "seed" scalar (the kRandomSeed external)
  LibraryRunState library;  // external 1: what the library calls read
};

namespace {

using Clock = std::chrono::steady_clock;

std::string JoinLines(const std::vector<std::string>& items) {
  std::string s;
  for (const std::string& item : items) s += (s.empty() ? "" : ", ") + item;
  return s;
}

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// The calling convention's function for a node run by its ops' reference kernels:
// args = {run state, reference node, inputs..., outputs...}.
void ReferenceCall(void* const* args, int64_t, int64_t) {
  auto* state = static_cast<CompiledRun::State*>(args[0]);
  const auto* rn = static_cast<const CompiledGraph::ReferenceNode*>(args[1]);
  const Node& n = *rn->node;
  KernelCtx ctx{*n.op, n.name, n.attrs, {}, {}, state->is_train, state->seed};
  const size_t num_in = rn->in_shapes.size();
  for (size_t i = 0; i < num_in; ++i)
    ctx.in.push_back(Tensor::View(args[2 + i], rn->in_shapes[i], rn->in_dtypes[i]));
  for (size_t k = 0; k < rn->out_shapes.size(); ++k) {
    void* p = args[2 + num_in + k];
    // The memory plan may put an output in place of an input; reference kernels assume
    // distinct buffers, so such an output is computed aside and copied.
    bool aliased = false;
    for (size_t i = 0; i < num_in; ++i) aliased = aliased || args[2 + i] == p;
    ctx.out.push_back(aliased ? Tensor::Empty(rn->out_shapes[k], rn->out_dtypes[k])
                              : Tensor::View(p, rn->out_shapes[k], rn->out_dtypes[k]));
  }
  n.op->reference()(ctx);
  for (size_t k = 0; k < ctx.out.size(); ++k) {
    void* p = args[2 + num_in + k];
    if (ctx.out[k].raw_data() != p && ctx.out[k].nbytes() > 0)
      std::memcpy(p, ctx.out[k].raw_data(), ctx.out[k].nbytes());
  }
}

// "FullyConnected+Activation" for a composite, the op's name otherwise.
std::string OpNames(const Node& n) {
  if (!IsComposite(n)) return n.op->name();
  const Graph& body = CompositeBody(n);
  std::string s;
  for (uint32_t i = 0; i < body.num_nodes(); ++i) {
    if (body.node(i).is_variable()) continue;
    if (!s.empty()) s += "+";
    s += body.node(i).op->name();
  }
  return s;
}

std::string OptionsKey(const CompileOptions& o) {
  const LowerOptions& l = o.lower;
  return StrCat("O", o.opt_level, " train=", o.is_train, " fwd=", o.forward_outputs,
                " cpu=", o.cpu.cpu, " llvmO", o.cpu.opt_level, " par=", l.parallel_min_elements,
                "/", l.parallel_chunk, " ref=", o.allow_reference, " lib=", o.use_library,
                " jit=", o.jit, " epi_in_gemm=", o.epilogue_in_gemm);
}

// Whether kernel `k` computes rows [r0, r1) of its row-bound buffers (parameter positions
// `row_bound`: the product it reads and the outputs it writes) as tasks [r0, r1): its body is
// one parallel loop over [0, rows), each of those buffers has the leading extents `lead` (whose
// product is `rows`), every load and store of them indexes those axes by that loop's variable
// (one axis: the variable itself; two: v / lead[1] and v % lead[1], LowerOptions::parallel_rows),
// and it stores to no other parameter.
bool RunsOverRows(const Kernel& k, const std::vector<int64_t>& lead,
                  const std::vector<size_t>& row_bound) {
  const StmtNode* loop = k.body.get();
  auto is_int = [](const Expr& e, int64_t v) {
    return e && e->kind == ExprKind::kIntImm && e->int_value == v;
  };
  int64_t rows = 1;
  for (int64_t d : lead) rows *= d;
  if (lead.empty() || lead.size() > 2 || !loop || loop->kind != StmtKind::kFor ||
      loop->for_kind != ForKind::kParallel || k.ParallelLoop() != loop || !is_int(loop->a, 0) ||
      !is_int(loop->b, rows))
    return false;
  std::set<const BufferNode*> params, bound;
  for (const Buffer& b : k.buffers) params.insert(b.get());
  for (size_t b : row_bound) {
    if (b >= k.buffers.size() || k.buffers[b]->shape.size() < lead.size() ||
        !std::equal(lead.begin(), lead.end(), k.buffers[b]->shape.begin()))
      return false;
    bound.insert(k.buffers[b].get());
  }
  auto is_var = [&](const Expr& e) { return e->kind == ExprKind::kVar && e->var == loop->var; };
  auto is_op = [&](const Expr& e, BinaryOp op) {
    return e->kind == ExprKind::kBinary && e->binary_op == op && is_var(e->operands[0]) &&
           is_int(e->operands[1], lead[1]);
  };
  auto by_row = [&](const std::vector<Expr>& index) {
    if (index.size() < lead.size()) return false;
    if (lead.size() == 1) return is_var(index[0]);
    return is_op(index[0], BinaryOp::kDiv) && is_op(index[1], BinaryOp::kMod);
  };
  bool ok = true;
  std::function<void(const Expr&)> expr = [&](const Expr& e) {
    if (!e || !ok) return;
    if (e->kind == ExprKind::kLoad && bound.count(e->buffer.get()) && !by_row(e->operands))
      ok = false;
    for (const Expr& o : e->operands) expr(o);
  };
  std::function<void(const Stmt&)> stmt = [&](const Stmt& st) {
    if (!st || !ok) return;
    expr(st->a);
    expr(st->b);
    for (const Expr& i : st->indices) expr(i);
    if (st->kind == StmtKind::kStore && params.count(st->buffer.get()) &&
        (!bound.count(st->buffer.get()) || !by_row(st->indices)))
      ok = false;
    for (const Stmt& b : st->body) stmt(b);
  };
  for (const Stmt& b : loop->body) stmt(b);
  return ok;
}

}  // namespace

std::string LibraryAnchor(const Graph& g, uint32_t node, bool is_train) {
  const Node& n = g.node(node);
  if (n.is_variable()) return "";
  if (!IsComposite(n)) return DescribeLibraryOp(g, node, is_train) ? n.op->name() : "";
  const Graph& body = CompositeBody(n);
  for (uint32_t b = 0; b < body.num_nodes(); ++b)
    if (DescribeLibraryOp(body, b, is_train)) return body.node(b).op->name();
  return "";
}

std::string CompiledGraph::Report() const {
  size_t jit = 0, library = 0;
  std::string reference;
  for (const CompiledCall& c : calls_) {
    if (c.kind == CompiledCall::Kind::kJit) {
      ++jit;
    } else if (c.kind == CompiledCall::Kind::kLibrary) {
      ++library;
    } else {
      reference += StrCat("\n  reference: ", c.ops, " (node \"", graph_.node(c.node).name, "\")");
    }
  }
  char times[160];
  std::snprintf(times, sizeof times, "passes %.1f ms, lowering %.1f ms, LLVM %.1f ms", pass_ms_,
                lower_ms_, llvm_ms_);
  return StrCat(calls_.size(), " calls for ", target_.cpu, ": ", jit, " compiled kernels, ",
                library, " runtime-library calls (GEMM, convolution, BatchNorm), ",
                calls_.size() - jit - library, " on reference kernels; arena ", plan_.arena_size,
                " bytes; ", times, reference);
}

// Builds the plan node by node.
class PlanBuilder {
 public:
  PlanBuilder(CompiledGraph& cg, const CompileOptions& options, const MemoryPlan& memory,
              std::vector<int64_t> entry_external, int64_t num_externals)
      : cg_(cg),
        g_(cg.graph_),
        options_(options),
        entry_external_(std::move(entry_external)),
        num_externals_(num_externals),
        scratch_base_(memory.arena_size),
        threads_(ThreadPool::Global().num_threads()) {
    placement_.assign(g_.num_entries(), nullptr);
    for (const BufferPlacement& b : memory.buffers) placement_[b.entry] = &b;
  }

  PlanArg ArgOf(const Entry& e) const {
    uint32_t id = g_.entry_id(e);
    if (entry_external_[id] >= 0) return PlanArg::External(entry_external_[id]);
    const BufferPlacement* b = placement_[id];
    KILN_INTERNAL_CHECK(b, "entry ", EntryDisplayName(g_, id), " has no place in the arena");
    return PlanArg::Arena(b->offset, b->bytes);
  }

  // Adds node `i`'s calls: a library call (and its epilogue's kernel), one JIT kernel, or a
  // reference call.
  void AddNode(uint32_t i, bool lowerable) {
    const Node& n = g_.node(i);
    std::vector<PlanArg> in, out;
    for (const Entry& e : n.inputs) in.push_back(ArgOf(e));
    for (uint32_t k = 0; k < uint32_t(n.num_outputs()); ++k) out.push_back(ArgOf(Entry{i, k}));
    if (options_.use_library && AddLibrary(i, in, out)) return;
    if (lowerable) {
      AddJit(g_, i, n.name, OpNames(n), i, in, out);
      return;
    }
    AddReference(g_, i, n.name, OpNames(n), i, in, out);
  }

  int64_t num_externals() const { return num_externals_; }
  int64_t scratch_size() const { return scratch_max_; }
  // Where each kernel's function goes, in kernel order: a plan call's function, or (`library`
  // not null) a library call's row kernel.
  struct KernelTarget {
    size_t call = 0;
    LibraryCallNode* library = nullptr;
  };
  const std::vector<KernelTarget>& kernel_targets() const { return kernel_targets_; }

 private:
  void Push(PlanCall call, CompiledCall info) {
    cg_.plan_.calls.push_back(std::move(call));
    cg_.calls_.push_back(std::move(info));
  }

  void AddJit(const Graph& g, uint32_t node, const std::string& name, const std::string& ops,
              uint32_t graph_node, const std::vector<PlanArg>& in,
              const std::vector<PlanArg>& out) {
    LowerOptions lo = options_.lower;
    lo.kernel_name = StrCat("k", cg_.plan_.calls.size(), "_", name);
    lo.is_train = options_.is_train;
    cg_.kernels_.push_back(LowerNode(g, node, lo));
    const Kernel& k = cg_.kernels_.back();
    PlanCall call{name, nullptr, in, TaskCount(k)};
    for (const PlanArg& o : out) call.args.push_back(o.Written());
    // The bytes the kernel touches, per buffer: external arguments get them too, so that an
    // artifact loader can check them against the tensors it binds.
    for (size_t b = 0; b < call.args.size() && b < k.buffers.size(); ++b)
      call.args[b].bytes = k.buffers[b]->NumElements() * int64_t(DTypeSize(k.buffers[b]->dtype));
    AddScalarArgs(k, call);
    kernel_targets_.push_back({cg_.plan_.calls.size(), nullptr});
    Push(std::move(call), {CompiledCall::Kind::kJit, graph_node, ops, cg_.kernels_.back().name});
  }

  void AddReference(const Graph& g, uint32_t node, const std::string& name, const std::string& ops,
                    uint32_t graph_node, const std::vector<PlanArg>& in,
                    const std::vector<PlanArg>& out) {
    const Node& n = g.node(node);
    auto rn = std::make_shared<CompiledGraph::ReferenceNode>();
    rn->node = &n;
    for (const Entry& e : n.inputs) {
      rn->in_shapes.push_back(g.shape(e).dims());
      rn->in_dtypes.push_back(g.dtype(e));
    }
    for (uint32_t k = 0; k < uint32_t(n.num_outputs()); ++k) {
      rn->out_shapes.push_back(g.shape(Entry{node, k}).dims());
      rn->out_dtypes.push_back(g.dtype(Entry{node, k}));
    }
    PlanCall call{name, &ReferenceCall, {PlanArg::External(0), Context(rn, {kRef, 0})}, 1};
    call.args.insert(call.args.end(), in.begin(), in.end());
    call.args.insert(call.args.end(), out.begin(), out.end());
    Push(std::move(call), {CompiledCall::Kind::kReference, graph_node, ops, ""});
  }

  static constexpr ExternalSlot::Kind kRef = ExternalSlot::Kind::kReferenceNode;

  // A kernel's scalar arguments, after its buffers: the only scalar a lowered kernel takes is
  // the run's seed (lower.h).
  void AddScalarArgs(const Kernel& k, PlanCall& call) {
    for (const Var& v : k.scalars) {
      KILN_INTERNAL_CHECK(v->name == "seed" && v->dtype == DType::kInt64, "kernel ", k.name,
                          " takes an unknown scalar ", v->name);
      call.args.push_back(SeedArg());
    }
  }

  // The external holding the run's seed (added by the first kernel that draws).
  PlanArg SeedArg() {
    if (cg_.seed_external_ < 0) {
      cg_.externals_.push_back({ExternalSlot::Kind::kRandomSeed, 0});
      cg_.seed_external_ = num_externals_++;
    }
    return PlanArg::External(cg_.seed_external_);
  }

  static PlanArg WithBytes(PlanArg a, int64_t bytes) {
    a.bytes = bytes;
    return a;
  }

  PlanArg Context(std::shared_ptr<void> object, ExternalSlot slot) {
    cg_.externals_.push_back(slot);
    cg_.host_objects_.push_back(object);
    cg_.host_contexts_.push_back({num_externals_, object.get()});
    return PlanArg::External(num_externals_++);
  }

  // A library product, alone or as the anchor of a fused group whose other ops (the epilogue)
  // become one more kernel reading its result.
  bool AddLibrary(uint32_t i, const std::vector<PlanArg>& in, const std::vector<PlanArg>& out) {
    const Node& n = g_.node(i);
    if (!IsComposite(n)) {
      std::optional<LibraryOpDesc> op = DescribeLibraryOp(g_, i, options_.is_train);
      if (!op) return false;
      AddLibraryCall(*op, n.name, n.op->name(), i, in, out, 0);
      return true;
    }
    const Graph& body = CompositeBody(n);
    std::optional<uint32_t> anchor;
    std::optional<LibraryOpDesc> op;
    for (uint32_t b = 0; b < body.num_nodes() && !op; ++b)
      if ((op = DescribeLibraryOp(body, b, options_.is_train))) anchor = b;
    if (!op) return false;
    const Node& a = body.node(*anchor);
    // Where the anchor's outputs go: a composite output when one is, else scratch after the arena.
    std::vector<PlanArg> anchor_in, anchor_out;
    std::vector<uint32_t> vars = body.VariableNodes();
    for (const Entry& e : a.inputs) {
      auto it = std::find(vars.begin(), vars.end(), e.node);
      if (it == vars.end()) return false;  // fusion puts no prologue before heavy ops (D32)
      anchor_in.push_back(in[size_t(it - vars.begin())]);
    }
    int64_t scratch = 0;
    for (uint32_t k = 0; k < uint32_t(a.num_outputs()); ++k) {
      std::optional<size_t> as_output;
      for (size_t o = 0; o < body.outputs().size(); ++o)
        if (body.outputs()[o] == Entry{*anchor, k}) as_output = o;
      if (as_output) {
        anchor_out.push_back(out[*as_output]);
        continue;
      }
      int64_t bytes = body.shape(Entry{*anchor, k}).NumElements() *
                      int64_t(DTypeSize(body.dtype(Entry{*anchor, k})));
      anchor_out.push_back(PlanArg::Arena(scratch_base_ + scratch, bytes));
      scratch += (bytes + kMemoryAlignment - 1) / kMemoryAlignment * kMemoryAlignment;
    }
    LibraryCallNode* ln = AddLibraryCall(*op, StrCat(n.name, ".", a.name), a.op->name(), i,
                                         anchor_in, anchor_out, scratch);
    AddEpilogue(i, *anchor, in, out, anchor_out, *op, ln);
    return true;
  }

  LibraryCallNode* AddLibraryCall(const LibraryOpDesc& desc, const std::string& name,
                                  const std::string& ops, uint32_t node,
                                  const std::vector<PlanArg>& in, const std::vector<PlanArg>& out,
                                  int64_t scratch_used) {
    auto ln = std::make_shared<LibraryCallNode>();
    ln->op = MakeLibraryOp(desc);
    ln->threads = threads_;
    KILN_INTERNAL_CHECK(ln->op->num_inputs() == in.size() && ln->op->num_outputs() == out.size(),
                        "library op ", LibraryOpKindName(desc.kind), " of ", name, " takes ",
                        ln->op->num_inputs(), " inputs and ", ln->op->num_outputs(),
                        " outputs; the node has ", in.size(), " and ", out.size());
    int64_t ws = ln->op->WorkspaceBytes(threads_);
    const int64_t library = int64_t(cg_.library_ops_.size());
    cg_.library_ops_.push_back(desc);
    PlanCall call{name,
                  &LibraryCall,
                  {PlanArg::External(1), Context(ln, {ExternalSlot::Kind::kLibraryNode, library})},
                  1};
    std::vector<int64_t> in_bytes, out_bytes;
    ln->op->ArgBytes(in_bytes, out_bytes);
    for (size_t k = 0; k < in.size(); ++k) call.args.push_back(WithBytes(in[k], in_bytes[k]));
    for (size_t k = 0; k < out.size(); ++k)
      call.args.push_back(WithBytes(out[k], out_bytes[k]).Written());
    call.args.push_back(PlanArg::Arena(scratch_base_ + scratch_used, ws));
    scratch_max_ = std::max(scratch_max_, scratch_used + ws);
    Push(std::move(call), {CompiledCall::Kind::kLibrary, node, ops, "", library});
    return ln.get();
  }

  // With epilogue_in_gemm, the epilogue node `node` of `g` (inputs `in`, outputs `out`; the
  // library call's products at positions `product` of `in`) as the row kernel of the library
  // call just added, when its kernel runs over the product's rows. False: not fused.
  bool AddRowKernel(const Graph& g, uint32_t node, const std::string& ops,
                    const LibraryOpDesc& desc, LibraryCallNode* ln, const std::vector<PlanArg>& in,
                    const std::vector<PlanArg>& out, std::vector<size_t> product) {
    if (!options_.epilogue_in_gemm || !ln->op->SupportsRowKernel()) return false;
    // The product's leading extents whose elements are the library's rows: FullyConnected's
    // batch rows; a forward convolution's (image, output channel) pairs.
    std::vector<int64_t> lead;
    if (desc.kind == LibraryOpKind::kFullyConnected && !desc.ints.empty())
      lead = {desc.ints[0]};
    else if (desc.kind == LibraryOpKind::kConvolution && desc.ints.size() > 4)
      lead = {desc.ints[0], desc.ints[4]};
    else
      return false;
    for (int64_t d : lead)
      if (d <= 0) return false;
    const size_t call_index = cg_.plan_.calls.size() - 1;
    LowerOptions lo = options_.lower;
    lo.parallel_min_elements = 1;  // the outermost loop parallel, so that tasks are rows
    lo.parallel_rows = int(lead.size());
    lo.kernel_name = StrCat("k", call_index, "_", g.node(node).name);
    lo.is_train = options_.is_train;
    Kernel k = LowerNode(g, node, lo);
    for (size_t o = 0; o < out.size(); ++o) product.push_back(in.size() + o);
    if (k.buffers.size() != in.size() + out.size() || !RunsOverRows(k, lead, product)) return false;
    PlanCall& call = cg_.plan_.calls.back();
    for (size_t b = 0; b < k.buffers.size(); ++b) {
      PlanArg a = b < in.size() ? in[b] : out[b - in.size()].Written();
      call.args.push_back(
          WithBytes(a, k.buffers[b]->NumElements() * int64_t(DTypeSize(k.buffers[b]->dtype))));
    }
    AddScalarArgs(k, call);  // a Dropout in the epilogue draws from the run's seed
    CompiledCall& info = cg_.calls_.back();
    info.ops += "+" + ops;
    info.kernel = k.name;
    cg_.kernels_.push_back(std::move(k));
    kernel_targets_.push_back({call_index, ln});
    cg_.epilogues_in_gemm_ = true;
    return true;
  }

  // The composite's ops after the anchor, as a composite of their own whose inputs are the
  // group's inputs they read and the anchor's outputs.
  void AddEpilogue(uint32_t i, uint32_t anchor, const std::vector<PlanArg>& in,
                   const std::vector<PlanArg>& out, const std::vector<PlanArg>& anchor_out,
                   const LibraryOpDesc& desc, LibraryCallNode* ln) {
    const Node& n = g_.node(i);
    const Graph& body = CompositeBody(n);
    auto epi = std::make_shared<Graph>();
    auto outer = std::make_shared<Graph>();
    std::vector<Entry> map(body.num_entries());
    std::vector<PlanArg> epi_in;
    std::vector<size_t> product;  // the positions in epi_in of the anchor's outputs
    std::vector<Entry> outer_in;
    InferOptions io;
    auto add_input = [&](const std::string& name, const Shape& s, DType t, PlanArg arg) {
      uint32_t v = epi->AddVariable(name);
      outer_in.push_back(Entry{outer->AddVariable(name), 0});
      io.shapes[name] = s;
      io.dtypes[name] = t;
      epi_in.push_back(arg);
      return Entry{v, 0};
    };
    std::vector<uint32_t> vars = body.VariableNodes();
    size_t ops = 0;
    for (uint32_t b = 0; b < body.num_nodes(); ++b) {
      const Node& bn = body.node(b);
      if (b == anchor) {
        for (uint32_t k = 0; k < uint32_t(bn.num_outputs()); ++k) {
          product.push_back(epi_in.size());
          map[body.entry_id(b, k)] = add_input(StrCat(bn.name, "_out", k), body.shape(Entry{b, k}),
                                               body.dtype(Entry{b, k}), anchor_out[k]);
        }
        continue;
      }
      if (bn.is_variable()) {
        size_t j = size_t(std::find(vars.begin(), vars.end(), b) - vars.begin());
        bool read_by_epilogue = false;
        for (uint32_t c = 0; c < body.num_nodes(); ++c)
          if (c != anchor)
            for (const Entry& e : body.node(c).inputs) read_by_epilogue |= e.node == b;
        if (read_by_epilogue)
          map[body.entry_id(b, 0)] =
              add_input(bn.name, body.shape(Entry{b, 0}), body.dtype(Entry{b, 0}), in[j]);
        continue;
      }
      Node copy = bn;
      for (Entry& e : copy.inputs) e = map[body.entry_id(e)];
      uint32_t c = epi->AddNode(std::move(copy));
      for (uint32_t k = 0; k < uint32_t(bn.num_outputs()); ++k) map[body.entry_id(b, k)] = {c, k};
      ++ops;
    }
    if (ops == 0) return;  // the anchor's outputs are the group's: nothing after it
    std::vector<PlanArg> epi_out;
    for (size_t o = 0; o < body.outputs().size(); ++o) {
      const Entry& e = body.outputs()[o];
      if (e.node == anchor) continue;  // written by the library call
      epi->AddOutput(map[body.entry_id(e)]);
      epi_out.push_back(out[o]);
    }
    InferShapes(*epi, io);
    InferTypes(*epi, io);
    uint32_t c = outer->AddNode(MakeComposite(n.name + "_epilogue", "", epi, outer_in));
    for (size_t k = 0; k < epi->outputs().size(); ++k) outer->AddOutput(Entry{c, uint32_t(k)});
    InferShapes(*outer, io);
    InferTypes(*outer, io);
    cg_.epilogue_graphs_.push_back(outer);
    std::string ops_names = OpNames(outer->node(c));
    if (UnsupportedOps(*outer, c, options_.is_train).empty()) {
      if (!AddRowKernel(*outer, c, ops_names, desc, ln, epi_in, epi_out, product))
        AddJit(*outer, c, outer->node(c).name, ops_names, i, epi_in, epi_out);
    } else {
      AddReference(*outer, c, outer->node(c).name, ops_names, i, epi_in, epi_out);
    }
  }

  CompiledGraph& cg_;
  const Graph& g_;
  const CompileOptions& options_;
  std::vector<int64_t> entry_external_;
  int64_t num_externals_;
  std::vector<const BufferPlacement*> placement_;
  int64_t scratch_base_ = 0, scratch_max_ = 0;
  int threads_ = 1;
  std::vector<KernelTarget> kernel_targets_;
};

std::shared_ptr<const CompiledGraph> CompileGraph(Graph g, const CompileOptions& options) {
  auto cg = std::make_shared<CompiledGraph>();
  Clock::time_point t0 = Clock::now();
  PassContext ctx;
  ctx.infer = options.infer;
  ctx.is_train = options.is_train;
  ctx.forward_outputs = options.forward_outputs;
  PassManager pm(OptPipeline(options.opt_level));
  pm.options() = options.passes;
  for (uint32_t v : g.VariableNodes()) cg->given_variables_.insert(g.node(v).name);
  cg->graph_ = pm.Run(std::move(g), ctx);
  const Graph& graph = cg->graph_;
  MemoryPlan memory = PlanMemory(graph);
  cg->pass_ms_ = MsSince(t0);
  cg->pass_timing_ = pm.TimingReport();

  // Which nodes lower to one kernel; the others need the library or the reference kernels.
  t0 = Clock::now();
  std::vector<bool> lowerable(graph.num_nodes(), false);
  std::vector<std::string> unsupported;
  for (uint32_t i = 0; i < graph.num_nodes(); ++i) {
    if (graph.node(i).is_variable()) continue;
    std::vector<std::string> missing = UnsupportedOps(graph, i, options.is_train);
    lowerable[i] = missing.empty();
    unsupported.insert(unsupported.end(), missing.begin(), missing.end());
  }

  // Externals: the run state, the library state, the variables, the outputs, then host-call
  // contexts.
  cg->first_variable_external_ = 2;
  cg->externals_ = {{ExternalSlot::Kind::kRunState, 0}, {ExternalSlot::Kind::kLibraryState, 0}};
  cg->variables_ = graph.VariableNodes();
  for (size_t v = 0; v < cg->variables_.size(); ++v)
    cg->variable_index_[graph.node(cg->variables_[v]).name] = v;
  std::vector<int64_t> entry_external(graph.num_entries(), -1);
  for (size_t v = 0; v < cg->variables_.size(); ++v) {
    entry_external[graph.entry_id(cg->variables_[v], 0)] =
        cg->first_variable_external_ + int64_t(v);
    cg->externals_.push_back({ExternalSlot::Kind::kVariable, int64_t(v)});
  }
  int64_t next_external = cg->first_variable_external_ + int64_t(cg->variables_.size());
  for (const Entry& e : graph.outputs()) {
    CompiledGraph::Slot slot;
    if (graph.node(e.node).is_variable()) {
      slot.variable = int64_t(cg->variable_index_.at(graph.node(e.node).name));
    } else {
      int64_t& ext = entry_external[graph.entry_id(e)];
      if (ext < 0) {
        ext = next_external++;
        cg->externals_.push_back(
            {ExternalSlot::Kind::kOutput, int64_t(cg->output_entries_.size())});
        cg->output_entries_.push_back(e);
      }
      slot.external = ext;
    }
    cg->outputs_.push_back(slot);
  }

  const uint32_t forward_nodes = options.forward_outputs > 0
                                     ? ForwardPrefix(graph, options.forward_outputs)
                                     : graph.num_nodes();
  PlanBuilder builder(*cg, options, memory, std::move(entry_external), next_external);
  for (uint32_t i = 0; i < graph.num_nodes(); ++i) {
    if (graph.node(i).is_variable()) continue;
    builder.AddNode(i, lowerable[i]);
    if (i < forward_nodes) cg->forward_calls_ = cg->plan_.calls.size();
  }
  if (options.forward_outputs == 0) cg->forward_calls_ = cg->plan_.calls.size();
  if (!options.allow_reference) {
    std::vector<std::string> left;
    for (const CompiledCall& c : cg->calls_)
      if (c.kind == CompiledCall::Kind::kReference)
        left.push_back(StrCat(c.ops, " (node \"", graph.node(c.node).name, "\")"));
    if (!left.empty())
      throw UnsupportedError(StrCat("the CPU backend cannot compile ", left.size(),
                                    " kernel(s) yet: ", JoinLines(left)));
  }
  Plan& plan = cg->plan_;
  plan.arena_alignment = kMemoryAlignment;
  plan.arena_size = memory.arena_size + builder.scratch_size();
  plan.num_externals = builder.num_externals();
  cg->lower_ms_ = MsSince(t0);

  cg->library_threads_ = ThreadPool::Global().num_threads();
  if (!options.jit) {
    cg->target_ = ResolveCpuTarget(options.cpu);
    return cg;
  }
  t0 = Clock::now();
  cg->jit_ = std::make_shared<LLVMJit>(options.cpu);
  cg->target_ = cg->jit_->target();
  if (!cg->kernels_.empty()) {
    std::vector<KernelFn> fns = cg->jit_->Compile(cg->kernels_);
    for (size_t j = 0; j < builder.kernel_targets().size(); ++j) {
      const PlanBuilder::KernelTarget& t = builder.kernel_targets()[j];
      if (t.library)
        t.library->row_kernel = fns[j];
      else
        plan.calls[t.call].fn = fns[j];
    }
  }
  cg->llvm_ms_ = MsSince(t0);
  std::vector<std::string> problems = VerifyPlan(plan);
  KILN_INTERNAL_CHECK(problems.empty(), "compiled plan: ", JoinLines(problems));
  if (const char* report = std::getenv("KILN_COMPILE_REPORT"); report && *report == '1')
    std::fprintf(stderr, "kiln: compiled %s\n", cg->Report().c_str());
  return cg;
}

// --- The cache ---

namespace {

struct Cache {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<const CompiledGraph>> entries;
  CompileCacheStats stats;
};

Cache& GlobalCache() {
  static Cache* cache = new Cache;  // never destroyed: compiled code may run at exit
  return *cache;
}

}  // namespace

std::shared_ptr<const CompiledGraph> CompileGraphCached(const Graph& g,
                                                        const CompileOptions& options) {
  Graph typed = g;
  InferOptions infer = options.infer;
  InferShapes(typed, infer);
  InferTypes(typed, infer);
  const CpuTarget target = ResolveCpuTarget(options.cpu);
  std::string key =
      StrCat(OptionsKey(options), " target=", target.cpu, target.features, "\n", PrintGraph(typed));
  Cache& cache = GlobalCache();
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto it = cache.entries.find(key);
    if (it != cache.entries.end()) {
      ++cache.stats.hits;
      return it->second;
    }
    ++cache.stats.misses;
  }
  // Compiled outside the lock: two threads compiling one graph at once both compile, and the
  // first to finish wins.
  std::shared_ptr<const CompiledGraph> cg = CompileGraph(std::move(typed), options);
  std::lock_guard<std::mutex> lock(cache.mutex);
  auto [it, inserted] = cache.entries.emplace(std::move(key), cg);
  cache.stats.entries = cache.entries.size();
  return it->second;
}

CompileCacheStats GetCompileCacheStats() {
  Cache& cache = GlobalCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  return cache.stats;
}

// --- Running ---

CompiledRun::CompiledRun(std::shared_ptr<const CompiledGraph> graph, ThreadPool* pool)
    : graph_(std::move(graph)),
      arena_(Storage::Allocate(size_t(graph_->plan().arena_size))),
      executor_(graph_->plan(), pool ? pool : &ThreadPool::Global()),
      state_(std::make_shared<State>()) {
  const CompiledGraph& cg = *graph_;
  if (!cg.jitted())
    throw UserError("this graph was compiled without the JIT (CompileOptions::jit = false)");
  variables_.resize(cg.variables_.size());
  externals_.assign(size_t(cg.plan_.num_externals), nullptr);
  externals_[0] = state_.get();
  externals_[1] = &state_->library;
  state_->library.pool = pool ? pool : &ThreadPool::Global();
  for (const auto& [index, context] : cg.host_contexts_) externals_[size_t(index)] = context;
  if (cg.seed_external_ >= 0) externals_[size_t(cg.seed_external_)] = &state_->seed;
  int64_t ext = cg.first_variable_external_ + int64_t(cg.variables_.size());
  for (const Entry& e : cg.output_entries_) {
    outputs_.push_back(Tensor::Empty(cg.graph_.shape(e).dims(), cg.graph_.dtype(e)));
    externals_[size_t(ext++)] = outputs_.back().raw_data();
  }
}

void CompiledRun::Bind(const std::string& name, const Tensor& value) {
  const CompiledGraph& cg = *graph_;
  auto it = cg.variable_index_.find(name);
  if (it == cg.variable_index_.end()) {
    if (cg.given_variables_.count(name)) return;  // removed by the passes: nothing reads it
    throw UserError(StrCat("the compiled graph has no variable \"", name, "\""));
  }
  const Entry e{cg.variables_[it->second], 0};
  const Shape& s = cg.graph_.shape(e);
  if (!value.defined() || Shape(value.shape()) != s || value.dtype() != cg.graph_.dtype(e))
    throw UserError(StrCat("variable \"", name, "\" bound to ",
                           value.defined() ? value.TypeString() : "an undefined tensor",
                           " but the graph was compiled for ", DTypeName(cg.graph_.dtype(e)),
                           s.ToString()));
  if (!(value.device() == Device::CPU()))
    throw UserError(StrCat("variable \"", name, "\" is on ", value.device().ToString(),
                           "; compiled CPU code needs CPU tensors"));
  variables_[it->second] = value;
  externals_[size_t(cg.first_variable_external_) + it->second] = value.raw_data();
  state_->library.prepacked.clear();
}

void CompiledRun::FreezeVariables(bool frozen) {
  state_->library.frozen = frozen;
  state_->library.prepacked.clear();
}

std::string CompiledGraph::RandomCalls() const {
  std::string list;
  for (size_t c = 0; c < plan_.calls.size(); ++c)
    for (const PlanArg& a : plan_.calls[c].args)
      if (a.kind == PlanArg::Kind::kExternal && a.index == seed_external_) {
        list += StrCat(list.empty() ? "" : ", ", calls_[c].ops, " (node \"",
                       graph_.node(calls_[c].node).name, "\")");
        break;
      }
  return list;
}

bool CompiledRun::IsBound(const std::string& name) const {
  auto it = graph_->variable_index_.find(name);
  return it != graph_->variable_index_.end() && variables_[it->second].defined();
}

void CompiledRun::RunCalls(size_t first, size_t last, bool is_train, uint64_t seed) {
  const CompiledGraph& cg = *graph_;
  const Plan& plan = cg.plan_;
  for (size_t c = first; c < last && c < plan.calls.size(); ++c)
    for (const PlanArg& a : plan.calls[c].args) {
      int64_t v = a.index - cg.first_variable_external_;
      if (a.kind == PlanArg::Kind::kExternal && v >= 0 && v < int64_t(cg.variables_.size()) &&
          !variables_[size_t(v)].defined())
        throw UserError(StrCat("variable \"", cg.graph_.node(cg.variables_[size_t(v)]).name,
                               "\" has no value (", plan.calls[c].name, " reads it)"));
    }
  state_->is_train = is_train;
  state_->seed = seed;
  executor_.Run(arena_->data(), externals_.data(), first, last);
}

bool CompiledRun::BindOutput(size_t k, const Tensor& value) {
  const CompiledGraph& cg = *graph_;
  const CompiledGraph::Slot& slot = cg.outputs_.at(k);
  if (slot.external < 0) return false;
  for (size_t j = 0; j < cg.outputs_.size(); ++j)
    if (j != k && cg.outputs_[j].external == slot.external) return false;
  Tensor& mine =
      outputs_[size_t(slot.external - cg.first_variable_external_ - int64_t(cg.variables_.size()))];
  if (!value.defined() || value.shape() != mine.shape() || value.dtype() != mine.dtype() ||
      !(value.device() == Device::CPU()))
    throw UserError(StrCat("output ", k, " bound to ",
                           value.defined() ? value.TypeString() : "an undefined tensor",
                           " but the graph computes ", mine.TypeString()));
  mine = value;
  externals_[size_t(slot.external)] = value.raw_data();
  return true;
}

Tensor CompiledRun::output(size_t k) const {
  const CompiledGraph::Slot& slot = graph_->outputs_.at(k);
  if (slot.variable >= 0) return variables_[size_t(slot.variable)];
  return outputs_[size_t(slot.external - graph_->first_variable_external_ -
                         int64_t(graph_->variables_.size()))];
}

}  // namespace kiln::codegen
