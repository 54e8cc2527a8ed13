// executor.cpp - Symbol::Bind, Symbol::SimpleBind and the Executor (see executor.h).
#include "kiln/frontend/executor.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "graph_runner.h"
#include "kiln/passes/gradient.h"
#include "kiln/passes/infer.h"

namespace kiln {

struct Executor::Impl {
  Device device;
  std::vector<std::string> arg_names, aux_names, output_names;
  std::vector<Tensor> args, grads, aux, outputs;
  std::vector<GradReq> reqs;
  std::vector<size_t> grad_args;       // argument index of each gradient the runner returns
  std::vector<bool> head_grad_needed;  // per output: whether a backward node reads it
  std::unique_ptr<GraphRunner> runner;
  uint64_t seed = 0;
  uint64_t train_steps = 0;  // Forward(true) calls since the seed was set
  bool forward_trained = false;
};

namespace {

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void CheckDevice(Device device) {
  // Tensors only live on the CPU today; CUDA arrives with its backend.
  if (device.type != DeviceType::kCPU)
    throw RuntimeError(
        StrCat("cannot bind an executor to ", device.ToString(), ": only the CPU is supported"));
}

std::string Describe(const Tensor& t) {
  return t.TypeString();
}
std::string Describe(const Shape& s, DType t) {
  return StrCat(DTypeName(t), s.ToString());
}

// SplitMix64: spreads (seed, step) over the seed space, so neighbouring steps' masks are
// unrelated.
uint64_t MixSeed(uint64_t seed, uint64_t step) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (step + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// dst = src, converting the dtype if they differ (shapes must have the same element count).
void CopyInto(const Tensor& dst, const Tensor& src) {
  KILN_INTERNAL_CHECK(dst.size() == src.size(), "copy of ", src.TypeString(), " into ",
                      dst.TypeString());
  Tensor s = src.dtype() == dst.dtype() ? src : src.CastTo(dst.dtype());
  if (dst.raw_data() != s.raw_data()) std::memcpy(dst.raw_data(), s.raw_data(), dst.nbytes());
}

// dst += src, elementwise, in dst's type.
void AddInto(const Tensor& dst, const Tensor& src) {
  KILN_INTERNAL_CHECK(dst.size() == src.size(), "add of ", src.TypeString(), " into ",
                      dst.TypeString());
  Tensor s = src.dtype() == dst.dtype() ? src : src.CastTo(dst.dtype());
  KILN_DTYPE_SWITCH(dst.dtype(), T, {
    T* d = dst.data<T>();
    const T* p = s.data<T>();
    for (int64_t i = 0; i < dst.size(); ++i) d[i] = T(AccType<T>(d[i]) + AccType<T>(p[i]));
  });
}

// The variables' names, in the order of `nodes`.
std::vector<std::string> Names(const Graph& g, const std::vector<uint32_t>& nodes) {
  std::vector<std::string> out;
  for (uint32_t i : nodes) out.push_back(g.node(i).name);
  return out;
}

// Inference over the forward graph from what is known; UserError naming anything left unknown
// or any contradiction (the rule that found it names the node and op).
void Infer(Graph& g, const std::map<std::string, Shape>& shapes,
           const std::map<std::string, DType>& dtypes) {
  InferOptions options;
  options.shapes = shapes;
  options.dtypes = dtypes;
  options.require_complete = true;
  InferShapes(g, options);
  InferTypes(g, options);
}

// Checks that `t` (bound as `what` "name") has the inferred shape and dtype.
void CheckArray(const Graph& g, uint32_t node, const Tensor& t, const char* what) {
  const Shape& s = g.shape(Entry{node, 0});
  DType d = g.dtype(Entry{node, 0});
  if (Shape(t.shape()) != s || t.dtype() != d)
    throw UserError(StrCat(what, " \"", g.node(node).name, "\" is ", Describe(t), " but the graph ",
                           "needs ", Describe(s, d)));
}

// Everything after the arrays are chosen: checks, the gradient graph, the runner.
Executor Finish(const Symbol& sym, Graph g, Device device, std::vector<Tensor> args,
                std::vector<Tensor> grads, std::vector<GradReq> reqs, std::vector<Tensor> aux) {
  auto impl = std::make_unique<Executor::Impl>();
  Executor::Impl& x = *impl;
  x.device = device;
  std::vector<uint32_t> arg_nodes = g.ArgumentNodes(), aux_nodes = g.AuxiliaryNodes();
  x.arg_names = Names(g, arg_nodes);
  x.aux_names = Names(g, aux_nodes);
  x.output_names = sym.ListOutputs();

  for (size_t i = 0; i < args.size(); ++i) {
    CheckArray(g, arg_nodes[i], args[i], "argument");
    if (reqs[i] == GradReq::kNull) continue;  // an array given anyway is kept, untouched
    if (Shape(grads[i].shape()) != Shape(args[i].shape()) || grads[i].dtype() != args[i].dtype())
      throw UserError(StrCat("gradient array of argument \"", x.arg_names[i], "\" is ",
                             Describe(grads[i]), " but the argument is ", Describe(args[i])));
  }
  for (size_t i = 0; i < aux.size(); ++i) CheckArray(g, aux_nodes[i], aux[i], "auxiliary state");
  for (const std::vector<Tensor>* list : {&args, &grads, &aux})
    for (const Tensor& t : *list)
      if (t.defined() && !(t.device() == device))
        throw UserError(StrCat("an array on ", t.device().ToString(), " bound to an executor on ",
                               device.ToString()));

  for (const Entry& e : g.outputs()) {
    const Shape& s = g.shape(e);
    x.outputs.push_back(Tensor::Zeros(s.dims(), g.dtype(e), device));
  }

  // The training graph: gradients for the non-null arguments only, built once.
  std::vector<uint32_t> xs;
  for (size_t i = 0; i < args.size(); ++i)
    if (reqs[i] != GradReq::kNull) {
      xs.push_back(arg_nodes[i]);
      x.grad_args.push_back(i);
    }
  const size_t num_outputs = g.outputs().size();
  GradientGraph gg;
  const bool compiled = GetExecutorBackend() == ExecutorBackend::kCompiled;
  Graph forward = compiled ? g : Graph();
  if (xs.empty()) {
    gg.num_forward_nodes = g.num_nodes();
    gg.graph = std::move(g);
  } else {
    gg = BuildGradient(g, xs);
  }
  x.head_grad_needed.assign(num_outputs, false);
  std::vector<uint32_t> uses = gg.graph.EntryUseCounts();
  for (size_t i = 0; i < gg.head_grads.size(); ++i)
    x.head_grad_needed[i] = uses[gg.graph.entry_id(Entry{gg.head_grads[i], 0})] > 0;

  std::map<std::string, Tensor> bound;
  for (size_t i = 0; i < args.size(); ++i) bound[x.arg_names[i]] = args[i];
  for (size_t i = 0; i < aux.size(); ++i) bound[x.aux_names[i]] = aux[i];
  x.runner = compiled ? MakeCompiledRunner(std::move(gg), std::move(forward), std::move(bound),
                                           num_outputs)
                      : MakeInterpreterRunner(std::move(gg), std::move(bound), num_outputs);
  std::vector<Tensor> targets;
  for (size_t i : x.grad_args) targets.push_back(reqs[i] == GradReq::kWrite ? grads[i] : Tensor());
  x.runner->SetGradientArrays(targets);
  x.args = std::move(args);
  x.grads = std::move(grads);
  x.aux = std::move(aux);
  x.reqs = std::move(reqs);
  return Executor(std::move(impl));
}

}  // namespace

// --- The backend ---

namespace {
std::atomic<ExecutorBackend> g_backend{ExecutorBackend::kDefault};
}  // namespace

void SetExecutorBackend(ExecutorBackend backend) {
  g_backend = backend;
}

ExecutorBackend GetExecutorBackend() {
  ExecutorBackend b = g_backend;
  if (b != ExecutorBackend::kDefault) return b;
  const char* env = std::getenv("KILN_EXECUTOR");
  std::string v = env ? env : "";
  if (v.empty() || v == "compiled") return ExecutorBackend::kCompiled;
  if (v == "interpreter") return ExecutorBackend::kInterpreter;
  throw UserError(StrCat("KILN_EXECUTOR is \"", v, "\"; use \"compiled\" or \"interpreter\""));
}

// --- Binding ---

Executor Symbol::Bind(Device device, const BindArrays& args, const BindArrays& args_grad,
                      const GradReqs& grad_req, const BindArrays& aux_states) const {
  CheckDevice(device);
  Graph g = ToGraph();
  std::vector<std::string> arg_names = Names(g, g.ArgumentNodes());
  std::vector<std::string> aux_names = Names(g, g.AuxiliaryNodes());
  std::vector<Tensor> arg_v = args.Resolve(arg_names, "argument");
  std::vector<Tensor> aux_v = aux_states.Resolve(aux_names, "auxiliary state");
  std::vector<Tensor> grad_v = args_grad.Resolve(arg_names, "gradient");
  std::vector<GradReq> reqs = grad_req.Resolve(arg_names);

  std::vector<std::string> missing;
  std::map<std::string, Shape> shapes;
  std::map<std::string, DType> dtypes;
  auto take = [&](const std::vector<std::string>& names, const std::vector<Tensor>& v) {
    for (size_t i = 0; i < names.size(); ++i) {
      if (!v[i].defined()) {
        missing.push_back(names[i]);
        continue;
      }
      shapes[names[i]] = Shape(v[i].shape());
      dtypes[names[i]] = v[i].dtype();
    }
  };
  take(arg_names, arg_v);
  take(aux_names, aux_v);
  if (!missing.empty()) throw UserError(StrCat("Bind: no array given for ", Join(missing)));
  // MXNet: an argument without a gradient array gets no gradient, whatever grad_req says.
  for (size_t i = 0; i < reqs.size(); ++i)
    if (!grad_v[i].defined()) reqs[i] = GradReq::kNull;
  Infer(g, shapes, dtypes);
  return Finish(*this, std::move(g), device, std::move(arg_v), std::move(grad_v), std::move(reqs),
                std::move(aux_v));
}

Executor Symbol::SimpleBind(Device device, const std::map<std::string, Shape>& shapes,
                            const GradReqs& grad_req, const std::map<std::string, DType>& dtypes,
                            const Executor* shared_exec) const {
  CheckDevice(device);
  Graph g = ToGraph();
  std::vector<uint32_t> arg_nodes = g.ArgumentNodes(), aux_nodes = g.AuxiliaryNodes();
  std::vector<std::string> inputs = Names(g, g.VariableNodes());
  std::vector<std::string> unknown;
  for (const auto& [name, s] : shapes)
    if (std::find(inputs.begin(), inputs.end(), name) == inputs.end()) unknown.push_back(name);
  for (const auto& [name, d] : dtypes)
    if (std::find(inputs.begin(), inputs.end(), name) == inputs.end()) unknown.push_back(name);
  if (!unknown.empty())
    throw UserError(StrCat("SimpleBind: no argument or auxiliary state named ", Join(unknown),
                           "; the inputs are ", Join(inputs)));
  if (shared_exec && !(shared_exec->device() == device))
    throw UserError(StrCat("SimpleBind on ", device.ToString(), " cannot share the arrays of an ",
                           "executor on ", shared_exec->device().ToString()));
  Infer(g, shapes, dtypes);
  std::vector<GradReq> reqs = grad_req.Resolve(Names(g, arg_nodes));

  std::map<std::string, Tensor> shared;
  if (shared_exec) {
    shared = shared_exec->arg_dict();
    shared.merge(shared_exec->aux_dict());
  }
  // A shared array of the same name, shape and dtype, or zeros.
  auto allocate = [&](uint32_t node) {
    const Shape& s = g.shape(Entry{node, 0});
    DType d = g.dtype(Entry{node, 0});
    auto it = shared.find(g.node(node).name);
    if (it != shared.end() && Shape(it->second.shape()) == s && it->second.dtype() == d)
      return it->second;
    return Tensor::Zeros(s.dims(), d, device);
  };
  std::vector<Tensor> args, grads, aux;
  for (size_t i = 0; i < arg_nodes.size(); ++i) {
    args.push_back(allocate(arg_nodes[i]));
    grads.push_back(reqs[i] == GradReq::kNull
                        ? Tensor()
                        : Tensor::Zeros(args.back().shape(), args.back().dtype(), device));
  }
  for (uint32_t a : aux_nodes) aux.push_back(allocate(a));
  return Finish(*this, std::move(g), device, std::move(args), std::move(grads), std::move(reqs),
                std::move(aux));
}

// --- Running ---

Executor::Executor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Executor::Executor(Executor&&) noexcept = default;
Executor& Executor::operator=(Executor&&) noexcept = default;
Executor::~Executor() = default;

void Executor::Forward(bool is_train, const std::map<std::string, Tensor>& inputs) {
  Impl& x = *impl_;
  for (const auto& [name, value] : inputs) {
    auto it = std::find(x.arg_names.begin(), x.arg_names.end(), name);
    if (it == x.arg_names.end())
      throw UserError(StrCat("Forward: no argument named \"", name, "\"; the arguments are ",
                             Join(x.arg_names)));
    const Tensor& dst = x.args[size_t(it - x.arg_names.begin())];
    if (!value.defined() || value.shape() != dst.shape())
      throw UserError(StrCat("Forward: input \"", name, "\" is ",
                             value.defined() ? Describe(value) : "undefined",
                             " but the bound array is ", Describe(dst)));
    CopyInto(dst, value);
  }
  // A failed run leaves no forward values that Backward could mistake for this step's.
  x.forward_trained = false;
  uint64_t seed = MixSeed(x.seed, x.train_steps);
  if (is_train) ++x.train_steps;
  std::vector<Tensor> out = x.runner->RunForward(is_train, seed);
  for (size_t i = 0; i < out.size(); ++i) {
    KILN_INTERNAL_CHECK(out[i].shape() == x.outputs[i].shape(), "output ", x.output_names[i],
                        " computed as ", out[i].TypeString(), ", inferred as ",
                        x.outputs[i].TypeString());
    CopyInto(x.outputs[i], out[i]);
  }
  x.forward_trained = is_train;
}

void Executor::Backward(const std::vector<Tensor>& head_grads) {
  Impl& x = *impl_;
  if (!x.forward_trained)
    throw UserError(
        "Backward needs a preceding Forward(is_train=true): the forward values it "
        "differentiates are those of a training pass");
  if (!head_grads.empty() && head_grads.size() != x.outputs.size())
    throw UserError(StrCat("Backward: ", head_grads.size(), " head gradients for ",
                           x.outputs.size(), " outputs (", Join(x.output_names), ")"));
  if (x.grad_args.empty()) return;  // every argument is null: nothing to compute
  std::vector<Tensor> heads(x.outputs.size());
  std::vector<std::string> missing;
  for (size_t i = 0; i < x.outputs.size(); ++i) {
    const Tensor* given =
        i < head_grads.size() && head_grads[i].defined() ? &head_grads[i] : nullptr;
    if (given) {
      if (given->shape() != x.outputs[i].shape() || given->dtype() != x.outputs[i].dtype())
        throw UserError(StrCat("Backward: head gradient of output \"", x.output_names[i], "\" is ",
                               Describe(*given), " but the output is ", Describe(x.outputs[i])));
      heads[i] = *given;
    } else if (x.head_grad_needed[i]) {
      missing.push_back(x.output_names[i]);
    } else {
      heads[i] = x.outputs[i];  // a loss output: read by nothing, any value of its type will do
    }
  }
  if (!missing.empty())
    throw UserError(StrCat("Backward: output(s) ", Join(missing),
                           " are not loss outputs, so Backward needs their head gradients; pass "
                           "them, or end the network in a loss (MakeLoss, SoftmaxOutput)"));
  std::vector<Tensor> grads = x.runner->RunBackward(heads);
  for (size_t k = 0; k < grads.size(); ++k) {
    size_t i = x.grad_args[k];
    KILN_INTERNAL_CHECK(grads[k].shape() == x.grads[i].shape(), "gradient of ", x.arg_names[i],
                        " computed as ", grads[k].TypeString(), ", expected ",
                        x.grads[i].TypeString());
    if (x.reqs[i] == GradReq::kAdd)
      AddInto(x.grads[i], grads[k]);
    else
      CopyInto(x.grads[i], grads[k]);
  }
}

const std::vector<Tensor>& Executor::outputs() const {
  return impl_->outputs;
}
const std::vector<Tensor>& Executor::arg_arrays() const {
  return impl_->args;
}
const std::vector<Tensor>& Executor::grad_arrays() const {
  return impl_->grads;
}
const std::vector<Tensor>& Executor::aux_arrays() const {
  return impl_->aux;
}

namespace {
std::map<std::string, Tensor> Dict(const std::vector<std::string>& names,
                                   const std::vector<Tensor>& arrays) {
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < names.size(); ++i)
    if (arrays[i].defined()) out[names[i]] = arrays[i];
  return out;
}
}  // namespace

std::map<std::string, Tensor> Executor::arg_dict() const {
  return Dict(impl_->arg_names, impl_->args);
}
std::map<std::string, Tensor> Executor::grad_dict() const {
  return Dict(impl_->arg_names, impl_->grads);
}
std::map<std::string, Tensor> Executor::aux_dict() const {
  return Dict(impl_->aux_names, impl_->aux);
}
std::map<std::string, Tensor> Executor::output_dict() const {
  return Dict(impl_->output_names, impl_->outputs);
}

const std::vector<std::string>& Executor::argument_names() const {
  return impl_->arg_names;
}
const std::vector<std::string>& Executor::aux_names() const {
  return impl_->aux_names;
}
const std::vector<std::string>& Executor::output_names() const {
  return impl_->output_names;
}
const std::vector<GradReq>& Executor::grad_reqs() const {
  return impl_->reqs;
}
Device Executor::device() const {
  return impl_->device;
}

void Executor::set_seed(uint64_t seed) {
  impl_->seed = seed;
  impl_->train_steps = 0;
}
uint64_t Executor::seed() const {
  return impl_->seed;
}

}  // namespace kiln
