#include <compress/pass.h>
#include <compress/pipeline.h>
#include <gtest/gtest.h>

#include "testing/builders.h"

namespace compress {
namespace {

PassStats run_cleanup(Model& m, const std::string& options = "") {
  const auto p = Pipeline::build(PassRegistry::builtin(), parse_pipeline_text("cleanup" + options));
  auto runs = p.run(m, {});
  return runs.at(0).stats;
}

TEST(Cleanup, RemovesDeadNodesToAFixedPointAndUnusedInitializers) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x) => (float[2, 3] y) {
  y = MatMul(x, w)
  d1 = Relu(x)
  d2 = Add(d1, unused_bias)
}
)";
  Model m = testing::model_with_weights(text, {testing::random_tensor("w", {4, 3}, 1), testing::random_tensor("unused_bias", {4}, 2),
                                               testing::random_tensor("orphan", {7}, 3)});
  const PassStats s = run_cleanup(m);
  EXPECT_EQ(s.counters.at("removed_nodes"), 2);
  EXPECT_EQ(s.counters.at("removed_initializers"), 2);
  ASSERT_EQ(m.proto().graph().node_size(), 1);
  ASSERT_EQ(m.proto().graph().initializer_size(), 1);
  EXPECT_EQ(m.proto().graph().initializer(0).name(), "w");
  m.check();
}

TEST(Cleanup, MergesIdenticalInitializersButNotGraphInputs) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x, float[4, 3] w3) => (float[2, 3] y) {
  a = MatMul(x, w1)
  b = MatMul(x, w2)
  c = MatMul(x, w3)
  s = Add(a, b)
  y = Add(s, c)
}
)";
  const TensorProto w = testing::random_tensor("w1", {4, 3}, 1);
  TensorProto w2 = w, w3 = w;
  w2.set_name("w2");
  w3.set_name("w3");  // also a graph input: may be overridden, so never merged
  Model m = testing::model_with_weights(text, {w, w2, w3});
  const PassStats s = run_cleanup(m);
  EXPECT_EQ(s.counters.at("merged_initializers"), 1);
  EXPECT_EQ(m.proto().graph().node(1).input(1), "w1");
  EXPECT_EQ(m.proto().graph().node(2).input(1), "w3");
  EXPECT_EQ(m.proto().graph().initializer_size(), 2);
  m.check();
}

TEST(Cleanup, KeepsOuterValuesReadBySubgraphs) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool cond, float[1, 4] x) => (float[1, 2] y) {
  y = If (cond) <
    then_branch = t () => (float[1, 2] a) { a = MatMul(x, w) },
    else_branch = e () => (float[1, 2] b) { b = MatMul(x, w2) }
  >
}
)";
  const TensorProto w = testing::random_tensor("w", {4, 2}, 1);
  TensorProto w2 = w;
  w2.set_name("w2");
  Model m = testing::model_with_weights(text, {w, w2});
  run_cleanup(m);
  // w2 duplicates w: the else branch now reads w, and both stay consistent.
  const auto& if_node = m.proto().graph().node(0);
  EXPECT_EQ(if_node.attribute(1).g().node(0).input(1), "w");
  EXPECT_EQ(m.proto().graph().initializer_size(), 1);
  m.check();
}

TEST(Cleanup, CleanModelIsByteIdentical) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x) => (float[2, 3] y) { y = MatMul(x, w) }
)",
                                        {testing::random_tensor("w", {4, 3}, 1)});
  const std::string before = m.serialize();
  run_cleanup(m);
  EXPECT_EQ(m.serialize(), before);
}

}  // namespace
}  // namespace compress
