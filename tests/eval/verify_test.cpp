// .npy round trips (and files written by numpy), verify metrics on hand-made arrays, and the gates,
// including exit 4 from the binary with no output file left.
#include <compress/error.h>
#include <compress/npy.h>
#include <compress/verify.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace compress {
namespace {

namespace fs = std::filesystem;
using eval::Tensor;

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("compress_verify_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(Npy, RoundTripsEveryDtype) {
  const fs::path dir = temp_dir("npy");
  const std::vector<Tensor> cases = {
      Tensor::floats({2, 3}, {1.5f, -2, 0, 3.25f, 1e-3f, 7}),
      Tensor::floats({3}, {0.5f, -1, 65504}, onnx::TensorProto::FLOAT16),
      Tensor::ints({2, 2}, {1, -2, 1LL << 40, 0}, onnx::TensorProto::INT64),
      Tensor::ints({2}, {-7, 70000}, onnx::TensorProto::INT32),
      Tensor::ints({3}, {0, 200, 255}, onnx::TensorProto::UINT8),
      Tensor::ints({2}, {-128, 127}, onnx::TensorProto::INT8),
      Tensor::ints({2}, {1, 0}, onnx::TensorProto::BOOL),
      Tensor::floats({}, {42}),
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    const fs::path p = dir / (std::to_string(k) + ".npy");
    eval::write_npy(p, cases[k]);
    const Tensor back = eval::read_npy(p);
    EXPECT_EQ(back.dtype, cases[k].dtype) << k;
    EXPECT_EQ(back.dims, cases[k].dims) << k;
    EXPECT_EQ(back.f, cases[k].f) << k;
    EXPECT_EQ(back.i, cases[k].i) << k;
  }
  fs::remove_all(dir);
}

TEST(Npy, ReadsTheBundledNumpyFiles) {
  const Tensor x = eval::read_npy(fs::path(COMPRESS_MODELS_DIR) / "digits_test_x_mlp.npy");
  EXPECT_EQ(x.dtype, onnx::TensorProto::FLOAT);
  EXPECT_EQ(x.dims, (std::vector<int64_t>{450, 64}));
  for (float v : x.f) ASSERT_TRUE(v >= 0.0f && v <= 1.0f);
  const Tensor y = eval::read_npy(fs::path(COMPRESS_MODELS_DIR) / "digits_test_y.npy");
  EXPECT_EQ(y.dims, (std::vector<int64_t>{450}));
  for (int64_t v : y.i) ASSERT_TRUE(v >= 0 && v <= 9);
}

TEST(Npy, RejectsFortranOrderAndGarbage) {
  const fs::path dir = temp_dir("npy_bad");
  {
    std::ofstream f(dir / "bad.npy", std::ios::binary);
    f << "not numpy";
  }
  EXPECT_THROW(eval::read_npy(dir / "bad.npy"), Error);
  fs::remove_all(dir);
}

TEST(VerifyMetrics, HandComputedValues) {
  const Tensor a = Tensor::floats({2, 2}, {1, 0, 0, 1});
  const Tensor b = Tensor::floats({2, 2}, {1, 0, 1, 0});
  const OutputMetrics m = compare_outputs(a, b);
  EXPECT_NEAR(m.cosine, 0.5, 1e-12);                             // dot 1, norms sqrt(2) each
  EXPECT_NEAR(m.snr_db, 10 * std::log10(2.0 / 2.0), 1e-12);      // signal 2, noise 2
  EXPECT_DOUBLE_EQ(m.max_abs_err, 1.0);
  ASSERT_TRUE(m.top1_agreement);
  EXPECT_DOUBLE_EQ(*m.top1_agreement, 0.5);
  const OutputMetrics same = compare_outputs(a, a);
  EXPECT_TRUE(std::isinf(same.snr_db));
  EXPECT_FALSE(compare_outputs(Tensor::floats({2, 1}, {1, 2}), Tensor::floats({2, 1}, {1, 2})).top1_agreement);
  EXPECT_DOUBLE_EQ(accuracy(a, Tensor::ints({2}, {0, 0})), 0.5);
}

TEST(VerifyMetrics, GatesThrowGateFailedWithOneLine) {
  VerifyResult r;
  r.outputs["y"] = OutputMetrics{0.98, 20, 0.1, 1.0};
  EXPECT_NO_THROW(check_gates(r, Gates{0.97, 10, std::nullopt}));
  try {
    check_gates(r, Gates{0.99, std::nullopt, std::nullopt});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kGateFailed);
    EXPECT_STREQ(e.what(), "gate missed: output 'y' cosine 0.98 < --min-cosine 0.99");
  }
  EXPECT_THROW(check_gates(r, Gates{std::nullopt, 30, std::nullopt}), Error);
  try {
    check_gates(r, Gates{std::nullopt, std::nullopt, 1.0});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
  }
  r.accuracy = AccuracyMetrics{0.98, 0.95, 3.0};
  EXPECT_THROW(check_gates(r, Gates{std::nullopt, std::nullopt, 1.0}), Error);
  EXPECT_NO_THROW(check_gates(r, Gates{std::nullopt, std::nullopt, 3.5}));
}

