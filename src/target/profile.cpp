// Target profiles: parsing, the built-in ones (targets/*.json, embedded at build time so the single
// binary needs no file), and the per-layer latency prediction.
//
// The model is linear, nn-Meter style: a layer costs the sum of its terms times the profile's cost
// per unit. Terms by how the target executes the layer's format:
// - Conv/ConvTranspose ("conv") and MatMul/Gemm ("gemm"): "<kind>.<format>.mac" per MAC, format
//   fp32, fp16 (float16 compute), qdq (activation and weight DequantizeLinear fused into an integer
//   kernel, on profiles with qdq_fused), integer (ConvInteger/MatMulInteger), nbits (MatMulNBits,
//   plus "gemm.nbits.weight" per weight element), dq (float compute on int8/int4 weights behind a
//   DequantizeLinear the target does not fuse: its own MAC cost plus "weight_dequantize.element" per
//   weight element, as ONNX Runtime CPU rebuilds the float weight every run and never constant-folds
//   a DequantizeLinear), fp16w (float16 weights Cast to float32). Integer weights of uint8 use ".u8".
// - activation QuantizeLinear/DequantizeLinear that the target fuses cost nothing (no node either);
//   otherwise "quantize.element" per element. DynamicQuantizeLinear: "quantize.dynamic.element".
//   On a fusing profile an activation QuantizeLinear at the edge of a channels-last integer region
//   (see layout_transposes) adds the Transpose the runtime inserts there: "layout.transpose" per
//   Transpose and "layout.transpose.element" per element.
// - on a fusing profile (qdq_fused), element-wise epilogues the runtime folds into the kernel before
//   them cost nothing: a bias Add or activation after a float Conv/MatMul/Gemm, a
//   BatchNormalization after a float Conv, an activation after a BatchNormalization that a Cast
//   keeps from the float Conv before it (ONNX Runtime runs that BatchNormalization as an NCHWc conv
//   of its own).
// - on a fusing profile, a float16 <-> float32 Cast whose float16 side is a node the runtime computes
//   in float32 costs nothing: ONNX Runtime CPU has no float16 kernel for it, inserts the opposite Cast
//   and removes the pair (see float_casts). A BatchNormalization behind such a Cast is not folded.
// - on a fusing profile, DynamicQuantizeLinear -> MatMulInteger (constant weights) -> Cast -> Mul ->
//   bias Add, with the Mul of the two scales, is one node (ONNX Runtime's DynamicQuantizeMatMul): the
//   DynamicQuantizeLinear keeps its per-element cost, the rest costs nothing, an activation after it
//   runs. ConvInteger has no such fusion: its DynamicQuantizeLinear, scale Muls, Cast and Add all run.
// - any other layer with FLOPs: "elementwise.element" per FLOP; every executed layer "node"; every
//   model "session" (the fixed cost of one run).
// A term the profile has no cost for costs nothing; the fit script lists every term it saw.
#include <compress/error.h>
#include <compress/target.h>
#include <compress/tensor.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/attributes.h"
#include "report/layer_name.h"

