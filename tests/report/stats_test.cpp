#include <compress/report.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "report/deflate_size.h"
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

// A Reshape target whose element count overflows int64 (found by the fuzzer: signed overflow in the
// shape propagation under UBSan). The count stays unknown; nothing overflows.
TEST(Stats, ReshapeTargetOverflowingInt64IsCountedWithoutOverflow) {
  TensorProto shape;
  shape.set_name("shape");
  shape.set_data_type(TensorProto::INT64);
  shape.add_dims(2);
  shape.add_int64_data(5);
  shape.add_int64_data(8791026472627208199);
  const Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1] unused) => (float[?, ?] y) {
  y = Reshape(w, shape)
}
)", {testing::random_tensor("w", {4, 6}, 1), shape});
  const ModelStats s = compute_stats(m, {});
  EXPECT_EQ(s.macs, 0);  // the point is the sanitized build: no signed overflow on the way
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
  EXPECT_EQ(s.macs, 2 * 8);  // both branches count: the condition is an input
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

TEST(Stats, ShapeArithmeticPropagatesStatically) {
  // The Reshape target is computed (Max of two shapes): ONNX 1.12 leaves the MatMul input
  // unshaped; the static propagation carries the values [2, 8] through Shape and Max.
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
  EXPECT_EQ(s.unknown_shape_nodes, 0);
  EXPECT_TRUE(s.assumptions.empty());
  EXPECT_TRUE(assumption_headline(s).empty());
}

TEST(Stats, ComputedShapesFeedExpandTileRangeConstantOfShapeAndResize) {
  // x[1, 2, 4, 4]: Resize to sizes Concat(Shape(x)[0:2], 2 * Shape(x)[2:4]) = [1, 2, 8, 8];
  // Tile by ConstantOfShape([4]) of 1 plus Range(0, 4, 4) = [1, 1, 1, 1] (no change); Expand to
  // [3, 2, 8, 8] from Shape arithmetic; then a 1x1 Conv 2->5: 3 * 5 * 8 * 8 outputs x 2.
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 4, 4] x) => (float[3, 5, 8, 8] y) {
  s = Shape(x)
  lo = Slice(s, zero, two)
  hi = Slice(s, two, four)
  hi2 = Mul(hi, two)
  sizes = Concat <axis = 0> (lo, hi2)
  r = Resize <mode = "nearest"> (x, , , sizes)
  ones = ConstantOfShape <value = int64[1] {1}> (four)
  steps = Range(zero_s, four_s, four_s)
  reps = Add(ones, steps)
  t = Tile(r, reps)
  target = Concat <axis = 0> (three, lo2, hi2)
  lo2 = Slice(s, one, two)
  e = Expand(t, target)
  y = Conv(e, w)
}
)",
                                        {make_int64_tensor("zero", {1}, std::vector<int64_t>{0}),
                                         make_int64_tensor("one", {1}, std::vector<int64_t>{1}),
                                         make_int64_tensor("two", {1}, std::vector<int64_t>{2}),
                                         make_int64_tensor("three", {1}, std::vector<int64_t>{3}),
                                         make_int64_tensor("four", {1}, std::vector<int64_t>{4}),
                                         make_int64_tensor("zero_s", {}, std::vector<int64_t>{0}),
                                         make_int64_tensor("four_s", {}, std::vector<int64_t>{4}),
                                         testing::random_tensor("w", {5, 2, 1, 1}, 4)});
  const ModelStats s = compute_stats(m, {});
  EXPECT_EQ(s.unknown_shape_nodes, 0);
  int64_t conv_macs = -1;
  for (const auto& l : s.layers)
    if (l.op_type == "Conv") conv_macs = l.macs;
  EXPECT_EQ(conv_macs, 3 * 5 * 8 * 8 * 2);
}

TEST(Stats, UpsampleWithScalesAttributeAndOldSliceAttributes) {
  // Opset 9 forms: Upsample scales [1, 1, 2, 2] as an input; Slice-1 with attributes.
  Model m = testing::model_with_weights(R"(
<ir_version: 4, opset_import: ["" : 9]>
g (float[1, 2, 3, 3] x) => (float[1, 4, 6, 2] y) {
  u = Upsample (x, scales)
  v = Slice <starts = [1], ends = [100], axes = [3]> (u)
  y = Conv(v, w)
}
)",
                                        {make_float_tensor("scales", {4}, std::vector<float>{1, 1, 2, 2}),
                                         testing::random_tensor("w", {4, 2, 1, 4}, 4)});
  const ModelStats s = compute_stats(m, {});
  EXPECT_EQ(s.unknown_shape_nodes, 0);
  // v [1, 2, 6, 5] -> Conv 1x4: [1, 4, 6, 2] x (2 * 1 * 4)
  EXPECT_EQ(s.macs, 4 * 6 * 2 * 8);
}

TEST(Stats, IfWithAStaticConditionCountsOnlyTheBranchThatRuns) {
  // The condition compares a dim of x with 4: known statically, so only then_branch counts. The
  // branches read x and w from the outer scope.
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[3, 4] x) => (float[3, 2] y) {
  s = Shape(x)
  d = Gather <axis = 0> (s, one)
  c = Equal(d, four)
  y = If (c) <
    then_branch = t () => (float[3, 2] a) { a = MatMul(x, w) },
    else_branch = e () => (float[3, 2] b) { h = MatMul(x, w2) b = MatMul(h, w3) }
  >
}
)",
                                        {make_int64_tensor("one", {}, std::vector<int64_t>{1}),
                                         make_int64_tensor("four", {}, std::vector<int64_t>{4}),
                                         testing::random_tensor("w", {4, 2}, 1), testing::random_tensor("w2", {4, 8}, 2),
                                         testing::random_tensor("w3", {8, 2}, 3)});
  const ModelStats s = compute_stats(m, {});
  EXPECT_EQ(s.macs, 3 * 2 * 4);
  EXPECT_EQ(s.op_counts.at("MatMul"), 3);  // op counts still describe the whole model
}

