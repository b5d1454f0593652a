// Static shape analysis: exact shapes of every value without running the model. ONNX 1.12 shape
// inference (with data propagation) first, then our own shape-only propagation for what it leaves
// open: shape arithmetic (Shape -> Gather -> Concat -> Reshape, Range, ConstantOfShape, Expand,
// Tile), Resize/Upsample with computed sizes or scales, contrib ops the passes emit (MatMulNBits),
// old-opset forms (attribute axes, Slice/Pad/Upsample attributes) and If/Loop/Scan bodies that read
// outer-scope values. Only small integer/float tensors (<= kMaxTrackedElements) carry values.
#pragma once

#include <compress/report.h>
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace compress {

struct ShapeAnalysis {
  std::vector<DimAssumption> assumed;
  /// Inputs whose shape the analysis used, as NAME=AxBxC (overrides and assumptions applied).
  ShapeOverrides input_shapes;
  std::vector<std::string> notes;  // e.g. "shape inference stopped early: ..."
  /// If nodes (of the analysed copy) whose condition is known statically: the branch that runs.
  std::map<const onnx::NodeProto*, std::string> if_taken;
};

/// Tensors up to this many elements carry their values through the propagation.
constexpr int64_t kMaxTrackedElements = 1024;

/// Fixes the main graph's input dims in `model` (`overrides` by name, every other unknown dim
/// becomes 1 and is recorded), infers every shape it can and writes them as value_info of each
/// (sub)graph and onto graph outputs. `model` is an analysis copy: its inputs are changed. Throws
/// Error(kUsage) when an override names no input or has the wrong rank.
ShapeAnalysis annotate_shapes(onnx::ModelProto& model, const ShapeOverrides& overrides);

/// Input shapes as the `--input-shape` flags that reproduce them: "--input-shape x=1x3x48x320".
std::string input_shape_flags(const ShapeOverrides& shapes);

}  // namespace compress
