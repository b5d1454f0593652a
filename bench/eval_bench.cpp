// eval_bench: single-thread latency of the built-in evaluator on one model, with a per-op breakdown.
//
//   eval_bench MODEL.onnx [--input NAME=D0,D1,...]... [--value NAME=V]... [--runs 20] [--warmup 2]
//              [--seed 0] [--profile] [--top 0] [--save-outputs DIR] [--inputs DIR]
//
// Float inputs get seeded N(0,1) values (shape from --input, else the model's with unknown dims = 1);
// --value fills an input with one number (e.g. an int64 sample rate); --inputs DIR reads NAME.npy.
// Prints the median / min ms per run; --profile adds a second pass of the same number of runs with the
// evaluator's node profiler on and prints ms per run by op type (Conv split into depthwise, 1x1 and
// other), --top N the N slowest nodes. Eigen runs on one thread.
#include <compress/error.h>
#include <compress/evaluator.h>
#include <compress/model.h>
#include <compress/npy.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using compress::eval::Tensor;

std::vector<int64_t> parse_dims(const std::string& s) {
  std::vector<int64_t> d;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) d.push_back(std::stoll(tok));
  return d;
}

// Conv label by kind, read from the node's weight initializer and attributes.
std::string label(const onnx::NodeProto& node, const std::map<std::string, std::vector<int64_t>>& init_dims) {
  if (node.op_type() != "Conv" || node.input_size() < 2) return node.op_type();
  int64_t group = 1;
  for (const auto& a : node.attribute())
    if (a.name() == "group") group = a.i();
  auto it = init_dims.find(node.input(1));
  if (it == init_dims.end() || it->second.size() < 3) return "Conv(?)";
  const auto& w = it->second;
  int64_t ksz = 1;
  for (size_t k = 2; k < w.size(); ++k) ksz *= w[k];
  if (group > 1 && w[1] == 1) return "Conv(depthwise)";
  if (group > 1) return "Conv(grouped)";
  if (ksz == 1) return "Conv(1x1)";
  return "Conv(kxk)";
}

