// The evaluator on tiny graphs with hand-computed outputs, opset attribute variants, If/Loop/Scan scoping,
// freeing, and errors that name the op and node.
#include <compress/error.h>
#include <compress/evaluator.h>
#include <compress/model.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "eval/ops.h"

namespace compress::eval {
namespace {

constexpr float kTol = 1e-6f;

TensorMap run(const std::string& text, TensorMap feeds) {
  const Model m = Model::parse_text(text);
  Evaluator ev(m);
  return ev.run(feeds);
}

void expect_floats(const Tensor& t, const std::vector<int64_t>& dims, const std::vector<float>& want) {
  EXPECT_EQ(t.dims, dims);
  ASSERT_EQ(t.f.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(t.f[k], want[k], kTol) << "element " << k;
}

TEST(Evaluator, CheckpointsHoldWhatTheRestReadsAndFinishLikeRun) {
  // x is read again by the last node, h1 only by the second: after node 1 the state holds x and h2,
  // and an early output (e) stays until the end.
  const Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[3] x) => (float[3] y, float[3] e) {
  e = Neg(x)
  h1 = Add(x, x)
  h2 = Mul(h1, h1)
  y = Sub(h2, x)
}
)");
  const Evaluator ev(m);
  const TensorMap feeds = {{"x", Tensor::floats({3}, {1, 2, 3})}};
  Evaluator::Checkpoint state = ev.start(feeds);
  ev.advance(state, 1);
  ev.advance(state, 3);
  EXPECT_EQ(state.next, 3);
  EXPECT_EQ(state.values.size(), 3u);  // x, e, h2
  EXPECT_TRUE(state.values.count("h2") && state.values.count("x") && state.values.count("e"));
  const TensorMap rest = ev.finish(state), whole = ev.run(feeds);
  EXPECT_EQ(rest.at("y").f, whole.at("y").f);
  EXPECT_EQ(rest.at("e").f, whole.at("e").f);
  expect_floats(rest.at("y"), {3}, {3, 14, 33});
  EXPECT_EQ(ev.finish(state).at("y").f, rest.at("y").f);  // finishing leaves the state as it was
  EXPECT_THROW(ev.advance(state, 2), Error);                // never backwards
}

TEST(Evaluator, AddBroadcastsLikeNumpy) {
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 1, 3] a, float[2, 1] b) => (float[2, 2, 3] y) {
  y = Add(a, b)
}
)", {{"a", Tensor::floats({2, 1, 3}, {1, 2, 3, 4, 5, 6})}, {"b", Tensor::floats({2, 1}, {10, 20})}});
  expect_floats(out.at("y"), {2, 2, 3}, {11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26});
}

TEST(Evaluator, GemmTransposesScalesAndAddsBroadcastBias) {
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 2] a) => (float[2, 3] y) {
  w = Constant <value = float[3, 2] {1, 0, 0, 1, 1, 1}> ()
  c = Constant <value = float[3] {2, 4, 6}> ()
  y = Gemm <transB = 1, alpha = 2.0, beta = 0.5> (a, w, c)
}
)", {{"a", Tensor::floats({2, 2}, {1, 2, 3, 4})}});
  // a * w^T = [[1, 2, 3], [3, 4, 7]]; * 2 + 0.5 * c
  expect_floats(out.at("y"), {2, 3}, {3, 6, 9, 7, 10, 17});
}

TEST(Evaluator, MatMulBroadcastsBatchDims) {
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 1, 2] a, float[2, 1] b) => (float[2, 1, 1] y) {
  y = MatMul(a, b)
}
)", {{"a", Tensor::floats({2, 1, 2}, {1, 2, 3, 4})}, {"b", Tensor::floats({2, 1}, {10, 1})}});
  expect_floats(out.at("y"), {2, 1, 1}, {12, 34});
}

TEST(Evaluator, ConvWithPadsStridesAndGroups) {
  // Two groups of one channel each on a 3x3 image, 2x2 kernels, pad 1, stride 2.
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 3, 3] x) => (float[1, 2, 2, 2] y) {
  w = Constant <value = float[2, 1, 2, 2] {1, 1, 1, 1, 1, 0, 0, 0}> ()
  b = Constant <value = float[2] {0, 100}> ()
  y = Conv <group = 2, pads = [1, 1, 1, 1], strides = [2, 2]> (x, w, b)
}
)", {{"x", Tensor::floats({1, 2, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9})}});
  // Channel 0: window sums at output (0,0)=x[0,0], (0,1)=x[0,1]+x[0,2], (1,0)=x[1,0]+x[2,0], (1,1)=5+6+8+9.
  // Channel 1: top-left tap only -> x at (-1,-1),(−1,1),(1,−1),(1,1) = 0, 0, 0, 5, plus bias 100.
  expect_floats(out.at("y"), {1, 2, 2, 2}, {1, 5, 11, 28, 100, 100, 100, 105});
}

TEST(Evaluator, ConvAutoPadSameUpperKeepsTheSize) {
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 1, 1, 3] x) => (float[1, 1, 1, 3] y) {
  w = Constant <value = float[1, 1, 1, 2] {1, 10}> ()
  y = Conv <auto_pad = "SAME_UPPER"> (x, w)
}
)", {{"x", Tensor::floats({1, 1, 1, 3}, {1, 2, 3})}});
  expect_floats(out.at("y"), {1, 1, 1, 3}, {21, 32, 3});
}

TEST(Evaluator, BatchNormMaxPoolGlobalAveragePoolFlatten) {
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 1, 2, 2] x) => (float[1, 1] y, float[1, 1, 1, 1] p) {
  s = Constant <value = float[1] {2}> ()
  b = Constant <value = float[1] {1}> ()
  m = Constant <value = float[1] {1}> ()
  v = Constant <value = float[1] {4}> ()
  n = BatchNormalization <epsilon = 0.0> (x, s, b, m, v)
  p = MaxPool <kernel_shape = [2, 2]> (n)
  a = GlobalAveragePool(n)
  y = Flatten(a)
}
)", {{"x", Tensor::floats({1, 1, 2, 2}, {1, 3, 5, 7})}});
  // (x - 1) / 2 * 2 + 1 = x
  expect_floats(out.at("p"), {1, 1, 1, 1}, {7});
  expect_floats(out.at("y"), {1, 1}, {4});
}

