// verify_models: feeds (npy files or seeded normal data, cast to each model's input type), batched
// or per sample, outputs concatenated along the sample axis, then per-output metrics and accuracy.
#include <compress/error.h>
#include <compress/npy.h>
#include <compress/tensor.h>
#include <compress/verify.h>

#include <cmath>
#include <limits>
#include <random>
#include <sstream>

namespace compress {

using eval::Tensor;

namespace {

// Converts a feed to the model input's element type (float16 inputs get float16-rounded values).
Tensor cast_to(const Tensor& t, int32_t dtype) {
  if (dtype == 0 || dtype == t.dtype) return t;
  Tensor o;
  o.dtype = dtype;
  o.dims = t.dims;
  if (o.is_float()) {
    o.f = t.is_float() ? t.f : std::vector<float>(t.i.begin(), t.i.end());
    if (dtype == onnx::TensorProto::FLOAT16)
      for (auto& v : o.f) v = half_to_float(float_to_half(v));
  } else {
    if (t.is_float()) throw Error(ExitCode::kBadInput, "float data given for an integer input");
    o.i = t.i;
  }
  return o;
}

Tensor slice_sample(const Tensor& t, int64_t k) {
  Tensor o;
  o.dtype = t.dtype;
  o.dims = t.dims;
  o.dims[0] = 1;
  const int64_t per = t.numel() / t.dims[0];
  if (t.is_float()) o.f.assign(t.f.begin() + k * per, t.f.begin() + (k + 1) * per);
  else o.i.assign(t.i.begin() + k * per, t.i.begin() + (k + 1) * per);
  return o;
}

void append_sample(Tensor& acc, const Tensor& t) {
  if (acc.dims.empty()) {
    acc = t;
    return;
  }
  if (t.dims.empty()) throw Error(ExitCode::kBadInput, "cannot stack scalar outputs across samples");
  acc.dims[0] += t.dims[0];
  acc.f.insert(acc.f.end(), t.f.begin(), t.f.end());
  acc.i.insert(acc.i.end(), t.i.begin(), t.i.end());
}

// The shared feeds, before casting to each model's input types; symbolic dims of random inputs
// that --input-shape did not give are recorded in `assumed`.
eval::TensorMap make_feeds(const eval::Evaluator& ev, const VerifyOptions& o, std::vector<std::string>& assumed) {
  eval::TensorMap feeds;
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const auto& name : ev.input_names()) {
    std::filesystem::path file;
    if (auto it = o.input_files.find(name); it != o.input_files.end()) file = it->second;
    else if (!o.inputs_dir.empty()) file = o.inputs_dir / (name + ".npy");
    if (!file.empty()) {
      if (!std::filesystem::exists(file)) throw Error(ExitCode::kBadInput, "no input file for '" + name + "': " + file.string());
      feeds[name] = eval::read_npy(file);
      continue;
    }
    const int32_t dtype = ev.input_dtype(name);
    if (!is_float_dtype(dtype))
      throw Error(ExitCode::kBadInput, "input '" + name + "' is " + dtype_name(dtype) + ": give it a file (--input NAME=FILE.npy)");
    std::vector<int64_t> dims = ev.input_shape(name);
    if (auto it = o.shapes.find(name); it != o.shapes.end()) dims = it->second;
    for (size_t d = 0; d < dims.size(); ++d)
      if (dims[d] < 0) {
        dims[d] = 1;
        assumed.push_back("input '" + name + "' dim " + std::to_string(d) + " assumed 1");
      }
    int64_t n = 1;
    for (auto d : dims) n *= d;
    Tensor t = Tensor::floats(dims, std::vector<float>(static_cast<size_t>(n)));
    for (auto& v : t.f) v = normal(rng);
    feeds[name] = std::move(t);
  }
  return feeds;
}

}  // namespace

std::vector<eval::TensorMap> sample_feeds(const eval::Evaluator& ev, const eval::TensorMap& shared, int64_t& samples) {
  eval::TensorMap feeds;
  bool per_sample = false;
  samples = 1;
  for (const auto& name : ev.input_names()) {
    const Tensor& t = shared.at(name);
    feeds[name] = cast_to(t, ev.input_dtype(name));
    const auto declared = ev.input_shape(name);
    if (!declared.empty() && !t.dims.empty()) {
      samples = t.dims[0];
      if (declared[0] == 1 && t.dims[0] > 1 && declared.size() == t.dims.size()) per_sample = true;
    }
  }
  if (!per_sample) return {feeds};
  std::vector<eval::TensorMap> runs;
  for (int64_t k = 0; k < samples; ++k) {
    eval::TensorMap one;
    for (const auto& [name, t] : feeds) one[name] = t.dims.empty() || t.dims[0] != samples ? t : slice_sample(t, k);
    runs.push_back(std::move(one));
  }
  return runs;
}

