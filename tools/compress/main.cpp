// The compress executable: argv, stdout, exit codes. The only file that knows a terminal exists.
#include <CLI/CLI.hpp>
#include <compress/auto.h>
#include <compress/error.h>
#include <compress/model.h>
#include <compress/npy.h>
#include <compress/output_file.h>
#include <compress/pipeline.h>
#include <compress/report.h>
#include <compress/target.h>
#include <compress/verify.h>
#include <onnx/defs/schema.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

namespace fs = std::filesystem;
using compress::Error;
using compress::ExitCode;

namespace {

constexpr const char* kExitCodes =
    "Exit codes:\n"
    "  0   success\n"
    "  1   usage error (bad flag, unknown pass or option, value out of range, output exists or is not a\n"
    "      regular file, output directory missing or not writable, data that does not fit the model)\n"
    "  2   input unreadable or not a valid ONNX model (or a .npy that cannot be read)\n"
    "  3   a requested pass cannot handle this model at all\n"
    "  4   an accuracy or size gate was missed\n"
    "  5   the output could not be written\n"
    "  70  internal error (a bug; please report it)\n";

// The error line as printed: names read from a model can hold any byte, so control characters (a
// form feed, an escape sequence) are shown as \xNN; they neither split the line nor reach the terminal.
std::string error_line(const std::string& message) {
  std::string out;
  for (const char c : compress::one_line(message)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out += c;
      continue;
    }
    const char* hex = "0123456789abcdef";
    out += {'\\', 'x', hex[u >> 4], hex[u & 15]};
  }
  return out;
}

struct Options {
  std::string input;
  std::string output;
  std::vector<std::string> passes;
  std::string recipe;
  std::vector<std::string> input_shapes;
  std::vector<std::string> excludes;
  std::string report_json;
  std::string report_md;
  std::string report_html;
  bool csv = false;
  bool external_data = false;
  bool dry_run = false;
  bool force = false;
  bool quiet = false;
  bool verbose = false;
  bool json = false;
  // verify and the inline gates
  std::string candidate;
  bool verify = false;
  bool random = false;
  uint64_t seed = 0;
  std::string inputs_dir;
  std::vector<std::string> input_files;
  std::string labels;
  std::string save_outputs;
  std::optional<double> min_cosine;
  std::optional<double> min_snr;
  std::optional<double> max_accuracy_drop;
  // auto
  std::string objective = "size";
  std::vector<std::string> allow;
  std::string recipe_out;
  int64_t sensitivity_samples = 8;
  // size and latency gates
  std::optional<double> max_size_ratio;
  std::optional<double> max_latency_ratio;
  std::string target = "ort-cpu";
};

compress::ShapeOverrides parse_shapes(const std::vector<std::string>& specs) {
  compress::ShapeOverrides shapes;
  for (const auto& spec : specs) {
    const auto eq = spec.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      throw Error(ExitCode::kUsage, "--input-shape '" + spec + "' must look like NAME=1x3x224x224");
    std::vector<int64_t> dims;
    std::stringstream dims_text(spec.substr(eq + 1));
    std::string dim;
    while (std::getline(dims_text, dim, 'x')) {
      size_t used = 0;
      long long v = -1;
      try {
        v = std::stoll(dim, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != dim.size() || v <= 0)
        throw Error(ExitCode::kUsage, "--input-shape '" + spec + "': '" + dim + "' is not a positive dimension");
      dims.push_back(v);
    }
    shapes[spec.substr(0, eq)] = dims;
  }
  return shapes;
}

compress::VerifyOptions verify_options(const Options& o) {
  if (o.random && (!o.inputs_dir.empty() || !o.input_files.empty()))
    throw Error(ExitCode::kUsage, "--random cannot be combined with --inputs or --input");
  if (o.max_accuracy_drop && o.labels.empty()) throw Error(ExitCode::kUsage, "--max-accuracy-drop needs --labels");
  compress::VerifyOptions v;
  v.inputs_dir = o.inputs_dir;
  for (const auto& spec : o.input_files) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      throw Error(ExitCode::kUsage, "--input '" + spec + "' must look like NAME=FILE.npy");
    v.input_files[spec.substr(0, eq)] = spec.substr(eq + 1);
  }
  v.seed = o.seed;
  v.shapes = parse_shapes(o.input_shapes);
  v.labels = o.labels;
  v.save_outputs = o.save_outputs;
  return v;
}

compress::Gates gates_of(const Options& o) { return {o.min_cosine, o.min_snr, o.max_accuracy_drop}; }

void add_verify_options(CLI::App* app, Options& o) {
  app->add_option("--inputs", o.inputs_dir, "directory with one <input-name>.npy per model input (leading axis = samples)");
  app->add_option("--input", o.input_files, "NAME=FILE.npy for one input (repeatable)")->allow_extra_args(false);
  app->add_flag("--random", o.random, "seeded N(0,1) inputs with the model's shapes (the default without files)");
  app->add_option("--seed", o.seed, "seed for --random (default 0)");
  app->add_option("--labels", o.labels, "integer labels .npy, one per row of the first output");
  app->add_option("--min-cosine", o.min_cosine, "gate: every output's cosine similarity >= X");
  app->add_option("--min-snr", o.min_snr, "gate: every output's SNR >= DB");
  app->add_option("--max-accuracy-drop", o.max_accuracy_drop, "gate: accuracy drop <= POINTS (needs --labels)");
}

