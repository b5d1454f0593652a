// Shape consistency: errors that only show with shapes (an axis past the input's rank, a Reshape
// target that cannot hold the input's elements, RNN weights that disagree with hidden_size or with
// each other, operands that cannot broadcast or multiply), refused when the model's own shapes prove them. Runs after validate_model.
#pragma once

#include <onnx/onnx_pb.h>

namespace compress {

/// Throws Error(kBadInput) naming the node when the shapes the model declares (graph inputs,
/// initializers that are not inputs, Constant values) and what ONNX shape inference derives from
/// them prove a node inconsistent:
/// - Gather, GatherElements, Concat, Softmax, LogSoftmax, Hardmax, Flatten, Split, ArgMax, ArgMin,
///   TopK: axis outside the input's rank; Concat inputs of different ranks or other dims; Split
///   sizes below 0 or not summing to the split axis;
/// - Reshape with a constant shape: values below -1, two -1, a 0 past the input's rank, or an
///   element count that cannot match the input's;
/// - Squeeze, Unsqueeze, Reduce*: axes (attribute, constant input, Constant value_ints/value_int)
///   outside the rank (Unsqueeze: the output's) or named twice; Squeeze of a dim that is not 1;
/// - RNN, GRU, LSTM: W, R, B or X whose dims disagree with direction, hidden_size and each other;
/// - elementwise ops (opset >= 8): known dims other than 1 that cannot broadcast; MatMul,
///   MatMulInteger, Gemm: inner dims that differ (Gemm: A or B not 2-D); Conv, ConvInteger,
///   QLinearConv: input channels != W's dim 1 x group, output channels not a multiple of group, a
///   bias of another length; BatchNormalization: parameters not 1-D of the channel count;
/// - Transpose perm of another length than the rank; Slice axes outside the rank or named twice,
///   starts/ends/axes/steps of different lengths, a step 0; Tile repeats below 0 or not one per
///   axis; Gather constant indices outside the gathered axis; LayerNormalization, LpNormalization,
///   ScatterElements, Compress: axis outside the rank;
/// - QuantizeLinear, DequantizeLinear: a zero point of another element count than the scale, a
///   per-axis scale not as long as the axis, a blocked scale whose dims do not match block_size.
/// Wherever a shape involved is unknown (symbolic dims, unknown rank, computed shapes) nothing is
/// concluded. `model` is a scratch copy (value_info is replaced); payloads may be stripped above a
/// few KiB (Model::copy_without_large_data): only small constants are read.
void check_shape_consistency(onnx::ModelProto& model);

/// Replaces the graph's sparse_initializers by dense stand-ins (name, type and dims, no data): ONNX
/// 1.12 types a sparse_initializer as sparse_tensor, which no dense op accepts under strict type
/// checking, while runtimes densify them on load. For scratch copies handed to shape inference.
void densify_sparse_stand_ins(onnx::GraphProto& g);

}  // namespace compress
