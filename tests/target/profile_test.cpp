// Target profiles: the built-in ones load, unknown names fail naming the choices, and the latency
// terms follow how the target executes each format.
#include <compress/error.h>
#include <compress/report.h>
#include <compress/target.h>
#include <gtest/gtest.h>

#include "testing/builders.h"

namespace compress {
namespace {

TEST(TargetProfile, BuiltinsLoadWithTheirProvenance) {
  const auto names = TargetProfile::builtin_names();
  EXPECT_EQ(names, (std::vector<std::string>{"generic", "ort-cpu", "ort-cpu-vnni"}));
  const TargetProfile& ort = TargetProfile::builtin("ort-cpu");
  EXPECT_TRUE(ort.qdq_fused);
  EXPECT_NE(ort.fitted_on.value("cpu", ""), "");
  EXPECT_GT(ort.cost_us.at("session"), 0.0);
  EXPECT_GT(ort.cost_us.at("weight_dequantize.element"), 0.0);  // ORT CPU rebuilds dequantized weights every run
  // The VNNI variant only makes integer MACs cheaper.
  const TargetProfile& vnni = TargetProfile::builtin("ort-cpu-vnni");
  EXPECT_LT(vnni.cost_us.at("conv.qdq.mac"), ort.cost_us.at("conv.qdq.mac"));
  EXPECT_EQ(vnni.cost_us.at("conv.fp32.mac"), ort.cost_us.at("conv.fp32.mac"));
  EXPECT_LT(vnni.cost_us.at("gemm.qdq.mac"), vnni.cost_us.at("gemm.qdq.u8.mac"));  // u8s8 beats u8u8 on VNNI
}

TEST(TargetProfile, UnknownNameIsAUsageErrorNamingTheChoices) {
  try {
    TargetProfile::builtin("tpu");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_STREQ(e.what(), "unknown target 'tpu' (valid: generic, ort-cpu, ort-cpu-vnni)");
  }
}

TEST(TargetProfile, MissingFieldIsNamed) {
  try {
    TargetProfile::from_json({{"name", "x"}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_STREQ(e.what(), "target profile: missing 'description'");
  }
}

TargetProfile unit_profile(bool qdq_fused) {
  TargetProfile p;
  p.name = "unit";
  p.qdq_fused = qdq_fused;
  for (const char* t : {"gemm.fp32.mac", "gemm.dq.mac", "gemm.qdq.mac", "weight_dequantize.element", "quantize.element", "node",
                        "session"})
    p.cost_us[t] = 1.0;
  return p;
}

TEST(TargetProfile, WeightOnlyInt8IsFloatComputePlusDequantize) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x) => (float[2, 3] y) {
  w = DequantizeLinear(wq, s)
  y = MatMul(x, w)
}
)";
  std::vector<int8_t> q(12, 1);
  Model m = testing::model_with_weights(text, {make_int8_tensor("wq", {4, 3}, q), make_float_tensor("s", {}, std::vector<float>{0.5f})});
  ModelStats stats = compute_stats(m, {});
  const LatencyTerms terms = predict_latency(m, stats, unit_profile(true));
  EXPECT_EQ(terms.at("gemm.dq.mac"), 24);  // float kernel on dequantized weights
  EXPECT_EQ(terms.count("gemm.fp32.mac"), 0u);
  EXPECT_EQ(terms.at("weight_dequantize.element"), 12);
  EXPECT_EQ(stats.dequantized_weight_elements, 12);
  EXPECT_EQ(terms.at("node"), 1);  // the weight's DequantizeLinear belongs to the MatMul layer
  EXPECT_DOUBLE_EQ(stats.predicted_latency_ms, (1 + 24 + 12 + 1) / 1000.0);
}

TEST(TargetProfile, QdqGroupsFuseOnlyWhereTheTargetFusesThem) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x) => (float[2, 3] y) {
  xq = QuantizeLinear(x, xs, xz)
  xd = DequantizeLinear(xq, xs, xz)
  w = DequantizeLinear(wq, s)
  y = MatMul(xd, w)
}
)";
  std::vector<int8_t> q(12, 1);
  std::vector<uint8_t> zero{0};
  auto make = [&] {
    return testing::model_with_weights(text, {make_int8_tensor("wq", {4, 3}, q), make_float_tensor("s", {}, std::vector<float>{0.5f}),
                                              make_float_tensor("xs", {}, std::vector<float>{0.1f}), make_uint8_tensor("xz", {}, zero)});
  };
  Model m = make();
  ModelStats fused_stats = compute_stats(m, {});
  const LatencyTerms fused = predict_latency(m, fused_stats, unit_profile(true));
  EXPECT_EQ(fused.at("gemm.qdq.mac"), 24);
  EXPECT_EQ(fused.count("weight_dequantize.element"), 0u);
  EXPECT_EQ(fused.at("node"), 2);  // the input's QuantizeLinear and the fused MatMul; the DequantizeLinear fuses
  ModelStats plain_stats = compute_stats(m, {});
  const LatencyTerms plain = predict_latency(m, plain_stats, unit_profile(false));
  EXPECT_EQ(plain.at("gemm.dq.mac"), 24);
  EXPECT_EQ(plain.at("weight_dequantize.element"), 12);
  EXPECT_EQ(plain.at("node"), 3);
}

