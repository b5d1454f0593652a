// Shape consistency: errors that only show with shapes (an axis past the input's rank, a Reshape
// target that cannot hold the input's elements, RNN weights that disagree with hidden_size or with
// each other), refused when the model's own shapes prove them. Runs after validate_model.
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
/// - Squeeze, Unsqueeze, Reduce*: axes (attribute, constant input, Constant value_ints) outside the
///   rank (Unsqueeze: the output's) or named twice; Squeeze of a dim that is not 1;
/// - RNN, GRU, LSTM: W, R, B or X whose dims disagree with direction, hidden_size and each other.
/// Wherever a shape involved is unknown (symbolic dims, unknown rank, computed shapes) nothing is
/// concluded. `model` is a scratch copy (value_info is replaced); payloads may be stripped above a
/// few KiB (Model::copy_without_large_data): only small constants are read.
void check_shape_consistency(onnx::ModelProto& model);

/// Replaces the graph's sparse_initializers by dense stand-ins (name, type and dims, no data): ONNX
/// 1.12 types a sparse_initializer as sparse_tensor, which no dense op accepts under strict type
/// checking, while runtimes densify them on load. For scratch copies handed to shape inference.
void densify_sparse_stand_ins(onnx::GraphProto& g);

}  // namespace compress
