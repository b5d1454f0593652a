// Reading node attributes by name with a fallback: the one helper every pass and the report use.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

namespace compress {

/// The attribute `name` of `node`, or nullptr.
const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, const std::string& name);
int64_t int_attribute(const onnx::NodeProto& node, const std::string& name, int64_t fallback);
float float_attribute(const onnx::NodeProto& node, const std::string& name, float fallback);
std::vector<int64_t> ints_attribute(const onnx::NodeProto& node, const std::string& name,
                                    std::vector<int64_t> fallback = {});
std::string string_attribute(const onnx::NodeProto& node, const std::string& name, const std::string& fallback);

/// How error messages name a node: "node 'conv1' (Conv)", or "Conv node writing 'y'" when unnamed.
std::string node_label(const onnx::NodeProto& node);

}  // namespace compress
