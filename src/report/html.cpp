// The HTML report: one self-contained page (inline CSS, inline SVG charts, a few lines of script that
// sort the layer table; no fonts, scripts or images from the network), so it works offline and as a
// CI artifact. It renders the JSON report rather than the in-memory Report, so every producer of
// that JSON (`compress`, `compress inspect`, a future `compress auto`) gets the same page, and keys
// added to the JSON later (a layer's "predicted_latency_ms") appear as soon as they are present.
#include <compress/report.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace compress {

namespace {

using nlohmann::json;

std::string esc(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string human(double v, bool bytes) {
  const char* count_units[] = {"", "K", "M", "G", "T"};
  const char* byte_units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  const double step = bytes ? 1024 : 1000;
  int u = 0;
  while (std::fabs(v) >= step && u < 4) v /= step, ++u;
  char buf[48];
  if (bytes) std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", v, byte_units[u]);
  else std::snprintf(buf, sizeof buf, u ? "%.2f%s" : "%.4g%s", v, count_units[u]);
  return buf;
}

// A number from JSON: numbers as they are, "Infinity"/"NaN" text as such, anything else absent.
bool number_of(const json& v, double& out) {
  if (v.is_number()) {
    out = v.get<double>();
    return true;
  }
  if (v.is_string() && v.get<std::string>() == "Infinity") {
    out = INFINITY;
    return true;
  }
  return false;
}

std::string metric_text(const json& v) {
  double d = 0;
  if (v.is_string()) return v.get<std::string>();
  if (!number_of(v, d)) return "-";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.6g", d);
  return buf;
}

// One per-layer quantity: how to read it from a layer side ({"params", "macs", ...}) and show it.
struct Measure {
  std::string key;    // JSON key in a layer's before/after object
  std::string title;  // chart and column title
  bool bytes = false;
  int digits = -1;  // >= 0: fixed decimals (milliseconds), else human counts
};

std::string show(const Measure& m, double v) { return m.digits >= 0 ? fixed(v, m.digits) : human(v, m.bytes); }

// A table cell whose sort key is a number (data-v) and whose text is formatted.
std::string num_cell(double v, const std::string& text) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.17g", std::isfinite(v) ? v : (v > 0 ? 1e308 : -1e308));
  return "<td class=\"n\" data-v=\"" + std::string(buf) + "\">" + esc(text) + "</td>";
}
std::string empty_cell() { return "<td class=\"n\" data-v=\"-1e308\">-</td>"; }

struct Bar {
  std::string label;
  std::string tip;
  double before = 0, after = 0;
  bool has_before = false, has_after = false;
};

// Horizontal bars, one row per layer: before (grey) above after (blue), on one linear scale.
std::string bar_chart(const std::string& id, const std::string& title, const std::string& note,
                      const std::vector<Bar>& bars, const Measure& m, bool paired) {
  const int label_w = 260, bar_w = 520, value_w = 170, row_h = paired ? 22 : 16, top = 24;
  const int width = label_w + bar_w + value_w, height = top + row_h * static_cast<int>(bars.size()) + 8;
  double max = 0;
  for (const auto& b : bars) max = std::max({max, b.has_before ? b.before : 0.0, b.has_after ? b.after : 0.0});
  if (!(max > 0)) max = 1;
  std::ostringstream o;
  o << "<figure class=\"chart\" id=\"" << esc(id) << "\"><figcaption>" << esc(title) << " <span class=\"note\">"
    << esc(note) << "</span></figcaption>\n";
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height << "\" aria-label=\"" << esc(title) << "\">\n";
  if (paired)
    o << "<rect x=\"" << label_w << "\" y=\"6\" width=\"10\" height=\"10\" class=\"before\"/><text x=\""
      << label_w + 14 << "\" y=\"15\" class=\"legend\">before</text><rect x=\"" << label_w + 70
      << "\" y=\"6\" width=\"10\" height=\"10\" class=\"after\"/><text x=\"" << label_w + 84
      << "\" y=\"15\" class=\"legend\">after</text>\n";
  for (size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    const int y = top + row_h * static_cast<int>(i);
    const std::string label = b.label.size() > 40 ? b.label.substr(0, 37) + "..." : b.label;
    o << "<g><title>" << esc(b.tip) << "</title><text x=\"" << label_w - 6 << "\" y=\"" << y + row_h / 2 + 4
      << "\" class=\"label\">" << esc(label) << "</text>";
    auto rect = [&](double v, int dy, int h, const char* cls) {
      const double w = std::max(v > 0 ? 1.0 : 0.0, bar_w * v / max);
      o << "<rect x=\"" << label_w << "\" y=\"" << y + dy << "\" width=\"" << fixed(w, 1) << "\" height=\"" << h
        << "\" class=\"" << cls << "\"/>";
    };
    std::string value;
    if (paired) {
      if (b.has_before) rect(b.before, 2, 8, "before");
      if (b.has_after) rect(b.after, 11, 8, "after");
      value = (b.has_before ? show(m, b.before) : "-") + " \xe2\x86\x92 " + (b.has_after ? show(m, b.after) : "-");
    } else {
      rect(b.after, 3, 10, "after");
      value = show(m, b.after);
    }
    o << "<text x=\"" << label_w + bar_w + 6 << "\" y=\"" << y + row_h / 2 + 4 << "\" class=\"value\">" << esc(value)
      << "</text></g>\n";
  }
  o << "</svg></figure>\n";
  return o.str();
}

constexpr size_t kChartRows = 40;

const char* kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.sub{color:#57606a;margin:0 0 4px;word-break:break-all}code{background:#f6f8fa;padding:1px 4px;border-radius:4px;font-size:12px}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.sortable th{cursor:pointer;user-select:none}table.sortable th[data-dir=asc]::after{content:" \25B2"}table.sortable th[data-dir=desc]::after{content:" \25BC"}
.box{border-radius:6px;padding:8px 12px;margin:10px 0}.warn{background:#fff8c5;border:1px solid #d4a72c}.fail{background:#ffebe9;border:1px solid #cf222e}
.ok{background:#dafbe1;border:1px solid #2da44e}.info{background:#f6f8fa;border:1px solid #d0d7de}
.pass{color:#1a7f37;font-weight:600}.FAIL{color:#cf222e;font-weight:600}
figure.chart{margin:12px 0;overflow-x:auto}figcaption{font-weight:600;margin-bottom:4px}.note{font-weight:400;color:#57606a}
svg text{font:11px system-ui,sans-serif;fill:#1b1f24}svg .label{text-anchor:end}svg .value,svg .legend{fill:#57606a}
svg .before{fill:#afb8c1}svg .after{fill:#0969da}
.scroll{overflow-x:auto}#layers td{font-size:12px}
)";

// Sorts a table.sortable by the clicked column: numbers by data-v, text otherwise.
const char* kScript = R"(
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
    var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows),asc=th.getAttribute('data-dir')!=='asc';
    t.querySelectorAll('th').forEach(function(h){h.removeAttribute('data-dir')});th.setAttribute('data-dir',asc?'asc':'desc');
    rows.sort(function(x,y){var a=x.cells[i],b=y.cells[i],va=a.getAttribute('data-v'),vb=b.getAttribute('data-v');
      var r=(va!==null&&vb!==null)?parseFloat(va)-parseFloat(vb):a.textContent.localeCompare(b.textContent);return asc?r:-r;});
    rows.forEach(function(r){body.appendChild(r)});});});});
)";

