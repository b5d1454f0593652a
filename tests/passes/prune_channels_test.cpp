#include <compress/error.h>
#include <compress/evaluator.h>
#include <compress/model.h>
#include <compress/pass.h>
#include <compress/pipeline.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "passes/passes.h"
#include "testing/builders.h"

namespace compress {
namespace {

// Outputs on kept channels are the same computation in another order: float rounding only.
constexpr float kTolerance = 1e-4f;

struct Tensor {
  std::vector<int64_t> dims;
  std::vector<float> v;
  int64_t size() const {
    int64_t n = 1;
    for (auto d : dims) n *= d;
    return n;
  }
};

// A tiny reference evaluator for the ops the tests use (NCHW, stride 1, symmetric pads).
class Eval {
 public:
  explicit Eval(Model& m) {
    for (const auto& t : m.proto().graph().initializer()) values_[t.name()] = {{t.dims().begin(), t.dims().end()}, to_floats(t)};
    for (const auto& n : m.proto().graph().node())
      if (n.op_type() == "Constant") {
        const auto& t = n.attribute(0).t();
        values_[n.output(0)] = {{t.dims().begin(), t.dims().end()}, to_floats(t)};
      }
    model_ = &m;
  }
  Tensor run(const Tensor& x, const std::string& out) {
    values_[model_->proto().graph().input(0).name()] = x;
    for (const auto& n : model_->proto().graph().node()) {
      if (n.op_type() == "Constant") continue;
      values_[n.output(0)] = node(n);
    }
    return values_.at(out);
  }

 private:
  const Tensor& in(const onnx::NodeProto& n, int i) { return values_.at(n.input(i)); }
  static int64_t attr(const onnx::NodeProto& n, const std::string& name, int64_t fallback) {
    for (const auto& a : n.attribute())
      if (a.name() == name) return a.ints_size() ? a.ints(0) : a.i();
    return fallback;
  }
  Tensor node(const onnx::NodeProto& n) {
    const std::string& op = n.op_type();
    if (op == "Relu") {
      Tensor t = in(n, 0);
      for (auto& v : t.v) v = std::max(v, 0.0f);
      return t;
    }
    if (op == "Add" || op == "Mul") {  // same shape, or b broadcast along axis 1 ([C,1,1] / [C])
      Tensor a = in(n, 0);
      const Tensor& b = in(n, 1);
      const int64_t c = a.dims.size() > 1 ? a.dims[1] : a.dims[0];
      const int64_t inner = a.size() / a.dims[0] / c;
      for (int64_t i = 0; i < a.size(); ++i) {
        const float bv = b.size() == a.size() ? b.v[i] : b.size() == 1 ? b.v[0] : b.v[(i / inner) % c];
        a.v[i] = op == "Add" ? a.v[i] + bv : a.v[i] * bv;
      }
      return a;
    }
    if (op == "BatchNormalization") {
      Tensor t = in(n, 0);
      const auto &s = in(n, 1).v, &b = in(n, 2).v, &m = in(n, 3).v, &var = in(n, 4).v;
      const int64_t c = t.dims[1], inner = t.size() / t.dims[0] / c;
      for (int64_t i = 0; i < t.size(); ++i) {
        const int64_t k = (i / inner) % c;
        t.v[i] = (t.v[i] - m[k]) / std::sqrt(var[k] + 1e-5f) * s[k] + b[k];
      }
      return t;
    }
    if (op == "GlobalAveragePool") {
      const Tensor& x = in(n, 0);
      Tensor t{{x.dims[0], x.dims[1], 1, 1}, {}};
      const int64_t inner = x.dims[2] * x.dims[3];
      for (int64_t i = 0; i < x.dims[0] * x.dims[1]; ++i) {
        float s = 0;
        for (int64_t j = 0; j < inner; ++j) s += x.v[i * inner + j];
        t.v.push_back(s / static_cast<float>(inner));
      }
      return t;
    }
    if (op == "Flatten") {
      Tensor t = in(n, 0);
      t.dims = {t.dims[0], t.size() / t.dims[0]};
      return t;
    }
    if (op == "Concat") {  // axis 1 of NCHW
      const Tensor &a = in(n, 0), &b = in(n, 1);
      Tensor t{a.dims, {}};
      t.dims[1] += b.dims[1];
      const int64_t inner = a.dims[2] * a.dims[3];
      for (int64_t i = 0; i < a.dims[0]; ++i) {
        t.v.insert(t.v.end(), a.v.begin() + i * a.dims[1] * inner, a.v.begin() + (i + 1) * a.dims[1] * inner);
        t.v.insert(t.v.end(), b.v.begin() + i * b.dims[1] * inner, b.v.begin() + (i + 1) * b.dims[1] * inner);
      }
      return t;
    }
    if (op == "MatMul" || op == "Gemm") {
      const Tensor &a = in(n, 0), &w = in(n, 1);
      const bool tb = op == "Gemm" && attr(n, "transB", 0);
      const int64_t m = a.dims[0], k = a.dims[1], nn = tb ? w.dims[0] : w.dims[1];
      Tensor t{{m, nn}, std::vector<float>(static_cast<size_t>(m * nn), 0.0f)};
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < nn; ++j) {
          float s = 0;
          for (int64_t q = 0; q < k; ++q) s += a.v[i * k + q] * (tb ? w.v[j * k + q] : w.v[q * nn + j]);
          if (op == "Gemm" && n.input_size() > 2) s += in(n, 2).v[j];
          t.v[i * nn + j] = s;
        }
      return t;
    }
    if (op == "Conv") {
      const Tensor &x = in(n, 0), &w = in(n, 1);
      const int64_t group = attr(n, "group", 1), pad = attr(n, "pads", 0);
      const int64_t N = x.dims[0], C = x.dims[1], H = x.dims[2], W = x.dims[3];
      const int64_t O = w.dims[0], cg = w.dims[1], kh = w.dims[2], kw = w.dims[3];
      const int64_t oh = H + 2 * pad - kh + 1, ow = W + 2 * pad - kw + 1;
      Tensor t{{N, O, oh, ow}, std::vector<float>(static_cast<size_t>(N * O * oh * ow), 0.0f)};
      const int64_t opg = O / group;
      for (int64_t b = 0; b < N; ++b)
        for (int64_t o = 0; o < O; ++o)
          for (int64_t y = 0; y < oh; ++y)
            for (int64_t z = 0; z < ow; ++z) {
              float s = n.input_size() > 2 ? in(n, 2).v[o] : 0.0f;
              for (int64_t c = 0; c < cg; ++c) {
                const int64_t ci = (o / opg) * cg + c;
                for (int64_t i = 0; i < kh; ++i)
                  for (int64_t j = 0; j < kw; ++j) {
                    const int64_t yy = y + i - pad, zz = z + j - pad;
                    if (yy < 0 || zz < 0 || yy >= H || zz >= W) continue;
                    s += x.v[((b * C + ci) * H + yy) * W + zz] * w.v[((o * cg + c) * kh + i) * kw + j];
                  }
              }
              t.v[((b * O + o) * oh + y) * ow + z] = s;
            }
      return t;
    }
    throw std::runtime_error("eval: op " + op);
  }

