// quantize-int4: block-wise 4-bit weight-only quantization of MatMul / Gemm (and, in dq form, Conv).
//
// Before: X -> MatMul(X, W[K,N] float)                      -> Y
// After:  X -> com.microsoft.MatMulNBits(X, Bq, scales[, zp]) -> Y          (format=nbits)
//         Gemm(X, W, C) -> MatMulNBits(X, alpha * op(W)) -> Add(., beta * C) -> Y
// Or:     Wq int4 -> DequantizeLinear(axis, block_size) -> MatMul/Gemm/Conv  (format=dq, opset 21)
//
// Math and layouts: src/passes/int4_blocks.h (ONNX Runtime's MLAS quantizer rules: symmetric scale =
// signed absmax / -8 so all 16 levels are used, q stored + 8 because MatMulNBits without zero points
// assumes zero point 8; asymmetric scale = (max - min) / 15 with packed uint4 zero points). K is padded
// to whole blocks in nbits form; DequantizeLinear-21 takes a partial last block as is.
// Skipped (counted, model unchanged there): excluded nodes, weights that are not constant float32, graph
// inputs, fewer than min-elements elements, B not 2-D, Gemm with transA, Gemm with beta != 1 and a
// non-constant C, Conv whose input channels per group are fewer than the block (dq form), Conv in nbits
// form. Weights shared by several rewritten readers are quantized once; the float original is removed
// when its last reader was rewritten.
// The dq form raises the model to opset 21 / IR 10 itself (ONNX 1.12's version converter stops at 17):
// opset <= 17 ops whose meaning changed by 21 are upgraded (Reduce* axes attribute -> input, GridSample
// mode names) and the rest refused with Error(kUnsupported). ONNX 1.12's checker cannot check the result.
// Options: block-size 16|32|64|128 (32), symmetric (true), accuracy-level 0-4 (0, MatMulNBits attribute),
// min-elements (1024), format nbits|dq (nbits), exclude.
#include <compress/error.h>
#include <compress/tensor.h>

#include <array>
#include <cstring>
#include <tuple>
#include <map>
#include <set>

#include "passes/error_metrics.h"
#include "passes/int4_blocks.h"
#include "passes/node_order.h"
#include "passes/passes.h"
#include "passes/weights.h"

