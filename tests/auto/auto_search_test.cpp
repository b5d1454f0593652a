#include <compress/auto.h>
#include <compress/error.h>
#include <compress/evaluator.h>
#include <compress/npy.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "testing/builders.h"

namespace compress {
namespace {

// x -> MatMul(w1) -> Relu -> MatMul(w2) -> Relu -> MatMul(w3) -> y, all 64 x 64. w2 is planted to be
// sensitive to int8: row 7 holds a 100x outlier in every output column (so each column's int8 step is
// 100x too coarse for its other weights), while w1's column 7 is scaled down 100x so the outliers
// contribute no more than any other row to the output.
const char* kThreeLayers = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 64] x) => (float[N, 64] y) {
  h1 = MatMul(x, w1)
  r1 = Relu(h1)
  h2 = MatMul(r1, w2)
  r2 = Relu(h2)
  y = MatMul(r2, w3)
}
)";

// The planted model as the text format leaves it: every node unnamed.
Model unnamed_planted_model() {
  TensorProto w1 = testing::random_tensor("w1", {64, 64}, 1, 0.2f);
  TensorProto w2 = testing::random_tensor("w2", {64, 64}, 2, 0.2f);
  TensorProto w3 = testing::random_tensor("w3", {64, 64}, 3, 0.2f);
  std::vector<float> v1 = to_floats(w1), v2 = to_floats(w2);
  for (int r = 0; r < 64; ++r) v1[static_cast<size_t>(r * 64 + 7)] *= 0.01f;
  for (int c = 0; c < 64; ++c) v2[static_cast<size_t>(7 * 64 + c)] = 100.0f * 0.2f;
  return testing::model_with_weights(kThreeLayers, {make_float_tensor("w1", {64, 64}, v1),
                                                    make_float_tensor("w2", {64, 64}, v2), w3});
}

Model planted_model() {
  Model m = unnamed_planted_model();
  auto* g = m.proto().mutable_graph();
  for (int i = 0; i < g->node_size(); ++i) g->mutable_node(i)->set_name("n_" + g->node(i).output(0));
  m.invalidate();
  return m;
}

eval::TensorMap samples(int64_t n, uint32_t seed, int64_t width = 64) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * width));
  for (auto& v : x) v = normal(rng);
  return {{"x", eval::Tensor::floats({n, width}, x)}};
}

// One 512 x 512 MatMul: large enough that on ort-cpu MatMulInteger's cheaper MACs outweigh the
// DynamicQuantizeLinear node it adds (dynamic int8 predicted faster), while weight-only int8 pays a
// DequantizeLinear of the whole weight every run (predicted slower).
Model wide_matmul() {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 512] x) => (float[N, 512] y) {
  y = MatMul(x, w)
}
)", {testing::random_tensor("w", {512, 512}, 11, 0.05f)});
  m.proto().mutable_graph()->mutable_node(0)->set_name("fc");
  m.invalidate();
  return m;
}

const nlohmann::json* layer(const nlohmann::json& report, const std::string& name) {
  for (const auto& l : report["layers"])
    if (l["name"] == name) return &l;
  return nullptr;
}

// int8 only, cosine 0.999 on 24 seeded samples: the planted models' search.
AutoResult search_int8(const Model& m) {
  AutoSettings settings;
  settings.min_cosine = 0.999;
  settings.allow = {"int8"};
  return auto_search(m, samples(24, 5), nullptr, settings);
}