TEST(TargetProfile, BatchNormAndReluAfterAFloatConvFoldIntoIt) {
  // ONNX Runtime folds a BatchNormalization into the Conv before it at load and fuses the Relu:
  // one kernel runs, not three.
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 4, 4] x) => (float[1, 3, 4, 4] y) {
  c = Conv <pads = [1, 1, 1, 1]> (x, w)
  n = BatchNormalization(c, g, b, mu, var)
  y = Relu(n)
}
)";
  const std::vector<float> ones(3, 1.0f), zeros(3, 0.0f);
  Model m = testing::model_with_weights(
      text, {make_float_tensor("w", {3, 2, 3, 3}, std::vector<float>(54, 0.1f)), make_float_tensor("g", {3}, ones),
             make_float_tensor("b", {3}, zeros), make_float_tensor("mu", {3}, zeros), make_float_tensor("var", {3}, ones)});
  ModelStats stats = compute_stats(m, {});
  const LatencyTerms terms = predict_latency(m, stats, unit_profile(true));
  EXPECT_EQ(terms.at("node"), 1);
}

TEST(TargetProfile, Float16CastsAroundFloat32OnlyKernelsAreFreeAndBatchNormBehindOneRuns) {
  // ONNX Runtime CPU runs a float16 Conv, BatchNormalization and Relu in float32: its own Casts meet
  // the graph's and both go. The BatchNormalization behind a Cast is not folded into the Conv; it runs
  // as a kernel of its own with the Relu fused. Flatten has a float16 kernel: the Cast after it stays.
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 4, 4] x) => (float[1, 48] y) {
  xh = Cast <to = 10> (x)
  c = Conv <pads = [1, 1, 1, 1]> (xh, w)
  cf = Cast <to = 1> (c)
  n = BatchNormalization(cf, g, b, mu, var)
  nh = Cast <to = 10> (n)
  r = Relu(nh)
  f = Flatten(r)
  y = Cast <to = 1> (f)
}
)";
  const std::vector<float> ones(3, 1.0f), zeros(3, 0.0f);
  Model m = testing::model_with_weights(
      text, {make_float16_tensor("w", {3, 2, 3, 3}, std::vector<float>(54, 0.1f)), make_float_tensor("g", {3}, ones),
             make_float_tensor("b", {3}, zeros), make_float_tensor("mu", {3}, zeros), make_float_tensor("var", {3}, ones)});
  ModelStats stats = compute_stats(m, {});
  EXPECT_EQ(predict_latency(m, stats, unit_profile(true)).at("node"), 4);  // Conv, BatchNormalization, Flatten, last Cast
  ModelStats plain_stats = compute_stats(m, {});
  EXPECT_EQ(predict_latency(m, plain_stats, unit_profile(false)).at("node"), 8);  // a target that runs the graph as written
}