  Model* model_ = nullptr;
  std::map<std::string, Tensor> values_;
};

PassStats run_pass(Model& m, std::map<std::string, std::string> options = {}) {
  auto pass = make_prune_channels_pass();
  std::map<std::string, std::string> values = {{"ratio", "0.25"}, {"scope", "layer"}, {"max-ratio", "0.75"},
                                               {"criterion", "l1"}, {"round-to", "1"}, {"exclude", "[]"},
                                               {"compensate", "true"}, {"offset-estimate", "bn-stats"}};
  for (auto& [k, v] : options) values[k] = v;
  return pass->run(m, PassContext(PassOptions(values), {}));
}

// A random tensor whose slices `zero` along axis 0 (or `axis`) are zero.
TensorProto weight(const std::string& name, const std::vector<int64_t>& dims, uint32_t seed,
                   const std::vector<int64_t>& zero, int64_t axis = 0, float offset = 0.0f) {
  TensorProto t = testing::random_tensor(name, dims, seed);
  auto v = to_floats(t);
  int64_t inner = 1;
  for (size_t d = axis + 1; d < dims.size(); ++d) inner *= dims[d];
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] += offset;
    const int64_t c = (static_cast<int64_t>(i) / inner) % dims[axis];
    if (std::find(zero.begin(), zero.end(), c) != zero.end()) v[i] = 0.0f;
  }
  return make_float_tensor(name, dims, v);
}

std::vector<int64_t> dims(Model& m, const std::string& name) {
  for (const auto& t : m.proto().graph().initializer())
    if (t.name() == name) return {t.dims().begin(), t.dims().end()};
  return {};
}

Tensor input(const std::vector<int64_t>& d, uint32_t seed) {
  auto t = testing::random_tensor("x", d, seed);
  return {d, to_floats(t)};
}

void expect_close(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.dims, b.dims);
  for (size_t i = 0; i < a.v.size(); ++i) ASSERT_NEAR(a.v[i], b.v[i], kTolerance) << i;
}

TEST(PruneChannels, ConvBnReluConvRemovesZeroChannelsExactly) {
  // Channels 1 and 5 of conv1 are zero with zero bias and BN beta/mean: they contribute nothing.
  auto bn_zero = [](const std::string& name, std::vector<float> v) { return make_float_tensor(name, {8}, v); };
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 5, 5] x) => (float[1, 4, 5, 5] y) {
  c1 = Conv <pads = [1, 1, 1, 1]> (x, w1, b1)
  n1 = BatchNormalization (c1, s, beta, mean, var)
  r1 = Relu (n1)
  y = Conv (r1, w2)
}
)",
                                        {weight("w1", {8, 2, 3, 3}, 1, {1, 5}), weight("b1", {8}, 2, {1, 5}),
                                         bn_zero("s", {1, 2, 1, 1, 1, 1.5, 1, 1}),
                                         bn_zero("beta", {0.1f, 0, 0.2f, 0.1f, 0, 0, 0.3f, 0}),
                                         bn_zero("mean", {0.1f, 0, 0.1f, 0, 0.2f, 0, 0, 0.1f}),
                                         bn_zero("var", {1, 2, 1, 1, 1, 1, 1, 0.5f}), testing::random_tensor("w2", {4, 8, 1, 1}, 3)});
  const Tensor x = input({1, 2, 5, 5}, 9);
  const Tensor before = Eval(m).run(x, "y");
  const PassStats stats = run_pass(m);
  EXPECT_EQ(stats.counters.at("pruned_channels"), 2);
  EXPECT_EQ(dims(m, "w1"), (std::vector<int64_t>{6, 2, 3, 3}));
  EXPECT_EQ(dims(m, "b1"), (std::vector<int64_t>{6}));
  EXPECT_EQ(dims(m, "var"), (std::vector<int64_t>{6}));
  EXPECT_EQ(dims(m, "w2"), (std::vector<int64_t>{4, 6, 1, 1}));
  m.check();
  expect_close(Eval(m).run(x, "y"), before);
}

