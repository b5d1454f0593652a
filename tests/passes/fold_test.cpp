// fold: BatchNormalization folding, constant folding and no-op removal, checked against the evaluator.
#include <compress/evaluator.h>
#include <compress/model.h>
#include <compress/pass.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>

#include <cmath>

#include "testing/builders.h"

namespace compress {
namespace {

using testing::count_nodes;
using testing::find_initializer;
using testing::random_tensor;

// BatchNormalization parameters for `c` channels: positive variances, scales away from zero.
std::vector<TensorProto> bn_params(const std::string& prefix, int64_t c, uint32_t seed) {
  TensorProto var = random_tensor(prefix + "_var", {c}, seed + 3);
  std::vector<float> v = to_floats(var);
  for (auto& x : v) x = 0.5f + x * x;
  return {random_tensor(prefix + "_gamma", {c}, seed), random_tensor(prefix + "_beta", {c}, seed + 1),
          random_tensor(prefix + "_mean", {c}, seed + 2), make_float_tensor(prefix + "_var", {c}, v)};
}

std::vector<TensorProto> concat(std::vector<TensorProto> a, const std::vector<TensorProto>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

eval::TensorMap outputs(const Model& m, const eval::TensorMap& feeds) { return eval::Evaluator(m).run(feeds); }

eval::Tensor input(std::vector<int64_t> dims, uint32_t seed) {
  const TensorProto t = random_tensor("x", dims, seed);
  return eval::from_proto(t);
}

// Every output of `after` within `tol` of `before` (absolute, relative to the largest magnitude).
void expect_same_outputs(const Model& before, const Model& after, const eval::TensorMap& feeds, double tol = 1e-5) {
  const auto a = outputs(before, feeds);
  const auto b = outputs(after, feeds);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    const auto& u = b.at(name);
    ASSERT_EQ(t.dims, u.dims) << name;
    double scale = 1.0;
    for (int64_t k = 0; k < t.numel(); ++k) scale = std::max(scale, std::abs(t.at(k)));
    for (int64_t k = 0; k < t.numel(); ++k) EXPECT_NEAR(t.at(k), u.at(k), tol * scale) << name << "[" << k << "]";
  }
}

TEST(Fold, ConvBatchNormFoldsIntoWeightsAndBias) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 6, 6] x) => (float[1, 3, 6, 6] y) {
  c = Conv <pads = [1, 1, 1, 1]> (x, w, b)
  n = BatchNormalization <epsilon = 0.001> (c, bn_gamma, bn_beta, bn_mean, bn_var)
  y = Relu(n)
}
)";
  const Model original = testing::model_with_weights(
      text, concat({random_tensor("w", {3, 2, 3, 3}, 1), random_tensor("b", {3}, 2)}, bn_params("bn", 3, 3)));
  Model m = Model::from_proto(original.proto());
  const PassStats s = testing::run_pass(m, "fold");
  EXPECT_EQ(s.counters.at("batch_norms_folded"), 1);
  EXPECT_EQ(count_nodes(m.proto().graph(), "BatchNormalization"), 0);
  EXPECT_EQ(m.proto().graph().node(0).output(0), "n");  // the Conv writes what the BN wrote
  EXPECT_EQ(find_initializer(m.proto().graph(), "w"), nullptr);  // replaced and unused
  EXPECT_EQ(find_initializer(m.proto().graph(), "bn_var"), nullptr);
  m.check();
  expect_same_outputs(original, m, {{"x", input({1, 2, 6, 6}, 9)}});
}

TEST(Fold, ConvWithoutBiasGainsOneAndSharedWeightsStay) {
  // w is read by two Convs, only one of them followed by a BN: the other keeps reading w.
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 5, 5] x) => (float[1, 4, 3, 3] y, float[1, 4, 3, 3] z) {
  c = Conv(x, w)
  y = BatchNormalization(c, bn_gamma, bn_beta, bn_mean, bn_var)
  z = Conv(x, w)
}
)";
  const Model original = testing::model_with_weights(text, concat({random_tensor("w", {4, 2, 3, 3}, 1)}, bn_params("bn", 4, 5)));
  Model m = Model::from_proto(original.proto());
  testing::run_pass(m, "fold");
  EXPECT_EQ(count_nodes(m.proto().graph(), "BatchNormalization"), 0);
  EXPECT_EQ(m.proto().graph().node(0).input_size(), 3);
  EXPECT_NE(find_initializer(m.proto().graph(), "w"), nullptr);
  m.check();
  expect_same_outputs(original, m, {{"x", input({1, 2, 5, 5}, 4)}});
}

