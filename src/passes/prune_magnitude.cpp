// prune-magnitude: unstructured (or n:m semi-structured) magnitude pruning of constant weights.
//
// Before: Y = MatMul(X, W)                 W dense, every element kept
// After:  Y = MatMul(X, W')                W' = W with the k smallest |w| set to 0 (same shape)
//
// - Selection is exact: the k = round(sparsity x n) elements with the smallest |w| are zeroed,
//   chosen with nth_element on (|w|, index) so ties break by index and the count is exact.
//   scope=layer: k per weight tensor; scope=global: k over all eligible weights together (one
//   magnitude threshold for the whole model, found by a radix select over the magnitudes' bits:
//   ties break by tensor, then index). Tensors are pruned one at a time (bounded memory).
// - n-m=N:M keeps the N largest |w| of every M consecutive weights along the reduction (input)
//   axis (MatMul axis 0, Gemm axis 1 with transB else 0, Conv the flattened Cin/g x kernel of each
//   output channel, Gather the embedding axis) and ignores `sparsity` (it is 1 - N/M).
// - storage=sparse stores a pruned initializer as an ONNX sparse_initializer (FLOAT values + INT64
//   linear indices, sorted) when that is smaller than dense, i.e. above ~2/3 sparsity for float32.
//   ONNX Runtime densifies sparse initializers when it loads the model.
// Skipped (counted): excluded, not a constant float32, graph-input initializer, a weight that is
// also a graph output, fewer than min-elements, a weight also read by a node that is not an
// eligible weight reader (or by a subgraph), n:m with a reduction length not divisible by M. Sparse storage is not used for
// Constant-node weights and weights inside subgraphs (kept dense, counted as
// dense_storage.<reason>).
// - calibrate=DIR (data-aware, Wanda: Sun et al. 2023): each weight is ranked by |w| times the L2
//   norm, over the samples, of the input feature it multiplies (MatMul/Gemm: the column of X; Conv:
//   the input channel, over images and positions), so weights that see quiet inputs go first, and
//   `sparsity` applies per output (each output's reduction vector loses the same share, as Wanda
//   compares), or n:m. The norms come from one evaluator pass of the unpruned model; layer scope only. A weight
//   whose readers are not all in the main graph, read non-float inputs, or disagree on layout keeps
//   plain magnitudes (counted as calibrate_fallback.<reason>); Gather tables have no input features.
// Options: sparsity (0.5), scope (layer), min-elements (1024), n-m (""), include-gather (false),
// storage (dense), calibrate (""), exclude.
#include <compress/error.h>
#include <compress/tensor.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <set>
#include <span>

#include "passes/activation_probe.h"
#include "passes/error_metrics.h"
#include "passes/passes.h"
#include "passes/weights.h"

