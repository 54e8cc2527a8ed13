// fuse.cpp - operator fusion by pattern kinds and post-dominators (see kiln/passes/fuse.h).
#include "kiln/passes/fuse.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <queue>
#include <set>
#include <unordered_set>

#include "kiln/ir/composite.h"

namespace kiln {

namespace {

constexpr int kSink = -1;  // the post-dominator of nodes whose values leave the graph

FusionPattern Max(FusionPattern a, FusionPattern b) {
  return a > b ? a : b;
}

// The op nodes of a graph as a fusion problem: consumers, post-dominators, groups.
class Fuser {
 public:
  Fuser(const Graph& g, const PassContext& ctx) : g_(g), ctx_(ctx) {
    uint32_t n = g.num_nodes();
    consumers_.resize(n);
    leaves_graph_.assign(n, false);
    for (uint32_t i = 0; i < n; ++i) {
      const Node& node = g.node(i);
      if (node.is_variable()) continue;
      for (const Entry& e : node.inputs) {
        auto& c = consumers_[e.node];
        if (c.empty() || c.back() != i) c.push_back(i);
      }
    }
    for (const Entry& e : g.outputs()) leaves_graph_[e.node] = true;
    ComputePhases();
    ComputePostDominators();
    parent_.resize(n);
    std::iota(parent_.begin(), parent_.end(), 0u);
    size_.assign(n, 1);
    pattern_.resize(n, FusionPattern::kOpaque);
    for (uint32_t i = 0; i < n; ++i)
      if (!g.node(i).is_variable()) pattern_[i] = g.node(i).op->pattern();
  }

  void Run() {
    for (int phase = 0; phase < 2; ++phase)
      for (uint32_t i = 0; i < g_.num_nodes(); ++i)
        if (!g_.node(i).is_variable()) TryFuse(i, phase);
  }

  uint32_t Find(uint32_t i) {
    while (parent_[i] != i) i = parent_[i] = parent_[parent_[i]];
    return i;
  }
  uint8_t phase(uint32_t i) const { return phase_[i]; }

 private:
  // Phase 1 (backward) unless outputs [0, forward_outputs) need the node.
  void ComputePhases() {
    uint32_t n = g_.num_nodes();
    phase_.assign(n, ctx_.forward_outputs ? 1 : 0);
    if (!ctx_.forward_outputs) return;
    for (size_t k = 0; k < ctx_.forward_outputs && k < g_.outputs().size(); ++k)
      phase_[g_.outputs()[k].node] = 0;
    for (uint32_t i = n; i-- > 0;)
      if (phase_[i] == 0)
        for (const Entry& e : g_.node(i).inputs) phase_[e.node] = 0;
  }

  // Immediate post-dominators over op nodes, in one reverse sweep (consumers come later).
  void ComputePostDominators() {
    uint32_t n = g_.num_nodes();
    ipdom_.assign(n, kSink);
    depth_.assign(n, 1);
    for (uint32_t i = n; i-- > 0;) {
      if (g_.node(i).is_variable()) continue;
      if (leaves_graph_[i] || consumers_[i].empty()) continue;  // post-dominated by the sink
      int d = int(consumers_[i][0]);
      for (size_t k = 1; k < consumers_[i].size() && d != kSink; ++k)
        d = Lca(d, int(consumers_[i][k]));
      ipdom_[i] = d;
      depth_[i] = d == kSink ? 1 : depth_[uint32_t(d)] + 1;
    }
  }

  int Lca(int a, int b) const {
    while (a != b) {
      if (a == kSink || b == kSink) return kSink;
      if (depth_[uint32_t(a)] >= depth_[uint32_t(b)])
        a = ipdom_[uint32_t(a)];
      else
        b = ipdom_[uint32_t(b)];
    }
    return a;
  }

