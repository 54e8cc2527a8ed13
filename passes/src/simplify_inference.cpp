// simplify_inference.cpp - inference forms, then per-channel folds (see simplify_inference.h).
#include "kiln/passes/simplify_inference.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kiln/ir/grad.h"
#include "kiln/passes/constant_fold.h"
#include "kiln/passes/dce.h"
#include "kiln/passes/infer.h"

namespace kiln {

namespace {

void Reinfer(Graph& g, const PassContext& ctx, bool shapes, bool dtypes) {
  InferOptions opt = ctx.infer;
  opt.require_complete = false;
  for (const auto& [name, t] : ctx.constants) {
    opt.shapes.emplace(name, Shape(t.shape()));
    opt.dtypes.emplace(name, t.dtype());
  }
  if (shapes) InferShapes(g, opt);
  if (dtypes) InferTypes(g, opt);
}

// Step 1: every op with an inference form is replaced by it where the form covers every output
// that is read.
Graph ApplyInferenceForms(const Graph& g, const PassContext& ctx) {
  std::vector<uint32_t> uses = g.EntryUseCounts();
  Graph out;
  std::vector<Entry> map(g.num_entries());
  auto copy_facts = [&](uint32_t old_node, uint32_t new_node) {
    if (out.has_shapes() || g.has_shapes()) out.shapes.resize(out.num_entries());
    if (out.has_dtypes() || g.has_dtypes()) out.dtypes.resize(out.num_entries());
    for (int k = 0; k < g.node(old_node).num_outputs(); ++k) {
      uint32_t from = g.entry_id(old_node, uint32_t(k)), to = out.entry_id(new_node, uint32_t(k));
      if (g.has_shapes()) out.shapes[to] = g.shapes[from];
      if (g.has_dtypes()) out.dtypes[to] = g.dtypes[from];
    }
  };
  bool changed = false;
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    Node n = g.node(i);
    for (Entry& e : n.inputs) e = map[g.entry_id(e)];
    uint32_t id = out.AddNode(std::move(n));
    copy_facts(i, id);
    const Node& node = g.node(i);
    std::vector<Entry> results;
    for (int k = 0; k < node.num_outputs(); ++k) results.push_back(Entry{id, uint32_t(k)});
    if (!node.is_variable() && node.op->inference_form()) {
      GradCtx gc(
          out, id, [](int) { return std::nullopt; }, std::vector<bool>(node.inputs.size(), false),
          "_inference");
      GradList form = node.op->inference_form()(gc);
      bool covered = form.size() == results.size();
      for (size_t k = 0; covered && k < form.size(); ++k)
        if (!form[k] && uses[g.entry_id(i, uint32_t(k))] > 0) covered = false;
      if (covered) {
        for (size_t k = 0; k < form.size(); ++k)
          if (form[k]) results[k] = *form[k];
        changed = true;
      }
      // Nodes a form emitted but that are not used (not covered) are removed by dce below.
    }
    for (int k = 0; k < node.num_outputs(); ++k) map[g.entry_id(i, uint32_t(k))] = results[k];
  }
  for (const Entry& e : g.outputs()) out.AddOutput(map[g.entry_id(e)]);
  if (!changed) return g;
  if (out.has_shapes()) out.shapes.resize(out.num_entries());
  if (out.has_dtypes()) out.dtypes.resize(out.num_entries());
  out = EliminateDeadCode(std::move(out), ctx);
  Reinfer(out, ctx, g.has_shapes(), g.has_dtypes());
  return out;
}

// A constant's values along one channel axis of an output of rank `rank`, when it varies along
// nothing else (NumPy broadcasting, right-aligned): one value per channel (or one for all).
std::optional<std::vector<double>> PerChannel(const Tensor& t, int rank, int axis,
                                              int64_t channels) {
  int r = int(t.shape().size());
  if (r > rank) return std::nullopt;
  int64_t along = 1;
  for (int d = 0; d < r; ++d) {
    int out_d = rank - r + d;
    int64_t n = t.shape()[size_t(d)];
    if (n == 1) continue;
    if (out_d != axis || n != channels) return std::nullopt;
    along = n;
  }
  std::vector<double> v = t.ToDoubles();
  if (along == 1) return std::vector<double>(size_t(channels), v.empty() ? 0.0 : v[0]);
  return v;
}

bool IsFloat(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64;
}

// Step 3 for one channel-scalable node p: the longest chain p -> m1 -> m2 ... of products and
// sums with per-channel constants, each the only reader of the one before.
struct Fold {
  std::vector<uint32_t> chain;  // m1, m2, ... (old node ids)
  std::vector<double> scale, shift;
};

class ChannelFolder {
 public:
  ChannelFolder(const Graph& g, const PassContext& ctx)
      : g_(g), ctx_(ctx), uses_(g.EntryUseCounts()) {
    readers_.resize(g.num_nodes());
    for (uint32_t i = 0; i < g.num_nodes(); ++i)
      for (const Entry& e : g.node(i).inputs) readers_[e.node].push_back(i);
    for (const Node& n : g.nodes()) taken_.insert(n.name);
    for (const auto& [name, t] : ctx.constants) taken_.insert(name);
  }

