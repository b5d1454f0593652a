// Runs variants of one model that each change it from some node on, reusing the float model's
// activations up to that node: what `compress auto`'s sensitivity table needs, where every candidate
// changes one layer and everything before the layer is the float model's.
#pragma once

#include <compress/evaluator.h>
#include <compress/model.h>

#include <cstdint>
#include <string>
#include <vector>

namespace compress {

class PrefixRunner {
 public:
  /// `inputs` as run_on_samples takes them.
  PrefixRunner(const Model& model, const eval::TensorMap& inputs);

  /// The outputs of `candidate` on the inputs, stacked as run_on_samples returns them (bit for bit:
  /// the skipped nodes are the same nodes on the same values). Nodes before the first one where the
  /// candidate differs from the model (a node, or a constant a node reads) are not run again: their
  /// values come from a checkpoint of the float model. Memory stays bounded because that checkpoint
  /// only moves forward and holds what one inference holds at its node (per feed), so calls should
  /// come in the order of the changed layers; a candidate that differs before the checkpoint (or
  /// that the checkpoint cannot feed) runs in full.
  eval::TensorMap run(Model candidate);

  int64_t partial_runs() const { return partial_runs_; }
  int64_t full_runs() const { return full_runs_; }
  /// Nodes skipped over all partial runs, per feed, and the nodes they ran.
  int64_t skipped_nodes() const { return skipped_nodes_; }
  int64_t run_nodes() const { return run_nodes_; }

 private:
  // The first node index where `candidate`'s graph differs from the model's.
  int first_difference(const onnx::GraphProto& candidate) const;

  Model model_;  // the model with its constant-only nodes moved next to their readers (see the .cpp)
  eval::Evaluator evaluator_;
  std::vector<eval::TensorMap> feeds_;
  std::vector<eval::Evaluator::Checkpoint> checkpoints_;  // one per feed, all at the same node
  std::vector<std::string> node_bytes_;                   // the model's nodes, serialized
  int64_t partial_runs_ = 0, full_runs_ = 0, skipped_nodes_ = 0, run_nodes_ = 0;
};

}  // namespace compress
