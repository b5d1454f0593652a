#include <compress/error.h>
#include <compress/model.h>
#include <compress/pass.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>
#include <onnx/checker.h>

#include <algorithm>
#include <cmath>
#include <map>

#include <compress/evaluator.h>
#include <compress/pipeline.h>

#include <random>

#include "passes/passes.h"
#include "testing/builders.h"

namespace compress {
namespace {

// min-elements 16: the test weights are small.
PassStats run_pass(Model& m, std::map<std::string, std::string> options = {}) {
  options.emplace("min-elements", "16");
  return testing::run_pass(m, "prune-magnitude", options);
}

const onnx::TensorProto* find(Model& m, const std::string& name) {
  for (const auto& t : m.proto().graph().initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

int64_t zeros(const onnx::TensorProto& t) {
  const auto v = to_floats(t);
  return std::count(v.begin(), v.end(), 0.0f);
}

const char* kTwoMatMuls = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x) => (float[2, 8] y) {
  h = MatMul (x, w1)
  y = MatMul (h, w2)
}
)";

Model two_matmuls() {
  return testing::model_with_weights(kTwoMatMuls, {testing::random_tensor("w1", {64, 32}, 1),
                                                   testing::random_tensor("w2", {32, 8}, 2, 5.0f)});
}

TEST(PruneMagnitude, LayerScopeIsExactPerTensor) {
  Model m = two_matmuls();
  const auto original = to_floats(*find(m, "w1"));
  run_pass(m, {{"sparsity", "0.3"}});
  EXPECT_EQ(zeros(*find(m, "w1")), std::llround(0.3 * 2048));  // 614
  EXPECT_EQ(zeros(*find(m, "w2")), std::llround(0.3 * 256));   // 77
  // The zeroed ones are the smallest: every kept |w| >= every zeroed original |w|.
  const auto pruned = to_floats(*find(m, "w1"));
  float max_zeroed = 0, min_kept = 1e30f;
  for (size_t i = 0; i < pruned.size(); ++i)
    (pruned[i] == 0 ? max_zeroed : min_kept) =
        pruned[i] == 0 ? std::max(max_zeroed, std::abs(original[i])) : std::min(min_kept, std::abs(original[i]));
  EXPECT_LE(max_zeroed, min_kept);
  m.check();
}

TEST(PruneMagnitude, GlobalScopeIsExactOverall) {
  Model m = two_matmuls();
  const PassStats stats = run_pass(m, {{"sparsity", "0.5"}, {"scope", "global"}});
  const int64_t total = zeros(*find(m, "w1")) + zeros(*find(m, "w2"));
  EXPECT_EQ(total, 1152);  // round(0.5 x 2304)
  EXPECT_EQ(stats.counters.at("zeros"), 1152);
  // w2 has 5x the scale: one threshold prunes it much less.
  EXPECT_LT(zeros(*find(m, "w2")), 256 / 4);
}

TEST(PruneMagnitude, GlobalScopeBreaksTiesByTensorThenIndex) {
  // Every |w| is 1 or 2: the threshold falls inside the ties of 1, which are zeroed in w1 first
  // (all 1024 of its ones), then w2 from its first index on.
  std::vector<float> w1(64 * 32), w2(32 * 8);
  for (size_t i = 0; i < w1.size(); ++i) w1[i] = i % 2 ? 2.0f : -1.0f;
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = i % 2 ? -2.0f : 1.0f;
  Model m = testing::model_with_weights(
      kTwoMatMuls, {make_float_tensor("w1", {64, 32}, w1), make_float_tensor("w2", {32, 8}, w2)});
  run_pass(m, {{"sparsity", "0.5"}, {"scope", "global"}});  // k = 1152 = 1024 ones of w1 + 128 of w2
  const auto p1 = to_floats(*find(m, "w1")), p2 = to_floats(*find(m, "w2"));
  for (size_t i = 0; i < p1.size(); ++i) ASSERT_EQ(p1[i], i % 2 ? 2.0f : 0.0f) << i;
  for (size_t i = 0; i < p2.size(); ++i) ASSERT_EQ(p2[i], i % 2 ? -2.0f : 0.0f) << i;  // all 128 ones of w2
  Model again = testing::model_with_weights(
      kTwoMatMuls, {make_float_tensor("w1", {64, 32}, w1), make_float_tensor("w2", {32, 8}, w2)});
  run_pass(again, {{"sparsity", "0.45"}, {"scope", "global"}});  // k = 1037: 1024 of w1, w2's first 13
  const auto q2 = to_floats(*find(again, "w2"));
  int64_t zeroed = 0;
  for (size_t i = 0; i < q2.size(); ++i) {
    if (q2[i] == 0.0f) {
      ++zeroed;
      EXPECT_LT(i, 26u) << "ties of w2 are zeroed from its first index on";
    }
  }
  EXPECT_EQ(zeroed, 13);
  EXPECT_EQ(zeros(*find(again, "w1")), 1024);
}

TEST(PruneMagnitude, NmPatternAlongTheReductionAxis) {
  Model m = two_matmuls();
  const auto original = to_floats(*find(m, "w1"));
  run_pass(m, {{"n-m", "2:4"}});
  const auto w = to_floats(*find(m, "w1"));  // [K=64, N=32]: groups of 4 consecutive rows per column
  for (int col = 0; col < 32; ++col)
    for (int k0 = 0; k0 < 64; k0 += 4) {
      int z = 0;
      float min_kept = 1e30f, max_zeroed = 0;
      for (int k = k0; k < k0 + 4; ++k) {
        const float a = std::abs(original[k * 32 + col]);
        if (w[k * 32 + col] == 0) {
          ++z;
          max_zeroed = std::max(max_zeroed, a);
        } else {
          min_kept = std::min(min_kept, a);
        }
      }
      ASSERT_EQ(z, 2);
      ASSERT_LE(max_zeroed, min_kept);
    }
  Model slash = two_matmuls();
  run_pass(slash, {{"n-m", "2/4"}});
  EXPECT_EQ(slash.serialize(), m.serialize());
  EXPECT_THROW(run_pass(m, {{"n-m", "4:2"}}), Error);
  EXPECT_THROW(run_pass(m, {{"n-m", "2-4"}}), Error);
}

TEST(PruneMagnitude, NmSkipsIndivisibleReduction) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 6] x) => (float[2, 8] y) {
  y = MatMul (x, w)
}
)", {testing::random_tensor("w", {6, 8}, 1)});
  const std::string bytes = m.serialize();
  const PassStats stats = run_pass(m, {{"n-m", "2:4"}});
  EXPECT_EQ(stats.counters.at("skipped.n_m_indivisible"), 1);
  EXPECT_EQ(m.serialize(), bytes);
}

