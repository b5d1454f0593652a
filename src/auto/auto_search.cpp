// compress auto: per-layer choices under an accuracy budget.
//
// 1. Split: every 4th sample (index % 4 == 3) is held out; the rest is the search part. The float
//    model's outputs on both parts are the reference.
// 2. Sensitivity: for every layer that reads a constant weight (MatMul, Gemm, Conv, ConvTranspose,
//    Gather, LSTM/GRU/RNN; by the report's layer name, src/report/layer_name.h, so unnamed nodes are
//    candidates too) and every allowed choice, the choice's pass runs on a copy of the model
//    restricted to that node (`nodes=[layer]`); the saving is the drop in the objective's cost
//    (src/auto/objective.h: bytes, predicted ms or estimated uJ on the target), the error 1 - the
//    smallest output cosine on the first `sensitivity_samples` search samples. A choice that does not
//    lower the cost (for latency: predicted slower on the target) or that the pass refuses is listed
//    with its reason and not used, and its error is not measured.
//    Layers are measured in graph order and each candidate runs only from the layer on, from a
//    checkpoint of the float model's activations that moves forward (src/auto/prefix_runner.h).
// 3. Allocation: per layer, the choices on the Pareto front of (saving, error) become
//    upgrade steps (none -> fp16 -> int8 -> int4, say), merged where a later step saves more per unit
//    of error than an earlier one, so each layer's steps have falling ratios. All steps are sorted by
//    saving per error; plan(k) is the first k steps. Errors of layers roughly add up, so the metric is
//    taken as monotonic in k: a binary search finds the largest k that meets the budget on the search
//    part, then, if the held-out part misses it, a second binary search below that k on the held-out
//    part (backing off: more layers stay float).
// 4. The plan becomes a recipe, one pass per choice with its `nodes` list, run by the ordinary
//    pipeline, so `compress IN -o OUT --recipe` reproduces the output byte for byte.
// int8-static (quantize-int8:mode=static), low-rank and prune (their data-aware forms) read the search part
// only, never the held-out one: their recipe entries name `calibration=` / `calibrate=` with
// settings.calibration_dir, the search runs them on those samples in memory
// (Pipeline::PreloadedSamples) and returns them (AutoResult::calibration) for the caller to write
// there, so the recipe reads back the very values the search used. All int8-static layers share one
// pass, so an activation between two chosen layers gets one Q/DQ pair. Each such candidate runs the
// whole model on the search samples (not just from the layer on). Where the samples cannot be written
// as such a directory, int8-static is unusable and low-rank and prune run without them.
// Nothing meets the budget (k = 0): met = false and the report holds the least compressed candidate.
// No usable choice at all (no steps): the float model is the answer, met with an empty recipe.
#include <compress/auto.h>
#include <compress/error.h>
#include <compress/verify.h>

#include "auto/objective.h"
#include "auto/prefix_runner.h"
#include "core/log.h"
#include "passes/weights.h"
#include "report/layer_name.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

