// quantize-int8: 8-bit linear quantization of MatMul/Gemm/Conv weights (and Gather tables,
// LSTM/GRU/RNN W and R).
//
// weight-only:  W(float) -> MatMul        becomes  Wq(int8), s[, zp] -> DequantizeLinear(axis) -> MatMul
// dynamic:      X -> MatMul(X, W) -> Y     becomes  X -> DynamicQuantizeLinear -> (Xq, xs, xzp);
//               MatMulInteger(Xq, Wq, xzp, wzp) -> Cast(float) -> Mul(xs * ws) [-> Add(C)] -> Y
//               (Conv: ConvInteger, scales and bias reshaped to [1, Cout, 1, 1]; Gather and
//               LSTM/GRU/RNN: as weight-only, per channel along the gates x hidden axis 1)
//
// Math (src/passes/int8_quant.h): q = clamp(round_half_even(w / s) + zp, qmin, qmax), w' = (q - zp) * s.
// symmetric: int8, zp 0, s = max|w| / 127; asymmetric: uint8, range widened to contain 0,
// s = (max - min) / 255, zp = round(-min / s). Per channel along the output axis: Conv 0, MatMul B [K, N] 1,
// Gemm 0 with transB else 1, Gather the gathered axis (one scale per embedding row, so a rare token's
// small row keeps its own resolution; DequantizeLinear accepts any axis in ONNX and ONNX Runtime).
// A zero channel gets scale 1 (never 0 or inf). reduce-range stores 7-bit weights ([-64, 64]).
//
// ONNX Runtime 1.30 CPU kernels decide the dynamic formats: MatMulInteger takes uint8 A with int8 or
// uint8 B and a b_zero_point that is scalar or per column [N]; ConvInteger takes uint8 x uint8 only
// and a scalar w_zero_point. So Conv weights are uint8 (symmetric: zp 128, [1, 255]) with per-channel
// scales but one zero point; asymmetric Conv falls back to per-tensor (counted).
// MatMulInteger weights are uint8 too by default (weight-type=uint8; symmetric: zp 128, [1, 255]): ONNX
// Runtime's u8 x s8 kernel on AVX2 without VNNI adds pairs of u8*s8 products in int16 with saturation
// (255*127*2 > 32767; one MatMulInteger of 255s and 127s over K=64 gives 1,048,544, not 2,072,640), so an
// int8 output would compute different answers on different CPUs. u8 x u8 is summed in 32 bits on every
// x86-64 CPU. weight-type=int8 keeps the faster u8 x s8 form for VNNI machines; int7 is that form with
// weights in [-64, 64] (reduce-range), whose pair sums (2 x 255 x 64 < 32768) cannot saturate anywhere.
// weight-type=auto (the default) is uint8 for dynamic and int7 for static (quantize_static.cpp says why).
//
// Skipped (counted as skipped.<reason>): what collect_weights rejects (excluded, weight_not_constant,
// weight_is_graph_input, weight_not_float32, too_small, weight_not_2d), weights that are not finite
// (non_finite), a weight shared by readers that disagree on the per-channel axis (shared_axis_conflict);
// dynamic only: Gemm with transA=1, alpha != 1 or beta != 1 (gemm_trans_a, gemm_alpha, gemm_beta),
// Conv whose bias is not constant (conv_bias_not_constant), MatMul/Gemm weights that are not 2-D.
// A weight read by several quantized nodes is quantized once; readers that are not rewritten keep
// the float original, which is removed once nothing reads it.
//
// static: calibrated uint8 activations and 7-bit int8 (or uint8, int8) weights in QDQ form, see src/passes/quantize_static.cpp.
//
// Options: mode (weight-only | dynamic | static), per-channel (true), symmetric (true), reduce-range (false),
// weight-type (auto | uint8 | int8 | int7: dynamic and static), min-elements (1024), exclude ([]); static only: calibration (samples directory), method (minmax |
// percentile | entropy), percentile (99.999), self-check (true). symmetric and min-elements do not apply to
// static.
#include <compress/error.h>
#include <compress/tensor.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "passes/error_metrics.h"
#include "passes/int8_quant.h"
#include "passes/parallel.h"
#include "passes/passes.h"
#include "passes/quantize_static.h"
#include "passes/weights.h"

