#include <compress/error.h>
#include <compress/evaluator.h>
#include <compress/model.h>
#include <compress/pipeline.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <map>
#include <random>

#include "passes/activation_probe.h"
#include "passes/low_rank_svd.h"
#include "passes/weights.h"
#include "testing/builders.h"

namespace compress {
namespace {

using testing::count_nodes;
using testing::find_initializer;

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Float32 factors of an exactly low-rank matrix reproduce it to float rounding.
constexpr double kExactTolerance = 1e-5;

PassStats run_low_rank(Model& model, const std::string& options = "") {
  const Pipeline pipeline = Pipeline::build(PassRegistry::builtin(), parse_pipeline_text("low-rank" + options));
  return pipeline.run(model, {}).at(0).stats;
}

Eigen::MatrixXf gaussian(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Eigen::MatrixXf m(rows, cols);
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t i = 0; i < rows; ++i) m(i, j) = dist(rng);
  return m;
}

Eigen::MatrixXf orthonormal(int64_t rows, int64_t cols, uint32_t seed) {
  Eigen::HouseholderQR<Eigen::MatrixXf> qr(gaussian(rows, cols, seed));
  return qr.householderQ() * Eigen::MatrixXf::Identity(rows, cols);
}

// U diag(s) V^T with orthonormal U, V.
Eigen::MatrixXf with_spectrum(int64_t rows, int64_t cols, const Eigen::VectorXf& s, uint32_t seed) {
  return orthonormal(rows, s.size(), seed) * s.asDiagonal() * orthonormal(cols, s.size(), seed + 1).transpose();
}

TensorProto tensor_of(const std::string& name, const Eigen::MatrixXf& m, std::vector<int64_t> dims = {}) {
  const RowMajorF row_major = m;
  if (dims.empty()) dims = {m.rows(), m.cols()};
  return make_float_tensor(name, dims, std::span<const float>(row_major.data(), static_cast<size_t>(m.size())));
}

Eigen::MatrixXf matrix_of(const TensorProto& t) {
  const std::vector<float> v = to_floats(t);
  const int64_t rows = t.dims(0);
  return Eigen::Map<const RowMajorF>(v.data(), rows, static_cast<int64_t>(v.size()) / rows);
}

// Evaluates a graph of MatMul / Add / Gemm nodes on 2-D values (Add broadcasts a row vector).
Eigen::MatrixXf evaluate(const onnx::GraphProto& g, const std::map<std::string, Eigen::MatrixXf>& inputs) {
  std::map<std::string, Eigen::MatrixXf> values = inputs;
  for (const auto& t : g.initializer()) {
    Eigen::MatrixXf m = t.dims_size() == 1 ? Eigen::MatrixXf(matrix_of(t).transpose()) : matrix_of(t);
    values[t.name()] = m;
  }
  for (const auto& node : g.node()) {
    const Eigen::MatrixXf& a = values.at(node.input(0));
    const Eigen::MatrixXf& b = values.at(node.input(1));
    if (node.op_type() == "MatMul") {
      values[node.output(0)] = a * b;
    } else if (node.op_type() == "Add") {
      values[node.output(0)] = b.rows() == 1 ? Eigen::MatrixXf(a.rowwise() + b.row(0)) : Eigen::MatrixXf(a + b);
    } else if (node.op_type() == "Gemm") {
      const float alpha = float_attribute(node, "alpha", 1), beta = float_attribute(node, "beta", 1);
      Eigen::MatrixXf y = alpha * a * (int_attribute(node, "transB", 0) ? Eigen::MatrixXf(b.transpose()) : b);
      if (node.input_size() > 2) y.rowwise() += beta * values.at(node.input(2)).row(0);
      values[node.output(0)] = y;
    } else {
      ADD_FAILURE() << "unexpected op " << node.op_type();
    }
  }
  return values.at(g.output(0).name());
}

double relative_error(const Eigen::MatrixXf& a, const Eigen::MatrixXf& b) { return (a - b).norm() / a.norm(); }

std::vector<std::string> op_types(const onnx::GraphProto& g) {
  std::vector<std::string> ops;
  for (const auto& n : g.node()) ops.push_back(n.op_type());
  return ops;
}

const char* kMatMul64x48 = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[3, 64] x) => (float[3, 48] y) {
  y = MatMul(x, w)
}
)";

