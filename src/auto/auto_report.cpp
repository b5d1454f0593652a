// Text and Markdown forms of the `compress auto` report section (its JSON is the section itself).
#include <compress/auto.h>

#include <cstdio>
#include <map>
#include <sstream>

namespace compress {

namespace {

std::string budget_text(const nlohmann::json& a) {
  const auto& b = a.at("budget");
  char buf[96];
  if (b.contains("min_cosine")) std::snprintf(buf, sizeof buf, "every output's cosine >= %g", b["min_cosine"].get<double>());
  else std::snprintf(buf, sizeof buf, "accuracy drop <= %g points", b["max_accuracy_drop"].get<double>());
  return buf;
}

std::string metrics_text(const nlohmann::json& m) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "min cosine %.6f (%s)", m.at("min_cosine").get<double>(),
                m.at("worst_output").get<std::string>().c_str());
  std::string s = buf;
  if (m.contains("accuracy_drop_points")) {
    std::snprintf(buf, sizeof buf, ", accuracy drop %.2f points", m["accuracy_drop_points"].get<double>());
    s += buf;
  }
  return s;
}

// "int8 x3, int4 x2" over the chosen column.
std::string chosen_summary(const nlohmann::json& layers, int64_t& float_layers) {
  std::map<std::string, int> counts;
  float_layers = 0;
  for (const auto& l : layers) {
    if (l["chosen"].is_null()) ++float_layers;
    else ++counts[l["chosen"].get<std::string>()];
  }
  std::string s;
  for (const auto& [name, n] : counts) s += (s.empty() ? "" : ", ") + name + " x" + std::to_string(n);
  return s.empty() ? "none" : s;
}

std::string choice_cell(const nlohmann::json& c) {
  if (c.contains("unused")) return "-";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2e", c["output_error"].get<double>());
  return buf;
}

}  // namespace

std::string render_auto_text(const nlohmann::json& a) {
  std::ostringstream o;
  const auto& s = a.at("samples");
  o << "\nauto: budget " << budget_text(a) << "; objective " << a.at("objective").get<std::string>() << "\n";
  o << "  samples: " << s["total"] << " (" << s["search"] << " search, " << s["held_out"] << " held out, "
    << s["sensitivity"] << " for sensitivity; " << s["split"].get<std::string>() << ")\n";
  if (a.contains("met")) {
    int64_t floats = 0;
    const std::string chosen = chosen_summary(a["layers"], floats);
    o << "  verdict: " << (a["met"].get<bool>() ? "budget met on the held-out samples" : "NO compressed model meets the budget")
      << "\n";
    if (a.contains("held_out")) {
      o << "  " << (a["met"].get<bool>() ? "chosen" : "least compressed candidate") << ": held out "
        << metrics_text(a["held_out"]) << "; search " << metrics_text(a["search"]) << "\n";
    }
    o << "  layers: " << chosen << ", float x" << floats << " (" << a["chosen_steps"] << " of " << a["steps"]
      << " steps, " << a["evaluations"].size() << " evaluations)\n";
  }
  o << "  sensitivity (output error = 1 - min cosine with only that layer changed; ranked by bytes saved per error):\n";
  char line[256];
  std::snprintf(line, sizeof line, "    %-40s %-14s %10s  %-9s %-9s %-9s %-9s %-9s  %s\n", "layer", "op", "params", "int8",
                "int4", "fp16", "low-rank", "prune", "chosen");
  o << line;
  size_t shown = 0;
  for (const auto& l : a.at("layers")) {
    if (++shown > 40) {
      o << "    ... " << a["layers"].size() - 40 << " more layers in the JSON report (auto.layers)\n";
      break;
    }
    const auto& c = l["choices"];
    const auto cell = [&](const char* k) { return c.contains(k) ? choice_cell(c[k]) : std::string(""); };
    std::snprintf(line, sizeof line, "    %-40s %-14s %10lld  %-9s %-9s %-9s %-9s %-9s  %s\n", l["name"].get<std::string>().c_str(),
                  l["op"].get<std::string>().c_str(), static_cast<long long>(l["params"].get<int64_t>()), cell("int8").c_str(),
                  cell("int4").c_str(), cell("fp16").c_str(), cell("low-rank").c_str(), cell("prune").c_str(),
                  l["chosen"].is_null() ? "float" : l["chosen"].get<std::string>().c_str());
    o << line;
  }
  return o.str();
}

std::string render_auto_markdown(const nlohmann::json& a) {
  std::ostringstream o;
  const auto& s = a.at("samples");
  o << "\n### auto\n\nBudget: " << budget_text(a) << " (objective " << a.at("objective").get<std::string>() << "); samples "
    << s["total"] << ": " << s["search"] << " search, " << s["held_out"] << " held out.\n\n";
  if (a.contains("met")) {
    int64_t floats = 0;
    const std::string chosen = chosen_summary(a["layers"], floats);
    o << "**" << (a["met"].get<bool>() ? "Budget met on the held-out samples" : "No compressed model meets the budget")
      << "**";
    if (a.contains("held_out")) o << ": held out " << metrics_text(a["held_out"]);
    o << ". Layers: " << chosen << ", float x" << floats << ".\n\n";
  }
  o << "| layer | op | params | int8 | int4 | fp16 | chosen |\n|---|---|---:|---:|---:|---:|---|\n";
  size_t shown = 0;
  for (const auto& l : a.at("layers")) {
    if (++shown > 20) break;
    const auto& c = l["choices"];
    const auto cell = [&](const char* k) { return c.contains(k) ? choice_cell(c[k]) : std::string(""); };
    o << "| `" << l["name"].get<std::string>() << "` | " << l["op"].get<std::string>() << " | " << l["params"] << " | "
      << cell("int8") << " | " << cell("int4") << " | " << cell("fp16") << " | "
      << (l["chosen"].is_null() ? "float" : l["chosen"].get<std::string>()) << " |\n";
  }
  return o.str();
}

}  // namespace compress
