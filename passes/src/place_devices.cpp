// place_devices.cpp - device placement and cross-device copies (see kiln/passes/place_devices.h).
#include "kiln/passes/place_devices.h"

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace kiln {

namespace {

constexpr const char* kGroupAttr = "__ctx_group__";
constexpr const char* kCopyOp = "_CrossDeviceCopy";

// Device has equality only; copies are keyed by (entry, device), so order devices here.
using DeviceKey = std::pair<int, int>;
DeviceKey KeyOf(Device d) {
  return {int(d.type), d.id};
}

// "cpu1" for cpu(1): a name part that stays a plain identifier in the text IR.
std::string DeviceNamePart(Device d) {
  std::string s = d.ToString();
  std::string out;
  for (char c : s)
    if (c != '(' && c != ')') out += c;
  return out;
}

bool IsCopy(const Node& n) {
  return !n.is_variable() && n.op->name() == kCopyOp;
}

std::string KnownGroups(const PassContext& ctx) {
  std::string s;
  for (const auto& [group, dev] : ctx.group2ctx) s += (s.empty() ? "" : ", ") + group;
  return s.empty() ? "none" : s;
}

// The device of every node of `g` (see the header for the rules).
std::vector<Device> AssignDevices(const Graph& g, const PassContext& ctx) {
  const uint32_t n = g.num_nodes();
  std::vector<std::optional<Device>> dev(n);
  for (uint32_t i = 0; i < n; ++i) {
    const Node& node = g.node(i);
    auto it = node.extra.find(kGroupAttr);
    if (it != node.extra.end()) {
      auto d = ctx.group2ctx.find(it->second);
      if (d == ctx.group2ctx.end())
        throw UserError(StrCat(node.op_name(), " \"", node.name, "\": ", kGroupAttr, " \"",
                               it->second,
                               "\" has no device in group2ctx (groups: ", KnownGroups(ctx), ")"));
      dev[i] = d->second;
    }
  }
  // Forward: inputs precede their consumers, so one sweep reaches every descendant. A copy
  // already in the graph lives on its consumers' device, not its input's, so it waits for the
  // backward sweep.
  for (uint32_t i = 0; i < n; ++i) {
    if (dev[i] || IsCopy(g.node(i))) continue;
    for (const Entry& in : g.node(i).inputs)
      if (dev[in.node]) {
        dev[i] = dev[in.node];
        break;
      }
  }
  // Backward: consumers follow their inputs, so a reverse sweep reaches every ancestor.
  for (uint32_t i = n; i-- > 0;) {
    if (!dev[i]) continue;
    for (const Entry& in : g.node(i).inputs)
      if (!dev[in.node]) dev[in.node] = dev[i];
  }
  std::vector<Device> out(n);
  for (uint32_t i = 0; i < n; ++i) out[i] = dev[i].value_or(ctx.default_device);
  return out;
}

}  // namespace

Graph PlaceDevices(Graph g, const PassContext& ctx) {
  const std::vector<Device> dev = AssignDevices(g, ctx);
  const OpDef& copy_op = OpRegistry::Global().Get(kCopyOp);

  // Rebuild the graph in the same order, inserting each copy just before its first consumer,
  // which keeps the topological order. src[new entry id] is the old entry whose value it holds,
  // so the facts can be carried over at the end.
  Graph out;
  std::vector<Device> out_dev;
  std::vector<uint32_t> new_node(g.num_nodes());
  std::vector<Entry> src;
  std::map<std::tuple<uint32_t, uint32_t, DeviceKey>, Entry> copies;  // (old entry, device)
  auto add = [&](Node node, Device d, auto source_of_output) {
    int outs = node.num_outputs();
    uint32_t id = out.AddNode(std::move(node));
    out_dev.push_back(d);
    for (int k = 0; k < outs; ++k) src.push_back(source_of_output(k));
    return id;
  };
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    Node node = g.node(i);
    for (Entry& in : node.inputs) {
      const Entry old = in;
      in = Entry{new_node[old.node], old.index};
      // A copy already in the graph reads across devices by design.
      if (dev[old.node] == dev[i] || IsCopy(g.node(i))) continue;
      auto key = std::make_tuple(old.node, old.index, KeyOf(dev[i]));
      auto it = copies.find(key);
      if (it == copies.end()) {
        Node copy;
        copy.op = &copy_op;
        copy.attrs = copy_op.attrs.parse({});
        const Node& from = g.node(old.node);
        copy.name = StrCat(from.name, old.index > 0 ? StrCat("_output", old.index) : "",
                           "_copy_to_", DeviceNamePart(dev[i]));
        copy.inputs = {in};
        uint32_t c = add(std::move(copy), dev[i], [&](int) { return old; });
        it = copies.emplace(key, Entry{c, 0}).first;
      }
      in = it->second;
    }
    new_node[i] = add(std::move(node), dev[i], [&](int k) { return Entry{i, uint32_t(k)}; });
  }
  for (const Entry& e : g.outputs()) out.AddOutput(Entry{new_node[e.node], e.index});

  if (g.has_shapes()) {
    out.shapes.resize(out.num_entries());
    for (uint32_t id = 0; id < out.num_entries(); ++id) out.shapes[id] = g.shape(src[id]);
  }
  if (g.has_dtypes()) {
    out.dtypes.resize(out.num_entries());
    for (uint32_t id = 0; id < out.num_entries(); ++id) out.dtypes[id] = g.dtype(src[id]);
  }
  out.devices = std::move(out_dev);
  return out;
}

}  // namespace kiln
