#include <compress/error.h>
#include <compress/model.h>
#include <compress/report.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "testing/builders.h"

namespace compress {
namespace {

namespace fs = std::filesystem;

const char* kMatMulText = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 4] x) => (float[2, 3] y) {
  y = MatMul(x, w)
}
)";

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("compress_model_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// Every tensor in `name`.data beside the model.
SavedFiles save_external(Model& m, const fs::path& path) {
  SaveOptions options;
  options.external_data = SaveOptions::ExternalData::kAlways;
  options.external_min_bytes = 1;
  return m.save(path, options);
}

Model matmul_model() { return testing::model_with_weights(kMatMulText, {testing::random_tensor("w", {4, 3}, 1)}); }

using ModelIo = TempDir;

TEST_F(ModelIo, RoundTripIsByteStable) {
  Model m = matmul_model();
  m.check();
  const auto saved = m.save(dir_ / "a.onnx", {});
  Model loaded = Model::load(saved.model);
  EXPECT_EQ(loaded.serialize(), m.serialize());
  loaded.save(dir_ / "b.onnx", {});
  std::ifstream a(dir_ / "a.onnx", std::ios::binary), b(dir_ / "b.onnx", std::ios::binary);
  const std::string sa((std::istreambuf_iterator<char>(a)), {}), sb((std::istreambuf_iterator<char>(b)), {});
  EXPECT_EQ(sa, sb);
}

TEST_F(ModelIo, ExternalDataRoundTrip) {
  Model m = matmul_model();
  const auto saved = save_external(m, dir_ / "ext.onnx");
  ASSERT_EQ(saved.data, dir_ / "ext.onnx.data");
  EXPECT_TRUE(fs::exists(saved.data));
  EXPECT_EQ(m.proto().graph().initializer(0).data_location(), TensorProto::DEFAULT);  // model unchanged
  Model loaded = Model::load(saved.model);
  EXPECT_EQ(to_floats(loaded.proto().graph().initializer(0)), to_floats(m.proto().graph().initializer(0)));
  EXPECT_EQ(loaded.source_files().size(), 2u);
}

TEST_F(ModelIo, RefusesExistingOutputWithoutOverwrite) {
  Model m = matmul_model();
  m.save(dir_ / "a.onnx", {});
  try {
    m.save(dir_ / "a.onnx", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kWriteFailed);
  }
}

TEST_F(ModelIo, RejectsExternalDataEscapingTheDirectory) {
  Model m = matmul_model();
  auto* t = m.proto().mutable_graph()->mutable_initializer(0);
  t->clear_raw_data();
  t->set_data_location(TensorProto::EXTERNAL);
  auto* e = t->add_external_data();
  e->set_key("location");
  e->set_value("../secret.bin");
  std::ofstream(dir_ / "esc.onnx", std::ios::binary) << m.proto().SerializeAsString();
  try {
    Model::load(dir_ / "esc.onnx");
    FAIL();
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(err.what()).find("escapes the model's directory"), std::string::npos) << err.what();
  }
}

TEST_F(ModelIo, RejectsShortExternalData) {
  Model m = matmul_model();
  const auto saved = save_external(m, dir_ / "short.onnx");
  fs::resize_file(saved.data, 20);
  try {
    Model::load(saved.model);
    FAIL();
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(err.what()).find("external data file 'short.onnx.data' is 28 bytes short (tensor w)"),
              std::string::npos)
        << err.what();
  }
}

TEST_F(ModelIo, RejectsGarbageAndTruncatedFiles) {
  std::ofstream(dir_ / "garbage.onnx", std::ios::binary) << "this is not a model at all";
  EXPECT_THROW(Model::load(dir_ / "garbage.onnx"), Error);
  const std::string bytes = matmul_model().serialize();
  std::ofstream(dir_ / "trunc.onnx", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  try {
    Model::load(dir_ / "trunc.onnx");
    FAIL();
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ExitCode::kBadInput);
  }
}

const char* kTwoLayerText = R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[2, 256] x) => (float[2, 16] z) {
  y = MatMul(x, w)
  b = Constant<value = float[16] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}>()
  v = MatMul(y, small)
  z = Add(v, b)
}
)";

