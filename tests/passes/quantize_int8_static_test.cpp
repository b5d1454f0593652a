// quantize-int8 mode=static: calibration math (src/passes/calibration.h) and the QDQ rewrite.
#include <compress/error.h>
#include <compress/evaluator.h>
#include <compress/model.h>
#include <compress/pass.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "passes/calibration.h"
#include "passes/int8_quant.h"
#include "testing/builders.h"

namespace compress {
namespace {

using testing::count_nodes;
using testing::find_initializer;

PassStats run_static(Model& model, const eval::TensorMap* samples, const std::map<std::string, std::string>& overrides = {},
                     const std::vector<std::string>& global_excludes = {}) {
  const Pass* pass = PassRegistry::builtin().find("quantize-int8");
  EXPECT_NE(pass, nullptr);
  std::map<std::string, std::string> values;
  for (const auto& o : pass->info().options) values[o.name] = o.default_value;
  values["mode"] = "static";
  for (const auto& [k, v] : overrides) {
    EXPECT_TRUE(values.count(k)) << k;
    values[k] = v;
  }
  SampleSets sets;
  if (samples != nullptr) sets["calibration"] = std::make_shared<const eval::TensorMap>(*samples);
  return pass->run(model, PassContext(PassOptions(values), global_excludes, sets));
}

const NodeProto* producer_of(const onnx::GraphProto& g, const std::string& value) {
  for (const auto& n : g.node())
    for (const auto& o : n.output())
      if (o == value) return &n;
  return nullptr;
}

const NodeProto* node_named_op(const onnx::GraphProto& g, const std::string& op, int index = 0) {
  for (const auto& n : g.node())
    if (n.op_type() == op && index-- == 0) return &n;
  return nullptr;
}

float init_scalar(const onnx::GraphProto& g, const std::string& name) {
  const TensorProto* t = find_initializer(g, name);
  EXPECT_NE(t, nullptr) << name;
  return t == nullptr ? NAN : to_floats(*t)[0];
}

// N samples of shape dims (leading axis = samples) drawn from N(0, 1) with a fixed seed.
eval::Tensor random_samples(std::vector<int64_t> dims, uint32_t seed) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return eval::Tensor::floats(std::move(dims), std::move(v));
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    ab += static_cast<double>(a[k]) * b[k];
    aa += static_cast<double>(a[k]) * a[k];
    bb += static_cast<double>(b[k]) * b[k];
  }
  return ab / std::sqrt(aa * bb);
}

// ---- calibration math -------------------------------------------------------------------------

TEST(Calibration, HistogramBinsValuesOverTheSymmetricRange) {
  Histogram h(1.0, 4);  // edges -1, -0.5, 0, 0.5, 1
  const std::vector<float> v{-1.0f, -0.6f, -0.5f, 0.0f, 0.49f, 0.5f, 1.0f};
  h.add(v);
  EXPECT_EQ(h.counts, (std::vector<double>{2, 1, 2, 2}));  // 1.0 lands in the last bin, as numpy does
  EXPECT_DOUBLE_EQ(h.edge(1), -0.5);
}

TEST(Calibration, PercentileOfAUniformDistribution) {
  // 100000 values evenly over [0, 1): the central 98% lies in [0.01, 0.99].
  std::vector<float> v(100000);
  for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(k) / 100000.0f;
  Histogram h(1.0, kCalibrationBins);
  h.add(v);
  const auto [lo, hi] = percentile_range(h, 98.0, 0.0, 0.99999);
  const double bin = h.width();
  EXPECT_NEAR(lo, 0.01, bin);
  EXPECT_NEAR(hi, 0.99, bin);
  EXPECT_GE(hi, 0.99);  // the right edge of the bin holding the cut: never short of the mass kept
  // 100% keeps the whole observed range.
  const auto [lo100, hi100] = percentile_range(h, 100.0, 0.0, 0.99999);
  EXPECT_DOUBLE_EQ(lo100, 0.0);
  EXPECT_DOUBLE_EQ(hi100, 0.99999);
}