TEST(Stats, LoopAndScanBodiesGetShapesFromOuterScopeAndCarriedValues) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x, int64 n) => (float[2, 4] y, float[5, 2, 4] z) {
  y = Loop (n, , x) <
    body = b (int64 i, bool cin, float[2, 4] h) => (bool cout, float[2, 4] h2) {
      cout = Identity(cin)
      h2 = MatMul(h, w)
    }
  >
  z = Scan (seq) <
    num_scan_inputs = 1,
    body = sb (float[2, 4] e) => (float[2, 4] f) { f = MatMul(e, w) }
  >
}
)",
                                        {testing::random_tensor("w", {4, 4}, 1),
                                         testing::random_tensor("seq", {5, 2, 4}, 2)});
  // The typed body inputs above are checked by ONNX; drop their shapes so only propagation gives them.
  for (auto& node : *m.proto().mutable_graph()->mutable_node())
    for (auto& attr : *node.mutable_attribute())
      for (auto& in : *attr.mutable_g()->mutable_input()) in.mutable_type()->mutable_tensor_type()->clear_shape();
  const ModelStats s = compute_stats(m, {});
  EXPECT_EQ(s.unknown_shape_nodes, 0);
  EXPECT_EQ(s.macs, 2 * 4 * 4 + 2 * 4 * 4);  // each body once
}

TEST(Stats, UnknownShapesAreCountedAndHeadlined) {
  // NonZero's output length depends on the data: the MatMul after it cannot be counted.
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[4] x) => (float[M, 3] y) {
  nz = NonZero(x)
  f = Cast <to = 1> (nz)
  t = Transpose(f)
  y = MatMul(t, w)
}
)",
                                        {testing::random_tensor("w", {1, 3}, 1)});
  const ModelStats s = compute_stats(m, {});
  EXPECT_EQ(s.unknown_shape_nodes, 1);
  const auto headline = assumption_headline(s);
  ASSERT_EQ(headline.size(), 1u);
  EXPECT_NE(headline[0].find("INCOMPLETE: 1 nodes"), std::string::npos) << headline[0];
}

TEST(Stats, AssumedDimsNameTheFlagThatFixesThem) {
  const ModelStats s = compute_stats(net(), {});
  ASSERT_EQ(s.assumed_dims.size(), 1u);
  EXPECT_EQ(s.assumed_dims[0].input, "x");
  EXPECT_EQ(s.assumed_dims[0].dim, 0);
  EXPECT_EQ(s.assumed_dims[0].dim_param, "N");
  EXPECT_EQ(s.assumed_dims[0].value, 1);
  const auto headline = assumption_headline(s);
  ASSERT_EQ(headline.size(), 1u);
  EXPECT_EQ(headline[0], "ASSUMED input 'x' dim 0 'N' = 1: MACs/FLOPs depend on it; give the real shape with "
                         "--input-shape x=1x3x8x8");
  const nlohmann::json j = assumptions_to_json(s);
  EXPECT_EQ(j, nlohmann::json::parse(
                   R"([{"input": "x", "dim": 0, "dim_param": "N", "value": 1, "flag": "--input-shape x=1x3x8x8"}])"));
  EXPECT_EQ(inspect_to_json(s)["assumptions"], j);
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
  EXPECT_EQ(f.zlib_level, 6);  // gzip's default
  const FileSize fast = measure_bytes(std::string(100000, 'a'), 0, 1);
  EXPECT_EQ(fast.zlib_level, 1);
  EXPECT_GT(fast.zlib_bytes, 0);
}

TEST(FileSize, AboveTheSampleThresholdZlibIsAnEstimateCloseToTheFullCount) {
  // 72 MiB of weight-like bytes (Gaussian float32): 64 pieces of 64 KiB are compressed and scaled.
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> weights((size_t{72} << 20) / 4);
  for (auto& w : weights) w = normal(rng);
  const std::string bytes(reinterpret_cast<const char*>(weights.data()), weights.size() * 4);
  const FileSize estimated = measure_bytes(bytes, 0, 1);
  EXPECT_TRUE(estimated.zlib_estimated);
  const int64_t full = deflate_size::deflated_size(bytes.data(), bytes.size(), 1);
  EXPECT_NEAR(static_cast<double>(estimated.zlib_bytes), static_cast<double>(full), 0.01 * static_cast<double>(full));
  EXPECT_FALSE(measure_bytes(std::string(100000, 'a')).zlib_estimated);

  // A file reads only the sampled pieces and gives the same estimate as its bytes in memory.
  const auto path = std::filesystem::temp_directory_path() / ("compress-zlib-" + std::to_string(::getpid()) + ".bin");
  std::ofstream(path, std::ios::binary) << bytes;
  const FileSize from_file = measure_files({path}, 1);
  std::filesystem::remove(path);
  EXPECT_TRUE(from_file.zlib_estimated);
  EXPECT_EQ(from_file.bytes, estimated.bytes);
  EXPECT_EQ(from_file.zlib_bytes, estimated.zlib_bytes);
}

}  // namespace
}  // namespace compress