TEST(Fold, GroupedConvTransposeBatchNorm) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 4, 3, 3] x) => (float[1, 6, 5, 5] y) {
  c = ConvTranspose <group = 2> (x, w, b)
  y = BatchNormalization(c, bn_gamma, bn_beta, bn_mean, bn_var)
}
)";
  // [Cin=4, Cout/g=3, 3, 3], group 2: 6 output channels.
  const Model original = testing::model_with_weights(
      text, concat({random_tensor("w", {4, 3, 3, 3}, 1), random_tensor("b", {6}, 2)}, bn_params("bn", 6, 7)));
  Model m = Model::from_proto(original.proto());
  const PassStats s = testing::run_pass(m, "fold");
  EXPECT_EQ(s.counters.at("batch_norms_folded"), 1);
  m.check();
  expect_same_outputs(original, m, {{"x", input({1, 4, 3, 3}, 8)}});
}

TEST(Fold, GemmWithBetaAndMatMulOfKnownRank) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 5] x) => (float[2, 3] y, float[2, 4] z) {
  a = Gemm <transB = 1, beta = 0.5, alpha = 2.0> (x, w, c)
  y = BatchNormalization(a, bn_gamma, bn_beta, bn_mean, bn_var)
  m = MatMul(x, w2)
  z = BatchNormalization(m, bn2_gamma, bn2_beta, bn2_mean, bn2_var)
}
)";
  const Model original = testing::model_with_weights(
      text, concat(concat({random_tensor("w", {3, 5}, 1), random_tensor("c", {3}, 2), random_tensor("w2", {5, 4}, 3)},
                          bn_params("bn", 3, 4)),
                   bn_params("bn2", 4, 9)));
  Model m = Model::from_proto(original.proto());
  const PassStats s = testing::run_pass(m, "fold");
  EXPECT_EQ(s.counters.at("batch_norms_folded"), 2);
  EXPECT_EQ(count_nodes(m.proto().graph(), "Gemm"), 2);  // the MatMul became a Gemm with a bias
  m.check();
  expect_same_outputs(original, m, {{"x", input({2, 5}, 5)}});
}

TEST(Fold, SkipsWhatCannotFold) {
  // BN after Relu (no foldable producer); a Conv output also read elsewhere; MatMul of unknown rank.
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 4, 4] x, float[1, 3, 4] v) => (float[1, 2, 4, 4] y, float[1, 2, 4, 4] z, float[1, 2, 4, 4] u, float[1, 3, 2] t) {
  r = Relu(x)
  y = BatchNormalization(r, bn_gamma, bn_beta, bn_mean, bn_var)
  c = Conv(x, w)
  z = BatchNormalization(c, bn_gamma, bn_beta, bn_mean, bn_var)
  u = Relu(c)
  mm = MatMul(v, w2)
  t = BatchNormalization(mm, bn_gamma, bn_beta, bn_mean, bn_var)
}
)";
  Model m = testing::model_with_weights(
      text, concat({random_tensor("w", {2, 2, 1, 1}, 1), random_tensor("w2", {4, 2}, 2)}, bn_params("bn", 2, 3)));
  std::string before;
  m.proto().SerializeToString(&before);
  const PassStats s = testing::run_pass(m, "fold");
  EXPECT_EQ(s.counters.at("batch_norms_folded"), 0);
  EXPECT_EQ(s.counters.at("skipped.bn_no_foldable_producer"), 2);
  EXPECT_EQ(s.counters.at("skipped.matmul_rank_unknown"), 1);
  std::string after;
  m.proto().SerializeToString(&after);
  EXPECT_EQ(before, after);
}

