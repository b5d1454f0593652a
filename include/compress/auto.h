// `compress auto`: the most compressed model that meets an accuracy budget, chosen layer by layer.
#pragma once

#include <compress/evaluator.h>
#include <compress/model.h>
#include <compress/pipeline.h>
#include <compress/report.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace compress {

struct AutoSettings {
  /// The budget, exactly one set: every output's cosine to the float model >= min_cosine, or (with
  /// labels) the accuracy drop of the first output <= max_accuracy_drop points.
  std::optional<double> min_cosine;
  std::optional<double> max_accuracy_drop;
  /// What the allocation minimizes: size (serialized bytes), latency (the target profile's predicted
  /// ms) or energy (the report's estimate on that target).
  std::string objective = "size";
  /// A built-in target profile (TargetProfile::builtin_names()), for latency and energy.
  std::string target = "ort-cpu";
  /// Concrete input dims for the latency and energy counts; an input not given takes its samples'
  /// dims with the sample axis set to 1 (one inference).
  ShapeOverrides input_shapes;
  /// Per-layer choices the search may use (auto_choice_names()); empty: the objective's default,
  /// auto_default_allow().
  std::vector<std::string> allow;
  /// Node names or op types (globs) no choice may touch.
  std::vector<std::string> global_excludes;
  /// How many search samples measure each layer's sensitivity (the first ones of the search part).
  int64_t sensitivity_samples = 8;
  /// Stop after the sensitivity table: no allocation, no recipe.
  bool dry_run = false;
  /// The directory int8-static's (`calibration=`), low-rank's and prune's (`calibrate=`) recipe entries name.
  /// Its samples are the search part (never the held-out one): the search runs on them in memory,
  /// AutoResult::calibration returns them, and the caller writes them there (one <input-name>.npy
  /// each) before running the recipe. Empty: int8-static is listed as unusable, low-rank and prune
  /// run without samples.
  std::string calibration_dir;
};

struct AutoResult {
  /// The chosen plan; parse_recipe_json(recipe_to_json(recipe)) reproduces it. Empty when no
  /// compressed model meets the budget (or with dry_run).
  std::vector<PassInvocation> recipe;
  bool met = false;
  /// When `recipe` has an int8-static or a data-aware low-rank or prune pass: the search samples it reads, by
  /// input name (samples on axis 0), to be written to AutoSettings::calibration_dir. Empty otherwise.
  eval::TensorMap calibration;
  /// The "auto" report section: budget, sample split, per-layer sensitivity table, search steps and
  /// the metrics of the chosen (or, when none meets the budget, the least compressed) candidate.
  nlohmann::json report;
};

/// The names `AutoSettings::allow` may hold, each one pass with fixed options.
std::vector<std::string> auto_choice_names();
/// The choices an empty `allow` means: int8, int4, fp16; latency and energy add int8-dynamic, the
/// one int8 form a CPU target runs faster than float (weight-only int8 is dequantized every run).
/// int8-static is never a default (README, "Auto": measured on the bundled models).
std::vector<std::string> auto_default_allow(const std::string& objective);

/// Measures every candidate layer x allowed choice on the search samples, then takes layers in the
/// order of the objective's saving per unit of output error and keeps the longest prefix that meets
/// the budget on the search samples and then on the held-out samples (every 4th sample). Choices that
/// do not lower the objective's cost (predicted slower, for latency) are never taken; when no choice
/// is left the model stays float (met, empty recipe, the report's "kept_float" says why). `samples` holds one tensor
/// per model input, samples on axis 0; `labels` (optional) one integer per sample. Throws
/// Error(kUsage) for bad settings or too few samples.
AutoResult auto_search(const Model& model, const eval::TensorMap& samples, const eval::Tensor* labels,
                       const AutoSettings& settings);

/// The report section as text (budget, split, verdict, held-out metrics, the ranked layer table) and
/// as Markdown for a CI job summary.
std::string render_auto_text(const nlohmann::json& auto_report);
std::string render_auto_markdown(const nlohmann::json& auto_report);

}  // namespace compress
