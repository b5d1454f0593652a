#include <compress/error.h>
#include <compress/evaluator.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "passes/passes.h"
#include "testing/builders.h"

namespace compress {
namespace {

using testing::count_nodes;
using testing::find_initializer;

PassStats run_pass(Model& m, const std::map<std::string, std::string>& opts = {}) {
  return testing::run_pass(m, "fp16", opts);
}

const onnx::GraphProto& branch(const onnx::GraphProto& g, const std::string& attr) {
  for (const auto& n : g.node())
    if (n.op_type() == "If")
      for (const auto& a : n.attribute())
        if (a.name() == attr) return a.g();
  throw std::runtime_error("no If with " + attr);
}

// Largest |a - b| over the first output of both models, fed x and the condition b.
float max_output_difference(const Model& a, const Model& b, bool cond) {
  eval::TensorMap feeds;
  std::vector<float> xs(32);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(0.7f * static_cast<float>(i));
  feeds["x"] = eval::Tensor::floats({2, 16}, xs);
  feeds["b"] = eval::Tensor::ints({}, {cond ? 1 : 0}, TensorProto::BOOL);
  const eval::Evaluator ea(a), eb(b);
  const auto ya = ea.run(feeds).at(ea.output_names().at(0));
  const auto yb = eb.run(feeds).at(eb.output_names().at(0));
  float d = 0.0f;
  for (size_t i = 0; i < ya.f.size(); ++i) d = std::max(d, std::fabs(ya.f[i] - yb.f[i]));
  return d;
}

const char* kMlp = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 16] x) => (float[2, 8] y) {
  h = MatMul(x, w)
  r = Relu(h)
  y = Softmax(r)
}
)";

TEST(Fp16, FullConversionKeepsIoFloat32AndPassesTheChecker) {
  Model m = testing::model_with_weights(kMlp, {testing::random_tensor("w", {16, 8}, 1)});
  const auto stats = run_pass(m, {{"block-ops", "[]"}});
  const auto& g = m.proto().graph();
  EXPECT_EQ(g.input(0).type().tensor_type().elem_type(), TensorProto::FLOAT);
  EXPECT_EQ(g.output(0).type().tensor_type().elem_type(), TensorProto::FLOAT);
  EXPECT_EQ(g.initializer(0).data_type(), TensorProto::FLOAT16);
  EXPECT_EQ(stats.counters.at("float16_nodes"), 2);  // MatMul, Relu; Softmax feeds the output
  EXPECT_EQ(count_nodes(g, "Cast"), 2);                  // x -> fp16, r -> fp32
  m.check();
}

TEST(Fp16, WithoutKeepIoTypesInterfaceBecomesFloat16) {
  Model m = testing::model_with_weights(kMlp, {testing::random_tensor("w", {16, 8}, 1)});
  run_pass(m, {{"block-ops", "[]"}, {"keep-io-types", "false"}});
  const auto& g = m.proto().graph();
  EXPECT_EQ(g.input(0).type().tensor_type().elem_type(), TensorProto::FLOAT16);
  EXPECT_EQ(g.output(0).type().tensor_type().elem_type(), TensorProto::FLOAT16);
  EXPECT_EQ(count_nodes(g, "Cast"), 0);
  m.check();
}

TEST(Fp16, BlockedOpsStayFloat32WithCastsAround) {
  Model m = testing::model_with_weights(kMlp, {testing::random_tensor("w", {16, 8}, 1)});
  const auto stats = run_pass(m, {{"block-ops", "[MatMul]"}, {"keep-io-types", "false"}});
  const auto& g = m.proto().graph();
  EXPECT_EQ(stats.counters.at("skipped.blocked_op"), 1);
  EXPECT_EQ(g.initializer(0).data_type(), TensorProto::FLOAT);  // its only reader is float32
  EXPECT_EQ(count_nodes(g, "Cast"), 2);                               // x -> fp32 for MatMul, h -> fp16
  m.check();
}

TEST(Fp16, WeightsOnlyStoresHalfAndCastsBack) {
  const auto w = testing::random_tensor("w", {16, 8}, 1);
  Model m = testing::model_with_weights(kMlp, {w});
  const auto stats = run_pass(m, {{"weights-only", "true"}});
  const auto& g = m.proto().graph();
  ASSERT_EQ(g.initializer_size(), 1);
  EXPECT_EQ(g.initializer(0).data_type(), TensorProto::FLOAT16);
  EXPECT_EQ(g.node(0).op_type(), "Cast");
  EXPECT_EQ(g.node(0).output(0), "w");
  const auto back = to_floats(g.initializer(0));
  const auto orig = to_floats(w);
  for (size_t i = 0; i < orig.size(); ++i) EXPECT_NEAR(back[i], orig[i], std::fabs(orig[i]) * 0x1p-11f);
  EXPECT_GT(stats.layers[0]["sqnr_db"].get<double>(), 60.0);
  m.check();
}

