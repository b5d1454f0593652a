// Runs the built `compress` binary: exit codes, the exact one-line errors, no output after a
// failure, the input never modified.
#include <nlohmann/json.hpp>

#include <onnx/onnx_pb.h>

#include <cstdlib>
#include <fstream>

#include <compress/npy.h>

#include "cli/cli_run.h"

namespace {

namespace fs = std::filesystem;
using compress_cli::Cli;
using compress_cli::Result;

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

// ---- compress auto ---------------------------------------------------------------------------

std::string digits_data(const std::string& file) { return "'" + (fs::path(COMPRESS_MODELS_DIR) / file).string() + "'"; }

TEST_F(Cli, AutoMeetsTheBudgetAndItsRecipeReproducesTheOutputByteForByte) {
  Result r = run("auto mlp.onnx -o a.onnx --input input=" + digits_data("digits_test_x_mlp.npy") + " --labels " +
                 digits_data("digits_test_y.npy") + " --max-accuracy-drop 0.5 --recipe-out plan.json --report-json r.json -q");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("verdict: budget met on the held-out samples"), std::string::npos) << r.out;
  const auto report = nlohmann::json::parse(read(dir_ / "r.json"));
  EXPECT_EQ(report["auto"]["met"], true);
  EXPECT_EQ(report["auto"]["samples"]["held_out"], 112);  // 450 samples, every 4th held out
  EXPECT_LE(report["auto"]["held_out"]["accuracy_drop_points"].get<double>(), 0.5);
  EXPECT_LT(report["after"]["file_bytes"].get<double>(), 0.5 * report["before"]["file_bytes"].get<double>());
  r = run("mlp.onnx -o b.onnx --recipe plan.json -q");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read(dir_ / "a.onnx"), read(dir_ / "b.onnx"));
  // The plan records the shapes the output was made with (one sample), which --recipe applies.
  EXPECT_EQ(nlohmann::json::parse(read(dir_ / "plan.json"))["input_shapes"], nlohmann::json::parse(R"({"input": [1, 64]})"));
}

TEST_F(Cli, RecipeInputShapesApplyUnlessInputShapeIsGiven) {
  std::ofstream(dir_ / "r7.json") << R"({"passes": [{"name": "cleanup"}], "input_shapes": {"input": [7, 64]}})";
  Result r = run("mlp.onnx -o a.onnx --recipe r7.json --report-json a.json -q");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("mlp.onnx -o b.onnx -p cleanup --report-json b.json -q");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("mlp.onnx -o c.onnx --recipe r7.json --input-shape input=2x64 --report-json c.json -q");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto macs = [&](const char* file) { return nlohmann::json::parse(read(dir_ / file))["before"]["macs"].get<int64_t>(); };
  EXPECT_EQ(macs("a.json"), 7 * macs("b.json"));  // batch 7 from the recipe, 1 assumed without it
  EXPECT_EQ(macs("c.json"), 2 * macs("b.json"));  // the flag wins
  EXPECT_TRUE(nlohmann::json::parse(read(dir_ / "a.json"))["assumptions"].empty());
  std::ofstream(dir_ / "bad.json") << R"({"passes": [{"name": "cleanup"}], "input_shapes": {"input": [0, 64]}})";
  r = run("mlp.onnx -o d.onnx --recipe bad.json -q");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: recipe: input_shapes must map input names to arrays of positive dims\n");
}

TEST_F(Cli, AutoWithABudgetNobodyMeetsExitsFourWithAReportAndNoModel) {
  const Result r = run("auto mlp.onnx -o a.onnx --input input=" + digits_data("digits_test_x_mlp.npy") +
                       " --min-cosine 0.99999999 --allow int4 --report-json r.json --recipe-out plan.json -q");
  EXPECT_EQ(r.code, 4);
  EXPECT_EQ(r.err, "compress: error: auto: no compressed model meets the budget on the held-out samples; no output written\n");
  EXPECT_FALSE(fs::exists(dir_ / "a.onnx"));
  EXPECT_FALSE(fs::exists(dir_ / "plan.json"));
  const auto report = nlohmann::json::parse(read(dir_ / "r.json"));
  EXPECT_EQ(report["auto"]["met"], false);
  EXPECT_TRUE(report["auto"].contains("held_out"));
}

