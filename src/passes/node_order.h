// Inserting nodes into a graph without moving the existing ones. Graph::topological_sort copies every
// node, which moves subgraph bodies (and invalidates Graph objects and NodeProto pointers held by a pass
// in the middle of a rewrite); passes that know where a new node belongs place it directly instead.
#pragma once

#include <onnx/onnx_pb.h>

#include <map>
#include <utility>
#include <vector>

namespace compress {

/// Inserts each node right before (after = false) or after its anchor node; a null anchor puts it first.
/// Existing nodes keep their addresses.
inline void insert_nodes(onnx::GraphProto& graph, std::vector<std::pair<const onnx::NodeProto*, onnx::NodeProto>> items,
                         bool after) {
  if (items.empty()) return;
  std::map<const onnx::NodeProto*, std::vector<onnx::NodeProto*>> at;
  std::vector<onnx::NodeProto*> front;
  for (auto& [anchor, node] : items) {
    auto* p = new onnx::NodeProto(std::move(node));
    (anchor != nullptr ? at[anchor] : front).push_back(p);
  }
  auto* nodes = graph.mutable_node();
  std::vector<onnx::NodeProto*> old(static_cast<size_t>(nodes->size()));
  nodes->ExtractSubrange(0, nodes->size(), old.data());
  for (auto* p : front) nodes->AddAllocated(p);
  for (auto* o : old) {
    auto it = at.find(o);
    if (!after && it != at.end())
      for (auto* p : it->second) nodes->AddAllocated(p);
    nodes->AddAllocated(o);
    if (after && it != at.end())
      for (auto* p : it->second) nodes->AddAllocated(p);
  }
}

}  // namespace compress
