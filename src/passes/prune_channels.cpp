// prune-channels: structured pruning that removes whole output channels and everything they feed.
//
// Before: X -> Conv(W[64,Cin,k,k], B[64]) -> BN[64] -> Relu -> Conv(W2[32,64,k,k]) -> Y
// After:  X -> Conv(W[48,Cin,k,k], B[48]) -> BN[48] -> Relu -> Conv(W2[32,48,k,k]) -> Y
//
// - A "space" is the output channels of one producer: Conv (group 1), Gemm or MatMul with a
//   constant weight. Its channels are followed forward through the main graph, each tensor with a
//   layout: the axis holding the channels and, along it, segments (a space's channels, each `block`
//   wide, or a fixed run from elsewhere). Followed through: element-wise unary ops, Clip, Dropout,
//   Cast, pooling (axis 1), BatchNormalization/InstanceNormalization (params sliced), Add/Sub/Mul/
//   Div/Max/Min/Pow/PRelu with a constant (sliced when it has the channel axis, kept when it
//   broadcasts) or with another channel tensor (the two spaces are joined into one group),
//   depthwise Conv (weights, bias and group sliced), Concat along the channel axis (segments at
//   offsets), Flatten and Reshape to [N,-1] when the channel is the outermost kept dim (channel c
//   becomes a block of H*W features), Resize/Upsample with scale 1 on N and C.
// - Consumers whose input channels shrink: Conv (group 1, W axis 1), Gemm (A, transA=0), MatMul
//   (A, constant 2-D B: B rows).
// - A group's channel score is the sum over its producers of the per-channel L1 (or L2) norm of the
//   weight (times |gamma| / sqrt(var + eps) of a BatchNormalization right after it, i.e. the norm of
//   the folded filter), each divided by its mean so layers of different scale weigh the same. scope=layer prunes
//   round(ratio x C) lowest-scoring channels per group; scope=global prunes round(ratio x all
//   channels) lowest over all groups, at most max-ratio of any group. Kept counts are then rounded
//   up to a multiple of round-to (never above C); at least one channel stays.
// Untouchable groups (listed with their reason, nothing changed): a channel tensor that reaches a
// graph output, is read by a subgraph, feeds an op or input position not listed above, joins a
// value without channels that does not broadcast, has unknown shapes where they are needed, or
// needs a constant that is shared, not float32 or of another shape; producers or consumers that
// are excluded, grouped (non-depthwise) convolutions. Nodes inside subgraphs are not pruned.
// Afterwards the value_info of every changed tensor is dropped so shape inference recomputes it.
// Options: ratio (0.25), scope (layer), max-ratio (0.75), criterion (l1), round-to (1), exclude.
#include <compress/error.h>
#include <compress/tensor.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "passes/passes.h"
#include "passes/weights.h"

namespace compress {

namespace {

struct Segment {
  int space = -1;        // -1: a fixed run of `channels` entries that is always kept
  int64_t channels = 0;  // channels of the space (or entries of a fixed run)
  int64_t block = 1;     // entries per channel along the axis
};

struct Layout {
  int64_t axis = 0;
  std::vector<Segment> segments;
  int64_t length() const {
    int64_t n = 0;
    for (const auto& s : segments) n += s.channels * s.block;
    return n;
  }
};

// Slice `tensor` along `axis` to the entries `layout` keeps.
struct Edit {
  TensorProto* tensor;
  int64_t axis;
  Layout layout;
};

struct Space {
  std::string label;
  int64_t channels = 0;
  std::vector<double> score;
};

const std::set<std::string> kUnary = {"Relu",    "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
                                      "Elu",     "Selu",      "Celu",    "Softplus",    "Softsign",  "Abs",
                                      "Neg",     "Exp",       "Log",     "Sqrt",        "Reciprocal", "Erf",
                                      "Identity", "Floor",    "Ceil",    "Round",       "Sin",       "Cos",
                                      "Mish",    "ThresholdedRelu", "Sign", "Cast",     "Clip",      "Dropout"};
const std::set<std::string> kPool = {"MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
                                     "GlobalLpPool"};
const std::set<std::string> kBinary = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "PRelu"};

std::string label_of(const NodeProto& n) { return n.name().empty() ? n.op_type() + ":" + n.output(0) : n.name(); }

std::vector<int64_t> dims_of(const TensorProto& t) { return {t.dims().begin(), t.dims().end()}; }

// Keeps `keep` entries along `axis`.
void slice_tensor(TensorProto& t, int64_t axis, const std::vector<int64_t>& keep) {
  std::vector<int64_t> dims = dims_of(t);
  const std::vector<float> values = to_floats(t);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= dims[d];
  for (size_t d = axis + 1; d < dims.size(); ++d) inner *= dims[d];
  std::vector<float> out;
  out.reserve(static_cast<size_t>(outer * static_cast<int64_t>(keep.size()) * inner));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k : keep) {
      const float* src = values.data() + (o * dims[axis] + k) * inner;
      out.insert(out.end(), src, src + inner);
    }
  dims[axis] = static_cast<int64_t>(keep.size());
  t = make_float_tensor(t.name(), dims, out);
}

