// What `compress auto` minimizes, as one number per model, so that a layer's saving under any
// objective is the same subtraction: cost(float model) - cost(model with only that layer changed).
#pragma once

#include <compress/model.h>
#include <compress/report.h>
#include <compress/target.h>

#include <string>
#include <vector>

namespace compress {

class AutoObjective {
 public:
  /// `name`: size | latency | energy; `target`: a built-in profile name; `shapes`: concrete input
  /// dims for the latency and energy counts (one sample). Throws Error(kUsage) naming --objective or
  /// --target when a name is unknown.
  AutoObjective(const std::string& name, const std::string& target, ShapeOverrides shapes);

  /// size: serialized bytes; latency: the profile's predicted ms (compress/target.h); energy: the
  /// report's estimate in uJ per inference on that target (estimate_energy).
  double cost(const Model& model) const;

  const std::string& name() const { return name_; }
  const std::string& target() const { return profile_->name; }
  /// "bytes", "ms" or "uJ".
  std::string unit() const;
  /// Why a choice that does not lower the cost is unusable: "predicted_slower" for latency,
  /// "more_energy" for energy, "no_saving" when it costs exactly the same or for size.
  std::string no_saving_reason(double saving) const;

  static std::vector<std::string> names() { return {"size", "latency", "energy"}; }

 private:
  std::string name_;
  const TargetProfile* profile_;
  ShapeOverrides shapes_;
};

}  // namespace compress