std::string render_verify_text(const compress::VerifyResult& r) {
  std::ostringstream s;
  s.precision(6);
  s << "inputs:";
  for (const auto& [name, dims] : r.input_shapes) {
    s << " " << name << "=";
    for (size_t i = 0; i < dims.size(); ++i) s << (i ? "x" : "") << dims[i];
  }
  s << "\n";
  for (const auto& a : r.assumed_dims) s << "ASSUMED " << a << ": give the real shape with --input-shape\n";
  for (const auto& [name, m] : r.outputs) {
    s << name << ": cosine " << m.cosine << "  snr " << m.snr_db << " dB  max_abs_err " << m.max_abs_err;
    if (m.top1_agreement) s << "  top1_agreement " << *m.top1_agreement;
    s << "\n";
  }
  if (r.accuracy)
    s << "accuracy: reference " << r.accuracy->reference << "  candidate " << r.accuracy->candidate << "  drop "
      << r.accuracy->drop_points << " points\n";
  return s.str();
}

int run_verify(const Options& o) {
  const auto options = verify_options(o);
  const compress::Model reference = compress::Model::load(o.input);
  const compress::Model candidate = compress::Model::load(o.candidate);
  compress::check_verify_data(reference, options);
  const auto result = compress::verify_models(reference, candidate, options);
  if (o.json) std::cout << compress::verify_to_json(result).dump(2) << "\n";
  else std::cout << render_verify_text(result);
  compress::check_gates(result, gates_of(o));
  return 0;
}

nlohmann::json read_recipe(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(ExitCode::kUsage, "--recipe " + path + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ExitCode::kUsage, "--recipe " + path + ": invalid JSON: " + e.what());
  }
}

// The --input-shape specs a run uses: the flags, else the recipe's input_shapes (compress auto's
// --recipe-out records the shapes its output was made with; an old-opset model converts with them).
std::vector<std::string> shape_specs(const Options& o) {
  if (!o.input_shapes.empty() || o.recipe.empty()) return o.input_shapes;
  const nlohmann::json recipe = read_recipe(o.recipe);
  std::vector<std::string> specs;
  if (!recipe.is_object() || !recipe.contains("input_shapes") || !recipe["input_shapes"].is_object()) return specs;
  for (const auto& [name, dims] : recipe["input_shapes"].items()) {
    std::string spec = name + "=";
    for (size_t k = 0; k < dims.size(); ++k) spec += (k ? "x" : "") + dims[k].dump();
    specs.push_back(spec);
  }
  return specs;
}

std::vector<compress::PassInvocation> collect_invocations(const Options& o) {
  std::vector<compress::PassInvocation> all;
  if (!o.recipe.empty()) all = compress::parse_recipe_json(read_recipe(o.recipe));
  for (const auto& text : o.passes) {
    auto more = compress::parse_pipeline_text(text);
    all.insert(all.end(), more.begin(), more.end());
  }
  return all;
}

// A report may go to a device or FIFO (/dev/stdout, a pipe): written as a stream, not replaced.
bool is_stream(const std::string& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  return fs::exists(status) && !fs::is_regular_file(status) && !fs::is_directory(status);
}

// Usage errors about where a run will write, found before any work: an output that is not a regular
// file (never replaced, even with --force), a missing or read-only directory.
void check_output_path(const std::string& flag, const std::string& path, bool report) {
  if (path.empty() || path == "-" || (report && is_stream(path))) return;
  const std::string why = compress::output_file_problem(path);
  if (why.empty()) return;
  std::error_code ec;
  const bool exists = fs::exists(fs::status(path, ec));
  throw Error(ExitCode::kUsage, flag + " " + path + ": " + why +
                                    (exists && !report ? "; refusing to replace it (use --dry-run to run without writing)"
                                                       : ""));
}

void write_text_file(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text;
    return;
  }
  if (is_stream(path)) {
    std::ofstream out(path);
    out << text;
    if (!out.flush()) throw Error(ExitCode::kWriteFailed, path + ": cannot write report");
    return;
  }
  compress::write_file_atomically(path, text);
}

// Every requested report, before the model is renamed into place: a report that cannot be written
// leaves no model, and a missed gate still leaves its reports.
void write_reports(const Options& o, const compress::Report& report) {
  if (!o.report_md.empty()) write_text_file(o.report_md, compress::render_report_markdown(report));
  if (!o.report_json.empty()) write_text_file(o.report_json, compress::report_to_json(report).dump(2) + "\n");
  if (!o.report_html.empty()) write_text_file(o.report_html, compress::render_report_html(compress::report_to_json(report)));
  if (o.report_json != "-" && o.report_md != "-" && o.report_html != "-") {
    std::cout << compress::render_report_text(report);
    if (!report.auto_search.is_null()) std::cout << compress::render_auto_text(report.auto_search);
  }
}

// ONNX 1.12 knows opsets up to this version; newer models cannot be checked by it.
int64_t checker_max_opset() {
  const auto& map = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  auto it = map.find("");
  return it == map.end() ? 0 : it->second.second;
}