TEST(Calibration, KlDivergenceOfKnownDistributions) {
  const std::vector<double> p{1, 1}, q{1, 3};  // normalised: (0.5, 0.5) vs (0.25, 0.75)
  EXPECT_NEAR(kl_divergence(p, q), 0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0), 1e-12);
  EXPECT_DOUBLE_EQ(kl_divergence(p, p), 0.0);
}

TEST(Calibration, EntropyClipsARareOutlierButKeepsTheBulk) {
  // 200000 N(0, 1) values and one at 40: min/max would spend the 8 bits on [-40, 40].
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(200000);
  for (auto& x : v) x = dist(rng);
  v.push_back(40.0f);
  float lo = 0, hi = 0;
  for (float x : v) lo = std::min(lo, x), hi = std::max(hi, x);
  Histogram h(std::max(-lo, hi), kCalibrationBins);
  h.add(v);
  const auto [elo, ehi] = entropy_range(h, lo, hi);
  // The KL optimum of a Gaussian on a 128-bin grid sits a few sigma out (TensorRT reports ~3-5).
  EXPECT_GT(ehi, 2.5);
  EXPECT_LT(ehi, 8.0);
  EXPECT_LT(elo, -2.5);
  EXPECT_GT(elo, -8.0);
}

TEST(Calibration, EntropyKeepsTheFullRangeOfAUniformDistribution) {
  std::vector<float> v(100000);
  for (size_t k = 0; k < v.size(); ++k) v[k] = -1.0f + 2.0f * static_cast<float>(k) / 100000.0f;
  Histogram h(1.0, kCalibrationBins);
  h.add(v);
  const auto [lo, hi] = entropy_range(h, -1.0, 1.0);
  EXPECT_LT(lo, -0.9);
  EXPECT_GT(hi, 0.9);
}

// ---- the pass ---------------------------------------------------------------------------------

const char* kConvReluConv = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 2, 6, 6] x) => (float[N, 3, 6, 6] y) {
  c1 = Conv<pads = [1, 1, 1, 1]>(x, w1, b1)
  r = Relu(c1)
  y = Conv<pads = [1, 1, 1, 1]>(r, w2)
}
)";

Model conv_relu_conv() {
  return testing::model_with_weights(kConvReluConv, {testing::random_tensor("w1", {4, 2, 3, 3}, 1, 0.5f),
                                                     testing::random_tensor("b1", {4}, 2, 0.1f),
                                                     testing::random_tensor("w2", {3, 4, 3, 3}, 3, 0.5f)});
}