namespace compress {

namespace {

struct Choice {
  std::string name;
  std::string pass;
  std::vector<std::pair<std::string, std::string>> options;
  // The pass option that takes the search samples' directory (AutoSettings::calibration_dir), if any.
  std::string samples_option;
  // Without those samples the choice is unusable (else it runs without the option).
  bool needs_samples = false;
};

// In the order the recipe applies them; each touches only its own nodes. int8-static comes last, so
// it calibrates its activations on the model as it will run, the other layers already changed. Its
// self-check is off: the search measures the outputs itself.
const std::vector<Choice>& choices() {
  static const std::vector<Choice> all = {
      {"low-rank", "low-rank", {}, "calibrate"},
      {"prune", "prune-magnitude", {{"sparsity", "0.75"}, {"storage", "sparse"}}, "calibrate"},
      {"fp16", "fp16", {{"weights-only", "true"}}},
      {"int8", "quantize-int8", {}},
      {"int8-dynamic", "quantize-int8", {{"mode", "dynamic"}}},
      {"int4", "quantize-int4", {}},
      {"int8-static", "quantize-int8", {{"mode", "static"}, {"self-check", "false"}}, "calibration", true},
  };
  return all;
}

// The entries `rows` of `t` along `axis`.
eval::Tensor take_rows(const eval::Tensor& t, const std::vector<int64_t>& rows, size_t axis = 0) {
  eval::Tensor out;
  out.dtype = t.dtype;
  out.dims = t.dims;
  out.dims[axis] = static_cast<int64_t>(rows.size());
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= t.dims[d];
  for (size_t d = axis + 1; d < t.dims.size(); ++d) inner *= t.dims[d];
  const int64_t stride = t.dims[axis] * inner;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t r : rows) {
      const int64_t at = o * stride + r * inner;
      if (t.is_float()) out.f.insert(out.f.end(), t.f.begin() + at, t.f.begin() + at + inner);
      else out.i.insert(out.i.end(), t.i.begin() + at, t.i.begin() + at + inner);
    }
  return out;
}

// The axis of an input that holds one entry per sample: the leading one when it has `total`
// entries, else (an RNN state [layers, batch, hidden], say) the first axis with `total` entries
// whose declared dim is not a fixed number. nullopt: the input is shared by every sample.
std::optional<size_t> sample_axis(const eval::Tensor& t, const onnx::ValueInfoProto* declared, int64_t total) {
  if (!t.dims.empty() && t.dims[0] == total) return 0;
  for (size_t a = 1; a < t.dims.size(); ++a) {
    if (t.dims[a] != total) continue;
    const bool fixed = declared != nullptr && declared->type().tensor_type().has_shape() &&
                       static_cast<int>(a) < declared->type().tensor_type().shape().dim_size() &&
                       declared->type().tensor_type().shape().dim(static_cast<int>(a)).has_dim_value();
    if (!fixed) return a;
  }
  return std::nullopt;
}

using SampleAxes = std::map<std::string, std::optional<size_t>>;

// Why int8-static cannot calibrate on these samples through a directory, or "": a calibration
// directory holds one <input-name>.npy per input with the samples on axis 0, so every input needs its
// samples there and a name that reads back as that file's stem.
std::string calibration_refusal(const AutoSettings& settings, const SampleAxes& axes) {
  if (settings.calibration_dir.empty()) return "no calibration directory to write the search samples to";
  for (const auto& [name, axis] : axes) {
    if (axis != std::optional<size_t>(0))
      return "input '" + name + "' has no samples on axis 0, as a calibration directory holds them";
    if (name.empty() || std::filesystem::path(name + ".npy").stem().string() != name)
      return "input name '" + name + "' cannot be a .npy file name in the calibration directory";
  }
  return "";
}

// One part of the samples with the float model's outputs on it.
struct SampleSet {
  std::string name;
  eval::TensorMap inputs;
  std::optional<eval::Tensor> labels;
  eval::TensorMap reference;
  double reference_accuracy = 0;
  int64_t count = 0;
};

SampleSet make_set(std::string name, const eval::TensorMap& samples, const eval::Tensor* labels, const SampleAxes& axes,
                   const std::vector<int64_t>& rows) {
  SampleSet set;
  set.name = std::move(name);
  set.count = static_cast<int64_t>(rows.size());
  for (const auto& [input, t] : samples) {
    const std::optional<size_t> axis = axes.at(input);
    set.inputs[input] = axis ? take_rows(t, rows, *axis) : t;
  }
  if (labels != nullptr) set.labels = take_rows(*labels, rows);
  return set;
}

struct Metrics {
  double min_cosine = 1;
  std::string worst_output;
  std::optional<double> accuracy_drop;

  nlohmann::json to_json() const {
    nlohmann::json j = {{"min_cosine", min_cosine}, {"worst_output", worst_output}};
    if (accuracy_drop) j["accuracy_drop_points"] = *accuracy_drop;
    return j;
  }
};

class Search {
 public:
  Search(const Model& model, const AutoSettings& settings) : model_(model), settings_(settings) {}

