// Report renderers (text for the terminal, JSON for machines, Markdown for CI job summaries) and
// file size measurement (bytes on disk and after zlib, what a release artifact costs).
#include <compress/error.h>
#include <compress/auto.h>
#include <compress/report.h>
#include <compress/tensor.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "report/deflate_size.h"

namespace compress {

namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::abs(b) >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

std::string human_count(double v) {
  const char* units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (std::abs(v) >= 1000 && u < 4) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f%s" : "%.0f%s", v, units[u]);
  return buf;
}

std::string ratio(double before, double after) {
  if (before == 0) return after == 0 ? "1.000x" : "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fx", after / before);
  return buf;
}

double ratio_value(double before, double after) { return before == 0 ? (after == 0 ? 1.0 : 0.0) : after / before; }

struct Row {
  std::string label;
  double before;
  double after;
  bool bytes;
};

std::vector<Row> summary_rows(const ModelStats& b, const ModelStats& a) {
  const EnergyEstimate eb = estimate_energy(b), ea = estimate_energy(a);
  return {{"file size", static_cast<double>(b.file.bytes), static_cast<double>(a.file.bytes), true},
          {std::string("file size (zlib") + (a.file.zlib_estimated || b.file.zlib_estimated ? " est.)" : ")"),
           static_cast<double>(b.file.zlib_bytes), static_cast<double>(a.file.zlib_bytes), true},
          {"params", static_cast<double>(b.params), static_cast<double>(a.params), false},
          {"weight bytes", static_cast<double>(b.weight_bytes), static_cast<double>(a.weight_bytes), true},
          {"MACs", static_cast<double>(b.macs), static_cast<double>(a.macs), false},
          {"FLOPs", static_cast<double>(b.flops), static_cast<double>(a.flops), false},
          {"energy estimate (uJ)", eb.total_uj(), ea.total_uj(), false}};
}

std::string format_value(const Row& r, double v) {
  if (r.bytes) return human_bytes(v);
  if (r.label.rfind("energy", 0) == 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    return buf;
  }
  return human_count(v);
}

std::string pad(const std::string& s, size_t width, bool right = false) {
  if (s.size() >= width) return s;
  return right ? std::string(width - s.size(), ' ') + s : s + std::string(width - s.size(), ' ');
}

nlohmann::json layer_json(const LayerStats& l) {
  nlohmann::json j = {{"name", l.name},   {"op_type", l.op_type}, {"params", l.params}, {"weight_bytes", l.weight_bytes},
                      {"macs", l.macs},   {"flops", l.flops},     {"compute_dtype", l.compute_dtype}};
  if (l.predicted_latency_ms >= 0) j["predicted_latency_ms"] = l.predicted_latency_ms;
  return j;
}

// The layers predicted slower after than before (matched by name), slowest first, at most `n`.
std::vector<std::string> slower_layers(const Report& r, size_t n) {
  std::map<std::string, double> before;
  for (const auto& l : r.before.layers) before[l.name] = l.predicted_latency_ms;
  std::vector<std::pair<double, std::string>> slower;
  for (const auto& l : r.after.layers) {
    auto it = before.find(l.name);
    if (it != before.end() && l.predicted_latency_ms > it->second * 1.05) slower.emplace_back(it->second - l.predicted_latency_ms, l.name);
  }
  std::sort(slower.begin(), slower.end());
  std::vector<std::string> names;
  for (size_t k = 0; k < slower.size() && k < n; ++k) names.push_back(slower[k].second);
  return names;
}

// A predicted after/before latency ratio at or above this is not called a gain: the predictor's
// measured error on held-out models (BENCHMARKS.md, issue 11) puts smaller predicted gains within
// the noise of what ONNX Runtime then runs (fp16 of PP-OCR det: predicted 0.91x, measured 1.02x).
constexpr double kClaimedGainBelow = 0.9;

// The headline line on the report's target: a warning when the output is predicted slower than the
// input, a note when it is predicted faster by less than the predictor can tell apart.
std::string latency_headline(const Report& r) {
  if (r.target.empty() || r.before.predicted_latency_ms <= 0) return "";
  const double ratio = r.after.predicted_latency_ms / r.before.predicted_latency_ms;
  char buf[240];
  if (ratio < 1 && ratio >= kClaimedGainBelow) {
    std::snprintf(buf, sizeof buf,
                  "NOTE: predicted %.3fx the input's latency on %s: within the predictor's error (gains under %.0f%% are "
                  "not claimed; measure in the runtime)",
                  ratio, r.target.c_str(), (1 - kClaimedGainBelow) * 100);
    return buf;
  }
  if (r.after.predicted_latency_ms <= r.before.predicted_latency_ms) return "";
  std::snprintf(buf, sizeof buf, "WARNING: predicted SLOWER on %s: %.3fx the input's latency (%.4f -> %.4f ms)", r.target.c_str(),
                ratio, r.before.predicted_latency_ms, r.after.predicted_latency_ms);
  std::string line = buf;
  const auto names = slower_layers(r, 5);
  for (size_t k = 0; k < names.size(); ++k) line += (k == 0 ? "; slower layers: " : ", ") + names[k];
  return line;
}