TEST(Evaluator, SoftmaxAxisDefaultChangesAtOpset13) {
  const Tensor x = Tensor::floats({1, 2, 2}, {0, 0, 0, 0});
  const auto old = run(R"(
<ir_version: 7, opset_import: ["" : 11]>
g (float[1, 2, 2] x) => (float[1, 2, 2] y) { y = Softmax(x) }
)", {{"x", x}});
  expect_floats(old.at("y"), {1, 2, 2}, {0.25f, 0.25f, 0.25f, 0.25f});  // axis 1, flattened to [1, 4]
  const auto now = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 2] x) => (float[1, 2, 2] y) { y = Softmax(x) }
)", {{"x", x}});
  expect_floats(now.at("y"), {1, 2, 2}, {0.5f, 0.5f, 0.5f, 0.5f});  // axis -1
}

TEST(Evaluator, SqueezeAxesAttributeBefore13InputAfter) {
  const Tensor x = Tensor::floats({1, 2, 1}, {1, 2});
  const auto old = run(R"(
<ir_version: 7, opset_import: ["" : 11]>
g (float[1, 2, 1] x) => (float[2, 1] y) { y = Squeeze <axes = [0]> (x) }
)", {{"x", x}});
  EXPECT_EQ(old.at("y").dims, (std::vector<int64_t>{2, 1}));
  const auto now = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 1] x) => (float[1, 2] y) {
  ax = Constant <value = int64[1] {-1}> ()
  y = Squeeze(x, ax)
}
)", {{"x", x}});
  EXPECT_EQ(now.at("y").dims, (std::vector<int64_t>{1, 2}));
}

TEST(Evaluator, ClipMinMaxAttributesBefore11InputsAfter) {
  const Tensor x = Tensor::floats({3}, {-5, 0.5f, 5});
  const auto old = run(R"(
<ir_version: 3, opset_import: ["" : 6]>
g (float[3] x) => (float[3] y) { y = Clip <min = -1.0, max = 1.0> (x) }
)", {{"x", x}});
  expect_floats(old.at("y"), {3}, {-1, 0.5f, 1});
  const auto now = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[3] x) => (float[3] y) {
  lo = Constant <value = float {0}> ()
  hi = Constant <value = float {2}> ()
  y = Clip(x, lo, hi)
}
)", {{"x", x}});
  expect_floats(now.at("y"), {3}, {0, 0.5f, 2});
}

TEST(Evaluator, ReduceMeanKeepdimsAndShapeOps) {
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 3] x) => (float[2, 1] m, int64[2] s, float[3, 2] t, float[2, 2] sl) {
  m = ReduceMean <axes = [1]> (x)
  s = Shape(x)
  t = Transpose(x)
  st = Constant <value = int64[1] {1}> ()
  en = Constant <value = int64[1] {3}> ()
  ax = Constant <value = int64[1] {1}> ()
  sl = Slice(x, st, en, ax)
}
)", {{"x", Tensor::floats({2, 3}, {1, 2, 3, 4, 5, 6})}});
  expect_floats(out.at("m"), {2, 1}, {2, 5});
  EXPECT_EQ(out.at("s").i, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(out.at("s").dtype, onnx::TensorProto::INT64);
  expect_floats(out.at("t"), {3, 2}, {1, 4, 2, 5, 3, 6});
  expect_floats(out.at("sl"), {2, 2}, {2, 3, 5, 6});
}

TEST(Evaluator, IfBranchReadsOuterScopeValues) {
  const std::string text = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool c, float[2] x) => (float[2] y) {
  two = Constant <value = float {2}> ()
  d = Mul(x, two)
  y = If(c) <
    then_branch = t () => (float[2] o) { o = Add(d, x) },
    else_branch = e () => (float[2] o) { o = Neg(d) }>
}
)";
  const Tensor x = Tensor::floats({2}, {1, 2});
  expect_floats(run(text, {{"c", Tensor::ints({}, {1}, onnx::TensorProto::BOOL)}, {"x", x}}).at("y"), {2}, {3, 6});
  expect_floats(run(text, {{"c", Tensor::ints({}, {0}, onnx::TensorProto::BOOL)}, {"x", x}}).at("y"), {2}, {-2, -4});
}

TEST(Evaluator, LoopCarriesARunningSumWithAnOuterScopeWeightAndStacksScanOutputs) {
  // acc_{i+1} = acc_i + i * w for i = 0, 1, 2, w read from the outer scope; every acc_out is also
  // a scan output. x0 = [1, 2], w = [10, 100]: [1, 2] -> [1, 2] -> [11, 102] -> [31, 302].
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x0, float[2] w) => (float[2] s, float[3, 2] trace) {
  m = Constant <value = int64 {3}> ()
  c = Constant <value = bool {1}> ()
  s, trace = Loop(m, c, x0) <
    body = body (int64 i, bool cin, float[2] acc) => (bool cout, float[2] acc_out, float[2] acc_scan) {
      cout = Identity(cin)
      fi = Cast <to = 1> (i)
      wi = Mul(w, fi)
      acc_out = Add(acc, wi)
      acc_scan = Identity(acc_out)
    }>
}
)", {{"x0", Tensor::floats({2}, {1, 2})}, {"w", Tensor::floats({2}, {10, 100})}});
  expect_floats(out.at("s"), {2}, {31, 302});
  expect_floats(out.at("trace"), {3, 2}, {1, 2, 11, 102, 31, 302});
}