// x -> fc1 -> Relu -> fc2 -> y, 64 wide, where fc1 ignores input feature 0 (its weight row 0 is zero),
// and 24 samples whose held-out ones (index % 4 == 3) carry 1000 in feature 0. Calibrated on every
// sample, x's int8 step would be about 1000 / 255 and every other feature would round to 0; on the
// search samples only, it is about 7 / 255 and feature 0's outliers are clipped where nothing reads them.
Model static_model() {
  TensorProto w1 = testing::random_tensor("w1", {64, 64}, 31, 0.2f);
  std::vector<float> v1 = to_floats(w1);
  for (int c = 0; c < 64; ++c) v1[static_cast<size_t>(c)] = 0.0f;
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 64] x) => (float[N, 64] y) {
  h1 = MatMul(x, w1)
  r1 = Relu(h1)
  y = MatMul(r1, w2)
}
)", {make_float_tensor("w1", {64, 64}, v1), testing::random_tensor("w2", {64, 64}, 32, 0.2f)});
  m.proto().mutable_graph()->mutable_node(0)->set_name("fc1");
  m.proto().mutable_graph()->mutable_node(2)->set_name("fc2");
  m.invalidate();
  return m;
}

eval::TensorMap static_samples() {
  eval::TensorMap s = samples(24, 33);
  for (int64_t k = 3; k < 24; k += 4) s.at("x").f[static_cast<size_t>(k * 64)] = 1000.0f;
  return s;
}

AutoResult search_static(const Model& m, double min_cosine, const std::string& dir = "calib") {
  AutoSettings settings;
  settings.min_cosine = min_cosine;
  settings.allow = {"int8-static"};
  settings.calibration_dir = dir;
  return auto_search(m, static_samples(), nullptr, settings);
}

// The scale of the QuantizeLinear that reads `value`; -1 when there is none.
float quantize_scale(const Model& m, const std::string& value) {
  for (const auto& n : m.proto().graph().node())
    if (n.op_type() == "QuantizeLinear" && n.input(0) == value)
      return to_floats(*testing::find_initializer(m.proto().graph(), n.input(1)))[0];
  return -1;
}

TEST(AutoSearch, PlantedSensitiveLayerStaysFloatAndTheOthersAreQuantized) {
  const Model m = planted_model();
  const AutoResult r = search_int8(m);
  ASSERT_TRUE(r.met) << r.report.dump(2);
  ASSERT_EQ(r.recipe.size(), 1u);
  EXPECT_EQ(r.recipe[0].name, "quantize-int8");
  EXPECT_EQ(r.recipe[0].nodes, (std::vector<std::string>{"n_h1", "n_y"}));
  EXPECT_TRUE(layer(r.report, "n_h2")->at("chosen").is_null());
  EXPECT_EQ(layer(r.report, "n_h1")->at("chosen"), "int8");
  // The planted layer's measured error is by far the largest.
  const double e2 = layer(r.report, "n_h2")->at("choices")["int8"]["output_error"].get<double>();
  const double e1 = layer(r.report, "n_h1")->at("choices")["int8"]["output_error"].get<double>();
  EXPECT_GT(e2, 100 * e1);
  EXPECT_GE(r.report["held_out"]["min_cosine"].get<double>(), 0.999);
  EXPECT_EQ(r.report["samples"]["held_out"], 6);
  EXPECT_EQ(r.report["samples"]["search"], 18);
}

TEST(AutoSearch, LooseBudgetQuantizesEveryLayer) {
  AutoSettings settings;
  settings.min_cosine = 0.5;
  settings.allow = {"int8"};
  const AutoResult r = auto_search(planted_model(), samples(8, 6), nullptr, settings);
  ASSERT_TRUE(r.met);
  EXPECT_EQ(r.recipe[0].nodes.size(), 3u);
}

TEST(AutoSearch, ImpossibleBudgetIsNotMetAndReportsTheLeastCompressedCandidate) {
  AutoSettings settings;
  settings.min_cosine = 0.99999999;
  settings.allow = {"int4"};
  const AutoResult r = auto_search(planted_model(), samples(8, 7), nullptr, settings);
  EXPECT_FALSE(r.met);
  EXPECT_TRUE(r.recipe.empty());
  EXPECT_EQ(r.report["met"], false);
  EXPECT_EQ(r.report["chosen_steps"], 0);
  ASSERT_TRUE(r.report.contains("held_out"));
  EXPECT_LT(r.report["held_out"]["min_cosine"].get<double>(), 0.99999999);
}

