// kiln/frontend/executor.h - a Symbol bound to arrays: forward, backward and gradients.
//
// An Executor is MXNet's: a symbol bound to one array per argument, one gradient array per
// argument that wants a gradient, and one array per auxiliary state, all owned by the caller as
// Tensor handles (a Tensor copy shares storage, so the executor and the caller see the same
// memory). Forward(is_train) computes the outputs into outputs(); Backward(head_grads) computes
// the gradients and writes or adds them into the gradient arrays, as grad_req asks. Optimizers
// (optimizer.h) update the argument arrays in place; initializers (initializer.h) fill them.
//
// Training the seed's MLP:
//
//   Symbol net = models::Mlp();                      // ... -> SoftmaxOutput "softmax"
//   Executor train = net.SimpleBind(Device::CPU(), {{"data", {100, 784}}},
//                                   GradReqs::Except(GradReq::kWrite, {"data", "softmax_label"}));
//   InitParams(train, Initializer::Xavier(), {"data", "softmax_label"});  // initializer.h
//   SGD sgd({.learning_rate = 0.1, .momentum = 0.9, .wd = 1e-4, .rescale_grad = 1.0 / 100});
//   for (auto& [images, labels] : batches) {
//     train.Forward(true, {{"data", images}, {"softmax_label", labels}});  // copies them in
//     train.Backward();              // a loss output needs no head gradient
//     sgd.Update(train);             // every argument whose grad_req is not null
//   }
//   // Evaluation at another batch size, sharing the weights (no copy; updates are seen):
//   Executor test = net.SimpleBind(Device::CPU(), {{"data", {1000, 784}}}, GradReq::kNull, {},
//                                  &train);
//   test.Forward(false, {{"data", test_images}});
//   Tensor probs = test.outputs()[0];
//
// Binding (Symbol::Bind, Symbol::SimpleBind; both defined in executor.cpp):
// - Arrays are given by name (a map) or by position (a vector in ListArguments /
//   ListAuxiliaryStates order). Every argument and every auxiliary state needs an array; a name
//   that is not an argument (or auxiliary state) is a UserError rather than ignored as MXNet
//   does, because a misspelt name would otherwise bind nothing silently.
// - grad_req is write, add or null: one for all, a vector in argument order, or a map by name
//   where, as in MXNet, an argument not named is null. An argument without a gradient array is
//   null whatever grad_req says (MXNet's bind does the same). Nothing is computed for null
//   arguments: the gradient graph is built once, at bind time, for the others only.
// - Shapes and dtypes come from the arrays and are checked by inference over the graph: an
//   array that contradicts an op (a weight of the wrong shape), an auxiliary array or gradient
//   array whose shape or dtype differs from its argument's, a missing array, a device other
//   than the bound one: each is a UserError naming the array. Binding to a device other than
//   the CPU is a RuntimeError naming the device (there is no other backend yet).
// - SimpleBind allocates every array (zeros) from the given shapes (and optional dtypes,
//   float32 by default). With `shared_exec`, arguments and auxiliary states of the same name,
//   shape and dtype are that executor's own arrays (gradient arrays are never shared): the
//   evaluation executor above reads the training executor's weights. Bind shares the same way
//   when given another executor's arg_dict() tensors.
//
// Running:
// - Forward(true) runs the forward nodes in training mode (BatchNorm uses batch statistics and
//   updates the moving statistics in the auxiliary arrays in place; Dropout draws a mask) and
//   keeps every forward value for Backward. Forward(false) is inference: BatchNorm uses the
//   moving statistics, Dropout is the identity, and Backward is not allowed until the next
//   Forward(true). Either copies the given inputs into their argument arrays first.
// - Random ops draw from the executor's seed (set_seed; default 0) and a count of Forward(true)
//   calls: masks differ from step to step, a run is reproducible, and evaluation passes in
//   between do not shift the training masks. Draw i of a node is a function of that seed, the
//   node's name and i alone (kiln/ir/random.h).
// - Backward(head_grads): one head gradient per output, in ListOutputs order. Loss outputs
//   (SoftmaxOutput, LinearRegressionOutput, MakeLoss) ignore theirs, so for a network ending
//   in losses Backward() needs none; nor does an output that no requested gradient depends on
//   (an argmax beside the loss). For any other output a missing head gradient is a
//   UserError, as in MXNet's executor ("head_gradient is required when calling backward"):
//   silently using ones would hide a forgotten loss. Backward without a preceding
//   Forward(true) is a UserError. Backward may be called more than once per Forward: with
//   grad_req add each call adds the gradient again.
// - outputs() are arrays allocated at bind time and overwritten by each Forward, so a handle
//   taken once stays current, as MXNet's executor.outputs.
//
// What runs underneath (frontend/src/graph_runner.h): compiled code by default (the LLVM CPU
// backend, kiln/codegen/compile.h: the -O3 passes, fused kernels on one planned arena, compiled
// on the first Forward of each mode and cached by graph structure, shapes, dtypes and target, so
// that later binds of the same model compile nothing), or the reference interpreter, selected
// with SetExecutorBackend or the environment variable KILN_EXECUTOR=interpreter. The choice is
// taken when an executor is bound. KILN_CPU names the target CPU as LLVM does (x86-64-v3 for
// AVX2 code on an AVX-512 machine; an unknown name is a UserError at the first Forward). Results
// agree within the tolerances the tests state (tests/unit/compiled_executor_test.cpp); random
// draws (Dropout's masks, rrelu's slopes) are counter-based (kiln/ir/random.h), so both backends
// draw the same masks at any thread count.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/frontend/bind_args.h"
#include "kiln/frontend/symbol.h"
#include "kiln/runtime/tensor.h"