namespace compress {

namespace {

struct NmPattern {
  int64_t n = 0;
  int64_t m = 0;
  bool enabled() const { return m > 0; }
};

NmPattern parse_n_m(const std::string& text) {
  if (text.empty()) return {};
  // "N:M" in JSON recipes; "N/M" in pipeline text, where ':' separates options.
  const auto colon = text.find_first_of(":/");
  auto bad = [&] {
    return Error(ExitCode::kUsage, "prune-magnitude: n-m must look like N:M or N/M with 0 < N < M (e.g. 2:4), got '" +
                                       text + "'");
  };
  if (colon == std::string::npos) throw bad();
  NmPattern p;
  try {
    size_t used = 0;
    p.n = std::stoll(text.substr(0, colon), &used);
    if (used != colon) throw bad();
    const std::string rest = text.substr(colon + 1);
    p.m = std::stoll(rest, &used);
    if (used != rest.size()) throw bad();
  } catch (const std::logic_error&) {
    throw bad();
  }
  if (p.n <= 0 || p.m <= p.n || p.m > 1024) throw bad();
  return p;
}

// One weight tensor to prune and every node reading it.
struct Target {
  WeightRef ref;  // first reader (layout source)
  std::vector<std::string> readers;
};

std::string label_of(const NodeProto& node) { return node.name().empty() ? node.op_type() : node.name(); }

// The error of pruning, summed as elements are zeroed (no copy of the original weight).
struct ZeroedSums {
  double noise = 0;    // sum of the zeroed w^2
  double max_abs = 0;  // largest zeroed |w|
  void zero(float& v) {
    noise += static_cast<double>(v) * v;
    max_abs = std::max(max_abs, static_cast<double>(std::abs(v)));
    v = 0.0f;
  }
};

// Index of the j-th element of reduction group `g` (n:m groups run along the reduction axis).
struct ReductionLayout {
  int64_t groups = 0;  // independent reduction vectors (output channels x other)
  int64_t length = 0;  // reduction length
  int64_t stride = 1;  // distance between consecutive reduction elements
  int64_t index(int64_t g, int64_t j) const {
    if (stride == 1) return g * length + j;
    return j * stride + g;  // [K, N] layout: reduction along rows, groups are columns
  }
};

ReductionLayout reduction_layout(const WeightRef& ref) {
  int64_t n = 1;
  for (int64_t d : ref.dims) n *= d;
  ReductionLayout r;
  const std::string& op = ref.node->op_type();
  if (op == "Conv" || op == "Gather" || (ref.dims.size() == 2 && ref.in_axis == 1)) {
    // Row-major rows are the reduction vectors: Conv [Cout, Cin/g x k], Gemm transB [N, K], Gather [V, D].
    r.length = ref.dims.size() >= 2 ? n / ref.dims[0] : n;
    r.groups = n / std::max<int64_t>(r.length, 1);
    r.stride = 1;
  } else {
    // [K, N]: reduction along axis 0.
    r.length = ref.dims[0];
    r.groups = n / std::max<int64_t>(r.length, 1);
    r.stride = r.groups;
  }
  return r;
}

// `keys` rank the elements of `values` (|w|, or |w| x input norm); they may be the values themselves.
void apply_n_m(std::span<const float> keys, std::span<float> values, const ReductionLayout& r, const NmPattern& p,
               ZeroedSums& zeroed) {
  std::vector<int64_t> idx(static_cast<size_t>(p.m));
  for (int64_t g = 0; g < r.groups; ++g) {
    for (int64_t start = 0; start < r.length; start += p.m) {
      for (int64_t j = 0; j < p.m; ++j) idx[j] = r.index(g, start + j);
      // Keep the n largest (|key|, lower index first on ties); zero the rest.
      std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
        const float fa = std::abs(keys[a]), fb = std::abs(keys[b]);
        return fa > fb || (fa == fb && a < b);
      });
      for (int64_t j = p.n; j < p.m; ++j) zeroed.zero(values[idx[j]]);
    }
  }
}

// Per output (each reduction vector of the weight, as Wanda compares): zeroes the round(sparsity x
// length) elements with the smallest keys, ties broken by index.
void apply_per_output(std::span<const float> keys, std::span<float> values, const ReductionLayout& r, double sparsity,
                      ZeroedSums& zeroed) {
  const auto k = static_cast<int64_t>(std::llround(sparsity * static_cast<double>(r.length)));
  std::vector<int64_t> idx(static_cast<size_t>(r.length));
  for (int64_t g = 0; g < r.groups && k > 0; ++g) {
    for (int64_t j = 0; j < r.length; ++j) idx[static_cast<size_t>(j)] = r.index(g, j);
    std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), [&](int64_t a, int64_t b) {
      const float fa = std::abs(keys[a]), fb = std::abs(keys[b]);
      return fa < fb || (fa == fb && a < b);
    });
    for (int64_t j = 0; j < k; ++j) zeroed.zero(values[idx[static_cast<size_t>(j)]]);
  }
}

// The k smallest (|w|, tensor, index) over the tensors `for_each_values` visits, as a threshold:
// every |w| below `magnitude`, and the first `ties_to_zero` equal to it in visiting order. |w| of
// a float orders like its bit pattern, so a two-level radix select (high, then low 16 bits) finds
// it exactly in two streaming passes with no copy or index array of the weights.
struct MagnitudeCut {
  uint32_t magnitude = 0;
  int64_t ties_to_zero = 0;
};

uint32_t magnitude_bits(float v) { return std::bit_cast<uint32_t>(v) & 0x7fffffffu; }

template <class ForEachValues>
MagnitudeCut magnitude_cut(const ForEachValues& for_each_values, int64_t k, int64_t total) {
  if (k <= 0) return {};
  if (k >= total) return {0xffffffffu, 0};  // above every magnitude: all elements
  constexpr size_t kBins = size_t{1} << 16;
  std::vector<int64_t> high(kBins, 0);
  for_each_values([&](std::span<const float> values) {
    for (float v : values) ++high[magnitude_bits(v) >> 16];
  });
  // The bin holding the k-th smallest element, and how many lie below it.
  auto locate = [](const std::vector<int64_t>& hist, int64_t rank, int64_t& below) {
    size_t bin = 0;
    while (below + hist[bin] < rank) below += hist[bin++];
    return static_cast<uint32_t>(bin);
  };
  int64_t below = 0;
  const uint32_t hi = locate(high, k, below);
  std::vector<int64_t> low(kBins, 0);
  for_each_values([&](std::span<const float> values) {
    for (float v : values)
      if (const uint32_t m = magnitude_bits(v); m >> 16 == hi) ++low[m & 0xffffu];
  });
  const uint32_t lo = locate(low, k, below);
  return {(hi << 16) | lo, k - below};
}