namespace compress {

namespace {

enum class Format { kDequantize, kMatMulInteger, kConvInteger };

const char* format_name(Format f) {
  switch (f) {
    case Format::kDequantize: return "DequantizeLinear";
    case Format::kMatMulInteger: return "MatMulInteger";
    case Format::kConvInteger: return "ConvInteger";
  }
  return "";
}

struct Settings {
  bool dynamic = false;
  bool per_channel = true;
  bool symmetric = true;
  bool reduce_range = false;
  // dynamic: MatMulInteger weights in uint8 (zero point 128 when symmetric) rather than int8, see the header.
  bool unsigned_weights = true;
  // Old opsets the version converter cannot raise: dequantize with Cast -> [Sub] -> Mul instead of
  // DequantizeLinear (same values, valid at any opset).
  bool emulate_dequantize = false;
};

// One stored form of one constant: the same tensor can be needed as DequantizeLinear input and as
// a [K, N] MatMulInteger weight, but each form is written once however many nodes read it.
struct Encoding {
  const TensorProto* tensor = nullptr;
  Format format = Format::kDequantize;
  int64_t axis = -1;      // per-channel axis in the original layout, -1 per tensor
  bool transpose = false;  // Gemm transB=1 weight stored as [K, N] for MatMulInteger
  Graph* owner = nullptr;  // graph holding the constant; the new initializers go there
  std::string value;       // original value name
  std::vector<const WeightRef*> readers;
  // Filled when applied.
  std::string quantized, scale, zero_point, dequantized;
  std::vector<float> scales;
};

struct Rewrite {
  const WeightRef* ref = nullptr;
  size_t encoding = 0;
};

class QuantizeInt8Pass final : public Pass {
 public:
  PassInfo info() const override {
    auto option = [](std::string name, OptionSpec::Type type, std::string default_value, std::string help) {
      OptionSpec o;
      o.name = std::move(name);
      o.type = type;
      o.default_value = std::move(default_value);
      o.help = std::move(help);
      return o;
    };
    OptionSpec mode = option("mode", OptionSpec::Type::kEnum, "weight-only",
                             "weight-only: int8 initializers + DequantizeLinear, float compute; dynamic: "
                             "DynamicQuantizeLinear on the activation + MatMulInteger/ConvInteger integer kernels; static: "
                             "calibrated uint8 activations + 8-bit weights as QuantizeLinear/DequantizeLinear pairs (QDQ)");
    mode.choices = {"weight-only", "dynamic", "static"};
    OptionSpec method = option("method", OptionSpec::Type::kEnum, "minmax",
                               "static: activation range from the calibration run: minmax, percentile (central mass), "
                               "entropy (KL-divergence histogram calibration)");
    method.choices = {"minmax", "percentile", "entropy"};
    OptionSpec percentile = option("percentile", OptionSpec::Type::kFloat, "99.999",
                                   "static, method=percentile: percent of the values kept inside the range");
    percentile.min = 50;
    percentile.max = 100;
    OptionSpec weight_type =
        option("weight-type", OptionSpec::Type::kEnum, "auto",
               "dynamic/static integer weights: uint8 (zero point 128 when symmetric; u8 x u8 kernels sum in 32 bits on "
               "every x86-64 CPU), int8 (faster u8 x s8 kernels, but their pair sums saturate int16 on CPUs without "
               "VNNI: use only for AVX-512 VNNI / AVX-VNNI targets), int7 (int8 in [-64, 64]: the u8 x s8 kernels, "
               "which cannot saturate at that range) or auto (static: int7, dynamic: uint8)");
    weight_type.choices = {"auto", "uint8", "int8", "int7"};
    OptionSpec min_elements =
        option("min-elements", OptionSpec::Type::kInt, "1024", "weights with fewer elements stay float");
    min_elements.min = 1;
    return {"quantize-int8",
            "8-bit weights: int8 + DequantizeLinear, or ONNX Runtime dynamic quantization (MatMulInteger/ConvInteger)",
            {mode,
             option("per-channel", OptionSpec::Type::kBool, "true",
                    "one scale per output channel (Conv axis 0, MatMul axis 1, Gemm 0 with transB else 1, Gather per "
                    "row); false: one scale per tensor"),
             option("symmetric", OptionSpec::Type::kBool, "true",
                    "true: zero point in the middle of the grid (int8 with zero point 0; uint8 with 128 for integer kernels, "
                    "see weight-type); false: uint8 with computed zero points"),
             option("reduce-range", OptionSpec::Type::kBool, "false",
                    "7-bit weights (ONNX Runtime reduce_range, for CPUs without VNNI where u8 x s8 sums saturate)"),
             weight_type,
             min_elements,
             option("calibration", OptionSpec::Type::kSamples, "",
                    "static: directory with one <input-name>.npy per model input (leading axis = samples)"),
             method,
             percentile,
             option("self-check", OptionSpec::Type::kBool, "true",
                    "static: run the quantized model on the calibration samples and warn when an output's cosine "
                    "to the float model is below 0.99 (one more evaluator pass)"),
             option("exclude", OptionSpec::Type::kList, "[]", "node names or op types (globs) to leave alone")}};
  }

