#include <compress/error.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>

#include "passes/int4_blocks.h"
#include "passes/passes.h"
#include "core/attributes.h"
#include "testing/builders.h"

namespace compress {
namespace {

using testing::count_nodes;
using testing::find_initializer;

using int4::dequantize_nbits;
using int4::quantize_nbits;

PassStats run_pass(Model& m, const std::map<std::string, std::string>& opts = {}) {
  return testing::run_pass(m, "quantize-int4", opts);
}

const NodeProto* find_node(const onnx::GraphProto& g, const std::string& op) {
  for (const auto& n : g.node())
    if (n.op_type() == op) return &n;
  return nullptr;
}
// An int attribute, -999 when absent (a value no test expects).
int64_t attr(const NodeProto& n, const std::string& name) { return int_attribute(n, name, -999); }

TEST(Int4Blocks, NibbleOrderAndSymmetricScaleUseAllSixteenLevels) {
  std::vector<float> w(32);
  for (int k = 0; k < 32; ++k) w[k] = static_cast<float>(k - 16);  // -16 .. 15
  const auto q = quantize_nbits(w, 32, 1, 32, true);
  ASSERT_EQ(q.packed.size(), 16u);
  EXPECT_FLOAT_EQ(q.scales[0], 2.0f);  // -16 / -8
  EXPECT_TRUE(q.zero_points.empty());
  // w0=-16 -> 0, w1=-15 -> roundf(0.5)=1 (half away from zero): low nibble = even k.
  EXPECT_EQ(q.packed[0], 0x10);
  EXPECT_EQ(q.packed[1], 0x21);   // -14 -> 1, -13 -> roundf(1.5) = 2
  EXPECT_EQ(q.packed[8], 0x98);   // 0 -> 8, 1 -> roundf(8.5) = 9
  EXPECT_EQ(q.packed[15], 0xFF);  // 14 -> 15, 15 -> 16 clamped to 15
}

TEST(Int4Blocks, NegativeExtremeGivesNegativeScaleLikeMlas) {
  std::vector<float> w(16, 0.5f);
  w[3] = 4.0f;  // positive extreme: scale = 4 / -8 = -0.5, so 4.0 -> q = 0
  const auto q = quantize_nbits(w, 16, 1, 16, true);
  EXPECT_FLOAT_EQ(q.scales[0], -0.5f);
  EXPECT_EQ(q.packed[1] >> 4, 0);       // element 3: high nibble of byte 1
  EXPECT_EQ(q.packed[0] & 0xF, 7);      // 0.5 / -0.5 + 8 = 7
  EXPECT_EQ(dequantize_nbits(q)[3], 4.0f);
}

TEST(Int4Blocks, TailBlockIsPaddedWithTheZeroPoint) {
  std::vector<float> w(20 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(static_cast<float>(i));
  const auto q = quantize_nbits(w, 20, 3, 16, true);
  EXPECT_EQ(q.blocks_per_col, 2);
  EXPECT_EQ(q.blob, 8);
  ASSERT_EQ(q.packed.size(), 3u * 2 * 8);
  for (int64_t c = 0; c < 3; ++c)
    for (int i = 2; i < 8; ++i) EXPECT_EQ(q.packed[(c * 2 + 1) * 8 + i], 0x88) << c << " " << i;  // rows 20..31
  // Rows 16..19 of the tail block are real.
  const auto back = dequantize_nbits(q);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_LE(std::fabs(back[i] - w[i]), 1.0f / 7.0f);
}

TEST(Int4Blocks, AsymmetricZeroPointsPackTwoPerByteLowNibbleFirst) {
  std::vector<float> w(48);
  for (int k = 0; k < 16; ++k) w[k] = 0.1f * static_cast<float>(k);           // [0, 1.5]: zp 0
  for (int k = 16; k < 32; ++k) w[k] = -0.2f * static_cast<float>(k - 16);    // [-3, 0]: zp 15
  for (int k = 32; k < 48; ++k) w[k] = -1.0f + 0.2f * static_cast<float>(k - 32);  // [-1, 2]: zp 5
  const auto q = quantize_nbits(w, 48, 1, 16, false);
  ASSERT_EQ(q.zero_points.size(), 2u);
  EXPECT_EQ(q.zero_points[0], 0xF0);
  EXPECT_EQ(q.zero_points[1], 0x85);  // odd block count: unused high nibble stays 8, as MLAS writes it
  EXPECT_NEAR(q.scales[0], 0.1f, 1e-7);
  EXPECT_NEAR(q.scales[1], 0.2f, 1e-7);
  EXPECT_NEAR(q.scales[2], 0.2f, 1e-7);
  const auto back = dequantize_nbits(q);
  for (int k = 0; k < 48; ++k) EXPECT_NEAR(back[k], w[k], 0.1f + 1e-6f) << k;
  EXPECT_EQ(back[16], 0.0f);  // zero is exact with an integer zero point
}

TEST(Int4Blocks, ScalesAreColumnMajorOverBlocks) {
  std::vector<float> w(32 * 2, 1.0f);  // K=32, N=2, block 16
  w[20 * 2 + 1] = -8.0f;               // column 1, block 1
  const auto q = quantize_nbits(w, 32, 2, 16, true);
  ASSERT_EQ(q.scales.size(), 4u);
  EXPECT_FLOAT_EQ(q.scales[0], -0.125f);
  EXPECT_FLOAT_EQ(q.scales[1], -0.125f);
  EXPECT_FLOAT_EQ(q.scales[2], -0.125f);
  EXPECT_FLOAT_EQ(q.scales[3], 1.0f);  // n * blocks_per_col + b = 1 * 2 + 1
}

TEST(Int4Blocks, DequantizedErrorIsWithinOneStepAndSymmetricIsBetterThanHalfStepMostly) {
  const auto t = testing::random_tensor("w", {96, 40}, 7);
  const auto w = to_floats(t);
  for (bool symmetric : {true, false}) {
    const auto q = quantize_nbits(w, 96, 40, 32, symmetric);
    const auto back = dequantize_nbits(q);
    for (int64_t r = 0; r < 96; ++r)
      for (int64_t c = 0; c < 40; ++c) {
        const float step = std::fabs(q.scales[c * 3 + r / 32]);
        ASSERT_LE(std::fabs(back[r * 40 + c] - w[r * 40 + c]), step * 1.0001f) << symmetric;
      }
  }
}

TEST(Int4Blocks, DqPackingAndPartialBlock) {
  std::vector<float> w = {-8, 1, 2, 7, 3};  // shape [5, 1], block 4 along axis 0 -> 2 blocks
  const auto q = int4::quantize_dq(w, {5, 1}, 0, 4, true);
  EXPECT_EQ(q.scale_dims, (std::vector<int64_t>{2, 1}));
  EXPECT_FLOAT_EQ(q.scales[0], 1.0f);    // -8 / -8
  EXPECT_FLOAT_EQ(q.scales[1], -0.375f);  // 3 / -8
  EXPECT_EQ(q.values, (std::vector<int8_t>{-8, 1, 2, 7, -8}));
  const auto raw = int4::pack_int4(q.values);
  EXPECT_EQ(raw, (std::vector<uint8_t>{0x18, 0x72, 0x08}));  // low nibble first, odd tail high nibble 0
  EXPECT_EQ(int4::dequantize_dq(q, 0, 4), w);
}

const char* kMatMul = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x) => (float[2, 48] y) {
  y = MatMul(x, w)
}
)";

TEST(QuantizeInt4, MatMulBecomesMatMulNBitsBitExact) {
  const auto wt = testing::random_tensor("w", {64, 48}, 3);
  Model m = testing::model_with_weights(kMatMul, {wt});
  const auto stats = run_pass(m, {{"min-elements", "16"}, {"accuracy-level", "4"}});
  EXPECT_EQ(stats.counters.at("quantized"), 1);
  const auto& g = m.proto().graph();
  const NodeProto* n = find_node(g, "MatMulNBits");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->domain(), "com.microsoft");
  EXPECT_EQ(attr(*n, "K"), 64);
  EXPECT_EQ(attr(*n, "N"), 48);
  EXPECT_EQ(attr(*n, "bits"), 4);
  EXPECT_EQ(attr(*n, "block_size"), 32);
  EXPECT_EQ(attr(*n, "accuracy_level"), 4);
  ASSERT_EQ(n->input_size(), 3);
  EXPECT_EQ(m.opset("com.microsoft"), 1);
  EXPECT_EQ(find_initializer(g, "w"), nullptr);  // float original removed
  const auto expected = quantize_nbits(to_floats(wt), 64, 48, 32, true);
  const TensorProto* b = find_initializer(g, n->input(1));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->data_type(), TensorProto::UINT8);
  EXPECT_EQ(std::vector<int64_t>(b->dims().begin(), b->dims().end()), (std::vector<int64_t>{48, 2, 16}));
  EXPECT_EQ(b->raw_data(), std::string(expected.packed.begin(), expected.packed.end()));
  EXPECT_EQ(to_floats(*find_initializer(g, n->input(2))), expected.scales);
  ASSERT_EQ(stats.layers.size(), 1u);
  EXPECT_GT(stats.layers[0]["sqnr_db"].get<double>(), 15.0);
  EXPECT_EQ(stats.layers[0]["block_size"], 32);
  m.check();
}

