#include <compress/error.h>
#include <compress/model.h>
#include <compress/pass.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "passes/error_metrics.h"
#include "passes/int8_quant.h"
#include "core/attributes.h"
#include "testing/builders.h"

namespace compress {
namespace {

using testing::count_nodes;
using testing::find_initializer;

PassStats run_pass(Model& model, const std::map<std::string, std::string>& overrides = {},
                   const std::vector<std::string>& global_excludes = {}) {
  return testing::run_pass(model, "quantize-int8", overrides, global_excludes);
}

const NodeProto* find_node(const onnx::GraphProto& g, const std::string& op) {
  for (const auto& n : g.node())
    if (n.op_type() == op) return &n;
  return nullptr;
}

int64_t axis_of(const NodeProto& n) { return int_attribute(n, "axis", -1); }

std::vector<int64_t> dims_of(const TensorProto& t) { return {t.dims().begin(), t.dims().end()}; }

// Weight with channel c (along `axis`) scaled by (c + 1), so every channel gets its own scale.
TensorProto channel_scaled(const std::string& name, const std::vector<int64_t>& dims, int64_t axis, uint32_t seed) {
  TensorProto t = testing::random_tensor(name, dims, seed);
  std::vector<float> v = to_floats(t);
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < dims.size(); ++d) inner *= dims[d];
  for (size_t i = 0; i < v.size(); ++i) v[i] *= static_cast<float>((static_cast<int64_t>(i) / inner) % dims[axis] + 1);
  return make_float_tensor(name, dims, v);
}

// Checks a DequantizeLinear weight bit for bit: per channel along `axis` (or per tensor at -1),
// scale = max|w| / 127, q = round_half_even(w / scale), and q * scale is exactly the dequantized value.
void expect_symmetric_int8(const std::vector<float>& w, const std::vector<int64_t>& dims, int64_t axis,
                           const TensorProto& q, const TensorProto& scale) {
  // INT8, or UINT8 shifted by the symmetric zero point 128: the same grid.
  ASSERT_TRUE(q.data_type() == TensorProto::INT8 || q.data_type() == TensorProto::UINT8);
  ASSERT_EQ(dims_of(q), dims);
  std::vector<int64_t> qv = to_int64s(q);
  if (q.data_type() == TensorProto::UINT8)
    for (auto& v : qv) v -= 128;
  const std::vector<float> sv = to_floats(scale);
  const int64_t channels = axis < 0 ? 1 : dims[axis];
  ASSERT_EQ(static_cast<int64_t>(sv.size()), channels);
  int64_t inner = static_cast<int64_t>(w.size());
  if (axis >= 0) {
    inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < dims.size(); ++d) inner *= dims[d];
  }
  std::vector<float> absmax(static_cast<size_t>(channels), 0.0f);
  for (size_t i = 0; i < w.size(); ++i) {
    auto c = static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels);
    absmax[c] = std::max(absmax[c], std::abs(w[i]));
  }
  for (size_t c = 0; c < sv.size(); ++c) EXPECT_EQ(sv[c], static_cast<float>(static_cast<double>(absmax[c]) / 127.0));
  for (size_t i = 0; i < w.size(); ++i) {
    const float s = sv[static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels)];
    const float expected = std::nearbyint(w[i] / s);
    ASSERT_EQ(static_cast<float>(qv[i]), expected) << i;
    ASSERT_LE(std::abs(qv[i]), 127);
    // What DequantizeLinear computes equals round(w / s) * s exactly.
    EXPECT_EQ(static_cast<float>(qv[i]) * s, expected * s);
    EXPECT_LE(std::abs(static_cast<float>(qv[i]) * s - w[i]), s / 2 * (1 + 1e-6f));
  }
}

// ---- the scalar kernel --------------------------------------------------------------------------

// Two MatMuls reading the same weight w [64, 32].
Model two_matmuls_sharing_w() {
  return testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x, float[2, 64] x2) => (float[2, 32] y, float[2, 32] y2) {
  y = MatMul(x, w)
  y2 = MatMul(x2, w)
}
)",
                                     {testing::random_tensor("w", {64, 32}, 1)});
}

TEST(Int8Quant, FastRoundingEqualsNearbyintOnHalvesAndBigValues) {
  std::vector<float> xs = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, 127.5f, -127.5f, 0.49999997f,
                           4194303.5f, -4194303.5f, 4194304.0f, 1e-30f, -0.0f};
  for (int i = -300000; i <= 300000; ++i) xs.push_back(static_cast<float>(i) * 0.001953125f);  // step 2^-9
  for (float x : xs) EXPECT_EQ(round_half_even_small(x), std::nearbyint(x)) << x;
}

