// optimizer.cpp - SGD, Adam, learning-rate schedules and global-norm clipping (see optimizer.h).
#include "kiln/frontend/optimizer.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "kiln/frontend/executor.h"
#include "kiln/runtime/thread_pool.h"

namespace kiln {

namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Reads every element as double, calls f(i, weight_i, grad_i) -> new weight_i, writes it back.
template <class F>
void ForEach(const Tensor& weight, const Tensor& grad, F&& f) {
  KILN_FLOAT_DTYPE_SWITCH(weight.dtype(), T, {
    T* w = weight.data<T>();
    KILN_FLOAT_DTYPE_SWITCH(grad.dtype(), G, {
      const G* g = grad.data<G>();
      const int64_t n = weight.size();
      for (int64_t i = 0; i < n; ++i) w[i] = T(f(size_t(i), double(w[i]), double(g[i])));
    });
  });
}

}  // namespace

// --- Schedules ---

LRSchedule LRSchedule::Factor(double base_lr, int64_t step, double factor, double stop_factor_lr,
                              Warmup warmup) {
  if (step < 1) throw UserError(StrCat("LRSchedule::Factor: step must be at least 1, not ", step));
  LRSchedule s;
  s.kind_ = Kind::kFactor;
  s.base_lr_ = base_lr;
  s.step_ = step;
  s.factor_ = factor;
  s.floor_lr_ = stop_factor_lr;
  s.warmup_ = warmup;
  return s;
}

LRSchedule LRSchedule::Cosine(double base_lr, int64_t max_update, double final_lr, Warmup warmup) {
  if (max_update <= warmup.steps)
    throw UserError(StrCat("LRSchedule::Cosine: max_update (", max_update,
                           ") must exceed the warm-up steps (", warmup.steps, ")"));
  LRSchedule s;
  s.kind_ = Kind::kCosine;
  s.base_lr_ = base_lr;
  s.step_ = max_update;
  s.floor_lr_ = final_lr;
  s.warmup_ = warmup;
  return s;
}

double LRSchedule::operator()(int64_t n) const {
  if (n < warmup_.steps)
    return warmup_.begin_lr + (base_lr_ - warmup_.begin_lr) * double(n) / double(warmup_.steps);
  if (kind_ == Kind::kFactor) {
    // MXNet decays when num_update exceeds count + step, so step `step` itself is undecayed.
    int64_t k = n > 0 ? (n - 1) / step_ : 0;
    return std::max(base_lr_ * std::pow(factor_, double(k)), floor_lr_);
  }
  int64_t m = std::min(n, step_);
  double phase = double(m - warmup_.steps) / double(step_ - warmup_.steps);
  return floor_lr_ + (base_lr_ - floor_lr_) * (1 + std::cos(std::numbers::pi * phase)) / 2;
}

// --- Optimizer ---

double Optimizer::LearningRate(int64_t n) const {
  return common_.lr_schedule ? (*common_.lr_schedule)(n) : common_.learning_rate;
}

double Optimizer::Clip(double g) const {
  if (common_.clip_gradient < 0) return g;
  return std::clamp(g, -common_.clip_gradient, common_.clip_gradient);
}

void Optimizer::Update(int index, const Tensor& weight, const Tensor& grad, std::string_view name) {
  if (!weight.defined() || !grad.defined() || weight.shape() != grad.shape() ||
      !IsFloatingPoint(weight.dtype()) || !IsFloatingPoint(grad.dtype()))
    throw UserError(StrCat("optimizer update of parameter ", index,
                           name.empty() ? "" : StrCat(" \"", name, "\""), ": weight ",
                           weight.defined() ? weight.TypeString() : "undefined", ", gradient ",
                           grad.defined() ? grad.TypeString() : "undefined",
                           " (both need the same shape and a floating-point type)"));
  int64_t t = ++counts_[index];
  num_update_ = std::max(num_update_, t);
  bool decays = name.empty() || EndsWith(name, "_weight") || EndsWith(name, "_gamma");
  Step(index, t, LearningRate(num_update_), decays ? common_.wd : 0.0, weight, grad);
}