  Graph Run() {
    Graph out;
    std::vector<Entry> map(g_.num_entries());
    std::vector<bool> skip(g_.num_nodes(), false);
    bool changed = false;
    for (uint32_t i = 0; i < g_.num_nodes(); ++i) {
      if (skip[i]) continue;
      Node n = g_.node(i);
      for (Entry& e : n.inputs) e = map[g_.entry_id(e)];
      std::optional<ChannelScaling> cs;
      Fold fold;
      if (!n.is_variable() && n.op->channel_scaling() && FindChain(i, &cs, &fold)) {
        n = Folded(i, std::move(n), *cs, fold, out);
        for (uint32_t m : fold.chain) skip[m] = true;
        uint32_t id = out.AddNode(std::move(n));
        map[g_.entry_id(i, 0)] = Entry{id, 0};
        map[g_.entry_id(fold.chain.back(), 0)] = Entry{id, 0};
        changed = true;
        continue;
      }
      uint32_t id = out.AddNode(std::move(n));
      for (int k = 0; k < g_.node(i).num_outputs(); ++k)
        map[g_.entry_id(i, uint32_t(k))] = Entry{id, uint32_t(k)};
    }
    if (!changed) return g_;
    for (const Entry& e : g_.outputs()) out.AddOutput(map[g_.entry_id(e)]);
    Reinfer(out, ctx_, g_.has_shapes(), g_.has_dtypes());
    return EliminateDeadCode(std::move(out), ctx_);
  }

 private:
  const Tensor* Constant(Entry e) const {
    const Node& n = g_.node(e.node);
    if (!n.is_variable()) return nullptr;
    auto it = ctx_.constants.find(n.name);
    return it == ctx_.constants.end() ? nullptr : &it->second;
  }