// quantize_weight against the element-wise spec: choose_params on each channel's own range, then
// quantize_value / dequantize_value per element.
void expect_matches_spec(const std::vector<float>& w, const std::vector<int64_t>& dims, int64_t axis, bool symmetric,
                         const Int8Grid& grid) {
  const QuantizedWeight q = quantize_weight(w, dims, axis, symmetric, grid);
  int64_t channels = 1, inner = static_cast<int64_t>(w.size());
  if (axis >= 0) {
    channels = dims[static_cast<size_t>(axis)];
    inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < dims.size(); ++d) inner *= dims[d];
  }
  ASSERT_EQ(q.params.size(), static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (size_t i = 0; i < w.size(); ++i)
      if ((static_cast<int64_t>(i) / inner) % channels == c) {
        lo = std::min(lo, w[i]);
        hi = std::max(hi, w[i]);
      }
    const QuantParams p = choose_params(lo, hi, symmetric, grid);
    EXPECT_EQ(q.params[static_cast<size_t>(c)].scale, p.scale);
    EXPECT_EQ(q.params[static_cast<size_t>(c)].zero_point, p.zero_point);
  }
  ASSERT_EQ(q.bytes.size(), w.size());
  std::vector<float> dequantized(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const QuantParams& p = q.params[static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels)];
    const int32_t expected = quantize_value(w[i], p, grid);
    ASSERT_EQ(grid_value(q.bytes[i], grid), expected) << "element " << i;
    dequantized[i] = dequantize_value(expected, p);
  }
  // The error sums run in another order (by rows, on all cores): equal to rounding.
  const ReconstructionError spec = reconstruction_error(w, dequantized);
  EXPECT_NEAR(q.error.relative_l2, spec.relative_l2, 1e-12 + 1e-9 * spec.relative_l2);
  EXPECT_NEAR(q.error.sqnr_db, spec.sqnr_db, 1e-9);
  EXPECT_EQ(q.error.max_abs, spec.max_abs);
}

TEST(Int8Quant, QuantizeWeightMatchesTheElementWiseSpecOnEveryAxis) {
  std::vector<float> w(6 * 5 * 70 * 4);
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = std::sin(0.37f * static_cast<float>(i)) * (1.0f + static_cast<float>(i % 7)) + (i % 97 == 0 ? 40.0f : 0.0f);
  const std::vector<int64_t> dims = {6, 5, 70, 4};
  for (int64_t axis = -1; axis < 4; ++axis) {
    expect_matches_spec(w, dims, axis, true, int8_grid(true, true, false));
    expect_matches_spec(w, dims, axis, true, int8_grid(true, false, false));
    expect_matches_spec(w, dims, axis, false, int8_grid(false, false, false));
    expect_matches_spec(w, dims, axis, true, int8_grid(true, true, true));
  }
  // Big enough to run on all cores, channels last ([K, N] along N).
  std::vector<float> big(300 * 400);
  for (size_t i = 0; i < big.size(); ++i) big[i] = std::cos(0.011f * static_cast<float>(i * i % 1009));
  expect_matches_spec(big, {300, 400}, 1, true, int8_grid(true, false, false));
  expect_matches_spec(big, {300, 400}, 0, false, int8_grid(false, false, false));
}

TEST(QuantizeInt8Kernel, RoundsHalfToEven) {
  const Int8Grid grid = int8_grid(true, true, false);
  const QuantParams unit{1.0f, 0};
  EXPECT_EQ(quantize_value(2.5f, unit, grid), 2);
  EXPECT_EQ(quantize_value(3.5f, unit, grid), 4);
  EXPECT_EQ(quantize_value(-2.5f, unit, grid), -2);
  EXPECT_EQ(quantize_value(0.5f, unit, grid), 0);
  EXPECT_EQ(quantize_value(1.5f, unit, grid), 2);
  EXPECT_EQ(quantize_value(2.4999998f, unit, grid), 2);
  // In units of a non-trivial scale: 0.25 with s = 0.1 -> 2.5 -> 2 (float: 0.25f / 0.1f == 2.5f).
  ASSERT_EQ(0.25f / 0.1f, 2.5f);
  EXPECT_EQ(quantize_value(0.25f, {0.1f, 0}, grid), 2);
}

TEST(QuantizeInt8Kernel, Clamps) {
  const QuantParams unit{1.0f, 0};
  EXPECT_EQ(quantize_value(200.0f, unit, int8_grid(true, true, false)), 127);
  EXPECT_EQ(quantize_value(-200.0f, unit, int8_grid(true, true, false)), -127);
  EXPECT_EQ(quantize_value(100.0f, unit, int8_grid(true, true, true)), 64);
  EXPECT_EQ(quantize_value(-100.0f, unit, int8_grid(true, true, true)), -64);
  EXPECT_EQ(quantize_value(-5.0f, unit, int8_grid(false, false, false)), 0);
  EXPECT_EQ(quantize_value(300.0f, unit, int8_grid(false, false, false)), 255);
  EXPECT_EQ(quantize_value(300.0f, unit, int8_grid(false, false, true)), 127);
  EXPECT_EQ(quantize_value(-300.0f, {1.0f, 128}, int8_grid(true, false, false)), 1);
  EXPECT_EQ(quantize_value(300.0f, {1.0f, 128}, int8_grid(true, false, false)), 255);
}

TEST(QuantizeInt8Kernel, AsymmetricZeroPointRepresentsZeroExactly) {
  const Int8Grid grid = int8_grid(false, false, false);
  const QuantParams p = choose_params(-1.0f, 3.0f, false, grid);
  EXPECT_EQ(p.scale, static_cast<float>(4.0 / 255.0));
  EXPECT_EQ(p.zero_point, 64);  // round(0 - (-1) / (4/255)) = round(63.75)
  EXPECT_EQ(quantize_value(0.0f, p, grid), p.zero_point);
  EXPECT_EQ(dequantize_value(quantize_value(0.0f, p, grid), p), 0.0f);
  EXPECT_EQ(quantize_value(-1.0f, p, grid), 0);
  EXPECT_EQ(quantize_value(3.0f, p, grid), 255);
  // An all-positive range is widened to include 0: zero point 0.
  const QuantParams positive = choose_params(2.0f, 5.0f, false, grid);
  EXPECT_EQ(positive.zero_point, 0);
  EXPECT_EQ(positive.scale, static_cast<float>(5.0 / 255.0));
  // An all-negative range: zero point at the top.
  EXPECT_EQ(choose_params(-5.0f, -2.0f, false, grid).zero_point, 255);
}