TEST(QuantizeInt4, AsymmetricAddsPackedZeroPoints) {
  Model m = testing::model_with_weights(kMatMul, {testing::random_tensor("w", {64, 48}, 3)});
  run_pass(m, {{"min-elements", "16"}, {"symmetric", "false"}, {"block-size", "16"}});
  const auto& g = m.proto().graph();
  const NodeProto* n = find_node(g, "MatMulNBits");
  ASSERT_NE(n, nullptr);
  ASSERT_EQ(n->input_size(), 4);
  const TensorProto* zp = find_initializer(g, n->input(3));
  EXPECT_EQ(zp->data_type(), TensorProto::UINT8);
  EXPECT_EQ(element_count(*zp), 48 * 2);  // 4 blocks per column -> 2 bytes
  EXPECT_EQ(element_count(*find_initializer(g, n->input(2))), 48 * 4);
  m.check();
}

TEST(QuantizeInt4, GemmTransBAlphaBetaBecomesMatMulNBitsPlusAdd) {
  const auto wt = testing::random_tensor("w", {48, 64}, 5);  // transB: [N, K]
  std::vector<float> bias(48, 1.0f);
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x) => (float[2, 48] y) {
  y = Gemm <transB = 1, alpha = 2.0, beta = 0.5> (x, w, c)
}
)", {wt, make_float_tensor("c", {48}, bias)});
  const auto stats = run_pass(m, {{"min-elements", "16"}});
  EXPECT_EQ(stats.counters.at("gemm_to_matmulnbits_add"), 1);
  const auto& g = m.proto().graph();
  const NodeProto* n = find_node(g, "MatMulNBits");
  const NodeProto* add = find_node(g, "Add");
  ASSERT_NE(n, nullptr);
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(add->output(0), "y");
  EXPECT_EQ(add->input(0), n->output(0));
  EXPECT_EQ(to_floats(*find_initializer(g, add->input(1))), std::vector<float>(48, 0.5f));
  // Dequantized weight is 2 * W^T.
  const auto w = to_floats(wt);
  std::vector<float> expected(64 * 48);
  for (int i = 0; i < 48; ++i)
    for (int j = 0; j < 64; ++j) expected[j * 48 + i] = 2.0f * w[i * 64 + j];
  const auto q = quantize_nbits(expected, 64, 48, 32, true);
  EXPECT_EQ(find_initializer(g, n->input(1))->raw_data(), std::string(q.packed.begin(), q.packed.end()));
  m.check();
}

