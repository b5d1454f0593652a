// cleanup: removes what does not contribute to the graph outputs and shares identical weights.
//
// Before: X -> A -> Y, X -> B -> (unused);  W1, W2 with equal contents both read
// After:  X -> A -> Y;                       W1 read twice, W2 gone
//
// - dead nodes: every output unused by nodes, subgraphs (outer-scope reads) or graph outputs;
//   removed to a fixed point, in every graph.
// - unused initializers: not read anywhere and not a graph input (those are part of the interface).
// - duplicates: initializers with the same type, dims and bytes; uses move to the first one.
//   Graph inputs and graph outputs are never merged away.
// Options: dedupe (default true).
#include <compress/error.h>
#include <compress/tensor.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string_view>
#include <tuple>

#include "passes/passes.h"

namespace compress {

namespace {

class CleanupPass final : public Pass {
 public:
  PassInfo info() const override {
    return {"cleanup",
            "remove dead nodes and unused initializers, merge identical initializers",
            {{"dedupe", OptionSpec::Type::kBool, "true", "merge initializers with identical type, dims and data"}}};
  }

  PassStats run(Model& model, const PassContext& context) const override {
    PassStats stats;
    const bool dedupe = context.options().get_bool("dedupe");
    // Inner graphs first: removing dead nodes inside a body can free outer values.
    auto graphs = model.all_graphs();
    for (auto it = graphs.rbegin(); it != graphs.rend(); ++it) {
      Graph& graph = **it;
      if (dedupe) merge_duplicates(graph, stats);
      remove_dead_nodes(graph, stats);
      remove_unused_initializers(graph, stats);
    }
    return stats;
  }

 private:
  static bool used(Graph& graph, const std::string& value) {
    return !graph.consumers(value).empty() || graph.is_graph_output(value);
  }

  static void remove_dead_nodes(Graph& graph, PassStats& stats) {
    for (;;) {
      std::unordered_set<const NodeProto*> dead;
      for (const auto& node : graph.proto().node()) {
        bool any_used = false;
        for (const auto& o : node.output()) any_used = any_used || (!o.empty() && used(graph, o));
        if (!any_used) dead.insert(&node);
      }
      if (dead.empty()) return;
      stats.count("removed_nodes", static_cast<int64_t>(dead.size()));
      std::unordered_set<std::string> dead_values;
      for (const NodeProto* n : dead)
        for (const auto& o : n->output()) dead_values.insert(o);
      graph.remove_nodes(dead);
      auto* infos = graph.proto().mutable_value_info();
      for (int i = infos->size() - 1; i >= 0; --i)
        if (dead_values.count(infos->Get(i).name())) infos->DeleteSubrange(i, 1);
    }
  }

  static void remove_unused_initializers(Graph& graph, PassStats& stats) {
    std::vector<std::string> unused;
    for (const auto& t : graph.proto().initializer())
      if (!used(graph, t.name()) && !graph.is_graph_input(t.name())) unused.push_back(t.name());
    for (const auto& name : unused) graph.remove_initializer(name);
    stats.count("removed_initializers", static_cast<int64_t>(unused.size()));
  }

  // The bytes that define a tensor's contents: raw bytes as they lie (no copy), typed fields
  // through a serialization without the name into `scratch`.
  static std::string_view payload(const onnx::TensorProto& t, std::string& scratch) {
    if (const auto raw = raw_bytes(t)) return *raw;
    onnx::TensorProto copy = t;
    copy.clear_name();
    scratch.clear();
    copy.SerializeToString(&scratch);
    return scratch;
  }

  static void merge_duplicates(Graph& graph, PassStats& stats) {
    // Keyed by a hash of the contents, compared byte for byte on a hit: no copy of the weights.
    using Key = std::tuple<int32_t, std::vector<int64_t>, size_t>;
    std::map<Key, std::vector<const onnx::TensorProto*>> seen;
    std::vector<std::pair<std::string, std::string>> merges;  // duplicate -> kept
    std::string scratch, other_scratch;
    for (const auto& t : graph.proto().initializer()) {
      if (graph.is_graph_input(t.name()) || graph.is_graph_output(t.name())) continue;
      const std::string_view bytes = payload(t, scratch);
      Key key{t.data_type(), {t.dims().begin(), t.dims().end()}, std::hash<std::string_view>{}(bytes)};
      auto& candidates = seen[key];
      const auto same = std::find_if(candidates.begin(), candidates.end(), [&](const onnx::TensorProto* c) {
        return payload(*c, other_scratch) == bytes;
      });
      if (same != candidates.end()) merges.emplace_back(t.name(), (*same)->name());
      else candidates.push_back(&t);
    }
    for (const auto& [duplicate, kept] : merges) {
      graph.replace_all_uses(duplicate, kept);
      stats.layers.push_back({{"name", duplicate}, {"merged_into", kept}});
    }
    stats.count("merged_initializers", static_cast<int64_t>(merges.size()));
  }
};

}  // namespace

std::unique_ptr<Pass> make_cleanup_pass() { return std::make_unique<CleanupPass>(); }

}  // namespace compress