TEST(LowRank, RecoversExactlyLowRankWeightAtItsRank) {
  const Eigen::MatrixXf w = gaussian(64, 5, 1) * gaussian(5, 48, 2);
  Model model = testing::model_with_weights(kMatMul64x48, {tensor_of("w", w)});
  const Eigen::MatrixXf x = gaussian(3, 64, 3);
  const Eigen::MatrixXf expected = evaluate(model.proto().graph(), {{"x", x}});

  const PassStats stats = run_low_rank(model, ":rank=5:round-to=1:min-elements=0");
  model.check();
  const auto& g = model.proto().graph();
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"MatMul", "MatMul"}));
  EXPECT_EQ(find_initializer(g, "w"), nullptr);  // the original weight is gone
  ASSERT_EQ(g.initializer_size(), 2);
  const Eigen::MatrixXf a = matrix_of(g.initializer(0)), b = matrix_of(g.initializer(1));
  EXPECT_EQ(a.rows(), 64);
  EXPECT_EQ(a.cols(), 5);
  EXPECT_EQ(b.rows(), 5);
  EXPECT_EQ(b.cols(), 48);
  EXPECT_LT(relative_error(w, a * b), kExactTolerance);
  EXPECT_LT(relative_error(expected, evaluate(g, {{"x", x}})), kExactTolerance);

  EXPECT_EQ(stats.counters.at("factorized"), 1);
  const auto& layer = stats.layers.at(0);
  EXPECT_EQ(layer["rank"], 5);
  EXPECT_EQ(layer["params_before"], 64 * 48);
  EXPECT_EQ(layer["params_after"], 5 * (64 + 48));
  EXPECT_LT(layer["relative_error"].get<double>(), kExactTolerance);
  EXPECT_NEAR(layer["energy_kept"].get<double>(), 1.0, 1e-6);
  EXPECT_EQ(layer["svd"], "bdcsvd");
}

TEST(LowRank, RoundToRoundsRankUpButNotAboveMinDim) {
  Model model = testing::model_with_weights(kMatMul64x48, {tensor_of("w", gaussian(64, 5, 1) * gaussian(5, 48, 2))});
  const PassStats stats = run_low_rank(model, ":rank=5:min-elements=0");  // round-to 8
  EXPECT_EQ(stats.layers.at(0)["rank"], 8);
  Model wide = testing::model_with_weights(kMatMul64x48, {tensor_of("w", gaussian(64, 48, 4))});
  const PassStats capped = run_low_rank(wide, ":rank=47:round-to=16:min-elements=0:max-param-ratio=1");
  // 48 (K + N) > K N: the rank is capped at min(K, N) = 48, which does not pay and is reported.
  EXPECT_EQ(capped.counters.at("skipped.param_ratio_too_high"), 1);
  EXPECT_EQ(capped.layers.at(0)["rank"], 48);
  EXPECT_NEAR(capped.layers.at(0)["would_be_param_ratio"].get<double>(), 48.0 * 112 / (64 * 48), 1e-12);
}

TEST(LowRank, EnergySelectsRankFromKnownSpectrum) {
  // s_i = 2^-i: the first r values keep (1 - 4^-r) / (1 - 4^-48) of the energy.
  Eigen::VectorXf s(48);
  for (int i = 0; i < 48; ++i) s[i] = std::pow(2.0f, -static_cast<float>(i));
  const Eigen::MatrixXf w = with_spectrum(64, 48, s, 7);
  const auto kept = [](int r) { return (1 - std::pow(4.0, -r)) / (1 - std::pow(4.0, -48)); };
  for (const auto& [energy, rank] : std::vector<std::pair<std::string, int>>{{"0.99", 4}, {"0.999", 5}, {"0.9", 2}}) {
    Model model = testing::model_with_weights(kMatMul64x48, {tensor_of("w", w)});
    const PassStats stats = run_low_rank(model, ":energy=" + energy + ":round-to=1:min-elements=0");
    ASSERT_EQ(stats.counters.count("factorized"), 1u) << energy;
    const auto& layer = stats.layers.at(0);
    EXPECT_EQ(layer["rank"], rank) << energy;
    EXPECT_NEAR(layer["energy_kept"].get<double>(), kept(rank), 1e-6) << energy;
    // Eckart-Young: the error is exactly the energy left out.
    EXPECT_NEAR(layer["relative_error"].get<double>(), std::sqrt(1 - kept(rank)), 1e-4) << energy;
  }
}

TEST(LowRank, RankWinsOverRankRatioWhichWinsOverEnergy) {
  const Eigen::MatrixXf w = gaussian(64, 48, 5);
  Model a = testing::model_with_weights(kMatMul64x48, {tensor_of("w", w)});
  EXPECT_EQ(run_low_rank(a, ":rank=3:rank-ratio=0.5:energy=0.99:round-to=1:min-elements=0").layers.at(0)["rank"], 3);
  Model b = testing::model_with_weights(kMatMul64x48, {tensor_of("w", w)});
  // ceil(0.1 x 48) = 5
  EXPECT_EQ(run_low_rank(b, ":rank-ratio=0.1:energy=0.99:round-to=1:min-elements=0").layers.at(0)["rank"], 5);
}

TEST(LowRank, RandomizedSvdMatchesBdcsvdOnDecayingSpectrum) {
  Eigen::VectorXf s(200);
  for (int i = 0; i < 200; ++i) s[i] = std::pow(0.9f, static_cast<float>(i));
  const Eigen::MatrixXf m = with_spectrum(300, 200, s, 11);
  const Svd exact = exact_svd(m);
  const Svd fast = randomized_svd(m, 20, 16, 2);
  ASSERT_EQ(fast.s.size(), 20);
  EXPECT_TRUE(fast.randomized);
  EXPECT_NEAR(fast.total_energy, exact.total_energy, 1e-6 * exact.total_energy);
  for (int i = 0; i < 20; ++i) EXPECT_NEAR(fast.s[i], exact.s[i], 1e-4 * exact.s[0]) << i;
  const auto approx = [&](const Svd& svd) {
    return Eigen::MatrixXf(svd.u.leftCols(20) * svd.s.head(20).cast<float>().asDiagonal() *
                           svd.v.leftCols(20).transpose());
  };
  const double optimal = relative_error(m, approx(exact));
  EXPECT_NEAR(optimal, std::sqrt(1 - exact.s.head(20).squaredNorm() / exact.total_energy), 1e-5);
  EXPECT_LT(relative_error(m, approx(fast)), optimal * 1.001);
}