namespace compress {

namespace {

const char* const kBuiltinTargets[] = {
#include "builtin_targets.inc"
};

std::vector<TargetProfile> load_builtins() {
  std::vector<TargetProfile> out;
  for (const char* text : kBuiltinTargets) out.push_back(TargetProfile::from_json(nlohmann::json::parse(text)));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

const std::vector<TargetProfile>& builtins() {
  static const std::vector<TargetProfile> profiles = load_builtins();
  return profiles;
}

bool is_compute(const std::string& op) { return op == "Conv" || op == "ConvTranspose" || op == "MatMul" || op == "Gemm"; }

// The main graph's nodes by the layer names compute_stats gives them, plus producers and readers.
struct GraphIndex {
  std::unordered_map<std::string, const onnx::NodeProto*> by_layer;
  std::unordered_map<std::string, const onnx::NodeProto*> producer;
  std::unordered_map<std::string, std::vector<const onnx::NodeProto*>> readers;
  std::unordered_map<std::string, const onnx::TensorProto*> constants;

  explicit GraphIndex(const onnx::GraphProto& g) {
    for (int i = 0; i < g.node_size(); ++i) {
      const auto& n = g.node(i);
      by_layer[layer_name(n, "")] = &n;  // the report's layer names (src/report/layer_name.h)
      for (const auto& o : n.output()) producer[o] = &n;
      for (const auto& in : n.input()) readers[in].push_back(&n);
      if (n.op_type() == "Constant")
        for (const auto& a : n.attribute())
          if (a.name() == "value" && a.has_t()) constants[n.output(0)] = &a.t();
    }
    for (const auto& t : g.initializer()) constants[t.name()] = &t;
  }
  const onnx::NodeProto* made_by(const std::string& v, const std::string& op) const {
    auto it = producer.find(v);
    return it != producer.end() && it->second->op_type() == op ? it->second : nullptr;
  }
  // A DequantizeLinear of a non-constant: an activation in QDQ form.
  bool activation_dq(const std::string& v) const {
    const auto* dq = made_by(v, "DequantizeLinear");
    return dq != nullptr && !constants.count(dq->input(0));
  }
  // The stored dtype of a weight behind DequantizeLinear (or read directly), 0 when unknown.
  int32_t weight_dtype(const std::string& v) const {
    if (auto it = constants.find(v); it != constants.end()) return it->second->data_type();
    if (const auto* dq = made_by(v, "DequantizeLinear"))
      if (auto it = constants.find(dq->input(0)); it != constants.end()) return it->second->data_type();
    return 0;
  }
  // A DynamicQuantizeLinear that only MatMulIntegers with constant weights read: ONNX Runtime fuses
  // it with them into DynamicQuantizeMatMul (checked on the grid's dynamic MatMul, Gemm and MLP
  // block; its dynamic Convs keep every node).
  bool feeds_dynamic_matmul(const onnx::NodeProto& dql) const {
    auto r = readers.find(dql.output(0));
    return r != readers.end() && !r->second.empty() &&
           std::all_of(r->second.begin(), r->second.end(), [&](const onnx::NodeProto* m) {
             return m->op_type() == "MatMulInteger" && m->input_size() > 1 && constants.count(m->input(1)) &&
                    m->input(0) == dql.output(0);
           });
  }
  // A node that DynamicQuantizeMatMul absorbs: the Mul of the input's and the weights' scales, and
  // the Cast, Mul and bias Add after the MatMulInteger.
  bool in_dynamic_matmul(const onnx::NodeProto& n, int depth = 0) const {
    if (depth > 4 || (n.op_type() != "Cast" && n.op_type() != "Mul" && n.op_type() != "Add")) return false;
    for (const auto& in : n.input()) {
      const onnx::NodeProto* dql = made_by(in, "DynamicQuantizeLinear");
      if (dql != nullptr && n.op_type() == "Mul" && dql->output_size() > 1 && in == dql->output(1) && feeds_dynamic_matmul(*dql))
        return true;
      auto it = producer.find(in);
      auto r = readers.find(in);
      if (it == producer.end() || r == readers.end() || r->second.size() != 1) continue;
      const onnx::NodeProto& p = *it->second;
      if (p.op_type() == "MatMulInteger") {
        const onnx::NodeProto* q = made_by(p.input(0), "DynamicQuantizeLinear");
        if (n.op_type() == "Cast" && q != nullptr && feeds_dynamic_matmul(*q)) return true;
      } else if (n.op_type() != "Cast" && p.op_type() != "Add" && in_dynamic_matmul(p, depth + 1)) {
        return true;
      }
    }
    return false;
  }
  // An element-wise node the runtime folds into the kernel before it (ONNX Runtime: a constant bias Add and an activation after a float Conv/MatMul/Gemm become FusedConv/FusedGemm;
  // a BatchNormalization after a float Conv is folded into its weights at load).
  bool epilogue(const onnx::NodeProto& n, int depth = 0) const {
    static const std::set<std::string> kActivation = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid"};
    if (kActivation.count(n.op_type()) && n.input_size() > 0) {
      const onnx::NodeProto* p = through_free_casts(n.input(0));
      const onnx::NodeProto* c = p != nullptr && p->op_type() == "BatchNormalization" ? through_free_casts(p->input(0)) : nullptr;
      if (c != nullptr && c->op_type() == "Conv" && !fused(*c) && !epilogue(*p, depth + 1)) return true;
    }
    static const std::set<std::string> kEpilogue = {"Cast",    "Mul",         "Add",
                                                    "Relu",    "Clip",        "LeakyRelu",
                                                    "Sigmoid", "HardSigmoid", "BatchNormalization"};
    if (depth > 4 || !kEpilogue.count(n.op_type()) || n.input_size() == 0) return false;
    for (const auto& in : n.input()) {
      auto it = producer.find(in);
      if (it == producer.end()) continue;
      const onnx::NodeProto& p = *it->second;
      auto r = readers.find(in);
      if (r == readers.end() || r->second.size() != 1) continue;
      if ((p.op_type() == "Conv" || p.op_type() == "MatMul" || p.op_type() == "Gemm") && !fused(p) &&
          n.op_type() != "Cast" && n.op_type() != "Mul" && (n.op_type() != "BatchNormalization" || p.op_type() == "Conv"))
        return true;
      if (epilogue(p, depth + 1)) return true;
    }
    return false;
  }
  // The producer of `v`, looking through the float Casts the runtime removes.
  const onnx::NodeProto* through_free_casts(const std::string& v) const {
    auto it = producer.find(v);
    for (int depth = 0; it != producer.end() && free_casts.count(it->second) && depth < 4; ++depth)
      it = producer.find(it->second->input(0));
    return it == producer.end() ? nullptr : it->second;
  }
  // Float Casts that cost nothing (see float_casts); filled by predict_latency, which knows dtypes.
  std::unordered_set<const onnx::NodeProto*> free_casts;
  // A node that runs inside an integer kernel on a QDQ-fusing target: its data input comes from an
  // activation DequantizeLinear.
  bool fused(const onnx::NodeProto& n) const {
    return n.input_size() > 0 && n.op_type() != "QuantizeLinear" && n.op_type() != "DequantizeLinear" &&
           activation_dq(n.input(0));
  }
  // The node that wrote the float value behind a QuantizeLinear -> DequantizeLinear pair, or the
  // producer of `v` itself.
  const onnx::NodeProto* source(const std::string& v) const {
    const onnx::NodeProto* p = made_by(v, "DequantizeLinear");
    if (p == nullptr) {
      auto it = producer.find(v);
      return it == producer.end() ? nullptr : it->second;
    }
    const onnx::NodeProto* q = made_by(p->input(0), "QuantizeLinear");
    if (q == nullptr) return nullptr;
    auto it = producer.find(q->input(0));
    return it == producer.end() ? nullptr : it->second;
  }
};

// The channels-last (NHWC) regions of a QDQ graph on a target that runs its fused integer convs and
// pools channels-last (ONNX Runtime CPU at its default optimization level: QLinearConv,
// QLinearAveragePool/GlobalAveragePool and uint8 MaxPool run NHWC, and a Transpose is inserted where
// such a region meets a channels-first reader). A node is in a region when it is a fused
// Conv/pool, or a fused node whose data input comes from the region (element-wise integer kernels
// that the runtime's transpose optimizer moves the layout through). Each activation QuantizeLinear
// at a region's edge costs one Transpose of its elements: entering (its value comes from outside and
// a channels-last node reads it) or leaving (its value comes from inside and something outside reads it).
std::unordered_set<const onnx::NodeProto*> layout_transposes(const onnx::GraphProto& g, const GraphIndex& index) {
  static const std::set<std::string> kChannelsLast = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool"};
  static const std::set<std::string> kLayoutFree = {"Add", "Mul", "Relu", "Clip", "Concat", "Sigmoid", "LeakyRelu"};
  std::set<const onnx::NodeProto*> region;
  for (const auto& n : g.node()) {
    if (!index.fused(n)) continue;
    const onnx::NodeProto* from = index.source(n.input(0));
    if (kChannelsLast.count(n.op_type()) || (kLayoutFree.count(n.op_type()) && from != nullptr && region.count(from)))
      region.insert(&n);
  }
  std::unordered_set<const onnx::NodeProto*> out;  // QuantizeLinears followed by a Transpose
  for (const auto& q : g.node()) {
    if (q.op_type() != "QuantizeLinear") continue;
    auto p = index.producer.find(q.input(0));
    const bool inside = p != index.producer.end() && region.count(p->second);
    bool read_inside = false, read_outside = false;
    if (auto dqs = index.readers.find(q.output(0)); dqs != index.readers.end())
      for (const onnx::NodeProto* dq : dqs->second) {
        if (dq->op_type() != "DequantizeLinear") continue;
        if (auto rs = index.readers.find(dq->output(0)); rs != index.readers.end())
          for (const onnx::NodeProto* r : rs->second) (region.count(r) ? read_inside : read_outside) = true;
      }
    if ((!inside && read_inside) || (inside && read_outside)) out.insert(&q);
  }
  return out;
}

// The float16 <-> float32 Casts that ONNX Runtime CPU removes. It has float16 kernels for data
// movement only, so a float16 Conv, BatchNormalization, Relu, pool, ... gets an inserted Cast to
// float32 before it and back after it, and the runtime deletes each inserted Cast that meets the
// opposite Cast of the graph (measured on the grid's float16 conv block: `Cast Conv Cast
// BatchNormalization Cast Relu Conv Relu Cast MaxPool` runs as `Conv Conv(BN, Relu) Conv(Relu)
// MaxPool`, no Cast). A Cast to float16 is free when every reader is such a node, a Cast to float32
// when its producer is.
std::unordered_set<const onnx::NodeProto*> float_casts(const ModelStats& stats, const GraphIndex& index) {
  static const std::set<std::string> kFloat16Native = {"Reshape", "Flatten",  "Squeeze", "Unsqueeze", "Transpose",
                                                       "Concat",  "Slice",    "Split",   "Gather",    "Identity",
                                                       "Shape",   "Expand",   "Tile",    "Pad",       "Cast"};
  auto float32_only = [&](const onnx::NodeProto* n) { return n != nullptr && !kFloat16Native.count(n->op_type()); };
  std::unordered_set<const onnx::NodeProto*> out;
  for (const LayerStats& layer : stats.layers) {
    if (layer.op_type != "Cast") continue;
    auto found = index.by_layer.find(layer.name);
    if (found == index.by_layer.end()) continue;
    const onnx::NodeProto& n = *found->second;
    const int64_t to = int_attribute(n, "to", 0);
    bool free = false;
    if (to == TensorProto::FLOAT16 && layer.compute_dtype == "float32") {
      auto r = index.readers.find(n.output(0));
      free = r != index.readers.end() && !r->second.empty() && std::all_of(r->second.begin(), r->second.end(), float32_only);
    } else if (to == TensorProto::FLOAT && layer.compute_dtype == "float16") {
      auto p = index.producer.find(n.input(0));
      free = p != index.producer.end() && float32_only(p->second);
    }
    if (free) out.insert(&n);
  }
  return out;
}

std::string format_of(const LayerStats& layer, const onnx::NodeProto* node, const GraphIndex* index,
                      const TargetProfile& p, bool& dequantize_weights) {
  dequantize_weights = false;
  const std::string kind = (layer.op_type == "Conv" || layer.op_type == "ConvTranspose") ? "conv" : "gemm";
  const bool fp16 = layer.compute_dtype == "float16";
  const bool u8 = node != nullptr && node->input_size() > 1 && index->weight_dtype(node->input(1)) == TensorProto::UINT8;
  if (p.qdq_fused && node != nullptr && index->fused(*node) && node->input_size() > 1 &&
      index->made_by(node->input(1), "DequantizeLinear") != nullptr)
    return kind + (u8 ? ".qdq.u8" : ".qdq");
  // Stored narrower than computed: rebuilt every run before the float kernel.
  const double compute_bytes = fp16 ? 2.0 : 4.0;
  const double per_param = layer.params > 0 ? static_cast<double>(layer.weight_bytes) / static_cast<double>(layer.params) : 4.0;
  if (per_param >= 0.9 * compute_bytes) return kind + (fp16 ? ".fp16" : ".fp32");
  // float16 weights cast to float32 (fp16 weights-only): the runtime may fold the Cast at load.
  if (!fp16 && per_param >= 1.5) return kind + ".fp16w";
  dequantize_weights = true;
  return kind + ".dq";
}

}  // namespace

TargetProfile TargetProfile::from_json(const nlohmann::json& j) {
  auto need = [&](const char* key) -> const nlohmann::json& {
    if (!j.is_object() || !j.contains(key)) throw Error(ExitCode::kBadInput, std::string("target profile: missing '") + key + "'");
    return j.at(key);
  };
  TargetProfile p;
  try {
    p.name = need("name").get<std::string>();
    p.description = need("description").get<std::string>();
    p.fitted_on = need("fitted_on");
    p.native = need("native");
    p.qdq_fused = p.native.value("qdq_fused", false);
    for (const auto& [term, cost] : need("cost_us").items()) p.cost_us[term] = cost.get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(ExitCode::kBadInput, "target profile '" + p.name + "': " + e.what());
  }
  return p;
}

const TargetProfile& TargetProfile::builtin(const std::string& name) {
  for (const auto& p : builtins())
    if (p.name == name) return p;
  std::string valid;
  for (const auto& n : builtin_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw Error(ExitCode::kUsage, "unknown target '" + name + "' (valid: " + valid + ")");
}

std::vector<std::string> TargetProfile::builtin_names() {
  std::vector<std::string> names;
  for (const auto& p : builtins()) names.push_back(p.name);
  return names;
}

LatencyTerms predict_latency(const Model& model, ModelStats& stats, const TargetProfile& profile) {
  GraphIndex index(model.proto().graph());
  if (profile.qdq_fused) index.free_casts = float_casts(stats, index);
  const auto transposes = profile.qdq_fused ? layout_transposes(model.proto().graph(), index)
                                            : std::unordered_set<const onnx::NodeProto*>{};
  LatencyTerms total;
  auto cost = [&](const std::string& term) {
    auto it = profile.cost_us.find(term);
    return it == profile.cost_us.end() ? 0.0 : it->second;
  };
  double total_us = cost("session");
  stats.dequantized_weight_elements = 0;
  total["session"] = 1;
  for (LayerStats& layer : stats.layers) {
    auto found = index.by_layer.find(layer.name);
    const onnx::NodeProto* node = found == index.by_layer.end() ? nullptr : found->second;
    LatencyTerms terms;
    const std::string& op = layer.op_type;
    bool runs = true;
    if (is_compute(op)) {
      bool dequantize = false;
      const std::string format = format_of(layer, node, &index, profile, dequantize);
      terms[format + ".mac"] = static_cast<double>(layer.macs);
      if (dequantize) {
        terms["weight_dequantize.element"] = static_cast<double>(layer.params);
        stats.dequantized_weight_elements += layer.params;
      }
    } else if (op == "ConvInteger" || op == "MatMulInteger") {
      const bool u8 = node != nullptr && node->input_size() > 1 && index.weight_dtype(node->input(1)) == TensorProto::UINT8;
      terms[std::string(op == "ConvInteger" ? "conv" : "gemm") + (u8 ? ".integer.u8" : ".integer") + ".mac"] =
          static_cast<double>(layer.macs);
    } else if (op == "MatMulNBits") {
      terms["gemm.nbits.mac"] = static_cast<double>(layer.macs);
      terms["gemm.nbits.weight"] = static_cast<double>(layer.params);
    } else if (op == "QuantizeLinear" || op == "DequantizeLinear") {
      bool fused = false;
      if (profile.qdq_fused && node != nullptr) {
        if (op == "QuantizeLinear") {
          auto it = index.producer.find(node->input(0));
          fused = it != index.producer.end() && index.fused(*it->second);
        } else {
          auto it = index.readers.find(node->output(0));
          fused = it != index.readers.end() && !it->second.empty() &&
                  std::all_of(it->second.begin(), it->second.end(), [&](const onnx::NodeProto* r) { return index.fused(*r); });
        }
      }
      if (fused) runs = false;
      else terms["quantize.element"] = static_cast<double>(layer.flops);
      if (node != nullptr && transposes.count(node)) {
        terms["layout.transpose"] = 1;
        terms["layout.transpose.element"] = static_cast<double>(layer.flops);
      }
    } else if (op == "DynamicQuantizeLinear") {
      terms["quantize.dynamic.element"] = static_cast<double>(layer.flops);
      runs = !(profile.qdq_fused && node != nullptr && index.feeds_dynamic_matmul(*node));
    } else if (profile.qdq_fused && node != nullptr && (index.free_casts.count(node) || index.epilogue(*node) || index.in_dynamic_matmul(*node))) {
      runs = false;
    } else if (layer.flops > 0) {
      terms["elementwise.element"] = static_cast<double>(layer.flops);
    }
    if (runs) terms["node"] = 1;
    double us = 0;
    for (const auto& [term, quantity] : terms) {
      us += cost(term) * quantity;
      total[term] += quantity;
    }
    layer.predicted_latency_ms = us / 1000.0;
    total_us += us;
  }
  stats.predicted_latency_ms = total_us / 1000.0;
  return total;
}

std::string slower_warning(const ModelStats& before, const ModelStats& after, const std::string& target) {
  if (before.predicted_latency_ms <= 0 || after.predicted_latency_ms <= before.predicted_latency_ms) return "";
  std::unordered_map<std::string, double> was;
  for (const auto& l : before.layers) was[l.name] = l.predicted_latency_ms;
  std::vector<std::pair<double, std::string>> slower;
  for (const auto& l : after.layers) {
    auto it = was.find(l.name);
    if (it != was.end() && l.predicted_latency_ms > it->second) slower.emplace_back(it->second - l.predicted_latency_ms, l.name);
  }
  std::sort(slower.begin(), slower.end());
  char buf[160];
  std::snprintf(buf, sizeof buf, "output predicted slower on %s: %.3fx (%.4f -> %.4f ms)", target.c_str(),
                after.predicted_latency_ms / before.predicted_latency_ms, before.predicted_latency_ms, after.predicted_latency_ms);
  std::string text = buf;
  for (size_t k = 0; k < slower.size() && k < 8; ++k) text += (k == 0 ? "; slower layers: " : ", ") + slower[k].second;
  if (slower.size() > 8) text += " and " + std::to_string(slower.size() - 8) + " more";
  return text;
}

}  // namespace compress
