// register.cpp - registers every op definition file.
#include "ops/register.h"

namespace kiln::ops {

void RegisterAllOps(OpRegistry& r) {
  RegisterDenseOps(r);
  RegisterActivationOps(r);
  RegisterConvOps(r);
  RegisterPoolOps(r);
  RegisterNormOps(r);
  RegisterDropoutOps(r);
  RegisterLossOps(r);
  RegisterUnaryOps(r);
  RegisterBinaryOps(r);
  RegisterReduceOps(r);
  RegisterMatmulOps(r);
  RegisterShapeOps(r);
  RegisterSliceOps(r);
  RegisterLikeOps(r);
  RegisterLogicOps(r);
  RegisterLayoutOps(r);
  RegisterEinsumOps(r);
  RegisterResizeOps(r);
  RegisterRnnOps(r);
  RegisterTrigOps(r);
  RegisterGatherOps(r);
  RegisterScanOps(r);
  RegisterDeviceCopyOps(r);
  RegisterCompositeOps(r);
}

}  // namespace kiln::ops