std::string page_start(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>" +
         esc(title) + "</title><style>" + kStyle + "</style></head><body>\n";
}

std::string page_end() { return std::string("<script>") + kScript + "</script>\n</body></html>\n"; }

std::string list_box(const std::string& cls, const std::string& heading, const std::vector<std::string>& items,
                     bool collapsed) {
  if (items.empty()) return "";
  std::ostringstream o;
  o << "<div class=\"box " << cls << "\">";
  if (collapsed) o << "<details><summary><b>" << esc(heading) << "</b></summary>";
  else o << "<b>" << esc(heading) << "</b>";
  o << "<ul>";
  for (const auto& i : items) o << "<li>" << esc(i) << "</li>";
  o << "</ul>" << (collapsed ? "</details>" : "") << "</div>\n";
  return o.str();
}

std::vector<std::string> strings_of(const json& v) {
  std::vector<std::string> out;
  if (v.is_array())
    for (const auto& s : v)
      if (s.is_string()) out.push_back(s.get<std::string>());
  return out;
}

// Headline rows: label, JSON path in before/after, bytes?
struct Headline {
  std::string label;
  std::vector<std::string> path;
  bool bytes;
};

const std::vector<Headline>& headlines() {
  static const std::vector<Headline> rows = {
      {"file size", {"file_bytes"}, true},
      {"file size (zlib)", {"file_zlib_bytes"}, true},
      {"params", {"params"}, false},
      {"weight bytes", {"weight_bytes"}, true},
      {"MACs", {"macs"}, false},
      {"FLOPs", {"flops"}, false},
      {"energy estimate (uJ)", {"energy_estimate_uj", "total"}, false},
      {"predicted latency (ms)", {"predicted_latency_ms"}, false}};
  return rows;
}

