// kiln/ir/entry.h - Entry: one output of one node of a Graph.
#pragma once

#include <compare>
#include <cstdint>

namespace kiln {

// Output `index` of node `node` (nodes are numbered densely in topological order).
struct Entry {
  uint32_t node = 0;
  uint32_t index = 0;
  bool operator==(const Entry&) const = default;
  auto operator<=>(const Entry&) const = default;
};

}  // namespace kiln