  // How consumer c reads node u: its pattern, except that a broadcast op reading an input of
  // its own output shape reads it elementwise (TVM's edge pattern).
  FusionPattern EdgePattern(uint32_t u, uint32_t c) const {
    FusionPattern p = pattern_of_op(c);
    if (p != FusionPattern::kBroadcast) return p;
    const Node& cn = g_.node(c);
    const Shape& out = g_.shape(Entry{c, 0});
    for (const Entry& e : cn.inputs)
      if (e.node == u && !(g_.shape(e) == out)) return p;
    return FusionPattern::kElemwise;
  }
  FusionPattern pattern_of_op(uint32_t i) const { return g_.node(i).op->pattern(); }

  // The nodes strictly between i and its post-dominator d (every node reachable from i before
  // d), and the combined pattern of every edge on those paths.
  struct Path {
    std::vector<uint32_t> inner;
    FusionPattern edges = FusionPattern::kElemwise;
  };
  Path PathTo(uint32_t i, uint32_t d, bool output_zero_only = false) const {
    Path p;
    std::vector<uint32_t> stack{i};
    std::unordered_set<uint32_t> seen{i};
    while (!stack.empty()) {
      uint32_t u = stack.back();
      stack.pop_back();
      for (uint32_t c : consumers_[u]) {
        if (u == i && output_zero_only && !Reads(c, Entry{i, 0})) continue;
        p.edges = Max(p.edges, EdgePattern(u, c));
        if (c == d || !seen.insert(c).second) continue;
        p.inner.push_back(c);
        stack.push_back(c);
      }
    }
    return p;
  }

  bool Reads(uint32_t c, Entry e) const {
    for (const Entry& in : g_.node(c).inputs)
      if (in == e) return true;
    return false;
  }

  // The post-dominator of the readers of output 0 of node i, or the sink.
  int OutputZeroDominator(uint32_t i) const {
    for (const Entry& e : g_.outputs())
      if (e == Entry{i, 0}) return kSink;
    int d = kSink;
    bool first = true;
    for (uint32_t c : consumers_[i]) {
      if (!Reads(c, Entry{i, 0})) continue;
      d = first ? int(c) : Lca(d, int(c));
      first = false;
      if (d == kSink) break;
    }
    return d;
  }

  // Whether a path leaves node i through another output and comes back into the epilogue
  // (path.inner and d): the group would then not be one kernel.
  bool Reenters(uint32_t i, const Path& path, uint32_t d) const {
    std::unordered_set<uint32_t> members(path.inner.begin(), path.inner.end());
    members.insert(d);
    std::vector<uint32_t> stack;
    std::unordered_set<uint32_t> seen;
    for (uint32_t c : consumers_[i])
      if (!members.count(c)) stack.push_back(c);
    while (!stack.empty()) {
      uint32_t u = stack.back();
      stack.pop_back();
      if (u > d || !seen.insert(u).second) continue;  // topological: beyond d cannot come back
      if (members.count(u)) return true;
      for (uint32_t c : consumers_[u]) stack.push_back(c);
    }
    return false;
  }

  bool SameSide(uint32_t a, uint32_t b) const {
    if (phase_[a] != phase_[b]) return false;
    return !g_.has_devices() || g_.devices[a] == g_.devices[b];
  }