eval::TensorMap stack_outputs(std::vector<eval::TensorMap> runs) {
  if (runs.size() == 1) return std::move(runs.front());
  eval::TensorMap stacked;
  for (const auto& run : runs)
    for (const auto& [name, t] : run) append_sample(stacked[name], t);
  return stacked;
}

namespace {

// Runs one model on every feed sample_feeds makes, outputs stacked.
eval::TensorMap run_model(const eval::Evaluator& ev, const eval::TensorMap& shared, int64_t& samples) {
  std::vector<eval::TensorMap> outs;
  for (const auto& feeds : sample_feeds(ev, shared, samples)) outs.push_back(ev.run(feeds));
  return stack_outputs(std::move(outs));
}

Tensor widened(const Tensor& t) { return Tensor::floats(t.dims, t.is_float() ? t.f : std::vector<float>(t.i.begin(), t.i.end())); }

nlohmann::json number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}

}  // namespace

eval::TensorMap load_inputs(const eval::Evaluator& evaluator, const VerifyOptions& options) {
  std::vector<std::string> assumed;
  return make_feeds(evaluator, options, assumed);
}

eval::TensorMap run_on_samples(const eval::Evaluator& evaluator, const eval::TensorMap& inputs, int64_t& samples) {
  return run_model(evaluator, inputs, samples);
}

OutputMetrics compare_outputs(const Tensor& reference, const Tensor& candidate) {
  const Tensor a = widened(reference), b = widened(candidate);
  if (a.f.size() != b.f.size())
    throw Error(ExitCode::kBadInput, "outputs differ in size (" + std::to_string(a.f.size()) + " vs " +
                                         std::to_string(b.f.size()) + " elements)");
  double dot = 0, na = 0, nb = 0, err = 0, max_abs = 0;
  for (size_t k = 0; k < a.f.size(); ++k) {
    const double x = a.f[k], y = b.f[k];
    dot += x * y;
    na += x * x;
    nb += y * y;
    err += (x - y) * (x - y);
    max_abs = std::max(max_abs, std::fabs(x - y));
    if (std::isnan(x) != std::isnan(y)) max_abs = std::numeric_limits<double>::quiet_NaN();
  }
  OutputMetrics m;
  m.cosine = (na == 0 && nb == 0) ? 1.0 : dot / std::sqrt(na * nb);
  m.snr_db = err == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(na / err);
  m.max_abs_err = max_abs;
  const int64_t cols = a.dims.empty() ? 1 : a.dims.back();
  if (cols > 1 && !a.f.empty()) {
    const auto rows = static_cast<int64_t>(a.f.size()) / cols;
    int64_t agree = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const auto pa = std::max_element(a.f.begin() + r * cols, a.f.begin() + (r + 1) * cols) - (a.f.begin() + r * cols);
      const auto pb = std::max_element(b.f.begin() + r * cols, b.f.begin() + (r + 1) * cols) - (b.f.begin() + r * cols);
      agree += pa == pb;
    }
    m.top1_agreement = static_cast<double>(agree) / static_cast<double>(rows);
  }
  return m;
}

double accuracy(const Tensor& scores, const Tensor& labels) {
  const Tensor s = widened(scores);
  const int64_t cols = s.dims.empty() ? 1 : s.dims.back();
  const int64_t rows = cols ? static_cast<int64_t>(s.f.size()) / cols : 0;
  if (labels.numel() != rows)
    throw Error(ExitCode::kBadInput, "labels hold " + std::to_string(labels.numel()) + " values for " + std::to_string(rows) + " output rows");
  if (rows == 0) return 0;
  int64_t right = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const auto p = std::max_element(s.f.begin() + r * cols, s.f.begin() + (r + 1) * cols) - (s.f.begin() + r * cols);
    right += static_cast<double>(p) == labels.at(r);
  }
  return static_cast<double>(right) / static_cast<double>(rows);
}

