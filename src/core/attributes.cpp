#include "core/attributes.h"

namespace compress {

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int64_t int_attribute(const onnx::NodeProto& node, const std::string& name, int64_t fallback) {
  const auto* a = find_attribute(node, name);
  return a ? a->i() : fallback;
}

float float_attribute(const onnx::NodeProto& node, const std::string& name, float fallback) {
  const auto* a = find_attribute(node, name);
  return a ? a->f() : fallback;
}

std::vector<int64_t> ints_attribute(const onnx::NodeProto& node, const std::string& name, std::vector<int64_t> fallback) {
  const auto* a = find_attribute(node, name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : fallback;
}

std::string string_attribute(const onnx::NodeProto& node, const std::string& name, const std::string& fallback) {
  const auto* a = find_attribute(node, name);
  return a ? a->s() : fallback;
}

std::string node_label(const onnx::NodeProto& n) {
  const std::string op = (n.domain().empty() ? "" : n.domain() + ".") + n.op_type();
  if (!n.name().empty()) return "node '" + n.name() + "' (" + op + ")";
  return op + " node" + (n.output_size() > 0 && !n.output(0).empty() ? " writing '" + n.output(0) + "'" : "");
}

}  // namespace compress