// What the report may say of the predicted latency: "slower", "faster", or "within_error".
std::string latency_verdict(const Report& r) {
  const double ratio = r.after.predicted_latency_ms / r.before.predicted_latency_ms;
  return ratio > 1 ? "slower" : ratio < kClaimedGainBelow ? "faster" : ratio < 1 ? "within_error" : "same";
}

// The per-op energy count can fall (float16 or int8 MACs cost less at 45 nm) while the target runs
// the output no faster: ORT CPU computes float16 in float32 and its unfused ConvInteger is slower.
// A CPU's energy per inference follows its run time, so such a count is not shown as a gain.
bool energy_gain_unclaimed(const Report& r) {
  if (r.target.empty() || r.before.predicted_latency_ms <= 0) return false;
  return estimate_energy(r.after).total_uj() < estimate_energy(r.before).total_uj() && latency_verdict(r) != "faster";
}

std::string energy_footnote(const Report& r) {
  char buf[240];
  std::snprintf(buf, sizeof buf,
                "* energy: a per-op count, not a gain on %s, where the output is predicted %.3fx the input's latency "
                "(a CPU's energy follows its run time)",
                r.target.c_str(), r.after.predicted_latency_ms / r.before.predicted_latency_ms);
  return buf;
}

// The ratio cell of a summary row, marked where the report does not claim it.
std::string ratio_cell(const Report& r, const Row& row) {
  const std::string text = ratio(row.before, row.after);
  return row.label.rfind("energy", 0) == 0 && energy_gain_unclaimed(r) ? text + "*" : text;
}

// Every layer, largest first: by MACs, then weight bytes; model order among equals.
std::vector<const LayerStats*> sorted_layers(const ModelStats& s) {
  std::vector<const LayerStats*> v;
  for (const auto& l : s.layers) v.push_back(&l);
  std::stable_sort(v.begin(), v.end(), [](const LayerStats* x, const LayerStats* y) {
    return x->macs != y->macs ? x->macs > y->macs : x->weight_bytes > y->weight_bytes;
  });
  return v;
}

double share(int64_t part, int64_t total) { return total ? static_cast<double>(part) / static_cast<double>(total) : 0.0; }

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", fraction * 100);
  return buf;
}

// A verify metric as JSON holds it: a number, or "Infinity"/"NaN" as text.
std::string metric(const nlohmann::json& v, int precision = 6) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_number()) return "-";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*g", precision, v.get<double>());
  return buf;
}

