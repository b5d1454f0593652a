// Params, weight bytes, MACs and FLOPs per node. Conventions (README "Report"):
// - params: elements of constant tensors (initializers, Constant nodes) of float or <= 8-bit
//   integer type; int16/32/64 and bool constants are shapes and indices, not weights. A constant
//   reached through DequantizeLinear/Cast/Transpose/Reshape/... belongs to the compute node that
//   finally reads it; each constant is counted once, for its first reader. MatMulNBits counts K x N.
// - MACs: Conv/ConvInteger = out elements x Cin/group x kernel; ConvTranspose = in elements x
//   Cout/group x kernel; Gemm = M x N x K; MatMul(Integer/NBits) = out elements x K; LSTM/GRU/RNN =
//   gates x (input + hidden) x hidden x steps x batch x directions.
// - FLOPs = 2 x MACs for those, and one FLOP per output element for element-wise, activation,
//   normalization, pooling-free reductions and Softmax-like ops; data movement ops cost 0.
// - Subgraphs: both If branches count (an upper bound); Loop/Scan bodies count once.
#include <compress/error.h>
#include <compress/report.h>
#include <compress/tensor.h>

#include <algorithm>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/attributes.h"
#include "report/layer_name.h"
#include "core/shape_analysis.h"
#include "core/checked.h"

namespace compress {

namespace {

struct ValueType {
  int32_t dtype = 0;
  std::vector<int64_t> dims;  // -1 for unknown
  bool known = false;
  bool full() const {
    return known && std::none_of(dims.begin(), dims.end(), [](int64_t d) { return d < 0; });
  }
  int64_t elements() const {
    if (!known) return 0;
    const auto n = checked_product(dims);  // negative (unknown) or overflowing: counted as unknown
    return n ? *n : 0;
  }
};

// Ops that, fed only by constants, compute a weight for their reader (dequantization, layout).
const std::set<std::string> kPassThrough = {"DequantizeLinear", "Cast", "Transpose", "Reshape", "Identity",
                                            "Unsqueeze", "Squeeze", "Flatten", "QuantizeLinear", "Mul", "Sub"};
// Inputs from this index on are quantization parameters (scales, zero points): bytes, not params.
int first_parameter_input(const std::string& op) {
  if (op == "DequantizeLinear" || op == "QuantizeLinear" || op == "Mul" || op == "Sub") return 1;
  if (op == "MatMulNBits") return 2;
  return 1 << 30;
}
const std::set<std::string> kDataMovement = {
    "Reshape", "Transpose", "Concat", "Gather", "GatherElements", "GatherND", "Slice", "Split", "Squeeze",
    "Unsqueeze", "Flatten", "Identity", "Shape", "Size", "Constant", "ConstantOfShape", "Expand", "Tile",
    "Cast", "Pad", "Range", "NonZero", "ScatterND", "ScatterElements", "DepthToSpace", "SpaceToDepth",
    "If", "Loop", "Scan", "Dropout", "EyeLike", "CastLike", "SequenceConstruct", "SequenceAt",
    "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalGetElement"};
const std::set<std::string> kReductions = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                                           "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
                                           "ReduceSumSquare", "ArgMax", "ArgMin", "GlobalAveragePool",
                                           "GlobalMaxPool", "GlobalLpPool"};

bool is_weight_dtype(int32_t dtype) {
  return is_float_dtype(dtype) || dtype == onnx::TensorProto::INT8 || dtype == onnx::TensorProto::UINT8 ||
         dtype == 21 || dtype == 22;
}

ValueType from_type_proto(const onnx::TypeProto& type) {
  ValueType v;
  if (!type.has_tensor_type()) return v;
  v.dtype = type.tensor_type().elem_type();
  if (!type.tensor_type().has_shape()) return v;
  v.known = true;
  for (const auto& d : type.tensor_type().shape().dim()) v.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
  return v;
}

ValueType from_tensor(const onnx::TensorProto& t) {
  return {t.data_type(), {t.dims().begin(), t.dims().end()}, true};
}

// One scope of the walk: types and constants visible from a graph (outer scopes included).
struct Scope {
  const Scope* parent = nullptr;
  std::unordered_map<std::string, ValueType> types;
  std::unordered_map<std::string, const onnx::TensorProto*> constants;
  std::unordered_map<std::string, const onnx::NodeProto*> producers;
  std::unordered_map<std::string, const onnx::SparseTensorProto*> sparse;

