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
// needs a constant that is shared, a graph output, not float32 or of another shape; producers or
// consumers that are excluded, grouped (non-depthwise) convolutions. Nodes inside subgraphs are not pruned.
// Afterwards the value_info of every changed tensor (activations and sliced weights) is dropped so
// shape inference recomputes it.
// Bias compensation (compensate=true): a pruned channel's activation is replaced by its expected
// value m_c, folded into each consumer: Conv bias[o] += m_c x sum_{kh,kw} W[o,c,kh,kw] (exact with no
// padding; at zero-padded borders the folded constant is applied where the input was 0, an
// approximation), Gemm C[o] += alpha/beta x m_c x W[c,o] (or W[o,c] with transB), MatMul gets an
// Add of m_c x B[c,:] after it. A bias is created when missing. m_c is computed by pushing the
// channel's value through every op on the path with the op's exact formula (BatchNormalization,
// Relu/LeakyRelu/Clip/Sigmoid/HardSwish/..., Add/Mul/... with per-channel constants, x * f(x),
// depthwise Conv as its filter sum, pools as identity): with offset-estimate=zero-weight the
// value is the channel's output if its weights were zero (its bias); with bn-stats (default), a
// channel with non-zero weights reaching a BatchNormalization (directly, or as a distribution
// through e.g. a depthwise Conv) is modelled as N(running_mean, running_var) there, and m_c is
// the Gaussian mean of the activation
// (quadrature on a 241-point grid). A channel whose path holds an op that cannot be evaluated
// this way (LpPool, a constant varying over H/W, two different channels mixed) is pruned without
// compensation and counted in uncompensated_channels.
// Refit (calibrate=DIR): each consumer whose input channels shrank is refitted by least squares so
// that on the sample inputs its kept outputs match the ORIGINAL model's consumer output (teacher:
// the consumer's own output, before any following op): with X the consumer's input in the pruned
// model (kept channels; im2col rows for Conv, rows subsampled to at most 20000 per layer) and
// Xa = [X 1], theta = (Xa^T Xa + l I)^-1 (Xa^T Y + l theta0), where theta0 is the pruned (and
// compensated) [W; b] and l = refit-ridge x the mean diagonal of X^T X: a ridge toward the pruned
// weights, not toward zero, so directions the samples do not excite keep their weights. Sums in
// double, solved by LDLT. Written back as W and bias (Conv B / Gemm C created when absent, Gemm
// alpha and beta folded into B and C and reset to 1; MatMul: the bias Add of compensation, or a new
// one). Consumers are refitted in graph order and the pruned model is re-evaluated before each, so
// a later consumer sees the refitted earlier layers. Not refitted (refit_skipped.<reason>): a bias
// that is shared, not a float32 constant or not one value per output; Conv geometry the patch
// builder does not cover; non-float activations. Per layer: relative output error on the samples
// before and after.
// Options: ratio (0.25), scope (layer), max-ratio (0.75), criterion (l1), round-to (1),
// compensate (true), offset-estimate (bn-stats), calibrate (none), refit-ridge (1e-3), exclude.
#include <compress/error.h>
#include <compress/tensor.h>
#include <onnx/shape_inference/implementation.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "passes/activation_probe.h"
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
  std::string value;  // the name the graph reads it by (its value_info, if any, goes stale)
};

struct Space {
  std::string label;
  int64_t channels = 0;
  std::vector<double> score;
};

// The value of one channel entry as a function of one standard normal variable z, sampled at
// grid().z: one element is a constant, empty is unknown (bias compensation leaves it alone).
using Samples = std::vector<double>;

struct Grid {
  std::vector<double> z, weight;
  Grid() {
    constexpr int kPoints = 241;  // z in [-6, 6], step 0.05: piecewise-linear activations integrate to ~1e-4
    double total = 0;
    for (int i = 0; i < kPoints; ++i) {
      z.push_back(-6.0 + 12.0 * i / (kPoints - 1));
      weight.push_back(std::exp(-0.5 * z.back() * z.back()));
      total += weight.back();
    }
    for (auto& w : weight) w /= total;
  }
};
const Grid& grid() {
  static const Grid g;
  return g;
}

double mean_of(const Samples& v) {
  if (v.size() == 1) return v[0];
  double m = 0;
  for (size_t i = 0; i < v.size(); ++i) m += grid().weight[i] * v[i];
  return m;
}

// A Conv/Gemm/MatMul whose input channels shrink: the pruned channels' expected values times its
// weights go into its bias.
struct Consumer {
  NodeProto* node;
  Layout layout;
  TensorProto* weight;
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

// Keeps `keep` entries along `axis`: copies the kept float bytes straight into the new raw_data (no
// float copy of the weight, so a big weight costs only its smaller result on top).
void slice_tensor(TensorProto& t, int64_t axis, const std::vector<int64_t>& keep) {
  std::vector<int64_t> dims = dims_of(t);
  std::vector<float> scratch;
  const std::span<const float> values = float_view(t, scratch);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= dims[d];
  for (size_t d = axis + 1; d < dims.size(); ++d) inner *= dims[d];
  const size_t row_bytes = static_cast<size_t>(inner) * sizeof(float);
  std::string raw(static_cast<size_t>(outer) * keep.size() * row_bytes, '\0');
  char* at = raw.data();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k : keep) {
      std::memcpy(at, values.data() + (o * dims[axis] + k) * inner, row_bytes);  // little-endian floats as stored
      at += row_bytes;
    }
  dims[axis] = static_cast<int64_t>(keep.size());
  t = make_raw_tensor(t.name(), TensorProto::FLOAT, dims, std::move(raw));
}

