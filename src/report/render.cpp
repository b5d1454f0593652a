// Report renderers (text for the terminal, JSON for machines, Markdown for CI job summaries) and
// file size measurement (bytes on disk and after zlib, what a release artifact costs).
#include <compress/error.h>
#include <compress/report.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

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
          {a.file.zlib_level == 6 && b.file.zlib_level == 6 ? "file size (zlib)" : "file size (zlib, fast)",
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

// The headline line when the output is predicted slower than the input on the report's target.
std::string latency_headline(const Report& r) {
  if (r.target.empty() || r.before.predicted_latency_ms <= 0 || r.after.predicted_latency_ms <= r.before.predicted_latency_ms)
    return "";
  char buf[160];
  std::snprintf(buf, sizeof buf, "WARNING: predicted SLOWER on %s: %.3fx the input's latency (%.4f -> %.4f ms)", r.target.c_str(),
                r.after.predicted_latency_ms / r.before.predicted_latency_ms, r.before.predicted_latency_ms,
                r.after.predicted_latency_ms);
  std::string line = buf;
  const auto names = slower_layers(r, 5);
  for (size_t k = 0; k < names.size(); ++k) line += (k == 0 ? "; slower layers: " : ", ") + names[k];
  return line;
}

std::vector<const LayerStats*> top_layers(const ModelStats& s, size_t n) {
  std::vector<const LayerStats*> v;
  for (const auto& l : s.layers)
    if (l.macs || l.params) v.push_back(&l);
  std::stable_sort(v.begin(), v.end(), [](const LayerStats* x, const LayerStats* y) {
    return x->macs != y->macs ? x->macs > y->macs : x->weight_bytes > y->weight_bytes;
  });
  if (v.size() > n) v.resize(n);
  return v;
}

std::string counters_text(const PassStats& stats) {
  std::string out;
  for (const auto& [k, v] : stats.counters) out += (out.empty() ? "" : ", ") + k + "=" + std::to_string(v);
  return out.empty() ? "no changes" : out;
}

}  // namespace

FileSize measure_bytes(const std::string& serialized, int64_t external_bytes, int zlib_level) {
  const auto bytes = static_cast<int64_t>(serialized.size()) + external_bytes;
  const int level = zlib_level ? zlib_level : bytes > kZlibFastAbove ? 1 : 6;
  return {bytes, deflate_size::deflated_size(serialized.data(), serialized.size(), level) + external_bytes, level};
}

FileSize measure_files(const std::vector<std::filesystem::path>& files, int zlib_level) {
  FileSize size;
  int64_t total = 0;
  for (const auto& f : files) {
    std::error_code ec;
    if (!f.empty()) total += static_cast<int64_t>(std::filesystem::file_size(f, ec));
  }
  size.zlib_level = zlib_level ? zlib_level : total > kZlibFastAbove ? 1 : 6;
  for (const auto& f : files) {
    if (f.empty()) continue;
    std::ifstream in(f, std::ios::binary);
    if (!in) throw Error(ExitCode::kWriteFailed, f.string() + ": cannot read back");
    std::error_code ec;
    const auto file_bytes = static_cast<size_t>(std::filesystem::file_size(f, ec));
    std::vector<char> buf(std::min(deflate_size::kBlockBytes, ec ? deflate_size::kBlockBytes : file_bytes + 1));
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const auto got = static_cast<size_t>(in.gcount());
      size.bytes += static_cast<int64_t>(got);
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
          {"params", s.params},
          {"weight_bytes", s.weight_bytes},
          {"weight_bytes_by_dtype", s.weight_bytes_by_dtype},
          {"macs", s.macs},
          {"macs_by_dtype", s.macs_by_dtype},
          {"flops", s.flops},
          {"energy_estimate_uj", {{"compute", e.compute_uj}, {"dram_weights", e.dram_uj}, {"dequantize_weights", e.dequantize_uj}, {"total", e.total_uj()}}},
          {"op_counts", s.op_counts},
          {"assumptions", s.assumptions},
          {"layers", layers}};
  if (s.predicted_latency_ms >= 0) j["predicted_latency_ms"] = s.predicted_latency_ms;
  return j;
}