TEST(AutoSearch, RecipeReproducesTheSameBytes) {
  const Model m = planted_model();
  AutoSettings settings;
  settings.min_cosine = 0.99;
  settings.allow = {"int8", "int4", "fp16"};
  const AutoResult r = auto_search(m, samples(12, 8), nullptr, settings);
  ASSERT_TRUE(r.met);
  const auto again = parse_recipe_json(recipe_to_json(r.recipe));
  Model a = Model::from_proto(m.proto()), b = Model::from_proto(m.proto());
  Pipeline::build(PassRegistry::builtin(), r.recipe).run(a, {});
  Pipeline::build(PassRegistry::builtin(), again).run(b, {});
  EXPECT_EQ(a.serialize(), b.serialize());
  EXPECT_NE(a.serialize(), m.serialize());

  // int8-static too: the search ran on its samples in memory, the recipe reads them from the directory.
  const auto dir = std::filesystem::temp_directory_path() / ("compress_auto_static_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const Model sm = static_model();
  const AutoResult s = search_static(sm, 0.5, dir.string());
  ASSERT_TRUE(s.met);
  for (const auto& [name, t] : s.calibration) eval::write_npy(dir / (name + ".npy"), t);
  Model c = Model::from_proto(sm.proto()), d = Model::from_proto(sm.proto());
  Pipeline::build(PassRegistry::builtin(), s.recipe, {{dir.string(), std::make_shared<const eval::TensorMap>(s.calibration)}})
      .run(c, {});
  const auto runs = Pipeline::build(PassRegistry::builtin(), parse_recipe_json(recipe_to_json(s.recipe))).run(d, {});
  std::filesystem::remove_all(dir);
  EXPECT_EQ(c.serialize(), d.serialize());
  EXPECT_GT(testing::count_nodes(d.proto().graph(), "QuantizeLinear"), 0);
  EXPECT_EQ(runs.at(0).stats.counters.at("calibration_samples"), 18);  // the search part of 24
}

TEST(AutoSearch, StaticInt8IsChosenAndCalibratesOnTheSearchSamplesOnly) {
  const Model m = static_model();
  const AutoResult r = search_static(m, 0.99);
  ASSERT_TRUE(r.met) << r.report.dump(2);
  ASSERT_EQ(r.recipe.size(), 1u);
  EXPECT_EQ(r.recipe[0].name, "quantize-int8");
  EXPECT_EQ(r.recipe[0].options, (std::vector<std::pair<std::string, std::string>>{
                                     {"mode", "static"}, {"self-check", "false"}, {"calibration", "calib"}}));
  EXPECT_EQ(layer(r.report, "fc1")->at("chosen"), "int8-static");
  EXPECT_GT(layer(r.report, "fc1")->at("choices")["int8-static"]["saving_bytes"].get<double>(), 0);
  EXPECT_EQ(r.report["samples"]["calibration"], (nlohmann::json{{"dir", "calib"}, {"samples", 18}, {"part", "search"}}));
  // What the caller writes to the calibration directory: the 18 search samples, no outlier among them.
  ASSERT_EQ(r.calibration.size(), 1u);
  const eval::Tensor& calibration = r.calibration.at("x");
  EXPECT_EQ(calibration.dims, (std::vector<int64_t>{18, 64}));
  EXPECT_LT(*std::max_element(calibration.f.begin(), calibration.f.end()), 100.0f);
  // The model the recipe makes: x's step is set by the search samples, not the held-out outliers.
  Model out = Model::from_proto(m.proto());
  Pipeline::build(PassRegistry::builtin(), r.recipe, {{"calib", std::make_shared<const eval::TensorMap>(r.calibration)}})
      .run(out, {});
  const float scale = quantize_scale(out, "x");
  EXPECT_GT(scale, 0.0f);
  EXPECT_LT(scale, 0.1f);
  EXPECT_GE(r.report["held_out"]["min_cosine"].get<double>(), 0.99);
}

TEST(AutoSearch, StaticInt8LayersShareOnePassAndTheirActivationPairs) {
  const AutoResult r = search_static(static_model(), 0.5);
  ASSERT_TRUE(r.met) << r.report.dump(2);
  ASSERT_EQ(r.recipe.size(), 1u);
  EXPECT_EQ(r.recipe[0].nodes, (std::vector<std::string>{"fc1", "fc2"}));
  Model out = static_model();
  Pipeline::build(PassRegistry::builtin(), r.recipe, {{"calib", std::make_shared<const eval::TensorMap>(r.calibration)}})
      .run(out, {});
  // x and r1 (fc1's output, its Relu folded) each get one pair; y is a graph output and stays float.
  EXPECT_EQ(testing::count_nodes(out.proto().graph(), "QuantizeLinear"), 2);
  EXPECT_EQ(testing::count_nodes(out.proto().graph(), "Relu"), 0);
}

TEST(AutoSearch, StaticInt8WithoutACalibrationDirectoryIsListedUnusable) {
  const AutoResult r = search_static(static_model(), 0.99, "");
  EXPECT_TRUE(r.recipe.empty());
  EXPECT_EQ(layer(r.report, "fc1")->at("choices")["int8-static"]["unused"],
            "no calibration directory to write the search samples to");
  EXPECT_TRUE(r.calibration.empty());
}

// y = x W with W a full-rank 64 x 64 weight, and inputs that lie (up to 1% noise) in an 8-dim
// subspace: the plain SVD of W keeps about 50 of 64 singular values for 95% energy (no saving), the
// SVD whitened by the inputs' covariance needs about 8 for 95% of the output energy.
Model subspace_model() {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 16, 64] x) => (float[N, 16, 64] y) {
  y = MatMul(x, w)
}
)", {testing::random_tensor("w", {64, 64}, 21, 0.2f)});
  m.proto().mutable_graph()->mutable_node(0)->set_name("fc");
  m.invalidate();
  return m;
}

