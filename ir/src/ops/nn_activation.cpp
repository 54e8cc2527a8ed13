// nn_activation.cpp - Activation, LeakyReLU, softmax and log_softmax.
#include "ops/op_util.h"
#include "ops/register.h"

namespace kiln::ops {
namespace {

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

// softrelu(x) = log(1 + exp(x)), computed without overflow for large x.
double SoftRelu(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

template <class T>
void ActivationKernel(const KernelCtx& ctx) {
  switch (ctx.Attr<ActivationAttrs>().act_type) {
    case ActType::kRelu:
      MapUnary<T>(ctx.in[0], ctx.out[0], [](double x) { return x > 0 ? x : 0.0; });
      break;
    case ActType::kSigmoid:
      MapUnary<T>(ctx.in[0], ctx.out[0], [](double x) { return 1 / (1 + std::exp(-x)); });
      break;
    case ActType::kTanh:
      MapUnary<T>(ctx.in[0], ctx.out[0], [](double x) { return std::tanh(x); });
      break;
    case ActType::kSoftrelu:
      MapUnary<T>(ctx.in[0], ctx.out[0], SoftRelu);
      break;
    case ActType::kSoftsign:
      MapUnary<T>(ctx.in[0], ctx.out[0], [](double x) { return x / (1 + std::fabs(x)); });
      break;
  }
}

}  // namespace

void RegisterActivationOps(OpRegistry& r) {
  r.Register("Activation")
      .Describe(
          "elementwise activation: relu, sigmoid, tanh, softrelu (log(1+e^x)), softsign "
          "(x/(1+|x|))")
      .SetAttrs<ActivationAttrs>()
      .InferShape(SameShapeInfer)
      .InferType(FloatTypeInfer)
      .Pattern(FusionPattern::kElemwise)
      .Inplace(InplaceIdentity)
      .Reference([](KernelCtx& ctx) {
        KILN_FLOAT_DTYPE_SWITCH(ctx.out[0].dtype(), T, ActivationKernel<T>(ctx));
      });
}

}  // namespace kiln::ops