TEST(PruneChannels, ResidualAddPrunesBothBranchesTogether) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 4, 3, 3] x) => (float[1, 3, 3, 3] y) {
  a = Conv (x, wa)
  b = Conv (x, wb)
  s = Add (a, b)
  r = Relu (s)
  y = Conv (r, wc)
}
)",
                                        {weight("wa", {8, 4, 1, 1}, 1, {2, 6}), weight("wb", {8, 4, 1, 1}, 2, {2, 6}),
                                         testing::random_tensor("wc", {3, 8, 1, 1}, 3)});
  const Tensor x = input({1, 4, 3, 3}, 4);
  const Tensor before = Eval(m).run(x, "y");
  const PassStats stats = run_pass(m);
  EXPECT_EQ(stats.counters.at("pruned_groups"), 1);
  EXPECT_EQ(dims(m, "wa"), (std::vector<int64_t>{6, 4, 1, 1}));
  EXPECT_EQ(dims(m, "wb"), (std::vector<int64_t>{6, 4, 1, 1}));
  EXPECT_EQ(dims(m, "wc"), (std::vector<int64_t>{3, 6, 1, 1}));
  m.check();
  expect_close(Eval(m).run(x, "y"), before);
}

TEST(PruneChannels, ConcatSlicesEachPartAtItsOffset) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 3, 3, 3] x) => (float[1, 2, 3, 3] y) {
  a = Conv (x, wa)
  b = Conv (x, wb, bb)
  k = Concat <axis = 1> (a, b)
  y = Conv (k, wc)
}
)",
                                        {weight("wa", {8, 3, 1, 1}, 1, {0, 3}), weight("wb", {4, 3, 1, 1}, 2, {1}),
                                         weight("bb", {4}, 5, {1}), testing::random_tensor("wc", {2, 12, 1, 1}, 3)});
  const Tensor x = input({1, 3, 3, 3}, 4);
  const Tensor before = Eval(m).run(x, "y");
  run_pass(m);
  EXPECT_EQ(dims(m, "wa"), (std::vector<int64_t>{6, 3, 1, 1}));
  EXPECT_EQ(dims(m, "wb"), (std::vector<int64_t>{3, 3, 1, 1}));
  EXPECT_EQ(dims(m, "bb"), (std::vector<int64_t>{3}));
  EXPECT_EQ(dims(m, "wc"), (std::vector<int64_t>{2, 9, 1, 1}));
  m.check();
  expect_close(Eval(m).run(x, "y"), before);
}

TEST(PruneChannels, FlattenIntoGemmDropsBlocksOfFeatures) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 3, 3] x) => (float[1, 5] y) {
  c = Conv (x, w, b)
  r = Relu (c)
  f = Flatten (r)
  y = Gemm <transB = 1> (f, fw, fb)
}
)",
                                        {weight("w", {4, 2, 1, 1}, 1, {2}), weight("b", {4}, 2, {2}),
                                         testing::random_tensor("fw", {5, 36}, 3), testing::random_tensor("fb", {5}, 4)});
  const Tensor x = input({1, 2, 3, 3}, 4);
  const Tensor before = Eval(m).run(x, "y");
  run_pass(m);
  EXPECT_EQ(dims(m, "w"), (std::vector<int64_t>{3, 2, 1, 1}));
  EXPECT_EQ(dims(m, "fw"), (std::vector<int64_t>{5, 27}));
  m.check();
  expect_close(Eval(m).run(x, "y"), before);
}

// x -> MatMul(w1) -> Add(b1) -> Relu -> MatMul(w2): channels 0, 5, 9, 15 of w1/b1 are the weakest.
Model matmul_chain() {
  return testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 8] x) => (float[2, 4] y) {
  h = MatMul (x, w1)
  hb = Add (h, b1)
  r = Relu (hb)
  y = MatMul (r, w2)
}
)",
                                     {weight("w1", {8, 16}, 1, {0, 5, 9, 15}, 1), weight("b1", {16}, 2, {0, 5, 9, 15}),
                                      testing::random_tensor("w2", {16, 4}, 3)});
}

TEST(PruneChannels, MatMulChainWithBiasAndDepthwiseLikeGap) {
  Model m = matmul_chain();
  const Tensor x = input({2, 8}, 4);
  const Tensor before = Eval(m).run(x, "y");
  run_pass(m);
  EXPECT_EQ(dims(m, "w1"), (std::vector<int64_t>{8, 12}));
  EXPECT_EQ(dims(m, "b1"), (std::vector<int64_t>{12}));
  EXPECT_EQ(dims(m, "w2"), (std::vector<int64_t>{12, 4}));
  m.check();
  expect_close(Eval(m).run(x, "y"), before);
}

TEST(PruneChannels, ValueInfoOfSlicedWeightsIsDropped) {
  // Some exporters list initializers in value_info; a sliced weight keeping its old shape there
  // made the ONNX checker fail (exit 70, "Inferred shape and existing shape differ").
  Model m = matmul_chain();
  auto* infos = m.proto().mutable_graph()->mutable_value_info();
  for (const auto& t : m.proto().graph().initializer()) {
    auto* vi = infos->Add();
    vi->set_name(t.name());
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : t.dims()) tt->mutable_shape()->add_dim()->set_dim_value(d);
  }
  m.invalidate();
  m.check();
  const Tensor x = input({2, 8}, 4);
  const Tensor before = Eval(m).run(x, "y");
  run_pass(m);
  EXPECT_EQ(dims(m, "w1"), (std::vector<int64_t>{8, 12}));
  EXPECT_EQ(dims(m, "w2"), (std::vector<int64_t>{12, 4}));
  for (const auto& vi : m.proto().graph().value_info()) {
    if (vi.name() != "w1" && vi.name() != "b1" && vi.name() != "w2") continue;
    const auto want = dims(m, vi.name());
    const auto& shape = vi.type().tensor_type().shape();
    ASSERT_EQ(shape.dim_size(), static_cast<int>(want.size())) << vi.name();
    for (int i = 0; i < shape.dim_size(); ++i) EXPECT_EQ(shape.dim(i).dim_value(), want[i]) << vi.name();
  }
  m.check();
  expect_close(Eval(m).run(x, "y"), before);
}