TEST(QuantizeInt8Kernel, SymmetricScalesAndSafeZeroScale) {
  EXPECT_EQ(choose_params(-2.0f, 1.0f, true, int8_grid(true, true, false)).scale, static_cast<float>(2.0 / 127));
  EXPECT_EQ(choose_params(-2.0f, 1.0f, true, int8_grid(true, true, true)).scale, static_cast<float>(2.0 / 64));
  const QuantParams conv = choose_params(-2.0f, 1.0f, true, int8_grid(true, false, false));
  EXPECT_EQ(conv.zero_point, 128);
  EXPECT_EQ(conv.scale, static_cast<float>(2.0 / 127));
  for (bool symmetric : {true, false}) {
    const Int8Grid grid = int8_grid(symmetric, symmetric, false);
    for (float tiny : {0.0f, 1e-44f}) {
      const QuantParams p = choose_params(-tiny, tiny, symmetric, grid);
      EXPECT_TRUE(std::isfinite(p.scale) && p.scale > 0) << p.scale;
      EXPECT_EQ(dequantize_value(quantize_value(0.0f, p, grid), p), 0.0f);
    }
  }
}

// ---- weight-only --------------------------------------------------------------------------------

const char* kMatMul = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x) => (float[2, 32] y) {
  y = MatMul(x, w)
}
)";

TEST(QuantizeInt8, MatMulPerChannelAxis1IsBitExact) {
  const TensorProto w = channel_scaled("w", {64, 32}, 1, 7);
  Model m = testing::model_with_weights(kMatMul, {w});
  const PassStats stats = run_pass(m);
  m.check();
  const auto& g = m.proto().graph();
  EXPECT_EQ(stats.counters.at("quantized"), 1);
  EXPECT_EQ(find_initializer(g, "w"), nullptr);  // the float original is gone
  const NodeProto* dq = find_node(g, "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(dq->input_size(), 2);  // symmetric: no zero point input
  EXPECT_EQ(axis_of(*dq), 1);
  EXPECT_EQ(find_node(g, "MatMul")->input(1), dq->output(0));
  const TensorProto* scale = find_initializer(g, dq->input(1));
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ(dims_of(*scale), std::vector<int64_t>{32});
  expect_symmetric_int8(to_floats(w), {64, 32}, 1, *find_initializer(g, dq->input(0)), *scale);

  ASSERT_EQ(stats.layers.size(), 1u);
  const auto& layer = stats.layers[0];
  EXPECT_EQ(layer["name"], "w");
  EXPECT_EQ(layer["format"], "DequantizeLinear");
  EXPECT_EQ(layer["axis"], 1);
  const auto sv = to_floats(*scale);
  EXPECT_EQ(layer["scale_min"].get<float>(), *std::min_element(sv.begin(), sv.end()));
  EXPECT_EQ(layer["scale_max"].get<float>(), *std::max_element(sv.begin(), sv.end()));
  // Symmetric 8-bit on Gaussian weights: about 40 dB; a broken grid or scale lands far below.
  EXPECT_GT(layer["sqnr_db"].get<double>(), 35.0);
  EXPECT_LT(layer["relative_l2"].get<double>(), 0.02);
}

TEST(QuantizeInt8, RoundHalfEvenThroughThePass) {
  // Column max 127 -> scale exactly 1, so the stored ints are round_half_even(w).
  std::vector<float> v(8 * 4, 0.0f);
  const std::vector<float> column{127.0f, 2.5f, 3.5f, -2.5f, -3.5f, 0.5f, 1.5f, -126.5f};
  for (int k = 0; k < 8; ++k) v[k * 4] = column[k];
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 8] x) => (float[1, 4] y) {
  y = MatMul(x, w)
}
)";
  Model m = testing::model_with_weights(text, {make_float_tensor("w", {8, 4}, v)});
  run_pass(m, {{"min-elements", "1"}});
  const NodeProto* dq = find_node(m.proto().graph(), "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  const auto q = to_int64s(*find_initializer(m.proto().graph(), dq->input(0)));
  const std::vector<int64_t> expected{127, 2, 4, -2, -4, 0, 2, -126};
  for (int k = 0; k < 8; ++k) EXPECT_EQ(q[k * 4], expected[k]) << k;
  const auto s = to_floats(*find_initializer(m.proto().graph(), dq->input(1)));
  EXPECT_EQ(s[0], 1.0f);
  EXPECT_EQ(s[1], 1.0f);  // an all-zero column gets the safe scale 1
  EXPECT_EQ(q[1], 0);
}

TEST(QuantizeInt8, ConvAxis0AndGemmAxesWithAndWithoutTransB) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 8, 6, 6] x, float[2, 40] a) => (float[1, 16, 4, 4] y, float[2, 24] z, float[2, 24] u) {
  y = Conv(x, wc)
  z = Gemm <transB = 1> (a, wt)
  u = Gemm (a, wn)
}
)";
  const TensorProto wc = channel_scaled("wc", {16, 8, 3, 3}, 0, 1);
  const TensorProto wt = channel_scaled("wt", {24, 40}, 0, 2);
  const TensorProto wn = channel_scaled("wn", {40, 24}, 1, 3);
  Model m = testing::model_with_weights(text, {wc, wt, wn});
  const PassStats stats = run_pass(m, {{"min-elements", "16"}});
  m.check();
  EXPECT_EQ(stats.counters.at("quantized"), 3);
  const auto& g = m.proto().graph();
  std::map<std::string, const NodeProto*> dq_for;  // original weight -> its DequantizeLinear
  for (const auto& n : g.node())
    if (n.op_type() == "DequantizeLinear") dq_for[n.input(0).substr(0, n.input(0).find("_quantized"))] = &n;
  ASSERT_EQ(dq_for.size(), 3u);
  EXPECT_EQ(axis_of(*dq_for["wc"]), 0);
  EXPECT_EQ(axis_of(*dq_for["wt"]), 0);
  EXPECT_EQ(axis_of(*dq_for["wn"]), 1);
  expect_symmetric_int8(to_floats(wc), {16, 8, 3, 3}, 0, *find_initializer(g, dq_for["wc"]->input(0)),
                        *find_initializer(g, dq_for["wc"]->input(1)));
  expect_symmetric_int8(to_floats(wt), {24, 40}, 0, *find_initializer(g, dq_for["wt"]->input(0)),
                        *find_initializer(g, dq_for["wt"]->input(1)));
  expect_symmetric_int8(to_floats(wn), {40, 24}, 1, *find_initializer(g, dq_for["wn"]->input(0)),
                        *find_initializer(g, dq_for["wn"]->input(1)));
}