  // The samples int8-static calibrates and low-rank whitens on: the search part, held under the
  // directory name the recipe carries, so that no candidate reads a file.
  void set_calibration(const eval::TensorMap& search_inputs) {
    calibration_[settings_.calibration_dir] = std::make_shared<const eval::TensorMap>(search_inputs);
  }
  bool has_calibration() const { return !calibration_.empty(); }

  void prepare(SampleSet& set) const {
    const eval::Evaluator ev(model_);
    int64_t n = 0;
    set.reference = run_on_samples(ev, set.inputs, n);
    first_output_ = ev.output_names().front();
    if (set.labels) set.reference_accuracy = accuracy(set.reference.at(first_output_), *set.labels);
  }

  Metrics measure(const Model& candidate, const SampleSet& set) const {
    const eval::Evaluator ev(candidate);
    int64_t n = 0;
    return metrics(run_on_samples(ev, set.inputs, n), set);
  }

  Metrics metrics(const eval::TensorMap& out, const SampleSet& set) const {
    Metrics m;
    for (const auto& [name, ref] : set.reference) {
      auto it = out.find(name);
      if (it == out.end()) throw Error(ExitCode::kInternal, "auto: candidate lost output '" + name + "'");
      const double c = compare_outputs(ref, it->second).cosine;
      if (!(c >= m.min_cosine)) {  // NaN counts as the worst
        m.min_cosine = std::isnan(c) ? -1.0 : c;
        m.worst_output = name;
      }
    }
    if (set.labels)
      m.accuracy_drop = (set.reference_accuracy - accuracy(out.at(first_output_), *set.labels)) * 100.0;
    return m;
  }

  bool meets(const Metrics& m) const {
    if (settings_.min_cosine && !(m.min_cosine >= *settings_.min_cosine)) return false;
    if (settings_.max_accuracy_drop && !(m.accuracy_drop && *m.accuracy_drop <= *settings_.max_accuracy_drop))
      return false;
    return true;
  }

  // The plan (layer -> choice index) as a pipeline, one pass per choice with the union of its layers,
  // in choices() order. One int8-static pass for all its layers: activations that neighbouring
  // layers share get one Q/DQ pair (a second pass would quantize the first one's DequantizeLinear).
  std::vector<PassInvocation> recipe_of(const std::map<std::string, size_t>& plan) const {
    std::vector<PassInvocation> recipe;
    for (size_t c = 0; c < choices().size(); ++c) {
      PassInvocation inv{choices()[c].pass, choices()[c].options, {}};
      if (!choices()[c].samples_option.empty() && has_calibration())
        inv.options.emplace_back(choices()[c].samples_option, settings_.calibration_dir);
      for (const auto& [layer, choice] : plan)
        if (choice == c) inv.nodes.push_back(layer);
      if (!inv.nodes.empty()) recipe.push_back(std::move(inv));
    }
    return recipe;
  }

  // `runs`, when given, receives what each pass did.
  Model apply(const std::vector<PassInvocation>& recipe, std::vector<PassRun>* runs = nullptr) const {
    Model copy = Model::from_proto(model_.proto());
    auto done = Pipeline::build(PassRegistry::builtin(), recipe, calibration_).run(copy, settings_.global_excludes);
    if (runs != nullptr) *runs = std::move(done);
    return copy;
  }

