// kiln/passes/memory_plan.h - static memory planning: one arena for every intermediate entry.
//
// An analysis, not a transform: PlanMemory reads a graph with inferred shapes and dtypes and
// returns where each intermediate entry (an output of an op node) lives in a single arena, so an
// executor can allocate once. Variables (arguments, inputs, auxiliary states) and graph outputs
// are external: the caller owns them, they are not in the arena.
//
// How (DESIGN.md decision 6):
// - Execution is simulated in the graph's topological order (node index = step). An entry is
//   alive from the step of its producer to the step of its last reader (inclusive: an op reads
//   its inputs while it writes its outputs, so an input freed at step i cannot hold an output of
//   step i). An entry nobody reads lives for its producer's step only.
// - In place first: when a node is the last reader of an arena input, and the op registry lists
//   (input, output) as an in-place pair, and both have the same byte size, the output takes the
//   input's storage. Entries chained this way form one *block* with one offset and a lifetime
//   that runs from the first producer to the last reader of the chain.
// - Blocks are then placed by several strategies and the smallest arena is kept: a simulated
//   allocator with best-fit (or first-fit) over an offset-ordered free list whose neighbouring
//   ranges merge, which grows the arena at its end (extending a free range at the end when there
//   is one); and offline "greedy by size" placements (largest block first, each at the best-fit
//   or lowest gap among the blocks whose lifetimes overlap it).
// - Every buffer is rounded up to kMemoryAlignment bytes, so every offset is aligned too.
// - lower_bound is the most bytes of blocks alive at one step (given the in-place sharing): no
//   placement can do better. naive_size is the sum of every intermediate entry's size, as if
//   nothing were shared.
//
// Training graphs (from BuildGradient) need nothing special: the backward nodes read forward
// activations as ordinary inputs, so those stay alive until their last backward reader.
//
//   Graph g = ...;  InferShapes(g, opt);  InferTypes(g, opt);
//   MemoryPlan plan = PlanMemory(g);
//   std::cout << FormatMemoryPlan(g, plan);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/ir/graph.h"

namespace kiln {

inline constexpr int64_t kMemoryAlignment = 64;

// One intermediate entry's place in the arena.
struct BufferPlacement {
  uint32_t entry = 0;       // entry id in the graph
  int64_t bytes = 0;        // exact size: elements x dtype size
  int64_t size = 0;         // bytes rounded up to kMemoryAlignment: what the arena reserves
  int64_t offset = 0;       // from the start of the arena; a multiple of kMemoryAlignment
  uint32_t first = 0;       // the step (node index) that writes it
  uint32_t last = 0;        // the last step that reads it (== first if nobody reads it)
  int64_t inplace_of = -1;  // the entry id whose storage it took in place, or -1
  uint32_t block = 0;       // entries sharing storage in place share a block number
};

struct MemoryPlan {
  std::vector<BufferPlacement> buffers;  // by entry id, intermediate entries only
  int64_t arena_size = 0;
  int64_t lower_bound = 0;  // max over steps of the bytes of blocks alive at that step
  int64_t naive_size = 0;   // sum of every buffer's size
  std::string strategy;     // the placement that won, e.g. "greedy-by-size/best-fit"
};

// The placement strategies PlanMemory tries, by name.
std::vector<std::string> MemoryPlanStrategies();

// Plans the arena for `g` with every strategy (or only `strategy`, to test one) and keeps the
// smallest. UserError naming the entry if an intermediate entry's shape or dtype is not fully
// known; InternalError for an unknown strategy.
MemoryPlan PlanMemory(const Graph& g, const std::string& strategy = "");

// "%fc1", or "%parts#1" for a node's second output: how the text IR names an entry.
std::string EntryDisplayName(const Graph& g, uint32_t entry_id);

// One line per buffer (entry name, size, offset, lifetime, in-place source), then the arena
// size, the lower bound, the naive total and the ratios arena/lower bound and arena/naive.
std::string FormatMemoryPlan(const Graph& g, const MemoryPlan& plan);

}  // namespace kiln