TEST_F(Cli, AutoLatencyObjectiveNamesObjectiveAndTargetInEveryReport) {
  const Result r = run("auto mlp.onnx -o a.onnx --input input=" + digits_data("digits_test_x_mlp.npy") +
                       " --min-cosine 0.999 --objective latency --target ort-cpu-vnni --report-json r.json --report-md r.md -q");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("objective latency on ort-cpu-vnni"), std::string::npos) << r.out;
  const auto report = nlohmann::json::parse(read(dir_ / "r.json"));
  EXPECT_EQ(report["auto"]["objective"], "latency");
  EXPECT_EQ(report["auto"]["target"], "ort-cpu-vnni");
  EXPECT_EQ(report["target"], "ort-cpu-vnni");
  // Whatever was chosen is not predicted slower than the float model.
  EXPECT_LE(report["after"]["predicted_latency_ms"].get<double>(), report["before"]["predicted_latency_ms"].get<double>());
  EXPECT_NE(read(dir_ / "r.md").find("(objective latency on ort-cpu-vnni)"), std::string::npos);
}

TEST_F(Cli, AutoKeepsTheModelFloatWhenEveryChoiceIsPredictedSlower) {
  // On ort-cpu weight-only int8 is dequantized every run: slower for every layer of the MLP.
  Result r = run("auto mlp.onnx -o a.onnx --input input=" + digits_data("digits_test_x_mlp.npy") +
                 " --min-cosine 0.999 --objective latency --allow int8 --recipe-out plan.json -q");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("verdict: kept float: no allowed choice is predicted faster on ort-cpu"), std::string::npos) << r.out;
  EXPECT_EQ(read(dir_ / "a.onnx"), input_bytes_);
  EXPECT_EQ(nlohmann::json::parse(read(dir_ / "plan.json")),
            nlohmann::json::parse(R"({"passes": [], "input_shapes": {"input": [1, 64]}})"));
}

TEST_F(Cli, AutoRecipeNamesUnnamedNodesAndReproducesTheOutput) {
  onnx::ModelProto unnamed;
  ASSERT_TRUE(unnamed.ParseFromString(input_bytes_));
  for (auto& node : *unnamed.mutable_graph()->mutable_node()) node.clear_name();
  std::ofstream(dir_ / "unnamed.onnx", std::ios::binary) << unnamed.SerializeAsString();
  Result r = run("auto unnamed.onnx -o a.onnx --input input=" + digits_data("digits_test_x_mlp.npy") +
                 " --min-cosine 0.999 --allow int8 --recipe-out plan.json -q");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(read(dir_ / "plan.json").find("\"Gemm:"), std::string::npos) << read(dir_ / "plan.json");
  r = run("unnamed.onnx -o b.onnx --recipe plan.json -q");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read(dir_ / "a.onnx"), read(dir_ / "b.onnx"));
}

TEST_F(Cli, AutoStaticInt8CalibratesOnTheSearchSamplesWrittenBesideTheOutput) {
  Result r = run("auto mlp.onnx -o a.onnx --input input=" + digits_data("digits_test_x_mlp.npy") +
                 " --min-cosine 0.99 --allow int8-static --recipe-out plan.json --report-json r.json -q");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto plan = nlohmann::json::parse(read(dir_ / "plan.json"));
  ASSERT_EQ(plan["passes"].size(), 1u) << plan.dump(2);
  EXPECT_EQ(plan["passes"][0]["options"]["calibration"], "a.onnx.calibration");
  EXPECT_EQ(plan["passes"][0]["options"]["mode"], "static");
  // The 338 search samples of 450 (every 4th held out), nothing else in the directory.
  const auto calibration = compress::eval::read_npy(dir_ / "a.onnx.calibration" / "input.npy");
  EXPECT_EQ(calibration.dims, (std::vector<int64_t>{338, 64}));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "a.onnx.calibration"), fs::directory_iterator()), 1);
  const auto report = nlohmann::json::parse(read(dir_ / "r.json"));
  EXPECT_EQ(report["auto"]["samples"]["calibration"]["samples"], 338);
  EXPECT_EQ(report["passes"][0]["counters"]["calibration_samples"], 338);
  r = run("mlp.onnx -o b.onnx --recipe plan.json -q");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read(dir_ / "a.onnx"), read(dir_ / "b.onnx"));
  // A second run would overwrite the samples: only with --force.
  r = run("auto mlp.onnx -o c.onnx --input input=" + digits_data("digits_test_x_mlp.npy") +
          " --min-cosine 0.99 --allow int8-static -q");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("auto mlp.onnx -o c.onnx --force --input input=" + digits_data("digits_test_x_mlp.npy") +
          " --min-cosine 0.99 --allow int8-static,int8 -q");
  ASSERT_EQ(r.code, 0) << r.err;
  fs::remove(dir_ / "c.onnx");
  r = run("auto mlp.onnx -o c.onnx --input input=" + digits_data("digits_test_x_mlp.npy") +
          " --min-cosine 0.99 --allow int8-static -q");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: calibration directory 'c.onnx.calibration' exists (use --force to overwrite)\n");
  EXPECT_FALSE(fs::exists(dir_ / "c.onnx"));
  // low-rank whitens on the same samples, so it guards the directory too.
  r = run("auto mlp.onnx -o c.onnx --input input=" + digits_data("digits_test_x_mlp.npy") +
          " --min-cosine 0.99 --allow low-rank,int8 -q");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: calibration directory 'c.onnx.calibration' exists (use --force to overwrite)\n");
}