 private:
  const Model& model_;
  const AutoSettings& settings_;
  Pipeline::PreloadedSamples calibration_;
  mutable std::string first_output_;
};

struct Measured {
  double saving = 0;  // in the objective's unit
  double saving_bytes = 0;
  double error = 0;
};

struct Candidate {
  std::string layer;
  std::string op;
  int64_t params = 0;
  // Per choice index: what it saves and costs in error, or why it is not used ({"unused": reason}
  // with its savings where it was built).
  std::map<size_t, Measured> measured;
  std::map<size_t, nlohmann::json> unusable;
};

struct Step {
  size_t layer = 0;  // index into candidates
  size_t choice = 0;
  double saving = 0;
  double error = 0;
  double ratio() const { return saving / (error + 1e-9); }
};

// Per layer: the Pareto front of its choices as upgrade steps with falling saving-per-error.
std::vector<Step> layer_steps(size_t layer, const Candidate& c) {
  std::vector<std::pair<double, std::pair<double, size_t>>> options;  // saving, (error, choice)
  for (const auto& [choice, m] : c.measured) options.push_back({m.saving, {m.error, choice}});
  std::sort(options.begin(), options.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::pair<double, std::pair<double, size_t>>> front;  // by falling saving, falling error
  double best_error = std::numeric_limits<double>::infinity();
  for (const auto& o : options)
    if (o.second.first < best_error) {
      best_error = o.second.first;
      front.push_back(o);
    }
  std::reverse(front.begin(), front.end());
  std::vector<Step> steps;
  double saving = 0, error = 0;
  for (const auto& [s, ec] : front) {
    Step step{layer, ec.second, s - saving, std::max(ec.first - error, 0.0)};
    saving = s;
    error = std::max(ec.first, error);
    // A later step that pays better than the one before it is only reachable through it: merge.
    while (!steps.empty() && step.ratio() >= steps.back().ratio()) {
      step.saving += steps.back().saving;
      step.error += steps.back().error;
      steps.pop_back();
    }
    steps.push_back(step);
  }
  return steps;
}

}  // namespace

std::vector<std::string> auto_choice_names() {
  std::vector<std::string> names;
  for (const auto& c : choices()) names.push_back(c.name);
  return names;
}

std::vector<std::string> auto_default_allow(const std::string& objective) {
  if (objective == "size") return {"int8", "int4", "fp16"};
  return {"int8", "int8-dynamic", "int4", "fp16"};
}

AutoResult auto_search(const Model& model, const eval::TensorMap& samples, const eval::Tensor* labels,
                       const AutoSettings& settings) {
  if (settings.min_cosine.has_value() == settings.max_accuracy_drop.has_value())
    throw Error(ExitCode::kUsage, "auto needs exactly one budget: --min-cosine X or --max-accuracy-drop POINTS");
  if (settings.max_accuracy_drop && labels == nullptr)
    throw Error(ExitCode::kUsage, "--max-accuracy-drop needs --labels");
  const std::vector<std::string> allow = settings.allow.empty() ? auto_default_allow(settings.objective) : settings.allow;
  std::set<size_t> allowed;
  for (const auto& name : allow) {
    const auto names = auto_choice_names();
    auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      std::string valid;
      for (const auto& n : names) valid += (valid.empty() ? "" : ", ") + n;
      throw Error(ExitCode::kUsage, "--allow: unknown choice '" + name + "' (valid: " + valid + ")");
    }
    allowed.insert(static_cast<size_t>(it - names.begin()));
  }
  if (allowed.empty()) throw Error(ExitCode::kUsage, "--allow names no choice");

  // The sample count: the leading dim of the inputs that have one.
  int64_t total = -1;
  for (const auto& [name, t] : samples)
    if (!t.dims.empty()) total = std::max(total, t.dims[0]);
  if (total < 2) throw Error(ExitCode::kUsage, "auto needs at least 2 samples (one search, one held out)");
  if (labels != nullptr && labels->numel() != total)
    throw Error(ExitCode::kUsage, "--labels has " + std::to_string(labels->numel()) + " labels for " +
                                      std::to_string(total) + " samples");
  std::vector<int64_t> search_rows, held_rows;
  for (int64_t k = 0; k < total; ++k) (k % 4 == 3 ? held_rows : search_rows).push_back(k);
  if (held_rows.empty()) {  // 2 or 3 samples: hold out the last
    held_rows.push_back(search_rows.back());
    search_rows.pop_back();
  }
  const int64_t sens_count = std::min<int64_t>(settings.sensitivity_samples, static_cast<int64_t>(search_rows.size()));
  const std::vector<int64_t> sens_rows(search_rows.begin(), search_rows.begin() + sens_count);