// Verify metrics and gate verdicts as lines of a table: {header, rows}.
struct Lines {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

Lines verify_lines(const nlohmann::json& verify) {
  Lines t{{"output", "cosine", "SNR dB", "max abs err", "top-1 agreement"}, {}};
  if (!verify.is_object() || !verify.contains("outputs")) return t;
  for (const auto& [name, m] : verify["outputs"].items())
    t.rows.push_back({name, metric(m.value("cosine", nlohmann::json())), metric(m.value("snr_db", nlohmann::json()), 4),
                      metric(m.value("max_abs_err", nlohmann::json()), 4),
                      metric(m.value("top1_agreement", nlohmann::json()), 4)});
  return t;
}

std::string accuracy_line(const nlohmann::json& verify) {
  if (!verify.is_object() || !verify.contains("accuracy")) return "";
  const auto& a = verify["accuracy"];
  char buf[160];
  std::snprintf(buf, sizeof buf, "accuracy: reference %.2f%%, candidate %.2f%%, drop %.2f points",
                a.value("reference", 0.0) * 100, a.value("candidate", 0.0) * 100, a.value("drop_points", 0.0));
  return buf;
}

// The verdicts of verify.gates (gates_to_json): {"gate": "min-cosine", "output", "value", "threshold", "passed"}.
const nlohmann::json& gates_of(const nlohmann::json& verify) {
  static const nlohmann::json none = nlohmann::json::array();
  return verify.is_object() && verify.contains("gates") && verify["gates"].is_array() ? verify["gates"] : none;
}

Lines gate_lines(const nlohmann::json& gates) {
  Lines t{{"verdict", "gate", "limit", "measured"}, {}};
  for (const auto& g : gates) {
    const std::string gate = g.value("gate", std::string());
    const std::string what = gate == "min-cosine" ? "cosine" : gate == "min-snr" ? "SNR dB"
                           : gate == "max-accuracy-drop" ? "accuracy drop (points)" : gate;
    const std::string subject =
        g.contains("output") && g["output"].is_string() ? "output '" + g["output"].get<std::string>() + "' " + what : what;
    t.rows.push_back({g.value("passed", false) ? "pass" : "FAIL", "--" + gate, metric(g.value("threshold", nlohmann::json())),
                      subject + " " + metric(g.value("value", nlohmann::json()))});
  }
  return t;
}

// Every warning of the run, each prefixed by the pass that raised it.
std::vector<std::string> all_warnings(const Report& r) {
  std::vector<std::string> out;
  for (const auto& p : r.passes)
    for (const auto& w : p.stats.warnings) out.push_back(p.name + ": " + w);
  return out;
}

std::vector<std::string> all_assumptions(const Report& r) {
  std::set<std::string> notes(r.before.assumptions.begin(), r.before.assumptions.end());
  notes.insert(r.after.assumptions.begin(), r.after.assumptions.end());
  return {notes.begin(), notes.end()};
}

// Layers that changed most: by weight bytes saved, then MACs saved (absolute: growth counts too),
// then size; only layers that changed (a round trip lists the largest layers instead).
std::vector<const LayerChange*> top_changes(const std::vector<LayerChange>& rows, size_t n) {
  auto val = [](const std::optional<LayerStats>& s, int64_t LayerStats::*f) { return s ? (*s).*f : 0; };
  auto key = [&](const LayerChange* c) {
    const int64_t db = val(c->before, &LayerStats::weight_bytes) - val(c->after, &LayerStats::weight_bytes);
    const int64_t dm = val(c->before, &LayerStats::macs) - val(c->after, &LayerStats::macs);
    return std::make_tuple(db < 0 ? -db : db, dm < 0 ? -dm : dm, val(c->before, &LayerStats::weight_bytes),
                           val(c->before, &LayerStats::macs));
  };
  auto changed = [&](const LayerChange& c) {
    return !c.before || !c.after || c.after->op_type != c.op_type || std::get<0>(key(&c)) || std::get<1>(key(&c));
  };
  std::vector<const LayerChange*> v;
  for (const auto& c : rows)
    if (changed(c)) v.push_back(&c);
  if (v.empty())  // nothing changed: the largest layers say where the model's cost is
    for (const auto& c : rows)
      if (val(c.before, &LayerStats::weight_bytes) || val(c.before, &LayerStats::macs)) v.push_back(&c);
  std::stable_sort(v.begin(), v.end(), [&](const LayerChange* a, const LayerChange* b) { return key(a) > key(b); });
  if (v.size() > n) v.resize(n);
  return v;
}

std::string short_name(const std::string& name, size_t width) {
  return name.size() > width ? name.substr(0, width - 3) + "..." : name;
}

std::string op_change(const LayerChange& c) {
  if (!c.after) return c.op_type + " -> (removed by " + c.removed_by + ")";
  if (!c.before) return "(new) " + c.after->op_type;
  return c.after->op_type == c.op_type ? c.op_type : c.op_type + " -> " + c.after->op_type;
}

std::string counters_text(const PassStats& stats) {
  std::string out;
  for (const auto& [k, v] : stats.counters) out += (out.empty() ? "" : ", ") + k + "=" + std::to_string(v);
  return out.empty() ? "no changes" : out;
}

}  // namespace

namespace {

// Offsets of kZlibSamplePieces pieces spread evenly over `size` bytes (the middle of each stride),
// so the estimate covers every part of the weights.
std::vector<size_t> sample_offsets(size_t size) {
  const size_t pieces = size / deflate_size::kPieceBytes;
  const size_t stride = pieces / static_cast<size_t>(kZlibSamplePieces);
  std::vector<size_t> offsets;
  for (size_t i = stride / 2; offsets.size() < static_cast<size_t>(kZlibSamplePieces); i += stride)
    offsets.push_back(i * deflate_size::kPieceBytes);
  return offsets;
}

// zlib bytes of `size` bytes from the pieces at `offsets` (gathered in `pieces`), scaled up.
int64_t scaled_estimate(const std::vector<char>& pieces, size_t size, int level) {
  const size_t count = pieces.size() / deflate_size::kPieceBytes;
  const int64_t packed = deflate_size::deflated_pieces(pieces.data(), count, level);
  return static_cast<int64_t>(static_cast<double>(packed) * static_cast<double>(size) /
                              static_cast<double>(pieces.size()));
}

}  // namespace

FileSize measure_bytes(const std::string& serialized, int64_t external_bytes, int zlib_level) {
  FileSize size;
  size.bytes = static_cast<int64_t>(serialized.size()) + external_bytes;
  size.zlib_level = zlib_level ? zlib_level : kZlibDefaultLevel;
  size.zlib_estimated = static_cast<int64_t>(serialized.size()) > kZlibSampleAbove;
  if (!size.zlib_estimated) {
    size.zlib_bytes = deflate_size::deflated_size(serialized.data(), serialized.size(), size.zlib_level);
  } else {
    std::vector<char> pieces;
    for (const size_t offset : sample_offsets(serialized.size()))
      pieces.insert(pieces.end(), serialized.data() + offset, serialized.data() + offset + deflate_size::kPieceBytes);
    size.zlib_bytes = scaled_estimate(pieces, serialized.size(), size.zlib_level);
  }
  size.zlib_bytes += external_bytes;
  return size;
}

