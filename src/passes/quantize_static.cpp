// quantize-int8 mode=static: calibrated int8 in QDQ form, the layout ONNX Runtime fuses into
// QLinearConv / QLinearMatMul / QGemm / QLinearAdd ... kernels.
//
// Before: X -> Conv(W, B) -> Relu -> Y -> MaxPool -> Z -> Gemm(W2, B2) -> out
// After:  X -> Q -> DQ -> Conv(DQ(Wq), DQ(Bq)) -> Y -> Q -> DQ -> MaxPool -> Z -> Q -> DQ -> Gemm(DQ(W2q), DQ(B2q)) -> out
//
// Activations: uint8 asymmetric, one (scale, zero point) per tensor from its calibrated range widened
// to contain 0: s = (hi - lo) / 255, zp = round(-lo / s) (src/passes/int8_quant.h). Ranges come from
// running the model in the built-in evaluator on the `calibration` samples: minmax (observed min and
// max), percentile or entropy (src/passes/calibration.h, 2048-bin histograms over [-absmax, absmax],
// a second evaluation pass). Weights: symmetric, per output channel (Conv axis 0, MatMul B axis 1,
// Gemm 0 with transB else 1; per tensor with per-channel=false or for MatMul weights that are not 2-D),
// explicit zero points. By default (weight-type=auto = int7) int8 in [-64, 64] with zero point 0, ONNX
// Runtime's reduce_range: its u8 x s8 kernels add pairs of u8*s8 products in int16 with saturation on AVX2
// CPUs without VNNI (see quantize_int8.cpp), and 2 x 255 x 64 < 32768, so the 7-bit form computes the same
// answers on every x86-64 CPU while keeping the fast kernels. The other forms: weight-type=uint8, [1, 255]
// with zero point 128 (exact everywhere too, but ONNX Runtime runs u8 x u8 QLinearConv/QGemm through a
// slower kernel: digits CNN static int8 at batch 32 on an AVX2 EPYC, 1.24x fp32 vs 0.85x for int7,
// BENCHMARKS.md) and weight-type=int8, [-127, 127] with zero point 0 (for VNNI CPUs; saturates on AVX2).
// QLinearConv needs one zero point for all channels; each form has one.
// Biases of Conv and Gemm: int32, scale = x_scale * w_scale[c], zero point 0, as ONNX Runtime's quantizer
// writes them: ONNX Runtime's Conv/Gemm QDQ selectors fuse a node only when every input comes from a
// DequantizeLinear, so a float bias would leave the node in float.
//
// Placement (ONNX Runtime's QDQ quantizer): every float activation input and the output of Conv,
// MatMul, Gemm, Add, Mul, MaxPool, AveragePool, GlobalAveragePool and Concat gets one Q -> DQ pair that
// all its readers share. MaxPool's output reuses its input's parameters (max commutes with the
// quantizer, so ONNX Runtime drops that pair). A Relu, or a Clip with min 0, that is the only reader of
// such an output is folded away: the producer writes the Relu's output, whose range starts at 0, so the
// zero point is 0 and QuantizeLinear's clamp to [0, 255] is the Relu (ONNX Runtime's quantizer does
// the same). Graph inputs are quantized where a quantized op reads them; graph outputs stay float
// (their producer keeps a float output), and so does everything outside the main graph.
//
// BatchNormalization is folded into the layer before it first (src/passes/fold.cpp, counters fold.*):
// ONNX Runtime fuses Conv -> Relu in QDQ form, not Conv -> BatchNormalization -> Relu.
// With a node restriction (`nodes=[...]`) only those layers are quantized, with the BatchNormalization
// and the Relu/Clip that follow each of them (folded as above); activations between two of them share
// one Q/DQ pair, so a plan quantizes all its layers in one invocation.
//
// Skipped (skipped.<reason>): excluded nodes (excluded), Conv/Gemm whose weight is not a constant float
// tensor (weight_not_constant, weight_not_float32), a Conv whose reduction Cin x kernel is under 16
// (reduction_too_short: slower in integer than in float, see kMinConvReduction), a weight shared by readers that disagree on the
// channel axis (shared_axis_conflict), tensors whose calibrated values are not float32 (not_float32).
// Constant operands of Add/Mul/Concat stay float (constant_operand_float); a bias that is not a constant
// float vector of the output channel count, or whose input is not quantized, stays float (bias_float).
//
// Self-check (self-check=true): after the rewrite the QDQ model runs in the evaluator on the calibration
// samples and each float graph output is compared with the float model's (recorded during calibration):
// layers of kind "output_check" (cosine, snr_db, max_abs_err), counters self_check_outputs and
// self_check_failed, and a warning when a cosine is below 0.99. Per-tensor uint8 activations can be
// far too coarse for a model whose channels differ in range by 100x (re-parameterised nets without BN,
// such as PP-OCRv4 det's PP-LCNetV3: small channels quantize to noise and depthwise convs amplify it),
// and that is not visible in the calibrated ranges, only in the outputs.
//
// Options: calibration (samples directory, required), method (minmax | percentile | entropy),
// percentile (99.999), per-channel (true), weight-type (auto = int7), reduce-range (7-bit weights of any
// weight-type), self-check (true), exclude ([]).
#include "passes/quantize_static.h"