  PassStats run(Model& model, const PassContext& context) const override {
    const auto& options = context.options();
    if (options.get_string("mode") == "static") return quantize_int8_static(model, context);
    Settings s;
    s.dynamic = options.get_string("mode") == "dynamic";
    s.per_channel = options.get_bool("per-channel");
    s.symmetric = options.get_bool("symmetric");
    const std::string weight_type = options.get_string("weight-type");
    s.reduce_range = options.get_bool("reduce-range") || weight_type == "int7";
    s.unsigned_weights = weight_type == "uint8" || weight_type == "auto";
    const int64_t min_elements = options.get_int("min-elements");

    PassStats stats;
    std::vector<WeightRef> refs;
    std::vector<Rewrite> rewrites;
    std::vector<Encoding> encodings;
    select(model, context, s, min_elements, stats, refs, rewrites, encodings);
    std::vector<QuantizedWeight> quantized = quantize_finite(s, stats, rewrites, encodings);
    if (rewrites.empty()) return stats;

    // Per-axis DequantizeLinear needs opset 13; the dynamic operators exist from opset 11.
    bool per_axis_dq = false;
    for (const auto& e : encodings) per_axis_dq = per_axis_dq || (e.format == Format::kDequantize && e.axis >= 0);
    const int64_t needed = (!s.dynamic || per_axis_dq) ? 13 : 11;
    if (model.opset("") < needed) {
      const int64_t original = model.opset("");
      try {
        model.require_opset("", needed);
        // The version converter rebuilds the proto: select again on the converted model.
        stats = PassStats{};
        refs.clear();
        rewrites.clear();
        encodings.clear();
        select(model, context, s, min_elements, stats, refs, rewrites, encodings);
        quantized = quantize_finite(s, stats, rewrites, encodings);
        stats.warnings.push_back("raised the default opset from " + std::to_string(original) + " to " +
                                 std::to_string(needed));
      } catch (const Error& e) {
        if (s.dynamic || e.code() != ExitCode::kUnsupported) throw;
        s.emulate_dequantize = true;  // the model is unchanged: the selection still holds
        stats.warnings.push_back(std::string(e.what()) + "; dequantizing with Cast and Mul instead");
        stats.count("emulated_dequantize");
      }
    }
    apply(model, s, stats, rewrites, encodings, std::move(quantized));
    return stats;
  }

