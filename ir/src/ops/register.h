// register.h - the op definition files, one registration function each.
//
// OpRegistry::Global() calls RegisterAllOps once; it calls each function below. Adding an op
// means adding it to one of these files (or a new file listed here and in register.cpp).
#pragma once

namespace kiln {
class OpRegistry;
}

namespace kiln::ops {

void RegisterAllOps(OpRegistry& r);

// Neural-network layers.
void RegisterDenseOps(OpRegistry& r);       // FullyConnected, Embedding
void RegisterActivationOps(OpRegistry& r);  // Activation, LeakyReLU, softmax, log_softmax
void RegisterConvOps(OpRegistry& r);        // Convolution, Deconvolution
void RegisterPoolOps(OpRegistry& r);        // Pooling
void RegisterNormOps(OpRegistry& r);        // BatchNorm, LayerNorm
void RegisterDropoutOps(OpRegistry& r);     // Dropout
void RegisterLossOps(OpRegistry& r);        // SoftmaxOutput, LinearRegressionOutput, MakeLoss

// Tensor operations.
void RegisterUnaryOps(OpRegistry& r);   // exp, log, sqrt, ..., clip, Cast, zeros_like, ones_like
void RegisterBinaryOps(OpRegistry& r);  // elemwise_*, broadcast_*, *_scalar, where
void RegisterReduceOps(OpRegistry& r);  // sum, mean, max, min, prod, argmax
void RegisterMatmulOps(OpRegistry& r);  // dot, batch_dot
void RegisterShapeOps(OpRegistry& r);   // Flatten, Reshape, transpose, expand_dims, squeeze,
                                        // broadcast_to, one_hot
void RegisterSliceOps(OpRegistry& r);   // Concat, SliceChannel, slice, slice_axis
void RegisterLikeOps(OpRegistry& r);    // reshape_like, _reduce_sum_like
void RegisterLogicOps(OpRegistry& r);   // broadcast comparisons and logical ops, logical_not,
                                        // floor, ceil, round, trunc, rint
void RegisterLayoutOps(OpRegistry& r);  // _np_reshape, tile, Pad, take
void RegisterEinsumOps(OpRegistry& r);  // einsum
void RegisterResizeOps(OpRegistry& r);  // resize
void RegisterRnnOps(OpRegistry& r);     // LSTM, GRU, RNN_tanh (ONNX's layout)
void RegisterTrigOps(OpRegistry& r);    // sin, cos, tan, arcsin, ..., arctanh
void RegisterGatherOps(OpRegistry& r);  // take_along_axis
void RegisterScanOps(OpRegistry& r);    // cumsum

// Placement.
void RegisterDeviceCopyOps(OpRegistry& r);  // _CrossDeviceCopy
void RegisterCompositeOps(OpRegistry& r);   // fused (composite nodes, kiln/ir/composite.h)

}  // namespace kiln::ops
