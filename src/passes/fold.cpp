// fold: simplifications that make a graph cheaper to run and let runtimes fuse it.
//
// Before: X -> Conv(W, B) -> BatchNormalization(g, b, m, v) -> Y;  C1, C2 -> Transpose -> Add -> Z;  Y -> Identity -> Y2
// After:  X -> Conv(W', B') -> Y;                                 Z (an initializer);                     Y read directly
//
// - batch-norm: a BatchNormalization (inference form, one output) whose input is written by a Conv,
//   ConvTranspose, Gemm or MatMul that nothing else reads is folded into that layer's weights:
//   s = g / sqrt(v + eps), W'[c] = W[c] * s[c] along the output-channel axis (Conv 0, ConvTranspose 1
//   with groups, Gemm 0 with transB else 1, MatMul 1), B' = (B - m) * s + b (B = 0 when absent; a Gemm
//   C is multiplied by beta first). The math runs in double and rounds once to float32. A MatMul
//   becomes a Gemm with that bias, so only when its input is known to be 2-D. ONNX Runtime's QDQ
//   selectors fuse Conv -> Relu but not Conv -> BatchNormalization -> Relu, so without this a
//   statically quantized conv net runs float kernels between Quantize/Dequantize pairs.
//   A BatchNormalization with no such producer stays as it is (skipped.bn_no_foldable_producer).
// - constants: a node whose inputs are all constants (initializers or Constant nodes of its own
//   graph) is evaluated once with the built-in evaluator's kernel and replaced by an initializer,
//   in graph order so chains fold in one sweep. Only ops that are exact in float32 (data movement,
//   + - * /, sqrt, comparisons, casts between float32 and integers) and only tensors of float32 and
//   integer types, so the result equals what the runtime computes. Bounded: the folded tensor may
//   not be larger than its constant inputs together (a Cast of float16 weights to float32, an
//   Expand or a DequantizeLinear of int8 weights would undo compression), and an input of 1 KiB or
//   more must have no other reader (else both would be stored).
// - no-ops: Identity, Dropout (inference: output 0 is its input) and Cast to the type its input
//   already has are removed; their readers read the input. When the output is a graph output, the
//   producer writes it instead (if nothing else reads the producer's output).
// Skipped (skipped.<reason>): excluded nodes (excluded), parameters that are not constant float32
// vectors of the channel count (bn_params_not_constant), a layer weight that is not a constant float32
// tensor of matching shape (weight_not_foldable), training-mode BatchNormalization (bn_training),
// a MatMul whose input rank is unknown or not 2 (matmul_rank_unknown), constant nodes of other ops or
// types (const_not_exact), larger results (const_grows), shared large inputs (const_shared_input),
// no-ops whose input and output are both graph interfaces or read by subgraphs (noop_interface),
// a Dropout whose mask is read or that runs in training mode (dropout_mask_or_training).
// Options: batch-norm (true), constants (true), no-ops (true), exclude ([]).
#include "passes/fold.h"

#include <compress/error.h>
#include <compress/evaluator.h>
#include <compress/tensor.h>

#include <cmath>
#include <set>
#include <unordered_set>

#include "core/attributes.h"
#include "eval/ops.h"
#include "passes/passes.h"