TEST(PruneChannels, DepthwiseConvPassesChannelsThrough) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 4, 4] x) => (float[1, 3, 4, 4] y) {
  a = Conv (x, w1)
  d = Conv <group = 8, pads = [1, 1, 1, 1]> (a, wd, bd)
  y = Conv (d, w2)
}
)",
                                        {weight("w1", {8, 2, 1, 1}, 1, {3, 4}), testing::random_tensor("wd", {8, 1, 3, 3}, 2),
                                         weight("bd", {8}, 5, {3, 4}), testing::random_tensor("w2", {3, 8, 1, 1}, 3)});
  const Tensor x = input({1, 2, 4, 4}, 4);
  const Tensor before = Eval(m).run(x, "y");
  run_pass(m);
  EXPECT_EQ(dims(m, "wd"), (std::vector<int64_t>{6, 1, 3, 3}));
  EXPECT_EQ(dims(m, "w2"), (std::vector<int64_t>{3, 6, 1, 1}));
  m.check();
  expect_close(Eval(m).run(x, "y"), before);
}

const char* kTwoConvs = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 3, 3] x) => (float[1, 3, 3, 3] y) {
  a = Conv (x, w1)
  y = Conv (a, w2)
}
)";

TEST(PruneChannels, GlobalScopeRoundToAndCap) {
  Model m = testing::model_with_weights(kTwoConvs, {testing::random_tensor("w1", {16, 2, 1, 1}, 1),
                                                    testing::random_tensor("w2", {3, 16, 1, 1}, 2)});
  run_pass(m, {{"ratio", "0.6"}, {"round-to", "8"}});  // keep 16 - 10 = 6, rounded up to 8
  EXPECT_EQ(dims(m, "w1"), (std::vector<int64_t>{8, 2, 1, 1}));
  Model g = testing::model_with_weights(kTwoConvs, {testing::random_tensor("w1", {16, 2, 1, 1}, 1),
                                                    testing::random_tensor("w2", {3, 16, 1, 1}, 2)});
  run_pass(g, {{"ratio", "0.9"}, {"scope", "global"}, {"max-ratio", "0.5"}});  // capped at 8 of 16
  EXPECT_EQ(dims(g, "w1"), (std::vector<int64_t>{8, 2, 1, 1}));
  g.check();
}

// Each reason leaves the model byte-identical.
void expect_untouched(const std::string& text, const std::vector<TensorProto>& weights, const std::string& reason,
                      std::map<std::string, std::string> options = {}) {
  Model m = testing::model_with_weights(text, weights);
  const std::string bytes = m.serialize();
  const PassStats stats = run_pass(m, options);
  EXPECT_GE(stats.counters.count("skipped." + reason), 1u) << reason;
  EXPECT_EQ(stats.counters.count("pruned_channels"), 0u) << reason;
  EXPECT_EQ(m.serialize(), bytes) << reason;
}

TEST(PruneChannels, SkipReasonsLeaveTheModelUnchanged) {
  const auto w1 = testing::random_tensor("w1", {8, 2, 1, 1}, 1);
  expect_untouched(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 3, 3] x) => (float[1, 8, 3, 3] y) {
  y = Conv (x, w1)
}
)", {w1}, "reaches_graph_output");
  expect_untouched(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 3, 3] x) => (float[1, 3, 3, 8] y) {
  a = Conv (x, w1)
  y = Transpose <perm = [0, 2, 3, 1]> (a)
}
)", {w1}, "unsupported_consumer:Transpose");
  expect_untouched(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 3, 3] x, float[1, 8, 3, 3] z) => (float[1, 3, 3, 3] y) {
  a = Conv (x, w1)
  s = Add (a, z)
  y = Conv (s, w2)
}
)", {w1, testing::random_tensor("w2", {3, 8, 1, 1}, 2)}, "joined_with_unprunable_value");
  expect_untouched(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 3, 3] x) => (float[1, 4, 3, 3] y) {
  a = Conv (x, w1)
  y = Conv <group = 2> (a, w2)
}
)", {w1, testing::random_tensor("w2", {4, 4, 1, 1}, 2)}, "grouped_conv");
  expect_untouched(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 3, 3] x) => (float[1, 3, 3, 3] y) {
  a = Conv (x, w1)
  r = Relu (a)
  y = Conv (r, w2)
}
)", {w1, testing::random_tensor("w2", {3, 8, 1, 1}, 2)}, "consumer_excluded", {{"exclude", "[Relu]"}});
  expect_untouched(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 3, 3] x, bool c) => (float[1, 3, 3, 3] y) {
  a = Conv (x, w1)
  y = If (c) <then_branch = t () => (float[1, 3, 3, 3] o) { o = Conv (a, w2) },
              else_branch = e () => (float[1, 3, 3, 3] o2) { o2 = Conv (a, w2) }>
}
)", {w1, testing::random_tensor("w2", {3, 8, 1, 1}, 2)}, "read_by_subgraph");
  // A producer weight shared by two nodes.
  expect_untouched(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 8, 3, 3] x) => (float[1, 8, 3, 3] y) {
  a = Conv (x, w)
  y = Conv (a, w)
}
)", {testing::random_tensor("w", {8, 8, 1, 1}, 1)}, "weight_parameter_shared");
  // The consumer's weight is also a graph output: slicing it would change that output's shape
  // (the checker failed with exit 70). The producer's weight likewise.
  expect_untouched(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 8] x) => (float[2, 4] y, float[16, 4] w2) {
  h = MatMul (x, w1)
  r = Relu (h)
  y = MatMul (r, w2)
}
)", {testing::random_tensor("w1", {8, 16}, 1), testing::random_tensor("w2", {16, 4}, 2)}, "parameter_is_graph_output");
  expect_untouched(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 8] x) => (float[2, 4] y, float[8, 16] w1) {
  h = MatMul (x, w1)
  r = Relu (h)
  y = MatMul (r, w2)
}
)", {testing::random_tensor("w1", {8, 16}, 1), testing::random_tensor("w2", {16, 4}, 2)}, "weight_parameter_is_graph_output");
}