  SampleAxes axes;
  for (const auto& [name, t] : samples) {
    const onnx::ValueInfoProto* declared = nullptr;
    for (const auto& in : model.proto().graph().input())
      if (in.name() == name) declared = &in;
    axes[name] = sample_axis(t, declared, total);
  }

  // One inference's input dims for the latency and energy counts: the samples' own, sample axis 1.
  ShapeOverrides shapes = settings.input_shapes;
  for (const auto& [name, t] : samples) {
    if (shapes.count(name) || t.dims.empty()) continue;
    std::vector<int64_t> dims = t.dims;
    if (const auto axis = axes.at(name)) dims[*axis] = 1;
    shapes[name] = dims;
  }
  const AutoObjective objective(settings.objective, settings.target, shapes);

  Search search(model, settings);
  SampleSet search_set = make_set("search", samples, labels, axes, search_rows);
  SampleSet held_set = make_set("held_out", samples, labels, axes, held_rows);
  SampleSet sens_set = make_set("sensitivity", samples, labels, axes, sens_rows);
  search.prepare(search_set);
  search.prepare(held_set);
  search.prepare(sens_set);
  const bool samples_allowed =
      std::any_of(allowed.begin(), allowed.end(), [](size_t c) { return !choices()[c].samples_option.empty(); });
  const std::string samples_refused = samples_allowed ? calibration_refusal(settings, axes) : "";
  if (samples_allowed && samples_refused.empty()) search.set_calibration(search_set.inputs);

  // The search runs the pipeline hundreds of times: its per-pass lines would drown the log.
  const auto level = logger()->level();
  logger()->set_level(std::max(level, spdlog::level::warn));
  struct RestoreLevel {
    spdlog::level::level_enum level;
    ~RestoreLevel() { logger()->set_level(level); }
  } restore{level};

  // Candidates: nodes that read a constant weight, by their report layer name (what `nodes` matches).
  Model scratch = Model::from_proto(model.proto());
  PassStats ignored;
  const auto refs = collect_weights(scratch, PassContext(PassOptions(), settings.global_excludes),
                                    {"MatMul", "Gemm", "Conv", "ConvTranspose", "Gather", "LSTM", "GRU", "RNN"}, 1,
                                    ignored);
  // In graph order, so the sensitivity runs' float checkpoint only moves forward.
  std::map<const onnx::NodeProto*, int> position;
  for (int i = 0; i < scratch.proto().graph().node_size(); ++i) position[&scratch.proto().graph().node(i)] = i;
  std::vector<std::pair<int, Candidate>> found;
  std::set<std::string> seen;
  for (const auto& ref : refs) {
    const std::string name = layer_name(*ref.node, "");
    if (!seen.insert(name).second) continue;
    int64_t params = 1;
    for (int64_t d : ref.dims) params *= d;
    auto at = position.find(ref.node);  // subgraph nodes have none: they come first
    found.push_back({at == position.end() ? -1 : at->second, {name, ref.node->op_type(), params, {}, {}}});
  }
  std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Candidate> candidates;
  for (auto& f : found) candidates.push_back(std::move(f.second));