namespace compress {

namespace {

// Ops whose float32 results are exactly what any IEEE runtime computes: data movement, correctly
// rounded arithmetic, comparisons and selection.
const std::set<std::string> kExactOps = {
    "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Slice",  "Gather",
    "Shape",    "Size",    "Cast",    "Add",     "Sub",       "Mul",       "Div",    "Neg",    "Abs",
    "Sqrt",     "Equal",   "Less",    "Greater", "Not",       "And",       "Or",     "Where",  "Max",
    "Min",      "Floor",   "Ceil",    "Range",   "Expand",    "Tile",      "ConstantOfShape", "Split"};

// Folded tensors up to this size never count as growth, and inputs below it may be shared.
constexpr int64_t kSmallBytes = 1024;

bool is_onnx_domain(const NodeProto& node) { return node.domain().empty() || node.domain() == "ai.onnx"; }

std::string label(const NodeProto& node) {
  return node.name().empty() ? (node.output_size() ? node.output(0) : node.op_type()) : node.name();
}

bool exact_dtype(int32_t t) {
  return t == TensorProto::FLOAT || t == TensorProto::INT64 || t == TensorProto::INT32 || t == TensorProto::INT8 ||
         t == TensorProto::UINT8 || t == TensorProto::BOOL;
}

class Recorder {
 public:
  Recorder(PassStats& stats, std::string prefix) : stats_(stats), prefix_(std::move(prefix)) {}
  void count(const std::string& counter, int64_t by = 1) { stats_.count(prefix_ + counter, by); }
  void skip(const NodeProto& node, const std::string& reason) {
    stats_.count(prefix_ + "skipped." + reason);
    stats_.layers.push_back({{"name", label(node)}, {"op_type", node.op_type()}, {"skipped", prefix_ + reason}});
  }
  void done(const NodeProto& node, const std::string& action) {
    stats_.layers.push_back({{"name", label(node)}, {"op_type", node.op_type()}, {"folded", prefix_ + action}});
  }

