#include <compress/error.h>
#include <compress/model.h>
#include <compress/report.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>

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

// w is 128 KiB (over the 64 KiB that Model::load leaves in the file), small 8 KiB.
Model two_layer_model() {
  return testing::model_with_weights(kTwoLayerText,
                                     {testing::random_tensor("w", {256, 128}, 3), testing::random_tensor("small", {128, 16}, 4)});
}

std::string file_bytes(const fs::path& path, int64_t offset = 0, int64_t length = -1) {
  std::ifstream in(path, std::ios::binary);
  if (length < 0) length = static_cast<int64_t>(fs::file_size(path)) - offset;
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

TEST_F(ModelIo, LoadLeavesLargePayloadsInTheFile) {
  Model original = two_layer_model();
  const auto saved = original.save(dir_ / "two.onnx", {});
  Model loaded = Model::load(saved.model);
  const TensorProto& w = loaded.proto().graph().initializer(0);
  ASSERT_EQ(w.name(), "w");
  EXPECT_EQ(w.data_location(), TensorProto::EXTERNAL);
  EXPECT_FALSE(w.has_raw_data());
  EXPECT_EQ(fs::path(external_value(w, "location")), fs::absolute(saved.model).lexically_normal());
  const std::string& expected = original.proto().graph().initializer(0).raw_data();
  EXPECT_EQ(file_bytes(saved.model, std::stoll(external_value(w, "offset")), std::stoll(external_value(w, "length"))),
            expected);
  // Every reader sees the payload where it lies.
  ASSERT_TRUE(raw_bytes(w).has_value());
  EXPECT_EQ(*raw_bytes(w), expected);
  EXPECT_EQ(to_floats(w), to_floats(original.proto().graph().initializer(0)));
  std::vector<float> scratch;
  const auto view = float_view(w, scratch);
  EXPECT_TRUE(std::equal(view.begin(), view.end(), to_floats(w).begin()));
  EXPECT_NO_THROW(validate_tensor(w));
  EXPECT_EQ(loaded.proto().graph().initializer(1).SerializeAsString(),
            original.proto().graph().initializer(1).SerializeAsString());  // small: inline, as it was
  // The same report; the file counted once; the checker content.
  EXPECT_EQ(stats_to_json(compute_stats(loaded, {})), stats_to_json(compute_stats(original, {})));
  EXPECT_EQ(loaded.source_files(), std::vector<fs::path>{saved.model});
  EXPECT_EQ(loaded.source_bytes(), static_cast<int64_t>(fs::file_size(saved.model)));
  EXPECT_NO_THROW(loaded.check());
  // Written whole, byte for byte, and still a reference afterwards.
  EXPECT_EQ(loaded.serialized_bytes(), static_cast<int64_t>(fs::file_size(saved.model)));
  EXPECT_EQ(loaded.serialize(), file_bytes(saved.model));
  const auto again = loaded.save(dir_ / "again.onnx", {});
  EXPECT_EQ(file_bytes(again.model), file_bytes(saved.model));
  EXPECT_EQ(loaded.proto().graph().initializer(0).data_location(), TensorProto::EXTERNAL);
}

TEST_F(ModelIo, PayloadsInTheFileOutliveTheModelAndFollowCopies) {
  const auto saved = two_layer_model().save(dir_ / "two.onnx", {});
  std::optional<Model> copy;
  {
    const Model loaded = Model::load(saved.model);
    copy.emplace(Model::from_proto(loaded.proto()));
  }
  fs::remove(saved.model);  // the mapping keeps the bytes
  const TensorProto& w = copy->proto().graph().initializer(0);
  EXPECT_EQ(*raw_bytes(w), two_layer_model().proto().graph().initializer(0).raw_data());
  // Editing in place stores the values in the tensor first.
  TensorProto edited = w;
  const auto values = float_data_in_place(edited);
  values[0] = 42.0f;
  EXPECT_TRUE(edited.has_raw_data());
  EXPECT_NE(edited.data_location(), TensorProto::EXTERNAL);
  EXPECT_EQ(edited.external_data_size(), 0);
  EXPECT_EQ(to_floats(edited)[0], 42.0f);
  EXPECT_NE(to_floats(w)[0], 42.0f);
}

TEST_F(ModelIo, TheLastModelUnmapsItsFiles) {
  const auto saved = two_layer_model().save(dir_ / "two.onnx", {});
  TensorProto w;
  {
    const Model loaded = Model::load(saved.model);
    w = loaded.proto().graph().initializer(0);
    EXPECT_TRUE(raw_bytes(w).has_value());
  }
  EXPECT_FALSE(raw_bytes(w).has_value());  // no dangling bytes: the reference stops resolving
  EXPECT_THROW(validate_tensor(w), Error);
}

TEST_F(ModelIo, PayloadsAtAnyAlignmentReadTheSame) {
  // A name of each length shifts the payload's offset in the file by one byte.
  int unaligned = 0;
  for (int shift = 0; shift < 4; ++shift) {
    Model m = two_layer_model();
    m.proto().set_producer_name(std::string(static_cast<size_t>(shift), 'p'));
    const auto saved = m.save(dir_ / ("shift" + std::to_string(shift) + ".onnx"), {});
    const Model loaded = Model::load(saved.model);
    const TensorProto& w = loaded.proto().graph().initializer(0);
    ASSERT_EQ(w.data_location(), TensorProto::EXTERNAL);
    unaligned += reinterpret_cast<uintptr_t>(raw_bytes(w)->data()) % alignof(float) != 0;
    std::vector<float> scratch;
    const auto view = float_view(w, scratch);
    const std::vector<float> expected = to_floats(m.proto().graph().initializer(0));
    ASSERT_EQ(view.size(), expected.size());
    EXPECT_TRUE(std::equal(view.begin(), view.end(), expected.begin())) << "shift " << shift;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(view.data()) % alignof(float), 0u);
  }
  EXPECT_EQ(unaligned, 3);
}