nlohmann::json report_to_json(const Report& r) {
  nlohmann::json before = stats_to_json(r.before), after = stats_to_json(r.after);
  // Per-layer before/after, matched by node name.
  nlohmann::json layers = nlohmann::json::array();
  std::map<std::string, const LayerStats*> after_by_name;
  for (const auto& l : r.after.layers) after_by_name[l.name] = &l;
  std::set<std::string> matched;
  auto small = [](const LayerStats& l) {
    nlohmann::json j{{"params", l.params}, {"weight_bytes", l.weight_bytes}, {"macs", l.macs}, {"flops", l.flops}};
    if (l.predicted_latency_ms >= 0) j["predicted_latency_ms"] = l.predicted_latency_ms;
    return j;
  };
  for (const auto& l : r.before.layers) {
    nlohmann::json row = {{"name", l.name}, {"op_type", l.op_type}, {"before", small(l)}, {"after", nullptr}};
    auto it = after_by_name.find(l.name);
    if (it != after_by_name.end()) {
      row["after"] = small(*it->second);
      row["after_op_type"] = it->second->op_type;
      matched.insert(l.name);
    }
    layers.push_back(row);
  }
  for (const auto& l : r.after.layers)
    if (!matched.count(l.name))
      layers.push_back({{"name", l.name}, {"op_type", l.op_type}, {"before", nullptr}, {"after", small(l)}});
  before.erase("layers");
  after.erase("layers");
  nlohmann::json passes = nlohmann::json::array();
  for (const auto& p : r.passes)
    passes.push_back({{"name", p.name},
                      {"canonical", p.canonical},
                      {"seconds", p.seconds},
                      {"counters", p.stats.counters},
                      {"warnings", p.stats.warnings},
                      {"layers", p.stats.layers}});
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
  if (!r.verify.is_null()) j["verify"] = r.verify;
  if (!r.target.empty()) {
    j["target"] = r.target;
    j["ratios"]["predicted_latency"] = ratio_value(r.before.predicted_latency_ms, r.after.predicted_latency_ms);
  }
  return j;
}

std::string render_report_text(const Report& r) {
  std::ostringstream o;
  o << "compress report: " << r.input << " -> " << (r.output.empty() ? "(dry run, not written)" : r.output) << "\n";
  o << "pipeline: " << (r.pipeline.empty() ? "(none: round trip)" : r.pipeline) << "\n";
  if (const std::string headline = latency_headline(r); !headline.empty()) o << headline << "\n";
  o << "\n";
  o << pad("", 22) << pad("before", 14, true) << pad("after", 14, true) << pad("ratio", 10, true) << "\n";
  for (const auto& row : summary_rows(r.before, r.after))
    o << pad(row.label, 22) << pad(format_value(row, row.before), 14, true) << pad(format_value(row, row.after), 14, true)
      << pad(ratio(row.before, row.after), 10, true) << "\n";
  if (!r.target.empty() && r.before.predicted_latency_ms >= 0) {
    char b[32], a[32];
    std::snprintf(b, sizeof b, "%.4f", r.before.predicted_latency_ms);
    std::snprintf(a, sizeof a, "%.4f", r.after.predicted_latency_ms);
    o << pad("latency (ms)", 22) << pad(b, 14, true) << pad(a, 14, true)
      << pad(ratio(r.before.predicted_latency_ms, r.after.predicted_latency_ms), 10, true) << "  predicted for " << r.target
      << "\n";
  }
  o << "(energy: an estimate from 45 nm per-op energies, Horowitz ISSCC 2014; MACs + weights read once from DRAM)\n";
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
  const auto top = top_layers(r.after, 10);
  if (!top.empty()) {
    o << "\nlargest layers after (by MACs):\n";
    o << "  " << pad("layer", 40) << pad("op", 20) << pad("params", 10, true) << pad("weights", 12, true)
      << pad("MACs", 10, true) << "\n";
    for (const auto* l : top)
      o << "  " << pad(l->name.size() > 39 ? l->name.substr(0, 36) + "..." : l->name, 40) << pad(l->op_type, 20)
        << pad(human_count(static_cast<double>(l->params)), 10, true)
        << pad(human_bytes(static_cast<double>(l->weight_bytes)), 12, true)
        << pad(human_count(static_cast<double>(l->macs)), 10, true) << "\n";
  }
  std::set<std::string> notes(r.before.assumptions.begin(), r.before.assumptions.end());
  notes.insert(r.after.assumptions.begin(), r.after.assumptions.end());
  if (!notes.empty()) {
    o << "\nassumptions:\n";
    for (const auto& n : notes) o << "  " << n << "\n";
  }
  return o.str();
}

