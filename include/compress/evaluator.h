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

  /// The main graph paused before one of its nodes: the values that node and the later ones read (graph
  /// inputs and earlier outputs; constants are the evaluator's own) plus graph outputs already made,
  /// shared rather than copied. A checkpoint of one model can finish another whose nodes before `next`
  /// and the constants they read are the same: compress auto computes the float model's activations up
  /// to a layer once and runs only the changed rest of each variant of that layer.
  struct Checkpoint {
    int next = 0;  // index into the main graph's node list
    std::unordered_map<std::string, std::shared_ptr<const Tensor>> values;
  };
  /// A checkpoint before node 0 holding `feeds` (every input must be given, as for run()).
  Checkpoint start(const TensorMap& feeds) const;
  /// Runs the main graph's nodes [state.next, stop) and drops the values no node from `stop` on reads:
  /// the state holds what one inference holds at that point. `stop` below state.next is an error.
  void advance(Checkpoint& state, int stop) const;
  /// Runs this model's nodes from `state.next` to the end on (a shared copy of) the state's values and
  /// returns the graph outputs; run(feeds) == finish(start(feeds)). Throws like run(), e.g. when a
  /// node reads a value the state does not hold.
  TensorMap finish(const Checkpoint& state) const;

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
