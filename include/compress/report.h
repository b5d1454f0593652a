// Model statistics (size, params, MACs/FLOPs, energy estimate) and their text/JSON/Markdown forms.
#pragma once

#include <compress/model.h>
#include <compress/pipeline.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace compress {

/// Concrete dims for model inputs, from --input-shape NAME=1x3x224x224.
using ShapeOverrides = std::map<std::string, std::vector<int64_t>>;

/// A symbolic or unknown model input dim that had to be given a value for the counts.
struct DimAssumption {
  std::string input;
  int dim = 0;
  std::string dim_param;  // the symbolic name, empty when the dim had none
  int64_t value = 1;
};

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

/// Bytes a model costs on disk and after zlib at level 6 (gzip's default: what a release artifact
/// costs).
struct FileSize {
  int64_t bytes = 0;
  int64_t zlib_bytes = 0;
  int zlib_level = 6;
  /// For a file (or serialization) over kZlibSampleAbove bytes zlib_bytes is an estimate:
  /// kZlibSamplePieces 64 KiB pieces spread evenly are compressed alone and the sum scaled, so the
  /// column costs the same on any model size (measured within 0.5% of the full count: BENCHMARKS.md).
  bool zlib_estimated = false;
};
constexpr int kZlibDefaultLevel = 6;
constexpr int64_t kZlibSampleAbove = int64_t{16} << 20;
constexpr int64_t kZlibSamplePieces = 16;

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
  /// Input dims the counts assumed (symbolic dims not given by --input-shape), and the input
  /// shapes used, overrides and assumptions applied.
  std::vector<DimAssumption> assumed_dims;
  ShapeOverrides input_shapes;
  /// Nodes whose shapes static analysis could not determine: their MACs/FLOPs are not counted.
  int64_t unknown_shape_nodes = 0;
  std::vector<std::string> unknown_shape_examples;  // the first few names
  double predicted_latency_ms = -1;  // on the report's target profile (compress/target.h); -1 when not predicted
  /// Weight elements the target rebuilds in float every run (a weight DequantizeLinear it does not
  /// fuse): filled by predict_latency, read by the energy estimate.
  int64_t dequantized_weight_elements = 0;
};

/// The report's first lines about what the counts rest on: assumed dims with the --input-shape
/// flag that would fix them, and nodes left uncounted. Empty when the counts are exact.
std::vector<std::string> assumption_headline(const ModelStats& stats);
/// The same as JSON: [{"input", "dim", "dim_param", "value", "flag"}].
nlohmann::json assumptions_to_json(const ModelStats& stats);

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
  std::string output;  // empty when nothing was written
  std::string not_written;  // why output is empty: "dry run", "gate missed", ...
  std::string pipeline;
  ModelStats before;
  ModelStats after;
  std::vector<PassRun> passes;
  /// null unless a verification ran; its "gates" (gates_to_json, compress/verify.h) are rendered
  /// as verdicts by every report.
  nlohmann::json verify;
  nlohmann::json auto_search;  // null unless `compress auto` chose the pipeline (its "auto" section)
  std::string target;     // the target profile latencies were predicted for; empty when none
};

/// One layer of the model before, paired with what it became: every node of the model after that
/// the passes' origins trace back to it, summed. Layers with no counterpart keep an empty side.
struct LayerChange {
  std::string name;     // the layer before (after, for a layer no origin leads back from)
  std::string op_type;  // op type before (after, likewise)
  std::optional<LayerStats> before;
  std::optional<LayerStats> after;  // the sum; op_type and compute_dtype of its largest node
  std::vector<std::string> after_nodes;  // the nodes after, in model order
  std::string removed_by;                // pass that removed the layer without a successor
};
/// Pairs r.before.layers with r.after.layers through the origins of r.passes, in the order of the
/// layers before, then any layer after with no origin.
std::vector<LayerChange> match_layers(const Report& report);

nlohmann::json stats_to_json(const ModelStats& stats);
nlohmann::json report_to_json(const Report& report);
std::string render_report_text(const Report& report);
std::string render_report_markdown(const Report& report);
/// `compress inspect`: one model's stats.
nlohmann::json inspect_to_json(const ModelStats& stats);
/// The model's graph inputs (initializers excluded) and outputs with dtype and shape (a symbolic
/// dim by its name, an unknown one as null): {"inputs": [{"name", "dtype", "shape"}], "outputs": [...]}.
nlohmann::json model_io_to_json(const Model& model);
/// Layers sorted by MACs, then weight bytes (largest first), with their share of the model's total;
/// `io` (model_io_to_json) adds the inputs and outputs.
std::string render_inspect_text(const ModelStats& stats, const nlohmann::json& io = nullptr);
/// One row per layer, sorted as render_inspect_text: name,op_type,params,weight_bytes,weight_share,
/// macs,mac_share,flops,compute_dtype (shares as fractions of the model's total).
std::string render_inspect_csv(const ModelStats& stats);

/// One self-contained HTML page (inline CSS, SVG charts and a small script sorting the table; nothing
/// from the network) from a report as report_to_json gives it: headline table, warnings and
/// assumptions, per-layer bar charts before vs after, the sortable layer table, passes, gates.
/// Optional keys are drawn when present (per-layer "predicted_latency_ms", gates, verify).
std::string render_report_html(const nlohmann::json& report);
/// The same page for one model (`compress inspect`), from inspect_to_json plus model_io_to_json.
std::string render_inspect_html(const nlohmann::json& inspect);

}  // namespace compress