TEST(QuantizeInt8Static, ConvReluConvGetsQdqPairsAndFoldsTheRelu) {
  Model m = conv_relu_conv();
  const Model original = Model::from_proto(m.proto());
  eval::TensorMap samples{{"x", random_samples({8, 2, 6, 6}, 11)}};
  const PassStats stats = run_static(m, &samples);
  m.check();
  const auto& g = m.proto().graph();
  // x and r are quantized; y is a graph output and stays float; the Relu is folded into c1's range.
  EXPECT_EQ(stats.counters.at("activations_quantized"), 2);
  EXPECT_EQ(stats.counters.at("activations_folded"), 1);
  EXPECT_EQ(stats.counters.at("weights_quantized"), 2);
  EXPECT_EQ(stats.counters.at("biases_quantized"), 1);
  EXPECT_EQ(stats.counters.at("calibration_samples"), 8);
  EXPECT_EQ(count_nodes(g, "Relu"), 0);
  EXPECT_EQ(count_nodes(g, "QuantizeLinear"), 2);
  EXPECT_EQ(count_nodes(g, "DequantizeLinear"), 5);  // x, r, w1, b1, w2
  EXPECT_EQ(count_nodes(g, "Conv"), 2);
  EXPECT_EQ(g.node_size(), 9);
  EXPECT_EQ(find_initializer(g, "w1"), nullptr);
  EXPECT_EQ(find_initializer(g, "b1"), nullptr);
  EXPECT_EQ(find_initializer(g, "w2"), nullptr);

  const NodeProto* conv1 = producer_of(g, "r");
  ASSERT_NE(conv1, nullptr);
  EXPECT_EQ(conv1->op_type(), "Conv");  // writes the Relu's output directly
  const NodeProto* conv2 = producer_of(g, "y");
  ASSERT_NE(conv2, nullptr);
  // Each Conv input is a DequantizeLinear; activation DQs come from a QuantizeLinear of the float tensor.
  for (const NodeProto* conv : {conv1, conv2})
    for (const auto& in : conv->input()) EXPECT_EQ(producer_of(g, in)->op_type(), "DequantizeLinear") << in;
  const NodeProto* dq_x = producer_of(g, conv1->input(0));
  EXPECT_EQ(producer_of(g, dq_x->input(0))->op_type(), "QuantizeLinear");
  EXPECT_EQ(producer_of(g, dq_x->input(0))->input(0), "x");
  const NodeProto* dq_r = producer_of(g, conv2->input(0));
  const NodeProto* q_r = producer_of(g, dq_r->input(0));
  EXPECT_EQ(q_r->input(0), "r");
  // The folded Relu: r's range starts at 0, so its zero point is 0.
  EXPECT_EQ(to_int64s(*find_initializer(g, q_r->input(2)))[0], 0);
  EXPECT_EQ(find_initializer(g, q_r->input(2))->data_type(), TensorProto::UINT8);

  // Weights (weight-type=auto = int7): int8 in [-64, 64] per output channel (axis 0), every zero point 0,
  // each channel's largest weight on the grid's end.
  const NodeProto* dq_w1 = producer_of(g, conv1->input(1));
  const TensorProto* w1q = find_initializer(g, dq_w1->input(0));
  EXPECT_EQ(w1q->data_type(), TensorProto::INT8);
  EXPECT_EQ(to_int64s(*find_initializer(g, dq_w1->input(2))), std::vector<int64_t>(4, 0));
  const std::vector<int64_t> w1_values = to_int64s(*w1q);
  ASSERT_EQ(w1_values.size() % 4, 0u);
  const size_t per_channel = w1_values.size() / 4;
  for (size_t c = 0; c < 4; ++c) {
    int64_t absmax = 0;
    for (size_t k = 0; k < per_channel; ++k) absmax = std::max(absmax, std::abs(w1_values[c * per_channel + k]));
    EXPECT_EQ(absmax, 64) << "channel " << c;
  }
  EXPECT_EQ(find_initializer(g, dq_w1->input(1))->dims(0), 4);
  EXPECT_EQ(dq_w1->attribute(0).name(), "axis");
  EXPECT_EQ(dq_w1->attribute(0).i(), 0);
  // Bias: int32 with scale = x_scale * w_scale[c].
  const NodeProto* dq_b1 = producer_of(g, conv1->input(2));
  EXPECT_EQ(find_initializer(g, dq_b1->input(0))->data_type(), TensorProto::INT32);
  const float xs = init_scalar(g, dq_x->input(1));
  const auto ws = to_floats(*find_initializer(g, dq_w1->input(1)));
  const auto bs = to_floats(*find_initializer(g, dq_b1->input(1)));
  for (size_t c = 0; c < 4; ++c) EXPECT_FLOAT_EQ(bs[c], xs * ws[c]);

  // The QDQ model computes nearly what the float model does.
  const eval::TensorMap feeds{{"x", random_samples({4, 2, 6, 6}, 12)}};
  const auto ref = eval::Evaluator(original).run(feeds).at("y").f;
  const auto got = eval::Evaluator(m).run(feeds).at("y").f;
  EXPECT_GT(cosine(ref, got), 0.999);

  // The self-check ran the QDQ model on the 8 calibration samples: y is close, no warning.
  const nlohmann::json& check = stats.layers.back();
  EXPECT_EQ(check["kind"], "output_check");
  EXPECT_EQ(check["name"], "y");
  EXPECT_EQ(check["samples"], 8);
  EXPECT_GT(check["cosine"].get<double>(), 0.999);
  EXPECT_EQ(stats.counters.at("self_check_outputs"), 1);
  EXPECT_EQ(stats.counters.count("self_check_failed"), 0u);
  EXPECT_TRUE(stats.warnings.empty());
}