TEST(VerifyModels, BundledMlpAgainstItselfIsExactAndAccurate) {
  const Model m = Model::load(fs::path(COMPRESS_MODELS_DIR) / "digits_mlp.onnx");
  VerifyOptions o;
  o.input_files["input"] = fs::path(COMPRESS_MODELS_DIR) / "digits_test_x_mlp.npy";
  o.labels = fs::path(COMPRESS_MODELS_DIR) / "digits_test_y.npy";
  const VerifyResult r = verify_models(m, m, o);
  ASSERT_EQ(r.outputs.count("logits"), 1u);
  EXPECT_DOUBLE_EQ(r.outputs.at("logits").cosine, 1.0);
  EXPECT_TRUE(std::isinf(r.outputs.at("logits").snr_db));
  ASSERT_TRUE(r.accuracy);
  // ONNX Runtime gives 0.98222 (442 / 450) on the same files (models/README.md numbers).
  EXPECT_NEAR(r.accuracy->reference, 442.0 / 450.0, 1e-12);
  const auto j = verify_to_json(r);
  EXPECT_EQ(j["outputs"]["logits"]["snr_db"], "Infinity");
  EXPECT_EQ(j["accuracy"]["drop_points"], 0.0);
}

int run_binary(const std::string& args) {
  const int status = std::system((std::string(COMPRESS_BINARY) + " " + args + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(VerifyCli, MissedGateExits4AndInlineGateLeavesNoOutput) {
  const fs::path dir = temp_dir("cli");
  const std::string mlp = (fs::path(COMPRESS_MODELS_DIR) / "digits_mlp.onnx").string();
  const std::string x = "--input input=" + (fs::path(COMPRESS_MODELS_DIR) / "digits_test_x_mlp.npy").string();
  const std::string q = (dir / "q.onnx").string();
  ASSERT_EQ(run_binary(mlp + " -o " + q + " -p quantize-int4:block-size=16 -q"), 0);
  EXPECT_EQ(run_binary("verify " + mlp + " " + q + " " + x + " --min-cosine 0.9"), 0);
  EXPECT_EQ(run_binary("verify " + mlp + " " + q + " " + x + " --min-cosine 0.999999"), 4);
  const std::string out = (dir / "gated.onnx").string();
  EXPECT_EQ(run_binary(mlp + " -o " + out + " -p quantize-int4:block-size=16 --verify " + x + " --min-cosine 0.999999"), 4);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(run_binary(mlp + " -o " + out + " -p quantize-int4:block-size=16 --verify " + x + " --min-cosine 0.9"), 0);
  EXPECT_TRUE(fs::exists(out));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace compress