TEST(QuantizeInt8, PerTensor) {
  const TensorProto w = channel_scaled("w", {64, 32}, 1, 5);
  Model m = testing::model_with_weights(kMatMul, {w});
  run_pass(m, {{"per-channel", "false"}});
  m.check();
  const auto& g = m.proto().graph();
  const NodeProto* dq = find_node(g, "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(axis_of(*dq), -1);
  EXPECT_TRUE(dims_of(*find_initializer(g, dq->input(1))).empty());
  expect_symmetric_int8(to_floats(w), {64, 32}, -1, *find_initializer(g, dq->input(0)), *find_initializer(g, dq->input(1)));
}

TEST(QuantizeInt8, AsymmetricUint8WithZeroPoints) {
  const TensorProto w = channel_scaled("w", {64, 32}, 1, 9);
  std::vector<float> v = to_floats(w);
  for (size_t i = 0; i < v.size(); ++i) v[i] += (i % 32 == 3) ? 10.0f : 0.5f;  // column 3 all positive
  Model m = testing::model_with_weights(kMatMul, {make_float_tensor("w", {64, 32}, v)});
  const PassStats stats = run_pass(m, {{"symmetric", "false"}});
  m.check();
  const auto& g = m.proto().graph();
  const NodeProto* dq = find_node(g, "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  ASSERT_EQ(dq->input_size(), 3);
  const TensorProto& q = *find_initializer(g, dq->input(0));
  EXPECT_EQ(q.data_type(), TensorProto::UINT8);
  const TensorProto& zp_t = *find_initializer(g, dq->input(2));
  EXPECT_EQ(zp_t.data_type(), TensorProto::UINT8);
  EXPECT_EQ(dims_of(zp_t), std::vector<int64_t>{32});
  const auto qv = to_int64s(q);
  const auto sv = to_floats(*find_initializer(g, dq->input(1)));
  const auto zp = to_int64s(zp_t);
  EXPECT_EQ(zp[3], 0);  // all-positive column: range widened to 0
  for (size_t c = 0; c < 32; ++c) {
    float lo = 0, hi = 0;
    for (size_t k = 0; k < 64; ++k) lo = std::min(lo, v[k * 32 + c]), hi = std::max(hi, v[k * 32 + c]);
    EXPECT_EQ(sv[c], static_cast<float>((static_cast<double>(hi) - lo) / 255.0));
    EXPECT_EQ(zp[c], static_cast<int64_t>(std::nearbyint(-static_cast<double>(lo) / sv[c])));
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const size_t c = i % 32;
    const float expected = std::clamp(std::nearbyint(v[i] / sv[c]) + static_cast<float>(zp[c]), 0.0f, 255.0f);
    ASSERT_EQ(static_cast<float>(qv[i]), expected) << i;
    EXPECT_LE(std::abs(static_cast<float>(qv[i] - zp[c]) * sv[c] - v[i]), sv[c] / 2 * (1 + 1e-5f));
  }
  EXPECT_EQ(stats.layers[0]["dtype"], "uint8");
}

TEST(QuantizeInt8, ReduceRangeUsesSevenBits) {
  const TensorProto w = testing::random_tensor("w", {64, 32}, 3);
  Model m = testing::model_with_weights(kMatMul, {w});
  run_pass(m, {{"reduce-range", "true"}, {"per-channel", "false"}});
  const auto& g = m.proto().graph();
  const NodeProto* dq = find_node(g, "DequantizeLinear");
  const auto qv = to_int64s(*find_initializer(g, dq->input(0)));
  const float s = to_floats(*find_initializer(g, dq->input(1)))[0];
  float absmax = 0;
  for (float x : to_floats(w)) absmax = std::max(absmax, std::abs(x));
  EXPECT_EQ(s, static_cast<float>(static_cast<double>(absmax) / 64));
  for (int64_t q : qv) ASSERT_LE(std::abs(q), 64);
  EXPECT_TRUE(std::any_of(qv.begin(), qv.end(), [](int64_t q) { return std::abs(q) == 64; }));
}

TEST(QuantizeInt8, SharedWeightIsQuantizedOnce) {
  Model m = two_matmuls_sharing_w();
  const PassStats stats = run_pass(m);
  m.check();
  const auto& g = m.proto().graph();
  EXPECT_EQ(stats.counters.at("quantized"), 1);
  EXPECT_EQ(stats.counters.at("rewritten_nodes"), 2);
  EXPECT_EQ(count_nodes(g, "DequantizeLinear"), 1);
  const std::string dq_out = find_node(g, "DequantizeLinear")->output(0);
  for (const auto& n : g.node())
    if (n.op_type() == "MatMul") {
      EXPECT_EQ(n.input(1), dq_out);
    }
  EXPECT_EQ(g.initializer_size(), 2);  // int8 weight + scale; the float original is gone
}

TEST(QuantizeInt8, WeightAlsoReadByAnExcludedNodeKeepsTheOriginal) {
  Model m = two_matmuls_sharing_w();
  m.proto().mutable_graph()->mutable_node(1)->set_name("keep_me");
  m.invalidate();
  const PassStats stats = run_pass(m, {{"exclude", "[keep*]"}});
  m.check();
  const auto& g = m.proto().graph();
  EXPECT_EQ(stats.counters.at("skipped.excluded"), 1);
  EXPECT_EQ(stats.counters.at("originals_kept"), 1);
  EXPECT_NE(find_initializer(g, "w"), nullptr);
  for (const auto& n : g.node())
    if (n.op_type() == "MatMul") {
      EXPECT_EQ(n.input(1) == "w", n.name() == "keep_me");
    }
}

TEST(QuantizeInt8, ConstantNodeWeight) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 4] x) => (float[1, 3] y) {
  w = Constant <value = float[4, 3] {1.0, -2.0, 3.0, 4.0, 5.0, -6.0, 7.0, 8.0, 9.0, 10.0, -11.0, 12.7}> ()
  y = MatMul(x, w)
}
)";
  Model m = Model::parse_text(text);
  const PassStats stats = run_pass(m, {{"min-elements", "1"}, {"per-channel", "false"}});
  m.check();
  const auto& g = m.proto().graph();
  EXPECT_EQ(stats.counters.at("quantized"), 1);
  EXPECT_EQ(count_nodes(g, "Constant"), 0);  // replaced by the int8 initializer
  const NodeProto* dq = find_node(g, "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(to_floats(*find_initializer(g, dq->input(1)))[0], 0.1f);  // 12.7 / 127
  const std::vector<int64_t> expected{10, -20, 30, 40, 50, -60, 70, 80, 90, 100, -110, 127};
  EXPECT_EQ(to_int64s(*find_initializer(g, dq->input(0))), expected);
}