  const ValueType* type(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      auto it = s->types.find(name);
      if (it != s->types.end()) return &it->second;
    }
    return nullptr;
  }
  const onnx::TensorProto* constant(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      auto it = s->constants.find(name);
      if (it != s->constants.end()) return it->second;
      if (s->producers.count(name)) return nullptr;
    }
    return nullptr;
  }
  const onnx::SparseTensorProto* sparse_constant(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      auto it = s->sparse.find(name);
      if (it != s->sparse.end()) return it->second;
    }
    return nullptr;
  }
  const onnx::NodeProto* producer(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      auto it = s->producers.find(name);
      if (it != s->producers.end()) return it->second;
    }
    return nullptr;
  }
};

class StatsWalker {
 public:
  StatsWalker(ModelStats& stats, const ShapeAnalysis& analysis) : stats_(stats), analysis_(analysis) {}

  void walk(const onnx::GraphProto& g, const onnx::GraphProto& original, const Scope* parent,
            const std::string& prefix) {
    Scope scope;
    scope.parent = parent;
    for (const auto& v : g.input()) scope.types[v.name()] = from_type_proto(v.type());
    for (const auto& v : g.value_info()) scope.types[v.name()] = from_type_proto(v.type());
    for (const auto& v : g.output()) scope.types[v.name()] = from_type_proto(v.type());
    std::set<std::string> graph_inputs;
    for (const auto& v : g.input()) graph_inputs.insert(v.name());
    // Constants come from the original graph: the inferred copy had its large data dropped.
    for (const auto& t : original.initializer()) {
      scope.types[t.name()] = from_tensor(t);
      if (!graph_inputs.count(t.name())) scope.constants[t.name()] = &t;
    }
    for (const auto& sp : original.sparse_initializer()) {
      scope.types[sp.values().name()] = {sp.values().data_type(), {sp.dims().begin(), sp.dims().end()}, true};
      scope.sparse[sp.values().name()] = &sp;
    }
    for (const auto& n : original.node()) {
      if (n.op_type() != "Constant") continue;
      for (const auto& a : n.attribute())
        if (a.name() == "value" && a.has_t() && n.output_size() == 1) {
          scope.constants[n.output(0)] = &a.t();
          scope.types[n.output(0)] = from_tensor(a.t());
        }
    }
    for (const auto& n : original.node())
      for (const auto& o : n.output()) scope.producers[o] = &n;

    for (int i = 0; i < original.node_size(); ++i) {
      const onnx::NodeProto& node = original.node(i);
      const onnx::NodeProto& inferred_node = g.node(i);
      const std::string name = layer_name(node, prefix);
      stats_.op_counts[node.op_type()]++;
      if (kPassThrough.count(node.op_type()) && feeds_compute_only(node, scope)) continue;
      LayerStats layer;
      layer.name = name;
      layer.op_type = node.op_type();
      count_weights(node, scope, layer);
      count_compute(node, scope, layer);
      stats_.params += layer.params;
      stats_.weight_bytes += layer.weight_bytes;
      stats_.macs += layer.macs;
      stats_.flops += layer.flops;
      if (layer.macs) stats_.macs_by_dtype[layer.compute_dtype] += layer.macs;
      if (node.op_type() != "Constant") stats_.layers.push_back(layer);
      // Subgraphs: the inferred copy and the original have the same structure. An If whose
      // condition is known statically counts only the branch that runs.
      auto taken = analysis_.if_taken.find(&inferred_node);
      for (int a = 0; a < node.attribute_size(); ++a) {
        const auto& attr = node.attribute(a);
        const auto& inferred_attr = inferred_node.attribute(a);
        if (taken != analysis_.if_taken.end() && attr.name() != taken->second) {
          if (attr.has_g()) count_ops(attr.g());  // op counts describe the model, run or not
          continue;
        }
        if (attr.has_g()) walk(inferred_attr.g(), attr.g(), &scope, name + "/" + attr.name() + "/");
        for (int k = 0; k < attr.graphs_size(); ++k)
          walk(inferred_attr.graphs(k), attr.graphs(k), &scope, name + "/" + attr.name() + "/");
      }
      if (node.op_type() == "Loop" || node.op_type() == "Scan")
        note("node '" + name + "': " + node.op_type() + " body counted once (trip count unknown)");
      if (node.op_type() == "If" && taken == analysis_.if_taken.end())
        note("node '" + name + "': condition not known statically, both If branches counted");
    }
  }

