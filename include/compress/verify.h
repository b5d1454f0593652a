// `compress verify` and the inline gates: run a reference and a candidate model on the same inputs
// with the built-in evaluator and measure how far the candidate's outputs are from the reference's.
#pragma once

#include <compress/evaluator.h>
#include <compress/model.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace compress {

struct VerifyOptions {
  /// One <input-name>.npy per model input (leading axis = samples).
  std::filesystem::path inputs_dir;
  /// NAME -> FILE.npy, taking precedence over inputs_dir.
  std::map<std::string, std::filesystem::path> input_files;
  /// Inputs without a file get seeded N(0, 1) data (floats) with the model's shape, symbolic dims
  /// from `shapes` or 1. Integer inputs need a file.
  uint64_t seed = 0;
  std::map<std::string, std::vector<int64_t>> shapes;
  /// Integer labels, one per row of the first output.
  std::filesystem::path labels;
  /// When set, writes ref_<output>.npy and cand_<output>.npy there.
  std::filesystem::path save_outputs;
};

struct OutputMetrics {
  double cosine = 0;
  double snr_db = 0;  // +inf when identical
  double max_abs_err = 0;
  std::optional<double> top1_agreement;  // empty when the last axis has size 1
};

struct AccuracyMetrics {
  double reference = 0;
  double candidate = 0;
  double drop_points = 0;  // (reference - candidate) * 100
};

struct VerifyResult {
  std::map<std::string, OutputMetrics> outputs;
  std::optional<AccuracyMetrics> accuracy;
  int64_t samples = 0;
  /// The shapes of the inputs both models ran on (leading axis = samples for .npy inputs), and
  /// symbolic dims of random inputs that had to be assumed ("input 'x' dim 3 assumed 1").
  std::map<std::string, std::vector<int64_t>> input_shapes;
  std::vector<std::string> assumed_dims;
};

struct Gates {
  std::optional<double> min_cosine;
  std::optional<double> min_snr_db;
  std::optional<double> max_accuracy_drop;
};

/// Metrics of one output pair over the whole flattened tensors (same element count required).
OutputMetrics compare_outputs(const eval::Tensor& reference, const eval::Tensor& candidate);
/// Fraction of rows (argmax along the last axis) equal to `labels`.
double accuracy(const eval::Tensor& scores, const eval::Tensor& labels);

/// The inputs `options` name (files, or seeded random data) for the model `evaluator` runs.
eval::TensorMap load_inputs(const eval::Evaluator& evaluator, const VerifyOptions& options);
/// Runs the model on every sample of `inputs` (leading axis = samples; sample by sample when the
/// model's batch dim is fixed to 1) and returns the outputs stacked; `samples` receives the count.
eval::TensorMap run_on_samples(const eval::Evaluator& evaluator, const eval::TensorMap& inputs, int64_t& samples);
/// The feeds run_on_samples runs, cast to the model's input types: all samples at once unless an
/// input's leading dim is fixed to 1 while `inputs` holds more, then one feed per sample.
std::vector<eval::TensorMap> sample_feeds(const eval::Evaluator& evaluator, const eval::TensorMap& inputs, int64_t& samples);
/// The outputs of those feeds' runs, stacked along axis 0 as run_on_samples returns them.
eval::TensorMap stack_outputs(std::vector<eval::TensorMap> runs);
/// Runs both models on the same inputs and measures every output the two have in common.
/// Throws Error(kBadInput) for missing or mismatched inputs, Error(kUnsupported) for ops the
/// evaluator lacks.
VerifyResult verify_models(const Model& reference, const Model& candidate, const VerifyOptions& options);

/// {"outputs": {name: {cosine, snr_db, max_abs_err, top1_agreement}}, "accuracy": {...}} (accuracy
/// only with labels); infinities and NaN as the strings "Infinity" / "NaN", as ort_compare.js does.
nlohmann::json verify_to_json(const VerifyResult& result);

/// One gate checked against one output (or against the accuracy, `output` empty).
struct GateVerdict {
  std::string gate;  // the flag without dashes: "min-cosine", "min-snr", "max-accuracy-drop"
  std::string output;
  double value = 0;
  double threshold = 0;
  bool passed = false;
  std::string message;  // one line, for a missed gate
};

/// Every gate against every output; Error(kUsage) for --max-accuracy-drop without labels.
std::vector<GateVerdict> evaluate_gates(const VerifyResult& result, const Gates& gates);
/// [{"gate", "output", "value", "threshold", "passed"}], infinities as in verify_to_json.
nlohmann::json gates_to_json(const std::vector<GateVerdict>& verdicts);

/// Throws Error(kGateFailed) with a one-line reason for the first gate missed; Error(kUsage) for
/// --max-accuracy-drop without labels.
void check_gates(const VerifyResult& result, const Gates& gates);

/// Checks the data of `options` against `model`'s inputs before anything runs: --input names are
/// model inputs, every input has a file or is a float input random data can fill, each .npy fits
/// its input (rank, fixed dims, no float data for an integer input), the labels count matches the
/// rows of the first output where its declared shape tells them, --save-outputs names a directory
/// that exists or can be created, and is writable. Throws Error(kUsage) naming the
/// flag, the input and both shapes; Error(kBadInput) for a .npy that cannot be read.
void check_verify_data(const Model& model, const VerifyOptions& options);

}  // namespace compress