TEST_F(ModelIo, OpsetConversionKeepsPayloadsInTheFile) {
  Model m = two_layer_model();
  m.proto().mutable_opset_import(0)->set_version(11);
  const auto saved = m.save(dir_ / "old.onnx", {});
  Model loaded = Model::load(saved.model);
  loaded.require_opset("", 13);
  EXPECT_EQ(loaded.opset(), 13);
  const TensorProto* w = loaded.graph().initializer("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->data_location(), TensorProto::EXTERNAL);
  EXPECT_EQ(*raw_bytes(*w), m.proto().graph().initializer(0).raw_data());
  EXPECT_NO_THROW(loaded.check());
}

TEST_F(ModelIo, ExternalDataStaysInItsFileAndIsWrittenFromThere) {
  Model m = two_layer_model();
  const auto saved = save_external(m, dir_ / "ext.onnx");
  Model loaded = Model::load(saved.model);
  EXPECT_EQ(loaded.source_files().size(), 2u);
  EXPECT_EQ(loaded.source_bytes(),
            static_cast<int64_t>(fs::file_size(saved.model) + fs::file_size(saved.data)));
  for (const auto& t : loaded.proto().graph().initializer()) {
    EXPECT_EQ(t.data_location(), TensorProto::EXTERNAL) << t.name();
    ASSERT_TRUE(raw_bytes(t).has_value()) << t.name();
  }
  EXPECT_EQ(loaded.serialize(), two_layer_model().serialize());
  // The Constant node's value is left in the file too: nested, so its size is counted within bytes.
  EXPECT_NEAR(static_cast<double>(loaded.serialized_bytes()), static_cast<double>(loaded.serialize().size()), 10.0);
  // Written again with external data: the same two files.
  const auto resaved = save_external(loaded, dir_ / "ext2.onnx");
  EXPECT_EQ(file_bytes(resaved.data), file_bytes(saved.data));
  EXPECT_EQ(Model::load(resaved.model).serialize(), two_layer_model().serialize());
  // A reference that outgrows its file is refused at load.
  fs::resize_file(saved.data, 20);
  try {
    Model::load(saved.model);
    FAIL();
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(err.what()).find("bytes short"), std::string::npos) << err.what();
  }
}

TEST_F(ModelIo, ReferencesInAFileAreNotTrusted) {
  // A file naming the key Model::load uses for its own references gets no access to a mapping.
  Model m = two_layer_model();
  const auto saved = save_external(m, dir_ / "ext.onnx");
  onnx::ModelProto forged = Model::load(saved.model).proto();
  for (auto& t : *forged.mutable_graph()->mutable_initializer())
    for (auto& kv : *t.mutable_external_data())
      if (kv.key() == "location") kv.set_value("ext.onnx.data");
  {
    std::ofstream out(dir_ / "forged.onnx", std::ios::binary);
    out << forged.SerializeAsString();
  }
  const Model loaded = Model::load(dir_ / "forged.onnx");  // the reference is rebuilt from the file
  EXPECT_EQ(loaded.serialize(), two_layer_model().serialize());
  TensorProto stray = m.proto().graph().initializer(0);
  stray.clear_raw_data();
  stray.set_data_location(TensorProto::EXTERNAL);
  for (const auto& [k, v] : {std::pair<std::string, std::string>{"location", "x"}, {"offset", "0"}, {"length", "131072"},
                             {"compress-mapping", "999999"}}) {
    auto* e = stray.add_external_data();
    e->set_key(k);
    e->set_value(v);
  }
  EXPECT_FALSE(raw_bytes(stray).has_value());
  EXPECT_THROW(validate_tensor(stray), Error);
}

TEST_F(ModelIo, LoadRejectsCorruptFiles) {
  const std::string bytes = two_layer_model().serialize();
  std::ofstream(dir_ / "trunc.onnx", std::ios::binary) << bytes.substr(0, bytes.size() - 1000);
  std::ofstream(dir_ / "garbage.onnx", std::ios::binary) << "this is not a model at all";
  for (const char* name : {"trunc.onnx", "garbage.onnx"}) EXPECT_THROW(Model::load(dir_ / name), Error) << name;
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