// Zeroes the values whose keys `cut` selects in one tensor (keys may be the values themselves: each
// is read before it is zeroed); returns the ties still to zero in later tensors.
int64_t apply_cut(std::span<const float> keys, std::span<float> values, const MagnitudeCut& cut, int64_t ties_left,
                  ZeroedSums& zeroed) {
  for (size_t i = 0; i < values.size(); ++i) {
    const uint32_t m = magnitude_bits(keys[i]);
    if (m < cut.magnitude) {
      zeroed.zero(values[i]);
    } else if (m == cut.magnitude && ties_left > 0) {
      zeroed.zero(values[i]);
      --ties_left;
    }
  }
  return ties_left;
}

// Squared L2 norm, over the samples, of each input feature a weight's elements multiply: MatMul/Gemm
// columns of X (rows with transA), Conv input channels over images and positions.
std::vector<double> feature_energy(const NodeProto& node, const eval::Tensor& x) {
  std::vector<double> e;
  if (node.op_type() == "Conv") {
    if (x.dims.size() < 3) return {};
    const int64_t n = x.dims[0], ch = x.dims[1], rest = n * ch != 0 ? x.numel() / (n * ch) : 0;
    e.assign(static_cast<size_t>(ch), 0.0);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t c = 0; c < ch; ++c)
        for (int64_t j = 0; j < rest; ++j) {
          const double v = x.f[static_cast<size_t>((b * ch + c) * rest + j)];
          e[static_cast<size_t>(c)] += v * v;
        }
    return e;
  }
  if (x.dims.empty()) return {};
  const bool trans_a = node.op_type() == "Gemm" && int_attribute(node, "transA", 0) != 0;
  if (trans_a) {
    if (x.dims.size() != 2) return {};
    const int64_t k = x.dims[0], m = x.dims[1];
    e.assign(static_cast<size_t>(k), 0.0);
    for (int64_t r = 0; r < k; ++r)
      for (int64_t c = 0; c < m; ++c) e[static_cast<size_t>(r)] += static_cast<double>(x.f[static_cast<size_t>(r * m + c)]) * x.f[static_cast<size_t>(r * m + c)];
    return e;
  }
  const int64_t k = x.dims.back(), rows = k ? x.numel() / k : 0;
  e.assign(static_cast<size_t>(k), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < k; ++c) e[static_cast<size_t>(c)] += static_cast<double>(x.f[static_cast<size_t>(r * k + c)]) * x.f[static_cast<size_t>(r * k + c)];
  return e;
}

// The input feature element i of a weight multiplies, for the weight's reader layout; -1 when the
// feature count does not fit the weight (the readers' inputs disagree with it).
int64_t feature_of(const WeightRef& ref, int64_t i, int64_t features) {
  const auto& d = ref.dims;
  if (ref.node->op_type() == "Conv") {
    if (d.size() < 3) return -1;
    int64_t ksize = 1;
    for (size_t k = 2; k < d.size(); ++k) ksize *= d[k];
    const int64_t per_group = d[1], groups = per_group ? features / per_group : 0;
    if (groups < 1 || d[0] % groups != 0) return -1;
    const int64_t o = i / (per_group * ksize), c = (i / ksize) % per_group;
    return (o / (d[0] / groups)) * per_group + c;
  }
  if (d.size() != 2) return -1;
  return ref.in_axis == 1 ? i % d[1] : i / d[1];  // [N, K] with transB, else [K, N]
}