 private:
  PassStats& stats_;
  std::string prefix_;
};

const onnx::ValueInfoProto* declared(Graph& g, const std::string& value) {
  for (const auto& v : g.proto().input())
    if (v.name() == value) return &v;
  for (const auto& v : g.proto().value_info())
    if (v.name() == value) return &v;
  for (const auto& v : g.proto().output())
    if (v.name() == value) return &v;
  return nullptr;
}

// Element type of a value where the graph states it (0 when unknown).
int32_t known_dtype(Graph& g, const std::string& value) {
  if (const TensorProto* t = g.constant(value)) return t->data_type();
  if (const auto* v = declared(g, value); v != nullptr && v->type().has_tensor_type())
    return v->type().tensor_type().elem_type();
  const NodeProto* p = g.producer(value);
  if (p == nullptr || !is_onnx_domain(*p)) return 0;
  if (p->op_type() == "Cast") return static_cast<int32_t>(int_attribute(*p, "to", 0));
  if ((p->op_type() == "Identity" || p->op_type() == "Dropout") && p->output(0) == value && p->input_size() > 0)
    return known_dtype(g, p->input(0));
  return 0;
}

// Rank of a value where the graph states it (-1 when unknown).
int64_t known_rank(Graph& g, const std::string& value) {
  if (const TensorProto* t = g.constant(value)) return t->dims_size();
  const auto* v = declared(g, value);
  if (v == nullptr || !v->type().has_tensor_type() || !v->type().tensor_type().has_shape()) return -1;
  return v->type().tensor_type().shape().dim_size();
}

bool read_by_subgraph(Graph& g, const std::string& value) {
  for (const auto& use : g.consumers(value))
    if (use.input_index < 0) return true;
  return false;
}

// Removes constants (initializers that are not graph inputs, Constant nodes) nothing reads any more.
void drop_unused_constants(Graph& g, const std::vector<std::string>& values) {
  std::unordered_set<const NodeProto*> dead_nodes;
  std::set<std::string> seen;
  for (const auto& v : values) {
    if (v.empty() || !seen.insert(v).second) continue;
    if (!g.consumers(v).empty() || g.is_graph_output(v) || g.is_graph_input(v)) continue;
    if (g.initializer(v) != nullptr) {
      g.remove_initializer(v);
    } else if (const NodeProto* p = g.producer(v); p != nullptr && p->op_type() == "Constant") {
      dead_nodes.insert(p);
    }
  }
  g.remove_nodes(dead_nodes);
}

// ---- BatchNormalization ----

struct BnFold {
  NodeProto* layer = nullptr;
  NodeProto* bn = nullptr;
  std::vector<double> scale, shift;  // y = x * scale + shift per channel
};

std::vector<double> float_vector(Graph& g, const std::string& value, int64_t channels, bool& ok) {
  const TensorProto* t = value.empty() ? nullptr : g.constant(value);
  if (t == nullptr || t->data_type() != TensorProto::FLOAT || element_count(*t) != channels) {
    ok = false;
    return {};
  }
  const auto f = to_floats(*t);
  return {f.begin(), f.end()};
}

// Channels of the layer's output and the weight axis they index; 0 when the layer cannot fold.
int64_t layer_channels(Graph& g, const NodeProto& layer, int64_t& axis, int64_t& group) {
  const TensorProto* w = layer.input_size() > 1 ? g.constant(layer.input(1)) : nullptr;
  if (w == nullptr || w->data_type() != TensorProto::FLOAT || w->dims_size() < 2) return 0;
  group = 1;
  const std::string& op = layer.op_type();
  if (op == "Conv") {
    axis = 0;
    return w->dims(0);
  }
  if (op == "ConvTranspose") {
    axis = 1;
    group = int_attribute(layer, "group", 1);
    return w->dims(1) * group;
  }
  if (w->dims_size() != 2) return 0;
  if (op == "Gemm") {
    axis = int_attribute(layer, "transB", 0) != 0 ? 0 : 1;
    return w->dims(axis);
  }
  axis = 1;  // MatMul: B is K x N
  return w->dims(1);
}

void plan_batch_norms(Graph& g, const PassContext& context, Recorder& rec, std::vector<BnFold>& plan) {
  for (NodeProto& bn : *g.proto().mutable_node()) {
    if (bn.op_type() != "BatchNormalization" || !is_onnx_domain(bn)) continue;
    if (context.is_excluded(bn)) {
      rec.skip(bn, "excluded");
      continue;
    }
    bool extra_outputs = false;
    for (int k = 1; k < bn.output_size(); ++k) extra_outputs = extra_outputs || !bn.output(k).empty();
    if (int_attribute(bn, "training_mode", 0) != 0 || int_attribute(bn, "spatial", 1) == 0 || extra_outputs ||
        bn.input_size() < 5) {
      rec.skip(bn, "bn_training");
      continue;
    }
    NodeProto* layer = g.producer(bn.input(0));
    static const std::set<std::string> kFoldInto = {"Conv", "ConvTranspose", "Gemm", "MatMul"};
    if (layer == nullptr || !is_onnx_domain(*layer) || !kFoldInto.count(layer->op_type()) ||
        layer->output(0) != bn.input(0) || g.consumers(bn.input(0)).size() != 1 || g.is_graph_output(bn.input(0))) {
      rec.skip(bn, "bn_no_foldable_producer");
      continue;
    }
    if (context.is_excluded(*layer)) {
      rec.skip(bn, "excluded");
      continue;
    }
    int64_t axis = 0, group = 1;
    const int64_t channels = layer_channels(g, *layer, axis, group);
    if (channels <= 0) {
      rec.skip(bn, "weight_not_foldable");
      continue;
    }
    if (layer->op_type() == "MatMul" && (known_rank(g, layer->input(0)) != 2 || g.model().opset("") < 7)) {
      rec.skip(bn, "matmul_rank_unknown");
      continue;
    }
    bool ok = true;
    const auto gamma = float_vector(g, bn.input(1), channels, ok);
    const auto beta = float_vector(g, bn.input(2), channels, ok);
    const auto mean = float_vector(g, bn.input(3), channels, ok);
    const auto var = float_vector(g, bn.input(4), channels, ok);
    if (!ok) {
      rec.skip(bn, "bn_params_not_constant");
      continue;
    }
    // The layer's own bias, as a per-channel vector (Gemm: beta * C, broadcast from a scalar or [N]).
    std::vector<double> bias(static_cast<size_t>(channels), 0.0);
    const std::string bias_value = layer->input_size() > 2 ? layer->input(2) : "";
    if (!bias_value.empty()) {
      const TensorProto* b = g.constant(bias_value);
      const int64_t n = b == nullptr ? 0 : element_count(*b);
      const bool row = b != nullptr && (b->dims_size() <= 1 || (b->dims_size() == 2 && b->dims(0) == 1));
      if (b == nullptr || b->data_type() != TensorProto::FLOAT || !row || (n != channels && n != 1)) {
        rec.skip(bn, "weight_not_foldable");
        continue;
      }
      const auto f = to_floats(*b);
      const double factor = layer->op_type() == "Gemm" ? float_attribute(*layer, "beta", 1.0f) : 1.0;
      for (int64_t c = 0; c < channels; ++c) bias[static_cast<size_t>(c)] = factor * f[static_cast<size_t>(n == 1 ? 0 : c)];
    }
    const double eps = float_attribute(bn, "epsilon", 1e-5f);
    BnFold fold{layer, &bn, {}, {}};
    for (size_t c = 0; c < static_cast<size_t>(channels); ++c) {
      const double s = gamma[c] / std::sqrt(var[c] + eps);
      fold.scale.push_back(s);
      fold.shift.push_back((bias[c] - mean[c]) * s + beta[c]);
    }
    plan.push_back(std::move(fold));
  }
}

void apply_batch_norms(Graph& g, const std::vector<BnFold>& plan, Recorder& rec) {
  Model& model = g.model();
  std::vector<std::string> replaced;
  std::unordered_set<const NodeProto*> removed;
  for (const BnFold& f : plan) {
    NodeProto& layer = *f.layer;
    int64_t axis = 0, group = 1;
    const int64_t channels = layer_channels(g, layer, axis, group);
    const TensorProto& w = *g.constant(layer.input(1));
    std::vector<int64_t> dims(w.dims().begin(), w.dims().end());
    std::vector<float> values = to_floats(w);
    // Element k's channel: Conv/Gemm(transB) axis 0, MatMul/Gemm axis 1 of 2-D, ConvTranspose axis 1 per group.
    int64_t inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < dims.size(); ++d) inner *= dims[d];
    const int64_t along = dims[static_cast<size_t>(axis)];
    for (size_t k = 0; k < values.size(); ++k) {
      const int64_t i = static_cast<int64_t>(k);
      int64_t c = (i / inner) % along;
      if (layer.op_type() == "ConvTranspose") c += (i / (inner * along) / (dims[0] / group)) * along;
      values[k] = static_cast<float>(values[k] * f.scale[static_cast<size_t>(c)]);
    }
    std::vector<float> shift(f.shift.begin(), f.shift.end());
    const std::string base = label(layer);
    const std::string w_name = model.unique_name(base + ".weight_bn_folded");
    const std::string b_name = model.unique_name(base + ".bias_bn_folded");
    g.add_initializer(make_float_tensor(w_name, dims, values));
    g.add_initializer(make_float_tensor(b_name, {channels}, shift));
    replaced.push_back(layer.input(1));
    g.set_input(layer, 1, w_name);
    if (layer.input_size() > 2) {
      replaced.push_back(layer.input(2));
      g.set_input(layer, 2, b_name);
    } else {
      layer.add_input(b_name);
    }
    if (layer.op_type() == "Gemm") {
      for (auto& a : *layer.mutable_attribute())
        if (a.name() == "beta") a.set_f(1.0f);
    }
    if (layer.op_type() == "MatMul") layer.set_op_type("Gemm");
    // The layer now writes the BatchNormalization's output.
    layer.set_output(0, f.bn->output(0));
    for (int k = 1; k < 5; ++k) replaced.push_back(f.bn->input(k));
    removed.insert(f.bn);
    rec.done(*f.bn, "batch_norm_into_" + f.layer->op_type());
    rec.count("batch_norms_folded");
  }
  g.remove_nodes(removed);
  g.invalidate();
  drop_unused_constants(g, replaced);
}

// ---- constants ----

void fold_constants(Graph& g, const PassContext& context, Recorder& rec) {
  Model& model = g.model();
  const int64_t opset = model.opset("");
  std::unordered_set<const NodeProto*> folded;
  std::vector<std::string> consumed;
  for (NodeProto& node : *g.proto().mutable_node()) {
    if (node.op_type() == "Constant" || node.input_size() == 0 || node.output_size() == 0) continue;
    bool all_constant = true;
    for (const auto& in : node.input()) all_constant = all_constant && (in.empty() || g.constant(in) != nullptr);
    bool has_subgraph = false;
    for (const auto& a : node.attribute()) has_subgraph = has_subgraph || a.has_g() || a.graphs_size() > 0;
    if (!all_constant || has_subgraph) continue;
    if (context.is_excluded(node)) {
      rec.skip(node, "excluded");
      continue;
    }
    eval::OpFn fn = is_onnx_domain(node) && kExactOps.count(node.op_type()) ? eval::find_op("", node.op_type()) : nullptr;
    bool exact = fn != nullptr;
    int64_t in_bytes = 0;
    bool shared_large = false;
    std::vector<eval::Tensor> inputs;
    inputs.reserve(static_cast<size_t>(node.input_size()));
    std::set<std::string> distinct;
    for (const auto& in : node.input()) {
      if (in.empty()) continue;
      const TensorProto* t = g.constant(in);
      exact = exact && exact_dtype(t->data_type());
      if (!distinct.insert(in).second) continue;
      const int64_t bytes = packed_bytes(*t);
      in_bytes += bytes;
      if (bytes >= kSmallBytes && g.consumers(in).size() > 1) shared_large = true;
    }
    if (!exact) {
      rec.skip(node, "const_not_exact");
      continue;
    }
    for (const auto& in : node.input()) inputs.push_back(in.empty() ? eval::Tensor{} : eval::from_proto(*g.constant(in)));
    eval::OpCall call{node, {}, {}, opset, nullptr};
    for (size_t k = 0; k < inputs.size(); ++k) call.in.push_back(node.input(static_cast<int>(k)).empty() ? nullptr : &inputs[k]);
    call.out.resize(static_cast<size_t>(node.output_size()));
    try {
      fn(call);
    } catch (const Error&) {
      rec.skip(node, "const_not_exact");  // a variant the kernel does not handle: leave it to the runtime
      continue;
    }
    int64_t out_bytes = 0;
    bool out_exact = true;
    for (const auto& t : call.out) {
      out_exact = out_exact && exact_dtype(t.dtype);
      out_bytes += t.numel() * dtype_bits(t.dtype) / 8;
    }
    bool interface = false;
    for (const auto& o : node.output()) interface = interface || o.empty() || g.is_graph_output(o);
    if (!out_exact || interface) {
      rec.skip(node, interface ? "noop_interface" : "const_not_exact");
      continue;
    }
    if (out_bytes > std::max(in_bytes, kSmallBytes)) {
      rec.skip(node, "const_grows");
      continue;
    }
    if (shared_large && out_bytes > kSmallBytes) {
      rec.skip(node, "const_shared_input");
      continue;
    }
    for (size_t k = 0; k < call.out.size(); ++k) g.add_initializer(eval::to_proto(call.out[k], node.output(static_cast<int>(k))));
    for (const auto& in : node.input()) consumed.push_back(in);
    folded.insert(&node);
    rec.done(node, "constant");
    rec.count("constants_folded");
  }
  // The folded node still names its outputs: remove it before anything looks them up again.
  g.remove_nodes(folded);
  g.invalidate();
  drop_unused_constants(g, consumed);
}

// ---- no-ops ----

void remove_no_ops(Graph& g, const PassContext& context, Recorder& rec) {
  std::vector<NodeProto*> candidates;
  for (NodeProto& node : *g.proto().mutable_node()) {
    if (!is_onnx_domain(node) || node.input_size() == 0 || node.output_size() == 0) continue;
    const std::string& op = node.op_type();
    if (op == "Identity") {
      candidates.push_back(&node);
    } else if (op == "Dropout") {
      candidates.push_back(&node);
    } else if (op == "Cast") {
      const int32_t from = known_dtype(g, node.input(0));
      if (from != 0 && from == int_attribute(node, "to", -1)) candidates.push_back(&node);
    }
  }
  std::unordered_set<const NodeProto*> removed;
  for (NodeProto* node : candidates) {
    if (context.is_excluded(*node)) {
      rec.skip(*node, "excluded");
      continue;
    }
    if (node->op_type() == "Dropout") {
      bool mask = false;
      for (int k = 1; k < node->output_size(); ++k)
        mask = mask || (!node->output(k).empty() && (!g.consumers(node->output(k)).empty() || g.is_graph_output(node->output(k))));
      bool training = node->input_size() > 2 && !node->input(2).empty();
      if (training) {
        const TensorProto* t = g.constant(node->input(2));
        training = t == nullptr || element_count(*t) != 1 || to_int64s(*t)[0] != 0;
      }
      if (mask || training) {
        rec.skip(*node, "dropout_mask_or_training");
        continue;
      }
    }
    const std::string in = node->input(0);
    const std::string out = node->output(0);
    if (in.empty() || read_by_subgraph(g, out)) {
      rec.skip(*node, "noop_interface");
      continue;
    }
    if (!g.is_graph_output(out)) {
      g.replace_all_uses(out, in);
    } else {
      // The producer writes the graph output instead, when nothing else reads its value.
      NodeProto* producer = g.producer(in);
      if (producer == nullptr || removed.count(producer) || g.is_graph_output(in) || g.consumers(in).size() != 1 ||
          read_by_subgraph(g, in)) {
        rec.skip(*node, "noop_interface");
        continue;
      }
      for (int k = 0; k < producer->output_size(); ++k)
        if (producer->output(k) == in) producer->set_output(k, out);
      g.invalidate();
    }
    removed.insert(node);
    rec.done(*node, "no_op");
    rec.count("no_ops_removed");
  }
  g.remove_nodes(removed);
  g.invalidate();
}

class FoldPass final : public Pass {
 public:
  PassInfo info() const override {
    return {"fold",
            "fold BatchNormalization into Conv/ConvTranspose/Gemm/MatMul, evaluate constant subgraphs, remove "
            "no-op Identity/Dropout/Cast",
            {{"batch-norm", OptionSpec::Type::kBool, "true", "fold BatchNormalization into the layer that feeds it"},
             {"constants", OptionSpec::Type::kBool, "true",
              "replace nodes of cheap exact ops on constants by their result (never larger than their inputs)"},
             {"no-ops", OptionSpec::Type::kBool, "true", "remove Identity, inference Dropout and Casts to the same type"},
             {"exclude", OptionSpec::Type::kList, "[]", "node names or op types (globs) to leave alone"}}};
  }