eval::TensorMap subspace_samples(int64_t n) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> basis(8 * 64);
  for (auto& v : basis) v = normal(rng);
  std::vector<float> x(static_cast<size_t>(n * 16 * 64));
  for (int64_t row = 0; row < n * 16; ++row) {
    float z[8];
    for (auto& v : z) v = normal(rng);
    for (int64_t k = 0; k < 64; ++k) {
      float v = 0.01f * normal(rng);
      for (int64_t d = 0; d < 8; ++d) v += z[d] * basis[static_cast<size_t>(d * 64 + k)];
      x[static_cast<size_t>(row * 64 + k)] = v;
    }
  }
  return {{"x", eval::Tensor::floats({n, 16, 64}, x)}};
}

AutoResult search_low_rank(const std::string& dir) {
  AutoSettings settings;
  settings.min_cosine = 0.99;
  settings.allow = {"low-rank"};
  settings.calibration_dir = dir;
  return auto_search(subspace_model(), subspace_samples(24), nullptr, settings);
}

TEST(AutoSearch, LowRankWhitensOnTheSearchSamples) {
  const AutoResult r = search_low_rank("calib");
  ASSERT_TRUE(r.met) << r.report.dump(2);
  ASSERT_EQ(r.recipe.size(), 1u);
  EXPECT_EQ(r.recipe[0].name, "low-rank");
  EXPECT_EQ(r.recipe[0].options, (std::vector<std::pair<std::string, std::string>>{{"calibrate", "calib"}}));
  EXPECT_EQ(layer(r.report, "fc")->at("chosen"), "low-rank");
  EXPECT_EQ(r.report["samples"]["calibration"], (nlohmann::json{{"dir", "calib"}, {"samples", 18}, {"part", "search"}}));
  ASSERT_EQ(r.calibration.count("x"), 1u);
  EXPECT_EQ(r.calibration.at("x").dims, (std::vector<int64_t>{18, 16, 64}));
  EXPECT_GE(r.report["held_out"]["min_cosine"].get<double>(), 0.99);
  // The recipe run on those samples factorizes fc: two MatMuls.
  Model out = subspace_model();
  Pipeline::build(PassRegistry::builtin(), r.recipe, {{"calib", std::make_shared<const eval::TensorMap>(r.calibration)}})
      .run(out, {});
  EXPECT_EQ(testing::count_nodes(out.proto().graph(), "MatMul"), 2);
}