TEST(LowRank, SingularValuesOnlyMatchTheSvdForTallAndWideMatrices) {
  Eigen::VectorXf s(40);
  for (int i = 0; i < 40; ++i) s[i] = std::pow(0.8f, static_cast<float>(i));
  for (const auto& m : {with_spectrum(90, 40, s, 3), Eigen::MatrixXf(with_spectrum(90, 40, s, 4).transpose())}) {
    const Svd exact = exact_svd(m);
    const Svd cheap = singular_values_only(m);
    ASSERT_EQ(cheap.s.size(), 40);
    EXPECT_EQ(cheap.u.size(), 0);  // no factor formed
    EXPECT_NEAR(cheap.total_energy, exact.total_energy, 1e-9 * exact.total_energy);
    for (int i = 0; i < 40; ++i) EXPECT_NEAR(cheap.s[i], exact.s[i], 1e-5 * exact.s[0]) << i;
    for (double energy : {0.5, 0.9, 0.99}) EXPECT_EQ(rank_for_energy(cheap, energy), rank_for_energy(exact, energy));
  }
}

TEST(LowRank, PassUsesRandomizedSvdAboveThresholdAndEnergyStillWorks) {
  Eigen::VectorXf s(48);
  for (int i = 0; i < 48; ++i) s[i] = std::pow(2.0f, -static_cast<float>(i));
  Model model = testing::model_with_weights(kMatMul64x48, {tensor_of("w", with_spectrum(64, 48, s, 7))});
  const PassStats stats =
      run_low_rank(model, ":energy=0.999:round-to=1:min-elements=0:randomized-above=16:oversample=8");
  model.check();
  const auto& layer = stats.layers.at(0);
  EXPECT_EQ(layer["svd"], "randomized");
  EXPECT_EQ(layer["rank"], 5);
}

TEST(LowRank, MaxParamRatioLeavesLayerAloneAndReportsWouldBeRatio) {
  Model model = testing::model_with_weights(kMatMul64x48, {tensor_of("w", gaussian(64, 48, 9))});
  const std::string before = model.serialize();
  const PassStats stats = run_low_rank(model, ":energy=0.95:min-elements=0");
  EXPECT_EQ(model.serialize(), before);
  EXPECT_EQ(stats.counters.at("skipped.param_ratio_too_high"), 1);
  EXPECT_EQ(stats.counters.count("factorized"), 0u);
  const auto& layer = stats.layers.at(0);
  EXPECT_EQ(layer["skipped"], "param_ratio_too_high");
  const int64_t rank = layer["rank"];
  EXPECT_GT(rank * (64 + 48), 0.8 * 64 * 48);
  // The skip is decided from the singular values alone, at the exact rank the energy asks for
  // (rounded up to round-to=8), not at a lower bound from a partial sketch.
  EXPECT_EQ(rank, (rank_for_energy(exact_svd(gaussian(64, 48, 9)), 0.95) + 7) / 8 * 8);
  EXPECT_NEAR(layer["would_be_param_ratio"].get<double>(), rank * 112.0 / (64 * 48), 1e-12);
}

TEST(LowRank, GemmWithTransBAlphaBetaBecomesMatMulMatMulAdd) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[4, 40] x) => (float[4, 32] y) {
  y = Gemm<transB = 1, alpha = 0.5, beta = 2.0>(x, w, c)
}
)";
  const Eigen::MatrixXf w = gaussian(32, 3, 21) * gaussian(3, 40, 22);  // stored [N, K]
  Model model = testing::model_with_weights(text, {tensor_of("w", w), tensor_of("c", gaussian(1, 32, 23), {32})});
  const Eigen::MatrixXf x = gaussian(4, 40, 24);
  const Eigen::MatrixXf expected = evaluate(model.proto().graph(), {{"x", x}});

  const PassStats stats = run_low_rank(model, ":rank=3:round-to=1:min-elements=0");
  model.check();
  const auto& g = model.proto().graph();
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"MatMul", "MatMul", "Add"}));
  EXPECT_EQ(find_initializer(g, "w"), nullptr);
  EXPECT_EQ(find_initializer(g, "c"), nullptr);  // replaced by beta c
  EXPECT_EQ(g.node(2).output(0), "y");
  EXPECT_LT(relative_error(expected, evaluate(g, {{"x", x}})), kExactTolerance);
  EXPECT_EQ(stats.layers.at(0)["shape"], nlohmann::json({40, 32}));  // K x N
}

TEST(LowRank, GemmWithoutBiasAndDynamicBiasWithUnitBeta) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[4, 40] x, float[32] c) => (float[4, 32] y) {
  y = Gemm(x, w, c)
}
)";
  const Eigen::MatrixXf w = gaussian(40, 2, 31) * gaussian(2, 32, 32);
  Model model = testing::model_with_weights(text, {tensor_of("w", w)});
  const Eigen::MatrixXf x = gaussian(4, 40, 33), c = gaussian(1, 32, 34);
  const Eigen::MatrixXf expected = evaluate(model.proto().graph(), {{"x", x}, {"c", c}});
  run_low_rank(model, ":rank=2:round-to=1:min-elements=0");
  model.check();
  EXPECT_EQ(op_types(model.proto().graph()), (std::vector<std::string>{"MatMul", "MatMul", "Add"}));
  EXPECT_LT(relative_error(expected, evaluate(model.proto().graph(), {{"x", x}, {"c", c}})), kExactTolerance);
}

// Naive NCHW convolution of one image, group 1: the reference for the factorized pair.
struct ConvAttrs {
  int stride = 1, pad = 0, dilation = 1;
};
std::vector<float> conv2d(const std::vector<float>& x, int cin, int h, int w, const std::vector<float>& weight,
                          int cout, int kh, int kw, const std::vector<float>& bias, ConvAttrs a, int& oh, int& ow) {
  oh = (h + 2 * a.pad - a.dilation * (kh - 1) - 1) / a.stride + 1;
  ow = (w + 2 * a.pad - a.dilation * (kw - 1) - 1) / a.stride + 1;
  std::vector<float> y(static_cast<size_t>(cout * oh * ow));
  for (int co = 0; co < cout; ++co)
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        double acc = bias.empty() ? 0 : bias[co];
        for (int ci = 0; ci < cin; ++ci)
          for (int p = 0; p < kh; ++p)
            for (int q = 0; q < kw; ++q) {
              const int yy = i * a.stride - a.pad + p * a.dilation, xx = j * a.stride - a.pad + q * a.dilation;
              if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
              acc += static_cast<double>(weight[((co * cin + ci) * kh + p) * kw + q]) * x[(ci * h + yy) * w + xx];
            }
        y[(co * oh + i) * ow + j] = static_cast<float>(acc);
      }
  return y;
}

ConvAttrs conv_attrs(const NodeProto& node) {
  ConvAttrs a;
  for (const auto& attr : node.attribute()) {
    if (attr.name() == "strides") a.stride = static_cast<int>(attr.ints(0));
    if (attr.name() == "pads") a.pad = static_cast<int>(attr.ints(0));
    if (attr.name() == "dilations") a.dilation = static_cast<int>(attr.ints(0));
  }
  return a;
}

TEST(LowRank, ConvAtTheWeightsRankPreservesOutputs) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 8, 9, 9] x) => (float[1, 16, 5, 5] y) {
  y = Conv<strides = [2, 2], pads = [1, 1, 1, 1], dilations = [1, 1], kernel_shape = [3, 3]>(x, w, b)
}
)";
  const Eigen::MatrixXf w = gaussian(16, 4, 41) * gaussian(4, 72, 42);  // [Cout, Cin kh kw] of rank 4
  const Eigen::MatrixXf bias = gaussian(1, 16, 43);
  Model model = testing::model_with_weights(text, {tensor_of("w", w, {16, 8, 3, 3}), tensor_of("b", bias, {16})});
  const PassStats stats = run_low_rank(model, ":rank=4:round-to=1:min-elements=0");
  model.check();
  const auto& g = model.proto().graph();
  ASSERT_EQ(op_types(g), (std::vector<std::string>{"Conv", "Conv"}));
  const NodeProto& first = g.node(0);
  const NodeProto& second = g.node(1);
  EXPECT_EQ(first.input(0), "x");
  EXPECT_EQ(first.input_size(), 2);  // the bias moved to the 1x1 conv
  EXPECT_EQ(second.input(2), "b");
  EXPECT_EQ(second.output(0), "y");
  const TensorProto* w1 = find_initializer(g, first.input(1));
  const TensorProto* w2 = find_initializer(g, second.input(1));
  ASSERT_TRUE(w1 && w2);
  EXPECT_EQ(std::vector<int64_t>(w1->dims().begin(), w1->dims().end()), (std::vector<int64_t>{4, 8, 3, 3}));
  EXPECT_EQ(std::vector<int64_t>(w2->dims().begin(), w2->dims().end()), (std::vector<int64_t>{16, 4, 1, 1}));
  EXPECT_EQ(stats.layers.at(0)["params_after"], 4 * (16 + 72));

  const Eigen::MatrixXf x = gaussian(1, 8 * 9 * 9, 44);
  const std::vector<float> xv(x.data(), x.data() + x.size());
  const RowMajorF wr = w;
  const std::vector<float> wv(wr.data(), wr.data() + wr.size()), bv(bias.data(), bias.data() + bias.size());
  int oh = 0, ow = 0, mh = 0, mw = 0, th = 0, tw = 0;
  const std::vector<float> expected = conv2d(xv, 8, 9, 9, wv, 16, 3, 3, bv, {2, 1, 1}, oh, ow);
  const std::vector<float> mid = conv2d(xv, 8, 9, 9, to_floats(*w1), 4, 3, 3, {}, conv_attrs(first), mh, mw);
  const std::vector<float> got = conv2d(mid, 4, mh, mw, to_floats(*w2), 16, 1, 1, bv, conv_attrs(second), th, tw);
  ASSERT_EQ(oh, 5);
  ASSERT_EQ(th, oh);
  ASSERT_EQ(tw, ow);
  const Eigen::Map<const Eigen::VectorXf> e(expected.data(), static_cast<int64_t>(expected.size()));
  const Eigen::Map<const Eigen::VectorXf> o(got.data(), static_cast<int64_t>(got.size()));
  EXPECT_LT((e - o).norm() / e.norm(), kExactTolerance);
}

TEST(LowRank, SharedWeightIsFactorizedOnceForBothReaders) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[3, 64] x, float[3, 64] z) => (float[3, 48] y, float[3, 48] u) {
  y = MatMul(x, w)
  u = MatMul(z, w)
}
)";
  Model model = testing::model_with_weights(text, {tensor_of("w", gaussian(64, 5, 1) * gaussian(5, 48, 2))});
  const PassStats stats = run_low_rank(model, ":rank=5:round-to=1:min-elements=0");
  model.check();
  const auto& g = model.proto().graph();
  EXPECT_EQ(g.node_size(), 4);
  EXPECT_EQ(g.initializer_size(), 2);  // one pair of factors, the original removed
  EXPECT_EQ(stats.counters.at("factorized"), 2);
  EXPECT_EQ(stats.layers.at(0)["nodes"].size(), 2u);
}

TEST(LowRank, WeightInConstantNodeIsFactorizedAndTheConstantRemoved) {
  Model model = testing::model_with_weights(kMatMul64x48, {});
  NodeProto constant;
  constant.set_op_type("Constant");
  constant.add_output("w");
  auto* attr = constant.add_attribute();
  attr->set_name("value");
  attr->set_type(onnx::AttributeProto::TENSOR);
  *attr->mutable_t() = tensor_of("w", gaussian(64, 5, 1) * gaussian(5, 48, 2));
  auto* nodes = model.proto().mutable_graph()->mutable_node();
  *nodes->Add() = constant;
  nodes->SwapElements(0, 1);
  model.invalidate();
  model.check();
  run_low_rank(model, ":rank=5:round-to=1:min-elements=0");
  model.check();
  EXPECT_EQ(op_types(model.proto().graph()), (std::vector<std::string>{"MatMul", "MatMul"}));
}

TEST(LowRank, WeightInsideIfSubgraph) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool cond, float[3, 64] x) => (float[3, 48] y) {
  y = If(cond) <then_branch = then_g () => (float[3, 48] t) { t = MatMul(x, wi) },
                else_branch = else_g () => (float[3, 48] e) { e = MatMul(x, wi2) }>
}
)";
  Model model = Model::parse_text(text);
  auto* if_node = model.proto().mutable_graph()->mutable_node(0);
  for (auto& attr : *if_node->mutable_attribute()) {
    const std::string name = attr.name() == "then_branch" ? "wi" : "wi2";
    *attr.mutable_g()->add_initializer() = tensor_of(name, gaussian(64, 5, 1) * gaussian(5, 48, 2));
  }
  model.invalidate();
  model.check();
  const PassStats stats = run_low_rank(model, ":rank=5:round-to=1:min-elements=0");
  model.check();
  EXPECT_EQ(stats.counters.at("factorized"), 2);
  for (const auto& attr : model.proto().graph().node(0).attribute()) {
    EXPECT_EQ(attr.g().node_size(), 2);
    EXPECT_EQ(attr.g().initializer_size(), 2);
  }
}

// Each skip reason leaves the model as it was and is counted.
struct SkipCase {
  std::string name;
  std::string text;
  std::vector<TensorProto> weights;
  std::string options;
  std::string reason;
};

TEST(LowRank, SkipReasons) {
  const auto w = [](const std::string& name, int64_t rows, int64_t cols) {
    return tensor_of(name, gaussian(rows, 2, 51) * gaussian(2, cols, 52));
  };
  const std::string header = "<ir_version: 8, opset_import: [\"\" : 13]>\n";
  const std::vector<SkipCase> cases = {
      {"trans_a", header + "g (float[64, 3] x) => (float[3, 48] y) { y = Gemm<transA = 1>(x, w) }", {w("w", 64, 48)},
       ":rank=2", "gemm_trans_a"},
      {"dynamic_bias_beta",
       header + "g (float[3, 64] x, float[48] c) => (float[3, 48] y) { y = Gemm<beta = 0.5>(x, w, c) }",
       {w("w", 64, 48)}, ":rank=2", "gemm_dynamic_bias_with_beta"},
      {"grouped",
       header + "g (float[1, 16, 5, 5] x) => (float[1, 16, 3, 3] y) { y = Conv<group = 2>(x, w) }",
       {tensor_of("w", gaussian(16, 72, 53), {16, 8, 3, 3})}, ":rank=2", "grouped_conv"},
      {"shared_other_use",
       header + "g (float[3, 64] x) => (float[3, 48] y, float[64, 48] v) { y = MatMul(x, w)\n v = Identity(w) }",
       {w("w", 64, 48)}, ":rank=2", "shared_with_other_use"},
      {"mixed_use",
       header + "g (float[3, 64] x, float[3, 48] z) => (float[3, 48] y, float[3, 64] u) { y = MatMul(x, w)\n"
                "u = Gemm<transB = 1>(z, w) }",
       {w("w", 64, 48)}, ":rank=2", "shared_weight_mixed_use"},
      {"zero", header + "g (float[3, 64] x) => (float[3, 48] y) { y = MatMul(x, w) }",
       {tensor_of("w", Eigen::MatrixXf::Zero(64, 48))}, "", "weight_is_zero"},
      {"excluded", header + "g (float[3, 64] x) => (float[3, 48] y) { y = MatMul(x, w) }", {w("w", 64, 48)},
       ":rank=2:exclude=[MatMul]", "excluded"},
      {"too_small", header + "g (float[3, 64] x) => (float[3, 48] y) { y = MatMul(x, w) }", {w("w", 64, 48)},
       ":rank=2:min-elements=4096", "too_small"},
      {"param_ratio", header + "g (float[3, 64] x) => (float[3, 48] y) { y = MatMul(x, w) }", {w("w", 64, 48)},
       ":rank=2:max-param-ratio=0.05", "param_ratio_too_high"},
  };
  for (const auto& c : cases) {
    Model model = testing::model_with_weights(c.text, c.weights);
    model.check();
    const std::string before = model.serialize();
    std::string options = c.options;
    if (options.find("min-elements") == std::string::npos) options += ":min-elements=0";
    const PassStats stats = run_low_rank(model, options);
    EXPECT_EQ(model.serialize(), before) << c.name;
    EXPECT_GE(stats.counters.count("skipped." + c.reason), 1u) << c.name;
    EXPECT_EQ(stats.counters.count("factorized"), 0u) << c.name;
  }
}

const char* kIfReadingOuterWeight = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool cond, float[3, 64] x) => (float[3, 48] y, float[3, 48] z) {
  y = If(cond) <then_branch = then_g () => (float[3, 48] t) { t = MatMul(x, w) },
                else_branch = else_g () => (float[3, 48] e) { e = MatMul(x, w) }>
  z = MatMul(x, w)
}
)";

TEST(LowRank, WeightOfEnclosingGraphIsFactorizedOnceForAllScopes) {
  Model model = testing::model_with_weights(kIfReadingOuterWeight,
                                            {tensor_of("w", gaussian(64, 5, 1) * gaussian(5, 48, 2))});
  const PassStats stats = run_low_rank(model, ":rank=5:round-to=1:min-elements=0");
  model.check();
  EXPECT_EQ(stats.counters.at("factorized"), 3);
  const auto& g = model.proto().graph();
  ASSERT_EQ(g.initializer_size(), 2);  // the factors live where the weight lived; w is gone
  EXPECT_EQ(find_initializer(g, "w"), nullptr);
  EXPECT_EQ(op_types(g), (std::vector<std::string>{"If", "MatMul", "MatMul"}));
  for (const auto& attr : g.node(0).attribute()) {
    ASSERT_EQ(attr.g().node_size(), 2);
    EXPECT_EQ(attr.g().node(0).input(1), g.initializer(0).name());
    EXPECT_EQ(attr.g().node(1).input(1), g.initializer(1).name());
  }
}

TEST(LowRank, WeightOfEnclosingGraphWithAnotherReaderInsideIsSkipped) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool cond, float[3, 64] x) => (float[3, 48] y) {
  y = If(cond) <then_branch = then_g () => (float[3, 48] t) { t = MatMul(x, w) },
                else_branch = else_g () => (float[64, 48] e) { e = Identity(w) }>
}
)";
  Model model = testing::model_with_weights(text, {tensor_of("w", gaussian(64, 5, 1) * gaussian(5, 48, 2))});
  const std::string before = model.serialize();
  const PassStats stats = run_low_rank(model, ":rank=5:min-elements=0");
  EXPECT_EQ(model.serialize(), before);
  EXPECT_EQ(stats.counters.at("skipped.shared_with_other_use"), 1);
}

TEST(LowRank, SameInputGivesIdenticalBytes) {
  const auto make = [] {
    return testing::model_with_weights(kMatMul64x48, {tensor_of("w", gaussian(64, 48, 61))});
  };
  Model a = make(), b = make();
  run_low_rank(a, ":rank=8:min-elements=0:randomized-above=16:oversample=4");
  run_low_rank(b, ":rank=8:min-elements=0:randomized-above=16:oversample=4");
  EXPECT_EQ(a.serialize(), b.serialize());
  EXPECT_EQ(op_types(a.proto().graph()).size(), 2u);
}

TEST(LowRank, AllSelectionModesZeroIsAUsageError) {
  Model model = testing::model_with_weights(kMatMul64x48, {tensor_of("w", gaussian(64, 48, 61))});
  try {
    run_low_rank(model, ":energy=0");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
  }
}

// calibrate: samples X = Z P + noise lie near a d-dimensional subspace of the K inputs.
eval::Tensor subspace_samples(int64_t n, int64_t k, int64_t d, float noise, uint32_t seed) {
  const Eigen::MatrixXf x = gaussian(n, d, seed) * gaussian(d, k, seed + 1) + noise * gaussian(n, k, seed + 2);
  const RowMajorF rm = x;
  return eval::Tensor::floats({n, k}, std::vector<float>(rm.data(), rm.data() + rm.size()));
}

Eigen::MatrixXf rows_of(const eval::Tensor& t) {
  return Eigen::Map<const RowMajorF>(t.f.data(), t.dims[0], t.numel() / t.dims[0]);
}

// Output of `model` on the samples through the built-in evaluator.
Eigen::MatrixXf outputs_on(const Model& model, const eval::Tensor& x) {
  const eval::Evaluator ev(model);
  eval::TensorMap out = ev.run({{"x", x}});
  return rows_of(out.at(ev.output_names().at(0)));
}

const char* kMatMul64x64 = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 64] x) => (float[N, 64] y) {
  y = MatMul(x, w)
}
)";

TEST(LowRankCalibrate, WhiteningCutsOutputErrorFarBelowPlainSvdAtTheSameRank) {
  const Eigen::MatrixXf w = gaussian(64, 64, 7);
  const eval::Tensor x = subspace_samples(300, 64, 6, 0.05f, 11);
  const testing::SamplesDir dir("lowrank_whiten", {{"x", x}});
  Model plain = testing::model_with_weights(kMatMul64x64, {tensor_of("w", w)});
  Model calibrated = testing::model_with_weights(kMatMul64x64, {tensor_of("w", w)});
  const Eigen::MatrixXf expected = outputs_on(plain, x);
  run_low_rank(plain, ":rank=8:round-to=1:min-elements=0");
  const PassStats stats = run_low_rank(calibrated, ":rank=8:round-to=1:min-elements=0:calibrate=" + dir.path());
  calibrated.check();
  EXPECT_EQ(op_types(calibrated.proto().graph()), (std::vector<std::string>{"MatMul", "MatMul"}));
  const double plain_error = relative_error(expected, outputs_on(plain, x));
  const double calibrated_error = relative_error(expected, outputs_on(calibrated, x));
  // A dense Gaussian W keeps ~8/64 of its energy at rank 8 (plain error ~0.8); the data-aware factors
  // only lose the noise directions (error ~0.05 x sqrt(58/64) / signal), so at least 10x lower.
  EXPECT_GT(plain_error, 0.5);
  EXPECT_LT(calibrated_error, plain_error / 10);
  EXPECT_EQ(stats.counters.at("calibrated"), 1);
  const auto& layer = stats.layers.at(0);
  EXPECT_EQ(layer["calibrated"], true);
  EXPECT_EQ(layer["calibration_rows"], 300);
  EXPECT_NEAR(layer["output_relative_error"].get<double>(), calibrated_error, 1e-3);
  EXPECT_NEAR(layer["plain_output_relative_error"].get<double>(), plain_error, 1e-3);
  EXPECT_GT(layer["relative_error"].get<double>(), 0.5);  // the weight itself is approximated worse
}

TEST(LowRankCalibrate, ExactOnSamplesInARankDSubspaceAtRankD) {
  const Eigen::MatrixXf w = gaussian(64, 64, 8);
  const eval::Tensor x = subspace_samples(200, 64, 8, 0.0f, 21);
  const testing::SamplesDir dir("lowrank_exact", {{"x", x}});
  Model model = testing::model_with_weights(kMatMul64x64, {tensor_of("w", w)});
  const Eigen::MatrixXf expected = outputs_on(model, x);
  const PassStats stats = run_low_rank(model, ":energy=0.999999:round-to=1:min-elements=0:calibrate=" + dir.path());
  model.check();
  EXPECT_EQ(stats.layers.at(0)["rank"], 8);  // output energy sits in 8 directions
  EXPECT_LT(relative_error(expected, outputs_on(model, x)), 1e-3);  // the 1e-6 ridge and float32 factors
}

TEST(LowRankCalibrate, ConvUsesIm2colPatchesAndBeatsPlainSvd) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 16, 6, 6] x) => (float[N, 32, 3, 3] y) {
  y = Conv<pads = [1, 1, 1, 1], strides = [2, 2]>(x, w, b)
}
)";
  const auto make = [&] {
    return testing::model_with_weights(text, {testing::random_tensor("w", {32, 16, 3, 3}, 5),
                                              testing::random_tensor("b", {32}, 6)});
  };
  // Inputs whose 16 channels are multiples of one spatial pattern: patches span 9 directions.
  const Eigen::MatrixXf mix = gaussian(1, 16, 31);
  const Eigen::MatrixXf latent = gaussian(40 * 36, 1, 32);  // (image, position) x 1
  std::vector<float> values(40 * 16 * 36);
  for (int64_t i = 0; i < 40; ++i)
    for (int64_t c = 0; c < 16; ++c)
      for (int64_t p = 0; p < 36; ++p) values[(i * 16 + c) * 36 + p] = latent.row(i * 36 + p).dot(mix.col(c));
  const eval::Tensor x = eval::Tensor::floats({40, 16, 6, 6}, values);
  const testing::SamplesDir dir("lowrank_conv", {{"x", x}});
  Model plain = make(), calibrated = make();
  const Eigen::MatrixXf expected = outputs_on(plain, x);
  run_low_rank(plain, ":rank=8:round-to=1:min-elements=0");
  {  // the im2col rows times the weight matrix are the Conv's outputs
    ConvPatches p;
    ASSERT_TRUE(conv_patches(calibrated.proto().graph().node(0), x.dims, {32, 16, 3, 3}, p));
    const Eigen::MatrixXf cols = im2col_rows(x, p, 0, 1);
    const Eigen::MatrixXf wm = matrix_of(*find_initializer(calibrated.proto().graph(), "w"));
    const Eigen::MatrixXf y = cols * wm.transpose();
    const eval::Evaluator ev(calibrated);
    const eval::Tensor out = ev.run({{"x", x}}).at("y");
    double err = 0;
    for (int64_t i = 0; i < 40; ++i) for (int64_t o = 0; o < 32; ++o) for (int64_t q = 0; q < 9; ++q)
      err = std::max<double>(err, std::abs(out.f[(i * 32 + o) * 9 + q] - y(i * 9 + q, o) - to_floats(*find_initializer(calibrated.proto().graph(), "b"))[o]));
    EXPECT_LT(err, 1e-3) << "im2col";
  }
  const PassStats stats = run_low_rank(calibrated, ":rank=8:round-to=1:min-elements=0:calibrate=" + dir.path());
  calibrated.check();
  EXPECT_EQ(op_types(calibrated.proto().graph()), (std::vector<std::string>{"Conv", "Conv"}));
  const double plain_error = relative_error(expected, outputs_on(plain, x));
  const double calibrated_error = relative_error(expected, outputs_on(calibrated, x));
  // Rank 8 keeps 8 of the 9 patch directions' output energy; plain keeps ~8/32 of a Gaussian W's.
  EXPECT_GT(plain_error, 0.5);
  EXPECT_LT(calibrated_error, plain_error / 3);
  EXPECT_EQ(stats.layers.at(0)["calibration_rows"], 40 * 9);
  EXPECT_NEAR(stats.layers.at(0)["output_relative_error"].get<double>(), calibrated_error, 2e-2);
}

TEST(LowRankCalibrate, SharedWeightPoolsTheInputsOfBothReaders) {
  Model model = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 64] x) => (float[N, 64] y) {
  a = MatMul(x, w)
  r = Neg(x)
  b = MatMul(r, w)
  y = Sub(a, b)
}
)", {tensor_of("w", gaussian(64, 64, 12))});
  const eval::Tensor x = subspace_samples(100, 64, 4, 0.0f, 41);
  const testing::SamplesDir dir("lowrank_shared", {{"x", x}});
  const Eigen::MatrixXf expected = outputs_on(model, x);
  const PassStats stats = run_low_rank(model, ":energy=0.999999:round-to=1:min-elements=0:calibrate=" + dir.path());
  model.check();
  EXPECT_EQ(stats.counters.at("calibrated"), 2);
  EXPECT_EQ(stats.layers.at(0)["calibration_rows"], 200);  // both readers' rows
  // x and -x span the same 4 directions: rank 4 is exact for both readers.
  EXPECT_EQ(stats.layers.at(0)["rank"], 4);
  EXPECT_LT(relative_error(expected, outputs_on(model, x)), 1e-3);
}

TEST(LowRankCalibrate, WeightInsideIfSubgraphFallsBackToPlainSvd) {
  Model model = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool c, float[N, 64] x) => (float[N, 64] y) {
  y = If(c) <then_branch = t () => (float[N, 64] ty) { ty = MatMul(x, w) },
             else_branch = e () => (float[N, 64] ey) { ey = Identity(x) }>
}
)", {tensor_of("w", gaussian(64, 64, 9))});
  const testing::SamplesDir dir("lowrank_if", {{"x", subspace_samples(10, 64, 4, 0.0f, 3)},
                                               {"c", eval::Tensor::ints({10}, std::vector<int64_t>(10, 1), onnx::TensorProto::BOOL)}});
  const PassStats stats = run_low_rank(model, ":rank=8:min-elements=0:calibrate=" + dir.path());
  model.check();
  EXPECT_EQ(stats.counters.at("factorized"), 1);
  EXPECT_EQ(stats.counters.at("calibrate_fallback.in_subgraph"), 1);
  EXPECT_EQ(stats.counters.count("calibrated"), 0u);
}

TEST(LowRankCalibrate, MissingInputSamplesAndMissingDirectoryAreUsageErrors) {
  Model model = testing::model_with_weights(kMatMul64x64, {tensor_of("w", gaussian(64, 64, 7))});
  const testing::SamplesDir dir("lowrank_wrong", {{"not_x", subspace_samples(4, 64, 2, 0.0f, 1)}});
  try {
    run_low_rank(model, ":rank=8:min-elements=0:calibrate=" + dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_STREQ(e.what(), "low-rank: calibrate: no samples for model input 'x'");
  }
  try {
    run_low_rank(model, ":calibrate=/no/such/dir");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
  }
  EXPECT_NE(find_initializer(model.proto().graph(), "w"), nullptr);  // untouched
}

}  // namespace
}  // namespace compress
