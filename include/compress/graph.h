// A view over one onnx::GraphProto (the main graph or a subgraph of If/Loop/Scan) with lazily built
// producer/consumer indexes that its mutators keep exact. The proto stays the source of truth.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace compress {

class Model;
using onnx::NodeProto;
using onnx::TensorProto;

class Graph {
 public:
  /// One use of a value. input_index is -1 when a subgraph of `node` reads the value implicitly
  /// (an outer-scope reference from inside an If/Loop/Scan body).
  struct Use {
    NodeProto* node;
    int input_index;
  };

  Graph(Model& model, onnx::GraphProto& proto, Graph* parent);
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  onnx::GraphProto& proto() { return proto_; }
  const onnx::GraphProto& proto() const { return proto_; }
  /// The enclosing graph, nullptr for the main graph.
  Graph* parent() const { return parent_; }
  Model& model() { return model_; }

  /// Node of this graph producing `value`; nullptr for inputs, initializers and outer-scope values.
  NodeProto* producer(const std::string& value);
  /// Every use of `value` in this graph, including implicit uses by subgraphs of its nodes.
  const std::vector<Use>& consumers(const std::string& value);
  bool is_graph_input(const std::string& value);
  bool is_graph_output(const std::string& value);

  /// Initializer of this graph named `name`, or nullptr.
  TensorProto* initializer(const std::string& name);
  /// The constant tensor behind `value` in this graph: an initializer that is not also a graph input
  /// (those may be overridden at run time), or the `value` attribute of a Constant node. nullptr
  /// otherwise. Rewriting the returned tensor in place rewrites the constant.
  TensorProto* constant(const std::string& value);
  /// Like constant(), then looks in enclosing graphs (subgraph bodies read outer weights).
  TensorProto* constant_in_scope(const std::string& value);

  /// Appends a node (keep topological order by calling topological_sort() after a batch).
  NodeProto* add_node(NodeProto node);
  /// Adds an initializer; its name must be new (use Model::unique_name).
  TensorProto* add_initializer(TensorProto tensor);
  /// Points input `index` of `node` at `value`.
  void set_input(NodeProto& node, int index, const std::string& value);
  /// Rewrites every use of `from` in this graph (and graph outputs) to read `to`.
  void replace_all_uses(const std::string& from, const std::string& to);
  /// Removes the given nodes in one pass over the node list.
  void remove_nodes(const std::unordered_set<const NodeProto*>& nodes);
  /// Removes an initializer (and its value_info entry, if any).
  void remove_initializer(const std::string& name);
  /// Reorders nodes so every node follows its producers; throws Error(kBadInput) on a cycle.
  void topological_sort();

  /// Direct subgraphs of this graph's nodes.
  std::vector<Graph*> subgraphs();
  /// Drops the indexes after editing proto() directly.
  void invalidate();

 private:
  friend class Model;
  void build_index();
  void index_node(NodeProto* node);

  Model& model_;
  onnx::GraphProto& proto_;
  Graph* parent_;
  bool indexed_ = false;
  std::unordered_map<std::string, NodeProto*> producers_;
  std::unordered_map<std::string, std::vector<Use>> consumers_;
  std::unordered_map<std::string, TensorProto*> initializers_;
  std::unordered_set<std::string> inputs_;
  std::unordered_set<std::string> outputs_;
  std::vector<std::unique_ptr<Graph>> children_;
  std::unordered_map<const onnx::GraphProto*, Graph*> child_by_proto_;
};

/// Names a subgraph reads from enclosing scopes (used but not defined inside it, recursively).
std::unordered_set<std::string> outer_scope_names(const onnx::GraphProto& graph);

}  // namespace compress
