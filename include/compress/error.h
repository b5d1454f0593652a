// The one exception type of the library and the process exit codes it maps to.
#pragma once

#include <stdexcept>
#include <string>

namespace compress {

/// Exit status of the `compress` executable; documented in README and `--help`.
enum class ExitCode : int {
  kOk = 0,
  kUsage = 1,        // wrong flag, unknown pass or option, value out of range
  kBadInput = 2,     // input unreadable, corrupt or not a valid ONNX model
  kUnsupported = 3,  // a requested pass cannot handle the model at all
  kGateFailed = 4,   // an accuracy or size gate was missed
  kWriteFailed = 5,  // the output could not be written
  kInternal = 70,    // a bug: an invariant of ours broke
};

/// `text` with line breaks folded into spaces and trailing spaces dropped: errors and report notes
/// are one line each, while ONNX's own messages often span several.
inline std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

/// Thrown by the library; never exits. `main` prints what() on one line and returns code().
class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

}  // namespace compress
