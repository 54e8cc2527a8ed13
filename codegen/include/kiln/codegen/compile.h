// kiln/codegen/compile.h - a whole graph compiled for the CPU: a plan of kernels on one arena.
//
// CompileGraph runs the optimisation pipeline on a graph (-O3 by default: fusion included),
// plans its memory, lowers every op node (a fused group counts as one) to one kernel, and
// JIT-compiles them all as one LLVM module. A node anchored on a matrix product, convolution or
// deconvolution (or, in training, BatchNorm) is instead a call of the runtime library
// (kiln/runtime/gemm.h, conv.h) followed by one kernel for the rest of its group. The result is
// a runtime Plan (kiln/runtime/plan.h): one call per kernel, intermediates at planned offsets of
// one arena, and the graph's variables and outputs in caller-visible buffers.
//
//   CompileOptions opt;
//   opt.infer.shapes = {{"data", Shape({64, 784})}};   // every variable's shape and dtype
//   std::shared_ptr<const CompiledGraph> cg = CompileGraphCached(graph, opt);
//   std::cerr << cg->Report();                          // what became what
//   CompiledRun run(cg);                                // an arena and bindings; one per thread
//   run.Bind("data", images);  run.Bind("fc1_weight", w);  ...
//   run.Run();                                          // or RunCalls(0, cg->forward_calls())
//   Tensor probs = run.output(0);
//
// Any other node with ops that cannot be lowered yet (kiln/codegen/lower.h: ops without a
// compute definition) runs its ops' reference kernels (OpDef::reference, as the interpreter does)
// on the arena's memory instead: the plan is complete for every graph the interpreter runs, and
// Report() names each such node so that nothing is hidden. CompileOptions::allow_reference =
// false makes them an UnsupportedError listing every one at once.
//
// Training graphs (BuildGradient's) are compiled with is_train and forward_outputs set: fusion
// keeps the phases apart, so the forward phase is calls [0, forward_calls()) and Backward runs
// the rest on the same arena, which keeps the forward values the backward calls read.
//
// Compiled graphs are immutable and shared: CompileGraphCached returns the same object for the
// same graph structure, shapes, dtypes, options and target, so a later bind of the same model
// compiles nothing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kiln/codegen/llvm_jit.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/graph.h"
#include "kiln/passes/infer.h"
#include "kiln/passes/pass_manager.h"
#include "kiln/runtime/library_ops.h"
#include "kiln/runtime/plan.h"
#include "kiln/runtime/tensor.h"
#include "kiln/runtime/thread_pool.h"