FileSize measure_files(const std::vector<std::filesystem::path>& files, int zlib_level) {
  FileSize size;
  size.zlib_level = zlib_level ? zlib_level : kZlibDefaultLevel;
  for (const auto& f : files) {
    if (f.empty()) continue;
    std::ifstream in(f, std::ios::binary);
    std::error_code ec;
    const auto file_bytes = static_cast<size_t>(std::filesystem::file_size(f, ec));
    if (!in || ec) throw Error(ExitCode::kWriteFailed, f.string() + ": cannot read back");
    size.bytes += static_cast<int64_t>(file_bytes);
    if (static_cast<int64_t>(file_bytes) > kZlibSampleAbove) {
      // Only the sampled pieces are read: the estimate costs the same for any file size.
      size.zlib_estimated = true;
      std::vector<char> pieces;
      for (const size_t offset : sample_offsets(file_bytes)) {
        const size_t at = pieces.size();
        pieces.resize(at + deflate_size::kPieceBytes);
        in.seekg(static_cast<std::streamoff>(offset));
        if (!in.read(pieces.data() + at, static_cast<std::streamsize>(deflate_size::kPieceBytes)))
          throw Error(ExitCode::kWriteFailed, f.string() + ": cannot read back");
      }
      size.zlib_bytes += scaled_estimate(pieces, file_bytes, size.zlib_level);
      continue;
    }
    std::vector<char> buf(std::min(deflate_size::kBlockBytes, file_bytes + 1));
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const auto got = static_cast<size_t>(in.gcount());
      size.zlib_bytes += deflate_size::deflated_size(buf.data(), got, size.zlib_level);
    }
  }
  return size;
}

nlohmann::json stats_to_json(const ModelStats& s) {
  const EnergyEstimate e = estimate_energy(s);
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : s.layers) layers.push_back(layer_json(l));
  nlohmann::json j = {{"file_bytes", s.file.bytes},
          {"file_zlib_bytes", s.file.zlib_bytes},
          {"file_zlib_level", s.file.zlib_level},
          {"file_zlib_estimated", s.file.zlib_estimated},
          {"params", s.params},
          {"weight_bytes", s.weight_bytes},
          {"weight_bytes_by_dtype", s.weight_bytes_by_dtype},
          {"macs", s.macs},
          {"macs_by_dtype", s.macs_by_dtype},
          {"flops", s.flops},
          {"energy_estimate_uj", {{"compute", e.compute_uj}, {"dram_weights", e.dram_uj}, {"dequantize_weights", e.dequantize_uj}, {"total", e.total_uj()}}},
          {"op_counts", s.op_counts},
          {"assumptions", s.assumptions},
          {"input_shapes", s.input_shapes},
          {"unknown_shape_nodes", s.unknown_shape_nodes},
          {"layers", layers}};
  if (s.predicted_latency_ms >= 0) j["predicted_latency_ms"] = s.predicted_latency_ms;
  return j;
}

std::vector<LayerChange> match_layers(const Report& r) {
  // The original layer each name traces to, following the passes' origins from last to first.
  auto trace = [&](std::string name, size_t passes) {
    for (size_t k = passes; k-- > 0;) {
      auto it = r.passes[k].origins.find(name);
      if (it != r.passes[k].origins.end()) name = it->second;
    }
    return name;
  };
  std::vector<LayerChange> rows;
  std::map<std::string, size_t> row_of;
  for (const auto& l : r.before.layers) {
    row_of.emplace(l.name, rows.size());
    rows.push_back({l.name, l.op_type, l, std::nullopt, {}, {}});
  }
  for (size_t k = 0; k < r.passes.size(); ++k)
    for (const auto& gone : r.passes[k].removed) {
      auto it = row_of.find(trace(gone, k));
      if (it != row_of.end() && rows[it->second].removed_by.empty()) rows[it->second].removed_by = r.passes[k].name;
    }
  std::map<size_t, std::vector<const LayerStats*>> parts;
  for (const auto& l : r.after.layers) {
    auto it = row_of.find(trace(l.name, r.passes.size()));
    if (it == row_of.end()) {
      row_of.emplace(l.name, rows.size());
      rows.push_back({l.name, l.op_type, std::nullopt, l, {l.name}, {}});
      continue;
    }
    rows[it->second].after_nodes.push_back(l.name);
    parts[it->second].push_back(&l);
  }
  for (const auto& [index, nodes] : parts) {
    LayerChange& row = rows[index];
    // The node keeping the layer's name, else the one doing the most work, names the type.
    const LayerStats* head = nodes.front();
    for (const LayerStats* l : nodes) {
      if (head->name == row.name) break;
      if (l->name == row.name || l->macs > head->macs || (l->macs == head->macs && l->weight_bytes > head->weight_bytes))
        head = l;
    }
    LayerStats sum = *head;
    sum.params = sum.weight_bytes = sum.macs = sum.flops = 0;
    for (const LayerStats* l : nodes) {
      sum.params += l->params;
      sum.weight_bytes += l->weight_bytes;
      sum.macs += l->macs;
      sum.flops += l->flops;
    }
    row.after = sum;
  }
  for (auto& row : rows)
    if (row.after && !row.removed_by.empty()) row.removed_by.clear();
  return rows;
}

