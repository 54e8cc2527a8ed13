// memory_plan.cpp - the arena planner: liveness by simulated execution, in-place sharing from
// the op registry, then the smallest of several placements (see memory_plan.h).
#include "kiln/passes/memory_plan.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>

#include "kiln/runtime/error.h"

namespace kiln {

namespace {

int64_t AlignUp(int64_t bytes) {
  return (bytes + kMemoryAlignment - 1) / kMemoryAlignment * kMemoryAlignment;
}

// Entries that share storage in place, placed as one unit.
struct Block {
  int64_t size = 0;  // aligned
  uint32_t first = 0, last = 0;
};

bool Overlap(const Block& a, const Block& b) {
  return a.first <= b.last && b.first <= a.last;
}

enum class Fit { kBest, kFirst };

// Offline placement: blocks in `order`, each at a gap among already placed blocks whose lifetime
// overlaps it (the smallest gap that fits for best-fit, the lowest for first-fit), or above them
// all. Quadratic in the number of blocks, which is fine for graphs of thousands of nodes.
int64_t PlaceGreedy(const std::vector<Block>& blocks, const std::vector<uint32_t>& order, Fit fit,
                    std::vector<int64_t>& offsets) {
  offsets.assign(blocks.size(), 0);
  std::vector<uint32_t> placed;
  int64_t arena = 0;
  std::vector<std::pair<int64_t, int64_t>> busy;  // (offset, end) of overlapping placed blocks
  for (uint32_t b : order) {
    const Block& blk = blocks[b];
    if (blk.size == 0) continue;  // takes no bytes: offset 0, conflicts with nothing
    busy.clear();
    for (uint32_t p : placed)
      if (Overlap(blk, blocks[p])) busy.push_back({offsets[p], offsets[p] + blocks[p].size});
    std::sort(busy.begin(), busy.end());
    int64_t best = -1, best_gap = std::numeric_limits<int64_t>::max(), cursor = 0;
    for (const auto& [start, end] : busy) {
      int64_t gap = start - cursor;
      if (gap >= blk.size && gap < best_gap) {
        best = cursor;
        best_gap = gap;
        if (fit == Fit::kFirst) break;
      }
      cursor = std::max(cursor, end);
    }
    if (best < 0) best = cursor;  // above every overlapping block
    offsets[b] = best;
    arena = std::max(arena, best + blk.size);
    placed.push_back(b);
  }
  return arena;
}

// Online placement: simulated execution with a free list of ranges ordered by offset, merged
// with their neighbours when freed. A block is allocated at its first step and freed after its
// last step; when no free range fits, the arena grows at its end (reusing a free range that
// ends there).
int64_t PlaceSimulated(const std::vector<Block>& blocks, uint32_t num_steps, Fit fit,
                       std::vector<int64_t>& offsets) {
  offsets.assign(blocks.size(), 0);
  std::vector<std::vector<uint32_t>> starts(num_steps), ends(num_steps);
  for (uint32_t b = 0; b < blocks.size(); ++b) {
    if (blocks[b].size == 0) continue;
    starts[blocks[b].first].push_back(b);
    ends[blocks[b].last].push_back(b);
  }
  std::map<int64_t, int64_t> free_ranges;  // offset -> size
  int64_t arena = 0;
  for (uint32_t step = 0; step < num_steps; ++step) {
    for (uint32_t b : starts[step]) {
      int64_t size = blocks[b].size;
      auto chosen = free_ranges.end();
      for (auto it = free_ranges.begin(); it != free_ranges.end(); ++it) {
        if (it->second < size) continue;
        if (chosen == free_ranges.end() || it->second < chosen->second) chosen = it;
        if (fit == Fit::kFirst) break;
      }
      if (chosen != free_ranges.end()) {
        offsets[b] = chosen->first;
        int64_t rest = chosen->second - size, rest_at = chosen->first + size;
        free_ranges.erase(chosen);
        if (rest > 0) free_ranges[rest_at] = rest;
      } else if (!free_ranges.empty() &&
                 std::prev(free_ranges.end())->first + std::prev(free_ranges.end())->second ==
                     arena) {
        auto top = std::prev(free_ranges.end());
        offsets[b] = top->first;
        arena = top->first + size;
        free_ranges.erase(top);
      } else {
        offsets[b] = arena;
        arena += size;
      }
    }
    for (uint32_t b : ends[step]) {
      int64_t at = offsets[b], size = blocks[b].size;
      auto next = free_ranges.lower_bound(at);
      if (next != free_ranges.end() && next->first == at + size) {
        size += next->second;
        free_ranges.erase(next);
      }
      auto it = free_ranges.lower_bound(at);
      if (it != free_ranges.begin()) {
        auto prev = std::prev(it);
        if (prev->first + prev->second == at) {
          at = prev->first;
          size += prev->second;
          free_ranges.erase(prev);
        }
      }
      free_ranges[at] = size;
    }
  }
  return arena;
}

}  // namespace

std::vector<std::string> MemoryPlanStrategies() {
  // Keep in step with the list in PlanMemory.
  return {"greedy-by-size/best-fit", "greedy-by-size/first-fit", "greedy-by-lifetime/best-fit",
          "simulated/best-fit", "simulated/first-fit"};
}

std::string EntryDisplayName(const Graph& g, uint32_t entry_id) {
  Entry e = g.entry(entry_id);
  std::string name = "%" + g.node(e.node).name;
  if (e.index > 0) name += StrCat("#", e.index);
  return name;
}

MemoryPlan PlanMemory(const Graph& g, const std::string& only) {
  if (!g.has_shapes() || !g.has_dtypes())
    throw UserError("memory planning needs inferred shapes and dtypes");
  const uint32_t num_entries = g.num_entries(), num_nodes = g.num_nodes();
  std::vector<bool> external(num_entries, false);
  for (const Entry& e : g.outputs()) external[g.entry_id(e)] = true;
  for (uint32_t v : g.VariableNodes()) external[g.entry_id(v, 0)] = true;

  // Liveness: the producer's step and the last reader's step of every entry.
  std::vector<uint32_t> first(num_entries, 0), last(num_entries, 0);
  for (uint32_t n = 0; n < num_nodes; ++n) {
    for (int k = 0; k < g.node(n).num_outputs(); ++k) {
      uint32_t id = g.entry_id(n, uint32_t(k));
      first[id] = last[id] = n;
    }
    for (const Entry& in : g.node(n).inputs) last[g.entry_id(in)] = n;
  }

  MemoryPlan plan;
  std::vector<int64_t> index_of(num_entries, -1);  // entry id -> index in plan.buffers
  for (uint32_t id = 0; id < num_entries; ++id) {
    if (external[id]) continue;
    Entry e = g.entry(id);
    int64_t elems = g.shapes[id].NumElements();
    size_t dsize = DTypeSize(g.dtypes[id]);
    if (elems < 0 || dsize == 0)
      throw UserError(StrCat("memory planning: entry ", EntryDisplayName(g, id), " (node ", e.node,
                             ", op ", g.node(e.node).op_name(), ") has type ",
                             DTypeName(g.dtypes[id]), g.shapes[id].ToString(),
                             "; every intermediate entry needs a known shape and dtype"));
    BufferPlacement b;
    b.entry = id;
    b.bytes = elems * int64_t(dsize);
    b.size = AlignUp(b.bytes);
    b.first = first[id];
    b.last = last[id];
    index_of[id] = int64_t(plan.buffers.size());
    plan.buffers.push_back(b);
    plan.naive_size += b.size;
  }

  // In place: walk the nodes in order; a node that is the last reader of an arena input may
  // hand its storage to an output of the same size, as the registry allows. Every buffer
  // starts as its own block; in-place outputs join their input's block.
  std::vector<Block> blocks;
  std::vector<uint32_t> block_of(plan.buffers.size());
  std::vector<bool> joined(plan.buffers.size(), false);
  for (uint32_t n = 0; n < num_nodes; ++n) {
    const Node& node = g.node(n);
    if (node.is_variable()) continue;
    std::vector<bool> donated(node.inputs.size(), false);
    for (const auto& [in, out] : node.op->InplacePairs(node.attrs)) {
      if (in < 0 || size_t(in) >= node.inputs.size() || out < 0 || out >= node.num_outputs())
        continue;
      uint32_t in_id = g.entry_id(node.inputs[size_t(in)]);
      uint32_t out_id = g.entry_id(n, uint32_t(out));
      int64_t bi = index_of[in_id], bo = index_of[out_id];
      if (bi < 0 || bo < 0 || donated[size_t(in)] || joined[size_t(bo)]) continue;
      if (last[in_id] != n || plan.buffers[size_t(bi)].bytes != plan.buffers[size_t(bo)].bytes)
        continue;
      // The same entry may sit in two input positions; it can still be given away only once.
      bool given = false;
      for (size_t j = 0; j < node.inputs.size(); ++j)
        if (donated[j] && g.entry_id(node.inputs[j]) == in_id) given = true;
      if (given) continue;
      donated[size_t(in)] = true;
      joined[size_t(bo)] = true;
      plan.buffers[size_t(bo)].inplace_of = in_id;
    }
  }
  for (size_t i = 0; i < plan.buffers.size(); ++i) {
    BufferPlacement& b = plan.buffers[i];
    if (b.inplace_of >= 0) {
      // Its source comes earlier in entry order (it is produced by an earlier node).
      uint32_t blk = block_of[size_t(index_of[size_t(b.inplace_of)])];
      block_of[i] = blk;
      blocks[blk].last = std::max(blocks[blk].last, b.last);
    } else {
      block_of[i] = uint32_t(blocks.size());
      blocks.push_back(Block{b.size, b.first, b.last});
    }
    b.block = block_of[i];
  }

  // The lower bound: the most bytes alive at one step.
  std::vector<int64_t> delta(num_nodes + 1, 0);
  for (const Block& b : blocks) {
    delta[b.first] += b.size;
    delta[b.last + 1] -= b.size;
  }
  int64_t alive = 0;
  for (uint32_t s = 0; s < num_nodes; ++s) {
    alive += delta[s];
    plan.lower_bound = std::max(plan.lower_bound, alive);
  }

  // Placements: keep the smallest arena (ties: the first tried).
  std::vector<uint32_t> by_size(blocks.size()), by_length(blocks.size());
  for (uint32_t b = 0; b < blocks.size(); ++b) by_size[b] = by_length[b] = b;
  std::stable_sort(by_size.begin(), by_size.end(),
                   [&](uint32_t a, uint32_t b) { return blocks[a].size > blocks[b].size; });
  std::stable_sort(by_length.begin(), by_length.end(), [&](uint32_t a, uint32_t b) {
    return blocks[a].last - blocks[a].first > blocks[b].last - blocks[b].first;
  });
  struct Strategy {
    const char* name;
    std::function<int64_t(std::vector<int64_t>&)> run;
  };
  const std::vector<Strategy> strategies = {
      {"greedy-by-size/best-fit",
       [&](std::vector<int64_t>& o) { return PlaceGreedy(blocks, by_size, Fit::kBest, o); }},
      {"greedy-by-size/first-fit",
       [&](std::vector<int64_t>& o) { return PlaceGreedy(blocks, by_size, Fit::kFirst, o); }},
      {"greedy-by-lifetime/best-fit",
       [&](std::vector<int64_t>& o) { return PlaceGreedy(blocks, by_length, Fit::kBest, o); }},
      {"simulated/best-fit",
       [&](std::vector<int64_t>& o) { return PlaceSimulated(blocks, num_nodes, Fit::kBest, o); }},
      {"simulated/first-fit",
       [&](std::vector<int64_t>& o) { return PlaceSimulated(blocks, num_nodes, Fit::kFirst, o); }},
  };
  std::vector<int64_t> offsets, best_offsets;
  int64_t best = -1;
  bool found = only.empty();
  for (const Strategy& s : strategies) {
    if (!only.empty() && only != s.name) continue;
    found = true;
    int64_t arena = s.run(offsets);
    if (best < 0 || arena < best) {
      best = arena;
      best_offsets = offsets;
      plan.strategy = s.name;
    }
  }
  if (!found) throw InternalError(StrCat("unknown memory plan strategy \"", only, "\""));
  plan.arena_size = std::max<int64_t>(best, 0);
  for (size_t i = 0; i < plan.buffers.size(); ++i)
    plan.buffers[i].offset = best_offsets.empty() ? 0 : best_offsets[block_of[i]];
  return plan;
}

std::string FormatMemoryPlan(const Graph& g, const MemoryPlan& plan) {
  size_t width = 5;
  for (const BufferPlacement& b : plan.buffers)
    width = std::max(width, EntryDisplayName(g, b.entry).size());
  auto pad = [](std::string s, size_t w) {
    if (s.size() < w) s.append(w - s.size(), ' ');
    return s;
  };
  std::string out =
      StrCat("memory plan: ", plan.buffers.size(), " buffers, alignment ", kMemoryAlignment,
             " bytes, strategy ", plan.strategy.empty() ? "none" : plan.strategy, "\n");
  out += StrCat("  ", pad("entry", width), "  ", pad("size", 12), "  ", pad("offset", 12),
                "  lifetime\n");
  for (const BufferPlacement& b : plan.buffers) {
    out += StrCat("  ", pad(EntryDisplayName(g, b.entry), width), "  ", pad(StrCat(b.size), 12),
                  "  ", pad(StrCat(b.offset), 12), "  [", b.first, ", ", b.last, "]");
    if (b.inplace_of >= 0)
      out += StrCat(" in place of ", EntryDisplayName(g, uint32_t(b.inplace_of)));
    out += "\n";
  }
  auto ratio = [](int64_t a, int64_t b) {
    if (b == 0) return std::string("n/a");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", double(a) / double(b));
    return std::string(buf);
  };
  out += StrCat("arena size: ", plan.arena_size, " bytes\n");
  out += StrCat("lower bound: ", plan.lower_bound, " bytes\n");
  out += StrCat("naive total: ", plan.naive_size, " bytes\n");
  out += StrCat("arena / lower bound: ", ratio(plan.arena_size, plan.lower_bound), "\n");
  out += StrCat("arena / naive: ", ratio(plan.arena_size, plan.naive_size), "\n");
  return out;
}

}  // namespace kiln