TEST(Fp16, OutOfRangeValuesAreClampedAndCounted) {
  Model m = testing::model_with_weights(kMlp, {make_float_tensor("w", {16, 8}, std::vector<float>(128, 1e6f))});
  const auto stats = run_pass(m, {{"weights-only", "true"}});
  EXPECT_EQ(stats.counters.at("clamped_values"), 128);
  EXPECT_EQ(to_floats(m.proto().graph().initializer(0))[0], 65504.0f);
}

TEST(Fp16, StoredHalvesEqualTheScalarReferenceForEveryKindOfValue) {
  // Whatever loop the CPU gets (8 at a time with F16C, or one by one), each stored half is
  // float_to_half of the value clamped to +-65504: normals of every exponent, half subnormals and
  // their rounding ties, float subnormals, the clamp edge, inf and NaN (with payloads) mid-block.
  std::vector<float> v;
  for (int e = -30; e <= 20; ++e)
    for (float m : {1.0f, 1.5f, 1.0009765625f, 1.00048828125f, 1.99951171875f, 1.3333333f})
      for (float sign : {1.0f, -1.0f}) v.push_back(sign * std::ldexp(m, e));
  for (float x : {65504.0f, 65505.0f, 65519.99f, 65520.0f, 1e9f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f, 0x1p-149f, 0.0f, -0.0f})
    for (float sign : {1.0f, -1.0f}) v.push_back(sign * x);
  std::vector<float> specials = {INFINITY, -INFINITY, std::nanf(""), -std::nanf("0x3ff"),
                                 std::bit_cast<float>(0x7fa00001u)};
  for (size_t k = 0; k < specials.size(); ++k) v.insert(v.begin() + static_cast<std::ptrdiff_t>(11 + 37 * k), specials[k]);
  v.resize(v.size() + 5, 0.25f);  // a tail past the last block of 8
  const auto n = static_cast<int64_t>(v.size());
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 1] x) => (float[2, N] y) {
  y = MatMul(x, w)
}
)", {make_float_tensor("w", {1, n}, v)});
  const auto stats = run_pass(m, {{"weights-only", "true"}});
  const TensorProto& half = m.proto().graph().initializer(0);
  ASSERT_EQ(half.data_type(), TensorProto::FLOAT16);
  ASSERT_EQ(static_cast<int64_t>(half.raw_data().size()), 2 * n);
  int64_t clamped = 0;
  for (int64_t i = 0; i < n; ++i) {
    float x = v[static_cast<size_t>(i)];
    if (std::isfinite(x) && std::fabs(x) > 65504.0f) {
      x = std::copysign(65504.0f, x);
      ++clamped;
    }
    uint16_t stored = 0;
    std::memcpy(&stored, half.raw_data().data() + 2 * i, 2);
    EXPECT_EQ(stored, float_to_half(x)) << "value " << v[static_cast<size_t>(i)] << " at " << i;
  }
  EXPECT_EQ(stats.counters.at("clamped_values"), clamped);
}

TEST(Fp16, TypeDependentAttributesFollow) {
  Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (int64[2] s, int64[2, 3] i) => (float[2, 3] y) {
  c = ConstantOfShape <value = float[1] {1.5}> (s)
  f = Cast <to = 1> (i)
  a = Add(c, f)
  y = Relu(a)
}
)");
  run_pass(m, {{"block-ops", "[]"}});
  const auto& g = m.proto().graph();
  for (const auto& n : g.node()) {
    if (n.op_type() == "ConstantOfShape") {
      EXPECT_EQ(n.attribute(0).t().data_type(), TensorProto::FLOAT16);
    }
    if (n.output(0) == "f") {
      EXPECT_EQ(n.attribute(0).i(), TensorProto::FLOAT16);
    }
  }
  m.check();
}