TEST_F(Cli, AutoUsageErrors) {
  Result r = run("auto mlp.onnx -o a.onnx --min-cosine 0.9");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("auto needs samples"), std::string::npos) << r.err;
  r = run("auto mlp.onnx -o a.onnx --input input=" + digits_data("digits_test_x_mlp.npy") + " --min-cosine 0.9 --objective speed");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --objective: unknown objective 'speed' (valid: size, latency, energy)\n");
  r = run("auto mlp.onnx -o a.onnx --input input=" + digits_data("digits_test_x_mlp.npy") +
          " --min-cosine 0.9 --objective latency --target tpu");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("compress: error: --target: unknown target 'tpu' (valid: ", 0), 0u) << r.err;
  r = run("auto mlp.onnx -o a.onnx --input input=" + digits_data("digits_test_x_mlp.npy") + " --min-cosine 0.9 --allow int3");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("unknown choice 'int3'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "a.onnx"));
}

TEST_F(Cli, AssumedDimsComeFirstInEveryReportFormat) {
  // digits_mlp's batch dim is symbolic: every format says the counts assumed it, up front.
  const std::string headline =
      "ASSUMED input 'input' dim 0 'batch' = 1: MACs/FLOPs depend on it; give the real shape with "
      "--input-shape input=1x64";
  Result r = run("mlp.onnx -o a.onnx --report-md report.md --report-json report.json");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string first, second, third;
  std::getline(lines, first);
  std::getline(lines, second);
  std::getline(lines, third);
  EXPECT_EQ(third, headline) << r.out;
  const std::string md = read(dir_ / "report.md");
  EXPECT_LT(md.find("> **" + headline + "**"), md.find("| metric |")) << md;
  EXPECT_NE(read(dir_ / "report.json")
                .find(R"("assumptions": [
    {
      "dim": 0,
      "dim_param": "batch",
      "flag": "--input-shape input=1x64",
      "input": "input",
      "value": 1
    }
  ])"),
            std::string::npos);
  r = run("inspect mlp.onnx");
  EXPECT_EQ(r.out.substr(0, headline.size()), headline);
  r = run("inspect mlp.onnx --input-shape input=4x64");
  EXPECT_EQ(r.out.find("ASSUMED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("201728"), std::string::npos) << r.out;  // 4 x 50432 MACs
}

TEST_F(Cli, VerifyPrintsTheInputShapesItUsed) {
  Result r = run("verify mlp.onnx mlp.onnx --random --seed 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "inputs: input=1x64");
  EXPECT_NE(r.out.find("ASSUMED input 'input' dim 0 assumed 1"), std::string::npos) << r.out;
  r = run("verify mlp.onnx mlp.onnx --random --seed 1 --input-shape input=3x64 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(R"("input_shapes": {
    "input": [
      3,
      64
    ]
  })"),
            std::string::npos)
      << r.out;
}

TEST_F(Cli, ModelsOver100MBLogProgressWithoutATerminalButNotWithQuiet) {
  // One 5100 x 5100 float32 MatMul weight: 104 MB. stderr is a file here, not a TTY.
  {
    std::ofstream script(dir_ / "make.py");
    script << "import numpy as np, onnx\nfrom onnx import helper, numpy_helper, TensorProto\n"
              "w = numpy_helper.from_array(np.zeros((5100, 5100), np.float32), 'w')\n"
              "g = helper.make_graph([helper.make_node('MatMul', ['x', 'w'], ['y'])], 'g',\n"
              "    [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 5100])],\n"
              "    [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 5100])], [w])\n"
              "onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), 'big.onnx')\n";
  }
  ASSERT_EQ(std::system(("cd '" + dir_.string() + "' && /usr/bin/python3 make.py").c_str()), 0);
  Result r = run("big.onnx -o out.onnx");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("compress: info: progress: loaded big.onnx (104040"), std::string::npos) << r.err;
  r = run("big.onnx -o out2.onnx -q");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  r = run("mlp.onnx -o small.onnx");
  EXPECT_EQ(r.err.find("progress:"), std::string::npos) << r.err;  // small models stay quiet
}

}  // namespace
