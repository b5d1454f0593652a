// The reports as a user reads them, through the built binary: text, Markdown, HTML, inspect's
// text/CSV/JSON, and one report per destination.
#include <nlohmann/json.hpp>

#include "cli/cli_run.h"

namespace {

namespace fs = std::filesystem;
using compress_cli::Result;

class ReportCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("compress_report_cli_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string read(const fs::path& p) { return compress_cli::read_file(p); }

  // Runs in the models directory, so the bundled models and data are named as they are.
  Result run(const std::string& args) { return compress_cli::run_binary(COMPRESS_MODELS_DIR, dir_ / "stderr.txt", args); }
  std::string out(const std::string& name) const { return (dir_ / name).string(); }

  static constexpr const char* kVerify =
      " --verify --input input=digits_test_x_mlp.npy --labels digits_test_y.npy --min-cosine 0.99 --max-accuracy-drop 1";
  fs::path dir_;
};

TEST_F(ReportCli, TwoReportsOnStdoutAreRefused) {
  const Result r = run("digits_mlp.onnx -o " + out("o.onnx") + " --report-json - --report-md -");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --report-json and --report-md both write to stdout ('-'); give each report its own "
                   "destination\n");
  EXPECT_TRUE(r.out.empty());
  EXPECT_FALSE(fs::exists(out("o.onnx")));
}

TEST_F(ReportCli, TwoReportsInOneFileAreRefused) {
  const Result r = run("digits_mlp.onnx -o " + out("o.onnx") + " --report-md " + out("r") + " --report-html " + out("r"));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --report-md and --report-html both write to '" + out("r") +
                       "'; give each report its own destination\n");
  EXPECT_FALSE(fs::exists(out("r")));
}

TEST_F(ReportCli, TextReportShowsVerifyMetricsGateVerdictsAndLayerDeltas) {
  const Result r = run("digits_mlp.onnx -o " + out("o.onnx") + " -p quantize-int8:mode=dynamic" + kVerify);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("verify (450 samples, built-in evaluator):"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("accuracy: reference "), std::string::npos);
  EXPECT_NE(r.out.find("gates:\n  pass  --min-cosine 0.99: output 'logits' cosine "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  pass  --max-accuracy-drop 1: accuracy drop (points) "), std::string::npos);
  // fc1 became MatMulInteger + its quantize steps: one row, before and after.
  EXPECT_NE(r.out.find("Gemm -> MatMulInteger"), std::string::npos) << r.out;
}

TEST_F(ReportCli, MarkdownSummaryShowsWarningsAssumptionsGatesAndLayers) {
  const Result r = run("digits_mlp.onnx -o " + out("o.onnx") + " -p quantize-int4:format=dq" +
                       " --verify --input input=digits_test_x_mlp.npy --min-cosine 0.9 --report-md -");
  ASSERT_EQ(r.code, 0) << r.err;
  // The int4 warning, and the target's note that DQ int4 is predicted slower (issue 11).
  EXPECT_NE(r.out.find("> [!WARNING]\n> 2 warning(s):\n> - quantize-int4: format=dq raised the model to opset 21"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("<details><summary>Assumptions (1)</summary>\n\n- input 'input' dim 0 ('batch') assumed 1"),
            std::string::npos);
  EXPECT_NE(r.out.find("**Gates: all 1 passed**"), std::string::npos);
  EXPECT_NE(r.out.find("| pass | --min-cosine | 0.9 | output 'logits' cosine "), std::string::npos);
  EXPECT_NE(r.out.find("#### Verify (450 samples"), std::string::npos);
  EXPECT_NE(r.out.find("#### Layers that changed most"), std::string::npos);
  EXPECT_NE(r.out.find("| `fc1` |"), std::string::npos);
  EXPECT_EQ(r.out.find("compress report:"), std::string::npos) << "text report mixed into the Markdown on stdout";
}

TEST_F(ReportCli, HtmlReportIsOneSelfContainedPage) {
  const Result r = run("digits_mlp.onnx -o " + out("o.onnx") + " -p quantize-int8 --report-html " + out("r.html"));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string html = read(out("r.html"));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("id=\"layers\""), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_NE(r.out.find("compress report:"), std::string::npos) << "a report to a file keeps the text on stdout";
}

TEST_F(ReportCli, InspectCsvSortsLayersAndGivesSharesOfTheTotal) {
  const Result r = run("inspect digits_cnn.onnx --csv");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "name,op_type,params,weight_bytes,weight_share,macs,mac_share,flops,compute_dtype");
  double weight_share = 0, mac_share = 0;
  int64_t previous_macs = INT64_MAX, rows = 0;
  while (std::getline(lines, line)) {
    std::vector<std::string> f;
    std::stringstream fields(line);
    for (std::string x; std::getline(fields, x, ',');) f.push_back(x);
    ASSERT_EQ(f.size(), 9u) << line;
    const int64_t macs = std::stoll(f[5]);
    EXPECT_LE(macs, previous_macs) << "not sorted by MACs: " << line;
    previous_macs = macs;
    weight_share += std::stod(f[4]);
    mac_share += std::stod(f[6]);
    ++rows;
  }
  EXPECT_EQ(rows, 13);
  EXPECT_NEAR(weight_share, 1.0, 1e-4);
  EXPECT_NEAR(mac_share, 1.0, 1e-4);
}

TEST_F(ReportCli, InspectJsonListsInputsAndOutputsWithShapes) {
  const Result r = run("inspect digits_cnn.onnx --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["inputs"], nlohmann::json::parse(R"([{"name": "input", "dtype": "float32", "shape": ["batch", 1, 8, 8]}])"));
  EXPECT_EQ(j["outputs"], nlohmann::json::parse(R"([{"name": "logits", "dtype": "float32", "shape": ["batch", 10]}])"));
}

TEST_F(ReportCli, InspectTextListsIoAndShares) {
  const Result r = run("inspect digits_cnn.onnx");
  ASSERT_EQ(r.code, 0) << r.err;
  // The assumed batch dim comes first (issue 10), then the model's inputs and outputs.
  EXPECT_EQ(r.out.rfind("ASSUMED input 'input' dim 0 'batch' = 1", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\ninput   input                  float32 [batch, 1, 8, 8]\noutput  logits"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("conv2"), std::string::npos);
  EXPECT_NE(r.out.find("49.2%"), std::string::npos) << r.out;  // conv2 and conv3: 294912 of 599680 MACs each
}

TEST_F(ReportCli, InspectRefusesTwoFormatsOnStdout) {
  EXPECT_EQ(run("inspect digits_cnn.onnx --json --csv").code, 1);
  const Result r = run("inspect digits_cnn.onnx --csv --report-html -");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --csv and --report-html both write to stdout ('-')\n");
}

TEST_F(ReportCli, InspectHtmlGoesToAFileOrAloneToStdout) {
  Result r = run("inspect digits_cnn.onnx --report-html " + out("i.html"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(read(out("i.html")).find("<svg"), std::string::npos);
  r = run("inspect digits_cnn.onnx --report-html -");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("<!DOCTYPE html>", 0), 0u);
}

}  // namespace
