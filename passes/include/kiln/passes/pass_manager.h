// kiln/passes/pass_manager.h - named passes, their registry, and the pass manager that runs them.
//
// A pass is a function `Graph -> Graph` with a name and a one-line description. Every pass kiln
// has is registered by name in one registry, so tools (kiln-opt -p), pipelines per -O level and
// tests all name passes the same way. The PassManager runs a pipeline of names over a graph and
// can verify the graph after every pass, print it after any pass, and time every pass.
//
// Running passes:
//
//   PassContext ctx;
//   ctx.infer.shapes["data"] = Shape{100, 784};      // what the passes may assume
//   PassManager pm({"infer-shape", "infer-type"});   // UserError now for an unknown name
//   pm.options().verify_each = true;                  // VerifyGraphOrThrow after each pass
//   pm.options().print_after = {"infer-shape"};       // text IR to options().dump (stderr)
//   pm.options().time_passes = true;
//   Graph typed = pm.Run(std::move(g), ctx);
//   std::cerr << pm.TimingReport();
//
// Adding a pass (say, `simplify`):
//
//   1. Write it as one exported function in its own pair of files, internals in an anonymous
//      namespace:
//        passes/include/kiln/passes/simplify.h:  Graph Simplify(Graph g, const PassContext& ctx);
//        passes/src/simplify.cpp
//      The function takes the graph by value and returns the transformed graph. It asks the op
//      registry (OpDef's pattern, in-place pairs, rules) and never names an operator. It may
//      read `ctx` (known shapes, later the -O level and the target) and must not keep state
//      between calls: the same pass may run several times in one pipeline.
//   2. Register it in passes/src/builtin_passes.cpp, one line:
//        r.Register("simplify", "folds constants and removes identities", Simplify);
//      Names are lower-case words joined by '-', as kiln-opt -p spells them.
//   3. Test it with golden text IR under tests/lit/<pass>/ (`// RUN: %kiln-opt %s -p simplify |
//      FileCheck %s`) and, where numbers matter, a unit test comparing the reference interpreter
//      on the graph before and after.
//
// A pass reports a bad model as a UserError (naming node, op and values) and a broken invariant
// as an InternalError. A pass that returns a graph the verifier rejects is a bug: with
// verify_each on, the manager throws an InternalError naming the pass and every problem.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <iosfwd>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/ir/graph.h"
#include "kiln/passes/infer.h"
#include "kiln/runtime/tensor.h"

namespace kiln {

// What passes may assume about the graph they run on, beyond the graph itself. Later issues add
// the optimisation level and the target here.
struct PassContext {
  // Known shapes and dtypes of variables, by name, used by the inference passes.
  InferOptions infer;
  // Compile-time constants: the known values of parameters, by variable name. A variable is
  // constant iff it has an entry here. `constant-fold` adds the values of the variables it
  // creates, so the caller can bind them; it is mutable because passes see the context as const
  // (PassFunction), and this is the one thing a pass hands back besides the graph.
  mutable std::map<std::string, Tensor> constants;
  // Device placement (place-devices): the device of each `__ctx_group__` (MXNet's group2ctx),
  // and the device of nodes that neither a group nor their neighbours place.
  std::map<std::string, Device> group2ctx;
  Device default_device = Device::CPU();
  // Training graphs (from BuildGradient) keep Dropout and BatchNorm's batch statistics:
  // simplify and simplify-inference leave them alone when this is set.
  bool is_train = false;
  // For training graphs: outputs [0, forward_outputs) are the forward graph's (the loss heads),
  // the rest are gradients. Nodes those outputs need form the forward phase, which an executor
  // runs in Forward and the rest in Backward; fusion never merges nodes of different phases and
  // puts the forward phase first. 0: the whole graph is one phase.
  size_t forward_outputs = 0;
  // fuse: the most ops one fused group may hold (TVM's max_fuse_depth).
  int max_fused_ops = 64;
};

using PassFunction = std::function<Graph(Graph, const PassContext&)>;

struct PassInfo {
  std::string name;
  std::string description;
  PassFunction run;
};

// Passes by name. Global() holds every built-in pass; a local registry (for tests, or for a
// program adding its own passes) starts empty and may take the built-ins with
// RegisterBuiltinPasses.
class PassRegistry {
 public:
  // The built-in passes, registered on first use (thread-safe). Adding passes to it must happen
  // before any pipeline runs concurrently.
  static PassRegistry& Global();