  void TryFuse(uint32_t i, int phase) {
    uint32_t gi = Find(i);
    FusionPattern gp = pattern_[gi];
    if (gp == FusionPattern::kOpaque || gp == FusionPattern::kCommReduce) return;
    // A heavy op with several outputs (BatchNorm's saved statistics, a backward op's weight
    // gradient) takes its epilogue on output 0: the post-dominator of output 0's readers.
    bool multi =
        g_.node(i).num_outputs() > 1 && pattern_of_op(i) == FusionPattern::kOutElemwiseFusable;
    int dom = multi ? OutputZeroDominator(i) : ipdom_[i];
    if (dom == kSink) return;
    uint32_t d = uint32_t(dom);
    if (Find(d) == gi) return;
    Path path = PathTo(i, d, multi);
    if (multi && Reenters(i, path, d)) return;
    // Which group patterns may sit between i and d, and at d.
    std::function<bool(uint32_t)> inner_ok, sink_ok;
    if (gp == FusionPattern::kOutElemwiseFusable) {
      if (phase != 0 || path.edges != FusionPattern::kElemwise) return;
      inner_ok = [&](uint32_t v) { return pattern_[Find(v)] <= FusionPattern::kBroadcast; };
      sink_ok = inner_ok;
    } else if (gp <= FusionPattern::kBroadcast) {
      if (!(path.edges <= FusionPattern::kInjective || path.edges == FusionPattern::kCommReduce))
        return;
      inner_ok = [&](uint32_t v) { return pattern_[Find(v)] <= FusionPattern::kInjective; };
      sink_ok = [&](uint32_t v) {
        FusionPattern p = pattern_[Find(v)];
        if (p <= FusionPattern::kInjective || p == FusionPattern::kCommReduce) return true;
        // Into an epilogue (not into the heavy op itself: no prologues).
        return p == FusionPattern::kOutElemwiseFusable &&
               pattern_of_op(v) != FusionPattern::kOutElemwiseFusable;
      };
    } else if (gp == FusionPattern::kInjective) {
      if (phase != 1 || path.edges > FusionPattern::kInjective) return;
      inner_ok = [&](uint32_t v) { return pattern_[Find(v)] <= FusionPattern::kInjective; };
      sink_ok = inner_ok;
    } else {
      return;
    }
    if (!sink_ok(d) || !SameSide(i, d)) return;
    std::set<uint32_t> groups{gi, Find(d)};
    for (uint32_t v : path.inner) {
      if (!inner_ok(v) || !SameSide(i, v)) return;
      groups.insert(Find(v));
    }
    int total = 0;
    for (uint32_t r : groups) total += size_[r];
    if (total > ctx_.max_fused_ops) return;
    // Commit: everything joins d's group, which takes the strongest pattern.
    uint32_t root = Find(d);
    for (uint32_t r : groups) {
      if (r == root) continue;
      parent_[r] = root;
      size_[root] += size_[r];
      pattern_[root] = Max(pattern_[root], pattern_[r]);
    }
  }

  const Graph& g_;
  const PassContext& ctx_;
  std::vector<std::vector<uint32_t>> consumers_;  // op nodes reading any output, in order
  std::vector<bool> leaves_graph_;                // some output is a graph output
  std::vector<uint8_t> phase_;
  std::vector<int> ipdom_;
  std::vector<int> depth_;
  std::vector<uint32_t> parent_;        // union-find over nodes
  std::vector<int> size_;               // ops in the group (at roots)
  std::vector<FusionPattern> pattern_;  // the group's pattern (at roots)
};

// A name not in `taken`: `base`, else base_1, base_2, ...
std::string FreeName(const std::string& base, std::set<std::string>& taken) {
  std::string name = base;
  for (int k = 1; taken.count(name); ++k) name = StrCat(base, "_", k);
  taken.insert(name);
  return name;
}

// Builds the fused graph from the groups.
class Builder {
 public:
  Builder(const Graph& g, Fuser& f) : g_(g), f_(f) {}