const json* at_path(const json& j, const std::vector<std::string>& path) {
  const json* cur = &j;
  for (const auto& k : path) {
    if (!cur->is_object() || !cur->contains(k)) return nullptr;
    cur = &(*cur)[k];
  }
  return cur;
}

// Quantization (or pruning) error per layer name, from the passes' per-tensor records: a record
// names its layers in "nodes", or is named after its layer. The largest error of a layer wins.
std::map<std::string, std::pair<double, double>> layer_errors(const json& passes) {
  std::map<std::string, std::pair<double, double>> out;  // name -> (relative_l2, sqnr_db or NaN)
  if (!passes.is_array()) return out;
  for (const auto& p : passes) {
    if (!p.contains("layers") || !p["layers"].is_array()) continue;
    for (const auto& rec : p["layers"]) {
      double rel = 0;
      if (!rec.is_object() || !rec.contains("relative_l2") || !number_of(rec["relative_l2"], rel)) continue;
      double sqnr = NAN;
      if (rec.contains("sqnr_db")) number_of(rec["sqnr_db"], sqnr);
      std::vector<std::string> names = strings_of(rec.value("nodes", json()));
      if (names.empty() && rec.contains("name") && rec["name"].is_string()) names.push_back(rec["name"].get<std::string>());
      for (const auto& n : names) {
        auto it = out.find(n);
        if (it == out.end() || rel > it->second.first) out[n] = {rel, sqnr};
      }
    }
  }
  return out;
}

bool any_layer_has(const json& layers, const std::string& key) {
  for (const auto& l : layers)
    for (const char* side : {"before", "after"})
      if (l.contains(side) && l[side].is_object() && l[side].contains(key)) return true;
  return false;
}

double side_value(const json& layer, const char* side, const std::string& key, bool& present) {
  double v = 0;
  present = layer.contains(side) && layer[side].is_object() && layer[side].contains(key) &&
            number_of(layer[side][key], v);
  return present ? v : 0;
}

