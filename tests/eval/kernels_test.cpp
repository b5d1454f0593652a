// The evaluator's fast paths against its generic ones (kernels::set_reference_mode): the packed SGEMM
// against Eigen, the direct depthwise Conv and the tiled im2col Conv against one-shot im2col + Eigen,
// and the run-wise broadcasting of binary ops against the element-wise index walk.
#include <compress/evaluator.h>
#include <compress/model.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "eval/kernels.h"

namespace compress::eval {
namespace {

// Float32 sums in a different order: relative to the magnitude of the terms.
constexpr float kRelTol = 1e-5f;

std::vector<float> random_floats(std::mt19937& rng, int64_t n) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

std::string dims_text(const std::vector<int64_t>& d) {
  std::string s;
  for (size_t k = 0; k < d.size(); ++k) s += (k ? "," : "") + std::to_string(d[k]);
  return s;
}

std::string ints_text(const std::vector<int64_t>& d) { return "[" + dims_text(d) + "]"; }

int64_t numel(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (auto v : d) n *= v;
  return n;
}

// Runs the model once in fast mode and once in reference mode; outputs must agree.
void expect_same_in_both_modes(const std::string& text, const TensorMap& feeds, const std::string& out, float tol) {
  const Model m = Model::parse_text(text);
  Evaluator ev(m);
  kernels::set_reference_mode(false);
  const Tensor fast = ev.run(feeds).at(out);
  kernels::set_reference_mode(true);
  const Tensor ref = ev.run(feeds).at(out);
  kernels::set_reference_mode(false);
  ASSERT_EQ(fast.dims, ref.dims);
  ASSERT_EQ(fast.f.size(), ref.f.size());
  ASSERT_FALSE(ref.f.empty());
  for (size_t k = 0; k < ref.f.size(); ++k)
    ASSERT_NEAR(fast.f[k], ref.f[k], tol * (1.0f + std::fabs(ref.f[k]))) << "element " << k << "\n" << text;
}

TEST(EvalKernels, SgemmMatchesEigenOnEdgeSizesStridesAndAccumulate) {
  std::mt19937 rng(7);
  struct Case {
    int64_t m, n, k;
  };
  // Tails in every blocking dimension (6 rows, 16 columns, KC 256, MC 120, NC 1024), small m (B read
  // in place), and GEMV-like shapes that stay with Eigen.
  const Case cases[] = {{1, 1, 1}, {6, 16, 1}, {7, 17, 3}, {24, 100, 300}, {25, 33, 257}, {121, 1030, 70},
                        {130, 40, 600}, {5, 200, 9}, {64, 3, 64}, {2, 2048, 31}};
  for (const auto& c : cases)
    for (int acc = 0; acc < 2; ++acc) {
      const int64_t lda = c.k + 3, ldb = c.n + 5, ldc = c.n + 2;
      const auto a = random_floats(rng, c.m * lda), b = random_floats(rng, c.k * ldb), c0 = random_floats(rng, c.m * ldc);
      auto fast = c0, ref = c0;
      kernels::set_reference_mode(false);
      kernels::sgemm(c.m, c.n, c.k, a.data(), lda, b.data(), ldb, fast.data(), ldc, acc != 0);
      kernels::set_reference_mode(true);
      kernels::sgemm(c.m, c.n, c.k, a.data(), lda, b.data(), ldb, ref.data(), ldc, acc != 0);
      kernels::set_reference_mode(false);
      const float tol = kRelTol * std::sqrt(static_cast<float>(c.k));
      for (int64_t i = 0; i < c.m; ++i)
        for (int64_t j = 0; j < ldc; ++j) {
          const size_t at = static_cast<size_t>(i * ldc + j);
          if (j >= c.n) ASSERT_EQ(fast[at], c0[at]) << "wrote outside C";
          else ASSERT_NEAR(fast[at], ref[at], tol * (1.0f + std::fabs(ref[at])))
              << c.m << "x" << c.n << "x" << c.k << " acc " << acc << " at " << i << "," << j;
        }
    }
}

struct ConvCase {
  std::vector<int64_t> x, w;
  int64_t group;
  std::vector<int64_t> strides, pads, dilations;
  bool bias;
};

std::string conv_model(const ConvCase& c) {
  std::string attrs = "group = " + std::to_string(c.group) + ", strides = " + ints_text(c.strides) +
                      ", pads = " + ints_text(c.pads) + ", dilations = " + ints_text(c.dilations);
  return "<ir_version: 8, opset_import: [\"\" : 13]>\ng (float[" + dims_text(c.x) + "] x, float[" + dims_text(c.w) +
         "] w, float[" + std::to_string(c.w[0]) + "] b) => (float y) {\n  y = Conv <" + attrs + "> (x, w" +
         (c.bias ? ", b" : "") + ")\n}\n";
}

void check_conv(const ConvCase& c, std::mt19937& rng) {
  TensorMap feeds{{"x", Tensor::floats(c.x, random_floats(rng, numel(c.x)))},
                  {"w", Tensor::floats(c.w, random_floats(rng, numel(c.w)))},
                  {"b", Tensor::floats({c.w[0]}, random_floats(rng, c.w[0]))}};
  expect_same_in_both_modes(conv_model(c), feeds, "y", kRelTol * 10);
}

TEST(EvalKernels, DepthwiseConvMatchesIm2colOnRandomGeometries) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int64_t> kd(1, 5), sd(1, 3), dd(1, 2), pd(0, 3), cd(1, 6), md(1, 2), hd(1, 19);
  for (int t = 0; t < 60; ++t) {
    const int64_t ch = cd(rng), mult = md(rng);
    const bool one_d = t % 5 == 0;
    const int64_t h = hd(rng) + 4, wdt = hd(rng) + 4;
    ConvCase c;
    c.group = ch;
    c.bias = t % 2 == 0;
    if (one_d) {
      c.x = {2, ch, wdt};
      c.w = {ch * mult, 1, kd(rng)};
      c.strides = {sd(rng)};
      c.dilations = {dd(rng)};
      c.pads = {pd(rng), pd(rng)};
    } else {
      c.x = {1 + t % 2, ch, h, wdt};
      c.w = {ch * mult, 1, kd(rng), kd(rng)};
      c.strides = {sd(rng), sd(rng)};
      c.dilations = {dd(rng), dd(rng)};
      c.pads = {pd(rng), pd(rng), pd(rng), pd(rng)};
    }
    // Keep the output non-empty.
    bool ok = true;
    for (size_t q = 0; q + 2 < c.x.size(); ++q) {
      const int64_t ext = (c.w[q + 2] - 1) * c.dilations[q] + 1;
      ok = ok && c.x[q + 2] + c.pads[q] + c.pads[q + c.strides.size()] >= ext;
    }
    if (!ok) continue;
    SCOPED_TRACE("case " + std::to_string(t));
    check_conv(c, rng);
  }
}

TEST(EvalKernels, GemmConvMatchesIm2colWithTilesGroupsAndPointwise) {
  std::mt19937 rng(3);
  // 3x3 pad 1 over 70 x 80: im2col runs in several tiles of output rows.
  check_conv({{1, 8, 70, 80}, {12, 8, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true}, rng);
  // Strided, dilated, asymmetric pads, two groups, batch 2.
  check_conv({{2, 6, 33, 41}, {10, 3, 3, 2}, 2, {2, 1}, {0, 2, 1, 0}, {2, 1}, false}, rng);
  // Pointwise (no im2col) and pointwise with stride.
  check_conv({{1, 32, 9, 40}, {48, 32, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}, true}, rng);
  check_conv({{1, 32, 9, 40}, {48, 32, 1, 1}, 1, {2, 2}, {0, 0, 0, 0}, {1, 1}, true}, rng);
  // 1-D.
  check_conv({{1, 5, 100}, {7, 5, 4}, 1, {3}, {2, 1}, {2}, true}, rng);
}

TEST(EvalKernels, BroadcastRunsMatchElementwiseWalk) {
  std::mt19937 rng(5);
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> shapes = {
      {{2, 3, 4, 5}, {2, 3, 4, 5}},  // same shape
      {{2, 3, 4, 5}, {}},            // scalar
      {{}, {2, 3, 4, 5}},            // scalar first
      {{1, 8, 6, 7}, {8, 1, 1}},     // per channel
      {{1, 8, 6, 7}, {1, 8, 1, 1}},  // per channel, same rank
      {{4, 10, 16}, {16}},           // bias over the last axis
      {{2, 1, 5, 1}, {1, 3, 1, 4}},  // both broadcast
      {{3, 1}, {1, 4}},              // outer product
      {{5, 1, 1}, {1, 1, 1}},        // size-1 everywhere on one side
      {{1}, {1}},
  };
  const char* ops[] = {"Add", "Sub", "Mul", "Div"};
  for (const auto& [sa, sb] : shapes)
    for (const char* op : ops) {
      const std::string text = "<ir_version: 8, opset_import: [\"\" : 13]>\ng (float[" + dims_text(sa) + "] a, float[" +
                               dims_text(sb) + "] b) => (float y) {\n  y = " + op + "(a, b)\n}\n";
      auto bv = random_floats(rng, numel(sb));
      for (auto& v : bv) v += v >= 0 ? 0.5f : -0.5f;  // keep Div away from 0
      const TensorMap feeds{{"a", Tensor::floats(sa, random_floats(rng, numel(sa)))}, {"b", Tensor::floats(sb, bv)}};
      SCOPED_TRACE(text);
      // Same float operation on the same operands: identical results.
      expect_same_in_both_modes(text, feeds, "y", 0.0f);
    }
}

TEST(EvalKernels, BroadcastRunsKeepIntegerAndFloat16Semantics) {
  const std::string text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float16[2, 3] a, float16[3] b) => (float16[2, 3] y) {
  y = Mul(a, b)
}
)";
  const Model m = Model::parse_text(text);
  Evaluator ev(m);
  const auto out = ev.run({{"a", Tensor::floats({2, 3}, {1, 2, 3, 4, 5, 6}, onnx::TensorProto::FLOAT16)},
                           {"b", Tensor::floats({3}, {0.1f, 1, 2}, onnx::TensorProto::FLOAT16)}});
  const Tensor& y = out.at("y");
  EXPECT_EQ(y.dtype, onnx::TensorProto::FLOAT16);
  // 0.1 * 1 rounded to half: 0.0999755859375; 0.1 * 4 = 0.39990234375 in half.
  EXPECT_FLOAT_EQ(y.f[0], 0.0999755859375f);
  EXPECT_FLOAT_EQ(y.f[3], 0.39990234375f);
  EXPECT_FLOAT_EQ(y.f[5], 12.0f);
}

}  // namespace
}  // namespace compress::eval