// PP-OCRv4 det's failure in miniature: one tensor whose channels differ in range by 10^4. The
// per-tensor uint8 step (~2.4) rounds the small channel to 0, and a per-channel scale after it makes that
// channel the whole output. Every calibrated range is right and the rewrite is exact; the loss only
// shows in the outputs, so the pass has to measure them and say so.
TEST(QuantizeInt8Static, FoldedClipLeavesNoUnusedBounds) {
  // Clip(0, 6) after a Conv folds into the quantization range; its bound constants must go too
  // (ONNX Runtime warns about every unused initializer it finds).
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 2, 6, 6] x) => (float[N, 3, 6, 6] y) {
  c1 = Conv<pads = [1, 1, 1, 1]>(x, w1, b1)
  r = Clip(c1, lo, hi)
  y = Conv<pads = [1, 1, 1, 1]>(r, w2)
}
)",
                                        {testing::random_tensor("w1", {4, 2, 3, 3}, 1, 0.5f),
                                         testing::random_tensor("b1", {4}, 2, 0.1f),
                                         testing::random_tensor("w2", {3, 4, 3, 3}, 3, 0.5f),
                                         make_float_tensor("lo", {}, std::vector<float>{0.0f}),
                                         make_float_tensor("hi", {}, std::vector<float>{6.0f})});
  eval::TensorMap samples{{"x", random_samples({8, 2, 6, 6}, 11)}};
  const PassStats stats = run_static(m, &samples);
  EXPECT_EQ(stats.counters.at("activations_folded"), 1);
  EXPECT_EQ(count_nodes(m.proto().graph(), "Clip"), 0);
  for (const auto& t : m.proto().graph().initializer()) {
    EXPECT_NE(t.name(), "lo");
    EXPECT_NE(t.name(), "hi");
  }
  m.check();
}

TEST(QuantizeInt8Static, SelfCheckWarnsWhenTheOutputsDivergeFromTheFloatModel) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 2] x) => (float[N, 2] y) {
  s = Add(x, bias)
  y = Mul(s, gain)
}
)";
  auto make = [&] {
    return testing::model_with_weights(text, {make_float_tensor("bias", {2}, std::vector<float>{0.0f, 0.0f}),
                                              make_float_tensor("gain", {2}, std::vector<float>{1e-4f, 1e3f})});
  };
  eval::Tensor x = random_samples({16, 2}, 21);
  for (size_t k = 0; k < x.f.size(); ++k) x.f[k] *= (k % 2 == 0) ? 100.0f : 0.01f;
  const eval::TensorMap samples{{"x", x}};

  Model m = make();
  const PassStats stats = run_static(m, &samples);
  m.check();
  EXPECT_EQ(stats.counters.at("activations_quantized"), 2);  // x and s; y is a graph output
  ASSERT_FALSE(stats.layers.empty());
  const nlohmann::json& check = stats.layers.back();
  EXPECT_EQ(check["kind"], "output_check");
  EXPECT_EQ(check["name"], "y");
  EXPECT_EQ(check["samples"], 16);
  // The small channel rounds to exactly 0: y keeps only the 1e-4 * x0 column, ~1e-6 of the energy.
  EXPECT_LT(check["cosine"].get<double>(), 0.01);
  // Same number as running both models on the samples.
  const Model original = make();
  const auto ref = eval::Evaluator(original).run(samples).at("y").f;
  const auto got = eval::Evaluator(m).run(samples).at("y").f;
  EXPECT_NEAR(check["cosine"].get<double>(), cosine(ref, got), 1e-9);
  EXPECT_EQ(stats.counters.at("self_check_failed"), 1);
  ASSERT_EQ(stats.warnings.size(), 1u);
  EXPECT_NE(stats.warnings[0].find("self-check: output 'y' has cosine"), std::string::npos) << stats.warnings[0];
  EXPECT_NE(stats.warnings[0].find("below 0.99"), std::string::npos) << stats.warnings[0];

  // self-check=false: the same rewrite, no evaluation, no warning.
  Model quiet = make();
  const PassStats off = run_static(quiet, &samples, {{"self-check", "false"}});
  EXPECT_EQ(quiet.serialize(), m.serialize());
  EXPECT_EQ(off.counters.count("self_check_outputs"), 0u);
  EXPECT_TRUE(off.warnings.empty());
}