class PruneMagnitudePass final : public Pass {
 public:
  PassInfo info() const override {
    OptionSpec sparsity{"sparsity", OptionSpec::Type::kFloat, "0.5", "fraction of each weight's elements set to zero"};
    sparsity.min = 0;
    sparsity.max = 1;
    OptionSpec scope{"scope", OptionSpec::Type::kEnum, "layer",
                     "layer: `sparsity` of each weight; global: one magnitude threshold over all weights"};
    scope.choices = {"layer", "global"};
    OptionSpec min_elements{"min-elements", OptionSpec::Type::kInt, "1024", "skip weights with fewer elements"};
    min_elements.min = 0;
    OptionSpec storage{"storage", OptionSpec::Type::kEnum, "dense",
                       "sparse: store pruned initializers as sparse_initializer when smaller than dense"};
    storage.choices = {"dense", "sparse"};
    return {"prune-magnitude",
            "zero the smallest-magnitude weights of MatMul/Gemm/Conv (optionally Gather), unstructured or N:M",
            {sparsity, scope, min_elements,
             {"n-m", OptionSpec::Type::kString, "",
              "N:M (or N/M in pipeline text) pattern along the reduction axis, e.g. 2/4 keeps 2 of every 4 "
              "(overrides sparsity); empty = off"},
             {"include-gather", OptionSpec::Type::kBool, "false", "also prune Gather tables (embeddings)"},
             storage,
             {"calibrate", OptionSpec::Type::kSamples, "",
              "directory of <input>.npy samples: rank weights by |w| x the L2 norm of the input feature they "
              "multiply (Wanda), so weights on quiet inputs go first; layer scope; empty: plain magnitude"},
             {"exclude", OptionSpec::Type::kList, "[]", "globs of node names or op types to leave alone"}}};
  }

  PassStats run(Model& model, const PassContext& context) const override {
    PassStats stats;
    const auto& options = context.options();
    const double sparsity = options.get_float("sparsity");
    const bool global = options.get_string("scope") == "global";
    const NmPattern nm = parse_n_m(options.get_string("n-m"));
    const bool sparse_storage = options.get_string("storage") == "sparse";
    std::set<std::string> ops = {"MatMul", "Gemm", "Conv"};
    if (options.get_bool("include-gather")) ops.insert("Gather");

    auto refs = collect_weights(model, context, ops, options.get_int("min-elements"), stats);
    std::vector<Target> targets = select(refs, nm, stats);
    std::map<const TensorProto*, std::vector<float>> input_norms;
    if (const eval::TensorMap* samples = context.samples("calibrate")) {
      if (global) throw Error(ExitCode::kUsage, "prune-magnitude: calibrate ranks weights per layer: use scope=layer");
      try {
        input_norms = gather_input_norms(model, *samples, targets, stats);
      } catch (const Error& e) {
        throw Error(e.code(), std::string("prune-magnitude: ") + e.what());
      }
    }

    // Tensor by tensor, in place: the peak memory is the model, whatever its size.
    MagnitudeCut global_cut;
    if (global && !nm.enabled()) {
      int64_t all = 0;
      for (const Target& t : targets) all += element_count(*t.ref.tensor);
      const auto for_each_values = [&](const auto& visit) {
        std::vector<float> scratch;
        for (const Target& t : targets) visit(float_view(*t.ref.tensor, scratch));
      };
      global_cut = magnitude_cut(for_each_values, std::llround(sparsity * static_cast<double>(all)), all);
    }
    int64_t ties_left = global_cut.ties_to_zero;
    int64_t total = 0, zeros = 0, dense_bytes = 0, stored_bytes = 0;
    for (auto& t : targets) {
      const std::span<float> values = float_data_in_place(*t.ref.tensor);
      double signal = 0;
      for (float v : values) signal += static_cast<double>(v) * v;
      ZeroedSums zeroed;
      // Ranking keys: |w| itself, or with calibrate |w| x the norm of the input feature it multiplies.
      std::vector<float> scored;
      const auto norms = input_norms.find(t.ref.tensor);
      if (norms != input_norms.end()) {
        scored.resize(values.size());
        for (size_t i = 0; i < values.size(); ++i)
          scored[i] = std::abs(values[i]) * norms->second[static_cast<size_t>(feature_of(t.ref, static_cast<int64_t>(i),
                                                                                          static_cast<int64_t>(norms->second.size())))];
      }
      const std::span<const float> keys = scored.empty() ? std::span<const float>(values) : std::span<const float>(scored);
      if (nm.enabled()) {
        apply_n_m(keys, values, reduction_layout(t.ref), nm, zeroed);
      } else if (!scored.empty()) {
        apply_per_output(keys, values, reduction_layout(t.ref), sparsity, zeroed);
      } else if (global) {
        ties_left = apply_cut(keys, values, global_cut, ties_left, zeroed);
      } else {
        const int64_t n = static_cast<int64_t>(values.size());
        const auto visit_this = [&](const auto& visit) { visit(keys); };
        const MagnitudeCut cut = magnitude_cut(visit_this, std::llround(sparsity * static_cast<double>(n)), n);
        apply_cut(keys, values, cut, cut.ties_to_zero, zeroed);
      }
      const int64_t n = static_cast<int64_t>(values.size());
      const int64_t z = std::count(values.begin(), values.end(), 0.0f);
      total += n;
      zeros += z;
      const int64_t dense = 4 * n;
      int64_t stored = dense;
      std::string storage = "dense";
      if (sparse_storage) storage = store(t, values, model, stats, stored);
      dense_bytes += dense;
      stored_bytes += stored;
      const auto err = reconstruction_error_from_sums(signal, zeroed.noise, zeroed.max_abs);
      stats.layers.push_back({{"name", t.ref.value},
                              {"readers", t.readers},
                              {"elements", n},
                              {"zeros", z},
                              {"sparsity", n ? static_cast<double>(z) / static_cast<double>(n) : 0.0},
                              {"relative_l2", err.relative_l2},
                              {"calibrated", norms != input_norms.end()},
                              {"storage", storage},
                              {"dense_bytes", dense},
                              {"stored_bytes", stored}});
      stats.count("pruned");
    }
    stats.count("elements", total);
    stats.count("zeros", zeros);
    stats.count("dense_bytes", dense_bytes);
    stats.count("stored_bytes", stored_bytes);
    stats.count("bytes_saved", dense_bytes - stored_bytes);
    if (total) stats.count("sparsity_permille", std::llround(1000.0 * static_cast<double>(zeros) / static_cast<double>(total)));
    return stats;
  }