namespace kiln::codegen {

struct CompileOptions {
  InferOptions infer;          // the variables' shapes and dtypes (float32 where none is given)
  int opt_level = 3;           // the pass pipeline: OptPipeline(opt_level)
  bool is_train = false;       // a training graph: BatchNorm and Dropout in training mode
  size_t forward_outputs = 0;  // PassContext::forward_outputs (training graphs)
  CpuOptions cpu;
  LowerOptions lower;           // kernel_name is ignored
  bool allow_reference = true;  // false: nodes that cannot be lowered are an UnsupportedError
  // false: no runtime-library calls either; matrix products and convolutions are lowered like
  // every other op (self-contained code: bundles).
  bool use_library = true;
  // false: the kernels are lowered but not JIT-compiled (the plan's kernel calls have no
  // function: kiln-compile emits them as an object file instead); CompiledRun refuses it.
  bool jit = true;
  // A FullyConnected or forward Convolution group's epilogue kernel whose parallel loop runs
  // over the product's rows (a convolution's: (image, channel) pairs) is run by the library
  // call itself on each row block as soon as it is final (one plan call for the group; the rows
  // are still in cache). Artifacts store it as the library call's row kernel (D43, D44).
  bool epilogue_in_gemm = true;
  PassManagerOptions passes;  // printing after passes (kiln-compile --dump-after), verification
};

// How one call of the plan was made.
struct CompiledCall {
  // kJit: a kernel compiled here; kLibrary: a matrix product or convolution of the runtime
  // library (the anchor of its node; the rest of the node follows as its own call, or runs
  // inside it, `kernel` naming it, with CompileOptions::epilogue_in_gemm);
  // kReference: the ops' reference kernels.
  enum class Kind : uint8_t { kJit, kLibrary, kReference };
  Kind kind = Kind::kJit;
  uint32_t node = 0;     // the node of graph() it computes
  std::string ops;       // "FullyConnected+Activation": the op names it holds
  std::string kernel;    // the JIT kernel's name (kJit)
  int64_t library = -1;  // kLibrary: its op in CompiledGraph::library_ops()
};

// What one external buffer of the plan is: the run state (external 0, read by reference calls),
// the library calls' state (external 1), a variable of graph() (by its index in
// variable_nodes()), the value of an op output that is a graph output (by its index in
// output_entries()), the context of a library call (by its index in library_ops()) or of a
// reference call, or the run's seed (for kernels that draw random numbers).
struct ExternalSlot {
  enum class Kind : uint8_t {
    kRunState,
    kLibraryState,
    kVariable,
    kOutput,
    kLibraryNode,
    kReferenceNode,
    kRandomSeed  // the run's seed (a uint64), read by the kernels that draw random numbers
  };
  Kind kind = Kind::kRunState;
  int64_t index = 0;
};

class CompiledGraph {
 public:
  // The graph after the passes: what the plan computes, node by node.
  const Graph& graph() const { return graph_; }
  const Plan& plan() const { return plan_; }
  const std::vector<CompiledCall>& calls() const { return calls_; }
  // The kernels compiled by the JIT, in call order (for kiln-dump --kernels, --llvm, --asm).
  const std::vector<Kernel>& kernels() const { return kernels_; }
  const CpuTarget& target() const { return target_; }
  // The plan's externals, one per index; the variable nodes of graph() and the op outputs that
  // are graph outputs, in the order the externals name them; the library ops' descriptions.
  const std::vector<ExternalSlot>& externals() const { return externals_; }
  // "ops (node "name"), ..." for the calls that read the run's seed (kernels that draw random
  // numbers: Dropout when training or in mode always, rrelu when training); empty when none.
  std::string RandomCalls() const;
  const std::vector<uint32_t>& variable_nodes() const { return variables_; }
  const std::vector<Entry>& output_entries() const { return output_entries_; }
  const std::vector<LibraryOpDesc>& library_ops() const { return library_ops_; }
  // Graph output k is external `output_external(k)`, or (-1) the variable output_variable(k).
  int64_t output_external(size_t k) const { return outputs_.at(k).external; }
  int64_t output_variable(size_t k) const { return outputs_.at(k).variable; }
  // Calls [0, forward_calls()) are the forward phase (all of them without forward_outputs).
  size_t forward_calls() const { return forward_calls_; }
  int64_t arena_size() const { return plan_.arena_size; }
  // Milliseconds spent in the passes, in lowering, and in LLVM (emission, -O3, JIT).
  double pass_ms() const { return pass_ms_; }
  double lower_ms() const { return lower_ms_; }
  double llvm_ms() const { return llvm_ms_; }
  // The pass manager's table of pass times for this compile.
  const std::string& pass_timing() const { return pass_timing_; }
  // The thread count the library calls' workspaces in the arena are sized for.
  int library_threads() const { return library_threads_; }
  bool jitted() const { return jit_ != nullptr; }
  // Whether some library call runs its group's epilogue kernel (CompileOptions::
  // epilogue_in_gemm).
  bool epilogues_in_gemm() const { return epilogues_in_gemm_; }

  // A summary: kernels compiled and run by reference (with the ops of each of those), arena
  // size and compile times.
  std::string Report() const;

  struct ReferenceNode;  // what a reference call needs: the node and its facts (compile.cpp)

 private:
  friend class CompiledRun;
  friend class PlanBuilder;
  friend std::shared_ptr<const CompiledGraph> CompileGraph(Graph g, const CompileOptions& options);
  struct Slot {             // where a graph output's value is
    int64_t external = -1;  // an external buffer of the plan
    int64_t variable = -1;  // or a variable of graph(), by its index in variables_
  };