TEST(PruneMagnitude, SparseStorageOnlyWhenSmaller) {
  Model m = two_matmuls();
  const PassStats dense = run_pass(m, {{"sparsity", "0.5"}, {"storage", "sparse"}});
  EXPECT_EQ(m.proto().graph().sparse_initializer_size(), 0);
  EXPECT_EQ(dense.counters.at("dense_storage.sparse_not_smaller"), 2);

  Model s = two_matmuls();
  const auto original = to_floats(*find(s, "w1"));
  const PassStats stats = run_pass(s, {{"sparsity", "0.9"}, {"storage", "sparse"}});
  ASSERT_EQ(s.proto().graph().sparse_initializer_size(), 2);
  EXPECT_EQ(find(s, "w1"), nullptr);
  const auto& sp = s.proto().graph().sparse_initializer(0);
  EXPECT_EQ(sp.values().name(), "w1");
  EXPECT_EQ(sp.indices().data_type(), onnx::TensorProto::INT64);
  const int64_t nnz = 2048 - std::llround(0.9 * 2048);
  EXPECT_EQ(sp.values().dims(0), nnz);
  // Densified, the sparse tensor is the pruned weight: values at the indices, zeros elsewhere.
  const auto values = to_floats(sp.values());
  const auto indices = to_int64s(sp.indices());
  for (size_t i = 0; i < indices.size(); ++i) ASSERT_EQ(values[i], original[indices[i]]);
  EXPECT_TRUE(std::is_sorted(indices.begin(), indices.end()));
  EXPECT_EQ(stats.counters.at("bytes_saved"), 4 * 2304 - 12 * (nnz + 256 - std::llround(0.9 * 256)));
  s.check();
}