nlohmann::json report_to_json(const Report& r) {
  nlohmann::json before = stats_to_json(r.before), after = stats_to_json(r.after);
  auto small = [](const LayerStats& l) {
    nlohmann::json j{{"params", l.params}, {"weight_bytes", l.weight_bytes}, {"macs", l.macs}, {"flops", l.flops}};
    if (l.predicted_latency_ms >= 0) j["predicted_latency_ms"] = l.predicted_latency_ms;
    return j;
  };
  // Per layer before/after, paired through the passes' origins (a renamed or replaced node is
  // still the same layer).
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& c : match_layers(r)) {
    nlohmann::json row = {{"name", c.name},
                          {"op_type", c.op_type},
                          {"before", c.before ? small(*c.before) : nlohmann::json(nullptr)},
                          {"after", c.after ? small(*c.after) : nlohmann::json(nullptr)}};
    if (c.after) row["after_op_type"] = c.after->op_type;
    if (c.after && c.after_nodes != std::vector<std::string>{c.name}) row["after_nodes"] = c.after_nodes;
    if (!c.removed_by.empty()) row["removed_by"] = c.removed_by;
    layers.push_back(row);
  }
  before.erase("layers");
  after.erase("layers");
  nlohmann::json passes = nlohmann::json::array();
  for (const auto& p : r.passes)
    passes.push_back({{"name", p.name},
                      {"canonical", p.canonical},
                      {"seconds", p.seconds},
                      {"counters", p.stats.counters},
                      {"warnings", p.stats.warnings},
                      {"layers", p.stats.layers},
                      {"origins", p.origins},
                      {"removed", p.removed}});
  nlohmann::json ratios;
  for (const auto& row : summary_rows(r.before, r.after)) ratios[row.label] = ratio_value(row.before, row.after);
  nlohmann::json j = {{"input", r.input},   {"output", r.output.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.output)},
                      {"pipeline", r.pipeline}, {"before", before}, {"after", after}, {"ratios", {
                          {"file_bytes", ratio_value(r.before.file.bytes, r.after.file.bytes)},
                          {"file_zlib_bytes", ratio_value(r.before.file.zlib_bytes, r.after.file.zlib_bytes)},
                          {"params", ratio_value(r.before.params, r.after.params)},
                          {"weight_bytes", ratio_value(r.before.weight_bytes, r.after.weight_bytes)},
                          {"macs", ratio_value(r.before.macs, r.after.macs)},
                          {"flops", ratio_value(r.before.flops, r.after.flops)},
                          {"energy", ratio_value(estimate_energy(r.before).total_uj(), estimate_energy(r.after).total_uj())}}},
                      {"layers", layers},       {"passes", passes}};
  if (r.output.empty() && !r.not_written.empty()) j["not_written"] = r.not_written;
  if (!r.verify.is_null()) j["verify"] = r.verify;
  if (!r.auto_search.is_null()) j["auto"] = r.auto_search;
  j["assumptions"] = assumptions_to_json(r.before);
  if (!r.target.empty()) {
    j["target"] = r.target;
    j["ratios"]["predicted_latency"] = ratio_value(r.before.predicted_latency_ms, r.after.predicted_latency_ms);
    if (r.before.predicted_latency_ms > 0) {
      j["predicted_latency_verdict"] = latency_verdict(r);
      j["energy_gain_claimed"] = estimate_energy(r.after).total_uj() < estimate_energy(r.before).total_uj() &&
                                 !energy_gain_unclaimed(r);
    }
  }
  return j;
}

