// Activations for data-aware passes: runs the built-in evaluator on a copy of the model with chosen
// intermediate values appended as graph outputs, batch by batch over a pass's sample inputs
// (kSamples option). Plus im2col rows of a Conv input, so that Conv layers can be treated as
// patch-matrix products like MatMul.
#pragma once

#include <compress/evaluator.h>
#include <compress/model.h>

#include <Eigen/Dense>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace compress {

/// Evaluates a private copy of a model that also outputs `values` (names of the main graph).
class ActivationProbe {
 public:
  ActivationProbe(const Model& model, const std::vector<std::string>& values);
  /// Calls `fn` with the requested values (and the graph outputs and inputs) of each batch of `samples`, in order.
  /// Batches of `batch` samples (or the input's fixed leading dim). Throws Error(kUsage) when a model
  /// input has no samples or the sample counts differ, and passes on the evaluator's errors.
  void for_each_batch(const eval::TensorMap& samples, int64_t batch,
                      const std::function<void(const eval::TensorMap&)>& fn) const;
  /// Number of samples (leading axis) in `samples`, checked equal across inputs.
  static int64_t sample_count(const eval::TensorMap& samples);

 private:
  std::unique_ptr<Model> copy_;
  std::unique_ptr<eval::Evaluator> evaluator_;
};

/// Geometry of a Conv node with 1 to 3 spatial dims, from its attributes and input dims.
struct ConvPatches {
  std::vector<int64_t> in, kernel, strides, dilations, pad_begin, out;
  int64_t positions() const;  // product of out
  int64_t kernel_size() const;
};
/// Throws nothing: returns false when the node's geometry is not plain (groups, > 3 spatial dims).
bool conv_patches(const onnx::NodeProto& conv, const std::vector<int64_t>& x_dims,
                  const std::vector<int64_t>& weight_dims, ConvPatches& patches);

/// Rows of the im2col matrix of Conv input `x` [N, C, spatial...]: one row per output position
/// (image-major, then positions), columns ordered like the flattened weight [C, k...]. Only
/// positions whose global index (first_index + row) is a multiple of `stride` are kept.
Eigen::MatrixXf im2col_rows(const eval::Tensor& x, const ConvPatches& p, int64_t first_index, int64_t stride);

/// The last axis of `x` as columns, every other axis folded into rows.
Eigen::MatrixXf as_rows(const eval::Tensor& x);

}  // namespace compress