  Graph Build() {
    uint32_t n = g_.num_nodes();
    // Members of each group in topological order; variables are groups of their own.
    std::map<uint32_t, std::vector<uint32_t>> members;
    for (uint32_t i = 0; i < n; ++i) members[f_.Find(i)].push_back(i);
    std::vector<uint32_t> roots;
    for (auto& [r, m] : members) roots.push_back(r);
    // Which entries leave their group (read by another group or a graph output).
    std::vector<bool> escapes(g_.num_entries(), false);
    for (const Entry& e : g_.outputs()) escapes[g_.entry_id(e)] = true;
    for (uint32_t i = 0; i < n; ++i)
      for (const Entry& e : g_.node(i).inputs)
        if (f_.Find(e.node) != f_.Find(i)) escapes[g_.entry_id(e)] = true;

    // Kahn's order over groups: forward phase first, then by last member, which keeps the
    // input order wherever the groups allow it.
    std::map<uint32_t, std::set<uint32_t>> deps;  // group -> groups it reads
    std::map<uint32_t, std::vector<uint32_t>> readers;
    for (uint32_t r : roots)
      for (uint32_t i : members[r])
        for (const Entry& e : g_.node(i).inputs) {
          uint32_t s = f_.Find(e.node);
          if (s != r && deps[r].insert(s).second) readers[s].push_back(r);
        }
    using Key = std::pair<std::pair<uint8_t, uint32_t>, uint32_t>;
    std::priority_queue<Key, std::vector<Key>, std::greater<Key>> ready;
    auto key = [&](uint32_t r) { return Key{{f_.phase(r), members[r].back()}, r}; };
    std::map<uint32_t, size_t> waiting;
    for (uint32_t r : roots) {
      waiting[r] = deps[r].size();
      if (!waiting[r]) ready.push(key(r));
    }
    std::vector<Entry> new_entry(g_.num_entries());
    while (!ready.empty()) {
      uint32_t r = ready.top().second;
      ready.pop();
      Emit(members[r], escapes, new_entry);
      for (uint32_t s : readers[r])
        if (--waiting[s] == 0) ready.push(key(s));
    }
    for (const Entry& e : g_.outputs()) out_.AddOutput(new_entry[g_.entry_id(e)]);
    out_.shapes = std::move(shapes_);
    out_.dtypes = std::move(dtypes_);
    if (g_.has_devices()) out_.devices = std::move(devices_);
    return std::move(out_);
  }

 private:
  uint32_t Add(Node node, const std::vector<uint32_t>& from_entries, uint32_t device_of) {
    uint32_t id = out_.AddNode(std::move(node));
    for (uint32_t e : from_entries) {
      shapes_.push_back(g_.shapes[e]);
      dtypes_.push_back(g_.dtypes[e]);
    }
    if (g_.has_devices()) devices_.push_back(g_.devices[device_of]);
    return id;
  }

