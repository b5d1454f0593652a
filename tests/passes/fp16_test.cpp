#include <compress/error.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>

#include "passes/passes.h"
#include "testing/builders.h"

namespace compress {
namespace {

PassStats run_pass(Model& m, const std::map<std::string, std::string>& opts = {}) {
  return testing::run_pass(m, "fp16", opts);
}

int count_op(const onnx::GraphProto& g, const std::string& op) {
  int c = 0;
  for (const auto& n : g.node()) c += n.op_type() == op;
  return c;
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
  EXPECT_EQ(count_op(g, "Cast"), 2);                  // x -> fp16, r -> fp32
  m.check();
}

TEST(Fp16, WithoutKeepIoTypesInterfaceBecomesFloat16) {
  Model m = testing::model_with_weights(kMlp, {testing::random_tensor("w", {16, 8}, 1)});
  run_pass(m, {{"block-ops", "[]"}, {"keep-io-types", "false"}});
  const auto& g = m.proto().graph();
  EXPECT_EQ(g.input(0).type().tensor_type().elem_type(), TensorProto::FLOAT16);
  EXPECT_EQ(g.output(0).type().tensor_type().elem_type(), TensorProto::FLOAT16);
  EXPECT_EQ(count_op(g, "Cast"), 0);
  m.check();
}

TEST(Fp16, BlockedOpsStayFloat32WithCastsAround) {
  Model m = testing::model_with_weights(kMlp, {testing::random_tensor("w", {16, 8}, 1)});
  const auto stats = run_pass(m, {{"block-ops", "[MatMul]"}, {"keep-io-types", "false"}});
  const auto& g = m.proto().graph();
  EXPECT_EQ(stats.counters.at("skipped.blocked_op"), 1);
  EXPECT_EQ(g.initializer(0).data_type(), TensorProto::FLOAT);  // its only reader is float32
  EXPECT_EQ(count_op(g, "Cast"), 2);                               // x -> fp32 for MatMul, h -> fp16
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
