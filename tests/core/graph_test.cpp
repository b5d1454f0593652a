#include <compress/error.h>
#include <compress/graph.h>
#include <compress/model.h>
#include <gtest/gtest.h>

#include "testing/builders.h"

namespace compress {
namespace {

const char* kBranchy = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool cond, float[1, 4] x, float[4, 2] over) => (float[1, 2] y) {
  k = Constant <value = float[4, 2] {1, 2, 3, 4, 5, 6, 7, 8}> ()
  y = If (cond) <
    then_branch = t () => (float[1, 2] a) { a = MatMul(x, w) },
    else_branch = e () => (float[1, 2] b) { b = MatMul(x, k) }
  >
}
)";

Model branchy() {
  Model m = testing::model_with_weights(kBranchy, {testing::random_tensor("w", {4, 2}, 1), testing::random_tensor("over", {4, 2}, 2)});
  return m;
}

TEST(Graph, IndexesProducersConsumersAndImplicitSubgraphUses) {
  Model m = branchy();
  Graph& g = m.graph();
  const NodeProto* if_node = g.producer("y");
  ASSERT_NE(if_node, nullptr);
  EXPECT_EQ(if_node->op_type(), "If");
  EXPECT_EQ(g.producer("x"), nullptr);  // a graph input
  // x, w and k are read inside the branches: implicit uses of the If node.
  for (const char* value : {"x", "w", "k"}) {
    const auto& uses = g.consumers(value);
    ASSERT_EQ(uses.size(), 1u) << value;
    EXPECT_EQ(uses[0].input_index, -1) << value;
    EXPECT_EQ(uses[0].node, if_node);
  }
  EXPECT_TRUE(g.is_graph_output("y"));
  EXPECT_TRUE(g.is_graph_input("cond"));
}

TEST(Graph, ConstantsAreInitializersOrConstantNodesButNotOverridableInputs) {
  Model m = branchy();
  Graph& g = m.graph();
  EXPECT_NE(g.constant("w"), nullptr);
  ASSERT_NE(g.constant("k"), nullptr);
  EXPECT_EQ(g.constant("k")->dims(0), 4);
  EXPECT_EQ(g.constant("over"), nullptr);  // an initializer that is also a graph input may be overridden
  EXPECT_NE(g.initializer("over"), nullptr);
  Graph* then_branch = g.subgraphs().at(0);
  EXPECT_EQ(then_branch->constant("w"), nullptr);           // not in the branch itself
  EXPECT_NE(then_branch->constant_in_scope("w"), nullptr);  // but visible from it
}

TEST(Graph, ReplaceAllUsesRewritesSubgraphBodies) {
  Model m = branchy();
  Graph& g = m.graph();
  g.replace_all_uses("w", "k");
  const auto& then_body = m.proto().graph().node(1).attribute(0).g();
  EXPECT_EQ(then_body.node(0).input(1), "k");
  EXPECT_TRUE(g.consumers("w").empty());
}

TEST(Graph, TopologicalSortKeepsNodesAndSubgraphViewsAlive) {
  Model m = branchy();
  Graph& g = m.graph();
  std::vector<Graph*> before = m.all_graphs();
  ASSERT_EQ(before.size(), 3u);
  const NodeProto* if_node = g.producer("y");
  // Move the If in front of the Constant it reads, then sort back.
  m.proto().mutable_graph()->mutable_node()->SwapElements(0, 1);
  g.invalidate();
  g.topological_sort();
  EXPECT_EQ(m.proto().graph().node(0).op_type(), "Constant");
  EXPECT_EQ(g.producer("y"), if_node);  // the same node object, not a copy
  std::vector<Graph*> after = m.all_graphs();
  EXPECT_EQ(after, before);  // subgraph views were reused, still pointing at live protos
  EXPECT_EQ(after[1]->proto().node(0).op_type(), "MatMul");
}

TEST(Graph, TopologicalSortRejectsCycles) {
  Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1] x) => (float[1] y) {
  a = Add(x, b)
  b = Relu(a)
  y = Identity(b)
}
)");
  try {
    m.graph().topological_sort();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
  }
}

TEST(Graph, RemoveNodesAndInitializersKeepsIndexesExact) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x) => (float[2, 3] y) {
  h = MatMul(x, w)
  y = Relu(h)
  dead = Relu(x)
}
)",
                                        {testing::random_tensor("w", {4, 3}, 1)});
  Graph& g = m.graph();
  g.remove_nodes({g.producer("dead")});
  EXPECT_EQ(m.proto().graph().node_size(), 2);
  EXPECT_EQ(g.producer("dead"), nullptr);
  EXPECT_EQ(g.consumers("x").size(), 1u);
  NodeProto* matmul = g.producer("h");
  g.set_input(*matmul, 1, "w2");
  EXPECT_TRUE(g.consumers("w").empty());
  g.remove_initializer("w");
  EXPECT_EQ(g.initializer("w"), nullptr);
}

TEST(Graph, RemovingAnInitializerKeepsTheIndexOfTheOthers) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x) => (float[2, 3] y) {
  h = MatMul(x, a)
  y = MatMul(h, c)
}
)",
                                        {testing::random_tensor("a", {4, 4}, 1), testing::random_tensor("b", {4, 4}, 2),
                                         testing::random_tensor("c", {4, 3}, 3)});
  Graph& g = m.graph();
  ASSERT_NE(g.initializer("c"), nullptr);  // the index is built
  g.remove_initializer("a");
  g.remove_initializer("b");
  ASSERT_EQ(m.proto().graph().initializer_size(), 1);
  EXPECT_EQ(g.initializer("a"), nullptr);
  EXPECT_EQ(g.initializer("b"), nullptr);
  EXPECT_EQ(g.initializer("c"), &m.proto().graph().initializer(0));  // still the live element
  EXPECT_EQ(g.consumers("h").size(), 1u);
  EXPECT_EQ(g.producer("y"), &m.proto().graph().node(1));
}

}  // namespace
}  // namespace compress
