// Runs the built binary on what it writes and when: outputs that are not regular files, symlinks
// written through, reports in every outcome and before the model, stale temp files of killed runs,
// data mistakes found before any pass runs.
#include <compress/evaluator.h>
#include <compress/model.h>
#include <compress/npy.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>

#include "cli/cli_run.h"

namespace {

namespace fs = std::filesystem;
using compress_cli::Cli;
using compress_cli::Result;

const std::string kModels = COMPRESS_MODELS_DIR;
const std::string kMlpX = kModels + "/digits_test_x_mlp.npy";
const std::string kCnnX = kModels + "/digits_test_x_cnn.npy";
const std::string kLabels = kModels + "/digits_test_y.npy";

// Names of files in `dir` that contain ".tmp-": what a failed or killed write could leave.
std::vector<std::string> temp_files(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) names.push_back(e.path().filename().string());
  return names;
}

// A pid that was just alive and is not any more (forked, exited, reaped).
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

// A model whose one input is int64: random data cannot fill it.
void write_int64_input_model(const fs::path& path) {
  auto model = compress::Model::parse_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    agraph (int64[N] ids) => (float[N] y) { y = Cast<to = 1>(ids) }
  )");
  model.save(path, {});
}

std::string not_regular(const std::string& path) {
  return "compress: error: -o " + path +
         ": exists and is not a regular file; refusing to replace it (use --dry-run to run without writing)\n";
}

TEST_F(Cli, DevNullOutputIsRefusedEvenWithForce) {
  for (const char* force : {"", " --force"}) {
    const Result r = run(std::string("mlp.onnx -o /dev/null -p cleanup") + force);
    EXPECT_EQ(r.code, 1) << force;
    EXPECT_EQ(r.err, not_regular("/dev/null"));
  }
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  EXPECT_TRUE(temp_files("/dev").empty());
  const Result dry = run("mlp.onnx -o /dev/null --dry-run -p cleanup");
  EXPECT_EQ(dry.code, 0) << dry.err;
}

TEST_F(Cli, FifoAndDirectoryOutputsAreRefusedEvenWithForce) {
  ASSERT_EQ(::mkfifo((dir_ / "pipe.onnx").c_str(), 0644), 0);
  fs::create_directory(dir_ / "folder.onnx");
  Result r = run("mlp.onnx -o pipe.onnx --force");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, not_regular("pipe.onnx"));
  EXPECT_TRUE(fs::is_fifo(dir_ / "pipe.onnx"));
  r = run("mlp.onnx -o folder.onnx --force");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "compress: error: -o folder.onnx: is a directory; refusing to replace it (use --dry-run to run without "
            "writing)\n");
  EXPECT_TRUE(fs::is_directory(dir_ / "folder.onnx"));
  EXPECT_TRUE(fs::is_empty(dir_ / "folder.onnx"));
  EXPECT_TRUE(temp_files(dir_).empty());
}

TEST_F(Cli, SymlinkOutputIsWrittenThroughItsTargetAndStaysALink) {
  fs::create_directory(dir_ / "real");
  std::ofstream(dir_ / "real" / "model.onnx") << "old content";
  fs::create_symlink("real/model.onnx", dir_ / "link.onnx");
  Result r = run("mlp.onnx -o link.onnx");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: output 'link.onnx' exists (use --force to overwrite)\n");
  r = run("mlp.onnx -o link.onnx --force");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(fs::is_symlink(fs::symlink_status(dir_ / "link.onnx")));
  EXPECT_EQ(fs::read_symlink(dir_ / "link.onnx"), "real/model.onnx");
  EXPECT_EQ(read(dir_ / "real" / "model.onnx"), input_bytes_);
  EXPECT_TRUE(temp_files(dir_).empty());
  EXPECT_TRUE(temp_files(dir_ / "real").empty());
}

TEST_F(Cli, SymlinkToDevNullIsRefused) {
  fs::create_symlink("/dev/null", dir_ / "null.onnx");
  const Result r = run("mlp.onnx -o null.onnx --force");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, not_regular("null.onnx"));
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(dir_ / "null.onnx")));
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

TEST_F(Cli, ExternalDataSymlinkIsWrittenThroughAndTheModelReloads) {
  std::ofstream(dir_ / "weights.bin") << "old";
  fs::create_symlink("weights.bin", dir_ / "ext.onnx.data");
  Result r = run("mlp.onnx -o ext.onnx --external-data --force");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(fs::is_symlink(fs::symlink_status(dir_ / "ext.onnx.data")));
  EXPECT_GT(fs::file_size(dir_ / "weights.bin"), 100000u);
  EXPECT_TRUE(temp_files(dir_).empty());
  r = run("ext.onnx -o back.onnx");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read(dir_ / "back.onnx"), input_bytes_);
}

