// Output files: symlink chains written through, what may not be replaced, stale temps, and the
// two-step save (nothing in place before commit, nothing left when dropped).
#include <compress/error.h>
#include <compress/model.h>
#include <compress/output_file.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

namespace compress {
namespace {

namespace fs = std::filesystem;

class OutputFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("compress_output_file_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

  fs::path dir_;
};

Model tiny_model() {
  return Model::parse_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    agraph (float[2] x) => (float[2] y) { y = Relu(x) }
  )");
}

TEST_F(OutputFile, WriteTargetFollowsAChainOfRelativeAndAbsoluteLinks) {
  fs::create_directory(dir_ / "a");
  fs::create_symlink("a/second", dir_ / "first");
  fs::create_symlink(dir_ / "final.onnx", dir_ / "a" / "second");
  EXPECT_EQ(write_target(dir_ / "first"), dir_ / "final.onnx");
  EXPECT_EQ(write_target(dir_ / "plain.onnx"), dir_ / "plain.onnx");
}

TEST_F(OutputFile, WriteTargetRefusesALoop) {
  fs::create_symlink("b", dir_ / "a");
  fs::create_symlink("a", dir_ / "b");
  EXPECT_THROW(write_target(dir_ / "a"), Error);
}

TEST_F(OutputFile, ProblemsAreNamed) {
  fs::create_directory(dir_ / "sub");
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0644), 0);
  EXPECT_EQ(output_file_problem(dir_ / "sub"), "is a directory");
  EXPECT_EQ(output_file_problem(dir_ / "fifo"), "exists and is not a regular file");
  EXPECT_EQ(output_file_problem("/dev/null"), "exists and is not a regular file");
  EXPECT_EQ(output_file_problem(dir_ / "none" / "x.onnx"), "directory '" + (dir_ / "none").string() + "' does not exist");
  EXPECT_EQ(output_file_problem("/proc/x.onnx").rfind("directory '/proc' is not writable (", 0), 0u);
  EXPECT_EQ(output_file_problem(dir_ / "new.onnx"), "");
  EXPECT_FALSE(fs::exists(temp_path(dir_ / "new.onnx")));  // the probe is gone
}

TEST_F(OutputFile, AtomicWriteThroughALinkKeepsTheLink) {
  std::ofstream(dir_ / "target.json") << "old";
  fs::create_symlink("target.json", dir_ / "link.json");
  write_file_atomically(dir_ / "link.json", "new");
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(dir_ / "link.json")));
  EXPECT_EQ(read(dir_ / "target.json"), "new");
  EXPECT_FALSE(fs::exists(temp_path(dir_ / "target.json")));
}

TEST_F(OutputFile, StaleTempsOfDeadProcessesOnlyAreRemoved) {
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const fs::path target = dir_ / "m.onnx";
  std::ofstream(target.string() + ".tmp-" + std::to_string(dead)) << "x";
  std::ofstream(target.string() + ".tmp-" + std::to_string(::getpid() == 1 ? 2 : 1)) << "x";  // init: alive
  std::ofstream(target.string() + ".tmp-" + std::to_string(dead) + ".bak") << "x";
  EXPECT_EQ(remove_stale_temps(target), 1);
  EXPECT_FALSE(fs::exists(target.string() + ".tmp-" + std::to_string(dead)));
  EXPECT_TRUE(fs::exists(target.string() + ".tmp-" + std::to_string(dead) + ".bak"));
}

TEST_F(OutputFile, StagedSaveIsInPlaceOnlyAfterCommit) {
  Model model = tiny_model();
  const fs::path out = dir_ / "out.onnx";
  {
    StagedSave staged = model.stage_save(out, {});
    EXPECT_FALSE(fs::exists(out));
    EXPECT_TRUE(fs::exists(staged.temps().model));
    EXPECT_EQ(staged.files().model, out);
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(temp_path(out)));  // dropped uncommitted: removed
  StagedSave staged = model.stage_save(out, {});
  EXPECT_EQ(staged.commit().model, out);
  EXPECT_EQ(read(out), model.serialize());
  EXPECT_FALSE(fs::exists(temp_path(out)));
}

TEST_F(OutputFile, SaveRefusesANonRegularTargetEvenWhenOverwriting) {
  Model model = tiny_model();
  SaveOptions options;
  options.overwrite = true;
  fs::create_symlink("/dev/null", dir_ / "null.onnx");
  try {
    model.save(dir_ / "null.onnx", options);
    FAIL() << "saved over /dev/null";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kWriteFailed);
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

TEST_F(OutputFile, SaveKeepsAnExistingExternalDataFileUnlessOverwriting) {
  Model model = tiny_model();
  SaveOptions options;
  options.external_data = SaveOptions::ExternalData::kAlways;
  options.external_min_bytes = 0;
  const fs::path out = dir_ / "m.onnx", data = dir_ / "m.onnx.data";
  std::ofstream(data) << "mine";
  try {
    model.save(out, options);
    FAIL() << "replaced an existing data file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kWriteFailed);
    EXPECT_EQ(std::string(e.what()), data.string() + ": exists (use --force to overwrite)");
  }
  EXPECT_EQ(read(data), "mine");
  EXPECT_FALSE(fs::exists(out));
  options.overwrite = true;
  model.save(out, options);
  EXPECT_NE(read(data), "mine");
}

}  // namespace
}  // namespace compress