// The exact scalar formula of an element-wise op (Clip bounds given), or an empty function.
std::function<double(double)> scalar_op(const NodeProto& node, double lo, double hi) {
  const std::string& op = node.op_type();
  auto attr = [&](const char* name, float fallback) { return static_cast<double>(float_attribute(node, name, fallback)); };
  auto softplus = [](double x) { return x > 30 ? x : std::log1p(std::exp(x)); };
  if (op == "Relu") return [](double x) { return std::max(x, 0.0); };
  if (op == "LeakyRelu") return [a = attr("alpha", 0.01f)](double x) { return x >= 0 ? x : a * x; };
  if (op == "Sigmoid") return [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  if (op == "HardSigmoid")
    return [a = attr("alpha", 0.2f), b = attr("beta", 0.5f)](double x) { return std::clamp(a * x + b, 0.0, 1.0); };
  if (op == "HardSwish") return [](double x) { return x * std::clamp(x / 6.0 + 0.5, 0.0, 1.0); };
  if (op == "Tanh") return [](double x) { return std::tanh(x); };
  if (op == "Elu") return [a = attr("alpha", 1.0f)](double x) { return x > 0 ? x : a * std::expm1(x); };
  if (op == "Selu")
    return [a = attr("alpha", 1.67326319217681884765625f), g = attr("gamma", 1.05070102214813232421875f)](double x) {
      return g * (x > 0 ? x : a * std::expm1(x));
    };
  if (op == "Celu")
    return [a = attr("alpha", 1.0f)](double x) { return std::max(0.0, x) + std::min(0.0, a * std::expm1(x / a)); };
  if (op == "Softplus") return softplus;
  if (op == "Softsign") return [](double x) { return x / (1.0 + std::abs(x)); };
  if (op == "Abs") return [](double x) { return std::abs(x); };
  if (op == "Neg") return [](double x) { return -x; };
  if (op == "Exp") return [](double x) { return std::exp(x); };
  if (op == "Log") return [](double x) { return std::log(x); };
  if (op == "Sqrt") return [](double x) { return std::sqrt(x); };
  if (op == "Reciprocal") return [](double x) { return 1.0 / x; };
  if (op == "Erf") return [](double x) { return std::erf(x); };
  if (op == "Floor") return [](double x) { return std::floor(x); };
  if (op == "Ceil") return [](double x) { return std::ceil(x); };
  if (op == "Round") return [](double x) { return std::nearbyint(x); };
  if (op == "Sin") return [](double x) { return std::sin(x); };
  if (op == "Cos") return [](double x) { return std::cos(x); };
  if (op == "Mish") return [softplus](double x) { return x * std::tanh(softplus(x)); };
  if (op == "ThresholdedRelu") return [a = attr("alpha", 1.0f)](double x) { return x > a ? x : 0.0; };
  if (op == "Sign") return [](double x) { return static_cast<double>((x > 0) - (x < 0)); };
  if (op == "Clip") return [lo, hi](double x) { return std::clamp(x, lo, hi); };
  if (op == "Identity" || op == "Dropout") return [](double x) { return x; };
  return {};
}

class Planner {
 public:
  Planner(Model& model, const PassContext& context, PassStats& stats)
      : graph_(model.graph()),
        context_(context),
        stats_(stats),
        l2_(context.options().get_string("criterion") == "l2"),
        bn_stats_(context.options().get_string("offset-estimate") == "bn-stats") {
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
  std::vector<Consumer> consumers_;
  std::map<const NodeProto*, int> producer_space_;
  // tensor -> space -> per channel: the value its pruned channels would have had.
  std::map<std::string, std::map<int, std::vector<Samples>>> values_;

 private:
  // ---- shapes ----
  void infer_shapes(Model& model) {
    onnx::ModelProto copy = model.copy_without_large_data();
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

  // A constant this rewrite slices: float32, read by this one node only, not a graph output.
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
    if (graph_.is_graph_output(name)) {  // slicing would change what the model returns
      reason = "parameter_is_graph_output";
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
    edits_.push_back({t, axis, l, name});
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
        propagate(node);
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
      if (add_edit(node.input(1), k_axis, in, in)) consumers_.push_back({&node, in, graph_.constant(node.input(1))});
      return;
    }
    if (op == "MatMul") {
      if (!only_input0(node, inputs)) return;
      const auto* s = shape(node.input(0));
      TensorProto* b = graph_.constant(node.input(1));
      if (!s || s->empty() || in.axis != static_cast<int64_t>(s->size()) - 1 || !b || b->dims_size() != 2)
        return block(in, "matmul_input_layout");
      if (add_edit(node.input(1), 0, in, in)) consumers_.push_back({&node, in, b});
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
      if (add_edit(node.input(1), 1, in, in)) consumers_.push_back({&node, in, w});
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

  // ---- the values pruned channels would have had (bias compensation) ----
  static std::vector<int64_t> entries_of(const Layout& layout, int space, int64_t channel) {
    int64_t offset = 0;
    for (const auto& seg : layout.segments) {
      if (seg.space == space) {
        std::vector<int64_t> out;
        for (int64_t b = 0; b < seg.block; ++b) out.push_back(offset + channel * seg.block + b);
        return out;
      }
      offset += seg.channels * seg.block;
    }
    return {};
  }

  // Per-entry values of a constant that broadcasts against `layout` (rank `rank`): one value, or one
  // per entry along the channel axis. Empty when it varies along another axis.
  std::vector<float> per_entry(const std::string& name, const Layout& layout, int64_t rank) {
    const TensorProto* t = graph_.constant(name);
    if (t == nullptr) return {};
    const auto v = to_floats(*t);
    if (v.size() == 1) return std::vector<float>(static_cast<size_t>(layout.length()), v[0]);
    const int64_t p = layout.axis - (rank - t->dims_size());
    if (p < 0 || p >= t->dims_size() || t->dims(static_cast<int>(p)) != layout.length() ||
        static_cast<int64_t>(v.size()) != layout.length())
      return {};
    return v;
  }

  // A normalization parameter ([C] along the channel axis).
  std::vector<float> param(const NodeProto& node, int input, const Layout& layout) {
    const TensorProto* t = node.input_size() > input ? graph_.constant(node.input(input)) : nullptr;
    if (t == nullptr || element_count(*t) != layout.length()) return {};
    return to_floats(*t);
  }

  // One value per channel entry: all entries of the channel must agree.
  static bool channel_value(const std::vector<float>& v, const std::vector<int64_t>& entries, double& out) {
    if (v.empty() || entries.empty()) return false;
    out = v[entries[0]];
    for (int64_t e : entries)
      if (v[e] != out) return false;
    return true;
  }

  static Samples apply(const Samples& x, const std::function<double(double)>& f) {
    Samples y;
    if (!f) return y;
    for (double v : x) {
      const double r = f(v);
      if (!std::isfinite(r)) return {};
      y.push_back(r);
    }
    return y;
  }

  double clip_bound(const NodeProto& node, int input, const char* attr, double fallback, bool& ok) {
    if (node.input_size() > input && !node.input(input).empty()) {
      const TensorProto* t = graph_.constant(node.input(input));
      if (t == nullptr || element_count(*t) != 1) {
        ok = false;
        return fallback;
      }
      return to_floats(*t)[0];
    }
    return float_attribute(node, attr, static_cast<float>(fallback));
  }

  void propagate(const NodeProto& node) {
    if (node.output_size() < 1 || !layouts_.count(node.output(0)) || values_.count(node.output(0))) return;
    const std::string& op = node.op_type();
    if (op == "Concat") {
      for (const auto& name : node.input()) {
        auto it = values_.find(name);
        if (it != values_.end())
          for (const auto& [space, v] : it->second) values_[node.output(0)][space] = v;
      }
      return;
    }
    if (kBinary.count(op)) return propagate_binary(node);
    auto it = values_.find(node.input(0));
    if (it == values_.end()) return;
    const Layout& in = layouts_.at(node.input(0));
    const auto in_values = it->second;  // copy: values_ may rehash below
    auto& out = values_[node.output(0)];
    for (const auto& [space, channels] : in_values) {
      auto& result = out[space];
      for (size_t c = 0; c < channels.size(); ++c)
        result.push_back(channels[c].empty() ? Samples{} : transform(node, in, space, static_cast<int64_t>(c), channels[c]));
    }
  }

  Samples transform(const NodeProto& node, const Layout& in, int space, int64_t c, const Samples& x) {
    const std::string& op = node.op_type();
    const auto entries = entries_of(in, space, c);
    if (op == "Flatten" || op == "Reshape" || op == "Resize" || op == "Upsample" || op == "AveragePool" ||
        op == "GlobalAveragePool" || op == "MaxPool" || op == "GlobalMaxPool")
      return x;  // exact for a constant; for a distribution, MaxPool's max is estimated by one sample's mean
    if (op == "Cast") {
      const int64_t to = int_attribute(node, "to", 0);
      return to == TensorProto::FLOAT || to == TensorProto::DOUBLE || to == TensorProto::FLOAT16 ? x : Samples{};
    }
    if (op == "BatchNormalization") {
      double g, b, m, var;
      if (!channel_value(param(node, 1, in), entries, g) || !channel_value(param(node, 2, in), entries, b) ||
          !channel_value(param(node, 3, in), entries, m) || !channel_value(param(node, 4, in), entries, var))
        return {};
      Samples v = x;
      // The running statistics describe this input: use them for a channel that varies (a producer's
      // output with non-zero weights, or a value already modelled as a distribution, e.g. after a
      // depthwise Conv) rather than what was propagated to here.
      auto raw = raw_output_.find(node.input(0));
      const bool raw_varies = raw != raw_output_.end() && raw->second == space && !zero_filter_[space][c];
      if (bn_stats_ && (raw_varies || x.size() > 1) && var >= 0) {
        v.clear();
        for (double z : grid().z) v.push_back(m + std::sqrt(var) * z);
      }
      const double scale = g / std::sqrt(var + float_attribute(node, "epsilon", 1e-5f));
      return apply(v, [&](double t) { return (t - m) * scale + b; });
    }
    if (op == "InstanceNormalization") {
      double b;
      return x.size() == 1 && channel_value(param(node, 2, in), entries, b) ? Samples{b} : Samples{};
    }
    if (op == "Conv") {  // depthwise: a constant channel times its filter's sum plus its bias
      const TensorProto* w = graph_.constant(node.input(1));
      if (w == nullptr || entries.size() != 1) return {};
      const auto wv = to_floats(*w);
      const int64_t per = element_count(*w) / w->dims(0);
      double sum = 0;
      for (int64_t i = 0; i < per; ++i) sum += wv[entries[0] * per + i];
      double bias = 0;
      if (node.input_size() > 2 && !node.input(2).empty()) bias = to_floats(*graph_.constant(node.input(2)))[entries[0]];
      return apply(x, [&](double t) { return t * sum + bias; });
    }
    bool ok = true;
    double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
    if (op == "Clip") {
      lo = clip_bound(node, 1, "min", lo, ok);
      hi = clip_bound(node, 2, "max", hi, ok);
    }
    return ok ? apply(x, scalar_op(node, lo, hi)) : Samples{};
  }

  // Add/Sub/Mul/... with a constant (per channel or scalar), or of two channel tensors whose
  // values depend on the same variable (the same space) or are constants.
  void propagate_binary(const NodeProto& node) {
    const std::string& op = node.op_type();
    const auto* out_shape = shape(node.output(0));
    if (!out_shape) return;
    const auto rank = static_cast<int64_t>(out_shape->size());
    auto f = [&](double a, double b) {
      if (op == "Add") return a + b;
      if (op == "Sub") return a - b;
      if (op == "Mul") return a * b;
      if (op == "Div") return a / b;
      if (op == "Max") return std::max(a, b);
      if (op == "Min") return std::min(a, b);
      if (op == "Pow") return std::pow(a, b);
      return a < 0 ? a * b : a;  // PRelu
    };
    auto combine = [&](const Samples& a, const Samples& b) {
      if (a.empty() || b.empty() || (a.size() != 1 && b.size() != 1 && a.size() != b.size())) return Samples{};
      Samples r;
      for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
        const double v = f(a[a.size() == 1 ? 0 : i], b[b.size() == 1 ? 0 : i]);
        if (!std::isfinite(v)) return Samples{};
        r.push_back(v);
      }
      return r;
    };
    const bool first_has = layouts_.count(node.input(0)) != 0, second_has = layouts_.count(node.input(1)) != 0;
    const int main = first_has ? 0 : 1;
    auto it = values_.find(node.input(main));
    if (it == values_.end()) return;
    const Layout& in = layouts_.at(node.input(main));
    const auto in_values = it->second;
    auto& out = values_[node.output(0)];
    if (first_has && second_has) {
      auto jt = values_.find(node.input(1));
      if (jt == values_.end()) return;
      const Layout& other = layouts_.at(node.input(1));
      const auto other_values = jt->second;
      for (size_t i = 0; i < in.segments.size() && i < other.segments.size(); ++i) {
        const int sa = in.segments[i].space, sb = other.segments[i].space;
        if (sa < 0 || !in_values.count(sa) || !other_values.count(sb)) continue;
        const auto &va = in_values.at(sa), &vb = other_values.at(sb);
        auto& result = out[sa];
        for (size_t c = 0; c < va.size(); ++c) {
          const bool related = sa == sb || va[c].size() == 1 || vb[c].size() == 1;
          result.push_back(related && c < vb.size() ? combine(va[c], vb[c]) : Samples{});
        }
      }
      return;
    }
    const Layout& out_layout = layouts_.at(node.output(0));
    const auto constant = per_entry(node.input(1 - main), out_layout, rank);
    for (const auto& [space, channels] : in_values) {
      auto& result = out[space];
      for (size_t c = 0; c < channels.size(); ++c) {
        double k;
        if (!channel_value(constant, entries_of(out_layout, space, static_cast<int64_t>(c)), k)) {
          result.push_back({});
          continue;
        }
        result.push_back(main == 0 ? combine(channels[c], {k}) : combine({k}, channels[c]));
      }
    }
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
    producer_space_[&node] = s;
    for (double v : spaces_[s].score) zero_filter_[s].push_back(v == 0.0);
    raw_output_[node.output(0)] = s;
    // As if its weights were zero, each channel outputs its bias.
    std::vector<float> bias_values(static_cast<size_t>(channels), 0.0f);
    bool per_channel = true;
    if (node.input_size() > 2 && !node.input(2).empty()) {
      const auto b = to_floats(*graph_.constant(node.input(2)));
      if (b.size() == 1) std::fill(bias_values.begin(), bias_values.end(), b[0]);
      else if (static_cast<int64_t>(b.size()) == channels) bias_values = b;
      else per_channel = false;  // a Gemm C with rows
      if (op == "Gemm") {
        const float beta = float_attribute(node, "beta", 1.0f);
        for (auto& v : bias_values) v *= beta;
      }
    }
    auto& out_values = values_[node.output(0)][s];
    for (int64_t c = 0; c < channels; ++c)
      out_values.push_back(per_channel ? Samples{bias_values[c]} : Samples{});
    Layout own{out_axis, {{s, channels, 1}}};
    edits_.push_back({w, out_axis, own, node.input(1)});
    if (!bias.empty()) edits_.push_back({graph_.constant(bias), bias_axis, Layout{bias_axis, own.segments}, bias});
    set_output(node, 0, Layout{out_layout_axis, own.segments});
  }

  std::vector<double> channel_scores(const TensorProto& w, int64_t axis, int64_t channels) {
    std::vector<float> scratch;
    const std::span<const float> values = float_view(w, scratch);
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
  bool bn_stats_;
  std::map<std::string, int> raw_output_;  // producer output -> its space
  std::map<int, std::vector<bool>> zero_filter_;
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

// ---- refit (calibrate=DIR) ----

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMajorD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// At most this many rows (samples x positions) per consumer enter the least squares.
constexpr int64_t kMaxRefitRows = 20000;
// Samples per evaluator run.
constexpr int64_t kRefitBatch = 64;

// A consumer to refit, recorded by names before the rewrite (node pointers do not survive it).
struct RefitJob {
  std::string label, op, input, output, weight;
  std::vector<int64_t> kept_outputs;  // the consumer's own kept output channels; empty: all
  int64_t stride = 0;                 // keep every stride-th row
  std::vector<Eigen::MatrixXf> teacher;  // per batch: sampled rows x kept outputs of the original model
  std::string skip;
};

// Rows (sampled: global index first + r a multiple of stride) x `cols` of a consumer output: Conv
// [N, O, spatial...] as (image, position) rows, Gemm/MatMul [..., O] with every other axis folded.
Eigen::MatrixXf output_rows(const eval::Tensor& y, bool channel_first, std::vector<int64_t> cols, int64_t first,
                            int64_t stride) {
  const int64_t channels = channel_first ? y.dims[1] : y.dims.back();
  const int64_t inner = channel_first ? y.numel() / (y.dims[0] * channels) : 1;
  const int64_t rows = y.numel() / channels;
  if (cols.empty()) {
    cols.resize(static_cast<size_t>(channels));
    std::iota(cols.begin(), cols.end(), 0);
  }
  std::vector<int64_t> kept;
  for (int64_t r = 0; r < rows; ++r)
    if ((first + r) % stride == 0) kept.push_back(r);
  Eigen::MatrixXf out(static_cast<int64_t>(kept.size()), static_cast<int64_t>(cols.size()));
  for (size_t i = 0; i < kept.size(); ++i) {
    const int64_t r = kept[i];
    for (size_t j = 0; j < cols.size(); ++j) {
      const int64_t at = channel_first ? ((r / inner) * channels + cols[j]) * inner + r % inner : r * channels + cols[j];
      out(static_cast<int64_t>(i), static_cast<int64_t>(j)) = y.f[static_cast<size_t>(at)];
    }
  }
  return out;
}

Eigen::MatrixXf sampled_rows(const Eigen::MatrixXf& m, int64_t first, int64_t stride) {
  std::vector<int64_t> kept;
  for (int64_t r = 0; r < m.rows(); ++r)
    if ((first + r) % stride == 0) kept.push_back(r);
  Eigen::MatrixXf out(static_cast<int64_t>(kept.size()), m.cols());
  for (size_t i = 0; i < kept.size(); ++i) out.row(static_cast<int64_t>(i)) = m.row(kept[i]);
  return out;
}

// Teacher outputs of every job on the samples, from the original model.
void collect_teacher(const Model& original, const eval::TensorMap& samples, std::vector<RefitJob>& jobs) {
  std::vector<std::string> values;
  for (const auto& job : jobs) values.push_back(job.output);
  const int64_t n = ActivationProbe::sample_count(samples);
  std::vector<int64_t> seen(jobs.size(), 0);
  const ActivationProbe probe(original, values);
  probe.for_each_batch(samples, kRefitBatch, [&](const eval::TensorMap& acts) {
    for (size_t i = 0; i < jobs.size(); ++i) {
      RefitJob& job = jobs[i];
      if (!job.skip.empty()) continue;
      const eval::Tensor& y = acts.at(job.output);
      if (!y.is_float() || y.dims.size() < 2 || y.numel() == 0) {
        job.skip = "output_not_float";
        continue;
      }
      const bool conv = job.op == "Conv";
      const int64_t batch_rows = y.numel() / (conv ? y.dims[1] : y.dims.back());
      if (job.stride == 0) {
        const int64_t total = n * (batch_rows / y.dims[0]);
        job.stride = std::max<int64_t>(1, (total + kMaxRefitRows - 1) / kMaxRefitRows);
      }
      job.teacher.push_back(output_rows(y, conv, job.kept_outputs, seen[i], job.stride));
      seen[i] += batch_rows;
    }
  });
}

// The bias a refit writes: an existing per-output float constant read only by `reader`, or none.
// Returns false when a bias exists but cannot be rewritten alone.
bool own_bias(Graph& g, const std::string& name, int64_t outputs, TensorProto*& bias) {
  bias = nullptr;
  if (name.empty()) return true;
  TensorProto* b = g.constant(name);
  if (b == nullptr || b->data_type() != TensorProto::FLOAT || g.consumers(name).size() != 1 || g.is_graph_output(name) ||
      g.is_graph_input(name) || element_count(*b) != outputs || b->dims_size() == 0 ||
      b->dims(b->dims_size() - 1) != outputs)
    return false;
  bias = b;
  return true;
}

void set_bias_values(TensorProto& b, const std::vector<float>& values) {
  b = make_float_tensor(b.name(), dims_of(b), values);
}

// Refits one consumer of the (already pruned) model; see the file comment.
void refit_one(Model& model, RefitJob& job, const eval::TensorMap& samples, double ridge, PassStats& stats) {
  auto skip = [&](const std::string& reason) {
    stats.count("refit_skipped." + reason);
    stats.layers.push_back({{"name", job.label}, {"refit_skipped", reason}});
  };
  if (!job.skip.empty()) return skip(job.skip);
  Graph& g = model.graph();
  NodeProto* node = nullptr;
  for (auto& n : *g.proto().mutable_node())
    if (n.op_type() == job.op && n.input_size() > 1 && n.input(0) == job.input && n.input(1) == job.weight) node = &n;
  TensorProto* w = node ? g.constant(job.weight) : nullptr;
  if (w == nullptr || w->data_type() != TensorProto::FLOAT) return skip("weight");
  const bool conv = job.op == "Conv", gemm = job.op == "Gemm";
  const bool trans_b = gemm && int_attribute(*node, "transB", 0) != 0;
  const auto wd = dims_of(*w);
  const int64_t outs = conv || trans_b ? wd[0] : wd[1];
  const int64_t k = static_cast<int64_t>(element_count(*w)) / outs;
  // The bias: Conv B / Gemm C, or the Add after a MatMul that compensation created.
  std::string bias_name;
  if (!gemm && !conv) {
    const NodeProto* p = g.producer(job.output);
    if (p != nullptr && p != node && p->op_type() == "Add" && p->input_size() == 2 && p->input(0) == node->output(0))
      bias_name = p->input(1);
  } else if (node->input_size() > 2) {
    bias_name = node->input(2);
  }
  TensorProto* bias = nullptr;
  if (!own_bias(g, bias_name, outs, bias)) return skip("bias_not_refittable");
  const double alpha = gemm ? float_attribute(*node, "alpha", 1.0f) : 1.0;
  const double beta = gemm ? float_attribute(*node, "beta", 1.0f) : 1.0;

  // Accumulate [X 1]^T [X 1], [X 1]^T Y, |Y|^2 and the error before.
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(k + 1, k + 1), cross = Eigen::MatrixXd::Zero(k + 1, outs);
  double target_sq = 0, before_sq = 0;
  int64_t rows_used = 0, seen = 0;
  size_t batch = 0;
  const ActivationProbe probe(model, {job.input, job.output});
  probe.for_each_batch(samples, kRefitBatch, [&](const eval::TensorMap& acts) {
    if (!job.skip.empty()) return;
    const eval::Tensor& x = acts.at(job.input);
    const eval::Tensor& y = acts.at(job.output);
    if (!x.is_float() || !y.is_float() || batch >= job.teacher.size()) {
      job.skip = "input_not_float";
      return;
    }
    Eigen::MatrixXf rows;
    int64_t batch_rows = 0;
    if (conv) {
      ConvPatches p;
      if (!conv_patches(*node, x.dims, wd, p)) {
        job.skip = "conv_geometry";
        return;
      }
      rows = im2col_rows(x, p, seen, job.stride);
      batch_rows = x.dims[0] * p.positions();
    } else {
      const Eigen::MatrixXf all = as_rows(x);
      rows = sampled_rows(all, seen, job.stride);
      batch_rows = all.rows();
    }
    const Eigen::MatrixXf& teacher = job.teacher[batch++];
    const Eigen::MatrixXf student = output_rows(y, conv, {}, seen, job.stride);
    seen += batch_rows;
    if (rows.cols() != k || rows.rows() != teacher.rows() || teacher.cols() != outs || student.rows() != teacher.rows() ||
        student.cols() != outs) {
      job.skip = "shape_mismatch";
      return;
    }
    Eigen::MatrixXd xa(rows.rows(), k + 1);
    xa.leftCols(k) = rows.cast<double>();
    xa.col(k).setOnes();
    const Eigen::MatrixXd yd = teacher.cast<double>();
    gram.selfadjointView<Eigen::Lower>().rankUpdate(xa.transpose());
    cross += xa.transpose() * yd;
    target_sq += yd.squaredNorm();
    before_sq += (student.cast<double>() - yd).squaredNorm();
    rows_used += rows.rows();
  });
  if (!job.skip.empty()) return skip(job.skip);
  if (rows_used == 0) return skip("no_rows");
  gram = Eigen::MatrixXd(gram.selfadjointView<Eigen::Lower>());

  // theta0: the pruned weights as [W; b] (K+1 x outs), Gemm alpha/beta folded in.
  const std::vector<float> wv = to_floats(*w);
  Eigen::MatrixXd theta0(k + 1, outs);
  if (conv || trans_b)
    theta0.topRows(k) = Eigen::Map<const RowMajorF>(wv.data(), outs, k).cast<double>().transpose() * alpha;
  else
    theta0.topRows(k) = Eigen::Map<const RowMajorF>(wv.data(), k, outs).cast<double>() * alpha;
  theta0.row(k).setZero();
  if (bias != nullptr) {
    const auto bv = to_floats(*bias);
    for (int64_t o = 0; o < outs; ++o) theta0(k, o) = beta * bv[static_cast<size_t>(o)];
  }
  const double mean_diag = k > 0 ? gram.diagonal().head(k).mean() : 0.0;
  const double lambda = ridge * (mean_diag > 0 ? mean_diag : 1.0);
  Eigen::MatrixXd lhs = gram;
  lhs.diagonal().array() += lambda;
  const Eigen::LDLT<Eigen::MatrixXd> ldlt(lhs);
  const Eigen::MatrixXd theta = ldlt.solve(cross + lambda * theta0);
  if (ldlt.info() != Eigen::Success || !theta.allFinite()) return skip("singular");
  const double after_sq = (theta.transpose() * gram * theta).trace() - 2.0 * (theta.transpose() * cross).trace() + target_sq;

  // Write back W (stored layout unchanged) and the bias.
  const Eigen::MatrixXd wt = theta.topRows(k);
  const RowMajorF stored = conv || trans_b ? RowMajorF(wt.transpose().cast<float>()) : RowMajorF(wt.cast<float>());
  *w = make_float_tensor(w->name(), wd, std::vector<float>(stored.data(), stored.data() + stored.size()));
  std::vector<float> b(static_cast<size_t>(outs));
  for (int64_t o = 0; o < outs; ++o) b[static_cast<size_t>(o)] = static_cast<float>(theta(k, o));
  if (gemm) {
    auto* attrs = node->mutable_attribute();
    for (int i = attrs->size() - 1; i >= 0; --i)
      if (attrs->Get(i).name() == "alpha" || attrs->Get(i).name() == "beta") attrs->DeleteSubrange(i, 1);
  }
  if (bias != nullptr) {
    set_bias_values(*bias, b);
  } else {
    const std::string name = model.unique_name(job.output + "_bias");
    g.add_initializer(make_float_tensor(name, {outs}, b));
    if (conv || gemm) {
      if (node->input_size() > 2) node->set_input(2, name);
      else node->add_input(name);
    } else {
      const std::string product = model.unique_name(job.output + "_unbiased");
      NodeProto add;
      add.set_op_type("Add");
      add.set_name(model.unique_name(job.label + "_bias"));
      add.add_input(product);
      add.add_input(name);
      add.add_output(job.output);
      node->set_output(0, product);
      g.add_node(std::move(add));
    }
    g.invalidate();
    g.topological_sort();
  }
  const double before = target_sq > 0 ? std::sqrt(before_sq / target_sq) : 0.0;
  const double after = target_sq > 0 ? std::sqrt(std::max(0.0, after_sq) / target_sq) : 0.0;
  stats.count("refitted");
  stats.layers.push_back({{"name", job.label},
                          {"refit", true},
                          {"refit_rows", rows_used},
                          {"output_relative_error_before", before},
                          {"output_relative_error_after", after}});
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
    OptionSpec estimate{"offset-estimate", OptionSpec::Type::kEnum, "bn-stats",
                        "value a pruned channel is replaced by: bn-stats: the mean of its activation when the "
                        "BatchNormalization after it sees N(running_mean, running_var); zero-weight: its output "
                        "with zero weights (exact for zero filters)"};
    estimate.choices = {"bn-stats", "zero-weight"};
    OptionSpec round_to{"round-to", OptionSpec::Type::kInt, "1", "keep channel counts a multiple of this"};
    round_to.min = 1;
    round_to.max = 4096;
    OptionSpec refit_ridge{"refit-ridge", OptionSpec::Type::kFloat, "1e-3",
                           "calibrate: ridge toward the pruned weights, relative to the mean input energy"};
    refit_ridge.min = 0;
    refit_ridge.max = 1e6;
    return {"prune-channels",
            "remove whole output channels/features with the smallest L1/L2 norm and shrink everything they feed",
            {ratio, scope, max_ratio, criterion, round_to,
             {"compensate", OptionSpec::Type::kBool, "true",
              "fold each pruned channel's expected value into the next layer's bias"},
             estimate,
             {"calibrate", OptionSpec::Type::kSamples, "",
              "directory of <input>.npy samples: refit each consumer of pruned channels by least squares so its "
              "outputs match the original model's on them; empty: no refit"},
             refit_ridge,
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
    // Refit: the consumers and the original model, recorded before anything is rewritten.
    const eval::TensorMap* samples = context.samples("calibrate");
    std::vector<RefitJob> jobs;
    std::unique_ptr<Model> original;
    if (samples != nullptr) {
      original = std::make_unique<Model>(Model::from_proto(model.proto()));
      for (const auto& consumer : planner.consumers_) {
        if (!touches(consumer.layout)) continue;
        const NodeProto& node = *consumer.node;
        RefitJob job{label_of(node), node.op_type(), node.input(0), node.output(0), node.input(1), {}, 0, {}, {}};
        auto own = planner.producer_space_.find(&node);
        if (own != planner.producer_space_.end() && pruned_spaces.count(own->second)) job.kept_outputs = keep[own->second];
        jobs.push_back(std::move(job));
      }
    }
    std::vector<PendingBias> pending;
    if (options.get_bool("compensate"))
      for (const auto& consumer : planner.consumers_)
        if (touches(consumer.layout)) compensate(model, planner, consumer, keep, pruned_spaces, pending, stats);
    for (const auto& e : planner.edits_)
      if (touches(e.layout)) slice_tensor(*e.tensor, e.axis, kept_entries(e.layout, keep));
    for (const auto& p : pending) add_bias(model, planner, p, keep, pruned_spaces);
    for (const auto& [node, layout] : planner.group_edits_) {
      if (!touches(layout)) continue;
      for (auto& a : *node->mutable_attribute())
        if (a.name() == "group") a.set_i(static_cast<int64_t>(kept_entries(layout, keep).size()));
    }
    std::set<std::string> changed;
    for (const auto& [name, layout] : planner.layouts_)
      if (touches(layout)) changed.insert(name);
    for (const auto& e : planner.edits_)
      if (touches(e.layout)) changed.insert(e.value);
    auto* infos = model.graph().proto().mutable_value_info();
    for (int i = infos->size() - 1; i >= 0; --i)
      if (changed.count(infos->Get(i).name())) infos->DeleteSubrange(i, 1);
    model.invalidate();
    if (!pending.empty()) model.graph().topological_sort();
    if (samples != nullptr) {
      try {
        collect_teacher(*original, *samples, jobs);
        for (auto& job : jobs) refit_one(model, job, *samples, options.get_float("refit-ridge"), stats);
      } catch (const Error& e) {
        throw Error(e.code(), std::string("prune-channels: ") + e.what());
      }
    }
    return stats;
  }

 private:
  // A consumer bias to create after slicing: `base` (one value, one per output, or none) + delta.
  struct PendingBias {
    NodeProto* node;
    std::vector<double> delta;
    std::vector<float> base;
  };

  // Adds each pruned channel's expected value times the consumer's weights on it to the consumer's
  // bias: in place when the bias is its own per-output tensor, else queued for add_bias.
  static void compensate(Model& model, Planner& planner, const Consumer& consumer,
                         const std::vector<std::vector<int64_t>>& keep, const std::set<int>& pruned,
                         std::vector<PendingBias>& pending, PassStats& stats) {
    NodeProto& node = *consumer.node;
    const std::string& op = node.op_type();
    const auto w = to_floats(*consumer.weight);
    const auto wd = dims_of(*consumer.weight);
    const bool trans_b = op == "Gemm" && int_attribute(node, "transB", 0) != 0;
    const int64_t outs = op == "Conv" || trans_b ? wd[0] : wd[1];
    const int64_t spatial = op == "Conv" ? static_cast<int64_t>(w.size()) / (wd[0] * wd[1]) : 1;
    auto weight_sum = [&](int64_t o, int64_t e) {
      if (op == "Conv") {
        double sum = 0;
        for (int64_t i = 0; i < spatial; ++i) sum += w[(o * wd[1] + e) * spatial + i];
        return sum;
      }
      return static_cast<double>(trans_b ? w[o * wd[1] + e] : w[e * wd[1] + o]);
    };
    std::vector<double> delta(static_cast<size_t>(outs), 0.0);
    auto values = planner.values_.find(node.input(0));
    bool any = false;
    int64_t offset = 0;
    for (const auto& seg : consumer.layout.segments) {
      if (seg.space >= 0 && pruned.count(seg.space)) {
        const auto& kept = keep[seg.space];
        for (int64_t c = 0; c < seg.channels; ++c) {
          if (std::binary_search(kept.begin(), kept.end(), c)) continue;
          const Samples* v = nullptr;
          if (values != planner.values_.end()) {
            auto it = values->second.find(seg.space);
            if (it != values->second.end() && c < static_cast<int64_t>(it->second.size())) v = &it->second[c];
          }
          if (v == nullptr || v->empty()) {
            stats.count("uncompensated_channels");
            continue;
          }
          stats.count("compensated_channels");
          const double mean = mean_of(*v);
          if (mean == 0.0) continue;
          any = true;
          for (int64_t b = 0; b < seg.block; ++b)
            for (int64_t o = 0; o < outs; ++o) delta[o] += mean * weight_sum(o, offset + c * seg.block + b);
        }
      }
      offset += seg.channels * seg.block;
    }
    if (!any) return;
    if (op == "Gemm") {  // Y = alpha A B + beta C
      const double alpha = float_attribute(node, "alpha", 1.0f), beta = float_attribute(node, "beta", 1.0f);
      if (beta == 0.0) return stats.skip(label_of(node), "compensation_gemm_beta_zero");
      for (auto& d : delta) d *= alpha / beta;
    }
    std::vector<float> base;
    if (op != "MatMul" && node.input_size() > 2 && !node.input(2).empty()) {
      TensorProto* b = model.graph().constant(node.input(2));
      if (b == nullptr || b->data_type() != TensorProto::FLOAT)
        return stats.skip(label_of(node), "compensation_bias_not_float32_constant");
      const int64_t n = element_count(*b);
      if (model.graph().consumers(node.input(2)).size() == 1 && b->dims_size() > 0 &&
          b->dims(b->dims_size() - 1) == outs) {
        auto bv = to_floats(*b);
        for (size_t i = 0; i < bv.size(); ++i) bv[i] = static_cast<float>(bv[i] + delta[i % outs]);
        *b = make_float_tensor(b->name(), dims_of(*b), bv);
        return;
      }
      if (n != 1 && n != outs) return stats.skip(label_of(node), "compensation_bias_shape");
      base = to_floats(*b);
    }
    pending.push_back({&node, std::move(delta), std::move(base)});
  }

  // Creates the queued bias for the consumer's kept outputs: Conv B / Gemm C, or an Add after MatMul.
  static void add_bias(Model& model, Planner& planner, const PendingBias& p,
                       const std::vector<std::vector<int64_t>>& keep, const std::set<int>& pruned) {
    NodeProto& node = *p.node;
    std::vector<int64_t> outputs(p.delta.size());
    std::iota(outputs.begin(), outputs.end(), 0);
    auto own = planner.producer_space_.find(&node);
    if (own != planner.producer_space_.end() && pruned.count(own->second)) outputs = keep[own->second];
    std::vector<float> values;
    for (int64_t o : outputs)
      values.push_back(static_cast<float>((p.base.empty() ? 0.0 : p.base[p.base.size() == 1 ? 0 : o]) + p.delta[o]));
    const std::string name = model.unique_name(node.output(0) + "_bias");
    Graph& g = model.graph();
    g.add_initializer(make_float_tensor(name, {static_cast<int64_t>(values.size())}, values));
    if (node.op_type() == "MatMul") {
      const std::string product = model.unique_name(node.output(0) + "_unbiased");
      NodeProto add;
      add.set_op_type("Add");
      add.set_name(model.unique_name(label_of(node) + "_bias"));
      add.add_input(product);
      add.add_input(name);
      add.add_output(node.output(0));
      node.set_output(0, product);
      g.add_node(std::move(add));
      return;
    }
    const std::string old = node.input_size() > 2 ? node.input(2) : std::string();
    if (node.input_size() > 2) node.set_input(2, name);
    else node.add_input(name);
    g.invalidate();
    if (!old.empty() && g.consumers(old).empty() && g.initializer(old) != nullptr) g.remove_initializer(old);
  }
};

}  // namespace

std::unique_ptr<Pass> make_prune_channels_pass() { return std::make_unique<PruneChannelsPass>(); }

}  // namespace compress