// Progress lines on stderr for models over 100 MB, TTY or not (a CI log must show life), at most
// one every 2 s so a fast run stays quiet; none with -q. With -v every step's wall time is logged
// (any model size), so a slow run shows where its time went.
class Progress {
 public:
  Progress() = default;
  ~Progress() { log_timing(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void enable(bool on) { enabled_ = on; }

  void step(const std::string& what) {
    log_timing();
    current_ = what;
    const auto now = std::chrono::steady_clock::now();
    started_ = now;
    if (!enabled_) return;
    if (printed_ && now - last_ < std::chrono::seconds(2)) return;
    printed_ = true;
    last_ = now;
    spdlog::info("progress: {}", what);
  }

 private:
  void log_timing() const {
    if (current_.empty()) return;
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started_;
    spdlog::debug("timing: {:.3f} s until the end of '{}'", took.count(), current_);
  }

  bool enabled_ = false;
  bool printed_ = false;
  std::string current_;
  std::chrono::steady_clock::time_point last_, started_;
};
constexpr int64_t kProgressAboveBytes = 100 * 1000 * 1000;

// The process ends right after a command: freeing a big model tensor by tensor (an munmap each) costs
// tens of milliseconds and buys nothing, so the model is parked where the exit reclaims it at once.
// The static pointer keeps it reachable, so leak checkers stay quiet.
void keep_until_exit(compress::Model&& model) {
  static compress::Model* kept = nullptr;
  delete kept;
  kept = new compress::Model(std::move(model));
}

// Runs the checker when this ONNX version can judge the model; returns why not otherwise.
std::string try_check(const compress::Model& model) {
  if (model.opset() > checker_max_opset())
    return "opset " + std::to_string(model.opset()) + " is newer than the ONNX checker here (" +
           std::to_string(checker_max_opset()) + "); model not checked";
  model.check();
  return "";
}

// --max-size-ratio, decided before the write so a missed gate leaves no output file. The output's
// bytes are its serialization, what the write puts on disk (external data: within alignment padding).
// --max-latency-ratio on the target profile's prediction, before the write like the size gate.
// Each returns the one-line reason when its gate is missed, empty otherwise.
std::string latency_gate_miss(const Options& o, const compress::Report& report) {
  if (!o.max_latency_ratio) return "";
  const double ratio = report.after.predicted_latency_ms / std::max(report.before.predicted_latency_ms, 1e-9);
  if (ratio <= *o.max_latency_ratio) return "";
  std::ostringstream text;
  text.precision(4);
  text << "gate missed: predicted latency ratio " << ratio << " on " << o.target << " > --max-latency-ratio "
       << *o.max_latency_ratio;
  return text.str();
}

std::string size_gate_miss(const Options& o, int64_t before_bytes, const compress::Model& model) {
  if (!o.max_size_ratio) return "";
  const double ratio = static_cast<double>(model.serialized_bytes()) / static_cast<double>(std::max<int64_t>(before_bytes, 1));
  if (ratio <= *o.max_size_ratio) return "";
  std::ostringstream text;
  text.precision(4);
  text << "gate missed: file size ratio " << ratio << " > --max-size-ratio " << *o.max_size_ratio;
  return text.str();
}

// One report per destination: two on stdout would interleave, two in one file would overwrite.
void check_report_destinations(const std::vector<std::pair<std::string, std::string>>& reports) {
  std::map<std::string, std::string> seen;
  for (const auto& [flag, path] : reports) {
    if (path.empty()) continue;
    auto [it, fresh] = seen.emplace(path, flag);
    if (!fresh)
      throw Error(ExitCode::kUsage, it->second + " and " + flag + " both write to " +
                                        (path == "-" ? std::string("stdout ('-')") : "'" + path + "'") +
                                        "; give each report its own destination");
  }
}

// `invocations`: the pipeline to run (null: the one -p and --recipe give); `auto_report`: the section
// `compress auto` adds to the report.
int run_compress(const Options& o, const std::vector<compress::PassInvocation>* invocations = nullptr,
                 const nlohmann::json& auto_report = nullptr) {
  check_report_destinations({{"--report-json", o.report_json}, {"--report-md", o.report_md}, {"--report-html", o.report_html}});
  if (o.output.empty() && !o.dry_run) throw Error(ExitCode::kUsage, "-o OUT.onnx is required (or --dry-run)");
  std::error_code ec;
  if (!o.output.empty()) {
    if (fs::exists(o.output, ec) && fs::exists(o.input, ec) && fs::equivalent(o.output, o.input, ec))
      throw Error(ExitCode::kUsage, "output '" + o.output + "' is the input model; refusing to overwrite it");
    if (!o.dry_run) check_output_path("-o", o.output, false);
    if (fs::exists(fs::symlink_status(o.output, ec)) && !o.force && !o.dry_run)
      throw Error(ExitCode::kUsage, "output '" + o.output + "' exists (use --force to overwrite)");
    if (!o.dry_run && o.external_data) {
      check_output_path("-o", o.output + ".data", false);
      if (fs::exists(fs::symlink_status(o.output + ".data", ec)) && !o.force)
        throw Error(ExitCode::kUsage, "output data file '" + o.output + ".data' exists (use --force to overwrite)");
    }
  }
  check_output_path("--report-json", o.report_json, true);
  check_output_path("--report-md", o.report_md, true);
  check_output_path("--report-html", o.report_html, true);
  const auto pipeline = compress::Pipeline::build(compress::PassRegistry::builtin(),
                                                  invocations ? *invocations : collect_invocations(o));
  const auto shapes = parse_shapes(invocations ? o.input_shapes : shape_specs(o));
  const compress::TargetProfile& target = compress::TargetProfile::builtin(o.target);

  const bool gated = o.min_cosine || o.min_snr || o.max_accuracy_drop;
  if (gated && !o.verify) throw Error(ExitCode::kUsage, "--min-cosine, --min-snr and --max-accuracy-drop need --verify");
  const auto verify_opts = o.verify ? verify_options(o) : compress::VerifyOptions{};
  Progress progress;
  progress.step("loading " + o.input);
  compress::Model model = compress::Model::load(o.input);
  progress.enable(!o.quiet && model.source_bytes() > kProgressAboveBytes);
  progress.step("loaded " + o.input + " (" + std::to_string(model.source_bytes()) + " bytes), checking it");
  model.set_input_shapes(shapes);
  std::optional<compress::Model> original;
  if (o.verify) original.emplace(compress::Model::from_proto(model.proto()));
  if (o.verify) compress::check_verify_data(model, verify_opts);

  bool input_valid = true;
  try {
    const std::string skipped = try_check(model);
    if (!skipped.empty()) spdlog::warn("input: {}", skipped);
  } catch (const Error& e) {
    input_valid = false;
    spdlog::warn("input does not pass the ONNX checker ({}); continuing, output will not be checked either", e.what());
  }

  compress::Report report;
  report.input = o.input;
  report.pipeline = pipeline.canonical();
  report.auto_search = auto_report;
  progress.step("input statistics (static shape analysis)");
  report.before = compress::compute_stats(model, shapes);
  report.before.file = compress::measure_files(model.source_files());
  compress::predict_latency(model, report.before, target);
  report.target = target.name;

  progress.step("running " + report.pipeline);
  // Each pass warns, naming layers, when its output is predicted slower on the target than its input.
  compress::ModelStats previous = report.before;
  report.passes = pipeline.run(model, o.excludes, [&](compress::Model& m, compress::PassRun& run) {
    compress::ModelStats now = compress::compute_stats(m, shapes);
    compress::predict_latency(m, now, target);
    if (const std::string w = compress::slower_warning(previous, now, target.name); !w.empty()) run.stats.warnings.push_back(w);
    previous = std::move(now);
  });

  progress.step("checking the output");
  if (input_valid) {
    try {
      const std::string skipped = try_check(model);
      if (!skipped.empty()) spdlog::warn("output: {}", skipped);
    } catch (const Error& e) {
      throw Error(ExitCode::kInternal, "pipeline '" + report.pipeline + "' produced an invalid model: " + e.what());
    }
  }
  progress.step("output statistics");
  report.after = compress::compute_stats(model, shapes);
  compress::predict_latency(model, report.after, target);
  // From here on the pipeline has run: a failure is reported first, then returned.
  std::optional<Error> failure;
  if (original) {
    progress.step("verifying");
    try {
      const auto result = compress::verify_models(*original, model, verify_opts);
      const auto verdicts = compress::evaluate_gates(result, gates_of(o));
      report.verify = compress::verify_to_json(result);
      report.verify["gates"] = compress::gates_to_json(verdicts);
      for (const auto& v : verdicts)
        if (!v.passed && !failure) failure = Error(ExitCode::kGateFailed, v.message);
      if (failure) report.not_written = "gate missed";
    } catch (const Error& e) {
      report.verify = {{"error", compress::one_line(e.what())}};
      report.not_written = "verification failed";
      failure = e;
    }
  }
  // The size and latency gates, decided before the write like the verify gates.
  for (const std::string& miss : {size_gate_miss(o, report.before.file.bytes, model), latency_gate_miss(o, report)}) {
    if (miss.empty() || failure) continue;
    failure = Error(ExitCode::kGateFailed, miss);
    report.not_written = "gate missed";
  }
  std::optional<compress::StagedSave> staged;
  if (o.dry_run || failure) {
    if (o.dry_run) report.not_written = "dry run";
    report.after.file = model.serialized_bytes() > INT32_MAX
                            ? compress::FileSize{model.serialized_bytes(), 0}
                            : compress::measure_bytes(model.serialize(), 0, report.before.file.zlib_level);
  } else {
    compress::SaveOptions save;
    save.overwrite = o.force;
    save.external_data = o.external_data ? compress::SaveOptions::ExternalData::kAlways
                                         : compress::SaveOptions::ExternalData::kAuto;
    progress.step("writing " + o.output);
    staged.emplace(model.stage_save(o.output, save));
    report.output = o.output;
    progress.step("output file size after zlib");
    report.after.file =
        compress::measure_files({staged->temps().model, staged->temps().data}, report.before.file.zlib_level);
  }
  progress.step("writing reports");
  write_reports(o, report);
  if (failure) throw *failure;
  if (staged) staged->commit();
  keep_until_exit(std::move(model));
  return 0;
}

// Writes the search samples int8-static, low-rank and prune read, one <input-name>.npy each, into `dir` (created if
// missing), where the recipe's `calibration=` / `calibrate=` reads them back. Another .npy in `dir` would be read
// with them, so it is refused. Returns the paths written (with the directory last if it was created)
// for removal when the run fails after this.
std::vector<fs::path> write_calibration(const std::string& dir, const compress::eval::TensorMap& samples) {
  std::error_code ec;
  std::vector<fs::path> written;
  const bool created = !fs::exists(fs::symlink_status(dir, ec));
  if (!created && !fs::is_directory(dir, ec))
    throw Error(ExitCode::kUsage, "calibration directory '" + dir + "' exists and is not a directory");
  if (!created)
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().extension() == ".npy" && !samples.count(entry.path().stem().string()))
        throw Error(ExitCode::kUsage, "calibration directory '" + dir + "' holds " + entry.path().filename().string() +
                                          ", which the recipe would read as samples too; remove it");
  if (created && !fs::create_directories(dir, ec))
    throw Error(ExitCode::kWriteFailed, "cannot create calibration directory '" + dir + "': " + ec.message());
  for (const auto& [name, tensor] : samples) {
    const fs::path file = fs::path(dir) / (name + ".npy");
    compress::eval::write_npy(file, tensor);
    written.push_back(file);
  }
  if (created) written.emplace_back(dir);
  return written;
}

int run_auto(const Options& o) {
  if (o.inputs_dir.empty() && o.input_files.empty())
    throw Error(ExitCode::kUsage, "auto needs samples: --inputs DIR or --input NAME=FILE.npy (leading axis = samples)");
  if (o.output.empty() && !o.dry_run) throw Error(ExitCode::kUsage, "-o OUT.onnx is required (or --dry-run)");
  // Where the run will write is checked before the search, as run_compress checks it before the passes.
  std::error_code ec;
  if (!o.output.empty() && !o.dry_run) {
    if (fs::exists(o.output, ec) && fs::equivalent(o.output, o.input, ec))
      throw Error(ExitCode::kUsage, "output '" + o.output + "' is the input model; refusing to overwrite it");
    check_output_path("-o", o.output, false);
    if (fs::exists(fs::symlink_status(o.output, ec)) && !o.force)
      throw Error(ExitCode::kUsage, "output '" + o.output + "' exists (use --force to overwrite)");
  }
  check_report_destinations({{"--report-json", o.report_json}, {"--report-md", o.report_md}, {"--report-html", o.report_html},
                             {"--recipe-out", o.recipe_out}});
  check_output_path("--report-json", o.report_json, true);
  check_output_path("--report-md", o.report_md, true);
  check_output_path("--report-html", o.report_html, true);
  check_output_path("--recipe-out", o.recipe_out, true);
  compress::AutoSettings settings;
  settings.min_cosine = o.min_cosine;
  settings.max_accuracy_drop = o.max_accuracy_drop;
  if (!o.allow.empty()) {
    settings.allow.clear();
    for (const auto& item : o.allow) {
      std::stringstream list(item);
      std::string name;
      while (std::getline(list, name, ','))
        if (!name.empty()) settings.allow.push_back(name);
    }
  }
  settings.objective = o.objective;
  settings.target = o.target;
  settings.input_shapes = parse_shapes(o.input_shapes);
  settings.global_excludes = o.excludes;
  settings.sensitivity_samples = o.sensitivity_samples;
  settings.dry_run = o.dry_run;
  // int8-static calibrates, low-rank whitens and prune ranks on the search samples, written beside the
  // output for the recipe to read.
  settings.calibration_dir = (o.output.empty() ? o.input : o.output) + ".calibration";
  const bool allows_samples = std::any_of(settings.allow.begin(), settings.allow.end(),
                                          [](const std::string& c) { return c == "int8-static" || c == "low-rank" || c == "prune"; });
  if (allows_samples && !o.dry_run && fs::exists(fs::symlink_status(settings.calibration_dir, ec)) && !o.force)
    throw Error(ExitCode::kUsage, "calibration directory '" + settings.calibration_dir + "' exists (use --force to overwrite)");

  compress::Model model = compress::Model::load(o.input);
  model.set_input_shapes(parse_shapes(o.input_shapes));
  const auto data = verify_options(o);
  compress::check_verify_data(model, data);
  const compress::eval::Evaluator evaluator(model);
  const auto samples = compress::load_inputs(evaluator, data);
  std::optional<compress::eval::Tensor> labels;
  if (!o.labels.empty()) labels = compress::eval::read_npy(o.labels);
  const auto result = compress::auto_search(model, samples, labels ? &*labels : nullptr, settings);

  if (!o.recipe_out.empty() && result.met) {
    // With the shapes the output is written with (below), so the recipe alone reproduces its bytes.
    nlohmann::json recipe = compress::recipe_to_json(result.recipe);
    recipe["input_shapes"] = result.report.at("input_shapes");
    write_text_file(o.recipe_out, recipe.dump(2) + "\n");
  }
  if (result.met && !o.dry_run) {
    Options write = o;  // the budget was checked on the held-out samples; the write has no gate of its own
    write.min_cosine.reset();
    write.max_accuracy_drop.reset();
    // The report counts one inference at the shapes the search predicted with.
    write.input_shapes.clear();
    for (const auto& [name, dims] : result.report.at("input_shapes").items()) {
      std::string spec = name + "=";
      for (size_t k = 0; k < dims.size(); ++k) spec += (k ? "x" : "") + std::to_string(dims[k].get<int64_t>());
      write.input_shapes.push_back(spec);
    }
    std::vector<fs::path> calibration;
    if (!result.calibration.empty()) calibration = write_calibration(settings.calibration_dir, result.calibration);
    try {
      return run_compress(write, &result.recipe, result.report);
    } catch (...) {
      for (const auto& path : calibration) fs::remove(path, ec);
      throw;
    }
  }

  // Dry run, or no model meets the budget: the reports, and no model.
  const nlohmann::json json = {{"input", o.input}, {"output", nullptr}, {"auto", result.report}};
  if (!o.report_json.empty()) write_text_file(o.report_json, json.dump(2) + "\n");
  if (!o.report_md.empty()) write_text_file(o.report_md, "## compress auto: " + o.input + "\n" + compress::render_auto_markdown(result.report));
  if (!o.report_html.empty()) write_text_file(o.report_html, compress::render_report_html(json));
  if (o.report_json != "-" && o.report_md != "-" && o.report_html != "-") std::cout << compress::render_auto_text(result.report);
  if (!o.dry_run)
    throw Error(ExitCode::kGateFailed, "auto: no compressed model meets the budget on the held-out samples; no output written");
  return 0;
}

int run_inspect(const Options& o) {
  if (o.json && o.csv) throw Error(ExitCode::kUsage, "--json and --csv both write to stdout; pick one");
  if (o.report_html == "-" && (o.json || o.csv))
    throw Error(ExitCode::kUsage, std::string(o.json ? "--json" : "--csv") + " and --report-html both write to stdout ('-')");
  const auto shapes = parse_shapes(o.input_shapes);
  Progress progress;
  // The report reads no weight: Model::load leaves them in the file, so none is ever copied.
  progress.step("loading " + o.input);
  compress::Model model = compress::Model::load(o.input);
  progress.enable(!o.quiet && model.source_bytes() > kProgressAboveBytes);
  progress.step("loaded " + o.input + " (" + std::to_string(model.source_bytes()) + " bytes), checking it");
  std::vector<std::string> warnings;
  try {
    const std::string skipped = try_check(model);
    if (!skipped.empty()) warnings.push_back(skipped);
  } catch (const Error& e) {
    warnings.push_back(std::string("model does not pass the ONNX checker: ") + e.what());
  }
  progress.step("statistics (static shape analysis)");
  compress::ModelStats stats = compress::compute_stats(model, shapes);
  progress.step("file size after zlib");
  stats.file = compress::measure_files(model.source_files());
  const compress::LatencyTerms terms = compress::predict_latency(model, stats, compress::TargetProfile::builtin(o.target));
  const nlohmann::json io = compress::model_io_to_json(model);
  nlohmann::json j = compress::inspect_to_json(stats);
  j["input"] = o.input;
  j["inputs"] = io["inputs"];
  j["outputs"] = io["outputs"];
  j["target"] = o.target;
  j["latency_terms"] = terms;  // the profile's linear features (bench/target/fit.py)
  for (const auto& w : warnings) spdlog::warn("{}", w);
  keep_until_exit(std::move(model));
  if (!o.report_html.empty()) write_text_file(o.report_html, compress::render_inspect_html(j));
  if (o.report_html == "-") return 0;
  if (o.json) std::cout << j.dump(2) << "\n";
  else if (o.csv) std::cout << compress::render_inspect_csv(stats);
  else std::cout << compress::render_inspect_text(stats, io);
  return 0;
}

std::string format_number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string type_name(compress::OptionSpec::Type t) {
  switch (t) {
    case compress::OptionSpec::Type::kBool: return "bool";
    case compress::OptionSpec::Type::kInt: return "int";
    case compress::OptionSpec::Type::kFloat: return "float";
    case compress::OptionSpec::Type::kString: return "string";
    case compress::OptionSpec::Type::kEnum: return "enum";
    case compress::OptionSpec::Type::kList: return "list";
    case compress::OptionSpec::Type::kSamples: return "samples-dir";
  }
  return "?";
}

int run_passes(const Options& o) {
  nlohmann::json all = nlohmann::json::array();
  for (const auto* pass : compress::PassRegistry::builtin().all()) {
    const auto info = pass->info();
    nlohmann::json options = nlohmann::json::array();
    for (const auto& s : info.options) {
      nlohmann::json spec = {{"name", s.name}, {"type", type_name(s.type)}, {"default", s.default_value}, {"help", s.help}};
      const bool numeric = s.type == compress::OptionSpec::Type::kInt || s.type == compress::OptionSpec::Type::kFloat;
      if (numeric && std::isfinite(s.min)) spec["min"] = s.min;
      if (numeric && std::isfinite(s.max)) spec["max"] = s.max;
      if (!s.choices.empty()) spec["choices"] = s.choices;
      options.push_back(spec);
    }
    all.push_back({{"name", info.name}, {"summary", info.summary}, {"options", options}});
  }
  if (o.json) {
    std::cout << all.dump(2) << "\n";
    return 0;
  }
  for (const auto& p : all) {
    std::cout << p["name"].get<std::string>() << "  " << p["summary"].get<std::string>() << "\n";
    for (const auto& s : p["options"]) {
      std::string line = "    " + s["name"].get<std::string>() + "=" + s["default"].get<std::string>() + "  (" +
                         s["type"].get<std::string>();
      if (s.contains("choices")) {
        line += ": ";
        for (size_t i = 0; i < s["choices"].size(); ++i) line += (i ? "|" : "") + s["choices"][i].get<std::string>();
      }
      if (s.contains("min") || s.contains("max")) {
        std::ostringstream range;
        range << " in [" << (s.contains("min") ? format_number(s["min"].get<double>()) : "-inf") << ", "
              << (s.contains("max") ? format_number(s["max"].get<double>()) : "inf") << "]";
        line += range.str();
      }
      std::cout << line << ")  " << s["help"].get<std::string>() << "\n";
    }
  }
  return 0;
}

}  // namespace

