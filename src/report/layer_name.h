// The name a node has in the report's `layers`: its own name, or "<op_type>:<first output>" when it
// has none (outputs are unique and survive passes that insert nodes, unlike positions), prefixed
// by "<owner>/<attribute>/" inside subgraphs. Stats and the pipeline's provenance both use it, so
// a pass's origins name the same layers the report lists.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

namespace compress {

inline std::string layer_name(const onnx::NodeProto& node, const std::string& prefix) {
  if (!node.name().empty()) return prefix + node.name();
  return prefix + node.op_type() + ":" + (node.output_size() ? node.output(0) : std::string());
}

}  // namespace compress
