// Provenance of the nodes a pass creates: which node of the model before the pass each one came
// from, so the report can pair every layer before with what it became after (`p2o.Conv.4` ->
// `p2o.Conv.4_ConvInteger` + its `DynamicQuantizeLinear`, `Cast`, `Mul`, ...).
#pragma once

#include <onnx/onnx_pb.h>

#include <map>
#include <string>
#include <vector>

namespace compress {

/// Every node of a model (subgraphs included) by report layer name, with the values it reads and
/// writes; taken before a pass runs and compared with the model after.
struct GraphSnapshot {
  struct Node {
    std::string name;  // layer_name(): unique per graph
    std::vector<std::string> inputs, outputs;
  };
  /// By graph prefix ("" for the main graph, "<owner>/<attribute>/" for subgraphs), in node order.
  std::map<std::string, std::vector<Node>> graphs;
};

GraphSnapshot snapshot_graph(const onnx::GraphProto& graph);

struct Provenance {
  /// New node -> the node before the pass it came from.
  std::map<std::string, std::string> origins;
  /// Nodes that are gone with no successor (dead nodes, merged duplicates).
  std::vector<std::string> removed;
};

/// Traces every node new in `after` to a node of `before`, in this order of evidence:
///  1. it writes a value a node wrote before (a replacement keeps its predecessor's outputs);
///  2. a node it feeds is traced, or is an old node (quantize/cast steps belong to their reader);
///  3. a node feeding it is traced, or is an old node.
/// Nodes in subgraphs that are new as a whole trace to the node owning the subgraph.
Provenance trace_provenance(const GraphSnapshot& before, const GraphSnapshot& after);

}  // namespace compress