TEST(Fp16, ShapeArithmeticStaysFloat32) {
  Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 3] x) => (float[2, 3] y) {
  s = Shape(x)
  f = Cast <to = 1> (s)
  g2 = Relu(f)
  i = Cast <to = 7> (g2)
  y = Reshape(x, i)
}
)");
  const auto stats = run_pass(m, {{"block-ops", "[]"}});
  EXPECT_EQ(stats.counters.at("skipped.shape_arithmetic"), 3);  // both Casts and the Relu
  m.check();
}

TEST(Fp16, IfBodyReadsOuterWeightAndConstant) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 16] x, bool b) => (float[2, 8] y) {
  h = MatMul(x, w)
  y = If (b) <
    then_branch = t () => (float[2, 8] ty) { k = Constant <value = float[1] {2.0}> () m = Mul(h, k) ty = Relu(m) },
    else_branch = e () => (float[2, 8] ey) { ey = Relu(h) }
  >
}
)", {testing::random_tensor("w", {16, 8}, 1)});
  const auto stats = run_pass(m, {{"block-ops", "[]"}});
  EXPECT_GE(stats.counters.at("converted_tensors"), 2);  // w and the Constant
  m.check();
  Model w = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 16] x, bool b) => (float[2, 8] y) {
  h = MatMul(x, w)
  y = If (b) <
    then_branch = t () => (float[2, 8] ty) { k = Constant <value = float[1] {2.0}> () ty = Mul(h, k) },
    else_branch = e () => (float[2, 8] ey) { ey = Relu(h) }
  >
}
)", {testing::random_tensor("w", {16, 8}, 1)});
  const auto ws = run_pass(w, {{"weights-only", "true"}});
  EXPECT_EQ(ws.counters.at("converted_tensors"), 2);
  w.check();
}

// Outer weights read only inside If branches: the readers are the body nodes, not the If node.
// w: MatMul in both branches -> float16. u: only the blocked Add -> float32. v: MatMul in one branch and
// the blocked Gemm in the other -> float32, with a Cast to float16 inside the branch whose MatMul reads it.
const char* kIfReadsOuterWeights = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 16] x, bool b) => (float[2, 8] y) {
  y = If (b) <
    then_branch = t () => (float[2, 8] ty) { m = MatMul(x, w) n = MatMul(m, v) s = Add(m, n) ty = Relu(s) },
    else_branch = e () => (float[2, 8] ey) { a = MatMul(x, w) c = Add(a, u) ey = Gemm(c, v) }
  >
}
)";

TEST(Fp16, OuterWeightReadOnlyByFloat16BodyNodesBecomesFloat16) {
  const std::vector<TensorProto> weights = {testing::random_tensor("w", {16, 8}, 1, 0.25f),
                                            testing::random_tensor("u", {2, 8}, 2), testing::random_tensor("v", {8, 8}, 3, 0.25f)};
  const Model original = testing::model_with_weights(kIfReadsOuterWeights, weights);
  Model m = testing::model_with_weights(kIfReadsOuterWeights, weights);
  // Add and Gemm blocked (stand-ins for LSTM, blocked by default); the Add in `then` is blocked too, so
  // there the MatMul outputs go back to float32.
  const auto stats = run_pass(m, {{"block-ops", "[Add,Gemm]"}});
  const auto& g = m.proto().graph();
  EXPECT_EQ(find_initializer(g, "w")->data_type(), TensorProto::FLOAT16);
  EXPECT_EQ(find_initializer(g, "u")->data_type(), TensorProto::FLOAT);
  EXPECT_EQ(find_initializer(g, "v")->data_type(), TensorProto::FLOAT);
  EXPECT_EQ(stats.counters.at("converted_tensors"), 1);
  // then: Cast x -> f16, v -> f16 (float32 outside, read by a float16 MatMul), m and n -> f32 for the Add.
  const auto& then_g = branch(g, "then_branch");
  EXPECT_EQ(count_nodes(then_g, "Cast"), 4);
  // else: Cast x -> f16, a -> f32; u and v are read as float32 by the blocked Add and Gemm: no Cast.
  const auto& else_g = branch(g, "else_branch");
  EXPECT_EQ(count_nodes(else_g, "Cast"), 2);
  for (const auto& n : else_g.node()) {
    if (n.op_type() != "Cast") continue;
    EXPECT_NE(n.input(0), "u");
    EXPECT_NE(n.input(0), "v");
  }
  EXPECT_EQ(count_nodes(g, "Cast"), 0);  // nothing in the outer graph: the bodies read w by name
  m.check();
  // float16 rounding of w, x and the MatMul outputs: |y| is O(1), each rounding 2^-11 relative.
  constexpr float kHalfTolerance = 2e-2f;
  EXPECT_LT(max_output_difference(original, m, true), kHalfTolerance);
  EXPECT_LT(max_output_difference(original, m, false), kHalfTolerance);
}