const char* kIfModel = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool cond, float[2, 64] x) => (float[2, 32] y) {
  y = If (cond) <then_branch = then_g () => (float[2, 32] y_then) {
    y_then = MatMul(x, w)
  }, else_branch = else_g () => (float[2, 32] y_else) {
    wi = Constant <value = float[64, 32] {PLACEHOLDER}> ()
    y_else = MatMul(x, wi)
  }>
}
)";

TEST(QuantizeInt8, WeightsInsideIfSubgraph) {
  std::string text = kIfModel;
  std::string values;
  for (int i = 0; i < 64 * 32; ++i) values += (i ? ", " : "") + std::to_string((i * 37 % 101 - 50) / 25.0);
  text.replace(text.find("PLACEHOLDER"), 11, values);
  Model m = testing::model_with_weights(text, {testing::random_tensor("w", {64, 32}, 4)});
  m.check();
  const PassStats stats = run_pass(m);
  m.check();
  EXPECT_EQ(stats.counters.at("quantized"), 2);
  const auto& g = m.proto().graph();
  // The outer weight: int8 + DequantizeLinear in the main graph, read by the branch.
  const NodeProto* dq = find_node(g, "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(find_initializer(g, "w"), nullptr);
  const NodeProto* if_node = find_node(g, "If");
  ASSERT_NE(if_node, nullptr);
  // DequantizeLinear must come before the If that reads it.
  int dq_at = -1, if_at = -1;
  for (int i = 0; i < g.node_size(); ++i) {
    if (&g.node(i) == dq) dq_at = i;
    if (&g.node(i) == if_node) if_at = i;
  }
  EXPECT_GE(dq_at, 0);
  EXPECT_LT(dq_at, if_at);
  const onnx::GraphProto* then_g = nullptr;
  const onnx::GraphProto* else_g = nullptr;
  for (const auto& a : if_node->attribute()) (a.name() == "then_branch" ? then_g : else_g) = &a.g();
  EXPECT_EQ(find_node(*then_g, "MatMul")->input(1), dq->output(0));
  // The branch's Constant weight: quantized inside the branch.
  EXPECT_EQ(count_nodes(*else_g, "Constant"), 0);
  const NodeProto* inner_dq = find_node(*else_g, "DequantizeLinear");
  ASSERT_NE(inner_dq, nullptr);
  EXPECT_EQ(find_node(*else_g, "MatMul")->input(1), inner_dq->output(0));
  EXPECT_NE(find_initializer(*else_g, inner_dq->input(0)), nullptr);
}

TEST(QuantizeInt8, RaisesOpsetTo13) {
  const char* text = R"(
<ir_version: 7, opset_import: ["" : 11]>
g (float[2, 64] x) => (float[2, 32] y) {
  y = MatMul(x, w)
}
)";
  Model m = testing::model_with_weights(text, {testing::random_tensor("w", {64, 32}, 1)});
  const PassStats stats = run_pass(m);
  EXPECT_EQ(m.opset(""), 13);
  EXPECT_EQ(stats.counters.at("quantized"), 1);
  m.check();
}

TEST(QuantizeInt8, DeterministicAndNoOpIsByteIdentical) {
  Model a = testing::model_with_weights(kMatMul, {testing::random_tensor("w", {64, 32}, 1)});
  Model b = testing::model_with_weights(kMatMul, {testing::random_tensor("w", {64, 32}, 1)});
  run_pass(a, {{"mode", "dynamic"}});
  run_pass(b, {{"mode", "dynamic"}});
  EXPECT_EQ(a.serialize(), b.serialize());
  const char* no_weights = R"(
<ir_version: 8, opset_import: ["" : 11]>
g (float[2, 4] x) => (float[2, 4] y) {
  y = Relu(x)
}
)";
  Model c = Model::parse_text(no_weights);
  const std::string before = c.serialize();
  const PassStats stats = run_pass(c);
  EXPECT_EQ(c.serialize(), before);
  EXPECT_TRUE(stats.counters.empty());
}

