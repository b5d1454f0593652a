#include <compress/error.h>
#include <compress/npy.h>
#include <compress/pipeline.h>
#include <spdlog/spdlog.h>

#include "core/log.h"
#include "pipeline/provenance.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cmath>
#include <set>
#include <sstream>

namespace compress {

namespace {

[[noreturn]] void usage(const std::string& message) { throw Error(ExitCode::kUsage, message); }

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// Splits on `sep` outside brackets.
std::vector<std::string> split_top(std::string_view text, char sep) {
  std::vector<std::string> parts;
  int depth = 0;
  std::string current;
  for (char c : text) {
    if (c == '[') ++depth;
    if (c == ']') {
      if (--depth < 0) usage("pipeline '" + std::string(text) + "': unbalanced ']'");
    }
    if (c == sep && depth == 0) {
      parts.push_back(trim(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (depth != 0) usage("pipeline '" + std::string(text) + "': unbalanced '['");
  parts.push_back(trim(current));
  return parts;
}

// "[a,b]"; built with += because GCC 12 misreports `"[" + std::string&&` (-Wrestrict).
std::string bracketed(const std::string& inner) {
  std::string out = "[";
  out += inner;
  out += ']';
  return out;
}

// The node restriction every pass takes (not an option of any one pass).
constexpr const char* kNodesOption = "nodes";
// A recipe's optional top-level key: the input shapes its output was made with.
constexpr const char* kRecipeInputShapes = "input_shapes";

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

// "[a,b]" or "a" -> {"a", "b"}; empty items dropped.
std::vector<std::string> list_items(const std::string& value) {
  std::string inner = value;
  if (inner.size() >= 2 && inner.front() == '[' && inner.back() == ']') inner = inner.substr(1, inner.size() - 2);
  std::vector<std::string> items;
  for (auto& item : split_top(inner, ','))
    if (!item.empty()) items.push_back(item);
  return items;
}

std::string option_names(const PassInfo& info) {
  std::vector<std::string> names;
  for (const auto& o : info.options) names.push_back(o.name);
  return names.empty() ? "none" : join(names, ", ");
}

std::string format_number(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

// Checks `value` against `spec` and returns its canonical text.
std::string canonical_value(const std::string& pass, const OptionSpec& spec, const std::string& value) {
  const std::string where = "option '" + spec.name + "' of pass '" + pass + "'";
  auto check_range = [&](double v) {
    if (v < spec.min || v > spec.max)
      usage(where + " = " + value + " is out of range [" + format_number(spec.min) + ", " + format_number(spec.max) + "]");
  };
  switch (spec.type) {
    case OptionSpec::Type::kBool:
      if (value == "true" || value == "1" || value == "yes" || value == "on") return "true";
      if (value == "false" || value == "0" || value == "no" || value == "off") return "false";
      usage(where + " expects true or false, got '" + value + "'");
    case OptionSpec::Type::kInt: {
      size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(value, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != value.size() || value.empty()) usage(where + " expects an integer, got '" + value + "'");
      check_range(static_cast<double>(v));
      return std::to_string(v);
    }
    case OptionSpec::Type::kFloat: {
      size_t used = 0;
      double v = 0;
      try {
        v = std::stod(value, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != value.size() || value.empty() || !std::isfinite(v))
        usage(where + " expects a number, got '" + value + "'");
      check_range(v);
      return format_number(v);
    }
    case OptionSpec::Type::kEnum:
      for (const auto& c : spec.choices)
        if (c == value) return value;
      usage(where + " = '" + value + "' is not one of: " + join(spec.choices, ", "));
    case OptionSpec::Type::kList:
      return bracketed(join(list_items(value), ","));
    case OptionSpec::Type::kString:
    case OptionSpec::Type::kSamples:
      return value;
  }
  return value;
}

// Option values as canonical text: lists use [a,b], JSON scalars their plain text.
std::string json_option_text(const std::string& pass, const std::string& key, const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number()) return format_number(v.get<double>());
  if (v.is_array()) {
    std::vector<std::string> items;
    for (const auto& item : v) items.push_back(json_option_text(pass, key, item));
    return bracketed(join(items, ","));
  }
  usage("recipe: option '" + key + "' of pass '" + pass + "' must be a string, number, boolean or list");
}

// Loads every <input-name>.npy of a samples directory; a usage error names what is wrong.
std::shared_ptr<const eval::TensorMap> load_samples(const std::string& pass, const std::string& option,
                                                    const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    usage("option '" + option + "' of pass '" + pass + "': '" + dir + "' is not a directory");
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".npy") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) usage("option '" + option + "' of pass '" + pass + "': no .npy files in '" + dir + "'");
  auto samples = std::make_shared<eval::TensorMap>();
  for (const auto& f : files) (*samples)[f.stem().string()] = eval::read_npy(f);
  return samples;
}

}  // namespace

std::vector<PassInvocation> parse_pipeline_text(std::string_view text) {
  std::vector<PassInvocation> result;
  if (trim(text).empty()) return result;
  for (const auto& part : split_top(text, ',')) {
    if (part.empty()) usage("pipeline '" + std::string(text) + "' has an empty pass (stray ',')");
    auto fields = split_top(part, ':');
    PassInvocation inv;
    inv.name = fields[0];
    if (inv.name.empty()) usage("pipeline '" + std::string(text) + "': pass name missing before ':'");
    for (size_t i = 1; i < fields.size(); ++i) {
      const auto eq = fields[i].find('=');
      if (eq == std::string::npos || eq == 0)
        usage("pass '" + inv.name + "': option '" + fields[i] + "' must be written name=value");
      const std::string key = trim(fields[i].substr(0, eq)), value = trim(fields[i].substr(eq + 1));
      if (key == kNodesOption) {
        inv.nodes = list_items(value);
        if (inv.nodes.empty()) usage("pass '" + inv.name + "': nodes=[...] names no node");
      } else {
        inv.options.emplace_back(key, value);
      }
    }
    result.push_back(std::move(inv));
  }
  return result;
}

std::vector<PassInvocation> parse_recipe_json(const nlohmann::json& recipe) {
  if (!recipe.is_object() || !recipe.contains("passes") || !recipe["passes"].is_array())
    usage("recipe must be a JSON object with a \"passes\" array");
  for (const auto& [key, value] : recipe.items()) {
    if (key == kRecipeInputShapes) {
      // The shapes the recipe's output was made with (compress auto's --recipe-out): applied by the
      // CLI like --input-shape; checked here so that a bad recipe fails before any pass runs.
      if (!value.is_object()) usage("recipe: input_shapes must map input names to arrays of positive dims");
      for (const auto& [name, dims] : value.items()) {
        (void)name;
        if (!dims.is_array() || dims.empty()) usage("recipe: input_shapes must map input names to arrays of positive dims");
        for (const auto& d : dims)
          if (!d.is_number_integer() || d.get<int64_t>() <= 0)
            usage("recipe: input_shapes must map input names to arrays of positive dims");
      }
    } else if (key != "passes") {
      usage("recipe: unknown key '" + key + "' (valid: passes, input_shapes)");
    }
  }
  std::vector<PassInvocation> result;
  for (const auto& entry : recipe["passes"]) {
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string())
      usage("recipe: each pass needs a \"name\" string");
    PassInvocation inv;
    inv.name = entry["name"].get<std::string>();
    for (const auto& [key, unused] : entry.items()) {
      (void)unused;
      if (key != "name" && key != "options" && key != kNodesOption)
        usage("recipe: pass '" + inv.name + "' has unknown key '" + key + "' (valid: name, options, nodes)");
    }
    if (entry.contains("options")) {
      if (!entry["options"].is_object()) usage("recipe: options of pass '" + inv.name + "' must be an object");
      for (const auto& [key, value] : entry["options"].items())
        inv.options.emplace_back(key, json_option_text(inv.name, key, value));
    }
    if (entry.contains(kNodesOption)) {
      const auto& nodes = entry[kNodesOption];
      if (!nodes.is_array() || nodes.empty())
        usage("recipe: nodes of pass '" + inv.name + "' must be a non-empty array of node names");
      for (const auto& n : nodes) {
        if (!n.is_string() || n.get<std::string>().empty())
          usage("recipe: nodes of pass '" + inv.name + "' must be non-empty strings");
        inv.nodes.push_back(n.get<std::string>());
      }
    }
    result.push_back(std::move(inv));
  }
  return result;
}

nlohmann::json recipe_to_json(const std::vector<PassInvocation>& invocations) {
  nlohmann::json passes = nlohmann::json::array();
  for (const auto& inv : invocations) {
    nlohmann::json entry = {{"name", inv.name}};
    if (!inv.options.empty()) {
      nlohmann::json options = nlohmann::json::object();
      for (const auto& [key, value] : inv.options) options[key] = value;
      entry["options"] = options;
    }
    if (!inv.nodes.empty()) entry[kNodesOption] = inv.nodes;
    passes.push_back(entry);
  }
  return {{"passes", passes}};
}

Pipeline Pipeline::build(const PassRegistry& registry, const std::vector<PassInvocation>& invocations,
                         const PreloadedSamples& preloaded) {
  Pipeline pipeline;
  for (const auto& inv : invocations) {
    const Pass* pass = registry.find(inv.name);
    if (pass == nullptr) {
      std::vector<std::string> names;
      for (const Pass* p : registry.all()) names.push_back(p->info().name);
      usage("unknown pass '" + inv.name + "' (valid: " + join(names, ", ") + ")");
    }
    const PassInfo info = pass->info();
    std::map<std::string, std::string> values;
    for (const auto& spec : info.options) values[spec.name] = spec.default_value;
    std::set<std::string> seen;
    for (const auto& [key, value] : inv.options) {
      const OptionSpec* spec = nullptr;
      for (const auto& o : info.options)
        if (o.name == key) spec = &o;
      if (spec == nullptr)
        usage("unknown option '" + key + "' for pass '" + inv.name + "' (valid: " + option_names(info) + ")");
      if (!seen.insert(key).second) usage("option '" + key + "' of pass '" + inv.name + "' given twice");
      values[key] = canonical_value(inv.name, *spec, value);
    }
    std::string canonical = info.name;
    for (const auto& spec : info.options) canonical += ":" + spec.name + "=" + values[spec.name];
    std::shared_ptr<const std::set<std::string>> nodes;
    if (!inv.nodes.empty()) {
      auto sorted = std::make_shared<std::set<std::string>>(inv.nodes.begin(), inv.nodes.end());
      canonical += std::string(":") + kNodesOption + "=" + bracketed(join({sorted->begin(), sorted->end()}, ","));
      nodes = std::move(sorted);
    }
    SampleSets samples;
    for (const auto& spec : info.options)
      if (spec.type == OptionSpec::Type::kSamples && !values[spec.name].empty()) {
        auto held = preloaded.find(values[spec.name]);
        samples[spec.name] = held != preloaded.end() ? held->second : load_samples(info.name, spec.name, values[spec.name]);
      }
    pipeline.steps_.push_back({pass, PassOptions(std::move(values)), std::move(canonical), std::move(samples), std::move(nodes)});
  }
  return pipeline;
}

std::string Pipeline::canonical() const {
  std::vector<std::string> parts;
  for (const auto& s : steps_) parts.push_back(s.canonical);
  return join(parts, ",");
}

std::vector<PassRun> Pipeline::run(Model& model, const std::vector<std::string>& global_excludes,
                                   const AfterPass& after_pass) const {
  std::vector<PassRun> runs;
  for (const auto& step : steps_) {
    PassRun run;
    run.name = step.pass->info().name;
    run.canonical = step.canonical;
    const GraphSnapshot before = snapshot_graph(model.proto().graph());
    const auto start = std::chrono::steady_clock::now();
    run.stats = step.pass->run(model, PassContext(step.options, global_excludes, step.samples, step.nodes));
    model.invalidate();  // a pass may have edited the proto directly
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Provenance provenance = trace_provenance(before, snapshot_graph(model.proto().graph()));
    run.origins = std::move(provenance.origins);
    run.removed = std::move(provenance.removed);
    if (after_pass) after_pass(model, run);
    std::string summary;
    for (const auto& [k, v] : run.stats.counters) summary += " " + k + "=" + std::to_string(v);
    logger()->info("pass {} ({:.2f}s):{}", run.name, run.seconds, summary.empty() ? " no changes" : summary);
    for (const auto& w : run.stats.warnings) logger()->warn("pass {}: {}", run.name, w);
    if (logger()->should_log(spdlog::level::debug))
      for (const auto& layer : run.stats.layers) logger()->debug("pass {}: {}", run.name, layer.dump());
    runs.push_back(std::move(run));
  }
  return runs;
}

}  // namespace compress