VerifyResult verify_models(const Model& reference, const Model& candidate, const VerifyOptions& options) {
  const eval::Evaluator ref_ev(reference), cand_ev(candidate);
  VerifyResult result;
  const auto feeds = make_feeds(ref_ev, options, result.assumed_dims);
  for (const auto& [name, t] : feeds) result.input_shapes[name] = t.dims;
  for (const auto& name : cand_ev.input_names())
    if (!feeds.count(name)) throw Error(ExitCode::kBadInput, "candidate input '" + name + "' is not an input of the reference");
  const auto ref_out = run_model(ref_ev, feeds, result.samples);
  int64_t cand_samples = 0;
  const auto cand_out = run_model(cand_ev, feeds, cand_samples);
  for (const auto& name : ref_ev.output_names()) {
    auto it = cand_out.find(name);
    if (it == cand_out.end()) continue;
    result.outputs[name] = compare_outputs(ref_out.at(name), it->second);
    if (!options.save_outputs.empty()) {
      std::filesystem::create_directories(options.save_outputs);
      eval::write_npy(options.save_outputs / ("ref_" + name + ".npy"), ref_out.at(name));
      eval::write_npy(options.save_outputs / ("cand_" + name + ".npy"), it->second);
    }
  }
  if (result.outputs.empty()) throw Error(ExitCode::kBadInput, "the two models share no output name");
  if (!options.labels.empty()) {
    const Tensor labels = eval::read_npy(options.labels);
    const std::string& first = ref_ev.output_names().front();
    AccuracyMetrics acc;
    acc.reference = accuracy(ref_out.at(first), labels);
    acc.candidate = accuracy(cand_out.at(first), labels);
    acc.drop_points = (acc.reference - acc.candidate) * 100.0;
    result.accuracy = acc;
  }
  return result;
}

nlohmann::json verify_to_json(const VerifyResult& result) {
  nlohmann::json outputs = nlohmann::json::object();
  for (const auto& [name, m] : result.outputs)
    outputs[name] = {{"cosine", number(m.cosine)},
                     {"snr_db", number(m.snr_db)},
                     {"max_abs_err", number(m.max_abs_err)},
                     {"top1_agreement", m.top1_agreement ? number(*m.top1_agreement) : nlohmann::json(nullptr)}};
  nlohmann::json j = {{"outputs", outputs},
                      {"samples", result.samples},
                      {"input_shapes", result.input_shapes},
                      {"assumptions", result.assumed_dims}};
  if (result.accuracy)
    j["accuracy"] = {{"reference", result.accuracy->reference},
                     {"candidate", result.accuracy->candidate},
                     {"drop_points", result.accuracy->drop_points}};
  return j;
}

std::vector<GateVerdict> evaluate_gates(const VerifyResult& result, const Gates& gates) {
  if (gates.max_accuracy_drop && !result.accuracy)
    throw Error(ExitCode::kUsage, "--max-accuracy-drop needs --labels");
  std::vector<GateVerdict> verdicts;
  for (const auto& [name, m] : result.outputs) {
    if (gates.min_cosine)
      verdicts.push_back({"min-cosine", name, m.cosine, *gates.min_cosine, m.cosine >= *gates.min_cosine,
                          "gate missed: output '" + name + "' cosine " + fmt(m.cosine) + " < --min-cosine " +
                              fmt(*gates.min_cosine)});
    if (gates.min_snr_db)
      verdicts.push_back({"min-snr", name, m.snr_db, *gates.min_snr_db, m.snr_db >= *gates.min_snr_db,
                          "gate missed: output '" + name + "' SNR " + fmt(m.snr_db) + " dB < --min-snr " +
                              fmt(*gates.min_snr_db)});
  }
  if (gates.max_accuracy_drop) {
    const double drop = result.accuracy->drop_points;
    verdicts.push_back({"max-accuracy-drop", "", drop, *gates.max_accuracy_drop, drop <= *gates.max_accuracy_drop,
                        "gate missed: accuracy drop " + fmt(drop) + " points > --max-accuracy-drop " +
                            fmt(*gates.max_accuracy_drop)});
  }
  for (auto& v : verdicts)
    if (v.passed) v.message.clear();
  return verdicts;
}

nlohmann::json gates_to_json(const std::vector<GateVerdict>& verdicts) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& v : verdicts)
    j.push_back({{"gate", v.gate},
                 {"output", v.output.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.output)},
                 {"value", number(v.value)},
                 {"threshold", number(v.threshold)},
                 {"passed", v.passed}});
  return j;
}

void check_gates(const VerifyResult& result, const Gates& gates) {
  for (const auto& v : evaluate_gates(result, gates))
    if (!v.passed) throw Error(ExitCode::kGateFailed, v.message);
}

}  // namespace compress