TEST(Evaluator, LoopWithoutTripCountStopsOnTheBodyCondition) {
  // No M: doubles v while the doubled value is below 10 (the condition is checked before the next
  // iteration), so 1 -> 2 -> 4 -> 8 -> 16 runs four times and the scan outputs have four rows. The
  // text parser of ONNX 1.12 cannot write an empty input, so M is cleared on the proto.
  Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1] v0, int64 unused_m) => (float[1] v, float[4, 1] seen, int64[4] iters) {
  c = Constant <value = bool {1}> ()
  v, seen, iters = Loop(unused_m, c, v0) <
    body = body (int64 i, bool cin, float[1] x) => (bool cout, float[1] y, float[1] ys, int64 it) {
      two = Constant <value = float {2}> ()
      ten = Constant <value = float[1] {10}> ()
      y = Mul(x, two)
      lt = Less(y, ten)
      cout = Squeeze(lt)
      ys = Identity(y)
      it = Identity(i)
    }>
}
)");
  auto& g = *m.proto().mutable_graph();
  g.mutable_node(1)->set_input(0, "");
  g.mutable_input()->DeleteSubrange(1, 1);
  m.invalidate();
  Evaluator ev(m);
  const auto out = ev.run({{"v0", Tensor::floats({1}, {1})}});
  expect_floats(out.at("v"), {1}, {16});
  expect_floats(out.at("seen"), {4, 1}, {2, 4, 8, 16});
  EXPECT_EQ(out.at("iters").dims, (std::vector<int64_t>{4}));
  EXPECT_EQ(out.at("iters").i, (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(Evaluator, ScanComputesACumulativeSumForwardAndReversedOnAnotherAxis) {
  // x rows [1, 2], [3, 4], [5, 6]: forward on axis 0 the partial sums are [1, 2], [4, 6], [9, 12].
  // xt = x^T scanned on axis 1 backwards visits [5, 6], [3, 4], [1, 2]: partial sums [5, 6], [8, 10],
  // [9, 12], stacked on output axis 1 -> [[5, 8, 9], [6, 10, 12]].
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] init, float[3, 2] x, float[2, 3] xt) => (float[2] s, float[3, 2] cum, float[2] s2, float[2, 3] cum2) {
  s, cum = Scan(init, x) <num_scan_inputs = 1,
    body = body (float[2] acc, float[2] row) => (float[2] acc_out, float[2] acc_scan) {
      acc_out = Add(acc, row)
      acc_scan = Identity(acc_out)
    }>
  s2, cum2 = Scan(init, xt) <num_scan_inputs = 1, scan_input_axes = [1], scan_input_directions = [1],
    scan_output_axes = [1],
    body = body2 (float[2] acc, float[2] col) => (float[2] acc_out, float[2] acc_scan) {
      acc_out = Add(acc, col)
      acc_scan = Identity(acc_out)
    }>
}
)", {{"init", Tensor::floats({2}, {0, 0})},
     {"x", Tensor::floats({3, 2}, {1, 2, 3, 4, 5, 6})},
     {"xt", Tensor::floats({2, 3}, {1, 3, 5, 2, 4, 6})}});
  expect_floats(out.at("s"), {2}, {9, 12});
  expect_floats(out.at("cum"), {3, 2}, {1, 2, 4, 6, 9, 12});
  expect_floats(out.at("s2"), {2}, {9, 12});
  expect_floats(out.at("cum2"), {2, 3}, {5, 8, 9, 6, 10, 12});
}

TEST(Evaluator, DequantizeLinearPerAxisAndDynamicQuantizedMatMul) {
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2] a) => (float[2, 2] w, float[1, 2] y) {
  q = Constant <value = int8[2, 2] {1, -2, 3, 4}> ()
  s = Constant <value = float[2] {0.5, 2}> ()
  w = DequantizeLinear <axis = 1> (q, s)
  aq, as, az = DynamicQuantizeLinear(a)
  p = MatMulInteger(aq, q, az)
  pf = Cast <to = 1> (p)
  y = Mul(pf, as)
}
)", {{"a", Tensor::floats({1, 2}, {0, 2.55f})}});
  expect_floats(out.at("w"), {2, 2}, {0.5f, -4, 1.5f, 8});
  // a quantizes exactly (scale 0.01, zero point 0): y = a * q.
  expect_floats(out.at("y"), {1, 2}, {7.65f, 10.2f});
}

TEST(Evaluator, CastRoundsFloat16AndTruncatesToInt) {
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[3] x) => (float16[3] h, int32[3] i) {
  h = Cast <to = 10> (x)
  i = Cast <to = 6> (x)
}
)", {{"x", Tensor::floats({3}, {1.0f / 3.0f, -2.7f, 70000.0f})}});
  EXPECT_EQ(out.at("h").dtype, onnx::TensorProto::FLOAT16);
  EXPECT_FLOAT_EQ(out.at("h").f[0], 0.333251953125f);
  EXPECT_TRUE(std::isinf(out.at("h").f[2]));
  EXPECT_EQ(out.at("i").i[1], -2);
}

TEST(Evaluator, UnsupportedOpErrorNamesOpAndNode) {
  const Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y) { y = Unique(x) }
)");
  try {
    Evaluator ev(m);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUnsupported);
    EXPECT_STREQ(e.what(), "evaluator: unsupported op Unique (node 'y')");
  }
  EXPECT_EQ(unsupported_ops(m.proto()), (std::vector<std::string>{"Unique"}));
}

TEST(Evaluator, MissingInputIsABadInputError) {
  const Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y) { y = Relu(x) }
)");
  Evaluator ev(m);
  try {
    ev.run({});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos);
  }
}