TEST(PruneChannels, ConstantNodeWeightsArePruned) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x) => (float[2, 2] y) {
  h = MatMul (x, w1)
  y = MatMul (h, w2)
}
)", {});
  // Move w1 into a Constant node in front of the MatMuls.
  auto* g = m.proto().mutable_graph();
  onnx::NodeProto c;
  c.set_op_type("Constant");
  c.add_output("w1");
  auto* a = c.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = weight("", {4, 8}, 1, {2, 7}, 1);
  *g->add_node() = c;
  for (int i = g->node_size() - 1; i > 0; --i) g->mutable_node()->SwapElements(i, i - 1);
  *g->add_initializer() = testing::random_tensor("w2", {8, 2}, 2);
  m.invalidate();
  const Tensor x = input({2, 4}, 4);
  const Tensor before = Eval(m).run(x, "y");
  run_pass(m);
  EXPECT_EQ(m.proto().graph().node(0).attribute(0).t().dims(1), 6);
  EXPECT_EQ(dims(m, "w2"), (std::vector<int64_t>{6, 2}));
  m.check();
  expect_close(Eval(m).run(x, "y"), before);
}

}  // namespace
}  // namespace compress

namespace compress {
namespace {

const onnx::NodeProto& node_by_op(Model& m, const std::string& op, int index = 0) {
  for (const auto& n : m.proto().graph().node())
    if (n.op_type() == op && index-- == 0) return n;
  throw std::runtime_error("no node " + op);
}

std::vector<float> values(Model& m, const std::string& name) {
  for (const auto& t : m.proto().graph().initializer())
    if (t.name() == name) return to_floats(t);
  return {};
}

float max_diff(const Tensor& a, const Tensor& b) {
  float d = 0;
  for (size_t i = 0; i < a.v.size(); ++i) d = std::max(d, std::abs(a.v[i] - b.v[i]));
  return d;
}

// Channel 1 has a zero filter but a bias and BN beta that make relu(BN(b1)) = 1.3 everywhere.
Model conv_bn_relu_conv_with_offset() {
  auto v4 = [](const std::string& name, std::vector<float> v) { return make_float_tensor(name, {4}, v); };
  return testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 5, 5] x) => (float[1, 3, 3, 3] y) {
  c1 = Conv (x, w1, b1)
  n1 = BatchNormalization (c1, s, beta, mean, var)
  r1 = Relu (n1)
  y = Conv (r1, w2)
}
)",
                                     {weight("w1", {4, 2, 1, 1}, 1, {1}), v4("b1", {0.2f, 0.5f, -0.1f, 0.3f}),
                                      v4("s", {1, 2, 1, 0.5f}), v4("beta", {0.1f, 0.9f, 0.2f, 0}),
                                      v4("mean", {0, 0.3f, 0.1f, 0}), v4("var", {1, 4, 1, 2}),
                                      testing::random_tensor("w2", {3, 4, 3, 3}, 3)});
}

TEST(PruneChannelsCompensation, ZeroFilterWithBetaIsExactWithCompensation) {
  const Tensor x = input({1, 2, 5, 5}, 9);
  for (const std::string estimate : {"bn-stats", "zero-weight"}) {
    Model m = conv_bn_relu_conv_with_offset();
    const Tensor before = Eval(m).run(x, "y");
    const PassStats stats = run_pass(m, {{"offset-estimate", estimate}});
    EXPECT_EQ(stats.counters.at("pruned_channels"), 1);
    EXPECT_EQ(stats.counters.at("compensated_channels"), 1);
    EXPECT_EQ(dims(m, "w2"), (std::vector<int64_t>{3, 3, 3, 3}));
    ASSERT_EQ(node_by_op(m, "Conv", 1).input_size(), 3);  // a bias was added to the consumer
    m.check();
    expect_close(Eval(m).run(x, "y"), before);
  }
  Model m = conv_bn_relu_conv_with_offset();
  const Tensor before = Eval(m).run(x, "y");
  const PassStats stats = run_pass(m, {{"compensate", "false"}});
  EXPECT_EQ(stats.counters.count("compensated_channels"), 0u);
  EXPECT_EQ(node_by_op(m, "Conv", 1).input_size(), 2);
  EXPECT_GT(max_diff(Eval(m).run(x, "y"), before), 0.1f);
}