// ---- skip reasons -------------------------------------------------------------------------------

struct SkipCase {
  const char* reason;
  const char* text;
  std::map<std::string, std::string> options;
  std::vector<std::string> global_excludes;
};

TEST(QuantizeInt8, EachSkipReasonLeavesTheModelUnchanged) {
  const std::vector<SkipCase> cases = {
      {"excluded", kMatMul, {{"exclude", "[Mat*]"}}, {}},
      {"excluded", kMatMul, {}, {"MatMul"}},
      {"too_small", kMatMul, {{"min-elements", "4096"}}, {}},
      {"weight_not_constant", R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x, float[64, 32] v) => (float[2, 32] y) {
  w2 = Relu(v)
  y = MatMul(x, w2)
}
)", {}, {}},
      {"weight_is_graph_input", R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x, float[64, 32] w) => (float[2, 32] y) {
  y = MatMul(x, w)
}
)", {}, {}},
      {"weight_not_float32", R"(
<ir_version: 8, opset_import: ["" : 13]>
g (double[2, 64] x) => (double[2, 32] y) {
  y = MatMul(x, wd)
}
)", {}, {}},
      {"non_finite", kMatMul, {}, {}},
      {"shared_axis_conflict", R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 32] x) => (float[2, 32] y, float[2, 32] z) {
  y = MatMul(x, w)
  z = Gemm <transB = 1> (x, w)
}
)", {{"min-elements", "1"}}, {}},
      {"weight_not_2d", R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 2, 64] x) => (float[2, 2, 32] y) {
  y = MatMul(x, w)
}
)", {}, {}},
      {"gemm_trans_a", R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[64, 2] a) => (float[2, 32] y) {
  y = Gemm <transA = 1> (a, w)
}
)", {{"mode", "dynamic"}}, {}},
      {"gemm_alpha", R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] a) => (float[2, 32] y) {
  y = Gemm <alpha = 0.5> (a, w)
}
)", {{"mode", "dynamic"}}, {}},
      {"gemm_beta", R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] a, float[32] c) => (float[2, 32] y) {
  y = Gemm <beta = 2.0> (a, w, c)
}
)", {{"mode", "dynamic"}}, {}},
      {"conv_bias_not_constant", R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 64, 4, 4] x, float[32] b) => (float[1, 32, 4, 4] y) {
  y = Conv(x, wconv, b)
}
)", {{"mode", "dynamic"}}, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.reason);
    std::vector<TensorProto> weights;
    const std::string reason = c.reason;
    if (reason == "weight_not_float32") {
      TensorProto t = testing::random_tensor("wd", {64, 32}, 1);
      const auto f = to_floats(t);
      std::string raw(f.size() * sizeof(double), '\0');
      for (size_t i = 0; i < f.size(); ++i) {
        const double d = f[i];
        std::memcpy(raw.data() + i * sizeof(double), &d, sizeof(double));
      }
      weights.push_back(make_raw_tensor("wd", TensorProto::DOUBLE, {64, 32}, raw));
    } else if (reason == "weight_not_2d") {
      weights.push_back(testing::random_tensor("w", {2, 64, 32}, 1));
    } else if (reason == "shared_axis_conflict") {
      weights.push_back(testing::random_tensor("w", {32, 32}, 1));
    } else if (reason == "conv_bias_not_constant") {
      weights.push_back(testing::random_tensor("wconv", {32, 64, 1, 1}, 1));
    } else if (reason == "weight_is_graph_input" || reason == "weight_not_constant") {
      if (reason == "weight_is_graph_input") weights.push_back(testing::random_tensor("w", {64, 32}, 1));
    } else {
      TensorProto t = testing::random_tensor("w", {64, 32}, 1);
      if (reason == "non_finite") {
        auto v = to_floats(t);
        v[5] = std::numeric_limits<float>::infinity();
        t = make_float_tensor("w", {64, 32}, v);
      }
      weights.push_back(t);
    }
    Model m = testing::model_with_weights(c.text, weights);
    const std::string before = m.serialize();
    const PassStats stats = run_pass(m, c.options, c.global_excludes);
    EXPECT_GE(stats.counters.count("skipped." + reason), 1u);
    EXPECT_EQ(stats.counters.count("quantized"), reason == "shared_axis_conflict" ? 1u : 0u);
    if (reason != "shared_axis_conflict") {
      EXPECT_EQ(m.serialize(), before);
    }
    bool listed = false;
    for (const auto& l : stats.layers) listed = listed || (l.contains("skipped") && l["skipped"] == reason);
    EXPECT_TRUE(listed);
  }
}

// ---- dynamic ------------------------------------------------------------------------------------

