// check_verify_data: which data fits a model's inputs and which label count its first output
// needs, and evaluate_gates: one verdict per gate and output.
#include <compress/error.h>
#include <compress/model.h>
#include <compress/npy.h>
#include <compress/verify.h>
#include <gtest/gtest.h>
#include <unistd.h>

namespace compress {
namespace {

namespace fs = std::filesystem;

class VerifyData : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("compress_verify_data_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Options feeding `x` with `dims` and `labels` labels.
  VerifyOptions options(const std::vector<int64_t>& dims, int64_t labels) {
    int64_t n = 1;
    for (auto d : dims) n *= d;
    eval::write_npy(dir_ / "x.npy", eval::Tensor::floats(dims, std::vector<float>(static_cast<size_t>(n))));
    eval::write_npy(dir_ / "y.npy", eval::Tensor::ints({labels}, std::vector<int64_t>(static_cast<size_t>(labels))));
    VerifyOptions o;
    o.input_files["x"] = dir_ / "x.npy";
    o.labels = dir_ / "y.npy";
    return o;
  }

  static std::string usage_error(const Model& m, const VerifyOptions& o) {
    try {
      check_verify_data(m, o);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage);
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(VerifyData, SequenceOutputNeedsOneLabelPerSampleAndStep) {
  const Model m = Model::parse_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    agraph (float[N, 3, 4] x) => (float[N, 3, 4] y) { y = Relu(x) }
  )");
  EXPECT_EQ(usage_error(m, options({5, 3, 4}, 15)), "");
  EXPECT_EQ(usage_error(m, options({5, 3, 4}, 5)),
            "--labels " + (dir_ / "y.npy").string() + ": holds 5 labels, but output 'y' [N, 3, 4] has 15 rows for 5 samples");
}

TEST_F(VerifyData, UnknownMiddleDimLeavesTheLabelCountToTheRun) {
  const Model m = Model::parse_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    agraph (float[N, T, 4] x) => (float[N, T, 4] y) { y = Relu(x) }
  )");
  EXPECT_EQ(usage_error(m, options({5, 3, 4}, 7)), "");
}

TEST_F(VerifyData, LeadingOneRunsSampleBySampleOtherFixedDimsMustMatch) {
  const Model m = Model::parse_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    agraph (float[1, 4] x) => (float[1, 4] y) { y = Relu(x) }
  )");
  EXPECT_EQ(usage_error(m, options({6, 4}, 6)), "");
  EXPECT_NE(usage_error(m, options({6, 5}, 6)).find("input 'x' is float32 [1, 4], but"), std::string::npos);
  EXPECT_NE(usage_error(m, options({6, 4, 1}, 6)).find("holds float32 [6, 4, 1]"), std::string::npos);
}

TEST(EvaluateGates, OneVerdictPerGateAndOutput) {
  VerifyResult r;
  r.outputs["a"] = {0.999, 30, 0.1, std::nullopt};
  r.outputs["b"] = {0.95, 12, 0.5, std::nullopt};
  r.accuracy = AccuracyMetrics{0.9, 0.89, 1.0};
  const auto v = evaluate_gates(r, Gates{0.99, 20, 2.0});
  ASSERT_EQ(v.size(), 5u);
  EXPECT_TRUE(v[0].passed);   // a cosine
  EXPECT_TRUE(v[1].passed);   // a snr
  EXPECT_FALSE(v[2].passed);  // b cosine
  EXPECT_EQ(v[2].message, "gate missed: output 'b' cosine 0.95 < --min-cosine 0.99");
  EXPECT_FALSE(v[3].passed);  // b snr
  EXPECT_TRUE(v[4].passed);   // accuracy drop 1 <= 2
  EXPECT_EQ(v[4].gate, "max-accuracy-drop");
  EXPECT_EQ(gates_to_json(v)[2]["passed"], false);
}

}  // namespace
}  // namespace compress
