// The index-driven kernels (src/eval/ops_index.cpp) on tiny graphs with hand-computed outputs, and for
// each op malformed inputs that must be refused with kBadInput (never read out of range). Inputs are
// fed unranked so the load-time shape check cannot see them: the kernel's own checks are under test.
#include <compress/error.h>
#include <compress/evaluator.h>
#include <compress/model.h>
#include <gtest/gtest.h>

namespace compress::eval {
namespace {

using TP = onnx::TensorProto;

// A one-graph model: signature "(inputs) => (outputs)" and node lines, at `opset`.
std::string model(const std::string& signature, const std::string& nodes, int opset = 17) {
  return "<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) + "]>\ng " + signature + " {\n" + nodes + "\n}\n";
}

TensorMap run(const std::string& text, TensorMap feeds) {
  const Model m = Model::parse_text(text);
  Evaluator ev(m);
  return ev.run(feeds);
}

// The message of the Error that running `text` throws, checked to carry `code`.
std::string error_of(const std::string& text, TensorMap feeds, ExitCode code = ExitCode::kBadInput) {
  try {
    run(text, std::move(feeds));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << text;
  return "";
}

bool has(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

Tensor floats(std::vector<int64_t> dims, std::vector<float> v) { return Tensor::floats(std::move(dims), std::move(v)); }
Tensor ints(std::vector<int64_t> dims, std::vector<int64_t> v, int32_t dtype = TP::INT64) {
  return Tensor::ints(std::move(dims), std::move(v), dtype);
}

void expect_floats(const Tensor& t, const std::vector<int64_t>& dims, const std::vector<float>& want) {
  EXPECT_EQ(t.dtype, TP::FLOAT);
  EXPECT_EQ(t.dims, dims);
  EXPECT_EQ(t.f, want);
}

void expect_ints(const Tensor& t, int32_t dtype, const std::vector<int64_t>& dims, const std::vector<int64_t>& want) {
  EXPECT_EQ(t.dtype, dtype);
  EXPECT_EQ(t.dims, dims);
  EXPECT_EQ(t.i, want);
}

const Tensor kX34 = floats({3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});

TEST(EvalIndexOps, TriluKeepsTheUpperOrLowerTriangleShiftedByK) {
  const auto up = run(model("(float x, int64 k) => (float y)", "y = Trilu(x, k)"), {{"x", kX34}, {"k", ints({}, {1})}});
  expect_floats(up.at("y"), {3, 4}, {0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12});
  const auto low = run(model("(float x, int64 k) => (float y)", "y = Trilu <upper = 0> (x, k)"), {{"x", kX34}, {"k", ints({}, {-1})}});
  expect_floats(low.at("y"), {3, 4}, {0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0});
  const auto i32 = run(model("(int32 x) => (int32 y)", "y = Trilu(x)"), {{"x", ints({2, 2}, {1, 2, 3, 4}, TP::INT32)}});
  expect_ints(i32.at("y"), TP::INT32, {2, 2}, {1, 2, 0, 4});
}

TEST(EvalIndexOps, TriluRefusesRankBelowTwoAndAKThatIsNotOneValue) {
  EXPECT_TRUE(has(error_of(model("(float x) => (float y)", "y = Trilu(x)"), {{"x", floats({3}, {1, 2, 3})}}),
                  "Trilu needs rank >= 2"));
  EXPECT_TRUE(has(error_of(model("(float x, int64 k) => (float y)", "y = Trilu(x, k)"), {{"x", kX34}, {"k", ints({2}, {0, 1})}}),
                  "k must be a single value, has 2"));
}

TEST(EvalIndexOps, CumSumRunsForwardOrReversedInclusiveOrExclusive) {
  const Tensor x = floats({2, 3}, {1, 2, 3, 4, 5, 6});
  const std::string sig = "(float x, int64 a) => (float y)";
  expect_floats(run(model(sig, "y = CumSum(x, a)"), {{"x", x}, {"a", ints({}, {1})}}).at("y"), {2, 3}, {1, 3, 6, 4, 9, 15});
  expect_floats(run(model(sig, "y = CumSum <exclusive = 1, reverse = 1> (x, a)"), {{"x", x}, {"a", ints({}, {-2})}}).at("y"),
                {2, 3}, {4, 5, 6, 0, 0, 0});
  const auto i = run(model("(int32 x, int32 a) => (int32 y)", "y = CumSum <exclusive = 1> (x, a)"),
                     {{"x", ints({4}, {1, 2, 3, 4}, TP::INT32)}, {"a", ints({1}, {0}, TP::INT32)}});
  expect_ints(i.at("y"), TP::INT32, {4}, {0, 1, 3, 6});
}

TEST(EvalIndexOps, CumSumRefusesAnAxisOutOfRangeOrNotOneInteger) {
  const std::string sig = "(float x, int64 a) => (float y)";
  EXPECT_TRUE(has(error_of(model(sig, "y = CumSum(x, a)"), {{"x", kX34}, {"a", ints({}, {2})}}), "axis 2 out of range for rank 2"));
  EXPECT_TRUE(has(error_of(model("(float x, float a) => (float y)", "y = CumSum(x, a)"), {{"x", kX34}, {"a", floats({}, {1})}}),
                  "axis must be an integer tensor"));
}

TEST(EvalIndexOps, GatherElementsPicksAlongTheAxisWithNegativeIndices) {
  const auto out = run(model("(float x, int64 i) => (float y)", "y = GatherElements <axis = 1> (x, i)"),
                       {{"x", floats({2, 2}, {1, 2, 3, 4})}, {"i", ints({2, 2}, {0, 0, -1, 0})}});
  expect_floats(out.at("y"), {2, 2}, {1, 1, 4, 3});
  // Fewer rows than data: indices may be smaller than data off the axis.
  const auto rows = run(model("(float x, int32 i) => (float y)", "y = GatherElements(x, i)"),
                        {{"x", kX34}, {"i", ints({1, 2}, {2, 1}, TP::INT32)}});
  expect_floats(rows.at("y"), {1, 2}, {9, 6});
}

TEST(EvalIndexOps, GatherElementsRefusesIndicesOutOfRangeOrOfAnotherRank) {
  const std::string text = model("(float x, int64 i) => (float y)", "y = GatherElements <axis = 1> (x, i)");
  EXPECT_TRUE(has(error_of(text, {{"x", kX34}, {"i", ints({1, 1}, {4})}}), "index 4 out of range for a dim of 4"));
  EXPECT_TRUE(has(error_of(text, {{"x", kX34}, {"i", ints({1, 1}, {-5})}}), "index -5 out of range"));
  EXPECT_TRUE(has(error_of(text, {{"x", kX34}, {"i", ints({2}, {0, 1})}}), "differ in rank"));
  EXPECT_TRUE(has(error_of(text, {{"x", kX34}, {"i", ints({4, 1}, {0, 0, 0, 0})}}), "exceed data [3,4] along dim 0"));
}

TEST(EvalIndexOps, GatherNDReadsSlicesPerBatch) {
  const Tensor x = floats({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  const auto plain = run(model("(float x, int64 i) => (float y)", "y = GatherND(x, i)"), {{"x", x}, {"i", ints({2, 2}, {1, -1, 0, 0})}});
  expect_floats(plain.at("y"), {2, 2}, {6, 7, 0, 1});
  const auto batched = run(model("(float x, int64 i) => (float y)", "y = GatherND <batch_dims = 1> (x, i)"),
                           {{"x", x}, {"i", ints({2, 1}, {1, 0})}});
  expect_floats(batched.at("y"), {2, 2}, {2, 3, 4, 5});
}

TEST(EvalIndexOps, GatherNDRefusesBadTuplesIndicesAndBatchDims) {
  const Tensor x = floats({2, 2}, {1, 2, 3, 4});
  const std::string text = model("(float x, int64 i) => (float y)", "y = GatherND(x, i)");
  EXPECT_TRUE(has(error_of(text, {{"x", x}, {"i", ints({1, 3}, {0, 0, 0})}}), "index tuples of 3 entries"));
  EXPECT_TRUE(has(error_of(text, {{"x", x}, {"i", ints({1, 2}, {0, 2})}}), "index 2 out of range for a dim of 2"));
  const std::string batched = model("(float x, int64 i) => (float y)", "y = GatherND <batch_dims = 1> (x, i)");
  EXPECT_TRUE(has(error_of(batched, {{"x", x}, {"i", ints({3, 1}, {0, 0, 0})}}), "batch dim 0 differs"));
  const std::string deep = model("(float x, int64 i) => (float y)", "y = GatherND <batch_dims = 2> (x, i)");
  EXPECT_TRUE(has(error_of(deep, {{"x", x}, {"i", ints({2, 1}, {0, 0})}}), "batch_dims 2 must be in [0, min"));
}

TEST(EvalIndexOps, ScatterNDWritesOrReducesUpdatesIntoACopy) {
  const std::string sig = "(float x, int64 i, float u) => (float y)";
  const auto set = run(model(sig, "y = ScatterND(x, i, u)"), {{"x", floats({8}, {1, 2, 3, 4, 5, 6, 7, 8})},
                                                             {"i", ints({4, 1}, {4, 3, 1, 7})},
                                                             {"u", floats({4}, {9, 10, 11, 12})}});
  expect_floats(set.at("y"), {8}, {1, 11, 3, 10, 9, 6, 7, 12});
  // Duplicate indices accumulate under add and mul; rows are whole slices of a 2-D data.
  const Tensor x = floats({2, 2}, {1, 2, 3, 4});
  const TensorMap feeds = {{"x", x}, {"i", ints({2, 1}, {-1, 1})}, {"u", floats({2, 2}, {10, 20, 2, 3})}};
  expect_floats(run(model(sig, "y = ScatterND <reduction = \"add\"> (x, i, u)"), feeds).at("y"), {2, 2}, {1, 2, 15, 27});
  expect_floats(run(model(sig, "y = ScatterND <reduction = \"mul\"> (x, i, u)"), feeds).at("y"), {2, 2}, {1, 2, 60, 240});
}

TEST(EvalIndexOps, ScatterNDRefusesUpdatesOfAnotherShapeAndIndicesOutOfRange) {
  const std::string text = model("(float x, int64 i, float u) => (float y)", "y = ScatterND(x, i, u)");
  const Tensor x = floats({2, 2}, {1, 2, 3, 4});
  EXPECT_TRUE(has(error_of(text, {{"x", x}, {"i", ints({1, 1}, {0})}, {"u", floats({3}, {1, 2, 3})}}),
                  "updates [3] must have shape [1,2]"));
  EXPECT_TRUE(has(error_of(text, {{"x", x}, {"i", ints({1, 1}, {2})}, {"u", floats({1, 2}, {1, 2})}}),
                  "index 2 out of range for a dim of 2"));
  EXPECT_TRUE(has(error_of(text, {{"x", x}, {"i", ints({1, 1}, {0})}, {"u", ints({1, 2}, {1, 2})}}), "updates differ in type"));
  EXPECT_TRUE(has(error_of(model("(float x, int64 i, float u) => (float y)", "y = ScatterND <reduction = \"sum\"> (x, i, u)"),
                           {{"x", x}, {"i", ints({1, 1}, {0})}, {"u", floats({1, 2}, {1, 2})}}),
                  "unknown reduction 'sum'"));
}

TEST(EvalIndexOps, ScatterElementsWritesAlongTheAxisAndScatterIsItsOldName) {
  const Tensor x = floats({3, 3}, {0, 0, 0, 0, 0, 0, 0, 0, 0});
  const TensorMap feeds = {{"x", x}, {"i", ints({2, 3}, {1, 0, 2, 0, 2, -2})}, {"u", floats({2, 3}, {1, 2, 3, 4, 5, 6})}};
  const std::vector<float> want = {4, 2, 0, 1, 0, 6, 0, 5, 3};
  const std::string sig = "(float x, int64 i, float u) => (float y)";
  expect_floats(run(model(sig, "y = ScatterElements(x, i, u)"), feeds).at("y"), {3, 3}, want);
  expect_floats(run(model(sig, "y = Scatter(x, i, u)", 10), feeds).at("y"), {3, 3}, want);
  const auto mul = run(model("(int64 x, int64 i, int64 u) => (int64 y)", "y = ScatterElements <axis = 1, reduction = \"mul\"> (x, i, u)", 16),
                       {{"x", ints({1, 3}, {1, 2, 3})}, {"i", ints({1, 2}, {2, 2})}, {"u", ints({1, 2}, {4, 5})}});
  expect_ints(mul.at("y"), TP::INT64, {1, 3}, {1, 2, 60});
}

TEST(EvalIndexOps, ScatterElementsRefusesIndicesOutOfRangeAndMismatchedShapes) {
  const std::string text = model("(float x, int64 i, float u) => (float y)", "y = ScatterElements <axis = 1> (x, i, u)");
  EXPECT_TRUE(has(error_of(text, {{"x", kX34}, {"i", ints({1, 1}, {4})}, {"u", floats({1, 1}, {1})}}),
                  "index 4 out of range for a dim of 4"));
  EXPECT_TRUE(has(error_of(text, {{"x", kX34}, {"i", ints({1, 2}, {0, 1})}, {"u", floats({1, 1}, {1})}}),
                  "updates [1,1] and indices [1,2] differ in shape"));
  EXPECT_TRUE(has(error_of(text, {{"x", kX34}, {"i", ints({2}, {0, 1})}, {"u", floats({2}, {1, 2})}}), "differ in rank"));
  EXPECT_TRUE(has(error_of(text, {{"x", kX34}, {"i", ints({4, 1}, {0, 0, 0, 0})}, {"u", floats({4, 1}, {1, 2, 3, 4})}}),
                  "exceed data [3,4] along dim 0"));
}

TEST(EvalIndexOps, TopKSortsLargestOrSmallestWithTiesByLowerIndex) {
  const Tensor x = floats({3, 4}, {1, 3, 3, 2, 0, -1, 5, 5, 4, 4, 4, 4});
  const std::string sig = "(float x, int64 k) => (float v, int64 i)";
  const auto big = run(model(sig, "v, i = TopK(x, k)"), {{"x", x}, {"k", ints({1}, {2})}});
  expect_floats(big.at("v"), {3, 2}, {3, 3, 5, 5, 4, 4});
  expect_ints(big.at("i"), TP::INT64, {3, 2}, {1, 2, 2, 3, 0, 1});
  const auto small = run(model(sig, "v, i = TopK <largest = 0, axis = 0> (x, k)"), {{"x", x}, {"k", ints({1}, {2})}});
  expect_floats(small.at("v"), {2, 4}, {0, -1, 3, 2, 1, 3, 4, 4});
  expect_ints(small.at("i"), TP::INT64, {2, 4}, {1, 1, 0, 0, 0, 0, 2, 2});
  // Opset 1 takes k as an attribute; integer values keep their dtype.
  const auto v1 = run(model("(int32 x) => (int32 v, int64 i)", "v, i = TopK <k = 1> (x)", 1),
                      {{"x", ints({3}, {7, 9, 8}, TP::INT32)}});
  expect_ints(v1.at("v"), TP::INT32, {1}, {9});
  expect_ints(v1.at("i"), TP::INT64, {1}, {1});
}

TEST(EvalIndexOps, TopKRefusesKOutOfRange) {
  const std::string text = model("(float x, int64 k) => (float v, int64 i)", "v, i = TopK(x, k)");
  EXPECT_TRUE(has(error_of(text, {{"x", kX34}, {"k", ints({1}, {5})}}), "k 5 out of range for an axis of 4"));
  EXPECT_TRUE(has(error_of(text, {{"x", kX34}, {"k", ints({1}, {-1})}}), "k -1 out of range"));
  EXPECT_TRUE(has(error_of(text, {{"x", floats({}, {1})}, {"k", ints({1}, {1})}}), "axis -1 out of range for rank 0"));
}

TEST(EvalIndexOps, NonZeroListsCoordinatesAsInt64) {
  const auto out = run(model("(float x) => (int64 y)", "y = NonZero(x)"), {{"x", floats({2, 3}, {1, 0, 0, 0, 3, -2})}});
  expect_ints(out.at("y"), TP::INT64, {2, 3}, {0, 1, 1, 0, 1, 2});
  const auto scalar = run(model("(int32 x) => (int64 y)", "y = NonZero(x)"), {{"x", ints({}, {5}, TP::INT32)}});
  expect_ints(scalar.at("y"), TP::INT64, {1, 1}, {0});
}

TEST(EvalIndexOps, NonZeroRefusesAMissingInput) {
  EXPECT_TRUE(has(error_of(model("(float x) => (int64 y)", "y = NonZero()"), {{"x", floats({1}, {1})}}), "input 0 is required"));
}

TEST(EvalIndexOps, OneHotPlacesOnValuesAndLeavesOutOfRangeIndicesOff) {
  const TensorMap feeds = {{"i", ints({4}, {0, 2, -1, 5})}, {"d", floats({}, {3})}, {"v", floats({2}, {-1, 7})}};
  const std::string sig = "(int64 i, float d, float v) => (float y)";
  expect_floats(run(model(sig, "y = OneHot(i, d, v)"), feeds).at("y"), {4, 3}, {7, -1, -1, -1, -1, 7, -1, -1, 7, -1, -1, -1});
  expect_floats(run(model(sig, "y = OneHot <axis = 0> (i, d, v)"), feeds).at("y"), {3, 4}, {7, -1, -1, -1, -1, -1, -1, -1, -1, 7, 7, -1});
  const auto typed = run(model("(float i, int64 d, int32 v) => (int32 y)", "y = OneHot(i, d, v)"),
                         {{"i", floats({2}, {1.5f, -2})}, {"d", ints({1}, {2})}, {"v", ints({2}, {0, 1}, TP::INT32)}});
  expect_ints(typed.at("y"), TP::INT32, {2, 2}, {0, 1, 1, 0});
}

TEST(EvalIndexOps, OneHotRefusesBadDepthValuesAndAxis) {
  const std::string text = model("(int64 i, float d, float v) => (float y)", "y = OneHot(i, d, v)");
  const Tensor i = ints({2}, {0, 1});
  EXPECT_TRUE(has(error_of(text, {{"i", i}, {"d", floats({}, {0})}, {"v", floats({2}, {0, 1})}}), "must be in [1, 2^30]"));
  EXPECT_TRUE(has(error_of(text, {{"i", i}, {"d", floats({}, {1e30f})}, {"v", floats({2}, {0, 1})}}), "must be in [1, 2^30]"));
  EXPECT_TRUE(has(error_of(text, {{"i", i}, {"d", floats({}, {2})}, {"v", floats({3}, {0, 1, 2})}}), "values must hold [off, on]"));
  EXPECT_TRUE(has(error_of(model("(int64 i, float d, float v) => (float y)", "y = OneHot <axis = 2> (i, d, v)"),
                           {{"i", i}, {"d", floats({}, {2})}, {"v", floats({2}, {0, 1})}}),
                  "axis 2 out of range for rank 2"));
}

TEST(EvalIndexOps, EyeLikeSetsTheShiftedDiagonalInTheAskedType) {
  expect_floats(run(model("(float x) => (float y)", "y = EyeLike <k = 1> (x)"), {{"x", floats({2, 3}, {9, 9, 9, 9, 9, 9})}}).at("y"),
                {2, 3}, {0, 1, 0, 0, 0, 1});
  const auto typed = run(model("(float x) => (int32 y)", "y = EyeLike <k = -1, dtype = 6> (x)"), {{"x", floats({3, 2}, {0, 0, 0, 0, 0, 0})}});
  expect_ints(typed.at("y"), TP::INT32, {3, 2}, {0, 0, 1, 0, 0, 1});
  const auto far = run(model("(float x) => (float y)", "y = EyeLike <k = 9223372036854775807> (x)"), {{"x", floats({2, 2}, {1, 1, 1, 1})}});
  expect_floats(far.at("y"), {2, 2}, {0, 0, 0, 0});
}

TEST(EvalIndexOps, EyeLikeRefusesOtherRanksAndNonNumericTypes) {
  EXPECT_TRUE(has(error_of(model("(float x) => (float y)", "y = EyeLike(x)"), {{"x", floats({2}, {1, 2})}}), "EyeLike needs rank 2"));
  EXPECT_TRUE(has(error_of(model("(float x) => (string y)", "y = EyeLike <dtype = 8> (x)"), {{"x", floats({1, 1}, {1})}}),
                  "dtype 8 is not a numeric or bool type"));
}

TEST(EvalIndexOps, CompressKeepsSelectedSlicesOrFlatElements) {
  const std::string sig = "(float x, bool c) => (float y)";
  const auto rows = run(model(sig, "y = Compress <axis = -2> (x, c)"), {{"x", kX34}, {"c", ints({3}, {0, 1, 1}, TP::BOOL)}});
  expect_floats(rows.at("y"), {2, 4}, {5, 6, 7, 8, 9, 10, 11, 12});
  // A condition shorter than the axis drops the rest.
  const auto cols = run(model(sig, "y = Compress <axis = 1> (x, c)"), {{"x", kX34}, {"c", ints({2}, {1, 0}, TP::BOOL)}});
  expect_floats(cols.at("y"), {3, 1}, {1, 5, 9});
  const auto flat = run(model(sig, "y = Compress(x, c)"), {{"x", kX34}, {"c", ints({6}, {0, 0, 1, 0, 0, 1}, TP::BOOL)}});
  expect_floats(flat.at("y"), {2}, {3, 6});
}

TEST(EvalIndexOps, CompressRefusesAConditionLongerThanTheAxisOrNot1D) {
  const std::string text = model("(float x, bool c) => (float y)", "y = Compress <axis = 0> (x, c)");
  EXPECT_TRUE(has(error_of(text, {{"x", kX34}, {"c", ints({4}, {0, 0, 0, 1}, TP::BOOL)}}), "condition has 4 entries, the axis 3"));
  EXPECT_TRUE(has(error_of(text, {{"x", kX34}, {"c", ints({1, 1}, {1}, TP::BOOL)}}), "condition [1,1] must be 1-D"));
}

TEST(EvalIndexOps, EinsumContractsExplicitAndImplicitEquations) {
  const Tensor a = floats({2, 3}, {1, 2, 3, 4, 5, 6}), b = floats({3, 2}, {1, 0, 0, 1, 1, 1});
  const std::string two = "(float a, float b) => (float y)";
  expect_floats(run(model(two, "y = Einsum <equation = \"ij,jk->ik\"> (a, b)"), {{"a", a}, {"b", b}}).at("y"), {2, 2}, {4, 5, 10, 11});
  // Implicit: letters used once, in alphabetical order, so "ij,jk" is the same product and "ji" a transpose.
  expect_floats(run(model(two, "y = Einsum <equation = \"ij, jk\"> (a, b)"), {{"a", a}, {"b", b}}).at("y"), {2, 2}, {4, 5, 10, 11});
  const std::string one = "(float a) => (float y)";
  expect_floats(run(model(one, "y = Einsum <equation = \"ji\"> (a)"), {{"a", a}}).at("y"), {3, 2}, {1, 4, 2, 5, 3, 6});
  // A repeated letter reads the diagonal; summed away it is the trace.
  const Tensor sq = floats({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  expect_floats(run(model(one, "y = Einsum <equation = \"ii->i\"> (a)"), {{"a", sq}}).at("y"), {3}, {1, 5, 9});
  expect_floats(run(model(one, "y = Einsum <equation = \"ii\"> (a)"), {{"a", sq}}).at("y"), {}, {15});
  // Ellipsis dims broadcast (1 stretches) and lead the output.
  const Tensor batch = floats({2, 1, 2}, {1, 2, 3, 4}), vec = floats({3, 2}, {1, 1, 1, 0, 0, 1});
  expect_floats(run(model(two, "y = Einsum <equation = \"...j,...j->...\"> (a, b)"), {{"a", batch}, {"b", vec}}).at("y"), {2, 3},
                {3, 1, 2, 7, 3, 4});
  const auto i = run(model("(int64 a, int64 b) => (int64 y)", "y = Einsum <equation = \"i,i\"> (a, b)"),
                     {{"a", ints({3}, {1, 2, 3})}, {"b", ints({3}, {4, 5, 6})}});
  expect_ints(i.at("y"), TP::INT64, {}, {32});
}

TEST(EvalIndexOps, EinsumRefusesMalformedEquationsAndHugeLoops) {
  const Tensor a = floats({2, 3}, {1, 2, 3, 4, 5, 6});
  const std::string two = "(float a, float b) => (float y)";
  EXPECT_TRUE(has(error_of(model(two, "y = Einsum <equation = \"ij,jk->ik\"> (a, b)"), {{"a", a}, {"b", a}}),
                  "operand 1 [2,3] has dim 2 where another has 3"));
  EXPECT_TRUE(has(error_of(model(two, "y = Einsum <equation = \"ij->ij\"> (a, b)"), {{"a", a}, {"b", a}}),
                  "names 1 operands, the node has 2"));
  const std::string one = "(float a) => (float y)";
  EXPECT_TRUE(has(error_of(model(one, "y = Einsum <equation = \"ijk\"> (a)"), {{"a", a}}), "operand 0 [2,3] does not fit equation term 0"));
  EXPECT_TRUE(has(error_of(model(one, "y = Einsum <equation = \"i1->i\"> (a)"), {{"a", a}}), "holds '1'"));
  EXPECT_TRUE(has(error_of(model(one, "y = Einsum <equation = \"ij->ik\"> (a)"), {{"a", a}}), "output subscript missing"));
  EXPECT_TRUE(has(error_of(model(one, "y = Einsum <equation = \"ij->ii\"> (a)"), {{"a", a}}), "output subscript repeated"));
  // 400^4 products of 4 operands: refused up front rather than looping for minutes.
  const Tensor v = Tensor::zeros(TP::FLOAT, {400});
  EXPECT_TRUE(has(error_of(model("(float a, float b, float c, float d) => (float y)", "y = Einsum <equation = \"i,j,k,l->\"> (a, b, c, d)"),
                           {{"a", v}, {"b", v}, {"c", v}, {"d", v}}, ExitCode::kUnsupported),
                  "more than 1e10 multiply-adds"));
}

// An empty tensor may pair a 0 with dims of 2^40: kernels must not loop over the other dims.
TEST(EvalIndexOps, EmptyInputsWithHugeDimsFinishAtOnce) {
  const int64_t big = int64_t{1} << 40;
  const Tensor x = floats({big, 0, big}, {});
  expect_floats(run(model("(float x, int64 a) => (float y)", "y = CumSum(x, a)"), {{"x", x}, {"a", ints({}, {1})}}).at("y"),
                {big, 0, big}, {});
  const auto top = run(model("(float x, int64 k) => (float v, int64 i)", "v, i = TopK <axis = 1> (x, k)"),
                       {{"x", x}, {"k", ints({1}, {0})}});
  expect_ints(top.at("i"), TP::INT64, {big, 0, big}, {});
  expect_floats(run(model("(float x, bool c) => (float y)", "y = Compress <axis = 1> (x, c)"),
                    {{"x", x}, {"c", ints({0}, {}, TP::BOOL)}}).at("y"),
                {big, 0, big}, {});
  const auto hot = run(model("(int64 i, int64 d, float v) => (float y)", "y = OneHot <axis = 1> (i, d, v)"),
                       {{"i", ints({big, 0, big}, {})}, {"d", ints({}, {2})}, {"v", floats({2}, {0, 1})}});
  expect_floats(hot.at("y"), {big, 2, 0, big}, {});
}

}  // namespace
}  // namespace compress::eval