TEST(Fold, ExcludedBatchNormStays) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 4, 4] x) => (float[1, 2, 4, 4] y) {
  c = Conv(x, w)
  y = BatchNormalization(c, bn_gamma, bn_beta, bn_mean, bn_var)
}
)";
  Model m = testing::model_with_weights(text, concat({random_tensor("w", {2, 2, 1, 1}, 1)}, bn_params("bn", 2, 3)));
  const PassStats s = testing::run_pass(m, "fold", {{"exclude", "[BatchNormalization]"}});
  EXPECT_EQ(s.counters.at("skipped.excluded"), 1);
  EXPECT_EQ(count_nodes(m.proto().graph(), "BatchNormalization"), 1);
}

TEST(Fold, ConstantChainsFoldAndTheirInputsGo) {
  // Transpose of a weight, Reshape by a Constant shape, Add of two constants: all exact, all folded.
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x) => (float[2, 3] y) {
  shape = Constant <value = int64[2] {4, 3}> ()
  wt = Transpose <perm = [1, 0]> (w)
  wr = Reshape(wt, shape)
  bias = Add(b1, b2)
  m = MatMul(x, wr)
  y = Add(m, bias)
}
)";
  const Model original = testing::model_with_weights(
      text, {random_tensor("w", {3, 4}, 1), random_tensor("b1", {3}, 2), random_tensor("b2", {3}, 3)});
  Model m = Model::from_proto(original.proto());
  const PassStats s = testing::run_pass(m, "fold");
  EXPECT_EQ(s.counters.at("constants_folded"), 3);
  EXPECT_EQ(m.proto().graph().node_size(), 2);  // MatMul and Add
  EXPECT_EQ(m.proto().graph().initializer_size(), 2);  // wr and bias; w, b1, b2 and the shape gone
  m.check();
  expect_same_outputs(original, m, {{"x", input({2, 4}, 6)}}, 0.0);
}

TEST(Fold, ConstantsThatWouldGrowOrAreInexactStay) {
  // Cast float16 -> float32 (would undo fp16 storage), Exp (not exact), DequantizeLinear (not exact,
  // and it would undo int8 storage).
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x) => (float[2, 64] y) {
  wf = Cast <to = 1> (w16)
  e = Exp(b)
  wq = DequantizeLinear(q, s)
  a = MatMul(x, wf)
  a2 = MatMul(a, wq)
  y = Add(a2, e)
}
)";
  std::vector<float> half(64 * 64, 0.25f);
  std::vector<int8_t> q(64 * 64, 3);
  Model m = testing::model_with_weights(text, {make_float16_tensor("w16", {64, 64}, half), random_tensor("b", {64}, 2),
                                               make_int8_tensor("q", {64, 64}, q), make_float_tensor("s", {}, std::vector<float>{0.1f})});
  const PassStats s = testing::run_pass(m, "fold");
  EXPECT_EQ(s.counters.at("constants_folded"), 0);
  EXPECT_EQ(s.counters.at("skipped.const_not_exact"), 3);
  EXPECT_EQ(m.proto().graph().node_size(), 6);
}

TEST(Fold, ConstantFoldingIsBoundedBySize) {
  // Expand of a 1-element constant to 64 KiB would grow the file: it stays.
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[128, 128] x) => (float[128, 128] y) {
  shape = Constant <value = int64[2] {128, 128}> ()
  big = Expand(one, shape)
  y = Add(x, big)
}
)";
  Model m = testing::model_with_weights(text, {make_float_tensor("one", {1}, std::vector<float>{1.0f})});
  const PassStats s = testing::run_pass(m, "fold");
  EXPECT_EQ(s.counters.at("skipped.const_grows"), 1);
  EXPECT_EQ(count_nodes(m.proto().graph(), "Expand"), 1);
}