TEST(PruneMagnitude, SharedConstantAndSubgraphWeights) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 8] x, bool c) => (float[2, 8] y) {
  a = MatMul (x, w)
  b = MatMul (a, w)
  y = If (c) <then_branch = t () => (float[2, 8] o) { k = Constant <value = float[8, 8] {1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8}> () o = MatMul (b, k) },
              else_branch = e () => (float[2, 8] o2) { o2 = Identity (b) }>
}
)", {testing::random_tensor("w", {8, 8}, 1)});
  const PassStats stats = run_pass(m, {{"sparsity", "0.25"}});
  EXPECT_EQ(zeros(*find(m, "w")), 16);  // pruned once for both readers
  const auto& k = m.proto().graph().node(2).attribute(0).g().node(0).attribute(0).t();
  EXPECT_EQ(zeros(k), 16);  // the eight 1s and eight 2s
  EXPECT_EQ(stats.counters.at("pruned"), 2);
  m.check();
}

TEST(PruneMagnitude, SkipReasons) {
  struct Case {
    const char* text;
    std::map<std::string, std::string> options;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {kTwoMatMuls, {{"min-elements", "4096"}}, "too_small"},
      {kTwoMatMuls, {{"exclude", "[MatMul]"}}, "excluded"},
      {R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x, float[64, 32] w1) => (float[2, 32] y) {
  y = MatMul (x, w1)
}
)", {}, "weight_is_graph_input"},
      {R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x) => (float[2, 32] y, float[64, 32] z) {
  y = MatMul (x, w1)
  z = Add (w1, w1)
}
)", {}, "weight_has_other_readers"},
      // The weight is also a graph output: pruning it would change that output (and a sparse
      // initializer as a graph output does not run in ONNX Runtime: "Non tensor type").
      {R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 64] x) => (float[2, 32] y, float[64, 32] w1) {
  y = MatMul (x, w1)
}
)", {{"storage", "sparse"}, {"sparsity", "0.9"}}, "weight_is_graph_output"},
  };
  for (const auto& c : cases) {
    Model m = testing::model_with_weights(c.text, {testing::random_tensor("w1", {64, 32}, 1),
                                                   testing::random_tensor("w2", {32, 8}, 2)});
    // Unused w2 in the single-MatMul cases is harmless; the bytes must not change.
    const std::string bytes = m.serialize();
    const PassStats stats = run_pass(m, c.options);
    EXPECT_GE(stats.counters.count(std::string("skipped.") + c.reason), 1u) << c.reason;
    EXPECT_EQ(stats.counters.count("pruned"), 0u) << c.reason;
    EXPECT_EQ(m.serialize(), bytes) << c.reason;
  }
}

TEST(PruneMagnitude, DeterministicOutput) {
  Model a = two_matmuls(), b = two_matmuls();
  run_pass(a, {{"scope", "global"}, {"storage", "sparse"}, {"sparsity", "0.8"}});
  run_pass(b, {{"scope", "global"}, {"storage", "sparse"}, {"sparsity", "0.8"}});
  EXPECT_EQ(a.serialize(), b.serialize());
}

}  // namespace
}  // namespace compress

namespace compress {
namespace {

// calibrate (Wanda): input features 0-31 are quiet (x 0.001) and their weights large (|w| in [0.5, 1]),
// features 32-63 loud (x 1) with small weights (|w| in [0.05, 0.1]). Plain magnitude zeroes the small weights, which carry
// nearly all of the output; |w| x input norm zeroes the large weights on quiet inputs instead.
struct QuietLoud {
  Model model;
  eval::Tensor x;
};

QuietLoud quiet_loud(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> half_to_one(0.5f, 1.0f);
  std::vector<float> w(64 * 32), x(300 * 64);
  for (int64_t k = 0; k < 64; ++k)
    for (int64_t n = 0; n < 32; ++n)
      w[static_cast<size_t>(k * 32 + n)] = (normal(rng) < 0 ? -1.0f : 1.0f) * half_to_one(rng) * (k < 32 ? 1.0f : 0.1f);
  for (int64_t r = 0; r < 300; ++r)
    for (int64_t k = 0; k < 64; ++k) x[static_cast<size_t>(r * 64 + k)] = normal(rng) * (k < 32 ? 0.001f : 1.0f);
  return {testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 64] x) => (float[N, 32] y) {
  y = MatMul (x, w)
}
)", {make_float_tensor("w", {64, 32}, w)}),
          eval::Tensor::floats({300, 64}, x)};
}

PassStats run_text(Model& m, const std::string& text) {
  return Pipeline::build(PassRegistry::builtin(), parse_pipeline_text(text)).run(m, {}).at(0).stats;
}

double relative_output_error(const Model& reference, const Model& candidate, const eval::Tensor& x) {
  const auto a = eval::Evaluator(reference).run({{"x", x}}).at("y").f;
  const auto b = eval::Evaluator(candidate).run({{"x", x}}).at("y").f;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += a[i] * a[i];
  }
  return std::sqrt(num / den);
}

TEST(PruneMagnitudeCalibrate, WeightsOnQuietInputsGoFirst) {
  const QuietLoud q = quiet_loud(3);
  const testing::SamplesDir dir("prune_wanda", {{"x", q.x}});
  Model plain = Model::from_proto(q.model.proto()), calibrated = Model::from_proto(q.model.proto());
  run_text(plain, "prune-magnitude:sparsity=0.5:min-elements=16");
  const PassStats stats = run_text(calibrated, "prune-magnitude:sparsity=0.5:min-elements=16:calibrate=" + dir.path());
  const auto w = to_floats(*find(calibrated, "w"));
  int64_t quiet_zeros = 0;
  for (size_t i = 0; i < w.size(); ++i) quiet_zeros += (i < 32 * 32 && w[i] == 0.0f);
  EXPECT_EQ(quiet_zeros, 1024);  // exactly the quiet half, the requested sparsity
  EXPECT_EQ(zeros(*find(calibrated, "w")), 1024);
  const double plain_error = relative_output_error(q.model, plain, q.x);
  const double calibrated_error = relative_output_error(q.model, calibrated, q.x);
  EXPECT_GT(plain_error, 0.9);  // the loud features' weights are gone
  EXPECT_LT(calibrated_error, plain_error / 10);
  EXPECT_EQ(stats.counters.at("calibrated"), 1);
  EXPECT_EQ(stats.layers.at(0)["calibrated"], true);
}

TEST(PruneMagnitudeCalibrate, GroupedConvReadsEachGroupsInputChannels) {
  // Two groups of 2 input channels; channel 1 of each group is quiet: every weight reading it goes.
  std::vector<float> w(4 * 2 * 3 * 3, 1.0f), x(20 * 4 * 5 * 5);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * ((i / 25) % 2 == 1 ? 0.01f : 1.0f);
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 4, 5, 5] x) => (float[N, 4, 3, 3] y) {
  y = Conv <group = 2> (x, w)
}
)", {make_float_tensor("w", {4, 2, 3, 3}, w)});
  const testing::SamplesDir dir("prune_wanda_conv", {{"x", eval::Tensor::floats({20, 4, 5, 5}, x)}});
  run_text(m, "prune-magnitude:sparsity=0.5:min-elements=16:calibrate=" + dir.path());
  const auto pruned = to_floats(*find(m, "w"));
  for (size_t i = 0; i < pruned.size(); ++i) EXPECT_EQ(pruned[i] == 0.0f, (i / 9) % 2 == 1) << "element " << i;
}

TEST(PruneMagnitudeCalibrate, GlobalScopeIsAUsageError) {
  const QuietLoud q = quiet_loud(4);
  const testing::SamplesDir dir("prune_wanda_global", {{"x", q.x}});
  Model m = Model::from_proto(q.model.proto());
  try {
    run_text(m, "prune-magnitude:scope=global:min-elements=16:calibrate=" + dir.path());
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
  }
}

}  // namespace
}  // namespace compress
