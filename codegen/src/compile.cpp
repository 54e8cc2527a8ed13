// compile.cpp - a whole graph to a plan of JIT kernels (see kiln/codegen/compile.h).
#include "kiln/codegen/compile.h"

#include <chrono>
#include <cstring>
#include <mutex>
#include <utility>

#include "kiln/ir/composite.h"
#include "kiln/ir/op.h"
#include "kiln/ir/text.h"
#include "kiln/passes/fuse.h"
#include "kiln/passes/memory_plan.h"
#include "kiln/passes/pass_manager.h"
#include "kiln/runtime/error.h"

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
  std::mt19937_64 rng;
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
  KernelCtx ctx{*n.op, n.name, n.attrs, {}, {}, state->is_train, &state->rng};
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
                "/", l.parallel_chunk, " ref=", o.allow_reference);
}

}  // namespace

std::string CompiledGraph::Report() const {
  size_t jit = 0;
  std::string reference;
  for (const CompiledCall& c : calls_) {
    if (c.kind == CompiledCall::Kind::kJit) {
      ++jit;
      continue;
    }
    reference += StrCat("\n  reference: ", c.ops, " (node \"", graph_.node(c.node).name, "\")");
  }
  char times[160];
  std::snprintf(times, sizeof times, "passes %.1f ms, lowering %.1f ms, LLVM %.1f ms", pass_ms_,
                lower_ms_, llvm_ms_);
  return StrCat(calls_.size(), " kernels for ", target_.cpu, ": ", jit, " compiled, ",
                calls_.size() - jit, " on reference kernels; arena ", plan_.arena_size, " bytes; ",
                times, reference);
}

