// initializer.cpp - MXNet's initializers, with a generator of kiln's own (see initializer.h).
#include "kiln/frontend/initializer.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "kiln/frontend/executor.h"

namespace kiln {

namespace {

// SplitMix64: tiny, fast, and good enough for weights; fixed, unlike std:: distributions.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return double(Next() >> 11) * 0x1.0p-53; }
  // Standard normal by Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double r = std::sqrt(-2 * std::log(1 - Uniform()));
    double theta = 2 * std::numbers::pi * Uniform();
    spare_ = r * std::sin(theta);
    has_spare_ = true;
    return r * std::cos(theta);
  }

 private:
  uint64_t state_;
  double spare_ = 0;
  bool has_spare_ = false;
};

// FNV-1a: a parameter's name picks its stream.
uint64_t HashName(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : name) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
  return h;
}

// Writes `value(i)` into every element of `t`, converted to t's dtype.
template <class F>
void Assign(const Tensor& t, F&& value) {
  KILN_DTYPE_SWITCH(t.dtype(), T, {
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.size(); ++i) p[i] = T(value(i));
  });
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

Initializer Initializer::Uniform(double scale) {
  return Initializer(Kind::kUniform, scale);
}
Initializer Initializer::Normal(double sigma) {
  return Initializer(Kind::kNormal, sigma);
}
Initializer Initializer::Xavier(XavierRnd rnd, XavierFactor factor, double magnitude) {
  Initializer init(Kind::kXavier, magnitude);
  init.rnd_ = rnd;
  init.factor_ = factor;
  return init;
}
Initializer Initializer::Zeros() {
  return Initializer(Kind::kConstant, 0);
}
Initializer Initializer::Ones() {
  return Initializer(Kind::kConstant, 1);
}
Initializer Initializer::Constant(double value) {
  return Initializer(Kind::kConstant, value);
}

Initializer& Initializer::Seed(uint64_t seed) {
  seed_ = seed;
  calls_ = 0;
  return *this;
}

double Initializer::XavierScale(const std::vector<int64_t>& shape, XavierFactor factor,
                                double magnitude) {
  if (shape.size() < 2)
    throw UserError(StrCat("Xavier initializer cannot be applied to ", ShapeString(shape),
                           ": it needs at least 2 dimensions"));
  double hw = 1;
  for (size_t i = 2; i < shape.size(); ++i) hw *= double(shape[i]);
  double fan_in = double(shape[1]) * hw, fan_out = double(shape[0]) * hw;
  double f = factor == XavierFactor::kAvg  ? (fan_in + fan_out) / 2
             : factor == XavierFactor::kIn ? fan_in
                                           : fan_out;
  return std::sqrt(magnitude / f);
}

void Initializer::FillWithStream(const Tensor& t, uint64_t stream) const {
  if (kind_ == Kind::kConstant) {
    Assign(t, [&](int64_t) { return a_; });
    return;
  }
  if (!IsFloatingPoint(t.dtype()))
    throw UserError(StrCat("a random initializer cannot fill a tensor of ", DTypeName(t.dtype())));
  Rng rng(seed_ ^ stream);
  double scale = a_;
  bool gaussian = kind_ == Kind::kNormal;
  if (kind_ == Kind::kXavier) {
    scale = XavierScale(t.shape(), factor_, a_);
    gaussian = rnd_ == XavierRnd::kGaussian;
  }
  if (gaussian)
    Assign(t, [&](int64_t) { return scale * rng.Normal(); });
  else
    Assign(t, [&](int64_t) { return scale * (2 * rng.Uniform() - 1); });
}

void Initializer::Fill(const Tensor& t, std::string_view name) const {
  FillWithStream(t, HashName(name));
}

void Initializer::Fill(const Tensor& t) {
  // Unnamed streams are numbered; the odd constant keeps them apart from hashed names.
  FillWithStream(t, 0x5851f42d4c957f2dull * ++calls_);
}

void Initializer::Init(std::string_view name, const Tensor& t) const {
  // MXNet's _legacy_init, in its order (so "moving_var" is not caught by another suffix).
  if (EndsWith(name, "bias") || EndsWith(name, "beta") || EndsWith(name, "moving_mean") ||
      EndsWith(name, "moving_inv_var") || EndsWith(name, "moving_avg")) {
    Zeros().FillWithStream(t, 0);
  } else if (EndsWith(name, "gamma") || EndsWith(name, "moving_var")) {
    Ones().FillWithStream(t, 0);
  } else if (EndsWith(name, "weight")) {
    Fill(t, name);
  } else {
    throw UserError(StrCat("no initialization rule for \"", name,
                           "\": by name, only *weight (the chosen initializer), *bias, *beta, "
                           "*moving_mean (0), *gamma and *moving_var (1) are known"));
  }
}

void InitParams(const Executor& exec, const Initializer& init,
                const std::vector<std::string>& input_names) {
  const auto& names = exec.argument_names();
  for (const auto& in : input_names)
    if (std::find(names.begin(), names.end(), in) == names.end())
      throw UserError(StrCat("InitParams: \"", in, "\" is not an argument of the executor"));
  for (size_t i = 0; i < names.size(); ++i)
    if (std::find(input_names.begin(), input_names.end(), names[i]) == input_names.end())
      init.Init(names[i], exec.arg_arrays()[i]);
  for (size_t i = 0; i < exec.aux_names().size(); ++i)
    init.Init(exec.aux_names()[i], exec.aux_arrays()[i]);
}

}  // namespace kiln