TEST(PruneChannelsCompensation, GemmIntoMatMulGetsAnAddNode) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 8] x) => (float[2, 3] y) {
  h = Gemm (x, w1, c1)
  r = Relu (h)
  y = MatMul (r, w2)
}
)",
                                        {weight("w1", {8, 4}, 1, {2}, 1), make_float_tensor("c1", {4}, std::vector<float>{0.1f, -0.2f, 0.7f, 0.4f}),
                                         testing::random_tensor("w2", {4, 3}, 3)});
  const Tensor x = input({2, 8}, 4);
  const Tensor before = Eval(m).run(x, "y");
  const PassStats stats = run_pass(m);
  EXPECT_EQ(stats.counters.at("compensated_channels"), 1);
  EXPECT_EQ(dims(m, "w2"), (std::vector<int64_t>{3, 3}));
  const auto& add = node_by_op(m, "Add");
  EXPECT_EQ(add.output(0), "y");
  std::vector<float> expected;
  const auto w2 = to_floats(testing::random_tensor("w2", {4, 3}, 3));
  for (int o = 0; o < 3; ++o) expected.push_back(0.7f * w2[2 * 3 + o]);
  const auto bias = values(m, add.input(1));
  ASSERT_EQ(bias.size(), 3u);
  for (int o = 0; o < 3; ++o) EXPECT_NEAR(bias[o], expected[o], 1e-6f);
  m.check();
  expect_close(Eval(m).run(x, "y"), before);
}

TEST(PruneChannelsCompensation, ChannelThatIsNotConstantIsCountedNotCompensated) {
  // The spatially varying constant k makes channel 1 vary over H, W: no single value to fold.
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 3, 3] x) => (float[1, 3, 3, 3] y) {
  c1 = Conv (x, w1, b1)
  a = Add (c1, k)
  r = Relu (a)
  y = Conv (r, w2)
}
)",
                                        {weight("w1", {4, 2, 1, 1}, 1, {1}), testing::random_tensor("b1", {4}, 2),
                                         testing::random_tensor("k", {1, 4, 3, 3}, 5), testing::random_tensor("w2", {3, 4, 1, 1}, 3)});
  const PassStats stats = run_pass(m);
  EXPECT_EQ(stats.counters.at("pruned_channels"), 1);
  EXPECT_EQ(stats.counters.at("uncompensated_channels"), 1);
  EXPECT_EQ(stats.counters.count("compensated_channels"), 0u);
  EXPECT_EQ(node_by_op(m, "Conv", 1).input_size(), 2);
  m.check();
}

TEST(PruneChannelsCompensation, BnStatsGiveTheGaussianMeanOfTheActivation) {
  // Channel 2 has the smallest filter; BN says its output is N(beta, s^2 var / (var + eps)) before
  // Relu, whose mean b Phi(b/sd) + sd phi(b/sd) goes into the Gemm bias times fc[o, 2].
  auto v4 = [](const std::string& name, std::vector<float> v) { return make_float_tensor(name, {4}, v); };
  std::vector<float> w(8, 1.0f);
  w[4] = w[5] = 0.01f;
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 3, 3] x) => (float[1, 5] y) {
  c1 = Conv (x, w1, b1)
  n1 = BatchNormalization (c1, s, beta, mean, var)
  r1 = Relu (n1)
  p = GlobalAveragePool (r1)
  f = Flatten (p)
  y = Gemm <transB = 1> (f, fw, fb)
}
)",
                                        {make_float_tensor("w1", {4, 2, 1, 1}, w), v4("b1", {0, 0, 0, 0}),
                                         v4("s", {1, 1, 0.8f, 1}), v4("beta", {0, 0, 0.3f, 0}),
                                         v4("mean", {0, 0, 0.05f, 0}), v4("var", {1, 1, 0.5f, 1}),
                                         testing::random_tensor("fw", {5, 4}, 3), testing::random_tensor("fb", {5}, 4)});
  const PassStats stats = run_pass(m);
  EXPECT_EQ(stats.counters.at("compensated_channels"), 1);
  const double sd = 0.8 * std::sqrt(0.5 / (0.5 + 1e-5)), b = 0.3;
  const double mean = b * 0.5 * std::erfc(-b / sd / std::sqrt(2.0)) + sd * std::exp(-0.5 * b * b / sd / sd) / std::sqrt(2 * M_PI);
  constexpr double kQuadratureTolerance = 1e-4;  // 241-point grid on [-6, 6] sd
  const auto fw = to_floats(testing::random_tensor("fw", {5, 4}, 3));
  const auto fb = to_floats(testing::random_tensor("fb", {5}, 4));
  const auto bias = values(m, "fb");
  ASSERT_EQ(bias.size(), 5u);
  for (int o = 0; o < 5; ++o) EXPECT_NEAR(bias[o], fb[o] + mean * fw[o * 4 + 2], kQuadratureTolerance) << o;
  EXPECT_EQ(dims(m, "fw"), (std::vector<int64_t>{5, 3}));
  m.check();
}

// ---- calibrate: least-squares refit of the consumers ----

PassStats run_pipeline(Model& m, const std::string& options) {
  const Pipeline pipeline = Pipeline::build(PassRegistry::builtin(), parse_pipeline_text("prune-channels" + options));
  return pipeline.run(m, {}).at(0).stats;
}

eval::Tensor samples_of(const std::vector<int64_t>& d, uint32_t seed) {
  auto t = testing::random_tensor("x", d, seed);
  return eval::Tensor::floats(d, to_floats(t));
}

std::vector<float> run_model(const Model& m, const eval::Tensor& x) {
  const eval::Evaluator ev(m);
  return ev.run({{"x", x}}).at(ev.output_names().at(0)).f;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, static_cast<double>(std::abs(a[i] - b[i])));
  return d;
}

