// Model: an onnx::ModelProto plus what loading, checking and saving it needs. Whatever we do not
// understand (functions, metadata, custom domains, value_info) passes through untouched.
#pragma once

#include <compress/graph.h>
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace compress {

struct SaveOptions {
  enum class ExternalData { kAuto, kAlways, kNever };
  /// kAuto writes external data only when the model would pass protobuf's 2 GiB limit.
  ExternalData external_data = ExternalData::kAuto;
  /// With external data, tensors smaller than this stay inside the model file.
  int64_t external_min_bytes = 1024;
  /// Replace an existing output file (and an existing external data file beside it).
  bool overwrite = false;
};

/// Files a save wrote: the model and, with external data, its data file.
struct SavedFiles {
  std::filesystem::path model;
  std::filesystem::path data;  // empty when no external data was written
  int64_t total_bytes = 0;
};

/// A save written to temp files beside its targets (see write_target) and not yet in place:
/// commit() renames them over the targets; destroying it uncommitted removes them. Lets a caller
/// measure the written bytes and write its reports before the model appears.
class StagedSave {
 public:
  /// `targets`: where each file of `files` lands (write_target); the temps are named beside them.
  StagedSave(SavedFiles files, SavedFiles targets);
  StagedSave(StagedSave&& other) noexcept;
  StagedSave& operator=(StagedSave&&) = delete;
  StagedSave(const StagedSave&) = delete;
  ~StagedSave();

  /// The files as named after commit() (the paths given, symlinks not resolved).
  const SavedFiles& files() const { return files_; }
  /// The temp files holding the bytes until commit().
  const SavedFiles& temps() const { return temps_; }
  /// Renames the temp files into place (data first, then the model). Throws Error(kWriteFailed);
  /// a failed commit leaves no temp file and no new model.
  SavedFiles commit();

 private:
  friend class Model;  // sets files_.total_bytes once written
  void discard() noexcept;

  SavedFiles files_;
  SavedFiles targets_;
  SavedFiles temps_;
  bool done_ = false;
};

class Model {
 public:
  /// Reads a model file (external data locations must stay inside the model's directory). Weights
  /// are not copied: main-graph initializer payloads over 64 KiB and external data stay in their
  /// files, mapped read-only (checked against their dims and type, read when a pass or the writer
  /// needs them; see core/mapped_payloads.h). Throws Error(kBadInput) with a one-line reason for
  /// anything invalid.
  static Model load(const std::filesystem::path& path);
  /// Wraps a proto already in memory (tests, builders). Tensors must not reference external data
  /// other than payloads a loaded model left in its files.
  static Model from_proto(onnx::ModelProto proto);
  /// Parses ONNX's textual syntax (onnx/defs/parser.h); throws Error(kBadInput) on syntax errors.
  static Model parse_text(std::string_view text);

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  onnx::ModelProto& proto() { return *proto_; }
  const onnx::ModelProto& proto() const { return *proto_; }

  /// The main graph.
  Graph& graph();
  /// The main graph then every subgraph, outer before inner.
  std::vector<Graph*> all_graphs();
  /// Drops every cached index after editing proto() directly.
  void invalidate();

  /// Imported opset version of `domain` ("" is the default ONNX domain), 0 when not imported.
  int64_t opset(const std::string& domain = "") const;
  /// Makes sure `domain` is imported at >= `version`. The default domain is raised with ONNX's
  /// version converter; other domains are added when missing. Throws Error(kUnsupported) if the
  /// converter cannot do it.
  void require_opset(const std::string& domain, int64_t version);

  /// Concrete dims for symbolic input dims (from --input-shape), used wherever static shapes are
  /// needed (e.g. by the opset converter in require_opset). Dims not given are taken as 1 there.
  void set_input_shapes(std::map<std::string, std::vector<int64_t>> shapes) { input_shapes_ = std::move(shapes); }
  const std::map<std::string, std::vector<int64_t>>& input_shapes() const { return input_shapes_; }

  /// A value or initializer name not used anywhere in the model, derived from `base`.
  std::string unique_name(const std::string& base);

  /// Runs onnx::checker::check_model (full) on the model; throws Error(kBadInput) with the message.
  /// Nodes of non-ONNX domains that the checker has no schema for are accepted.
  void check() const;

  /// A copy without tensor payloads above `max_bytes` (dims and types kept): cheap input for
  /// checkers and shape inference on models of any size. Small tensors (shapes) stay.
  onnx::ModelProto copy_without_large_data(int64_t max_bytes = 4096) const;

  /// Deterministic serialization (same model -> same bytes), weights left in the input file
  /// included. Throws Error(kWriteFailed) above 2 GiB.
  std::string serialize() const;
  /// The size serialize() would give, without copying the weights left in the input file (exact
  /// for those of the main graph's initializers; within 10 bytes each for any in a subgraph).
  int64_t serialized_bytes() const;
  /// Writes atomically: temp files beside `path`, then renamed; the model is unchanged afterwards.
  /// Throws Error(kWriteFailed); leaves no file behind on failure.
  /// A symlink at `path` (or at its data file) is written through: its target is replaced, the
  /// link stays. An existing target that is not a regular file is refused; temp files that a killed
  /// run left for the same targets are removed first (remove_stale_temps).
  SavedFiles save(const std::filesystem::path& path, const SaveOptions& options);
  /// save() in two steps: everything written and checked, nothing renamed into place yet.
  StagedSave stage_save(const std::filesystem::path& path, const SaveOptions& options);

  /// File the model came from (empty for in-memory models) and its size including external data.
  const std::filesystem::path& source_path() const { return source_path_; }
  int64_t source_bytes() const { return source_bytes_; }
  /// The model file and every external data file it read.
  const std::vector<std::filesystem::path>& source_files() const { return source_files_; }

 private:
  Model();
  void collect_names();

  std::unique_ptr<onnx::ModelProto> proto_;
  std::unique_ptr<Graph> graph_;
  std::unordered_set<std::string> names_;
  // Per base name, the suffix to try next: names_ only grows between invalidations, so every lower
  // suffix is still taken. Keeps unique_name O(1) when thousands of names share a base.
  std::unordered_map<std::string, int64_t> next_suffix_;
  bool names_collected_ = false;
  std::filesystem::path source_path_;
  int64_t source_bytes_ = 0;
  std::vector<std::filesystem::path> source_files_;
  std::map<std::string, std::vector<int64_t>> input_shapes_;
  // Shared ownership of the files whose mapped bytes the tensors still refer to (Model::load).
  std::vector<std::shared_ptr<const void>> mappings_;
};

}  // namespace compress