// w is 128 KiB (over load_structure's 64 KiB), small 8 KiB.
Model two_layer_model() {
  return testing::model_with_weights(kTwoLayerText,
                                     {testing::random_tensor("w", {256, 128}, 3), testing::random_tensor("small", {128, 16}, 4)});
}

std::string file_bytes(const fs::path& path, int64_t offset, int64_t length) {
  std::ifstream in(path, std::ios::binary);
  std::string out(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(out.data(), length);
  return out;
}

std::string external_value(const TensorProto& t, const std::string& key) {
  for (const auto& kv : t.external_data())
    if (kv.key() == key) return kv.value();
  return "";
}

TEST_F(ModelIo, LoadStructureLeavesLargePayloadsWhereTheyLie) {
  const auto saved = Model(two_layer_model()).save(dir_ / "two.onnx", {});
  const Model full = Model::load(saved.model);
  Model lean = Model::load_structure(saved.model);
  const TensorProto& w = lean.proto().graph().initializer(0);
  ASSERT_EQ(w.name(), "w");
  EXPECT_EQ(w.data_location(), TensorProto::EXTERNAL);
  EXPECT_FALSE(w.has_raw_data());
  EXPECT_EQ(fs::path(external_value(w, "location")), fs::absolute(saved.model).lexically_normal());
  const std::string bytes = file_bytes(saved.model, std::stoll(external_value(w, "offset")),
                                       std::stoll(external_value(w, "length")));
  EXPECT_EQ(bytes, full.proto().graph().initializer(0).raw_data());
  EXPECT_EQ(lean.proto().graph().initializer(1).SerializeAsString(),
            full.proto().graph().initializer(1).SerializeAsString());  // small: inline, as it was
  EXPECT_EQ(lean.proto().graph().node_size(), full.proto().graph().node_size());
  // The same report, the file counted once, the checker content.
  EXPECT_EQ(stats_to_json(compute_stats(lean, {})), stats_to_json(compute_stats(full, {})));
  EXPECT_EQ(lean.source_files(), full.source_files());
  EXPECT_EQ(lean.source_bytes(), full.source_bytes());
  EXPECT_NO_THROW(lean.check());
  // It has no weights to write.
  try {
    lean.save(dir_ / "out.onnx", {});
    FAIL();
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ExitCode::kInternal);
  }
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
}

TEST_F(ModelIo, LoadStructureChecksExternalDataWithoutReadingIt) {
  Model m = two_layer_model();
  const auto saved = save_external(m, dir_ / "ext.onnx");
  const Model lean = Model::load_structure(saved.model);
  EXPECT_EQ(lean.source_files().size(), 2u);
  EXPECT_EQ(lean.source_bytes(), Model::load(saved.model).source_bytes());
  EXPECT_EQ(lean.proto().graph().initializer(0).data_location(), TensorProto::EXTERNAL);
  fs::resize_file(saved.data, 20);
  for (auto load : {&Model::load, &Model::load_structure}) {
    try {
      load(saved.model);
      FAIL();
    } catch (const Error& err) {
      EXPECT_EQ(err.code(), ExitCode::kBadInput);
      EXPECT_NE(std::string(err.what()).find("bytes short"), std::string::npos) << err.what();
    }
  }
}

TEST_F(ModelIo, LoadStructureRejectsWhatLoadRejects) {
  const std::string bytes = two_layer_model().serialize();
  std::ofstream(dir_ / "trunc.onnx", std::ios::binary) << bytes.substr(0, bytes.size() - 1000);
  std::ofstream(dir_ / "garbage.onnx", std::ios::binary) << "this is not a model at all";
  for (const char* name : {"trunc.onnx", "garbage.onnx"})
    for (auto load : {&Model::load, &Model::load_structure}) EXPECT_THROW(load(dir_ / name), Error) << name;
}

TEST(Model, UniqueNamesAvoidEveryExistingName) {
  Model m = matmul_model();
  EXPECT_EQ(m.unique_name("w"), "w_1");
  EXPECT_EQ(m.unique_name("w"), "w_2");
  EXPECT_EQ(m.unique_name("fresh"), "fresh");
}