class Planner {
 public:
  Planner(Model& model, const PassContext& context, PassStats& stats)
      : graph_(model.graph()), context_(context), stats_(stats), l2_(context.options().get_string("criterion") == "l2") {
    infer_shapes(model);
  }

  void plan() {
    for (auto& node : *graph_.proto().mutable_node()) visit(node);
    // Channel tensors must stay inside the main graph's nodes we understood.
    for (const auto& [name, layout] : layouts_) {
      if (graph_.is_graph_output(name)) block(layout, "reaches_graph_output");
      for (const auto& use : graph_.consumers(name))
        if (use.input_index < 0) block(layout, "read_by_subgraph");
    }
  }

  int root(int s) {
    while (parent_[s] != s) s = parent_[s] = parent_[parent_[s]];
    return s;
  }

  std::vector<Space> spaces_;
  std::vector<int> parent_;
  std::map<int, std::string> blocked_;  // root -> first reason
  std::vector<Edit> edits_;
  std::vector<std::pair<NodeProto*, Layout>> group_edits_;  // depthwise Conv: group = kept length
  std::map<std::string, Layout> layouts_;

 private:
  // ---- shapes ----
  void infer_shapes(Model& model) {
    onnx::ModelProto copy;
    copy.CopyFrom(model.proto());
    for (auto& t : *copy.mutable_graph()->mutable_initializer())
      if (t.raw_data().size() > 4096) t.clear_raw_data();
    try {
      onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(),
                                         onnx::ShapeInferenceOptions(false, 0, true));
    } catch (const std::exception&) {
      // Partial shapes are fine: whatever needs an unknown shape is left alone.
    }
    auto add = [&](const onnx::ValueInfoProto& v) {
      if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return;
      std::vector<int64_t> dims;
      for (const auto& d : v.type().tensor_type().shape().dim()) dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
      shapes_[v.name()] = dims;
    };
    const auto& g = copy.graph();
    for (const auto& v : g.input()) add(v);
    for (const auto& v : g.value_info()) add(v);
    for (const auto& v : g.output()) add(v);
    for (const auto& t : model.proto().graph().initializer()) shapes_[t.name()] = dims_of(t);
  }

  const std::vector<int64_t>* shape(const std::string& name) {
    if (TensorProto* t = graph_.constant(name)) {
      shapes_[name] = dims_of(*t);
    }
    auto it = shapes_.find(name);
    return it == shapes_.end() ? nullptr : &it->second;
  }

  // ---- groups ----
  int new_space(const std::string& label, int64_t channels, std::vector<double> score) {
    spaces_.push_back({label, channels, std::move(score)});
    parent_.push_back(static_cast<int>(parent_.size()));
    return static_cast<int>(spaces_.size()) - 1;
  }

  void block_space(int s, const std::string& reason) {
    const int r = root(s);
    blocked_.emplace(r, reason);
  }
  void block(const Layout& layout, const std::string& reason) {
    for (const auto& seg : layout.segments)
      if (seg.space >= 0) block_space(seg.space, reason);
  }
  void unite(int a, int b) {
    a = root(a);
    b = root(b);
    if (a == b) return;
    if (b < a) std::swap(a, b);
    parent_[b] = a;
    auto it = blocked_.find(b);
    if (it != blocked_.end()) {
      blocked_.emplace(a, it->second);
      blocked_.erase(it);
    }
  }
  // Joins two layouts that must select the same entries; false when their structure differs.
  bool join(const Layout& a, const Layout& b) {
    if (a.segments.size() != b.segments.size()) return false;
    for (size_t i = 0; i < a.segments.size(); ++i) {
      const Segment &x = a.segments[i], &y = b.segments[i];
      if (x.channels != y.channels || x.block != y.block || (x.space < 0) != (y.space < 0)) return false;
    }
    for (size_t i = 0; i < a.segments.size(); ++i)
      if (a.segments[i].space >= 0) unite(a.segments[i].space, b.segments[i].space);
    return true;
  }

  // A constant this rewrite slices: float32, read by this one node only.
  TensorProto* sliceable(const std::string& name, std::string& reason) {
    TensorProto* t = graph_.constant(name);
    if (t == nullptr) {
      reason = "parameter_not_constant";
      return nullptr;
    }
    if (t->data_type() != TensorProto::FLOAT) {
      reason = "parameter_not_float32";
      return nullptr;
    }
    if (graph_.consumers(name).size() != 1) {
      reason = "parameter_shared";
      return nullptr;
    }
    return t;
  }

  bool add_edit(const std::string& name, int64_t axis, const Layout& layout, const Layout& blame) {
    std::string reason;
    TensorProto* t = sliceable(name, reason);
    if (t == nullptr) {
      block(blame, reason);
      return false;
    }
    if (axis >= t->dims_size() || t->dims(static_cast<int>(axis)) != layout.length()) {
      block(blame, "parameter_shape_mismatch");
      return false;
    }
    Layout l = layout;
    l.axis = axis;
    edits_.push_back({t, axis, l});
    return true;
  }

  // ---- the walk ----
  void visit(NodeProto& node) {
    const std::string& op = node.op_type();
    std::vector<int> with_layout;
    for (int i = 0; i < node.input_size(); ++i)
      if (!node.input(i).empty() && layouts_.count(node.input(i))) with_layout.push_back(i);
    const bool default_domain = node.domain().empty() || node.domain() == "ai.onnx";
    if (!with_layout.empty()) {
      if (!default_domain) {
        block_inputs(node, with_layout, "unsupported_consumer:" + op);
      } else if (context_.is_excluded(node)) {
        block_inputs(node, with_layout, "consumer_excluded");
      } else {
        follow(node, with_layout);
      }
    }
    if (default_domain && (op == "Conv" || op == "Gemm" || op == "MatMul")) maybe_producer(node);
  }

  void block_inputs(const NodeProto& node, const std::vector<int>& inputs, const std::string& reason) {
    for (int i : inputs) block(layouts_.at(node.input(i)), reason);
  }

  void set_output(const NodeProto& node, int index, Layout layout) {
    if (index < node.output_size() && !node.output(index).empty()) layouts_[node.output(index)] = std::move(layout);
  }

  bool only_input0(const NodeProto& node, const std::vector<int>& inputs) {
    if (inputs.size() == 1 && inputs[0] == 0) return true;
    block_inputs(node, inputs, "channels_at_unsupported_input:" + node.op_type());
    return false;
  }

  void follow(NodeProto& node, const std::vector<int>& inputs) {
    const std::string& op = node.op_type();
    const Layout& in = layouts_.at(node.input(inputs[0]));
    if (kUnary.count(op)) {
      if (!only_input0(node, inputs)) return;
      set_output(node, 0, in);
      if (op == "Dropout") set_output(node, 1, in);
      return;
    }
    if (kPool.count(op)) {
      if (!only_input0(node, inputs)) return;
      if (in.axis != 1) return block(in, "pool_not_on_channel_axis");
      if (op == "MaxPool" && node.output_size() > 1 && !node.output(1).empty())
        return block(in, "maxpool_indices_used");
      return set_output(node, 0, in);
    }
    if (op == "BatchNormalization" || op == "InstanceNormalization") {
      if (!only_input0(node, inputs)) return;
      if (in.axis != 1) return block(in, "normalization_not_on_channel_axis");
      for (int o = 1; o < node.output_size(); ++o)
        if (!node.output(o).empty()) return block(in, "batchnorm_training_outputs");
      const int params = op == "BatchNormalization" ? 5 : 3;
      std::set<std::string> names;
      for (int i = 1; i < params && i < node.input_size(); ++i) names.insert(node.input(i));
      if (static_cast<int>(names.size()) != std::min(params, node.input_size()) - 1)
        return block(in, "parameter_shared");
      for (int i = 1; i < params && i < node.input_size(); ++i)
        if (!add_edit(node.input(i), 0, in, in)) return;
      if (op == "BatchNormalization") fold_bn_scale(node, in);
      return set_output(node, 0, in);
    }
    if (kBinary.count(op)) return follow_binary(node, inputs);
    if (op == "Concat") return follow_concat(node, inputs);
    if (op == "Flatten" || op == "Reshape") return follow_flatten(node, inputs);
    if (op == "Resize" || op == "Upsample") return follow_resize(node, inputs);
    if (op == "Conv") {
      if (!only_input0(node, inputs)) return;
      return consume_conv(node, in);
    }
    if (op == "Gemm") {
      if (!only_input0(node, inputs)) return;
      const auto* s = shape(node.input(0));
      if (int_attribute(node, "transA", 0) != 0 || in.axis != 1 || !s || s->size() != 2)
        return block(in, "gemm_input_layout");
      const int64_t k_axis = int_attribute(node, "transB", 0) ? 1 : 0;
      add_edit(node.input(1), k_axis, in, in);
      return;
    }
    if (op == "MatMul") {
      if (!only_input0(node, inputs)) return;
      const auto* s = shape(node.input(0));
      TensorProto* b = graph_.constant(node.input(1));
      if (!s || s->empty() || in.axis != static_cast<int64_t>(s->size()) - 1 || !b || b->dims_size() != 2)
        return block(in, "matmul_input_layout");
      add_edit(node.input(1), 0, in, in);
      return;
    }
    block_inputs(node, inputs, "unsupported_consumer:" + op);
  }

  void consume_conv(NodeProto& node, const Layout& in) {
    if (in.axis != 1) return block(in, "conv_input_layout");
    TensorProto* w = graph_.constant(node.input(1));
    if (!w || w->dims_size() < 3) return block(in, "conv_weight_not_constant");
    const int64_t group = int_attribute(node, "group", 1);
    if (group == 1) {
      add_edit(node.input(1), 1, in, in);
      return;
    }
    // Depthwise (one filter per input channel): channels pass through; slice W, B and group.
    if (group != in.length() || w->dims(0) != group || w->dims(1) != 1) return block(in, "grouped_conv");
    if (!add_edit(node.input(1), 0, in, in)) return;
    if (node.input_size() > 2 && !node.input(2).empty() && !add_edit(node.input(2), 0, in, in)) return;
    group_edits_.push_back({&node, in});
    set_output(node, 0, in);
  }

  void follow_binary(NodeProto& node, const std::vector<int>& inputs) {
    const Layout& first = layouts_.at(node.input(inputs[0]));
    const auto* out_shape = shape(node.output(0));
    auto block_all = [&](const std::string& reason) { block_inputs(node, inputs, reason); };
    if (node.input_size() != 2 || !out_shape) return block_all("elementwise_shape_unknown");
    const int64_t rank = static_cast<int64_t>(out_shape->size());
    // The output axis of each layout input must agree.
    int64_t axis = -1;
    for (int i : inputs) {
      const auto* s = shape(node.input(i));
      if (!s) return block_all("elementwise_shape_unknown");
      const int64_t a = layouts_.at(node.input(i)).axis + rank - static_cast<int64_t>(s->size());
      if (axis >= 0 && a != axis) return block_all("residual_layout_mismatch");
      axis = a;
    }
    if (op_is_prelu(node) && inputs[0] != 0) return block_all("channels_at_unsupported_input:PRelu");
    if (inputs.size() == 2 && !join(first, layouts_.at(node.input(inputs[1]))))
      return block_all("residual_layout_mismatch");
    if (inputs.size() == 1) {
      const int other = 1 - inputs[0];
      const std::string& name = node.input(other);
      const auto* s = shape(name);
      if (!s) return block_all("elementwise_shape_unknown");
      const int64_t p = axis - (rank - static_cast<int64_t>(s->size()));
      const bool broadcasts = p < 0 || (*s)[p] == 1;
      if (!broadcasts) {
        if (graph_.constant(name) == nullptr) return block_all("joined_with_unprunable_value");
        if ((*s)[p] != first.length()) return block_all("parameter_shape_mismatch");
        if (!add_edit(name, p, first, first)) return;
      }
    }
    Layout out = first;
    out.axis = axis;
    set_output(node, 0, out);
  }

  // A BatchNormalization right after a producer rescales each channel by |gamma| / sqrt(var + eps):
  // the score is the norm of the folded filter, not of the raw one.
  void fold_bn_scale(const NodeProto& node, const Layout& in) {
    if (in.segments.size() != 1 || in.segments[0].space < 0 || in.segments[0].block != 1) return;
    const int s = in.segments[0].space;
    if (!bn_folded_.insert(s).second) return;
    const TensorProto* scale = graph_.constant(node.input(1));
    const TensorProto* var = graph_.constant(node.input(4));
    const float eps = float_attribute(node, "epsilon", 1e-5f);
    const auto g = to_floats(*scale), v = to_floats(*var);
    auto& score = spaces_[s].score;
    for (size_t c = 0; c < score.size() && c < g.size() && c < v.size(); ++c)
      score[c] *= std::abs(g[c]) / std::sqrt(std::max(0.0f, v[c]) + eps);
  }

  static bool op_is_prelu(const NodeProto& node) { return node.op_type() == "PRelu"; }

  void follow_concat(NodeProto& node, const std::vector<int>& inputs) {
    const auto* out_shape = shape(node.output(0));
    if (!out_shape) return block_inputs(node, inputs, "concat_shape_unknown");
    const int64_t rank = static_cast<int64_t>(out_shape->size());
    int64_t axis = int_attribute(node, "axis", 0);
    if (axis < 0) axis += rank;
    Layout out;
    out.axis = axis;
    for (int i = 0; i < node.input_size(); ++i) {
      auto it = layouts_.find(node.input(i));
      if (it != layouts_.end()) {
        if (it->second.axis != axis) return block_inputs(node, inputs, "concat_on_other_axis");
        for (const auto& seg : it->second.segments) out.segments.push_back(seg);
        continue;
      }
      const auto* s = shape(node.input(i));
      if (!s || static_cast<int64_t>(s->size()) != rank || (*s)[axis] < 0)
        return block_inputs(node, inputs, "concat_shape_unknown");
      out.segments.push_back({-1, (*s)[axis], 1});
    }
    set_output(node, 0, out);
  }

  // Flatten(axis) or Reshape to [N,-1]: the channel axis must be the outermost flattened dim.
  void follow_flatten(NodeProto& node, const std::vector<int>& inputs) {
    if (!only_input0(node, inputs)) return;
    const Layout& in = layouts_.at(node.input(0));
    const auto* s = shape(node.input(0));
    if (!s) return block(in, "reshape_not_provable");
    int64_t axis = 1;
    if (node.op_type() == "Flatten") {
      axis = int_attribute(node, "axis", 1);
      if (axis < 0) axis += static_cast<int64_t>(s->size());
    } else {
      const TensorProto* target = node.input_size() > 1 ? graph_.constant(node.input(1)) : nullptr;
      if (!target || target->data_type() != TensorProto::INT64) return block(in, "reshape_not_provable");
      const auto t = to_int64s(*target);
      const bool to_n_rest = t.size() == 2 && t[1] == -1 && (t[0] == 0 || (!s->empty() && t[0] == (*s)[0] && t[0] > 0));
      if (!to_n_rest || s->empty()) return block(in, "reshape_not_provable");
    }
    if (in.axis < axis || axis < 1) return block(in, "reshape_not_provable");
    int64_t between = 1, inner = 1;
    for (int64_t d = axis; d < in.axis; ++d) between *= (*s)[d];
    for (size_t d = in.axis + 1; d < s->size(); ++d) {
      if ((*s)[d] < 0) return block(in, "reshape_not_provable");
      inner *= (*s)[d];
    }
    if (between != 1) return block(in, "reshape_not_provable");
    Layout out = in;
    out.axis = 1;
    for (auto& seg : out.segments) seg.block *= inner;
    set_output(node, 0, out);
  }

  void follow_resize(NodeProto& node, const std::vector<int>& inputs) {
    if (!only_input0(node, inputs)) return;
    const Layout& in = layouts_.at(node.input(0));
    const int scales_input = node.op_type() == "Upsample" ? 1 : 2;
    if (in.axis != 1) return block(in, "resize_layout");
    if (node.op_type() == "Resize" && node.input_size() > 3 && !node.input(3).empty())
      return block(in, "resize_by_sizes");
    const TensorProto* scales =
        node.input_size() > scales_input ? graph_.constant(node.input(scales_input)) : nullptr;
    if (!scales) return block(in, "resize_scales_not_constant");
    const auto v = to_floats(*scales);
    if (v.size() < 2 || v[1] != 1.0f) return block(in, "resize_scales_channels");
    set_output(node, 0, in);
  }

  // ---- producers ----
  void maybe_producer(NodeProto& node) {
    if (node.output_size() < 1 || node.output(0).empty()) return;
    const std::string& op = node.op_type();
    const std::string label = label_of(node);
    if (context_.is_excluded(node)) return stats_.skip(label, "excluded");
    if (node.input_size() < 2) return;
    std::string reason;
    TensorProto* w = sliceable(node.input(1), reason);
    if (w == nullptr) return stats_.skip(label, "weight_" + reason);
    int64_t out_axis = 0, out_layout_axis = 1;
    if (op == "Conv") {
      if (int_attribute(node, "group", 1) != 1) return stats_.skip(label, "grouped_conv");
      if (w->dims_size() < 3) return stats_.skip(label, "weight_shape");
    } else if (op == "Gemm") {
      if (w->dims_size() != 2) return stats_.skip(label, "weight_shape");
      out_axis = int_attribute(node, "transB", 0) ? 0 : 1;
    } else {
      if (w->dims_size() != 2) return stats_.skip(label, "weight_shape");
      const auto* s = shape(node.output(0));
      if (!s || s->empty()) return stats_.skip(label, "shape_unknown");
      out_axis = 1;
      out_layout_axis = static_cast<int64_t>(s->size()) - 1;
    }
    const int64_t channels = w->dims(static_cast<int>(out_axis));
    // Bias: Conv B [C]; Gemm C broadcast to [M, N] (sliced when its last dim is N).
    std::string bias;
    int64_t bias_axis = 0;
    if (node.input_size() > 2 && !node.input(2).empty()) {
      bias = node.input(2);
      const TensorProto* b = sliceable(bias, reason);
      if (b == nullptr) return stats_.skip(label, "bias_" + reason);
      if (b->dims_size() == 0 || b->dims(b->dims_size() - 1) == 1) {
        bias.clear();  // broadcast scalar: nothing to slice
      } else if (b->dims(b->dims_size() - 1) == channels) {
        bias_axis = b->dims_size() - 1;
      } else {
        return stats_.skip(label, "bias_shape");
      }
    }
    const int s = new_space(label, channels, channel_scores(*w, out_axis, channels));
    Layout own{out_axis, {{s, channels, 1}}};
    edits_.push_back({w, out_axis, own});
    if (!bias.empty()) edits_.push_back({graph_.constant(bias), bias_axis, Layout{bias_axis, own.segments}});
    set_output(node, 0, Layout{out_layout_axis, own.segments});
  }

  std::vector<double> channel_scores(const TensorProto& w, int64_t axis, int64_t channels) {
    const auto values = to_floats(w);
    const auto dims = dims_of(w);
    int64_t inner = 1;
    for (size_t d = axis + 1; d < dims.size(); ++d) inner *= dims[d];
    std::vector<double> score(static_cast<size_t>(channels), 0.0);
    for (size_t i = 0; i < values.size(); ++i) {
      const int64_t c = (static_cast<int64_t>(i) / inner) % channels;
      const double v = values[i];
      score[c] += l2_ ? v * v : std::abs(v);
    }
    if (l2_)
      for (auto& x : score) x = std::sqrt(x);
    return score;
  }

  Graph& graph_;
  const PassContext& context_;
  PassStats& stats_;
  bool l2_;
  std::map<std::string, std::vector<int64_t>> shapes_;
  std::set<int> bn_folded_;
};