TEST(QuantizeInt8Static, ScaleAndZeroPointFromAKnownRange) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 4] x) => (float[N, 3] y) {
  y = MatMul(x, w)
}
)";
  Model m = testing::model_with_weights(text, {testing::random_tensor("w", {4, 3}, 5)});
  // Observed range [-1, 3]: s = 4 / 255, zp = round(1 / s) = round(63.75) = 64.
  eval::TensorMap samples{{"x", eval::Tensor::floats({2, 4}, {-1, 0, 0.5f, 1, 3, 2, -0.25f, 0})}};
  const PassStats stats = run_static(m, &samples);
  m.check();
  const auto& g = m.proto().graph();
  const NodeProto* q = node_named_op(g, "QuantizeLinear");
  ASSERT_NE(q, nullptr);
  EXPECT_FLOAT_EQ(init_scalar(g, q->input(1)), 4.0f / 255.0f);
  EXPECT_EQ(to_int64s(*find_initializer(g, q->input(2)))[0], 64);
  const QuantParams expected = choose_params(-1.0f, 3.0f, false, int8_grid(false, false, false));
  EXPECT_EQ(expected.zero_point, 64);
  ASSERT_EQ(stats.layers.size(), 3u);  // x, w, and the self-check of y
  EXPECT_EQ(stats.layers[0]["name"], "x");
  EXPECT_DOUBLE_EQ(stats.layers[0]["min"].get<double>(), -1.0);
  EXPECT_DOUBLE_EQ(stats.layers[0]["max"].get<double>(), 3.0);
  // MatMul weight: per column (axis 1); y is a graph output, so no Q after the MatMul.
  EXPECT_EQ(count_nodes(g, "QuantizeLinear"), 1);
  const NodeProto* mm = node_named_op(g, "MatMul");
  const NodeProto* dq_w = producer_of(g, mm->input(1));
  EXPECT_EQ(dq_w->attribute(0).i(), 1);
  EXPECT_EQ(find_initializer(g, dq_w->input(1))->dims(0), 3);
}

TEST(QuantizeInt8Static, MatMulOfTwoActivationsAndAddQuantizeEveryOperand) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 4] a, float[N, 4] b) => (float[N, 4] y) {
  s = Add(a, b)
  t = MatMul(s, w)
  y = Relu(t)
}
)";
  Model m = testing::model_with_weights(text, {testing::random_tensor("w", {4, 4}, 9)});
  eval::TensorMap samples{{"a", random_samples({6, 4}, 1)}, {"b", random_samples({6, 4}, 2)}};
  const PassStats stats = run_static(m, &samples);
  m.check();
  const auto& g = m.proto().graph();
  // a, b (Add inputs), s (Add output = MatMul input); t is read only by a Relu whose output is a
  // graph output: no fold, t gets a pair, the Relu stays.
  EXPECT_EQ(stats.counters.at("activations_quantized"), 4);
  EXPECT_EQ(count_nodes(g, "Relu"), 1);
  EXPECT_EQ(stats.counters.count("activations_folded"), 0u);
  const NodeProto* add = node_named_op(g, "Add");
  for (const auto& in : add->input()) EXPECT_EQ(producer_of(g, in)->op_type(), "DequantizeLinear");
}

