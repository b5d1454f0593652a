// Internal interface between the evaluator and its op kernels: one function per op, listed in one
// table (ops_table.cpp).
#pragma once

#include <compress/error.h>
#include <compress/evaluator.h>

#include <functional>
#include <string>
#include <vector>

namespace compress::eval {

using TP = onnx::TensorProto;

/// One node being executed: its inputs (nullptr for an absent optional input), outputs to fill,
/// attribute accessors, and a way to run subgraphs (If, Loop, Scan) with the current scope visible.
struct OpCall {
  const onnx::NodeProto& node;
  std::vector<const Tensor*> in;
  std::vector<Tensor> out;
  int64_t opset = 0;
  /// Runs a subgraph with the current scope as its outer scope; `inputs` bind to the subgraph's
  /// declared inputs in order (none for If branches, the iteration values for Loop and Scan bodies).
  std::function<std::vector<Tensor>(const onnx::GraphProto&, std::vector<Tensor> inputs)> run_subgraph;

  size_t n_in() const { return in.size(); }
  bool has(size_t k) const { return k < in.size() && in[k] != nullptr; }
  const Tensor& input(size_t k) const;

  const onnx::AttributeProto* attr(const std::string& name) const;
  int64_t attr_i(const std::string& name, int64_t fallback) const;
  float attr_f(const std::string& name, float fallback) const;
  std::string attr_s(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& name, std::vector<int64_t> fallback = {}) const;
  std::vector<float> attr_floats(const std::string& name) const;