TEST(AutoSearch, PruneRanksWeightsOnTheSearchSamples) {
  AutoSettings settings;
  settings.min_cosine = 0.3;
  settings.allow = {"prune"};
  settings.calibration_dir = "calib";
  const AutoResult r = auto_search(subspace_model(), subspace_samples(24), nullptr, settings);
  ASSERT_TRUE(r.met) << r.report.dump(2);
  ASSERT_EQ(r.recipe.size(), 1u);
  EXPECT_EQ(r.recipe[0].name, "prune-magnitude");
  EXPECT_EQ(r.recipe[0].options, (std::vector<std::pair<std::string, std::string>>{
                                     {"sparsity", "0.75"}, {"storage", "sparse"}, {"calibrate", "calib"}}));
  EXPECT_EQ(r.calibration.at("x").dims, (std::vector<int64_t>{18, 16, 64}));
}

TEST(AutoSearch, LowRankWithoutACalibrationDirectoryIsThePlainSvd) {
  // The plain SVD of this weight saves nothing: the float model is the answer, with the reason listed.
  const AutoResult r = search_low_rank("");
  EXPECT_TRUE(r.recipe.empty()) << r.report.dump(2);
  EXPECT_TRUE(r.calibration.empty());
  EXPECT_TRUE(r.report["samples"]["calibration"].contains("refused"));
  EXPECT_TRUE(layer(r.report, "fc")->at("chosen").is_null());
}

TEST(AutoSearch, DryRunStopsAfterTheSensitivityTable) {
  AutoSettings settings;
  settings.min_cosine = 0.99;
  settings.dry_run = true;
  const AutoResult r = auto_search(planted_model(), samples(8, 9), nullptr, settings);
  EXPECT_FALSE(r.met);
  EXPECT_EQ(r.report["layers"].size(), 3u);
  EXPECT_FALSE(r.report.contains("met"));
  EXPECT_TRUE(layer(r.report, "n_h1")->at("choices").contains("fp16"));
}

TEST(AutoSearch, AccuracyBudgetUsesLabels) {
  const Model m = planted_model();
  const auto s = samples(16, 10);
  // Labels: the float model's own argmax, so the reference accuracy is 100%.
  const auto out = eval::Evaluator(m).run(s).at("y");
  std::vector<int64_t> labels;
  for (int64_t r = 0; r < 16; ++r) {
    int64_t best = 0;
    for (int64_t c = 1; c < 64; ++c)
      if (out.f[static_cast<size_t>(r * 64 + c)] > out.f[static_cast<size_t>(r * 64 + best)]) best = c;
    labels.push_back(best);
  }
  const eval::Tensor y = eval::Tensor::ints({16}, labels);
  AutoSettings settings;
  settings.max_accuracy_drop = 0.0;
  settings.allow = {"int8"};
  const AutoResult r = auto_search(m, s, &y, settings);
  ASSERT_TRUE(r.report.contains("held_out"));
  if (r.met) {
    EXPECT_LE(r.report["held_out"]["accuracy_drop_points"].get<double>(), 0.0);
  }
}