std::shared_ptr<const CompiledGraph> CompileGraph(Graph g, const CompileOptions& options) {
  auto cg = std::make_shared<CompiledGraph>();
  Clock::time_point t0 = Clock::now();
  PassContext ctx;
  ctx.infer = options.infer;
  ctx.is_train = options.is_train;
  ctx.forward_outputs = options.forward_outputs;
  PassManager pm(OptPipeline(options.opt_level));
  cg->graph_ = pm.Run(std::move(g), ctx);
  const Graph& graph = cg->graph_;
  MemoryPlan memory = PlanMemory(graph);
  cg->pass_ms_ = MsSince(t0);

  // Externals: the run state, one context per reference node, the variables, the outputs.
  t0 = Clock::now();
  std::vector<uint32_t> unsupported_nodes;
  std::vector<std::string> unsupported;
  std::vector<bool> lowerable(graph.num_nodes(), false);
  size_t num_reference = 0;
  for (uint32_t i = 0; i < graph.num_nodes(); ++i) {
    if (graph.node(i).is_variable()) continue;
    std::vector<std::string> missing = UnsupportedOps(graph, i);
    lowerable[i] = missing.empty();
    if (!missing.empty()) {
      ++num_reference;
      unsupported.insert(unsupported.end(), missing.begin(), missing.end());
    }
  }
  if (!options.allow_reference && !unsupported.empty())
    throw UnsupportedError(StrCat("the CPU backend cannot compile ", unsupported.size(),
                                  " op(s) yet: ", JoinLines(unsupported)));

  cg->first_variable_external_ = int64_t(1 + num_reference);
  cg->variables_ = graph.VariableNodes();
  for (size_t v = 0; v < cg->variables_.size(); ++v)
    cg->variable_index_[graph.node(cg->variables_[v]).name] = v;
  std::vector<int64_t> entry_external(graph.num_entries(), -1);
  for (size_t v = 0; v < cg->variables_.size(); ++v)
    entry_external[graph.entry_id(cg->variables_[v], 0)] =
        cg->first_variable_external_ + int64_t(v);
  int64_t next_external = cg->first_variable_external_ + int64_t(cg->variables_.size());
  for (const Entry& e : graph.outputs()) {
    CompiledGraph::Slot slot;
    if (graph.node(e.node).is_variable()) {
      slot.variable = int64_t(cg->variable_index_.at(graph.node(e.node).name));
    } else {
      int64_t& ext = entry_external[graph.entry_id(e)];
      if (ext < 0) {
        ext = next_external++;
        cg->output_entries_.push_back(e);
      }
      slot.external = ext;
    }
    cg->outputs_.push_back(slot);
  }

  std::vector<const BufferPlacement*> placement(graph.num_entries(), nullptr);
  for (const BufferPlacement& b : memory.buffers) placement[b.entry] = &b;
  auto arg_of = [&](const Entry& e) {
    uint32_t id = graph.entry_id(e);
    if (entry_external[id] >= 0) return PlanArg::External(entry_external[id]);
    const BufferPlacement* b = placement[id];
    KILN_INTERNAL_CHECK(b, "entry ", EntryDisplayName(graph, id), " has no place in the arena");
    return PlanArg::Arena(b->offset, b->bytes);
  };

  const uint32_t forward_nodes = options.forward_outputs > 0
                                     ? ForwardPrefix(graph, options.forward_outputs)
                                     : graph.num_nodes();
  Plan& plan = cg->plan_;
  plan.arena_size = memory.arena_size;
  plan.arena_alignment = kMemoryAlignment;
  plan.num_externals = next_external;
  std::vector<size_t> jit_calls;
  for (uint32_t i = 0; i < graph.num_nodes(); ++i) {
    const Node& n = graph.node(i);
    if (n.is_variable()) continue;
    if (i < forward_nodes) cg->forward_calls_ = plan.calls.size() + 1;
    PlanCall call;
    call.name = n.name;
    CompiledCall info;
    info.node = i;
    info.ops = OpNames(n);
    if (lowerable[i]) {
      LowerOptions lo = options.lower;
      lo.kernel_name = StrCat("k", plan.calls.size(), "_", n.name);
      cg->kernels_.push_back(LowerNode(graph, i, lo));
      info.kernel = cg->kernels_.back().name;
      call.tasks = TaskCount(cg->kernels_.back());
      jit_calls.push_back(plan.calls.size());
    } else {
      info.kind = CompiledCall::Kind::kReference;
      auto rn = std::make_unique<CompiledGraph::ReferenceNode>();
      rn->node = &n;
      for (const Entry& e : n.inputs) {
        rn->in_shapes.push_back(graph.shape(e).dims());
        rn->in_dtypes.push_back(graph.dtype(e));
      }
      for (uint32_t k = 0; k < uint32_t(n.num_outputs()); ++k) {
        rn->out_shapes.push_back(graph.shape(Entry{i, k}).dims());
        rn->out_dtypes.push_back(graph.dtype(Entry{i, k}));
      }
      call.fn = &ReferenceCall;
      call.args.push_back(PlanArg::External(0));
      call.args.push_back(PlanArg::External(int64_t(1 + cg->reference_nodes_.size())));
      cg->reference_nodes_.push_back(std::move(rn));
    }
    for (const Entry& e : n.inputs) call.args.push_back(arg_of(e));
    for (uint32_t k = 0; k < uint32_t(n.num_outputs()); ++k)
      call.args.push_back(arg_of(Entry{i, k}));
    plan.calls.push_back(std::move(call));
    cg->calls_.push_back(std::move(info));
  }
  if (options.forward_outputs == 0) cg->forward_calls_ = plan.calls.size();
  cg->lower_ms_ = MsSince(t0);

  t0 = Clock::now();
  cg->jit_ = std::make_shared<LLVMJit>(options.cpu);
  cg->target_ = cg->jit_->target();
  if (!cg->kernels_.empty()) {
    std::vector<KernelFn> fns = cg->jit_->Compile(cg->kernels_);
    for (size_t j = 0; j < jit_calls.size(); ++j) plan.calls[jit_calls[j]].fn = fns[j];
  }
  cg->llvm_ms_ = MsSince(t0);
  std::vector<std::string> problems = VerifyPlan(plan);
  KILN_INTERNAL_CHECK(problems.empty(), "compiled plan: ", JoinLines(problems));
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
  std::string key = StrCat(OptionsKey(options), " target=", ResolveCpuTarget(options.cpu).cpu,
                           ResolveCpuTarget(options.cpu).features, "\n", PrintGraph(typed));
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
  variables_.resize(cg.variables_.size());
  externals_.assign(size_t(cg.plan_.num_externals), nullptr);
  externals_[0] = state_.get();
  for (size_t r = 0; r < cg.reference_nodes_.size(); ++r)
    externals_[1 + r] = const_cast<CompiledGraph::ReferenceNode*>(cg.reference_nodes_[r].get());
  int64_t ext = cg.first_variable_external_ + int64_t(cg.variables_.size());
  for (const Entry& e : cg.output_entries_) {
    outputs_.push_back(Tensor::Empty(cg.graph_.shape(e).dims(), cg.graph_.dtype(e)));
    externals_[size_t(ext++)] = outputs_.back().raw_data();
  }
}

void CompiledRun::Bind(const std::string& name, const Tensor& value) {
  const CompiledGraph& cg = *graph_;
  auto it = cg.variable_index_.find(name);
  if (it == cg.variable_index_.end()) return;  // removed by the passes (checked by the caller)
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
  state_->rng.seed(seed + first);
  executor_.Run(arena_->data(), externals_.data(), first, last);
}

Tensor CompiledRun::output(size_t k) const {
  const CompiledGraph::Slot& slot = graph_->outputs_.at(k);
  if (slot.variable >= 0) return variables_[size_t(slot.variable)];
  return outputs_[size_t(slot.external - graph_->first_variable_external_ -
                         int64_t(graph_->variables_.size()))];
}

}  // namespace kiln::codegen
