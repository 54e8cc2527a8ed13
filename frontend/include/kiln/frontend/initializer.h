// kiln/frontend/initializer.h - MXNet's parameter initializers and its naming rule.
//
//   Initializer init = Initializer::Xavier(XavierRnd::kGaussian, XavierFactor::kIn, 2);
//   init.Init("fc1_weight", w);  // by name: *_weight gets Xavier, *_bias zeros, ...
//   InitParams(train_exec, Initializer::Xavier(), {"data", "softmax_label"});  // every parameter
//
// Rules (as MXNet's mx.init):
//   Uniform(scale)     U(-scale, scale)                       (MXNet's default scale 0.07)
//   Normal(sigma)      N(0, sigma^2)                          (default sigma 0.01)
//   Xavier(rnd, factor, magnitude): with fan_in = shape[1] * prod(shape[2:]) and
//                      fan_out = shape[0] * prod(shape[2:]), factor = (fan_in + fan_out) / 2
//                      (avg), fan_in (in) or fan_out (out), scale = sqrt(magnitude / factor);
//                      U(-scale, scale) (uniform) or N(0, scale^2) (gaussian). Defaults:
//                      uniform, avg, 3. A tensor of rank < 2 is a UserError, as in MXNet.
//   Zeros, Ones, Constant(v).
// Init(name, t) applies MXNet's default naming rule (Initializer._legacy_init): names ending in
// "weight" get the chosen rule; "bias", "beta", "moving_mean", "moving_inv_var", "moving_avg"
// get 0; "gamma" and "moving_var" get 1; any other name is a UserError (MXNet refuses to guess
// how to initialize it, and so do we). Fill(t) applies the rule whatever the name.
//
// Reproducibility: the random stream of a parameter is derived from the initializer's seed and
// the parameter's name, so a parameter gets the same values whatever else is initialized and in
// whatever order; the generator (SplitMix64, 53-bit uniforms, Box-Muller normals) is kiln's
// own, so the values do not depend on the C++ library. Fill(t) without a name draws from a
// stream advanced per call.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/runtime/tensor.h"

namespace kiln {

class Executor;

enum class XavierRnd : uint8_t { kUniform, kGaussian };
enum class XavierFactor : uint8_t { kAvg, kIn, kOut };

class Initializer {
 public:
  static Initializer Uniform(double scale = 0.07);
  static Initializer Normal(double sigma = 0.01);
  static Initializer Xavier(XavierRnd rnd = XavierRnd::kUniform,
                            XavierFactor factor = XavierFactor::kAvg, double magnitude = 3);
  static Initializer Zeros();
  static Initializer Ones();
  static Initializer Constant(double value);

  // Seeds the random rules (default 0). Returns *this, for chaining.
  Initializer& Seed(uint64_t seed);

  // MXNet's naming rule (see above). `t` is filled in place.
  void Init(std::string_view name, const Tensor& t) const;
  // The chosen rule, whatever the name; `name` only seeds the stream.
  void Fill(const Tensor& t, std::string_view name) const;
  // The chosen rule, with an unnamed stream advanced per call.
  void Fill(const Tensor& t);

  // Xavier's scale for a shape: sqrt(magnitude / factor). UserError below rank 2.
  static double XavierScale(const std::vector<int64_t>& shape, XavierFactor factor,
                            double magnitude);

 private:
  enum class Kind : uint8_t { kUniform, kNormal, kXavier, kConstant };
  Initializer(Kind kind, double a) : kind_(kind), a_(a) {}
  void FillWithStream(const Tensor& t, uint64_t stream) const;

  Kind kind_;
  double a_;  // scale, sigma, magnitude or the constant
  XavierRnd rnd_ = XavierRnd::kUniform;
  XavierFactor factor_ = XavierFactor::kAvg;
  uint64_t seed_ = 0;
  uint64_t calls_ = 0;  // unnamed Fill calls so far
};

// Initializes an executor's parameters with `init` by name (Init): every argument except
// `input_names` (the data and labels, left alone) and every auxiliary state. Arrays shared with
// another executor are initialized once, through whichever executor is given.
void InitParams(const Executor& exec, const Initializer& init,
                const std::vector<std::string>& input_names);

}  // namespace kiln