std::string render_report_text(const Report& r) {
  std::ostringstream o;
  o << "compress report: " << r.input << " -> "
    << (r.output.empty() ? "(" + (r.not_written.empty() ? std::string("dry run") : r.not_written) + ", not written)"
                         : r.output)
    << "\n";
  o << "pipeline: " << (r.pipeline.empty() ? "(none: round trip)" : r.pipeline) << "\n";
  for (const auto& line : assumption_headline(r.before)) o << line << "\n";
  if (const std::string headline = latency_headline(r); !headline.empty()) o << headline << "\n";
  o << "\n";
  o << pad("", 22) << pad("before", 14, true) << pad("after", 14, true) << pad("ratio", 10, true) << "\n";
  for (const auto& row : summary_rows(r.before, r.after))
    o << pad(row.label, 22) << pad(format_value(row, row.before), 14, true) << pad(format_value(row, row.after), 14, true)
      << pad(ratio_cell(r, row), 10, true) << "\n";
  if (!r.target.empty() && r.before.predicted_latency_ms >= 0) {
    char b[32], a[32];
    std::snprintf(b, sizeof b, "%.4f", r.before.predicted_latency_ms);
    std::snprintf(a, sizeof a, "%.4f", r.after.predicted_latency_ms);
    o << pad("latency (ms)", 22) << pad(b, 14, true) << pad(a, 14, true)
      << pad(ratio(r.before.predicted_latency_ms, r.after.predicted_latency_ms), 10, true) << "  predicted for " << r.target
      << "\n";
  }
  o << "(energy: an estimate from 45 nm per-op energies, Horowitz ISSCC 2014; MACs + weights read once from DRAM)\n";
  if (energy_gain_unclaimed(r)) o << energy_footnote(r) << "\n";
  std::set<std::string> dtypes;
  for (const auto& [d, unused] : r.before.weight_bytes_by_dtype) dtypes.insert(d);
  for (const auto& [d, unused] : r.after.weight_bytes_by_dtype) dtypes.insert(d);
  if (!dtypes.empty()) {
    o << "\nweight bytes by dtype:\n";
    for (const auto& d : dtypes) {
      auto get = [&](const ModelStats& s) {
        auto it = s.weight_bytes_by_dtype.find(d);
        return it == s.weight_bytes_by_dtype.end() ? 0.0 : static_cast<double>(it->second);
      };
      o << "  " << pad(d, 20) << pad(human_bytes(get(r.before)), 14, true) << pad(human_bytes(get(r.after)), 14, true)
        << "\n";
    }
  }
  std::set<std::string> ops;
  for (const auto& [op, unused] : r.before.op_counts) ops.insert(op);
  for (const auto& [op, unused] : r.after.op_counts) ops.insert(op);
  std::string changed;
  for (const auto& op : ops) {
    auto get = [&](const ModelStats& s) {
      auto it = s.op_counts.find(op);
      return it == s.op_counts.end() ? int64_t{0} : it->second;
    };
    if (get(r.before) != get(r.after))
      changed += "  " + pad(op, 20) + pad(std::to_string(get(r.before)), 14, true) + pad(std::to_string(get(r.after)), 14, true) + "\n";
  }
  if (!changed.empty()) o << "\nop counts that changed:\n" << changed;
  if (!r.passes.empty()) {
    o << "\npasses:\n";
    for (const auto& p : r.passes) {
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.2fs", p.seconds);
      o << "  " << p.name << " (" << secs << "): " << counters_text(p.stats) << "\n";
      for (const auto& w : p.stats.warnings) o << "    warning: " << w << "\n";
    }
  }
  const auto rows = match_layers(r);
  const auto top = top_changes(rows, 10);
  if (!top.empty()) {
    o << "\nlayers that changed most (weight bytes, then MACs):\n";
    o << "  " << pad("layer", 36) << pad("op", 28) << pad("weights", 12, true) << pad("after", 12, true)
      << pad("MACs", 10, true) << pad("after", 10, true) << "\n";
    auto bytes = [](const std::optional<LayerStats>& s) { return s ? human_bytes(static_cast<double>(s->weight_bytes)) : "-"; };
    auto macs = [](const std::optional<LayerStats>& s) { return s ? human_count(static_cast<double>(s->macs)) : "-"; };
    for (const auto* c : top)
      o << "  " << pad(short_name(c->name, 35), 36) << pad(short_name(op_change(*c), 27), 28)
        << pad(bytes(c->before), 12, true) << pad(bytes(c->after), 12, true) << pad(macs(c->before), 10, true)
        << pad(macs(c->after), 10, true) << "\n";
  }
  if (r.verify.is_object() && r.verify.contains("error")) o << "\nverify: " << r.verify["error"].get<std::string>() << "\n";
  if (!r.verify.is_null()) {
    const Lines v = verify_lines(r.verify);
    o << "\nverify (" << r.verify.value("samples", int64_t{0}) << " samples, built-in evaluator):\n";
    o << "  " << pad(v.header[0], 28);
    for (size_t i = 1; i < v.header.size(); ++i) o << pad(v.header[i], 16, true);
    o << "\n";
    for (const auto& row : v.rows) {
      o << "  " << pad(short_name(row[0], 27), 28);
      for (size_t i = 1; i < row.size(); ++i) o << pad(row[i], 16, true);
      o << "\n";
    }
    const std::string acc = accuracy_line(r.verify);
    if (!acc.empty()) o << "  " << acc << "\n";
  }
  if (!gates_of(r.verify).empty()) {
    o << "\ngates:\n";
    for (const auto& g : gate_lines(gates_of(r.verify)).rows) o << "  " << pad(g[0], 6) << g[1] << " " << g[2] << ": " << g[3] << "\n";
  }
  const auto notes = all_assumptions(r);
  if (!notes.empty()) {
    o << "\nassumptions:\n";
    for (const auto& n : notes) o << "  " << n << "\n";
  }
  return o.str();
}

namespace {

// Markdown table cells: pipes and newlines would break the row.
std::string cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

void markdown_table(std::ostringstream& o, const Lines& t, const std::string& align) {
  o << "|";
  for (const auto& h : t.header) o << " " << h << " |";
  o << "\n" << align << "\n";
  for (const auto& row : t.rows) {
    o << "|";
    for (const auto& c : row) o << " " << cell(c) << " |";
    o << "\n";
  }
}

}  // namespace

