// Model statistics (size, params, MACs/FLOPs, energy estimate) and their text/JSON/Markdown forms.
#pragma once

#include <compress/model.h>
#include <compress/pipeline.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace compress {

/// Concrete dims for model inputs, from --input-shape NAME=1x3x224x224.
using ShapeOverrides = std::map<std::string, std::vector<int64_t>>;

/// One compute node (subgraph nodes included, named "outer/inner" by their path).
struct LayerStats {
  std::string name;
  std::string op_type;
  int64_t params = 0;        // elements of the constant tensors the node reads
  int64_t weight_bytes = 0;  // their stored bytes, by actual dtype (int4 counts half a byte)
  int64_t macs = 0;
  int64_t flops = 0;
  std::string compute_dtype;  // "float32", "float16", "int8", ... (drives the energy estimate)
  double predicted_latency_ms = -1;  // on the report's target profile; -1 when not predicted
};

/// Bytes a model costs on disk and after zlib (what a release artifact costs): level 6 (gzip's
/// default) up to kZlibFastAbove bytes, level 1 above, where level 6 would dominate the run time.
struct FileSize {
  int64_t bytes = 0;
  int64_t zlib_bytes = 0;
  int zlib_level = 6;
};
constexpr int64_t kZlibFastAbove = int64_t{256} << 20;

struct ModelStats {
  FileSize file;
  int64_t params = 0;
  int64_t weight_bytes = 0;
  int64_t macs = 0;
  int64_t flops = 0;
  std::map<std::string, int64_t> weight_bytes_by_dtype;
  std::map<std::string, int64_t> macs_by_dtype;
  std::map<std::string, int64_t> op_counts;
  std::vector<LayerStats> layers;
  /// Warnings about assumptions made, e.g. "input 'x' dim 0 'batch' assumed 1".
  std::vector<std::string> assumptions;
  double predicted_latency_ms = -1;  // on the report's target profile (compress/target.h); -1 when not predicted
  /// Weight elements the target rebuilds in float every run (a weight DequantizeLinear it does not
  /// fuse): filled by predict_latency, read by the energy estimate.
  int64_t dequantized_weight_elements = 0;
};

/// Counts params, weight bytes, MACs and FLOPs of every node after ONNX shape inference (symbolic dims
/// from `shapes`, else 1, each assumption recorded). Does not fill `file`.
ModelStats compute_stats(const Model& model, const ShapeOverrides& shapes);
/// Size of serialized model bytes (plus external data bytes, which are not compressed here).
/// zlib_level 0 picks by size (see FileSize); pass the "before" level to compare like with like.
FileSize measure_bytes(const std::string& serialized, int64_t external_bytes = 0, int zlib_level = 0);
/// Size of files on disk: the model and, if any, its external data file.
FileSize measure_files(const std::vector<std::filesystem::path>& files, int zlib_level = 0);

/// Energy per inference, an estimate from 45 nm per-operation energies (Horowitz, ISSCC 2014).
struct EnergyEstimate {
  double compute_uj = 0;  // MACs by compute dtype
  double dram_uj = 0;     // weight bytes read once from DRAM
  double dequantize_uj = 0;  // float weights the target rebuilds every run: written and read once more
  double total_uj() const { return compute_uj + dram_uj + dequantize_uj; }
};
EnergyEstimate estimate_energy(const ModelStats& stats);

/// Everything one `compress` run reports.
struct Report {
  std::string input;
  std::string output;  // empty for --dry-run
  std::string pipeline;
  ModelStats before;
  ModelStats after;
  std::vector<PassRun> passes;
  nlohmann::json verify;  // null unless a verification ran
  std::string target;     // the target profile latencies were predicted for; empty when none
};

nlohmann::json stats_to_json(const ModelStats& stats);
nlohmann::json report_to_json(const Report& report);
std::string render_report_text(const Report& report);
std::string render_report_markdown(const Report& report);
/// `compress inspect`: one model's stats.
nlohmann::json inspect_to_json(const ModelStats& stats);
std::string render_inspect_text(const ModelStats& stats);

}  // namespace compress
