// kiln/passes/simplify_inference.h - inference-only rewrites: BatchNorm and Dropout disappear.
//
// For inference graphs (PassContext::is_train unset; on a training graph the pass returns it
// unchanged). Three steps, each driven by the op registry:
// 1. Every op with an inference form (OpDef::inference_form) is replaced by it, where every
//    output it gives no replacement for is unused: BatchNorm becomes a per-channel scale and
//    shift (data * scale + shift, both computed from gamma, beta and the moving statistics),
//    Dropout becomes its input.
// 2. The constant part is folded (the constant-fold pass) when PassContext::constants holds the
//    parameters, so scale and shift become constant tensors.
// 3. A product or sum (ArithKind) of a channel-scalable op's output (OpDef::channel_scaling:
//    FullyConnected, Convolution) with a constant that varies only along the output channels is
//    folded into that op's weight and bias, when nothing else reads the op's output: BatchNorm
//    after a convolution then costs nothing. The new weights are new constant variables
//    ("<node>_weight_folded", "<node>_bias_folded"), added to PassContext::constants.
// Values agree with the input graph up to float rounding (the fold computes in double and
// rounds once). The result has its facts inferred again.
#pragma once

#include "kiln/ir/graph.h"
#include "kiln/passes/pass_manager.h"

namespace kiln {

Graph SimplifyInference(Graph g, const PassContext& ctx);

}  // namespace kiln
