// kiln/passes/place_devices.h - device placement (MXNet's ctx_group / group2ctx).
//
// Model parallelism in MXNet tags nodes with a context group (`__ctx_group__`) and binds with a
// map from group to device. PlaceDevices does the same placement on a kiln graph and records it
// in Graph::devices (one device per node):
// - a node with a `__ctx_group__` gets its group's device from ctx.group2ctx; a group the map
//   lacks is a UserError naming the node and the group;
// - every other node takes, in topological order, the device of its first placed input
//   (forward propagation), then, in reverse topological order, the device of a placed consumer
//   (backward propagation: this is how variables, which have no inputs, follow the layer that
//   reads them; with several consumers the last one in topological order wins, as in MXNet);
// - whatever is still unplaced gets ctx.default_device.
// Then every edge whose ends are on different devices reads through a `_CrossDeviceCopy` node
// placed on the consumer's device. There is one copy per (entry, destination device), shared by
// every consumer on that device. Graph outputs are read where their producer runs. Shapes and
// dtypes, when present, are carried to the new graph (a copy has its source's facts).
//
// Placing ignores any devices the graph already has, so it may run again on a placed graph or
// on a training graph built from one (BuildGradient emits a _CrossDeviceCopy for each copy's
// gradient). _CrossDeviceCopy nodes already there take no device from their input: like the
// copies the pass inserts, they run where their consumers run. So placing a placed graph again
// inserts no copy.
#pragma once

#include "kiln/ir/graph.h"
#include "kiln/passes/pass_manager.h"

namespace kiln {

Graph PlaceDevices(Graph g, const PassContext& ctx);

}  // namespace kiln