  bool FindChain(uint32_t p, std::optional<ChannelScaling>* cs, Fold* fold) const {
    const Node& pn = g_.node(p);
    Entry out{p, 0};
    if (pn.num_outputs() != 1 || !g_.has_shapes() || !g_.shape(out).IsFullyKnown()) return false;
    int rank = g_.shape(out).ndim();
    *cs = pn.op->channel_scaling()(pn.attrs, rank);
    if (!*cs) return false;
    const Tensor* w = Constant(pn.inputs[size_t((*cs)->weight_input)]);
    const Tensor* b =
        (*cs)->bias_input >= 0 ? Constant(pn.inputs[size_t((*cs)->bias_input)]) : nullptr;
    if (!w || !IsFloat(w->dtype()) || ((*cs)->bias_input >= 0 && !b)) return false;
    int64_t channels = g_.shape(out)[(*cs)->out_axis];
    fold->scale.assign(size_t(channels), 1.0);
    fold->shift.assign(size_t(channels), 0.0);
    Entry cur = out;
    while (uses_[g_.entry_id(cur)] == 1 && readers_[cur.node].size() == 1) {
      uint32_t m = readers_[cur.node][0];
      const Node& mn = g_.node(m);
      if (mn.is_variable() || mn.inputs.size() != 2 || mn.op->arith() == ArithKind::kNone) break;
      if (!(g_.shape(Entry{m, 0}) == g_.shape(out))) break;
      const Tensor* c = Constant(mn.inputs[0] == cur ? mn.inputs[1] : mn.inputs[0]);
      if (!c || c->dtype() != w->dtype()) break;
      auto v = PerChannel(*c, rank, (*cs)->out_axis, channels);
      if (!v) break;
      for (size_t k = 0; k < size_t(channels); ++k) {
        if (mn.op->arith() == ArithKind::kMul) {
          fold->scale[k] *= (*v)[k];
          fold->shift[k] *= (*v)[k];
        } else {
          fold->shift[k] += (*v)[k];
        }
      }
      fold->chain.push_back(m);
      cur = Entry{m, 0};
    }
    return !fold->chain.empty();
  }

  uint32_t NewConstant(Graph& out, const std::string& base, Tensor value) {
    std::string name = base;
    for (int k = 1; taken_.count(name); ++k) name = StrCat(base, "_", k);
    taken_.insert(name);
    ctx_.constants[name] = std::move(value);
    return out.AddVariable(name);
  }

  // Node p (already remapped to `out` as n) with the chain folded in: weight * scale along the
  // weight's channel axis, bias * scale + shift (a new bias input if it had none).
  Node Folded(uint32_t p, Node n, const ChannelScaling& cs, const Fold& fold, Graph& out) {
    const Node& old = g_.node(p);
    const Tensor& w = *Constant(old.inputs[size_t(cs.weight_input)]);
    bool scaled = false;
    for (double s : fold.scale) scaled |= s != 1.0;
    if (scaled) {
      std::vector<double> v = w.ToDoubles();
      int64_t inner = 1;
      for (size_t d = size_t(cs.weight_axis) + 1; d < w.shape().size(); ++d) inner *= w.shape()[d];
      int64_t extent = w.shape()[size_t(cs.weight_axis)];
      for (size_t i = 0; i < v.size(); ++i)
        v[i] *= fold.scale[size_t((int64_t(i) / inner) % extent)];
      uint32_t var = NewConstant(out, old.name + "_weight_folded",
                                 Tensor::FromValues(w.shape(), w.dtype(), v));
      n.inputs[size_t(cs.weight_input)] = Entry{var, 0};
    }
    std::vector<double> bias(fold.shift.size(), 0.0);
    if (cs.bias_input >= 0) bias = Constant(old.inputs[size_t(cs.bias_input)])->ToDoubles();
    for (size_t k = 0; k < bias.size(); ++k) bias[k] = bias[k] * fold.scale[k] + fold.shift[k];
    uint32_t var = NewConstant(out, old.name + "_bias_folded",
                               Tensor::FromValues({int64_t(bias.size())}, w.dtype(), bias));
    if (cs.bias_input >= 0) {
      n.inputs[size_t(cs.bias_input)] = Entry{var, 0};
    } else {
      n.attrs = cs.with_bias;
      n.inputs.push_back(Entry{var, 0});
    }
    return n;
  }

  const Graph& g_;
  const PassContext& ctx_;
  std::vector<uint32_t> uses_;
  std::vector<std::vector<uint32_t>> readers_;
  std::set<std::string> taken_;
};

}  // namespace

Graph SimplifyInference(Graph g, const PassContext& ctx) {
  if (ctx.is_train) return g;
  g = ApplyInferenceForms(g, ctx);
  if (!ctx.constants.empty()) {
    g = ConstantFold(std::move(g), ctx);
    g = ChannelFolder(g, ctx).Run();
  }
  return g;
}

}  // namespace kiln