namespace kiln {

enum class ExecutorBackend { kDefault, kCompiled, kInterpreter };
// The backend of executors bound from now on (process-wide; thread-safe). kDefault: let the
// environment decide again.
void SetExecutorBackend(ExecutorBackend backend);
// The current choice: SetExecutorBackend's, else KILN_EXECUTOR ("interpreter" or "compiled";
// anything else is a UserError at bind), else compiled. Never kDefault.
ExecutorBackend GetExecutorBackend();

class Executor {
 public:
  struct Impl;
  explicit Executor(std::unique_ptr<Impl> impl);
  Executor(Executor&&) noexcept;
  Executor& operator=(Executor&&) noexcept;
  ~Executor();

  // Copies `inputs` (by argument name; shapes must match) into their argument arrays, then runs
  // the forward nodes. See the header comment for the two modes.
  void Forward(bool is_train = false, const std::map<std::string, Tensor>& inputs = {});
  // Runs the backward nodes after Forward(true) and writes or adds the gradients. `head_grads`:
  // empty, or one per output (an undefined Tensor where none is given).
  void Backward(const std::vector<Tensor>& head_grads = {});

  // Arrays in list order. grad_arrays() holds the gradient array given or allocated for each
  // argument: an undefined Tensor where there is none; a null argument's array, if given, is
  // kept but never written (check grad_reqs()).
  const std::vector<Tensor>& outputs() const;
  const std::vector<Tensor>& arg_arrays() const;
  const std::vector<Tensor>& grad_arrays() const;
  const std::vector<Tensor>& aux_arrays() const;
  // The same by name; grad_dict() holds the arguments that have a gradient array.
  std::map<std::string, Tensor> arg_dict() const;
  std::map<std::string, Tensor> grad_dict() const;
  std::map<std::string, Tensor> aux_dict() const;
  std::map<std::string, Tensor> output_dict() const;

  const std::vector<std::string>& argument_names() const;
  const std::vector<std::string>& aux_names() const;
  const std::vector<std::string>& output_names() const;
  const std::vector<GradReq>& grad_reqs() const;  // one per argument, after binding's rules
  Device device() const;

  // The seed of random ops; setting it also restarts the count of training steps.
  void set_seed(uint64_t seed);
  uint64_t seed() const;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln
