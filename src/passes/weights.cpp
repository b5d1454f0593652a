#include "passes/weights.h"

#include <compress/tensor.h>

namespace compress {

namespace {

// Which inputs of each op are weights: LSTM/GRU/RNN read W (input 1) and R (input 2).
std::vector<int> weight_inputs(const std::string& op) {
  if (op == "Gather") return {0};
  if (op == "LSTM" || op == "GRU" || op == "RNN") return {1, 2};
  return {1};
}

bool is_recurrent(const std::string& op) { return op == "LSTM" || op == "GRU" || op == "RNN"; }

}  // namespace

std::vector<WeightRef> collect_weights(Model& model, const PassContext& context, const std::set<std::string>& op_types,
                                       int64_t min_elements, PassStats& stats) {
  std::vector<WeightRef> result;
  for (Graph* graph : model.all_graphs()) {
    for (auto& node : *graph->proto().mutable_node()) {
      if (!op_types.count(node.op_type()) || !(node.domain().empty() || node.domain() == "ai.onnx")) continue;
      const std::string label = (node.name().empty() ? node.op_type() : node.name());
      if (context.is_excluded(node)) {
        stats.skip(label, "excluded");
        continue;
      }
      for (const int index : weight_inputs(node.op_type())) {
        if (node.input_size() <= index || node.input(index).empty()) continue;
        const std::string& value = node.input(index);
        TensorProto* tensor = graph->constant(value);
        bool outer = false;
        if (tensor == nullptr) {
          tensor = graph->constant_in_scope(value);
          outer = tensor != nullptr;
        }
        if (tensor == nullptr) {
          stats.skip(label, graph->is_graph_input(value) && graph->initializer(value) ? "weight_is_graph_input"
                                                                                       : "weight_not_constant");
          continue;
        }
        if (tensor->data_type() != TensorProto::FLOAT) {
          stats.skip(label, "weight_not_float32");
          continue;
        }
        if (element_count(*tensor) < min_elements) {
          stats.skip(label, "too_small");
          continue;
        }
        WeightRef ref;
        ref.graph = graph;
        ref.node = &node;
        ref.input_index = index;
        ref.value = value;
        ref.tensor = tensor;
        ref.dims.assign(tensor->dims().begin(), tensor->dims().end());
        ref.outer_scope = outer;
        ref.readers = static_cast<int>(graph->consumers(value).size());
        const std::string& op = node.op_type();
        if (op == "MatMul") {
          ref.out_axis = 1;
          ref.in_axis = 0;
          if (ref.dims.size() != 2) {
            stats.skip(label, "weight_not_2d");
            continue;
          }
        } else if (op == "Gemm") {
          const bool trans_b = int_attribute(node, "transB", 0) != 0;
          ref.out_axis = trans_b ? 0 : 1;
          ref.in_axis = trans_b ? 1 : 0;
        } else if (op == "Conv") {
          ref.out_axis = 0;
        } else if (op == "ConvTranspose") {
          ref.out_axis = 1;
        } else if (op == "Gather") {
          ref.out_axis = 0;
        } else if (is_recurrent(op)) {
          ref.out_axis = 1;  // W [directions, gates x hidden, input], R [directions, gates x hidden, hidden]
          ref.in_axis = 2;
          if (ref.dims.size() != 3) {
            stats.skip(label, "weight_not_3d");
            continue;
          }
        }
        result.push_back(std::move(ref));
      }
    }
  }
  return result;
}

}  // namespace compress