void Optimizer::Update(const Executor& exec) {
  const auto& names = exec.argument_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (exec.grad_reqs()[i] != GradReq::kNull)
      Update(int(i), exec.arg_arrays()[i], exec.grad_arrays()[i], names[i]);
}

SGD::SGD(SGDOptions o)
    : Optimizer({o.learning_rate, o.wd, o.rescale_grad, o.clip_gradient, o.lr_schedule}),
      momentum_(o.momentum) {}

void SGD::Step(int index, int64_t, double lr, double wd, const Tensor& weight, const Tensor& grad) {
  const double rescale = common().rescale_grad;
  if (momentum_ == 0 && common().clip_gradient < 0 && weight.dtype() == DType::kFloat32 &&
      grad.dtype() == DType::kFloat32) {
    // The same update in float32 arithmetic (16 lanes a vector instead of 8 doubles): the
    // coefficients are rounded once, each result differs from the double form by at most a
    // rounding of the float32 result.
    // Chunks of 64 Ki elements over the process's thread pool (elementwise: the same result at
    // any thread count); the file is built with -O3 so that the loop is vectorised.
    float* w = weight.data<float>();
    const float* g = grad.data<float>();
    const int64_t n = weight.size();
    const float keep = float(1 - lr * wd), step = float(lr * rescale);
    auto update = [=](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) w[i] = keep * w[i] - step * g[i];
    };
    constexpr int64_t kChunk = int64_t(1) << 16;
    if (n < 2 * kChunk) return update(0, n);
    ThreadPool::Global().ParallelFor((n + kChunk - 1) / kChunk, [&](int64_t c0, int64_t c1) {
      update(c0 * kChunk, std::min(n, c1 * kChunk));
    });
    return;
  }
  if (momentum_ == 0) {  // sgd_update: no state
    ForEach(weight, grad,
            [&](size_t, double w, double g) { return w - lr * wd * w - lr * Clip(rescale * g); });
    return;
  }
  std::vector<double>& mom = mom_[index];
  mom.resize(size_t(weight.size()), 0.0);
  ForEach(weight, grad, [&](size_t i, double w, double g) {
    mom[i] = momentum_ * mom[i] - lr * wd * w - lr * Clip(rescale * g);
    return w + mom[i];
  });
}

Adam::Adam(AdamOptions o)
    : Optimizer({o.learning_rate, o.wd, o.rescale_grad, o.clip_gradient, o.lr_schedule}),
      beta1_(o.beta1),
      beta2_(o.beta2),
      epsilon_(o.epsilon) {}

void Adam::Step(int index, int64_t t, double lr, double wd, const Tensor& weight,
                const Tensor& grad) {
  const double lr_t =
      lr * std::sqrt(1 - std::pow(beta2_, double(t))) / (1 - std::pow(beta1_, double(t)));
  const double rescale = common().rescale_grad;
  std::vector<double>& m = mean_[index];
  std::vector<double>& v = var_[index];
  m.resize(size_t(weight.size()), 0.0);
  v.resize(size_t(weight.size()), 0.0);
  ForEach(weight, grad, [&](size_t i, double w, double g) {
    double c = Clip(rescale * g + wd * w);
    m[i] = beta1_ * m[i] + (1 - beta1_) * c;
    v[i] = beta2_ * v[i] + (1 - beta2_) * c * c;
    return w - lr_t * m[i] / (std::sqrt(v[i]) + epsilon_);
  });
}

double ClipGlobalNorm(const std::vector<Tensor>& grads, double max_norm) {
  double sum = 0;
  for (const Tensor& g : grads)
    if (g.defined())
      for (double x : g.ToDoubles()) sum += x * x;
  double total = std::sqrt(sum);
  double scale = max_norm / (total + 1e-8);
  if (scale < 1)
    for (const Tensor& g : grads)
      if (g.defined()) ForEach(g, g, [&](size_t, double x, double) { return x * scale; });
  return total;
}

}  // namespace kiln
