#include <compress/error.h>
#include <compress/pipeline.h>
#include <compress/npy.h>
#include <gtest/gtest.h>

#include <filesystem>

namespace compress {
namespace {

// A pass with one option of each type, to check parsing and validation.
class ProbePass final : public Pass {
 public:
  PassInfo info() const override {
    OptionSpec ratio{"ratio", OptionSpec::Type::kFloat, "0.5", "a ratio", 0.0, 1.0};
    OptionSpec count{"count", OptionSpec::Type::kInt, "3", "a count", 1, 10};
    OptionSpec mode{"mode", OptionSpec::Type::kEnum, "a", "a mode"};
    mode.choices = {"a", "b"};
    OptionSpec flag{"flag", OptionSpec::Type::kBool, "false", "a flag"};
    OptionSpec exclude{"exclude", OptionSpec::Type::kList, "[]", "globs"};
    return {"probe", "test pass", {ratio, count, mode, flag, exclude}};
  }
  PassStats run(Model&, const PassContext& context) const override {
    PassStats s;
    s.count("excluded_items", static_cast<int64_t>(context.options().get_list("exclude").size()));
    return s;
  }
};

PassRegistry registry() {
  PassRegistry r;
  r.add([] { return std::make_unique<ProbePass>(); });
  return r;
}

std::string usage_error(const std::string& text) {
  try {
    Pipeline::build(registry(), parse_pipeline_text(text));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    return e.what();
  }
  return "";
}

TEST(PipelineText, ParsesPassesOptionsAndLists) {
  const auto inv = parse_pipeline_text("probe:ratio=0.25:exclude=[/head/*,Conv], probe");
  ASSERT_EQ(inv.size(), 2u);
  EXPECT_EQ(inv[0].name, "probe");
  ASSERT_EQ(inv[0].options.size(), 2u);
  EXPECT_EQ(inv[0].options[1].second, "[/head/*,Conv]");
  EXPECT_TRUE(inv[1].options.empty());
}

TEST(PipelineText, CanonicalFormFillsDefaultsAndRoundTrips) {
  const Pipeline p = Pipeline::build(registry(), parse_pipeline_text("probe:mode=b:flag=yes:exclude=[x, y]"));
  EXPECT_EQ(p.canonical(), "probe:ratio=0.5:count=3:mode=b:flag=true:exclude=[x,y]");
  EXPECT_EQ(Pipeline::build(registry(), parse_pipeline_text(p.canonical())).canonical(), p.canonical());
}

TEST(PipelineText, RejectsWithTheCulpritAndTheChoices) {
  EXPECT_EQ(usage_error("prob"), "unknown pass 'prob' (valid: probe)");
  EXPECT_EQ(usage_error("probe:rato=1"), "unknown option 'rato' for pass 'probe' (valid: ratio, count, mode, flag, exclude)");
  EXPECT_EQ(usage_error("probe:ratio=1.5"), "option 'ratio' of pass 'probe' = 1.5 is out of range [0, 1]");
  EXPECT_EQ(usage_error("probe:count=2.5"), "option 'count' of pass 'probe' expects an integer, got '2.5'");
  EXPECT_EQ(usage_error("probe:mode=c"), "option 'mode' of pass 'probe' = 'c' is not one of: a, b");
  EXPECT_EQ(usage_error("probe:ratio"), "pass 'probe': option 'ratio' must be written name=value");
  EXPECT_EQ(usage_error("probe:ratio=0.1:ratio=0.2"), "option 'ratio' of pass 'probe' given twice");
  EXPECT_EQ(usage_error("probe,,probe"), "pipeline 'probe,,probe' has an empty pass (stray ',')");
  EXPECT_EQ(usage_error("probe:exclude=[a"), "pipeline 'probe:exclude=[a': unbalanced '['");
}

TEST(Recipe, MeansTheSameAsText) {
  const auto recipe = nlohmann::json::parse(
      R"({"passes": [{"name": "probe", "options": {"ratio": 0.25, "flag": true, "exclude": ["a", "b"]}}]})");
  const Pipeline p = Pipeline::build(registry(), parse_recipe_json(recipe));
  EXPECT_EQ(p.canonical(), "probe:ratio=0.25:count=3:mode=a:flag=true:exclude=[a,b]");
}

TEST(Recipe, RejectsUnknownKeys) {
  EXPECT_THROW(parse_recipe_json(nlohmann::json::parse(R"({"pases": []})")), Error);
  // input_shapes (what compress auto records) is accepted when well formed; the CLI applies it.
  EXPECT_EQ(parse_recipe_json(nlohmann::json::parse(R"({"passes": [], "input_shapes": {"x": [1, 3]}})")).size(), 0u);
  EXPECT_THROW(parse_recipe_json(nlohmann::json::parse(R"({"passes": [], "input_shapes": {"x": "1x3"}})")), Error);
  EXPECT_THROW(parse_recipe_json(nlohmann::json::parse(R"({"passes": [], "input_shapes": {"x": [1, -3]}})")), Error);
  EXPECT_THROW(parse_recipe_json(nlohmann::json::parse(R"({"passes": [{"name": "probe", "opts": {}}]})")), Error);
}

// A pass with a samples option: it counts the samples the pipeline loaded for it.
class SamplesProbePass final : public Pass {
 public:
  PassInfo info() const override {
    return {"samples-probe", "test pass", {{"calibration", OptionSpec::Type::kSamples, "", "samples dir"}}};
  }
  PassStats run(Model&, const PassContext& context) const override {
    PassStats s;
    const eval::TensorMap* samples = context.samples("calibration");
    s.count("inputs", samples ? static_cast<int64_t>(samples->size()) : -1);
    if (samples) s.count("rows", samples->at("x").dims.at(0));
    return s;
  }
};

TEST(PipelineSamples, LoadsEveryNpyBeforeAnyPassRunsAndRejectsMissingDirs) {
  PassRegistry r;
  r.add([] { return std::make_unique<SamplesProbePass>(); });
  const auto dir = std::filesystem::temp_directory_path() / ("compress_samples_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  eval::write_npy(dir / "x.npy", eval::Tensor::floats({3, 2}, {1, 2, 3, 4, 5, 6}));
  Model m = Model::parse_text(R"(
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2] x) => (float[1, 2] y) { y = Relu(x) }
)");
  const auto with = Pipeline::build(r, parse_pipeline_text("samples-probe:calibration=" + dir.string())).run(m, {});
  EXPECT_EQ(with.at(0).stats.counters.at("inputs"), 1);
  EXPECT_EQ(with.at(0).stats.counters.at("rows"), 3);
  const auto without = Pipeline::build(r, parse_pipeline_text("samples-probe")).run(m, {});
  EXPECT_EQ(without.at(0).stats.counters.at("inputs"), -1);
  try {
    Pipeline::build(r, parse_pipeline_text("samples-probe:calibration=/no/such/dir"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_STREQ(e.what(), "option 'calibration' of pass 'samples-probe': '/no/such/dir' is not a directory");
  }
  std::filesystem::remove_all(dir);
}

TEST(Glob, MatchesNamesAndOpTypes) {
  EXPECT_TRUE(glob_match("/head/*", "/head/fc"));
  EXPECT_FALSE(glob_match("/head/*", "/body/fc"));
  EXPECT_TRUE(glob_match("Conv", "Conv"));
  EXPECT_FALSE(glob_match("Conv", "ConvTranspose"));
}

}  // namespace
}  // namespace compress

namespace compress {
namespace {

TEST(PipelineNodes, TextAndRecipeFormsRestrictAPassToNamedNodes) {
  const auto text = parse_pipeline_text("probe:nodes=[b,a]:count=4");
  ASSERT_EQ(text.size(), 1u);
  EXPECT_EQ(text[0].nodes, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(Pipeline::build(registry(), text).canonical(), "probe:ratio=0.5:count=4:mode=a:flag=false:exclude=[]:nodes=[a,b]");
  // The recipe form carries any node name, and recipe_to_json gives the same invocations back.
  const auto recipe = parse_recipe_json(nlohmann::json::parse(R"({"passes": [{"name": "probe", "nodes": ["x,y", "z"]}]})"));
  EXPECT_EQ(recipe[0].nodes, (std::vector<std::string>{"x,y", "z"}));
  const auto back = parse_recipe_json(recipe_to_json(recipe));
  EXPECT_EQ(back[0].nodes, recipe[0].nodes);
  EXPECT_EQ(back[0].name, "probe");
  EXPECT_NE(usage_error("probe:nodes=[]").find("names no node"), std::string::npos);
  try {
    parse_recipe_json(nlohmann::json::parse(R"({"passes": [{"name": "probe", "nodes": "a"}]})"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-empty array"), std::string::npos);
  }
}

TEST(PipelineNodes, ContextExcludesEveryOtherNode) {
  onnx::NodeProto a, b;
  a.set_name("a");
  a.set_op_type("MatMul");
  b.set_name("b");
  b.set_op_type("MatMul");
  const PassContext ctx(PassOptions(), {}, {}, std::make_shared<const std::set<std::string>>(std::set<std::string>{"a"}));
  EXPECT_FALSE(ctx.is_excluded(a));
  EXPECT_TRUE(ctx.is_excluded(b));
  const PassContext all(PassOptions(), {});
  EXPECT_FALSE(all.is_excluded(b));
}

}  // namespace
}  // namespace compress