TEST(QuantizeInt8Static, MaxPoolOutputSharesItsInputParameters) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 2, 4, 4] x) => (float[N, 2, 2, 2] y) {
  p = MaxPool<kernel_shape = [2, 2], strides = [2, 2]>(x)
  y = Conv(p, w)
}
)";
  Model m = testing::model_with_weights(text, {testing::random_tensor("w", {2, 2, 1, 1}, 4)});
  eval::TensorMap samples{{"x", random_samples({3, 2, 4, 4}, 6)}};
  run_static(m, &samples);
  m.check();
  const auto& g = m.proto().graph();
  const NodeProto* q0 = node_named_op(g, "QuantizeLinear", 0);
  const NodeProto* q1 = node_named_op(g, "QuantizeLinear", 1);
  ASSERT_NE(q1, nullptr);
  EXPECT_EQ(init_scalar(g, q0->input(1)), init_scalar(g, q1->input(1)));
  EXPECT_EQ(to_int64s(*find_initializer(g, q0->input(2)))[0], to_int64s(*find_initializer(g, q1->input(2)))[0]);
}

TEST(QuantizeInt8Static, SharedWeightIsQuantizedOnceAndExcludedNodesStayFloat) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 4] x) => (float[N, 4] y, float[N, 4] z) {
  h = MatMul(x, w)
  y = MatMul(h, w)
  z = MatMul(x, v)
}
)";
  Model m = testing::model_with_weights(text, {testing::random_tensor("w", {4, 4}, 1), testing::random_tensor("v", {4, 4}, 2)});
  m.proto().mutable_graph()->mutable_node(2)->set_name("keep_me");
  eval::TensorMap samples{{"x", random_samples({5, 4}, 3)}};
  const PassStats stats = run_static(m, &samples, {{"exclude", "[keep_me]"}});
  m.check();
  const auto& g = m.proto().graph();
  EXPECT_EQ(stats.counters.at("weights_quantized"), 1);
  EXPECT_EQ(stats.counters.at("skipped.excluded"), 1);
  EXPECT_EQ(find_initializer(g, "w"), nullptr);
  ASSERT_NE(find_initializer(g, "v"), nullptr);  // the excluded MatMul reads its float weight
  EXPECT_EQ(producer_of(g, "h")->input(1), producer_of(g, "y")->input(1));
  EXPECT_EQ(producer_of(g, "z")->input(1), "v");
}

// `nodes=[...]` (compress auto's per-layer plans): only the named layer is quantized, with the
// BatchNormalization and Relu after it folded in; an unnamed layer keeps being found by its layer name
// after the BN fold renames its output.
TEST(QuantizeInt8Static, NodeRestrictionQuantizesTheLayerWithItsBatchNormAndRelu) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 2, 6, 6] x) => (float[N, 3, 6, 6] y) {
  c1 = Conv<pads = [1, 1, 1, 1]>(x, w1, b1)
  n1 = BatchNormalization(c1, s, o, mu, var)
  r = Relu(n1)
  y = Conv<pads = [1, 1, 1, 1]>(r, w2)
}
)";
  const Pass* pass = PassRegistry::builtin().find("quantize-int8");
  std::map<std::string, std::string> values;
  for (const auto& o : pass->info().options) values[o.name] = o.default_value;
  values["mode"] = "static";
  SampleSets sets{{"calibration", std::make_shared<const eval::TensorMap>(
                                      eval::TensorMap{{"x", random_samples({8, 2, 6, 6}, 12)}})}};
  for (const std::string name : {"conv_one", ""}) {
    Model m = testing::model_with_weights(
        text, {testing::random_tensor("w1", {4, 2, 3, 3}, 1, 0.5f), testing::random_tensor("b1", {4}, 2, 0.1f),
               make_float_tensor("s", {4}, std::vector<float>{1.0f, 0.5f, 2.0f, 1.5f}),
               make_float_tensor("o", {4}, std::vector<float>{0.1f, -0.2f, 0.0f, 0.3f}),
               make_float_tensor("mu", {4}, std::vector<float>{0.0f, 0.1f, -0.1f, 0.2f}),
               make_float_tensor("var", {4}, std::vector<float>{1.0f, 2.0f, 0.5f, 1.0f}),
               testing::random_tensor("w2", {3, 4, 3, 3}, 3, 0.5f)});
    m.proto().mutable_graph()->mutable_node(0)->set_name(name);
    m.invalidate();
    const auto only = std::make_shared<const std::set<std::string>>(
        std::set<std::string>{name.empty() ? "Conv:c1" : name});
    const PassStats stats = pass->run(m, PassContext(PassOptions(values), {}, sets, only));
    m.check();
    const auto& g = m.proto().graph();
    SCOPED_TRACE(name);
    EXPECT_EQ(stats.counters.at("fold.batch_norms_folded"), 1);
    EXPECT_EQ(stats.counters.at("weights_quantized"), 1);
    EXPECT_EQ(count_nodes(g, "BatchNormalization"), 0);
    EXPECT_EQ(count_nodes(g, "Relu"), 0);
    EXPECT_EQ(count_nodes(g, "QuantizeLinear"), 2);  // x and r, which the float Conv reads dequantized
    EXPECT_EQ(producer_of(g, "y")->input(1), "w2");
  }
}