// Weights are read from the input files through read-only mappings (Model::load). A file that
// shrinks under its mapping, or a disk that fails a read, raises SIGBUS on the access: this turns it
// into the one-line error of exit code 2. A temp output already begun stays, as after any killed
// run, and the next run writing that output removes it.
void exit_on_sigbus(int) {
  static const char kLine[] =
      "compress: error: an input file could not be read through its mapping (SIGBUS: it shrank while "
      "compress ran, or the disk failed); no output written\n";
  (void)!::write(STDERR_FILENO, kLine, sizeof(kLine) - 1);
  ::_exit(static_cast<int>(ExitCode::kBadInput));
}

int main(int argc, char** argv) {
  std::signal(SIGBUS, exit_on_sigbus);
  auto logger = spdlog::stderr_color_mt("compress");
  logger->set_pattern("compress: %l: %v");
  spdlog::set_default_logger(logger);

  Options o;
  CLI::App app{"compress: make ONNX models smaller, faster and greener to run"};
  app.footer(kExitCodes);
  app.set_version_flag("--version", "compress 0.1.0");
  app.require_subcommand(0, 1);
  app.add_option("input", o.input, "input model (.onnx)")->check(CLI::ExistingPath);
  app.add_option("-o,--output", o.output, "output model path");
  app.add_option("-p,--passes", o.passes,
                 "pipeline, e.g. prune-magnitude:sparsity=0.5,quantize-int8 (repeatable; appends)")
      ->allow_extra_args(false);
  app.add_option("--recipe", o.recipe, "JSON recipe {\"passes\": [{\"name\": ..., \"options\": {...}}]}");
  app.add_option("--input-shape", o.input_shapes, "concrete input shape NAME=1x3x224x224 (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--exclude", o.excludes, "glob of node names or op types no pass may touch (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--report-json", o.report_json, "write the JSON report to FILE, or - for stdout");
  app.add_option("--report-md", o.report_md, "write a Markdown summary to FILE, or - for stdout");
  app.add_option("--report-html", o.report_html,
                 "write a self-contained HTML report (charts, sortable layer table) to FILE, or - for stdout");
  app.add_flag("--external-data", o.external_data, "store weights in OUT.onnx.data beside the model");
  app.add_flag("--dry-run", o.dry_run, "run everything but the write");
  app.add_flag("--force", o.force, "overwrite an existing output");
  app.add_flag("-q,--quiet", o.quiet, "log errors only");
  app.add_flag("-v,--verbose", o.verbose, "log details");
  app.add_flag("--verify", o.verify, "compare the output with the input model in the built-in evaluator (gates below)");
  add_verify_options(&app, o);
  app.add_option("--max-size-ratio", o.max_size_ratio, "gate: output file bytes / input file bytes <= R (exit 4)")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-latency-ratio", o.max_latency_ratio,
                 "gate: predicted latency after / before on --target <= R (exit 4)")
      ->check(CLI::PositiveNumber);
  app.add_option("--target", o.target, "target profile the report predicts latency for (ort-cpu, ort-cpu-vnni, generic)");

  auto* inspect = app.add_subcommand("inspect", "print size, params and FLOPs of one model");
  inspect->add_option("input", o.input, "model (.onnx)")->required()->check(CLI::ExistingPath);
  inspect->add_flag("--json", o.json, "print JSON (with inputs and outputs)");
  inspect->add_flag("--csv", o.csv, "print one CSV row per layer, largest first, with shares of the total");
  inspect->add_option("--report-html", o.report_html, "write a self-contained HTML page to FILE, or - for stdout");
  inspect->add_option("--target", o.target, "target profile for the predicted latency (ort-cpu, ort-cpu-vnni, generic)");
  inspect->add_option("--input-shape", o.input_shapes, "concrete input shape NAME=1x3x224x224 (repeatable)")
      ->allow_extra_args(false);
  inspect->add_flag("-q,--quiet", o.quiet, "log errors only");
  inspect->add_flag("-v,--verbose", o.verbose, "log details");
  auto* verify = app.add_subcommand("verify", "compare a candidate model with a reference in the built-in evaluator");
  verify->add_option("reference", o.input, "reference model (.onnx)")->required()->check(CLI::ExistingPath);
  verify->add_option("candidate", o.candidate, "candidate model (.onnx)")->required()->check(CLI::ExistingPath);
  add_verify_options(verify, o);
  verify->add_option("--input-shape", o.input_shapes, "shape for --random inputs NAME=1x3x224x224 (repeatable)")
      ->allow_extra_args(false);
  verify->add_option("--save-outputs", o.save_outputs, "write ref_<output>.npy and cand_<output>.npy to DIR");
  verify->add_flag("--json", o.json, "print JSON");
  verify->add_flag("-q,--quiet", o.quiet, "log errors only");
  verify->add_flag("-v,--verbose", o.verbose, "log details");
  auto* autos = app.add_subcommand("auto", "the smallest model that meets an accuracy budget, chosen layer by layer");
  autos->add_option("input", o.input, "input model (.onnx)")->required()->check(CLI::ExistingPath);
  autos->add_option("-o,--output", o.output, "output model path");
  autos->add_option("--inputs", o.inputs_dir, "directory with one <input-name>.npy per model input (leading axis = samples)");
  autos->add_option("--input", o.input_files, "NAME=FILE.npy for one input (repeatable)")->allow_extra_args(false);
  autos->add_option("--labels", o.labels, "integer labels .npy, one per sample (row of the first output)");
  autos->add_option("--min-cosine", o.min_cosine, "budget: every output's cosine to the float model >= X");
  autos->add_option("--max-accuracy-drop", o.max_accuracy_drop, "budget: accuracy drop <= POINTS (needs --labels)");
  autos->add_option("--objective", o.objective,
                    "what to minimize: size (bytes, default), latency (predicted on --target) or energy (estimated on --target)");
  autos->add_option("--target", o.target, "target profile for latency and energy (ort-cpu default, ort-cpu-vnni, generic)");
  autos->add_option("--allow", o.allow,
                    "per-layer choices: int8,int8-dynamic,int8-static,int4,fp16,low-rank,prune (default "
                    "int8,int4,fp16; latency and energy add int8-dynamic)")
      ->allow_extra_args(false);
  autos->add_option("--sensitivity-samples", o.sensitivity_samples, "search samples that measure each layer (default 8)")
      ->check(CLI::PositiveNumber);
  autos->add_option("--exclude", o.excludes, "glob of node names or op types to keep float (repeatable)")
      ->allow_extra_args(false);
  autos->add_option("--input-shape", o.input_shapes,
                    "input shape NAME=1x3x224x224 for latency, energy and the report (default: the samples', sample axis 1)")
      ->allow_extra_args(false);
  autos->add_option("--report-json", o.report_json, "write the JSON report (with its \"auto\" section) to FILE, or -");
  autos->add_option("--report-md", o.report_md, "write a Markdown summary to FILE, or -");
  autos->add_option("--report-html", o.report_html, "write a self-contained HTML page to FILE, or -");
  autos->add_option("--recipe-out", o.recipe_out, "write the chosen per-layer plan as a recipe (compress IN -o OUT --recipe F)");
  autos->add_flag("--dry-run", o.dry_run, "stop after the sensitivity table");
  autos->add_flag("--force", o.force, "overwrite an existing output");
  autos->add_flag("-q,--quiet", o.quiet, "log errors only");
  autos->add_flag("-v,--verbose", o.verbose, "log details");
  autos->footer(
      "Every 4th sample is held out; the search measures each layer's output error per choice on the search\n"
      "samples, takes layers by saving per error (bytes; or with --objective latency/energy the --target\n"
      "profile's predicted ms / estimated uJ: a choice predicted slower is never taken), and keeps the longest\n"
      "plan that meets the budget on the search and then the held-out samples. Nothing meets it: exit 4,\n"
      "reports written, no model. No choice saves anything: the model is written float (report: kept_float).\n"
      "Each layer's variants run from the layer on, from a checkpoint of the float activations that moves\n"
      "forward layer by layer: memory is the model, one candidate, the samples' float outputs and the\n"
      "values live at the current layer per sensitivity sample.\n"
      "int8-static calibrates on the search samples only; when chosen they are written to OUT.calibration/\n"
      "(<input>.npy each), the directory the recipe's calibration= names (exists: needs --force).\n\n"
      "Example (bundled model and data):\n"
      "  compress auto models/digits_cnn.onnx -o small.onnx --input input=models/digits_test_x_cnn.npy \\\n"
      "      --labels models/digits_test_y.npy --max-accuracy-drop 0.5 --recipe-out plan.json\n"
      "  compress models/digits_cnn.onnx -o same.onnx --recipe plan.json   # the same bytes\n");
  auto* passes = app.add_subcommand("passes", "list every pass with its options, defaults and ranges");
  passes->add_flag("--json", o.json, "print JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string message = e.what();
    if (e.get_name() == "ValidationError" && !o.input.empty()) message = o.input + ": no such file";
    std::cerr << "compress: error: " << error_line(message) << "\n";
    return static_cast<int>(ExitCode::kUsage);
  }
  spdlog::set_level(o.quiet ? spdlog::level::err : o.verbose ? spdlog::level::debug : spdlog::level::info);

  try {
    if (*passes) return run_passes(o);
    if (*inspect) return run_inspect(o);
    if (*verify) return run_verify(o);
    if (*autos) return run_auto(o);
    if (o.input.empty()) throw Error(ExitCode::kUsage, "an input model is required (see --help)");
    return run_compress(o);
  } catch (const Error& e) {
    std::cerr << "compress: error: " << error_line(e.what()) << "\n";
    return static_cast<int>(e.code());
  } catch (const std::bad_alloc&) {
    std::cerr << "compress: error: out of memory\n";
    return static_cast<int>(ExitCode::kInternal);
  } catch (const std::exception& e) {
    std::cerr << "compress: error: internal: " << error_line(e.what()) << "\n";
    return static_cast<int>(ExitCode::kInternal);
  }
}
