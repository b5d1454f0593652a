// Runs the built `compress` binary: exit codes, the exact one-line errors, no output after a
// failure, the input never modified.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace {

namespace fs = std::filesystem;

struct Result {
  int code;
  std::string out;
  std::string err;
};

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("compress_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::copy_file(fs::path(COMPRESS_MODELS_DIR) / "digits_mlp.onnx", dir_ / "mlp.onnx");
    input_bytes_ = read(dir_ / "mlp.onnx");
  }
  void TearDown() override {
    EXPECT_EQ(read(dir_ / "mlp.onnx"), input_bytes_) << "the input model was modified";
    fs::remove_all(dir_);
  }

  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

  Result run(const std::string& args) {
    const std::string err_file = (dir_ / "stderr.txt").string();
    const std::string cmd = "cd '" + dir_.string() + "' && '" + std::string(COMPRESS_BINARY) + "' " + args + " 2>'" +
                            err_file + "'";
    Result r;
    FILE* pipe = ::popen(cmd.c_str(), "r");
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
    const int status = ::pclose(pipe);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.err = read(err_file);
    return r;
  }

  fs::path dir_;
  std::string input_bytes_;
};

TEST_F(Cli, RoundTripWritesIdenticalBytesAndAReport) {
  const Result r = run("mlp.onnx -o out.onnx");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read(dir_ / "out.onnx"), input_bytes_);
  EXPECT_NE(r.out.find("params"), std::string::npos);
  EXPECT_NE(r.out.find("50.83K"), std::string::npos) << r.out;
}

TEST_F(Cli, ReportJsonOnStdoutParsesAndCarriesTheCanonicalPipeline) {
  const Result r = run("mlp.onnx -o out.onnx -p cleanup --report-json -");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.front(), '{');
  EXPECT_NE(r.out.find("\"pipeline\": \"cleanup:dedupe=true\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"file_bytes\""), std::string::npos);
  EXPECT_NE(r.out.find("\"macs\": 50432"), std::string::npos);
}

TEST_F(Cli, SameInputAndOptionsGiveByteIdenticalOutput) {
  ASSERT_EQ(run("mlp.onnx -o a.onnx -p cleanup").code, 0);
  ASSERT_EQ(run("mlp.onnx -o b.onnx -p cleanup").code, 0);
  EXPECT_EQ(read(dir_ / "a.onnx"), read(dir_ / "b.onnx"));
}

TEST_F(Cli, SizeGateMissedExitsFourAndLeavesNoOutput) {
  // int8 weight-only makes the MLP about 0.3x: a 0.2 budget is missed, 0.5 is kept.
  const Result r = run("mlp.onnx -o out.onnx -p quantize-int8 --max-size-ratio 0.2");
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.err.find("compress: error: gate missed: file size ratio 0."), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" > --max-size-ratio 0.2\n"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
  const Result ok = run("mlp.onnx -o out.onnx -p quantize-int8 --max-size-ratio 0.5");
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_TRUE(fs::exists(dir_ / "out.onnx"));
}

TEST_F(Cli, SizeGateNeedsAPositiveRatio) {
  const Result r = run("mlp.onnx -o out.onnx --max-size-ratio 0");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
}