namespace compress {

namespace {

constexpr int32_t kInt4 = 22;  // TensorProto::INT4, newer than ONNX 1.12's enum

onnx::AttributeProto int_attr(const std::string& name, int64_t value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(value);
  return a;
}

// Graph whose initializer or Constant node defines `value` as seen from `graph`.
Graph* owner_of(Graph* graph, const std::string& value) {
  for (Graph* g = graph; g != nullptr; g = g->parent())
    if (g->constant(value) != nullptr) return g;
  return nullptr;
}

std::string label_of(const NodeProto& node) { return node.name().empty() ? node.op_type() : node.name(); }

// Opset 18-21 changes that matter for models written at opset <= 17.
const std::set<std::string> kReduceWithAxesInput18 = {"ReduceMax",  "ReduceMin",    "ReduceMean",
                                                      "ReduceProd", "ReduceL1",     "ReduceL2",
                                                      "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"};

// Raises the default-domain opset to 21 and IR to 10 without the version converter.
void upgrade_to_opset21(Model& model, PassStats& stats) {
  if (model.opset() >= 21) return;
  if (model.opset() < 17) model.require_opset("", 17);
  for (Graph* graph : model.all_graphs()) {
    for (auto& node : *graph->proto().mutable_node()) {
      if (!(node.domain().empty() || node.domain() == "ai.onnx")) continue;
      if (node.op_type() == "DFT")
        throw Error(ExitCode::kUnsupported, "quantize-int4 format=dq needs opset 21, and DFT changed its axis "
                                            "attribute to an input in opset 20; use format=nbits");
      if (kReduceWithAxesInput18.count(node.op_type())) {
        auto* attrs = node.mutable_attribute();
        for (int i = 0; i < attrs->size(); ++i) {
          if (attrs->Get(i).name() != "axes") continue;
          std::vector<int64_t> axes(attrs->Get(i).ints().begin(), attrs->Get(i).ints().end());
          const std::string name = model.unique_name(node.name().empty() ? "axes" : node.name() + "_axes");
          graph->add_initializer(make_int64_tensor(name, {static_cast<int64_t>(axes.size())}, axes));
          attrs->DeleteSubrange(i, 1);
          if (node.input_size() < 1) throw Error(ExitCode::kBadInput, node.op_type() + " without input");
          while (node.input_size() > 1) node.mutable_input()->RemoveLast();
          node.add_input(name);
          stats.count("opset21.reduce_axes_to_input");
          break;
        }
      }
      if (node.op_type() == "GridSample") {
        for (auto& a : *node.mutable_attribute()) {
          if (a.name() != "mode") continue;
          if (a.s() == "bilinear") a.set_s("linear");
          if (a.s() == "bicubic") a.set_s("cubic");
        }
      }
    }
  }
  for (auto& op : *model.proto().mutable_opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") op.set_version(21);
  if (model.proto().ir_version() < 10) model.proto().set_ir_version(10);
  model.invalidate();
  stats.warnings.push_back("format=dq raised the model to opset 21 / IR 10: ONNX 1.12's checker cannot check "
                           "opset 21, verify the output in ONNX Runtime");
}

// What to quantize for one weight reader.
struct Candidate {
  WeightRef ref;
  Graph* owner = nullptr;
  bool trans_b = false;  // Gemm transB: the stored tensor is [N, K]
  float alpha = 1.0f;
};

class QuantizeInt4Pass final : public Pass {
 public:
  PassInfo info() const override {
    return {"quantize-int4",
            "block-wise 4-bit weight-only quantization: MatMul/Gemm -> com.microsoft.MatMulNBits, or blocked "
            "int4 DequantizeLinear (opset 21) with format=dq",
            {{"block-size", OptionSpec::Type::kEnum, "32", "elements per quantization block along K",
              0, 0, {"16", "32", "64", "128"}},
             {"symmetric", OptionSpec::Type::kBool, "true",
              "symmetric blocks (no zero points); false stores packed 4-bit zero points"},
             {"accuracy-level", OptionSpec::Type::kInt, "0",
              "MatMulNBits accuracy_level: minimum precision of A in ONNX Runtime (0 unset, 1 fp32, 2 fp16, "
              "3 bf16, 4 int8)", 0, 4},
             {"min-elements", OptionSpec::Type::kInt, "1024", "weights with fewer elements stay float", 0},
             {"format", OptionSpec::Type::kEnum, "nbits",
              "nbits: com.microsoft.MatMulNBits; dq: DequantizeLinear-21 int4 (also Conv; opset 21)",
              0, 0, {"nbits", "dq"}},
             {"exclude", OptionSpec::Type::kList, "[]", "node names or op types (globs) to leave alone"}}};
  }

  PassStats run(Model& model, const PassContext& context) const override {
    PassStats stats;
    const auto& o = context.options();
    const int64_t block = std::stoll(o.get_string("block-size"));
    const bool symmetric = o.get_bool("symmetric");
    const bool dq = o.get_string("format") == "dq";
    if (dq) {
      // The opset upgrade edits the model; do it only when something will be quantized, then select again
      // (the upgrade may replace the protos the first selection points into).
      PassStats probe;
      if (select(model, context, block, dq, probe).empty()) return probe;
      upgrade_to_opset21(model, stats);
    }
    std::vector<Candidate> plan = select(model, context, block, dq, stats);
    if (plan.empty()) return stats;
    if (dq) {
      rewrite_dq(model, plan, block, symmetric, stats);
    } else {
      model.require_opset("com.microsoft", 1);
      rewrite_nbits(model, plan, block, symmetric, o.get_int("accuracy-level"), stats);
    }
    remove_unused_originals(model, plan, stats);
    return stats;
  }

 private:
  static std::vector<Candidate> select(Model& model, const PassContext& context, int64_t block, bool dq,
                                       PassStats& stats) {
    std::set<std::string> ops = {"MatMul", "Gemm"};
    if (dq) {
      ops.insert("Conv");
    } else {
      // Conv is only quantizable in dq form; say so instead of silently ignoring it.
      for (Graph* g : model.all_graphs())
        for (const auto& node : g->proto().node())
          if (node.op_type() == "Conv" && (node.domain().empty() || node.domain() == "ai.onnx") &&
              !context.is_excluded(node))
            stats.skip(label_of(node), "conv_needs_format_dq");
    }
    auto refs = collect_weights(model, context, ops, context.options().get_int("min-elements"), stats);
    std::vector<Candidate> plan;
    for (auto& ref : refs) {
      const NodeProto& node = *ref.node;
      const std::string label = label_of(node);
      Candidate c;
      c.owner = owner_of(ref.graph, ref.value);
      if (node.op_type() == "Gemm") {
        if (int_attribute(node, "transA", 0) != 0) {
          stats.skip(label, "gemm_trans_a");
          continue;
        }
        c.trans_b = int_attribute(node, "transB", 0) != 0;
        c.alpha = float_attribute(node, "alpha", 1.0f);
        const float beta = float_attribute(node, "beta", 1.0f);
        if (!dq && node.input_size() > 2 && !node.input(2).empty() && beta != 1.0f && beta != 0.0f &&
            ref.graph->constant_in_scope(node.input(2)) == nullptr) {
          stats.skip(label, "gemm_beta_with_nonconstant_c");
          continue;
        }
        if (ref.dims.size() != 2) {
          stats.skip(label, "weight_not_2d");
          continue;
        }
      }
      if (node.op_type() == "Conv") {
        if (ref.dims.size() < 3) {
          stats.skip(label, "weight_not_conv");
          continue;
        }
        if (ref.dims[1] < block) {
          stats.skip(label, "conv_in_channels_below_block");
          continue;
        }
      }
      c.ref = ref;
      plan.push_back(std::move(c));
    }
    return plan;
  }

  // Weight as [K, N] row-major: the tensor's own floats when it already is (no copy), else
  // transposed for Gemm transB and/or times alpha into `scratch`.
  static std::span<const float> matmul_weight(const Candidate& c, int64_t& k, int64_t& n, std::vector<float>& scratch) {
    const int64_t d0 = c.ref.dims[0], d1 = c.ref.dims[1];
    k = c.trans_b ? d1 : d0;
    n = c.trans_b ? d0 : d1;
    if (!c.trans_b && c.alpha == 1.0f) return float_view(*c.ref.tensor, scratch);
    std::vector<float> decoded;
    const std::span<const float> w = float_view(*c.ref.tensor, decoded);
    scratch.resize(w.size());
    for (int64_t i = 0; i < d0; ++i)
      for (int64_t j = 0; j < d1; ++j)
        scratch[static_cast<size_t>(c.trans_b ? j * d0 + i : i * d1 + j)] = w[static_cast<size_t>(i * d1 + j)] * c.alpha;
    return scratch;
  }

  static void add_layer(PassStats& stats, const Candidate& c, const ReconstructionError& err,
                        std::span<const float> scales, int64_t block, int64_t bytes_after, const std::string& format) {
    float lo = std::numeric_limits<float>::max(), hi = 0;
    for (float s : scales) {
      lo = std::min(lo, std::fabs(s));
      hi = std::max(hi, std::fabs(s));
    }
    stats.layers.push_back({{"name", label_of(*c.ref.node)},
                            {"op_type", c.ref.node->op_type()},
                            {"weight", c.ref.value},
                            {"format", format},
                            {"dims", c.ref.dims},
                            {"block_size", block},
                            {"scale_min", lo},
                            {"scale_max", hi},
                            {"relative_l2", err.relative_l2},
                            {"sqnr_db", std::isfinite(err.sqnr_db) ? nlohmann::json(err.sqnr_db) : nlohmann::json(nullptr)},
                            {"max_abs_error", err.max_abs},
                            {"bytes_before", packed_bytes(*c.ref.tensor)},
                            {"bytes_after", bytes_after},
                            {"readers", c.ref.readers}});
  }

  static void rewrite_nbits(Model& model, std::vector<Candidate>& plan, int64_t block, bool symmetric,
                            int64_t accuracy_level, PassStats& stats) {
    // (owner graph, value, transB, alpha) -> names of the packed tensors, so shared weights are packed once.
    std::map<std::tuple<Graph*, std::string, bool, float>, std::array<std::string, 3>> packed_names;
    std::map<Graph*, std::vector<std::pair<const NodeProto*, NodeProto>>> adds;  // Gemm bias Adds, after their node
    for (auto& c : plan) {
      NodeProto& node = *c.ref.node;
      int64_t k = 0, n = 0;
      const auto key = std::make_tuple(c.owner, c.ref.value, c.trans_b, c.alpha);
      auto it = packed_names.find(key);
      if (it == packed_names.end()) {
        std::vector<float> scratch;
        const std::span<const float> w = matmul_weight(c, k, n, scratch);
        const int4::NBitsWeight q = int4::quantize_nbits(w, k, n, block, symmetric);
        const std::string base = c.ref.value + (c.trans_b ? "_t" : "");
        std::array<std::string, 3> names = {model.unique_name(base + "_q4"), model.unique_name(base + "_scales"), ""};
        c.owner->add_initializer(make_raw_tensor(names[0], TensorProto::UINT8, {n, q.blocks_per_col, q.blob},
                                                 std::string(q.packed.begin(), q.packed.end())));
        c.owner->add_initializer(make_float_tensor(names[1], {n * q.blocks_per_col}, q.scales));
        int64_t bytes = static_cast<int64_t>(q.packed.size() + 4 * q.scales.size());
        if (!symmetric) {
          names[2] = model.unique_name(base + "_zero_points");
          c.owner->add_initializer(make_uint8_tensor(names[2], {static_cast<int64_t>(q.zero_points.size())}, q.zero_points));
          bytes += static_cast<int64_t>(q.zero_points.size());
        }
        double signal = 0, noise = 0, max_abs = 0;
        int4::nbits_error_sums(w, q, signal, noise, max_abs);
        add_layer(stats, c, reconstruction_error_from_sums(signal, noise, max_abs), q.scales, block, bytes, "nbits");
        stats.count("quantized");
        stats.count("weight_bytes_before", packed_bytes(*c.ref.tensor));
        stats.count("weight_bytes_after", bytes);
        it = packed_names.emplace(key, names).first;
      } else {
        k = c.trans_b ? c.ref.dims[1] : c.ref.dims[0];
        n = c.trans_b ? c.ref.dims[0] : c.ref.dims[1];
        stats.count("shared_reuse");
      }
      const auto& names = it->second;
      std::string bias;
      float beta = 1.0f;
      if (node.op_type() == "Gemm") {
        beta = float_attribute(node, "beta", 1.0f);
        if (node.input_size() > 2 && beta != 0.0f) bias = node.input(2);
      }
      const std::string output = node.output(0);
      node.clear_attribute();
      node.set_op_type("MatMulNBits");
      node.set_domain("com.microsoft");
      const std::string a = node.input(0);
      node.clear_input();
      node.add_input(a);
      node.add_input(names[0]);
      node.add_input(names[1]);
      if (!names[2].empty()) node.add_input(names[2]);
      *node.add_attribute() = int_attr("K", k);
      *node.add_attribute() = int_attr("N", n);
      *node.add_attribute() = int_attr("bits", 4);
      *node.add_attribute() = int_attr("block_size", block);
      *node.add_attribute() = int_attr("accuracy_level", accuracy_level);
      if (bias.empty()) continue;
      if (beta != 1.0f) {
        Graph* bias_owner = owner_of(c.ref.graph, bias);
        std::vector<float> values = to_floats(*bias_owner->constant(bias));
        for (auto& v : values) v *= beta;
        const TensorProto* original = bias_owner->constant(bias);
        const std::string scaled = model.unique_name(bias + "_beta");
        c.ref.graph->add_initializer(
            make_float_tensor(scaled, {original->dims().begin(), original->dims().end()}, values));
        bias = scaled;
      }
      const std::string product = model.unique_name(output + "_matmul");
      node.set_output(0, product);
      NodeProto add;
      add.set_op_type("Add");
      add.set_name(model.unique_name((node.name().empty() ? output : node.name()) + "_bias"));
      add.add_input(product);
      add.add_input(bias);
      add.add_output(output);
      adds[c.ref.graph].emplace_back(&node, std::move(add));
      stats.count("gemm_to_matmulnbits_add");
    }
    for (auto& [graph, list] : adds) insert_nodes(graph->proto(), std::move(list), /*after=*/true);
    model.invalidate();
  }

  static void rewrite_dq(Model& model, std::vector<Candidate>& plan, int64_t block, bool symmetric, PassStats& stats) {
    std::map<std::pair<Graph*, std::string>, std::string> dequantized;  // shared weights get one DQ
    std::map<std::pair<Graph*, std::string>, int64_t> axis_of;
    std::map<Graph*, std::vector<std::pair<const NodeProto*, NodeProto>>> dequantizers;  // first in their graph
    for (auto& c : plan) {
      NodeProto& node = *c.ref.node;
      const std::string label = label_of(node);
      const int64_t axis = node.op_type() == "Conv" ? 1 : c.ref.in_axis;
      const auto key = std::make_pair(c.owner, c.ref.value);
      auto it = dequantized.find(key);
      if (it != dequantized.end() && axis_of[key] != axis) {
        stats.skip(label, "shared_weight_with_other_block_axis");
        continue;
      }
      if (it == dequantized.end()) {
        const std::vector<float> w = to_floats(*c.ref.tensor);
        const int4::DqWeight q = int4::quantize_dq(w, c.ref.dims, axis, block, symmetric);
        const std::string base = c.ref.value;
        const std::string qname = model.unique_name(base + "_q4"), sname = model.unique_name(base + "_scale");
        const auto packed = int4::pack_int4(q.values);
        c.owner->add_initializer(make_raw_tensor(qname, kInt4, q.dims, std::string(packed.begin(), packed.end())));
        c.owner->add_initializer(make_float_tensor(sname, q.scale_dims, q.scales));
        int64_t bytes = static_cast<int64_t>(packed.size() + 4 * q.scales.size());
        NodeProto dql;
        dql.set_op_type("DequantizeLinear");
        dql.set_name(model.unique_name(base + "_dequantize"));
        dql.add_input(qname);
        dql.add_input(sname);
        if (!symmetric) {
          const std::string zname = model.unique_name(base + "_zero_point");
          const auto zp = int4::pack_int4(q.zero_points);
          c.owner->add_initializer(make_raw_tensor(zname, kInt4, q.scale_dims, std::string(zp.begin(), zp.end())));
          dql.add_input(zname);
          bytes += static_cast<int64_t>(zp.size());
        }
        const std::string out = model.unique_name(base + "_dequantized");
        dql.add_output(out);
        *dql.add_attribute() = int_attr("axis", axis);
        *dql.add_attribute() = int_attr("block_size", block);
        dequantizers[c.owner].emplace_back(nullptr, std::move(dql));
        add_layer(stats, c, reconstruction_error(w, int4::dequantize_dq(q, axis, block)), q.scales, block, bytes, "dq");
        stats.count("quantized");
        stats.count("weight_bytes_before", packed_bytes(*c.ref.tensor));
        stats.count("weight_bytes_after", bytes);
        it = dequantized.emplace(key, out).first;
        axis_of[key] = axis;
      } else {
        stats.count("shared_reuse");
      }
      node.set_input(c.ref.input_index, it->second);
    }
    for (auto& [graph, list] : dequantizers) insert_nodes(graph->proto(), std::move(list), /*after=*/false);
    model.invalidate();
  }

  // Drops each float original whose readers were all rewritten (shared with an untouched reader: kept).
  static void remove_unused_originals(Model& model, const std::vector<Candidate>& plan, PassStats& stats) {
    model.invalidate();
    std::set<std::pair<Graph*, std::string>> done;
    for (const auto& c : plan) {
      if (!done.emplace(c.owner, c.ref.value).second) continue;
      Graph& g = *c.owner;
      if (!g.consumers(c.ref.value).empty() || g.is_graph_output(c.ref.value)) {
        stats.count("original_kept_for_other_readers");
        continue;
      }
      if (g.initializer(c.ref.value) != nullptr) {
        g.remove_initializer(c.ref.value);
      } else if (NodeProto* producer = g.producer(c.ref.value)) {
        g.remove_nodes({producer});
      }
      stats.count("removed_float_weights");
    }
    model.invalidate();
  }
};

}  // namespace

std::unique_ptr<Pass> make_quantize_int4_pass() { return std::make_unique<QuantizeInt4Pass>(); }

}  // namespace compress