  void Emit(const std::vector<uint32_t>& group, const std::vector<bool>& escapes,
            std::vector<Entry>& new_entry) {
    if (group.size() == 1) {
      uint32_t i = group[0];
      Node node = g_.node(i);
      for (Entry& e : node.inputs) e = new_entry[g_.entry_id(e)];
      std::vector<uint32_t> entries;
      for (int k = 0; k < g_.node(i).num_outputs(); ++k)
        entries.push_back(g_.entry_id(i, uint32_t(k)));
      uint32_t id = Add(std::move(node), entries, i);
      for (size_t k = 0; k < entries.size(); ++k) new_entry[entries[k]] = Entry{id, uint32_t(k)};
      return;
    }
    // The body: one variable per distinct outside entry read, then the members.
    auto body = std::make_shared<Graph>();
    std::set<uint32_t> in_group(group.begin(), group.end());
    std::set<std::string> taken;
    for (uint32_t i : group) taken.insert(g_.node(i).name);
    std::map<uint32_t, Entry> inner;  // outer entry id -> body entry
    std::vector<Entry> inputs;
    std::vector<uint32_t> body_facts;  // outer entry id of each body entry, in order
    std::string anchor;
    FusionPattern strongest = FusionPattern::kElemwise;
    for (uint32_t i : group) {
      for (const Entry& e : g_.node(i).inputs) {
        uint32_t id = g_.entry_id(e);
        if (in_group.count(e.node) || inner.count(id)) continue;
        std::string base = g_.node(e.node).name;
        if (e.index) base = StrCat(base, "_out", e.index);
        uint32_t v = body->AddVariable(FreeName(base, taken));
        inner[id] = Entry{v, 0};
        body_facts.push_back(id);
        inputs.push_back(new_entry[id]);
      }
    }
    for (uint32_t i : group) {
      Node node = g_.node(i);
      for (Entry& e : node.inputs) e = inner.at(g_.entry_id(e));
      // The heavy op (matrix product, convolution, reduction) names the group; a group of
      // elementwise and injective ops has no anchor.
      if (node.op->pattern() > strongest && node.op->pattern() >= FusionPattern::kCommReduce)
        anchor = node.op->name();
      strongest = Max(strongest, node.op->pattern());
      uint32_t b = body->AddNode(std::move(node));
      for (int k = 0; k < g_.node(i).num_outputs(); ++k) {
        uint32_t id = g_.entry_id(i, uint32_t(k));
        inner[id] = Entry{b, uint32_t(k)};
        body_facts.push_back(id);
      }
    }
    std::vector<uint32_t> outs;  // outer entry ids the composite returns
    for (uint32_t i : group)
      for (int k = 0; k < g_.node(i).num_outputs(); ++k) {
        uint32_t id = g_.entry_id(i, uint32_t(k));
        if (!escapes[id]) continue;
        outs.push_back(id);
        body->AddOutput(inner.at(id));
      }
    body->shapes.resize(body->num_entries());
    body->dtypes.resize(body->num_entries());
    for (size_t k = 0; k < body_facts.size(); ++k) {
      uint32_t be = body->entry_id(inner.at(body_facts[k]));
      body->shapes[be] = g_.shapes[body_facts[k]];
      body->dtypes[be] = g_.dtypes[body_facts[k]];
    }
    uint32_t last = group.back();
    uint32_t id =
        Add(MakeComposite(g_.node(last).name, anchor, body, std::move(inputs)), outs, last);
    for (size_t k = 0; k < outs.size(); ++k) new_entry[outs[k]] = Entry{id, uint32_t(k)};
  }

  const Graph& g_;
  Fuser& f_;
  Graph out_;
  std::vector<Shape> shapes_;
  std::vector<DType> dtypes_;
  std::vector<Device> devices_;
};

bool FactsComplete(const Graph& g) {
  if (!g.has_shapes() || !g.has_dtypes()) return false;
  for (uint32_t e = 0; e < g.num_entries(); ++e)
    if (!g.shapes[e].rank_known() || g.dtypes[e] == DType::kUnknown) return false;
  return true;
}

}  // namespace

Graph Fuse(Graph g, const PassContext& ctx) {
  if (!FactsComplete(g))
    throw UserError(
        "fuse needs every entry's shape and dtype: run infer-shape and infer-type first");
  if (ctx.max_fused_ops < 1)
    throw UserError(StrCat("max_fused_ops must be at least 1, got ", ctx.max_fused_ops));
  Fuser f(g, ctx);
  f.Run();
  return Builder(g, f).Build();
}

KernelCount CountKernels(const Graph& g) {
  KernelCount c;
  for (const Node& n : g.nodes()) {
    if (n.is_variable()) continue;
    ++c.kernels;
    if (IsComposite(n)) {
      ++c.fused;
      for (const Node& b : CompositeBody(n).nodes()) c.ops += b.is_variable() ? 0 : 1;
      continue;
    }
    ++c.ops;
    if (n.op->pattern() <= FusionPattern::kBroadcast) ++c.lone_elementwise;
  }
  return c;
}

uint32_t ForwardPrefix(const Graph& g, size_t forward_outputs) {
  std::vector<bool> needed(g.num_nodes(), false);
  for (size_t k = 0; k < forward_outputs && k < g.outputs().size(); ++k)
    needed[g.outputs()[k].node] = true;
  uint32_t end = 0;
  for (uint32_t i = g.num_nodes(); i-- > 0;) {
    if (!needed[i]) continue;
    end = std::max(end, i + 1);
    for (const Entry& e : g.node(i).inputs) needed[e.node] = true;
  }
  return end;
}

}  // namespace kiln