TEST_F(Cli, ReportPredictsLatencyForTheTarget) {
  const Result r = run("mlp.onnx -o out.onnx -p quantize-int8 --report-json -");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("target"), "ort-cpu");
  const double before = j.at("before").at("predicted_latency_ms"), after = j.at("after").at("predicted_latency_ms");
  EXPECT_GT(before, 0.0);
  EXPECT_GT(after, 0.0);
  EXPECT_DOUBLE_EQ(j.at("ratios").at("predicted_latency"), after / before);
  ASSERT_FALSE(j.at("layers").empty());
  EXPECT_GT(j.at("layers")[0].at("before").at("predicted_latency_ms"), 0.0);
  // Weight-only int8 on ORT CPU rebuilds the float weights every run: slower, and the energy says so too.
  EXPECT_GT(after, before);
  EXPECT_GT(j.at("after").at("energy_estimate_uj").at("dequantize_weights"), 0.0);
  EXPECT_GT(j.at("ratios").at("energy"), 1.0);
  // The pass itself warns, naming the layers it made slower.
  const std::string warning = j.at("passes")[0].at("warnings")[0];
  EXPECT_EQ(warning.rfind("output predicted slower on ort-cpu: ", 0), 0u) << warning;
  EXPECT_NE(warning.find("slower layers: "), std::string::npos) << warning;
  EXPECT_NE(warning.find("fc1"), std::string::npos) << warning;
  const Result text = run("mlp.onnx -o out2.onnx -p quantize-int8");
  EXPECT_NE(text.out.find("\nWARNING: predicted SLOWER on ort-cpu: "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("predicted for ort-cpu\n"), std::string::npos) << text.out;
}

TEST_F(Cli, TargetChoosesTheProfile) {
  const Result r = run("mlp.onnx -o out.onnx -p quantize-int8 --target generic --report-json -");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("target"), "generic");
  // generic runs every format natively: weight-only int8 costs no more than float.
  EXPECT_LE(j.at("after").at("predicted_latency_ms").get<double>(), j.at("before").at("predicted_latency_ms").get<double>());
  const Result inspect = run("inspect mlp.onnx --json --target ort-cpu-vnni");
  ASSERT_EQ(inspect.code, 0) << inspect.err;
  const auto k = nlohmann::json::parse(inspect.out);
  EXPECT_EQ(k.at("target"), "ort-cpu-vnni");
  EXPECT_EQ(k.at("latency_terms").at("session"), 1.0);
}

TEST_F(Cli, UnknownTargetIsAUsageError) {
  const Result r = run("mlp.onnx -o out.onnx --target tpu");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: unknown target 'tpu' (valid: generic, ort-cpu, ort-cpu-vnni)\n");
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
}

TEST_F(Cli, LatencyGateMissedExitsFourAndLeavesNoOutput) {
  const Result r = run("mlp.onnx -o out.onnx -p quantize-int8 --max-latency-ratio 0.5");
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.err.find("compress: error: gate missed: predicted latency ratio "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" on ort-cpu > --max-latency-ratio 0.5\n"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
  const Result ok = run("mlp.onnx -o out.onnx -p cleanup --max-latency-ratio 1 --report-json -");
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_TRUE(nlohmann::json::parse(ok.out).at("passes")[0].at("warnings").empty());  // not slower: no warning
  EXPECT_TRUE(fs::exists(dir_ / "out.onnx"));
}

TEST_F(Cli, UnknownPassIsAUsageErrorNamingTheChoices) {
  const Result r = run("mlp.onnx -o out.onnx -p no-such-pass");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("compress: error: unknown pass 'no-such-pass' (valid: cleanup", 0), 0u) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
}

TEST_F(Cli, UnknownOptionIsAUsageError) {
  const Result r = run("mlp.onnx -o out.onnx -p cleanup:dedup=false");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: unknown option 'dedup' for pass 'cleanup' (valid: dedupe)\n");
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
}

TEST_F(Cli, BadOptionValueIsAUsageError) {
  const Result r = run("mlp.onnx -o out.onnx -p cleanup:dedupe=maybe");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: option 'dedupe' of pass 'cleanup' expects true or false, got 'maybe'\n");
}

TEST_F(Cli, MissingInputIsAUsageError) {
  const Result r = run("missing.onnx -o out.onnx");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("missing.onnx"), std::string::npos) << r.err;
}

TEST_F(Cli, CorruptInputExitsTwoAndWritesNothing) {
  std::ofstream(dir_ / "bad.onnx", std::ios::binary) << "\x08\x07garbage-not-protobuf\xff\xff";
  const Result r = run("bad.onnx -o out.onnx");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "compress: error: bad.onnx: not an ONNX model (protobuf parse failed: truncated or corrupt file?)\n");
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
}