TEST(QuantizeInt8Dynamic, MatMulFormMatchesOnnxRuntimeKernels) {
  const TensorProto w = channel_scaled("w", {64, 32}, 1, 11);
  Model m = testing::model_with_weights(kMatMul, {w});
  const PassStats stats = run_pass(m, {{"mode", "dynamic"}});
  m.check();
  const auto& g = m.proto().graph();
  EXPECT_EQ(count_nodes(g, "MatMul"), 0);
  const NodeProto* dql = find_node(g, "DynamicQuantizeLinear");
  const NodeProto* mmi = find_node(g, "MatMulInteger");
  ASSERT_TRUE(dql && mmi);
  EXPECT_EQ(dql->input(0), "x");
  EXPECT_EQ(mmi->input(0), dql->output(0));
  EXPECT_EQ(mmi->input(2), dql->output(2));
  const TensorProto& q = *find_initializer(g, mmi->input(1));
  const TensorProto& zp = *find_initializer(g, mmi->input(3));
  // uint8 weights by default: ONNX Runtime's u8 x u8 kernels cannot saturate on CPUs without VNNI.
  EXPECT_EQ(q.data_type(), TensorProto::UINT8);
  EXPECT_EQ(zp.data_type(), TensorProto::UINT8);
  EXPECT_EQ(to_int64s(zp), std::vector<int64_t>{128});
  // The scale Mul reads the activation scale and the [N] weight scales; the last Mul writes y.
  const TensorProto* ws = nullptr;
  for (const auto& n : g.node())
    if (n.op_type() == "Mul" && n.input(0) == dql->output(1)) ws = find_initializer(g, n.input(1));
  ASSERT_NE(ws, nullptr);
  expect_symmetric_int8(to_floats(w), {64, 32}, 1, q, *ws);
  EXPECT_EQ(g.node(g.node_size() - 1).output(0), "y");
  EXPECT_EQ(stats.layers[0]["format"], "MatMulInteger");
  EXPECT_EQ(stats.counters.at("dynamic_quantize_linear"), 1);
}

TEST(QuantizeInt8Dynamic, WeightTypeInt8KeepsTheSignedForm) {
  const TensorProto w = channel_scaled("w", {64, 32}, 1, 11);
  Model m = testing::model_with_weights(kMatMul, {w});
  run_pass(m, {{"mode", "dynamic"}, {"weight-type", "int8"}});
  m.check();
  const auto& g = m.proto().graph();
  const NodeProto* mmi = find_node(g, "MatMulInteger");
  ASSERT_NE(mmi, nullptr);
  const TensorProto& q = *find_initializer(g, mmi->input(1));
  const TensorProto& zp = *find_initializer(g, mmi->input(3));
  EXPECT_EQ(q.data_type(), TensorProto::INT8);
  EXPECT_EQ(zp.data_type(), TensorProto::INT8);
  EXPECT_EQ(to_int64s(zp), std::vector<int64_t>{0});
}

TEST(QuantizeInt8Dynamic, WeightTypeDoesNotChangeWeightOnlyMode) {
  const TensorProto w = channel_scaled("w", {64, 32}, 1, 11);
  Model m = testing::model_with_weights(kMatMul, {w});
  run_pass(m, {{"weight-type", "uint8"}});
  const NodeProto* dq = find_node(m.proto().graph(), "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(find_initializer(m.proto().graph(), dq->input(0))->data_type(), TensorProto::INT8);
}

TEST(QuantizeInt8Dynamic, GemmTransBWeightIsStoredAsKxNAndBiasAdded) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 40] a) => (float[2, 24] y, float[2, 24] y2) {
  y = Gemm <transB = 1> (a, wt, c)
  y2 = Gemm (a, wn)
}
)";
  const TensorProto wt = channel_scaled("wt", {24, 40}, 0, 2);
  const TensorProto wn = channel_scaled("wn", {40, 24}, 1, 2);
  Model m = testing::model_with_weights(text, {wt, wn, testing::random_tensor("c", {24}, 3)});
  const PassStats stats = run_pass(m, {{"mode", "dynamic"}, {"min-elements", "16"}});
  m.check();
  const auto& g = m.proto().graph();
  EXPECT_EQ(count_nodes(g, "Gemm"), 0);
  EXPECT_EQ(count_nodes(g, "MatMulInteger"), 2);
  EXPECT_EQ(count_nodes(g, "DynamicQuantizeLinear"), 1);  // shared by both readers of `a`
  const TensorProto* qt = find_initializer(g, "wt_quantized");
  const TensorProto* qn = find_initializer(g, "wn_quantized");
  ASSERT_TRUE(qt && qn);
  EXPECT_EQ(dims_of(*qt), (std::vector<int64_t>{40, 24}));
  // Transposed back, the stored ints are the per-row (axis 0) quantization of the [N, K] weight.
  const auto q = to_int64s(*qt);
  std::vector<uint8_t> back(q.size());
  for (int n = 0; n < 24; ++n)
    for (int k = 0; k < 40; ++k) back[n * 40 + k] = static_cast<uint8_t>(q[k * 24 + n]);
  expect_symmetric_int8(to_floats(wt), {24, 40}, 0, make_uint8_tensor("b", {24, 40}, back),
                        *find_initializer(g, "wt_scale"));
  expect_symmetric_int8(to_floats(wn), {40, 24}, 1, *qn, *find_initializer(g, "wn_scale"));
  const NodeProto* add = find_node(g, "Add");
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(add->input(1), "c");
  EXPECT_EQ(add->output(0), "y");
  EXPECT_EQ(stats.counters.at("quantized"), 2);
}