// "W=[M,C/g,kh,kw] g=G s=S" for a Conv, empty otherwise.
std::string conv_shape(const onnx::NodeProto& node, const std::map<std::string, std::vector<int64_t>>& init_dims) {
  if (node.op_type() != "Conv" || node.input_size() < 2) return "";
  std::string s = "W=[";
  auto it = init_dims.find(node.input(1));
  if (it != init_dims.end())
    for (size_t k = 0; k < it->second.size(); ++k) s += (k ? "," : "") + std::to_string(it->second[k]);
  s += "]";
  for (const auto& a : node.attribute()) {
    if (a.name() == "group") s += " g=" + std::to_string(a.i());
    if (a.name() == "strides" && a.ints_size()) s += " s=" + std::to_string(a.ints(0));
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: eval_bench MODEL.onnx [--input NAME=D0,D1,..] [--value NAME=V] [--runs N] [--warmup N]"
                 " [--seed S] [--profile] [--top N] [--inputs DIR] [--save-outputs DIR]\n";
    return 2;
  }
  std::string path = argv[1];
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<std::string, double> values;
  int runs = 20, warmup = 2, top = 0;
  unsigned seed = 0;
  bool profile = false;
  std::string inputs_dir, save_dir;
  for (int k = 2; k < argc; ++k) {
    std::string a = argv[k];
    auto next = [&]() -> std::string {
      if (k + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++k];
    };
    if (a == "--input" || a == "--value") {
      const std::string v = next();
      const auto eq = v.find('=');
      if (eq == std::string::npos) {
        std::cerr << a << " wants NAME=VALUE\n";
        return 2;
      }
      if (a == "--input") shapes[v.substr(0, eq)] = parse_dims(v.substr(eq + 1));
      else values[v.substr(0, eq)] = std::stod(v.substr(eq + 1));
    } else if (a == "--runs") runs = std::stoi(next());
    else if (a == "--warmup") warmup = std::stoi(next());
    else if (a == "--seed") seed = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--top") top = std::stoi(next());
    else if (a == "--profile") profile = true;
    else if (a == "--inputs") inputs_dir = next();
    else if (a == "--save-outputs") save_dir = next();
    else {
      std::cerr << "unknown argument " << a << "\n";
      return 2;
    }
  }
  Eigen::setNbThreads(1);
  try {
    const auto model = compress::Model::load(path);
    compress::eval::Evaluator ev(model);
    std::map<std::string, std::vector<int64_t>> init_dims;
    for (const auto& t : model.proto().graph().initializer())
      init_dims[t.name()] = std::vector<int64_t>(t.dims().begin(), t.dims().end());
    for (const auto& n : model.proto().graph().node())
      if (n.op_type() == "Constant" && n.output_size() == 1)
        for (const auto& a : n.attribute())
          if (a.name() == "value") init_dims[n.output(0)] = std::vector<int64_t>(a.t().dims().begin(), a.t().dims().end());

    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    compress::eval::TensorMap feeds;
    for (const auto& name : ev.input_names()) {
      if (!inputs_dir.empty()) {
        feeds[name] = compress::eval::read_npy(std::filesystem::path(inputs_dir) / (name + ".npy"));
        continue;
      }
      auto dims = shapes.count(name) ? shapes[name] : ev.input_shape(name);
      for (auto& d : dims)
        if (d < 0) d = 1;
      Tensor t = Tensor::zeros(ev.input_dtype(name), dims);
      if (values.count(name)) {
        for (auto& v : t.f) v = static_cast<float>(values[name]);
        for (auto& v : t.i) v = static_cast<int64_t>(values[name]);
      } else {
        for (auto& v : t.f) v = normal(rng);
      }
      feeds[name] = std::move(t);
    }

    for (int k = 0; k < warmup; ++k) ev.run(feeds);
    std::vector<double> ms;
    compress::eval::TensorMap outs;
    for (int k = 0; k < runs; ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      outs = ev.run(feeds);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    std::printf("%s: runs %d median_ms %.3f min_ms %.3f\n", std::filesystem::path(path).filename().c_str(), runs,
                ms[ms.size() / 2], ms.front());

    if (!save_dir.empty()) {
      std::filesystem::create_directories(save_dir);
      for (const auto& [name, t] : outs) {
        std::string file = name;
        std::replace(file.begin(), file.end(), '/', '_');
        compress::eval::write_npy(std::filesystem::path(save_dir) / (file + ".npy"), t);
      }
    }

    if (profile || top > 0) {
      struct Acc {
        double s = 0;
        int64_t nodes = 0;
      };
      std::map<std::string, Acc> by_op;
      std::map<const onnx::NodeProto*, double> by_node;
      ev.set_profiler([&](const onnx::NodeProto& node, double s) {
        auto& a = by_op[label(node, init_dims)];
        a.s += s;
        ++a.nodes;
        by_node[&node] += s;
      });
      for (int k = 0; k < runs; ++k) ev.run(feeds);
      ev.set_profiler(nullptr);
      std::vector<std::pair<std::string, Acc>> rows(by_op.begin(), by_op.end());
      std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.s > b.second.s; });
      double total = 0;
      for (const auto& r : rows) total += r.second.s;
      std::printf("%-18s %6s %10s %7s\n", "op", "nodes", "ms/run", "share");
      for (const auto& [op, a] : rows)
        std::printf("%-18s %6lld %10.3f %6.1f%%\n", op.c_str(), static_cast<long long>(a.nodes / runs),
                    1e3 * a.s / runs, 100.0 * a.s / total);
      std::printf("%-18s %6s %10.3f\n", "total", "", 1e3 * total / runs);
      if (top > 0) {
        std::vector<std::pair<const onnx::NodeProto*, double>> nodes(by_node.begin(), by_node.end());
        std::sort(nodes.begin(), nodes.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
        for (int k = 0; k < top && k < static_cast<int>(nodes.size()); ++k)
          std::printf("  %-24s %-16s %8.3f ms  %s\n", nodes[k].first->name().c_str(),
                      label(*nodes[k].first, init_dims).c_str(), 1e3 * nodes[k].second / runs,
                      conv_shape(*nodes[k].first, init_dims).c_str());
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "eval_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
