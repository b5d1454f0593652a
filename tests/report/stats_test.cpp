#include <compress/report.h>
#include <gtest/gtest.h>

#include "testing/builders.h"

namespace compress {
namespace {

// x[1,3,8,8] -Conv(4x3x3x3, pad 1, stride 2)-> [1,4,4,4] -Relu-> Flatten [1,64] -Gemm(64->10)-> MatMul(10x5)
const char* kNet = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 3, 8, 8] x) => (float[N, 5] y) {
  c = Conv <pads = [1, 1, 1, 1], strides = [2, 2], kernel_shape = [3, 3]> (x, w, b)
  r = Relu(c)
  f = Flatten(r)
  h = Gemm <transB = 1> (f, fc_w, fc_b)
  y = MatMul(h, m)
}
)";

Model net() {
  return testing::model_with_weights(kNet, {testing::random_tensor("w", {4, 3, 3, 3}, 1), testing::random_tensor("b", {4}, 2),
                                            testing::random_tensor("fc_w", {10, 64}, 3), testing::random_tensor("fc_b", {10}, 4),
                                            testing::random_tensor("m", {10, 5}, 5)});
}

TEST(Stats, ParamsAndMacsMatchAHandCount) {
  const ModelStats s = compute_stats(net(), {});
  // Conv: 4*4*4 outputs x 3*3*3 = 1728 MACs; Gemm 10 x 64 = 640; MatMul 5 x 10 = 50.
  EXPECT_EQ(s.macs, 1728 + 640 + 50);
  // FLOPs: 2 x MACs, plus Relu's 64 outputs (Flatten moves data: 0).
  EXPECT_EQ(s.flops, 2 * (1728 + 640 + 50) + 64);
  EXPECT_EQ(s.params, 108 + 4 + 640 + 10 + 50);
  EXPECT_EQ(s.weight_bytes, 4 * (108 + 4 + 640 + 10 + 50));
  EXPECT_EQ(s.op_counts.at("Conv"), 1);
  ASSERT_EQ(s.assumptions.size(), 1u);
  EXPECT_EQ(s.assumptions[0], "input 'x' dim 0 ('N') assumed 1");
}

TEST(Stats, InputShapeOverridesScaleTheCount) {
  const ModelStats s = compute_stats(net(), {{"x", {4, 3, 8, 8}}});
  EXPECT_EQ(s.macs, 4 * (1728 + 640 + 50));
  EXPECT_TRUE(s.assumptions.empty());
}

TEST(Stats, QuantizedWeightsCountByStoredTypeForTheirReader) {
  // An int8 weight behind DequantizeLinear belongs to the MatMul that reads it.
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x) => (float[2, 3] y) {
  w = DequantizeLinear(wq, s)
  y = MatMul(x, w)
}
)";
  std::vector<int8_t> q(12, 1);
  const std::vector<float> scale = {0.5f};
  Model m = testing::model_with_weights(text, {make_int8_tensor("wq", {4, 3}, q), make_float_tensor("s", {}, scale)});
  const ModelStats s = compute_stats(m, {});
  ASSERT_EQ(s.layers.size(), 1u);
  EXPECT_EQ(s.layers[0].op_type, "MatMul");
  EXPECT_EQ(s.layers[0].params, 12);  // the scale is a quantization parameter: bytes, not params
  EXPECT_EQ(s.layers[0].weight_bytes, 12 + 4);
  EXPECT_EQ(s.weight_bytes_by_dtype.at("int8"), 12);
  EXPECT_EQ(s.macs, 2 * 3 * 4);
}

TEST(Stats, SubgraphNodesAndConstantNodeWeightsCount) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool cond, float[1, 4] x) => (float[1, 2] y) {
  y = If (cond) <
    then_branch = t () => (float[1, 2] a) { a = MatMul(x, w) },
    else_branch = e () => (float[1, 2] b) {
      k = Constant <value = float[4, 2] {1, 2, 3, 4, 5, 6, 7, 8}> ()
      b = MatMul(x, k)
    }
  >
}
)";
  Model m = testing::model_with_weights(text, {testing::random_tensor("w", {4, 2}, 7)});
  const ModelStats s = compute_stats(m, {});
  EXPECT_EQ(s.params, 16);
  EXPECT_EQ(s.macs, 2 * 8);  // both branches count
  EXPECT_EQ(s.op_counts.at("MatMul"), 2);
}