  PassStats run(Model& model, const PassContext& context) const override {
    PassStats stats;
    const auto& o = context.options();
    fold_model(model, context, {o.get_bool("batch-norm"), o.get_bool("constants"), o.get_bool("no-ops")}, stats);
    return stats;
  }
};

}  // namespace

void fold_model(Model& model, const PassContext& context, const FoldSteps& steps, PassStats& stats,
                const std::string& prefix) {
  Recorder rec(stats, prefix);
  if (steps.constants) rec.count("constants_folded", 0);
  if (steps.no_ops) rec.count("no_ops_removed", 0);
  if (steps.batch_norm) rec.count("batch_norms_folded", 0);
  // Inner graphs first: their edits never touch the enclosing graph's nodes.
  auto graphs = model.all_graphs();
  for (auto it = graphs.rbegin(); it != graphs.rend(); ++it) {
    Graph& g = **it;
    if (steps.constants) fold_constants(g, context, rec);
    if (steps.no_ops) remove_no_ops(g, context, rec);
    if (steps.batch_norm) {
      std::vector<BnFold> plan;
      plan_batch_norms(g, context, rec, plan);
      apply_batch_norms(g, plan, rec);
    }
  }
  model.invalidate();
}

std::unique_ptr<Pass> make_fold_pass() { return std::make_unique<FoldPass>(); }

}  // namespace compress
