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
          {std::string("file size (zlib") + (a.file.zlib_level == 6 && b.file.zlib_level == 6 ? "" : ", fast") +
               (a.file.zlib_estimated || b.file.zlib_estimated ? " est.)" : ")"),
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
  return {{"name", l.name},   {"op_type", l.op_type}, {"params", l.params}, {"weight_bytes", l.weight_bytes},
          {"macs", l.macs},   {"flops", l.flops},     {"compute_dtype", l.compute_dtype}};
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
  const bool sample = bytes > kZlibSampleAbove;
  return {bytes,
          deflate_size::deflated_size_sampled(serialized.data(), serialized.size(), level,
                                              sample ? kZlibSampleStride : 1) +
              external_bytes,
          level, sample};
}

FileSize measure_files(const std::vector<std::filesystem::path>& files, int zlib_level) {
  FileSize size;
  int64_t total = 0;
  for (const auto& f : files) {
    std::error_code ec;
    if (!f.empty()) total += static_cast<int64_t>(std::filesystem::file_size(f, ec));
  }
  size.zlib_level = zlib_level ? zlib_level : total > kZlibFastAbove ? 1 : 6;
  size.zlib_estimated = total > kZlibSampleAbove;
  const int64_t stride = size.zlib_estimated ? kZlibSampleStride : 1;
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
      size.zlib_bytes += deflate_size::deflated_size_sampled(buf.data(), got, size.zlib_level, stride);
    }
  }
  return size;
}

nlohmann::json stats_to_json(const ModelStats& s) {
  const EnergyEstimate e = estimate_energy(s);
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : s.layers) layers.push_back(layer_json(l));
  return {{"file_bytes", s.file.bytes},
          {"file_zlib_bytes", s.file.zlib_bytes},
          {"file_zlib_level", s.file.zlib_level},
          {"file_zlib_estimated", s.file.zlib_estimated},
          {"params", s.params},
          {"weight_bytes", s.weight_bytes},
          {"weight_bytes_by_dtype", s.weight_bytes_by_dtype},
          {"macs", s.macs},
          {"macs_by_dtype", s.macs_by_dtype},
          {"flops", s.flops},
          {"energy_estimate_uj", {{"compute", e.compute_uj}, {"dram_weights", e.dram_uj}, {"total", e.total_uj()}}},
          {"op_counts", s.op_counts},
          {"assumptions", s.assumptions},
          {"input_shapes", s.input_shapes},
          {"unknown_shape_nodes", s.unknown_shape_nodes},
          {"layers", layers}};
}

nlohmann::json report_to_json(const Report& r) {
  nlohmann::json before = stats_to_json(r.before), after = stats_to_json(r.after);
  // Per-layer before/after, matched by node name.
  nlohmann::json layers = nlohmann::json::array();
  std::map<std::string, const LayerStats*> after_by_name;
  for (const auto& l : r.after.layers) after_by_name[l.name] = &l;
  std::set<std::string> matched;
  auto small = [](const LayerStats& l) {
    return nlohmann::json{{"params", l.params}, {"weight_bytes", l.weight_bytes}, {"macs", l.macs}, {"flops", l.flops}};
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
  j["assumptions"] = assumptions_to_json(r.before);
  return j;
}

std::string render_report_text(const Report& r) {
  std::ostringstream o;
  o << "compress report: " << r.input << " -> " << (r.output.empty() ? "(dry run, not written)" : r.output) << "\n";
  o << "pipeline: " << (r.pipeline.empty() ? "(none: round trip)" : r.pipeline) << "\n";
  for (const auto& line : assumption_headline(r.before)) o << line << "\n";
  o << "\n";
  o << pad("", 22) << pad("before", 14, true) << pad("after", 14, true) << pad("ratio", 10, true) << "\n";
  for (const auto& row : summary_rows(r.before, r.after))
    o << pad(row.label, 22) << pad(format_value(row, row.before), 14, true) << pad(format_value(row, row.after), 14, true)
      << pad(ratio(row.before, row.after), 10, true) << "\n";
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
  for (const auto& line : assumption_headline(r.before)) o << "> **" << line << "**\n\n";
  o << "| metric | before | after | ratio |\n|---|---:|---:|---:|\n";
  for (const auto& row : summary_rows(r.before, r.after))
    o << "| " << row.label << " | " << format_value(row, row.before) << " | " << format_value(row, row.after) << " | "
      << ratio(row.before, row.after) << " |\n";
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

nlohmann::json inspect_to_json(const ModelStats& s) {
  nlohmann::json j = stats_to_json(s);
  j["notes"] = j["assumptions"];
  j["assumptions"] = assumptions_to_json(s);
  return j;
}

std::string render_inspect_text(const ModelStats& s) {
  std::ostringstream o;
  const EnergyEstimate e = estimate_energy(s);
  for (const auto& line : assumption_headline(s)) o << line << "\n";
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