std::string render_report_markdown(const Report& r) {
  std::ostringstream o;
  const nlohmann::json& gates = gates_of(r.verify);
  bool all_passed = true;
  for (const auto& g : gates) all_passed = all_passed && g.value("passed", false);
  const auto warnings = all_warnings(r);
  const auto notes = all_assumptions(r);
  o << "### compress: `" << r.input << "` -> " << (r.output.empty() ? "(dry run)" : "`" + r.output + "`") << "\n\n";
  o << "Pipeline: `" << (r.pipeline.empty() ? "(none)" : r.pipeline) << "`\n\n";
  for (const auto& line : assumption_headline(r.before)) o << "> **" << line << "**\n\n";
  if (!gates.empty())
    o << (all_passed ? "**Gates: all " + std::to_string(gates.size()) + " passed**"
                     : std::string("**Gates: FAILED** (see below)"))
      << "\n\n";
  if (!warnings.empty()) {
    o << "> [!WARNING]\n> " << warnings.size() << " warning(s):\n";
    for (const auto& w : warnings) o << "> - " << cell(w) << "\n";
    o << "\n";
  }
  if (!notes.empty()) {
    o << "<details><summary>Assumptions (" << notes.size() << ")</summary>\n\n";
    for (const auto& n : notes) o << "- " << cell(n) << "\n";
    o << "\n</details>\n\n";
  }
  o << "| metric | before | after | ratio |\n|---|---:|---:|---:|\n";
  for (const auto& row : summary_rows(r.before, r.after))
    o << "| " << row.label << " | " << format_value(row, row.before) << " | " << format_value(row, row.after) << " | "
      << ratio_cell(r, row) << " |\n";
  if (!r.target.empty() && r.before.predicted_latency_ms >= 0) {
    char b[32], a[32];
    std::snprintf(b, sizeof b, "%.4f", r.before.predicted_latency_ms);
    std::snprintf(a, sizeof a, "%.4f", r.after.predicted_latency_ms);
    o << "| latency (ms), predicted for " << r.target << " | " << b << " | " << a << " | "
      << ratio(r.before.predicted_latency_ms, r.after.predicted_latency_ms) << " |\n";
  }
  if (energy_gain_unclaimed(r)) o << "\n" << energy_footnote(r) << "\n";
  if (const std::string headline = latency_headline(r); !headline.empty()) o << "\n**" << headline << "**\n";
  if (!gates.empty()) {
    o << "\n#### Gates\n\n";
    Lines g = gate_lines(gates);
    for (auto& row : g.rows) row[0] = row[0] == "pass" ? "pass" : "**FAIL**";
    markdown_table(o, g, "|---|---|---:|---|");
  }
  if (!r.verify.is_null()) {
    o << "\n#### Verify (" << r.verify.value("samples", int64_t{0}) << " samples, built-in evaluator)\n\n";
    markdown_table(o, verify_lines(r.verify), "|---|---:|---:|---:|---:|");
    const std::string acc = accuracy_line(r.verify);
    if (!acc.empty()) o << "\n" << acc << "\n";
  }
  if (!r.passes.empty()) {
    o << "\n#### Passes\n\n| pass | seconds | changes | warnings |\n|---|---:|---|---:|\n";
    for (const auto& p : r.passes) {
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.2f", p.seconds);
      o << "| `" << p.name << "` | " << secs << " | " << cell(counters_text(p.stats)) << " | " << p.stats.warnings.size()
        << " |\n";
    }
  }
  const auto rows = match_layers(r);
  const auto top = top_changes(rows, 10);
  if (!top.empty()) {
    o << "\n#### Layers that changed most\n\n| layer | op | weight bytes | after | MACs | after |\n"
      << "|---|---|---:|---:|---:|---:|\n";
    auto bytes = [](const std::optional<LayerStats>& s) { return s ? human_bytes(static_cast<double>(s->weight_bytes)) : "-"; };
    auto macs = [](const std::optional<LayerStats>& s) { return s ? human_count(static_cast<double>(s->macs)) : "-"; };
    for (const auto* c : top)
      o << "| `" << cell(c->name) << "` | " << cell(op_change(*c)) << " | " << bytes(c->before) << " | "
        << bytes(c->after) << " | " << macs(c->before) << " | " << macs(c->after) << " |\n";
    o << "\n" << rows.size() << " layers in all; the JSON report (`--report-json`) lists each one.\n";
  }
  if (!r.auto_search.is_null()) o << render_auto_markdown(r.auto_search);
  o << "\nEnergy is an estimate (45 nm per-operation energies, Horowitz ISSCC 2014).\n";
  return o.str();
}

nlohmann::json inspect_to_json(const ModelStats& s) {
  nlohmann::json j = stats_to_json(s);
  j["notes"] = j["assumptions"];
  j["assumptions"] = assumptions_to_json(s);
  return j;
}