 private:
  static std::string label(const NodeProto& node) { return node.name().empty() ? node.op_type() : node.name(); }

  // The graph whose initializer or Constant node holds `ref.tensor`.
  static Graph* owner_of(const WeightRef& ref) {
    for (Graph* g = ref.graph; g != nullptr; g = g->parent())
      if (g->constant(ref.value) == ref.tensor) return g;
    throw Error(ExitCode::kInternal, "weight '" + ref.value + "' has no owning graph");
  }

  static int64_t gather_axis(const WeightRef& ref) {
    int64_t axis = int_attribute(*ref.node, "axis", 0);
    if (axis < 0) axis += static_cast<int64_t>(ref.dims.size());
    return axis;
  }

  static void select(Model& model, const PassContext& context, const Settings& s, int64_t min_elements,
                     PassStats& stats, std::vector<WeightRef>& refs, std::vector<Rewrite>& rewrites,
                     std::vector<Encoding>& encodings) {
    refs = collect_weights(model, context, {"MatMul", "Gemm", "Conv", "Gather", "LSTM", "GRU", "RNN"}, min_elements,
                           stats);
    // Index into `encodings` by (tensor, format), in first-seen order for deterministic output.
    std::vector<std::pair<std::pair<const TensorProto*, Format>, size_t>> index;
    for (const WeightRef& ref : refs) {
      const std::string& op = ref.node->op_type();
      const std::string name = label(*ref.node);
      Format format = Format::kDequantize;
      int64_t axis = op == "Gather" ? gather_axis(ref) : ref.out_axis;
      bool transpose = false;
      // Gather tables and recurrent W/R have no integer kernel: dynamic mode stores them weight-only.
      const bool weight_only_op = op == "Gather" || op == "LSTM" || op == "GRU" || op == "RNN";
      if (s.dynamic && !weight_only_op) {
        if (op == "Gemm") {
          if (int_attribute(*ref.node, "transA", 0) != 0) {
            stats.skip(name, "gemm_trans_a");
            continue;
          }
          if (float_attribute(*ref.node, "alpha", 1.0f) != 1.0f) {
            stats.skip(name, "gemm_alpha");
            continue;
          }
          if (ref.node->input_size() > 2 && !ref.node->input(2).empty() &&
              float_attribute(*ref.node, "beta", 1.0f) != 1.0f) {
            stats.skip(name, "gemm_beta");
            continue;
          }
          transpose = ref.out_axis == 0;
        }
        if (op == "Conv") {
          if (ref.node->input_size() > 2 && !ref.node->input(2).empty() &&
              ref.graph->constant_in_scope(ref.node->input(2)) == nullptr) {
            stats.skip(name, "conv_bias_not_constant");
            continue;
          }
          format = Format::kConvInteger;
          if (!s.symmetric && s.per_channel) {
            axis = -1;  // ConvInteger's w_zero_point is one scalar: one zero point means one range
            stats.count("conv_per_tensor_fallback");
          }
        } else {
          if (ref.dims.size() != 2) {
            stats.skip(name, "weight_not_2d");
            continue;
          }
          format = Format::kMatMulInteger;
        }
      }
      if (!s.per_channel) axis = -1;
      auto found = std::find_if(index.begin(), index.end(),
                                [&](const auto& entry) { return entry.first.first == ref.tensor && entry.first.second == format; });
      if (found == index.end()) {
        Encoding e;
        e.tensor = ref.tensor;
        e.format = format;
        e.axis = axis;
        e.transpose = transpose;
        e.owner = owner_of(ref);
        e.value = ref.value;
        index.push_back({{ref.tensor, format}, encodings.size()});
        encodings.push_back(std::move(e));
        found = index.end() - 1;
      }
      Encoding& e = encodings[found->second];
      if (e.axis != axis || e.transpose != transpose) {
        stats.skip(name, "shared_axis_conflict");
        continue;
      }
      e.readers.push_back(&ref);
      rewrites.push_back({&ref, found->second});
    }
  }