TEST_F(Cli, TruncatedInputExitsTwo) {
  std::ofstream(dir_ / "trunc.onnx", std::ios::binary) << input_bytes_.substr(0, input_bytes_.size() / 3);
  const Result r = run("trunc.onnx -o out.onnx");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
}

TEST_F(Cli, ExistingOutputIsRefusedWithoutForce) {
  std::ofstream(dir_ / "out.onnx") << "keep me";
  Result r = run("mlp.onnx -o out.onnx");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: output 'out.onnx' exists (use --force to overwrite)\n");
  EXPECT_EQ(read(dir_ / "out.onnx"), "keep me");
  r = run("mlp.onnx -o out.onnx --force");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read(dir_ / "out.onnx"), input_bytes_);
}

TEST_F(Cli, OutputEqualToInputIsAlwaysRefused) {
  const Result r = run("mlp.onnx -o ./mlp.onnx --force");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: output './mlp.onnx' is the input model; refusing to overwrite it\n");
}

TEST_F(Cli, DryRunWritesNothing) {
  const Result r = run("mlp.onnx -o out.onnx --dry-run -p cleanup");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
  EXPECT_NE(r.out.find("dry run"), std::string::npos);
}

TEST_F(Cli, ExternalDataIsWrittenBesideTheModelAndReloads) {
  Result r = run("mlp.onnx -o ext.onnx --external-data");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "ext.onnx.data"));
  EXPECT_LT(fs::file_size(dir_ / "ext.onnx"), 10000u);
  r = run("ext.onnx -o back.onnx");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read(dir_ / "back.onnx"), input_bytes_);
}

TEST_F(Cli, MissingExternalDataExitsTwo) {
  ASSERT_EQ(run("mlp.onnx -o ext.onnx --external-data").code, 0);
  fs::remove(dir_ / "ext.onnx.data");
  const Result r = run("ext.onnx -o back.onnx");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind("compress: error: ext.onnx: external data file 'ext.onnx.data' of tensor", 0), 0u) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "back.onnx"));
}

TEST_F(Cli, RecipeMeansTheSameAsPipelineText) {
  std::ofstream(dir_ / "recipe.json") << R"({"passes": [{"name": "cleanup", "options": {"dedupe": false}}]})";
  const Result a = run("mlp.onnx -o a.onnx --recipe recipe.json --report-json -");
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.out.find("\"pipeline\": \"cleanup:dedupe=false\""), std::string::npos);
}

TEST_F(Cli, InspectJsonHasTheDocumentedKeys) {
  const Result r = run("inspect mlp.onnx --json");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* key : {"\"file_bytes\"", "\"params\": 50826", "\"weight_bytes\": 203304", "\"macs\": 50432",
                          "\"flops\": 101248", "\"layers\""})
    EXPECT_NE(r.out.find(key), std::string::npos) << key;
}

TEST_F(Cli, InputShapeForAnUnknownInputIsAUsageError) {
  const Result r = run("inspect mlp.onnx --input-shape nope=1x64");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --input-shape names 'nope', which is not a model input\n");
}

TEST_F(Cli, VerboseLogsEveryTensorAPassTouchedQuietLogsNothing) {
  Result r = run("mlp.onnx -o a.onnx -p quantize-int8 -v");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("pass quantize-int8: {"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("relative_l2"), std::string::npos);
  r = run("mlp.onnx -o b.onnx -p quantize-int8");
  EXPECT_EQ(r.err.find("relative_l2"), std::string::npos) << r.err;  // one line per pass by default
  EXPECT_NE(r.err.find("pass quantize-int8 ("), std::string::npos);
  r = run("mlp.onnx -o c.onnx -p quantize-int8 -q");
  EXPECT_EQ(r.err, "");
}

TEST_F(Cli, PassesListsEveryPassWithOptions) {
  const Result r = run("passes");
  ASSERT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("cleanup"), std::string::npos);
  EXPECT_NE(r.out.find("dedupe=true"), std::string::npos);
}

}  // namespace