nlohmann::json model_io_to_json(const Model& model) {
  const auto& g = model.proto().graph();
  std::set<std::string> initializers;
  for (const auto& t : g.initializer()) initializers.insert(t.name());
  auto describe = [](const onnx::ValueInfoProto& v) {
    nlohmann::json shape = nullptr;
    std::string dtype = "unknown";
    if (v.type().has_tensor_type()) {
      const auto& tt = v.type().tensor_type();
      dtype = dtype_name(tt.elem_type());
      if (tt.has_shape()) {
        shape = nlohmann::json::array();
        for (const auto& d : tt.shape().dim())
          shape.push_back(d.has_dim_value()   ? nlohmann::json(d.dim_value())
                          : d.has_dim_param() ? nlohmann::json(d.dim_param())
                                              : nlohmann::json(nullptr));
      }
    } else if (v.type().has_sequence_type()) {
      dtype = "sequence";
    }
    return nlohmann::json{{"name", v.name()}, {"dtype", dtype}, {"shape", shape}};
  };
  nlohmann::json inputs = nlohmann::json::array(), outputs = nlohmann::json::array();
  for (const auto& v : g.input())
    if (!initializers.count(v.name())) inputs.push_back(describe(v));
  for (const auto& v : g.output()) outputs.push_back(describe(v));
  return {{"inputs", inputs}, {"outputs", outputs}};
}

namespace {

std::string shape_text(const nlohmann::json& shape) {
  if (!shape.is_array()) return "(unknown rank)";
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += shape[i].is_null() ? "?" : shape[i].is_string() ? shape[i].get<std::string>() : std::to_string(shape[i].get<int64_t>());
  }
  return out + "]";
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::string render_inspect_csv(const ModelStats& s) {
  std::ostringstream o;
  o << "name,op_type,params,weight_bytes,weight_share,macs,mac_share,flops,compute_dtype\n";
  for (const auto* l : sorted_layers(s)) {
    char shares[64];
    std::snprintf(shares, sizeof shares, "%.6f", share(l->weight_bytes, s.weight_bytes));
    std::string ws = shares;
    std::snprintf(shares, sizeof shares, "%.6f", share(l->macs, s.macs));
    o << csv_field(l->name) << "," << csv_field(l->op_type) << "," << l->params << "," << l->weight_bytes << "," << ws
      << "," << l->macs << "," << shares << "," << l->flops << "," << l->compute_dtype << "\n";
  }
  return o.str();
}

std::string render_inspect_text(const ModelStats& s, const nlohmann::json& io) {
  std::ostringstream o;
  const EnergyEstimate e = estimate_energy(s);
  for (const auto& line : assumption_headline(s)) o << line << "\n";
  if (io.is_object()) {
    for (const char* side : {"inputs", "outputs"})
      for (const auto& v : io[side])
        o << pad(std::string(side).substr(0, std::string(side).size() - 1), 8) << pad(v["name"].get<std::string>(), 22) << " "
          << v["dtype"].get<std::string>() << " " << shape_text(v["shape"]) << "\n";
    o << "\n";
  }
  o << pad("file size", 22) << human_bytes(static_cast<double>(s.file.bytes)) << "\n";
  o << pad(s.file.zlib_estimated ? "file size (zlib est.)" : "file size (zlib)", 22)
    << human_bytes(static_cast<double>(s.file.zlib_bytes)) << "\n";
  o << pad("params", 22) << s.params << " (" << human_count(static_cast<double>(s.params)) << ")\n";
  o << pad("weight bytes", 22) << s.weight_bytes << " (" << human_bytes(static_cast<double>(s.weight_bytes)) << ")\n";
  o << pad("MACs", 22) << s.macs << " (" << human_count(static_cast<double>(s.macs)) << ")\n";
  o << pad("FLOPs", 22) << s.flops << " (" << human_count(static_cast<double>(s.flops)) << ")\n";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f uJ (estimate)", e.total_uj());
  o << pad("energy per inference", 22) << buf << "\n";
  for (const auto& [d, b] : s.weight_bytes_by_dtype) o << "  weights " << pad(d, 12) << human_bytes(static_cast<double>(b)) << "\n";
  o << "\nlayers, largest first (MACs, then weight bytes); shares of the model's total:\n"
    << pad("layer", 40) << pad("op", 22) << pad("params", 12, true) << pad("weight bytes", 14, true)
    << pad("share", 8, true) << pad("MACs", 14, true) << pad("share", 8, true) << pad("FLOPs", 14, true) << "\n";
  for (const auto* l : sorted_layers(s))
    o << pad(short_name(l->name, 39), 40) << pad(short_name(l->op_type, 21), 22) << pad(std::to_string(l->params), 12, true)
      << pad(std::to_string(l->weight_bytes), 14, true) << pad(percent(share(l->weight_bytes, s.weight_bytes)), 8, true)
      << pad(std::to_string(l->macs), 14, true) << pad(percent(share(l->macs, s.macs)), 8, true)
      << pad(std::to_string(l->flops), 14, true) << "\n";
  o << "\nop counts:";
  for (const auto& [op, n] : s.op_counts) o << " " << op << "=" << n;
  o << "\n";
  if (!s.assumptions.empty()) {
    o << "\nassumptions:\n";
    for (const auto& a : s.assumptions) o << "  " << a << "\n";
  }
  return o.str();
}

}  // namespace compress