  static Int8Grid grid_for(const Encoding& e, const Settings& s) {
    const bool is_signed = s.symmetric && (e.format == Format::kDequantize ||
                                           (e.format == Format::kMatMulInteger && !s.unsigned_weights));
    return int8_grid(s.symmetric, is_signed, s.reduce_range);
  }

  // One encoding's weight quantized, in its stored layout: as is, or [K, N] for a transB Gemm
  // weight [N, K]; nullopt when a value is inf or NaN. Reads the model only, so encodings run in
  // parallel, and each weight is read once (from the page cache when it lies in the input file).
  static std::optional<QuantizedWeight> quantize_encoding(const Encoding& e, const Settings& s,
                                                          std::vector<float>& scratch) {
    const std::span<const float> w = float_view(*e.tensor, scratch);
    if (!all_finite(w)) return std::nullopt;
    const std::vector<int64_t> dims(e.tensor->dims().begin(), e.tensor->dims().end());
    QuantizedWeight q = quantize_weight(w, dims, e.axis, s.symmetric, grid_for(e, s));
    if (e.transpose) {
      const int64_t n = dims[0], k = dims[1];
      std::string transposed(q.bytes.size(), '\0');
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < k; ++j) transposed[static_cast<size_t>(j * n + i)] = q.bytes[static_cast<size_t>(i * k + j)];
      q.bytes = std::move(transposed);
    }
    return q;
  }

  // quantize_encoding for every encoding, on every core (each thread reuses one scratch for the
  // payloads it must copy). An encoding whose weight is not finite is dropped with its rewrites, each
  // of its readers skipped as non_finite. Returns the quantized weights of the encodings kept.
  static std::vector<QuantizedWeight> quantize_finite(const Settings& s, PassStats& stats, std::vector<Rewrite>& rewrites,
                                                      std::vector<Encoding>& encodings) {
    std::vector<std::optional<QuantizedWeight>> quantized(encodings.size());
    parallel_for<std::vector<float>>(static_cast<int64_t>(encodings.size()), [&](std::vector<float>& scratch, int64_t i) {
      quantized[static_cast<size_t>(i)] = quantize_encoding(encodings[static_cast<size_t>(i)], s, scratch);
    });
    std::vector<Encoding> kept;
    std::vector<QuantizedWeight> kept_quantized;
    std::vector<size_t> new_index(encodings.size(), SIZE_MAX);
    for (size_t i = 0; i < encodings.size(); ++i) {
      if (!quantized[i]) {
        for (const WeightRef* reader : encodings[i].readers) stats.skip(label(*reader->node), "non_finite");
        continue;
      }
      new_index[i] = kept.size();
      kept.push_back(std::move(encodings[i]));
      kept_quantized.push_back(std::move(*quantized[i]));
    }
    std::erase_if(rewrites, [&](const Rewrite& r) { return new_index[r.encoding] == SIZE_MAX; });
    for (Rewrite& r : rewrites) r.encoding = new_index[r.encoding];
    encodings = std::move(kept);
    return kept_quantized;
  }