// `t` with slice `copy` along `axis` replaced by 0.1 x slice `of`: after a Relu that channel is
// exactly 0.1 x the other one, and its small norm makes it the one pruned.
TensorProto with_scaled_copy(TensorProto t, int64_t axis, int64_t copy, int64_t of) {
  const std::vector<int64_t> d(t.dims().begin(), t.dims().end());
  auto v = to_floats(t);
  int64_t inner = 1;
  for (size_t q = axis + 1; q < d.size(); ++q) inner *= d[q];
  for (size_t i = 0; i < v.size(); ++i) {
    const int64_t c = (static_cast<int64_t>(i) / inner) % d[axis];
    if (c == copy) v[i] = 0.1f * v[i + (of - copy) * inner];
  }
  return make_float_tensor(t.name(), d, v);
}

// Redundant channels: refitting the consumer is exact; refit reproduces the original to this.
constexpr double kRefitExact = 2e-4;
// refit-ridge for the exact cases (the default 1e-3 pulls the solution toward the pruned weights).
const std::string kTinyRidge = ":refit-ridge=1e-9";

const char* kGemmChain = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 4] x) => (float[N, 3] y) {
  h1 = Gemm(x, w1, b1)
  r1 = Relu(h1)
  h2 = Gemm <transB = 1> (r1, w2, b2)
  r2 = Relu(h2)
  y = Gemm <alpha = 0.5, beta = 2.0> (r2, w3, b3)
}
)";

Model gemm_chain() {
  // Feature 5 of layer 1 is 0.1 x feature 0, feature 4 of layer 2 is 0.1 x feature 1.
  return testing::model_with_weights(
      kGemmChain, {with_scaled_copy(testing::random_tensor("w1", {4, 6}, 1), 1, 5, 0),
                   with_scaled_copy(testing::random_tensor("b1", {6}, 2), 0, 5, 0),
                   with_scaled_copy(testing::random_tensor("w2", {5, 6}, 3), 0, 4, 1),
                   with_scaled_copy(testing::random_tensor("b2", {5}, 4), 0, 4, 1),
                   testing::random_tensor("w3", {5, 3}, 5), testing::random_tensor("b3", {3}, 6)});
}

TEST(PruneChannelsRefit, GemmChainRecoversTheOriginalWhenPrunedFeaturesAreRedundant) {
  const testing::SamplesDir dir("prune_refit_gemm", {{"x", samples_of({64, 4}, 7)}});
  const eval::Tensor test = samples_of({32, 4}, 8);  // not the calibration samples
  Model original = gemm_chain(), plain = gemm_chain(), refit = gemm_chain();
  run_pipeline(plain, ":ratio=0.2");
  const PassStats stats = run_pipeline(refit, ":ratio=0.2" + kTinyRidge + ":calibrate=" + dir.path());
  refit.check();
  EXPECT_EQ(dims(refit, "w1"), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(dims(refit, "w2"), (std::vector<int64_t>{4, 5}));  // transB: [out, in]
  EXPECT_EQ(dims(refit, "w3"), (std::vector<int64_t>{4, 3}));
  const auto expected = run_model(original, test);
  EXPECT_GT(max_abs_diff(expected, run_model(plain, test)), 0.05);  // the pruned features mattered
  EXPECT_LT(max_abs_diff(expected, run_model(refit, test)), kRefitExact);
  EXPECT_EQ(stats.counters.at("refitted"), 2);
  int refit_layers = 0;
  for (const auto& layer : stats.layers) {
    if (!layer.contains("refit")) continue;
    ++refit_layers;
    EXPECT_EQ(layer["refit_rows"], 64);
    EXPECT_LT(layer["output_relative_error_after"].get<double>(), 1e-5);
  }
  EXPECT_EQ(refit_layers, 2);
  // alpha and beta are folded into the refitted weights.
  for (const auto& n : refit.proto().graph().node())
    for (const auto& a : n.attribute()) EXPECT_TRUE(a.name() != "alpha" && a.name() != "beta") << n.output(0);
}

TEST(PruneChannelsRefit, IsDeterministic) {
  const testing::SamplesDir dir("prune_refit_det", {{"x", samples_of({64, 4}, 7)}});
  Model a = gemm_chain(), b = gemm_chain();
  run_pipeline(a, ":ratio=0.2:calibrate=" + dir.path());
  run_pipeline(b, ":ratio=0.2:calibrate=" + dir.path());
  EXPECT_EQ(a.serialize(), b.serialize());
}

TEST(PruneChannelsRefit, MissingSamplesForAnInputIsAUsageError) {
  const testing::SamplesDir dir("prune_refit_missing", {{"not_x", samples_of({8, 4}, 7)}});
  Model m = gemm_chain();
  try {
    run_pipeline(m, ":ratio=0.2:calibrate=" + dir.path());
    FAIL() << "expected a usage error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("no samples for model input 'x'"), std::string::npos) << e.what();
  }
}

const char* kConvPair = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 2, 5, 5] x) => (float[N, 3, 5, 5] y) {
  h = Conv <pads = [1, 1, 1, 1]> (x, w1, b1)
  r = Relu(h)
  y = Conv <pads = [1, 1, 1, 1]> (r, w2)
}
)";

Model conv_pair(const char* text = kConvPair) {
  // Channel 3 of conv 1 is 0.1 x channel 0.
  return testing::model_with_weights(
      text, {with_scaled_copy(testing::random_tensor("w1", {4, 2, 3, 3}, 11), 0, 3, 0),
             with_scaled_copy(testing::random_tensor("b1", {4}, 12), 0, 3, 0),
             testing::random_tensor("w2", {3, 4, 3, 3}, 13)});
}

