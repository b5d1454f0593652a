#include <compress/error.h>
#include <compress/pass.h>

#include <fnmatch.h>

#include <algorithm>

#include "report/layer_name.h"

namespace compress {

namespace {

const std::string& value_of(const std::map<std::string, std::string>& values, const std::string& name) {
  auto it = values.find(name);
  if (it == values.end()) throw Error(ExitCode::kInternal, "pass read undeclared option '" + name + "'");
  return it->second;
}

}  // namespace

bool PassOptions::get_bool(const std::string& name) const { return value_of(values_, name) == "true"; }

int64_t PassOptions::get_int(const std::string& name) const { return std::stoll(value_of(values_, name)); }

double PassOptions::get_float(const std::string& name) const { return std::stod(value_of(values_, name)); }

const std::string& PassOptions::get_string(const std::string& name) const { return value_of(values_, name); }

std::vector<std::string> PassOptions::get_list(const std::string& name) const {
  std::string text = value_of(values_, name);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) items.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

void PassStats::skip(const std::string& what, const std::string& reason) {
  count("skipped." + reason);
  layers.push_back({{"name", what}, {"skipped", reason}});
}

bool glob_match(std::string_view pattern, std::string_view text) {
  return ::fnmatch(std::string(pattern).c_str(), std::string(text).c_str(), 0) == 0;
}

bool PassContext::is_excluded(const onnx::NodeProto& node) const {
  // By layer name, so a plan can name unnamed nodes the way the report lists them.
  if (only_nodes_ && !only_nodes_->count(layer_name(node, ""))) return true;
  std::vector<std::string> globs = global_excludes_;
  if (options_.has("exclude")) {
    for (auto& g : options_.get_list("exclude")) globs.push_back(std::move(g));
  }
  return std::any_of(globs.begin(), globs.end(), [&](const std::string& g) {
    return (!node.name().empty() && glob_match(g, node.name())) || glob_match(g, node.op_type());
  });
}

PassContext PassContext::with_nodes(const std::vector<std::string>& more) const {
  if (!only_nodes_) return *this;
  auto nodes = std::make_shared<std::set<std::string>>(*only_nodes_);
  nodes->insert(more.begin(), more.end());
  return PassContext(options_, global_excludes_, samples_, std::move(nodes));
}

void PassRegistry::add(Factory factory) {
  auto pass = factory();
  const std::string name = pass->info().name;
  if (find(name) != nullptr) throw Error(ExitCode::kInternal, "pass '" + name + "' registered twice");
  passes_.push_back(std::move(pass));
}

const Pass* PassRegistry::find(std::string_view name) const {
  for (const auto& p : passes_)
    if (p->info().name == name) return p.get();
  return nullptr;
}

std::vector<const Pass*> PassRegistry::all() const {
  std::vector<const Pass*> result;
  for (const auto& p : passes_) result.push_back(p.get());
  std::sort(result.begin(), result.end(),
            [](const Pass* a, const Pass* b) { return a->info().name < b->info().name; });
  return result;
}

const PassRegistry& PassRegistry::builtin() {
  static const PassRegistry registry = [] {
    PassRegistry r;
    register_builtin_passes(r);
    return r;
  }();
  return registry;
}

}  // namespace compress