  // Writes the quantized initializers of one encoding into its owner graph and records its stats.
  static void write_encoding(Model& model, Encoding& e, const Settings& s, PassStats& stats, QuantizedWeight q) {
    const std::vector<int64_t> dims(e.tensor->dims().begin(), e.tensor->dims().end());
    const Int8Grid grid = grid_for(e, s);
    const std::vector<int64_t> stored_dims = e.transpose ? std::vector<int64_t>{dims[1], dims[0]} : dims;
    const int64_t channels = static_cast<int64_t>(q.params.size());
    std::vector<int64_t> param_dims;  // scalar per tensor
    if (e.axis >= 0) {
      if (e.format == Format::kConvInteger) {
        param_dims.assign(dims.size(), 1);
        param_dims[1] = channels;
      } else if (s.emulate_dequantize) {
        param_dims.assign(stored_dims.size(), 1);  // broadcasts along the channel axis in Mul/Sub
        param_dims[static_cast<size_t>(e.axis)] = channels;
      } else {
        param_dims = {channels};
      }
    }
    e.scales.clear();
    for (const auto& p : q.params) e.scales.push_back(p.scale);

    e.quantized = model.unique_name(e.value + "_quantized");
    e.scale = model.unique_name(e.value + "_scale");
    e.owner->add_initializer(make_raw_tensor(e.quantized, grid.is_signed ? TensorProto::INT8 : TensorProto::UINT8,
                                             stored_dims, std::move(q.bytes)));
    e.owner->add_initializer(make_float_tensor(e.scale, param_dims, e.scales));

    // Zero point: omitted for symmetric DequantizeLinear (0 is the default); ConvInteger's is a scalar.
    const bool needs_zero_point = !s.symmetric || e.format != Format::kDequantize;
    if (needs_zero_point) {
      e.zero_point = model.unique_name(e.value + "_zero_point");
      std::vector<int64_t> zp_dims;
      std::vector<int32_t> zps;
      if (s.symmetric) {
        zps = {q.params[0].zero_point};  // the same for every channel
      } else {
        zp_dims = param_dims;
        for (const auto& p : q.params) zps.push_back(p.zero_point);
      }
      if (s.emulate_dequantize && e.format == Format::kDequantize) {
        std::vector<float> z(zps.begin(), zps.end());  // Sub needs the Cast's float type
        e.owner->add_initializer(make_float_tensor(e.zero_point, zp_dims, z));
      } else {
        e.owner->add_initializer(make_8bit_tensor(e.zero_point, zp_dims, zps, grid.is_signed));
      }
    }

    const ReconstructionError& err = q.error;
    nlohmann::json nodes = nlohmann::json::array(), ops = nlohmann::json::array();
    for (const WeightRef* r : e.readers) {
      nodes.push_back(label(*r->node));
      if (std::find(ops.begin(), ops.end(), r->node->op_type()) == ops.end()) ops.push_back(r->node->op_type());
    }
    const auto [smin, smax] = std::minmax_element(e.scales.begin(), e.scales.end());
    stats.layers.push_back({{"name", e.value},
                            {"nodes", nodes},
                            {"op_types", ops},
                            {"format", format_name(e.format)},
                            {"dtype", grid.is_signed ? "int8" : "uint8"},
                            {"axis", e.axis >= 0 ? nlohmann::json(e.axis) : nlohmann::json(nullptr)},
                            {"channels", channels},
                            {"elements", element_count(*e.tensor)},
                            {"scale_min", *smin},
                            {"scale_max", *smax},
                            {"relative_l2", err.relative_l2},
                            {"sqnr_db", std::isfinite(err.sqnr_db) ? nlohmann::json(err.sqnr_db) : nlohmann::json(nullptr)},
                            {"max_abs_error", err.max_abs}});
    stats.count("quantized");
  }

  static NodeProto make_node(Model& model, const std::string& op, const std::string& base,
                             std::vector<std::string> inputs, std::vector<std::string> outputs) {
    NodeProto n;
    n.set_op_type(op);
    n.set_name(model.unique_name(base));
    for (auto& i : inputs) n.add_input(std::move(i));
    for (auto& o : outputs) n.add_output(std::move(o));
    return n;
  }

  // (q - zp) * s as Cast -> [Sub] -> Mul, for opsets without per-axis DequantizeLinear.
  static void emit_cast_dequantize(Model& model, const Encoding& e) {
    const std::string casted = model.unique_name(e.value + "_cast");
    NodeProto cast = make_node(model, "Cast", e.value + "_Cast", {e.quantized}, {casted});
    auto* to = cast.add_attribute();
    to->set_name("to");
    to->set_type(onnx::AttributeProto::INT);
    to->set_i(TensorProto::FLOAT);
    e.owner->add_node(std::move(cast));
    std::string centered = casted;
    if (!e.zero_point.empty()) {
      centered = model.unique_name(e.value + "_centered");
      e.owner->add_node(make_node(model, "Sub", e.value + "_Sub", {casted, e.zero_point}, {centered}));
    }
    e.owner->add_node(make_node(model, "Mul", e.value + "_Mul", {centered, e.scale}, {e.dequantized}));
  }