  const auto original_bytes = static_cast<double>(model.serialized_bytes());
  const double original_cost = objective.cost(model);
  const bool by_size = objective.name() == "size";
  PrefixRunner sensitivity(model, sens_set.inputs);
  for (auto& c : candidates) {
    for (size_t choice : allowed) {
      if (choices()[choice].needs_samples && !samples_refused.empty()) {
        c.unusable[choice] = {{"unused", samples_refused}};
        continue;
      }
      std::map<std::string, size_t> plan{{c.layer, choice}};
      try {
        std::vector<PassRun> runs;
        Model candidate = search.apply(search.recipe_of(plan), &runs);
        // int8-static that quantized no weight (a Conv whose reduction is too short, say) may still
        // have folded the layer's BatchNormalization: a saving, but not int8.
        if (choices()[choice].name == "int8-static" && !runs.at(0).stats.counters.count("weights_quantized")) {
          std::string why = "the pass quantized nothing";
          for (const auto& [counter, n] : runs.at(0).stats.counters)
            if (counter.rfind("skipped.", 0) == 0 && counter != "skipped.excluded") why += " (" + counter + ")";
          c.unusable[choice] = {{"unused", why}};
          continue;
        }
        const double saving_bytes = original_bytes - static_cast<double>(candidate.serialized_bytes());
        const double saving = by_size ? saving_bytes : original_cost - objective.cost(candidate);
        if (!(saving > 0)) {
          c.unusable[choice] = {{"unused", objective.no_saving_reason(saving)}, {"saving", saving}, {"saving_bytes", saving_bytes}};
          continue;
        }
        const Metrics m = search.metrics(sensitivity.run(std::move(candidate)), sens_set);
        c.measured[choice] = {saving, saving_bytes, std::max(0.0, 1.0 - m.min_cosine)};
      } catch (const Error& e) {
        c.unusable[choice] = {{"unused", e.what()}};
      }
    }
  }

  AutoResult result;
  nlohmann::json& report = result.report;
  report["objective"] = objective.name();
  report["target"] = objective.target();
  report["saving_unit"] = objective.unit();
  report["input_shapes"] = shapes;
  report["sensitivity_runs"] = {{"from_float_checkpoint", sensitivity.partial_runs()},
                                {"full", sensitivity.full_runs()},
                                {"nodes_skipped", sensitivity.skipped_nodes()},
                                {"nodes_run", sensitivity.run_nodes()}};
  report["budget"] = settings.min_cosine ? nlohmann::json{{"min_cosine", *settings.min_cosine}}
                                         : nlohmann::json{{"max_accuracy_drop", *settings.max_accuracy_drop}};
  report["allow"] = allow;
  report["samples"] = {{"total", total},
                       {"search", search_set.count},
                       {"held_out", held_set.count},
                       {"sensitivity", sens_set.count},
                       {"split", "samples with index % 4 == 3 are held out (the last one with 2-3 samples)"}};
  if (samples_allowed)
    report["samples"]["calibration"] =
        samples_refused.empty()
            ? nlohmann::json{{"dir", settings.calibration_dir}, {"samples", search_set.count}, {"part", "search"}}
            : nlohmann::json{{"refused", samples_refused}};

  std::vector<Step> steps;
  for (size_t i = 0; i < candidates.size(); ++i)
    for (const Step& s : layer_steps(i, candidates[i])) steps.push_back(s);
  std::stable_sort(steps.begin(), steps.end(), [](const Step& a, const Step& b) { return a.ratio() > b.ratio(); });

