// Structural validation of a loaded model: what ONNX's checker and shape inference would crash or
// loop on, and what no valid model can contain, rejected with one clear message before either runs.
#pragma once

#include <onnx/onnx_pb.h>

namespace compress {

/// Deepest nesting of subgraphs (If/Loop/Scan bodies) and of model-local function calls accepted.
/// ONNX's recursive checker and shape inference use stack per level; real models nest a few levels.
inline constexpr int kMaxNesting = 64;

/// Throws Error(kBadInput) for: graph cycles; reads of undefined values; values defined twice;
/// empty op types or attribute names; attributes without a type or of the wrong type; missing
/// required attributes, inputs or too many inputs/outputs for the op's schema; non-positive
/// strides/dilations/kernel_shape/group/blocksize, negative pads; Scan without a usable
/// num_scan_inputs; recursive model-local functions; nesting deeper than kMaxNesting; negative
/// graph input dims; opset versions below 1; sparse tensors (initializers of any graph or subgraph,
/// attributes) whose indices do not fit their dims.
void validate_model(const onnx::ModelProto& model);

}  // namespace compress