  // `quantized`: each encoding's weight, from quantize_finite.
  static void apply(Model& model, const Settings& s, PassStats& stats, const std::vector<Rewrite>& rewrites,
                    std::vector<Encoding>& encodings, std::vector<QuantizedWeight> quantized) {
    std::vector<Graph*> touched;
    auto touch = [&](Graph* g) {
      if (std::find(touched.begin(), touched.end(), g) == touched.end()) touched.push_back(g);
    };
    for (size_t i = 0; i < encodings.size(); ++i) {
      Encoding& e = encodings[i];
      write_encoding(model, e, s, stats, std::move(quantized[i]));
      touch(e.owner);
      if (e.format != Format::kDequantize) continue;
      e.dequantized = model.unique_name(e.value + "_dequantized");
      if (s.emulate_dequantize) {
        emit_cast_dequantize(model, e);
        continue;
      }
      std::vector<std::string> inputs{e.quantized, e.scale};
      if (!e.zero_point.empty()) inputs.push_back(e.zero_point);
      NodeProto dq = make_node(model, "DequantizeLinear", e.value + "_DequantizeLinear", inputs, {e.dequantized});
      if (e.axis >= 0) {
        auto* a = dq.add_attribute();
        a->set_name("axis");
        a->set_type(onnx::AttributeProto::INT);
        a->set_i(e.axis);
      }
      e.owner->add_node(std::move(dq));
    }

    // Originals that may become unused: (owner graph, value).
    std::vector<std::pair<Graph*, std::string>> maybe_unused;
    for (const Encoding& e : encodings) maybe_unused.emplace_back(e.owner, e.value);
    std::unordered_map<Graph*, std::unordered_set<const NodeProto*>> replaced;
    // One DynamicQuantizeLinear per activation and graph.
    std::vector<std::pair<std::pair<Graph*, std::string>, std::array<std::string, 3>>> quantized_inputs;

    for (const Rewrite& r : rewrites) {
      const WeightRef& ref = *r.ref;
      const Encoding& e = encodings[r.encoding];
      Graph& g = *ref.graph;
      touch(&g);
      stats.count("rewritten_nodes");
      if (e.format == Format::kDequantize) {
        g.set_input(*ref.node, ref.input_index, e.dequantized);
        continue;
      }
      NodeProto& node = *ref.node;
      const std::string base = label(node);
      const std::string& x = node.input(0);
      auto found = std::find_if(quantized_inputs.begin(), quantized_inputs.end(),
                                [&](const auto& entry) { return entry.first.first == &g && entry.first.second == x; });
      if (found == quantized_inputs.end()) {
        std::array<std::string, 3> names{model.unique_name(x + "_quantized"), model.unique_name(x + "_scale"),
                                         model.unique_name(x + "_zero_point")};
        g.add_node(make_node(model, "DynamicQuantizeLinear", x + "_DynamicQuantizeLinear", {x},
                             {names[0], names[1], names[2]}));
        stats.count("dynamic_quantize_linear");
        quantized_inputs.push_back({{&g, x}, names});
        found = quantized_inputs.end() - 1;
      }
      const auto& [xq, xs, xzp] = found->second;
      const bool conv = e.format == Format::kConvInteger;
      const std::string acc = model.unique_name(base + (conv ? "_ConvInteger" : "_MatMulInteger") + "_out");
      NodeProto integer = make_node(model, conv ? "ConvInteger" : "MatMulInteger",
                                    base + (conv ? "_ConvInteger" : "_MatMulInteger"),
                                    {xq, e.quantized, xzp, e.zero_point}, {acc});
      if (conv) {
        for (const auto& a : node.attribute()) *integer.add_attribute() = a;  // same attributes as Conv
      }
      g.add_node(std::move(integer));
      const std::string accf = model.unique_name(acc + "_float");
      NodeProto cast = make_node(model, "Cast", base + "_Cast", {acc}, {accf});
      auto* to = cast.add_attribute();
      to->set_name("to");
      to->set_type(onnx::AttributeProto::INT);
      to->set_i(TensorProto::FLOAT);
      g.add_node(std::move(cast));
      const std::string scale = model.unique_name(base + "_output_scale");
      g.add_node(make_node(model, "Mul", base + "_scale_Mul", {xs, e.scale}, {scale}));

      // The bias: Gemm's C as is (Add broadcasts like Gemm), Conv's B reshaped to [1, Cout, 1, ...].
      std::string bias;
      if (node.input_size() > 2 && !node.input(2).empty()) {
        bias = node.input(2);
        if (conv) {
          Graph* bias_graph = &g;
          const TensorProto* b = nullptr;
          for (Graph* scope = &g; scope != nullptr && b == nullptr; scope = scope->parent()) {
            b = scope->constant(bias);
            bias_graph = scope;
          }
          std::vector<int64_t> dims(ref.dims.size(), 1);
          dims[1] = ref.dims[0];
          const std::string reshaped = model.unique_name(bias + "_reshaped");
          const std::vector<float> values = to_floats(*b);
          bias_graph->add_initializer(make_float_tensor(reshaped, dims, values));
          maybe_unused.emplace_back(bias_graph, bias);
          touch(bias_graph);
          bias = reshaped;
        }
      }
      const std::string out = node.output(0);
      if (bias.empty()) {
        g.add_node(make_node(model, "Mul", base + "_Mul", {accf, scale}, {out}));
      } else {
        const std::string scaled = model.unique_name(base + "_scaled");
        g.add_node(make_node(model, "Mul", base + "_Mul", {accf, scale}, {scaled}));
        g.add_node(make_node(model, "Add", base + "_bias_Add", {scaled, bias}, {out}));
      }
      replaced[&g].insert(&node);
    }

    for (Graph* g : touched) {
      auto it = replaced.find(g);
      if (it != replaced.end()) g->remove_nodes(it->second);
    }
    // Implicit (outer-scope) reads may have changed: rebuild every index before asking who reads what.
    model.invalidate();
    for (const auto& [g, value] : maybe_unused) remove_if_unused(*g, value, stats);
    // Innermost first: sorting a graph copies its nodes, which leaves views of their subgraphs dangling.
    auto depth = [](Graph* g) {
      int d = 0;
      for (; g->parent() != nullptr; g = g->parent()) ++d;
      return d;
    };
    std::stable_sort(touched.begin(), touched.end(), [&](Graph* a, Graph* b) { return depth(a) > depth(b); });
    for (Graph* g : touched) g->topological_sort();
  }

  static void remove_if_unused(Graph& g, const std::string& value, PassStats& stats) {
    if (!g.consumers(value).empty() || g.is_graph_output(value)) {
      stats.count("originals_kept");
      return;
    }
    if (g.initializer(value) != nullptr) {
      g.remove_initializer(value);
      return;
    }
    NodeProto* producer = g.producer(value);
    if (producer == nullptr || producer->op_type() != "Constant") return;
    auto* infos = g.proto().mutable_value_info();
    for (int i = infos->size() - 1; i >= 0; --i)
      if (infos->Get(i).name() == value) infos->DeleteSubrange(i, 1);
    g.remove_nodes({producer});
  }
};

}  // namespace

std::unique_ptr<Pass> make_quantize_int8_pass() { return std::make_unique<QuantizeInt8Pass>(); }

}  // namespace compress
