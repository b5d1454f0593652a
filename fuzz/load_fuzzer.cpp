// libFuzzer target: bytes -> Model::load -> ONNX checker -> stats (report) -> cleanup pass -> serialize,
// the path every `compress` run takes on an untrusted model (Model::load walks every field header
// of the file before the parse, leaving large payloads in the mapped file).
// compress::Error is the expected outcome for bad input; anything else escaping (another exception,
// a sanitizer report, a signal) is a bug.
// Built by scripts/sanitize.sh with clang, ASan and UBSan; seeded by tests/robustness/make_corpus.py.
#include <compress/error.h>
#include <compress/model.h>
#include <compress/pipeline.h>
#include <compress/report.h>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

// Model::load reads a path (external data resolves beside it), so each input goes through one file.
const std::filesystem::path& input_path() {
  static const std::filesystem::path path = [] {
    const char* dir = std::getenv("TMPDIR");
    return std::filesystem::path(dir ? dir : "/tmp") / ("compress-fuzz-" + std::to_string(::getpid()) + ".onnx");
  }();
  return path;
}

// The input file exists only while one input runs: removed on every way out of it, so neither the
// run nor a fuzzer that stops between inputs leaves it in TMPDIR.
struct InputFile {
  InputFile(const uint8_t* data, size_t size) {
    std::ofstream out(input_path(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  ~InputFile() {
    std::error_code ec;
    std::filesystem::remove(input_path(), ec);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const InputFile file(data, size);
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);  // one log line per pass would dominate each run
    return true;
  }();
  (void)quiet;
  static const compress::Pipeline pipeline = compress::Pipeline::build(
      compress::PassRegistry::builtin(), compress::parse_pipeline_text("cleanup"));
  try {
    compress::Model model = compress::Model::load(input_path());
    try {
      model.check();
    } catch (const compress::Error&) {
      // main goes on without the checker's blessing too: the rest must still hold up.
    }
    compress::compute_stats(model, {});
    pipeline.run(model, {});
    model.serialize();
  } catch (const compress::Error&) {
  }
  return 0;
}
