// Structural validation before ONNX's checker and shape inference (src/core/validate.cpp), the
// overflow-checked sizes of tensors and external data, and the evaluator's shape guards.
#include <compress/error.h>
#include <compress/evaluator.h>
#include <compress/model.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/validate.h"
#include "testing/builders.h"

namespace compress {
namespace {

namespace fs = std::filesystem;

// The message of the kBadInput error validate_model throws, or "" when it accepts the model.
std::string rejection(const Model& m) {
  try {
    validate_model(m.proto());
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    return e.what();
  }
  return "";
}

Model conv(const std::string& attrs) {
  return testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 8, 8] x) => (float[1, 4, 6, 6] y) {
  y = Conv )" + attrs + R"( (x, w)
}
)",
                                     {testing::random_tensor("w", {4, 2, 3, 3}, 1)});
}

TEST(Validate, AcceptsAValidModel) { EXPECT_EQ(rejection(conv("")), ""); }

TEST(Validate, RejectsNonPositiveConvAttributes) {
  // strides 0 made ONNX shape inference divide by zero (SIGFPE).
  EXPECT_NE(rejection(conv("<strides = [0, 0]>")).find("attribute 'strides' holds 0 (must be >= 1)"), std::string::npos);
  EXPECT_NE(rejection(conv("<dilations = [1, -1]>")).find("'dilations' holds -1"), std::string::npos);
  EXPECT_NE(rejection(conv("<group = 0>")).find("'group' is 0"), std::string::npos);
  EXPECT_NE(rejection(conv("<pads = [0, -1, 0, 0]>")).find("'pads' holds -1"), std::string::npos);
}

TEST(Validate, RejectsAttributesOfTheWrongType) {
  EXPECT_NE(rejection(conv("<strides = [1.0, 1.0]>")).find("attribute 'strides' is FLOATS, expected INTS"),
            std::string::npos);
}

TEST(Validate, RejectsScanWithoutNumScanInputs) {
  // Scan-9 without num_scan_inputs crashed ONNX shape inference (SIGSEGV).
  Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 9]>
g (float[2] s0, float[3, 2] xs) => (float[2] sf, float[3, 2] ys) {
  sf, ys = Scan <body = b (float[2] s, float[2] e) => (float[2] s2, float[2] o) {
    s2 = Add(s, e)
    o = Identity(s2)
  }> (s0, xs)
}
)");
  EXPECT_NE(rejection(m).find("num_scan_inputs must be 1 to 2"), std::string::npos);
}

TEST(Validate, RejectsRecursiveFunctions) {
  // A function calling itself overflowed the stack in ONNX's function shape inference.
  Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13, "local" : 1]>
g (float[2] x) => (float[2] y) {
  y = local.f(x)
}
<domain: "local", opset_import: ["" : 13, "local" : 1]>
f (a) => (b) {
  b = local.g(a)
}
<domain: "local", opset_import: ["" : 13, "local" : 1]>
g (a) => (b) {
  b = local.f(a)
}
)");
  EXPECT_NE(rejection(m).find("calls itself"), std::string::npos);
}

TEST(Validate, RejectsCyclesUndefinedAndDuplicateValues) {
  EXPECT_NE(rejection(Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] b) {
  a = Relu(b)
  b = Relu(a)
}
)")).find("cycle"),
            std::string::npos);
  EXPECT_NE(rejection(Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y) {
  y = Relu(nope)
}
)")).find("reads 'nope', which no node, input or initializer defines"),
            std::string::npos);
  EXPECT_NE(rejection(Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2] x) => (float[2] y) {
  y = Relu(x)
  y = Relu(x)
}
)")).find("produced twice"),
            std::string::npos);
}

TEST(Validate, AcceptsOuterScopeReadsAndUnsortedNodes) {
  Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool c, float[2] x) => (float[2] y) {
  y = If (c) <then_branch = t () => (float[2] r) { r = Relu(h) }, else_branch = e () => (float[2] r) { r = Neg(h) }>
  h = Relu(x)
}
)");
  EXPECT_EQ(rejection(m), "");
}

// An If whose then branch multiplies by `w`, a sparse initializer of that branch: [4, 4] with
// values at the linear `indices`.
Model sparse_in_branch(const std::vector<int64_t>& indices) {
  Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (bool c, float[1, 4] x) => (float[1, 4] y) {
  y = If (c) <then_branch = t () => (float[1, 4] a) { a = MatMul(x, w) }, else_branch = e () => (float[1, 4] b) { b = Identity(x) }>
}
)");
  auto* branch = m.proto().mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_g();
  auto* sparse = branch->add_sparse_initializer();
  const std::vector<float> values{1.0f, 2.0f, 3.0f};
  *sparse->mutable_values() = make_float_tensor("w", {3}, values);
  *sparse->mutable_indices() = make_int64_tensor("w_indices", {static_cast<int64_t>(indices.size())}, indices);
  sparse->add_dims(4);
  sparse->add_dims(4);
  return m;
}

