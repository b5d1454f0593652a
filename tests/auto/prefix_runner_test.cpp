#include "auto/prefix_runner.h"

#include <compress/evaluator.h>
#include <compress/pipeline.h>
#include <compress/verify.h>
#include <gtest/gtest.h>

#include <random>

#include "testing/builders.h"

namespace compress {
namespace {

Model three_layers() {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 32] x) => (float[N, 32] y) {
  h1 = MatMul(x, w1)
  r1 = Relu(h1)
  h2 = MatMul(r1, w2)
  r2 = Relu(h2)
  y = MatMul(r2, w3)
}
)", {testing::random_tensor("w1", {32, 32}, 1, 0.3f), testing::random_tensor("w2", {32, 32}, 2, 0.3f),
      testing::random_tensor("w3", {32, 32}, 3, 0.3f)});
  return m;
}

eval::TensorMap inputs() {
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(5 * 32);
  for (auto& v : x) v = normal(rng);
  return {{"x", eval::Tensor::floats({5, 32}, x)}};
}

Model with(const Model& m, const std::string& pipeline) {
  Model copy = Model::from_proto(m.proto());
  Pipeline::build(PassRegistry::builtin(), parse_pipeline_text(pipeline)).run(copy, {});
  return copy;
}

eval::TensorMap full_run(const Model& m) {
  int64_t n = 0;
  return run_on_samples(eval::Evaluator(m), inputs(), n);
}

TEST(PrefixRunner, RunsFromTheChangedLayerWithTheSameBitsAsAFullRun) {
  const Model m = three_layers();
  PrefixRunner runner(m, inputs());
  for (const char* layer : {"MatMul:h2", "MatMul:y"}) {
    const Model candidate = with(m, std::string("quantize-int8:mode=dynamic:min-elements=1:nodes=[") + layer + "]");
    EXPECT_EQ(runner.run(Model::from_proto(candidate.proto())).at("y").f, full_run(candidate).at("y").f) << layer;
  }
  EXPECT_EQ(runner.partial_runs(), 2);
  EXPECT_EQ(runner.full_runs(), 0);
  EXPECT_GE(runner.skipped_nodes(), 2 + 4);  // MatMul, Relu before h2; those and MatMul, Relu before y
}

TEST(PrefixRunner, WeightOnlyDequantizeNodesDoNotCountAsChangesAtTheTop) {
  // quantize-int8 weight-only may put a weight's DequantizeLinear anywhere before its reader; the
  // runner moves it next to the reader, so the run still starts at the layer.
  const Model m = three_layers();
  PrefixRunner runner(m, inputs());
  Model candidate = with(m, "quantize-int8:min-elements=1:nodes=[MatMul:y]");
  auto* nodes = candidate.proto().mutable_graph()->mutable_node();
  int dq = 0;
  while (dq < nodes->size() && nodes->Get(dq).op_type() != "DequantizeLinear") ++dq;
  ASSERT_LT(dq, nodes->size());
  for (int i = dq; i > 0; --i) nodes->SwapElements(i, i - 1);  // the DequantizeLinear first
  candidate.invalidate();
  const auto want = full_run(candidate).at("y").f;
  EXPECT_EQ(runner.run(Model::from_proto(candidate.proto())).at("y").f, want);
  EXPECT_EQ(runner.partial_runs(), 1);
  EXPECT_GE(runner.skipped_nodes(), 4);
}

TEST(PrefixRunner, ACandidateChangedBeforeTheCheckpointRunsInFull) {
  const Model m = three_layers();
  PrefixRunner runner(m, inputs());
  const Model late = with(m, "quantize-int8:min-elements=1:nodes=[MatMul:y]");
  const Model early = with(m, "quantize-int8:min-elements=1:nodes=[MatMul:h1]");
  EXPECT_EQ(runner.run(Model::from_proto(late.proto())).at("y").f, full_run(late).at("y").f);
  EXPECT_EQ(runner.run(Model::from_proto(early.proto())).at("y").f, full_run(early).at("y").f);
  EXPECT_EQ(runner.partial_runs(), 1);
  EXPECT_EQ(runner.full_runs(), 1);
}

TEST(PrefixRunner, AWeightRewrittenInPlaceCountsAsAChangeOfItsReader) {
  // prune-magnitude keeps the node and rewrites w2 under its name: the run must start at MatMul:h2.
  const Model m = three_layers();
  PrefixRunner runner(m, inputs());
  const Model pruned = with(m, "prune-magnitude:sparsity=0.5:nodes=[MatMul:h2]");
  EXPECT_EQ(runner.run(Model::from_proto(pruned.proto())).at("y").f, full_run(pruned).at("y").f);
  EXPECT_NE(full_run(pruned).at("y").f, full_run(m).at("y").f);
}

}  // namespace
}  // namespace compress