TEST(Stats, SparseInitializersCountDenseParamsAndStoredBytes) {
  Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 4] x) => (float[1, 3] y) { y = MatMul(x, w) }
)");
  auto* sp = m.proto().mutable_graph()->add_sparse_initializer();
  for (int64_t d : {4, 3}) sp->add_dims(d);
  const std::vector<float> values = {1.0f, 2.0f};
  const std::vector<int64_t> indices = {0, 7};
  *sp->mutable_values() = make_float_tensor("w", {2}, values);
  *sp->mutable_indices() = make_int64_tensor("w_indices", {2}, indices);
  const ModelStats s = compute_stats(m, {});
  EXPECT_EQ(s.params, 12);
  EXPECT_EQ(s.weight_bytes, 2 * 4 + 2 * 8);
  EXPECT_EQ(s.weight_bytes_by_dtype.at("float32_sparse"), 24);
  EXPECT_EQ(s.macs, 12);
}

TEST(Stats, MatMulNBitsCountsKTimesNParamsAndShapesFlowThroughIt) {
  Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13, "com.microsoft" : 1]>
g (float[2, 64] x) => (float[2, 16] y) {
  h = com.microsoft.MatMulNBits <K = 64, N = 16, bits = 4, block_size = 32> (x, b, s)
  y = Relu(h)
}
)");
  std::vector<uint8_t> blob(16 * 2 * 16, 0x88);
  *m.proto().mutable_graph()->add_initializer() = make_uint8_tensor("b", {16, 2, 16}, blob);
  *m.proto().mutable_graph()->add_initializer() = make_float_tensor("s", {32}, std::vector<float>(32, 0.1f));
  const ModelStats s = compute_stats(m, {});
  EXPECT_EQ(s.params, 64 * 16);
  EXPECT_EQ(s.weight_bytes, 512 + 32 * 4);
  EXPECT_EQ(s.weight_bytes_by_dtype.at("int4"), 512);
  EXPECT_EQ(s.macs, 2 * 16 * 64);
  EXPECT_EQ(s.flops, 2 * 2 * 16 * 64 + 2 * 16);  // the Relu after it has a known shape too
}

TEST(Stats, ShapesShapeInferenceCannotSeeComeFromOneEvaluation) {
  // The Reshape target is computed at run time (Max of two shapes): ONNX 1.12 leaves the MatMul
  // input unshaped, the evaluator knows it is [2, 8].
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 8] x) => (float[2, 4] y) {
  s = Shape(x)
  t = Max(s, s)
  r = Reshape(x, t)
  y = MatMul(r, w)
}
)",
                                        {testing::random_tensor("w", {8, 4}, 3)});
  const ModelStats s = compute_stats(m, {});
  EXPECT_EQ(s.macs, 2 * 4 * 8);
  bool noted = false;
  for (const auto& a : s.assumptions) noted = noted || a.find("one evaluation with zero-filled inputs") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(Energy, UsesTheDocumentedConstants) {
  ModelStats s;
  s.macs_by_dtype = {{"float32", 1000000}, {"int8", 1000000}};
  s.weight_bytes = 4000;
  const EnergyEstimate e = estimate_energy(s);
  EXPECT_NEAR(e.compute_uj, 1e6 * (3.7 + 0.9) * 1e-6 + 1e6 * (0.2 + 0.03) * 1e-6, 1e-9);
  EXPECT_NEAR(e.dram_uj, 1000 * 640 * 1e-6, 1e-9);
}

TEST(FileSize, CountsZlibBytes) {
  const FileSize f = measure_bytes(std::string(100000, 'a'));
  EXPECT_EQ(f.bytes, 100000);
  EXPECT_GT(f.zlib_bytes, 0);
  EXPECT_LT(f.zlib_bytes, 1000);
  EXPECT_EQ(f.zlib_level, 6);  // gzip's default below kZlibFastAbove
  const FileSize fast = measure_bytes(std::string(100000, 'a'), 0, 1);
  EXPECT_EQ(fast.zlib_level, 1);
  EXPECT_GT(fast.zlib_bytes, 0);
}

}  // namespace
}  // namespace compress