TEST(Fold, RemovesNoOpsKeepingGraphOutputNames) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x) => (float[2, 4] y, float[2, 4] z, int64[2, 4] k) {
  a = Identity(x)
  d = Dropout(a)
  c = Cast <to = 1> (d)
  r = Relu(c)
  y = Identity(r)
  z = Sigmoid(c)
  k = Cast <to = 7> (z)
}
)";
  Model m = testing::model_with_weights(text, {});
  const PassStats s = testing::run_pass(m, "fold");
  EXPECT_EQ(s.counters.at("no_ops_removed"), 4);  // Identity, Dropout, Cast float->float, the output Identity
  const auto& g = m.proto().graph();
  ASSERT_EQ(g.node_size(), 3);
  EXPECT_EQ(g.node(0).op_type(), "Relu");
  EXPECT_EQ(g.node(0).input(0), "x");
  EXPECT_EQ(g.node(0).output(0), "y");  // Relu writes the graph output the Identity wrote
  EXPECT_EQ(g.output(0).name(), "y");
  m.check();
}

TEST(Fold, KeepsDropoutWhoseMaskIsReadAndIdentityBetweenInterfaces) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x) => (float[2, 4] y, bool[2, 4] mask, float[2, 4] i) {
  y, mask = Dropout(x)
  i = Identity(x)
}
)";
  Model m = testing::model_with_weights(text, {});
  const PassStats s = testing::run_pass(m, "fold");
  EXPECT_EQ(s.counters.at("no_ops_removed"), 0);
  EXPECT_EQ(s.counters.at("skipped.dropout_mask_or_training"), 1);
  EXPECT_EQ(s.counters.at("skipped.noop_interface"), 1);
  EXPECT_EQ(m.proto().graph().node_size(), 2);
}

TEST(Fold, FoldsInsideSubgraphs) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool cond, float[1, 4] x) => (float[1, 4] y) {
  y = If (cond) <
    then_branch = t () => (float[1, 4] a) { i = Identity(x)  a = Relu(i) },
    else_branch = e () => (float[1, 4] b) { b = Neg(x) }
  >
}
)";
  const Model original = testing::model_with_weights(text, {});
  Model m = Model::from_proto(original.proto());
  const PassStats s = testing::run_pass(m, "fold");
  EXPECT_EQ(s.counters.at("no_ops_removed"), 1);
  EXPECT_EQ(m.proto().graph().node(0).attribute(0).g().node_size(), 1);
  m.check();
  eval::Tensor cond = eval::Tensor::ints({}, {1}, TensorProto::BOOL);
  expect_same_outputs(original, m, {{"cond", cond}, {"x", input({1, 4}, 2)}}, 0.0);
}

TEST(Fold, NothingToDoLeavesTheModelByteIdentical) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x) => (float[2, 3] y) {
  y = MatMul(x, w)
}
)";
  Model m = testing::model_with_weights(text, {random_tensor("w", {4, 3}, 1)});
  std::string before, after;
  m.proto().SerializeToString(&before);
  testing::run_pass(m, "fold");
  m.proto().SerializeToString(&after);
  EXPECT_EQ(before, after);
}

TEST(Fold, StaticQuantizationFoldsBatchNormFirst) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 6, 6] x) => (float[1, 3, 6, 6] y) {
  c = Conv <pads = [1, 1, 1, 1]> (x, w, b)
  n = BatchNormalization(c, bn_gamma, bn_beta, bn_mean, bn_var)
  y = Relu(n)
}
)";
  Model m = testing::model_with_weights(
      text, concat({random_tensor("w", {3, 2, 3, 3}, 1), random_tensor("b", {3}, 2)}, bn_params("bn", 3, 3)));
  const Pass* pass = PassRegistry::builtin().find("quantize-int8");
  std::map<std::string, std::string> values;
  for (const auto& o : pass->info().options) values[o.name] = o.default_value;
  values["mode"] = "static";
  SampleSets sets;
  sets["calibration"] = std::make_shared<const eval::TensorMap>(eval::TensorMap{{"x", input({8, 2, 6, 6}, 11)}});
  const PassStats s = pass->run(m, PassContext(PassOptions(values), {}, sets));
  EXPECT_EQ(s.counters.at("fold.batch_norms_folded"), 1);
  EXPECT_EQ(count_nodes(m.proto().graph(), "BatchNormalization"), 0);
  const auto& g = m.proto().graph();
  for (const auto& n : g.node()) {
    if (n.op_type() != "Conv") continue;
    EXPECT_NE(n.input(1).find("bn_folded"), std::string::npos) << n.input(1);
  }
}

}  // namespace
}  // namespace compress