 private:
  void note(const std::string& text) { stats_.assumptions.push_back(text); }
  void count_ops(const onnx::GraphProto& g) {
    for (const auto& n : g.node()) {
      stats_.op_counts[n.op_type()]++;
      for (const auto& attr : n.attribute()) {
        if (attr.has_g()) count_ops(attr.g());
        for (const auto& sub : attr.graphs()) count_ops(sub);
      }
    }
  }
  void count_unknown(const std::string& name) {
    stats_.unknown_shape_nodes++;
    if (stats_.unknown_shape_examples.size() < 5) stats_.unknown_shape_examples.push_back(name);
  }

  // A pass-through node (DequantizeLinear of a weight, ...) whose inputs are all constants is
  // attributed to its reader instead of being a layer of its own.
  bool feeds_compute_only(const onnx::NodeProto& node, const Scope& scope) const {
    if (node.input_size() == 0) return false;
    for (const auto& in : node.input()) {
      if (in.empty()) continue;
      if (scope.constant(in) || scope.sparse_constant(in)) continue;
      const onnx::NodeProto* p = scope.producer(in);
      if (p && kPassThrough.count(p->op_type()) && feeds_compute_only(*p, scope)) continue;
      return false;
    }
    return true;
  }

  void add_constant(const onnx::TensorProto* t, LayerStats& layer, bool is_param) {
    if (!t || !counted_.insert(t).second || !is_weight_dtype(t->data_type())) return;
    if (is_param) layer.params += element_count(*t);
    const int64_t bytes = packed_bytes(*t);
    layer.weight_bytes += bytes;
    stats_.weight_bytes_by_dtype[dtype_name(t->data_type())] += bytes;
  }

  // A sparse weight holds dims' worth of params; it costs its values plus its indices.
  void add_sparse(const onnx::SparseTensorProto* sp, LayerStats& layer) {
    if (!counted_.insert(&sp->values()).second || !is_weight_dtype(sp->values().data_type())) return;
    const auto dense = checked_product(sp->dims());  // validated on load; 0 for hand-made protos
    layer.params += dense.value_or(0);
    const int64_t bytes = packed_bytes(sp->values()) + packed_bytes(sp->indices());
    layer.weight_bytes += bytes;
    stats_.weight_bytes_by_dtype[dtype_name(sp->values().data_type()) + "_sparse"] += bytes;
  }

  void collect_constants(const std::string& value, const Scope& scope, LayerStats& layer, int depth,
                         bool is_param) {
    if (value.empty() || depth > 8) return;
    if (const auto* t = scope.constant(value)) {
      add_constant(t, layer, is_param);
      return;
    }
    if (const auto* sp = scope.sparse_constant(value)) {
      add_sparse(sp, layer);
      return;
    }
    const onnx::NodeProto* p = scope.producer(value);
    if (p && kPassThrough.count(p->op_type()) && feeds_compute_only(*p, scope))
      for (int i = 0; i < p->input_size(); ++i)
        collect_constants(p->input(i), scope, layer, depth + 1, is_param && i < first_parameter_input(p->op_type()));
  }