  // The ranked sensitivity table: layers in the order their first step is taken.
  std::map<size_t, size_t> rank;
  for (size_t k = 0; k < steps.size(); ++k) rank.emplace(steps[k].layer, k);
  const auto layer_table = [&](const std::map<std::string, size_t>& plan) {
    std::vector<size_t> order(candidates.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const size_t ra = rank.count(a) ? rank.at(a) : steps.size(), rb = rank.count(b) ? rank.at(b) : steps.size();
      return ra < rb;
    });
    nlohmann::json layers = nlohmann::json::array();
    for (size_t i : order) {
      const Candidate& c = candidates[i];
      nlohmann::json per_choice = nlohmann::json::object();
      for (const auto& [choice, m] : c.measured)
        per_choice[choices()[choice].name] = {{"saving", m.saving}, {"saving_bytes", m.saving_bytes}, {"output_error", m.error}};
      for (const auto& [choice, why] : c.unusable) per_choice[choices()[choice].name] = why;
      auto chosen = plan.find(c.layer);
      layers.push_back({{"name", c.layer},
                        {"op", c.op},
                        {"params", c.params},
                        {"choices", per_choice},
                        {"chosen", chosen == plan.end() ? nlohmann::json(nullptr)
                                                        : nlohmann::json(choices()[chosen->second].name)}});
    }
    return layers;
  };
  if (settings.dry_run) {
    report["layers"] = layer_table({});
    return result;
  }
  report["objective_cost"] = {{"float", original_cost}};
  if (steps.empty()) {
    // Nothing to trade error for: the float model is the most compressed (or fastest) one in budget.
    std::string why = candidates.empty() ? "the model has no layer that reads a constant weight"
                      : by_size            ? "no allowed choice makes any layer smaller"
                      : objective.name() == "latency"
                          ? "no allowed choice is predicted faster on " + objective.target() + ": each is predicted slower or equal"
                          : "no allowed choice lowers the energy estimate on " + objective.target();
    report["kept_float"] = why + " (auto.layers lists every choice with its saving and reason)";
    report["layers"] = layer_table({});
    report["steps"] = 0;
    report["chosen_steps"] = 0;
    report["evaluations"] = nlohmann::json::array();
    report["met"] = true;
    report["recipe"] = recipe_to_json({});
    result.met = true;
    return result;
  }

  const auto plan_of = [&](size_t k) {
    std::map<std::string, size_t> plan;
    for (size_t i = 0; i < k; ++i) plan[candidates[steps[i].layer].layer] = steps[i].choice;
    return plan;
  };
  nlohmann::json evaluations = nlohmann::json::array();
  std::map<std::pair<size_t, std::string>, Metrics> cache;
  const auto evaluate = [&](size_t k, const SampleSet& set) {
    auto key = std::make_pair(k, set.name);
    if (!cache.count(key)) {
      const Metrics m = search.measure(search.apply(search.recipe_of(plan_of(k))), set);
      cache[key] = m;
      nlohmann::json e = m.to_json();
      e["steps"] = k;
      e["samples"] = set.name;
      e["meets_budget"] = search.meets(m);
      evaluations.push_back(e);
    }
    return cache.at(key);
  };
  // Largest k in [0, hi] meeting the budget on `set`, k = 0 (the float model) meeting it by definition.
  const auto longest_meeting = [&](size_t hi, const SampleSet& set) {
    if (hi == 0 || search.meets(evaluate(hi, set))) return hi;
    size_t lo = 0;
    while (hi - lo > 1) {
      const size_t mid = lo + (hi - lo) / 2;
      (search.meets(evaluate(mid, set)) ? lo : hi) = mid;
    }
    return lo;
  };
  const size_t on_search = longest_meeting(steps.size(), search_set);
  const size_t chosen = longest_meeting(on_search, held_set);

  const size_t shown = chosen > 0 ? chosen : std::min<size_t>(1, steps.size());
  const auto plan = plan_of(shown);
  report["layers"] = layer_table(chosen > 0 ? plan : std::map<std::string, size_t>{});
  report["steps"] = steps.size();
  report["chosen_steps"] = chosen;
  result.met = chosen > 0;
  if (shown > 0) {
    report["held_out"] = evaluate(shown, held_set).to_json();
    report["search"] = evaluate(shown, search_set).to_json();
    report["objective_cost"]["chosen"] = objective.cost(search.apply(search.recipe_of(plan)));
  }
  report["evaluations"] = evaluations;
  report["met"] = result.met;
  if (result.met) {
    result.recipe = search.recipe_of(plan);
    for (const auto& [layer, choice] : plan)
      if (!choices()[choice].samples_option.empty() && search.has_calibration()) result.calibration = search_set.inputs;
  }
  report["recipe"] = recipe_to_json(search.recipe_of(plan));
  return result;
}

}  // namespace compress