TEST(QuantizeInt8Static, WeightTypeInt8StoresSignedWeightsWithZeroPointZero) {
  Model m = conv_relu_conv();
  const Model original = Model::from_proto(m.proto());
  eval::TensorMap samples{{"x", random_samples({4, 2, 6, 6}, 3)}};
  run_static(m, &samples, {{"weight-type", "int8"}});
  m.check();
  const auto& g = m.proto().graph();
  const NodeProto* conv2 = producer_of(g, "y");
  ASSERT_NE(conv2, nullptr);
  const NodeProto* dq_w2 = producer_of(g, conv2->input(1));
  EXPECT_EQ(find_initializer(g, dq_w2->input(0))->data_type(), TensorProto::INT8);
  EXPECT_EQ(to_int64s(*find_initializer(g, dq_w2->input(2))), std::vector<int64_t>(3, 0));
  // uint8 with zero point 128 and int8 with zero point 0 are the same grid: the dequantized weights agree exactly.
  Model u = Model::from_proto(original.proto());
  run_static(u, &samples, {{"weight-type", "uint8"}});
  const auto signed_out = eval::Evaluator(m).run(samples).at("y").f;
  const auto unsigned_out = eval::Evaluator(u).run(samples).at("y").f;
  EXPECT_EQ(signed_out, unsigned_out);
}

TEST(QuantizeInt8Static, WeightTypeUint8StoresZeroPoint128) {
  Model m = conv_relu_conv();
  eval::TensorMap samples{{"x", random_samples({4, 2, 6, 6}, 3)}};
  run_static(m, &samples, {{"weight-type", "uint8"}});
  m.check();
  const auto& g = m.proto().graph();
  const NodeProto* dq_w2 = producer_of(g, producer_of(g, "y")->input(1));
  EXPECT_EQ(find_initializer(g, dq_w2->input(0))->data_type(), TensorProto::UINT8);
  EXPECT_EQ(to_int64s(*find_initializer(g, dq_w2->input(2))), std::vector<int64_t>(3, 128));
}

TEST(QuantizeInt8Static, Int7IsInt8WithReduceRange) {
  // weight-type=auto and int7 are int8 + reduce-range: the same weights.
  Model a = conv_relu_conv();
  Model b = Model::from_proto(a.proto());
  Model c = Model::from_proto(a.proto());
  eval::TensorMap samples{{"x", random_samples({4, 2, 6, 6}, 3)}};
  run_static(a, &samples);
  run_static(b, &samples, {{"weight-type", "int7"}});
  run_static(c, &samples, {{"weight-type", "int8"}, {"reduce-range", "true"}});
  EXPECT_EQ(a.proto().SerializeAsString(), b.proto().SerializeAsString());
  EXPECT_EQ(a.proto().SerializeAsString(), c.proto().SerializeAsString());
}

