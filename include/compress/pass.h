// The pass interface: a plain class describing its options and rewriting a Model in place.
#pragma once

#include <compress/evaluator.h>
#include <compress/model.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace compress {

/// One documented option of a pass. Values arrive as text and are checked against the spec
/// before any pass runs.
struct OptionSpec {
  /// kSamples: a directory with one <input-name>.npy per model input (leading axis = samples), or
  /// empty for none. The pipeline loads it before any pass runs (passes never touch files).
  enum class Type { kBool, kInt, kFloat, kString, kEnum, kList, kSamples };
  std::string name;  // kebab-case
  Type type = Type::kString;
  std::string default_value;  // canonical text; lists as "[a,b]"
  std::string help;
  double min = -std::numeric_limits<double>::infinity();  // kInt / kFloat, inclusive
  double max = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices;  // kEnum
};

struct PassInfo {
  std::string name;  // kebab-case CLI name, e.g. "quantize-int8"
  std::string summary;
  std::vector<OptionSpec> options;
};

/// Validated option values of one pass invocation, defaults filled in.
class PassOptions {
 public:
  PassOptions() = default;
  explicit PassOptions(std::map<std::string, std::string> values) : values_(std::move(values)) {}
  bool get_bool(const std::string& name) const;
  int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;
  std::vector<std::string> get_list(const std::string& name) const;
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  std::map<std::string, std::string> values_;
};

/// What a pass changed: named counters ("quantized", "skipped.too_small", ...), warnings, and
/// one JSON object per touched or skipped tensor/layer for the report.
struct PassStats {
  std::map<std::string, int64_t> counters;
  std::vector<std::string> warnings;
  nlohmann::json layers = nlohmann::json::array();

  void count(const std::string& counter, int64_t by = 1) { counters[counter] += by; }
  /// Counts "skipped.<reason>" and records {"name", "skipped": reason} in layers.
  void skip(const std::string& what, const std::string& reason);
};

/// Sample inputs of kSamples options, by option name: input name -> tensor with samples on axis 0.
using SampleSets = std::map<std::string, std::shared_ptr<const eval::TensorMap>>;

/// Everything a pass may read besides the model.
class PassContext {
 public:
  /// `only_nodes`, when set, restricts the pass to the nodes with those exact layer names (the node's
  /// name, or "<op_type>:<first output>" when it has none, as the report names layers); every other
  /// node counts as excluded.
  PassContext(PassOptions options, std::vector<std::string> global_excludes, SampleSets samples = {},
              std::shared_ptr<const std::set<std::string>> only_nodes = nullptr)
      : options_(std::move(options)),
        global_excludes_(std::move(global_excludes)),
        samples_(std::move(samples)),
        only_nodes_(std::move(only_nodes)) {}
  const PassOptions& options() const { return options_; }
  /// The samples loaded for kSamples option `option`; nullptr when the option is empty.
  const eval::TensorMap* samples(const std::string& option) const {
    auto it = samples_.find(option);
    return it == samples_.end() ? nullptr : it->second.get();
  }
  /// True when the node's name or op type matches a glob of the global --exclude flags or of the
  /// pass's own `exclude` option (if it has one), or when the pass is restricted to other nodes.
  bool is_excluded(const onnx::NodeProto& node) const;
  /// This context with `more` layer names added to its node restriction; unchanged without one.
  PassContext with_nodes(const std::vector<std::string>& more) const;

 private:
  PassOptions options_;
  std::vector<std::string> global_excludes_;
  SampleSets samples_;
  std::shared_ptr<const std::set<std::string>> only_nodes_;
};

class Pass {
 public:
  virtual ~Pass() = default;
  virtual PassInfo info() const = 0;
  /// Rewrites the model in place. Nodes that do not qualify are skipped and counted with a reason;
  /// Error(kUnsupported) only when the pass cannot handle the model at all.
  virtual PassStats run(Model& model, const PassContext& context) const = 0;
};

class PassRegistry {
 public:
  using Factory = std::function<std::unique_ptr<Pass>()>;
  void add(Factory factory);
  /// nullptr when no pass has that name.
  const Pass* find(std::string_view name) const;
  /// Every pass, sorted by name.
  std::vector<const Pass*> all() const;
  /// The registry with every built-in pass (src/passes/register_builtin.cpp).
  static const PassRegistry& builtin();

 private:
  std::vector<std::unique_ptr<Pass>> passes_;
};

/// The one list of built-in passes.
void register_builtin_passes(PassRegistry& registry);

/// fnmatch-style glob ('*', '?', '[...]') of a whole string.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace compress