TEST(QuantizeInt4, SkipReasonsLeaveTheModelUnchanged) {
  struct Case {
    const char* text;
    std::vector<TensorProto> weights;
    const char* reason;
    std::map<std::string, std::string> opts;
  };
  const std::vector<Case> cases = {
      {R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x) => (float[2, 8] y) { y = MatMul(x, w) })", {testing::random_tensor("w", {64, 8}, 1)}, "too_small", {}},
      {kMatMul, {testing::random_tensor("w", {64, 48}, 1)}, "excluded", {{"min-elements", "16"}, {"exclude", "[MatMul]"}}},
      {R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x, float[64, 48] w) => (float[2, 48] y) { y = MatMul(x, w) })", {}, "weight_not_constant", {{"min-elements", "16"}}},
      {R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x, float[64, 48] w) => (float[2, 48] y) { y = MatMul(x, w) })",
       {testing::random_tensor("w", {64, 48}, 1)}, "weight_is_graph_input", {{"min-elements", "16"}}},
      {R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 2, 64] x) => (float[2, 2, 48] y) { y = MatMul(x, w) })", {testing::random_tensor("w", {2, 64, 48}, 1)},
       "weight_not_2d", {{"min-elements", "16"}}},
      {R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[64, 2] x) => (float[2, 48] y) { y = Gemm<transA = 1>(x, w) })", {testing::random_tensor("w", {64, 48}, 1)},
       "gemm_trans_a", {{"min-elements", "16"}}},
      {R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x, float[48] c) => (float[2, 48] y) { y = Gemm<beta = 2.0>(x, w, c) })",
       {testing::random_tensor("w", {64, 48}, 1)}, "gemm_beta_with_nonconstant_c", {{"min-elements", "16"}}},
      {R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 32, 8, 8] x) => (float[1, 8, 6, 6] y) { y = Conv(x, w) })", {testing::random_tensor("w", {8, 32, 3, 3}, 1)},
       "conv_needs_format_dq", {{"min-elements", "16"}}},
      {R"(<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 8, 8, 8] x) => (float[1, 8, 6, 6] y) { y = Conv(x, w) })", {testing::random_tensor("w", {8, 8, 3, 3}, 1)},
       "conv_in_channels_below_block", {{"min-elements", "16"}, {"format", "dq"}}},
  };
  for (const auto& c : cases) {
    Model m = testing::model_with_weights(c.text, c.weights);
    const std::string before = m.serialize();
    const auto stats = run_pass(m, c.opts);
    EXPECT_EQ(stats.counters.count(std::string("skipped.") + c.reason), 1u) << c.reason;
    EXPECT_EQ(stats.counters.count("quantized"), 0u) << c.reason;
    EXPECT_TRUE(m.serialize() == before) << c.reason;
  }
}

