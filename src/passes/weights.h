// Selecting the constant weights that passes rewrite: the B of MatMul and Gemm, the W of Conv and
// ConvTranspose, the table of Gather, wherever they live (initializer or Constant node, main graph
// or subgraph). One place decides what counts as a weight and its layout.
#pragma once

#include "core/attributes.h"

#include <compress/graph.h>
#include <compress/model.h>
#include <compress/pass.h>

#include <set>
#include <string>
#include <vector>

namespace compress {

/// A constant float weight read by one input of one compute node.
struct WeightRef {
  Graph* graph = nullptr;           // graph holding `node`
  NodeProto* node = nullptr;        // MatMul, Gemm, Conv, ConvTranspose or Gather
  int input_index = 0;              // which input of `node` reads the weight
  std::string value;                // the value name read
  TensorProto* tensor = nullptr;    // the constant (initializer or Constant value), FLOAT
  std::vector<int64_t> dims;
  /// Axis of the weight that indexes output channels/features: MatMul 1 (B is K x N), Gemm 0 with
  /// transB else 1, Conv 0 ([Cout, Cin/g, k...]), ConvTranspose 1 ([Cin, Cout/g, k...]), Gather 0.
  int64_t out_axis = 0;
  /// The reduction axis (K): MatMul 0, Gemm 1 with transB else 0, Conv/ConvTranspose: -1 (several).
  int64_t in_axis = -1;
  /// Every reader of `value` in its graph (a weight can be shared).
  int readers = 1;
  /// True when the constant lives in an enclosing graph, not in `graph`.
  bool outer_scope = false;
};

/// Finds weights of the given op types in every graph. Candidates that are not constant FLOAT
/// tensors, are excluded by the context, are graph inputs, or have fewer than `min_elements`
/// elements are skipped and counted in `stats` with their reason.
std::vector<WeightRef> collect_weights(Model& model, const PassContext& context, const std::set<std::string>& op_types,
                                       int64_t min_elements, PassStats& stats);

}  // namespace compress
