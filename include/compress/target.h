// Target profiles: what a runtime runs natively and a per-layer latency model fitted from
// measurements (targets/*.json, embedded in the binary). A profile predicts; it never rewrites.
#pragma once

#include <compress/model.h>
#include <compress/report.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace compress {

/// One target: a name, where its coefficients came from, and the cost of each latency term in
/// microseconds per unit ("conv.fp32.mac": us per MAC of a float32 Conv, "node": us per executed node).
struct TargetProfile {
  std::string name;
  std::string description;
  nlohmann::json fitted_on;  // cpu, runtime, script, grid size, fit error
  nlohmann::json native;     // which formats run natively (documentation; qdq_fused drives prediction)
  bool qdq_fused = false;    // activation QuantizeLinear/DequantizeLinear around a layer fuse into an integer kernel
  std::map<std::string, double> cost_us;

  /// Parses a profile; throws Error(kBadInput) naming the missing or wrong field.
  static TargetProfile from_json(const nlohmann::json& j);
  /// The profile named `name` among the built-in ones; Error(kUsage) naming the choices otherwise.
  static const TargetProfile& builtin(const std::string& name);
  /// Names of the built-in profiles, sorted.
  static std::vector<std::string> builtin_names();
};

/// Latency terms of a model: term -> quantity (MACs, elements, nodes), the linear features the
/// profile's costs multiply. Used by the fit script (bench/target/fit.py) through `compress inspect`.
using LatencyTerms = std::map<std::string, double>;

/// Predicts each layer's latency on `profile` (fills LayerStats::predicted_latency_ms of the main-graph
/// and subgraph layers, and ModelStats::predicted_latency_ms with the session overhead added) and
/// returns the model's latency terms. `model` must be the model `stats` was computed from.
LatencyTerms predict_latency(const Model& model, ModelStats& stats, const TargetProfile& profile);

/// A one-line warning when `after` is predicted slower than `before` on `target` (both predicted),
/// naming the layers (matched by name) that got slower, slowest first; empty otherwise.
std::string slower_warning(const ModelStats& before, const ModelStats& after, const std::string& target);

}  // namespace compress