  // Adds a pass; InternalError if the name is taken or empty.
  const PassInfo& Register(std::string name, std::string description, PassFunction run);
  // The pass with this name, or nullptr.
  const PassInfo* Find(std::string_view name) const;
  // The pass with this name; UserError `unknown pass "X" (passes: a, b, c)` otherwise.
  const PassInfo& Get(std::string_view name) const;
  // Every pass, sorted by name.
  std::vector<const PassInfo*> List() const;
  // "  infer-shape  infers the shape of every entry\n..." for --help texts.
  std::string Describe() const;

 private:
  std::deque<PassInfo> passes_;  // a deque keeps returned references valid
};

// Registers infer-shape, infer-type and verify (and, as later issues add them, every other
// built-in pass). Defined in passes/src/builtin_passes.cpp: the one list of kiln's passes.
void RegisterBuiltinPasses(PassRegistry& r);

struct PassManagerOptions {
  // Run VerifyGraphOrThrow on the input and after every pass. Defaults to on when the
  // environment variable KILN_VERIFY_EACH is "1" (the test suites set it), off otherwise.
  bool verify_each = DefaultVerifyEach();
  // Print the text IR after every pass, or after the passes named here.
  bool print_after_all = false;
  std::set<std::string> print_after;
  // Where the printed IR goes; nullptr means std::cerr.
  std::ostream* dump = nullptr;
  // Record the wall time of every pass (always recorded; this only asks tools to print it).
  bool time_passes = false;

  static bool DefaultVerifyEach();
};

// The time one run of one pass took.
struct PassTiming {
  std::string pass;
  std::chrono::nanoseconds time{0};
};

class PassManager {
 public:
  // Resolves every name now, so that a typo fails before any work: UserError listing the known
  // passes. The registry must outlive the manager.
  explicit PassManager(const std::vector<std::string>& pipeline,
                       const PassRegistry& registry = PassRegistry::Global());

  PassManagerOptions& options() { return options_; }
  const std::vector<const PassInfo*>& pipeline() const { return pipeline_; }

  // Runs the pipeline in order. Errors from a pass propagate unchanged; print_after names that
  // are not in the pipeline are a UserError (a typo there would silently print nothing).
  Graph Run(Graph g, const PassContext& ctx = {});

  // One entry per pass run by the last Run, in order.
  const std::vector<PassTiming>& timings() const { return timings_; }
  // A table of the last Run's timings, in run order, with each pass's share and the total:
  //   ===-- kiln pass timing --===
  //     time (ms)  share  pass
  //         0.052  61.2%  infer-shape
  //   ...
  std::string TimingReport() const;

 private:
  std::vector<const PassInfo*> pipeline_;
  PassManagerOptions options_;
  std::vector<PassTiming> timings_;
};

// Splits "a,b , c" into {"a", "b", "c"}; empty items are a UserError.
std::vector<std::string> SplitPipeline(std::string_view text);

// The named pipeline of an optimisation level (kiln-opt -O0 .. -O3), each level adding to the
// one below:
//   -O0  infer-shape, infer-type            (facts only: the graph as written)
//   -O1  + dce                              (nothing computed that no output needs)
//   -O2  + cse                              (nothing computed twice)
//   -O3  + simplify, simplify-inference,    (algebraic identities; BatchNorm and Dropout
//          constant-fold, fuse               gone in inference; constants folded; fused groups)
// The inference-only rewrites leave a training graph alone when PassContext::is_train is set.
// Memory planning is an analysis on the result (kiln-dump --memory). UserError for other levels.
std::vector<std::string> OptPipeline(int level);

}  // namespace kiln