TEST(QuantizeInt4, SharedWeightIsQuantizedOnceAndKeptForAnUntouchedReader) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x) => (float[2, 48] y, float[2, 48] z, float[2, 48] v) {
  y = MatMul(x, w)
  z = MatMul(x, w)
  v = MatMul(x, w)
}
)";
  {
    Model m = testing::model_with_weights(text, {testing::random_tensor("w", {64, 48}, 2)});
    const auto stats = run_pass(m, {{"min-elements", "16"}});
    EXPECT_EQ(stats.counters.at("quantized"), 1);
    EXPECT_EQ(stats.counters.at("shared_reuse"), 2);
    EXPECT_EQ(m.proto().graph().initializer_size(), 2);  // packed B + scales, float w gone
    m.check();
  }
  {
    Model m = testing::model_with_weights(text, {testing::random_tensor("w", {64, 48}, 2)});
    m.proto().mutable_graph()->mutable_node(2)->set_name("keep");
    m.invalidate();
    const auto stats = run_pass(m, {{"min-elements", "16"}, {"exclude", "[keep]"}});
    EXPECT_EQ(stats.counters.at("original_kept_for_other_readers"), 1);
    EXPECT_NE(find_initializer(m.proto().graph(), "w"), nullptr);
    m.check();
  }
}

