// Test helpers: tiny models from ONNX text plus fixed-seed weights too large to type.
#pragma once

#include <compress/model.h>
#include <compress/tensor.h>

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

}  // namespace compress::testing