  Graph graph_;
  Plan plan_;
  std::vector<CompiledCall> calls_;
  std::vector<Kernel> kernels_;
  CpuTarget target_;
  size_t forward_calls_ = 0;
  double pass_ms_ = 0, lower_ms_ = 0, llvm_ms_ = 0;
  std::string pass_timing_;
  int library_threads_ = 1;
  bool epilogues_in_gemm_ = false;
  std::shared_ptr<LLVMJit> jit_;  // keeps the machine code alive
  // Externals: [0] the run state, [1] the library state, then the variables (variables_ order),
  // then the op outputs of the graph's outputs, then the context of each library and reference
  // call.
  std::vector<ExternalSlot> externals_;
  std::vector<LibraryOpDesc> library_ops_;
  std::vector<std::shared_ptr<void>> host_objects_;            // the contexts, owned
  std::vector<std::pair<int64_t, void*>> host_contexts_;       // external index, context
  std::vector<std::shared_ptr<const Graph>> epilogue_graphs_;  // graphs reference calls point into
  std::vector<uint32_t> variables_;                            // variable nodes of graph_
  std::map<std::string, size_t> variable_index_;
  std::set<std::string> given_variables_;  // the variables of the graph before the passes
  std::vector<Entry> output_entries_;      // external op-node outputs, in external order
  std::vector<Slot> outputs_;              // one per graph output
  int64_t first_variable_external_ = 0;
  int64_t seed_external_ = -1;  // the kRandomSeed external, or -1 when no kernel draws
};

// The op of `node` (an op node of `g`, or the anchor of a composite) that CompileGraph runs on
// the runtime library (GEMM, convolution, BatchNorm in training), or "" when there is none.
std::string LibraryAnchor(const Graph& g, uint32_t node, bool is_train = false);

// Compiles `g` (shapes and dtypes need not be inferred: options.infer gives the variables').
// UserError for a graph the passes reject; UnsupportedError as described above. With the
// environment variable KILN_COMPILE_REPORT=1, prints Report() to stderr after each compile.
std::shared_ptr<const CompiledGraph> CompileGraph(Graph g, const CompileOptions& options);

// The same through a process-wide cache keyed by the graph's text (structure, names, shapes and
// dtypes after inference), the options and the target CPU. Thread-safe.
std::shared_ptr<const CompiledGraph> CompileGraphCached(const Graph& g,
                                                        const CompileOptions& options);
// Entries in the cache and lookups that found one, for tests and reports.
struct CompileCacheStats {
  size_t entries = 0;
  size_t hits = 0;
  size_t misses = 0;
};
CompileCacheStats GetCompileCacheStats();

// One set of buffers for running a compiled graph: the arena, the variables' tensors and the
// outputs' tensors (allocated here). Not shared between threads; many runs may share one
// CompiledGraph.
class CompiledRun {
 public:
  // `pool` null: ThreadPool::Global().
  explicit CompiledRun(std::shared_ptr<const CompiledGraph> graph, ThreadPool* pool = nullptr);

  // The tensor holding variable `name` from now on (no copy: the plan reads it in place, and
  // BatchNorm's moving statistics are updated in it). Shape and dtype must be the compiled
  // ones (a UserError naming the variable otherwise). A name the passes removed (an unused
  // label) is accepted and ignored; a name the graph never had is a UserError.
  void Bind(const std::string& name, const Tensor& value);
  bool IsBound(const std::string& name) const;
  // Promises that the bound variables' values do not change until the next Bind or
  // FreezeVariables(false): the library calls then pack their weights on the first run and
  // reuse them (inference with fixed parameters, as deployed models run). The Executor does not
  // freeze: optimizers update its weights in place.
  void FreezeVariables(bool frozen = true);

  // Runs calls [first, last) (every call by default). Every variable the calls read must be
  // bound (a UserError naming the first that is not). Random ops draw from `seed`: draw i of
  // a node named N is RandomBits(seed, RandomStream(N), i) (kiln/ir/random.h), as on the
  // interpreter, whatever the thread count or the calls' grouping.
  void Run(bool is_train = false, uint64_t seed = 0) {
    RunCalls(0, graph_->plan().calls.size(), is_train, seed);
  }
  void RunCalls(size_t first, size_t last, bool is_train = false, uint64_t seed = 0);

  // Graph output k after a run: this run's own tensor, or the bound variable it equals.
  Tensor output(size_t k) const;
  // Makes `value` (the compiled shape and dtype) the storage of graph output k, so that runs
  // write it there (an Executor's gradient arrays: no copy). Returns false, changing nothing,
  // where output k is a variable or shares its value with another output.
  bool BindOutput(size_t k, const Tensor& value);
  const CompiledGraph& graph() const { return *graph_; }

  struct State;  // what the reference calls of a run read (compile.cpp)

 private:
  std::shared_ptr<const CompiledGraph> graph_;
  std::shared_ptr<Storage> arena_;
  PlanExecutor executor_;
  std::shared_ptr<State> state_;
  std::vector<Tensor> variables_;  // bound tensors, variables_ order
  std::vector<Tensor> outputs_;    // per external op output
  std::vector<void*> externals_;
};

}  // namespace kiln::codegen