namespace compress::eval {
namespace {

TEST(EvalKernels, ConstantNodesDecodedOnceServeOutputsSubgraphsAndRepeatedRuns) {
  const Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool cond, float[2] x) => (float[2] k, float[2] y) {
  k = Constant <value = float[2] {3, 4}> ()
  y = If (cond) <then_branch = t () => (float[2] o) { o = Add(x, k) },
                 else_branch = e () => (float[2] o) { c = Constant <value = float[2] {10, 20}> ()
                                                      o = Mul(x, c) }>
}
)");
  Evaluator ev(m);
  for (int rep = 0; rep < 2; ++rep) {
    const auto t = ev.run({{"cond", Tensor::ints({}, {1}, onnx::TensorProto::BOOL)}, {"x", Tensor::floats({2}, {1, 2})}});
    EXPECT_EQ(t.at("k").f, (std::vector<float>{3, 4}));
    EXPECT_EQ(t.at("y").f, (std::vector<float>{4, 6}));
    const auto e = ev.run({{"cond", Tensor::ints({}, {0}, onnx::TensorProto::BOOL)}, {"x", Tensor::floats({2}, {1, 2})}});
    EXPECT_EQ(e.at("y").f, (std::vector<float>{10, 40}));
  }
}

}  // namespace
}  // namespace compress::eval
