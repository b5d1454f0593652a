// Test helpers: tiny models from ONNX text plus fixed-seed weights too large to type.
#pragma once

#include <compress/evaluator.h>
#include <compress/model.h>
#include <compress/pass.h>
#include <compress/npy.h>
#include <compress/tensor.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace compress::testing {

/// A FLOAT tensor of N(0, scale^2) values from a fixed seed.
inline TensorProto random_tensor(const std::string& name, const std::vector<int64_t>& dims, uint32_t seed,
                                 float scale = 1.0f) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> values(static_cast<size_t>(n));
  for (auto& v : values) v = dist(rng);
  return make_float_tensor(name, dims, values);
}

/// Parses ONNX text and appends the given initializers to the main graph.
inline Model model_with_weights(const std::string& text, const std::vector<TensorProto>& weights) {
  Model model = Model::parse_text(text);
  for (const auto& w : weights) *model.proto().mutable_graph()->add_initializer() = w;
  model.invalidate();
  return model;
}

/// A fresh directory under the temp dir holding one <name>.npy per tensor (a samples option's input);
/// removed when the object goes away.
class SamplesDir {
 public:
  SamplesDir(const std::string& tag, const eval::TensorMap& tensors)
      : path_(std::filesystem::temp_directory_path() / ("compress_samples_" + tag + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
    for (const auto& [name, t] : tensors) eval::write_npy(path_ / (name + ".npy"), t);
  }
  ~SamplesDir() { std::filesystem::remove_all(path_); }
  SamplesDir(const SamplesDir&) = delete;
  SamplesDir& operator=(const SamplesDir&) = delete;
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

/// Runs the registered pass `name` on `model` with its defaults, `overrides` on top (raw option text;
/// the pipeline's validation is tested elsewhere) and optional global excludes.
inline PassStats run_pass(Model& model, const std::string& name, const std::map<std::string, std::string>& overrides = {},
                          const std::vector<std::string>& global_excludes = {}) {
  const Pass* pass = PassRegistry::builtin().find(name);
  if (pass == nullptr) throw std::runtime_error("no pass named " + name);
  std::map<std::string, std::string> values;
  for (const auto& o : pass->info().options) values[o.name] = o.default_value;
  for (const auto& [k, v] : overrides) {
    if (!values.count(k)) throw std::runtime_error("pass " + name + " has no option " + k);
    values[k] = v;
  }
  return pass->run(model, PassContext(PassOptions(values), global_excludes));
}

/// Nodes of `op` in a graph (its own nodes, not subgraphs').
inline int count_nodes(const onnx::GraphProto& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.node()) n += node.op_type() == op;
  return n;
}

/// The initializer `name` of a graph, or nullptr.
inline const TensorProto* find_initializer(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& t : g.initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

}  // namespace compress::testing