TEST(AutoSearch, LatencyObjectivePicksTheFormatTheTargetPredictsFaster) {
  AutoSettings settings;
  settings.min_cosine = 0.99;
  settings.objective = "latency";
  const AutoResult r = auto_search(wide_matmul(), samples(8, 12, 512), nullptr, settings);
  ASSERT_TRUE(r.met) << r.report.dump(2);
  EXPECT_EQ(r.report["objective"], "latency");
  EXPECT_EQ(r.report["target"], "ort-cpu");
  EXPECT_EQ(r.report["saving_unit"], "ms");
  EXPECT_EQ(r.report["input_shapes"]["x"], (std::vector<int64_t>{1, 512}));  // one sample
  const nlohmann::json* fc = layer(r.report, "fc");
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(fc->at("chosen"), "int8-dynamic");
  EXPECT_GT(fc->at("choices")["int8-dynamic"]["saving"].get<double>(), 0);
  // Weight-only int8 is smaller but dequantized every run: slower, so never a candidate.
  EXPECT_EQ(fc->at("choices")["int8"]["unused"], "predicted_slower");
  EXPECT_LT(fc->at("choices")["int8"]["saving"].get<double>(), 0);
  EXPECT_GT(fc->at("choices")["int8"]["saving_bytes"].get<double>(), 0);
  ASSERT_EQ(r.recipe.size(), 1u);
  EXPECT_EQ(r.recipe[0].name, "quantize-int8");
  EXPECT_EQ(r.recipe[0].options, (std::vector<std::pair<std::string, std::string>>{{"mode", "dynamic"}}));
  EXPECT_LT(r.report["objective_cost"]["chosen"].get<double>(), r.report["objective_cost"]["float"].get<double>());
}

TEST(AutoSearch, LatencyObjectiveKeepsFloatWhenEveryChoiceIsPredictedSlower) {
  AutoSettings settings;
  settings.min_cosine = 0.99;
  settings.objective = "latency";
  settings.allow = {"int8", "int4"};
  const AutoResult r = auto_search(wide_matmul(), samples(8, 13, 512), nullptr, settings);
  ASSERT_TRUE(r.met) << r.report.dump(2);
  EXPECT_TRUE(r.recipe.empty());
  EXPECT_EQ(r.report["chosen_steps"], 0);
  EXPECT_NE(r.report["kept_float"].get<std::string>().find("no allowed choice is predicted faster on ort-cpu"),
            std::string::npos);
  const nlohmann::json* fc = layer(r.report, "fc");
  EXPECT_TRUE(fc->at("chosen").is_null());
  EXPECT_EQ(fc->at("choices")["int8"]["unused"], "predicted_slower");
  EXPECT_EQ(fc->at("choices")["int4"]["unused"], "predicted_slower");
  EXPECT_NE(render_auto_text(r.report).find("verdict: kept float: no allowed choice is predicted faster"), std::string::npos);
  EXPECT_NE(render_auto_markdown(r.report).find("**Kept float**"), std::string::npos);
}

TEST(AutoSearch, EnergyObjectiveCountsTheDequantizeEveryRun) {
  AutoSettings settings;
  settings.min_cosine = 0.99;
  settings.objective = "energy";
  settings.allow = {"int8", "int8-dynamic"};
  const AutoResult r = auto_search(wide_matmul(), samples(8, 14, 512), nullptr, settings);
  ASSERT_TRUE(r.met) << r.report.dump(2);
  const nlohmann::json* fc = layer(r.report, "fc");
  EXPECT_EQ(fc->at("choices")["int8"]["unused"], "more_energy");
  EXPECT_EQ(fc->at("chosen"), "int8-dynamic");
  EXPECT_EQ(r.report["saving_unit"], "uJ");
}