 private:
  // Per target whose readers' inputs can be probed: the L2 norm of each input feature over the
  // samples, summed over readers (one evaluator pass of the unpruned model for all of them).
  static std::map<const TensorProto*, std::vector<float>> gather_input_norms(Model& model, const eval::TensorMap& samples,
                                                                           const std::vector<Target>& targets,
                                                                           PassStats& stats) {
    Graph* main = &model.graph();
    std::vector<std::string> values;
    std::set<const TensorProto*> probed;
    for (const Target& t : targets) {
      if (t.ref.node->op_type() == "Gather") continue;  // a table lookup: no input features
      bool ok = true;
      for (const auto& use : t.ref.graph->consumers(t.ref.value))
        ok = ok && t.ref.graph == main && use.node->op_type() == t.ref.node->op_type() &&
             use.node->input_size() > 0 && !use.node->input(0).empty();
      if (!ok) {
        stats.count("calibrate_fallback.reader_not_probed");
        continue;
      }
      for (const auto& use : t.ref.graph->consumers(t.ref.value))
        if (std::find(values.begin(), values.end(), use.node->input(0)) == values.end()) values.push_back(use.node->input(0));
      probed.insert(t.ref.tensor);
    }
    if (probed.empty()) return {};
    std::map<const TensorProto*, std::vector<double>> energy;
    std::set<const TensorProto*> failed;
    const ActivationProbe probe(model, values);
    probe.for_each_batch(samples, 8, [&](const eval::TensorMap& acts) {
      for (const Target& t : targets) {
        if (!probed.count(t.ref.tensor) || failed.count(t.ref.tensor)) continue;
        for (const auto& use : t.ref.graph->consumers(t.ref.value)) {
          const eval::Tensor& x = acts.at(use.node->input(0));
          const std::vector<double> e = x.is_float() ? feature_energy(*use.node, x) : std::vector<double>{};
          auto& acc = energy[t.ref.tensor];
          if (e.empty() || (!acc.empty() && acc.size() != e.size())) {
            failed.insert(t.ref.tensor);
            break;
          }
          if (acc.empty()) acc.assign(e.size(), 0.0);
          for (size_t k = 0; k < e.size(); ++k) acc[k] += e[k];
        }
      }
    });
    std::map<const TensorProto*, std::vector<float>> norms;
    for (const Target& t : targets) {
      if (!probed.count(t.ref.tensor)) continue;
      const auto it = energy.find(t.ref.tensor);
      const auto features = it == energy.end() ? 0 : static_cast<int64_t>(it->second.size());
      // Every element must map to a feature the inputs have (a Conv's channel count, a MatMul's K).
      bool fits = features > 0 && !failed.count(t.ref.tensor);
      const int64_t n = element_count(*t.ref.tensor);
      for (int64_t i = 0; fits && i < n; ++i) {
        const int64_t f = feature_of(t.ref, i, features);
        fits = f >= 0 && f < features;
      }
      if (!fits) {
        stats.count("calibrate_fallback.input_shape");
        continue;
      }
      std::vector<float> norm(it->second.size());
      for (size_t k = 0; k < norm.size(); ++k) norm[k] = static_cast<float>(std::sqrt(it->second[k]));
      norms[t.ref.tensor] = std::move(norm);
      stats.count("calibrated");
    }
    return norms;
  }

