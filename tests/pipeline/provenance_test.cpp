#include <compress/pipeline.h>
#include <compress/report.h>
#include <gtest/gtest.h>

#include "pipeline/provenance.h"
#include "testing/builders.h"

namespace compress {
namespace {

GraphSnapshot snap(const std::string& text) { return snapshot_graph(Model::parse_text(text).proto().graph()); }

const char* kBefore = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 4] x, float[4, 4] w) => (float[1, 4] y) {
  h = MatMul(x, w)
  dead = Neg(x)
  y = Relu(h)
}
)";

TEST(Provenance, UnnamedNodesAreNamedByOpAndFirstOutput) {
  const GraphSnapshot s = snap(kBefore);
  ASSERT_EQ(s.graphs.at("").size(), 3u);
  EXPECT_EQ(s.graphs.at("")[0].name, "MatMul:h");
}

TEST(Provenance, AReplacementChainTracesToTheNodeWhoseOutputItWrites) {
  // MatMul -> DynamicQuantizeLinear + MatMulInteger + Cast + Mul writing h; the dead Neg dropped.
  const GraphSnapshot after = snap(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 4] x, int8[4, 4] wq, float s) => (float[1, 4] y) {
  xq, xs, xz = DynamicQuantizeLinear(x)
  acc = MatMulInteger(xq, wq, xz)
  accf = Cast <to = 1> (acc)
  scale = Mul(xs, s)
  h = Mul(accf, scale)
  y = Relu(h)
}
)");
  const Provenance p = trace_provenance(snap(kBefore), after);
  EXPECT_EQ(p.origins.size(), 5u);
  for (const char* n : {"DynamicQuantizeLinear:xq", "MatMulInteger:acc", "Cast:accf", "Mul:scale", "Mul:h"})
    EXPECT_EQ(p.origins.at(n), "MatMul:h") << n;
  EXPECT_EQ(p.removed, std::vector<std::string>{"Neg:dead"});
}

TEST(Provenance, AnInsertedStepBelongsToItsReaderAndAnOutputCastToItsWriter) {
  const GraphSnapshot after = snap(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 4] x, float[4, 4] w) => (float[1, 4] y) {
  xh = Cast <to = 10> (x)
  h = MatMul(xh, w)
  dead = Neg(x)
  y16 = Relu(h)
  y = Cast <to = 1> (y16)
}
)");
  const Provenance p = trace_provenance(snap(kBefore), after);
  EXPECT_EQ(p.origins.at("Cast:xh"), "MatMul:h");
  EXPECT_EQ(p.origins.at("Cast:y"), "Relu:y");  // writes the value Relu wrote before
  EXPECT_TRUE(p.removed.empty());
}

TEST(Provenance, ANodeWiredToNothingKnownStaysUntraced) {
  const GraphSnapshot after = snap(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 4] x, float[4, 4] w) => (float[1, 4] y, float[4] orphan) {
  h = MatMul(x, w)
  dead = Neg(x)
  y = Relu(h)
  orphan = Constant <value = float[4] {1, 2, 3, 4}> ()
}
)");
  const Provenance p = trace_provenance(snap(kBefore), after);
  EXPECT_EQ(p.origins.count("Constant:orphan"), 0u);
}

TEST(Provenance, ANewSubgraphTracesToTheNodeOwningIt) {
  GraphSnapshot before, after;
  before.graphs[""] = {{"loop", {"x"}, {"y"}}};
  after.graphs[""] = {{"loop_new", {"x"}, {"y"}}};
  after.graphs["loop_new/body/"] = {{"loop_new/body/inner", {"a"}, {"b"}}};
  const Provenance p = trace_provenance(before, after);
  EXPECT_EQ(p.origins.at("loop_new"), "loop");
  EXPECT_EQ(p.origins.at("loop_new/body/inner"), "loop");
}

// x[1,3,8,8] -Conv-> Relu -> Flatten -> Gemm -> MatMul: weights big enough for every pass.
const char* kNet = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 3, 8, 8] x) => (float[1, 64] y) {
  c = Conv <pads = [1, 1, 1, 1], kernel_shape = [3, 3]> (x, w, b)
  r = Relu(c)
  f = Flatten(r)
  h = Gemm <transB = 1> (f, fc_w, fc_b)
  y = MatMul(h, m)
}
)";

Model net() {
  return testing::model_with_weights(
      kNet, {testing::random_tensor("w", {64, 3, 3, 3}, 1), testing::random_tensor("b", {64}, 2),
             testing::random_tensor("fc_w", {128, 4096}, 3), testing::random_tensor("fc_b", {128}, 4),
             testing::random_tensor("m", {128, 64}, 5)});
}

// Every built-in pass on a small net: each layer before is paired with what it became.
TEST(Provenance, EveryBuiltinPassLeavesEveryLayerPaired) {
  for (const Pass* pass : PassRegistry::builtin().all()) {
    const std::string name = pass->info().name;
    std::vector<std::string> pipelines = {name};
    if (name == "quantize-int8") pipelines.push_back("quantize-int8:mode=dynamic");
    if (name == "prune-channels") pipelines.push_back("prune-channels:ratio=0.5");
    if (name == "low-rank") pipelines.push_back("low-rank:rank=8:min-elements=1");
    for (const auto& text : pipelines) {
      Model model = net();
      Report report;
      report.before = compute_stats(model, {});
      report.passes = Pipeline::build(PassRegistry::builtin(), parse_pipeline_text(text)).run(model, {});
      report.after = compute_stats(model, {});
      const auto rows = match_layers(report);
      ASSERT_EQ(rows.size(), report.before.layers.size()) << text;
      for (const auto& row : rows) {
        EXPECT_TRUE(row.before.has_value()) << text << ": " << row.name;
        EXPECT_TRUE(row.after.has_value() || !row.removed_by.empty()) << text << ": " << row.name;
      }
    }
  }
}

TEST(Provenance, AQuantizedLayerSumsItsNewNodesAfter) {
  Model model = net();
  Report report;
  report.before = compute_stats(model, {});
  report.passes =
      Pipeline::build(PassRegistry::builtin(), parse_pipeline_text("quantize-int8:mode=dynamic")).run(model, {});
  report.after = compute_stats(model, {});
  const auto rows = match_layers(report);
  const auto gemm = std::find_if(rows.begin(), rows.end(), [](const LayerChange& c) { return c.op_type == "Gemm"; });
  ASSERT_NE(gemm, rows.end());
  ASSERT_TRUE(gemm->after.has_value());
  EXPECT_GT(gemm->after_nodes.size(), 1u);
  EXPECT_EQ(gemm->after->macs, gemm->before->macs);
  EXPECT_EQ(gemm->after->op_type, "MatMulInteger");
  EXPECT_LT(gemm->after->weight_bytes, gemm->before->weight_bytes / 3);
}

}  // namespace
}  // namespace compress