#include <compress/error.h>
#include <compress/evaluator.h>
#include <compress/tensor.h>
#include <compress/verify.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "passes/activation_probe.h"
#include "passes/calibration.h"
#include "passes/error_metrics.h"
#include "passes/fold.h"
#include "passes/int8_quant.h"
#include "passes/weights.h"
#include "report/layer_name.h"

namespace compress {

namespace {

// The self-check warns when an output's cosine to the float model falls below this.
constexpr double kSelfCheckMinCosine = 0.99;

const std::set<std::string> kQuantizedOps = {"Conv",    "MatMul",      "Gemm",        "Add",
                                             "Mul",     "MaxPool",     "AveragePool", "GlobalAveragePool",
                                             "Concat"};

// A Conv (group 1) whose reduction Cin x kernel is shorter than this stays float: ONNX Runtime's
// QLinearConv pads and packs it for an integer GEMM that costs more than the float kernel (digits CNN
// conv1, 1 x 3 x 3, batch 32, ORT 1.30 on an AVX2 EPYC: 123 us int8 vs 23 us float, ORT profiler).
constexpr int64_t kMinConvReduction = 16;

// Samples per evaluator run during calibration (fewer when the model fixes its batch).
constexpr int64_t kCalibrationBatch = 32;

std::string label(const NodeProto& node) { return node.name().empty() ? node.op_type() : node.name(); }

struct WeightPlan {
  const TensorProto* tensor = nullptr;
  std::string value;
  int64_t axis = -1;
  std::vector<std::pair<NodeProto*, int>> readers;
  // Filled when applied.
  std::string dequantized;
  std::vector<float> scales;
};

struct BiasPlan {
  NodeProto* node = nullptr;
  const TensorProto* tensor = nullptr;
  std::string value;
  std::string activation;  // the node's input 0, whose scale the bias scale multiplies
  size_t weight = 0;       // index into the weight plans
};

struct Plan {
  std::vector<std::string> tensors;  // activations to quantize, first-seen order
  std::map<std::string, std::string> same_as;  // MaxPool output -> its input
  std::vector<std::pair<NodeProto*, NodeProto*>> folds;  // (producer, Relu/Clip)
  std::vector<WeightPlan> weights;
  std::vector<BiasPlan> biases;
};

struct Range {
  bool is_float = true;
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  Histogram histogram;
};

bool is_zero_scalar(Graph& g, const std::string& value) {
  const TensorProto* t = g.constant(value);
  if (t == nullptr || element_count(*t) != 1) return false;
  return to_floats(*t)[0] == 0.0f;
}

Plan select(Graph& g, const PassContext& context, bool per_channel, PassStats& stats) {
  Plan plan;
  std::unordered_set<std::string> marked;
  auto mark = [&](const std::string& value) {
    if (!value.empty() && marked.insert(value).second) plan.tensors.push_back(value);
  };
  std::unordered_map<const TensorProto*, size_t> weight_index;
  for (NodeProto& node : *g.proto().mutable_node()) {
    const std::string& op = node.op_type();
    if (!kQuantizedOps.count(op) || !(node.domain().empty() || node.domain() == "ai.onnx")) continue;
    const std::string name = label(node);
    if (context.is_excluded(node)) {
      stats.skip(name, "excluded");
      continue;
    }
    const bool has_weight = op == "Conv" || op == "Gemm" || (op == "MatMul" && g.constant(node.input(1)) != nullptr);
    const TensorProto* w = nullptr;
    int64_t axis = -1;
    if (has_weight) {
      w = g.constant(node.input(1));
      if (w == nullptr) {
        stats.skip(name, "weight_not_constant");
        continue;
      }
      if (w->data_type() != TensorProto::FLOAT) {
        stats.skip(name, "weight_not_float32");
        continue;
      }
      if (op == "Conv" && int_attribute(node, "group", 1) == 1 && w->dims_size() >= 2) {
        int64_t reduction = 1;
        for (int d = 1; d < w->dims_size(); ++d) reduction *= w->dims(d);
        if (reduction < kMinConvReduction) {
          stats.skip(name, "reduction_too_short");
          continue;
        }
      }
      if (per_channel) {
        if (op == "Conv") axis = 0;
        if (op == "Gemm") axis = int_attribute(node, "transB", 0) != 0 ? 0 : 1;
        if (op == "MatMul" && w->dims_size() == 2) axis = 1;
      }
      auto found = weight_index.find(w);
      if (found != weight_index.end() && plan.weights[found->second].axis != axis) {
        stats.skip(name, "shared_axis_conflict");
        continue;
      }
    }
    // Activation inputs.
    const int activation_inputs = (op == "Conv" || op == "Gemm") ? 1 : node.input_size();
    for (int k = 0; k < activation_inputs; ++k) {
      const std::string& in = node.input(k);
      if (in.empty() || (has_weight && k == 1)) continue;
      if (g.constant_in_scope(in) != nullptr) {
        stats.count("constant_operand_float");
        continue;
      }
      mark(in);
    }
    if (!g.is_graph_output(node.output(0))) {
      mark(node.output(0));
      if (op == "MaxPool") plan.same_as[node.output(0)] = node.input(0);
    }
    if (!has_weight) continue;
    auto [it, inserted] = weight_index.emplace(w, plan.weights.size());
    if (inserted) {
      WeightPlan wp;
      wp.tensor = w;
      wp.value = node.input(1);
      wp.axis = axis;
      plan.weights.push_back(std::move(wp));
    }
    plan.weights[it->second].readers.push_back({&node, 1});
    if (node.input_size() > 2 && !node.input(2).empty()) {
      const TensorProto* b = g.constant(node.input(2));
      int64_t channels = w->dims_size() > 0 ? w->dims(0) : 0;
      if (op == "Gemm" && w->dims_size() == 2) channels = int_attribute(node, "transB", 0) != 0 ? w->dims(0) : w->dims(1);
      if (b == nullptr || b->data_type() != TensorProto::FLOAT || b->dims_size() != 1 || b->dims(0) != channels) {
        stats.count("bias_float");
      } else {
        plan.biases.push_back({&node, b, node.input(2), node.input(0), it->second});
      }
    }
  }

  // Fold a Relu / Clip(min 0) that is the only reader of a quantized output.
  for (std::string& t : plan.tensors) {
    NodeProto* producer = g.producer(t);
    if (producer == nullptr || !kQuantizedOps.count(producer->op_type()) || producer->op_type() == "MaxPool") continue;
    if (producer->output(0) != t) continue;
    const auto& uses = g.consumers(t);
    if (uses.size() != 1 || uses[0].input_index != 0) continue;
    NodeProto* act = uses[0].node;
    const bool relu = act->op_type() == "Relu";
    const bool clip0 = act->op_type() == "Clip" && act->input_size() >= 2 && is_zero_scalar(g, act->input(1)) &&
                       (act->input_size() < 3 || act->input(2).empty() || g.constant(act->input(2)) != nullptr);
    if (!(relu || clip0) || context.is_excluded(*act) || g.is_graph_output(act->output(0))) continue;
    plan.folds.push_back({producer, act});
    t = act->output(0);
  }
  // A folded activation may also be read by a quantized op: keep the first mention only.
  std::unordered_set<std::string> seen;
  std::vector<std::string> unique;
  for (const auto& t : plan.tensors)
    if (seen.insert(t).second) unique.push_back(t);
  plan.tensors = std::move(unique);
  return plan;
}

// Appends the rows of `rows` to `into` along axis 0 (empty `into`: a copy).
void append_rows(eval::Tensor& into, const eval::Tensor& rows) {
  if (into.dims.empty()) {
    into = rows;
    return;
  }
  into.dims[0] += rows.dims.empty() ? 0 : rows.dims[0];
  into.f.insert(into.f.end(), rows.f.begin(), rows.f.end());
  into.i.insert(into.i.end(), rows.i.begin(), rows.i.end());
}

// Runs a copy of the model whose outputs include every tensor to calibrate, once for min/max and,
// for the histogram methods, a second time with histograms over [-absmax, absmax]. The float
// model's own outputs over all samples go to `reference` (for the self-check).
std::vector<Range> calibrate(const Model& model, const std::vector<std::string>& tensors, const eval::TensorMap& samples,
                             bool histograms, int64_t& sample_count, eval::TensorMap& reference) {
  const ActivationProbe probe(model, tensors);
  sample_count = ActivationProbe::sample_count(samples);
  if (sample_count <= 0) throw Error(ExitCode::kUsage, "quantize-int8: calibration has no samples");
  std::vector<Range> ranges(tensors.size());
  bool first_sweep = true;
  auto sweep = [&](const auto& visit) {
    probe.for_each_batch(samples, kCalibrationBatch, [&](const eval::TensorMap& values) {
      for (size_t k = 0; k < tensors.size(); ++k) visit(ranges[k], values.at(tensors[k]));
      if (first_sweep)
        for (const auto& o : model.proto().graph().output())
          if (auto r = values.find(o.name()); r != values.end()) append_rows(reference[o.name()], r->second);
    });
    first_sweep = false;
  };
  sweep([](Range& range, const eval::Tensor& v) {
    if (v.dtype != TensorProto::FLOAT) {
      range.is_float = false;
      return;
    }
    for (float x : v.f) {
      if (!std::isfinite(x)) continue;
      range.lo = std::min(range.lo, static_cast<double>(x));
      range.hi = std::max(range.hi, static_cast<double>(x));
    }
  });
  if (histograms) {
    for (Range& range : ranges)
      if (range.is_float && range.lo <= range.hi)
        range.histogram = Histogram(std::max(std::abs(range.lo), std::abs(range.hi)), kCalibrationBins);
    sweep([](Range& range, const eval::Tensor& v) {
      if (!range.histogram.counts.empty()) range.histogram.add(v.f);
    });
  }
  return ranges;
}

// Runs the rewritten model on the calibration samples and compares each float output with the float
// model's (recorded while calibrating): one "output_check" layer per output, a warning below
// kSelfCheckMinCosine.
void self_check(const Model& model, const eval::TensorMap& samples, int64_t sample_count, const eval::TensorMap& reference,
                PassStats& stats) {
  const ActivationProbe probe(model, {});
  eval::TensorMap candidate;
  probe.for_each_batch(samples, kCalibrationBatch, [&](const eval::TensorMap& values) {
    for (const auto& [name, value] : values)
      if (reference.count(name)) append_rows(candidate[name], value);
  });
  auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  for (const auto& [name, ref] : reference) {
    auto c = candidate.find(name);
    if (!ref.is_float() || c == candidate.end() || !c->second.is_float() || c->second.numel() != ref.numel()) continue;
    const OutputMetrics m = compare_outputs(ref, c->second);
    stats.layers.push_back({{"name", name},
                            {"kind", "output_check"},
                            {"samples", sample_count},
                            {"cosine", number(m.cosine)},
                            {"snr_db", number(m.snr_db)},
                            {"max_abs_err", number(m.max_abs_err)}});
    stats.count("self_check_outputs");
    if (!(m.cosine >= kSelfCheckMinCosine)) {
      char text[96];
      std::snprintf(text, sizeof(text), "has cosine %.4f (below %.2f)", m.cosine, kSelfCheckMinCosine);
      stats.warnings.push_back("self-check: output '" + name + "' " + text + " vs the float model on the " +
                               std::to_string(sample_count) +
                               " calibration samples: per-tensor uint8 activations lose this model's accuracy; try "
                               "method=percentile or entropy, exclude the sensitive layers, or mode=dynamic");
      stats.count("self_check_failed");
    }
  }
}

void remove_if_unused(Graph& g, const std::string& value) {
  if (!g.consumers(value).empty() || g.is_graph_output(value)) return;
  if (g.initializer(value) != nullptr) {
    g.remove_initializer(value);
    return;
  }
  NodeProto* producer = g.producer(value);
  if (producer != nullptr && producer->op_type() == "Constant") g.remove_nodes({producer});
}

NodeProto make_node(Model& model, const std::string& op, const std::string& base, std::vector<std::string> inputs,
                    std::string output, int64_t axis = -1) {
  NodeProto n;
  n.set_op_type(op);
  n.set_name(model.unique_name(base));
  for (auto& i : inputs) n.add_input(std::move(i));
  n.add_output(std::move(output));
  if (axis >= 0) {
    auto* a = n.add_attribute();
    a->set_name("axis");
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(axis);
  }
  return n;
}

// Under a node restriction (`nodes=[conv1]`, as compress auto plans), what follows a chosen layer and
// belongs in its fused kernel is chosen with it: a BatchNormalization right after it (folded first:
// exact in float, and left in place it would keep ONNX Runtime from fusing the quantized layer with its
// activation), then a Relu or Clip that is the only reader (folded as without a restriction). An
// unnamed layer is known after the BN fold by the name the fold gives it: "<op>:<BN output>", Gemm for
// a MatMul.
PassContext with_followers_of_chosen_layers(Graph& g, const PassContext& context) {
  static const std::set<std::string> kFoldInto = {"Conv", "ConvTranspose", "Gemm", "MatMul"};
  std::vector<std::string> more;
  const auto only_reader = [&](const std::string& value) -> const NodeProto* {
    const auto& uses = g.consumers(value);
    return uses.size() == 1 && !g.is_graph_output(value) ? uses[0].node : nullptr;
  };
  for (const NodeProto& layer : g.proto().node()) {
    if (!kQuantizedOps.count(layer.op_type()) || layer.output_size() == 0 || context.is_excluded(layer)) continue;
    const NodeProto* next = only_reader(layer.output(0));
    if (next != nullptr && next->op_type() == "BatchNormalization" && kFoldInto.count(layer.op_type())) {
      more.push_back(layer_name(*next, ""));
      if (layer.name().empty())
        more.push_back((layer.op_type() == "MatMul" ? std::string("Gemm") : layer.op_type()) + ":" + next->output(0));
      next = next->output_size() > 0 ? only_reader(next->output(0)) : nullptr;
    }
    if (next != nullptr && (next->op_type() == "Relu" || next->op_type() == "Clip")) more.push_back(layer_name(*next, ""));
  }
  return context.with_nodes(more);
}

}  // namespace

PassStats quantize_int8_static(Model& model, const PassContext& context) {
  const eval::TensorMap* samples = context.samples("calibration");
  if (samples == nullptr)
    throw Error(ExitCode::kUsage,
                "quantize-int8: mode=static needs calibration=DIR (one <input-name>.npy per model input, samples on axis 0)");
  const auto& options = context.options();
  const std::string method = options.get_string("method");
  const double percentile = options.get_float("percentile");
  const bool per_channel = options.get_bool("per-channel");

  PassStats stats;
  if (model.opset("") < 13) {
    const int64_t original = model.opset("");
    model.require_opset("", 13);  // per-axis DequantizeLinear
    stats.warnings.push_back("raised the default opset from " + std::to_string(original) + " to 13");
  }
  if (model.all_graphs().size() > 1)
    stats.warnings.push_back("nodes inside If/Loop/Scan subgraphs stay float (static quantization covers the main graph)");
  // BatchNormalization between a Conv and its activation blocks ONNX Runtime's QDQ fusion: fold first.
  const PassContext restricted = with_followers_of_chosen_layers(model.graph(), context);
  fold_model(model, restricted, FoldSteps{}, stats, "fold.");

  Graph& g = model.graph();
  Plan plan = select(g, restricted, per_channel, stats);
  if (plan.tensors.empty() && plan.weights.empty()) return stats;

  int64_t sample_count = 0;
  eval::TensorMap reference;
  const std::vector<Range> ranges = calibrate(model, plan.tensors, *samples, method != "minmax", sample_count, reference);
  stats.count("calibration_samples", sample_count);

  // Activation parameters.
  const Int8Grid act_grid = int8_grid(false, false, false);
  std::map<std::string, QuantParams> params;
  std::vector<std::string> quantized;
  for (size_t k = 0; k < plan.tensors.size(); ++k) {
    const std::string& t = plan.tensors[k];
    const Range& r = ranges[k];
    if (!r.is_float) {
      stats.skip(t, "not_float32");
      continue;
    }
    const double lo = r.lo <= r.hi ? r.lo : 0.0, hi = r.lo <= r.hi ? r.hi : 0.0;
    std::pair<double, double> range{lo, hi};
    if (method == "percentile" && !r.histogram.counts.empty()) range = percentile_range(r.histogram, percentile, lo, hi);
    if (method == "entropy" && !r.histogram.counts.empty()) range = entropy_range(r.histogram, lo, hi);
    QuantParams p = choose_params(static_cast<float>(range.first), static_cast<float>(range.second), false, act_grid);
    auto same = plan.same_as.find(t);
    if (same != plan.same_as.end() && params.count(same->second)) p = params.at(same->second);
    params[t] = p;
    quantized.push_back(t);
    stats.layers.push_back({{"name", t},
                            {"kind", "activation"},
                            {"min", lo},
                            {"max", hi},
                            {"range_min", range.first},
                            {"range_max", range.second},
                            {"scale", p.scale},
                            {"zero_point", p.zero_point}});
  }

  // Activations: every reader reads the dequantized value; the producer keeps the float one.
  for (const std::string& t : quantized) {
    const QuantParams& p = params.at(t);
    const std::string scale = model.unique_name(t + "_scale"), zp = model.unique_name(t + "_zero_point");
    const std::string q = model.unique_name(t + "_quantized"), dq = model.unique_name(t + "_dequantized");
    g.add_initializer(make_float_tensor(scale, {}, std::vector<float>{p.scale}));
    g.add_initializer(make_uint8_tensor(zp, {}, std::vector<uint8_t>{static_cast<uint8_t>(p.zero_point)}));
    g.replace_all_uses(t, dq);
    g.add_node(make_node(model, "QuantizeLinear", t + "_QuantizeLinear", {t, scale, zp}, q));
    g.add_node(make_node(model, "DequantizeLinear", t + "_DequantizeLinear", {q, scale, zp}, dq));
    stats.count("activations_quantized");
  }

  // Weights: symmetric, explicit zero points; int7 (int8 in [-64, 64]) unless weight-type says otherwise.
  const std::string weight_type = options.get_string("weight-type");
  const bool signed_weights = weight_type != "uint8";
  const bool seven_bit = weight_type == "int7" || weight_type == "auto" || options.get_bool("reduce-range");
  const Int8Grid weight_grid = int8_grid(true, signed_weights, seven_bit);
  for (WeightPlan& wp : plan.weights) {
    std::vector<float> scratch;
    const std::span<const float> w = float_view(*wp.tensor, scratch);
    const std::vector<int64_t> dims(wp.tensor->dims().begin(), wp.tensor->dims().end());
    QuantizedWeight qw = quantize_weight(w, dims, wp.axis, true, weight_grid);
    for (const auto& p : qw.params) wp.scales.push_back(p.scale);
    const std::vector<int64_t> param_dims =
        wp.axis >= 0 ? std::vector<int64_t>{static_cast<int64_t>(wp.scales.size())} : std::vector<int64_t>{};
    const std::string qname = model.unique_name(wp.value + "_quantized"), sname = model.unique_name(wp.value + "_scale");
    const std::string zname = model.unique_name(wp.value + "_zero_point");
    wp.dequantized = model.unique_name(wp.value + "_dequantized");
    const std::vector<int32_t> zero_points(wp.scales.size(), (weight_grid.qmin + weight_grid.qmax) / 2);
    g.add_initializer(make_raw_tensor(qname, signed_weights ? TensorProto::INT8 : TensorProto::UINT8, dims,
                                      std::move(qw.bytes)));
    g.add_initializer(make_float_tensor(sname, param_dims, wp.scales));
    g.add_initializer(make_8bit_tensor(zname, param_dims, zero_points, signed_weights));
    g.add_node(make_node(model, "DequantizeLinear", wp.value + "_DequantizeLinear", {qname, sname, zname},
                         wp.dequantized, wp.axis));
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& [node, index] : wp.readers) {
      g.set_input(*node, index, wp.dequantized);
      nodes.push_back(label(*node));
    }
    const ReconstructionError& err = qw.error;
    const auto [smin, smax] = std::minmax_element(wp.scales.begin(), wp.scales.end());
    stats.layers.push_back({{"name", wp.value},
                            {"kind", "weight"},
                            {"nodes", nodes},
                            {"axis", wp.axis >= 0 ? nlohmann::json(wp.axis) : nlohmann::json(nullptr)},
                            {"channels", static_cast<int64_t>(wp.scales.size())},
                            {"scale_min", *smin},
                            {"scale_max", *smax},
                            {"sqnr_db", std::isfinite(err.sqnr_db) ? nlohmann::json(err.sqnr_db) : nlohmann::json(nullptr)}});
    stats.count("weights_quantized");
  }

