// ONNX backend node tests (Debian libonnx-testdata) through the evaluator.
//
// usage: eval_conformance DATA_DIR EXPECTED_FAILURES_FILE [--verbose] [--filter SUBSTRING] [--min-passed N]
// Every case whose ops the evaluator implements must match its reference outputs (floats within
// |a - b| <= kAtol + kRtol * |b|, integers and bools exactly, same dtype and shape), or be listed in
// the expected-failures file ("case_name  reason" per line). A listed case that passes is also an
// error, so the list cannot go stale. Cases with unsupported ops, or sequence/optional inputs or
// outputs, are counted as skipped.
// Prints a per-op table (a case counts for every op it contains) and exits 1 on any unexpected result,
// or when fewer than N cases pass: an op dropped from the table would only turn its cases into skips.
#include <compress/error.h>
#include <compress/evaluator.h>
#include <compress/model.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using compress::eval::Tensor;

namespace {

constexpr double kRtol = 1e-4;
constexpr double kAtol = 1e-4;

onnx::TensorProto read_pb(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::TensorProto t;
  if (!t.ParseFromIstream(&in)) throw std::runtime_error("cannot parse " + path.string());
  return t;
}

// Empty when equal, else why not.
std::string compare(const Tensor& got, const Tensor& want) {
  if (got.dtype != want.dtype) return "dtype " + std::to_string(got.dtype) + " vs " + std::to_string(want.dtype);
  if (got.dims != want.dims) return "shape differs";
  for (int64_t k = 0; k < want.numel(); ++k) {
    const double a = got.at(k), b = want.at(k);
    if (want.is_float()) {
      if (std::isnan(a) && std::isnan(b)) continue;
      if (std::isinf(b) && a == b) continue;
      if (!(std::fabs(a - b) <= kAtol + kRtol * std::fabs(b))) {
        std::ostringstream s;
        s << "element " << k << ": " << a << " vs " << b;
        return s.str();
      }
    } else if (a != b) {
      std::ostringstream s;
      s << "element " << k << ": " << a << " vs " << b;
      return s.str();
    }
  }
  return "";
}

// Runs every test_data_set of one case; empty when all match.
std::string run_case(const fs::path& dir) {
  const auto model = compress::Model::load(dir / "model.onnx");
  compress::eval::Evaluator ev(model);
  const auto& g = model.proto().graph();
  std::set<std::string> inits;
  for (const auto& i : g.initializer()) inits.insert(i.name());
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  for (const auto& set : sets) {
    compress::eval::TensorMap feeds;
    for (int k = 0; k < g.input_size(); ++k) {
      const fs::path p = set / ("input_" + std::to_string(k) + ".pb");
      if (!fs::exists(p)) break;
      const auto proto = read_pb(p);
      feeds[proto.name().empty() ? g.input(k).name() : proto.name()] = compress::eval::from_proto(proto);
    }
    const auto outs = ev.run(feeds);
    for (int k = 0; k < g.output_size(); ++k) {
      const fs::path p = set / ("output_" + std::to_string(k) + ".pb");
      if (!fs::exists(p)) continue;
      const Tensor want = compress::eval::from_proto(read_pb(p));
      const std::string why = compare(outs.at(g.output(k).name()), want);
      if (!why.empty()) return set.filename().string() + " output " + g.output(k).name() + ": " + why;
    }
  }
  return "";
}

std::set<std::string> case_ops(const onnx::GraphProto& g) {
  std::set<std::string> ops;
  for (const auto& n : g.node()) {
    ops.insert(n.domain().empty() || n.domain() == "ai.onnx" ? n.op_type() : n.domain() + ":" + n.op_type());
    for (const auto& a : n.attribute())
      if (a.has_g()) {
        auto inner = case_ops(a.g());
        ops.insert(inner.begin(), inner.end());
      }
  }
  return ops;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: eval_conformance DATA_DIR EXPECTED_FAILURES_FILE [--verbose] [--filter S] [--min-passed N]\n";
    return 2;
  }
  const fs::path data = argv[1];
  bool verbose = false;
  std::string filter;
  int min_passed = 0;
  for (int k = 3; k < argc; ++k) {
    const std::string a = argv[k];
    if (a == "--verbose") verbose = true;
    else if (a == "--filter" && k + 1 < argc) filter = argv[++k];
    else if (a == "--min-passed" && k + 1 < argc) min_passed = std::stoi(argv[++k]);
  }
  std::map<std::string, std::string> expected;
  {
    std::ifstream in(argv[2]);
    if (!in) {
      std::cerr << "cannot open " << argv[2] << "\n";
      return 2;
    }
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      const auto sp = line.find_first_of(" \t");
      expected[line.substr(0, sp)] = sp == std::string::npos ? "" : line.substr(line.find_first_not_of(" \t", sp));
    }
  }
  if (!fs::is_directory(data)) {
    std::cerr << data << ": no such directory (install the libonnx-testdata package)\n";
    return 1;
  }
  std::vector<fs::path> cases;
  for (const auto& e : fs::directory_iterator(data))
    if (fs::exists(e.path() / "model.onnx") && e.path().filename().string().find(filter) != std::string::npos)
      cases.push_back(e.path());
  std::sort(cases.begin(), cases.end());

  struct Count { int pass = 0, expected_fail = 0, fail = 0, skip = 0; };
  std::map<std::string, Count> per_op;
  int pass = 0, fail = 0, xfail = 0, skip = 0, stale = 0;
  for (const auto& dir : cases) {
    const std::string name = dir.filename().string();
    std::set<std::string> ops;
    std::string why;
    try {
      const auto model = compress::Model::load(dir / "model.onnx");
      ops = case_ops(model.proto().graph());
      bool tensors_only = true;
      for (const auto& v : model.proto().graph().input()) tensors_only = tensors_only && v.type().has_tensor_type();
      for (const auto& v : model.proto().graph().output()) tensors_only = tensors_only && v.type().has_tensor_type();
      if (!tensors_only || !compress::eval::unsupported_ops(model.proto()).empty()) {
        ++skip;
        for (const auto& op : ops) ++per_op[op].skip;
        continue;
      }
      why = run_case(dir);
    } catch (const std::exception& e) {
      why = e.what();
      if (ops.empty()) {
        ++skip;  // model not loadable here (e.g. newer IR); not an evaluator result
        if (verbose) std::cout << "SKIP " << name << ": " << why << "\n";
        continue;
      }
    }
    const bool listed = expected.count(name) > 0;
    if (why.empty() && !listed) {
      ++pass;
      for (const auto& op : ops) ++per_op[op].pass;
    } else if (why.empty()) {
      ++stale;
      std::cout << "UNEXPECTED PASS " << name << " (remove it from the expected-failures file)\n";
    } else if (listed) {
      ++xfail;
      for (const auto& op : ops) ++per_op[op].expected_fail;
      if (verbose) std::cout << "XFAIL " << name << ": " << why << "\n";
    } else {
      ++fail;
      for (const auto& op : ops) ++per_op[op].fail;
      std::cout << "FAIL " << name << ": " << why << "\n";
    }
  }
  std::cout << "\nop                      pass  xfail  fail  skipped\n";
  for (const auto& [op, c] : per_op) {
    if (c.pass + c.fail + c.expected_fail == 0) continue;
    char line[128];
    std::snprintf(line, sizeof line, "%-22s %5d %6d %5d %8d\n", op.c_str(), c.pass, c.expected_fail, c.fail, c.skip);
    std::cout << line;
  }
  std::cout << "\ncases: " << cases.size() << "  passed: " << pass << "  expected failures: " << xfail
            << "  failed: " << fail << "  stale expectations: " << stale << "  skipped (unsupported ops): " << skip
            << "\n";
  if (pass < min_passed) std::cout << "FAIL only " << pass << " cases passed, expected at least " << min_passed << "\n";
  return fail + stale == 0 && pass >= min_passed ? 0 : 1;
}