  // Groups readers of the same tensor; keeps a tensor only when every reader is an eligible weight
  // input (pruning it is then meant for all of them).
  static std::vector<Target> select(std::vector<WeightRef>& refs, const NmPattern& nm, PassStats& stats) {
    std::map<const TensorProto*, std::vector<WeightRef*>> by_tensor;
    std::vector<const TensorProto*> order;
    for (auto& r : refs) {
      auto& list = by_tensor[r.tensor];
      if (list.empty()) order.push_back(r.tensor);
      list.push_back(&r);
    }
    std::vector<Target> targets;
    for (const TensorProto* tensor : order) {
      const auto& list = by_tensor[tensor];
      WeightRef& first = *list.front();
      const std::string label = label_of(*first.node);
      if (first.outer_scope) {
        stats.skip(label, "weight_in_outer_scope");
        continue;
      }
      std::set<std::pair<const NodeProto*, int>> eligible;
      for (const WeightRef* r : list) eligible.insert({r->node, r->input_index});
      bool all_eligible = true;
      for (const auto& use : first.graph->consumers(first.value))
        all_eligible = all_eligible && eligible.count({use.node, use.input_index});
      if (!all_eligible) {
        stats.skip(label, "weight_has_other_readers");
        continue;
      }
      // A weight that is also a graph output is a value the model returns: pruning would change it.
      if (first.graph->is_graph_output(first.value)) {
        stats.skip(label, "weight_is_graph_output");
        continue;
      }
      // Readers must agree on the layout (n:m depends on it).
      bool same_layout = true;
      for (const WeightRef* r : list)
        same_layout = same_layout && r->node->op_type() == first.node->op_type() && r->in_axis == first.in_axis;
      if (nm.enabled() && !same_layout) {
        stats.skip(label, "readers_disagree_on_layout");
        continue;
      }
      if (nm.enabled() && reduction_layout(first).length % nm.m != 0) {
        stats.skip(label, "n_m_indivisible");
        continue;
      }
      Target t;
      t.ref = first;
      for (const WeightRef* r : list) t.readers.push_back(label_of(*r->node));
      targets.push_back(std::move(t));
    }
    return targets;
  }

  // Moves the (already pruned) initializer to sparse_initializer when that is smaller; returns the
  // storage used and sets `stored` to its data bytes.
  static std::string store(Target& t, std::span<const float> pruned, Model& model, PassStats& stats,
                           int64_t& stored) {
    Graph& g = *t.ref.graph;
    auto dense_because = [&](const std::string& reason) {
      stats.count("dense_storage." + reason);
      return "dense (" + reason + ")";
    };
    if (g.initializer(t.ref.value) != t.ref.tensor) return dense_because("constant_node");
    if (g.parent() != nullptr) return dense_because("in_subgraph");
    std::vector<float> values;
    std::vector<int64_t> indices;
    for (size_t i = 0; i < pruned.size(); ++i)
      if (pruned[i] != 0.0f) {
        values.push_back(pruned[i]);
        indices.push_back(static_cast<int64_t>(i));
      }
    const int64_t nnz = static_cast<int64_t>(values.size());
    const int64_t sparse_bytes = nnz * (4 + 8);
    if (sparse_bytes >= stored) return dense_because("sparse_not_smaller");
    onnx::SparseTensorProto sparse;
    *sparse.mutable_values() = make_float_tensor(t.ref.value, {nnz}, values);
    *sparse.mutable_indices() = make_int64_tensor(model.unique_name(t.ref.value + "_indices"), {nnz}, indices);
    for (int64_t d : t.ref.dims) sparse.add_dims(d);
    g.remove_initializer(t.ref.value);  // also drops its value_info entry; the name stays defined
    *g.proto().add_sparse_initializer() = std::move(sparse);
    g.invalidate();
    stored = sparse_bytes;
    stats.count("sparse_initializers");
    return "sparse";
  }
};

}  // namespace

std::unique_ptr<Pass> make_prune_magnitude_pass() { return std::make_unique<PruneMagnitudePass>(); }

}  // namespace compress
