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

// The output error, or why the choice is not used: "slower" (predicted slower on the target),
// "more-uJ", "no-saving", "-" (the pass refused it).
std::string choice_cell(const nlohmann::json& c) {
  if (c.contains("unused")) {
    const std::string why = c["unused"].get<std::string>();
    if (why == "predicted_slower") return "slower";
    if (why == "more_energy") return "more-uJ";
    if (why == "no_saving") return "no-saving";
    return "-";
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2e", c["output_error"].get<double>());
  return buf;
}

std::string objective_text(const nlohmann::json& a) {
  const std::string objective = a.at("objective").get<std::string>();
  return objective == "size" ? objective : objective + " on " + a.value("target", std::string("?"));
}

// "0.8977 -> 0.7012 ms (0.781x)" for the float and the chosen model, empty when not measured.
std::string cost_text(const nlohmann::json& a) {
  if (!a.contains("objective_cost") || !a["objective_cost"].contains("chosen")) return "";
  const double before = a["objective_cost"]["float"].get<double>(), after = a["objective_cost"]["chosen"].get<double>();
  char buf[128];
  std::snprintf(buf, sizeof buf, "%.6g -> %.6g %s (%.3fx)", before, after, a.value("saving_unit", std::string()).c_str(),
                before > 0 ? after / before : 0.0);
  return buf;
}

}  // namespace

std::string render_auto_text(const nlohmann::json& a) {
  std::ostringstream o;
  const auto& s = a.at("samples");
  o << "\nauto: budget " << budget_text(a) << "; objective " << objective_text(a) << "\n";
  o << "  samples: " << s["total"] << " (" << s["search"] << " search, " << s["held_out"] << " held out, "
    << s["sensitivity"] << " for sensitivity; " << s["split"].get<std::string>() << ")\n";
  if (s.contains("calibration")) {
    const auto& c = s["calibration"];
    if (c.contains("refused"))
      o << "  int8-static unusable, low-rank and prune without samples: " << c["refused"].get<std::string>() << "\n";
    else o << "  samples for int8-static, low-rank and prune: the " << c["samples"] << " search samples, in "
           << c["dir"].get<std::string>() << " when chosen\n";
  }
  if (a.contains("kept_float")) {
    o << "  verdict: kept float: " << a["kept_float"].get<std::string>() << "\n";
  } else if (a.contains("met")) {
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
    if (const std::string cost = cost_text(a); !cost.empty()) o << "  " << a["objective"].get<std::string>() << ": " << cost << "\n";
  }
  o << "  sensitivity (output error = 1 - min cosine with only that layer changed; ranked by "
    << a.value("saving_unit", std::string("bytes")) << " saved per error):\n";
  const auto& allow = a.at("allow");
  char line[256];
  std::snprintf(line, sizeof line, "    %-40s %-14s %10s ", "layer", "op", "params");
  o << line;
  for (const auto& choice : allow) {
    std::snprintf(line, sizeof line, " %-12s", choice.get<std::string>().c_str());
    o << line;
  }
  o << "  chosen\n";
  size_t shown = 0;
  for (const auto& l : a.at("layers")) {
    if (++shown > 40) {
      o << "    ... " << a["layers"].size() - 40 << " more layers in the JSON report (auto.layers)\n";
      break;
    }
    const auto& c = l["choices"];
    std::snprintf(line, sizeof line, "    %-40s %-14s %10lld ", l["name"].get<std::string>().c_str(), l["op"].get<std::string>().c_str(),
                  static_cast<long long>(l["params"].get<int64_t>()));
    o << line;
    for (const auto& choice : allow) {
      const std::string k = choice.get<std::string>();
      std::snprintf(line, sizeof line, " %-12s", c.contains(k) ? choice_cell(c[k]).c_str() : "");
      o << line;
    }
    o << "  " << (l["chosen"].is_null() ? "float" : l["chosen"].get<std::string>()) << "\n";
  }
  return o.str();
}

std::string render_auto_markdown(const nlohmann::json& a) {
  std::ostringstream o;
  const auto& s = a.at("samples");
  o << "\n### auto\n\nBudget: " << budget_text(a) << " (objective " << objective_text(a) << "); samples "
    << s["total"] << ": " << s["search"] << " search, " << s["held_out"] << " held out.\n\n";
  if (a.contains("kept_float")) {
    o << "**Kept float**: " << a["kept_float"].get<std::string>() << ".\n\n";
  } else if (a.contains("met")) {
    int64_t floats = 0;
    const std::string chosen = chosen_summary(a["layers"], floats);
    o << "**" << (a["met"].get<bool>() ? "Budget met on the held-out samples" : "No compressed model meets the budget")
      << "**";
    if (a.contains("held_out")) o << ": held out " << metrics_text(a["held_out"]);
    o << ". Layers: " << chosen << ", float x" << floats << ".";
    if (const std::string cost = cost_text(a); !cost.empty()) o << " " << a["objective"].get<std::string>() << ": " << cost << ".";
    o << "\n\n";
  }
  const auto& allow = a.at("allow");
  o << "| layer | op | params |";
  for (const auto& choice : allow) o << " " << choice.get<std::string>() << " |";
  o << " chosen |\n|---|---|---:|";
  for (size_t k = 0; k < allow.size(); ++k) o << "---:|";
  o << "---|\n";
  size_t shown = 0;
  for (const auto& l : a.at("layers")) {
    if (++shown > 20) break;
    const auto& c = l["choices"];
    o << "| `" << l["name"].get<std::string>() << "` | " << l["op"].get<std::string>() << " | " << l["params"] << " |";
    for (const auto& choice : allow) {
      const std::string k = choice.get<std::string>();
      o << " " << (c.contains(k) ? choice_cell(c[k]) : std::string()) << " |";
    }
    o << " " << (l["chosen"].is_null() ? "float" : l["chosen"].get<std::string>()) << " |\n";
  }
  return o.str();
}

}  // namespace compress
