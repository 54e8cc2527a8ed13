// kiln/frontend/optimizer.h - MXNet's optimizers and learning-rate schedules, on tensors.
//
//   SGD sgd({.learning_rate = 0.1, .momentum = 0.9, .wd = 1e-4, .rescale_grad = 1.0 / batch,
//            .lr_schedule = LRSchedule::Factor(0.1, 1000, 0.5)});
//   exec.Forward(true, feed); exec.Backward();
//   sgd.Update(exec);  // each argument with a gradient (grad_req write or add), in place
//
// An optimizer keeps its state (momentum, Adam's moments) per parameter index, created on a
// parameter's first update; Update(exec) uses the argument's position as its index. The update
// rules are MXNet's kernels, with lr the current learning rate and wd = wd * wd_mult:
//
//   SGD (sgd_mom_update; momentum 0 is sgd_update, which keeps no state):
//     g   = rescale_grad * grad, clipped to [-clip_gradient, clip_gradient] if clip_gradient >= 0
//     mom = momentum * mom - lr * wd * weight - lr * g          (weight decay is not clipped)
//     weight += mom
//   Adam (adam_update, with the bias correction folded into lr as MXNet's Adam.update does):
//     t   = this parameter's update count (1 on its first update)
//     lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
//     g   = rescale_grad * grad + wd * weight, then clipped if clip_gradient >= 0
//     m   = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
//     weight -= lr_t * m / (sqrt(v) + epsilon)
//
// States are kept in double whatever the weight's dtype (MXNet keeps them in the weight's).
//
// wd_mult: MXNet's Module gives weight decay only to parameters whose names end in "_weight" or
// "_gamma" (biases, betas and the like get wd_mult 0). Update(exec) applies that rule; the
// index-based Update applies it when given a name, and full wd otherwise.
//
// The learning rate at each update is lr_schedule(num_update) if a schedule is set (its own
// base_lr; learning_rate is then unused) and learning_rate otherwise. num_update is, as in
// MXNet, the largest update count of any parameter so far: 1 during the first pass over the
// parameters, 2 during the second, ...
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "kiln/runtime/tensor.h"

namespace kiln {

class Executor;

// Warm-up shared by the schedules: for num_update < steps the rate rises linearly from
// begin_lr to the schedule's base_lr (MXNet's warmup_mode "linear").
struct Warmup {
  int64_t steps = 0;
  double begin_lr = 0;
};

// A learning rate as a function of num_update (MXNet's lr_scheduler), without hidden state, so
// it can be asked about any step in any order.
class LRSchedule {
 public:
  // MXNet's FactorScheduler: base_lr * factor^k after k full periods of `step` updates, i.e.
  // k = floor((num_update - 1) / step), never below stop_factor_lr.
  static LRSchedule Factor(double base_lr, int64_t step, double factor,
                           double stop_factor_lr = 1e-8, Warmup warmup = {});
  // MXNet's CosineScheduler: final_lr + (base_lr - final_lr) * (1 + cos(pi * (n - warmup) /
  // (max_update - warmup))) / 2 for warmup <= n <= max_update, final_lr after.
  static LRSchedule Cosine(double base_lr, int64_t max_update, double final_lr = 0,
                           Warmup warmup = {});

  double operator()(int64_t num_update) const;

 private:
  enum class Kind : uint8_t { kFactor, kCosine };
  Kind kind_ = Kind::kFactor;
  double base_lr_ = 0.01;
  int64_t step_ = 1;  // Factor: period; Cosine: max_update
  double factor_ = 1;
  double floor_lr_ = 0;  // Factor: stop_factor_lr; Cosine: final_lr
  Warmup warmup_;
};

struct SGDOptions {
  double learning_rate = 0.01;
  double momentum = 0;
  double wd = 0;
  double rescale_grad = 1;
  double clip_gradient = -1;  // < 0: no clipping
  std::optional<LRSchedule> lr_schedule;
};

struct AdamOptions {
  double learning_rate = 0.001;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double wd = 0;
  double rescale_grad = 1;
  double clip_gradient = -1;  // < 0: no clipping
  std::optional<LRSchedule> lr_schedule;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // Updates `weight` in place from `grad` (same shape; floating point). `name`, if given,
  // selects wd_mult by MXNet's rule (see above). UserError on mismatched arrays.
  void Update(int index, const Tensor& weight, const Tensor& grad, std::string_view name = "");
  // Updates every argument of `exec` whose grad_req is not null, with its position as index.
  void Update(const Executor& exec);

  int64_t num_update() const { return num_update_; }
  // The learning rate at num_update `n` (the schedule's, or learning_rate).
  double LearningRate(int64_t n) const;

 protected:
  struct Common {
    double learning_rate, wd, rescale_grad, clip_gradient;
    std::optional<LRSchedule> lr_schedule;
  };
  explicit Optimizer(Common common) : common_(std::move(common)) {}
  // One parameter's update, in double, element by element; `t` is its update count.
  virtual void Step(int index, int64_t t, double lr, double wd, const Tensor& weight,
                    const Tensor& grad) = 0;
  // g clipped to [-clip_gradient, clip_gradient] when clipping is on.
  double Clip(double g) const;
  const Common& common() const { return common_; }

 private:
  Common common_;
  std::map<int, int64_t> counts_;
  int64_t num_update_ = 0;
};

class SGD final : public Optimizer {
 public:
  explicit SGD(SGDOptions options = {});

 private:
  void Step(int index, int64_t t, double lr, double wd, const Tensor& weight,
            const Tensor& grad) override;
  double momentum_;
  std::map<int, std::vector<double>> mom_;
};

class Adam final : public Optimizer {
 public:
  explicit Adam(AdamOptions options = {});

 private:
  void Step(int index, int64_t t, double lr, double wd, const Tensor& weight,
            const Tensor& grad) override;
  double beta1_, beta2_, epsilon_;
  std::map<int, std::vector<double>> mean_, var_;
};

// Scales every gradient by max_norm / (total_norm + 1e-8) when that is below 1, where
// total_norm is the 2-norm of all of them together (Gluon's clip_global_norm). Returns
// total_norm. Undefined tensors are skipped.
double ClipGlobalNorm(const std::vector<Tensor>& grads, double max_norm);

}  // namespace kiln