// Entries along an axis that a layout keeps, given the kept channels of each space.
std::vector<int64_t> kept_entries(const Layout& layout, const std::vector<std::vector<int64_t>>& keep) {
  std::vector<int64_t> out;
  int64_t offset = 0;
  for (const auto& seg : layout.segments) {
    if (seg.space < 0) {
      for (int64_t i = 0; i < seg.channels; ++i) out.push_back(offset + i);
    } else {
      for (int64_t c : keep[seg.space])
        for (int64_t b = 0; b < seg.block; ++b) out.push_back(offset + c * seg.block + b);
    }
    offset += seg.channels * seg.block;
  }
  return out;
}

class PruneChannelsPass final : public Pass {
 public:
  PassInfo info() const override {
    OptionSpec ratio{"ratio", OptionSpec::Type::kFloat, "0.25", "fraction of channels to remove (per group, or overall)"};
    ratio.min = 0;
    ratio.max = 1;
    OptionSpec scope{"scope", OptionSpec::Type::kEnum, "layer",
                     "layer: `ratio` of every group; global: `ratio` of all channels, lowest scores first"};
    scope.choices = {"layer", "global"};
    OptionSpec max_ratio{"max-ratio", OptionSpec::Type::kFloat, "0.75", "scope=global: most of one group removed"};
    max_ratio.min = 0;
    max_ratio.max = 1;
    OptionSpec criterion{"criterion", OptionSpec::Type::kEnum, "l1", "channel score: L1 or L2 norm of its weights"};
    criterion.choices = {"l1", "l2"};
    OptionSpec round_to{"round-to", OptionSpec::Type::kInt, "1", "keep channel counts a multiple of this"};
    round_to.min = 1;
    round_to.max = 4096;
    return {"prune-channels",
            "remove whole output channels/features with the smallest L1/L2 norm and shrink everything they feed",
            {ratio, scope, max_ratio, criterion, round_to,
             {"exclude", OptionSpec::Type::kList, "[]", "globs of node names or op types to leave alone"}}};
  }