TEST_F(Cli, ExternalDataPathThatIsADirectoryIsRefused) {
  fs::create_directory(dir_ / "ext.onnx.data");
  const Result r = run("mlp.onnx -o ext.onnx --external-data");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "compress: error: -o ext.onnx.data: is a directory; refusing to replace it (use --dry-run to run "
            "without writing)\n");
  EXPECT_FALSE(fs::exists(dir_ / "ext.onnx"));
}

TEST_F(Cli, ExistingExternalDataFileIsRefusedWithoutForce) {
  // Someone else's file where the weights would go: refused like an existing model, before any pass.
  std::ofstream(dir_ / "ext.onnx.data") << "mine";
  Result r = run("mlp.onnx -o ext.onnx --external-data -p quantize-int8");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: output data file 'ext.onnx.data' exists (use --force to overwrite)\n");
  EXPECT_FALSE(fs::exists(dir_ / "ext.onnx"));
  EXPECT_EQ(read(dir_ / "ext.onnx.data"), "mine");
  EXPECT_TRUE(temp_files(dir_).empty());
  r = run("mlp.onnx -o ext.onnx --external-data --force");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GT(fs::file_size(dir_ / "ext.onnx.data"), 100000u);
}

TEST_F(Cli, SaveOutputsDirectoryIsCheckedBeforeAnyWork) {
  std::ofstream(dir_ / "file.txt") << "x";
  Result r = run("verify mlp.onnx mlp.onnx --random --seed 1 --save-outputs file.txt");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --save-outputs file.txt: exists and is not a directory\n");
  r = run("verify mlp.onnx mlp.onnx --random --seed 1 --save-outputs file.txt/sub");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --save-outputs file.txt/sub: 'file.txt' is not a directory\n");
  r = run("verify mlp.onnx mlp.onnx --random --seed 1 --save-outputs /proc/compress-outputs");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("compress: error: --save-outputs /proc/compress-outputs: directory '/proc' is not writable (", 0), 0u)
      << r.err;
  EXPECT_TRUE(r.out.empty());  // nothing was compared
  r = run("verify mlp.onnx mlp.onnx --random --seed 1 --save-outputs new/sub");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::is_empty(dir_ / "new" / "sub"));
}

TEST_F(Cli, MissingOutputDirectoryIsAUsageErrorBeforeAnyPass) {
  Result r = run("mlp.onnx -o nowhere/out.onnx -p quantize-int8");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: -o nowhere/out.onnx: directory 'nowhere' does not exist\n");  // no pass log
  r = run("mlp.onnx -o out.onnx --report-json nowhere/r.json");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --report-json nowhere/r.json: directory 'nowhere' does not exist\n");
  r = run("mlp.onnx -o out.onnx --report-md nowhere/r.md");
  EXPECT_EQ(r.code, 1);
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
}