TEST(QuantizeInt4, ConstantNodeWeightAndIfSubgraphWeight) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x, bool b) => (float[2, 48] y) {
  y = If (b) <
    then_branch = t () => (float[2, 48] ty) { ty = MatMul(x, w) },
    else_branch = e () => (float[2, 48] ey) { k = Constant <value = float[1] {0.5}> () ey = MatMul(x, k) }
  >
}
)", {testing::random_tensor("w", {64, 48}, 4)});
  // The parser needs all 3072 constant values; fill them in.
  auto* body = m.proto().mutable_graph()->mutable_node(0)->mutable_attribute(1)->mutable_g();
  if (body->name() != "e") body = m.proto().mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_g();
  *body->mutable_node(0)->mutable_attribute(0)->mutable_t() = testing::random_tensor("", {64, 48}, 9);
  m.invalidate();
  const auto stats = run_pass(m, {{"min-elements", "16"}});
  EXPECT_EQ(stats.counters.at("quantized"), 2);
  EXPECT_EQ(stats.counters.at("removed_float_weights"), 2);
  EXPECT_EQ(find_initializer(m.proto().graph(), "w"), nullptr);
  EXPECT_EQ(find_node(*body, "Constant"), nullptr);
  EXPECT_NE(find_node(*body, "MatMulNBits"), nullptr);
  m.check();
}

TEST(QuantizeInt4, DqFormatEmitsBlockedInt4DequantizeLinearAtOpset21) {
  const auto wt = testing::random_tensor("w", {40, 48}, 3);  // K = 40: partial last block of 32
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 40] x) => (float[2, 2] y) {
  h = MatMul(x, w)
  y = ReduceMean <axes = [1], keepdims = 1> (h)
}
)", {wt});
  const auto stats = run_pass(m, {{"min-elements", "16"}, {"format", "dq"}});
  EXPECT_EQ(m.opset(), 21);
  EXPECT_EQ(m.proto().ir_version(), 10);
  EXPECT_EQ(stats.warnings.size(), 1u);
  const auto& g = m.proto().graph();
  const NodeProto* dq = find_node(g, "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(attr(*dq, "axis"), 0);
  EXPECT_EQ(attr(*dq, "block_size"), 32);
  const TensorProto* q = find_initializer(g, dq->input(0));
  EXPECT_EQ(q->data_type(), 22);
  EXPECT_EQ(q->raw_data().size(), 40u * 48 / 2);
  const TensorProto* s = find_initializer(g, dq->input(1));
  EXPECT_EQ(std::vector<int64_t>(s->dims().begin(), s->dims().end()), (std::vector<int64_t>{2, 48}));
  const auto expected = int4::quantize_dq(to_floats(wt), {40, 48}, 0, 32, true);
  const auto packed = int4::pack_int4(expected.values);
  EXPECT_EQ(q->raw_data(), std::string(packed.begin(), packed.end()));
  EXPECT_EQ(find_node(g, "MatMul")->input(1), dq->output(0));
  const NodeProto* reduce = find_node(g, "ReduceMean");
  ASSERT_EQ(reduce->input_size(), 2);  // opset 18: axes became an input
  EXPECT_EQ(to_int64s(*find_initializer(g, reduce->input(1))), std::vector<int64_t>{1});
  EXPECT_EQ(stats.counters.at("opset21.reduce_axes_to_input"), 1);
}

TEST(QuantizeInt4, DqFormatBlocksConvAlongInputChannels) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 32, 8, 8] x) => (float[1, 8, 6, 6] y) { y = Conv(x, w) }
)", {testing::random_tensor("w", {8, 32, 3, 3}, 1)});
  run_pass(m, {{"min-elements", "16"}, {"format", "dq"}, {"block-size", "16"}});
  const auto& g = m.proto().graph();
  const NodeProto* dq = find_node(g, "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(attr(*dq, "axis"), 1);
  const TensorProto* s = find_initializer(g, dq->input(1));
  EXPECT_EQ(std::vector<int64_t>(s->dims().begin(), s->dims().end()), (std::vector<int64_t>{8, 2, 3, 3}));
}

}  // namespace
}  // namespace compress
