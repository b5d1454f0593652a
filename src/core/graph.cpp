#include <compress/error.h>
#include <compress/graph.h>
#include <compress/model.h>

#include <algorithm>
#include <queue>

namespace compress {

namespace {

const std::vector<Graph::Use> kNoUses;

// Calls fn on every graph attribute (single or list) of a node.
template <class Fn>
void for_each_subgraph(NodeProto& node, Fn&& fn) {
  for (auto& attr : *node.mutable_attribute()) {
    if (attr.has_g()) fn(*attr.mutable_g());
    for (auto& g : *attr.mutable_graphs()) fn(g);
  }
}

void collect_outer_names(const onnx::GraphProto& graph, std::unordered_set<std::string>& defined_outside,
                         std::unordered_set<std::string>& result) {
  std::unordered_set<std::string> defined;
  for (const auto& i : graph.input()) defined.insert(i.name());
  for (const auto& t : graph.initializer()) defined.insert(t.name());
  for (const auto& t : graph.sparse_initializer()) defined.insert(t.values().name());
  for (const auto& n : graph.node())
    for (const auto& o : n.output()) defined.insert(o);
  auto note_use = [&](const std::string& name) {
    if (!name.empty() && !defined.count(name)) result.insert(name);
  };
  for (const auto& n : graph.node()) {
    for (const auto& i : n.input()) note_use(i);
    for (const auto& attr : n.attribute()) {
      auto visit = [&](const onnx::GraphProto& g) {
        std::unordered_set<std::string> inner;
        collect_outer_names(g, defined_outside, inner);
        for (const auto& name : inner) note_use(name);
      };
      if (attr.has_g()) visit(attr.g());
      for (const auto& g : attr.graphs()) visit(g);
    }
  }
  for (const auto& o : graph.output()) note_use(o.name());
}

}  // namespace

std::unordered_set<std::string> outer_scope_names(const onnx::GraphProto& graph) {
  std::unordered_set<std::string> outside, result;
  collect_outer_names(graph, outside, result);
  return result;
}

Graph::Graph(Model& model, onnx::GraphProto& proto, Graph* parent)
    : model_(model), proto_(proto), parent_(parent) {}

void Graph::invalidate() {
  indexed_ = false;
  producers_.clear();
  consumers_.clear();
  initializers_.clear();
  inputs_.clear();
  outputs_.clear();
  for (auto& child : children_) child->invalidate();
}

void Graph::index_node(NodeProto* node) {
  for (int i = 0; i < node->input_size(); ++i)
    if (!node->input(i).empty()) consumers_[node->input(i)].push_back({node, i});
  for (const auto& o : node->output())
    if (!o.empty()) producers_[o] = node;
  bool has_subgraph = false;
  for (const auto& attr : node->attribute())
    if (attr.has_g() || attr.graphs_size() > 0) has_subgraph = true;
  if (!has_subgraph) return;
  std::unordered_set<std::string> implicit;
  for_each_subgraph(*node, [&](onnx::GraphProto& g) {
    for (const auto& name : outer_scope_names(g)) implicit.insert(name);
  });
  std::vector<std::string> sorted(implicit.begin(), implicit.end());
  std::sort(sorted.begin(), sorted.end());
  for (const auto& name : sorted) consumers_[name].push_back({node, -1});
}

void Graph::build_index() {
  if (indexed_) return;
  producers_.clear();
  consumers_.clear();
  initializers_.clear();
  inputs_.clear();
  outputs_.clear();
  for (auto& t : *proto_.mutable_initializer()) initializers_[t.name()] = &t;
  for (const auto& i : proto_.input()) inputs_.insert(i.name());
  for (const auto& o : proto_.output()) outputs_.insert(o.name());
  for (auto& n : *proto_.mutable_node()) index_node(&n);
  indexed_ = true;
}

NodeProto* Graph::producer(const std::string& value) {
  build_index();
  auto it = producers_.find(value);
  return it == producers_.end() ? nullptr : it->second;
}

const std::vector<Graph::Use>& Graph::consumers(const std::string& value) {
  build_index();
  auto it = consumers_.find(value);
  return it == consumers_.end() ? kNoUses : it->second;
}

bool Graph::is_graph_input(const std::string& value) {
  build_index();
  return inputs_.count(value) != 0;
}

bool Graph::is_graph_output(const std::string& value) {
  build_index();
  return outputs_.count(value) != 0;
}

TensorProto* Graph::initializer(const std::string& name) {
  build_index();
  auto it = initializers_.find(name);
  return it == initializers_.end() ? nullptr : it->second;
}

TensorProto* Graph::constant(const std::string& value) {
  if (TensorProto* t = initializer(value)) return is_graph_input(value) ? nullptr : t;
  NodeProto* node = producer(value);
  if (node == nullptr || node->op_type() != "Constant" || !(node->domain().empty() || node->domain() == "ai.onnx"))
    return nullptr;
  for (auto& attr : *node->mutable_attribute())
    if (attr.name() == "value" && attr.has_t()) return attr.mutable_t();
  return nullptr;  // value_float, value_ints, sparse_value...: not a dense tensor we can rewrite
}

TensorProto* Graph::constant_in_scope(const std::string& value) {
  for (Graph* g = this; g != nullptr; g = g->parent_) {
    if (TensorProto* t = g->constant(value)) return t;
    // A name defined in this scope by anything else shadows outer constants.
    if (g->producer(value) != nullptr || g->is_graph_input(value)) return nullptr;
  }
  return nullptr;
}

NodeProto* Graph::add_node(NodeProto node) {
  build_index();
  NodeProto* added = proto_.add_node();
  *added = std::move(node);
  index_node(added);
  return added;
}

TensorProto* Graph::add_initializer(TensorProto tensor) {
  build_index();
  if (initializers_.count(tensor.name()))
    throw Error(ExitCode::kInternal, "initializer '" + tensor.name() + "' already exists");
  TensorProto* added = proto_.add_initializer();
  *added = std::move(tensor);
  initializers_[added->name()] = added;
  return added;
}

void Graph::set_input(NodeProto& node, int index, const std::string& value) {
  build_index();
  const std::string old = node.input(index);
  if (old == value) return;
  auto& uses = consumers_[old];
  uses.erase(std::remove_if(uses.begin(), uses.end(),
                            [&](const Use& u) { return u.node == &node && u.input_index == index; }),
             uses.end());
  node.set_input(index, value);
  if (!value.empty()) consumers_[value].push_back({&node, index});
}

void Graph::replace_all_uses(const std::string& from, const std::string& to) {
  build_index();
  const std::vector<Use> uses = consumers(from);
  bool implicit = false;
  for (const Use& u : uses) {
    if (u.input_index >= 0) {
      set_input(*u.node, u.input_index, to);
    } else {
      implicit = true;
      for_each_subgraph(*u.node, [&](onnx::GraphProto& g) {
        // Rename inside the body; inner definitions of the same name shadow and are left alone.
        std::function<void(onnx::GraphProto&)> rename = [&](onnx::GraphProto& body) {
          for (auto& n : *body.mutable_node()) {
            for (auto& in : *n.mutable_input())
              if (in == from) in = to;
            for_each_subgraph(n, rename);
          }
          for (auto& o : *body.mutable_output())
            if (o.name() == from) o.set_name(to);
        };
        if (outer_scope_names(g).count(from)) rename(g);
      });
    }
  }
  for (auto& o : *proto_.mutable_output())
    if (o.name() == from) o.set_name(to);
  if (implicit) {
    invalidate();
    model_.invalidate();
  } else if (outputs_.erase(from)) {
    outputs_.insert(to);
  }
}

void Graph::remove_nodes(const std::unordered_set<const NodeProto*>& nodes) {
  if (nodes.empty()) return;
  auto* list = proto_.mutable_node();
  int kept = 0;
  for (int i = 0; i < list->size(); ++i) {
    if (nodes.count(&list->Get(i))) continue;
    if (kept != i) list->SwapElements(kept, i);
    ++kept;
  }
  list->DeleteSubrange(kept, list->size() - kept);
  invalidate();
  model_.invalidate();  // subgraph views of removed nodes are gone
}

void Graph::remove_initializer(const std::string& name) {
  auto* list = proto_.mutable_initializer();
  for (int i = 0; i < list->size(); ++i) {
    if (list->Get(i).name() != name) continue;
    list->DeleteSubrange(i, 1);
    break;
  }
  auto* infos = proto_.mutable_value_info();
  for (int i = 0; i < infos->size(); ++i) {
    if (infos->Get(i).name() != name) continue;
    infos->DeleteSubrange(i, 1);
    break;
  }
  // The other initializers keep their addresses (the field holds pointers): only this entry goes,
  // so removing many one by one costs no index rebuild each.
  initializers_.erase(name);
}

void Graph::topological_sort() {
  build_index();
  const int n = proto_.node_size();
  std::unordered_map<const NodeProto*, int> position;
  for (int i = 0; i < n; ++i) position[&proto_.node(i)] = i;
  // Kahn's algorithm, taking the lowest original position first so sorted graphs stay unchanged.
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> successors(n);
  for (int i = 0; i < n; ++i) {
    const NodeProto& node = proto_.node(i);
    std::unordered_set<std::string> reads(node.input().begin(), node.input().end());
    for (const auto& attr : node.attribute()) {
      auto add = [&](const onnx::GraphProto& g) {
        for (const auto& name : outer_scope_names(g)) reads.insert(name);
      };
      if (attr.has_g()) add(attr.g());
      for (const auto& g : attr.graphs()) add(g);
    }
    std::unordered_set<int> preds;
    for (const auto& name : reads) {
      if (name.empty()) continue;
      auto it = producers_.find(name);
      if (it != producers_.end() && it->second != &node) preds.insert(position.at(it->second));
    }
    pending[i] = static_cast<int>(preds.size());
    for (int p : preds) successors[p].push_back(i);
  }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push(i);
  std::vector<int> order;
  order.reserve(n);
  while (!ready.empty()) {
    const int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int s : successors[i])
      if (--pending[s] == 0) ready.push(s);
  }
  if (static_cast<int>(order.size()) != n)
    throw Error(ExitCode::kBadInput, "graph '" + proto_.name() + "' has a cycle");
  bool sorted = true;
  for (int i = 0; i < n; ++i) sorted = sorted && order[i] == i;
  if (sorted) return;
  // Move the node objects themselves (no copies): pointers to nodes and subgraph views stay valid.
  auto* nodes = proto_.mutable_node();
  std::vector<NodeProto*> released(n);
  for (int i = n - 1; i >= 0; --i) released[i] = nodes->ReleaseLast();
  for (int i : order) nodes->AddAllocated(released[i]);
  invalidate();
  model_.invalidate();
}

std::vector<Graph*> Graph::subgraphs() {
  std::vector<Graph*> result;
  std::unordered_map<const onnx::GraphProto*, Graph*> still_valid;
  std::vector<std::unique_ptr<Graph>> kept;
  for (auto& node : *proto_.mutable_node()) {
    for_each_subgraph(node, [&](onnx::GraphProto& g) {
      auto it = child_by_proto_.find(&g);
      Graph* child = nullptr;
      if (it != child_by_proto_.end()) {
        for (auto& c : children_)
          if (c.get() == it->second) {
            kept.push_back(std::move(c));
            break;
          }
        child = it->second;
      } else {
        kept.push_back(std::make_unique<Graph>(model_, g, this));
        child = kept.back().get();
      }
      still_valid[&g] = child;
      result.push_back(child);
    });
  }
  children_ = std::move(kept);
  child_by_proto_ = std::move(still_valid);
  return result;
}

}  // namespace compress