TEST_F(Cli, UnwritableOutputDirectoryIsAUsageError) {
  // /proc refuses new files even to root, where a chmod 0555 directory would not.
  const Result r = run("mlp.onnx -o /proc/out.onnx -p quantize-int8");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("compress: error: -o /proc/out.onnx: directory '/proc' is not writable (", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
}

TEST_F(Cli, MissedGateStillWritesEveryReportWithTheVerdictsAndNoModel) {
  const Result r = run("mlp.onnx -o out.onnx -p quantize-int8 --verify --input input=" + kMlpX + " --labels " +
                       kLabels + " --min-cosine 1.5 --max-accuracy-drop 100 --report-json r.json --report-md r.md");
  EXPECT_EQ(r.code, 4);
  const std::string last_line = r.err.substr(r.err.rfind('\n', r.err.size() - 2) + 1);
  EXPECT_EQ(last_line.rfind("compress: error: gate missed: output 'logits' cosine ", 0), 0u) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
  EXPECT_TRUE(temp_files(dir_).empty());
  const std::string json = read(dir_ / "r.json");
  EXPECT_NE(json.find("\"output\": null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"not_written\": \"gate missed\""), std::string::npos);
  EXPECT_NE(json.find("\"gate\": \"min-cosine\""), std::string::npos);
  EXPECT_NE(json.find("\"gate\": \"max-accuracy-drop\""), std::string::npos);
  EXPECT_NE(json.find("\"passed\": false"), std::string::npos);
  EXPECT_NE(json.find("\"passed\": true"), std::string::npos);
  EXPECT_NE(json.find("\"drop_points\""), std::string::npos);
  const std::string md = read(dir_ / "r.md");
  EXPECT_NE(md.find("| **FAIL** | --min-cosine | 1.5 | output 'logits' cosine "), std::string::npos) << md;
  EXPECT_NE(md.find("| pass | --max-accuracy-drop | 100 | accuracy drop (points) "), std::string::npos) << md;
  EXPECT_NE(r.out.find("(gate missed, not written)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  FAIL  --min-cosine 1.5: output 'logits' cosine "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  pass  --max-accuracy-drop 100: accuracy drop (points) "), std::string::npos) << r.out;
}

TEST_F(Cli, PassedGatesAreInTheReportsToo) {
  const Result r = run("mlp.onnx -o out.onnx -p cleanup --verify --input input=" + kMlpX + " --labels " + kLabels +
                       " --min-cosine 0.99 --report-json r.json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "out.onnx"));
  const std::string json = read(dir_ / "r.json");
  EXPECT_NE(json.find("\"output\": \"out.onnx\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"passed\": true"), std::string::npos);
  EXPECT_EQ(json.find("\"passed\": false"), std::string::npos);
  EXPECT_NE(r.out.find("  pass  --min-cosine 0.99: output 'logits' cosine 1"), std::string::npos) << r.out;
}

TEST_F(Cli, ReportThatCannotBeWrittenLeavesNoModel) {
  // /dev/full takes the open but fails every write (ENOSPC): the report fails after the pipeline ran.
  const Result r = run("mlp.onnx -o out.onnx -p cleanup -q --report-json /dev/full");
  EXPECT_EQ(r.code, 5);
  EXPECT_EQ(r.err, "compress: error: /dev/full: cannot write report\n");
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
  EXPECT_TRUE(temp_files(dir_).empty());
}

TEST_F(Cli, ReportToAStreamIsWrittenNotReplaced) {
  const Result r = run("mlp.onnx -o out.onnx -p cleanup --report-json /dev/stdout");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"pipeline\": \"cleanup:dedupe=true\""), std::string::npos);
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

TEST_F(Cli, StaleTempFilesOfTheSameOutputAreRemovedOthersKept) {
  const std::string dead = std::to_string(dead_pid());
  const std::string alive = std::to_string(::getpid());
  const std::vector<std::string> stale = {"out.onnx.tmp-" + dead, "out.onnx.data.tmp-" + dead, "r.json.tmp-" + dead};
  const std::vector<std::string> kept = {"out.onnx.tmp-" + alive, "other.onnx.tmp-" + dead, "out.onnx.tmp-" + dead + "x",
                                         "out.onnx.tmp-", "xout.onnx.tmp-" + dead};
  for (const auto& name : stale) std::ofstream(dir_ / name) << "left by a killed run";
  for (const auto& name : kept) std::ofstream(dir_ / name) << "not ours to remove";
  fs::create_directory(dir_ / ("out.onnx.tmp-" + dead + "0"));  // not a regular file: kept
  const Result r = run("mlp.onnx -o out.onnx -p cleanup --report-json r.json");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const auto& name : stale) EXPECT_FALSE(fs::exists(dir_ / name)) << name;
  for (const auto& name : kept) EXPECT_EQ(read(dir_ / name), "not ours to remove") << name;
  EXPECT_TRUE(fs::is_directory(dir_ / ("out.onnx.tmp-" + dead + "0")));
}

// Starts `compress mlp.onnx -o out.onnx` with its JSON report going to a FIFO no one reads: the run
// blocks there with the model written to its temp file (reports come before the rename), so a
// signal sent then lands in the middle of the write, every time. Returns the pid once the temp file
// is complete; stderr goes to err.txt.
pid_t start_blocked_on_report_fifo(const fs::path& dir, size_t model_bytes) {
  EXPECT_EQ(::mkfifo((dir / "report.fifo").c_str(), 0644), 0);
  const std::string cmd = "cd '" + dir.string() + "' && exec '" + std::string(COMPRESS_BINARY) +
                          "' mlp.onnx -o out.onnx -q --report-json report.fifo 2>err.txt";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const fs::path temp = dir / ("out.onnx.tmp-" + std::to_string(pid));
  std::error_code ec;
  for (int k = 0; k < 1200 && !(fs::exists(temp) && fs::file_size(temp, ec) == model_bytes); ++k) ::usleep(50000);
  return pid;
}

TEST_F(Cli, KilledWriteLeavesATempFileTheNextRunRemoves) {
  const pid_t pid = start_blocked_on_report_fifo(dir_, input_bytes_.size());
  const fs::path temp = dir_ / ("out.onnx.tmp-" + std::to_string(pid));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ASSERT_TRUE(fs::exists(temp)) << "the killed run left no temp file";
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
  const Result r = run("mlp.onnx -o out.onnx");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_TRUE(temp_files(dir_).empty());
  EXPECT_EQ(read(dir_ / "out.onnx"), input_bytes_);
}

TEST_F(Cli, SigbusFromAShrunkInputIsAOneLineBadInputError) {
  // The signal a mapped read of an input file that shrank would raise.
  const pid_t pid = start_blocked_on_report_fifo(dir_, input_bytes_.size());
  ::kill(pid, SIGBUS);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the run died of the signal";
  EXPECT_EQ(WEXITSTATUS(status), 2);
  const std::string err = read(dir_ / "err.txt");
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find("compress: error: an input file could not be read through its mapping"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
}

TEST_F(Cli, LabelsOfAnotherLengthAreAUsageErrorBeforeAnyPass) {
  compress::eval::write_npy(dir_ / "short.npy", compress::eval::Tensor::ints({10}, std::vector<int64_t>(10, 1)));
  Result r = run("mlp.onnx -o out.onnx -p quantize-int8 --verify --input input=" + kMlpX + " --labels short.npy");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "compress: error: --labels short.npy: holds 10 labels, but output 'logits' [batch, 10] has 450 rows for "
            "450 samples\n");
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
  r = run("verify mlp.onnx mlp.onnx --input input=" + kMlpX + " --labels short.npy");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("compress: error: --labels short.npy: holds 10 labels", 0), 0u) << r.err;
  r = run("verify mlp.onnx mlp.onnx --input input=" + kMlpX + " --labels missing.npy");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --labels missing.npy: no such file\n");
}

TEST_F(Cli, WrongShapeNpyNamesTheInputAndBothShapes) {
  fs::copy_file(kModels + "/digits_cnn.onnx", dir_ / "cnn.onnx");
  const std::string want = "compress: error: --input input=" + kMlpX +
                           ": input 'input' is float32 [batch, 1, 8, 8], but " + kMlpX +
                           " holds float32 [450, 64]\n";
  Result r = run("cnn.onnx -o out.onnx -p quantize-int8 --verify --input input=" + kMlpX);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, want);
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
  r = run("verify cnn.onnx cnn.onnx --input input=" + kMlpX);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, want);
  // A fixed dim that differs, same rank.
  compress::eval::write_npy(dir_ / "x.npy", compress::eval::Tensor::floats({2, 1, 8, 7}, std::vector<float>(112)));
  r = run("verify cnn.onnx cnn.onnx --input input=x.npy");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "compress: error: --input input=x.npy: input 'input' is float32 [batch, 1, 8, 8], but x.npy holds "
            "float32 [2, 1, 8, 7]\n");
  // The same through --inputs DIR.
  fs::create_directory(dir_ / "data");
  fs::copy_file(kMlpX, dir_ / "data" / "input.npy");
  r = run("verify cnn.onnx cnn.onnx --inputs data");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "compress: error: --inputs data: input 'input' is float32 [batch, 1, 8, 8], but data/input.npy holds "
            "float32 [450, 64]\n");
}