TEST(Model, RequireOpsetUsesTheVersionConverter) {
  Model m = matmul_model();
  m.require_opset("", 17);
  EXPECT_EQ(m.opset(), 17);
  m.require_opset("com.microsoft", 1);
  EXPECT_EQ(m.opset("com.microsoft"), 1);
  m.check();
}

// Opset 9 (like PP-OCR): the Softmax input comes from a Reshape whose target is computed from
// Shape, which ONNX 1.12 cannot infer at opset 9, and its Softmax 12 -> 13 adapter asserts on an
// unknown input shape.
Model opset9_softmax_model() {
  Model m = Model::parse_text(R"(
<ir_version: 4, opset_import: ["" : 9]>
g (float[N, 6] x) => (float[N, 2, 3] y) {
  s = Shape(x)
  n = Slice <starts = [0], ends = [1], axes = [0]> (s)
  t = Concat <axis = 0> (n, two_three)
  r = Reshape(x, t)
  y = Softmax <axis = 1> (r)
}
)");
  *m.proto().mutable_graph()->add_initializer() = make_int64_tensor("two_three", {2}, std::vector<int64_t>{2, 3});
  return m;
}

TEST(Model, RequireOpsetLendsStaticShapesToTheConverter) {
  // The static shapes (x = 2x6 here) are lent to the converter and taken back.
  Model m = opset9_softmax_model();
  // Without --input-shape N would be a guess: nothing is lent and the converter fails as before.
  Model guessed = Model::from_proto(m.proto());
  EXPECT_THROW(guessed.require_opset("", 13), Error);
  m.set_input_shapes({{"x", {2, 6}}});
  m.require_opset("", 13);
  EXPECT_EQ(m.opset(), 13);
  for (const auto& v : m.proto().graph().value_info()) EXPECT_NE(v.name(), "r") << "a lent shape stayed";
  EXPECT_EQ(m.proto().graph().input(0).type().tensor_type().shape().dim(0).dim_param(), "N");
  m.check();
}

TEST(Model, RequireOpsetKeepsEveryWeightByteForByte) {
  // Weights over 4 KiB are parked while the converter runs (no copy of them) and moved into the
  // converted model; Unsqueeze 11 -> 13 adds an axes input on the way.
  Model m = Model::parse_text(R"(
<ir_version: 6, opset_import: ["" : 11]>
g (float[2, 64] x) => (float[1, 2, 64] y) {
  c = Constant <value = float[64, 64] {0}> ()
  h = MatMul(x, w)
  k = MatMul(h, c)
  y = Unsqueeze <axes = [0]> (k)
}
)");
  std::vector<float> w(64 * 64), c(64 * 64);
  for (size_t i = 0; i < w.size(); ++i) {
    w[i] = static_cast<float>(i) * 0.25f;
    c[i] = -static_cast<float>(i);
  }
  *m.proto().mutable_graph()->add_initializer() = make_float_tensor("w", {64, 64}, w);
  *m.proto().mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_t() = make_float_tensor("", {64, 64}, c);
  const std::string w_bytes = m.proto().graph().initializer(0).raw_data();
  const std::string c_bytes = m.proto().graph().node(0).attribute(0).t().raw_data();
  m.require_opset("", 13);
  EXPECT_EQ(m.opset(), 13);
  bool saw_w = false, saw_c = false;
  for (const auto& t : m.proto().graph().initializer())
    if (t.name() == "w") saw_w = t.raw_data() == w_bytes;
  for (const auto& n : m.proto().graph().node())
    if (n.op_type() == "Constant") saw_c = saw_c || n.attribute(0).t().raw_data() == c_bytes;  // also: Unsqueeze's axes
  EXPECT_TRUE(saw_w);
  EXPECT_TRUE(saw_c);
  m.check();

  // A conversion that fails leaves the weights in place too.
  Model old = opset9_softmax_model();
  *old.proto().mutable_graph()->add_initializer() = make_float_tensor("unused_big", {64, 64}, w);
  EXPECT_THROW(old.require_opset("", 13), Error);
  EXPECT_EQ(old.proto().graph().initializer(1).raw_data(), w_bytes);
}

}  // namespace
}  // namespace compress