TEST(PruneChannelsRefit, ConvConsumerRecoversTheOriginalAndGainsABias) {
  const testing::SamplesDir dir("prune_refit_conv", {{"x", samples_of({16, 2, 5, 5}, 14)}});
  const eval::Tensor test = samples_of({4, 2, 5, 5}, 15);
  Model original = conv_pair(), plain = conv_pair(), refit = conv_pair();
  run_pipeline(plain, ":ratio=0.25");
  const PassStats stats = run_pipeline(refit, ":ratio=0.25" + kTinyRidge + ":calibrate=" + dir.path());
  refit.check();
  EXPECT_EQ(dims(refit, "w2"), (std::vector<int64_t>{3, 3, 3, 3}));
  const auto& conv2 = refit.proto().graph().node(2);
  ASSERT_EQ(conv2.input_size(), 3);  // the intercept became a bias
  EXPECT_EQ(dims(refit, conv2.input(2)), (std::vector<int64_t>{3}));
  const auto expected = run_model(original, test);
  EXPECT_GT(max_abs_diff(expected, run_model(plain, test)), 0.05);
  EXPECT_LT(max_abs_diff(expected, run_model(refit, test)), kRefitExact);
  EXPECT_EQ(stats.counters.at("refitted"), 1);
  EXPECT_EQ(stats.layers.back()["refit_rows"], 16 * 25);
  EXPECT_GT(stats.layers.back()["output_relative_error_before"].get<double>(), 0.01);
}

TEST(PruneChannelsRefit, MatMulConsumerGetsABiasAdd) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 4] x) => (float[N, 3] y) {
  h = MatMul(x, w1)
  r = Relu(h)
  y = MatMul(r, w2)
}
)";
  auto make = [&] {
    return testing::model_with_weights(text, {with_scaled_copy(testing::random_tensor("w1", {4, 6}, 21), 1, 5, 0),
                                              testing::random_tensor("w2", {6, 3}, 22)});
  };
  const testing::SamplesDir dir("prune_refit_matmul", {{"x", samples_of({64, 4}, 23)}});
  const eval::Tensor test = samples_of({32, 4}, 24);
  Model original = make(), refit = make();
  const PassStats stats = run_pipeline(refit, ":ratio=0.2" + kTinyRidge + ":calibrate=" + dir.path());
  refit.check();
  std::vector<std::string> ops;
  for (const auto& n : refit.proto().graph().node()) ops.push_back(n.op_type());
  EXPECT_EQ(ops, (std::vector<std::string>{"MatMul", "Relu", "MatMul", "Add"}));
  EXPECT_LT(max_abs_diff(run_model(original, test), run_model(refit, test)), kRefitExact);
  EXPECT_EQ(stats.counters.at("refitted"), 1);
}

TEST(PruneChannelsRefit, ConsumerWeightInAConstantNodeIsRefitted) {
  const testing::SamplesDir dir("prune_refit_constant", {{"x", samples_of({16, 2, 5, 5}, 14)}});
  const eval::Tensor test = samples_of({4, 2, 5, 5}, 15);
  auto make = [] {
    Model m = conv_pair();
    auto* g = m.proto().mutable_graph();
    onnx::NodeProto constant;
    constant.set_op_type("Constant");
    constant.add_output("w2");
    auto* value = constant.add_attribute();
    value->set_name("value");
    value->set_type(onnx::AttributeProto::TENSOR);
    *value->mutable_t() = g->initializer(2);
    g->mutable_initializer()->DeleteSubrange(2, 1);
    *g->mutable_node()->Add() = constant;
    g->mutable_node()->SwapElements(0, 3);  // Constant first, the Conv pair after it in order
    g->mutable_node()->SwapElements(1, 3);
    g->mutable_node()->SwapElements(2, 3);
    m.invalidate();
    return m;
  };
  Model original = make(), refit = make();
  ASSERT_EQ(original.proto().graph().node(0).op_type(), "Constant");
  const PassStats stats = run_pipeline(refit, ":ratio=0.25" + kTinyRidge + ":calibrate=" + dir.path());
  refit.check();
  EXPECT_EQ(stats.counters.at("refitted"), 1);
  EXPECT_EQ(refit.proto().graph().node(0).attribute(0).t().dims(1), 3);
  EXPECT_LT(max_abs_diff(run_model(original, test), run_model(refit, test)), kRefitExact);
}

TEST(PruneChannelsRefit, SharedBiasIsSkippedAndLeftAsPruned) {
  const char* text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 2, 5, 5] x) => (float[N, 3, 5, 5] y, float[3] z) {
  h = Conv <pads = [1, 1, 1, 1]> (x, w1, b1)
  r = Relu(h)
  y = Conv <pads = [1, 1, 1, 1]> (r, w2, b2)
  z = Identity(b2)
}
)";
  const testing::SamplesDir dir("prune_refit_shared", {{"x", samples_of({16, 2, 5, 5}, 14)}});
  auto make = [&] {
    Model m = conv_pair(text);
    *m.proto().mutable_graph()->add_initializer() = testing::random_tensor("b2", {3}, 16);
    m.invalidate();
    return m;
  };
  Model plain = make(), refit = make();
  run_pipeline(plain, ":ratio=0.25:compensate=false");
  const PassStats stats = run_pipeline(refit, ":ratio=0.25:compensate=false:calibrate=" + dir.path());
  refit.check();
  EXPECT_EQ(stats.counters.at("refit_skipped.bias_not_refittable"), 1);
  EXPECT_EQ(stats.counters.count("refitted"), 0u);
  EXPECT_EQ(refit.serialize(), plain.serialize());
}

}  // namespace
}  // namespace compress