TEST_F(Cli, IntegerInputWithoutAFileIsAUsageError) {
  write_int64_input_model(dir_ / "ids.onnx");
  const std::string want =
      "compress: error: input 'ids' is int64, which random data cannot fill: give it a file (--input ids=FILE.npy or "
      "--inputs DIR with ids.npy)\n";
  Result r = run("ids.onnx -o out.onnx -p cleanup --verify");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, want);
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
  r = run("verify ids.onnx ids.onnx");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, want);
  // Float data for it is a mismatch too; integer data runs.
  compress::eval::write_npy(dir_ / "f.npy", compress::eval::Tensor::floats({3}, {1, 2, 3}));
  r = run("verify ids.onnx ids.onnx --input ids=f.npy");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --input ids=f.npy: input 'ids' is int64 [N], but f.npy holds float32 [3]\n");
  compress::eval::write_npy(dir_ / "i.npy", compress::eval::Tensor::ints({3}, {1, 2, 3}));
  r = run("verify ids.onnx ids.onnx --input ids=i.npy");
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(Cli, InputFilesThatDoNotExistOrNameNoInputAreUsageErrors) {
  Result r = run("verify mlp.onnx mlp.onnx --input nope=" + kMlpX);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --input nope=" + kMlpX + ": the model has no input 'nope' (inputs: input)\n");
  r = run("mlp.onnx -o out.onnx --verify --input input=missing.npy");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --input input=missing.npy: no file missing.npy for input 'input'\n");
  r = run("mlp.onnx -o out.onnx --verify --inputs nodir");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --inputs nodir: no such directory\n");
  r = run("mlp.onnx -o out.onnx --verify --random --max-accuracy-drop 1");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "compress: error: --max-accuracy-drop needs --labels\n");
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
}

TEST_F(Cli, UnreadableNpyIsBadInput) {
  std::ofstream(dir_ / "bad.npy") << "not numpy";
  const Result r = run("mlp.onnx -o out.onnx -p cleanup --verify --input input=bad.npy");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("bad.npy"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out.onnx"));
}

}  // namespace