std::string render_report_markdown(const Report& r) {
  std::ostringstream o;
  o << "### compress: `" << r.input << "`\n\n";
  o << "Pipeline: `" << (r.pipeline.empty() ? "(none)" : r.pipeline) << "`\n\n";
  o << "| metric | before | after | ratio |\n|---|---:|---:|---:|\n";
  for (const auto& row : summary_rows(r.before, r.after))
    o << "| " << row.label << " | " << format_value(row, row.before) << " | " << format_value(row, row.after) << " | "
      << ratio(row.before, row.after) << " |\n";
  if (!r.target.empty() && r.before.predicted_latency_ms >= 0) {
    char b[32], a[32];
    std::snprintf(b, sizeof b, "%.4f", r.before.predicted_latency_ms);
    std::snprintf(a, sizeof a, "%.4f", r.after.predicted_latency_ms);
    o << "| latency (ms), predicted for " << r.target << " | " << b << " | " << a << " | "
      << ratio(r.before.predicted_latency_ms, r.after.predicted_latency_ms) << " |\n";
  }
  if (const std::string headline = latency_headline(r); !headline.empty()) o << "\n**" << headline << "**\n";
  if (!r.passes.empty()) {
    o << "\n| pass | seconds | changes |\n|---|---:|---|\n";
    for (const auto& p : r.passes) {
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.2f", p.seconds);
      o << "| `" << p.name << "` | " << secs << " | " << counters_text(p.stats) << " |\n";
    }
  }
  if (!r.verify.is_null()) o << "\nVerification:\n\n```json\n" << r.verify.dump(2) << "\n```\n";
  o << "\nEnergy is an estimate (45 nm per-operation energies, Horowitz ISSCC 2014).\n";
  return o.str();
}

nlohmann::json inspect_to_json(const ModelStats& s) { return stats_to_json(s); }

std::string render_inspect_text(const ModelStats& s) {
  std::ostringstream o;
  const EnergyEstimate e = estimate_energy(s);
  o << pad("file size", 22) << human_bytes(static_cast<double>(s.file.bytes)) << "\n";
  o << pad("file size (zlib)", 22) << human_bytes(static_cast<double>(s.file.zlib_bytes)) << "\n";
  o << pad("params", 22) << s.params << " (" << human_count(static_cast<double>(s.params)) << ")\n";
  o << pad("weight bytes", 22) << s.weight_bytes << " (" << human_bytes(static_cast<double>(s.weight_bytes)) << ")\n";
  o << pad("MACs", 22) << s.macs << " (" << human_count(static_cast<double>(s.macs)) << ")\n";
  o << pad("FLOPs", 22) << s.flops << " (" << human_count(static_cast<double>(s.flops)) << ")\n";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f uJ (estimate)", e.total_uj());
  o << pad("energy per inference", 22) << buf << "\n";
  for (const auto& [d, b] : s.weight_bytes_by_dtype) o << "  weights " << pad(d, 12) << human_bytes(static_cast<double>(b)) << "\n";
  o << "\n" << pad("layer", 40) << pad("op", 16) << pad("params", 12, true) << pad("weight bytes", 14, true)
    << pad("MACs", 14, true) << pad("FLOPs", 14, true) << "\n";
  for (const auto& l : s.layers)
    o << pad(l.name.size() > 39 ? l.name.substr(0, 36) + "..." : l.name, 40) << pad(l.op_type, 16)
      << pad(std::to_string(l.params), 12, true) << pad(std::to_string(l.weight_bytes), 14, true)
      << pad(std::to_string(l.macs), 14, true) << pad(std::to_string(l.flops), 14, true) << "\n";
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