TEST(QuantizeInt8Static, ConstantNodeWeight) {
  Model m = conv_relu_conv();
  // Move w2 into a Constant node.
  auto* graph = m.proto().mutable_graph();
  TensorProto w2 = graph->initializer(2);
  graph->mutable_initializer()->DeleteSubrange(2, 1);
  NodeProto constant;
  constant.set_op_type("Constant");
  constant.add_output("w2");
  auto* a = constant.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = w2;
  *graph->add_node() = constant;
  m.invalidate();
  m.graph().topological_sort();
  eval::TensorMap samples{{"x", random_samples({2, 2, 6, 6}, 1)}};
  const PassStats stats = run_static(m, &samples);
  m.check();
  EXPECT_EQ(stats.counters.at("weights_quantized"), 2);
  EXPECT_EQ(count_nodes(m.proto().graph(), "Constant"), 0);  // its last reader was rewritten
}

TEST(QuantizeInt8Static, MissingCalibrationIsAUsageError) {
  Model m = conv_relu_conv();
  try {
    run_static(m, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("calibration"), std::string::npos);
  }
}

TEST(QuantizeInt8Static, CalibrationMissingAnInputIsAUsageError) {
  Model m = conv_relu_conv();
  eval::TensorMap samples{{"not_x", random_samples({2, 2, 6, 6}, 1)}};
  try {
    run_static(m, &samples);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos);
  }
}

TEST(QuantizeInt8Static, HistogramMethodsNarrowTheRangeWithinMinMax) {
  for (const char* method : {"percentile", "entropy"}) {
    Model m = conv_relu_conv();
    eval::TensorMap samples{{"x", random_samples({16, 2, 6, 6}, 21)}};
    const PassStats stats = run_static(m, &samples, {{"method", method}, {"percentile", "99"}});
    m.check();
    int activations = 0, narrower = 0;
    for (const auto& layer : stats.layers) {
      if (layer["kind"] != "activation") continue;
      ++activations;
      EXPECT_GE(layer["range_min"].get<double>(), layer["min"].get<double>()) << method;
      EXPECT_LE(layer["range_max"].get<double>(), layer["max"].get<double>()) << method;
      narrower += layer["range_max"].get<double>() - layer["range_min"].get<double>() <
                  layer["max"].get<double>() - layer["min"].get<double>();
    }
    EXPECT_EQ(activations, 2);
    // Percentile 99 always cuts; entropy cuts the Relu output's long right tail.
    EXPECT_GE(narrower, 1) << method;
  }
}

TEST(QuantizeInt8Static, SameInputSameBytes) {
  eval::TensorMap samples{{"x", random_samples({4, 2, 6, 6}, 8)}};
  Model a = conv_relu_conv(), b = conv_relu_conv();
  run_static(a, &samples, {{"method", "entropy"}});
  run_static(b, &samples, {{"method", "entropy"}});
  EXPECT_EQ(a.serialize(), b.serialize());
}

TEST(QuantizeInt8Static, ConvWithAShortReductionStaysFloat) {
  // a: 1 x 3 x 3 = 9 < 16 (slower as QLinearConv than in float); b: 4 x 3 x 3 = 36 is quantized.
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 1, 6, 6] x) => (float[1, 4, 2, 2] y) {
  a = Conv(x, wa)
  r = Relu(a)
  y = Conv(r, wb)
}
)";
  Model m = testing::model_with_weights(text, {testing::random_tensor("wa", {4, 1, 3, 3}, 1),
                                               testing::random_tensor("wb", {4, 4, 3, 3}, 2)});
  const eval::TensorMap samples{{"x", random_samples({8, 1, 6, 6}, 3)}};
  const PassStats s = run_static(m, &samples);
  EXPECT_EQ(s.counters.at("skipped.reduction_too_short"), 1);
  EXPECT_EQ(s.counters.at("weights_quantized"), 1);
  EXPECT_EQ(m.proto().graph().node(0).op_type() == "Conv" ? m.proto().graph().node(0).input(1) : "", "wa");
}

}  // namespace
}  // namespace compress
