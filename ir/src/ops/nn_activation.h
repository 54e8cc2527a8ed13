// nn_activation.h - what nn_activation.cpp (the ops) and nn_activation_compute.cpp (their
// compute definitions) share: the attribute structs and the definitions' entry points.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kiln/ir/attrs.h"
#include "kiln/ir/compute.h"

namespace kiln::ops {

enum class ActType { kRelu, kSigmoid, kTanh, kSoftrelu, kSoftsign };

struct ActivationAttrs {
  ActType act_type = ActType::kRelu;
  static void Describe(AttrSchema<ActivationAttrs>& s) {
    s.Enum("act_type", &ActivationAttrs::act_type,
           {{"relu", ActType::kRelu},
            {"sigmoid", ActType::kSigmoid},
            {"tanh", ActType::kTanh},
            {"softrelu", ActType::kSoftrelu},
            {"softsign", ActType::kSoftsign}})
        .Required();
  }
};

enum class LeakyType { kLeaky, kElu, kPrelu, kSelu, kGelu, kRrelu };

struct LeakyReLUAttrs {
  LeakyType act_type = LeakyType::kLeaky;
  double slope = 0.25;
  double lower_bound = 0.125;  // rrelu only
  double upper_bound = 0.334;  // rrelu only
  static void Describe(AttrSchema<LeakyReLUAttrs>& s) {
    s.Enum("act_type", &LeakyReLUAttrs::act_type,
           {{"leaky", LeakyType::kLeaky},
            {"elu", LeakyType::kElu},
            {"prelu", LeakyType::kPrelu},
            {"selu", LeakyType::kSelu},
            {"gelu", LeakyType::kGelu},
            {"rrelu", LeakyType::kRrelu}});
    s.Field("slope", &LeakyReLUAttrs::slope);
    s.Field("lower_bound", &LeakyReLUAttrs::lower_bound);
    s.Field("upper_bound", &LeakyReLUAttrs::upper_bound);
    s.Check([](const LeakyReLUAttrs& a) -> std::string {
      if (a.lower_bound > a.upper_bound)
        return StrCat("lower_bound ", a.lower_bound, " is above upper_bound ", a.upper_bound);
      return "";
    });
  }
};

struct SoftmaxAttrs {
  int64_t axis = -1;
  std::optional<double> temperature;  // None means 1
  std::optional<std::string> dtype;   // the output's dtype; None: the data's
  bool use_length = false;
  static void Describe(AttrSchema<SoftmaxAttrs>& s) {
    s.Field("axis", &SoftmaxAttrs::axis);
    s.Field("temperature", &SoftmaxAttrs::temperature);
    s.Field("dtype", &SoftmaxAttrs::dtype).OneOf({"None", "float16", "float32", "float64"});
    s.Field("use_length", &SoftmaxAttrs::use_length);
    s.Check([](const SoftmaxAttrs& a) -> std::string {
      if (a.temperature && *a.temperature == 0) return "temperature must not be 0";
      return "";
    });
  }
};

// The axis prelu's gamma runs along.
inline int PreluAxis(int rank) {
  return rank >= 2 ? 1 : 0;
}

// SELU's constants.
inline constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
inline constexpr double kSeluLambda = 1.0507009873554804934193349852946;

// Compute definitions (nn_activation_compute.cpp; kiln/ir/compute.h).
std::vector<TExpr> ActivationCompute(const ComputeCtx& c);
std::vector<TExpr> ActivationBackwardCompute(const ComputeCtx& c);
std::vector<TExpr> LeakyReLUCompute(const ComputeCtx& c);
std::vector<TExpr> LeakyReLUBackwardCompute(const ComputeCtx& c);
std::vector<TExpr> SoftmaxCompute(const ComputeCtx& c, bool log);
std::vector<TExpr> SoftmaxBackwardCompute(const ComputeCtx& c, bool log);

}  // namespace kiln::ops
