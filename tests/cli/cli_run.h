// The fixture of the CLI tests: a fresh directory holding a copy of digits_mlp.onnx (mlp.onnx),
// the built binary run there, the input checked unchanged afterwards.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace compress_cli {

namespace fs = std::filesystem;

struct Result {
  int code;
  std::string out;
  std::string err;
};

/// The whole content of a file ("" when missing).
inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

/// Runs the built binary with `args` in directory `cwd`, stderr captured through `err_file`.
inline Result run_binary(const fs::path& cwd, const fs::path& err_file, const std::string& args) {
  const std::string cmd = "cd '" + cwd.string() + "' && '" + std::string(COMPRESS_BINARY) + "' " + args + " 2>'" +
                          err_file.string() + "'";
  Result r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(err_file);
  return r;
}

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

  static std::string read(const fs::path& p) { return read_file(p); }

  Result run(const std::string& args) { return run_binary(dir_, dir_ / "stderr.txt", args); }

  fs::path dir_;
  std::string input_bytes_;
};

}  // namespace compress_cli