TEST(Validate, ChecksSparseInitializersOfSubgraphs) {
  EXPECT_EQ(rejection(sparse_in_branch({0, 5, 10})), "");
  EXPECT_EQ(rejection(sparse_in_branch({0, 5, 99})), "sparse tensor 'w': index 99 is outside its dims");
  EXPECT_EQ(rejection(sparse_in_branch({0, 5})), "sparse tensor 'w': indices must be [3] or [3, 2]");
}

TEST(Evaluator, DensifiesSparseInitializersOfSubgraphs) {
  const Model m = sparse_in_branch({0, 5, 10});
  const eval::Evaluator evaluator(m);
  eval::TensorMap feeds;
  feeds["c"] = eval::Tensor::ints({}, {1}, TensorProto::BOOL);
  feeds["x"] = eval::Tensor::floats({1, 4}, {1.0f, 10.0f, 100.0f, 1000.0f});
  const auto out = evaluator.run(feeds);
  EXPECT_EQ(out.at("y").f, (std::vector<float>{1.0f, 20.0f, 300.0f, 0.0f}));
}

TEST(Validate, RejectsTransposePermThatIsNoPermutation) {
  Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 3, 4] x) => (float[2, 3, 4] y) {
  y = Transpose <perm = [0, 0, 7]> (x)
}
)");
  EXPECT_NE(rejection(m).find("not a permutation"), std::string::npos);
}

TEST(Tensor, ElementCountOverflowIsAnError) {
  // [2^32, 2^32] wrapped to 0 elements, so an empty raw_data passed as the right size.
  TensorProto t = make_raw_tensor("w", TensorProto::FLOAT, {int64_t{1} << 32, int64_t{1} << 32}, "");
  try {
    validate_tensor(t);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("overflows 64 bits"), std::string::npos);
  }
}

TEST(ModelLoad, ExternalOffsetPlusLengthOverflowIsAnError) {
  const fs::path dir = fs::temp_directory_path() / ("compress_validate_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Model m = conv("");
  auto* w = m.proto().graph().initializer().empty() ? nullptr
                                                     : const_cast<onnx::ModelProto&>(m.proto()).mutable_graph()->mutable_initializer(0);
  ASSERT_NE(w, nullptr);
  w->clear_raw_data();
  w->set_data_location(TensorProto::EXTERNAL);
  for (const auto& [k, v] : {std::pair<std::string, std::string>{"location", "w.bin"},
                             {"offset", std::to_string(INT64_MAX - 8)}, {"length", "288"}}) {
    auto* e = w->add_external_data();
    e->set_key(k);
    e->set_value(v);
  }
  std::ofstream(dir / "w.bin", std::ios::binary) << std::string(288, '\0');
  std::ofstream(dir / "m.onnx", std::ios::binary) << m.serialize();
  try {
    Model::load(dir / "m.onnx");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("overflows 64 bits"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(Model, UniqueNameStaysLinearForOneBase) {
  // Probing every earlier suffix made fp16 quadratic on models with thousands of same-named values
  // (> 400 s for 14 nested If levels); 200k names would take hours that way.
  Model m = conv("");
  for (int i = 0; i < 200000; ++i) m.unique_name("k");
  EXPECT_EQ(m.unique_name("k"), "k_200000");
}

TEST(Evaluator, RnnWithInconsistentWeightsIsAnError) {
  // W says hidden 4, R says hidden 2 and there is no hidden_size: the kernels read past R.
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 1, 3] x) => (float[2, 1, 1, 2] y) {
  y = GRU(x, W, R)
}
)",
                                        {testing::random_tensor("W", {1, 12, 3}, 1), testing::random_tensor("R", {1, 6, 2}, 2)});
  const eval::Evaluator evaluator(m);
  eval::TensorMap feeds;
  feeds["x"] = eval::Tensor::zeros(TensorProto::FLOAT, {2, 1, 3});
  try {
    evaluator.run(feeds);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("wrong shape"), std::string::npos) << e.what();
  }
}

TEST(Evaluator, GatherOnAScalarIsAnError) {
  Model m = testing::model_with_weights(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float x) => (float y) {
  y = Gather(x, i)
}
)",
                                        {make_int64_tensor("i", {}, std::vector<int64_t>{0})});
  const eval::Evaluator evaluator(m);
  eval::TensorMap feeds;
  feeds["x"] = eval::Tensor::zeros(TensorProto::FLOAT, {});
  EXPECT_THROW(evaluator.run(feeds), Error);
}

}  // namespace
}  // namespace compress