  /// Error(kUnsupported) naming the op, the node and `what`.
  [[noreturn]] void unsupported(const std::string& what) const;
  /// Error(kBadInput) naming the op, the node and `what`.
  [[noreturn]] void bad(const std::string& what) const;
};

using OpFn = void (*)(OpCall&);

/// The kernel for an op, or nullptr.
OpFn find_op(const std::string& domain, const std::string& op_type);

// Helpers shared by kernels.
int64_t numel_of(const std::vector<int64_t>& dims);
std::vector<int64_t> strides_of(const std::vector<int64_t>& dims);
/// Numpy broadcast of two shapes; throws through `call` when incompatible.
std::vector<int64_t> broadcast_dims(const OpCall& call, const std::vector<int64_t>& a, const std::vector<int64_t>& b);
/// Normalizes a possibly negative axis into [0, rank).
int64_t norm_axis(const OpCall& call, int64_t axis, int64_t rank);
/// Float copy of any tensor.
std::vector<float> as_floats(const Tensor& t);
/// `v` truncated to int64, saturating at the int64 range, NaN as INT64_MIN (what x86's conversion
/// gives); a plain cast of a float outside the range is undefined behaviour.
int64_t to_int64_saturated(double v);
/// int64 copy of any tensor (floats through to_int64_saturated).
std::vector<int64_t> as_ints(const Tensor& t);
/// Rounds to float16 precision when dtype is FLOAT16 (bfloat16 likewise), in place.
void round_to_dtype(Tensor& t);
/// Wraps an integer into the range of `dtype` (two's complement), as a cast does.
int64_t wrap_int(int64_t v, int32_t dtype);
/// Dims as "[2,3,4]" for error lines.
std::string dims_text(const std::vector<int64_t>& dims);
/// A tensor of `dims` and src's dtype whose element k is src's element index[k] (-1: `fill`).
Tensor take(const Tensor& src, std::vector<int64_t> dims, const std::vector<int64_t>& index, double fill = 0);

/// Calls f(k, idx) for every element of `dims` in row-major order with its multi-index.
template <class F>
void for_each_index(const std::vector<int64_t>& dims, F&& f) {
  const int64_t n = numel_of(dims);
  std::vector<int64_t> idx(dims.size(), 0);
  for (int64_t k = 0; k < n; ++k) {
    f(k, idx);
    for (size_t d = dims.size(); d-- > 0;) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
}

// Kernels, grouped by file.
#define COMPRESS_EVAL_OP(name) void op_##name(OpCall& call);
// ops_elementwise.cpp
COMPRESS_EVAL_OP(Add) COMPRESS_EVAL_OP(Sub) COMPRESS_EVAL_OP(Mul) COMPRESS_EVAL_OP(Div) COMPRESS_EVAL_OP(Pow)
COMPRESS_EVAL_OP(Max) COMPRESS_EVAL_OP(Min) COMPRESS_EVAL_OP(Mod) COMPRESS_EVAL_OP(Sum) COMPRESS_EVAL_OP(Mean)
COMPRESS_EVAL_OP(Equal) COMPRESS_EVAL_OP(Less) COMPRESS_EVAL_OP(Greater) COMPRESS_EVAL_OP(LessOrEqual)
COMPRESS_EVAL_OP(GreaterOrEqual) COMPRESS_EVAL_OP(And) COMPRESS_EVAL_OP(Or) COMPRESS_EVAL_OP(Xor) COMPRESS_EVAL_OP(Not)
COMPRESS_EVAL_OP(Where) COMPRESS_EVAL_OP(Relu) COMPRESS_EVAL_OP(LeakyRelu) COMPRESS_EVAL_OP(Sigmoid)
COMPRESS_EVAL_OP(Tanh) COMPRESS_EVAL_OP(Erf) COMPRESS_EVAL_OP(Exp) COMPRESS_EVAL_OP(Log) COMPRESS_EVAL_OP(Sqrt)
COMPRESS_EVAL_OP(Neg) COMPRESS_EVAL_OP(Abs) COMPRESS_EVAL_OP(Reciprocal) COMPRESS_EVAL_OP(Floor) COMPRESS_EVAL_OP(Ceil)
COMPRESS_EVAL_OP(Sign) COMPRESS_EVAL_OP(Elu) COMPRESS_EVAL_OP(Selu) COMPRESS_EVAL_OP(Softplus) COMPRESS_EVAL_OP(Softsign)
COMPRESS_EVAL_OP(Sin) COMPRESS_EVAL_OP(Cos) COMPRESS_EVAL_OP(Round)
COMPRESS_EVAL_OP(HardSigmoid) COMPRESS_EVAL_OP(HardSwish) COMPRESS_EVAL_OP(Clip) COMPRESS_EVAL_OP(Cast)
COMPRESS_EVAL_OP(Identity) COMPRESS_EVAL_OP(Softmax) COMPRESS_EVAL_OP(LogSoftmax) COMPRESS_EVAL_OP(ReduceMean)
COMPRESS_EVAL_OP(ReduceMax) COMPRESS_EVAL_OP(ReduceMin) COMPRESS_EVAL_OP(ReduceSum) COMPRESS_EVAL_OP(ReduceProd)
COMPRESS_EVAL_OP(ArgMax) COMPRESS_EVAL_OP(ArgMin)
COMPRESS_EVAL_OP(PRelu) COMPRESS_EVAL_OP(ThresholdedRelu) COMPRESS_EVAL_OP(Celu) COMPRESS_EVAL_OP(Shrink)
COMPRESS_EVAL_OP(Tan) COMPRESS_EVAL_OP(Asin) COMPRESS_EVAL_OP(Acos) COMPRESS_EVAL_OP(Atan) COMPRESS_EVAL_OP(Sinh)
COMPRESS_EVAL_OP(Cosh) COMPRESS_EVAL_OP(Asinh) COMPRESS_EVAL_OP(Acosh) COMPRESS_EVAL_OP(Atanh) COMPRESS_EVAL_OP(IsNaN)
COMPRESS_EVAL_OP(IsInf) COMPRESS_EVAL_OP(Dropout) COMPRESS_EVAL_OP(CastLike) COMPRESS_EVAL_OP(ReduceL1)
COMPRESS_EVAL_OP(ReduceL2) COMPRESS_EVAL_OP(ReduceSumSquare) COMPRESS_EVAL_OP(ReduceLogSum)
COMPRESS_EVAL_OP(ReduceLogSumExp) COMPRESS_EVAL_OP(Hardmax)
// ops_nn.cpp
COMPRESS_EVAL_OP(Gemm) COMPRESS_EVAL_OP(MatMul) COMPRESS_EVAL_OP(Conv) COMPRESS_EVAL_OP(ConvTranspose)
COMPRESS_EVAL_OP(BatchNormalization) COMPRESS_EVAL_OP(LayerNormalization) COMPRESS_EVAL_OP(MaxPool)
COMPRESS_EVAL_OP(AveragePool) COMPRESS_EVAL_OP(GlobalAveragePool) COMPRESS_EVAL_OP(GlobalMaxPool)
COMPRESS_EVAL_OP(Resize) COMPRESS_EVAL_OP(LSTM) COMPRESS_EVAL_OP(GRU) COMPRESS_EVAL_OP(RNN) COMPRESS_EVAL_OP(Upsample) COMPRESS_EVAL_OP(GridSample)
// ops_detect.cpp
COMPRESS_EVAL_OP(NonMaxSuppression)
// ops_norm.cpp
COMPRESS_EVAL_OP(LRN) COMPRESS_EVAL_OP(InstanceNormalization) COMPRESS_EVAL_OP(MeanVarianceNormalization)
COMPRESS_EVAL_OP(LpNormalization)
// ops_shape.cpp
COMPRESS_EVAL_OP(Reshape) COMPRESS_EVAL_OP(Flatten) COMPRESS_EVAL_OP(Transpose) COMPRESS_EVAL_OP(Squeeze)
COMPRESS_EVAL_OP(Unsqueeze) COMPRESS_EVAL_OP(Concat) COMPRESS_EVAL_OP(Split) COMPRESS_EVAL_OP(Slice)
COMPRESS_EVAL_OP(Gather) COMPRESS_EVAL_OP(Shape) COMPRESS_EVAL_OP(Size) COMPRESS_EVAL_OP(ConstantOfShape)
COMPRESS_EVAL_OP(Constant) COMPRESS_EVAL_OP(Expand) COMPRESS_EVAL_OP(Range) COMPRESS_EVAL_OP(Pad)
COMPRESS_EVAL_OP(Tile) COMPRESS_EVAL_OP(If) COMPRESS_EVAL_OP(DepthToSpace) COMPRESS_EVAL_OP(SpaceToDepth)
// ops_control.cpp
COMPRESS_EVAL_OP(Loop) COMPRESS_EVAL_OP(Scan)
// ops_quant.cpp
COMPRESS_EVAL_OP(QuantizeLinear) COMPRESS_EVAL_OP(DequantizeLinear) COMPRESS_EVAL_OP(DynamicQuantizeLinear)
COMPRESS_EVAL_OP(MatMulInteger) COMPRESS_EVAL_OP(ConvInteger) COMPRESS_EVAL_OP(MatMulNBits)
// ops_index.cpp
COMPRESS_EVAL_OP(Trilu) COMPRESS_EVAL_OP(CumSum) COMPRESS_EVAL_OP(GatherElements) COMPRESS_EVAL_OP(GatherND)
COMPRESS_EVAL_OP(ScatterND) COMPRESS_EVAL_OP(ScatterElements) COMPRESS_EVAL_OP(TopK) COMPRESS_EVAL_OP(NonZero)
COMPRESS_EVAL_OP(OneHot) COMPRESS_EVAL_OP(EyeLike) COMPRESS_EVAL_OP(Compress) COMPRESS_EVAL_OP(Einsum)
#undef COMPRESS_EVAL_OP

}  // namespace compress::eval
