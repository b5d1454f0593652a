// Provenance by graph evidence rather than by asking each pass: a pass rewrites through the same
// few moves (replace a node by a chain writing its outputs, insert a step before or after a node,
// drop a node), and each move leaves the new node wired to the node it stands for. Passes that
// come later (or from outside this repository) are traced without having to remember to record.
#include "pipeline/provenance.h"

#include <set>
#include <unordered_map>

#include "report/layer_name.h"

namespace compress {

namespace {

void snapshot_into(const onnx::GraphProto& g, const std::string& prefix, GraphSnapshot& out) {
  auto& nodes = out.graphs[prefix];
  for (const auto& node : g.node()) {
    GraphSnapshot::Node n;
    n.name = layer_name(node, prefix);
    n.inputs.assign(node.input().begin(), node.input().end());
    n.outputs.assign(node.output().begin(), node.output().end());
    nodes.push_back(std::move(n));
    for (const auto& attr : node.attribute()) {
      const std::string sub = nodes.back().name + "/" + attr.name() + "/";
      if (attr.has_g()) snapshot_into(attr.g(), sub, out);
      for (const auto& graph : attr.graphs()) snapshot_into(graph, sub, out);
    }
  }
}

// "<owner>/<attribute>/" -> "<owner>" (attribute names hold no '/', node names may).
std::string owner_of(const std::string& prefix) {
  const size_t slash = prefix.rfind('/', prefix.size() - 2);
  return slash == std::string::npos ? std::string() : prefix.substr(0, slash);
}

}  // namespace

GraphSnapshot snapshot_graph(const onnx::GraphProto& graph) {
  GraphSnapshot s;
  snapshot_into(graph, "", s);
  return s;
}

Provenance trace_provenance(const GraphSnapshot& before, const GraphSnapshot& after) {
  Provenance result;
  auto& origin = result.origins;
  std::set<std::string> alive;
  // Parents sort before their subgraphs ("" < "a/b/"), so an owner is traced before its body.
  for (const auto& graph : after.graphs) {
    // Named, not a structured binding: clang 14 (the sanitizer build) cannot capture those in lambdas.
    const std::string& prefix = graph.first;
    const auto& nodes = graph.second;
    for (const auto& n : nodes) alive.insert(n.name);
    auto old_graph = before.graphs.find(prefix);
    if (old_graph == before.graphs.end()) {
      const std::string owner = owner_of(prefix);
      auto it = origin.find(owner);
      const std::string& root = it == origin.end() ? owner : it->second;
      for (const auto& n : nodes) origin[n.name] = root;
      continue;
    }
    std::set<std::string> old_names;
    std::unordered_map<std::string, std::string> old_producer;
    for (const auto& n : old_graph->second) {
      old_names.insert(n.name);
      for (const auto& v : n.outputs) old_producer.emplace(v, n.name);
    }
    std::unordered_map<std::string, size_t> producer;
    std::unordered_map<std::string, std::vector<size_t>> consumers;
    for (size_t i = 0; i < nodes.size(); ++i) {
      for (const auto& v : nodes[i].outputs) producer.emplace(v, i);
      for (const auto& v : nodes[i].inputs)
        if (!v.empty()) consumers[v].push_back(i);
    }
    // The layer a node stands for: itself if it existed before, its traced origin if new.
    auto known = [&](size_t i) -> const std::string* {
      if (old_names.count(nodes[i].name)) return &nodes[i].name;
      auto it = origin.find(nodes[i].name);
      return it == origin.end() ? nullptr : &it->second;
    };
    std::vector<size_t> pending;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (old_names.count(nodes[i].name)) continue;
      for (const auto& v : nodes[i].outputs) {
        auto it = old_producer.find(v);
        if (it != old_producer.end()) {
          origin[nodes[i].name] = it->second;
          break;
        }
      }
      if (!origin.count(nodes[i].name)) pending.push_back(i);
    }
    // Readers first, walking backwards so a chain of new steps resolves in one sweep; then
    // producers, walking forwards; repeat while either makes progress.
    bool progress = true;
    while (!pending.empty() && progress) {
      progress = false;
      for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
        const auto& n = nodes[*it];
        for (const auto& v : n.outputs) {
          auto c = consumers.find(v);
          if (c == consumers.end()) continue;
          for (size_t reader : c->second)
            if (const std::string* o = known(reader)) {
              origin[n.name] = *o;
              break;
            }
          if (origin.count(n.name)) break;
        }
      }
      for (size_t i : pending) {
        if (origin.count(nodes[i].name)) continue;
        for (const auto& v : nodes[i].inputs) {
          auto p = producer.find(v);
          if (p == producer.end()) continue;
          if (const std::string* o = known(p->second)) {
            origin[nodes[i].name] = *o;
            break;
          }
        }
      }
      std::vector<size_t> still;
      for (size_t i : pending)
        if (!origin.count(nodes[i].name)) still.push_back(i);
      progress = still.size() < pending.size();
      pending = std::move(still);
    }
  }
  std::set<std::string> successors;
  for (const auto& [unused, o] : origin) successors.insert(o);
  for (const auto& [prefix, nodes] : before.graphs)
    for (const auto& n : nodes)
      if (!alive.count(n.name) && !successors.count(n.name)) result.removed.push_back(n.name);
  return result;
}

}  // namespace compress