// The kBadInput message of running a one-node graph on `feeds`; shapes come from the feeds only.
std::string guard_error(const std::string& inputs, const std::string& node, TensorMap feeds, int opset = 13) {
  const std::string text = "<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) + "]>\ng (" + inputs +
                           ") => (float y) {\n  " + node + "\n}\n";
  try {
    run(text, std::move(feeds));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << node;
  return "";
}

Tensor zeros(std::vector<int64_t> dims) { return Tensor::zeros(onnx::TensorProto::FLOAT, std::move(dims)); }

// Shapes known only at run time (fed), so the load-time shape check cannot see them.
TEST(EvaluatorGuards, SqueezeAndUnsqueezeAxesAreChecked) {
  EXPECT_NE(guard_error("float x", "y = Squeeze <axes = [1]> (x)", {{"x", zeros({2, 3, 4})}}, 11)
                .find("axis 1 has size 3, not 1"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = Unsqueeze <axes = [1, -3]> (x)", {{"x", zeros({2, 3})}}, 11)
                .find("axes name one axis twice"),
            std::string::npos);
}

TEST(EvaluatorGuards, ConvShapesAreCheckedBeforeIndexing) {
  EXPECT_NE(guard_error("float x, float w", "y = Conv(x, w)", {{"x", zeros({1, 2, 3, 3})}, {"w", zeros({4, 2, 5, 5})}})
                .find("kernel extent 5 (kernel 5, dilation 1) is larger than the padded input 3 along spatial dim 0"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float w", "y = Conv(x, w)", {{"x", zeros({1, 3, 8, 8})}, {"w", zeros({4, 2, 3, 3})}})
                .find("input channels 3 != 2 x group 1"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float w", "y = Conv(x, w)", {{"x", zeros({1, 2})}, {"w", zeros({4, 2, 3, 3})}})
                .find("has rank 2, expected N x C x spatial dims"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float w", "y = Conv(x, w)", {{"x", zeros({1, 2, 8, 8})}, {"w", zeros({4, 2, 3})}})
                .find("weight W [4,2,3] has rank 3"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float w", "y = Conv <kernel_shape = [5, 5]> (x, w)",
                        {{"x", zeros({1, 2, 8, 8})}, {"w", zeros({4, 2, 3, 3})}})
                .find("kernel_shape [5,5] does not match weight W [4,2,3,3]"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float w", "y = Conv <strides = [1]> (x, w)",
                        {{"x", zeros({1, 2, 8, 8})}, {"w", zeros({4, 2, 3, 3})}})
                .find("attribute 'strides' has 1 entries, expected 2"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float w, float b", "y = Conv(x, w, b)",
                        {{"x", zeros({1, 2, 8, 8})}, {"w", zeros({4, 2, 3, 3})}, {"b", zeros({3})}})
                .find("bias B [3] needs 4 elements"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float w", "y = Conv <group = 2> (x, w)",
                        {{"x", zeros({1, 4, 8, 8})}, {"w", zeros({3, 2, 3, 3})}})
                .find("output channels 3 of W [3,2,3,3] are not a multiple of group 2"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float w", "y = ConvTranspose(x, w)", {{"x", zeros({1, 3, 4, 4})}, {"w", zeros({2, 2, 3, 3})}})
                .find("must equal W's first dim 2"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float w", "y = ConvTranspose <pads = [4, 4, 4, 4]> (x, w)",
                        {{"x", zeros({1, 2, 2, 2})}, {"w", zeros({2, 2, 3, 3})}})
                .find("output spatial dim 0 would be -4"),
            std::string::npos);
}

TEST(EvaluatorGuards, PoolingShapesAreCheckedBeforeIndexing) {
  EXPECT_NE(guard_error("float x", "y = MaxPool <kernel_shape = [4, 4]> (x)", {{"x", zeros({1, 1, 3, 3})}})
                .find("kernel extent 4 (kernel 4, dilation 1) is larger than the padded input 3"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = AveragePool <kernel_shape = [2, 2], pads = [0, 0]> (x)", {{"x", zeros({1, 1, 3, 3})}})
                .find("attribute 'pads' has 2 entries, expected 4"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = MaxPool <kernel_shape = [2]> (x)", {{"x", zeros({1, 1, 3, 3})}})
                .find("kernel_shape [2] does not match the 2 spatial dims"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = MaxPool <kernel_shape = [2]> (x)", {{"x", zeros({4})}}).find("has rank 1"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = GlobalAveragePool(x)", {{"x", zeros({4})}}).find("has rank 1"), std::string::npos);
}

TEST(EvaluatorGuards, ResizeScalesAndSizesMustFitTheInput) {
  const TensorMap x{{"x", zeros({1, 1, 2, 2})}, {"r", Tensor::floats({0}, {})}};
  auto with = [&](const std::string& name, Tensor t) {
    TensorMap f = x;
    f[name] = std::move(t);
    return f;
  };
  EXPECT_NE(guard_error("float x, float r, float s", "y = Resize(x, r, s)", with("s", Tensor::floats({2}, {2, 2})))
                .find("scales has 2 entries, input X [1,1,2,2] has rank 4"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float r, float s", "y = Resize(x, r, s)", with("s", Tensor::floats({4}, {1, 1, -2, 2})))
                .find("scale -2.000000 for dim 2"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float r, float s", "y = Resize(x, r, s)", with("s", Tensor::floats({4}, {1, 1, 1e30f, 2})))
                .find("give a dim below 1e9"),
            std::string::npos);
  TensorMap sized = with("n", Tensor::ints({3}, {1, 1, 4}));
  sized["s"] = Tensor::floats({0}, {});
  EXPECT_NE(guard_error("float x, float r, float s, int64 n", "y = Resize(x, r, s, n)", sized)
                .find("sizes [1,1,4] has 3 entries, input X [1,1,2,2] has rank 4"),
            std::string::npos);
  sized["n"] = Tensor::ints({4}, {1, 1, -4, 4});
  EXPECT_NE(guard_error("float x, float r, float s, int64 n", "y = Resize(x, r, s, n)", sized).find("cannot resize"),
            std::string::npos);
}

TEST(EvaluatorGuards, ExpandAndTileShapesAreChecked) {
  EXPECT_NE(guard_error("float x, int64 s", "y = Expand(x, s)", {{"x", zeros({2, 3})}, {"s", Tensor::ints({2}, {4, 3})}})
                .find("shapes cannot broadcast (dim 0: 2 vs 4)"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, int64 s", "y = Expand(x, s)", {{"x", zeros({2, 3})}, {"s", Tensor::ints({2}, {1, -3})}})
                .find("shape holds -3"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, int64 s", "y = Expand(x, s)", {{"x", zeros({2, 3})}, {"s", Tensor::ints({1, 2}, {2, 3})}})
                .find("shape input must be 1-D"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, int64 r", "y = Tile(x, r)", {{"x", zeros({2, 3})}, {"r", Tensor::ints({1}, {2})}})
                .find("repeats has 1 entries, input has rank 2"),
            std::string::npos);
}

// Quantization parameters are read per element by an index computed from the input's shape: each
// shape and type is checked first (each case read past a vector or divided by zero before).
TEST(EvaluatorGuards, QuantizationParametersMustFitTheInput) {
  using TP = onnx::TensorProto;
  const Tensor q = Tensor::ints({4, 8}, std::vector<int64_t>(32, 1), TP::INT8);
  const auto i8 = [](std::vector<int64_t> dims, int64_t n, int32_t dtype = TP::INT8) {
    return Tensor::ints(std::move(dims), std::vector<int64_t>(static_cast<size_t>(n), 0), dtype);
  };
  EXPECT_NE(guard_error("int8 q, float s, int8 z", "y = DequantizeLinear <axis = 0> (q, s, z)",
                        {{"q", q}, {"s", Tensor::floats({4}, {1, 1, 1, 1})}, {"z", i8({1}, 1)}})
                .find("zero point has 1 elements, scale 4"),
            std::string::npos);
  EXPECT_NE(guard_error("int8 q, float s, uint8 z", "y = DequantizeLinear <axis = 0> (q, s, z)",
                        {{"q", q}, {"s", Tensor::floats({4}, {1, 1, 1, 1})}, {"z", i8({4}, 4, TP::UINT8)}})
                .find("zero point type differs from the input's"),
            std::string::npos);
  EXPECT_NE(guard_error("int8 q, int64 s", "y = DequantizeLinear <axis = 0> (q, s)", {{"q", q}, {"s", Tensor::ints({4}, {1, 1, 1, 1})}})
                .find("scale must be a float tensor"),
            std::string::npos);
  EXPECT_NE(guard_error("int8 q, float s", "y = DequantizeLinear <axis = 1, block_size = 4> (q, s)",
                        {{"q", q}, {"s", Tensor::floats({4, 1}, {1, 1, 1, 1})}}, 21)
                .find("blocked scale has dim 1 = 1, expected 2"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float s, int8 z", "y = QuantizeLinear <axis = 1> (x, s, z)",
                        {{"x", zeros({2, 3})}, {"s", Tensor::floats({3}, {1, 1, 1})}, {"z", i8({}, 1)}})
                .find("zero point has 1 elements, scale 3"),
            std::string::npos);
  // MatMulInteger and ConvInteger: zero points one per row / column / output channel, or one.
  const Tensor a = i8({2, 4}, 8, TP::UINT8), b = i8({4, 3}, 12, TP::UINT8);
  EXPECT_NE(guard_error("uint8 a, uint8 b, uint8 az, uint8 bz", "y = MatMulInteger (a, b, az, bz)",
                        {{"a", a}, {"b", b}, {"az", i8({}, 1, TP::UINT8)}, {"bz", i8({2}, 2, TP::UINT8)}})
                .find("b_zero_point must have 1 or 3 elements"),
            std::string::npos);
  EXPECT_NE(guard_error("uint8 a, uint8 b, int8 az", "y = MatMulInteger (a, b, az)", {{"a", a}, {"b", b}, {"az", i8({}, 1)}})
                .find("zero point type differs from its operand's"),
            std::string::npos);
  EXPECT_NE(guard_error("float a, uint8 b", "y = MatMulInteger (a, b)", {{"a", zeros({2, 4})}, {"b", b}})
                .find("A and B must be integer tensors"),
            std::string::npos);
  const Tensor x = i8({1, 1, 3, 3}, 9, TP::UINT8), w = i8({2, 1, 2, 2}, 8, TP::UINT8);
  EXPECT_NE(guard_error("uint8 x, uint8 w, uint8 xz", "y = ConvInteger (x, w, xz)", {{"x", x}, {"w", w}, {"xz", i8({2}, 2, TP::UINT8)}})
                .find("x_zero_point must be one value of x's type"),
            std::string::npos);
  EXPECT_NE(guard_error("uint8 x, uint8 w, uint8 xz, uint8 wz", "y = ConvInteger (x, w, xz, wz)",
                        {{"x", x}, {"w", w}, {"xz", i8({}, 1, TP::UINT8)}, {"wz", i8({3}, 3, TP::UINT8)}})
                .find("w_zero_point must be 1 or 2 values of w's type"),
            std::string::npos);
  // com.microsoft.MatMulNBits: B, scales and zero points must cover N rows of blocks.
  const std::string nbits = "<ir_version: 8, opset_import: [\"\" : 13, \"com.microsoft\" : 1]>\n"
                            "g (float a, uint8 b, float s) => (float y) {\n"
                            "  y = com.microsoft.MatMulNBits <K = 16, N = 2, bits = 4, block_size = 16> (a, b, s)\n}\n";
  try {
    run(nbits, {{"a", zeros({1, 16})}, {"b", i8({1, 1, 8}, 8, TP::UINT8)}, {"s", Tensor::floats({2}, {1, 1})}});
    ADD_FAILURE() << "MatMulNBits with half of B accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("B has 8 elements, too few for N 2 and K 16"), std::string::npos) << e.what();
  }
}

// Per-channel parameters are read at every channel index, weights through float storage.
TEST(EvaluatorGuards, NormalizationParametersAndWeightTypesAreChecked) {
  const TensorMap bn{{"x", zeros({1, 4, 2, 2})}, {"s", zeros({4})}, {"b", zeros({4})}, {"m", zeros({4})}, {"v", zeros({3})}};
  EXPECT_NE(guard_error("float x, float s, float b, float m, float v", "y = BatchNormalization (x, s, b, m, v)", bn)
                .find("input 4 [3] needs 4 elements, one per channel of X [1,4,2,2]"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float s", "y = LayerNormalization (x, s)", {{"x", zeros({2, 3})}, {"s", zeros({2})}}, 17)
                .find("Scale has 2 elements, the normalized dims hold 3"),
            std::string::npos);
  const Model m = Model::parse_text("<ir_version: 8, opset_import: [\"\" : 13]>\ng (float a, int64 b) => (float y) {\n"
                                    "  y = MatMul (a, b)\n}\n");
  try {
    Evaluator(m).run({{"a", zeros({2, 3})}, {"b", Tensor::ints({3, 2}, std::vector<int64_t>(6, 1))}});
    ADD_FAILURE() << "MatMul of float by int64 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUnsupported) << e.what();
  }
}

TEST(EvaluatorGuards, WhereAndClipOperandTypesAreChecked) {
  // A float condition, or Y of another type than X, read past a vector (SIGSEGV); a Clip bound of
  // another type or with no element was an internal error (exit 70).
  const Tensor ones = Tensor::ints({2}, {1, 1});
  EXPECT_NE(guard_error("float c, float x, float w", "y = Where (c, x, w)", {{"c", zeros({2})}, {"x", zeros({2})}, {"w", zeros({2})}})
                .find("condition must be bool"),
            std::string::npos);
  EXPECT_NE(guard_error("bool c, float x, int64 w", "y = Where (c, x, w)",
                        {{"c", Tensor::ints({2}, {1, 0}, onnx::TensorProto::BOOL)}, {"x", zeros({2})}, {"w", ones}})
                .find("X and Y differ in type"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, int64 lo", "y = Clip (x, lo)", {{"x", zeros({2})}, {"lo", Tensor::ints({}, {0})}})
                .find("min must be one value of X's type"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float lo, float hi", "y = Clip (x, lo, hi)",
                        {{"x", zeros({2})}, {"lo", zeros({})}, {"hi", Tensor::floats({0}, {})}})
                .find("max must be one value of X's type"),
            std::string::npos);
}

TEST(EvaluatorGuards, SingleValuesAreChecked) {
  // Each was read at element 0 unchecked (past an empty vector), or through vector::at (exit 70).
  EXPECT_NE(guard_error("bool c, float x", "y = If (c) <then_branch = t () => (float a) { a = Identity (x) }, "
                                           "else_branch = e () => (float b) { b = Neg (x) }>",
                        {{"c", Tensor::ints({0}, {}, onnx::TensorProto::BOOL)}, {"x", zeros({2})}})
                .find("condition must be a single value"),
            std::string::npos);
  EXPECT_NE(guard_error("int64 n, bool c, float x", "y = Loop (n, c, x) <body = b (int64 i, bool ci, float xi) => (bool co, float xo) "
                                                    "{ co = Identity (ci)\n xo = Neg (xi) }>",
                        {{"n", Tensor::ints({0}, {})}, {"c", Tensor::ints({}, {1}, onnx::TensorProto::BOOL)}, {"x", zeros({2})}})
                .find("trip count and condition must be single values"),
            std::string::npos);
  EXPECT_NE(guard_error("int64 s", "y = ConstantOfShape <value = float[0] {}> (s)", {{"s", Tensor::ints({1}, {3})}})
                .find("value must hold one element, holds 0"),
            std::string::npos);
}

// Found by a sweep of libonnx-testdata models with their inputs as initializers, one changed: each
// case read past a vector (SIGSEGV), asked for terabytes (exit 70) or looped for hours.
TEST(EvaluatorGuards, TypesCountsAndWindowsFromTheFileAreChecked) {
  EXPECT_NE(guard_error("int64 x", "y = Softmax (x)", {{"x", Tensor::ints({2}, {1, 2})}}).find("input must be a float tensor"),
            std::string::npos);
  EXPECT_NE(guard_error("float a, int64 b", "y = Concat <axis = 0> (a, b)", {{"a", zeros({2})}, {"b", Tensor::ints({2}, {1, 2})}})
                .find("inputs differ in type"),
            std::string::npos);
  EXPECT_NE(guard_error("float s, float l, int64 d", "y = Range (s, l, d)",
                        {{"s", zeros({})}, {"l", Tensor::floats({}, {4})}, {"d", Tensor::ints({}, {1})}})
                .find("start, limit and delta differ in type"),
            std::string::npos);
  EXPECT_NE(guard_error("float s, float l, float d", "y = Range (s, l, d)", {{"s", zeros({})}, {"l", Tensor::floats({}, {4})}, {"d", zeros({})}})
                .find("gives no finite count below 1e9"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = MaxPool <kernel_shape = [2, 2], pads = [0, 1099511627776, 0, 0]> (x)", {{"x", zeros({1, 1, 4, 4})}})
                .find("more than 2^30 elements"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float w", "y = ConvTranspose <strides = [1099511627776, 1]> (x, w)",
                        {{"x", zeros({1, 1, 3, 3})}, {"w", zeros({1, 1, 2, 2})}})
                .find("more than 2^30 elements"),
            std::string::npos);
  // A kernel far larger than the input: only the taps inside the input are visited.
  const auto out = run("<ir_version: 8, opset_import: [\"\" : 13]>\ng (float x) => (float y) {\n"
                       "  y = AveragePool <kernel_shape = [1099511627776, 1], auto_pad = \"SAME_UPPER\"> (x)\n}\n",
                       {{"x", Tensor::floats({1, 1, 2, 1}, {1, 3})}});
  expect_floats(out.at("y"), {1, 1, 2, 1}, {2, 2});
}

TEST(Evaluator, MatMulIntegerWithAnEmptyInnerDimIsZeros) {
  using TP = onnx::TensorProto;
  const auto out = run("<ir_version: 8, opset_import: [\"\" : 13]>\ng (uint8 a, uint8 b) => (int32 y) {\n"
                       "  y = MatMulInteger (a, b)\n}\n",
                       {{"a", Tensor::ints({2, 0}, {}, TP::UINT8)}, {"b", Tensor::ints({0, 3}, {}, TP::UINT8)}});
  EXPECT_EQ(out.at("y").dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(out.at("y").i, std::vector<int64_t>(6, 0));
}

TEST(Evaluator, PReluPerChannelSlopeAndLpNormalization) {
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 1, 2] x, float[2, 1, 1] s, float[2, 2] v) => (float[1, 2, 1, 2] p, float[2, 2] l2, float[2, 2] l1) {
  p = PRelu(x, s)
  l2 = LpNormalization <p = 2> (v)
  l1 = LpNormalization <p = 1, axis = 1> (v)
}
)",
                       {{"x", Tensor::floats({1, 2, 1, 2}, {-1, 2, -3, 4})},
                        {"s", Tensor::floats({2, 1, 1}, {0.1f, 0.5f})},
                        {"v", Tensor::floats({2, 2}, {3, 4, 0, 0})}});
  expect_floats(out.at("p"), {1, 2, 1, 2}, {-0.1f, 2, -1.5f, 4});
  expect_floats(out.at("l2"), {2, 2}, {0.6f, 0.8f, 0, 0});  // an all-zero row stays zero, not NaN
  expect_floats(out.at("l1"), {2, 2}, {3.0f / 7, 4.0f / 7, 0, 0});
}

TEST(Evaluator, UpsampleFloorsNearestIndicesWithScalesAsInputOrAttribute) {
  // Scale 3: output column j reads input column floor(j / 3) (Resize's default rounding would read 1 at j = 2).
  const auto in9 = run(R"(
<ir_version: 8, opset_import: ["" : 9]>
g (float[1, 1, 1, 2] x, float[4] s) => (float[1, 1, 1, 6] y) { y = Upsample(x, s) }
)",
                       {{"x", Tensor::floats({1, 1, 1, 2}, {1, 2})}, {"s", Tensor::floats({4}, {1, 1, 1, 3})}});
  expect_floats(in9.at("y"), {1, 1, 1, 6}, {1, 1, 1, 2, 2, 2});
  const auto in7 = run(R"(
<ir_version: 8, opset_import: ["" : 7]>
g (float[1, 1, 1, 2] x) => (float[1, 1, 2, 4] y) { y = Upsample <scales = [1.0, 1.0, 2.0, 2.0]> (x) }
)",
                       {{"x", Tensor::floats({1, 1, 1, 2}, {1, 2})}});
  expect_floats(in7.at("y"), {1, 1, 2, 4}, {1, 1, 2, 2, 1, 1, 2, 2});
}

TEST(Evaluator, DropoutPassesThroughWithAnAllTrueMaskAndRefusesRandomTraining) {
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[3] x) => (float[3] y, bool[3] m) { y, m = Dropout(x) }
)",
                       {{"x", Tensor::floats({3}, {1, -2, 3})}});
  expect_floats(out.at("y"), {3}, {1, -2, 3});
  EXPECT_EQ(out.at("m").i, (std::vector<int64_t>{1, 1, 1}));
  const Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[3] x, float r, bool t) => (float[3] y) { y = Dropout(x, r, t) }
)");
  const Evaluator ev(m);
  const auto feeds = [](float ratio) {
    return TensorMap{{"x", Tensor::floats({3}, {1, -2, 3})},
                     {"r", Tensor::floats({}, {ratio})},
                     {"t", Tensor::ints({}, {1}, onnx::TensorProto::BOOL)}};
  };
  expect_floats(ev.run(feeds(0.0f)).at("y"), {3}, {1, -2, 3});  // training with ratio 0 is the identity
  try {
    ev.run(feeds(0.5f));
    ADD_FAILURE() << "random training dropout accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUnsupported) << e.what();
  }
}

TEST(EvaluatorGuards, NormalizationLayoutActivationAndDetectionParametersAreChecked) {
  EXPECT_NE(guard_error("float x, float s", "y = PRelu(x, s)", {{"x", zeros({2, 2})}, {"s", zeros({3})}})
                .find("shapes cannot broadcast"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float s", "y = PRelu(x, s)", {{"x", zeros({2})}, {"s", zeros({2, 2})}})
                .find("slope does not broadcast to X"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = LRN <size = 0> (x)", {{"x", zeros({1, 2, 2, 2})}}).find("size must be"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = LRN <size = 3> (x)", {{"x", zeros({4})}}).find("rank >= 2"), std::string::npos);
  EXPECT_NE(guard_error("float x, float s, float b", "y = InstanceNormalization(x, s, b)",
                        {{"x", zeros({1, 3, 2, 2})}, {"s", zeros({2})}, {"b", zeros({3})}})
                .find("one value per channel (3)"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = DepthToSpace <blocksize = 2> (x)", {{"x", zeros({1, 3, 2, 2})}})
                .find("multiple of blocksize^2"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = SpaceToDepth <blocksize = 2> (x)", {{"x", zeros({1, 1, 3, 2})}})
                .find("multiples of blocksize"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = GlobalMaxPool(x)", {{"x", zeros({2, 1, 0, 1})}}).find("empty spatial dims"),
            std::string::npos);
  EXPECT_NE(guard_error("float a, float b", "y = MatMul(a, b)", {{"a", zeros({2, 2})}, {"b", zeros({})}})
                .find("rank >= 1, not scalars"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = ArgMax <axis = 1> (x)", {{"x", zeros({2, 0})}}).find("axis 1 is empty"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = LpNormalization <p = 3> (x)", {{"x", zeros({2})}}).find("p must be 1 or 2"),
            std::string::npos);
  EXPECT_NE(guard_error("float x", "y = Celu <alpha = 0.0> (x)", {{"x", zeros({2})}}).find("alpha must not be 0"),
            std::string::npos);
  EXPECT_NE(guard_error("float b, float s, int64 m", "y = NonMaxSuppression(b, s, m)",
                        {{"b", zeros({1, 3, 4})}, {"s", zeros({1, 2, 4})}, {"m", Tensor::ints({}, {2})}})
                .find("scores must have shape [batches, classes, boxes] matching boxes"),
            std::string::npos);
  EXPECT_NE(guard_error("float b, float s, int64 m", "y = NonMaxSuppression(b, s, m)",
                        {{"b", zeros({1, 3, 4})}, {"s", zeros({1, 2, 3})}, {"m", Tensor::ints({2}, {2, 2})}})
                .find("max_output_boxes_per_class must hold one value"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, float w, float r", "y = RNN <hidden_size = 4> (x, w, r)",
                        {{"x", zeros({2, 1, 3})}, {"w", zeros({1, 4, 2})}, {"r", zeros({1, 4, 4})}})
                .find("W has the wrong shape"),
            std::string::npos);
}

TEST(Evaluator, FloatsOutsideTheInt64RangeSaturateWhereverTheyBecomeIntegers) {
  // A plain float -> int64 cast of these is undefined behaviour (UBSan found Cast, ReduceProd of int64,
  // Pow of int64 and every float shape/axes operand read through as_ints).
  EXPECT_EQ(to_int64_saturated(1e30), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(to_int64_saturated(-INFINITY), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(to_int64_saturated(NAN), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(to_int64_saturated(-2.75), -2);
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[3] x, int64[2] p) => (int64[3] y, int64 r) {
  y = Cast <to = 7> (x)
  r = ReduceProd <keepdims = 0> (p)
}
)",
                       {{"x", Tensor::floats({3}, {1e30f, -1e30f, 2.5f})}, {"p", Tensor::ints({2}, {int64_t{1} << 40, int64_t{1} << 40})}});
  EXPECT_EQ(out.at("y").i, (std::vector<int64_t>{std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(), 2}));
  EXPECT_EQ(out.at("r").i, (std::vector<int64_t>{std::numeric_limits<int64_t>::max()}));
}

TEST(Evaluator, IntegerArithmeticWrapsLikeTheRuntimes) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (int64[2] a, int64[2] b) => (int64[2] s, int64[2] n, int64[2] q) {
  s = Add(a, b)
  n = Neg(a)
  q = Div(a, b)
}
)",
                       {{"a", Tensor::ints({2}, {kMax, kMin})}, {"b", Tensor::ints({2}, {1, -1})}});
  EXPECT_EQ(out.at("s").i, (std::vector<int64_t>{kMin, kMax}));
  EXPECT_EQ(out.at("n").i, (std::vector<int64_t>{-kMax, kMin}));
  EXPECT_EQ(out.at("q").i, (std::vector<int64_t>{kMax, kMin}));
}

TEST(EvaluatorGuards, ReshapeTargetsThatOverflowOrHoldNegativeDimsAreRefused) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_NE(guard_error("float x, int64 s", "y = Reshape(x, s)", {{"x", zeros({2, 2})}, {"s", Tensor::ints({3}, {-1, kMax, kMax})}})
                .find("product overflows int64"),
            std::string::npos);
  EXPECT_NE(guard_error("float x, int64 s", "y = Reshape(x, s)", {{"x", zeros({2, 2})}, {"s", Tensor::ints({2}, {-1, -1})}})
                .find("negative dim"),
            std::string::npos);
}

TEST(Evaluator, GridSampleBilinearAndNearestWithAlignedCorners) {
  // align_corners = 1: -1 and 1 are the centres of the corner pixels; (0, 0) is the image centre.
  const auto out = run(R"(
<ir_version: 8, opset_import: ["" : 16]>
g (float[1, 1, 2, 2] x, float[1, 1, 3, 2] grid) => (float[1, 1, 1, 3] b, float[1, 1, 1, 3] n) {
  b = GridSample <align_corners = 1> (x, grid)
  n = GridSample <align_corners = 1, mode = "nearest"> (x, grid)
}
)",
                       {{"x", Tensor::floats({1, 1, 2, 2}, {1, 2, 3, 4})},
                        {"grid", Tensor::floats({1, 1, 3, 2}, {-1, -1, 1, 1, 0, -1})}});
  expect_floats(out.at("b"), {1, 1, 1, 3}, {1, 4, 1.5f});
  expect_floats(out.at("n"), {1, 1, 1, 3}, {1, 4, 1});  // x = 0.5 rounds half to even: column 0
  EXPECT_NE(guard_error("float x, float g", "y = GridSample(x, g)", {{"x", zeros({1, 1, 2, 2})}, {"g", zeros({1, 3, 3})}}, 16)
                .find("must be N x H_out x W_out x 2"),
            std::string::npos);
}

TEST(Evaluator, ProtoRoundTripKeepsTypeAndValues) {
  const Tensor t = Tensor::ints({2, 2}, {-8, 7, 0, 3}, onnx::TensorProto::INT8);
  const Tensor back = from_proto(to_proto(t, "t"));
  EXPECT_EQ(back.dtype, onnx::TensorProto::INT8);
  EXPECT_EQ(back.dims, t.dims);
  EXPECT_EQ(back.i, t.i);
}

}  // namespace
}  // namespace compress::eval
