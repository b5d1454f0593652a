// Pipelines: the `-p` text form and the JSON recipe form, validated against the registry.
#pragma once

#include <compress/pass.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <set>
#include <map>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace compress {

/// One pass as the user wrote it, before validation.
struct PassInvocation {
  std::string name;
  std::vector<std::pair<std::string, std::string>> options;
  /// When not empty, the pass touches only the nodes with these exact layer names (`nodes=[a,b]` in
  /// text, a "nodes" array in a recipe; an unnamed node as "<op_type>:<first output>", the report's
  /// name for it): per-layer plans such as `compress auto` writes.
  std::vector<std::string> nodes;
};

/// Parses "a:k=v:k2=[x,y],b" (passes by ',', options by ':', lists in brackets); `nodes=[...]` is the
/// node restriction every pass takes. Throws Error(kUsage).
std::vector<PassInvocation> parse_pipeline_text(std::string_view text);
/// Parses {"passes": [{"name": "...", "options": {...}, "nodes": [...]}], "input_shapes": {...}}; the
/// optional input_shapes (input name -> dims, as compress auto writes them) is checked here and
/// applied by the caller. Throws Error(kUsage).
std::vector<PassInvocation> parse_recipe_json(const nlohmann::json& recipe);
/// The recipe form of `invocations`: parse_recipe_json of it gives them back.
nlohmann::json recipe_to_json(const std::vector<PassInvocation>& invocations);

/// The result of one pass in a run.
struct PassRun {
  std::string name;
  std::string canonical;  // "name:opt=value:..." with every option
  PassStats stats;
  double seconds = 0;
  /// Report layer names (see LayerStats::name) of the nodes this pass created -> the layer, in the
  /// model before this pass, each came from; the report pairs layers before and after with it.
  std::map<std::string, std::string> origins;
  /// Layers this pass removed without a successor (dead nodes, merged duplicates).
  std::vector<std::string> removed;
};

class Pipeline {
 public:
  /// kSamples option values (directory paths) whose samples the caller already holds.
  using PreloadedSamples = std::map<std::string, std::shared_ptr<const eval::TensorMap>>;

  /// Checks every pass name, option name and value; fills defaults. Throws Error(kUsage) naming the
  /// culprit and the valid choices. A kSamples value found in `preloaded` takes those samples instead
  /// of reading the directory (`compress auto` runs its int8-static candidates on the search samples
  /// it then writes there, so that the recipe reads the same values back).
  static Pipeline build(const PassRegistry& registry, const std::vector<PassInvocation>& invocations,
                        const PreloadedSamples& preloaded = {});

  /// The canonical text of the whole pipeline; parses back to the same pipeline.
  std::string canonical() const;
  bool empty() const { return steps_.empty(); }
  size_t size() const { return steps_.size(); }

  /// Called after each pass with the model it produced; may add warnings to the run (logged with
  /// the pass's own).
  using AfterPass = std::function<void(Model& model, PassRun& run)>;

  /// Runs the passes in order, logging each one to spdlog.
  std::vector<PassRun> run(Model& model, const std::vector<std::string>& global_excludes,
                           const AfterPass& after_pass = {}) const;

 private:
  struct Step {
    const Pass* pass;
    PassOptions options;
    std::string canonical;
    SampleSets samples;
    std::shared_ptr<const std::set<std::string>> nodes;  // null: every node
  };
  std::vector<Step> steps_;
};

}  // namespace compress
