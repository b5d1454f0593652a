// A reference CPU evaluator for ONNX graphs: float32 math with Eigen, one function per op, used by
// `compress verify` and the inline accuracy gates. Not a runtime: it favours clarity over speed, but
// GEMM and Conv (im2col) go through Eigen and intermediates are freed after their last use.
#pragma once

#include <compress/model.h>
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace compress::eval {

/// A dense tensor. Float types (float32, float16, double, bfloat16) hold their values in `f` (float16
/// values already rounded to half precision); integer types and bool hold theirs in `i`. Row-major.
struct Tensor {
  int32_t dtype = onnx::TensorProto::FLOAT;  // onnx::TensorProto::DataType
  std::vector<int64_t> dims;
  std::vector<float> f;
  std::vector<int64_t> i;

  bool is_float() const;
  int64_t numel() const;
  /// Element k as a double whatever the storage.
  double at(int64_t k) const { return is_float() ? f[static_cast<size_t>(k)] : static_cast<double>(i[static_cast<size_t>(k)]); }

  static Tensor floats(std::vector<int64_t> dims, std::vector<float> values, int32_t dtype = onnx::TensorProto::FLOAT);
  static Tensor ints(std::vector<int64_t> dims, std::vector<int64_t> values, int32_t dtype = onnx::TensorProto::INT64);
  /// Allocates zeros of `dtype` in the matching storage.
  static Tensor zeros(int32_t dtype, std::vector<int64_t> dims);
};

/// Decodes an initializer or Constant value (any numeric type, int4/uint4 included).
Tensor from_proto(const onnx::TensorProto& proto);
/// Encodes in raw_data with the tensor's own dtype.
onnx::TensorProto to_proto(const Tensor& tensor, const std::string& name);

/// True when the evaluator implements `op_type` of `domain` ("" / "ai.onnx" or "com.microsoft").
bool is_supported(const std::string& domain, const std::string& op_type);
/// Ops of the model (subgraphs included) the evaluator does not implement, as "domain:Op" or "Op".
std::vector<std::string> unsupported_ops(const onnx::ModelProto& model);

using TensorMap = std::map<std::string, Tensor>;

class Evaluator {
 public:
  /// Prepares every graph (constants decoded once, last-use tables). Throws Error(kUnsupported) naming
  /// the first unsupported op and its node. The model must outlive the evaluator.
  explicit Evaluator(const Model& model);
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  /// Graph inputs that are not initializers, in graph order.
  const std::vector<std::string>& input_names() const { return inputs_; }
  const std::vector<std::string>& output_names() const { return outputs_; }
  /// Declared shape of an input (-1 for symbolic or unknown dims) and its element type.
  std::vector<int64_t> input_shape(const std::string& name) const;
  int32_t input_dtype(const std::string& name) const;

  /// Runs the main graph. Every input must be given (initializer-backed inputs may be overridden).
  /// Throws Error(kBadInput) for a missing input, Error(kUnsupported) for an op variant not handled.
  TensorMap run(const TensorMap& feeds) const;

  /// Optional profiling hook: when set, run() times every executed node (subgraph nodes included) and
  /// calls it with the node and its wall time in seconds. Unset (the default), nothing is timed.
  using NodeProfiler = std::function<void(const onnx::NodeProto& node, double seconds)>;
  void set_profiler(NodeProfiler profiler) { profiler_ = std::move(profiler); }

  struct GraphPlan;

 private:
  const onnx::ModelProto& model_;
  std::vector<std::string> inputs_;
  std::vector<std::string> outputs_;
  std::unordered_map<const onnx::GraphProto*, std::unique_ptr<GraphPlan>> plans_;
  int64_t opset_ = 0;
  NodeProfiler profiler_;
};

}  // namespace compress::eval