  void count_weights(const onnx::NodeProto& node, const Scope& scope, LayerStats& layer) {
    const bool nbits = node.op_type() == "MatMulNBits";
    // MatMulNBits packs two weights a byte: its blob and scales are bytes, K x N are the params.
    for (int i = 0; i < node.input_size(); ++i) collect_constants(node.input(i), scope, layer, 0, !nbits);
    if (nbits && node.input_size() > 1 && scope.constant(node.input(1))) {
      layer.params += int_attribute(node, "K", 0) * int_attribute(node, "N", 0);
      const int64_t blob = element_count(*scope.constant(node.input(1)));
      stats_.weight_bytes_by_dtype["uint8"] -= blob;
      stats_.weight_bytes_by_dtype["int4"] += blob;
      if (stats_.weight_bytes_by_dtype["uint8"] == 0) stats_.weight_bytes_by_dtype.erase("uint8");
    }
  }

  const ValueType* type_of(const Scope& scope, const onnx::NodeProto& node, int input) const {
    if (input >= node.input_size() || node.input(input).empty()) return nullptr;
    return scope.type(node.input(input));
  }

  void count_compute(const onnx::NodeProto& node, const Scope& scope, LayerStats& layer) {
    const std::string& op = node.op_type();
    const ValueType* out = node.output_size() ? scope.type(node.output(0)) : nullptr;
    const ValueType* a = type_of(scope, node, 0);
    const ValueType* b = type_of(scope, node, 1);
    const int64_t out_elems = out ? out->elements() : 0;
    layer.compute_dtype = a ? dtype_name(a->dtype) : "float32";
    int64_t macs = 0;
    bool known = true;
    if (op == "Conv" || op == "ConvInteger" || op == "QLinearConv") {
      const ValueType* w = type_of(scope, node, op == "QLinearConv" ? 3 : 1);
      if (w && w->known && w->dims.size() >= 2 && out_elems) {
        int64_t k = 1;
        for (size_t d = 1; d < w->dims.size(); ++d) k *= w->dims[d];
        macs = out_elems * k;
      } else {
        known = false;
      }
    } else if (op == "ConvTranspose") {
      if (a && b && b->known && b->dims.size() >= 2 && a->elements()) {
        const int64_t group = int_attribute(node, "group", 1);
        int64_t k = b->dims[1];
        for (size_t d = 2; d < b->dims.size(); ++d) k *= b->dims[d];
        macs = a->elements() * k;
        (void)group;  // weight is [Cin, Cout/group, k...]: Cout/group is already dims[1]
      } else {
        known = false;
      }
    } else if (op == "Gemm") {
      if (a && a->known && a->dims.size() == 2 && out_elems) {
        const int64_t k = int_attribute(node, "transA", 0) ? a->dims[0] : a->dims[1];
        macs = k < 0 ? 0 : out_elems * k;
        known = k >= 0;
      } else {
        known = false;
      }
    } else if (op == "MatMul" || op == "MatMulInteger" || op == "QLinearMatMul") {
      const ValueType* lhs = a;
      if (lhs && lhs->known && !lhs->dims.empty() && out_elems && lhs->dims.back() >= 0) {
        macs = out_elems * lhs->dims.back();  // 1-D lhs [K] included: out [..., N]
      } else {
        known = false;
      }
    } else if (op == "MatMulNBits") {
      macs = out_elems * int_attribute(node, "K", 0);  // out shape from the MatMul stand-in above
      known = out_elems > 0;
    } else if (op == "LSTM" || op == "GRU" || op == "RNN") {
      const int64_t gates = op == "LSTM" ? 4 : op == "GRU" ? 3 : 1;
      const int64_t hidden = int_attribute(node, "hidden_size", 0);
      const std::string dir = string_attribute(node, "direction", "forward");
      const int64_t dirs = dir == "bidirectional" ? 2 : 1;
      if (a && a->known && a->dims.size() == 3 && a->dims[0] > 0 && a->dims[1] > 0 && a->dims[2] >= 0 && hidden) {
        const bool batch_first = int_attribute(node, "layout", 0) == 1;
        const int64_t steps = batch_first ? a->dims[1] : a->dims[0];
        const int64_t batch = batch_first ? a->dims[0] : a->dims[1];
        macs = gates * (a->dims[2] + hidden) * hidden * steps * batch * dirs;
      } else {
        known = false;
      }
    }
    if (op == "MatMulInteger" || op == "ConvInteger" || op == "QLinearConv" || op == "QLinearMatMul")
      layer.compute_dtype = "int8";
    if (!known) {
      note("node '" + layer.name + "' (" + op + "): shapes unknown, MACs not counted");
      count_unknown(layer.name);
      return;
    }
    const bool costs_elements = !kDataMovement.count(op) && op != "Constant";
    if (!macs && costs_elements && (kReductions.count(op) ? !(a && a->full()) : !(out && out->full()))) {
      count_unknown(layer.name);
      return;
    }
    layer.macs = macs;
    if (macs) {
      layer.flops = 2 * macs;
    } else if (kReductions.count(op)) {
      layer.flops = a ? a->elements() : 0;
    } else if (!kDataMovement.count(op) && out_elems) {
      layer.flops = out_elems;  // element-wise, activations, normalization, pooling output
      if (op == "MaxPool" || op == "AveragePool" || op == "LpPool") {
        int64_t k = 1;
        for (int64_t d : ints_attribute(node, "kernel_shape")) k *= d;
        layer.flops = out_elems * k;
      }
    }
  }

