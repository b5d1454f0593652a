// Where a candidate starts to differ: the first node whose serialized form differs from the model's
// node at the same index, or the first node reading an initializer whose content differs (a pass may
// rewrite a weight in place under its name). Passes insert new nodes right before the node they
// rewrite (src/passes/node_order.h), so for a one-layer candidate that is the layer itself, or the
// new node in front of it. Nodes that read only constants (a weight's DequantizeLinear, or its Cast and
// Mul) may sit anywhere before their reader, often at the top of the graph; both the model and each
// candidate have them moved right before their first reader first, which computes the same values in
// another order, so that such a node does not make the whole graph count as changed.
#include "auto/prefix_runner.h"

#include <compress/error.h>
#include <compress/tensor.h>
#include <compress/verify.h>

#include <algorithm>
#include <functional>
#include <unordered_map>
#include <unordered_set>

namespace compress {

namespace {

bool same_tensor(const onnx::TensorProto& a, const onnx::TensorProto& b) {
  // Weights are mostly raw bytes (raw_data, or left in the input file): compare the bytes
  // without serializing megabytes per candidate.
  const auto a_raw = raw_bytes(a), b_raw = raw_bytes(b);
  if (a_raw && b_raw)
    return a.data_type() == b.data_type() && *a_raw == *b_raw &&
           std::equal(a.dims().begin(), a.dims().end(), b.dims().begin(), b.dims().end());
  return a.ByteSizeLong() == b.ByteSizeLong() && a.SerializeAsString() == b.SerializeAsString();
}

bool has_subgraph(const onnx::NodeProto& n) {
  for (const auto& a : n.attribute())
    if (a.has_g() || a.graphs_size() > 0) return true;
  return false;
}

// Moves every node whose inputs are all constants (initializers, Constant outputs, outputs of such
// nodes) to right before the first node that reads one of its outputs; unread ones go last.
void sink_constant_nodes(onnx::GraphProto& g) {
  std::unordered_set<std::string> constant;
  for (const auto& t : g.initializer()) constant.insert(t.name());
  const int n = g.node_size();
  std::vector<bool> is_const(static_cast<size_t>(n), false);
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < n; ++i) {
    const auto& node = g.node(i);
    bool all = !has_subgraph(node);
    for (const auto& in : node.input())
      if (!in.empty() && !constant.count(in)) all = false;
    is_const[static_cast<size_t>(i)] = all;
    for (const auto& o : node.output()) {
      producer[o] = i;
      if (all) constant.insert(o);
    }
  }
  std::vector<int> order;
  std::vector<bool> placed(static_cast<size_t>(n), false);
  // Places the constant-only producers of `node`'s inputs (depth first), then `node`.
  std::function<void(int)> place = [&](int i) {
    if (placed[static_cast<size_t>(i)]) return;
    placed[static_cast<size_t>(i)] = true;
    for (const auto& in : g.node(i).input()) {
      auto p = producer.find(in);
      if (p != producer.end() && is_const[static_cast<size_t>(p->second)]) place(p->second);
    }
    order.push_back(i);
  };
  for (int i = 0; i < n; ++i)
    if (!is_const[static_cast<size_t>(i)]) place(i);
  for (int i = 0; i < n; ++i) place(i);
  bool moved = false;
  for (int i = 0; i < n; ++i) moved = moved || order[static_cast<size_t>(i)] != i;
  if (!moved) return;
  google::protobuf::RepeatedPtrField<onnx::NodeProto> sorted;
  for (int i : order) *sorted.Add() = g.node(i);
  g.mutable_node()->Swap(&sorted);
}

Model sunk(Model model) {
  sink_constant_nodes(*model.proto().mutable_graph());
  model.invalidate();
  return model;
}

}  // namespace

PrefixRunner::PrefixRunner(const Model& model, const eval::TensorMap& inputs)
    : model_(sunk(Model::from_proto(model.proto()))), evaluator_(model_) {
  int64_t samples = 0;
  feeds_ = sample_feeds(evaluator_, inputs, samples);
  for (const auto& f : feeds_) checkpoints_.push_back(evaluator_.start(f));
  for (const auto& n : model_.proto().graph().node()) node_bytes_.push_back(n.SerializeAsString());
}

int PrefixRunner::first_difference(const onnx::GraphProto& candidate) const {
  const auto& g = model_.proto().graph();
  int first = 0;
  const int common = std::min(g.node_size(), candidate.node_size());
  while (first < common && candidate.node(first).SerializeAsString() == node_bytes_[static_cast<size_t>(first)]) ++first;
  std::unordered_map<std::string, const onnx::TensorProto*> before;
  for (const auto& t : g.initializer()) before[t.name()] = &t;
  std::vector<std::string> changed;
  for (const auto& t : candidate.initializer()) {
    auto it = before.find(t.name());
    if (it != before.end() && !same_tensor(*it->second, t)) changed.push_back(t.name());
  }
  if (changed.empty()) return first;
  for (int i = 0; i < first; ++i)
    for (const auto& in : g.node(i).input())
      if (std::find(changed.begin(), changed.end(), in) != changed.end()) return i;
  return first;
}

eval::TensorMap PrefixRunner::run(Model candidate) {
  candidate = sunk(std::move(candidate));
  const eval::Evaluator ev(candidate);
  const int from = first_difference(candidate.proto().graph());
  if (from >= checkpoints_.front().next) {
    try {
      std::vector<eval::TensorMap> outs;
      for (auto& c : checkpoints_) {
        evaluator_.advance(c, from);
        outs.push_back(ev.finish(c));
      }
      ++partial_runs_;
      skipped_nodes_ += from;
      run_nodes_ += candidate.proto().graph().node_size() - from;
      return stack_outputs(std::move(outs));
    } catch (const Error&) {
      // The checkpoint lacks a value the candidate reads before it makes it: run it in full below.
    }
  }
  ++full_runs_;
  run_nodes_ += candidate.proto().graph().node_size();
  std::vector<eval::TensorMap> outs;
  for (const auto& f : feeds_) outs.push_back(ev.run(f));
  return stack_outputs(std::move(outs));
}

}  // namespace compress