// `compress auto`: the verdict, the budget and split, and the ranked sensitivity table.
std::string auto_section(const json& a) {
  std::ostringstream o;
  o << "<h2>auto</h2>\n";
  if (a.contains("met")) {
    const bool met = a["met"].get<bool>();
    o << "<div class=\"box " << (met ? "ok" : "fail") << "\" id=\"auto-verdict\"><b>"
      << (met ? "Budget met on the held-out samples" : "No compressed model meets the budget") << "</b></div>\n";
  }
  o << "<p class=\"sub\">budget <code>" << esc(a.value("budget", json::object()).dump()) << "</code>, samples <code>"
    << esc(a.value("samples", json::object()).dump()) << "</code></p>\n";
  for (const char* part : {"held_out", "search"})
    if (a.contains(part))
      o << "<p class=\"sub\">" << part << ": <code>" << esc(a[part].dump()) << "</code></p>\n";
  const std::vector<std::string> kinds = {"int8", "int4", "fp16", "low-rank", "prune"};
  o << "<div class=\"scroll\"><table class=\"sortable\" id=\"auto-layers\"><thead><tr><th>#</th><th>layer</th><th>op</th>"
       "<th>params</th>";
  for (const auto& k : kinds) o << "<th>" << esc(k) << " error</th>";
  o << "<th>chosen</th></tr></thead><tbody>\n";
  size_t rank = 0;
  for (const auto& l : a.value("layers", json::array())) {
    double params = 0;
    number_of(l.value("params", json()), params);
    ++rank;
    o << "<tr>" << num_cell(static_cast<double>(rank), std::to_string(rank)) << "<td>" << esc(l.value("name", std::string()))
      << "</td><td>" << esc(l.value("op", std::string())) << "</td>" << num_cell(params, human(params, false));
    const json& choices = l.value("choices", json::object());
    for (const auto& k : kinds) {
      double e = 0;
      if (choices.contains(k) && choices[k].contains("output_error") && number_of(choices[k]["output_error"], e)) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2e", e);
        o << num_cell(e, buf);
      } else {
        o << empty_cell();
      }
    }
    o << "<td>" << esc(l["chosen"].is_string() ? l["chosen"].get<std::string>() : "float") << "</td></tr>\n";
  }
  o << "</tbody></table></div>\n";
  return o.str();
}

}  // namespace

