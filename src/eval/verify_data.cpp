// check_verify_data: the data mistakes a --verify run or `compress verify` would otherwise find only
// after the passes ran, deep inside the evaluator (wrong-shape .npy, missing integer input, labels
// of another length), found before anything runs and named by flag, input and both shapes.
#include <compress/error.h>
#include <compress/npy.h>
#include <compress/output_file.h>
#include <compress/tensor.h>
#include <compress/verify.h>

#include <set>

namespace compress {

namespace {

namespace fs = std::filesystem;

// --save-outputs DIR is created when the outputs are written, after all the work: it must be a
// directory, or not exist yet below a directory where it can be created, and be writable.
void check_save_outputs(const fs::path& dir) {
  if (dir.empty()) return;
  const std::string flag = "--save-outputs " + dir.string();
  std::error_code ec;
  fs::path existing = dir;
  while (!existing.empty() && !fs::exists(existing, ec)) existing = existing.parent_path();
  if (existing.empty()) existing = ".";
  if (!fs::is_directory(existing, ec))
    throw Error(ExitCode::kUsage, flag + ": " + (existing == dir ? std::string("exists and is not a directory")
                                                                 : "'" + existing.string() + "' is not a directory"));
  // The probe creates and removes a temp file: the one test that also holds for root on a read-only
  // file system.
  if (const std::string why = output_file_problem(existing / "ref_probe.npy"); !why.empty())
    throw Error(ExitCode::kUsage, flag + ": " + why);
}

std::string shape_text(const std::vector<std::string>& dims) {
  std::string s = "[";
  for (size_t k = 0; k < dims.size(); ++k) s += (k ? ", " : "") + dims[k];
  return s + "]";
}

std::string shape_text(const std::vector<int64_t>& dims) {
  std::vector<std::string> text;
  for (auto d : dims) text.push_back(std::to_string(d));
  return shape_text(text);
}

// A declared input or output: dims (-1 symbolic) and their text (symbolic dims by name).
struct Declared {
  bool has_shape = false;
  std::vector<int64_t> dims;
  std::vector<std::string> text;
  int32_t dtype = 0;
};

Declared declared_of(const onnx::ValueInfoProto& v) {
  Declared d;
  d.dtype = v.type().tensor_type().elem_type();
  d.has_shape = v.type().tensor_type().has_shape();
  for (const auto& dim : v.type().tensor_type().shape().dim()) {
    d.dims.push_back(dim.has_dim_value() ? dim.dim_value() : -1);
    d.text.push_back(dim.has_dim_value() ? std::to_string(dim.dim_value())
                                         : dim.dim_param().empty() ? "?" : dim.dim_param());
  }
  return d;
}

// Whether a feed of `dims` runs as the declared input: the same rank, every fixed dim equal except
// a leading 1 (then verify runs sample by sample).
bool fits(const Declared& declared, const std::vector<int64_t>& dims) {
  if (!declared.has_shape) return true;
  if (declared.dims.size() != dims.size()) return false;
  for (size_t k = 0; k < dims.size(); ++k) {
    const int64_t want = declared.dims[k];
    if (want < 0 || (k == 0 && want == 1)) continue;
    if (want != dims[k]) return false;
  }
  return true;
}

}  // namespace

void check_verify_data(const Model& model, const VerifyOptions& options) {
  const auto& g = model.proto().graph();
  std::set<std::string> initializers;
  for (const auto& t : g.initializer()) initializers.insert(t.name());
  std::vector<const onnx::ValueInfoProto*> inputs;
  std::string input_list;
  for (const auto& v : g.input()) {
    if (initializers.count(v.name())) continue;
    inputs.push_back(&v);
    input_list += (input_list.empty() ? "" : ", ") + v.name();
  }
  for (const auto& [name, file] : options.input_files) {
    bool known = false;
    for (const auto* v : inputs) known = known || v->name() == name;
    if (!known)
      throw Error(ExitCode::kUsage, "--input " + name + "=" + file.string() + ": the model has no input '" + name +
                                        "' (inputs: " + input_list + ")");
  }
  std::error_code ec;
  if (!options.inputs_dir.empty() && !std::filesystem::is_directory(options.inputs_dir, ec))
    throw Error(ExitCode::kUsage, "--inputs " + options.inputs_dir.string() + ": no such directory");
  check_save_outputs(options.save_outputs);

  int64_t samples = -1;  // leading axis of the first input that has one
  for (const auto* v : inputs) {
    const std::string& name = v->name();
    const Declared declared = declared_of(*v);
    std::filesystem::path file;
    std::string flag;
    if (auto it = options.input_files.find(name); it != options.input_files.end()) {
      file = it->second;
      flag = "--input " + name + "=" + file.string();
    } else if (!options.inputs_dir.empty()) {
      file = options.inputs_dir / (name + ".npy");
      flag = "--inputs " + options.inputs_dir.string();
    }
    if (file.empty()) {
      if (!is_float_dtype(declared.dtype))
        throw Error(ExitCode::kUsage, "input '" + name + "' is " + dtype_name(declared.dtype) +
                                          ", which random data cannot fill: give it a file (--input " + name +
                                          "=FILE.npy or --inputs DIR with " + name + ".npy)");
      std::vector<int64_t> dims = declared.dims;
      if (auto it = options.shapes.find(name); it != options.shapes.end()) dims = it->second;
      if (samples < 0 && !dims.empty()) samples = dims[0] < 0 ? 1 : dims[0];
      continue;
    }
    if (!std::filesystem::is_regular_file(file, ec))
      throw Error(ExitCode::kUsage, flag + ": no file " + file.string() + " for input '" + name + "'");
    const eval::Tensor t = eval::read_npy(file);
    const bool dtype_fits = is_float_dtype(declared.dtype) || !t.is_float();
    if (!dtype_fits || !fits(declared, t.dims))
      throw Error(ExitCode::kUsage, flag + ": input '" + name + "' is " + dtype_name(declared.dtype) + " " +
                                        (declared.has_shape ? shape_text(declared.text) : "of any shape") + ", but " +
                                        file.string() + " holds " + dtype_name(t.dtype) + " " + shape_text(t.dims));
    if (samples < 0 && !t.dims.empty()) samples = t.dims[0];
  }

  if (options.labels.empty()) return;
  if (!std::filesystem::is_regular_file(options.labels, ec))
    throw Error(ExitCode::kUsage, "--labels " + options.labels.string() + ": no such file");
  const eval::Tensor labels = eval::read_npy(options.labels);
  if (g.output_size() == 0 || samples < 0) return;
  // Rows of the first output (accuracy compares one label per row): known when its shape is
  // [samples, fixed..., classes] with a symbolic, per-sample or matching leading dim.
  const Declared out = declared_of(g.output(0));
  if (!out.has_shape || out.dims.size() < 2) return;
  if (out.dims[0] >= 0 && out.dims[0] != 1 && out.dims[0] != samples) return;
  int64_t rows = samples;
  for (size_t k = 1; k + 1 < out.dims.size(); ++k) {
    if (out.dims[k] < 0) return;
    rows *= out.dims[k];
  }
  if (labels.numel() != rows)
    throw Error(ExitCode::kUsage, "--labels " + options.labels.string() + ": holds " + std::to_string(labels.numel()) +
                                      " labels, but output '" + g.output(0).name() + "' " + shape_text(out.text) +
                                      " has " + std::to_string(rows) + " rows for " + std::to_string(samples) +
                                      " samples");
}

}  // namespace compress
