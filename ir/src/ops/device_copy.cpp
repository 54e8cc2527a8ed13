// device_copy.cpp - _CrossDeviceCopy (MXNet's name): moves a tensor from one device to another.
//
// The place-devices pass inserts it wherever an edge crosses devices, so that every op reads
// only tensors on its own device. Its value is its input's: same shape, same dtype. The
// reference interpreter runs everything on the host, so its kernel is a plain copy. It is never
// in place (input and output live on different devices, so they cannot share storage) and it
// is opaque (fusing it with an op would put that op's work on the wrong device).
#include "kiln/ir/grad.h"
#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {

void RegisterDeviceCopyOps(OpRegistry& r) {
  r.Register("_CrossDeviceCopy")
      .Describe("its input, copied to the device the place-devices pass assigned to this node")
      .SetAttrs<NoAttrs>()
      .Inputs({"data"})
      .InferShape(SameShapeInfer)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kOpaque)
      .Reference([](KernelCtx& ctx) { CopyAllBytes(ctx.in[0], ctx.out[0]); })
      // The gradient flows back across the same two devices, so it is a copy too; the gradient
      // pass carries no devices, and placing the training graph again assigns them.
      .Gradient([](GradCtx& g) -> GradList { return {g.Emit1("_CrossDeviceCopy", {g.ograd(0)})}; });
}

}  // namespace kiln::ops
