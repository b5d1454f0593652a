// The objective's cost of one model. Latency and energy come from the whole model's statistics, not
// from the changed layer's own row: a choice also adds nodes (DynamicQuantizeLinear, Cast, Mul, a
// weight DequantizeLinear) and can change what the target fuses around the layer, and the sum of the
// model's layers is where all of that shows.
#include "auto/objective.h"

#include <compress/error.h>

#include <algorithm>

namespace compress {

AutoObjective::AutoObjective(const std::string& name, const std::string& target, ShapeOverrides shapes)
    : name_(name), shapes_(std::move(shapes)) {
  const auto all = names();
  if (std::find(all.begin(), all.end(), name) == all.end())
    throw Error(ExitCode::kUsage, "--objective: unknown objective '" + name + "' (valid: size, latency, energy)");
  try {
    profile_ = &TargetProfile::builtin(target);
  } catch (const Error& e) {
    throw Error(e.code(), std::string("--target: ") + e.what());
  }
}

double AutoObjective::cost(const Model& model) const {
  if (name_ == "size") return static_cast<double>(model.serialized_bytes());
  ModelStats stats = compute_stats(model, shapes_);
  predict_latency(model, stats, *profile_);
  return name_ == "latency" ? stats.predicted_latency_ms : estimate_energy(stats).total_uj();
}

std::string AutoObjective::unit() const {
  if (name_ == "size") return "bytes";
  return name_ == "latency" ? "ms" : "uJ";
}

std::string AutoObjective::no_saving_reason(double saving) const {
  if (saving < 0 && name_ == "latency") return "predicted_slower";
  if (saving < 0 && name_ == "energy") return "more_energy";
  return "no_saving";
}

}  // namespace compress