  // Biases: int32, scale = x_scale * w_scale[c], zero point 0.
  for (const BiasPlan& bp : plan.biases) {
    auto x = params.find(bp.activation);
    if (x == params.end()) {
      stats.count("bias_float");
      continue;
    }
    const std::vector<float> b = to_floats(*bp.tensor);
    const WeightPlan& wp = plan.weights[bp.weight];
    std::vector<float> scales(b.size());
    std::string raw(b.size() * 4, '\0'), zeros(b.size() * 4, '\0');
    for (size_t c = 0; c < b.size(); ++c) {
      scales[c] = x->second.scale * wp.scales[wp.scales.size() == 1 ? 0 : c];
      const double q = std::nearbyint(static_cast<double>(b[c]) / scales[c]);
      const auto v = static_cast<int32_t>(std::clamp(q, -2147483648.0, 2147483647.0));
      for (int k = 0; k < 4; ++k) raw[c * 4 + static_cast<size_t>(k)] = static_cast<char>((static_cast<uint32_t>(v) >> (8 * k)) & 0xff);
    }
    const auto channels = static_cast<int64_t>(b.size());
    const std::string qname = model.unique_name(bp.value + "_quantized"), sname = model.unique_name(bp.value + "_scale");
    const std::string zname = model.unique_name(bp.value + "_zero_point"), dq = model.unique_name(bp.value + "_dequantized");
    g.add_initializer(make_raw_tensor(qname, TensorProto::INT32, {channels}, std::move(raw)));
    g.add_initializer(make_float_tensor(sname, {channels}, scales));
    g.add_initializer(make_raw_tensor(zname, TensorProto::INT32, {channels}, std::move(zeros)));
    g.add_node(make_node(model, "DequantizeLinear", bp.value + "_DequantizeLinear", {qname, sname, zname}, dq, 0));
    g.set_input(*bp.node, 2, dq);
    stats.count("biases_quantized");
  }

  // Folds last: the producer writes the Relu's output and the Relu goes.
  std::unordered_set<const NodeProto*> folded;
  std::vector<std::string> clip_bounds;  // min/max constants of folded Clips, unused once they go
  for (const auto& [producer, act] : plan.folds) {
    if (!params.count(act->output(0))) continue;  // not quantized after all: keep the Relu
    producer->set_output(0, act->output(0));
    folded.insert(act);
    for (int i = 1; i < act->input_size(); ++i)
      if (!act->input(i).empty()) clip_bounds.push_back(act->input(i));
    stats.count("activations_folded");
  }
  g.remove_nodes(folded);
  model.invalidate();
  for (const auto& bound : clip_bounds) remove_if_unused(g, bound);
  for (const WeightPlan& wp : plan.weights) remove_if_unused(g, wp.value);
  for (const BiasPlan& bp : plan.biases) remove_if_unused(g, bp.value);
  g.topological_sort();
  if (options.get_bool("self-check")) self_check(model, *samples, sample_count, reference, stats);
  return stats;
}

}  // namespace compress