std::string render_report_html(const json& r) {
  const json& layers = r.contains("layers") && r["layers"].is_array() ? r["layers"] : json::array();
  const json& passes = r.contains("passes") ? r["passes"] : json::array();
  const json& before = r.value("before", json::object());
  const json& after = r.value("after", json::object());
  const std::string input = r.value("input", std::string());
  const std::string output = r.contains("output") && r["output"].is_string() ? r["output"].get<std::string>() : "";
  std::ostringstream o;
  o << page_start("compress report: " + input);
  o << "<h1>compress report</h1>\n<p class=\"sub\"><code>" << esc(input) << "</code> \xe2\x86\x92 "
    << (output.empty() ? "(dry run, not written)" : "<code>" + esc(output) + "</code>") << "</p>\n";
  o << "<p class=\"sub\">pipeline: <code>" << esc(r.value("pipeline", std::string()).empty() ? "(none: round trip)" : r.value("pipeline", std::string()))
    << "</code></p>\n";

  // What needs attention first: failed gates, warnings, assumptions.
  const json& gates = r.contains("verify") && r["verify"].is_object() && r["verify"].contains("gates") &&
                              r["verify"]["gates"].is_array()
                          ? r["verify"]["gates"]
                          : json::array();
  if (!gates.empty()) {
    size_t failed = 0;
    for (const auto& g : gates) failed += !g.value("passed", false);
    o << "<div class=\"box " << (failed ? "fail" : "ok") << "\" id=\"gate-verdict\"><b>"
      << (failed ? "Gates: " + std::to_string(failed) + " of " + std::to_string(gates.size()) + " FAILED"
                 : "Gates: all " + std::to_string(gates.size()) + " passed")
      << "</b></div>\n";
  }
  std::vector<std::string> warnings;
  for (const auto& p : passes)
    for (const auto& w : strings_of(p.value("warnings", json()))) warnings.push_back(p.value("name", std::string()) + ": " + w);
  o << list_box("warn", std::to_string(warnings.size()) + " warning(s)", warnings, false);
  std::set<std::string> notes;
  for (const json* side : {&before, &after})
    for (const auto& a : strings_of(side->value("assumptions", json()))) notes.insert(a);
  o << list_box("info", std::to_string(notes.size()) + " assumption(s)", {notes.begin(), notes.end()}, notes.size() > 8);

  o << "<h2>Before and after</h2>\n<table id=\"headline\"><thead><tr><th>metric</th><th>before</th><th>after</th>"
       "<th>ratio</th></tr></thead><tbody>\n";
  for (const auto& h : headlines()) {
    const json* b = at_path(before, h.path);
    const json* a = at_path(after, h.path);
    double bv = 0, av = 0;
    if (!b || !a || !number_of(*b, bv) || !number_of(*a, av)) continue;
    std::string rt = bv == 0 ? (av == 0 ? "1.000x" : "n/a") : fixed(av / bv, 3) + "x";
    // An energy count the report does not claim as a gain (render.cpp, energy_gain_unclaimed).
    if (h.path.front() == "energy_estimate_uj" && av < bv && !r.value("energy_gain_claimed", true)) rt += "*";
    const bool energy = h.path.front() == "energy_estimate_uj" || h.path.front() == "predicted_latency_ms";
    o << "<tr><td>" << esc(h.label) << "</td><td class=\"n\">" << (energy ? fixed(bv, 3) : human(bv, h.bytes))
      << "</td><td class=\"n\">" << (energy ? fixed(av, 3) : human(av, h.bytes)) << "</td><td class=\"n\">" << rt
      << "</td></tr>\n";
  }
  o << "</tbody></table>\n";
  const json ratios = r.value("ratios", json::object());
  if (!r.value("energy_gain_claimed", true) && ratios.value("energy", 1.0) < 1.0)
    o << "<p class=\"sub\">* energy: a per-op count, not a gain on " << esc(r.value("target", std::string()))
      << ", where the output is not predicted faster (a CPU's energy follows its run time)</p>\n";

  if (!gates.empty()) {
    o << "<h2>Gates</h2>\n<table id=\"gates\"><thead><tr><th>verdict</th><th>gate</th><th>limit</th><th>measured</th>"
         "</tr></thead><tbody>\n";
    for (const auto& g : gates) {
      const bool ok = g.value("passed", false);
      const std::string output = g.contains("output") && g["output"].is_string() ? "output '" + g["output"].get<std::string>() + "'" : "";
      o << "<tr><td class=\"" << (ok ? "pass" : "FAIL") << "\">" << (ok ? "pass" : "FAIL") << "</td><td><code>--"
        << esc(g.value("gate", std::string())) << "</code></td><td class=\"n\">"
        << esc(metric_text(g.value("threshold", json()))) << "</td><td>" << esc(output) << " "
        << esc(metric_text(g.value("value", json()))) << "</td></tr>\n";
    }
    o << "</tbody></table>\n";
  }
  if (r.contains("verify") && r["verify"].is_object()) {
    const json& v = r["verify"];
    o << "<h2>Verify</h2>\n<p>" << v.value("samples", int64_t{0})
      << " samples through the built-in evaluator, input model vs output model.</p>\n<table id=\"verify\"><thead><tr>"
         "<th>output</th><th>cosine</th><th>SNR dB</th><th>max abs err</th><th>top-1 agreement</th></tr></thead><tbody>\n";
    if (v.contains("outputs"))
      for (const auto& [name, m] : v["outputs"].items())
        o << "<tr><td>" << esc(name) << "</td><td class=\"n\">" << esc(metric_text(m.value("cosine", json())))
          << "</td><td class=\"n\">" << esc(metric_text(m.value("snr_db", json()))) << "</td><td class=\"n\">"
          << esc(metric_text(m.value("max_abs_err", json()))) << "</td><td class=\"n\">"
          << esc(metric_text(m.value("top1_agreement", json()))) << "</td></tr>\n";
    o << "</tbody></table>\n";
    if (v.contains("accuracy")) {
      const json& a = v["accuracy"];
      o << "<p>accuracy: reference " << fixed(a.value("reference", 0.0) * 100, 2) << "%, candidate "
        << fixed(a.value("candidate", 0.0) * 100, 2) << "%, drop " << fixed(a.value("drop_points", 0.0), 2)
        << " points</p>\n";
    }
  }

  // Per-layer charts, before vs after, largest first.
  std::vector<Measure> measures = {{"weight_bytes", "Weight bytes", true}, {"macs", "MACs", false}};
  if (any_layer_has(layers, "predicted_latency_ms"))
    measures.push_back({"predicted_latency_ms", "Predicted latency (ms)", false, 4});
  o << "<h2>Per layer</h2>\n";
  for (const auto& m : measures) {
    std::vector<std::pair<double, Bar>> ranked;
    for (const auto& l : layers) {
      Bar b;
      b.label = l.value("name", std::string());
      b.before = side_value(l, "before", m.key, b.has_before);
      b.after = side_value(l, "after", m.key, b.has_after);
      if (!(b.before > 0 || b.after > 0)) continue;
      b.tip = b.label + " (" + l.value("op_type", std::string()) +
              (l.contains("after_op_type") && l["after_op_type"] != l["op_type"]
                   ? " -> " + l["after_op_type"].get<std::string>()
                   : std::string()) +
              "): " + (b.has_before ? show(m, b.before) : "-") + " -> " + (b.has_after ? show(m, b.after) : "-");
      ranked.push_back({std::max(b.before, b.after), b});
    }
    std::stable_sort(ranked.begin(), ranked.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    const size_t total = ranked.size();
    if (ranked.size() > kChartRows) ranked.resize(kChartRows);
    std::vector<Bar> bars;
    for (auto& [unused, b] : ranked) bars.push_back(b);
    const std::string note = total > kChartRows ? "(largest " + std::to_string(kChartRows) + " of " +
                                                      std::to_string(total) + " layers; the table lists all)"
                                                : "(" + std::to_string(total) + " layers)";
    if (!bars.empty()) o << bar_chart("chart-" + m.key, m.title + ", before vs after", note, bars, m, true);
  }
  const auto errors = layer_errors(passes);
  {
    std::vector<Bar> bars;
    for (const auto& l : layers) {
      const std::string name = l.value("name", std::string());
      auto it = errors.find(name);
      if (it == errors.end()) continue;
      Bar b;
      b.label = name;
      b.after = it->second.first;
      b.has_after = true;
      b.tip = name + ": relative L2 error " + fixed(it->second.first, 6) +
              (std::isnan(it->second.second) ? "" : ", SQNR " + fixed(it->second.second, 1) + " dB");
      bars.push_back(b);
    }
    std::stable_sort(bars.begin(), bars.end(), [](const Bar& x, const Bar& y) { return x.after > y.after; });
    const size_t total = bars.size();
    if (bars.size() > kChartRows) bars.resize(kChartRows);
    if (!bars.empty())
      o << bar_chart("chart-error", "Weight error (relative L2, from the passes' records)",
                     total > kChartRows ? "(largest " + std::to_string(kChartRows) + " of " + std::to_string(total) + ")"
                                        : "(" + std::to_string(total) + " layers)",
                     bars, {"relative_l2", "relative L2", false, 5}, false);
  }

  // Every layer, sortable.
  const bool latency = any_layer_has(layers, "predicted_latency_ms");
  o << "<h2>All " << layers.size() << " layers</h2>\n<p class=\"note\">Click a column to sort. A layer after is the "
       "sum of every node the passes made from it (see <code>nodes after</code>).</p>\n"
       "<div class=\"scroll\"><table class=\"sortable\" id=\"layers\"><thead><tr><th>#</th><th>layer</th><th>op</th>"
       "<th>op after</th><th>params</th><th>params after</th><th>weight bytes</th><th>after</th><th>MACs</th>"
       "<th>after</th><th>FLOPs</th><th>after</th>";
  if (latency) o << "<th>latency ms</th><th>after</th>";
  o << "<th>rel. L2 error</th><th>SQNR dB</th><th>nodes after</th></tr></thead><tbody>\n";
  int index = 0;
  for (const auto& l : layers) {
    const std::string name = l.value("name", std::string());
    o << "<tr>" << num_cell(index, std::to_string(index)) << "<td>" << esc(name) << "</td><td>"
      << esc(l.value("op_type", std::string())) << "</td><td>"
      << esc(l.contains("removed_by") ? "(removed by " + l["removed_by"].get<std::string>() + ")"
                                      : l.value("after_op_type", std::string()))
      << "</td>";
    ++index;
    std::vector<Measure> cols = {{"params", "", false}, {"weight_bytes", "", true}, {"macs", "", false}, {"flops", "", false}};
    if (latency) cols.push_back({"predicted_latency_ms", "", false, 4});
    for (const auto& m : cols)
      for (const char* side : {"before", "after"}) {
        bool present = false;
        const double v = side_value(l, side, m.key, present);
        o << (present ? num_cell(v, show(m, v)) : empty_cell());
      }
    auto it = errors.find(name);
    if (it != errors.end()) {
      o << num_cell(it->second.first, fixed(it->second.first, 6));
      o << (std::isnan(it->second.second) ? empty_cell() : num_cell(it->second.second, fixed(it->second.second, 1)));
    } else {
      o << empty_cell() << empty_cell();
    }
    std::string nodes;
    for (const auto& n : strings_of(l.value("after_nodes", json()))) nodes += (nodes.empty() ? "" : ", ") + n;
    o << "<td>" << esc(nodes) << "</td></tr>\n";
  }
  o << "</tbody></table></div>\n";

  if (r.contains("auto") && r["auto"].is_object()) o << auto_section(r["auto"]);

  if (!passes.empty()) {
    o << "<h2>Passes</h2>\n";
    for (const auto& p : passes) {
      double secs = 0;
      number_of(p.value("seconds", json()), secs);
      o << "<h3><code>" << esc(p.value("name", std::string())) << "</code> <span class=\"note\">" << fixed(secs, 2)
        << " s</span></h3>\n<p class=\"sub\"><code>" << esc(p.value("canonical", std::string())) << "</code></p>\n";
      const json& counters = p.value("counters", json::object());
      if (counters.empty()) {
        o << "<p>no changes</p>\n";
      } else {
        o << "<table class=\"counters\"><thead><tr><th>counter</th><th>value</th></tr></thead><tbody>";
        for (const auto& [k, v] : counters.items()) o << "<tr><td>" << esc(k) << "</td><td class=\"n\">" << esc(v.dump()) << "</td></tr>";
        o << "</tbody></table>\n";
      }
      o << list_box("warn", "warnings", strings_of(p.value("warnings", json())), false);
    }
  }
  o << "<p class=\"note\">Energy is an estimate (45 nm per-operation energies, Horowitz ISSCC 2014). "
       "Generated by compress; self-contained, no network access needed.</p>\n";
  o << page_end();
  return o.str();
}

std::string render_inspect_html(const json& s) {
  const json& layers = s.contains("layers") && s["layers"].is_array() ? s["layers"] : json::array();
  std::ostringstream o;
  const std::string input = s.value("input", std::string());
  o << page_start("compress inspect: " + input);
  o << "<h1>compress inspect</h1>\n<p class=\"sub\"><code>" << esc(input) << "</code></p>\n";
  o << list_box("info", std::to_string(strings_of(s.value("assumptions", json())).size()) + " assumption(s)",
                strings_of(s.value("assumptions", json())), strings_of(s.value("assumptions", json())).size() > 8);
  o << "<h2>Model</h2>\n<table id=\"headline\"><tbody>\n";
  for (const auto& h : headlines()) {
    const json* v = at_path(s, h.path);
    double d = 0;
    if (!v || !number_of(*v, d)) continue;
    const bool plain = h.path.front() == "energy_estimate_uj" || h.path.front() == "predicted_latency_ms";
    o << "<tr><td>" << esc(h.label) << "</td><td class=\"n\">" << (plain ? fixed(d, 3) : human(d, h.bytes)) << "</td></tr>\n";
  }
  o << "</tbody></table>\n";
  for (const char* side : {"inputs", "outputs"}) {
    if (!s.contains(side)) continue;
    o << "<h2>" << (std::string(side) == "inputs" ? "Inputs" : "Outputs") << "</h2>\n<table><thead><tr><th>name</th>"
      << "<th>dtype</th><th>shape</th></tr></thead><tbody>";
    for (const auto& v : s[side]) {
      std::string shape = v["shape"].is_array() ? "[" : "(unknown rank)";
      if (v["shape"].is_array()) {
        for (size_t i = 0; i < v["shape"].size(); ++i)
          shape += (i ? ", " : "") + (v["shape"][i].is_null() ? std::string("?")
                                      : v["shape"][i].is_string() ? v["shape"][i].get<std::string>()
                                                                  : std::to_string(v["shape"][i].get<int64_t>()));
        shape += "]";
      }
      o << "<tr><td>" << esc(v.value("name", std::string())) << "</td><td>" << esc(v.value("dtype", std::string()))
        << "</td><td>" << esc(shape) << "</td></tr>";
    }
    o << "</tbody></table>\n";
  }
  const double total_bytes = s.value("weight_bytes", 0.0), total_macs = s.value("macs", 0.0);
  std::vector<Measure> measures = {{"weight_bytes", "Weight bytes", true}, {"macs", "MACs", false}};
  const bool latency = std::any_of(layers.begin(), layers.end(), [](const json& l) { return l.contains("predicted_latency_ms"); });
  if (latency) measures.push_back({"predicted_latency_ms", "Predicted latency (ms)", false, 4});
  o << "<h2>Per layer</h2>\n";
  for (const auto& m : measures) {
    std::vector<Bar> bars;
    for (const auto& l : layers) {
      double v = 0;
      if (!l.contains(m.key) || !number_of(l[m.key], v) || !(v > 0)) continue;
      Bar b;
      b.label = l.value("name", std::string());
      b.after = v;
      b.has_after = true;
      b.tip = b.label + " (" + l.value("op_type", std::string()) + "): " + show(m, v);
      bars.push_back(b);
    }
    std::stable_sort(bars.begin(), bars.end(), [](const Bar& x, const Bar& y) { return x.after > y.after; });
    const size_t total = bars.size();
    if (bars.size() > kChartRows) bars.resize(kChartRows);
    if (!bars.empty())
      o << bar_chart("chart-" + m.key, m.title,
                     total > kChartRows ? "(largest " + std::to_string(kChartRows) + " of " + std::to_string(total) +
                                              " layers; the table lists all)"
                                        : "(" + std::to_string(total) + " layers)",
                     bars, m, false);
  }
  o << "<h2>All " << layers.size() << " layers</h2>\n<p class=\"note\">Click a column to sort.</p>\n"
       "<div class=\"scroll\"><table class=\"sortable\" id=\"layers\"><thead><tr><th>#</th><th>layer</th><th>op</th>"
       "<th>params</th><th>weight bytes</th><th>share</th><th>MACs</th><th>share</th><th>FLOPs</th><th>compute</th>";
  if (latency) o << "<th>latency ms</th>";
  o << "</tr></thead><tbody>\n";
  int index = 0;
  for (const auto& l : layers) {
    const double bytes = l.value("weight_bytes", 0.0), macs = l.value("macs", 0.0);
    o << "<tr>" << num_cell(index, std::to_string(index)) << "<td>" << esc(l.value("name", std::string())) << "</td><td>"
      << esc(l.value("op_type", std::string())) << "</td>" << num_cell(l.value("params", 0.0), human(l.value("params", 0.0), false))
      << num_cell(bytes, human(bytes, true)) << num_cell(total_bytes ? bytes / total_bytes : 0, fixed(total_bytes ? 100 * bytes / total_bytes : 0, 1) + "%")
      << num_cell(macs, human(macs, false)) << num_cell(total_macs ? macs / total_macs : 0, fixed(total_macs ? 100 * macs / total_macs : 0, 1) + "%")
      << num_cell(l.value("flops", 0.0), human(l.value("flops", 0.0), false)) << "<td>" << esc(l.value("compute_dtype", std::string()))
      << "</td>";
    if (latency) {
      double v = 0;
      o << (l.contains("predicted_latency_ms") && number_of(l["predicted_latency_ms"], v) ? num_cell(v, fixed(v, 4)) : empty_cell());
    }
    o << "</tr>\n";
    ++index;
  }
  o << "</tbody></table></div>\n";
  o << page_end();
  return o.str();
}

}  // namespace compress