TEST(AutoSearch, UnnamedNodesAreCandidatesByTheirLayerNames) {
  const Model m = unnamed_planted_model();
  const AutoResult r = search_int8(m);
  ASSERT_TRUE(r.met) << r.report.dump(2);
  ASSERT_EQ(r.recipe.size(), 1u);
  EXPECT_EQ(r.recipe[0].nodes, (std::vector<std::string>{"MatMul:h1", "MatMul:y"}));
  EXPECT_TRUE(layer(r.report, "MatMul:h2")->at("chosen").is_null());
  // The recipe, through its JSON, reproduces the same bytes.
  Model a = Model::from_proto(m.proto()), b = Model::from_proto(m.proto());
  Pipeline::build(PassRegistry::builtin(), r.recipe).run(a, {});
  Pipeline::build(PassRegistry::builtin(), parse_recipe_json(recipe_to_json(r.recipe))).run(b, {});
  EXPECT_EQ(a.serialize(), b.serialize());
  EXPECT_NE(a.serialize(), m.serialize());
  EXPECT_EQ(testing::count_nodes(a.proto().graph(), "DequantizeLinear"), 2);
}

// An input whose samples lie on axis 1, like an RNN state [layers, batch, hidden]: its entries are
// split with the others' rows (before, it was shared whole and the held-out run failed on shapes).
TEST(AutoSearch, StateInputsSplitOnTheirSampleAxis) {
  const Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 64] x, float[2, N, 64] s) => (float[N, 64] y) {
  h = MatMul(x, w1)
  ax = Constant<value = int64[1] {0}>()
  s0 = ReduceSum<keepdims = 0>(s, ax)
  a = Add(h, s0)
  y = MatMul(a, w2)
}
)", {testing::random_tensor("w1", {64, 64}, 21, 0.2f), testing::random_tensor("w2", {64, 64}, 22, 0.2f)});
  eval::TensorMap feeds = samples(8, 9);
  std::vector<float> state(2 * 8 * 64);
  for (size_t i = 0; i < state.size(); ++i) state[i] = static_cast<float>((i / 64) % 8) - 3.5f;  // by sample
  feeds["s"] = eval::Tensor::floats({2, 8, 64}, state);
  AutoSettings settings;
  settings.min_cosine = 0.99;
  settings.allow = {"int8"};
  const AutoResult r = auto_search(m, feeds, nullptr, settings);
  ASSERT_TRUE(r.met) << r.report.dump(2);
  EXPECT_EQ(r.report["samples"]["held_out"], 2);
  EXPECT_EQ(r.report["input_shapes"]["s"], (std::vector<int64_t>{2, 1, 64}));
  EXPECT_EQ(r.report["input_shapes"]["x"], (std::vector<int64_t>{1, 64}));
}

TEST(AutoSearch, SettingsAreChecked) {
  const Model m = planted_model();
  AutoSettings none;
  EXPECT_THROW(auto_search(m, samples(4, 1), nullptr, none), Error);  // no budget
  AutoSettings bad;
  bad.min_cosine = 0.9;
  bad.allow = {"int3"};
  try {
    auto_search(m, samples(4, 1), nullptr, bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("unknown choice 'int3'"), std::string::npos);
  }
  AutoSettings ok;
  ok.min_cosine = 0.9;
  EXPECT_THROW(auto_search(m, samples(1, 1), nullptr, ok), Error);  // one sample cannot be split
  AutoSettings drop;
  drop.max_accuracy_drop = 1;
  EXPECT_THROW(auto_search(m, samples(4, 1), nullptr, drop), Error);  // needs labels
  const auto usage_message = [&](const AutoSettings& s) {
    try {
      auto_search(m, samples(4, 1), nullptr, s);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  AutoSettings objective = ok;
  objective.objective = "speed";
  EXPECT_EQ(usage_message(objective), "--objective: unknown objective 'speed' (valid: size, latency, energy)");
  AutoSettings target = ok;
  target.objective = "latency";
  target.target = "tpu";
  EXPECT_EQ(usage_message(target).rfind("--target: unknown target 'tpu' (valid: ", 0), 0u) << usage_message(target);
}

}  // namespace
}  // namespace compress