  PassStats run(Model& model, const PassContext& context) const override {
    PassStats stats;
    const auto& options = context.options();
    const double ratio = options.get_float("ratio");
    const bool global = options.get_string("scope") == "global";
    const double max_ratio = options.get_float("max-ratio");
    const int64_t round_to = options.get_int("round-to");

    for (Graph* g : model.all_graphs())
      if (g->parent() != nullptr)
        for (const auto& n : g->proto().node())
          if (n.op_type() == "Conv" || n.op_type() == "Gemm" || n.op_type() == "MatMul")
            stats.skip(label_of(n), "in_subgraph");

    Planner planner(model, context, stats);
    planner.plan();

    // Groups: members by root, in order of their first space.
    std::map<int, std::vector<int>> members;
    for (int s = 0; s < static_cast<int>(planner.spaces_.size()); ++s) members[planner.root(s)].push_back(s);
    struct Group {
      int root;
      int64_t channels;
      std::vector<double> score;
      int64_t prune = 0;
    };
    std::vector<Group> groups;
    for (const auto& [r, list] : members) {
      std::string label;
      for (int s : list) label += (label.empty() ? "" : "+") + planner.spaces_[s].label;
      auto it = planner.blocked_.find(r);
      if (it != planner.blocked_.end()) {
        stats.skip(label, it->second);
        continue;
      }
      Group g{r, planner.spaces_[list[0]].channels, std::vector<double>(planner.spaces_[list[0]].channels, 0.0)};
      for (int s : list) {
        const auto& sc = planner.spaces_[s].score;
        const double mean = std::accumulate(sc.begin(), sc.end(), 0.0) / static_cast<double>(sc.size());
        for (size_t c = 0; c < sc.size(); ++c) g.score[c] += mean > 0 ? sc[c] / mean : 0.0;
      }
      groups.push_back(std::move(g));
    }

    if (global) {
      struct Entry {
        double score;
        size_t group;
        int64_t channel;
      };
      std::vector<Entry> all;
      int64_t total = 0;
      for (size_t gi = 0; gi < groups.size(); ++gi) {
        total += groups[gi].channels;
        for (int64_t c = 0; c < groups[gi].channels; ++c) all.push_back({groups[gi].score[c], gi, c});
      }
      std::sort(all.begin(), all.end(), [](const Entry& a, const Entry& b) {
        return a.score < b.score || (a.score == b.score && (a.group < b.group || (a.group == b.group && a.channel < b.channel)));
      });
      int64_t target = std::llround(ratio * static_cast<double>(total));
      for (const Entry& e : all) {
        if (target <= 0) break;
        Group& g = groups[e.group];
        const int64_t cap = std::min<int64_t>(g.channels - 1, static_cast<int64_t>(std::floor(max_ratio * static_cast<double>(g.channels))));
        if (g.prune < cap) {
          ++g.prune;
          --target;
        }
      }
    } else {
      for (auto& g : groups) g.prune = std::min<int64_t>(g.channels - 1, std::llround(ratio * static_cast<double>(g.channels)));
    }

    // Kept channels per space.
    std::vector<std::vector<int64_t>> keep(planner.spaces_.size());
    for (size_t s = 0; s < keep.size(); ++s) {
      keep[s].resize(static_cast<size_t>(planner.spaces_[s].channels));
      std::iota(keep[s].begin(), keep[s].end(), 0);
    }
    std::set<int> pruned_spaces;
    int64_t channels_before = 0, channels_after = 0;
    for (auto& g : groups) {
      const int64_t wanted = g.channels - std::max<int64_t>(g.prune, 0);
      const int64_t kept = std::min(g.channels, (wanted + round_to - 1) / round_to * round_to);
      const auto& list = members[g.root];
      std::string label;
      for (int s : list) label += (label.empty() ? "" : "+") + planner.spaces_[s].label;
      channels_before += g.channels;
      channels_after += kept;
      if (kept == g.channels) {
        stats.layers.push_back({{"name", label}, {"channels", g.channels}, {"kept", kept}});
        continue;
      }
      std::vector<int64_t> order(static_cast<size_t>(g.channels));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return g.score[a] > g.score[b]; });
      std::vector<int64_t> chosen(order.begin(), order.begin() + kept);
      std::sort(chosen.begin(), chosen.end());
      for (int s : list) {
        keep[s] = chosen;
        pruned_spaces.insert(s);
      }
      stats.layers.push_back({{"name", label}, {"channels", g.channels}, {"kept", kept}, {"producers", list.size()}});
      stats.count("pruned_groups");
      stats.count("pruned_channels", g.channels - kept);
    }
    stats.count("channels_before", channels_before);
    stats.count("channels_after", channels_after);
    if (pruned_spaces.empty()) return stats;

    auto touches = [&](const Layout& l) {
      for (const auto& seg : l.segments)
        if (seg.space >= 0 && pruned_spaces.count(seg.space)) return true;
      return false;
    };
    for (const auto& e : planner.edits_)
      if (touches(e.layout)) slice_tensor(*e.tensor, e.axis, kept_entries(e.layout, keep));
    for (const auto& [node, layout] : planner.group_edits_) {
      if (!touches(layout)) continue;
      for (auto& a : *node->mutable_attribute())
        if (a.name() == "group") a.set_i(static_cast<int64_t>(kept_entries(layout, keep).size()));
    }
    std::set<std::string> changed;
    for (const auto& [name, layout] : planner.layouts_)
      if (touches(layout)) changed.insert(name);
    auto* infos = model.graph().proto().mutable_value_info();
    for (int i = infos->size() - 1; i >= 0; --i)
      if (changed.count(infos->Get(i).name())) infos->DeleteSubrange(i, 1);
    model.invalidate();
    return stats;
  }
};

}  // namespace

std::unique_ptr<Pass> make_prune_channels_pass() { return std::make_unique<PruneChannelsPass>(); }

}  // namespace compress