TEST(TargetProfile, DynamicMatMulIsOneNodeAndDynamicConvIsNot) {
  // ONNX Runtime fuses DynamicQuantizeLinear, MatMulInteger, Cast, both scale Muls and the bias Add
  // into one DynamicQuantizeMatMul; the Relu after it runs. ConvInteger gets no such fusion.
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 4] x) => (float[1, 3] y) {
  xq, xs, xz = DynamicQuantizeLinear(x)
  i = MatMulInteger(xq, wq, xz, wz)
  f = Cast <to = 1> (i)
  s = Mul(xs, ws)
  m = Mul(f, s)
  a = Add(m, b)
  y = Relu(a)
}
)";
  Model m = testing::model_with_weights(
      text, {make_uint8_tensor("wq", {4, 3}, std::vector<uint8_t>(12, 130)), make_uint8_tensor("wz", {}, std::vector<uint8_t>{128}),
             make_float_tensor("ws", {}, std::vector<float>{0.1f}), make_float_tensor("b", {3}, std::vector<float>(3, 0.0f))});
  ModelStats stats = compute_stats(m, {});
  const LatencyTerms terms = predict_latency(m, stats, unit_profile(true));
  EXPECT_EQ(terms.at("node"), 2);  // DynamicQuantizeMatMul and Relu
  EXPECT_EQ(terms.at("quantize.dynamic.element"), 4);  // the input is still quantized every run

  const char* conv = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 4, 4] x) => (float[1, 3, 4, 4] y) {
  xq, xs, xz = DynamicQuantizeLinear(x)
  i = ConvInteger <pads = [1, 1, 1, 1]> (xq, wq, xz, wz)
  f = Cast <to = 1> (i)
  s = Mul(xs, ws)
  y = Mul(f, s)
}
)";
  Model c = testing::model_with_weights(
      conv, {make_uint8_tensor("wq", {3, 2, 3, 3}, std::vector<uint8_t>(54, 130)), make_uint8_tensor("wz", {}, std::vector<uint8_t>{128}),
             make_float_tensor("ws", {}, std::vector<float>{0.1f})});
  ModelStats conv_stats = compute_stats(c, {});
  EXPECT_EQ(predict_latency(c, conv_stats, unit_profile(true)).at("node"), 5);
}

TEST(TargetProfile, ChannelsLastIntegerRegionCostsATransposeAtEachEdge) {
  // Float Conv -> Q/DQ -> integer Conv -> Q/DQ -> Flatten: ONNX Runtime runs the integer Conv channels-last
  // and inserts a Transpose where the region starts (after the float Conv) and where it ends (Flatten).
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 4, 4] x) => (float[1, 48] y) {
  a = Conv <pads = [1, 1, 1, 1]> (x, w1)
  aq = QuantizeLinear(a, s, z)
  ad = DequantizeLinear(aq, s, z)
  w2d = DequantizeLinear(w2q, ws)
  b = Conv <pads = [1, 1, 1, 1]> (ad, w2d)
  bq = QuantizeLinear(b, s, z)
  bd = DequantizeLinear(bq, s, z)
  y = Flatten(bd)
}
)";
  Model m = testing::model_with_weights(
      text, {make_float_tensor("w1", {3, 2, 3, 3}, std::vector<float>(54, 0.1f)), make_int8_tensor("w2q", {3, 3, 3, 3}, std::vector<int8_t>(81, 1)),
             make_float_tensor("ws", {}, std::vector<float>{0.01f}), make_float_tensor("s", {}, std::vector<float>{0.1f}),
             make_uint8_tensor("z", {}, std::vector<uint8_t>{0})});
  ModelStats stats = compute_stats(m, {});
  TargetProfile fusing = unit_profile(true);
  fusing.cost_us["layout.transpose"] = 5.0;
  const LatencyTerms terms = predict_latency(m, stats, fusing);
  EXPECT_EQ(terms.at("layout.transpose"), 2);
  EXPECT_EQ(terms.at("layout.transpose.element"), 96);  // 3 x 4 x 4 entering and leaving
  const LatencyTerms plain = predict_latency(m, stats, unit_profile(false));
  EXPECT_EQ(plain.count("layout.transpose"), 0u);  // no fused integer kernels, no channels-last region
}

}  // namespace
}  // namespace compress