  ModelStats& stats_;
  const ShapeAnalysis& analysis_;
  std::set<const onnx::TensorProto*> counted_;
};

}  // namespace

ModelStats compute_stats(const Model& model, const ShapeOverrides& shapes) {
  ModelStats stats;
  onnx::ModelProto copy = model.copy_without_large_data();
  const ShapeAnalysis analysis = annotate_shapes(copy, shapes);
  stats.assumed_dims = analysis.assumed;
  stats.input_shapes = analysis.input_shapes;
  for (const auto& a : analysis.assumed)
    stats.assumptions.push_back("input '" + a.input + "' dim " + std::to_string(a.dim) +
                                (a.dim_param.empty() ? "" : " ('" + a.dim_param + "')") + " assumed " +
                                std::to_string(a.value));
  stats.assumptions.insert(stats.assumptions.end(), analysis.notes.begin(), analysis.notes.end());
  StatsWalker(stats, analysis).walk(copy.graph(), model.proto().graph(), nullptr, "");
  if (stats.unknown_shape_nodes)
    stats.assumptions.push_back(std::to_string(stats.unknown_shape_nodes) +
                                " nodes with shapes static analysis could not determine count 0 MACs/FLOPs");
  return stats;
}

std::vector<std::string> assumption_headline(const ModelStats& stats) {
  std::vector<std::string> lines;
  std::map<std::string, std::string> dims_by_input;
  for (const auto& a : stats.assumed_dims) {
    std::string& text = dims_by_input[a.input];
    text += (text.empty() ? "" : ", ") + std::string("dim ") + std::to_string(a.dim) +
            (a.dim_param.empty() ? "" : " '" + a.dim_param + "'") + " = " + std::to_string(a.value);
  }
  for (const auto& [input, text] : dims_by_input) {
    auto it = stats.input_shapes.find(input);
    const std::string flag = it == stats.input_shapes.end() ? "" : input_shape_flags({*it});
    lines.push_back("ASSUMED input '" + input + "' " + text + ": MACs/FLOPs depend on it; give the real shape with " +
                    flag);
  }
  if (stats.unknown_shape_nodes) {
    std::string examples;
    for (const auto& name : stats.unknown_shape_examples) examples += (examples.empty() ? "" : ", ") + name;
    if (stats.unknown_shape_nodes > static_cast<int64_t>(stats.unknown_shape_examples.size())) examples += ", ...";
    lines.push_back("INCOMPLETE: " + std::to_string(stats.unknown_shape_nodes) +
                    " nodes have shapes static analysis could not determine; their MACs/FLOPs are not counted (" +
                    examples + ")");
  }
  return lines;
}

nlohmann::json assumptions_to_json(const ModelStats& stats) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& a : stats.assumed_dims) {
    auto it = stats.input_shapes.find(a.input);
    list.push_back({{"input", a.input},
                    {"dim", a.dim},
                    {"dim_param", a.dim_param},
                    {"value", a.value},
                    {"flag", it == stats.input_shapes.end() ? "" : input_shape_flags({*it})}});
  }
  return list;
}

}  // namespace compress