TEST(QuantizeInt8Dynamic, ConvUsesUint8WeightsWithOneZeroPoint) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 8, 6, 6] x) => (float[1, 16, 3, 3] y) {
  y = Conv <strides = [2, 2], pads = [1, 1, 1, 1]> (x, wc, bc)
}
)";
  const TensorProto wc = channel_scaled("wc", {16, 8, 3, 3}, 0, 5);
  const TensorProto bc = testing::random_tensor("bc", {16}, 6);
  Model m = testing::model_with_weights(text, {wc, bc});
  run_pass(m, {{"mode", "dynamic"}});
  m.check();
  const auto& g = m.proto().graph();
  const NodeProto* ci = find_node(g, "ConvInteger");
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(ci->attribute_size(), 2);  // strides and pads carried over
  const TensorProto& q = *find_initializer(g, ci->input(1));
  const TensorProto& zp = *find_initializer(g, ci->input(3));
  EXPECT_EQ(q.data_type(), TensorProto::UINT8);
  EXPECT_EQ(zp.data_type(), TensorProto::UINT8);
  EXPECT_TRUE(dims_of(zp).empty());
  EXPECT_EQ(to_int64s(zp), std::vector<int64_t>{128});
  const TensorProto& s = *find_initializer(g, "wc_scale");
  EXPECT_EQ(dims_of(s), (std::vector<int64_t>{1, 16, 1, 1}));
  // Shifted by the zero point, the uint8 values are the symmetric int8 values.
  const auto qv = to_int64s(q);
  std::vector<int8_t> shifted(qv.size());
  for (size_t i = 0; i < qv.size(); ++i) shifted[i] = static_cast<int8_t>(qv[i] - 128);
  TensorProto flat_scale = make_float_tensor("s", {16}, to_floats(s));
  expect_symmetric_int8(to_floats(wc), {16, 8, 3, 3}, 0, make_int8_tensor("q", {16, 8, 3, 3}, shifted), flat_scale);
  const TensorProto* bias = find_initializer(g, "bc_reshaped");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(dims_of(*bias), (std::vector<int64_t>{1, 16, 1, 1}));
  EXPECT_EQ(to_floats(*bias), to_floats(bc));
  EXPECT_EQ(find_initializer(g, "bc"), nullptr);
  EXPECT_EQ(find_initializer(g, "wc"), nullptr);
}

TEST(QuantizeInt8Dynamic, AsymmetricMatMulHasPerColumnZeroPointsAndConvFallsBackPerTensor) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x, float[1, 8, 6, 6] xc) => (float[2, 32] y, float[1, 16, 4, 4] yc) {
  y = MatMul(x, w)
  yc = Conv(xc, wc)
}
)";
  Model m = testing::model_with_weights(
      text, {channel_scaled("w", {64, 32}, 1, 1), channel_scaled("wc", {16, 8, 3, 3}, 0, 2)});
  const PassStats stats = run_pass(m, {{"mode", "dynamic"}, {"symmetric", "false"}, {"min-elements", "64"}});
  m.check();
  const auto& g = m.proto().graph();
  const TensorProto& zp = *find_initializer(g, find_node(g, "MatMulInteger")->input(3));
  EXPECT_EQ(zp.data_type(), TensorProto::UINT8);
  EXPECT_EQ(dims_of(zp), std::vector<int64_t>{32});
  const TensorProto& czp = *find_initializer(g, find_node(g, "ConvInteger")->input(3));
  EXPECT_TRUE(dims_of(czp).empty());
  EXPECT_TRUE(dims_of(*find_initializer(g, "wc_scale")).empty());
  EXPECT_EQ(stats.counters.at("conv_per_tensor_fallback"), 1);
}

TEST(QuantizeInt8Dynamic, GatherTableGetsWeightOnlyPerRow) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (int64[3] ids) => (float[3, 16] y) {
  y = Gather(table, ids)
}
)";
  const TensorProto table = channel_scaled("table", {100, 16}, 0, 3);
  Model m = testing::model_with_weights(text, {table});
  run_pass(m, {{"mode", "dynamic"}});
  m.check();
  const auto& g = m.proto().graph();
  const NodeProto* dq = find_node(g, "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(axis_of(*dq), 0);
  expect_symmetric_int8(to_floats(table), {100, 16}, 0, *find_initializer(g, dq->input(0)), *find_initializer(g, dq->input(1)));
}

TEST(QuantizeInt8Emulation, OpsetTheConverterCannotRaiseDequantizesWithCastAndMul) {
  // Softmax 12 -> 13 needs a known input rank; a Reshape to a runtime shape hides it from the converter.
  const char* text = R"(
<ir_version: 4, opset_import: ["" : 9]>
g (float[N, 64] x, int64[2] s) => (float[N, 32] y) {
  h = MatMul(x, w)
  r = Reshape(h, s)
  y = Softmax(r)
}
)";
  Model m = testing::model_with_weights(text, {channel_scaled("w", {64, 32}, 1, 5)});
  const std::vector<float> w = to_floats(m.proto().graph().initializer(0));
  const PassStats stats = run_pass(m);
  EXPECT_EQ(m.opset(), 9);
  EXPECT_EQ(stats.counters.at("emulated_dequantize"), 1);
  EXPECT_EQ(count_nodes(m.proto().graph(), "DequantizeLinear"), 0);
  const NodeProto* mul = find_node(m.proto().graph(), "Mul");
  ASSERT_NE(mul, nullptr);
  const TensorProto* q = find_initializer(m.proto().graph(), "w_quantized");
  const TensorProto* scale = find_initializer(m.proto().graph(), mul->input(1));
  ASSERT_NE(q, nullptr);
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ(dims_of(*scale), (std::vector<int64_t>{1, 32}));  // broadcasts along MatMul's N
  const std::vector<float> qv = to_floats(*q), sv = to_floats(*scale);
  for (int64_t k = 0; k < 64; ++k)
    for (int64_t n = 0; n < 32; ++n) {
      const float expected = std::nearbyint(w[k * 32 + n] / sv[n]);
      EXPECT_EQ(qv[k * 32 + n], expected);
    }
  m.check();
}

}  // namespace
}  // namespace compress