TEST(Fp16, OuterWeightReadThroughNestedBodiesAndByTheOuterGraph) {
  // w is read by the outer MatMul and two If levels down; k (a Constant node) only two levels down.
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 16] x, bool b) => (float[2, 8] y) {
  k = Constant <value = float[1] {0.5}> ()
  h = MatMul(x, w)
  y = If (b) <
    then_branch = t () => (float[2, 8] ty) {
      ty = If (b) <
        then_branch = tt () => (float[2, 8] tty) { p = MatMul(x, w) q = Mul(p, k) r = Add(q, h) tty = Relu(r) },
        else_branch = te () => (float[2, 8] tey) { tey = Relu(h) }
      >
    },
    else_branch = e () => (float[2, 8] ey) { ey = Relu(h) }
  >
}
)";
  const auto w = testing::random_tensor("w", {16, 8}, 1, 0.25f);
  const Model original = testing::model_with_weights(text, {w});
  Model m = testing::model_with_weights(text, {w});
  const auto stats = run_pass(m, {{"block-ops", "[]"}});
  const auto& g = m.proto().graph();
  EXPECT_EQ(find_initializer(g, "w")->data_type(), TensorProto::FLOAT16);
  EXPECT_EQ(g.node(0).attribute(0).t().data_type(), TensorProto::FLOAT16);  // k
  EXPECT_EQ(stats.counters.at("converted_tensors"), 2);
  m.check();
  constexpr float kHalfTolerance = 2e-2f;
  EXPECT_LT(max_output_difference(original, m, true), kHalfTolerance);
  EXPECT_LT(max_output_difference(original, m, false), kHalfTolerance);

  // The same model with Mul blocked: k's only reader is float32 two levels down, so k stays float32.
  Model blocked = testing::model_with_weights(text, {w});
  run_pass(blocked, {{"block-ops", "[Mul]"}});
  EXPECT_EQ(blocked.proto().graph().node(0).attribute(0).t().data_type(), TensorProto::FLOAT);
  EXPECT_EQ(find_initializer(blocked.proto().graph(), "w")->data_type(), TensorProto::FLOAT16);
  blocked.check();
  EXPECT_LT(max_output_difference(original, blocked, true), kHalfTolerance);
}

TEST(Fp16, IfOnAShapeConditionComputesDataNotShapeArithmetic) {
  // b derives from Shape only, but the branches return x: z and everything after it is data (silero VAD
  // legacy pads its audio in such an If). Before, z counted as shape arithmetic and MatMul stayed float32.
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 16] x) => (float[2, 8] y) {
  s = Shape(x)
  i = Constant <value = int64 {0}> ()
  d = Gather(s, i)
  two = Constant <value = int64 {2}> ()
  b = Equal(d, two)
  z = If (b) <
    then_branch = t () => (float[2, 16] tz) { tz = Identity(x) },
    else_branch = e () => (float[2, 16] ez) { ez = Neg(x) }
  >
  h = MatMul(z, w)
  y = Relu(h)
}
)", {testing::random_tensor("w", {16, 8}, 1)});
  const auto stats = run_pass(m, {{"block-ops", "[]"}});
  EXPECT_EQ(stats.counters.count("skipped.shape_arithmetic"), 0u);
  EXPECT_EQ(find_initializer(m.proto().graph(), "w")->data_type(), TensorProto::FLOAT16);
  m.check();
}

TEST(Fp16, SkipsGraphInputInitializerAndExcludedReaders) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 16] x, float[16, 8] w) => (float[2, 8] y) { y = MatMul(x, w) }
)", {testing::random_tensor("w", {16, 8}, 1)});
  const std::string before = m.serialize();
  EXPECT_EQ(run_pass(m, {{"weights-only", "true"}}).counters.at("skipped.weight_is_graph_input"), 1);
  EXPECT_TRUE(m.serialize() == before);
  Model e = testing::model_with_weights(kMlp, {testing::random_tensor("w", {16, 8}, 1)});
  EXPECT_EQ(run_pass(e, {{"weights-only", "true"}, {"exclude", "[MatMul]"}}).counters.at("skipped.excluded"), 1);
  EXPECT_EQ(e.proto().graph().initializer(0).data_type(), TensorProto::FLOAT);
}

}  // namespace
}  // namespace compress
