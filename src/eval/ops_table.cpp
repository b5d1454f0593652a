// The one list of ops the evaluator implements: (domain, op_type) -> kernel.
#include <unordered_map>

#include "eval/ops.h"

namespace compress::eval {

OpFn find_op(const std::string& domain, const std::string& op_type) {
  static const std::unordered_map<std::string, OpFn> onnx_ops = {
#define OP(name) {#name, op_##name},
      OP(Add) OP(Sub) OP(Mul) OP(Div) OP(Pow) OP(Max) OP(Min) OP(Mod) OP(Sum) OP(Mean)
      OP(Equal) OP(Less) OP(Greater) OP(LessOrEqual) OP(GreaterOrEqual) OP(And) OP(Or) OP(Xor) OP(Not) OP(Where)
      OP(Relu) OP(LeakyRelu) OP(Sigmoid) OP(Tanh) OP(Erf) OP(Exp) OP(Log) OP(Sqrt) OP(Neg) OP(Abs) OP(Reciprocal)
      OP(Floor) OP(Ceil) OP(Sign) OP(Elu) OP(Selu) OP(Softplus) OP(Softsign) OP(Sin) OP(Cos) OP(Round)
      OP(HardSigmoid) OP(HardSwish) OP(Clip) OP(Cast) OP(Identity) OP(Softmax) OP(LogSoftmax)
      OP(ReduceMean) OP(ReduceMax) OP(ReduceMin) OP(ReduceSum) OP(ReduceProd) OP(ArgMax) OP(ArgMin)
      OP(Gemm) OP(MatMul) OP(Conv) OP(ConvTranspose) OP(BatchNormalization) OP(LayerNormalization)
      OP(MaxPool) OP(AveragePool) OP(GlobalAveragePool) OP(GlobalMaxPool) OP(Resize) OP(LSTM) OP(GRU)
      OP(Reshape) OP(Flatten) OP(Transpose) OP(Squeeze) OP(Unsqueeze) OP(Concat) OP(Split) OP(Slice)
      OP(Gather) OP(Shape) OP(Size) OP(ConstantOfShape) OP(Constant) OP(Expand) OP(Range) OP(Pad) OP(Tile) OP(If)
      OP(Loop) OP(Scan) OP(DepthToSpace) OP(SpaceToDepth)
      OP(PRelu) OP(ThresholdedRelu) OP(Celu) OP(Shrink) OP(Tan) OP(Asin) OP(Acos) OP(Atan) OP(Sinh) OP(Cosh)
      OP(Asinh) OP(Acosh) OP(Atanh) OP(IsNaN) OP(IsInf) OP(Dropout) OP(CastLike) OP(Hardmax)
      OP(ReduceL1) OP(ReduceL2) OP(ReduceSumSquare) OP(ReduceLogSum) OP(ReduceLogSumExp)
      OP(RNN) OP(Upsample) OP(LRN) OP(InstanceNormalization) OP(MeanVarianceNormalization) OP(LpNormalization)
      OP(NonMaxSuppression) OP(GridSample)
      OP(QuantizeLinear) OP(DequantizeLinear) OP(DynamicQuantizeLinear) OP(MatMulInteger) OP(ConvInteger)
      OP(Trilu) OP(CumSum) OP(GatherElements) OP(GatherND) OP(ScatterND) OP(ScatterElements) OP(TopK) OP(NonZero)
      OP(OneHot) OP(EyeLike) OP(Compress) OP(Einsum)
      {"Scatter", op_ScatterElements},  // opset 9-10 name of ScatterElements (no reduction there)
#undef OP
  };
  if (domain.empty() || domain == "ai.onnx") {
    auto it = onnx_ops.find(op_type);
    return it == onnx_ops.end() ? nullptr : it->second;
  }
  if (domain == "com.microsoft" && op_type == "MatMulNBits") return op_MatMulNBits;
  return nullptr;
}

}  // namespace compress::eval
